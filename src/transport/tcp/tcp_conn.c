/*
 * Connection handlers run by the progress thread: the server side (frames
 * from a peer that writes into or reads from our registered memory) and the
 * client side (our posted transfers going out, answers coming back).
 *
 * Payloads are received straight into their final place: registered memory
 * on the server, the transfer's local span on the client. Only device memory
 * goes through a pinned staging buffer, and bytes that must not land anywhere
 * (a refused request, an answer nobody waits for) are drained into scratch.
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

tcp_conn_t *tcp_conn_new(tcp_t *tcp, int fd, int role)
{
    tcp_conn_t *c = calloc(1, sizeof(*c));

    if (c == NULL) return NULL;
    c->tcp = tcp;
    c->fd = fd;
    c->role = role;
    c->max_frame = tcp->max_frame;
    atomic_init(&c->state, CONN_HANDSHAKE);
    pthread_mutex_init(&c->lock, NULL);
    if (role == ROLE_SERVER) {
        c->ring = calloc(TCP_SRV_RING, sizeof(*c->ring));
        if (c->ring == NULL) goto err_free;
    } else {
        c->slots = calloc(TCP_SLOTS, sizeof(*c->slots));
        c->slot_gen = calloc(TCP_SLOTS, sizeof(*c->slot_gen));
        c->free_slots = calloc(TCP_SLOTS, sizeof(*c->free_slots));
        if (c->slots == NULL || c->slot_gen == NULL || c->free_slots == NULL) goto err_free;
        for (unsigned i = 0; i < TCP_SLOTS; i++) c->free_slots[i] = TCP_SLOTS - 1 - i;
        c->nfree = TCP_SLOTS;
    }
    return c;

err_free:
    tcp_conn_free(c);
    return NULL;
}

void tcp_conn_free(tcp_conn_t *c)
{
    if (c == NULL) return;
    if (c->fd >= 0) close(c->fd);
    free(c->ring);
    free(c->slots);
    free(c->slot_gen);
    free(c->free_slots);
    free(c->scratch);
#ifdef MIXL_HAVE_CUDA
    if (c->stage != NULL) tcp_cuda_host_free(c->stage);
#endif
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Buffers sized by the negotiated frame size, made once the handshake agreed on it. */
static int conn_buffers(tcp_conn_t *c)
{
    if (c->scratch == NULL) c->scratch = malloc(c->max_frame);
    return c->scratch != NULL;
}

#ifdef MIXL_HAVE_CUDA
static uint8_t *conn_stage(tcp_conn_t *c)
{
    if (c->stage == NULL) c->stage = tcp_cuda_host_alloc(c->max_frame);
    return c->stage;
}
#endif

/* ------------------------------------------------------------------------ */
/* Failure and teardown                                                      */

static void xfer_finish(tcp_xfer_t *xf, mixl_status_t st)
{
    atomic_store_explicit(&xf->status, st, memory_order_release);
}

static void slot_release(tcp_conn_t *c, tcp_xfer_t *xf)
{
    c->slots[xf->slot] = NULL;
    c->free_slots[c->nfree++] = xf->slot;
    c->inflight--;
}

static void fail_xfer(tcp_xfer_t *xf, mixl_status_t st, uint64_t now, const char *msg)
{
    if (now >= xf->deadline_ns) st = MIXL_ERR_TIMED_OUT;
    snprintf(xf->err, sizeof(xf->err), "%s", msg);
    xfer_finish(xf, st);
}

