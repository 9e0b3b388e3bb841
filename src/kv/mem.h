/*
 * Memory for KV pools and prefill layer buffers: host pages, or CUDA device
 * memory from the library's allocator (mixl_mem_alloc, include/mixl/mem.h),
 * with the KV fill and check kernels in mem_cuda.c. Copies to and from the
 * host (mixl_mem_copy) let the fill and the checksum code run on either kind.
 */
#ifndef MIXL_KV_MEM_H
#define MIXL_KV_MEM_H

#include <stddef.h>

#include <mixl/agent.h>
#include <mixl/mem.h>

#include "kv/layout.h"
#include "kv/runs.h"

struct mixl_kv_cuda_work;

typedef struct {
    void *ptr;
    size_t len;
    mixl_mem_type_t type; /* MIXL_MEM_HOST or MIXL_MEM_CUDA */
    int device;
    void *mpi_ptr; /* from mixl_mem_alloc_mpi(): ptr itself for host memory, else a placeholder page */
    struct mixl_kv_cuda_work *work; /* CUDA: the kernels' stream and buffers, made at first use */
} mixl_kv_mem_t;

/*
 * Allocate len bytes of zeroed memory of the given type (device: CUDA
 * ordinal; -1 picks local_rank modulo the visible devices). err names the
 * failure, including "built without CUDA".
 *
 * With a communicator, the call is collective over it and host memory comes
 * from mixl_mem_alloc_mpi() (ranks with device memory or len 0 take part
 * with a placeholder page); should MPI refuse, every rank falls back to
 * page-aligned malloc with a warning. MPI_COMM_NULL: malloc, not collective.
 */
mixl_status_t mixl_kv_mem_alloc(mixl_kv_mem_t *mem, size_t len, mixl_mem_type_t type, int device,
                                int local_rank, MPI_Comm comm, char *err, size_t err_len);
/* Collective over the allocation's communicator when it had one. */
void mixl_kv_mem_free(mixl_kv_mem_t *mem);

/* Copy between the memory at off and host memory. */
mixl_status_t mixl_kv_mem_to_host(const mixl_kv_mem_t *mem, size_t off, void *dst, size_t len);
mixl_status_t mixl_kv_mem_from_host(mixl_kv_mem_t *mem, size_t off, const void *src, size_t len);

/*
 * Fill one layer of a request into the memory, laid out as l (the
 * arguments of mixl_kv_fill_layer()): on the host in place, in device
 * memory by a CUDA kernel. Returns once the bytes are in place, so they may
 * be sent at once. Not collective; the hot path of neither.
 */
mixl_status_t mixl_kv_mem_fill_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int region_layer,
                                     int model_layer, uint64_t req, uint64_t tokens);

/* CUDA side (mem_cuda.c, or MIXL_ERR_NOT_SUPPORTED without CUDA). */
mixl_status_t mixl_kv_cuda_fill_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int region_layer,
                                      int model_layer, uint64_t req, uint64_t tokens);
/*
 * Check layer `layer` of request req (tokens long; request block i at
 * block mixl_kv_runs_block(runs, nruns, i)) against the expected fill with
 * a CUDA kernel, in device memory: bad_p[kv * nb + i] (nb request blocks)
 * receives the number of 8-byte words of that block that differ. Only
 * those counts leave the device. The error is logged.
 */
mixl_status_t mixl_kv_cuda_check_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int layer,
                                       uint64_t req, uint64_t tokens, const mixl_kv_run_t *runs,
                                       size_t nruns, uint32_t *bad_p);
/* Free the kernels' stream and buffers (the memory itself is the allocator's). */
void mixl_kv_cuda_work_free(mixl_kv_mem_t *mem);

#endif /* MIXL_KV_MEM_H */
