/*
 * MIXL micro-benchmark runners: for every point one prepared request
 * (mixl_xfer_create once), then post + test to completion per iteration,
 * so the latency is per request and the bandwidth is what back-to-back
 * requests sustain. Descriptors and process layout match the baselines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modes.h"
#include "session.h"
#include "sweep.h"
#include "verify.h"

typedef struct {
    mixl_xfer_h xfer;
    int timeout_ms;
    int sleep; /* wait in mixl_xfer_wait, not by polling */
} mixl_arg_t;

static mixl_status_t mixl_iter(void *p)
{
    const mixl_arg_t *a = p;
    if (a->sleep) {
        /* A backend with its own progress thread (TCP) completes requests
         * there: polling from here only takes a core from it, the plain
         * socket loop it is compared with sleeps in recv. */
        mixl_status_t st = mixl_xfer_post(a->xfer);
        return st == MIXL_IN_PROGRESS ? mixl_xfer_wait(a->xfer, a->timeout_ms) : st;
    }
    return bench_xfer_run(a->xfer, (uint64_t)a->timeout_ms * 1000000ull);
}

static void mixl_row(bench_row_t *row, unsigned backend, unsigned kind, unsigned pattern, int write,
                     uint64_t size, uint64_t batch)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "mixl");
    snprintf(row->backend, sizeof(row->backend), "%s", bench_backend_name(backend));
    snprintf(row->op, sizeof(row->op), "%s", write ? "WRITE" : "READ");
    snprintf(row->mem, sizeof(row->mem), "%s", bench_mem_name(kind));
    snprintf(row->pattern, sizeof(row->pattern), "%s", bench_pattern_name(pattern));
    row->size = size;
    row->batch = batch;
}

static mixl_status_t mixl_point(bench_ctx_t *ctx, bench_session_t *s, const bench_role_t *role,
                                unsigned kind, unsigned pattern, int write, uint64_t size,
                                uint64_t batch)
{
    const bench_opts_t *o = ctx->opts;
    uint64_t bytes = size * batch;
    unsigned iters = bench_scaled_iters(o->iters, bytes, 8);
    unsigned warmup = bench_scaled_iters(o->warmup, bytes, 2);
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    mixl_desc_t *local = NULL, *remote = NULL;
    mixl_arg_t arg = {.timeout_ms = o->timeout_ms, .sleep = s->backend == BENCH_BACKEND_TCP};
    char note[96] = "";
    mixl_status_t st = MIXL_OK;
    uint64_t ops = 0;
    bench_row_t row;

    mixl_row(&row, s->backend, kind, pattern, write, size, batch);
    if (role->initiator) {
        mixl_mem_type_t mt = bench_mem_mixl_type(kind);
        uint64_t rbase = s->exposed[role->peer] + bytes * (uint64_t)role->slot;
        uint64_t lbase = (uint64_t)(uintptr_t)s->bufs[0].ptr;
        lat = calloc((size_t)o->reps * iters, sizeof(*lat));
        local = calloc(batch, sizeof(*local));
        remote = calloc(batch, sizeof(*remote));
        if (lat == NULL || local == NULL || remote == NULL) {
            st = MIXL_ERR_NO_MEMORY;
            snprintf(note, sizeof(note), "out of memory for %llu descriptors", (unsigned long long)batch);
        }
        for (uint64_t j = 0; j < batch && st == MIXL_OK; j++) {
            local[j] = (mixl_desc_t){.addr = lbase + j * size, .len = size, .mem_type = mt};
            remote[j] = (mixl_desc_t){.addr = rbase + bench_slot(j, batch, o->contig) * size,
                                      .len = size, .mem_type = mt};
        }
        if (st == MIXL_OK) {
            mixl_xfer_params_t xp = {.size = sizeof(xp), .op = write ? MIXL_OP_WRITE : MIXL_OP_READ,
                                     .peer = s->names[role->peer], .local = local, .remote = remote,
                                     .count = batch};
            st = mixl_xfer_create(s->agent, &xp, &arg.xfer);
            if (st != MIXL_OK) snprintf(note, sizeof(note), "%s", mixl_agent_last_error(s->agent));
            else ops = mixl_xfer_ops(arg.xfer);
        }
    }
    st = bench_agree(ctx, st, note, note, sizeof(note));
    if (st != MIXL_OK) {
        bench_skip_row(ctx, &row, note);
        goto out;
    }
    /* The first and the last iteration are verified (verify.h); the timed ones in between are not. */
    bench_verify_t check;
    bench_verify_directed(&check, role, write, kind, s->bufs[0].ptr, s->bufs[1].ptr, size, batch, o->contig);
    st = bench_verify_iter(ctx, &check, role->initiator, mixl_iter, &arg, "first", note, sizeof(note));
    if (st == MIXL_OK) {
        ctx->target_idle = s->backend == BENCH_BACKEND_TCP;
        st = bench_time_loop(ctx, role->initiator, warmup, iters, mixl_iter, &arg, lat, rep_ns, NULL, NULL);
        ctx->target_idle = 0;
        if (st != MIXL_OK) snprintf(note, sizeof(note), "transfer failed: %s", mixl_agent_last_error(s->agent));
        st = bench_agree(ctx, st, note, note, sizeof(note));
    }
    if (st == MIXL_OK)
        st = bench_verify_iter(ctx, &check, role->initiator, mixl_iter, &arg, "last", note, sizeof(note));
    /* Every rank's operation count is the same shape; the initiators' is what rank 0 reports. */
    uint64_t all_ops[2] = {ops, 0};
    if (st == MIXL_OK) {
        uint64_t *v = calloc((size_t)ctx->size, sizeof(uint64_t));
        if (v != NULL && bench_boot_exchange(ctx->boot, all_ops, sizeof(uint64_t), v) == MIXL_OK)
            for (int r = 0; r < ctx->size; r++) row.xfer_ops = v[r] > row.xfer_ops ? v[r] : row.xfer_ops;
        free(v);
        st = bench_collect(ctx, &row, role->initiator, lat, rep_ns, iters, bytes, batch);
    } else {
        bench_skip_row(ctx, &row, note);
        st = MIXL_OK; /* one failed point does not end the sweep */
    }
out:
    if (arg.xfer != NULL) mixl_xfer_release(arg.xfer);
    free(local);
    free(remote);
    free(lat);
    return st;
}

