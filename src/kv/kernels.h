/*
 * CUDA kernels that fill KV layers in device memory and check them there
 * (kernels_cuda.cu, built only with the CUDA toolkit). The element function
 * is the host fill's (fill_elem.h), so a layer filled on the device holds
 * the bytes mixl_kv_fill_layer() writes on the host.
 *
 * On the emulated device of the tests (tests/cuda_emu), which cannot run
 * device code, a launch runs a host version of the same kernel body over
 * every thread of the launch's grid, registered with the emulation at the
 * first launch; on a real GPU that registration finds nothing to call.
 */
#ifndef MIXL_KV_KERNELS_H
#define MIXL_KV_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One layer of one request in a region laid out [K,V][block][head][token][row]
 * (strides in bytes). Request block i lives at region block blocks[i], or
 * at block i when blocks is NULL. The pattern is that of model layer
 * `layer`, global heads head0 .. head0 + heads - 1.
 */
typedef struct {
    uint8_t *base; /* device address of (K, block 0, head 0, token 0) */
    uint64_t kv_stride, block_stride, head_stride, row;
    const uint64_t *blocks; /* device array of nblocks ids, or NULL */
    uint32_t *bad;          /* check: device array [K,V][nblocks], words that differ */
    uint64_t req, tokens, nblocks;
    int layer, head0, heads, block_size;
} mixl_kv_kernel_args_t;

/* Enqueue the fill of every token of a on stream (a cudaStream_t); returns a cudaError_t. */
int mixl_kv_kernel_fill(const mixl_kv_kernel_args_t *a, void *stream);

/* Enqueue the check: adds to a->bad (zeroed by the caller) per differing 8-byte word. */
int mixl_kv_kernel_check(const mixl_kv_kernel_args_t *a, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* MIXL_KV_KERNELS_H */
