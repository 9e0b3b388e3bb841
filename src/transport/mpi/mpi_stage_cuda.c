/*
 * The staged device path (mpi_cuda_int.h): local device spans whose target
 * is a host window go through the agent's pinned slots; a copy into one slot
 * overlaps the MPI operation on another (mem/stage.h runs the machine).
 *
 * The slots are shared by every staged transfer of the agent; whichever
 * transfer is tested progresses all of them (oldest first), so a request
 * that the application does not poll cannot starve the others of slots.
 */
#include <stdlib.h>

#include "transport/mpi/mpi_cuda_int.h"
#include "util/clock.h"

static const mixl_stage_io_t mpi_stage_io;

static mixl_status_t engine_device(mixl_tp_t *tp, mixl_ce_t *ce, int device)
{
    mixl_errbuf_t eb = {{0}, 0};
    mixl_status_t st = mixl_ce_use_device(ce, device, &eb);
    if (st != MIXL_OK)
        return mixl_errbuf_set(tp->eb, st, "agent %s: %s", tp->agent_name, mixl_errbuf_get(&eb));
    return MIXL_OK;
}

static MPI_Win remote_win(const mpi_tp_t *m, const mixl_md_region_t *rr)
{
    return rr->mpi.window >= 0 ? m->wins[rr->mpi.window] : m->dyn_win;
}

static mixl_status_t staged_prepare(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
                                    const uint8_t *kinds, struct mpi_cuda_xfer *cx, size_t nstaged)
{
    mixl_stage_span_t *spans = calloc(nstaged, sizeof(*spans));
    mixl_ce_t *ce;
    mixl_status_t st;
    size_t k = 0;

    cx->wins = calloc(nstaged, sizeof(*cx->wins));
    if (spans == NULL || cx->wins == NULL) {
        free(spans);
        return MIXL_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < xfer->nops; i++) {
        const mixl_tp_op_t *op = &xfer->ops[i];
        MPI_Win w;
        size_t t;

        if (kinds[i] != MIXL_MPI_OP_STAGED) continue;
        w = remote_win(m, op->remote_region);
        for (t = 0; t < cx->nwins && cx->wins[t] != w; t++)
            ;
        if (t == cx->nwins) cx->wins[cx->nwins++] = w;
        spans[k].local = op->local_addr;
        spans[k].remote = op->remote_addr - op->remote_region->mpi.window_base;
        spans[k].len = op->len;
        spans[k].tag = (uint32_t)t;
        spans[k].device = op->local_region->device;
        k++;
    }
    st = mpi_cuda_engine(tp, m, &ce);
    if (st == MIXL_OK) {
        st = mixl_stage_plan(spans, k, mixl_ce_slot_bytes(ce), &cx->plan);
        if (st != MIXL_OK)
            st = mixl_errbuf_set(tp->eb, st, "agent %s: staging plan for %zu device spans to %s",
                                 tp->agent_name, k, xfer->peer->name);
    }
    for (size_t j = 0; st == MIXL_OK && j < cx->plan.nchunks; j++)
        st = engine_device(tp, ce, cx->plan.chunks[j].device);
    free(spans);
    return st;
}

/* --- the staged machine's steps (hot path: no allocation, no logging) ---- */

static mixl_status_t io_copy_start(void *ctx, unsigned slot, uint32_t chunk)
{
    struct mpi_cuda_xfer *cx = ctx;
    mixl_ce_t *ce = cx->m->cuda->ce;
    const mixl_stage_chunk_t *c = &cx->plan.chunks[chunk];
    uint8_t *buf = mixl_ce_slot(ce, slot);
    mixl_status_t st = MIXL_OK;

    for (uint32_t i = 0; i < c->count && st == MIXL_OK; i++) {
        const mixl_stage_piece_t *p = &cx->plan.pieces[c->first + i];
        void *dev = (void *)(uintptr_t)p->local;
        if (cx->xfer->op == MIXL_OP_WRITE)
            st = mixl_ce_copy(ce, c->device, buf + p->slot_off, dev, p->len, cx->tp->eb);
        else
            st = mixl_ce_copy(ce, c->device, dev, buf + p->slot_off, p->len, cx->tp->eb);
    }
    /* Mark even after a failed enqueue: the abort path waits on the mark. */
    if (mixl_ce_slot_mark(ce, slot, c->device, cx->tp->eb) != MIXL_OK && st == MIXL_OK)
        st = MIXL_ERR_BACKEND;
    return st;
}

static mixl_status_t io_copy_query(void *ctx, unsigned slot)
{
    struct mpi_cuda_xfer *cx = ctx;
    return mixl_ce_slot_query(cx->m->cuda->ce, slot, cx->tp->eb);
}