typedef struct {
    bench_session_t s;
    bench_role_t role;
    unsigned kind, pattern;
} mixl_runner_t;

static mixl_status_t mixl_runner_point(bench_ctx_t *ctx, bench_runner_t *r, int write, uint64_t size,
                                       uint64_t batch)
{
    mixl_runner_t *m = r->state;
    return mixl_point(ctx, &m->s, &m->role, m->kind, m->pattern, write, size, batch);
}

static void mixl_runner_close(bench_ctx_t *ctx, bench_runner_t *r)
{
    mixl_runner_t *m = r->state;
    bench_session_close(ctx, &m->s);
    free(m);
}

/* Collective: an agent with this configuration's buffers registered, for the whole sweep. */
static mixl_status_t mixl_open(bench_ctx_t *ctx, unsigned backend, unsigned kind, unsigned pattern,
                               uint64_t maxbytes, bench_runners_t *rs)
{
    bench_role_t role = bench_role(ctx, pattern);
    size_t len[BENCH_SESSION_BUFS] = {role.initiator ? maxbytes : 0,
                                      role.sources ? maxbytes * (size_t)role.sources : 0};
    char note[96] = "";
    mixl_runner_t *m;
    mixl_status_t st;

    if (role.ninit == 0 || rs->n == BENCH_RUNNERS_MAX) return MIXL_OK;
    if ((m = calloc(1, sizeof(*m))) == NULL) return MIXL_ERR_NO_MEMORY;
    st = bench_session_open(ctx, backend, kind, len, &m->s, note, sizeof(note));
    if (st != MIXL_OK) {
        bench_row_t row;
        for (int write = 1; write >= 0; write--) {
            mixl_row(&row, backend, kind, pattern, write, 0, 0);
            bench_skip_row(ctx, &row, note);
        }
        free(m);
        return st == MIXL_ERR_TIMED_OUT ? st : MIXL_OK;
    }
    if (!(rs->path_backends & backend)) {
        size_t n = strlen(rs->path);
        snprintf(rs->path + n, sizeof(rs->path) - n, "%s%s", n ? "; " : "",
                 mixl_agent_path_report(m->s.agent));
        rs->path_backends |= backend;
    }
    m->role = role;
    m->kind = kind;
    m->pattern = pattern;
    rs->r[rs->n++] = (bench_runner_t){.point = mixl_runner_point, .close = mixl_runner_close,
                                      .directed = 1, .state = m};
    return MIXL_OK;
}

mixl_status_t bench_mixl_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs)
{
    const bench_opts_t *o = ctx->opts;
    mixl_status_t st = MIXL_OK;

    for (unsigned be = BENCH_BACKEND_MPI; be <= BENCH_BACKEND_TCP && st == MIXL_OK; be <<= 1) {
        if (!(o->backends & be)) continue;
        for (unsigned kind = BENCH_MEM_HOST; kind <= BENCH_MEM_LAST && st == MIXL_OK; kind <<= 1) {
            if (!(o->mems & kind)) continue;
            for (unsigned p = BENCH_PATTERN_PAIRWISE; p <= BENCH_PATTERN_MANY_TO_ONE && st == MIXL_OK;
                 p <<= 1)
                if (o->patterns & p) st = mixl_open(ctx, be, kind, p, maxbytes, rs);
        }
    }
    return st;
}
