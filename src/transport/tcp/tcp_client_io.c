/*
 * Client side of a connection, run by the progress thread: framing the
 * posted transfers (large spans split into frames of the negotiated size)
 * and handling the server's answers. READ data is received straight into
 * the transfer's local span; answers with unknown request ids are dropped.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "transport/tcp/tcp_internal.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/log.h"

/* ------------------------------------------------------------------------ */
/* Client side                                                               */

static tcp_stripe_t *cli_lookup(tcp_conn_t *c, uint64_t req)
{
    uint64_t slot = req & 0xffffffffu;

    if (slot >= TCP_SLOTS || c->slots[slot] == NULL || c->slots[slot]->req_id != req) return NULL;
    return c->slots[slot];
}

static void cli_complete(tcp_conn_t *c, tcp_stripe_t *st, mixl_status_t status, const char *msg)
{
#ifdef MIXL_HAVE_CUDA
    /* READ data still being copied into device memory is not there yet. */
    char why[TCP_ERR_LEN];
    if (tcp_stage_rx_drain(c) != MIXL_OK && status == MIXL_OK) {
        snprintf(why, sizeof(why), "READ from agent %.63s: copy into local device memory failed: %.120s",
                 c->peer_name, tcp_stage_error(c));
        status = MIXL_ERR_BACKEND;
        msg = why;
    }
#endif
    tcp_slot_release(c, st);
    tcp_stripe_end(st, status, msg);
}

/* Move a stripe's position (*op, *off, *left) on by n bytes of span op. */
static void span_advance(const mixl_tp_xfer_t *x, size_t *op, uint64_t *off, uint64_t *left,
                         uint64_t n)
{
    *off += n;
    *left -= n;
    if (*off == x->ops[*op].len) {
        (*op)++;
        *off = 0;
    }
    while (*left > 0 && x->ops[*op].len == 0) (*op)++;
}

#ifdef MIXL_HAVE_CUDA
/* A WRITE frame from local device memory: its bytes through a send slot,
 * and the stripe's next frame (the position is already past this one)
 * copied ahead into the other while this one is sent. */
static int cli_stage_write(tcp_conn_t *c, tcp_stripe_t *st, const mixl_tp_op_t *op,
                           const uint8_t **pay, uint64_t chunk)
{
    mixl_tp_xfer_t *x = st->xf->x;
    tcp_stage_piece_t now = {*pay, chunk, op->local_region->device}, next = {0};

    if (st->tx_left > 0) {
        size_t i = st->tx_op;
        while (x->ops[i].len == 0) i++;
        const mixl_tp_op_t *n = &x->ops[i];
        uint64_t len = n->len - st->tx_off;
        if (len > st->tx_left) len = st->tx_left;
        if (len > c->max_frame) len = c->max_frame;
        if (n->local_region->mem_type == MIXL_MEM_CUDA)
            next = (tcp_stage_piece_t){(const uint8_t *)(uintptr_t)n->local_addr + st->tx_off, len,
                                       n->local_region->device};
    }
    *pay = tcp_stage_tx(c, &now, next.len > 0 ? &next : NULL);
    if (*pay == NULL) {
        tcp_conn_abort(c, MIXL_ERR_BACKEND, "staging local device memory failed: %s",
                       tcp_stage_error(c));
        return 0;
    }
    return 1;
}
#endif

