/*
 * The performance targets MIXL is held to (host memory, two ranks on one
 * node, ratios measured in the same run), checked against the result table
 * and printed under it, so every run says which targets it met.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "output.h"

static const bench_row_t *mixl_row(const bench_results_t *res, const char *mode, const char *op,
                                   const char *mem, uint64_t size, uint64_t batch)
{
    for (size_t i = 0; i < res->n; i++) {
        const bench_row_t *r = &res->rows[i];
        if (strcmp(r->mode, mode) == 0 && strcmp(r->backend, "mpi") == 0 && strcmp(r->op, op) == 0 &&
            strcmp(r->mem, mem) == 0 &&
            strcmp(r->pattern, "pairwise") == 0 && r->size == size && r->batch == batch && r->gbps > 0)
            return r;
    }
    return NULL;
}

static void line(FILE *out, const char *what, const char *mem, double value, double goal, int at_least)
{
    if (isnan(value)) {
        fprintf(out, "#   %-58s %-8s %8s  (not measured in this run)\n", what, mem, "-");
        return;
    }
    int met = at_least ? value >= goal : value <= goal;
    fprintf(out, "#   %-58s %-8s %8.2f  %s %s %.2f\n", what, mem, value, met ? "met" : "MISSED",
            at_least ? ">=" : "<=", goal);
}

void bench_write_targets(FILE *out, const bench_results_t *res)
{
    static const char *mems[] = {"host", "pinned", "host-mpi"};
    int any = 0;
    for (size_t i = 0; i < res->n && !any; i++) any = strncmp(res->rows[i].mode, "model-mixl", 10) == 0 ||
                                                    strcmp(res->rows[i].mode, "mixl") == 0;
    if (!any) return;
    fprintf(out, "\n# targets (MIXL over MPI windows; ratios from this run; host memory, 2 ranks on one node)\n");
    for (size_t m = 0; m < sizeof(mems) / sizeof(mems[0]); m++) {
        const char *mem = mems[m];
        int have = 0;
        for (size_t i = 0; i < res->n && !have; i++)
            have = strcmp(res->rows[i].mem, mem) == 0 && res->rows[i].gbps > 0 &&
                   (strcmp(res->rows[i].mode, "mixl") == 0 || strcmp(res->rows[i].mode, "model-mixl") == 0);
        if (!have) continue;
        int micro = 0;
        for (size_t i = 0; i < res->n && !micro; i++)
            micro = strcmp(res->rows[i].mode, "mixl") == 0 && strcmp(res->rows[i].mem, mem) == 0;
        for (int w = 1; w >= 0 && micro; w--) {
            const char *op = w ? "WRITE" : "READ";
            double xm = NAN, xp = NAN;
            /* the worst ratio over every size of 16 MiB and more */
            for (size_t i = 0; i < res->n; i++) {
                const bench_row_t *r = &res->rows[i];
                if (strcmp(r->mode, "mixl") || strcmp(r->backend, "mpi") || strcmp(r->op, op) ||
                    strcmp(r->mem, mem) || r->batch != 1 ||
                    r->size < (16u << 20) || strcmp(r->pattern, "pairwise") || r->gbps <= 0)
                    continue;
                if (!isnan(r->x_memcpy) && (isnan(xm) || r->x_memcpy < xm)) xm = r->x_memcpy;
                if (!isnan(r->x_mpi) && (isnan(xp) || r->x_mpi < xp)) xp = r->x_mpi;
            }
            char what[96];
            snprintf(what, sizeof(what), "%s >= 16 MiB: GB/s x memcpy (worst size)", op);
            line(out, what, mem, xm, 0.9, 1);
            snprintf(what, sizeof(what), "%s >= 16 MiB: GB/s x raw MPI loop (worst size)", op);
            line(out, what, mem, xp, 1.0, 1);
        }
        const bench_row_t *r8 = mixl_row(res, "mixl", "WRITE", mem, 8, 1);
        if (micro)
            line(out, "8 B WRITE+completion latency x raw MPI_Put+flush", mem, r8 ? r8->lat_x_mpi : NAN, 1.2, 0);
        for (int w = 1; w >= 0 && micro; w--) {
            const char *op = w ? "WRITE" : "READ";
            const bench_row_t *b = mixl_row(res, "mixl", op, mem, 4096, 4096);
            const bench_row_t *c = mixl_row(res, "mixl", op, mem, 16u << 20, 1);
            char what[96];
            snprintf(what, sizeof(what), "%s 4096 x 4 KiB in one request x one 16 MiB transfer", op);
            line(out, what, mem, b && c ? b->gbps / c->gbps : NAN, 0.7, 1);
        }
        for (size_t i = 0; i < res->n; i++) {
            const bench_row_t *r = &res->rows[i];
            if (strcmp(r->mode, "model-mixl") || strcmp(r->backend, "mpi") || strcmp(r->model, "llama3-8b") ||
                r->tokens != 4096 ||
                strcmp(r->pattern, "layer-wise") || strcmp(r->mem, mem) || r->gbps <= 0)
                continue;
            char what[96];
            snprintf(what, sizeof(what), "Llama-3-8B 4k tokens layer-wise (block %u) x memcpy", r->block_tokens);
            line(out, what, mem, r->x_memcpy, 0.85, 1);
        }
    }
}
