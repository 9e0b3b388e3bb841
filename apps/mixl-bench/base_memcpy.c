/*
 * memcpy baseline: each initiator rank copies the same bytes with the same
 * descriptor pattern inside its own memory, at the same time as the other
 * initiators, so the figure is the node's copy limit in the same layout.
 */
#include <stdio.h>
#include <stdlib.h>

#include "baselines.h"
#include "mem.h"

typedef struct {
    unsigned kind;
    char *dst;
    const char *src;
    uint64_t size, batch;
    int contig;
} memcpy_arg_t;

static mixl_status_t memcpy_iter(void *p)
{
    const memcpy_arg_t *a = p;
    for (uint64_t j = 0; j < a->batch; j++)
        bench_buf_copy(a->kind, a->dst + bench_slot(j, a->batch, a->contig) * a->size,
                       a->src + j * a->size, a->size);
    return MIXL_OK;
}

static void memcpy_row(bench_row_t *row, unsigned kind)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "memcpy");
    snprintf(row->backend, sizeof(row->backend), "cpu");
    snprintf(row->op, sizeof(row->op), "COPY");
    snprintf(row->mem, sizeof(row->mem), "%s", bench_mem_name(kind));
    snprintf(row->pattern, sizeof(row->pattern), "pairwise");
}

static mixl_status_t memcpy_point(bench_ctx_t *ctx, unsigned kind, const bench_role_t *role,
                                  bench_buf_t *src, bench_buf_t *dst, uint64_t size, uint64_t batch)
{
    const bench_opts_t *o = ctx->opts;
    uint64_t bytes = size * batch;
    unsigned iters = bench_scaled_iters(o->iters, bytes, 8);
    unsigned warmup = bench_scaled_iters(o->warmup, bytes, 2);
    memcpy_arg_t arg = {.kind = kind, .dst = dst->ptr, .src = src->ptr, .size = size,
                        .batch = batch, .contig = o->contig};
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    mixl_status_t st;
    bench_row_t row;

    memcpy_row(&row, kind);
    row.size = size;
    row.batch = batch;
    row.xfer_ops = batch;
    if (role->initiator && (lat = calloc((size_t)o->reps * iters, sizeof(*lat))) == NULL)
        return MIXL_ERR_NO_MEMORY;
    st = bench_time_loop(ctx, role->initiator, warmup, iters, memcpy_iter, &arg, lat, rep_ns, NULL, NULL);
    if (st == MIXL_OK) st = bench_collect(ctx, &row, role->initiator, lat, rep_ns, iters, bytes, batch);
    free(lat);
    return st;
}

mixl_status_t bench_run_memcpy(bench_ctx_t *ctx)
{
    const bench_opts_t *o = ctx->opts;
    bench_role_t role = bench_role(ctx, BENCH_PATTERN_PAIRWISE);
    uint64_t maxbytes = 0;
    mixl_status_t st = MIXL_OK;

    for (size_t s = 0; s < o->nsizes; s++)
        for (size_t b = 0; b < o->nbatches; b++)
            if (o->sizes[s] * o->batches[b] <= o->max_request && o->sizes[s] * o->batches[b] > maxbytes)
                maxbytes = o->sizes[s] * o->batches[b];
    if (maxbytes == 0) return MIXL_OK;

    for (unsigned kind = BENCH_MEM_HOST; kind <= BENCH_MEM_LAST && st == MIXL_OK; kind <<= 1) {
        /* host-mpi memory copies like host memory: its rows use the host memcpy figures. */
        if (!(o->mems & kind) || kind == BENCH_MEM_HOST_MPI) continue;
        bench_buf_t src = {0}, dst = {0};
        char note[96] = "", agreed[96] = "";
        mixl_status_t ast = MIXL_OK;
        if (role.initiator) {
            ast = bench_buf_alloc(kind, maxbytes, 1, &src, note, sizeof(note));
            if (ast == MIXL_OK) ast = bench_buf_alloc(kind, maxbytes, 2, &dst, note, sizeof(note));
        }
        ast = bench_agree(ctx, ast, note, agreed, sizeof(agreed));
        if (ast != MIXL_OK) {
            bench_row_t like;
            memcpy_row(&like, kind);
            bench_skip_row(ctx, &like, agreed);
        } else {
            for (size_t s = 0; s < o->nsizes && st == MIXL_OK; s++)
                for (size_t b = 0; b < o->nbatches && st == MIXL_OK; b++)
                    if (o->sizes[s] * o->batches[b] <= o->max_request)
                        st = memcpy_point(ctx, kind, &role, &src, &dst, o->sizes[s], o->batches[b]);
        }
        bench_buf_free(&src);
        bench_buf_free(&dst);
    }
    return st;
}
