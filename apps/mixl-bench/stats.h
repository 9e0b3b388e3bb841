/*
 * Summary statistics of timing samples: average, nearest-rank percentiles,
 * extremes and sample standard deviation, and the reduction of a
 * measurement (per-iteration latencies of several repetitions) to a row.
 */
#ifndef MIXL_BENCH_STATS_H
#define MIXL_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "bench.h"

typedef struct {
    size_t n;
    double avg, p50, p99, min, max, stddev;
} bench_stats_t;

/*
 * Summarize n samples (n may be 0: every field becomes 0). Sorts a copy;
 * MIXL_ERR_NO_MEMORY when that copy cannot be made. Percentiles are nearest
 * rank: p50 of {1,2,3,4} is 2, p99 of 100 samples is the 99th smallest.
 */
mixl_status_t bench_stats_compute(const double *samples, size_t n, bench_stats_t *stats_p);

/* Nearest-rank percentile q (0 < q <= 100) of n sorted samples; 0 when n == 0. */
double bench_percentile_sorted(const double *sorted, size_t n, double q);

/*
 * Fill the bandwidth, latency and rate fields of a row from a measurement:
 * lat_ns holds reps x iters per-iteration latencies (ns), rep_ns the wall
 * time of each repetition, bytes and descs what one iteration moves.
 */
mixl_status_t bench_stats_fill_row(bench_row_t *row, const double *lat_ns, const double *rep_ns,
                                   unsigned reps, unsigned iters, uint64_t bytes, uint64_t descs);

#endif /* MIXL_BENCH_STATS_H */
