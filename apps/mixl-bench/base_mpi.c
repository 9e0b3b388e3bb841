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
#include "sweep.h"
#include "util/log.h"
#include "verify.h"

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

static void mpi_row(const bench_ctx_t *ctx, bench_row_t *row, unsigned pattern, unsigned wkind,
                    int write)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "mpi");
    snprintf(row->backend, sizeof(row->backend), "%s",
             wkind == BENCH_WIN_CREATE ? "win-create" : "win-allocate");
    snprintf(row->op, sizeof(row->op), "%s", write ? "WRITE" : "READ");
    snprintf(row->mem, sizeof(row->mem), "%s", bench_mem_name(ctx->opts->mpi_origin)); /* origin */
    snprintf(row->pattern, sizeof(row->pattern), "%s", bench_pattern_name(pattern));
}

static mixl_status_t mpi_point(bench_ctx_t *ctx, mpi_arg_t *arg, unsigned pattern,
                               unsigned wkind, const bench_role_t *role, char *winbase)
{
    const bench_opts_t *o = ctx->opts;
    uint64_t bytes = arg->size * arg->batch;
    unsigned iters = bench_scaled_iters(o->iters, bytes, 8);
    unsigned warmup = bench_scaled_iters(o->warmup, bytes, 2);
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    char note[96] = "";
    mixl_status_t st;
    bench_row_t row;

    mpi_row(ctx, &row, pattern, wkind, arg->write);
    row.size = arg->size;
    row.batch = arg->batch;
    row.xfer_ops = arg->batch;
    if (role->initiator && (lat = calloc((size_t)o->reps * iters, sizeof(*lat))) == NULL)
        return MIXL_ERR_NO_MEMORY;
    /* The first and the last iteration are verified (verify.h); the timed ones in between are not. */
    bench_verify_t v;
    bench_verify_directed(&v, role, arg->write, BENCH_MEM_HOST, arg->local, winbase, arg->size, arg->batch,
                          arg->contig);
    st = bench_verify_iter(ctx, &v, role->initiator, mpi_iter, arg, "first", note, sizeof(note));
    if (st == MIXL_OK) {
        st = bench_time_loop(ctx, role->initiator, warmup, iters, mpi_iter, arg, lat, rep_ns, NULL, NULL);
        if (st != MIXL_OK) snprintf(note, sizeof(note), "MPI_Put/Get/Win_flush failed");
        st = bench_agree(ctx, st, note, note, sizeof(note));
    }
    if (st == MIXL_OK) st = bench_verify_iter(ctx, &v, role->initiator, mpi_iter, arg, "last", note, sizeof(note));
    if (st == MIXL_OK)
        st = bench_collect(ctx, &row, role->initiator, lat, rep_ns, iters, bytes, arg->batch);
    else
        bench_skip_row(ctx, &row, note);
    free(lat);
    return st;
}

typedef struct {
    unsigned pattern, wkind;
    bench_role_t role;
    bench_buf_t local, exposed;
    MPI_Win win;
    char *winbase; /* this rank's window memory */
} mpi_runner_t;

static mixl_status_t mpi_runner_point(bench_ctx_t *ctx, bench_runner_t *r, int write, uint64_t size,
                                      uint64_t batch)
{
    mpi_runner_t *m = r->state;
    mpi_arg_t arg = {.win = m->win, .local = m->local.ptr, .peer = m->role.peer,
                     .base = (MPI_Aint)(size * batch * (uint64_t)m->role.slot), .size = size,
                     .batch = batch, .contig = ctx->opts->contig, .write = write};
    if (size > INT_MAX) {
        bench_row_t row;
        mpi_row(ctx, &row, m->pattern, m->wkind, write);
        row.size = size;
        row.batch = batch;
        bench_skip_row(ctx, &row, "size above MPI's int count");
        return MIXL_OK;
    }
    return mpi_point(ctx, &arg, m->pattern, m->wkind, &m->role, m->winbase);
}

static void mpi_runner_close(bench_ctx_t *ctx, bench_runner_t *r)
{
    mpi_runner_t *m = r->state;
    MPI_Win_unlock_all(m->win);
    MPI_Win_free(&m->win);
    bench_buf_free(&m->exposed);
    bench_buf_free(&m->local);
    free(m);
}

