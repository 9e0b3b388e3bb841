/*
 * The decode worker. Owns a preallocated, registered KV block pool; its
 * instance leader (TP rank 0) allocates and frees blocks for the router.
 * For each expected request it collects the layers from the prefill ranks
 * that hold its heads (push: "layer landed" notifications after their
 * writes; pull: on "layer ready" it posts its prepared READ and answers
 * "freed"), verifies every block of a layer by CRC32C against the
 * deterministic fill as soon as the layer is complete, and after the
 * completion emulates decode steps: every active request advances one token
 * per decode.step_us, batched like a serving engine.
 */
#include <stdlib.h>
#include <string.h>

#include "disagg/dg_int.h"
#include "kv/alloc.h"
#include "kv/fill.h"
#include "util/clock.h"
#include "util/log.h"

#define DC_MAX_SOURCES 64

typedef struct {
    dg_msg_t *msg; /* the EXPECT message (runs follow) */
    int nsrc;
    int src[DC_MAX_SOURCES]; /* prefill world ranks */
    mixl_kv_layout_t slayout[DC_MAX_SOURCES];
    int *landed; /* per layer: sources whose data is here */
    uint8_t *verified;
    int dones; /* push: completion notifications */
    int layers_complete;
    mixl_xfer_h *xfers;         /* pull: [layer * nsrc + s] */
    uint8_t *posted;            /* pull: 1 posted, 2 complete */
    int64_t *post_ns, *done_ns; /* pull: per xfer */
    int64_t first_byte, last_byte, notify, first_token, decode_end, last_progress;
    uint64_t bytes, ops, nxfers, bad_blocks;
    uint64_t generated;
    int kv_complete;
    mixl_status_t status;
} dc_req_t;

typedef struct {
    mixl_dg_t *dg;
    int layers;
    int leader;
    mixl_kv_alloc_t alloc;
    dc_req_t **reqs;
    size_t nreqs, capreqs;
    uint8_t *finished; /* by request id: late notifications are dropped */
    uint64_t nfinished_cap;
    uint32_t *bad; /* device memory: words that differ, per [K,V][request block] */
    int64_t next_step;
    int stop;
} dc_t;

static dc_req_t *dc_find(dc_t *dc, uint64_t req)
{
    for (size_t i = 0; i < dc->nreqs; i++)
        if (dc->reqs[i]->msg->req == req) return dc->reqs[i];
    return NULL;
}

static void dc_sources(dc_t *dc, dc_req_t *r)
{
    mixl_dg_t *dg = dc->dg;
    r->nsrc = 0;
    for (int t = 0; t < dg->plan.prefill_tp && r->nsrc < DC_MAX_SOURCES; t++) {
        mixl_kv_layout_t pl = mixl_dg_prefill_layout(&dg->plan, t);
        int h0, h1;
        if (!mixl_kv_head_overlap(&pl, &dg->layout, &h0, &h1)) continue;
        r->src[r->nsrc] = mixl_dg_prefill_rank(&dg->plan, r->msg->prefill_inst, t);
        r->slayout[r->nsrc] = pl;
        r->nsrc++;
    }
}

/* Pull mode: one READ per (layer, source), prepared when the request is announced. */
static mixl_status_t dc_prepare_reads(dc_t *dc, dc_req_t *r)
{
    size_t n = (size_t)dc->layers * (size_t)r->nsrc;

    r->xfers = calloc(n, sizeof(mixl_xfer_h));
    r->posted = calloc(n, 1);
    r->post_ns = calloc(n, sizeof(int64_t));
    r->done_ns = calloc(n, sizeof(int64_t));
    if (!r->xfers || !r->posted || !r->post_ns || !r->done_ns) return MIXL_ERR_NO_MEMORY;
    return dg_kv_xfers(dc->dg, r->msg, MIXL_OP_READ, dc->layers, r->src, r->slayout, r->nsrc,
                       r->xfers);
}

static void dc_fail(dc_t *dc, dc_req_t *r, mixl_status_t st, const char *what)
{
    if (r->status != MIXL_OK) return;
    r->status = st;
    mixl_error("request %llu: %s: %s", (unsigned long long)r->msg->req, what, mixl_status_str(st));
    /* In pull mode the prefill ranks wait for our "freed" answers: release them now. */
    if (dc->dg->cfg->transfer.mode == MIXL_MODE_PULL)
        for (int s = 0; s < r->nsrc; s++)
            dg_notify(dc->dg, r->src[s], DG_NOTIF_ABORT, r->msg->req, 0, st);
}

