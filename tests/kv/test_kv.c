/*
 * KV layer: bytes per token of the presets, layout offsets, block-id runs,
 * the allocator, per-layer spans with tensor-parallel split and merge
 * (applied with memcpy and checked block by block), the fill and its
 * word-by-word check catching misplaced or stale data, and both agreeing with
 * the element function the device kernels use at every row size (8-word
 * blocks, the words after them, a last partial word).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/alloc.h"
#include "kv/fill.h"
#include "kv/fill_elem.h"
#include "kv/layout.h"
#include "kv/model.h"
#include "kv/runs.h"

static void test_presets(void **state)
{
    const mixl_kv_model_t *m = mixl_kv_preset("llama-3-70b");
    assert_non_null(m);
    assert_int_equal(mixl_kv_bytes_per_token(m), 320 * 1024);
    m = mixl_kv_preset("llama-3-8b");
    assert_non_null(m);
    assert_int_equal(mixl_kv_bytes_per_token(m), 128 * 1024);
    m = mixl_kv_preset("tiny");
    assert_non_null(m);
    assert_int_equal(mixl_kv_bytes_per_token(m), 2 * 4 * 4 * 64 * 2);
    assert_null(mixl_kv_preset("gpt-5"));

    mixl_kv_model_t r;
    char err[256];
    assert_int_equal(
        mixl_kv_model_resolve("llama-3-70b", 0, 0, 0, "fp32", 32, &r, err, sizeof(err)), MIXL_OK);
    assert_int_equal(mixl_kv_bytes_per_token(&r), 640 * 1024);
    assert_int_equal(r.block_size, 32);
    assert_int_equal(mixl_kv_model_resolve("custom", 2, 0, 64, "fp16", 0, &r, err, sizeof(err)),
                     MIXL_ERR_CONFIG);
    assert_non_null(strstr(err, "kv_heads=0"));
    assert_int_equal(mixl_kv_model_resolve("custom", 2, 2, 64, "fp8", 8, &r, err, sizeof(err)),
                     MIXL_OK);
    assert_int_equal(mixl_kv_bytes_per_token(&r), 2 * 2 * 2 * 64);
}

static void test_layout_offsets(void **state)
{
    const mixl_kv_model_t *m = mixl_kv_preset("llama-3-8b");
    mixl_kv_layout_t l = mixl_kv_layout(m, 2, 1, 32, 100);
    assert_int_equal(l.heads, 4);
    assert_int_equal(l.head0, 4);
    uint64_t row = 128 * 2, hb = 16 * row, bb = 4 * hb;
    assert_int_equal(mixl_kv_block_bytes(&l), bb);
    assert_int_equal(mixl_kv_layer_bytes(&l), 2 * 100 * bb);
    assert_int_equal(mixl_kv_region_bytes(&l), 32ull * 2 * 100 * bb);
    assert_int_equal(mixl_kv_offset(&l, 0, 0, 0, 0, 0), 0);
    assert_int_equal(mixl_kv_offset(&l, 0, 0, 0, 0, 3), 3 * row);
    assert_int_equal(mixl_kv_offset(&l, 0, 0, 0, 2, 0), 2 * hb);
    assert_int_equal(mixl_kv_offset(&l, 0, 0, 7, 0, 0), 7 * bb);
    assert_int_equal(mixl_kv_offset(&l, 0, 1, 0, 0, 0), 100 * bb);
    assert_int_equal(mixl_kv_offset(&l, 5, 1, 2, 3, 4),
                     (5 * 2 + 1) * 100 * bb + 2 * bb + 3 * hb + 4 * row);
    assert_int_equal(mixl_kv_blocks_for(1, 16), 1);
    assert_int_equal(mixl_kv_blocks_for(16, 16), 1);
    assert_int_equal(mixl_kv_blocks_for(17, 16), 2);
}

static void test_runs(void **state)
{
    uint64_t ids[] = {4, 5, 6, 9, 10, 2, 3};
    mixl_kv_run_t runs[8];
    assert_int_equal(mixl_kv_runs_from_ids(ids, 7, runs, 8), 3);
    assert_int_equal(runs[0].start, 4);
    assert_int_equal(runs[0].count, 3);
    assert_int_equal(runs[1].start, 9);
    assert_int_equal(runs[1].count, 2);
    assert_int_equal(runs[2].start, 2);
    assert_int_equal(runs[2].count, 2);
    assert_int_equal(mixl_kv_runs_blocks(runs, 3), 7);
    for (uint64_t i = 0; i < 7; i++) assert_int_equal(mixl_kv_runs_block(runs, 3, i), ids[i]);
    assert_int_equal(mixl_kv_runs_block(runs, 3, 7), UINT64_MAX);
    /* Too small an output: the count still tells how many are needed. */
    mixl_kv_run_t one[1];
    assert_int_equal(mixl_kv_runs_from_ids(ids, 7, one, 1), 3);
    assert_int_equal(one[0].count, 3);
    assert_int_equal(mixl_kv_runs_from_ids(ids, 0, runs, 8), 0);
}

