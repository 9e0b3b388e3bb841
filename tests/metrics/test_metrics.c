/*
 * Metrics: nearest-rank percentiles, the log histogram, the summary table,
 * and an HDF5 round trip (written with the writer, read back with the HDF5
 * API: values, types, units and attributes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "metrics/h5.h"
#include "metrics/prom.h"
#include "metrics/stats.h"
#include "metrics/table.h"

static void test_percentiles(void **state)
{
    mixl_samples_t s;
    mixl_samples_init(&s);
    assert_true(mixl_samples_percentile(&s, 50) == 0);
    /* 1..100 shuffled: nearest rank gives p50 = 50, p90 = 90, p99 = 99. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(mixl_samples_add(&s, (double)((i * 37) % 100 + 1)), MIXL_OK);
    mixl_summary_t r = mixl_samples_summary(&s);
    assert_int_equal(r.count, 100);
    assert_true(r.min == 1 && r.max == 100);
    assert_true(r.p50 == 50 && r.p90 == 90 && r.p99 == 99);
    assert_true(r.mean == 50.5);
    /* Adding after a summary re-sorts. */
    mixl_samples_add(&s, 0.5);
    assert_true(mixl_samples_percentile(&s, 0) == 0.5);
    mixl_samples_fini(&s);

    mixl_samples_init(&s);
    mixl_samples_add(&s, 7);
    r = mixl_samples_summary(&s);
    assert_true(r.p50 == 7 && r.p99 == 7 && r.min == 7);
    mixl_samples_add(&s, 3);
    assert_true(mixl_samples_percentile(&s, 50) == 3);
    assert_true(mixl_samples_percentile(&s, 51) == 7);
    mixl_samples_fini(&s);
}

