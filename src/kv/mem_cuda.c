/*
 * The KV fill and check on the device through the kernels of
 * kernels_cuda.cu (built only with the CUDA toolkit). Device memory and the
 * kernels' buffers come from the library's allocator (mixl_mem_alloc).
 */
#include "kv/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "kv/kernels.h"
#include "util/log.h"

/* The kernels' stream and the check's buffers, one set per memory. */
struct mixl_kv_cuda_work {
    cudaStream_t stream;
    uint64_t cap;                  /* request blocks the buffers hold */
    uint64_t *h_blocks, *d_blocks; /* request block -> region block */
    uint32_t *h_bad, *d_bad;       /* [K,V][cap] words that differ */
};

static void work_free(struct mixl_kv_cuda_work *w)
{
    if (w == NULL) return;
    if (w->stream != NULL) cudaStreamDestroy(w->stream);
    mixl_mem_free(MIXL_MEM_PINNED, w->h_blocks);
    mixl_mem_free(MIXL_MEM_PINNED, w->h_bad);
    mixl_mem_free(MIXL_MEM_CUDA, w->d_blocks);
    mixl_mem_free(MIXL_MEM_CUDA, w->d_bad);
    free(w);
}

/* The memory's work set, made on first use for up to cap request blocks. */
static mixl_status_t work_get(mixl_kv_mem_t *mem, uint64_t cap, struct mixl_kv_cuda_work **w_p)
{
    cudaError_t ce;
    struct mixl_kv_cuda_work *w = mem->work;
    if (w != NULL) {
        *w_p = w;
        return MIXL_OK;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) return MIXL_ERR_NO_MEMORY;
    w->cap = cap ? cap : 1;
    if ((ce = cudaSetDevice(mem->device)) != cudaSuccess ||
        (ce = cudaStreamCreateWithFlags(&w->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        mixl_error("KV kernels on device %d: setting up their stream: %s: %s", mem->device,
                   cudaGetErrorName(ce), cudaGetErrorString(ce));
        work_free(w);
        return MIXL_ERR_BACKEND;
    }
    if (mixl_mem_alloc(MIXL_MEM_PINNED, 0, w->cap * sizeof(uint64_t), (void **)&w->h_blocks) != MIXL_OK ||
        mixl_mem_alloc(MIXL_MEM_PINNED, 0, 2 * w->cap * sizeof(uint32_t), (void **)&w->h_bad) != MIXL_OK ||
        mixl_mem_alloc(MIXL_MEM_CUDA, mem->device, w->cap * sizeof(uint64_t), (void **)&w->d_blocks) !=
            MIXL_OK ||
        mixl_mem_alloc(MIXL_MEM_CUDA, mem->device, 2 * w->cap * sizeof(uint32_t), (void **)&w->d_bad) !=
            MIXL_OK) {
        mixl_error("KV kernels on device %d: their buffers: %s", mem->device, mixl_last_error());
        work_free(w);
        return MIXL_ERR_BACKEND;
    }
    mem->work = w;
    *w_p = w;
    return MIXL_OK;
}

/* Kernel arguments for layer region_layer of l in mem (pattern of model_layer). */
static mixl_kv_kernel_args_t kernel_args(const mixl_kv_mem_t *mem, const mixl_kv_layout_t *l,
                                         int region_layer, int model_layer, uint64_t req,
                                         uint64_t tokens)
{
    uint64_t base = mixl_kv_offset(l, region_layer, 0, 0, 0, 0);
    mixl_kv_kernel_args_t a = {
        .base = (uint8_t *)mem->ptr + base,
        .kv_stride = mixl_kv_offset(l, region_layer, 1, 0, 0, 0) - base,
        .block_stride = mixl_kv_offset(l, region_layer, 0, 1, 0, 0) - base,
        .head_stride = mixl_kv_offset(l, region_layer, 0, 0, 1, 0) - base,
        .row = mixl_kv_row_bytes(l),
        .req = req,
        .tokens = tokens,
        .nblocks = mixl_kv_blocks_for(tokens, l->block_size),
        .layer = model_layer,
        .head0 = l->head0,
        .heads = l->heads,
        .block_size = l->block_size,
    };
    return a;
}

/* The layer's bytes must lie inside the allocation. */
static mixl_status_t check_bounds(const mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int region_layer,
                                  uint64_t nblocks, const char *what)
{
    if (mem->type != MIXL_MEM_CUDA || region_layer < 0 || region_layer >= l->layers ||
        nblocks > l->blocks || mixl_kv_region_bytes(l) > mem->len) {
        mixl_error("KV %s on the device: layer %d, %llu blocks do not fit the %zu-byte region", what,
                   region_layer, (unsigned long long)nblocks, mem->len);
        return MIXL_ERR_OUT_OF_RANGE;
    }
    return MIXL_OK;
}

mixl_status_t mixl_kv_cuda_fill_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int region_layer,
                                      int model_layer, uint64_t req, uint64_t tokens)
{
    struct mixl_kv_cuda_work *w;
    mixl_kv_kernel_args_t a = kernel_args(mem, l, region_layer, model_layer, req, tokens);
    mixl_status_t st = check_bounds(mem, l, region_layer, a.nblocks, "fill");
    if (st != MIXL_OK || (st = work_get(mem, l->blocks, &w)) != MIXL_OK) return st;
    /* Synchronised before returning: MPI, the NIC or a copy on another
     * stream reads these bytes next, outside this stream's order. */
    cudaError_t ce = (cudaError_t)mixl_kv_kernel_fill(&a, w->stream);
    if (ce == cudaSuccess) ce = cudaStreamSynchronize(w->stream);
    if (ce != cudaSuccess) {
        mixl_error("KV fill kernel on device %d (request %llu, layer %d): %s: %s", mem->device,
                   (unsigned long long)req, model_layer, cudaGetErrorName(ce), cudaGetErrorString(ce));
        return MIXL_ERR_BACKEND;
    }
    return MIXL_OK;
}

mixl_status_t mixl_kv_cuda_check_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int layer,
                                       uint64_t req, uint64_t tokens, const mixl_kv_run_t *runs,
                                       size_t nruns, uint32_t *bad_p)
{
    struct mixl_kv_cuda_work *w;
    mixl_kv_kernel_args_t a = kernel_args(mem, l, layer, layer, req, tokens);
    mixl_status_t st = check_bounds(mem, l, layer, a.nblocks, "check");
    if (st != MIXL_OK || (st = work_get(mem, l->blocks, &w)) != MIXL_OK) return st;
    if (a.nblocks == 0) return MIXL_OK;
    for (uint64_t i = 0; i < a.nblocks; i++) {
        w->h_blocks[i] = mixl_kv_runs_block(runs, nruns, i);
        if (w->h_blocks[i] >= l->blocks) {
            mixl_error("KV check of request %llu: request block %llu maps to block %llu, outside "
                       "the pool of %llu", (unsigned long long)req, (unsigned long long)i,
                       (unsigned long long)w->h_blocks[i], (unsigned long long)l->blocks);
            return MIXL_ERR_OUT_OF_RANGE;
        }
    }
    a.blocks = w->d_blocks;
    a.bad = w->d_bad;
    size_t bad_bytes = 2 * a.nblocks * sizeof(uint32_t);
    cudaError_t ce = cudaMemcpyAsync(w->d_blocks, w->h_blocks, a.nblocks * sizeof(uint64_t),
                                     cudaMemcpyHostToDevice, w->stream);
    if (ce == cudaSuccess) ce = cudaMemsetAsync(w->d_bad, 0, bad_bytes, w->stream);
    if (ce == cudaSuccess) ce = (cudaError_t)mixl_kv_kernel_check(&a, w->stream);
    if (ce == cudaSuccess)
        ce = cudaMemcpyAsync(w->h_bad, w->d_bad, bad_bytes, cudaMemcpyDeviceToHost, w->stream);
    if (ce == cudaSuccess) ce = cudaStreamSynchronize(w->stream);
    if (ce != cudaSuccess) {
        mixl_error("KV check kernel on device %d (request %llu, layer %d): %s: %s", mem->device,
                   (unsigned long long)req, layer, cudaGetErrorName(ce), cudaGetErrorString(ce));
        return MIXL_ERR_BACKEND;
    }
    memcpy(bad_p, w->h_bad, bad_bytes);
    return MIXL_OK;
}

void mixl_kv_cuda_work_free(mixl_kv_mem_t *mem)
{
    work_free(mem->work);
    mem->work = NULL;
}
