/*
 * Host memory for transfer pools: allocation through MPI so that peers on
 * the node can map it. Part of the memory layer (below the agent).
 */
#ifndef MIXL_MEM_H
#define MIXL_MEM_H

#include <stddef.h>

#include <mpi.h>

#include <mixl/export.h>
#include <mixl/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Host memory placed by MPI (MPI_Win_allocate), for pools that will be
 * registered. Memory from malloc can only be exposed through MPI_Win_create,
 * and on a node whose UCX has no xpmem/knem a peer reaches such a window
 * through emulated RMA: several times slower, and dependent on the target
 * calling MPI. Memory MPI placed itself is mapped into the peers on the node,
 * so a region registered on it runs at the speed of raw MPI RMA
 * (docs/performance.md). Elsewhere it costs nothing over malloc.
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