static void test_histogram(void **state)
{
    mixl_hist_t h;
    assert_int_equal(mixl_hist_init(&h, 0, 10, 4), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(mixl_hist_init(&h, 1, 10000, 4), MIXL_OK);
    assert_true(h.edges[0] == 1 && h.edges[4] == 10000);
    mixl_hist_add(&h, 0.5);   /* underflow */
    mixl_hist_add(&h, 1);     /* first bin */
    mixl_hist_add(&h, 9.99);  /* first bin (edge 10 is the next) */
    mixl_hist_add(&h, 50);    /* second */
    mixl_hist_add(&h, 5000);  /* fourth */
    mixl_hist_add(&h, 10000); /* overflow */
    const uint64_t want[6] = {1, 2, 1, 0, 1, 1};
    for (int i = 0; i < 6; i++) assert_int_equal(h.counts[i], want[i]);
    mixl_hist_fini(&h);
}

static void test_table(void **state)
{
    mixl_samples_t s;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mixl_samples_init(&s);
    for (int i = 1; i <= 10; i++) mixl_samples_add(&s, i);
    mixl_table_header(f);
    mixl_table_row(f, "ttft", "us", &s);
    fclose(f);
    assert_non_null(strstr(buf, "p99"));
    assert_non_null(strstr(buf, "ttft"));
    assert_non_null(strstr(buf, "5.500")); /* mean */
    assert_non_null(strstr(buf, "10.000"));
    free(buf);
    mixl_samples_fini(&s);
}

/* Exposition text: escaped labels, cumulative buckets with +Inf, integers without decimals. */
static void test_prom_text(void **state)
{
    static const double le[] = {0.001, 0.01, 0.1};
    mixl_prom_buf_t b;
    mixl_prom_hist_t h;
    (void)state;
    mixl_prom_buf_init(&b);
    assert_int_equal(mixl_prom_hist_init(&h, le, 3), MIXL_OK);
    mixl_prom_hist_add(&h, 0.001);  /* on a bound: counted in that bucket (le is <=) */
    mixl_prom_hist_add(&h, 0.005);
    mixl_prom_hist_add(&h, 0.05);
    mixl_prom_hist_add(&h, 7.0);    /* above every bound: only +Inf */
    mixl_prom_hist_add(&h, 0.0 / 0.0); /* NaN: ignored */
    mixl_prom_family(&b, "x_seconds", "histogram", "a\\b\nc");
    mixl_prom_label_t l = {"role", "de\"co\\de\n"};
    mixl_prom_hist_write(&b, "x_seconds", &l, 1, &h);
    mixl_prom_sample(&b, "y_total", NULL, 0, 12345678901.0);
    mixl_prom_sample(&b, "z", NULL, 0, 0.25);
    assert_false(b.oom);
    const char *want =
        "# HELP x_seconds a\\\\b\\nc\n"
        "# TYPE x_seconds histogram\n"
        "x_seconds_bucket{role=\"de\\\"co\\\\de\\n\",le=\"0.001\"} 1\n"
        "x_seconds_bucket{role=\"de\\\"co\\\\de\\n\",le=\"0.01\"} 2\n"
        "x_seconds_bucket{role=\"de\\\"co\\\\de\\n\",le=\"0.1\"} 3\n"
        "x_seconds_bucket{role=\"de\\\"co\\\\de\\n\",le=\"+Inf\"} 4\n"
        "x_seconds_sum{role=\"de\\\"co\\\\de\\n\"} 7.056\n"
        "x_seconds_count{role=\"de\\\"co\\\\de\\n\"} 4\n"
        "y_total 12345678901\n"
        "z 0.25\n";
    assert_string_equal(b.buf, want);
    mixl_prom_buf_reset(&b);
    assert_int_equal(b.len, 0);
    mixl_prom_hist_fini(&h);
    mixl_prom_buf_fini(&b);
}

static void test_h5_roundtrip(void **state)
{
    char path[128], err[1024] = "";
    snprintf(path, sizeof(path), "/tmp/mixl-test-metrics-%d/sub/out.h5", (int)getpid());
    mixl_h5_t *h;
    assert_int_equal(mixl_h5_create(path, &h, err, sizeof(err)), MIXL_OK);
    const double f[3] = {1.5, -2.25, 1e9};
    const uint64_t u[3] = {1, UINT64_MAX, 42};
    const int32_t i32[3] = {0, -21, 7};
    const double edges[2] = {1, 10};
    assert_int_equal(mixl_h5_group(h, "/requests"), MIXL_OK);
    assert_int_equal(mixl_h5_write_f64(h, "/requests/ttft_us", f, 3, "us"), MIXL_OK);
    assert_int_equal(mixl_h5_write_u64(h, "/requests/bytes", u, 3, "bytes"), MIXL_OK);
    assert_int_equal(mixl_h5_write_i32(h, "/requests/status", i32, 3, NULL), MIXL_OK);
    assert_int_equal(mixl_h5_write_u64(h, "/requests/empty", NULL, 0, NULL), MIXL_OK);
    assert_int_equal(mixl_h5_attr_str(h, "/", "config", "run:\n  name: x\n"), MIXL_OK);
    assert_int_equal(mixl_h5_attr_str(h, "/", "empty", ""), MIXL_OK);
    assert_int_equal(mixl_h5_attr_f64(h, "/requests", "rate", 0.25), MIXL_OK);
    assert_int_equal(mixl_h5_attr_u64(h, "/", "world_size", 4), MIXL_OK);
    assert_int_equal(mixl_h5_attr_f64v(h, "/requests/bytes", "edges", edges, 2), MIXL_OK);
    /* Errors are kept and reported at close: a dataset whose group does not exist. */
    assert_int_equal(mixl_h5_write_f64(h, "/nogroup/x", f, 3, NULL), MIXL_ERR_IO);
    assert_int_equal(mixl_h5_close(h, err, sizeof(err)), MIXL_ERR_IO);
    assert_non_null(strstr(err, "/nogroup/x"));

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    double rf[3];
    uint64_t ru[3];
    int32_t ri[3];
    hid_t d = H5Dopen2(file, "/requests/ttft_us", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, rf) >= 0);
    hid_t t = H5Dget_type(d);
    assert_true(H5Tequal(t, H5T_IEEE_F64LE) > 0);
    H5Tclose(t);
    hid_t a = H5Aopen(d, "units", H5P_DEFAULT);
    char units[16] = "";
    hid_t at = H5Aget_type(a);
    assert_true(H5Aread(a, at, units) >= 0);
    assert_string_equal(units, "us");
    H5Tclose(at);
    H5Aclose(a);
    H5Dclose(d);
    assert_memory_equal(rf, f, sizeof(f));
    d = H5Dopen2(file, "/requests/bytes", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ru) >= 0);
    H5Dclose(d);
    assert_memory_equal(ru, u, sizeof(u));
    d = H5Dopen2(file, "/requests/status", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ri) >= 0);
    H5Dclose(d);
    assert_memory_equal(ri, i32, sizeof(i32));

    a = H5Aopen_by_name(file, "/", "config", H5P_DEFAULT, H5P_DEFAULT);
    at = H5Aget_type(a);
    char cfg[64] = "";
    assert_true(H5Tget_size(at) < sizeof(cfg));
    assert_true(H5Aread(a, at, cfg) >= 0);
    assert_string_equal(cfg, "run:\n  name: x\n");
    H5Tclose(at);
    H5Aclose(a);
    uint64_t ws = 0;
    a = H5Aopen_by_name(file, "/", "world_size", H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Aread(a, H5T_NATIVE_UINT64, &ws) >= 0);
    H5Aclose(a);
    assert_int_equal(ws, 4);
    double rate = 0;
    a = H5Aopen_by_name(file, "/requests", "rate", H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &rate) >= 0);
    H5Aclose(a);
    assert_true(rate == 0.25);
    H5Fclose(file);
    unlink(path);
    *strrchr(path, '/') = '\0';
    rmdir(path);
    *strrchr(path, '/') = '\0';
    rmdir(path);

    /* A file that cannot be created is named in the error. */
    assert_int_equal(mixl_h5_create("/proc/nonexistent/x.h5", &h, err, sizeof(err)), MIXL_ERR_IO);
    assert_non_null(strstr(err, "/proc/nonexistent/x.h5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_h5_roundtrip),
        cmocka_unit_test(test_prom_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
