/*
 * KV memory layout and the spans that move one layer between layouts.
 *
 * A region holds [layer][K,V][block][head][token][head_dim] elements: heads
 * outside tokens inside a block ("HND"), so any range of heads within a
 * block is contiguous. That makes tensor-parallel transforms cheap: a
 * prefill rank owning heads [a,b) and a decode rank owning [c,d) exchange
 * the overlap with one span per block, and whole blocks merge into one span
 * per run when the head ranges match.
 *
 * The decode pool is one region (all layers, pool_blocks blocks). A
 * prefill rank's compute buffer is `slots` regions of one layer each, sized
 * for the longest prompt; request block i lives at slot block i.
 */
#ifndef MIXL_KV_LAYOUT_H
#define MIXL_KV_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "kv/model.h"
#include "kv/runs.h"

typedef struct {
    int layers;      /* layers in the region */
    uint64_t blocks; /* blocks per (layer, K/V) */
    int heads;       /* heads held by this rank */
    int head0;       /* global index of the first of them */
    int block_size;  /* tokens per block */
    int head_dim;
    int elem_bytes;
} mixl_kv_layout_t;

/* One contiguous copy: src_off in the source region, dst_off in the destination. */
typedef struct {
    uint64_t src_off;
    uint64_t dst_off;
    uint64_t len;
} mixl_kv_span_t;

/* Layout of TP rank tp_rank of tp over model m, with the given layers and blocks. */
mixl_kv_layout_t mixl_kv_layout(const mixl_kv_model_t *m, int tp, int tp_rank, int layers,
                                uint64_t blocks);

static inline uint64_t mixl_kv_row_bytes(const mixl_kv_layout_t *l)
{
    return (uint64_t)l->head_dim * (uint64_t)l->elem_bytes;
}
static inline uint64_t mixl_kv_block_bytes(const mixl_kv_layout_t *l)
{
    return (uint64_t)l->heads * (uint64_t)l->block_size * mixl_kv_row_bytes(l);
}
static inline uint64_t mixl_kv_layer_bytes(const mixl_kv_layout_t *l)
{
    return 2ull * l->blocks * mixl_kv_block_bytes(l);
}
static inline uint64_t mixl_kv_region_bytes(const mixl_kv_layout_t *l)
{
    return (uint64_t)l->layers * mixl_kv_layer_bytes(l);
}

/* Byte offset of (layer, kv, block, local head, token) in the region. */
static inline uint64_t mixl_kv_offset(const mixl_kv_layout_t *l, int layer, int kv, uint64_t block,
                                      int head, uint64_t token)
{
    return ((((uint64_t)layer * 2 + (uint64_t)kv) * l->blocks + block) * (uint64_t)l->heads +
            (uint64_t)head) *
               (uint64_t)l->block_size * mixl_kv_row_bytes(l) +
           token * mixl_kv_row_bytes(l);
}

/* Blocks a prompt of tokens occupies. */
static inline uint64_t mixl_kv_blocks_for(uint64_t tokens, int block_size)
{
    return (tokens + (uint64_t)block_size - 1) / (uint64_t)block_size;
}

/* Heads two layouts share: [*h0_p, *h1_p); returns 0 when they share none. */
int mixl_kv_head_overlap(const mixl_kv_layout_t *a, const mixl_kv_layout_t *b, int *h0_p,
                         int *h1_p);

/* Upper bound on the spans mixl_kv_layer_spans() writes for a prompt of tokens. */
size_t mixl_kv_spans_max(const mixl_kv_layout_t *src, const mixl_kv_layout_t *dst, uint64_t tokens);

/*
 * The spans that copy one layer of a request (tokens long) from src to dst,
 * for the heads both hold: K then V, request block i at src block i of
 * src_layer and at dst block runs[i] of dst_layer. Only filled tokens move
 * (the last block may be partial), so the spans over all TP pairs add up to
 * exactly tokens x 2 x kv_heads x row bytes per layer. Adjacent spans that
 * are contiguous on both sides are merged. Returns the number written.
 */
size_t mixl_kv_layer_spans(const mixl_kv_layout_t *src, int src_layer, const mixl_kv_layout_t *dst,
                           int dst_layer, const mixl_kv_run_t *runs, size_t nruns, uint64_t tokens,
                           mixl_kv_span_t *out);

/* Total bytes of a span list. */
uint64_t mixl_kv_spans_bytes(const mixl_kv_span_t *spans, size_t n);

#endif /* MIXL_KV_LAYOUT_H */
