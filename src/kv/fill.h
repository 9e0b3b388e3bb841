/*
 * Deterministic KV content and its checksums. Every element is a function of
 * (request, layer, K/V, global head, token, position), so a decode rank can
 * recompute what any prefill rank should have sent and check each block by
 * CRC32C without extra messages. A block from another request, another
 * layer, a swapped head or a stale transfer fails the check.
 */
#ifndef MIXL_KV_FILL_H
#define MIXL_KV_FILL_H

#include <stddef.h>
#include <stdint.h>

#include "kv/layout.h"

/* Write row_bytes of the row (request, layer, kv, global head, token). */
void mixl_kv_fill_row(uint64_t req, int layer, int kv, int head, uint64_t token, void *dst,
                      size_t row_bytes);

/*
 * Fill one layer of a request into a region laid out as l (model layer
 * model_layer goes to region layer region_layer): K and V, every head of l,
 * request block i at block i, tokens tokens.
 */
void mixl_kv_fill_layer(const mixl_kv_layout_t *l, void *region, int region_layer, int model_layer,
                        uint64_t req, uint64_t tokens);

/*
 * 8-byte words (the last word of a row counts when any of its bytes differs)
 * in which a block differs from the expected fill: request block req_block
 * of (req, layer, kv), its first ntok tokens, every head of l; block points
 * at its head 0, token 0. One pass that generates each expected word and
 * compares it with the one received, as the device check does
 * (kernels_cuda.cu): no checksum of either side.
 */
uint64_t mixl_kv_block_diff(const mixl_kv_layout_t *l, const void *block, uint64_t req, int layer,
                            int kv, uint64_t req_block, uint64_t ntok);

#endif /* MIXL_KV_FILL_H */
