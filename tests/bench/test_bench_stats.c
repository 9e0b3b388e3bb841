/*
 * Unit tests of mixl-bench's arithmetic: statistics, the reduction of a
 * measurement to a row, ratios against baselines, descriptor slots,
 * iteration scaling and the KV layout of the model-shaped mode.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* cmocka 1.1 has no floating-point assertion. */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

#include "kv_layout.h"
#include "options.h"
#include "run.h"
#include "metrics/stats.h"

/* mixl-bench's statistics are metrics/stats.h's: the figures its rows are built from. */
static void test_stats_small(void **state)
{
    const double v[] = {4, 1, 3, 2};
    mixl_summary_t s;
    assert_int_equal(mixl_stats_summarize(v, 4, &s), MIXL_OK);
    assert_int_equal(s.count, 4);
    assert_near(s.mean, 2.5, 1e-12);
    assert_near(s.p50, 2, 0);
    assert_near(s.p99, 4, 0);
    assert_near(s.min, 1, 0);
    assert_near(s.max, 4, 0);
    assert_near(s.stddev, sqrt(5.0 / 3.0), 1e-12);
    assert_near(v[0], 4, 0); /* input untouched */

    assert_int_equal(mixl_stats_summarize(v, 0, &s), MIXL_OK);
    assert_int_equal(s.count, 0);
    assert_near(s.mean, 0, 0);
    assert_int_equal(mixl_stats_summarize(v, 1, &s), MIXL_OK);
    assert_near(s.stddev, 0, 0);
    assert_near(s.p99, 4, 0);
}

static void test_percentiles(void **state)
{
    double v[100];
    mixl_summary_t s;
    for (int i = 0; i < 100; i++) v[i] = 100 - i; /* 100 .. 1 */
    assert_int_equal(mixl_stats_summarize(v, 100, &s), MIXL_OK);
    assert_near(s.p50, 50, 0);
    assert_near(s.p90, 90, 0);
    assert_near(s.p99, 99, 0);
    assert_near(s.mean, 50.5, 1e-12);
    double sorted[] = {1, 2, 3};
    assert_near(mixl_percentile_sorted(sorted, 3, 50), 2, 0);
    assert_near(mixl_percentile_sorted(sorted, 3, 100), 3, 0);
    assert_near(mixl_percentile_sorted(sorted, 3, 0.1), 1, 0);
    assert_near(mixl_percentile_sorted(sorted, 0, 50), 0, 0);
}

static void test_fill_row(void **state)
{
    /* 2 repetitions of 2 iterations, 1000 bytes and 4 descriptors each. */
    const double lat[] = {1000, 3000, 2000, 2000}; /* ns */
    const double rep[] = {4000, 8000};             /* ns */
    bench_row_t row;
    bench_row_init(&row);
    assert_int_equal(bench_fill_row(&row, lat, rep, 2, 2, 1000, 4), MIXL_OK);
    assert_near(row.gbps, 4000.0 / 12000.0, 1e-12); /* B/ns == GB/s */
    assert_near(row.gbps_max, 0.5, 1e-12);
    assert_near(row.gbps_min, 0.25, 1e-12);
    assert_near(row.gbps_stddev, sqrt(2 * 0.125 * 0.125), 1e-12);
    assert_near(row.lat_avg_us, 2.0, 1e-12);
    assert_near(row.lat_p50_us, 2.0, 1e-12);
    assert_near(row.lat_p99_us, 3.0, 1e-12);
    assert_near(row.lat_min_us, 1.0, 1e-12);
    assert_near(row.ops_per_s, 16 / 12e-6, 1e-3);
    assert_int_equal(row.iters, 2);
    assert_int_equal(row.reps, 2);
    assert_int_equal(row.bytes, 1000);
    assert_int_equal(bench_fill_row(&row, lat, rep, 0, 2, 1000, 4), MIXL_ERR_INVALID_PARAM);
}

static bench_row_t mkrow(const char *mode, const char *backend, const char *op, uint64_t size, double gbps,
                         double lat)
{
    bench_row_t r;
    bench_row_init(&r);
    strcpy(r.mode, mode);
    strcpy(r.backend, backend);
    strcpy(r.op, op);
    strcpy(r.mem, "host");
    strcpy(r.pattern, "pairwise");
    r.size = size;
    r.batch = 1;
    r.gbps = gbps;
    r.lat_avg_us = lat;
    return r;
}

static void test_ratios(void **state)
{
    bench_results_t res = {0};
    bench_row_t r;
    r = mkrow("memcpy", "cpu", "COPY", 64, 10, 1);
    bench_results_add(&res, &r);
    r = mkrow("mpi", "win-allocate", "WRITE", 64, 5, 2);
    bench_results_add(&res, &r);
    r = mkrow("mpi", "win-create", "WRITE", 64, 2, 8);
    bench_results_add(&res, &r);
    r = mkrow("mpi", "win-allocate", "READ", 64, 4, 2);
    bench_results_add(&res, &r);
    r = mkrow("mixl", "mpi", "WRITE", 64, 4, 3);
    bench_results_add(&res, &r);
    r = mkrow("mixl", "mpi", "WRITE", 128, 4, 3); /* no baseline of that size */
    bench_results_add(&res, &r);
    r = mkrow("mixl", "mpi", "WRITE", 64, 4, 3);
    strcpy(r.mem, "host-mpi"); /* falls back to the host memcpy */
    bench_results_add(&res, &r);
    bench_results_ratios(&res);
    assert_near(res.rows[4].x_memcpy, 0.4, 1e-12);
    assert_near(res.rows[4].x_mpi, 0.8, 1e-12); /* WRITE compared with WRITE */
    assert_near(res.rows[4].lat_x_mpi, 1.5, 1e-12);
    assert_near(res.rows[4].x_mpi_create, 2.0, 1e-12);
    assert_true(isnan(res.rows[4].x_ucx));
    assert_true(isnan(res.rows[5].x_memcpy));
    assert_true(isnan(res.rows[5].x_mpi));
    assert_near(res.rows[6].x_memcpy, 0.4, 1e-12);
    assert_true(isnan(res.rows[0].x_memcpy)); /* baselines get no ratios */
    bench_results_free(&res);
    assert_null(res.rows);
}

