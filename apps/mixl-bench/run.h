/*
 * What every mode shares: the run context, who initiates to whom in each
 * pattern, the descriptor layout of a batch, the iteration scaling, and the
 * collection of every initiator's samples into one row on rank 0.
 */
#ifndef MIXL_BENCH_RUN_H
#define MIXL_BENCH_RUN_H

#include <stdint.h>

#include "bench.h"
#include "bootstrap.h"

typedef struct {
    const bench_opts_t *opts;
    bench_boot_t *boot;
    bench_results_t *res; /* rows are kept on rank 0 only */
    int rank, size;
    uint64_t verify_seq; /* verified iterations so far (verify.c): each one's pattern seed */
    /* 1 while the backend being timed progresses on its own thread (TCP): the
     * targets wait for the initiators in a sleeping barrier, as a busy decode
     * process would, instead of spinning in MPI on a core that thread needs. */
    int target_idle;
} bench_ctx_t;

/* This rank's part in a pattern. */
typedef struct {
    int initiator;  /* 1 when this rank posts transfers */
    int peer;       /* initiator: the target rank; else -1 */
    int slot;       /* initiator: its slot in the target's buffer */
    int ninit;      /* initiators in the whole run */
    int sources;    /* target: initiators writing into this rank (0 when none) */
} bench_role_t;

/*
 * pairwise: even rank r initiates into r + 1 (an odd rank count leaves the
 * last rank idle); many-to-one: every rank > 0 initiates into rank 0.
 */
bench_role_t bench_role(const bench_ctx_t *ctx, unsigned pattern);
const char *bench_pattern_name(unsigned pattern);

/* Timed iterations for a request of bytes (nixlbench-like scaling above 1 MiB). */
unsigned bench_scaled_iters(unsigned iters, uint64_t bytes, unsigned floor_iters);

/*
 * Remote slot of descriptor i of a batch of n: the identity with contig,
 * else evens first then odds, so no two consecutive descriptors are adjacent
 * on the remote side and none merges.
 */
uint64_t bench_slot(uint64_t i, uint64_t n, int contig);

/*
 * Collective. Every rank passes its outcome; when any rank failed, every
 * rank gets that first failure (rank order) and its note in note_out.
 */
mixl_status_t bench_agree(bench_ctx_t *ctx, mixl_status_t st, const char *note, char *note_out,
                          size_t note_len);

/*
 * Collective. Initiators pass reps x iters latencies (ns) and each
 * repetition's wall time; the others pass NULL. Rank 0 fills row (bytes and
 * descs are per initiator and iteration) and appends it to the results.
 */
mixl_status_t bench_collect(bench_ctx_t *ctx, bench_row_t *row, int initiator, const double *lat_ns,
                            const double *rep_ns, unsigned iters, uint64_t bytes, uint64_t descs);

/*
 * Fill the bandwidth, latency and rate fields of a row from a measurement:
 * lat_ns holds reps x iters per-iteration latencies (ns), rep_ns the wall
 * time of each repetition, bytes and descs what one iteration moves. The
 * statistics are metrics/stats.h's (nearest-rank percentiles, sample
 * standard deviation).
 */
mixl_status_t bench_fill_row(bench_row_t *row, const double *lat_ns, const double *rep_ns,
                             unsigned reps, unsigned iters, uint64_t bytes, uint64_t descs);

/* Rank 0 appends a row that was not measured, with the reason in its note. */
void bench_skip_row(bench_ctx_t *ctx, const bench_row_t *like, const char *note);


/* One timed iteration of a mode; returns MIXL_OK or the error that stopped it. */
typedef mixl_status_t (*bench_iter_fn)(void *arg);

/*
 * Collective. Initiators run warmup untimed iterations, then reps x iters
 * timed ones (lat_ns, reps x iters entries) with a barrier before each
 * repetition (rep_ns gets each repetition's wall time); the other ranks
 * only take part in the barriers (sleeping ones when ctx->target_idle), and
 * call target_fn (when not NULL) once per repetition after its barrier (a
 * target that consumes notifications does it there). A failing iteration stops the
 * initiator's loop (the barriers still happen) and its status is returned.
 */
mixl_status_t bench_time_loop(bench_ctx_t *ctx, int initiator, unsigned warmup, unsigned iters,
                              bench_iter_fn fn, void *arg, double *lat_ns, double *rep_ns,
                              bench_iter_fn target_fn, void *target_arg);

#endif /* MIXL_BENCH_RUN_H */
