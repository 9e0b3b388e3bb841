/* Prometheus text exposition; see prom.h. */
#include "metrics/prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mixl_prom_buf_init(mixl_prom_buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void mixl_prom_buf_fini(mixl_prom_buf_t *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

void mixl_prom_buf_reset(mixl_prom_buf_t *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->buf != NULL) b->buf[0] = '\0';
}

static int buf_reserve(mixl_prom_buf_t *b, size_t more)
{
    if (b->oom) return 0;
    if (b->len + more + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) cap *= 2;
    char *n = realloc(b->buf, cap);
    if (n == NULL) {
        b->oom = 1;
        return 0;
    }
    b->buf = n;
    b->cap = cap;
    return 1;
}

static void put(mixl_prom_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(mixl_prom_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Label values escape backslash, double quote and newline; HELP text backslash and newline. */
static void put_escaped(mixl_prom_buf_t *b, const char *s, int quotes)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') put(b, "\\\\");
        else if (*s == '\n') put(b, "\\n");
        else if (*s == '"' && quotes) put(b, "\\\"");
        else put(b, "%c", *s);
    }
}

void mixl_prom_family(mixl_prom_buf_t *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s ", name);
    put_escaped(b, help, 0);
    put(b, "\n# TYPE %s %s\n", name, type);
}

static void put_labels(mixl_prom_buf_t *b, const mixl_prom_label_t *l, size_t n, const char *le)
{
    if (n == 0 && le == NULL) return;
    put(b, "{");
    for (size_t i = 0; i < n; i++) {
        put(b, "%s%s=\"", i ? "," : "", l[i].name);
        put_escaped(b, l[i].value, 1);
        put(b, "\"");
    }
    if (le != NULL) put(b, "%sle=\"%s\"", n ? "," : "", le);
    put(b, "}");
}

static void put_value(mixl_prom_buf_t *b, double v)
{
    if (isnan(v)) put(b, " NaN\n");
    else if (isinf(v)) put(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else if (v == floor(v) && fabs(v) < 9e15) put(b, " %.0f\n", v);
    else put(b, " %.17g\n", v);
}

void mixl_prom_sample(mixl_prom_buf_t *b, const char *name, const mixl_prom_label_t *labels,
                      size_t n, double value)
{
    put(b, "%s", name);
    put_labels(b, labels, n, NULL);
    put_value(b, value);
}

mixl_status_t mixl_prom_hist_init(mixl_prom_hist_t *h, const double *le, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->counts = calloc(n + 1, sizeof(uint64_t));
    if (h->counts == NULL) return MIXL_ERR_NO_MEMORY;
    h->n = n;
    h->le = le;
    return MIXL_OK;
}

void mixl_prom_hist_fini(mixl_prom_hist_t *h)
{
    free(h->counts);
    memset(h, 0, sizeof(*h));
}

void mixl_prom_hist_add(mixl_prom_hist_t *h, double v)
{
    if (isnan(v)) return;
    size_t lo = 0, hi = h->n; /* first bound >= v */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->le[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    h->counts[lo]++;
    h->sum += v;
    h->count++;
}

void mixl_prom_hist_write(mixl_prom_buf_t *b, const char *name, const mixl_prom_label_t *labels,
                          size_t n, const mixl_prom_hist_t *h)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i <= h->n; i++) {
        cum += h->counts[i];
        if (i < h->n) snprintf(le, sizeof(le), "%g", h->le[i]);
        else snprintf(le, sizeof(le), "+Inf");
        put(b, "%s_bucket", name);
        put_labels(b, labels, n, le);
        put_value(b, (double)cum);
    }
    put(b, "%s_sum", name);
    put_labels(b, labels, n, NULL);
    put_value(b, h->sum);
    put(b, "%s_count", name);
    put_labels(b, labels, n, NULL);
    put_value(b, (double)h->count);
}
