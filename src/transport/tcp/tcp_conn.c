/*
 * What both ends of a connection share, run by the progress thread:
 * creation and teardown, failing every transfer of a broken connection,
 * writing a frame (header and payload, resumable after EAGAIN), and the
 * dispatch of socket events to the server or client handlers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/futex.h>
#include <limits.h>
#include <sys/syscall.h>
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
    tcp_stage_free(c);
#endif
    free(c);
}

/* Buffers sized by the negotiated frame size, made once the handshake agreed on it. */
int tcp_conn_buffers(tcp_conn_t *c)
{
    if (c->scratch == NULL) c->scratch = malloc(c->max_frame);
    return c->scratch != NULL;
}


/* ------------------------------------------------------------------------ */
/* Failure and teardown                                                      */

void tcp_xfer_finish(tcp_xfer_t *xf, mixl_status_t st)
{
    tcp_t *tcp = xf->group->tcp;

    if (xf->staged) {
        xf->staged = 0;
        xf->group->staged--;
    }
    atomic_store_explicit(&xf->status, st, memory_order_release);
    atomic_fetch_add(&tcp->completions, 1);
    /* The wake-up comes when the work lock is let go (tcp_group_unlock): a
     * waiter woken now may take the CPU from this thread while it still
     * holds the lock, and its next post then finds the connections busy
     * (on one CPU, 3 posts in 1001 were written directly). */
    atomic_store_explicit(&tcp->wake_owed, 1, memory_order_relaxed);
}

