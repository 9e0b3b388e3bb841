/*
 * The prefill worker. Takes RemotePrefillRequests from the router in order
 * and "computes" each one layer by layer: a deterministic KV fill of its
 * heads into a layer buffer (slot), plus an optional emulated compute time.
 * As soon as a layer is done it is shipped:
 *   push - the prepared WRITE of that layer to every decode rank holding
 *          some of these heads is posted, carrying a "layer landed"
 *          notification; after the last layer a completion notification;
 *   pull - a "layer ready" notification; the decode rank READs the slot and
 *          answers "freed".
 * A slot is reused only when its previous layer's transfers are complete,
 * so compute runs ahead of the network by at most prefill.slots layers.
 * The transfers of one request are prepared once, before its first layer,
 * so posting a layer is only the post. Once a request's last layer is
 * shipped the next request starts computing while the previous one's
 * transfers drain.
 */
#include <stdlib.h>
#include <string.h>

#include "disagg/dg_int.h"
#include "kv/fill.h"
#include "util/clock.h"
#include "util/log.h"

#define PF_MAX_TARGETS 64

typedef struct {
    dg_msg_t *msg; /* the request (runs follow it) */
    int ntargets;
    int target[PF_MAX_TARGETS]; /* decode world ranks */
    mixl_kv_layout_t tlayout[PF_MAX_TARGETS];
    mixl_xfer_h *xfers; /* push: [layer * ntargets + t] */
    uint8_t *xdone;     /* push: completion flags, same index */
    int64_t *post_ns, *done_ns;
    int *pending;   /* per layer: targets not yet complete */
    int next_layer; /* next layer to compute */
    int computing;  /* a layer is in its emulated compute time */
    int ready;      /* computed, waiting to be shipped (queue depth) */
    int64_t compute_until;
    int layers_shipped, layers_done;
    int64_t t_start, t_end, first_byte, last_byte;
    uint64_t bytes, ops, nxfers;
    mixl_status_t status;
    int64_t last_progress;
} pf_req_t;

typedef struct {
    mixl_dg_t *dg;
    int layers, slots;
    int *slot_busy;   /* outstanding completions of the layer occupying each slot */
    dg_msg_t **queue;
    size_t nq, capq;
    pf_req_t **live; /* started, not yet reported (the computing one and draining ones) */
    size_t nlive, caplive;
    pf_req_t *computing; /* the request whose layers are being computed, or NULL */
    size_t inflight;     /* posted transfers not yet complete */
    int stop;
} pf_t;

static void pf_targets(pf_t *pf, pf_req_t *r)
{
    mixl_dg_t *dg = pf->dg;
    r->ntargets = 0;
    for (int t = 0; t < dg->plan.decode_tp && r->ntargets < PF_MAX_TARGETS; t++) {
        mixl_kv_layout_t dl = mixl_dg_decode_layout(&dg->plan, t);
        int h0, h1;
        if (!mixl_kv_head_overlap(&dg->layout, &dl, &h0, &h1)) continue;
        r->target[r->ntargets] = mixl_dg_decode_rank(&dg->plan, r->msg->decode_inst, t);
        r->tlayout[r->ntargets] = dl;
        r->ntargets++;
    }
}

/* Prepare one WRITE per (layer, target) before computing anything. */
static mixl_status_t pf_prepare(pf_t *pf, pf_req_t *r)
{
    r->xfers = calloc((size_t)pf->layers * (size_t)r->ntargets, sizeof(mixl_xfer_h));
    r->xdone = calloc((size_t)pf->layers * (size_t)r->ntargets, 1);
    if (r->xfers == NULL || r->xdone == NULL) return MIXL_ERR_NO_MEMORY;
    return dg_kv_xfers(pf->dg, r->msg, MIXL_OP_WRITE, pf->layers, r->target, r->tlayout,
                       r->ntargets, r->xfers);
}

static void pf_release(pf_t *pf, pf_req_t *r)
{
    if (r->xfers != NULL)
        for (size_t i = 0; i < (size_t)pf->layers * (size_t)r->ntargets; i++)
            if (r->xfers[i] != NULL) mixl_xfer_release(r->xfers[i]);
    free(r->xfers);
    free(r->xdone);
    free(r->post_ns);
    free(r->done_ns);
    free(r->pending);
    free(r->msg);
    free(r);
}