void tcp_conn_abort(tcp_conn_t *c, mixl_status_t status, const char *fmt, ...)
{
    tcp_t *tcp = c->tcp;
    char why[TCP_ERR_LEN], msg[TCP_ERR_LEN];
    va_list ap;
    uint64_t now = mixl_now_ns();
    tcp_xfer_t *q;

    if (atomic_load(&c->state) == CONN_DEAD) return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof(msg), "tcp %s agent %s (%.60s): %.100s",
             c->role == ROLE_CLIENT ? "connection to" : "connection from",
             c->peer_name[0] ? c->peer_name : "?", c->where, why);
    pthread_mutex_lock(&c->lock);
    int affected = c->q_head != NULL || c->inflight > 0;
    pthread_mutex_unlock(&c->lock);
    /* An error only where it costs a transfer or came from a bad peer; an
     * idle connection whose peer went away is news, not an error. */
    if (status == MIXL_OK)
        mixl_debug("%s", msg);
    else if (c->role == ROLE_CLIENT && affected)
        mixl_error("%s (%s)", msg, mixl_status_str(status));
    else if (c->role == ROLE_CLIENT || status == MIXL_ERR_DISCONNECTED)
        mixl_info("%s (%s)", msg, mixl_status_str(status));
    else
        mixl_warn("%s (%s)", msg, mixl_status_str(status));

    pthread_mutex_lock(&c->lock);
    atomic_store(&c->state, CONN_DEAD);
    c->dead_status = status == MIXL_OK ? MIXL_ERR_DISCONNECTED : status;
    snprintf(c->dead_msg, sizeof(c->dead_msg), "%s", msg);
    q = c->q_head;
    c->q_head = c->q_tail = NULL;
    pthread_mutex_unlock(&c->lock);

    if (c->role == ROLE_CLIENT) {
        mixl_status_t st = status == MIXL_OK ? MIXL_ERR_DISCONNECTED : status;
        while (q != NULL) {
            tcp_xfer_t *next = q->next;
            fail_xfer(q, st, now, msg);
            q = next;
        }
        c->tx_cur = NULL;
        for (unsigned i = 0; i < TCP_SLOTS; i++) {
            tcp_xfer_t *xf = c->slots[i];
            if (xf == NULL) continue;
            slot_release(c, xf);
            fail_xfer(xf, st, now, msg);
        }
    }
    c->tx.active = 0;
    tcp_engine_detach(tcp, c);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->role == ROLE_SERVER) {
        c->next_dead = tcp->dead;
        tcp->dead = c;
    }
}

static void conn_io_error(tcp_conn_t *c, const char *where, ssize_t n)
{
    if (n == 0)
        tcp_conn_abort(c, MIXL_ERR_DISCONNECTED, "peer closed the connection%s", where);
    else
        tcp_conn_abort(c, MIXL_ERR_DISCONNECTED, "%s%s", strerror(errno), where);
}

/* ------------------------------------------------------------------------ */
/* Writing frames                                                            */

/* 1: frame sent, 0: socket full, -1: error (errno set). */
static int send_frame(tcp_conn_t *c)
{
    tcp_txframe_t *t = &c->tx;
    tcp_t *tcp = c->tcp;

    for (;;) {
        struct iovec iov[2];
        struct msghdr mh;
        int n = 0, locked = 0;
        ssize_t w;

        memset(&mh, 0, sizeof(mh));
        if (t->hdr_sent < t->hdr_len) {
            iov[n].iov_base = t->hdr + t->hdr_sent;
            iov[n++].iov_len = t->hdr_len - t->hdr_sent;
        }
        if (t->pay_sent < t->pay_len) {
            if (t->region_mem) {
                pthread_mutex_lock(&tcp->regions_lock);
                locked = 1;
                if (tcp->regions_gen != t->region_gen) {
                    /* The region went away mid-frame: finish the frame with
                     * zeros and fail the request it belongs to. */
                    tcp_region_t *r = tcp_region_find(tcp, t->region_id);
                    if (r == NULL || t->pay < r->addr || t->pay + t->pay_len > r->addr + r->len) {
                        memset(c->scratch, 0, t->pay_len);
                        t->pay = c->scratch;
                        t->region_mem = 0;
                        c->tx_failed = 1;
                        c->tx_failed_req = mixl_tcp_get_u64(t->hdr + 8);
                        c->tx_failed_status = MIXL_ERR_NOT_REGISTERED;
                        snprintf(c->tx_failed_msg, sizeof(c->tx_failed_msg),
                                 "region %u of agent %s was deregistered while being read",
                                 t->region_id, tcp->name);
                    } else {
                        t->region_gen = tcp->regions_gen;
                    }
                }
            }
            iov[n].iov_base = (void *)(t->pay + t->pay_sent);
            iov[n++].iov_len = t->pay_len - t->pay_sent;
        }
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        w = n > 0 ? sendmsg(c->fd, &mh, MSG_NOSIGNAL) : 0;
        if (locked) pthread_mutex_unlock(&tcp->regions_lock);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            return -1;
        }
        size_t adv = (size_t)w, h = t->hdr_len - t->hdr_sent;
        if (h > adv) h = adv;
        t->hdr_sent += h;
        t->pay_sent += adv - h;
        if (t->hdr_sent == t->hdr_len && t->pay_sent == t->pay_len) {
            t->active = 0;
            return 1;
        }
    }
}

