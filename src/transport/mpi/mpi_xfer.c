/*
 * MPI backend transfers. Everything that needs a lookup (which window, which
 * displacement, how to split) is resolved once in prepare; post issues the
 * puts or gets, test completes them with one MPI_Win_flush per window used
 * and then writes the notification slot.
 *
 * Operations on device memory that MPI cannot touch directly are classified
 * at prepare (staged through pinned slots, or CUDA IPC; see mpi_cuda.h) and
 * handed to mpi_cuda.c; host-only transfers never enter that code.
 */
#include <stdlib.h>
#include <string.h>

#include "transport/mpi/mpi_cuda.h"
#include "transport/mpi/mpi_tp.h"

static MPI_Win mpi_remote_win(const mpi_tp_t *m, const mixl_md_region_t *rr)
{
    if (rr->mpi.window >= 0) return m->wins[rr->mpi.window];
    if (rr->mpi.window == -1) return m->dyn_win;
    return MPI_WIN_NULL;
}

/* Decide how op i moves; an error names the region and the reason. */
static mixl_status_t mpi_op_classify(mixl_tp_t *tp, mpi_tp_t *m, const mixl_tp_xfer_t *xfer,
                                     const mixl_tp_op_t *op, uint8_t *kind_p)
{
    mixl_status_t st;

    if (mpi_remote_win(m, op->remote_region) == MPI_WIN_NULL) {
        if (op->remote_region->mem_type != MIXL_MEM_CUDA)
            return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                                   "agent %s: region %u of peer %s is not exposed through an MPI "
                                   "window", tp->agent_name, op->remote_region->id,
                                   xfer->peer->name);
        st = mpi_cuda_ipc_check(tp, m, xfer->peer, op->remote_region);
        if (st != MIXL_OK) return st;
        *kind_p = MIXL_MPI_OP_IPC;
        return MIXL_OK;
    }
    *kind_p = op->local_region->mem_type == MIXL_MEM_CUDA && !m->device_windows ? MIXL_MPI_OP_STAGED
                                                                                 : MIXL_MPI_OP_DIRECT;
    return MIXL_OK;
}

static void mpi_xfer_free(mpi_tp_t *m, mpi_xfer_t *x)
{
    mpi_cuda_xfer_release(m, x->cuda);
    free(x->ops);
    free(x->flush);
    free(x);
}

mixl_status_t mpi_xfer_prepare(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    mpi_tp_t *m = tp->priv;
    mpi_xfer_t *x;
    uint8_t *kinds;
    size_t nops = 0, k = 0, ncuda = 0;
    mixl_status_t st;

    if (!m->started)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_BAD_STATE,
                               "agent %s: transfer prepared before mixl_agent_start()", tp->agent_name);
    kinds = calloc(xfer->nops ? xfer->nops : 1, sizeof(*kinds));
    if (kinds == NULL) return MIXL_ERR_NO_MEMORY;
    for (size_t i = 0; i < xfer->nops; i++) {
        const mixl_tp_op_t *op = &xfer->ops[i];
        st = mpi_op_classify(tp, m, xfer, op, &kinds[i]);
        if (st != MIXL_OK) {
            free(kinds);
            return st;
        }
        if (kinds[i] != MIXL_MPI_OP_DIRECT) ncuda++;
        else nops += (op->len + MIXL_MPI_TP_MAX_CHUNK - 1) / MIXL_MPI_TP_MAX_CHUNK;
    }

    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        free(kinds);
        return MIXL_ERR_NO_MEMORY;
    }
    x->ops = calloc(nops ? nops : 1, sizeof(*x->ops));
    x->flush = calloc(xfer->nops ? xfer->nops : 1, sizeof(*x->flush));
    if (x->ops == NULL || x->flush == NULL) {
        mpi_xfer_free(m, x);
        free(kinds);
        return MIXL_ERR_NO_MEMORY;
    }
    x->target = m->wrank_of[xfer->peer->comm_rank]; /* a rank of the windows' communicator */
    for (size_t i = 0; i < xfer->nops; i++) {
        const mixl_tp_op_t *op = &xfer->ops[i];
        MPI_Win win;
        uint64_t disp;
        size_t f;

        if (kinds[i] == MIXL_MPI_OP_IPC) continue; /* no window involved */
        win = mpi_remote_win(m, op->remote_region);
        /* Staged operations use the window too: the final flush covers them. */
        for (f = 0; f < x->nflush && x->flush[f] != win; f++)
            ;
        if (f == x->nflush) x->flush[x->nflush++] = win;
        if (kinds[i] != MIXL_MPI_OP_DIRECT) continue;
        if (xfer->op == MIXL_OP_READ && op->local_region->mem_type == MIXL_MEM_CUDA) x->gdr_flush = 1;
        disp = op->remote_addr - op->remote_region->mpi.window_base;
        for (uint64_t done = 0; done < op->len; done += MIXL_MPI_TP_MAX_CHUNK, k++) {
            uint64_t n = op->len - done < MIXL_MPI_TP_MAX_CHUNK ? op->len - done : MIXL_MPI_TP_MAX_CHUNK;
            x->ops[k].origin = (void *)(uintptr_t)(op->local_addr + done);
            x->ops[k].disp = (MPI_Aint)(disp + done);
            x->ops[k].count = (int)n;
            x->ops[k].win = win;
        }
    }
    x->nops = k;
    if (ncuda > 0) {
        st = mpi_cuda_xfer_prepare(tp, m, xfer, kinds, &x->cuda);
        if (st != MIXL_OK) {
            mpi_xfer_free(m, x);
            free(kinds);
            return st;
        }
    }
    free(kinds);
    xfer->tp_priv = x;
    return MIXL_OK;
}