/*
 * Device memory: a CUDA kernel compares every word of the layer's blocks
 * with the expected fill where they landed; only per-block counts of
 * differing words come back to the host.
 */
static void dc_verify_layer_cuda(dc_t *dc, dc_req_t *r, int l)
{
    mixl_dg_t *dg = dc->dg;
    const dg_msg_t *m = r->msg;
    uint64_t nb = mixl_kv_blocks_for(m->tokens, dg->layout.block_size);
    mixl_status_t st = mixl_kv_cuda_check_layer(&dg->mem, &dg->layout, l, dg_fill_id(dg, m->req), m->tokens,
                                                dg_runs(m), m->nruns, dc->bad);
    if (st != MIXL_OK) {
        dc_fail(dc, r, st, "checking the layer on the device");
        return;
    }
    for (int kv = 0; kv < 2; kv++)
        for (uint64_t i = 0; i < nb; i++) {
            uint32_t bad = dc->bad[(uint64_t)kv * nb + i];
            if (bad == 0) continue;
            if (r->bad_blocks == 0)
                mixl_error("request %llu: layer %d %c block %llu (request block %llu): %u words "
                           "differ from the expected fill (checked on the device)",
                           (unsigned long long)m->req, l, kv ? 'V' : 'K',
                           (unsigned long long)mixl_kv_runs_block(dg_runs(m), m->nruns, i),
                           (unsigned long long)i, bad);
            r->bad_blocks++;
        }
}

/* Check every block of layer l of the request against the expected fill. */
static void dc_verify_layer(dc_t *dc, dc_req_t *r, int l)
{
    mixl_dg_t *dg = dc->dg;
    const dg_msg_t *m = r->msg;
    uint64_t nb = mixl_kv_blocks_for(m->tokens, dg->layout.block_size);

    r->verified[l] = 1;
    if (!dg->cfg->decode.verify) return;
    if (dg->mem.type == MIXL_MEM_CUDA) {
        dc_verify_layer_cuda(dc, r, l);
        return;
    }
    for (int kv = 0; kv < 2; kv++)
        for (uint64_t i = 0; i < nb; i++) {
            uint64_t id = mixl_kv_runs_block(dg_runs(m), m->nruns, i);
            uint64_t ntok = i + 1 < nb ? (uint64_t)dg->layout.block_size
                                       : m->tokens - i * (uint64_t)dg->layout.block_size;
            uint64_t off = mixl_kv_offset(&dg->layout, l, kv, id, 0, 0);
            const void *blk = (const char *)dg->mem.ptr + off;
            uint64_t bad = mixl_kv_block_diff(&dg->layout, blk, dg_fill_id(dg, m->req), l, kv, i, ntok);
            if (bad != 0) {
                if (r->bad_blocks == 0)
                    mixl_error("request %llu: layer %d %c block %llu (request block %llu): %llu "
                               "words differ from the expected fill",
                               (unsigned long long)m->req, l, kv ? 'V' : 'K', (unsigned long long)id,
                               (unsigned long long)i, (unsigned long long)bad);
                r->bad_blocks++;
            }
        }
    /* The request fails once all its KV is in (dc_check_complete), so the
     * transfer protocol still runs to its end and frees the senders' buffers. */
}

static void dc_layer_landed(dc_t *dc, dc_req_t *r, int l)
{
    int64_t now = dg_now(dc->dg);
    r->last_progress = now;
    if (++r->landed[l] < r->nsrc) return;
    dc_verify_layer(dc, r, l);
    r->layers_complete++;
}

static void dc_check_complete(dc_t *dc, dc_req_t *r)
{
    int push = dc->dg->cfg->transfer.mode == MIXL_MODE_PUSH;
    if (r->kv_complete || r->layers_complete < dc->layers) return;
    if (push && r->dones < r->nsrc) return;
    r->kv_complete = 1;
    r->notify = dg_now(dc->dg);
    if (r->bad_blocks > 0 && r->status == MIXL_OK) {
        r->status = MIXL_ERR_CHECKSUM;
        mixl_error("request %llu: %llu blocks failed verification", (unsigned long long)r->msg->req,
                   (unsigned long long)r->bad_blocks);
    }
}