/* Frame the next piece of a stripe; 0 when it has no more. */
static int cli_next_piece(tcp_conn_t *c, tcp_stripe_t *st)
{
    tcp_t *tcp = c->tcp;
    mixl_tp_xfer_t *x = st->xf->x;
    mixl_tcp_frame_t f;
    int crc = tcp->use_crc && (c->caps & MIXL_TCP_CAP_CRC32C);

    memset(&f, 0, sizeof(f));
    f.req_id = st->req_id;
    if (st->tx_left > 0) {
        while (x->ops[st->tx_op].len == 0) st->tx_op++;
        const mixl_tp_op_t *op = &x->ops[st->tx_op];
        uint64_t avail = op->len - st->tx_off;
        if (avail > st->tx_left) avail = st->tx_left;
        f.region = op->remote_region->id;
        f.offset = op->remote_addr - op->remote_region->addr + st->tx_off;
        if (x->op == MIXL_OP_READ) {
            f.type = MIXL_TCP_READ_REQ;
            f.length = avail;
            if (crc) f.flags |= MIXL_TCP_F_CRC;
            st->asked += avail;
            span_advance(x, &st->tx_op, &st->tx_off, &st->tx_left, avail);
            if (st->tx_left == 0 && !st->notif) f.flags |= MIXL_TCP_F_LAST;
            tcp_frame_start(c, &f, NULL);
            return 1;
        }
        uint64_t chunk = avail < c->max_frame ? avail : c->max_frame;
        const uint8_t *pay = (const uint8_t *)(uintptr_t)op->local_addr + st->tx_off;
        span_advance(x, &st->tx_op, &st->tx_off, &st->tx_left, chunk);
#ifdef MIXL_HAVE_CUDA
        if (op->local_region->mem_type == MIXL_MEM_CUDA && !cli_stage_write(c, st, op, &pay, chunk))
            return 0;
#endif
        f.type = MIXL_TCP_WRITE;
        f.length = chunk;
        f.payload_len = (uint32_t)chunk;
        if (crc) {
            f.flags |= MIXL_TCP_F_CRC;
            f.crc = mixl_crc32c(0, pay, chunk);
        }
        if (st->tx_left == 0 && !st->notif) f.flags |= MIXL_TCP_F_LAST;
        tcp_frame_start(c, &f, pay);
        return 1;
    }
    if (st->notif && !st->notif_done) {
        f.type = MIXL_TCP_NOTIF;
        f.flags = MIXL_TCP_F_LAST;
        f.payload_len = x->notif_len;
        f.length = x->notif_len;
        if (crc) {
            f.flags |= MIXL_TCP_F_CRC;
            f.crc = mixl_crc32c(0, x->notif, x->notif_len);
        }
        st->notif_done = 1;
        tcp_frame_start(c, &f, x->notif);
        return 1;
    }
    return 0;
}

/* What the progress thread is woken for: answers, unless the agent's thread
 * reads them (tcp_client_wait), and room for a frame being written. */
static uint32_t cli_events(const tcp_conn_t *c)
{
    return (atomic_load_explicit(&c->group->reader, memory_order_relaxed) != TCP_READER_NONE
                ? 0u
                : (uint32_t)EPOLLIN) |
           (c->tx.active ? (uint32_t)EPOLLOUT : 0u);
}

void tcp_client_send(tcp_conn_t *c)
{
    tcp_group_t *g = c->group;

    /* The queue may hold device transfers: split on the progress thread only. */
    if (!g->by_agent && atomic_load_explicit(&g->posted, memory_order_acquire))
        tcp_group_dispatch(g);
    c->kick = 0;
    for (;;) {
        if (c->tx.active) {
            int r = tcp_send_frame(c);
            if (r < 0) {
                tcp_conn_io_error(c, " while sending", -1);
                return;
            }
            if (r == 0) break;
        }
        if (c->tx_cur == NULL) {
            tcp_stripe_t *st = c->sq_head;
            if (st == NULL || c->nfree == 0) break; /* answers will free slots */
            c->sq_head = st->next;
            if (c->sq_head == NULL) c->sq_tail = NULL;
            uint32_t s = c->free_slots[--c->nfree];
            c->slot_gen[s]++;
            st->slot = s;
            st->req_id = ((uint64_t)c->slot_gen[s] << 32) | s;
            c->slots[s] = st;
            c->inflight++;
            c->tx_cur = st;
        }
        if (!cli_next_piece(c, c->tx_cur)) {
            if (atomic_load(&c->state) != CONN_UP) return;
            c->tx_cur = NULL;
        }
    }
    tcp_conn_set_events(c, cli_events(c));
    /* Other members may have got stripes (dispatch, a deferred NOTIF). */
    tcp_group_kicks(g);
}

