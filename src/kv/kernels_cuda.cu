/*
 * KV fill and check kernels (see kernels.h). One thread per 8-byte word of
 * a row, words of a row and rows of a block consecutive, so neighbouring
 * threads touch neighbouring bytes; a grid-stride loop covers any size.
 */
#include "kv/kernels.h"

#include <dlfcn.h>
#include <pthread.h>

#include <cuda_runtime.h>

#include "kv/fill_elem.h"

namespace {

const unsigned kThreads = 256;
const uint64_t kMaxGrid = 1u << 20;

__host__ __device__ inline uint64_t words_per_row(const mixl_kv_kernel_args_t &a)
{
    return (a.row + 7) / 8;
}

__host__ __device__ inline uint64_t total_words(const mixl_kv_kernel_args_t &a)
{
    return 2 * a.nblocks * (uint64_t)a.heads * (uint64_t)a.block_size * words_per_row(a);
}

/* Where word idx lives and what it must hold; false for tokens past the request's end. */
__host__ __device__ inline bool locate(const mixl_kv_kernel_args_t &a, uint64_t idx, uint8_t **p_p,
                                       uint64_t *n_p, uint64_t *value_p, uint64_t *slot_p)
{
    uint64_t wpr = words_per_row(a);
    uint64_t w = idx % wpr, r = idx / wpr;
    uint64_t bt = r % (uint64_t)a.block_size;
    r /= (uint64_t)a.block_size;
    int h = (int)(r % (uint64_t)a.heads);
    r /= (uint64_t)a.heads;
    uint64_t b = r % a.nblocks;
    int kv = (int)(r / a.nblocks);
    uint64_t token = b * (uint64_t)a.block_size + bt;
    if (token >= a.tokens) return false;
    uint64_t blk = a.blocks != NULL ? a.blocks[b] : b;
    *p_p = a.base + (uint64_t)kv * a.kv_stride + blk * a.block_stride + (uint64_t)h * a.head_stride +
           bt * a.row + 8 * w;
    *n_p = a.row - 8 * w < 8 ? a.row - 8 * w : 8;
    *value_p = mixl_kv_row_word(mixl_kv_row_seed(a.req, a.layer, kv, a.head0 + h, token), w);
    *slot_p = (uint64_t)kv * a.nblocks + b;
    return true;
}

__host__ __device__ inline void fill_word(const mixl_kv_kernel_args_t &a, uint64_t idx)
{
    uint8_t *p;
    uint64_t n, v, slot;
    if (!locate(a, idx, &p, &n, &v, &slot)) return;
    if (n == 8 && ((uintptr_t)p & 7) == 0) {
        *(uint64_t *)p = v;
        return;
    }
    for (uint64_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

__host__ __device__ inline void check_word(const mixl_kv_kernel_args_t &a, uint64_t idx)
{
    uint8_t *p;
    uint64_t n, v, slot, got = 0;
    if (!locate(a, idx, &p, &n, &v, &slot)) return;
    if (n == 8 && ((uintptr_t)p & 7) == 0) {
        got = *(const uint64_t *)p;
    } else {
        for (uint64_t i = 0; i < n; i++) got |= (uint64_t)p[i] << (8 * i);
        if (n < 8) v &= (1ull << (8 * n)) - 1;
    }
    if (got == v) return;
#ifdef __CUDA_ARCH__
    atomicAdd(&a.bad[slot], 1u);
#else
    __atomic_fetch_add(&a.bad[slot], 1u, __ATOMIC_RELAXED);
#endif
}

__global__ void fill_kernel(mixl_kv_kernel_args_t a)
{
    uint64_t n = total_words(a), stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        fill_word(a, i);
}

__global__ void check_kernel(mixl_kv_kernel_args_t a)
{
    uint64_t n = total_words(a), stride = (uint64_t)gridDim.x * blockDim.x;
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        check_word(a, i);
}

/*
 * Host versions for the emulated device: every thread of the launch's grid
 * runs the kernel's grid-stride loop, so a grid too small for the layer or
 * a wrong stride leaves words unwritten as it would on a GPU.
 */
template <void (*body)(const mixl_kv_kernel_args_t &, uint64_t)>
void emulated(void **args, unsigned grid, unsigned block)
{
    const mixl_kv_kernel_args_t &a = *(const mixl_kv_kernel_args_t *)args[0];
    uint64_t n = total_words(a), threads = (uint64_t)grid * block;
    for (uint64_t t = 0; t < threads; t++)
        for (uint64_t i = t; i < n; i += threads) body(a, i);
}

pthread_once_t g_register_once = PTHREAD_ONCE_INIT;

void register_emulated(void)
{
    typedef void (*host_fn_t)(void **, unsigned, unsigned);
    typedef void (*register_t)(const void *, host_fn_t);
    register_t reg = (register_t)dlsym(RTLD_DEFAULT, "cuda_emu_register_host_kernel");
    if (reg == NULL) return; /* a real CUDA runtime */
    reg((const void *)fill_kernel, emulated<fill_word>);
    reg((const void *)check_kernel, emulated<check_word>);
}

int launch(void (*kernel)(mixl_kv_kernel_args_t), const mixl_kv_kernel_args_t *a, void *stream)
{
    pthread_once(&g_register_once, register_emulated);
    uint64_t n = total_words(*a);
    if (n == 0) return cudaSuccess;
    uint64_t grid = (n + kThreads - 1) / kThreads;
    if (grid > kMaxGrid) grid = kMaxGrid;
    kernel<<<(unsigned)grid, kThreads, 0, (cudaStream_t)stream>>>(*a);
    return cudaGetLastError();
}

} // namespace

extern "C" int mixl_kv_kernel_fill(const mixl_kv_kernel_args_t *a, void *stream)
{
    return launch(fill_kernel, a, stream);
}

extern "C" int mixl_kv_kernel_check(const mixl_kv_kernel_args_t *a, void *stream)
{
    return launch(check_kernel, a, stream);
}