static void dc_report(dc_t *dc, dc_req_t *r)
{
    mixl_dg_t *dg = dc->dg;
    dg_msg_t rep;
    memset(&rep, 0, sizeof(rep));
    rep.type = DG_MSG_DECODE_DONE;
    rep.status = r->status;
    rep.req = r->msg->req;
    rep.t[DG_T_NOTIFY] = r->notify;
    rep.t[DG_T_FIRST_TOKEN] = r->first_token;
    rep.t[DG_T_DECODE_END] = r->decode_end ? r->decode_end : dg_now(dg);
    rep.bad_blocks = r->bad_blocks;
    if (r->xfers != NULL) {
        int64_t busy = 0, end = 0;
        uint64_t lat = 0;
        size_t n = (size_t)dc->layers * (size_t)r->nsrc;
        /* Reads are posted in layer order; the union of their intervals is the busy time. */
        for (size_t i = 0; i < n; i++) {
            if (r->posted[i] != 2) continue;
            int64_t s = r->post_ns[i] > end ? r->post_ns[i] : end;
            if (r->done_ns[i] > s) busy += r->done_ns[i] - s;
            if (r->done_ns[i] > end) end = r->done_ns[i];
            lat += (uint64_t)(r->done_ns[i] - r->post_ns[i]);
        }
        rep.t[DG_T_FIRST_BYTE] = r->first_byte;
        rep.t[DG_T_LAST_BYTE] = r->last_byte;
        rep.bytes = r->bytes;
        rep.ops = r->ops;
        rep.xfers = r->nxfers;
        rep.busy_ns = (uint64_t)busy;
        rep.lat_sum_ns = lat;
    }
    dg_send(dg, 0, &rep, NULL);
    dg_finished_one(dg);
}

static void dc_retire(dc_t *dc, size_t idx)
{
    dc_req_t *r = dc->reqs[idx];
    if (r->msg->req < dc->nfinished_cap) dc->finished[r->msg->req] = 1;
    if (r->xfers != NULL)
        for (size_t i = 0; i < (size_t)dc->layers * (size_t)r->nsrc; i++)
            if (r->xfers[i] != NULL) mixl_xfer_release(r->xfers[i]);
    free(r->xfers);
    free(r->posted);
    free(r->post_ns);
    free(r->done_ns);
    free(r->landed);
    free(r->verified);
    free(r->msg);
    free(r);
    dc->reqs[idx] = dc->reqs[--dc->nreqs];
}

static void dc_expect(dc_t *dc, dg_msg_t *m)
{
    mixl_dg_t *dg = dc->dg;
    if (dc->nreqs == dc->capreqs) {
        size_t cap = dc->capreqs ? 2 * dc->capreqs : 16;
        dc_req_t **q = realloc(dc->reqs, cap * sizeof(*q));
        if (q == NULL) {
            mixl_error("request %llu: out of memory", (unsigned long long)m->req);
            free(m);
            return;
        }
        dc->reqs = q;
        dc->capreqs = cap;
    }
    dc_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        mixl_error("request %llu: out of memory", (unsigned long long)m->req);
        free(m);
        return;
    }
    dg_fault_at(dg, m->req);
    r->msg = m;
    r->landed = calloc((size_t)dc->layers, sizeof(int));
    r->verified = calloc((size_t)dc->layers, 1);
    r->last_progress = dg_now(dg);
    r->status = (r->landed && r->verified) ? MIXL_OK : MIXL_ERR_NO_MEMORY;
    dc_sources(dc, r);
    dc->reqs[dc->nreqs++] = r;
    for (int s = 0; s < r->nsrc; s++)
        if (dg->dead[r->src[s]]) {
            dc_fail(dc, r, MIXL_ERR_DISCONNECTED, "its prefill rank died");
            return;
        }
    if (r->status == MIXL_OK && dg->cfg->transfer.mode == MIXL_MODE_PULL)
        r->status = dc_prepare_reads(dc, r);
}

/*
 * Prefill rank p died: the requests it was to send fail. Reads already
 * posted from it are abandoned, neither tested nor released (both would
 * flush towards the dead rank); the process leaves without tearing the
 * agent down.
 */
static void dc_peer_dead(dc_t *dc, int p)
{
    for (size_t k = 0; k < dc->nreqs; k++) {
        dc_req_t *r = dc->reqs[k];
        for (int s = 0; s < r->nsrc; s++) {
            if (r->src[s] != p) continue;
            if (r->xfers != NULL)
                for (int l = 0; l < dc->layers; l++) {
                    size_t i = (size_t)l * r->nsrc + s;
                    if (r->posted[i] == 1) {
                        r->posted[i] = 2;
                        r->xfers[i] = NULL;
                    }
                }
            dc_fail(dc, r, MIXL_ERR_DISCONNECTED, "its prefill rank died");
        }
    }
}