/* Where the payload of a READ_RESP goes: the next bytes the stripe asked for. */
static void cli_read_resp_begin(tcp_conn_t *c, tcp_stripe_t *st)
{
    mixl_tcp_frame_t *f = &c->rx;

    c->rx_mode = RX_DRAIN;
    if (st == NULL || st->xf->x->op != MIXL_OP_READ) {
        c->stale_frames++;
        return;
    }
    mixl_tp_xfer_t *x = st->xf->x;
    const mixl_tp_op_t *op = st->rx_left > 0 ? &x->ops[st->rx_op] : NULL;
    uint64_t avail = op != NULL ? op->len - st->rx_off : 0;
    if (avail > st->rx_left) avail = st->rx_left;
    if (op == NULL || f->payload_len > st->asked || f->region != op->remote_region->id ||
        f->offset != op->remote_addr - op->remote_region->addr + st->rx_off ||
        f->payload_len > avail) {
        tcp_conn_abort(c, MIXL_ERR_PROTOCOL,
                       "READ_RESP for request 0x%llx (region %u offset %llu, %u bytes) does "
                       "not match what was asked",
                       (unsigned long long)f->req_id, f->region, (unsigned long long)f->offset,
                       f->payload_len);
        return;
    }
    c->rx_dst = (uint8_t *)(uintptr_t)op->local_addr + st->rx_off;
    c->rx_mode = RX_DIRECT;
#ifdef MIXL_HAVE_CUDA
    if (op->local_region->mem_type == MIXL_MEM_CUDA) {
        c->rx_stage = tcp_stage_rx_buf(c, op->local_region->device);
        if (c->rx_stage == NULL) {
            tcp_conn_abort(c, MIXL_ERR_NO_MEMORY, "no pinned staging slot: %s", tcp_stage_error(c));
            return;
        }
        c->rx_mode = RX_STAGE;
    }
#endif
}

