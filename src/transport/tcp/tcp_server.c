/*
 * Server side of a connection, run by the progress thread: the handshake of
 * an incoming peer, then its WRITE, READ_REQ and NOTIF frames. Payloads are
 * received straight into registered memory (device memory through a pinned
 * staging buffer); bytes of a refused request are drained into scratch and
 * never land anywhere. Answers (READ data, ACK, ERROR) leave in order from a
 * bounded ring; a notification is delivered when its ACK is next.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "transport/tcp/tcp_internal.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/log.h"

/* ------------------------------------------------------------------------ */
/* Server side                                                               */

static void rx_fail(tcp_conn_t *c, uint64_t req, mixl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void rx_fail(tcp_conn_t *c, uint64_t req, mixl_status_t st, const char *fmt, ...)
{
    va_list ap;

    if (c->rx_failed && c->rx_failed_req == req) return;
    c->rx_failed = 1;
    c->rx_failed_req = req;
    c->rx_failed_status = st;
    va_start(ap, fmt);
    vsnprintf(c->rx_failed_msg, sizeof(c->rx_failed_msg), fmt, ap);
    va_end(ap);
    mixl_warn("tcp agent %s: request 0x%llx from %s refused: %s (%s)", c->tcp->name,
              (unsigned long long)req, c->peer_name, c->rx_failed_msg, mixl_status_str(st));
}

static tcp_answer_t *ring_push(tcp_conn_t *c)
{
    tcp_answer_t *a = &c->ring[(c->ring_head + c->ring_count) % TCP_SRV_RING];
    memset(a, 0, offsetof(tcp_answer_t, notif));
    c->ring_count++;
    return a;
}

static void ring_pop(tcp_conn_t *c)
{
    c->ring_head = (c->ring_head + 1) % TCP_SRV_RING;
    c->ring_count--;
}

/* The answer that ends request req: ACK, or ERROR when it failed here. */
static tcp_answer_t *answer_end(tcp_conn_t *c, uint64_t req)
{
    tcp_answer_t *a = ring_push(c);

    a->req_id = req;
    if (c->rx_failed && c->rx_failed_req == req) {
        a->kind = MIXL_TCP_ERROR;
        a->status = c->rx_failed_status;
        snprintf(a->msg, sizeof(a->msg), "%s", c->rx_failed_msg);
    } else {
        a->kind = MIXL_TCP_ACK;
        a->send_ack = 1;
    }
    return a;
}

/* Check that [offset, offset+len) lies in region id; regions_lock held. */
static tcp_region_t *srv_region(tcp_conn_t *c, const mixl_tcp_frame_t *f, uint64_t len)
{
    tcp_region_t *r = tcp_region_find(c->tcp, f->region);

    if (r == NULL) {
        rx_fail(c, f->req_id, MIXL_ERR_NOT_REGISTERED, "%s names region %u, not registered at agent %s",
                mixl_tcp_type_str(f->type), f->region, c->tcp->name);
        return NULL;
    }
    if (f->offset > r->len || len > r->len - f->offset) {
        rx_fail(c, f->req_id, MIXL_ERR_OUT_OF_RANGE,
                "%s of %llu bytes at offset %llu is outside region %u (%zu bytes) of agent %s",
                mixl_tcp_type_str(f->type), (unsigned long long)len,
                (unsigned long long)f->offset, f->region, r->len, c->tcp->name);
        return NULL;
    }
#ifndef MIXL_HAVE_CUDA
    if (r->mem_type == MIXL_MEM_CUDA) {
        rx_fail(c, f->req_id, MIXL_ERR_NOT_SUPPORTED, "region %u is device memory", f->region);
        return NULL;
    }
#endif
    return r;
}

static void srv_frame_begin(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;
    mixl_tcp_frame_t *f = &c->rx;
    tcp_region_t *r;

    c->rx_got = 0;
    switch (f->type) {
    case MIXL_TCP_WRITE:
        c->rx_mode = RX_DRAIN;
        if (c->rx_failed && c->rx_failed_req == f->req_id) break;
        pthread_mutex_lock(&tcp->regions_lock);
        r = srv_region(c, f, f->payload_len);
        if (r != NULL) {
            c->rx_region_id = r->id;
            c->rx_region_gen = tcp->regions_gen;
            c->rx_region_off = f->offset;
            c->rx_dst = r->addr + f->offset;
            c->rx_mode = r->mem_type == MIXL_MEM_CUDA ? RX_STAGE : RX_DIRECT;
            c->rx_device = r->device;
        }
        pthread_mutex_unlock(&tcp->regions_lock);
#ifdef MIXL_HAVE_CUDA
        if (c->rx_mode == RX_STAGE && (c->rx_stage = tcp_stage_rx_buf(c, c->rx_device)) == NULL) {
            rx_fail(c, f->req_id, MIXL_ERR_NO_MEMORY, "no pinned staging slot for region %u: %s",
                    f->region, tcp_stage_error(c));
            c->rx_mode = RX_DRAIN;
        }
#endif
        break;
    case MIXL_TCP_READ_REQ:
        c->rx_mode = RX_HDR;
        if (!(c->rx_failed && c->rx_failed_req == f->req_id)) {
            pthread_mutex_lock(&tcp->regions_lock);
            r = srv_region(c, f, f->length);
            pthread_mutex_unlock(&tcp->regions_lock);
            if (r != NULL) {
                tcp_answer_t *a = ring_push(c);
                a->kind = MIXL_TCP_READ_RESP;
                a->req_id = f->req_id;
                a->region = f->region;
                a->offset = f->offset;
                a->left = f->length;
                a->crc = (f->flags & MIXL_TCP_F_CRC) != 0;
            }
        }
        break;
    case MIXL_TCP_NOTIF: c->rx_mode = RX_SMALL; break;
    case MIXL_TCP_CLOSE:
        c->rx_mode = RX_HDR;
        c->peer_closed = 1;
        break;
    default:
        tcp_conn_abort(c, MIXL_ERR_PROTOCOL, "frame type %s is not valid from a client",
                       mixl_tcp_type_str(f->type));
        return;
    }
}

/* Before a request is answered or its notification delivered, its copies
 * into device memory have ended. */
static void srv_stage_drain(tcp_conn_t *c, const mixl_tcp_frame_t *f)
{
#ifdef MIXL_HAVE_CUDA
    if (tcp_stage_rx_drain(c) != MIXL_OK)
        rx_fail(c, f->req_id, MIXL_ERR_BACKEND, "copy into device memory failed: %s",
                tcp_stage_error(c));
#else
    (void)c, (void)f;
#endif
}

static void srv_frame_end(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;
    mixl_tcp_frame_t *f = &c->rx;
    int mode = c->rx_mode;

    c->rx_mode = RX_HDR;
    c->rx_hdr_got = 0;
    switch (f->type) {
    case MIXL_TCP_WRITE:
        if (mode == RX_DIRECT || mode == RX_STAGE) {
            pthread_mutex_lock(&tcp->regions_lock);
            tcp_region_t *r = tcp_region_find(tcp, c->rx_region_id);
            if (r == NULL || c->rx_dst < r->addr || c->rx_dst + f->payload_len > r->addr + r->len) {
                rx_fail(c, f->req_id, MIXL_ERR_NOT_REGISTERED,
                        "region %u of agent %s was deregistered while being written", f->region,
                        tcp->name);
            } else if ((f->flags & MIXL_TCP_F_CRC) &&
                       mixl_crc32c(0, mode == RX_STAGE ? c->rx_stage : c->rx_dst, f->payload_len) !=
                           f->crc) {
                rx_fail(c, f->req_id, MIXL_ERR_CHECKSUM,
                        "WRITE payload at offset %llu of region %u fails its CRC32C",
                        (unsigned long long)f->offset, f->region);
            }
#ifdef MIXL_HAVE_CUDA
            else if (mode == RX_STAGE) {
                /* Started under regions_lock: a deregistration that follows
                 * waits for it (tcp_mem_deregister). */
                mixl_status_t st = tcp_stage_rx_commit(c, r->addr + c->rx_region_off,
                                                       f->payload_len, r->device);
                if (st != MIXL_OK)
                    rx_fail(c, f->req_id, st, "copy into device region %u failed: %s", f->region,
                            tcp_stage_error(c));
            }
#endif
            pthread_mutex_unlock(&tcp->regions_lock);
        }
        if (f->flags & MIXL_TCP_F_LAST) {
            srv_stage_drain(c, f);
            answer_end(c, f->req_id);
        }
        break;
    case MIXL_TCP_READ_REQ:
        if (f->flags & MIXL_TCP_F_LAST) answer_end(c, f->req_id);
        break;
    case MIXL_TCP_NOTIF:
        srv_stage_drain(c, f); /* the data before a notification is in place when it is delivered */
        if ((f->flags & MIXL_TCP_F_CRC) && mixl_crc32c(0, c->rx_small, f->payload_len) != f->crc)
            rx_fail(c, f->req_id, MIXL_ERR_CHECKSUM, "notification payload fails its CRC32C");
        if (c->rx_failed && c->rx_failed_req == f->req_id) {
            if (f->flags & MIXL_TCP_F_LAST) answer_end(c, f->req_id);
        } else {
            tcp_answer_t *a = ring_push(c);
            a->kind = MIXL_TCP_ACK;
            a->req_id = f->req_id;
            a->send_ack = (f->flags & MIXL_TCP_F_LAST) != 0;
            a->notif_len = (uint8_t)f->payload_len;
            memcpy(a->notif, c->rx_small, f->payload_len);
            a->deliver = 1;
        }
        break;
    default: break;
    }
}

/* Each frame adds at most two answers: stop reading while they would not
 * fit, so a slow reader throttles its peer. */
static int srv_header_room(tcp_conn_t *c)
{
    return c->ring_count + 2 <= TCP_SRV_RING;
}

/* Payload straight into registered memory: under regions_lock, and only
 * while the region is still there (deregistration bumps regions_gen). */
static int srv_direct_guard(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;

    pthread_mutex_lock(&tcp->regions_lock);
    if (c->rx_region_gen != tcp->regions_gen) {
        tcp_region_t *r = tcp_region_find(tcp, c->rx_region_id);
        if (r == NULL || c->rx_dst < r->addr || c->rx_dst + c->rx.payload_len > r->addr + r->len) {
            pthread_mutex_unlock(&tcp->regions_lock);
            rx_fail(c, c->rx.req_id, MIXL_ERR_NOT_REGISTERED,
                    "region %u of agent %s was deregistered while being written",
                    c->rx_region_id, tcp->name);
            c->rx_mode = RX_DRAIN;
            return 0;
        }
        c->rx_region_gen = tcp->regions_gen;
    }
    return 1;
}

static void srv_direct_unguard(tcp_conn_t *c)
{
    pthread_mutex_unlock(&c->tcp->regions_lock);
}

static const tcp_rx_role_t srv_rx = {
    .frame_begin = srv_frame_begin,
    .frame_end = srv_frame_end,
    .header_room = srv_header_room,
    .direct_guard = srv_direct_guard,
    .direct_unguard = srv_direct_unguard,
    .eof_between_frames_ok = 1,
};

static void srv_read(tcp_conn_t *c)
{
    tcp_conn_rx(c, &srv_rx);
}

/* Next frame from the answer ring; 0 when nothing can be sent now. */
static int srv_next_frame(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;

    while (c->ring_count > 0) {
        tcp_answer_t *a = &c->ring[c->ring_head];
        mixl_tcp_frame_t f;

        memset(&f, 0, sizeof(f));
        f.req_id = a->req_id;
        if (a->kind == MIXL_TCP_READ_RESP) {
            if (c->tx_failed && c->tx_failed_req == a->req_id) {
                ring_pop(c);
                continue;
            }
            uint64_t chunk = a->left < c->max_frame ? a->left : c->max_frame;
            const uint8_t *pay = NULL;
            int region_mem = 0;
            pthread_mutex_lock(&tcp->regions_lock);
            tcp_region_t *r = tcp_region_find(tcp, a->region);
            if (r == NULL || a->offset > r->len || chunk > r->len - a->offset) {
                c->tx_failed = 1;
                c->tx_failed_req = a->req_id;
                c->tx_failed_status = MIXL_ERR_NOT_REGISTERED;
                snprintf(c->tx_failed_msg, sizeof(c->tx_failed_msg),
                         "region %u of agent %s was deregistered while being read", a->region,
                         tcp->name);
                pthread_mutex_unlock(&tcp->regions_lock);
                ring_pop(c);
                continue;
            }
            if (r->mem_type == MIXL_MEM_CUDA) {
#ifdef MIXL_HAVE_CUDA
                /* The answer's next frame is copied ahead while this one is sent. */
                uint64_t rest = a->left - chunk;
                tcp_stage_piece_t now = {r->addr + a->offset, chunk, r->device};
                tcp_stage_piece_t next = {r->addr + a->offset + chunk,
                                          rest < c->max_frame ? rest : c->max_frame, r->device};
                pay = tcp_stage_tx(c, &now, rest > 0 ? &next : NULL);
                if (pay == NULL) {
                    c->tx_failed = 1;
                    c->tx_failed_req = a->req_id;
                    c->tx_failed_status = MIXL_ERR_BACKEND;
                    snprintf(c->tx_failed_msg, sizeof(c->tx_failed_msg),
                             "staging device region %u of agent %s failed: %.40s", a->region,
                             tcp->name, tcp_stage_error(c));
                    pthread_mutex_unlock(&tcp->regions_lock);
                    ring_pop(c);
                    continue;
                }
#endif
            } else {
                pay = r->addr + a->offset;
                region_mem = 1;
            }
            if (a->crc) {
                f.flags |= MIXL_TCP_F_CRC;
                f.crc = mixl_crc32c(0, pay, chunk);
            }
            c->tx.region_gen = tcp->regions_gen;
            pthread_mutex_unlock(&tcp->regions_lock);
            f.type = MIXL_TCP_READ_RESP;
            f.region = a->region;
            f.offset = a->offset;
            f.length = chunk;
            f.payload_len = (uint32_t)chunk;
            tcp_frame_start(c, &f, pay);
            c->tx.region_mem = region_mem;
            c->tx.region_id = a->region;
            a->offset += chunk;
            a->left -= chunk;
            if (a->left == 0) ring_pop(c);
            return 1;
        }
        if (a->kind == MIXL_TCP_ACK && c->tx_failed && c->tx_failed_req == a->req_id) {
            a->kind = MIXL_TCP_ERROR;
            a->status = c->tx_failed_status;
            snprintf(a->msg, sizeof(a->msg), "%s", c->tx_failed_msg);
            a->send_ack = 1;
        }
        if (a->kind == MIXL_TCP_ACK) {
            /* Delivered only now: every earlier answer, READ data included,
             * has left registered memory. */
            if (a->deliver && !tcp_notif_push(tcp, c->peer_name, a->notif, a->notif_len)) {
                atomic_store(&tcp->notif_blocked, 1);
                return 0;
            }
            a->deliver = 0;
            int send = a->send_ack;
            ring_pop(c);
            if (!send) continue;
            f.type = MIXL_TCP_ACK;
            tcp_frame_start(c, &f, NULL);
            return 1;
        }
        /* ERROR */
        f.type = MIXL_TCP_ERROR;
        f.payload_len = (uint32_t)mixl_tcp_error_encode(a->status, a->msg, c->tx_small);
        f.length = f.payload_len;
        ring_pop(c);
        tcp_frame_start(c, &f, c->tx_small);
        return 1;
    }
    return 0;
}

static void srv_update_events(tcp_conn_t *c)
{
    uint32_t ev = 0;

    if (!c->peer_closed && (c->rx_mode != RX_HDR || c->ring_count + 2 <= TCP_SRV_RING))
        ev |= EPOLLIN;
    if (c->tx.active) ev |= EPOLLOUT;
    tcp_conn_set_events(c, ev);
}

static void srv_write(tcp_conn_t *c)
{
    for (;;) {
        if (c->tx.active) {
            int r = tcp_send_frame(c);
            if (r < 0) {
                tcp_conn_io_error(c, " while sending", -1);
                return;
            }
            if (r == 0) break;
        }
        if (!srv_next_frame(c)) break;
    }
    if (!c->tx.active && c->ring_count == 0 && c->peer_closed) {
        tcp_conn_abort(c, MIXL_OK, "peer closed the connection in order");
        return;
    }
    srv_update_events(c);
}

/* ------------------------------------------------------------------------ */
/* Server handshake                                                          */

static void hs_reply(tcp_conn_t *c, uint16_t verdict, const char *text, const uint8_t *auth,
                     uint8_t auth_len)
{
    tcp_t *tcp = c->tcp;
    mixl_tcp_hello_t h;
    uint8_t buf[MIXL_TCP_HELLO_MAX];
    size_t len;

    memset(&h, 0, sizeof(h));
    h.version = MIXL_TCP_VERSION;
    h.caps = c->caps;
    h.max_frame = c->max_frame;
    h.verdict = verdict;
    h.name_len = (uint8_t)strlen(tcp->name);
    memcpy(h.name, tcp->name, h.name_len);
    h.text_len = (uint8_t)(strlen(text) > 255 ? 255 : strlen(text));
    memcpy(h.text, text, h.text_len);
    h.auth_len = auth_len;
    if (auth_len > 0) memcpy(h.auth, auth, auth_len);
    len = mixl_tcp_hello_encode(&h, buf);
    /* A fresh socket's send buffer takes a reply this small at once. */
    ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (w != (ssize_t)len) {
        tcp_conn_abort(c, MIXL_ERR_IO, "handshake reply could not be sent");
        return;
    }
    if (verdict != MIXL_TCP_HELLO_ACCEPT) {
        shutdown(c->fd, SHUT_WR);
        tcp_conn_abort(c, verdict == MIXL_TCP_HELLO_AUTH ? MIXL_ERR_AUTH : MIXL_ERR_PROTOCOL,
                       "handshake refused: %s", text);
    }
}

/* A frame written whole on a socket that has room (handshake replies). */
static int hs_send_frame(tcp_conn_t *c, const mixl_tcp_frame_t *f, const uint8_t *pay)
{
    uint8_t buf[MIXL_TCP_HDR_LEN + MIXL_TCP_ERROR_MAX];

    mixl_tcp_frame_encode(f, buf);
    if (pay != NULL && f->payload_len > 0) memcpy(buf + MIXL_TCP_HDR_LEN, pay, f->payload_len);
    size_t len = MIXL_TCP_HDR_LEN + f->payload_len;
    return send(c->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* Connection ready for frames. */
static void hs_up(tcp_conn_t *c)
{
    atomic_store(&c->state, CONN_UP);
    atomic_fetch_add_explicit(&c->tcp->accepted, 1, memory_order_relaxed);
    mixl_debug("tcp agent %s: accepted agent %s from %s%s", c->tcp->name, c->peer_name, c->where,
               c->tcp->secret_len ? " (authenticated)" : "");
}

/* Stage 1: the client's AUTH frame, the only frame read before it proved
 * the secret. A wrong proof is answered with ERROR and the connection closed. */
static void hs_auth_frame(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;
    const size_t need = MIXL_TCP_HDR_LEN + MIXL_TCP_MAC_LEN;
    mixl_tcp_frame_t f;
    uint8_t mac[MIXL_TCP_MAC_LEN];
    char err[160];

    ssize_t n = recv(c->fd, c->hs_buf + c->hs_got, need - c->hs_got, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        tcp_auth_reject(c, "connection closed before the client proved the secret");
        tcp_conn_io_error(c, " during authentication", n);
        return;
    }
    c->hs_got += (size_t)n;
    if (c->hs_got < need) return;
    int ok = mixl_tcp_frame_decode(c->hs_buf, MIXL_TCP_FRAME_MIN, &f, err, sizeof(err)) == MIXL_OK;
    if (!ok || f.type != MIXL_TCP_AUTH) {
        if (ok) snprintf(err, sizeof(err), "a %s frame before the AUTH frame", mixl_tcp_type_str(f.type));
        tcp_auth_reject(c, err);
        tcp_conn_abort(c, MIXL_ERR_AUTH, "authentication: %s", err);
        return;
    }
    tcp_auth_mac(tcp, 0, c->hs_nonce_c, c->hs_nonce_s, tcp->name, c->peer_name, mac);
    if (!tcp_auth_equal(mac, c->hs_buf + MIXL_TCP_HDR_LEN)) {
        uint8_t pay[MIXL_TCP_ERROR_MAX];
        snprintf(err, sizeof(err), "agent %s: wrong proof of the shared secret (secrets differ, "
                 "or a replayed handshake)", tcp->name);
        memset(&f, 0, sizeof(f));
        f.type = MIXL_TCP_ERROR;
        f.payload_len = (uint32_t)mixl_tcp_error_encode(MIXL_ERR_AUTH, err, pay);
        f.length = f.payload_len;
        tcp_auth_reject(c, "wrong proof of the shared secret (secrets differ, or a replayed "
                           "handshake)");
        (void)hs_send_frame(c, &f, pay);
        shutdown(c->fd, SHUT_WR);
        tcp_conn_abort(c, MIXL_ERR_AUTH, "authentication failed");
        return;
    }
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_ACK;
    if (!hs_send_frame(c, &f, NULL)) {
        tcp_conn_abort(c, MIXL_ERR_IO, "authentication answer could not be sent");
        return;
    }
    hs_up(c);
}

void tcp_server_handshake(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;
    size_t need = MIXL_TCP_HELLO_FIXED;
    char err[200], text[256];
    mixl_tcp_hello_t h;

    if (c->hs_stage == 1) {
        hs_auth_frame(c);
        return;
    }
    if (c->hs_got >= MIXL_TCP_HELLO_FIXED &&
        mixl_tcp_hello_need(c->hs_buf, c->hs_got, &need, err, sizeof(err)) != MIXL_OK)
        need = c->hs_got;
    ssize_t n = recv(c->fd, c->hs_buf + c->hs_got, need - c->hs_got, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        tcp_conn_io_error(c, " during the handshake", n);
        return;
    }
    c->hs_got += (size_t)n;
    if (c->hs_got < MIXL_TCP_HELLO_FIXED) return;
    if (mixl_tcp_hello_need(c->hs_buf, c->hs_got, &need, err, sizeof(err)) != MIXL_OK) {
        hs_reply(c, MIXL_TCP_HELLO_MALFORMED, err, NULL, 0);
        return;
    }
    if (c->hs_got < need) return;
    if (mixl_tcp_hello_decode(c->hs_buf, c->hs_got, &h, err, sizeof(err)) != MIXL_OK) {
        hs_reply(c, MIXL_TCP_HELLO_MALFORMED, err, NULL, 0);
        return;
    }
    snprintf(c->peer_name, sizeof(c->peer_name), "%.63s", h.name);
    if (h.version != MIXL_TCP_VERSION) {
        snprintf(text, sizeof(text),
                 "protocol version %u refused: agent %s speaks MIXL TCP protocol version %u",
                 h.version, tcp->name, MIXL_TCP_VERSION);
        hs_reply(c, MIXL_TCP_HELLO_BAD_VERSION, text, NULL, 0);
        return;
    }
    if (strcmp(h.text, tcp->name) != 0) {
        snprintf(text, sizeof(text), "this is agent %s, not %.63s", tcp->name, h.text);
        hs_reply(c, MIXL_TCP_HELLO_WRONG_AGENT, text, NULL, 0);
        return;
    }
    if (h.max_frame < MIXL_TCP_FRAME_MIN || h.max_frame > MIXL_TCP_FRAME_MAX) {
        snprintf(text, sizeof(text), "frame size %u outside %u..%u", h.max_frame,
                 MIXL_TCP_FRAME_MIN, MIXL_TCP_FRAME_MAX);
        hs_reply(c, MIXL_TCP_HELLO_MALFORMED, text, NULL, 0);
        return;
    }
    if (tcp->secret_len > 0 && (!(h.caps & MIXL_TCP_CAP_AUTH) || h.auth_len != MIXL_TCP_NONCE_LEN)) {
        snprintf(text, sizeof(text), "agent %s requires authentication with the job's secret",
                 tcp->name);
        tcp_auth_reject(c, "no authentication offered (the client has no secret)");
        hs_reply(c, MIXL_TCP_HELLO_AUTH, text, NULL, 0);
        return;
    }
    c->caps = h.caps & tcp->caps;
    c->max_frame = h.max_frame < tcp->max_frame ? h.max_frame : tcp->max_frame;
    if (!tcp_conn_buffers(c)) {
        tcp_conn_abort(c, MIXL_ERR_NO_MEMORY, "no memory for connection buffers");
        return;
    }
    if (tcp->secret_len == 0) {
        hs_reply(c, MIXL_TCP_HELLO_ACCEPT, "", NULL, 0);
        if (atomic_load(&c->state) != CONN_DEAD) hs_up(c);
        return;
    }
    /* Challenge-response: our nonce and our proof; the client answers with
     * its proof over both nonces before anything else is read. */
    uint8_t auth[MIXL_TCP_AUTH_MAX];
    memcpy(c->hs_nonce_c, h.auth, MIXL_TCP_NONCE_LEN);
    if (!tcp_auth_nonce(c->hs_nonce_s)) {
        tcp_conn_abort(c, MIXL_ERR_BACKEND, "no random bytes for the handshake nonce");
        return;
    }
    memcpy(auth, c->hs_nonce_s, MIXL_TCP_NONCE_LEN);
    tcp_auth_mac(tcp, 1, c->hs_nonce_c, c->hs_nonce_s, tcp->name, c->peer_name,
                 auth + MIXL_TCP_NONCE_LEN);
    hs_reply(c, MIXL_TCP_HELLO_ACCEPT, "", auth, MIXL_TCP_AUTH_MAX);
    if (atomic_load(&c->state) == CONN_DEAD) return;
    c->hs_stage = 1;
    c->hs_got = 0;
}

void tcp_server_readable(tcp_conn_t *c)
{
    /* Frames read ahead wait in the connection, where epoll cannot see
     * them: once answers made room, serve them now. */
    do {
        srv_read(c);
        if (atomic_load(&c->state) == CONN_UP) srv_write(c);
    } while (atomic_load(&c->state) == CONN_UP && c->ahead_len > 0 && !c->peer_closed &&
             c->rx_mode == RX_HDR && srv_header_room(c));
}

void tcp_server_writable(tcp_conn_t *c)
{
    srv_write(c);
    /* Room in the ring again: bytes may be waiting in the socket. */
    if (atomic_load(&c->state) == CONN_UP && (c->ev & EPOLLIN)) srv_read(c);
    if (atomic_load(&c->state) == CONN_UP) srv_write(c);
}

