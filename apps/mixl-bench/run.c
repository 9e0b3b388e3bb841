/* Shared plumbing of the modes; see run.h. */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/stats.h"
#include "util/clock.h"

bench_role_t bench_role(const bench_ctx_t *ctx, unsigned pattern)
{
    bench_role_t r = {.peer = -1};
    if (pattern == BENCH_PATTERN_MANY_TO_ONE) {
        r.ninit = ctx->size - 1;
        if (ctx->rank == 0) {
            r.sources = ctx->size - 1;
        } else {
            r.initiator = 1;
            r.peer = 0;
            r.slot = ctx->rank - 1;
        }
        return r;
    }
    r.ninit = ctx->size / 2;
    if (ctx->rank % 2 == 0 && ctx->rank + 1 < ctx->size) {
        r.initiator = 1;
        r.peer = ctx->rank + 1;
        r.slot = 0;
    } else if (ctx->rank % 2 == 1) {
        r.sources = 1;
    }
    return r;
}

const char *bench_pattern_name(unsigned pattern)
{
    return pattern == BENCH_PATTERN_MANY_TO_ONE ? "many-to-one" : "pairwise";
}

unsigned bench_scaled_iters(unsigned iters, uint64_t bytes, unsigned floor_iters)
{
    const uint64_t mib = 1u << 20;
    if (bytes <= mib) return iters;
    uint64_t n = (uint64_t)iters * mib / bytes;
    if (n < floor_iters) n = floor_iters;
    return n < iters ? (unsigned)n : iters;
}

uint64_t bench_slot(uint64_t i, uint64_t n, int contig)
{
    if (contig) return i;
    if (n == 2) return 1 - i; /* evens-then-odds would keep two in order */
    uint64_t half = (n + 1) / 2;
    return i < half ? 2 * i : 2 * (i - half) + 1;
}

typedef struct {
    int32_t status;
    char note[92];
} agree_t;

mixl_status_t bench_agree(bench_ctx_t *ctx, mixl_status_t st, const char *note, char *note_out,
                          size_t note_len)
{
    agree_t mine = {.status = st}, *all;
    mixl_status_t xst;
    snprintf(mine.note, sizeof(mine.note), "%s", note ? note : "");
    all = calloc((size_t)ctx->size, sizeof(*all));
    if (all == NULL) return MIXL_ERR_NO_MEMORY;
    xst = bench_boot_exchange(ctx->boot, &mine, sizeof(mine), all);
    if (xst != MIXL_OK) {
        free(all);
        return xst;
    }
    st = MIXL_OK;
    for (int r = 0; r < ctx->size; r++) {
        if (all[r].status != MIXL_OK) {
            st = (mixl_status_t)all[r].status;
            if (note_out) snprintf(note_out, note_len, "rank %d: %s", r, all[r].note);
            break;
        }
    }
    free(all);
    return st;
}

mixl_status_t bench_collect(bench_ctx_t *ctx, bench_row_t *row, int initiator, const double *lat_ns,
                            const double *rep_ns, unsigned iters, uint64_t bytes, uint64_t descs)
{
    const bench_opts_t *o = ctx->opts;
    unsigned reps = o->reps;
    size_t per = 1 + (size_t)reps + (size_t)reps * iters; /* flag, rep times, latencies */
    double *mine = calloc(per, sizeof(double));
    double *all = calloc(per * (size_t)ctx->size, sizeof(double));
    double *lat = calloc((size_t)reps * iters * (size_t)ctx->size, sizeof(double));
    double rep_max[BENCH_LIST_MAX] = {0};
    mixl_status_t st = MIXL_ERR_NO_MEMORY;
    size_t nlat = 0;
    int ninit = 0;

    if (mine == NULL || all == NULL || lat == NULL) goto out;
    if (initiator) {
        mine[0] = 1.0;
        memcpy(mine + 1, rep_ns, reps * sizeof(double));
        memcpy(mine + 1 + reps, lat_ns, (size_t)reps * iters * sizeof(double));
    }
    st = bench_boot_exchange(ctx->boot, mine, per * sizeof(double), all);
    if (st != MIXL_OK || ctx->rank != 0) goto out;

    for (int r = 0; r < ctx->size; r++) {
        const double *p = all + (size_t)r * per;
        if (p[0] != 1.0) continue;
        ninit++;
        /* Concurrent initiators: a repetition lasts until the slowest one finished. */
        for (unsigned k = 0; k < reps; k++)
            if (p[1 + k] > rep_max[k]) rep_max[k] = p[1 + k];
        memcpy(lat + nlat, p + 1 + reps, (size_t)reps * iters * sizeof(double));
        nlat += (size_t)reps * iters;
    }
    if (ninit == 0) {
        st = MIXL_ERR_INVALID_PARAM;
        goto out;
    }
    row->initiators = (uint32_t)ninit;
    /* Latency statistics pool every initiator's samples; bandwidth sums their bytes. */
    st = bench_fill_row(row, lat, rep_max, reps, iters, bytes * (uint64_t)ninit,
                        descs * (uint64_t)ninit);
    if (st == MIXL_OK) {
        mixl_summary_t s;
        if (ninit > 1 && mixl_stats_summarize(lat, nlat, &s) == MIXL_OK) {
            row->lat_avg_us = s.mean / 1e3;
            row->lat_p50_us = s.p50 / 1e3;
            row->lat_p99_us = s.p99 / 1e3;
            row->lat_min_us = s.min / 1e3;
            row->lat_max_us = s.max / 1e3;
            row->lat_stddev_us = s.stddev / 1e3;
        }
        st = bench_results_add(ctx->res, row);
    }
out:
    free(mine);
    free(all);
    free(lat);
    return st;
}

