/*
 * Device memory in the MPI backend (mpi_cuda.c and the *_cuda.c modules of
 * mpi_cuda_int.h, built only with the CUDA toolkit). Three paths, chosen
 * once at start and per operation at prepare:
 *   device windows  MPI is CUDA-aware and a collective start-up self-test
 *                   (put/get/flush between neighbours on cudaMalloc memory)
 *                   passed on every rank: device regions get windows like
 *                   host regions and the host code path moves them.
 *   staging         a local device span whose target is a host window goes
 *                   through pinned slots (mem/stage.h, mem/copy_engine.h).
 *   CUDA IPC        a remote device region that has no window, on a peer of
 *                   the same host that exported an IPC handle: mapped once,
 *                   moved with cudaMemcpyAsync (NVLink/PCIe peer copies).
 * Without CUDA the inline versions below keep the backend's host path whole
 * and refuse device targets with a reason.
 */
#ifndef MIXL_TRANSPORT_MPI_CUDA_H
#define MIXL_TRANSPORT_MPI_CUDA_H

#include <stdio.h>

#include "transport/mpi/mpi_tp.h"

/* How one merged operation moves. */
typedef enum {
    MIXL_MPI_OP_DIRECT = 0, /* MPI_Put/MPI_Get on the user's memory */
    MIXL_MPI_OP_STAGED = 1, /* through pinned staging slots */
    MIXL_MPI_OP_IPC = 2,    /* CUDA IPC copy, no MPI */
} mpi_op_kind_t;

#ifdef MIXL_HAVE_CUDA
/* Check the staging parameters and set up the backend's CUDA state (no CUDA call yet). */
mixl_status_t mpi_cuda_init(mixl_tp_t *tp, mpi_tp_t *m, const mixl_agent_params_t *params);
/* Free slots, streams and events; no request is in flight. */
void mpi_cuda_fini(mpi_tp_t *m);
/* Collective at start: decide m->device_windows (self-test when MPI is CUDA-aware). */
mixl_status_t mpi_cuda_select_path(mixl_tp_t *tp, mpi_tp_t *m);
/* A device region being registered: check the pointer, export its IPC handle. */
mixl_status_t mpi_cuda_region_register(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_region_t *r);
/* The "cuda: ..." part of the path report. */
void mpi_cuda_path_report(const mpi_tp_t *m, char *buf, size_t len);
/* Unmap the peer's IPC mappings (the peer has no request left). */
void mpi_cuda_peer_remove(mixl_tp_t *tp, mixl_tp_peer_t *peer);
/* Whether a device region of peer without a window can be reached by IPC; else why not. */
mixl_status_t mpi_cuda_ipc_check(mixl_tp_t *tp, mpi_tp_t *m, const mixl_tp_peer_t *peer,
                                 const mixl_md_region_t *rr);
/* Build the staged and IPC parts of a transfer (kinds[i] for xfer->ops[i]). */
mixl_status_t mpi_cuda_xfer_prepare(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
                                    const uint8_t *kinds, struct mpi_cuda_xfer **cx_p);
/* Hot path, device windows: flush GPUDirect RDMA writes into this rank's
 * devices (cuFlushGPUDirectRDMAWrites) before data that MPI wrote into
 * device memory is announced (notification delivered, READ completed). */
mixl_status_t mpi_cuda_gdr_flush(mixl_tp_t *tp, mpi_tp_t *m);
/* Hot path: start the staged chunks and IPC copies. */
mixl_status_t mpi_cuda_xfer_post(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx);
/* Hot path: progress every staged transfer; MIXL_OK once cx's device part is done. */
mixl_status_t mpi_cuda_xfer_test(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx);
void mpi_cuda_xfer_release(mpi_tp_t *m, struct mpi_cuda_xfer *cx);
#else
static inline mixl_status_t mpi_cuda_init(mixl_tp_t *tp, mpi_tp_t *m,
                                          const mixl_agent_params_t *params)
{
    return MIXL_OK;
}
static inline void mpi_cuda_fini(mpi_tp_t *m)
{
}
static inline mixl_status_t mpi_cuda_select_path(mixl_tp_t *tp, mpi_tp_t *m)
{
    m->device_windows = 0;
    if (m->gpu_path == MIXL_GPU_PATH_DEVICE_WIN)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                               "agent %s: gpu path 'device windows' requested but unusable: this "
                               "library was built without CUDA, so MPI windows are never "
                               "CUDA-aware", tp->agent_name);
    return MIXL_OK;
}
static inline mixl_status_t mpi_cuda_region_register(mixl_tp_t *tp, mpi_tp_t *m,
                                                     mixl_tp_region_t *r)
{
    return MIXL_OK; /* the agent refuses device regions without CUDA */
}
static inline void mpi_cuda_path_report(const mpi_tp_t *m, char *buf, size_t len)
{
    snprintf(buf, len, "cuda: not built (no CUDA toolkit when this library was compiled)");
}
static inline void mpi_cuda_peer_remove(mixl_tp_t *tp, mixl_tp_peer_t *peer)
{
}
static inline mixl_status_t mpi_cuda_ipc_check(mixl_tp_t *tp, mpi_tp_t *m,
                                               const mixl_tp_peer_t *peer,
                                               const mixl_md_region_t *rr)
{
    return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                           "agent %s: region %u of peer %s is CUDA memory without an MPI window, "
                           "and this library was built without CUDA (no CUDA IPC)",
                           tp->agent_name, rr->id, peer->name);
}
static inline mixl_status_t mpi_cuda_xfer_prepare(mixl_tp_t *tp, mpi_tp_t *m,
                                                  mixl_tp_xfer_t *xfer, const uint8_t *kinds,
                                                  struct mpi_cuda_xfer **cx_p)
{
    return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                           "agent %s: device memory transfer in a library built without CUDA",
                           tp->agent_name);
}
static inline mixl_status_t mpi_cuda_gdr_flush(mixl_tp_t *tp, mpi_tp_t *m)
{
    return MIXL_OK;
}
static inline mixl_status_t mpi_cuda_xfer_post(mixl_tp_t *tp, mpi_tp_t *m,
                                               struct mpi_cuda_xfer *cx)
{
    return MIXL_ERR_NOT_SUPPORTED;
}
static inline mixl_status_t mpi_cuda_xfer_test(mixl_tp_t *tp, mpi_tp_t *m,
                                               struct mpi_cuda_xfer *cx)
{
    return MIXL_ERR_NOT_SUPPORTED;
}
static inline void mpi_cuda_xfer_release(mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
}
#endif

#endif /* MIXL_TRANSPORT_MPI_CUDA_H */
