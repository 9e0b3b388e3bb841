/*
 * The decode rank's block allocator: which pool blocks belong to a request.
 * Prefers one contiguous stretch (one transfer span per layer and K/V), and
 * falls back to the lowest free blocks when the pool is fragmented.
 * Deterministic: the same sequence of calls gives the same ids.
 */
#ifndef MIXL_KV_ALLOC_H
#define MIXL_KV_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

#include "kv/runs.h"

typedef struct {
    uint64_t nblocks;
    uint64_t nfree;
    uint8_t *used; /* one byte per block */
} mixl_kv_alloc_t;

mixl_status_t mixl_kv_alloc_init(mixl_kv_alloc_t *a, uint64_t nblocks);
void mixl_kv_alloc_fini(mixl_kv_alloc_t *a);

/*
 * Take n blocks. runs must hold n entries (the worst case). Returns
 * MIXL_ERR_NO_RESOURCE, taking nothing, when fewer than n blocks are free.
 */
mixl_status_t mixl_kv_alloc_get(mixl_kv_alloc_t *a, uint64_t n, mixl_kv_run_t *runs,
                                size_t *nruns_p);

/* Give blocks back. MIXL_ERR_INVALID_PARAM (nothing freed) for a block out of range or already free. */
mixl_status_t mixl_kv_alloc_put(mixl_kv_alloc_t *a, const mixl_kv_run_t *runs, size_t nruns);

#endif /* MIXL_KV_ALLOC_H */
