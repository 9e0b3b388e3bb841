/*
 * What the MPI backend's device-memory modules share (built only with the
 * CUDA toolkit; mpi_cuda.h is their face to the rest of the backend):
 *   mpi_cuda.c          set-up, the start-up path choice, registration, the
 *                       GPUDirect flush, and a transfer's device part, made
 *                       of the paths below
 *   mpi_selftest_cuda.c the collective device-window self-test
 *   mpi_stage_cuda.c    the staged path: local device spans through pinned
 *                       slots to host windows (mem/stage.h, mem/copy_engine.h)
 *   mpi_ipc_cuda.c      the CUDA IPC path: same-node peers' device regions
 *                       that have no window, mapped once and copied
 * Each path is an ops table (mpi_dev_path_t): a transfer's operations of its
 * kind are prepared, posted, tested and released through it, so a new device
 * path is a new module and one line in mpi_cuda.c's table.
 */
#ifndef MIXL_TRANSPORT_MPI_CUDA_INT_H
#define MIXL_TRANSPORT_MPI_CUDA_INT_H

#include <cuda.h>

#include "mem/copy_engine.h"
#include "mem/stage.h"
#include "transport/mpi/mpi_cuda.h"

#define MIXL_MPI_CUDA_MAX_DEVICES 64

typedef CUresult (*mpi_cu_flush_fn)(CUflushGPUDirectRDMAWritesTarget target,
                                    CUflushGPUDirectRDMAWritesScope scope);

struct mpi_cuda {
    unsigned nslots;
    size_t slot_bytes;
    char hostname[MIXL_NAME_MAX];
    char why[160];          /* why device windows are or are not used */
    char aware_why[96];     /* where the CUDA-awareness answer came from */
    uint64_t dev_mask;      /* devices of registered device regions */
    mpi_cu_flush_fn flush;  /* cuFlushGPUDirectRDMAWrites, once device windows are on */
    mixl_ce_t *ce;          /* created by the first transfer that needs it */
    mixl_stage_pool_t pool;
    struct mpi_cuda_xfer *active_head, *active_tail; /* staged transfers in flight, FIFO */
};

typedef struct {
    void *dst;
    const void *src;
    size_t len;
    int device; /* stream that copies */
} mpi_ipc_copy_t;

/* A transfer's device part: one section per path. */
struct mpi_cuda_xfer {
    mixl_tp_t *tp;
    mpi_tp_t *m;
    mixl_tp_xfer_t *xfer;
    int target;

    /* Staged path (mpi_stage_cuda.c). */
    mixl_stage_plan_t plan;
    mixl_stage_sm_t sm;
    MPI_Win *wins; /* distinct windows the pieces use; piece.tag indexes this */
    size_t nwins;
    mixl_status_t staged_st; /* MIXL_IN_PROGRESS while in the active list */
    int staged_pending;
    struct mpi_cuda_xfer *prev, *next;

    /* IPC path (mpi_ipc_cuda.c). */
    mpi_ipc_copy_t *ipc;
    size_t nipc;
    mixl_ce_event_t **ipc_ev; /* one per device the copies use */
    size_t nipc_ev;
    int ipc_pending;
};

/*
 * One device path. prepare gets the transfer's kinds[] and how many
 * operations are of this path's kind (at least one); post starts them (hot
 * path: MIXL_OK once started, or an error after waiting for what it had
 * started); test answers MIXL_IN_PROGRESS, MIXL_OK or the error, and may be
 * asked again after it answered; release frees what prepare made and takes
 * back what an abandoned post still holds.
 */
typedef struct {
    const char *name;
    mpi_op_kind_t kind;
    mixl_status_t (*prepare)(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
                             const uint8_t *kinds, struct mpi_cuda_xfer *cx, size_t count);
    mixl_status_t (*post)(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx);
    mixl_status_t (*test)(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx);
    void (*release)(mpi_tp_t *m, struct mpi_cuda_xfer *cx);
} mpi_dev_path_t;

extern const mpi_dev_path_t mpi_path_staged; /* mpi_stage_cuda.c */
extern const mpi_dev_path_t mpi_path_ipc;    /* mpi_ipc_cuda.c */

/* mpi_cuda.c: the agent's copy engine (slots, streams), made on first use. */
mixl_status_t mpi_cuda_engine(mixl_tp_t *tp, mpi_tp_t *m, mixl_ce_t **ce_p);
/* mpi_cuda.c: cuFlushGPUDirectRDMAWrites, NULL when the driver lacks it. */
mpi_cu_flush_fn mpi_cuda_flush_entry(void);
/* mpi_cuda.c: flush GPUDirect writes into every device of mask. */
mixl_status_t mpi_cuda_flush_devices(mpi_cu_flush_fn fn, uint64_t mask);

/* mpi_selftest_cuda.c: collective over m->comm; *ok_p 0 with why on failure here. */
void mpi_cuda_selftest(mixl_tp_t *tp, mpi_tp_t *m, int *ok_p, char *why, size_t why_len);

#endif /* MIXL_TRANSPORT_MPI_CUDA_INT_H */
