/*
 * The micro-benchmark sweep. Every measured configuration (memcpy per
 * memory type, the raw MPI loop per window kind and pattern, ucx_perftest,
 * MIXL per backend, memory type and pattern) is a runner, set up once; the
 * sweep then measures every runner at one point (size, batch, operation)
 * before moving to the next point, so a MIXL figure and the baselines it is
 * divided by are taken seconds apart, not minutes, on a machine other jobs
 * share.
 */
#ifndef MIXL_BENCH_SWEEP_H
#define MIXL_BENCH_SWEEP_H

#include "run.h"

typedef struct bench_runner bench_runner_t;

struct bench_runner {
    /*
     * Collective. Measure one point and append its row on rank 0. write is
     * 1 (WRITE), 0 (READ) or -1 for runners without a direction (memcpy).
     * A failed point is a row with a note; only a failure that leaves the
     * ranks out of step (a timed-out collective) is returned.
     */
    mixl_status_t (*point)(bench_ctx_t *ctx, bench_runner_t *r, int write, uint64_t size,
                           uint64_t batch);
    /* Collective. Release what open took. */
    void (*close)(bench_ctx_t *ctx, bench_runner_t *r);
    int directed;     /* measured once per operation (else once per point) */
    int batch1_only;  /* ucx_perftest has no batches */
    void *state;
};

#define BENCH_RUNNERS_MAX 32

typedef struct {
    bench_runner_t r[BENCH_RUNNERS_MAX];
    size_t n;
    char path[768];          /* data-path report of the first MIXL agent of each backend */
    unsigned path_backends;  /* BENCH_BACKEND_*: whose report is in path */
} bench_runners_t;

/*
 * Collective. Each adds its runners for the options (a configuration that
 * cannot be set up becomes a row with a note instead). maxbytes is the
 * largest request of the sweep.
 */
mixl_status_t bench_memcpy_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs);
mixl_status_t bench_mpi_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs);
mixl_status_t bench_ucx_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs);
mixl_status_t bench_mixl_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs);
/* The plain socket loop, next to the TCP backend (--backends tcp, pairwise, host memory). */
mixl_status_t bench_socket_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs);

/* Collective: set up the runners of opts->modes, sweep every point, close them. */
mixl_status_t bench_run_sweep(bench_ctx_t *ctx, char *path_report, size_t path_len);

#endif /* MIXL_BENCH_SWEEP_H */
