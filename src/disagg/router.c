/*
 * The router (rank 0). Releases requests at their arrival times, and for the
 * oldest waiting one picks the least-loaded decode instance with room for
 * its blocks and the least-loaded prefill instance with room in its queue
 * (back-pressure: otherwise the request waits, in order, and nothing is
 * dropped; blocks are not held by requests that could not start yet). It
 * asks the decode leader for blocks, then sends the RemotePrefillRequest
 * (request, tokens, block runs, decode instance) to the prefill ranks and
 * announces the request to the decode ranks. When every rank involved has
 * reported, the blocks are freed and the request's timeline is recorded.
 */
#include <stdlib.h>
#include <string.h>

#include "disagg/dg_int.h"
#include "disagg/live.h"
#include "disagg/progress.h"
#include "disagg/results.h"
#include "kv/layout.h"
#include "util/log.h"

_Static_assert(DG_T_COUNT == MIXL_DG_T_COUNT, "timeline slots differ between messages and results");

enum { RQ_FUTURE, RQ_QUEUED, RQ_ALLOCATING, RQ_RUNNING, RQ_DONE };

typedef struct {
    int state;
    mixl_kv_run_t *runs;
    uint32_t nruns;
    uint64_t need;              /* blocks */
    uint64_t pre_rep, dec_rep;  /* TP ranks (bits) of each side that reported */
    int pre_left;               /* its prefill instance is done with it (queue place freed) */
} rt_req_t;

typedef struct {
    mixl_dg_t *dg;
    const mixl_workload_t *wl;
    mixl_dg_results_t *res;
    rt_req_t *rq;
    size_t *queue, qhead, qtail; /* FIFO of request ids waiting for blocks */
    uint64_t *dec_free;
    int *dec_active, *pre_active;
    uint8_t *dec_dead, *pre_dead; /* instances with a dead rank take no more requests */
    int dec_alive, pre_alive;
    size_t done, failed, inflight;
    uint64_t bytes;
} rt_t;

static void rt_finish(rt_t *rt, size_t id);

/*
 * Request id no longer occupies its prefill instance: every prefill rank
 * reported (the KV is shipped) or the request ended. Its place in the
 * instance's queue (prefill.queue) is free from then on, while the decode
 * instance still holds its blocks: a place held through decoding left the
 * prefill idle for the whole decode of the requests before (at 64 output
 * tokens and prefill.queue 2, a fifth of the link across nodes unused,
 * docs/performance.md).
 */
static void rt_prefill_leave(rt_t *rt, size_t id)
{
    if (rt->rq[id].pre_left) return;
    rt->rq[id].pre_left = 1;
    rt->pre_active[rt->res->req[id].prefill_inst]--;
}

static int rt_pick_decode(rt_t *rt, uint64_t need)
{
    int best = -1;
    for (int j = 0; j < rt->dg->plan.decode_instances; j++) {
        if (rt->dec_dead[j] || rt->dec_free[j] < need) continue;
        if (best < 0 || rt->dec_active[j] < rt->dec_active[best] ||
            (rt->dec_active[j] == rt->dec_active[best] && rt->dec_free[j] > rt->dec_free[best]))
            best = j;
    }
    return best;
}

/* Least-loaded prefill instance with room in its queue, or -1. */
static int rt_pick_prefill(rt_t *rt)
{
    int best = -1;
    for (int i = 0; i < rt->dg->plan.prefill_instances; i++)
        if (!rt->pre_dead[i] && rt->pre_active[i] < rt->dg->cfg->prefill.queue &&
            (best < 0 || rt->pre_active[i] < rt->pre_active[best]))
            best = i;
    return best;
}

/* Hand out waiting requests while some decode pool has room, oldest first. */
static int rt_dispatch(rt_t *rt)
{
    mixl_dg_t *dg = rt->dg;
    int progress = 0;
    while (rt->qhead < rt->qtail) {
        size_t id = rt->queue[rt->qhead];
        mixl_dg_req_t *r = &rt->res->req[id];
        int j = rt_pick_decode(rt, rt->rq[id].need);
        int i = rt_pick_prefill(rt);
        if (j < 0 || i < 0) break; /* back-pressure: wait for blocks or a prefill queue slot */
        rt->qhead++;
        rt->dec_free[j] -= rt->rq[id].need;
        rt->dec_active[j]++;
        rt->pre_active[i]++;
        rt->inflight++;
        r->prefill_inst = i;
        r->decode_inst = j;
        rt->rq[id].state = RQ_ALLOCATING;
        dg_msg_t m;
        memset(&m, 0, sizeof(m));
        m.type = DG_MSG_ALLOC;
        m.req = id;
        m.tokens = r->prompt;
        m.out_tokens = r->out_tokens;
        m.prefill_inst = i;
        m.decode_inst = j;
        dg_send(dg, mixl_dg_decode_rank(&dg->plan, j, 0), &m, NULL);
        progress = 1;
    }
    size_t queued = rt->qtail - rt->qhead;
    if (queued > rt->res->max_queued) rt->res->max_queued = queued;
    return progress;
}

