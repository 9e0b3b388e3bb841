/* Summary statistics for mixl-bench; see stats.h. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_percentile_sorted(const double *sorted, size_t n, double q)
{
    if (n == 0) return 0.0;
    /* Nearest rank: the smallest value with at least q% of samples at or below it. */
    size_t rank = (size_t)ceil(q / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

mixl_status_t bench_stats_compute(const double *samples, size_t n, bench_stats_t *stats_p)
{
    bench_stats_t s = {.n = n};
    if (n == 0) {
        *stats_p = s;
        return MIXL_OK;
    }
    double *sorted = malloc(n * sizeof(*sorted));
    if (sorted == NULL) return MIXL_ERR_NO_MEMORY;
    memcpy(sorted, samples, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_double);

    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += sorted[i];
    s.avg = sum / (double)n;
    double var = 0.0;
    for (size_t i = 0; i < n; i++) var += (sorted[i] - s.avg) * (sorted[i] - s.avg);
    s.stddev = n > 1 ? sqrt(var / (double)(n - 1)) : 0.0;
    s.min = sorted[0];
    s.max = sorted[n - 1];
    s.p50 = bench_percentile_sorted(sorted, n, 50.0);
    s.p99 = bench_percentile_sorted(sorted, n, 99.0);
    free(sorted);
    *stats_p = s;
    return MIXL_OK;
}

mixl_status_t bench_stats_fill_row(bench_row_t *row, const double *lat_ns, const double *rep_ns,
                                   unsigned reps, unsigned iters, uint64_t bytes, uint64_t descs)
{
    bench_stats_t lat, bw;
    double per_rep[BENCH_LIST_MAX];
    double total_ns = 0.0;
    mixl_status_t st;

    if (reps == 0 || reps > BENCH_LIST_MAX || iters == 0) return MIXL_ERR_INVALID_PARAM;
    st = bench_stats_compute(lat_ns, (size_t)reps * iters, &lat);
    if (st != MIXL_OK) return st;
    for (unsigned r = 0; r < reps; r++) {
        per_rep[r] = rep_ns[r] > 0 ? (double)bytes * iters / rep_ns[r] : 0.0; /* B/ns = GB/s */
        total_ns += rep_ns[r];
    }
    st = bench_stats_compute(per_rep, reps, &bw);
    if (st != MIXL_OK) return st;

    row->iters = iters;
    row->reps = reps;
    row->bytes = bytes;
    row->gbps = total_ns > 0 ? (double)bytes * iters * reps / total_ns : 0.0;
    row->gbps_min = bw.min;
    row->gbps_max = bw.max;
    row->gbps_stddev = bw.stddev;
    row->lat_avg_us = lat.avg / 1e3;
    row->lat_p50_us = lat.p50 / 1e3;
    row->lat_p99_us = lat.p99 / 1e3;
    row->lat_min_us = lat.min / 1e3;
    row->lat_max_us = lat.max / 1e3;
    row->lat_stddev_us = lat.stddev / 1e3;
    row->ops_per_s = total_ns > 0 ? (double)descs * iters * reps / (total_ns / 1e9) : 0.0;
    return MIXL_OK;
}
