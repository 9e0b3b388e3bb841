/*
 * Raw MPI RMA baseline, the way OSU's one-sided tests run with
 * -w allocate -s flush: one MPI_Win_allocate window on the targets, one
 * MPI_Win_lock_all(MPI_MODE_NOCHECK) for the whole run, and per iteration
 * one MPI_Put (or MPI_Get) per descriptor followed by one MPI_Win_flush.
 * Same descriptors, same process layout as the MIXL mode. The same loop
 * also runs over an MPI_Win_create window on malloc'd memory (OSU's
 * -w create), the kind of window MIXL exposes user memory through, so a
 * gap between the two window kinds is told apart from MIXL's own cost.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"
#include "mem.h"
#include "util/log.h"

typedef struct {
    MPI_Win win;
    char *local;
    int peer;
    MPI_Aint base; /* displacement of this initiator's slot in the target window */
    uint64_t size, batch;
    int contig;
    int write;
} mpi_arg_t;

static mixl_status_t mpi_iter(void *p)
{
    const mpi_arg_t *a = p;
    int rc = MPI_SUCCESS;
    for (uint64_t j = 0; j < a->batch && rc == MPI_SUCCESS; j++) {
        MPI_Aint disp = a->base + (MPI_Aint)(bench_slot(j, a->batch, a->contig) * a->size);
        char *buf = a->local + j * a->size;
        if (a->write)
            rc = MPI_Put(buf, (int)a->size, MPI_BYTE, a->peer, disp, (int)a->size, MPI_BYTE, a->win);
        else
            rc = MPI_Get(buf, (int)a->size, MPI_BYTE, a->peer, disp, (int)a->size, MPI_BYTE, a->win);
    }
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(a->peer, a->win);
    return rc == MPI_SUCCESS ? MIXL_OK : MIXL_ERR_BACKEND;
}

static void mpi_row(bench_row_t *row, unsigned pattern, unsigned wkind, int write)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "mpi");
    snprintf(row->backend, sizeof(row->backend), "%s",
             wkind == BENCH_WIN_CREATE ? "win-create" : "win-allocate");
    snprintf(row->op, sizeof(row->op), "%s", write ? "WRITE" : "READ");
    snprintf(row->mem, sizeof(row->mem), "host");
    snprintf(row->pattern, sizeof(row->pattern), "%s", bench_pattern_name(pattern));
}

static mixl_status_t mpi_point(bench_ctx_t *ctx, mpi_arg_t *arg, unsigned pattern,
                               unsigned wkind, const bench_role_t *role)
{
    const bench_opts_t *o = ctx->opts;
    uint64_t bytes = arg->size * arg->batch;
    unsigned iters = bench_scaled_iters(o->iters, bytes, 8);
    unsigned warmup = bench_scaled_iters(o->warmup, bytes, 2);
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    char note[96] = "";
    mixl_status_t st;
    bench_row_t row;

    mpi_row(&row, pattern, wkind, arg->write);
    row.size = arg->size;
    row.batch = arg->batch;
    row.xfer_ops = arg->batch;
    if (role->initiator && (lat = calloc((size_t)o->reps * iters, sizeof(*lat))) == NULL)
        return MIXL_ERR_NO_MEMORY;
    st = bench_time_loop(ctx, role->initiator, warmup, iters, mpi_iter, arg, lat, rep_ns, NULL, NULL);
    if (st != MIXL_OK) snprintf(note, sizeof(note), "MPI_Put/Get/Win_flush failed");
    st = bench_agree(ctx, st, note, note, sizeof(note));
    if (st == MIXL_OK)
        st = bench_collect(ctx, &row, role->initiator, lat, rep_ns, iters, bytes, arg->batch);
    else
        bench_skip_row(ctx, &row, note);
    free(lat);
    return st;
}