static void frame_start(tcp_conn_t *c, const mixl_tcp_frame_t *f, const uint8_t *pay)
{
    mixl_tcp_frame_encode(f, c->tx.hdr);
    c->tx.hdr_len = MIXL_TCP_HDR_LEN;
    c->tx.hdr_sent = 0;
    c->tx.pay = pay;
    c->tx.pay_len = f->payload_len;
    c->tx.pay_sent = 0;
    c->tx.region_mem = 0;
    c->tx.active = 1;
}

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
        }
        pthread_mutex_unlock(&tcp->regions_lock);
#ifdef MIXL_HAVE_CUDA
        if (c->rx_mode == RX_STAGE && conn_stage(c) == NULL) {
            rx_fail(c, f->req_id, MIXL_ERR_NO_MEMORY, "no pinned staging buffer for region %u",
                    f->region);
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
            if (r == NULL) {
                rx_fail(c, f->req_id, MIXL_ERR_NOT_REGISTERED,
                        "region %u of agent %s was deregistered while being written", f->region,
                        tcp->name);
            } else if ((f->flags & MIXL_TCP_F_CRC) &&
                       mixl_crc32c(0, mode == RX_STAGE ? c->stage : c->rx_dst, f->payload_len) !=
                           f->crc) {
                rx_fail(c, f->req_id, MIXL_ERR_CHECKSUM,
                        "WRITE payload at offset %llu of region %u fails its CRC32C",
                        (unsigned long long)f->offset, f->region);
            }
#ifdef MIXL_HAVE_CUDA
            else if (mode == RX_STAGE) {
                mixl_status_t st = tcp_cuda_from_host(r->addr + c->rx_region_off, c->stage,
                                                      f->payload_len, r->device);
                if (st != MIXL_OK)
                    rx_fail(c, f->req_id, st, "copy into device region %u failed", f->region);
            }
#endif
            pthread_mutex_unlock(&tcp->regions_lock);
        }
        if (f->flags & MIXL_TCP_F_LAST) answer_end(c, f->req_id);
        break;
    case MIXL_TCP_READ_REQ:
        if (f->flags & MIXL_TCP_F_LAST) answer_end(c, f->req_id);
        break;
    case MIXL_TCP_NOTIF:
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

