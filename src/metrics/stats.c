/* Sample sets, nearest-rank percentiles and log-scale histograms; see stats.h. */
#include "metrics/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mixl_samples_init(mixl_samples_t *s)
{
    s->v = NULL;
    s->n = s->cap = 0;
    s->sorted = 1;
}

void mixl_samples_fini(mixl_samples_t *s)
{
    free(s->v);
    mixl_samples_init(s);
}

mixl_status_t mixl_samples_add(mixl_samples_t *s, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        double *nv = realloc(s->v, cap * sizeof(*nv));
        if (nv == NULL) return MIXL_ERR_NO_MEMORY;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    s->sorted = 0;
    return MIXL_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mixl_percentile_sorted(const double *sorted, size_t n, double p)
{
    if (n == 0) return 0;
    if (p <= 0) return sorted[0];
    if (p >= 100) return sorted[n - 1];
    size_t rank = (size_t)ceil(p / 100.0 * (double)n); /* 1-based */
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

double mixl_samples_percentile(mixl_samples_t *s, double p)
{
    if (s->n == 0) return 0;
    if (!s->sorted) {
        qsort(s->v, s->n, sizeof(double), cmp_double);
        s->sorted = 1;
    }
    return mixl_percentile_sorted(s->v, s->n, p);
}

/* The summary of n ascending values. */
static mixl_summary_t summary_sorted(const double *v, size_t n)
{
    mixl_summary_t r = {0};
    if (n == 0) return r;
    double sum = 0, var = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
    r.count = n;
    r.mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) var += (v[i] - r.mean) * (v[i] - r.mean);
    r.stddev = n > 1 ? sqrt(var / (double)(n - 1)) : 0.0;
    r.min = v[0];
    r.p50 = mixl_percentile_sorted(v, n, 50);
    r.p90 = mixl_percentile_sorted(v, n, 90);
    r.p99 = mixl_percentile_sorted(v, n, 99);
    r.max = v[n - 1];
    return r;
}

mixl_summary_t mixl_samples_summary(mixl_samples_t *s)
{
    mixl_samples_percentile(s, 50); /* sorts */
    return summary_sorted(s->v, s->n);
}

mixl_status_t mixl_stats_summarize(const double *v, size_t n, mixl_summary_t *summary_p)
{
    if (n == 0) {
        *summary_p = summary_sorted(v, 0);
        return MIXL_OK;
    }
    double *sorted = malloc(n * sizeof(*sorted));
    if (sorted == NULL) return MIXL_ERR_NO_MEMORY;
    memcpy(sorted, v, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_double);
    *summary_p = summary_sorted(sorted, n);
    free(sorted);
    return MIXL_OK;
}

mixl_status_t mixl_hist_init(mixl_hist_t *h, double lo, double hi, size_t nbins)
{
    if (!(lo > 0) || !(hi > lo) || nbins == 0) return MIXL_ERR_INVALID_PARAM;
    h->edges = malloc((nbins + 1) * sizeof(double));
    h->counts = calloc(nbins + 2, sizeof(uint64_t));
    if (h->edges == NULL || h->counts == NULL) {
        free(h->edges);
        free(h->counts);
        return MIXL_ERR_NO_MEMORY;
    }
    h->nbins = nbins;
    double step = log(hi / lo) / (double)nbins;
    for (size_t i = 0; i <= nbins; i++) h->edges[i] = lo * exp(step * (double)i);
    h->edges[nbins] = hi;
    return MIXL_OK;
}

void mixl_hist_fini(mixl_hist_t *h)
{
    free(h->edges);
    free(h->counts);
    h->edges = NULL;
    h->counts = NULL;
    h->nbins = 0;
}

void mixl_hist_add(mixl_hist_t *h, double v)
{
    if (v < h->edges[0]) {
        h->counts[0]++;
        return;
    }
    if (v >= h->edges[h->nbins]) {
        h->counts[h->nbins + 1]++;
        return;
    }
    /* Binary search: the bin i with edges[i] <= v < edges[i+1]. */
    size_t lo = 0, hi = h->nbins;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (v >= h->edges[mid])
            lo = mid;
        else
            hi = mid;
    }
    h->counts[lo + 1]++;
}
