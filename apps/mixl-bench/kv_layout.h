/*
 * The model-shaped mode's request: a request's KV on the prefill side
 * (layer-major, K then V, its blocks contiguous) and where each block lands
 * in the decode side's paged pool, chosen the way a fragmented block
 * allocator hands blocks out (runs of adjacent free blocks, in no order).
 *
 * The geometry is src/kv's, the one KV layout mixl-run uses too: both sides
 * are mixl_kv_layout_t of the whole model on one rank (all KV heads), the
 * source with the request's blocks, the pool with pool_blocks. This file
 * only adds the fragmented placement and the fill pattern.
 */
#ifndef MIXL_BENCH_KV_LAYOUT_H
#define MIXL_BENCH_KV_LAYOUT_H

#include <stdint.h>

#include "bench.h"
#include "kv/layout.h"

typedef struct {
    const bench_model_t *model;
    uint64_t tokens;
    unsigned block_tokens;
    uint64_t nblocks;     /* blocks of the request (the last one may be partly filled) */
    uint64_t pool_blocks; /* blocks per layer and K/V in the decode pool */
    uint64_t block_bytes; /* one block of one layer's K (or V) */
    uint64_t kv_bytes;    /* the request's KV: layers x 2 x nblocks x block_bytes */
    uint64_t pool_bytes;
    uint64_t *alloc;      /* pool block of each request block, all distinct */
    mixl_kv_layout_t src; /* the prefill buffer: nblocks blocks */
    mixl_kv_layout_t pool; /* the decode pool: pool_blocks blocks */
} bench_kv_layout_t;

/* KV bytes one token occupies over all layers (K and V). */
uint64_t bench_kv_bytes_per_token(const bench_model_t *m);

/*
 * Lay out a request of tokens with block_tokens per block; the pool has a
 * quarter more blocks than the request needs, handed out in runs of 1 to 8
 * adjacent blocks in a shuffled order (seeded, so runs are reproducible).
 */
mixl_status_t bench_kv_layout_init(bench_kv_layout_t *l, const bench_model_t *m, uint64_t tokens,
                                   unsigned block_tokens, uint64_t seed);
void bench_kv_layout_free(bench_kv_layout_t *l);

/* Offset of block b of layer layer, K (kv 0) or V (kv 1), in the prefill buffer and the pool. */
static inline uint64_t bench_kv_src_off(const bench_kv_layout_t *l, unsigned layer, unsigned kv,
                                        uint64_t b)
{
    return mixl_kv_offset(&l->src, (int)layer, (int)kv, b, 0, 0);
}
static inline uint64_t bench_kv_pool_off(const bench_kv_layout_t *l, unsigned layer, unsigned kv,
                                         uint64_t b)
{
    return mixl_kv_offset(&l->pool, (int)layer, (int)kv, l->alloc[b], 0, 0);
}

/* Contiguous runs in the allocation: the operations one layer's K (or V) needs after merging. */
uint64_t bench_kv_runs(const bench_kv_layout_t *l);

/* The byte every position of block (layer, kv, b) holds, so placement can be checked. */
static inline uint8_t bench_kv_fill(unsigned layer, unsigned kv, uint64_t b)
{
    return (uint8_t)(1u + (layer * 31u + kv * 17u + (unsigned)(b % 255u) * 7u) % 255u); /* never 0 */
}

#endif /* MIXL_BENCH_KV_LAYOUT_H */