static int pf_grow_live(pf_t *pf)
{
    size_t cap = pf->caplive ? 2 * pf->caplive : 8;
    pf_req_t **l = realloc(pf->live, cap * sizeof(*l));
    if (l == NULL) return 0;
    pf->live = l;
    pf->caplive = cap;
    return 1;
}

static void pf_start(pf_t *pf, dg_msg_t *msg)
{
    mixl_dg_t *dg = pf->dg;
    pf_req_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (pf->nlive == pf->caplive && !pf_grow_live(pf))) {
        free(r);
        dg_msg_t rep;
        memset(&rep, 0, sizeof(rep));
        rep.type = DG_MSG_PREFILL_DONE;
        rep.status = MIXL_ERR_NO_MEMORY;
        rep.req = msg->req;
        mixl_error("request %llu: out of memory starting it", (unsigned long long)msg->req);
        dg_send(dg, 0, &rep, NULL);
        dg_finished_one(dg);
        free(msg);
        return;
    }
    dg_fault_at(dg, msg->req);
    r->msg = msg;
    r->post_ns = calloc((size_t)pf->layers, sizeof(int64_t));
    r->done_ns = calloc((size_t)pf->layers, sizeof(int64_t));
    r->pending = calloc((size_t)pf->layers, sizeof(int));
    r->status = (r->post_ns && r->done_ns && r->pending) ? MIXL_OK : MIXL_ERR_NO_MEMORY;
    r->t_start = dg_now(dg);
    r->last_progress = r->t_start;
    pf_targets(pf, r);
    for (int t = 0; t < r->ntargets && r->status == MIXL_OK; t++)
        if (dg->dead[r->target[t]]) {
            r->status = MIXL_ERR_DISCONNECTED;
            mixl_error("request %llu: its decode rank %s died", (unsigned long long)msg->req,
                       dg->names[r->target[t]]);
        }
    if (r->status == MIXL_OK && dg->cfg->transfer.mode == MIXL_MODE_PUSH)
        r->status = pf_prepare(pf, r);
    pf->live[pf->nlive++] = r;
    pf->computing = r;
}