static void srv_read(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;
    size_t budget = TCP_READ_BUDGET;

    while (budget > 0 && atomic_load(&c->state) == CONN_UP && !c->peer_closed) {
        ssize_t n;

        if (c->rx_mode == RX_HDR) {
            /* Each frame adds at most two answers: stop reading while they
             * would not fit, so a slow reader throttles its peer. */
            if (c->ring_count + 2 > TCP_SRV_RING) return;
            n = recv(c->fd, c->rx_hdr + c->rx_hdr_got, MIXL_TCP_HDR_LEN - c->rx_hdr_got, 0);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
                if (n == 0 && c->rx_hdr_got == 0) {
                    tcp_conn_abort(c, MIXL_OK, "peer closed the connection");
                    return;
                }
                conn_io_error(c, c->rx_hdr_got ? " inside a frame header" : "", n);
                return;
            }
            c->rx_hdr_got += (size_t)n;
            if (c->rx_hdr_got < MIXL_TCP_HDR_LEN) continue;
            char err[160];
            mixl_status_t st = mixl_tcp_frame_decode(c->rx_hdr, c->max_frame, &c->rx, err, sizeof(err));
            if (st != MIXL_OK) {
                tcp_conn_abort(c, st, "bad frame header: %s", err);
                return;
            }
            srv_frame_begin(c);
            if (atomic_load(&c->state) != CONN_UP) return;
            if (c->rx.payload_len == 0) srv_frame_end(c);
            continue;
        }

        uint64_t want = c->rx.payload_len - c->rx_got;
        switch (c->rx_mode) {
        case RX_DIRECT:
            pthread_mutex_lock(&tcp->regions_lock);
            if (c->rx_region_gen != tcp->regions_gen) {
                tcp_region_t *r = tcp_region_find(tcp, c->rx_region_id);
                if (r == NULL || c->rx_dst < r->addr ||
                    c->rx_dst + c->rx.payload_len > r->addr + r->len) {
                    pthread_mutex_unlock(&tcp->regions_lock);
                    rx_fail(c, c->rx.req_id, MIXL_ERR_NOT_REGISTERED,
                            "region %u of agent %s was deregistered while being written",
                            c->rx_region_id, tcp->name);
                    c->rx_mode = RX_DRAIN;
                    continue;
                }
                c->rx_region_gen = tcp->regions_gen;
            }
            n = recv(c->fd, c->rx_dst + c->rx_got, want, 0);
            pthread_mutex_unlock(&tcp->regions_lock);
            break;
        case RX_STAGE: n = recv(c->fd, c->stage + c->rx_got, want, 0); break;
        case RX_SMALL: n = recv(c->fd, c->rx_small + c->rx_got, want, 0); break;
        default: n = recv(c->fd, c->scratch, want, 0); break;
        }
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
            conn_io_error(c, " inside a frame", n);
            return;
        }
        c->rx_got += (uint64_t)n;
        budget -= (size_t)n < budget ? (size_t)n : budget;
        if (c->rx_got == c->rx.payload_len) srv_frame_end(c);
    }
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
                mixl_status_t st = conn_stage(c) == NULL ? MIXL_ERR_NO_MEMORY
                                                          : tcp_cuda_to_host(c->stage, r->addr + a->offset,
                                                                             chunk, r->device);
                if (st != MIXL_OK) {
                    c->tx_failed = 1;
                    c->tx_failed_req = a->req_id;
                    c->tx_failed_status = st;
                    snprintf(c->tx_failed_msg, sizeof(c->tx_failed_msg),
                             "staging device region %u of agent %s failed", a->region, tcp->name);
                    pthread_mutex_unlock(&tcp->regions_lock);
                    ring_pop(c);
                    continue;
                }
                pay = c->stage;
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
            frame_start(c, &f, pay);
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
            frame_start(c, &f, NULL);
            return 1;
        }
        /* ERROR */
        f.type = MIXL_TCP_ERROR;
        f.payload_len = (uint32_t)mixl_tcp_error_encode(a->status, a->msg, c->tx_small);
        f.length = f.payload_len;
        ring_pop(c);
        frame_start(c, &f, c->tx_small);
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
            int r = send_frame(c);
            if (r < 0) {
                conn_io_error(c, " while sending", -1);
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
/* Client side                                                               */

static tcp_xfer_t *cli_lookup(tcp_conn_t *c, uint64_t req)
{
    uint64_t slot = req & 0xffffffffu;

    if (slot >= TCP_SLOTS || c->slots[slot] == NULL || c->slots[slot]->req_id != req) return NULL;
    return c->slots[slot];
}

static void cli_complete(tcp_conn_t *c, tcp_xfer_t *xf, mixl_status_t st)
{
    slot_release(c, xf);
    xfer_finish(xf, st);
}

/* Frame the next piece of the current transfer; 0 when it has no more. */
static int cli_next_piece(tcp_conn_t *c, tcp_xfer_t *xf)
{
    tcp_t *tcp = c->tcp;
    mixl_tp_xfer_t *x = xf->x;
    mixl_tcp_frame_t f;
    int crc = tcp->use_crc && (c->caps & MIXL_TCP_CAP_CRC32C);

    memset(&f, 0, sizeof(f));
    f.req_id = xf->req_id;
    if (xf->tx_op < x->nops) {
        const mixl_tp_op_t *op = &x->ops[xf->tx_op];
        int last_op = xf->tx_op + 1 == x->nops && x->notif_len == 0 && !xf->notif_always;
        f.region = op->remote_region->id;
        f.offset = op->remote_addr - op->remote_region->addr + xf->tx_off;
        if (x->op == MIXL_OP_READ) {
            f.type = MIXL_TCP_READ_REQ;
            f.length = op->len;
            if (crc) f.flags |= MIXL_TCP_F_CRC;
            if (last_op) f.flags |= MIXL_TCP_F_LAST;
            xf->tx_op++;
            frame_start(c, &f, NULL);
            return 1;
        }
        uint64_t left = op->len - xf->tx_off;
        uint64_t chunk = left < c->max_frame ? left : c->max_frame;
        const uint8_t *pay = (const uint8_t *)(uintptr_t)op->local_addr + xf->tx_off;
        if (op->local_region->mem_type == MIXL_MEM_CUDA) {
#ifdef MIXL_HAVE_CUDA
            if (conn_stage(c) == NULL ||
                tcp_cuda_to_host(c->stage, pay, chunk, op->local_region->device) != MIXL_OK) {
                tcp_conn_abort(c, MIXL_ERR_BACKEND, "staging local device memory failed");
                return 0;
            }
            pay = c->stage;
#endif
        }
        f.type = MIXL_TCP_WRITE;
        f.length = chunk;
        f.payload_len = (uint32_t)chunk;
        if (crc) {
            f.flags |= MIXL_TCP_F_CRC;
            f.crc = mixl_crc32c(0, pay, chunk);
        }
        xf->tx_off += chunk;
        if (xf->tx_off == op->len) {
            xf->tx_op++;
            xf->tx_off = 0;
            if (last_op) f.flags |= MIXL_TCP_F_LAST;
        }
        frame_start(c, &f, pay);
        return 1;
    }
    if ((x->notif_len > 0 || xf->notif_always) && !xf->tx_notif_done) {
        f.type = MIXL_TCP_NOTIF;
        f.flags = MIXL_TCP_F_LAST;
        f.payload_len = x->notif_len;
        f.length = x->notif_len;
        if (crc) {
            f.flags |= MIXL_TCP_F_CRC;
            f.crc = mixl_crc32c(0, x->notif, x->notif_len);
        }
        xf->tx_notif_done = 1;
        frame_start(c, &f, x->notif);
        return 1;
    }
    return 0;
}

static void cli_update_events(tcp_conn_t *c)
{
    tcp_conn_set_events(c, EPOLLIN | (c->tx.active ? EPOLLOUT : 0));
}

static void cli_write(tcp_conn_t *c)
{
    for (;;) {
        if (c->tx.active) {
            int r = send_frame(c);
            if (r < 0) {
                conn_io_error(c, " while sending", -1);
                return;
            }
            if (r == 0) break;
        }
        if (c->tx_cur == NULL) {
            if (c->nfree == 0) break; /* answers will free slots */
            pthread_mutex_lock(&c->lock);
            tcp_xfer_t *xf = c->q_head;
            if (xf != NULL) {
                c->q_head = xf->next;
                if (c->q_head == NULL) c->q_tail = NULL;
            }
            pthread_mutex_unlock(&c->lock);
            if (xf == NULL) break;
            uint32_t s = c->free_slots[--c->nfree];
            c->slot_gen[s]++;
            xf->slot = s;
            xf->req_id = ((uint64_t)c->slot_gen[s] << 32) | s;
            c->slots[s] = xf;
            c->inflight++;
            c->tx_cur = xf;
        }
        if (!cli_next_piece(c, c->tx_cur)) {
            if (atomic_load(&c->state) != CONN_UP) return;
            c->tx_cur = NULL;
        }
    }
    cli_update_events(c);
}

static void cli_frame_begin(tcp_conn_t *c)
{
    mixl_tcp_frame_t *f = &c->rx;
    tcp_xfer_t *xf = cli_lookup(c, f->req_id);

    c->rx_got = 0;
    c->rx_xfer = xf;
    switch (f->type) {
    case MIXL_TCP_READ_RESP: {
        c->rx_mode = RX_DRAIN;
        if (xf == NULL || xf->x->op != MIXL_OP_READ) {
            c->stale_frames++;
            return;
        }
        mixl_tp_xfer_t *x = xf->x;
        const mixl_tp_op_t *op = xf->rx_op < x->nops ? &x->ops[xf->rx_op] : NULL;
        if (op == NULL || xf->rx_op >= xf->tx_op || f->region != op->remote_region->id ||
            f->offset != op->remote_addr - op->remote_region->addr + xf->rx_off ||
            f->payload_len > op->len - xf->rx_off) {
            tcp_conn_abort(c, MIXL_ERR_PROTOCOL,
                           "READ_RESP for request 0x%llx (region %u offset %llu, %u bytes) does "
                           "not match what was asked",
                           (unsigned long long)f->req_id, f->region,
                           (unsigned long long)f->offset, f->payload_len);
            return;
        }
        c->rx_dst = (uint8_t *)(uintptr_t)op->local_addr + xf->rx_off;
        c->rx_mode = RX_DIRECT;
#ifdef MIXL_HAVE_CUDA
        if (op->local_region->mem_type == MIXL_MEM_CUDA) {
            if (conn_stage(c) == NULL) {
                tcp_conn_abort(c, MIXL_ERR_NO_MEMORY, "no pinned staging buffer");
                return;
            }
            c->rx_mode = RX_STAGE;
        }
#endif
        return;
    }
    case MIXL_TCP_ERROR: c->rx_mode = RX_SMALL; return;
    case MIXL_TCP_ACK:
        c->rx_mode = RX_HDR;
        if (xf == NULL) {
            c->stale_frames++;
            return;
        }
        if (xf == c->tx_cur || (xf->x->op == MIXL_OP_READ && xf->rx_op < xf->x->nops)) {
            tcp_conn_abort(c, MIXL_ERR_PROTOCOL, "ACK for request 0x%llx before all its data",
                           (unsigned long long)f->req_id);
            return;
        }
        cli_complete(c, xf, xf->early);
        return;
    case MIXL_TCP_CLOSE:
        c->rx_mode = RX_HDR;
        tcp_conn_abort(c, MIXL_ERR_DISCONNECTED, "peer closed the connection");
        return;
    default:
        tcp_conn_abort(c, MIXL_ERR_PROTOCOL, "frame type %s is not valid from a server",
                       mixl_tcp_type_str(f->type));
        return;
    }
}

static void cli_frame_end(tcp_conn_t *c)
{
    mixl_tcp_frame_t *f = &c->rx;
    tcp_xfer_t *xf = c->rx_xfer;
    int mode = c->rx_mode;

    c->rx_mode = RX_HDR;
    c->rx_hdr_got = 0;
    if (f->type == MIXL_TCP_READ_RESP && (mode == RX_DIRECT || mode == RX_STAGE)) {
        const mixl_tp_op_t *op = &xf->x->ops[xf->rx_op];
        const uint8_t *got = mode == RX_STAGE ? c->stage : c->rx_dst;
        if ((f->flags & MIXL_TCP_F_CRC) && mixl_crc32c(0, got, f->payload_len) != f->crc &&
            xf->early == MIXL_OK) {
            xf->early = MIXL_ERR_CHECKSUM;
            snprintf(xf->err, sizeof(xf->err),
                     "READ from agent %s: data at offset %llu of region %u fails its CRC32C",
                     c->peer_name, (unsigned long long)f->offset, f->region);
        }
#ifdef MIXL_HAVE_CUDA
        if (mode == RX_STAGE &&
            tcp_cuda_from_host(c->rx_dst, c->stage, f->payload_len, op->local_region->device) !=
                MIXL_OK &&
            xf->early == MIXL_OK) {
            xf->early = MIXL_ERR_BACKEND;
            snprintf(xf->err, sizeof(xf->err), "copy into local device memory failed");
        }
#endif
        xf->rx_off += f->payload_len;
        if (xf->rx_off == op->len) {
            xf->rx_op++;
            xf->rx_off = 0;
        }
    } else if (f->type == MIXL_TCP_ERROR) {
        char msg[MIXL_TCP_ERROR_MAX];
        mixl_status_t st = mixl_tcp_error_decode(c->rx_small, f->payload_len, msg, sizeof(msg));
        if (xf == NULL) {
            c->stale_frames++;
            return;
        }
        if (xf == c->tx_cur) {
            tcp_conn_abort(c, MIXL_ERR_PROTOCOL, "ERROR for request 0x%llx before its last frame",
                           (unsigned long long)f->req_id);
            return;
        }
        snprintf(xf->err, sizeof(xf->err), "agent %s refused the transfer: %.150s", c->peer_name,
                 msg);
        cli_complete(c, xf, st);
    }
}

static void cli_read(tcp_conn_t *c)
{
    size_t budget = TCP_READ_BUDGET;

    while (budget > 0 && atomic_load(&c->state) == CONN_UP) {
        ssize_t n;

        if (c->rx_mode == RX_HDR) {
            n = recv(c->fd, c->rx_hdr + c->rx_hdr_got, MIXL_TCP_HDR_LEN - c->rx_hdr_got, 0);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
                conn_io_error(c, c->rx_hdr_got ? " inside a frame header" : "", n);
                return;
            }
            c->rx_hdr_got += (size_t)n;
            if (c->rx_hdr_got < MIXL_TCP_HDR_LEN) continue;
            char err[160];
            mixl_status_t st = mixl_tcp_frame_decode(c->rx_hdr, c->max_frame, &c->rx, err, sizeof(err));
            if (st != MIXL_OK) {
                tcp_conn_abort(c, st, "bad frame header: %s", err);
                return;
            }
            cli_frame_begin(c);
            if (atomic_load(&c->state) != CONN_UP) return;
            if (c->rx_mode == RX_HDR) {
                c->rx_hdr_got = 0;
                continue;
            }
            if (c->rx.payload_len == 0) cli_frame_end(c);
            continue;
        }
        uint64_t want = c->rx.payload_len - c->rx_got;
        uint8_t *dst;
        switch (c->rx_mode) {
        case RX_DIRECT: dst = c->rx_dst + c->rx_got; break;
        case RX_STAGE: dst = c->stage + c->rx_got; break;
        case RX_SMALL: dst = c->rx_small + c->rx_got; break;
        default: dst = c->scratch; break;
        }
        n = recv(c->fd, dst, want, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
            conn_io_error(c, " inside a frame", n);
            return;
        }
        c->rx_got += (uint64_t)n;
        budget -= (size_t)n < budget ? (size_t)n : budget;
        if (c->rx_got == c->rx.payload_len) cli_frame_end(c);
    }
    /* Answers free slots: queued transfers may go now. */
    if (atomic_load(&c->state) == CONN_UP) cli_write(c);
}