static void test_sort(void **state)
{
    bench_results_t res = {0};
    bench_row_t r;
    r = mkrow("mixl", "mpi", "READ", 64, 1, 1);
    bench_results_add(&res, &r);
    r = mkrow("mixl", "mpi", "WRITE", 128, 1, 1);
    bench_results_add(&res, &r);
    r = mkrow("mixl", "mpi", "WRITE", 64, 1, 1);
    bench_results_add(&res, &r);
    r = mkrow("memcpy", "cpu", "COPY", 64, 1, 1);
    bench_results_add(&res, &r);
    r = mkrow("model-mixl", "mpi", "WRITE", 0, 1, 1);
    strcpy(r.pattern, "layer-wise");
    strcpy(r.model, "llama3-8b");
    r.block_tokens = 16;
    bench_results_add(&res, &r);
    strcpy(r.mode, "model-memcpy");
    bench_results_add(&res, &r);
    bench_results_sort(&res);
    assert_string_equal(res.rows[0].mode, "memcpy");
    assert_string_equal(res.rows[1].op, "WRITE"); /* WRITE before READ, then sizes ascending */
    assert_int_equal(res.rows[1].size, 64);
    assert_int_equal(res.rows[2].size, 128);
    assert_string_equal(res.rows[3].op, "READ");
    assert_string_equal(res.rows[4].mode, "model-memcpy"); /* the memcpy taken for a scheme comes first */
    assert_string_equal(res.rows[5].mode, "model-mixl");
    bench_results_free(&res);
}

static void test_slots_and_iters(void **state)
{
    for (uint64_t n = 1; n <= 9; n++) {
        unsigned char seen[16] = {0};
        for (uint64_t i = 0; i < n; i++) {
            uint64_t s = bench_slot(i, n, 0);
            assert_true(s < n);
            assert_false(seen[s]);
            seen[s] = 1;
            /* scattered: consecutive descriptors are never adjacent on the remote side */
            if (i > 0) assert_true(s != bench_slot(i - 1, n, 0) + 1);
            assert_int_equal(bench_slot(i, n, 1), i);
        }
    }
    assert_int_equal(bench_scaled_iters(1000, 4096, 8), 1000);
    assert_int_equal(bench_scaled_iters(1000, 1u << 20, 8), 1000);
    assert_int_equal(bench_scaled_iters(1000, 16u << 20, 8), 62);
    assert_int_equal(bench_scaled_iters(1000, 256u << 20, 8), 8);
    assert_int_equal(bench_scaled_iters(5, 256u << 20, 8), 5); /* never more than asked */
}

static void test_kv_layout(void **state)
{
    bench_kv_layout_t l;
    assert_int_equal(bench_kv_bytes_per_token(&bench_models[0]), 128 * 1024);
    assert_int_equal(bench_kv_bytes_per_token(&bench_models[1]), 320 * 1024);
    assert_int_equal(bench_kv_layout_init(&l, &bench_models[0], 4096, 16, 42), MIXL_OK);
    assert_int_equal(l.nblocks, 256);
    assert_int_equal(l.pool_blocks, 320);
    assert_int_equal(l.block_bytes, 16 * 8 * 128 * 2);
    assert_int_equal(l.kv_bytes, 4096ull * 128 * 1024);
    unsigned char *used = calloc(l.pool_blocks, 1);
    uint64_t runs = 1;
    for (uint64_t b = 0; b < l.nblocks; b++) {
        assert_true(l.alloc[b] < l.pool_blocks);
        assert_false(used[l.alloc[b]]);
        used[l.alloc[b]] = 1;
        if (b > 0 && l.alloc[b] != l.alloc[b - 1] + 1) runs++;
    }
    free(used);
    assert_int_equal(bench_kv_runs(&l), runs);
    /* scattered like a real allocator: neither one run nor one run per block */
    assert_true(runs > 1 && runs < l.nblocks);
    /* source and pool offsets stay inside their buffers */
    assert_true(bench_kv_src_off(&l, 31, 1, 255) + l.block_bytes == l.kv_bytes);
    assert_true(bench_kv_pool_off(&l, 31, 1, 255) + l.block_bytes <= l.pool_bytes);
    bench_kv_layout_free(&l);
    /* a partial last block still takes a whole block */
    assert_int_equal(bench_kv_layout_init(&l, &bench_models[1], 100, 64, 1), MIXL_OK);
    assert_int_equal(l.nblocks, 2);
    bench_kv_layout_free(&l);
    assert_int_equal(bench_kv_layout_init(&l, &bench_models[1], 0, 64, 1), MIXL_ERR_INVALID_PARAM);
    for (unsigned layer = 0; layer < 80; layer++)
        for (unsigned kv = 0; kv < 2; kv++)
            for (uint64_t b = 0; b < 600; b++) assert_int_not_equal(bench_kv_fill(layer, kv, b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_small), cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_fill_row),    cmocka_unit_test(test_ratios),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_slots_and_iters), cmocka_unit_test(test_kv_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
