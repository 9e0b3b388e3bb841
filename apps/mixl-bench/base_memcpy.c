/*
 * memcpy baseline: each initiator rank copies the same bytes with the same
 * descriptor pattern inside its own memory, at the same time as the other
 * initiators, so the figure is the node's copy limit in the same layout.
 * With device memory (--mem cuda) the copy is cudaMemcpy device to device,
 * and four more rows give the host<->device limits of the same run:
 * cudaMemcpy host to device and back, from pinned (mem "cuda+pinned") and
 * from pageable memory ("cuda+host"). Every row is data-verified.
 */
#include <stdio.h>
#include <stdlib.h>

#include "baselines.h"
#include "mem.h"
#include "sweep.h"
#include "verify.h"

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

/* One point of a copy row: verified first iteration, timed loop, verified last iteration. */
static mixl_status_t copy_point(bench_ctx_t *ctx, const bench_role_t *role, bench_row_t *row,
                                const bench_verify_t *v, bench_iter_fn fn, void *arg, uint64_t size,
                                uint64_t batch)
{
    const bench_opts_t *o = ctx->opts;
    uint64_t bytes = size * batch;
    unsigned iters = bench_scaled_iters(o->iters, bytes, 8);
    unsigned warmup = bench_scaled_iters(o->warmup, bytes, 2);
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    char note[96] = "";
    mixl_status_t st;

    row->size = size;
    row->batch = batch;
    row->xfer_ops = batch;
    if (role->initiator && (lat = calloc((size_t)o->reps * iters, sizeof(*lat))) == NULL)
        return MIXL_ERR_NO_MEMORY;
    /* The first and the last iteration are verified (verify.h); the timed ones in between are not. */
    st = bench_verify_iter(ctx, v, role->initiator, fn, arg, "first", note, sizeof(note));
    if (st == MIXL_OK)
        st = bench_time_loop(ctx, role->initiator, warmup, iters, fn, arg, lat, rep_ns, NULL, NULL);
    if (st == MIXL_OK)
        st = bench_verify_iter(ctx, v, role->initiator, fn, arg, "last", note, sizeof(note));
    if (st == MIXL_OK) st = bench_collect(ctx, row, role->initiator, lat, rep_ns, iters, bytes, batch);
    else if (st == MIXL_ERR_CHECKSUM) {
        bench_skip_row(ctx, row, note);
        st = MIXL_OK; /* one failed point does not end the sweep; bench_check fails the run */
    }
    free(lat);
    return st;
}

static mixl_status_t memcpy_point(bench_ctx_t *ctx, unsigned kind, const bench_role_t *role,
                                  bench_buf_t *src, bench_buf_t *dst, uint64_t size, uint64_t batch)
{
    const bench_opts_t *o = ctx->opts;
    memcpy_arg_t arg = {.kind = kind, .dst = dst->ptr, .src = src->ptr, .size = size,
                        .batch = batch, .contig = o->contig};
    bench_row_t row;
    /* Source in descriptor order, destination permuted as memcpy_iter writes it. */
    bench_verify_t v = {.kind = kind, .size = size, .batch = batch, .contig = o->contig};
    if (role->initiator) {
        v.src = (bench_side_t){.base = src->ptr, .nslots = 1};
        v.dst = (bench_side_t){.base = dst->ptr, .nslots = 1, .permuted = 1};
    }
    memcpy_row(&row, kind);
    return copy_point(ctx, role, &row, &v, memcpy_iter, &arg, size, batch);
}

/* --- host<->device: cudaMemcpy from pinned and from pageable memory ------- */

typedef struct {
    int to_device;
    char *dst;
    const char *src;
    uint64_t size, batch;
    int contig;
} hd_arg_t;

static mixl_status_t hd_iter(void *p)
{
    const hd_arg_t *a = p;
    for (uint64_t j = 0; j < a->batch; j++)
        if (bench_buf_copy_hd(a->dst + bench_slot(j, a->batch, a->contig) * a->size,
                              a->src + j * a->size, a->size) != MIXL_OK)
            return MIXL_ERR_BACKEND;
    return MIXL_OK;
}

static void hd_row(bench_row_t *row, int to_device, unsigned host_kind)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "memcpy");
    snprintf(row->backend, sizeof(row->backend), "cuda");
    snprintf(row->op, sizeof(row->op), "%s", to_device ? "H2D" : "D2H");
    snprintf(row->mem, sizeof(row->mem), "cuda+%s", bench_mem_name(host_kind));
    snprintf(row->pattern, sizeof(row->pattern), "pairwise");
}

typedef struct {
    bench_role_t role;
    bench_buf_t dev, host[2]; /* pinned, pageable */
} hd_runner_t;

static mixl_status_t hd_runner_point(bench_ctx_t *ctx, bench_runner_t *r, int write, uint64_t size,
                                     uint64_t batch)
{
    hd_runner_t *m = r->state;
    const bench_opts_t *o = ctx->opts;
    mixl_status_t st = MIXL_OK;

    for (int h = 0; h < 2 && st == MIXL_OK; h++)
        for (int to_device = 1; to_device >= 0 && st == MIXL_OK; to_device--) {
            bench_buf_t *src = to_device ? &m->host[h] : &m->dev, *dst = to_device ? &m->dev : &m->host[h];
            hd_arg_t arg = {.to_device = to_device, .dst = dst->ptr, .src = src->ptr, .size = size,
                            .batch = batch, .contig = o->contig};
            bench_verify_t v = {.kind = BENCH_MEM_HOST, .size = size, .batch = batch, .contig = o->contig};
            bench_row_t row;
            if (m->role.initiator) {
                v.src = (bench_side_t){.base = src->ptr, .nslots = 1, .kind = src->kind};
                v.dst = (bench_side_t){.base = dst->ptr, .nslots = 1, .permuted = 1, .kind = dst->kind};
            }
            hd_row(&row, to_device, m->host[h].kind);
            st = copy_point(ctx, &m->role, &row, &v, hd_iter, &arg, size, batch);
        }
    return st;
}