/* Finish live request idx: completion notifications, report, release. */
static void pf_finish(pf_t *pf, size_t idx)
{
    mixl_dg_t *dg = pf->dg;
    pf_req_t *r = pf->live[idx];
    int push = dg->cfg->transfer.mode == MIXL_MODE_PUSH;

    for (int t = 0; t < r->ntargets; t++) {
        mixl_status_t st = MIXL_OK;
        if (r->status != MIXL_OK)
            st = dg_notify(dg, r->target[t], DG_NOTIF_ABORT, r->msg->req, 0, r->status);
        else if (push && dg_fault_drops(dg, r->msg->req))
            mixl_warn("fault injection: request %llu: completion notification to %s dropped",
                      (unsigned long long)r->msg->req, dg->names[r->target[t]]);
        else if (push)
            st = dg_notify(dg, r->target[t], DG_NOTIF_DONE, r->msg->req, pf->layers, 0);
        if (st != MIXL_OK && r->status == MIXL_OK) r->status = st;
    }
    /* Union of the layers' [post, done] intervals: time the network was busy for this request. */
    int64_t busy = 0, end = 0;
    uint64_t lat = 0;
    for (int l = 0; l < r->layers_done; l++) {
        int64_t s = r->post_ns[l] > end ? r->post_ns[l] : end;
        if (r->done_ns[l] > s) busy += r->done_ns[l] - s;
        if (r->done_ns[l] > end) end = r->done_ns[l];
        lat += (uint64_t)(r->done_ns[l] - r->post_ns[l]);
    }
    dg_msg_t rep;
    memset(&rep, 0, sizeof(rep));
    rep.type = DG_MSG_PREFILL_DONE;
    rep.status = r->status;
    rep.req = r->msg->req;
    rep.t[DG_T_PREFILL_START] = r->t_start;
    rep.t[DG_T_PREFILL_END] = r->t_end ? r->t_end : dg_now(dg);
    if (push) {
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
    if (pf->computing == r) pf->computing = NULL;
    pf_release(pf, r);
    memmove(pf->live + idx, pf->live + idx + 1, (pf->nlive - idx - 1) * sizeof(*pf->live));
    pf->nlive--;
}

static void pf_fail(pf_t *pf, pf_req_t *r, mixl_status_t st, const char *what, int layer)
{
    if (r->status != MIXL_OK) return;
    r->status = st;
    /* The request's outcome; a failed MIXL call logged its cause already (the agent's
     * first-error message may be older than this failure, so it is not repeated). */
    mixl_error("request %llu: %s (layer %d): %s", (unsigned long long)r->msg->req, what, layer,
               mixl_status_str(st));
}

/* Compute a layer: fill this rank's heads of every token, then the emulated time. */
static void pf_compute(pf_t *pf, pf_req_t *r, int l)
{
    mixl_dg_t *dg = pf->dg;
    int slot = l % pf->slots;
    int64_t t0 = dg_now(dg);
    if (l == 0) r->t_start = t0;
    /* In device memory a CUDA kernel fills the layer (kv/kernels_cuda.cu). */
    mixl_status_t st = mixl_kv_mem_fill_layer(&dg->mem, &dg->layout, slot, l,
                                              dg_fill_id(dg, r->msg->req), r->msg->tokens);
    if (st != MIXL_OK) pf_fail(pf, r, st, "filling the layer", l);
    /* Fault injection, to show that verification catches damaged KV: one byte of layer 0, TP rank 0. */
    int64_t every = dg->cfg->prefill.corrupt_every;
    int hit = dg_fault_corrupts(dg, r->msg->req, l);
    if (hit)
        mixl_warn("fault injection: request %llu: one byte of layer %d flipped after the fill",
                  (unsigned long long)r->msg->req, l);
    if (hit ||
        (every > 0 && l == 0 && dg->me.tp_rank == 0 && (r->msg->req + 1) % (uint64_t)every == 0)) {
        uint8_t b = 0;
        uint64_t off = mixl_kv_offset(&dg->layout, slot, 0, 0, 0, 0);
        if (mixl_kv_mem_to_host(&dg->mem, off, &b, 1) == MIXL_OK) {
            b ^= 0x5a;
            mixl_kv_mem_from_host(&dg->mem, off, &b, 1);
        }
    }
    pf->slot_busy[slot] = 1;
    r->computing = 1;
    r->compute_until = t0 + (int64_t)(dg->cfg->prefill.layer_compute_us * 1000.0);
}

/* Ship a computed layer: post its writes (push) or announce it (pull). */
static int pf_ship(pf_t *pf, pf_req_t *r, int l)
{
    mixl_dg_t *dg = pf->dg;
    int push = dg->cfg->transfer.mode == MIXL_MODE_PUSH;
    if (push && pf->inflight + (size_t)r->ntargets > (size_t)dg->cfg->data_plane.queue_depth &&
        pf->inflight > 0)
        return 0; /* queue depth reached: wait for completions */
    int64_t now = dg_now(dg);
    r->post_ns[l] = now;
    r->pending[l] = r->ntargets;
    pf->slot_busy[l % pf->slots] = r->ntargets;
    if (r->first_byte == 0) r->first_byte = now;
    for (int t = 0; t < r->ntargets; t++) {
        if (push) {
            mixl_xfer_h x = r->xfers[(size_t)l * r->ntargets + t];
            mixl_status_t st = mixl_xfer_post(x);
            if (st == MIXL_OK || st == MIXL_IN_PROGRESS) {
                r->bytes += mixl_xfer_bytes(x);
                r->ops += mixl_xfer_ops(x);
                r->nxfers++;
                pf->inflight++;
            } else {
                pf_fail(pf, r, st, "posting the write", l);
                r->xdone[(size_t)l * r->ntargets + t] = 1;
                r->pending[l]--;
            }
        } else if (l == 0 && dg_fault_drops(dg, r->msg->req)) {
            mixl_warn("fault injection: request %llu: layer-ready notification to %s dropped",
                      (unsigned long long)r->msg->req, dg->names[r->target[t]]);
        } else {
            mixl_status_t st = dg_notify(dg, r->target[t], DG_NOTIF_READY, r->msg->req, l, 0);
            if (st != MIXL_OK) {
                pf_fail(pf, r, st, "announcing the layer", l);
                r->pending[l]--;
            }
        }
    }
    if (r->pending[l] == 0) {
        r->done_ns[l] = now;
        pf->slot_busy[l % pf->slots] = 0;
    }
    r->layers_shipped++;
    if (l == pf->layers - 1) r->t_end = now;
    return 1;
}

static void pf_layer_complete(pf_t *pf, pf_req_t *r, int l)
{
    int64_t now = dg_now(pf->dg);
    if (--r->pending[l] > 0) return;
    r->done_ns[l] = now;
    r->last_byte = now;
    pf->slot_busy[l % pf->slots] = 0;
}

/* One pass over live request idx; returns 1 when something happened. */
static int pf_step(pf_t *pf, size_t idx)
{
    mixl_dg_t *dg = pf->dg;
    pf_req_t *r = pf->live[idx];
    int push = dg->cfg->transfer.mode == MIXL_MODE_PUSH;
    int progress = 0;

    if (r->status == MIXL_OK) {
        /* Completions of posted writes. */
        if (push)
            for (int l = r->layers_done; l < r->layers_shipped; l++)
                for (int t = 0; t < r->ntargets; t++) {
                    size_t i = (size_t)l * r->ntargets + t;
                    if (r->xdone[i]) continue;
                    mixl_status_t st = mixl_xfer_test(r->xfers[i]);
                    if (st == MIXL_IN_PROGRESS) continue;
                    r->xdone[i] = 1;
                    pf->inflight--;
                    progress = 1;
                    if (st != MIXL_OK) pf_fail(pf, r, st, "write to the decode rank", l);
                    pf_layer_complete(pf, r, l);
                }
        if (r == pf->computing && r->computing && dg_now(dg) >= r->compute_until) {
            r->computing = 0;
            r->ready = 1;
        }
        if (r->ready && pf_ship(pf, r, r->next_layer)) {
            r->ready = 0;
            r->next_layer++;
            progress = 1;
            /* Every layer shipped: the next request may start computing. */
            if (r->next_layer == pf->layers) pf->computing = NULL;
        }
        if (r == pf->computing && !r->computing && !r->ready && r->next_layer < pf->layers &&
            pf->slot_busy[r->next_layer % pf->slots] == 0) {
            pf_compute(pf, r, r->next_layer);
            progress = 1;
        }
    }
    while (r->layers_done < r->layers_shipped && r->pending[r->layers_done] == 0) r->layers_done++;
    if (progress) r->last_progress = dg_now(dg);

    int finished = r->layers_done == pf->layers;
    if (r->status != MIXL_OK) {
        /* Failed: wait only for writes already in flight, then report. */
        finished = 1;
        if (push)
            for (int l = 0; l < r->layers_shipped; l++)
                for (int t = 0; t < r->ntargets; t++) {
                    size_t i = (size_t)l * r->ntargets + t;
                    if (!r->xdone[i] && mixl_xfer_test(r->xfers[i]) == MIXL_IN_PROGRESS &&
                        dg_now(dg) - r->last_progress < (int64_t)dg->timeout_ms * 1000000)
                        finished = 0;
                    else if (!r->xdone[i]) {
                        r->xdone[i] = 1;
                        pf->inflight--;
                    }
                }
        if (finished) {
            /* Give back the slots this request still holds (not those of other requests). */
            for (int l = 0; l < r->layers_shipped; l++)
                if (r->pending[l] > 0) {
                    r->pending[l] = 0;
                    pf->slot_busy[l % pf->slots] = 0;
                }
            if (r->computing || r->ready) pf->slot_busy[r->next_layer % pf->slots] = 0;
        }
    } else if (!finished && dg_now(dg) - r->last_progress > (int64_t)dg->timeout_ms * 1000000) {
        pf_fail(pf, r, MIXL_ERR_TIMED_OUT, "no transfer progress within run.timeout_ms",
                r->layers_done);
    }
    if (finished) {
        pf_finish(pf, idx);
        progress = 1;
    }
    return progress;
}

static void pf_handle_notif(pf_t *pf, const dg_notif_t *n)
{
    pf_req_t *r = NULL;
    for (size_t i = 0; i < pf->nlive && r == NULL; i++)
        if (pf->live[i]->msg->req == n->req) r = pf->live[i];
    if (r == NULL) return; /* a finished request's late news */
    if (n->kind == DG_NOTIF_FREED && n->layer < pf->layers && r->pending[n->layer] > 0) {
        pf_layer_complete(pf, r, n->layer);
        r->last_progress = dg_now(pf->dg);
    } else if (n->kind == DG_NOTIF_ABORT) {
        pf_fail(pf, r, (mixl_status_t)n->status, "the decode rank gave the request up", n->layer);
    }
}

/*
 * Decode rank d died: the requests writing to it fail. Writes already posted
 * to it are abandoned, neither tested nor released (both would flush towards
 * the dead rank and could wait for ever); the process leaves without
 * tearing the agent down, so nothing else touches them.
 */
static void pf_peer_dead(pf_t *pf, int d)
{
    for (size_t k = 0; k < pf->nlive; k++) {
        pf_req_t *r = pf->live[k];
        for (int t = 0; t < r->ntargets; t++) {
            if (r->target[t] != d) continue;
            if (r->xfers != NULL)
                for (int l = 0; l < r->layers_shipped; l++) {
                    size_t i = (size_t)l * r->ntargets + t;
                    if (r->xdone[i]) continue;
                    r->xdone[i] = 1;
                    r->xfers[i] = NULL;
                    pf->inflight--;
                }
            if (r->status == MIXL_OK) {
                r->status = MIXL_ERR_DISCONNECTED;
                mixl_error("request %llu: its decode rank %s died", (unsigned long long)r->msg->req,
                           pf->dg->names[d]);
            }
        }
    }
}

mixl_status_t dg_prefill_run(mixl_dg_t *dg)
{
    pf_t pf;
    memset(&pf, 0, sizeof(pf));
    pf.dg = dg;
    pf.layers = dg->plan.model.layers;
    pf.slots = dg->plan.slots;
    pf.slot_busy = calloc((size_t)pf.slots, sizeof(int));
    if (pf.slot_busy == NULL) return MIXL_ERR_NO_MEMORY;

    unsigned idle = 0;
    while (!pf.stop || pf.nlive > 0 || pf.nq > 0) {
        int progress = 0, src;
        dg_msg_t *m;
        while (dg_poll(dg, &src, &m)) {
            progress = 1;
            if (m->type == DG_MSG_STOP) {
                pf.stop = 1;
                free(m);
            } else if (m->type == DG_MSG_PEER_DEAD) {
                dg_peer_dead(dg, (int)m->req);
                pf_peer_dead(&pf, (int)m->req);
                free(m);
            } else if (m->type == DG_MSG_PREFILL) {
                if (pf.nq == pf.capq) {
                    size_t cap = pf.capq ? 2 * pf.capq : 16;
                    dg_msg_t **q = realloc(pf.queue, cap * sizeof(*q));
                    if (q == NULL) {
                        free(m);
                        continue;
                    }
                    pf.queue = q;
                    pf.capq = cap;
                }
                pf.queue[pf.nq++] = m;
            } else {
                free(m);
            }
        }
        dg_notif_t notes[32];
        size_t nn = dg_notifs(dg, notes, 32);
        for (size_t i = 0; i < nn; i++) pf_handle_notif(&pf, &notes[i]);
        if (nn > 0) progress = 1;
        if (pf.computing == NULL && pf.nq > 0) {
            dg_msg_t *next = pf.queue[0];
            memmove(pf.queue, pf.queue + 1, (pf.nq - 1) * sizeof(*pf.queue));
            pf.nq--;
            pf_start(&pf, next);
            progress = 1;
        }
        /* Backwards, so a request pf_step retires does not shift those still to visit. */
        for (size_t i = pf.nlive; i-- > 0;) progress |= pf_step(&pf, i);
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
    free(pf.slot_busy);
    free(pf.queue);
    free(pf.live);
    return dg->router_gone ? MIXL_ERR_DISCONNECTED : MIXL_OK;
}