/* Returns 0 when the notification was parked for later. */
static int dc_handle_notif(dc_t *dc, const dg_notif_t *n)
{
    mixl_dg_t *dg = dc->dg;
    if (n->req < dc->nfinished_cap && dc->finished[n->req]) return 1;
    dc_req_t *r = dc_find(dc, n->req);
    if (r == NULL) {
        dg_park(dg, n); /* the router's EXPECT has not arrived yet */
        return 0;
    }
    int s = 0;
    while (s < r->nsrc && r->src[s] != n->src_rank) s++;
    if (s == r->nsrc ||
        (n->kind != DG_NOTIF_DONE && n->kind != DG_NOTIF_ABORT && n->layer >= dc->layers)) {
        mixl_warn("request %llu: unexpected notification %u from %s", (unsigned long long)n->req,
                  n->kind, dg->names[n->src_rank]);
        return 1;
    }
    switch (n->kind) {
    case DG_NOTIF_LAYER:
        if (r->first_byte == 0) r->first_byte = dg_now(dg);
        dc_layer_landed(dc, r, n->layer);
        break;
    case DG_NOTIF_DONE:
        r->dones++;
        r->last_progress = dg_now(dg);
        break;
    case DG_NOTIF_READY: {
        size_t i = (size_t)n->layer * r->nsrc + s;
        if (r->status != MIXL_OK || r->posted[i]) break;
        int64_t now = dg_now(dg);
        mixl_status_t st = mixl_xfer_post(r->xfers[i]);
        if (st != MIXL_OK && st != MIXL_IN_PROGRESS) {
            dc_fail(dc, r, st, "posting a read");
            break;
        }
        r->posted[i] = 1;
        r->post_ns[i] = now;
        if (r->first_byte == 0) r->first_byte = now;
        r->bytes += mixl_xfer_bytes(r->xfers[i]);
        r->ops += mixl_xfer_ops(r->xfers[i]);
        r->nxfers++;
        r->last_progress = now;
        break;
    }
    case DG_NOTIF_ABORT:
        dc_fail(dc, r, (mixl_status_t)n->status, "the prefill rank gave the request up");
        break;
    default: break;
    }
    dc_check_complete(dc, r);
    return 1;
}

/* Pull mode: completions of posted reads. */
static int dc_test_reads(dc_t *dc, dc_req_t *r)
{
    mixl_dg_t *dg = dc->dg;
    int progress = 0;
    if (r->xfers == NULL) return 0;
    for (int l = 0; l < dc->layers; l++)
        for (int s = 0; s < r->nsrc; s++) {
            size_t i = (size_t)l * r->nsrc + s;
            if (r->posted[i] != 1) continue;
            mixl_status_t st = mixl_xfer_test(r->xfers[i]);
            if (st == MIXL_IN_PROGRESS) continue;
            progress = 1;
            r->posted[i] = 2;
            r->done_ns[i] = r->last_byte = dg_now(dg);
            if (st != MIXL_OK) {
                dc_fail(dc, r, st, "reading a layer");
                continue;
            }
            dg_notify(dg, r->src[s], DG_NOTIF_FREED, r->msg->req, l, 0);
            dc_layer_landed(dc, r, l);
        }
    dc_check_complete(dc, r);
    return progress;
}

static void dc_alloc(dc_t *dc, dg_msg_t *m)
{
    mixl_dg_t *dg = dc->dg;
    uint64_t nb = mixl_kv_blocks_for(m->tokens, dg->layout.block_size);
    mixl_kv_run_t *runs = malloc((nb ? nb : 1) * sizeof(*runs));
    size_t nruns = 0;
    dg_msg_t rep = *m;
    rep.nruns = 0;
    mixl_status_t st = runs ? mixl_kv_alloc_get(&dc->alloc, nb, runs, &nruns) : MIXL_ERR_NO_MEMORY;
    rep.t[DG_T_ALLOC] = dg_now(dg);
    rep.type = st == MIXL_OK ? DG_MSG_ALLOC_OK : DG_MSG_ALLOC_FULL;
    rep.status = st;
    rep.nruns = (uint32_t)nruns;
    dg_send(dg, 0, &rep, runs);
    free(runs);
}