static void hd_runner_close(bench_ctx_t *ctx, bench_runner_t *r)
{
    hd_runner_t *m = r->state;
    bench_buf_free(&m->dev);
    bench_buf_free(&m->host[0]);
    bench_buf_free(&m->host[1]);
    free(m);
}

static mixl_status_t hd_runner(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs)
{
    hd_runner_t *m = calloc(1, sizeof(*m));
    char note[96] = "", agreed[96] = "";
    mixl_status_t st = m ? MIXL_OK : MIXL_ERR_NO_MEMORY;

    if (m != NULL) {
        m->role = bench_role(ctx, BENCH_PATTERN_PAIRWISE);
        if (m->role.initiator) {
            st = bench_buf_alloc(BENCH_MEM_CUDA, maxbytes, 3, &m->dev, note, sizeof(note));
            if (st == MIXL_OK) st = bench_buf_alloc(BENCH_MEM_PINNED, maxbytes, 4, &m->host[0], note, sizeof(note));
            if (st == MIXL_OK) st = bench_buf_alloc(BENCH_MEM_HOST, maxbytes, 5, &m->host[1], note, sizeof(note));
        }
    }
    st = bench_agree(ctx, st, note, agreed, sizeof(agreed));
    if (st != MIXL_OK) {
        for (int h = 0; h < 2; h++)
            for (int to_device = 1; to_device >= 0; to_device--) {
                bench_row_t like;
                hd_row(&like, to_device, h == 0 ? BENCH_MEM_PINNED : BENCH_MEM_HOST);
                bench_skip_row(ctx, &like, agreed);
            }
        if (m != NULL) {
            bench_runner_t r = {.state = m};
            hd_runner_close(ctx, &r);
        }
        return st == MIXL_ERR_TIMED_OUT ? st : MIXL_OK;
    }
    rs->r[rs->n++] = (bench_runner_t){.point = hd_runner_point, .close = hd_runner_close,
                                      .directed = 0, .state = m};
    return MIXL_OK;
}

typedef struct {
    unsigned kind;
    bench_role_t role;
    bench_buf_t src, dst;
} memcpy_runner_t;

static mixl_status_t memcpy_runner_point(bench_ctx_t *ctx, bench_runner_t *r, int write, uint64_t size,
                                         uint64_t batch)
{
    memcpy_runner_t *m = r->state;
    return memcpy_point(ctx, m->kind, &m->role, &m->src, &m->dst, size, batch);
}

static void memcpy_runner_close(bench_ctx_t *ctx, bench_runner_t *r)
{
    memcpy_runner_t *m = r->state;
    bench_buf_free(&m->src);
    bench_buf_free(&m->dst);
    free(m);
}

mixl_status_t bench_memcpy_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs)
{
    const bench_opts_t *o = ctx->opts;

    for (unsigned kind = BENCH_MEM_HOST; kind <= BENCH_MEM_LAST; kind <<= 1) {
        /* host-mpi memory copies like host memory: its rows use the host memcpy figures. */
        int wanted = (o->mems & kind) || (kind == BENCH_MEM_HOST && (o->mems & BENCH_MEM_HOST_MPI));
        if (!wanted || kind == BENCH_MEM_HOST_MPI || rs->n == BENCH_RUNNERS_MAX) continue;
        memcpy_runner_t *m = calloc(1, sizeof(*m));
        char note[96] = "", agreed[96] = "";
        mixl_status_t st = m ? MIXL_OK : MIXL_ERR_NO_MEMORY;
        if (m != NULL) {
            m->kind = kind;
            m->role = bench_role(ctx, BENCH_PATTERN_PAIRWISE);
            if (m->role.initiator) {
                st = bench_buf_alloc(kind, maxbytes, 1, &m->src, note, sizeof(note));
                if (st == MIXL_OK) st = bench_buf_alloc(kind, maxbytes, 2, &m->dst, note, sizeof(note));
            }
        }
        st = bench_agree(ctx, st, note, agreed, sizeof(agreed));
        if (st != MIXL_OK) {
            bench_row_t like;
            memcpy_row(&like, kind);
            bench_skip_row(ctx, &like, agreed);
            if (m != NULL) {
                bench_buf_free(&m->src);
                bench_buf_free(&m->dst);
                free(m);
            }
            if (st == MIXL_ERR_TIMED_OUT) return st;
            continue;
        }
        rs->r[rs->n++] = (bench_runner_t){.point = memcpy_runner_point, .close = memcpy_runner_close,
                                          .directed = 0, .state = m};
    }
    if ((o->mems & BENCH_MEM_CUDA) && rs->n < BENCH_RUNNERS_MAX) return hd_runner(ctx, maxbytes, rs);
    return MIXL_OK;
}