static void rt_allocated(rt_t *rt, dg_msg_t *m)
{
    mixl_dg_t *dg = rt->dg;
    size_t id = (size_t)m->req;
    mixl_dg_req_t *r = &rt->res->req[id];

    if (m->type == DG_MSG_ALLOC_FULL) {
        /* The pool disagreed with our accounting: wait for frees, keep the order. */
        mixl_warn("request %zu: decode-%d.0 had no room; waiting", id, r->decode_inst);
        r->status = 0; /* starts afresh (a prefill instance that died meanwhile no longer matters) */
        rt->dec_free[r->decode_inst] += rt->rq[id].need;
        rt->dec_active[r->decode_inst]--;
        rt->pre_active[r->prefill_inst]--;
        rt->inflight--;
        rt->queue[--rt->qhead] = id;
        rt->rq[id].state = RQ_QUEUED;
        return;
    }
    r->t[DG_T_ALLOC] = m->t[DG_T_ALLOC];
    r->runs = m->nruns;
    r->blocks = mixl_kv_runs_blocks(dg_runs(m), m->nruns);
    rt->rq[id].runs = malloc(m->nruns * sizeof(mixl_kv_run_t));
    if (rt->rq[id].runs != NULL)
        memcpy(rt->rq[id].runs, dg_runs(m), m->nruns * sizeof(mixl_kv_run_t));
    rt->rq[id].nruns = m->nruns;
    rt->rq[id].state = RQ_RUNNING;
    if (rt->pre_dead[r->prefill_inst]) {
        /* Its prefill instance died meanwhile: the blocks go straight back. */
        rt_finish(rt, id);
        return;
    }

    dg_msg_t out = *m;
    out.type = DG_MSG_PREFILL;
    for (int t = 0; t < dg->plan.prefill_tp; t++)
        dg_send(dg, mixl_dg_prefill_rank(&dg->plan, r->prefill_inst, t), &out, dg_runs(m));
    out.type = DG_MSG_EXPECT;
    for (int t = 0; t < dg->plan.decode_tp; t++)
        dg_send(dg, mixl_dg_decode_rank(&dg->plan, r->decode_inst, t), &out, dg_runs(m));
}

static void rt_min(int64_t *dst, int64_t v)
{
    if (v > 0 && (*dst == 0 || v < *dst)) *dst = v;
}

static void rt_max(int64_t *dst, int64_t v)
{
    if (v > *dst) *dst = v;
}

/*
 * Request id ended: give its blocks back (unless its decode instance died
 * with them), account for it and hand it to the results file.
 */
static void rt_finish(rt_t *rt, size_t id)
{
    mixl_dg_t *dg = rt->dg;
    mixl_dg_req_t *r = &rt->res->req[id];
    int dec_ok = !rt->dec_dead[r->decode_inst];
    if (rt->rq[id].runs != NULL && dec_ok) {
        dg_msg_t f;
        memset(&f, 0, sizeof(f));
        f.type = DG_MSG_FREE;
        f.req = id;
        f.nruns = rt->rq[id].nruns;
        dg_send(dg, mixl_dg_decode_rank(&dg->plan, r->decode_inst, 0), &f, rt->rq[id].runs);
    }
    free(rt->rq[id].runs);
    rt->rq[id].runs = NULL;
    rt->rq[id].state = RQ_DONE;
    if (dec_ok) rt->dec_free[r->decode_inst] += rt->rq[id].need;
    rt->dec_active[r->decode_inst]--;
    rt_prefill_leave(rt, id);
    rt->inflight--;
    rt->done++;
    dg_finished_one(dg);
    rt->bytes += r->bytes;
    if (r->status != 0) rt->failed++;
    dg_live_request(dg->live, r);
    mixl_dg_results_done(rt->res, id);
}

