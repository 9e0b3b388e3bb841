/* Benchmark buffers; see mem.h. */
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef MIXL_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

const char *bench_mem_name(unsigned kind)
{
    switch (kind) {
    case BENCH_MEM_HOST: return "host";
    case BENCH_MEM_PINNED: return "pinned";
    case BENCH_MEM_CUDA: return "cuda";
    case BENCH_MEM_HOST_MPI: return "host-mpi";
    default: return "?";
    }
}

mixl_mem_type_t bench_mem_mixl_type(unsigned kind)
{
    /* host-mpi is host memory to MIXL: only where it came from differs. */
    return kind == BENCH_MEM_CUDA ? MIXL_MEM_CUDA : kind == BENCH_MEM_PINNED ? MIXL_MEM_PINNED
                                                                             : MIXL_MEM_HOST;
}

#ifdef MIXL_HAVE_CUDA
static int cuda_device_present(void)
{
    int ndev = 0;
    return cudaGetDeviceCount(&ndev) == cudaSuccess && ndev > 0;
}
#endif

mixl_status_t bench_buf_alloc(unsigned kind, size_t len, int fill, bench_buf_t *buf_p, char *note,
                              size_t notelen)
{
    bench_buf_t b = {.len = len ? len : 1, .kind = kind};
    long page = sysconf(_SC_PAGESIZE);

    switch (kind) {
    case BENCH_MEM_HOST:
    case BENCH_MEM_PINNED:
#ifdef MIXL_HAVE_CUDA
        if (kind == BENCH_MEM_PINNED && cuda_device_present()) {
            if (cudaMallocHost(&b.ptr, b.len) != cudaSuccess) {
                snprintf(note, notelen, "cudaMallocHost of %zu bytes failed", b.len);
                return MIXL_ERR_NO_MEMORY;
            }
            b.cuda_host = 1;
            break;
        }
#endif
        if (posix_memalign(&b.ptr, (size_t)page, b.len) != 0) {
            snprintf(note, notelen, "%s buffer of %zu bytes: out of memory", bench_mem_name(kind), b.len);
            return MIXL_ERR_NO_MEMORY;
        }
        /* Without a CUDA device, page-locked means mlock: the pages stay resident. */
        if (kind == BENCH_MEM_PINNED && mlock(b.ptr, b.len) != 0) {
            snprintf(note, notelen, "mlock of %zu bytes failed: %s (raise RLIMIT_MEMLOCK)", b.len,
                     strerror(errno));
            free(b.ptr);
            return MIXL_ERR_NO_RESOURCE;
        }
        break;
    case BENCH_MEM_CUDA:
#ifdef MIXL_HAVE_CUDA
    {
        if (!cuda_device_present()) {
            snprintf(note, notelen, "not measured: no CUDA device");
            return MIXL_ERR_NOT_SUPPORTED;
        }
        if (cudaMalloc(&b.ptr, b.len) != cudaSuccess) {
            snprintf(note, notelen, "cudaMalloc of %zu bytes failed", b.len);
            return MIXL_ERR_NO_MEMORY;
        }
        cudaMemset(b.ptr, fill, b.len);
        cudaDeviceSynchronize();
        *buf_p = b;
        return MIXL_OK;
    }
#else
        snprintf(note, notelen, "not measured: MIXL was built without CUDA");
        return MIXL_ERR_NOT_SUPPORTED;
#endif
    case BENCH_MEM_HOST_MPI:
        snprintf(note, notelen, "host-mpi memory is allocated collectively");
        return MIXL_ERR_NOT_SUPPORTED;
    default:
        snprintf(note, notelen, "unknown memory kind %u", kind);
        return MIXL_ERR_INVALID_PARAM;
    }
    memset(b.ptr, fill, b.len);
    *buf_p = b;
    return MIXL_OK;
}

mixl_status_t bench_buf_alloc_mpi(MPI_Comm comm, size_t len, int fill, bench_buf_t *buf_p, char *note,
                                  size_t notelen)
{
    bench_buf_t b = {.len = len > 4096 ? len : 4096, .kind = BENCH_MEM_HOST_MPI};
    mixl_status_t st = mixl_mem_alloc_mpi(comm, b.len, &b.ptr);
    if (st != MIXL_OK) {
        snprintf(note, notelen, "%s", mixl_last_error());
        return st;
    }
    memset(b.ptr, fill, b.len);
    *buf_p = b;
    return MIXL_OK;
}

void bench_buf_free(bench_buf_t *buf)
{
    if (buf->ptr == NULL) return;
    if (buf->kind == BENCH_MEM_HOST_MPI) {
        mixl_mem_free_mpi(buf->ptr);
        buf->ptr = NULL;
        return;
    }
#ifdef MIXL_HAVE_CUDA
    if (buf->kind == BENCH_MEM_CUDA) {
        cudaFree(buf->ptr);
        buf->ptr = NULL;
        return;
    }
    if (buf->cuda_host) {
        cudaFreeHost(buf->ptr);
        buf->ptr = NULL;
        return;
    }
#endif
    if (buf->kind == BENCH_MEM_PINNED) munlock(buf->ptr, buf->len);
    free(buf->ptr);
    buf->ptr = NULL;
}

void bench_buf_copy(unsigned kind, void *dst, const void *src, size_t len)
{
#ifdef MIXL_HAVE_CUDA
    if (kind == BENCH_MEM_CUDA) {
        /* Device to device cudaMemcpy returns before the copy ends: a
         * baseline must wait for it. */
        cudaMemcpy(dst, src, len, cudaMemcpyDeviceToDevice);
        cudaDeviceSynchronize();
        return;
    }
#endif
    memcpy(dst, src, len);
}

int bench_buf_copy_hd(int to_device, void *dst, const void *src, size_t len)
{
#ifdef MIXL_HAVE_CUDA
    cudaError_t ce = cudaMemcpy(dst, src, len, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost);
    /* From pageable memory the copy may return before the DMA is done. */
    if (ce == cudaSuccess && to_device) ce = cudaStreamSynchronize(cudaStreamLegacy);
    return (int)ce;
#else
    (void)to_device, (void)dst, (void)src, (void)len;
    return -1;
#endif
}

void bench_buf_upload(unsigned kind, void *dst, const void *host, size_t len)
{
#ifdef MIXL_HAVE_CUDA
    if (kind == BENCH_MEM_CUDA) {
        /* From pageable memory the copy may return before the DMA is done:
         * wait, so the data is there before a peer reads it. */
        cudaMemcpy(dst, host, len, cudaMemcpyHostToDevice);
        cudaDeviceSynchronize();
        return;
    }
#endif
    (void)kind;
    memcpy(dst, host, len);
}

void bench_buf_download(unsigned kind, void *host, const void *src, size_t len)
{
#ifdef MIXL_HAVE_CUDA
    if (kind == BENCH_MEM_CUDA) {
        cudaMemcpy(host, src, len, cudaMemcpyDeviceToHost);
        return;
    }
#endif
    (void)kind;
    memcpy(host, src, len);
}
