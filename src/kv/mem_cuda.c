/* CUDA device memory for KV pools and prefill buffers (built only with the CUDA toolkit). */
#include "kv/mem.h"

#include <stdio.h>

#include <cuda_runtime_api.h>

mixl_status_t mixl_kv_cuda_alloc(mixl_kv_mem_t *mem, size_t len, int device, int local_rank,
                                 char *err, size_t err_len)
{
    int count = 0;
    cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess || count == 0) {
        snprintf(err, err_len, "CUDA memory requested but no CUDA device is usable: %s",
                 ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
        return MIXL_ERR_NOT_SUPPORTED;
    }
    if (device < 0) device = (local_rank < 0 ? 0 : local_rank) % count;
    if (device >= count) {
        snprintf(err, err_len, "CUDA device %d requested but only %d are visible", device, count);
        return MIXL_ERR_INVALID_PARAM;
    }
    void *p = NULL;
    if ((ce = cudaSetDevice(device)) != cudaSuccess ||
        (ce = cudaMalloc(&p, len ? len : 1)) != cudaSuccess ||
        (ce = cudaMemset(p, 0, len ? len : 1)) != cudaSuccess) {
        if (p != NULL) cudaFree(p);
        snprintf(err, err_len, "cudaMalloc of %zu bytes on device %d failed: %s", len, device,
                 cudaGetErrorString(ce));
        return MIXL_ERR_NO_MEMORY;
    }
    mem->ptr = p;
    mem->len = len;
    mem->type = MIXL_MEM_CUDA;
    mem->device = device;
    return MIXL_OK;
}

void mixl_kv_cuda_free(mixl_kv_mem_t *mem)
{
    cudaFree(mem->ptr);
}

mixl_status_t mixl_kv_cuda_copy(void *dst, const void *src, size_t len, int to_device)
{
    cudaError_t ce =
        cudaMemcpy(dst, src, len, to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost);
    /* From pageable memory cudaMemcpy returns once the source is staged, not
     * when the bytes are in device memory; MPI or the NIC reads them next
     * (and the caller reuses its scratch buffer), outside the stream order. */
    if (ce == cudaSuccess && to_device) ce = cudaStreamSynchronize(cudaStreamLegacy);
    return ce == cudaSuccess ? MIXL_OK : MIXL_ERR_BACKEND;
}