/* Every living rank involved in running request id has reported: finish it. */
static void rt_try_finish(rt_t *rt, size_t id)
{
    const mixl_dg_plan_t *p = &rt->dg->plan;
    const mixl_dg_req_t *r = &rt->res->req[id];
    const uint8_t *dead = rt->dg->dead;
    for (int t = 0; t < p->prefill_tp; t++)
        if (!(rt->rq[id].pre_rep >> t & 1) && !dead[mixl_dg_prefill_rank(p, r->prefill_inst, t)])
            return;
    for (int t = 0; t < p->decode_tp; t++)
        if (!(rt->rq[id].dec_rep >> t & 1) && !dead[mixl_dg_decode_rank(p, r->decode_inst, t)])
            return;
    rt_finish(rt, id);
}

static void rt_report(rt_t *rt, int src, const dg_msg_t *m)
{
    mixl_dg_t *dg = rt->dg;
    size_t id = (size_t)m->req;
    if (id >= rt->res->count || rt->rq[id].state != RQ_RUNNING) {
        /* A request that already ended because a rank died: a survivor's late word. */
        if (id < rt->res->count && rt->res->req[id].status == MIXL_ERR_DISCONNECTED) return;
        mixl_warn("report for request %zu, which is not running", id);
        return;
    }
    mixl_dg_rank_t who = mixl_dg_rank_of(&dg->plan, src);
    uint64_t *rep = who.role == MIXL_ROLE_PREFILL ? &rt->rq[id].pre_rep : &rt->rq[id].dec_rep;
    if (*rep >> who.tp_rank & 1) {
        mixl_warn("second report for request %zu from %s", id, dg->names[src]);
        return;
    }
    *rep |= 1ull << who.tp_rank;
    if (who.role == MIXL_ROLE_PREFILL && rt->rq[id].pre_rep == ~0ull >> (64 - dg->plan.prefill_tp))
        rt_prefill_leave(rt, id);
    mixl_dg_req_t *r = &rt->res->req[id];
    if (m->status != 0 && r->status == 0) r->status = m->status;
    r->bytes += m->bytes;
    r->ops += m->ops;
    r->xfers += m->xfers;
    r->lat_sum_ns += m->lat_sum_ns;
    r->bad_blocks += m->bad_blocks;
    if (m->busy_ns > r->busy_ns) r->busy_ns = m->busy_ns;
    rt_min(&r->t[DG_T_PREFILL_START], m->t[DG_T_PREFILL_START]);
    rt_max(&r->t[DG_T_PREFILL_END], m->t[DG_T_PREFILL_END]);
    rt_min(&r->t[DG_T_FIRST_BYTE], m->t[DG_T_FIRST_BYTE]);
    rt_max(&r->t[DG_T_LAST_BYTE], m->t[DG_T_LAST_BYTE]);
    rt_max(&r->t[DG_T_NOTIFY], m->t[DG_T_NOTIFY]);
    rt_max(&r->t[DG_T_FIRST_TOKEN], m->t[DG_T_FIRST_TOKEN]);
    rt_max(&r->t[DG_T_DECODE_END], m->t[DG_T_DECODE_END]);
    r->reports++;
    rt_try_finish(rt, id);
}

/* A request that cannot run: failed with status st without any rank involved. */
static void rt_fail_unrun(rt_t *rt, size_t id, int32_t st)
{
    mixl_dg_req_t *r = &rt->res->req[id];
    r->status = st;
    rt->rq[id].state = RQ_DONE;
    rt->done++;
    rt->failed++;
    dg_live_request(rt->dg->live, r);
    mixl_dg_results_done(rt->res, id);
}

/*
 * Rank d died (its liveness connection closed). Its instance takes no more
 * requests; the requests on that instance fail as disconnected, each once
 * every living rank involved has let go of it (so no block is reused while
 * a survivor may still write it); the workers are told, so that none of
 * them waits for the dead rank or enters an MPI call towards it.
 */
