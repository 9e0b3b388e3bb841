/*
 * The descriptor lists of one request's KV transfers, built once for both
 * roles: a prefill rank WRITEs each layer from its layer buffers into the
 * decode ranks' pools, a decode rank READs each layer from the prefill
 * ranks' buffers into its pool. Either way the spans run from the prefill
 * layout (layer l in slot l % plan.slots) to the decode layout (layer l), and
 * only which side is local changes.
 */
#include <stdlib.h>

#include "disagg/dg_int.h"

mixl_status_t dg_kv_xfers(mixl_dg_t *dg, const dg_msg_t *m, mixl_op_t op, int layers,
                          const int *peers, const mixl_kv_layout_t *peer_layouts, int npeers,
                          mixl_xfer_h *xfers)
{
    const int writing = op == MIXL_OP_WRITE; /* we are the prefill side */
    const mixl_mem_type_t remote_mem = writing ? dg->plan.decode_mem : dg->plan.prefill_mem;
    size_t maxspans = 0;
    mixl_status_t st = MIXL_OK;

    for (int p = 0; p < npeers; p++) {
        const mixl_kv_layout_t *src = writing ? &dg->layout : &peer_layouts[p];
        const mixl_kv_layout_t *dst = writing ? &peer_layouts[p] : &dg->layout;
        size_t k = mixl_kv_spans_max(src, dst, m->tokens);
        if (k > maxspans) maxspans = k;
    }
    mixl_kv_span_t *spans = malloc((maxspans ? maxspans : 1) * sizeof(*spans));
    mixl_desc_t *local = malloc((maxspans ? maxspans : 1) * sizeof(*local));
    mixl_desc_t *remote = malloc((maxspans ? maxspans : 1) * sizeof(*remote));
    if (spans == NULL || local == NULL || remote == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto out;
    }
    for (int l = 0; l < layers && st == MIXL_OK; l++)
        for (int p = 0; p < npeers && st == MIXL_OK; p++) {
            const mixl_kv_layout_t *src = writing ? &dg->layout : &peer_layouts[p];
            const mixl_kv_layout_t *dst = writing ? &peer_layouts[p] : &dg->layout;
            uint64_t base = dg->peer_base[peers[p]];
            size_t n = mixl_kv_layer_spans(src, l % dg->plan.slots, dst, l, dg_runs(m), m->nruns,
                                           m->tokens, spans);
            dg_notif_t note = {DG_NOTIF_MAGIC, DG_NOTIF_LAYER, (uint16_t)l, m->req, dg->rank, 0,
                               dg->epoch, 0};
            mixl_xfer_params_t xp = {.size = sizeof(xp), .op = op, .peer = dg->names[peers[p]],
                                     .local = local, .remote = remote, .count = n};

            for (size_t i = 0; i < n; i++) {
                uint64_t mine = writing ? spans[i].src_off : spans[i].dst_off;
                uint64_t theirs = writing ? spans[i].dst_off : spans[i].src_off;
                local[i] = (mixl_desc_t){(uint64_t)(uintptr_t)dg->mem.ptr + mine, spans[i].len,
                                         dg->mem.type, dg->mem.device};
                remote[i] = (mixl_desc_t){base + theirs, spans[i].len, remote_mem, 0};
            }
            /* A write tells the decode rank which layer landed; a read is seen completing. */
            if (writing) {
                xp.notif = &note;
                xp.notif_len = sizeof(note);
            }
            /* A failure is logged by the agent, naming the peer; the caller fails the request. */
            st = mixl_xfer_create(dg->agent, &xp, &xfers[(size_t)l * (size_t)npeers + (size_t)p]);
        }
out:
    free(spans);
    free(local);
    free(remote);
    return st;
}
