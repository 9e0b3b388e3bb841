/*
 * The KV fill pattern, element by element, shared by the host fill
 * (fill.c) and the CUDA kernels (kernels_cuda.cu) so both produce the
 * same bytes: a row of (request, layer, K/V, global head, token) is a
 * splitmix64 stream seeded from those five numbers, one 64-bit word per
 * 8 bytes (little-endian), the last word cut short when the row is not a
 * multiple of 8 bytes.
 */
#ifndef MIXL_KV_FILL_ELEM_H
#define MIXL_KV_FILL_ELEM_H

#include <stdint.h>

#ifdef __CUDACC__
#define MIXL_KV_HD static __host__ __device__ __forceinline__
#else
#define MIXL_KV_HD static inline
#endif

MIXL_KV_HD uint64_t mixl_kv_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The seed of one row. */
MIXL_KV_HD uint64_t mixl_kv_row_seed(uint64_t req, int layer, int kv, int head, uint64_t token)
{
    return mixl_kv_mix(mixl_kv_mix(mixl_kv_mix(req) ^ ((uint64_t)layer << 1 | (uint64_t)kv)) ^
                       ((uint64_t)head << 32 | (token & 0xffffffffull)) ^ (token >> 32));
}

/* Bytes [8w, 8w + 8) of a row with the given seed. */
MIXL_KV_HD uint64_t mixl_kv_row_word(uint64_t seed, uint64_t w)
{
    return mixl_kv_mix(seed + 8 * w);
}

#endif /* MIXL_KV_FILL_ELEM_H */