static void cli_frame_begin(tcp_conn_t *c)
{
    mixl_tcp_frame_t *f = &c->rx;
    tcp_stripe_t *st = cli_lookup(c, f->req_id);

    c->rx_got = 0;
    c->rx_stripe = st;
    switch (f->type) {
    case MIXL_TCP_READ_RESP: cli_read_resp_begin(c, st); return;
    case MIXL_TCP_ERROR: c->rx_mode = RX_SMALL; return;
    case MIXL_TCP_ACK:
        c->rx_mode = RX_HDR;
        if (st == NULL) {
            c->stale_frames++;
            return;
        }
        if (st == c->tx_cur || (st->xf->x->op == MIXL_OP_READ && st->rx_left > 0)) {
            tcp_conn_abort(c, MIXL_ERR_PROTOCOL, "ACK for request 0x%llx before all its data",
                           (unsigned long long)f->req_id);
            return;
        }
        cli_complete(c, st, MIXL_OK, NULL);
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
    tcp_stripe_t *st = c->rx_stripe;
    int mode = c->rx_mode;
    char msg[TCP_ERR_LEN];

    c->rx_mode = RX_HDR;
    c->rx_hdr_got = 0;
    if (f->type == MIXL_TCP_READ_RESP && (mode == RX_DIRECT || mode == RX_STAGE)) {
        mixl_tp_xfer_t *x = st->xf->x;
        const uint8_t *got = mode == RX_STAGE ? c->rx_stage : c->rx_dst;
        if ((f->flags & MIXL_TCP_F_CRC) && mixl_crc32c(0, got, f->payload_len) != f->crc) {
            snprintf(msg, sizeof(msg),
                     "READ from agent %s: data at offset %llu of region %u fails its CRC32C",
                     c->peer_name, (unsigned long long)f->offset, f->region);
            tcp_xfer_fail(st->xf, MIXL_ERR_CHECKSUM, msg);
        }
#ifdef MIXL_HAVE_CUDA
        const mixl_tp_op_t *op = &x->ops[st->rx_op];
        if (mode == RX_STAGE &&
            tcp_stage_rx_commit(c, c->rx_dst, f->payload_len, op->local_region->device) != MIXL_OK) {
            snprintf(msg, sizeof(msg), "READ from agent %.63s: copy into local device memory failed: %.120s",
                     c->peer_name, tcp_stage_error(c));
            tcp_xfer_fail(st->xf, MIXL_ERR_BACKEND, msg);
        }
#endif
        st->asked -= f->payload_len;
        span_advance(x, &st->rx_op, &st->rx_off, &st->rx_left, f->payload_len);
    } else if (f->type == MIXL_TCP_ERROR) {
        char why[MIXL_TCP_ERROR_MAX];
        mixl_status_t status = mixl_tcp_error_decode(c->rx_small, f->payload_len, why, sizeof(why));
        if (st == NULL) {
            c->stale_frames++;
            return;
        }
        if (st == c->tx_cur) {
            tcp_conn_abort(c, MIXL_ERR_PROTOCOL, "ERROR for request 0x%llx before its last frame",
                           (unsigned long long)f->req_id);
            return;
        }
        snprintf(msg, sizeof(msg), "agent %s refused the transfer: %.150s", c->peer_name, why);
        cli_complete(c, st, status, msg);
    }
}

static const tcp_rx_role_t cli_rx = {
    .frame_begin = cli_frame_begin,
    .frame_end = cli_frame_end,
};

/* 1 when a transfer on c (sent, in flight or queued) is past its deadline. */
static int past_deadline(tcp_conn_t *c, uint64_t now)
{
    int late = 0;

    if (c->tx_cur != NULL && now >= c->tx_cur->xf->deadline_ns) late = 1;
    for (unsigned i = 0; !late && c->inflight > 0 && i < TCP_SLOTS; i++)
        if (c->slots[i] != NULL && now >= c->slots[i]->xf->deadline_ns) late = 1;
    for (tcp_stripe_t *q = c->sq_head; !late && q != NULL; q = q->next)
        if (now >= q->xf->deadline_ns) late = 1;
    if (!late && c->index == 0) {
        tcp_group_t *g = c->group;
        pthread_mutex_lock(&g->lock);
        for (tcp_xfer_t *q = g->q_head; q != NULL && !late; q = q->next)
            if (now >= q->deadline_ns) late = 1;
        pthread_mutex_unlock(&g->lock);
    }
    return late;
}

/* Progress thread, holding group->work: close a connection the agent's
 * thread gave up (tcp_conn_abort). 1 when the connection is up. */
static int cli_up(tcp_conn_t *c)
{
    int state = atomic_load(&c->state);

    if (state == CONN_CLOSING) tcp_conn_abort(c, c->abort_status, "%s", c->abort_why);
    return state == CONN_UP;
}

/* Progress thread, holding group->work: read what came; answers free
 * slots, so queued transfers may go now. */
static void cli_read(tcp_conn_t *c)
{
    tcp_conn_rx(c, &cli_rx);
    if (atomic_load(&c->state) == CONN_UP) tcp_client_send(c);
}

void tcp_conn_check_deadlines(tcp_conn_t *c, uint64_t now)
{
    tcp_group_t *g = c->group;

    if (c->role != ROLE_CLIENT) return;
    pthread_mutex_lock(&g->work);
    /* Answers kept for a caller that stopped posting go back to this
     * thread (EPOLLIN again; epoll reports what already came): the caller
     * may never wait again. */
    if (atomic_load(&g->reader) == TCP_READER_KEPT &&
        now - g->kept_ns >= atomic_load_explicit(&g->tcp->keep_ns, memory_order_relaxed))
        tcp_client_unkeep(g);
    if (cli_up(c)) {
        int late = past_deadline(c, now);
        if (late && atomic_load(&g->reader) != TCP_READER_WAITING) {
            /* The answer may be there, unread (kept for a caller that posts
             * but has not come back for it, or not yet seen as an event):
             * read what came before the transfer is called late. */
            tcp_client_unkeep(g);
            cli_read(c);
            late = atomic_load(&c->state) == CONN_UP && past_deadline(c, now);
        }
        /* A peer that does not answer in time is treated as failed: the
         * stream may be mid-frame, so the connection cannot carry other
         * transfers. */
        if (late)
            tcp_conn_abort(c, MIXL_ERR_TIMED_OUT, "no answer within %d ms", c->tcp->timeout_ms);
    }
    tcp_group_unlock(g);
}

void tcp_client_readable(tcp_conn_t *c)
{
    tcp_group_t *g = c->group;

    pthread_mutex_lock(&g->work);
    /* Kept answers have no EPOLLIN: this is a hang-up or an error, which
     * would be reported again and again; the progress thread reads now. */
    if (atomic_load(&g->reader) == TCP_READER_KEPT) tcp_client_unkeep(g);
    /* While the agent's thread reads (tcp_client_wait) this is an event from
     * before it took over, or a hang-up its poll sees too: the answers are
     * its to read, or a completion here would not end its poll. */
    if (cli_up(c) && atomic_load(&g->reader) == TCP_READER_NONE) cli_read(c);
    tcp_group_unlock(g);
}

void tcp_client_writable(tcp_conn_t *c)
{
    pthread_mutex_lock(&c->group->work);
    if (cli_up(c)) tcp_client_send(c);
    tcp_group_unlock(c->group);
}

/* Up connections of g with their sockets in pf; the group's events set for
 * the current reader. */
static unsigned wait_fds(tcp_group_t *g, struct pollfd *pf)
{
    unsigned n = 0;

    for (unsigned i = 0; i < g->n; i++) {
        tcp_conn_t *c = g->conns[i];
        if (c == NULL || atomic_load(&c->state) != CONN_UP) continue;
        tcp_conn_set_events(c, cli_events(c));
        pf[n].fd = c->fd;
        pf[n].events = POLLIN;
        pf[n++].revents = 0;
    }
    return n;
}

/* One pass over the answers that are there, on the agent's thread, which
 * holds g->work; 0 when they are not its to read: device frames and posts
 * to split are the progress thread's. */
static int agent_pass(tcp_group_t *g)
{
    if (g->staged > 0 || atomic_load(&g->posted) || atomic_load(&g->state) != CONN_UP) return 0;
    g->by_agent = 1;
    for (unsigned i = 0; i < g->n; i++) {
        tcp_conn_t *c = g->conns[i];
        if (c == NULL || atomic_load(&c->state) != CONN_UP) continue;
        tcp_conn_rx(c, &cli_rx);
        if (atomic_load(&c->state) == CONN_UP) tcp_client_send(c);
    }
    g->by_agent = 0;
    return 1;
}

/*
 * A caller that waits, as a blocking recv loop does, is woken by the answer
 * itself: the progress thread is not (no EPOLLIN while g->reader), so an
 * answer costs one wake-up instead of two (the progress thread's, then the
 * caller's through the completion futex). On a loaded machine each wake-up
 * waits for a turn on a CPU. The work lock is not held while polling: the
 * progress thread still sends, checks deadlines and closes connections.
 */
int tcp_client_wait(tcp_group_t *g, tcp_xfer_t *xf, uint64_t deadline_ns)
{
    struct pollfd pf[TCP_CONNS_MAX];
    int read = 0, polled = 0, done = 0;

    if (pthread_mutex_trylock(&g->work) != 0) return 0;
    atomic_store(&g->reader, TCP_READER_WAITING);
    for (;;) {
        if (!agent_pass(g)) break;
        read = 1;
        uint64_t now = mixl_now_ns();
        done = atomic_load_explicit(&xf->status, memory_order_acquire) != MIXL_IN_PROGRESS;
        if (done || now >= deadline_ns) break;
        unsigned n = wait_fds(g, pf);
        if (n == 0) break;
        tcp_group_unlock(g);
        /* The progress thread shuts a socket down before closing it while
         * we read (conn_close), which ends the poll; bounded all the same,
         * for a descriptor closed and reused before the poll began. */
        uint64_t ns = deadline_ns - now;
        struct timespec ts = {0, 0};
        if (ns > TCP_WAIT_POLL_MS * 1000000ull) ns = TCP_WAIT_POLL_MS * 1000000ull;
        ts.tv_sec = (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        (void)ppoll(pf, n, &ts, NULL);
        polled = 1;
        pthread_mutex_lock(&g->work);
    }
    if (read) {
        /* The next answer is likely ours too (the next wait, or a polling
         * caller's next pause): no EPOLLIN meanwhile. */
        atomic_store(&g->reader, TCP_READER_KEPT);
        g->kept_ns = mixl_now_ns();
    } else {
        atomic_store(&g->reader, TCP_READER_NONE);
        (void)wait_fds(g, pf);
    }
    tcp_group_unlock(g);
    if (read) atomic_fetch_add_explicit(&g->tcp->agent_reads, 1, memory_order_relaxed);
    /* Not after a pass that found nothing and could not poll (every
     * connection failing): the caller then sleeps on completions. */
    return done || polled;
}

void tcp_client_unkeep(tcp_group_t *g)
{
    struct pollfd pf[TCP_CONNS_MAX];

    if (atomic_load(&g->reader) != TCP_READER_KEPT) return;
    atomic_store(&g->reader, TCP_READER_NONE);
    (void)wait_fds(g, pf); /* EPOLLIN back on every connection */
    atomic_fetch_add_explicit(&g->tcp->unkept, 1, memory_order_relaxed);
}