static void rt_peer_died(rt_t *rt, int d)
{
    mixl_dg_t *dg = rt->dg;
    if (d <= 0 || d >= dg->world || dg->dead[d]) return;
    dg->dead[d] = 1;
    dg->ndead++;
    mixl_dg_rank_t who = mixl_dg_rank_of(&dg->plan, d);
    int pre = who.role == MIXL_ROLE_PREFILL;
    if (pre && !rt->pre_dead[who.inst]) {
        rt->pre_dead[who.inst] = 1;
        rt->pre_alive--;
    } else if (!pre && !rt->dec_dead[who.inst]) {
        rt->dec_dead[who.inst] = 1;
        rt->dec_alive--;
    }
    size_t hit = 0;
    for (size_t id = 0; id < rt->res->count; id++) {
        int s = rt->rq[id].state;
        mixl_dg_req_t *r = &rt->res->req[id];
        if (s != RQ_ALLOCATING && s != RQ_RUNNING) continue;
        if ((pre ? r->prefill_inst : r->decode_inst) != who.inst) continue;
        hit++;
        if (r->status == 0) r->status = MIXL_ERR_DISCONNECTED;
        if (s == RQ_RUNNING)
            rt_try_finish(rt, id);
        else if (!pre)
            rt_finish(rt, id); /* its allocation died with the pool */
        /* allocating on a live pool for a dead prefill: rt_allocated gives the blocks back */
    }
    mixl_error("%s died: %s %d (rank %d, host %s), %.3f s into the run; %zu requests on it "
               "failed; %d prefill and %d decode instances left",
               dg->names[d], pre ? "prefill instance" : "decode instance", who.inst, d, dg->hosts[d],
               (double)(dg_now(dg) - rt->res->start_ns) / 1e9, hit, rt->pre_alive, rt->dec_alive);
    dg_msg_t m;
    memset(&m, 0, sizeof(m));
    m.type = DG_MSG_PEER_DEAD;
    m.req = (uint64_t)d;
    for (int w = 1; w < dg->world; w++) dg_send(dg, w, &m, NULL); /* dg_send skips the dead */
}

/* Name what is stuck, for the error when the router times out. */
static void rt_dump_stuck(rt_t *rt)
{
    static const char *const names[] = {"future", "queued", "allocating", "running", "done"};
    int shown = 0;
    for (size_t i = 0; i < rt->res->count && shown < 8; i++) {
        int s = rt->rq[i].state;
        if (s != RQ_ALLOCATING && s != RQ_RUNNING) continue;
        mixl_dg_req_t *r = &rt->res->req[i];
        mixl_error("request %zu is %s: prefill instance %d, decode instance %d, %d of %d reports",
                   i, names[s], r->prefill_inst, r->decode_inst, r->reports,
                   rt->dg->plan.prefill_tp + rt->dg->plan.decode_tp);
        shown++;
    }
}

