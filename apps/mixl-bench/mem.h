/*
 * Benchmark buffers of each memory type: host (page-aligned, touched so no
 * first-touch fault is timed), pinned (page-locked: cudaMallocHost when a
 * CUDA device is present, else mlock), CUDA device memory (CUDA build with
 * a device), host-mpi (mixl_mem_alloc_mpi: MPI_Win_allocate), and the copy that is the
 * memcpy baseline for each.
 */
#ifndef MIXL_BENCH_MEM_H
#define MIXL_BENCH_MEM_H

#include <stddef.h>

#include <mpi.h>

#include <mixl/agent.h>
#include <mixl/mem.h>

#include "bench.h"

typedef struct {
    void *ptr;
    size_t len;
    unsigned kind; /* BENCH_MEM_* */
    int cuda_host; /* pinned through cudaMallocHost (else mlock) */
} bench_buf_t;

/*
 * Allocate len bytes of kind and fill them with fill. MIXL_ERR_NOT_SUPPORTED
 * for cuda in a build without CUDA (or without a device); why is in note.
 */
mixl_status_t bench_buf_alloc(unsigned kind, size_t len, int fill, bench_buf_t *buf_p, char *note,
                              size_t notelen);
/*
 * Collective over comm: host-mpi memory, len bytes (at least a page) from
 * mixl_mem_alloc_mpi() (MPI_Win_allocate). Freeing it (bench_buf_free) is collective too.
 */
mixl_status_t bench_buf_alloc_mpi(MPI_Comm comm, size_t len, int fill, bench_buf_t *buf_p, char *note,
                                  size_t notelen);
void bench_buf_free(bench_buf_t *buf);

/* The memcpy baseline's copy for this memory type (memcpy, or mixl_mem_copy on the device). */
void bench_buf_copy(unsigned kind, void *dst, const void *src, size_t len);

/*
 * The host<->device baseline's copy: mixl_mem_copy between device memory
 * and pinned or pageable host memory, complete when it returns (a pageable
 * host-to-device copy is waited for). MIXL_ERR_NOT_SUPPORTED without CUDA.
 */
mixl_status_t bench_buf_copy_hd(void *dst, const void *src, size_t len);

/* Copy len bytes from host memory into a buffer of kind, and back (mixl_mem_copy for device memory). */
void bench_buf_upload(unsigned kind, void *dst, const void *host, size_t len);
void bench_buf_download(unsigned kind, void *host, const void *src, size_t len);

const char *bench_mem_name(unsigned kind);
mixl_mem_type_t bench_mem_mixl_type(unsigned kind);

#endif /* MIXL_BENCH_MEM_H */