void tcp_conn_check_deadlines(tcp_conn_t *c, uint64_t now)
{
    tcp_xfer_t *late = NULL;

    if (c->role != ROLE_CLIENT || atomic_load(&c->state) != CONN_UP) return;
    if (c->tx_cur != NULL && now >= c->tx_cur->deadline_ns) late = c->tx_cur;
    for (unsigned i = 0; late == NULL && c->inflight > 0 && i < TCP_SLOTS; i++)
        if (c->slots[i] != NULL && now >= c->slots[i]->deadline_ns) late = c->slots[i];
    if (late == NULL) {
        pthread_mutex_lock(&c->lock);
        for (tcp_xfer_t *q = c->q_head; q != NULL && late == NULL; q = q->next)
            if (now >= q->deadline_ns) late = q;
        pthread_mutex_unlock(&c->lock);
    }
    /* A peer that does not answer in time is treated as failed: the stream
     * may be mid-frame, so the connection cannot carry other transfers. */
    if (late != NULL)
        tcp_conn_abort(c, MIXL_ERR_TIMED_OUT, "no answer within %d ms", c->tcp->timeout_ms);
}

/* ------------------------------------------------------------------------ */

void tcp_conn_readable(tcp_conn_t *c)
{
    if (atomic_load(&c->state) == CONN_HANDSHAKE) {
        tcp_conn_handshake(c);
        return;
    }
    if (atomic_load(&c->state) != CONN_UP) return;
    if (c->role == ROLE_SERVER) {
        srv_read(c);
        if (atomic_load(&c->state) == CONN_UP) srv_write(c);
    } else {
        cli_read(c);
    }
}

