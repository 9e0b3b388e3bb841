/*
 * Memory for transfer pools: host, pinned-host and CUDA device memory, the
 * copies between them, and host memory placed by MPI so that peers on the
 * node can map it. Part of the memory layer (below the agent). One
 * implementation serves the library, the experiment layers and the tools.
 *
 * None of these is for the transfer path: they may allocate, synchronise the
 * device and take the CUDA runtime's locks.
 */
#ifndef MIXL_MEM_H
#define MIXL_MEM_H

#include <stddef.h>

#include <mpi.h>

#include <mixl/export.h>
#include <mixl/status.h>
#include <mixl/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Number of CUDA devices this process can use now: MIXL_OK with 0 when there
 * is no device or no driver; MIXL_ERR_NOT_SUPPORTED when the library was
 * built without CUDA; MIXL_ERR_BACKEND when a driver is installed but cannot
 * serve this runtime (a machine with a GPU it cannot use must not look like
 * one without). Local, thread-safe.
 */
MIXL_EXPORT mixl_status_t mixl_mem_device_count(int *count_p);

/*
 * Allocate len (> 0) zeroed bytes of a type: MIXL_MEM_HOST page-aligned
 * host memory; MIXL_MEM_PINNED page-locked host memory usable by every
 * device (cudaHostAlloc, portable); MIXL_MEM_CUDA device memory on device
 * (cudaMalloc; the calling thread's current device is left as it was).
 * Returns once the zeroes are in place. Device and pinned memory without
 * CUDA: MIXL_ERR_NOT_SUPPORTED; out of memory: MIXL_ERR_NO_MEMORY. On
 * failure mixl_last_error() says what failed (not logged). Local,
 * thread-safe.
 */
MIXL_EXPORT mixl_status_t mixl_mem_alloc(mixl_mem_type_t type, int device, size_t len,
                                         void **ptr_p);

/* Free memory from mixl_mem_alloc() given the same type. NULL is ignored. */
MIXL_EXPORT void mixl_mem_free(mixl_mem_type_t type, void *ptr);

/*
 * Copy len bytes between any two of host, pinned and device memory (the
 * kinds are found from the pointers). Synchronous: the bytes are in place
 * when it returns, also from pageable host memory to the device, where
 * cudaMemcpy alone may return early; so MPI or a NIC may read the
 * destination at once. Without CUDA a plain memmove. MIXL_ERR_BACKEND with
 * mixl_last_error() on a CUDA failure. Local, thread-safe.
 */
MIXL_EXPORT mixl_status_t mixl_mem_copy(void *dst, const void *src, size_t len);

/*
 * Host memory placed by MPI (MPI_Win_allocate), for pools that will be
 * registered. Memory from malloc can only be exposed through MPI_Win_create,
 * and on a node whose UCX has no xpmem/knem a peer reaches such a window
 * through emulated RMA: several times slower, and dependent on the target
 * calling MPI. Memory MPI placed itself is mapped into the peers on the node,
 * so a region registered on it runs at the speed of raw MPI RMA
 * (docs/performance.md). Elsewhere it costs nothing over malloc. The
 * window behind it spans only the node's ranks of comm (it exists for
 * placement, never for transfers), so it leaves MPI no endpoint to another
 * node to close at MPI_Finalize.
 *
 * Collective over comm (blocks until every rank of it calls); len may
 * differ between ranks (0 gives one page). The memory is zeroed and
 * page-aligned. On failure on any rank every rank gets the same status
 * (MIXL_ERR_BACKEND, or MIXL_ERR_INVALID_PARAM) and nothing stays allocated;
 * mixl_last_error() names the rank and the MPI error. Not logged: callers
 * usually fall back to malloc and say so once. Thread-safe; not for the
 * transfer path.
 */
MIXL_EXPORT mixl_status_t mixl_mem_alloc_mpi(MPI_Comm comm, size_t len, void **ptr_p);

/*
 * Free memory from mixl_mem_alloc_mpi(): collective over the same
 * communicator, after every agent that registered it has been destroyed.
 * MIXL_ERR_NOT_FOUND for a pointer it did not return.
 */
MIXL_EXPORT mixl_status_t mixl_mem_free_mpi(void *ptr);

/* Free memory returned by the library (metadata blobs, registry values). NULL is ignored. Thread-safe. */
MIXL_EXPORT void mixl_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_MEM_H */