static mixl_status_t mpi_pattern(bench_ctx_t *ctx, unsigned pattern, unsigned wkind,
                                 uint64_t maxbytes, MPI_Comm comm)
{
    const bench_opts_t *o = ctx->opts;
    bench_role_t role = bench_role(ctx, pattern);
    MPI_Aint winlen = role.sources > 0 ? (MPI_Aint)(maxbytes * (uint64_t)role.sources) : 4096;
    bench_buf_t local = {0}, exposed = {0};
    char note[96] = "", agreed[96] = "";
    mixl_status_t st = MIXL_OK;
    void *winbase = NULL;
    MPI_Win win = MPI_WIN_NULL;

    if (role.ninit == 0) return MIXL_OK;
    if (role.initiator) st = bench_buf_alloc(BENCH_MEM_HOST, maxbytes, 3, &local, note, sizeof(note));
    if (st == MIXL_OK && wkind == BENCH_WIN_CREATE)
        st = bench_buf_alloc(BENCH_MEM_HOST, (size_t)winlen, 4, &exposed, note, sizeof(note));
    st = bench_agree(ctx, st, note, agreed, sizeof(agreed));
    if (st != MIXL_OK) goto err_skip;
    /* Every rank exposes at least a page: a zero-size window breaks osc/ucx. */
    int rc = wkind == BENCH_WIN_CREATE
                 ? MPI_Win_create(exposed.ptr, winlen, 1, MPI_INFO_NULL, comm, &win)
                 : MPI_Win_allocate(winlen, 1, MPI_INFO_NULL, comm, &winbase, &win);
    if (wkind == BENCH_WIN_CREATE) winbase = exposed.ptr;
    if (rc != MPI_SUCCESS) {
        snprintf(agreed, sizeof(agreed), "MPI_Win_%s of %ld bytes failed",
                 wkind == BENCH_WIN_CREATE ? "create" : "allocate", (long)winlen);
        st = MIXL_ERR_BACKEND;
        goto err_local;
    }
    memset(winbase, 4, (size_t)winlen);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    for (int write = 1; write >= 0 && st == MIXL_OK; write--) {
        if (!(o->ops & (write ? BENCH_OP_WRITE : BENCH_OP_READ))) continue;
        for (size_t s = 0; s < o->nsizes && st == MIXL_OK; s++) {
            for (size_t b = 0; b < o->nbatches && st == MIXL_OK; b++) {
                uint64_t size = o->sizes[s], batch = o->batches[b];
                if (size * batch > o->max_request) continue;
                mpi_arg_t arg = {.win = win, .local = local.ptr, .peer = role.peer,
                                 .base = (MPI_Aint)(size * batch * (uint64_t)role.slot),
                                 .size = size, .batch = batch, .contig = o->contig, .write = write};
                if (size > INT_MAX) {
                    bench_row_t row;
                    mpi_row(&row, pattern, wkind, write);
                    row.size = size;
                    row.batch = batch;
                    bench_skip_row(ctx, &row, "size above MPI's int count");
                    continue;
                }
                st = mpi_point(ctx, &arg, pattern, wkind, &role);
            }
        }
    }
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    bench_buf_free(&exposed);
    bench_buf_free(&local);
    return st;

err_local:
    bench_buf_free(&exposed);
    bench_buf_free(&local);
err_skip:
    for (int write = 1; write >= 0; write--) {
        bench_row_t row;
        mpi_row(&row, pattern, wkind, write);
        bench_skip_row(ctx, &row, agreed);
    }
    return MIXL_OK;
}

mixl_status_t bench_run_mpi(bench_ctx_t *ctx)
{
    const bench_opts_t *o = ctx->opts;
    MPI_Comm comm = ctx->boot->ops->comm(ctx->boot->state);
    uint64_t maxbytes = 0;
    mixl_status_t st = MIXL_OK;

    if (comm == MPI_COMM_NULL) {
        bench_row_t row;
        mpi_row(&row, BENCH_PATTERN_PAIRWISE, BENCH_WIN_ALLOCATE, 1);
        bench_skip_row(ctx, &row, "no MPI communicator in this bootstrap");
        return MIXL_OK;
    }
    for (size_t s = 0; s < o->nsizes; s++)
        for (size_t b = 0; b < o->nbatches; b++)
            if (o->sizes[s] * o->batches[b] <= o->max_request && o->sizes[s] * o->batches[b] > maxbytes)
                maxbytes = o->sizes[s] * o->batches[b];
    if (maxbytes == 0) return MIXL_OK;
    for (unsigned w = BENCH_WIN_ALLOCATE; w <= BENCH_WIN_CREATE && st == MIXL_OK; w <<= 1)
        for (unsigned p = BENCH_PATTERN_PAIRWISE; p <= BENCH_PATTERN_MANY_TO_ONE && st == MIXL_OK; p <<= 1)
            if ((o->mpi_wins & w) && (o->patterns & p)) st = mpi_pattern(ctx, p, w, maxbytes, comm);
    return st;
}