/* Emulated decode: one token per step for every request whose KV is complete. */
static int dc_decode_steps(dc_t *dc)
{
    mixl_dg_t *dg = dc->dg;
    int64_t now = dg_now(dg);
    int progress = 0;
    if (now < dc->next_step) return 0;
    int any = 0;
    for (size_t i = 0; i < dc->nreqs; i++) {
        dc_req_t *r = dc->reqs[i];
        if (!r->kv_complete || r->status != MIXL_OK) continue;
        any = 1;
        if (r->generated < r->msg->out_tokens) r->generated++;
        if (r->first_token == 0) r->first_token = now;
    }
    if (any) dc->next_step = now + (int64_t)(dg->cfg->decode.step_us * 1000.0);
    /* Report and retire the finished ones (and the failed ones). */
    for (size_t i = 0; i < dc->nreqs;) {
        dc_req_t *r = dc->reqs[i];
        int done = r->status == MIXL_OK && r->kv_complete && r->first_token != 0 &&
                   r->generated >= r->msg->out_tokens;
        int failed = r->status != MIXL_OK;
        if (!done && !failed && !r->kv_complete &&
            now - r->last_progress > (int64_t)dg->timeout_ms * 1000000) {
            dc_fail(dc, r, MIXL_ERR_TIMED_OUT, "KV did not arrive within run.timeout_ms");
            failed = 1;
        }
        if (done || failed) {
            if (done) r->decode_end = now;
            dc_report(dc, r);
            dc_retire(dc, i);
            progress = 1;
        } else {
            i++;
        }
    }
    return progress;
}

mixl_status_t dg_decode_run(mixl_dg_t *dg)
{
    dc_t dc;
    memset(&dc, 0, sizeof(dc));
    dc.dg = dg;
    dc.layers = dg->plan.model.layers;
    dc.leader = dg->me.tp_rank == 0;
    dc.nfinished_cap = (uint64_t)dg->cfg->workload.requests;
    dc.finished = calloc(dc.nfinished_cap, 1);
    dc.bad = calloc(2 * (dg->layout.blocks ? dg->layout.blocks : 1), sizeof(*dc.bad));
    if (!dc.finished || !dc.bad ||
        (dc.leader && mixl_kv_alloc_init(&dc.alloc, dg->plan.pool_blocks) != MIXL_OK)) {
        free(dc.finished);
        free(dc.bad);
        return MIXL_ERR_NO_MEMORY;
    }

    unsigned idle = 0;
    while (!dc.stop || dc.nreqs > 0) {
        int progress = 0, src;
        dg_msg_t *m;
        while (dg_poll(dg, &src, &m)) {
            progress = 1;
            switch (m->type) {
            case DG_MSG_ALLOC:
                dc_alloc(&dc, m);
                free(m);
                break;
            case DG_MSG_FREE:
                if (mixl_kv_alloc_put(&dc.alloc, dg_runs(m), m->nruns) != MIXL_OK)
                    mixl_error("request %llu: freeing blocks it does not hold",
                               (unsigned long long)m->req);
                free(m);
                break;
            case DG_MSG_EXPECT: dc_expect(&dc, m); break;
            case DG_MSG_STOP:
                dc.stop = 1;
                free(m);
                break;
            case DG_MSG_PEER_DEAD:
                dg_peer_dead(dg, (int)m->req);
                dc_peer_dead(&dc, (int)m->req);
                free(m);
                break;
            default: free(m); break;
            }
        }
        dg_notif_t notes[32];
        size_t nn = dg_notifs(dg, notes, 32);
        for (size_t i = 0; i < nn; i++) progress |= dc_handle_notif(&dc, &notes[i]);
        for (size_t i = 0; i < dc.nreqs; i++) progress |= dc_test_reads(&dc, dc.reqs[i]);
        progress |= dc_decode_steps(&dc);
        dg_flush(dg, 0);
        if (dg_alive_poll(dg) == 0) {
            dg->router_gone = 1;
            break;
        }
        if (progress) {
            idle = 0;
        } else {
            dg_idle(dg, &idle);
        }
    }
    if (dc.leader) mixl_kv_alloc_fini(&dc.alloc);
    free(dc.finished);
    free(dc.bad);
    free(dc.reqs);
    return dg->router_gone ? MIXL_ERR_DISCONNECTED : MIXL_OK;
}
