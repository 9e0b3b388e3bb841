/*
 * Device memory over TCP: synchronous copies between CUDA memory and the
 * pinned staging buffer of a connection, one frame at a time. Built only when
 * the CUDA toolkit is found. The progress thread calls these; each copy sets
 * the region's device first because that thread has no current device.
 */
#include <cuda_runtime.h>

#include "transport/tcp/tcp_internal.h"
#include "util/log.h"

static mixl_status_t cuda_copy(void *dst, const void *src, size_t len, int device,
                               enum cudaMemcpyKind kind)
{
    cudaError_t e = cudaSetDevice(device);

    if (e == cudaSuccess) e = cudaMemcpy(dst, src, len, kind);
    if (e != cudaSuccess) {
        mixl_error("tcp staging: cudaMemcpy of %zu bytes on device %d: %s", len, device,
                   cudaGetErrorString(e));
        return MIXL_ERR_BACKEND;
    }
    return MIXL_OK;
}

mixl_status_t tcp_cuda_to_host(void *dst, const void *src, size_t len, int device)
{
    return cuda_copy(dst, src, len, device, cudaMemcpyDeviceToHost);
}

mixl_status_t tcp_cuda_from_host(void *dst, const void *src, size_t len, int device)
{
    return cuda_copy(dst, src, len, device, cudaMemcpyHostToDevice);
}

void *tcp_cuda_host_alloc(size_t len)
{
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, len);

    if (e != cudaSuccess) {
        mixl_error("tcp staging: cudaMallocHost of %zu bytes: %s", len, cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

void tcp_cuda_host_free(void *p)
{
    cudaFreeHost(p);
}
