/*
 * Device memory over TCP: payloads pass through pinned host slots of the
 * connection's copy engine (mem/copy_engine.h), two per direction, so the
 * copies between device and host overlap the socket:
 *   - received: frame k's copy into device memory runs on the engine's stream
 *     while frame k+1 is read from the socket into the other slot; a slot is
 *     waited for only when it comes round again, and every copy before the
 *     request is answered (server) or completed (client);
 *   - sent: while frame k is on the wire from one slot, frame k+1 of the same
 *     request is copied out of device memory into the other.
 * A frame is sent only after the previous one left the socket, so the slot
 * the prefetch overwrites is free. Built only when the CUDA toolkit is found;
 * progress thread only. The copies set no current device: the engine's
 * stream belongs to the region's device.
 */
#include <string.h>

#include "mem/copy_engine.h"
#include "mem/mem_cuda.h"
#include "transport/tcp/tcp_internal.h"

#define RX_SLOT0 0u /* slots 0 and 1: received frames */
#define TX_SLOT0 2u /* slots 2 and 3: sent frames */
#define NSLOTS 4u

static mixl_status_t stage_ready(tcp_conn_t *c, int device)
{
    mixl_status_t st;

    if (c->ce == NULL) {
        /* On the region's device: the progress thread has none of its own,
         * and the pinned allocation would otherwise wake device 0. */
        int prev = -1;
        if (mixl_cuda_device_push(device, &prev) != MIXL_OK)
            return mixl_errbuf_set(&c->stage_eb, MIXL_ERR_BACKEND, "cannot select CUDA device %d",
                                   device);
        st = mixl_ce_create(NSLOTS, c->max_frame, &c->stage_eb, &c->ce);
        mixl_cuda_device_pop(prev);
        if (st != MIXL_OK) return st;
    }
    return mixl_ce_use_device(c->ce, device, &c->stage_eb);
}

uint8_t *tcp_stage_rx_buf(tcp_conn_t *c, int device)
{
    unsigned slot = RX_SLOT0 + c->rx_slot;

    /* The copy out of this slot two frames ago must be done before the
     * socket writes into it again. */
    if (stage_ready(c, device) != MIXL_OK || mixl_ce_slot_wait(c->ce, slot, &c->stage_eb) != MIXL_OK)
        return NULL;
    return mixl_ce_slot(c->ce, slot);
}

mixl_status_t tcp_stage_rx_commit(tcp_conn_t *c, void *dst, size_t len, int device)
{
    unsigned slot = RX_SLOT0 + c->rx_slot;
    mixl_status_t st = mixl_ce_copy(c->ce, device, dst, mixl_ce_slot(c->ce, slot), len, &c->stage_eb);

    if (st == MIXL_OK) st = mixl_ce_slot_mark(c->ce, slot, device, &c->stage_eb);
    if (st != MIXL_OK) return st;
    c->rx_slot ^= 1u;
    c->rx_pending = 1;
    c->stage_rx_async++;
    return MIXL_OK;
}

mixl_status_t tcp_stage_rx_drain(tcp_conn_t *c)
{
    mixl_status_t st = MIXL_OK;

    if (!c->rx_pending) return MIXL_OK;
    for (unsigned i = 0; i < 2; i++) {
        mixl_status_t s = mixl_ce_slot_wait(c->ce, RX_SLOT0 + i, &c->stage_eb);
        if (st == MIXL_OK) st = s;
    }
    c->rx_pending = 0;
    return st;
}

const uint8_t *tcp_stage_tx(tcp_conn_t *c, const tcp_stage_piece_t *now, const tcp_stage_piece_t *next)
{
    unsigned slot;

    if (stage_ready(c, now->device) != MIXL_OK) return NULL;
    if (c->pf_len > 0 && c->pf_src == now->src && c->pf_len == now->len && c->pf_dev == now->device) {
        slot = c->pf_slot;
        c->stage_prefetched++;
    } else {
        /* Not prefetched (the first frame of a request): copy it now, into
         * the slot the last frame did not use. */
        slot = c->tx_slot == TX_SLOT0 ? TX_SLOT0 + 1 : TX_SLOT0;
        /* It may hold an abandoned prefetch, maybe on another device's stream. */
        if (mixl_ce_slot_wait(c->ce, slot, &c->stage_eb) != MIXL_OK ||
            mixl_ce_copy(c->ce, now->device, mixl_ce_slot(c->ce, slot), now->src, now->len,
                         &c->stage_eb) != MIXL_OK ||
            mixl_ce_slot_mark(c->ce, slot, now->device, &c->stage_eb) != MIXL_OK)
            return NULL;
    }
    c->pf_len = 0;
    if (mixl_ce_slot_wait(c->ce, slot, &c->stage_eb) != MIXL_OK) return NULL;
    c->tx_slot = slot;
    if (next != NULL && next->len > 0 && stage_ready(c, next->device) == MIXL_OK) {
        /* The other slot held the previous frame, which has left the socket. */
        unsigned other = slot == TX_SLOT0 ? TX_SLOT0 + 1 : TX_SLOT0;
        if (mixl_ce_slot_wait(c->ce, other, &c->stage_eb) == MIXL_OK &&
            mixl_ce_copy(c->ce, next->device, mixl_ce_slot(c->ce, other), next->src, next->len,
                         &c->stage_eb) == MIXL_OK &&
            mixl_ce_slot_mark(c->ce, other, next->device, &c->stage_eb) == MIXL_OK) {
            c->pf_src = next->src;
            c->pf_len = next->len;
            c->pf_dev = next->device;
            c->pf_slot = other;
        }
    }
    return mixl_ce_slot(c->ce, slot);
}

void tcp_stage_drain(tcp_conn_t *c)
{
    if (c->ce == NULL) return;
    /* rx_pending stays: the request's own drain (tcp_stage_rx_drain) sees a
     * failed copy again and reports it; waits that succeeded cost it nothing. */
    for (unsigned i = 0; i < NSLOTS; i++) (void)mixl_ce_slot_wait(c->ce, i, &c->stage_eb);
    c->pf_len = 0;
}

const char *tcp_stage_error(const tcp_conn_t *c)
{
    return c->stage_eb.set ? c->stage_eb.msg : "pinned staging slots unavailable";
}

void tcp_stage_free(tcp_conn_t *c)
{
    mixl_ce_destroy(c->ce); /* waits for its streams first */
    c->ce = NULL;
}
