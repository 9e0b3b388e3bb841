/* The interleaved micro-benchmark sweep; see sweep.h. */
#include "sweep.h"

#include <stdio.h>

#include "config/run_config.h"
#include "disagg/progress.h"
#include "util/clock.h"

mixl_status_t bench_run_sweep(bench_ctx_t *ctx, char *path_report, size_t path_len)
{
    const bench_opts_t *o = ctx->opts;
    bench_runners_t rs = {.n = 0};
    uint64_t maxbytes = 0;
    mixl_status_t st = MIXL_OK;

    for (size_t s = 0; s < o->nsizes; s++)
        for (size_t b = 0; b < o->nbatches; b++)
            if (o->sizes[s] * o->batches[b] <= o->max_request && o->sizes[s] * o->batches[b] > maxbytes)
                maxbytes = o->sizes[s] * o->batches[b];
    if (maxbytes == 0) return MIXL_OK;

    if (o->modes & BENCH_MODE_MEMCPY) st = bench_memcpy_runners(ctx, maxbytes, &rs);
    if (st == MIXL_OK && (o->modes & BENCH_MODE_MPI)) st = bench_mpi_runners(ctx, maxbytes, &rs);
    if (st == MIXL_OK && (o->modes & BENCH_MODE_UCX)) st = bench_ucx_runners(ctx, maxbytes, &rs);
    if (st == MIXL_OK && (o->modes & BENCH_MODE_SOCKET)) st = bench_socket_runners(ctx, maxbytes, &rs);
    if (st == MIXL_OK && (o->modes & BENCH_MODE_MIXL)) st = bench_mixl_runners(ctx, maxbytes, &rs);
    if (path_report != NULL) snprintf(path_report, path_len, "%s", rs.path);

    /* Rank 0 shows where the sweep is, on a terminal only. */
    size_t npoints = 0, done = 0;
    for (size_t s = 0; s < o->nsizes; s++)
        for (size_t b = 0; b < o->nbatches; b++)
            if (o->sizes[s] * o->batches[b] <= o->max_request) npoints++;
    mixl_progress_t prog;
    mixl_progress_init(&prog, stdout, ctx->rank == 0 ? MIXL_PROGRESS_AUTO : MIXL_PROGRESS_OFF, 500);
    for (size_t s = 0; s < o->nsizes && st == MIXL_OK; s++) {
        for (size_t b = 0; b < o->nbatches && st == MIXL_OK; b++) {
            uint64_t size = o->sizes[s], batch = o->batches[b];
            if (size * batch > o->max_request) continue;
            done++;
            mixl_progress_update(&prog, (int64_t)mixl_now_ns(), 0,
                                 "point %zu/%zu: size %llu B, batch %llu, %zu runners", done,
                                 npoints, (unsigned long long)size, (unsigned long long)batch,
                                 rs.n);
            for (size_t i = 0; i < rs.n && st == MIXL_OK; i++) {
                bench_runner_t *r = &rs.r[i];
                if (r->batch1_only && batch != 1) continue;
                if (!r->directed) {
                    st = r->point(ctx, r, -1, size, batch);
                    continue;
                }
                for (int write = 1; write >= 0 && st == MIXL_OK; write--)
                    if (o->ops & (write ? BENCH_OP_WRITE : BENCH_OP_READ))
                        st = r->point(ctx, r, write, size, batch);
            }
        }
    }
    mixl_progress_end(&prog);
    /* Close in reverse order of opening: MIXL agents before the windows of the raw loop. */
    for (size_t i = rs.n; i > 0; i--) rs.r[i - 1].close(ctx, &rs.r[i - 1]);
    return st;
}
