/* Helpers built on any bootstrap's ops (see bootstrap.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"

mixl_status_t bench_boot_exchange_var(bench_boot_t *b, const void *send, size_t len, void **all_p,
                                      size_t *stride_p)
{
    int n = bench_boot_size(b);
    uint64_t mine = len, maxlen = 0;
    uint64_t *lens = malloc((size_t)n * sizeof(*lens));
    mixl_status_t st;
    if (lens == NULL) return MIXL_ERR_NO_MEMORY;
    st = bench_boot_exchange(b, &mine, sizeof(mine), lens);
    if (st != MIXL_OK) goto err_lens;
    for (int r = 0; r < n; r++)
        if (lens[r] > maxlen) maxlen = lens[r];
    size_t stride = sizeof(uint64_t) + (size_t)maxlen;
    uint8_t *slot = calloc(1, stride);
    uint8_t *all = malloc(stride * (size_t)n);
    if (slot == NULL || all == NULL) {
        free(slot);
        free(all);
        st = MIXL_ERR_NO_MEMORY;
        goto err_lens;
    }
    memcpy(slot, &mine, sizeof(mine));
    if (len) memcpy(slot + sizeof(mine), send, len);
    st = bench_boot_exchange(b, slot, stride, all);
    free(slot);
    if (st != MIXL_OK) {
        free(all);
        goto err_lens;
    }
    free(lens);
    *all_p = all;
    *stride_p = stride;
    return MIXL_OK;

err_lens:
    free(lens);
    return st;
}
