/* Human-readable table on stdout: the micro-benchmark rows, then the model rows. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "output.h"

static const char *human(uint64_t v, char *buf, size_t len)
{
    static const char *unit[] = {"", "K", "M", "G", "T"};
    int u = 0;
    while (u < 4 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, "%llu%s", (unsigned long long)v, unit[u]);
    return buf;
}

static const char *ratio(double r, char *buf, size_t len)
{
    if (isnan(r)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f", r);
    return buf;
}

static const char *num(double v, const char *fmt, char *buf, size_t len)
{
    if (isnan(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, fmt, v);
    return buf;
}

void bench_write_table(FILE *out, const bench_results_t *res)
{
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32], h[32], k[32];
    int model = 0;

    fprintf(out, "# GB/s = 1e9 B/s; latency per request (post to completion), us; "
                 "spread = slowest..fastest repetition\n"
                 "# ratios: xmemcp, xMPI (MPI_Win_allocate loop), xMPIc (MPI_Win_create loop), xUCX = "
                 "GB/s ratio; latMPI = latency ratio to the MPI_Win_allocate loop\n");
    fprintf(out, "%-12s %-12s %-5s %-8s %-11s %6s %5s %9s %15s %9s %9s %9s %10s %6s %6s %6s %6s %6s  %s\n",
            "mode", "backend", "op", "mem", "pattern", "size", "batch", "GB/s", "spread", "avg_us",
            "p50_us", "p99_us", "ops/s", "xmemcp", "xMPI", "latMPI", "xMPIc", "xUCX", "note");
    for (size_t i = 0; i < res->n; i++) {
        const bench_row_t *r = &res->rows[i];
        if (strncmp(r->mode, "model", 5) == 0) {
            model = 1;
            continue;
        }
        char spread[40];
        snprintf(spread, sizeof(spread), "%.2f..%.2f", r->gbps_min, r->gbps_max);
        fprintf(out, "%-12s %-12s %-5s %-8s %-11s %6s %5llu %9.3f %15s %9s %9s %9s %10.4g %6s %6s %6s %6s %6s  %s\n",
                r->mode, r->backend, r->op, r->mem, r->pattern, human(r->size, a, sizeof(a)),
                (unsigned long long)r->batch, r->gbps, r->gbps > 0 ? spread : "-",
                num(r->lat_avg_us, "%.3f", b, sizeof(b)), num(r->lat_p50_us, "%.3f", c, sizeof(c)),
                num(r->lat_p99_us, "%.3f", d, sizeof(d)), r->ops_per_s, ratio(r->x_memcpy, e, sizeof(e)),
                ratio(r->x_mpi, f, sizeof(f)), ratio(r->lat_x_mpi, g, sizeof(g)),
                ratio(r->x_mpi_create, k, sizeof(k)), ratio(r->x_ucx, h, sizeof(h)), r->note);
    }
    if (!model) return;
    fprintf(out, "\n# model-shaped: a whole request's KV into a paged pool; time per request, ms\n");
    fprintf(out, "%-12s %-7s %-11s %-8s %-11s %6s %5s %8s %7s %8s %9s %17s %9s %9s %6s  %s\n", "mode",
            "backend", "model", "mem", "scheme", "tokens", "block", "bytes", "reqs", "ops", "GB/s", "spread",
            "avg_ms", "p99_ms", "xmemcp", "note");
    for (size_t i = 0; i < res->n; i++) {
        const bench_row_t *r = &res->rows[i];
        if (strncmp(r->mode, "model", 5) != 0) continue;
        char spread[40];
        snprintf(spread, sizeof(spread), "%.2f..%.2f", r->gbps_min, r->gbps_max);
        fprintf(out, "%-12s %-7s %-11s %-8s %-11s %6llu %5u %8s %7u %8llu %9.3f %17s %9.3f %9.3f %6s  %s\n",
                r->mode, r->backend, r->model, r->mem, r->pattern, (unsigned long long)r->tokens, r->block_tokens,
                human(r->bytes, a, sizeof(a)), r->requests, (unsigned long long)r->xfer_ops, r->gbps,
                r->gbps > 0 ? spread : "-", r->lat_avg_us / 1e3, r->lat_p99_us / 1e3,
                ratio(r->x_memcpy, k, sizeof(k)), r->note);
    }
}