void tcp_conn_writable(tcp_conn_t *c)
{
    if (atomic_load(&c->state) != CONN_UP) return;
    if (c->role == ROLE_SERVER) {
        srv_write(c);
        /* Room in the ring again: bytes may be waiting in the socket. */
        if (atomic_load(&c->state) == CONN_UP && (c->ev & EPOLLIN)) srv_read(c);
        if (atomic_load(&c->state) == CONN_UP) srv_write(c);
    } else {
        cli_write(c);
    }
}

/* ------------------------------------------------------------------------ */
/* Server handshake                                                          */

static void hs_reply(tcp_conn_t *c, uint16_t verdict, const char *text)
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
    len = mixl_tcp_hello_encode(&h, buf);
    /* A fresh socket's send buffer takes a reply this small at once. */
    ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (w != (ssize_t)len) {
        tcp_conn_abort(c, MIXL_ERR_IO, "handshake reply could not be sent");
        return;
    }
    if (verdict != MIXL_TCP_HELLO_ACCEPT) {
        shutdown(c->fd, SHUT_WR);
        tcp_conn_abort(c, MIXL_ERR_PROTOCOL, "handshake refused: %s", text);
    }
}

void tcp_conn_handshake(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;
    size_t need = MIXL_TCP_HELLO_FIXED;
    char err[200], text[256];
    mixl_tcp_hello_t h;

    if (c->hs_got >= MIXL_TCP_HELLO_FIXED &&
        mixl_tcp_hello_need(c->hs_buf, c->hs_got, &need, err, sizeof(err)) != MIXL_OK)
        need = c->hs_got;
    ssize_t n = recv(c->fd, c->hs_buf + c->hs_got, need - c->hs_got, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        conn_io_error(c, " during the handshake", n);
        return;
    }
    c->hs_got += (size_t)n;
    if (c->hs_got < MIXL_TCP_HELLO_FIXED) return;
    if (mixl_tcp_hello_need(c->hs_buf, c->hs_got, &need, err, sizeof(err)) != MIXL_OK) {
        hs_reply(c, MIXL_TCP_HELLO_MALFORMED, err);
        return;
    }
    if (c->hs_got < need) return;
    if (mixl_tcp_hello_decode(c->hs_buf, c->hs_got, &h, err, sizeof(err)) != MIXL_OK) {
        hs_reply(c, MIXL_TCP_HELLO_MALFORMED, err);
        return;
    }
    snprintf(c->peer_name, sizeof(c->peer_name), "%.63s", h.name);
    if (h.version != MIXL_TCP_VERSION) {
        snprintf(text, sizeof(text),
                 "protocol version %u refused: agent %s speaks MIXL TCP protocol version %u",
                 h.version, tcp->name, MIXL_TCP_VERSION);
        hs_reply(c, MIXL_TCP_HELLO_BAD_VERSION, text);
        return;
    }
    if (strcmp(h.text, tcp->name) != 0) {
        snprintf(text, sizeof(text), "this is agent %s, not %.63s", tcp->name, h.text);
        hs_reply(c, MIXL_TCP_HELLO_WRONG_AGENT, text);
        return;
    }
    if (h.max_frame < MIXL_TCP_FRAME_MIN || h.max_frame > MIXL_TCP_FRAME_MAX) {
        snprintf(text, sizeof(text), "frame size %u outside %u..%u", h.max_frame,
                 MIXL_TCP_FRAME_MIN, MIXL_TCP_FRAME_MAX);
        hs_reply(c, MIXL_TCP_HELLO_MALFORMED, text);
        return;
    }
    c->caps = h.caps & tcp->caps;
    c->max_frame = h.max_frame < tcp->max_frame ? h.max_frame : tcp->max_frame;
    if (!conn_buffers(c)) {
        tcp_conn_abort(c, MIXL_ERR_NO_MEMORY, "no memory for connection buffers");
        return;
    }
    hs_reply(c, MIXL_TCP_HELLO_ACCEPT, "");
    if (atomic_load(&c->state) == CONN_DEAD) return;
    atomic_store(&c->state, CONN_UP);
    mixl_debug("tcp agent %s: accepted agent %s from %s", tcp->name, c->peer_name, c->where);
}

int tcp_conn_client_buffers(tcp_conn_t *c)
{
    return conn_buffers(c);
}
