/* Block allocator: first-fit contiguous, else lowest free blocks; see alloc.h. */
#include "kv/alloc.h"

#include <stdlib.h>
#include <string.h>

mixl_status_t mixl_kv_alloc_init(mixl_kv_alloc_t *a, uint64_t nblocks)
{
    a->used = calloc(nblocks ? nblocks : 1, 1);
    if (a->used == NULL) return MIXL_ERR_NO_MEMORY;
    a->nblocks = nblocks;
    a->nfree = nblocks;
    return MIXL_OK;
}

void mixl_kv_alloc_fini(mixl_kv_alloc_t *a)
{
    free(a->used);
    a->used = NULL;
    a->nblocks = a->nfree = 0;
}

static void alloc_mark(mixl_kv_alloc_t *a, uint64_t start, uint64_t count)
{
    memset(a->used + start, 1, count);
    a->nfree -= count;
}

mixl_status_t mixl_kv_alloc_get(mixl_kv_alloc_t *a, uint64_t n, mixl_kv_run_t *runs,
                                size_t *nruns_p)
{
    if (n == 0) {
        *nruns_p = 0;
        return MIXL_OK;
    }
    if (n > a->nfree) return MIXL_ERR_NO_RESOURCE;

    /* First fit: one stretch long enough. */
    uint64_t stretch = 0;
    for (uint64_t b = 0; b < a->nblocks; b++) {
        stretch = a->used[b] ? 0 : stretch + 1;
        if (stretch == n) {
            runs[0].start = b + 1 - n;
            runs[0].count = n;
            alloc_mark(a, runs[0].start, n);
            *nruns_p = 1;
            return MIXL_OK;
        }
    }

    /* Fragmented: the lowest free blocks, grouped into runs. */
    size_t nruns = 0;
    uint64_t need = n;
    for (uint64_t b = 0; b < a->nblocks && need > 0; b++) {
        if (a->used[b]) continue;
        if (nruns > 0 && runs[nruns - 1].start + runs[nruns - 1].count == b) {
            runs[nruns - 1].count++;
        } else {
            runs[nruns].start = b;
            runs[nruns].count = 1;
            nruns++;
        }
        need--;
    }
    for (size_t r = 0; r < nruns; r++) alloc_mark(a, runs[r].start, runs[r].count);
    *nruns_p = nruns;
    return MIXL_OK;
}

mixl_status_t mixl_kv_alloc_put(mixl_kv_alloc_t *a, const mixl_kv_run_t *runs, size_t nruns)
{
    for (size_t r = 0; r < nruns; r++) {
        if (runs[r].start >= a->nblocks || runs[r].count > a->nblocks - runs[r].start)
            return MIXL_ERR_INVALID_PARAM;
        for (uint64_t b = runs[r].start; b < runs[r].start + runs[r].count; b++)
            if (!a->used[b]) return MIXL_ERR_INVALID_PARAM;
    }
    for (size_t r = 0; r < nruns; r++) {
        memset(a->used + runs[r].start, 0, runs[r].count);
        a->nfree += runs[r].count;
    }
    return MIXL_OK;
}