mixl_status_t bench_fill_row(bench_row_t *row, const double *lat_ns, const double *rep_ns,
                             unsigned reps, unsigned iters, uint64_t bytes, uint64_t descs)
{
    mixl_summary_t lat, bw;
    double per_rep[BENCH_LIST_MAX];
    double total_ns = 0.0;
    mixl_status_t st;

    if (reps == 0 || reps > BENCH_LIST_MAX || iters == 0) return MIXL_ERR_INVALID_PARAM;
    st = mixl_stats_summarize(lat_ns, (size_t)reps * iters, &lat);
    if (st != MIXL_OK) return st;
    for (unsigned r = 0; r < reps; r++) {
        per_rep[r] = rep_ns[r] > 0 ? (double)bytes * iters / rep_ns[r] : 0.0; /* B/ns = GB/s */
        total_ns += rep_ns[r];
    }
    st = mixl_stats_summarize(per_rep, reps, &bw);
    if (st != MIXL_OK) return st;

    row->iters = iters;
    row->reps = reps;
    row->bytes = bytes;
    row->gbps = total_ns > 0 ? (double)bytes * iters * reps / total_ns : 0.0;
    row->gbps_min = bw.min;
    row->gbps_max = bw.max;
    row->gbps_stddev = bw.stddev;
    row->lat_avg_us = lat.mean / 1e3;
    row->lat_p50_us = lat.p50 / 1e3;
    row->lat_p99_us = lat.p99 / 1e3;
    row->lat_min_us = lat.min / 1e3;
    row->lat_max_us = lat.max / 1e3;
    row->lat_stddev_us = lat.stddev / 1e3;
    row->ops_per_s = total_ns > 0 ? (double)descs * iters * reps / (total_ns / 1e9) : 0.0;
    return MIXL_OK;
}

void bench_skip_row(bench_ctx_t *ctx, const bench_row_t *like, const char *note)
{
    if (ctx->rank != 0) return;
    bench_row_t row = *like;
    snprintf(row.note, sizeof(row.note), "%s", note);
    row.gbps = 0;
    bench_results_add(ctx->res, &row);
}

mixl_status_t bench_time_loop(bench_ctx_t *ctx, int initiator, unsigned warmup, unsigned iters,
                              bench_iter_fn fn, void *arg, double *lat_ns, double *rep_ns,
                              bench_iter_fn target_fn, void *target_arg)
{
    mixl_status_t st = MIXL_OK, bst;
    if (initiator)
        for (unsigned i = 0; i < warmup && st == MIXL_OK; i++) st = fn(arg);
    for (unsigned r = 0; r < ctx->opts->reps; r++) {
        bst = !initiator && ctx->target_idle ? bench_boot_barrier_idle(ctx->boot)
                                             : bench_boot_barrier(ctx->boot);
        if (bst != MIXL_OK) return bst;
        if (!initiator) {
            if (target_fn != NULL && st == MIXL_OK) st = target_fn(target_arg);
            continue;
        }
        if (st != MIXL_OK) continue;
        double *lat = lat_ns + (size_t)r * iters;
        uint64_t t0 = mixl_now_ns(), ta = t0;
        for (unsigned i = 0; i < iters; i++) {
            st = fn(arg);
            uint64_t tb = mixl_now_ns();
            lat[i] = (double)(tb - ta);
            ta = tb;
            if (st != MIXL_OK) break;
        }
        rep_ns[r] = (double)(mixl_now_ns() - t0);
    }
    /* The last repetition's wait sleeps too: what follows is a spinning collective. */
    if (ctx->target_idle) {
        bst = initiator ? bench_boot_barrier(ctx->boot) : bench_boot_barrier_idle(ctx->boot);
        if (bst != MIXL_OK) return bst;
    }
    return st;
}
