/*
 * The result table: rows appended by every mode, and the ratios that put
 * each MIXL figure next to the baselines measured in the same run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

void bench_row_init(bench_row_t *row)
{
    memset(row, 0, sizeof(*row));
    row->x_memcpy = NAN;
    row->x_mpi = NAN;
    row->lat_x_mpi = NAN;
    row->x_mpi_create = NAN;
    row->x_ucx = NAN;
    row->requests = 1;
}

mixl_status_t bench_results_add(bench_results_t *res, const bench_row_t *row)
{
    if (res->n == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 64;
        bench_row_t *rows = realloc(res->rows, cap * sizeof(*rows));
        if (rows == NULL) return MIXL_ERR_NO_MEMORY;
        res->rows = rows;
        res->cap = cap;
    }
    res->rows[res->n++] = *row;
    return MIXL_OK;
}

void bench_results_free(bench_results_t *res)
{
    free(res->rows);
    res->rows = NULL;
    res->n = res->cap = 0;
}

static const bench_row_t *find(const bench_results_t *res, const char *mode, const char *backend,
                               const char *op, const char *mem, const char *pattern,
                               const bench_row_t *like, int match_model)
{
    for (size_t i = 0; i < res->n; i++) {
        const bench_row_t *r = &res->rows[i];
        if (strcmp(r->mode, mode) != 0 || r->gbps <= 0) continue;
        if (backend != NULL && strcmp(r->backend, backend) != 0) continue;
        if (op != NULL && strcmp(r->op, op) != 0) continue;
        if (mem != NULL && strcmp(r->mem, mem) != 0) continue;
        if (pattern != NULL && strcmp(r->pattern, pattern) != 0) continue;
        if (match_model) {
            if (strcmp(r->model, like->model) != 0 || r->tokens != like->tokens ||
                r->block_tokens != like->block_tokens)
                continue;
        } else if (r->size != like->size || r->batch != like->batch) {
            continue;
        }
        return r;
    }
    return NULL;
}

void bench_results_ratios(bench_results_t *res)
{
    for (size_t i = 0; i < res->n; i++) {
        bench_row_t *r = &res->rows[i];
        const bench_row_t *b;
        if (r->gbps <= 0) continue;
        if (strcmp(r->mode, "mixl") == 0) {
            /* memcpy has no direction: the same bytes copied once per descriptor. */
            if ((b = find(res, "memcpy", NULL, NULL, r->mem, NULL, r, 0)) != NULL ||
                (strcmp(r->mem, "host-mpi") == 0 &&
                 (b = find(res, "memcpy", NULL, NULL, "host", NULL, r, 0)) != NULL))
                r->x_memcpy = r->gbps / b->gbps;
            /* The raw MPI loop runs over host windows in the same process layout. */
            if ((b = find(res, "mpi", "win-allocate", r->op, NULL, r->pattern, r, 0)) != NULL) {
                r->x_mpi = r->gbps / b->gbps;
                if (b->lat_avg_us > 0) r->lat_x_mpi = r->lat_avg_us / b->lat_avg_us;
            }
            if ((b = find(res, "mpi", "win-create", r->op, NULL, r->pattern, r, 0)) != NULL)
                r->x_mpi_create = r->gbps / b->gbps;
            if ((b = find(res, "ucx_perftest", NULL, r->op, NULL, NULL, r, 0)) != NULL)
                r->x_ucx = r->gbps / b->gbps;
        } else if (strcmp(r->mode, "model-mixl") == 0) {
            /* each scheme against the memcpy taken right before it */
            if ((b = find(res, "model-memcpy", NULL, NULL, r->mem, r->pattern, r, 1)) != NULL)
                r->x_memcpy = r->gbps / b->gbps;
        }
    }
}

static int mode_rank(const char *mode)
{
    static const char *order[] = {"memcpy", "mpi", "ucx_perftest", "mixl", "model-memcpy", "model-mixl"};
    for (int i = 0; i < (int)(sizeof(order) / sizeof(order[0])); i++)
        if (strcmp(mode, order[i]) == 0) return i;
    return 99;
}

static int scheme_rank(const char *p)
{
    return strcmp(p, "contiguous") == 0 ? 0 : strcmp(p, "layer-wise") == 0 ? 1 : 2;
}

static int row_cmp(const void *pa, const void *pb)
{
    const bench_row_t *a = pa, *b = pb;
    int c;
    if (strncmp(a->mode, "model", 5) == 0 && strncmp(b->mode, "model", 5) == 0) {
        /* a model request's rows together, each scheme after the memcpy taken for it */
        if ((c = strcmp(a->model, b->model)) != 0) return c;
        if (a->tokens != b->tokens) return a->tokens < b->tokens ? -1 : 1;
        if ((c = strcmp(a->mem, b->mem)) != 0) return c;
        if (a->block_tokens != b->block_tokens) return a->block_tokens < b->block_tokens ? -1 : 1;
        if ((c = scheme_rank(a->pattern) - scheme_rank(b->pattern)) != 0) return c;
        if ((c = mode_rank(a->mode) - mode_rank(b->mode)) != 0) return c;
        return strcmp(a->backend, b->backend);
    }
    if ((c = mode_rank(a->mode) - mode_rank(b->mode)) != 0) return c;
    if ((c = strcmp(a->backend, b->backend)) != 0) return c;
    if ((c = strcmp(a->mem, b->mem)) != 0) return c;
    if ((c = strcmp(a->pattern, b->pattern)) != 0) return c;
    if ((c = -strcmp(a->op, b->op)) != 0) return c; /* WRITE before READ */
    if ((c = strcmp(a->model, b->model)) != 0) return c;
    if (a->tokens != b->tokens) return a->tokens < b->tokens ? -1 : 1;
    if (a->batch != b->batch) return a->batch < b->batch ? -1 : 1;
    if (a->size != b->size) return a->size < b->size ? -1 : 1;
    return 0;
}

void bench_results_sort(bench_results_t *res)
{
    /* Insertion sort keeps equal rows (model schemes) in measurement order; tables are small. */
    for (size_t i = 1; i < res->n; i++) {
        bench_row_t key = res->rows[i];
        size_t j = i;
        while (j > 0 && row_cmp(&res->rows[j - 1], &key) > 0) {
            res->rows[j] = res->rows[j - 1];
            j--;
        }
        res->rows[j] = key;
    }
}
