/* The model-shaped mode's request and fragmented pool, laid out by src/kv; see kv_layout.h. */
#include "kv_layout.h"

#include <stdlib.h>

#include "kv/model.h"
#include "kv/runs.h"

/* The model as src/kv describes it; block_tokens tokens per block. */
static mixl_kv_model_t kv_model(const bench_model_t *m, unsigned block_tokens)
{
    mixl_kv_model_t k = {.layers = (int)m->layers, .kv_heads = (int)m->kv_heads,
                         .head_dim = (int)m->head_dim, .elem_bytes = (int)m->dtype_bytes,
                         .block_size = (int)block_tokens};
    return k;
}

uint64_t bench_kv_bytes_per_token(const bench_model_t *m)
{
    mixl_kv_model_t k = kv_model(m, 1);
    return mixl_kv_bytes_per_token(&k);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

mixl_status_t bench_kv_layout_init(bench_kv_layout_t *l, const bench_model_t *m, uint64_t tokens,
                                   unsigned block_tokens, uint64_t seed)
{
    uint64_t *run_start = NULL, *run_len = NULL, nruns = 0, rng = seed ? seed : 0x9e3779b97f4a7c15ull;

    if (m == NULL || tokens == 0 || block_tokens == 0) return MIXL_ERR_INVALID_PARAM;
    l->model = m;
    l->tokens = tokens;
    l->block_tokens = block_tokens;
    l->nblocks = mixl_kv_blocks_for(tokens, (int)block_tokens);
    l->pool_blocks = l->nblocks + (l->nblocks + 3) / 4;
    {
        /* One rank holding every KV head: tensor parallelism 1. */
        mixl_kv_model_t k = kv_model(m, block_tokens);
        l->src = mixl_kv_layout(&k, 1, 0, k.layers, l->nblocks);
        l->pool = mixl_kv_layout(&k, 1, 0, k.layers, l->pool_blocks);
    }
    l->block_bytes = mixl_kv_block_bytes(&l->src);
    l->kv_bytes = mixl_kv_region_bytes(&l->src);
    l->pool_bytes = mixl_kv_region_bytes(&l->pool);
    l->alloc = malloc(l->nblocks * sizeof(*l->alloc));
    run_start = malloc(l->pool_blocks * sizeof(*run_start));
    run_len = malloc(l->pool_blocks * sizeof(*run_len));
    if (l->alloc == NULL || run_start == NULL || run_len == NULL) {
        free(l->alloc);
        free(run_start);
        free(run_len);
        l->alloc = NULL;
        return MIXL_ERR_NO_MEMORY;
    }
    /* Cut the pool into free runs of 1..8 blocks, shuffle the runs, allocate in that order. */
    for (uint64_t b = 0; b < l->pool_blocks; nruns++) {
        uint64_t n = 1 + xorshift(&rng) % 8;
        if (n > l->pool_blocks - b) n = l->pool_blocks - b;
        run_start[nruns] = b;
        run_len[nruns] = n;
        b += n;
    }
    for (uint64_t i = nruns; i > 1; i--) {
        uint64_t j = xorshift(&rng) % i, s = run_start[i - 1], n = run_len[i - 1];
        run_start[i - 1] = run_start[j];
        run_len[i - 1] = run_len[j];
        run_start[j] = s;
        run_len[j] = n;
    }
    uint64_t k = 0;
    for (uint64_t r = 0; r < nruns && k < l->nblocks; r++)
        for (uint64_t i = 0; i < run_len[r] && k < l->nblocks; i++) l->alloc[k++] = run_start[r] + i;
    free(run_start);
    free(run_len);
    return MIXL_OK;
}

void bench_kv_layout_free(bench_kv_layout_t *l)
{
    free(l->alloc);
    l->alloc = NULL;
}

uint64_t bench_kv_runs(const bench_kv_layout_t *l)
{
    /* With no room for runs, mixl_kv_runs_from_ids only counts them. */
    return mixl_kv_runs_from_ids(l->alloc, l->nblocks, NULL, 0);
}