void tcp_completions_wake(tcp_t *tcp)
{
    /* Sequentially consistent with the waiter's increment of `waiters`
     * (completion_sleep): either it sees the completion before sleeping or
     * we see it waiting. */
    if (atomic_exchange(&tcp->wake_owed, 0) && atomic_load(&tcp->waiters) > 0)
        syscall(SYS_futex, &tcp->completions, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void tcp_group_unlock(tcp_group_t *g)
{
    pthread_mutex_unlock(&g->work);
    tcp_completions_wake(g->tcp);
}

void tcp_slot_release(tcp_conn_t *c, tcp_stripe_t *st)
{
    c->slots[st->slot] = NULL;
    c->free_slots[c->nfree++] = st->slot;
    c->inflight--;
}

/* Close the socket and leave the progress thread's set; the memory stays
 * (a server connection is freed at the end of the loop turn, a client one
 * with its group). */
static void conn_close(tcp_conn_t *c)
{
    tcp_t *tcp = c->tcp;

    atomic_store(&c->state, CONN_DEAD);
    c->tx.active = 0;
    tcp_engine_detach(tcp, c);
    if (c->fd >= 0) {
        /* A close does not end another thread's poll of the socket; a
         * shutdown does (the agent's thread may be reading answers). */
        if (c->role == ROLE_CLIENT && c->group != NULL && c->group->reader)
            shutdown(c->fd, SHUT_RDWR);
        close(c->fd);
        c->fd = -1;
    }
    if (c->role == ROLE_SERVER) {
        c->next_dead = tcp->dead;
        tcp->dead = c;
    }
}

void tcp_conn_abort(tcp_conn_t *c, mixl_status_t status, const char *fmt, ...)
{
    char why[TCP_ERR_LEN], msg[TCP_ERR_LEN], nth[32] = "";
    va_list ap;

    if (atomic_load(&c->state) == CONN_DEAD) return;
#ifdef MIXL_HAVE_CUDA
    /* Copies still running must not outlive the requests failed below: their
     * owners may free the memory as soon as they learn of the failure. */
    tcp_stage_drain(c);
#endif
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (c->role == ROLE_CLIENT && c->group != NULL && c->group->by_agent) {
        /* The agent's thread: closing is the progress thread's, which owns
         * the epoll set and the connection list (tcp_client_readable). */
        if (atomic_load(&c->state) == CONN_UP) {
            c->abort_status = status;
            snprintf(c->abort_why, sizeof(c->abort_why), "%s", why);
            atomic_store(&c->state, CONN_CLOSING);
            tcp_engine_wake(c->tcp);
            mixl_debug("tcp connection to agent %s: %s (found by the agent's thread; the "
                       "progress thread closes it)", c->peer_name, why);
        }
        return;
    }
    if (c->role == ROLE_CLIENT && c->group != NULL) {
        if (c->group->n > 1) snprintf(nth, sizeof(nth), " %u of %u", c->index + 1, c->group->n);
        /* Bounded so that the longest name, address and reason fit msg. */
        snprintf(msg, sizeof(msg), "tcp connection%.24s to agent %s (%.60s): %.79s", nth,
                 c->peer_name[0] ? c->peer_name : "?", c->where, why);
        /* The group's other connections go too: the order of its requests
         * and notifications spans all of them. */
        tcp_group_abort(c->group, status, msg);
        conn_close(c); /* a connection not yet in its group */
        return;
    }
    snprintf(msg, sizeof(msg), "tcp connection from agent %s (%.60s): %.100s",
             c->peer_name[0] ? c->peer_name : "?", c->where, why);
    /* A bad peer is worth a warning; one that went away is news. */
    if (status == MIXL_OK)
        mixl_debug("%s", msg);
    else if (status == MIXL_ERR_DISCONNECTED)
        mixl_info("%s (%s)", msg, mixl_status_str(status));
    else
        mixl_warn("%s (%s)", msg, mixl_status_str(status));
    conn_close(c);
}

/* The group's part of an abort: close a member connection, failing its stripes. */
void tcp_conn_fail_stripes(tcp_conn_t *c, mixl_status_t status, const char *msg)
{
    tcp_stripe_t *q = c->sq_head;

    c->sq_head = c->sq_tail = NULL;
    c->tx_cur = NULL;
    while (q != NULL) {
        tcp_stripe_t *next = q->next;
        tcp_stripe_end(q, status, msg);
        q = next;
    }
    for (unsigned i = 0; c->inflight > 0 && i < TCP_SLOTS; i++) {
        tcp_stripe_t *st = c->slots[i];
        if (st == NULL) continue;
        tcp_slot_release(c, st);
        tcp_stripe_end(st, status, msg);
    }
    if (atomic_load(&c->state) != CONN_DEAD) conn_close(c);
}

void tcp_conn_io_error(tcp_conn_t *c, const char *where, ssize_t n)
{
    if (n == 0)
        tcp_conn_abort(c, MIXL_ERR_DISCONNECTED, "peer closed the connection%s", where);
    else
        tcp_conn_abort(c, MIXL_ERR_DISCONNECTED, "%s%s", strerror(errno), where);
}

/* ------------------------------------------------------------------------ */
/* Writing frames                                                            */

/* 1: frame sent, 0: socket full, -1: error (errno set). */
int tcp_send_frame(tcp_conn_t *c)
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

void tcp_frame_start(tcp_conn_t *c, const mixl_tcp_frame_t *f, const uint8_t *pay)
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
/* Reading frames: the one receive state machine of both roles               */

/*
 * Read frames until the socket is drained, TCP_READ_BUDGET bytes were read
 * (fairness between connections), the connection ends or the role says stop
 * before a header. A header is decoded and checked against the negotiated
 * frame size before anything reads according to it; the role's frame_begin
 * chooses where the payload goes (rx_mode), frame_end consumes it.
 *
 * Each recv also asks for up to TCP_AHEAD bytes past the current frame, so
 * the next headers (an ACK, the next frame) come with it; a recv that comes
 * back short says the socket is empty, and the turn ends without the recv
 * that would only say EAGAIN (epoll, level-triggered, calls again when more
 * arrives). Payload bytes that came ahead are copied out of that buffer.
 */
static void conn_rx_frames(tcp_conn_t *c, const tcp_rx_role_t *role)
{
    size_t budget = TCP_READ_BUDGET;

    c->rx_drained = 0;
    /* Bytes already read ahead are used up whatever the budget: epoll would
     * not report them. */
    while ((budget > 0 || c->ahead_len > 0) && atomic_load(&c->state) == CONN_UP &&
           !c->peer_closed) {
        ssize_t n;

        if (c->rx_mode == RX_HDR) {
            if (role->header_room != NULL && !role->header_room(c)) return;
            if (c->ahead_len == 0) {
                if (c->rx_drained || budget == 0) return;
                n = recv(c->fd, c->rx_ahead, TCP_AHEAD, 0);
                atomic_fetch_add_explicit(&c->tcp->rx_reads, 1, memory_order_relaxed);
                if (n <= 0) {
                    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
                    if (n == 0 && c->rx_hdr_got == 0 && role->eof_between_frames_ok) {
                        tcp_conn_abort(c, MIXL_OK, "peer closed the connection");
                        return;
                    }
                    tcp_conn_io_error(c, c->rx_hdr_got ? " inside a frame header" : "", n);
                    return;
                }
                c->ahead_off = 0;
                c->ahead_len = (uint32_t)n;
                c->rx_drained = n < TCP_AHEAD;
                budget -= (size_t)n < budget ? (size_t)n : budget;
            }
            size_t take = MIXL_TCP_HDR_LEN - c->rx_hdr_got;
            if (take > c->ahead_len) take = c->ahead_len;
            memcpy(c->rx_hdr + c->rx_hdr_got, c->rx_ahead + c->ahead_off, take);
            c->ahead_off += (uint32_t)take;
            c->ahead_len -= (uint32_t)take;
            c->rx_hdr_got += take;
            if (c->rx_hdr_got < MIXL_TCP_HDR_LEN) continue; /* ends above when drained */
            char err[160];
            mixl_status_t st =
                mixl_tcp_frame_decode(c->rx_hdr, c->max_frame, &c->rx, err, sizeof(err));
            if (st != MIXL_OK) {
                tcp_conn_abort(c, st, "bad frame header: %s", err);
                return;
            }
            c->rx_got = 0;
            c->rx_hdr_got = 0;
            role->frame_begin(c);
            if (atomic_load(&c->state) != CONN_UP) return;
            if (c->rx_mode == RX_HDR || c->rx.payload_len == 0) {
                role->frame_end(c);
                c->rx_mode = RX_HDR;
            }
            continue;
        }

        uint64_t want = c->rx.payload_len - c->rx_got;
        int guarded = 0;
        uint8_t *dst;
        if (c->ahead_len == 0 && (c->rx_drained || budget == 0)) return;
        switch (c->rx_mode) {
        case RX_DIRECT:
            if (role->direct_guard != NULL) {
                if (!role->direct_guard(c)) continue; /* switched to RX_DRAIN */
                guarded = 1;
            }
            dst = c->rx_dst + c->rx_got;
            break;
        case RX_STAGE: dst = c->rx_stage + c->rx_got; break;
        case RX_SMALL: dst = c->rx_small + c->rx_got; break;
        default: dst = NULL; break; /* drained into scratch */
        }
        if (c->ahead_len > 0) {
            n = (ssize_t)(want < c->ahead_len ? want : c->ahead_len);
            if (dst != NULL) memcpy(dst, c->rx_ahead + c->ahead_off, (size_t)n);
            c->ahead_off += (uint32_t)n;
            c->ahead_len -= (uint32_t)n;
        } else {
            /* Payloads are at most max_frame bytes: scratch holds a drained one. */
            struct iovec iov[2] = {{dst != NULL ? dst : c->scratch, want},
                                   {c->rx_ahead, TCP_AHEAD}};
            struct msghdr mh;
            memset(&mh, 0, sizeof(mh));
            mh.msg_iov = iov;
            mh.msg_iovlen = 2;
            n = recvmsg(c->fd, &mh, 0);
            atomic_fetch_add_explicit(&c->tcp->rx_reads, 1, memory_order_relaxed);
            if (n > 0) {
                c->rx_drained = (uint64_t)n < want + TCP_AHEAD;
                if ((uint64_t)n > want) {
                    c->ahead_off = 0;
                    c->ahead_len = (uint32_t)((uint64_t)n - want);
                    n = (ssize_t)want;
                }
            }
        }
        if (guarded) role->direct_unguard(c);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
            tcp_conn_io_error(c, " inside a frame", n);
            return;
        }
        c->rx_got += (uint64_t)n;
        budget -= (size_t)n < budget ? (size_t)n : budget;
        if (c->rx_got == c->rx.payload_len) {
            role->frame_end(c);
            c->rx_mode = RX_HDR;
        }
    }
}

/*
 * Inside a payload, be woken when a good part of the rest has come
 * (SO_RCVLOWAT), not for every segment: a receiver that copies faster than
 * the sender was woken some ten times per MiB, each time an inter-processor
 * wake-up and a trip through epoll for a few tens of KiB. The mark is half
 * of what the frame still owes, at most tcp->rcvlowat_max: waiting for all
 * of it left up to rcvlowat_max bytes to copy after the last one came, on
 * the path to the ACK (a 1 MiB WRITE lost 10-20 %, docs/performance.md);
 * halving keeps that tail to about a segment for a few more wake-ups per
 * frame. Between frames any byte wakes it (ACKs, headers). Set only when
 * the value changes.
 */
static void rx_lowat(tcp_conn_t *c)
{
    int want = 1;

    if (c->tcp->rcvlowat_max > 0 && c->rx_mode != RX_HDR && c->ahead_len == 0) {
        uint64_t left = c->rx.payload_len - c->rx_got;
        uint64_t half = left / 2;
        want = half < (uint64_t)c->tcp->rcvlowat_max ? (int)half : c->tcp->rcvlowat_max;
        if (want < 1) want = 1;
    }
    if (want == c->rcvlowat) return;
    if (setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof(want)) == 0) c->rcvlowat = want;
}

void tcp_conn_rx(tcp_conn_t *c, const tcp_rx_role_t *role)
{
    conn_rx_frames(c, role);
    if (atomic_load(&c->state) == CONN_UP) rx_lowat(c);
}

/* ------------------------------------------------------------------------ */

void tcp_conn_readable(tcp_conn_t *c)
{
    if (atomic_load(&c->state) == CONN_HANDSHAKE) {
        tcp_server_handshake(c);
        return;
    }
    if (c->role == ROLE_CLIENT)
        tcp_client_readable(c); /* CONN_CLOSING too */
    else if (atomic_load(&c->state) == CONN_UP)
        tcp_server_readable(c);
}

void tcp_conn_writable(tcp_conn_t *c)
{
    if (c->role == ROLE_CLIENT)
        tcp_client_writable(c);
    else if (atomic_load(&c->state) == CONN_UP)
        tcp_server_writable(c);
}