/* Hot path: no allocation, no lock, no logging (errors are recorded, not printed). */
mixl_status_t mpi_xfer_post(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    mpi_tp_t *m = tp->priv;
    mpi_xfer_t *x = xfer->tp_priv;
    const mpi_op_t *op = x->ops, *end = x->ops + x->nops;
    int rc = MPI_SUCCESS;

    if (xfer->op == MIXL_OP_WRITE) {
        for (; op < end && rc == MPI_SUCCESS; op++)
            rc = MPI_Put(op->origin, op->count, MPI_BYTE, x->target, op->disp, op->count, MPI_BYTE,
                         op->win);
    } else {
        for (; op < end && rc == MPI_SUCCESS; op++)
            rc = MPI_Get(op->origin, op->count, MPI_BYTE, x->target, op->disp, op->count, MPI_BYTE,
                         op->win);
    }
    x->phase = MIXL_MPI_XFER_DATA;
    if (rc != MPI_SUCCESS) {
        /* Complete what was issued so the request ends in a known state. */
        for (size_t f = 0; f < x->nflush; f++) MPI_Win_flush(x->target, x->flush[f]);
        x->phase = MIXL_MPI_XFER_IDLE;
        return mpi_tp_error(tp, rc, "%s of %llu bytes to rank %d (%s)",
                            xfer->op == MIXL_OP_WRITE ? "MPI_Put" : "MPI_Get",
                            (unsigned long long)xfer->bytes, xfer->peer->comm_rank, xfer->peer->name);
    }
    if (x->cuda != NULL) {
        mixl_status_t st = mpi_cuda_xfer_post(tp, m, x->cuda);
        if (st != MIXL_IN_PROGRESS) {
            for (size_t f = 0; f < x->nflush; f++) MPI_Win_flush(x->target, x->flush[f]);
            x->phase = MIXL_MPI_XFER_IDLE;
            return st;
        }
    }
    return MIXL_IN_PROGRESS;
}

/* Hot path. */
mixl_status_t mpi_xfer_test(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    mpi_tp_t *m = tp->priv;
    mpi_xfer_t *x = xfer->tp_priv;
    mixl_status_t st;

    if (x->phase == MIXL_MPI_XFER_DATA) {
        if (x->cuda != NULL) {
            /* Staged chunks and IPC copies first; their end precedes the flush. */
            st = mpi_cuda_xfer_test(tp, m, x->cuda);
            if (st == MIXL_IN_PROGRESS) return st;
            if (st != MIXL_OK) {
                for (size_t f = 0; f < x->nflush; f++) MPI_Win_flush(x->target, x->flush[f]);
                x->phase = MIXL_MPI_XFER_IDLE;
                return st;
            }
        }
        /* Remote completion of every put/get; orders the notification after the data. */
        for (size_t f = 0; f < x->nflush; f++) {
            int rc = MPI_Win_flush(x->target, x->flush[f]);
            if (rc != MPI_SUCCESS) {
                x->phase = MIXL_MPI_XFER_IDLE;
                return mpi_tp_error(tp, rc, "MPI_Win_flush to rank %d (%s)",
                                    xfer->peer->comm_rank, xfer->peer->name);
            }
        }
        if (x->gdr_flush) {
            st = mpi_cuda_gdr_flush(tp, m);
            if (st != MIXL_OK) {
                x->phase = MIXL_MPI_XFER_IDLE;
                return st;
            }
        }
        if (xfer->notif_len == 0) {
            x->phase = MIXL_MPI_XFER_IDLE;
            return MIXL_OK;
        }
        x->phase = MIXL_MPI_XFER_NOTIF;
    }
    /* MIXL_MPI_XFER_NOTIF: the data is visible at the target; now the slot. */
    st = mpi_notif_put(tp, m, x->target, &x->entry, xfer->notif, xfer->notif_len);
    if (st != MIXL_IN_PROGRESS) x->phase = MIXL_MPI_XFER_IDLE;
    return st;
}

void mpi_xfer_release(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    mpi_xfer_t *x = xfer->tp_priv;
    if (x == NULL) return;
    mpi_xfer_free(tp->priv, x);
    xfer->tp_priv = NULL;
}
