/*
 * Client side of a connection, run by the progress thread: framing the
 * posted transfers (large spans split into frames of the negotiated size)
 * and handling the server's answers. READ data is received straight into
 * the transfer's local span; answers with unknown request ids are dropped.
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
/* Client side                                                               */

static tcp_xfer_t *cli_lookup(tcp_conn_t *c, uint64_t req)
{
    uint64_t slot = req & 0xffffffffu;

    if (slot >= TCP_SLOTS || c->slots[slot] == NULL || c->slots[slot]->req_id != req) return NULL;
    return c->slots[slot];
}

static void cli_complete(tcp_conn_t *c, tcp_xfer_t *xf, mixl_status_t st)
{
    tcp_slot_release(c, xf);
    tcp_xfer_finish(xf, st);
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
            tcp_frame_start(c, &f, NULL);
            return 1;
        }
        uint64_t left = op->len - xf->tx_off;
        uint64_t chunk = left < c->max_frame ? left : c->max_frame;
        const uint8_t *pay = (const uint8_t *)(uintptr_t)op->local_addr + xf->tx_off;
        if (op->local_region->mem_type == MIXL_MEM_CUDA) {
#ifdef MIXL_HAVE_CUDA
            if (tcp_conn_stage_tx(c) == NULL ||
                tcp_cuda_to_host(c->stage_tx, pay, chunk, op->local_region->device) != MIXL_OK) {
                tcp_conn_abort(c, MIXL_ERR_BACKEND, "staging local device memory failed");
                return 0;
            }
            pay = c->stage_tx;
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
        tcp_frame_start(c, &f, pay);
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
        tcp_frame_start(c, &f, x->notif);
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
            int r = tcp_send_frame(c);
            if (r < 0) {
                tcp_conn_io_error(c, " while sending", -1);
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
            if (tcp_conn_stage_rx(c) == NULL) {
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
        const uint8_t *got = mode == RX_STAGE ? c->stage_rx : c->rx_dst;
        if ((f->flags & MIXL_TCP_F_CRC) && mixl_crc32c(0, got, f->payload_len) != f->crc &&
            xf->early == MIXL_OK) {
            xf->early = MIXL_ERR_CHECKSUM;
            snprintf(xf->err, sizeof(xf->err),
                     "READ from agent %s: data at offset %llu of region %u fails its CRC32C",
                     c->peer_name, (unsigned long long)f->offset, f->region);
        }
#ifdef MIXL_HAVE_CUDA
        if (mode == RX_STAGE &&
            tcp_cuda_from_host(c->rx_dst, c->stage_rx, f->payload_len, op->local_region->device) !=
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

static const tcp_rx_role_t cli_rx = {
    .frame_begin = cli_frame_begin,
    .frame_end = cli_frame_end,
};

static void cli_read(tcp_conn_t *c)
{
    tcp_conn_rx(c, &cli_rx);
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

void tcp_client_readable(tcp_conn_t *c)
{
    cli_read(c);
}

void tcp_client_writable(tcp_conn_t *c)
{
    cli_write(c);
}