/* Collective: one window of kind wkind for pattern, opened for the whole sweep. */
static mixl_status_t mpi_open(bench_ctx_t *ctx, unsigned pattern, unsigned wkind, uint64_t maxbytes,
                              MPI_Comm comm, bench_runners_t *rs)
{
    bench_role_t role = bench_role(ctx, pattern);
    MPI_Aint winlen = role.sources > 0 ? (MPI_Aint)(maxbytes * (uint64_t)role.sources) : 4096;
    char note[96] = "", agreed[96] = "";
    mixl_status_t st = MIXL_OK;
    void *winbase = NULL;
    mpi_runner_t *m;

    if (role.ninit == 0 || rs->n == BENCH_RUNNERS_MAX) return MIXL_OK;
    m = calloc(1, sizeof(*m));
    if (m == NULL) st = MIXL_ERR_NO_MEMORY;
    if (ctx->opts->mpi_origin == BENCH_MEM_HOST_MPI) {
        /* Collective: every rank takes part, even one that could not allocate its runner. */
        bench_buf_t origin = {0};
        mixl_status_t ost = bench_buf_alloc_mpi(comm, role.initiator ? maxbytes : 0, 3, &origin, note,
                                                sizeof(note));
        if (st == MIXL_OK) st = ost;
        if (m != NULL) m->local = origin;
    } else if (st == MIXL_OK && role.initiator) {
        st = bench_buf_alloc(BENCH_MEM_HOST, maxbytes, 3, &m->local, note, sizeof(note));
    }
    if (st == MIXL_OK && wkind == BENCH_WIN_CREATE)
        st = bench_buf_alloc(BENCH_MEM_HOST, (size_t)winlen, 4, &m->exposed, note, sizeof(note));
    st = bench_agree(ctx, st, note, agreed, sizeof(agreed));
    if (st != MIXL_OK) goto err_skip;
    /* Every rank exposes at least a page: a zero-size window breaks osc/ucx. */
    int rc = wkind == BENCH_WIN_CREATE
                 ? MPI_Win_create(m->exposed.ptr, winlen, 1, MPI_INFO_NULL, comm, &m->win)
                 : MPI_Win_allocate(winlen, 1, MPI_INFO_NULL, comm, &winbase, &m->win);
    if (wkind == BENCH_WIN_CREATE) winbase = m->exposed.ptr;
    if (rc != MPI_SUCCESS) {
        /* Window creation is collective: every rank sees the failure. */
        snprintf(agreed, sizeof(agreed), "MPI_Win_%s of %ld bytes failed",
                 wkind == BENCH_WIN_CREATE ? "create" : "allocate", (long)winlen);
        st = MIXL_ERR_BACKEND;
        goto err_skip;
    }
    memset(winbase, 4, (size_t)winlen);
    m->winbase = winbase;
    MPI_Win_lock_all(MPI_MODE_NOCHECK, m->win);
    m->pattern = pattern;
    m->wkind = wkind;
    m->role = role;
    rs->r[rs->n++] = (bench_runner_t){.point = mpi_runner_point, .close = mpi_runner_close,
                                      .directed = 1, .state = m};
    return MIXL_OK;

err_skip:
    if (m != NULL) {
        bench_buf_free(&m->exposed);
        bench_buf_free(&m->local);
        free(m);
    }
    for (int write = 1; write >= 0; write--) {
        bench_row_t row;
        mpi_row(ctx, &row, pattern, wkind, write);
        bench_skip_row(ctx, &row, agreed);
    }
    return st == MIXL_ERR_TIMED_OUT ? st : MIXL_OK;
}

mixl_status_t bench_mpi_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs)
{
    const bench_opts_t *o = ctx->opts;
    MPI_Comm comm = ctx->boot->ops->comm(ctx->boot->state);
    mixl_status_t st = MIXL_OK;

    if (comm == MPI_COMM_NULL) {
        bench_row_t row;
        mpi_row(ctx, &row, BENCH_PATTERN_PAIRWISE, BENCH_WIN_ALLOCATE, 1);
        bench_skip_row(ctx, &row, "no MPI communicator in this bootstrap");
        return MIXL_OK;
    }
    for (unsigned w = BENCH_WIN_ALLOCATE; w <= BENCH_WIN_CREATE && st == MIXL_OK; w <<= 1)
        for (unsigned p = BENCH_PATTERN_PAIRWISE; p <= BENCH_PATTERN_MANY_TO_ONE && st == MIXL_OK; p <<= 1)
            if ((o->mpi_wins & w) && (o->patterns & p)) st = mpi_open(ctx, p, w, maxbytes, comm, rs);
    return st;
}
