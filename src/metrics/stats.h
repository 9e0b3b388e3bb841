/*
 * Sample sets with exact percentiles, and fixed log-scale histograms: the
 * one statistics module of mixl-run's results and mixl-bench's rows.
 * Percentiles use the nearest-rank definition (p-th percentile = the
 * smallest sample with at least p% of samples at or below it), so every
 * reported value is one that was measured: p50 of {1,2,3,4} is 2, p99 of
 * 100 samples is the 99th smallest.
 */
#ifndef MIXL_METRICS_STATS_H
#define MIXL_METRICS_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

typedef struct {
    double *v;
    size_t n, cap;
    int sorted;
} mixl_samples_t;

typedef struct {
    size_t count;
    double min, mean, p50, p90, p99, max;
    double stddev; /* sample standard deviation (n - 1); 0 below two samples */
} mixl_summary_t;

void mixl_samples_init(mixl_samples_t *s);
void mixl_samples_fini(mixl_samples_t *s);
mixl_status_t mixl_samples_add(mixl_samples_t *s, double v);

/* Nearest-rank percentile, p in [0, 100]; 0 when there are no samples. Sorts in place. */
double mixl_samples_percentile(mixl_samples_t *s, double p);

/* count, min, mean, p50, p90, p99, max, stddev (all 0 when empty). */
mixl_summary_t mixl_samples_summary(mixl_samples_t *s);

/* Nearest-rank percentile p (0..100) of n ascending values; 0 when n == 0. */
double mixl_percentile_sorted(const double *sorted, size_t n, double p);

/*
 * The summary of n values without keeping them (a sorted copy is made and
 * freed; v is untouched); n may be 0. MIXL_ERR_NO_MEMORY when the copy
 * cannot be made.
 */
mixl_status_t mixl_stats_summarize(const double *v, size_t n, mixl_summary_t *summary_p);

/*
 * Histogram over [lo, hi) with nbins log-spaced bins plus an underflow bin
 * (below lo) and an overflow bin (at or above hi): counts has nbins + 2
 * entries, edges nbins + 1.
 */
typedef struct {
    size_t nbins;
    double *edges;
    uint64_t *counts;
} mixl_hist_t;

mixl_status_t mixl_hist_init(mixl_hist_t *h, double lo, double hi, size_t nbins);
void mixl_hist_fini(mixl_hist_t *h);
void mixl_hist_add(mixl_hist_t *h, double v);

#endif /* MIXL_METRICS_STATS_H */