mixl_status_t dg_router_run(mixl_dg_t *dg, const mixl_workload_t *wl, mixl_dg_results_t *res)
{
    rt_t rt;
    mixl_status_t st = MIXL_OK;
    size_t n = wl->count;
    mixl_progress_t prog;

    memset(&rt, 0, sizeof(rt));
    rt.dg = dg;
    rt.wl = wl;
    rt.res = res;
    res->count = n;
    res->req = calloc(n, sizeof(mixl_dg_req_t));
    rt.rq = calloc(n, sizeof(rt_req_t));
    rt.queue = calloc(n, sizeof(size_t));
    rt.dec_free = calloc((size_t)dg->plan.decode_instances, sizeof(uint64_t));
    rt.dec_active = calloc((size_t)dg->plan.decode_instances, sizeof(int));
    rt.pre_active = calloc((size_t)dg->plan.prefill_instances, sizeof(int));
    rt.dec_dead = calloc((size_t)dg->plan.decode_instances, 1);
    rt.pre_dead = calloc((size_t)dg->plan.prefill_instances, 1);
    rt.dec_alive = dg->plan.decode_instances;
    rt.pre_alive = dg->plan.prefill_instances;
    if (!res->req || !rt.rq || !rt.queue || !rt.dec_free || !rt.dec_active || !rt.pre_active ||
        !rt.dec_dead || !rt.pre_dead) {
        st = MIXL_ERR_NO_MEMORY;
        goto out;
    }
    /* Claim the per-request records now (calloc maps them lazily): the run's memory is
     * taken at the start, not request by request, so resident memory stays flat. */
    memset(res->req, 0, n * sizeof(mixl_dg_req_t));
    memset(rt.rq, 0, n * sizeof(rt_req_t));
    memset(rt.queue, 0, n * sizeof(size_t));
    for (int j = 0; j < dg->plan.decode_instances; j++) rt.dec_free[j] = dg->plan.pool_blocks;
    for (size_t i = 0; i < n; i++) {
        res->req[i].id = i;
        res->req[i].prompt = wl->prompt[i];
        res->req[i].out_tokens = wl->output_tokens;
        res->req[i].prefill_inst = res->req[i].decode_inst = -1;
        rt.rq[i].need = mixl_kv_blocks_for(wl->prompt[i], dg->plan.model.block_size);
    }
    res->bytes_per_token = mixl_kv_bytes_per_token(&dg->plan.model);
    mixl_progress_init(&prog, stdout, dg->cfg->run.progress, dg->cfg->run.progress_interval_ms);

    /*
     * Workers report their own timeouts; give them time to do so, plus the
     * emulated compute of the requests a prefill instance may hold, before
     * concluding that a rank stopped answering. Only worker messages count
     * as progress (arrivals and dispatches do not).
     */
    int64_t patience = 2 * (int64_t)dg->timeout_ms * 1000000 + 1000000000 +
                       (int64_t)(dg->cfg->prefill.layer_compute_us * 1000.0) *
                           dg->plan.model.layers * dg->cfg->prefill.queue;
    int64_t start = dg_now(dg), last_event = start;
    size_t next = 0;
    unsigned idle = 0;
    res->start_ns = start;
    while (rt.done < n) {
        int progress = 0, src;
        int64_t now = dg_now(dg);
        while (next < n && start + (int64_t)wl->arrival_ns[next] <= now) {
            res->req[next].t[DG_T_ARRIVAL] = start + (int64_t)wl->arrival_ns[next];
            rt.rq[next].state = RQ_QUEUED;
            rt.queue[rt.qtail++] = next++;
            progress = 1;
        }
        for (int d; (d = dg_alive_poll(dg)) >= 0;) {
            rt_peer_died(&rt, d);
            progress = 1;
        }
        if (rt.pre_alive == 0 || rt.dec_alive == 0) {
            /* Nothing can run any more: every request not yet handed out fails now. */
            for (; next < n; next++) {
                res->req[next].t[DG_T_ARRIVAL] = start + (int64_t)wl->arrival_ns[next];
                rt.queue[rt.qtail++] = next;
            }
            for (; rt.qhead < rt.qtail; rt.qhead++)
                rt_fail_unrun(&rt, rt.queue[rt.qhead], MIXL_ERR_UNREACHABLE);
        }
        progress |= rt_dispatch(&rt);
        dg_msg_t *m;
        while (dg_poll(dg, &src, &m)) {
            progress = 1;
            last_event = dg_now(dg);
            if (m->req >= n) {
                mixl_warn("control message %u from %s for unknown request %llu", m->type,
                          dg->names[src], (unsigned long long)m->req);
            } else if (m->type == DG_MSG_ALLOC_OK || m->type == DG_MSG_ALLOC_FULL) {
                rt_allocated(&rt, m);
            } else if (m->type == DG_MSG_PREFILL_DONE || m->type == DG_MSG_DECODE_DONE) {
                dg_live_counters(dg->live, src, &m->agent, &m->reg);
                rt_report(&rt, src, m);
            }
            free(m);
        }
        dg_flush(dg, 0);
        now = dg_now(dg);
        if (rt.inflight == 0) last_event = now; /* nothing is owed to us */
        if (rt.inflight > 0 && now - last_event > patience) {
            mixl_progress_end(&prog);
            mixl_error("no progress for %lld ms with %zu requests in flight",
                       (long long)(patience / 1000000), rt.inflight);
            rt_dump_stuck(&rt);
            st = MIXL_ERR_TIMED_OUT;
            goto out;
        }
        if (progress)
            idle = 0;
        else
            dg_idle(dg, &idle);
        dg_live_tick(dg->live, now, 0, rt.dec_free, rt.inflight, rt.qtail - rt.qhead);
        mixl_dg_results_tick(res);
        mixl_progress_update(
            &prog, now, 0, "[%zu/%zu] done, %zu failed, %zu in flight, %zu queued, %.1f MiB moved",
            rt.done, n, rt.failed, rt.inflight, rt.qtail - rt.qhead, (double)rt.bytes / 1048576.0);
    }
    res->end_ns = dg_now(dg);
    dg_live_tick(dg->live, res->end_ns, 1, rt.dec_free, 0, 0);
    mixl_progress_update(&prog, res->end_ns, 1, "[%zu/%zu] done, %zu failed, %.1f MiB moved",
                         rt.done, n, rt.failed, (double)rt.bytes / 1048576.0);
    mixl_progress_end(&prog);
out:
    if (rt.rq != NULL)
        for (size_t i = 0; i < n; i++) free(rt.rq[i].runs);
    free(rt.rq);
    free(rt.queue);
    free(rt.dec_free);
    free(rt.dec_active);
    free(rt.pre_active);
    free(rt.dec_dead);
    free(rt.pre_dead);
    return st;
}