static mixl_status_t io_net_start(void *ctx, unsigned slot, uint32_t chunk)
{
    struct mpi_cuda_xfer *cx = ctx;
    const mixl_stage_chunk_t *c = &cx->plan.chunks[chunk];
    uint8_t *buf = mixl_ce_slot(cx->m->cuda->ce, slot);
    int rc = MPI_SUCCESS;

    for (uint32_t i = 0; i < c->count && rc == MPI_SUCCESS; i++) {
        const mixl_stage_piece_t *p = &cx->plan.pieces[c->first + i];
        int n = (int)p->len; /* pieces fit a slot, and slots are at most MIXL_MPI_TP_MAX_CHUNK */
        if (cx->xfer->op == MIXL_OP_WRITE)
            rc = MPI_Put(buf + p->slot_off, n, MPI_BYTE, cx->target, (MPI_Aint)p->remote, n,
                         MPI_BYTE, cx->wins[p->tag]);
        else
            rc = MPI_Get(buf + p->slot_off, n, MPI_BYTE, cx->target, (MPI_Aint)p->remote, n,
                         MPI_BYTE, cx->wins[p->tag]);
    }
    if (rc != MPI_SUCCESS)
        return mpi_tp_error(cx->tp, rc, "staged %s of a %llu-byte chunk with rank %d (%s)",
                            cx->xfer->op == MIXL_OP_WRITE ? "MPI_Put" : "MPI_Get",
                            (unsigned long long)c->bytes, cx->xfer->peer->comm_rank, cx->xfer->peer->name);
    return MIXL_OK;
}

static mixl_status_t io_net_complete(void *ctx, unsigned slot)
{
    struct mpi_cuda_xfer *cx = ctx;

    /* Local completion is all a slot needs before reuse; remote completion
     * of a WRITE comes from the request's final MPI_Win_flush. */
    for (size_t w = 0; w < cx->nwins; w++) {
        int rc = MPI_Win_flush_local(cx->target, cx->wins[w]);
        if (rc != MPI_SUCCESS)
            return mpi_tp_error(cx->tp, rc, "MPI_Win_flush_local of staging slot %u to rank %d (%s)",
                                slot, cx->xfer->peer->comm_rank, cx->xfer->peer->name);
    }
    return MIXL_OK;
}

static const mixl_stage_io_t mpi_stage_io = {
    .copy_start = io_copy_start,
    .copy_query = io_copy_query,
    .net_start = io_net_start,
    .net_complete = io_net_complete,
};

static void active_remove(struct mpi_cuda *c, struct mpi_cuda_xfer *cx)
{
    if (cx->prev != NULL) cx->prev->next = cx->next;
    else c->active_head = cx->next;
    if (cx->next != NULL) cx->next->prev = cx->prev;
    else c->active_tail = cx->prev;
    cx->prev = cx->next = NULL;
}

/* Advance every staged transfer in flight, oldest first. */
static void progress_all(mpi_tp_t *m)
{
    struct mpi_cuda *c = m->cuda;
    struct mpi_cuda_xfer *cx = c->active_head, *next;

    for (; cx != NULL; cx = next) {
        mixl_status_t st = mixl_stage_progress(&c->pool, &cx->sm);
        next = cx->next;
        if (st == MIXL_IN_PROGRESS) continue;
        if (st != MIXL_OK)
            st = mixl_stage_sm_abort(&c->pool, &cx->sm, mixl_deadline_ns(m->timeout_ms));
        cx->staged_st = st;
        active_remove(c, cx);
    }
}

static void staged_release(mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    /* A request given up while its chunks were moving (a wait that timed
     * out, then destroy): take its slots back before its memory goes. */
    if (cx->staged_pending && cx->staged_st == MIXL_IN_PROGRESS) {
        (void)mixl_stage_sm_abort(&m->cuda->pool, &cx->sm, mixl_deadline_ns(m->timeout_ms));
        active_remove(m->cuda, cx);
    }
    mixl_stage_plan_free(&cx->plan);
    free(cx->wins);
}

/* Hot path: join the active list and start the first copies (WRITE) or gets (READ). */
static mixl_status_t staged_post(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    struct mpi_cuda *c = m->cuda;

    (void)tp;
    if (cx->plan.nchunks == 0) return MIXL_OK;
    mixl_stage_sm_reset(&cx->sm, cx->xfer->op, (uint32_t)cx->plan.nchunks, &mpi_stage_io, cx);
    cx->staged_st = MIXL_IN_PROGRESS;
    cx->staged_pending = 1;
    cx->prev = c->active_tail;
    cx->next = NULL;
    if (c->active_tail != NULL) c->active_tail->next = cx;
    else c->active_head = cx;
    c->active_tail = cx;
    progress_all(m);
    return MIXL_OK;
}

/* Hot path: every staged transfer progresses, whichever is tested. */
static mixl_status_t staged_test(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    (void)tp;
    if (m->cuda->active_head != NULL) progress_all(m);
    if (!cx->staged_pending) return MIXL_OK;
    return cx->staged_st;
}

const mpi_dev_path_t mpi_path_staged = {
    .name = "staged",
    .kind = MIXL_MPI_OP_STAGED,
    .prepare = staged_prepare,
    .post = staged_post,
    .test = staged_test,
    .release = staged_release,
};