static void test_alloc(void **state)
{
    mixl_kv_alloc_t a;
    mixl_kv_run_t r1[8], r2[8], r3[8], r4[8];
    size_t n1, n2, n3, n4;
    assert_int_equal(mixl_kv_alloc_init(&a, 10), MIXL_OK);
    assert_int_equal(mixl_kv_alloc_get(&a, 3, r1, &n1), MIXL_OK);
    assert_int_equal(n1, 1);
    assert_int_equal(r1[0].start, 0);
    assert_int_equal(mixl_kv_alloc_get(&a, 4, r2, &n2), MIXL_OK);
    assert_int_equal(r2[0].start, 3);
    assert_int_equal(mixl_kv_alloc_get(&a, 4, r3, &n3), MIXL_ERR_NO_RESOURCE);
    assert_int_equal(a.nfree, 3);
    assert_int_equal(mixl_kv_alloc_put(&a, r1, n1), MIXL_OK);
    /* 0-2 and 7-9 free: no stretch of 5, so two runs, lowest blocks first. */
    assert_int_equal(mixl_kv_alloc_get(&a, 5, r3, &n3), MIXL_OK);
    assert_int_equal(n3, 2);
    assert_int_equal(r3[0].start, 0);
    assert_int_equal(r3[0].count, 3);
    assert_int_equal(r3[1].start, 7);
    assert_int_equal(r3[1].count, 2);
    assert_int_equal(a.nfree, 1);
    /* Double free and out-of-range frees are refused, nothing changes. */
    assert_int_equal(mixl_kv_alloc_put(&a, r1, n1), MIXL_OK);
    assert_int_equal(mixl_kv_alloc_put(&a, r1, n1), MIXL_ERR_INVALID_PARAM);
    mixl_kv_run_t out = {8, 5};
    assert_int_equal(mixl_kv_alloc_put(&a, &out, 1), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(mixl_kv_alloc_get(&a, 0, r4, &n4), MIXL_OK);
    assert_int_equal(n4, 0);
    mixl_kv_alloc_fini(&a);
}

/* Move one request through spans from every prefill TP rank into every decode TP rank and verify. */
static void tp_roundtrip(int ptp, int dtp, uint64_t tokens, const uint64_t *ids, size_t nids)
{
    mixl_kv_model_t m;
    char err[128];
    assert_int_equal(mixl_kv_model_resolve("custom", 3, 8, 16, "fp16", 4, &m, err, sizeof(err)),
                     MIXL_OK);
    uint64_t nb = mixl_kv_blocks_for(tokens, m.block_size);
    assert_int_equal(nb, nids);
    mixl_kv_run_t runs[64];
    size_t nruns = mixl_kv_runs_from_ids(ids, nids, runs, 64);
    uint64_t pool_blocks = 40, req = 77, moved = 0;
    const int slots = 2;

    uint8_t *dst[8];
    mixl_kv_layout_t dl[8];
    for (int d = 0; d < dtp; d++) {
        dl[d] = mixl_kv_layout(&m, dtp, d, m.layers, pool_blocks);
        dst[d] = calloc(1, mixl_kv_region_bytes(&dl[d]));
    }
    for (int p = 0; p < ptp; p++) {
        mixl_kv_layout_t sl = mixl_kv_layout(&m, ptp, p, slots, nb);
        uint8_t *src = calloc(1, mixl_kv_region_bytes(&sl));
        for (int l = 0; l < m.layers; l++) {
            mixl_kv_fill_layer(&sl, src, l % slots, l, req, tokens);
            for (int d = 0; d < dtp; d++) {
                mixl_kv_span_t spans[256];
                assert_true(mixl_kv_spans_max(&sl, &dl[d], tokens) <= 256);
                size_t n =
                    mixl_kv_layer_spans(&sl, l % slots, &dl[d], l, runs, nruns, tokens, spans);
                for (size_t i = 0; i < n; i++) {
                    assert_true(spans[i].src_off + spans[i].len <= mixl_kv_region_bytes(&sl));
                    assert_true(spans[i].dst_off + spans[i].len <= mixl_kv_region_bytes(&dl[d]));
                    memcpy(dst[d] + spans[i].dst_off, src + spans[i].src_off, spans[i].len);
                }
                moved += mixl_kv_spans_bytes(spans, n);
            }
        }
        free(src);
    }
    /* Exactly the filled tokens of every head moved, nothing more. */
    assert_int_equal(moved, tokens * mixl_kv_bytes_per_token(&m));
    for (int d = 0; d < dtp; d++) {
        for (int l = 0; l < m.layers; l++)
            for (int kv = 0; kv < 2; kv++)
                for (uint64_t i = 0; i < nb; i++) {
                    uint64_t id = mixl_kv_runs_block(runs, nruns, i);
                    uint64_t ntok = i + 1 < nb ? (uint64_t)m.block_size : tokens - i * m.block_size;
                    uint8_t *blk = dst[d] + mixl_kv_offset(&dl[d], l, kv, id, 0, 0);
                    assert_int_equal(mixl_kv_block_diff(&dl[d], blk, req, l, kv, i, ntok), 0);
                    /* Another request's expected content does not match. */
                    assert_true(mixl_kv_block_diff(&dl[d], blk, req + 1, l, kv, i, ntok) > 0);
                    /* One flipped byte is one word off, wherever it lands. */
                    uint64_t at = (i * 7 + (uint64_t)l * 3 + (uint64_t)kv) % mixl_kv_row_bytes(&dl[d]);
                    blk[at] ^= 0x40;
                    assert_int_equal(mixl_kv_block_diff(&dl[d], blk, req, l, kv, i, ntok), 1);
                    blk[at] ^= 0x40;
                }
        free(dst[d]);
    }
}

static void test_tp_same(void **state)
{
    uint64_t ids[] = {3, 4, 5, 6, 7};
    tp_roundtrip(1, 1, 19, ids, 5);
    tp_roundtrip(2, 2, 20, ids, 5);
}

static void test_tp_merge(void **state)
{
    uint64_t ids[] = {10, 11, 2, 30};
    tp_roundtrip(2, 1, 15, ids, 4);
    tp_roundtrip(4, 2, 13, ids, 4);
    tp_roundtrip(8, 1, 16, ids, 4);
}

static void test_tp_split(void **state)
{
    uint64_t ids[] = {0, 1, 2};
    tp_roundtrip(1, 2, 9, ids, 3);
    tp_roundtrip(1, 8, 12, ids, 3);
    tp_roundtrip(2, 4, 10, ids, 3);
}

static void test_span_merging(void **state)
{
    const mixl_kv_model_t *m = mixl_kv_preset("tiny");
    mixl_kv_layout_t sl = mixl_kv_layout(m, 1, 0, 2, 8);
    mixl_kv_layout_t dl = mixl_kv_layout(m, 1, 0, m->layers, 64);
    mixl_kv_run_t one = {20, 8};
    mixl_kv_span_t spans[64];
    /* Full blocks, one run, same heads: one span for K and one for V. */
    assert_int_equal(mixl_kv_layer_spans(&sl, 1, &dl, 2, &one, 1, 128, spans), 2);
    assert_int_equal(spans[0].len, 8 * mixl_kv_block_bytes(&dl));
    /* A partial last block: one span per head, the first head's joining the full blocks. */
    assert_int_equal(mixl_kv_layer_spans(&sl, 1, &dl, 2, &one, 1, 120, spans), 2 + 2 * 3);
    assert_int_equal(spans[0].len, 7 * mixl_kv_block_bytes(&dl) + 8 * mixl_kv_row_bytes(&dl));
    /* Two runs: one more span each for K and V. */
    mixl_kv_run_t two[2] = {{20, 4}, {40, 4}};
    assert_int_equal(mixl_kv_layer_spans(&sl, 0, &dl, 0, two, 2, 128, spans), 4);
    /* TP split: per block spans (heads are a part of each block on the prefill side). */
    mixl_kv_layout_t dl2 = mixl_kv_layout(m, 2, 1, m->layers, 64);
    assert_int_equal(mixl_kv_layer_spans(&sl, 0, &dl2, 0, &one, 1, 128, spans), 16);
    assert_int_equal(spans[0].len, mixl_kv_block_bytes(&dl2));
}

static void test_fill_distinct(void **state)
{
    uint8_t a[256], b[256];
    mixl_kv_fill_row(1, 2, 0, 3, 4, a, sizeof(a));
    mixl_kv_fill_row(1, 2, 0, 3, 4, b, sizeof(b));
    assert_memory_equal(a, b, sizeof(a));
    const int variants[][5] = {
        {2, 2, 0, 3, 4}, {1, 3, 0, 3, 4}, {1, 2, 1, 3, 4}, {1, 2, 0, 4, 4}, {1, 2, 0, 3, 5}};
    for (size_t i = 0; i < 5; i++) {
        mixl_kv_fill_row((uint64_t)variants[i][0], variants[i][1], variants[i][2], variants[i][3],
                         (uint64_t)variants[i][4], b, sizeof(b));
        assert_memory_not_equal(a, b, sizeof(a));
    }
    /* Odd row sizes are filled to the last byte. */
    uint8_t c[13] = {0};
    mixl_kv_fill_row(9, 9, 1, 9, 9, c, sizeof(c));
    int nonzero = 0;
    for (int i = 8; i < 13; i++) nonzero |= c[i];
    assert_true(nonzero);
}

/*
 * The host fill makes words in blocks of 8 (with an AVX-512 copy on CPUs that
 * have it); every byte must still be the element function's, the one the
 * device kernels use, and the check must see one flipped byte wherever it is:
 * in a block of 8, in the words after the blocks, in a last partial word.
 */
static void test_fill_matches_elements(void **state)
{
    static const size_t rows[] = {8, 13, 56, 64, 72, 131, 200, 256, 259};
    uint8_t buf[264];
    (void)state;
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        size_t len = rows[r];
        uint64_t seed = mixl_kv_row_seed(5, 6, 1, 7, 8);
        memset(buf, 0xee, sizeof(buf));
        mixl_kv_fill_row(5, 6, 1, 7, 8, buf, len);
        for (size_t i = 0; i < len; i += 8) {
            uint64_t w = mixl_kv_row_word(seed, i / 8);
            assert_memory_equal(buf + i, &w, len - i < 8 ? len - i : 8);
        }
        assert_int_equal(buf[len], 0xee); /* nothing past the row */
    }
    /* A layout whose rows are 259 bytes (fp8, head_dim 259): 4 blocks of 8
     * words, 0 whole words after them, 3 bytes of a last word. */
    mixl_kv_model_t m;
    char err[128];
    assert_int_equal(mixl_kv_model_resolve("custom", 2, 2, 259, "fp8", 4, &m, err, sizeof(err)),
                     MIXL_OK);
    mixl_kv_layout_t l = mixl_kv_layout(&m, 1, 0, 1, 3);
    assert_int_equal(mixl_kv_row_bytes(&l), 259);
    uint8_t *region = calloc(1, mixl_kv_region_bytes(&l));
    assert_non_null(region);
    mixl_kv_fill_layer(&l, region, 0, 1, 42, 10); /* request blocks 0..2, the last 2 tokens */
    const size_t at[] = {0, 63, 64, 255, 256, 258};
    for (int kv = 0; kv < 2; kv++)
        for (uint64_t b = 0; b < 3; b++) {
            uint64_t ntok = b < 2 ? 4 : 2;
            uint8_t *blk = region + mixl_kv_offset(&l, 0, kv, b, 0, 0);
            assert_int_equal(mixl_kv_block_diff(&l, blk, 42, 1, kv, b, ntok), 0);
            for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
                /* last head, last token of the block */
                uint8_t *p = region + mixl_kv_offset(&l, 0, kv, b, 1, ntok - 1) + at[k];
                *p ^= 0x01;
                assert_int_equal(mixl_kv_block_diff(&l, blk, 42, 1, kv, b, ntok), 1);
                *p ^= 0x01;
            }
        }
    free(region);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets),       cmocka_unit_test(test_layout_offsets),
        cmocka_unit_test(test_runs),          cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_tp_same),       cmocka_unit_test(test_tp_merge),
        cmocka_unit_test(test_tp_split),      cmocka_unit_test(test_span_merging),
        cmocka_unit_test(test_fill_distinct), cmocka_unit_test(test_fill_matches_elements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
