/*
 * Prometheus text exposition (format 0.0.4): a growing text buffer with
 * metric families, samples with escaped labels, and cumulative histograms
 * with fixed bucket bounds. Pure formatting: no I/O, no threads.
 */
#ifndef MIXL_METRICS_PROM_H
#define MIXL_METRICS_PROM_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

typedef struct {
    char *buf;
    size_t len, cap;
    int oom; /* an append failed: the text is incomplete, do not publish it */
} mixl_prom_buf_t;

typedef struct {
    const char *name, *value;
} mixl_prom_label_t;

void mixl_prom_buf_init(mixl_prom_buf_t *b);
void mixl_prom_buf_fini(mixl_prom_buf_t *b);
void mixl_prom_buf_reset(mixl_prom_buf_t *b);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void mixl_prom_family(mixl_prom_buf_t *b, const char *name, const char *type, const char *help);
/* One sample line; labels may be NULL when n is 0. */
void mixl_prom_sample(mixl_prom_buf_t *b, const char *name, const mixl_prom_label_t *labels,
                      size_t n, double value);

/*
 * A histogram over upper bounds le[0] < le[1] < ... (the +Inf bucket is
 * implicit). counts[i] counts values in (le[i-1], le[i]]; counts[n] those
 * above le[n-1]. Written cumulatively, with _sum and _count.
 */
typedef struct {
    size_t n;
    const double *le;
    uint64_t *counts;
    double sum;
    uint64_t count;
} mixl_prom_hist_t;

mixl_status_t mixl_prom_hist_init(mixl_prom_hist_t *h, const double *le, size_t n);
void mixl_prom_hist_fini(mixl_prom_hist_t *h);
/* Add one observation; NaN is ignored. No allocation. */
void mixl_prom_hist_add(mixl_prom_hist_t *h, double v);
void mixl_prom_hist_write(mixl_prom_buf_t *b, const char *name, const mixl_prom_label_t *labels,
                          size_t n, const mixl_prom_hist_t *h);

#endif /* MIXL_METRICS_PROM_H */
