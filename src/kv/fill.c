/* Deterministic KV fill (splitmix64 stream per row) and its check; see fill.h. */
#include "kv/fill.h"

#include <string.h>

#include "kv/fill_elem.h"

/*
 * The fill and the check run on every byte a request moves (the prefill
 * rank's "compute", the decode rank's verification), on the cores the data
 * plane needs. Words are made in blocks of 8, independent of each other, so
 * that a build for a CPU with AVX-512 (a second copy of the function, chosen
 * when the program starts) makes 8 at once: 3x the fill and 2.6x the check
 * of the word-at-a-time loop on this project's machine (docs/performance.md).
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FILL_CLONES __attribute__((target_clones("default", "arch=x86-64-v4")))
#else
#define FILL_CLONES
#endif

FILL_CLONES static void fill_words(uint64_t seed, uint8_t *p, size_t row_bytes)
{
    size_t i = 0;
    for (; i + 64 <= row_bytes; i += 64)
        for (int k = 0; k < 8; k++) {
            uint64_t w = mixl_kv_row_word(seed, i / 8 + (uint64_t)k);
            memcpy(p + i + 8 * (size_t)k, &w, 8);
        }
    for (; i + 8 <= row_bytes; i += 8) {
        uint64_t w = mixl_kv_row_word(seed, i / 8);
        memcpy(p + i, &w, 8);
    }
    if (i < row_bytes) {
        uint64_t w = mixl_kv_row_word(seed, i / 8);
        memcpy(p + i, &w, row_bytes - i);
    }
}

void mixl_kv_fill_row(uint64_t req, int layer, int kv, int head, uint64_t token, void *dst,
                      size_t row_bytes)
{
    fill_words(mixl_kv_row_seed(req, layer, kv, head, token), dst, row_bytes);
}

void mixl_kv_fill_layer(const mixl_kv_layout_t *l, void *region, int region_layer, int model_layer,
                        uint64_t req, uint64_t tokens)
{
    uint64_t row = mixl_kv_row_bytes(l);
    for (int kv = 0; kv < 2; kv++)
        for (uint64_t t = 0; t < tokens; t++) {
            uint64_t b = t / (uint64_t)l->block_size, bt = t % (uint64_t)l->block_size;
            for (int h = 0; h < l->heads; h++)
                mixl_kv_fill_row(req, model_layer, kv, l->head0 + h, t,
                                 (uint8_t *)region + mixl_kv_offset(l, region_layer, kv, b, h, bt),
                                 row);
        }
}

/* Words of one row that differ from the row of seed (blocks of 8: see fill_words). */
FILL_CLONES static uint64_t row_diff(uint64_t seed, const uint8_t *p, size_t row_bytes)
{
    uint64_t bad = 0;
    size_t i = 0;
    for (; i + 64 <= row_bytes; i += 64) {
        uint64_t got[8];
        memcpy(got, p + i, 64);
        for (int k = 0; k < 8; k++) bad += got[k] != mixl_kv_row_word(seed, i / 8 + (uint64_t)k);
    }
    for (; i + 8 <= row_bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        bad += w != mixl_kv_row_word(seed, i / 8);
    }
    if (i < row_bytes) {
        uint64_t w = mixl_kv_row_word(seed, i / 8);
        bad += memcmp(p + i, &w, row_bytes - i) != 0;
    }
    return bad;
}

uint64_t mixl_kv_block_diff(const mixl_kv_layout_t *l, const void *block, uint64_t req, int layer,
                            int kv, uint64_t req_block, uint64_t ntok)
{
    uint64_t row = mixl_kv_row_bytes(l);
    uint64_t head_stride = (uint64_t)l->block_size * row;
    uint64_t bad = 0;
    for (int h = 0; h < l->heads; h++)
        for (uint64_t t = 0; t < ntok; t++) {
            uint64_t seed = mixl_kv_row_seed(req, layer, kv, l->head0 + h,
                                             req_block * (uint64_t)l->block_size + t);
            bad += row_diff(seed, (const uint8_t *)block + (uint64_t)h * head_stride + t * row, row);
        }
    return bad;
}
