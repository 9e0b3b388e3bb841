/*
 * Unit tests of mixl-bench's writers and parsers: rows written as CSV, JSON
 * and HDF5 are read back (CSV split here, JSON with jansson, HDF5 with the
 * HDF5 C API) and compared field by field; the table names every row;
 * ucx_perftest's output is parsed.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* cmocka 1.1 has no floating-point assertion. */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))
#include <hdf5.h>
#include <jansson.h>

#include "baselines.h"
#include "output.h"

static char dir[] = "/tmp/mixl-bench-test-XXXXXX";

static void make_results(bench_results_t *res)
{
    bench_row_t r;
    bench_row_init(&r);
    strcpy(r.mode, "mixl");
    strcpy(r.backend, "mpi");
    strcpy(r.op, "WRITE");
    strcpy(r.mem, "host");
    strcpy(r.pattern, "pairwise");
    r.size = 4096;
    r.batch = 16;
    r.bytes = 65536;
    r.gbps = 12.5;
    r.lat_p99_us = 7.25;
    r.x_mpi = 0.95;
    strcpy(r.note, "a note, with \"quotes\"");
    assert_int_equal(bench_results_add(res, &r), MIXL_OK);
    bench_row_init(&r);
    strcpy(r.mode, "model-mixl");
    strcpy(r.model, "llama3-8b");
    r.tokens = 4096;
    r.block_tokens = 16;
    r.requests = 32;
    r.gbps = 3.0;
    assert_int_equal(bench_results_add(res, &r), MIXL_OK);
}

static void meta(bench_meta_t *m)
{
    memset(m, 0, sizeof(*m));
    strcpy(m->host, "testhost");
    strcpy(m->mpi, "Open MPI v4.1.4");
    m->ranks = 2;
    m->ncpu = 2;
}

/* Split one CSV line into fields (RFC 4180 quotes); returns the count. */
static int csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line, *w;
    while (n < max) {
        f[n++] = w = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
        } else {
            while (*p && *p != ',' && *p != '\n') *w++ = *p++;
        }
        char c = *p;
        *w = '\0';
        if (c != ',') break;
        p++;
    }
    return n;
}

static int field_index(const char *name)
{
    for (int i = 0; bench_fields[i].name; i++)
        if (strcmp(bench_fields[i].name, name) == 0) return i;
    return -1;
}

static void test_csv(void **state)
{
    bench_results_t res = {0};
    char path[256], line[4096], *f[64];
    make_results(&res);
    snprintf(path, sizeof(path), "%s/r.csv", dir);
    assert_int_equal(bench_write_csv(path, &res), MIXL_OK);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    int nfields = 0;
    while (bench_fields[nfields].name) nfields++;
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_int_equal(csv_split(line, f, 64), nfields);
    assert_string_equal(f[0], "mode");
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_int_equal(csv_split(line, f, 64), nfields);
    assert_string_equal(f[field_index("mode")], "mixl");
    assert_string_equal(f[field_index("size")], "4096");
    assert_near(atof(f[field_index("gbps")]), 12.5, 1e-9);
    assert_near(atof(f[field_index("lat_p99_us")]), 7.25, 1e-9);
    assert_string_equal(f[field_index("x_memcpy")], ""); /* NaN: empty */
    assert_string_equal(f[field_index("note")], "a note, with \"quotes\"");
    assert_non_null(fgets(line, sizeof(line), fp));
    assert_int_equal(csv_split(line, f, 64), nfields);
    assert_string_equal(f[field_index("model")], "llama3-8b");
    assert_string_equal(f[field_index("tokens")], "4096");
    assert_null(fgets(line, sizeof(line), fp));
    fclose(fp);
    /* an unwritable path is an error naming the file, not a crash */
    assert_int_equal(bench_write_csv("/nonexistent-dir/x.csv", &res), MIXL_ERR_IO);
    bench_results_free(&res);
}

static void test_json(void **state)
{
    bench_results_t res = {0};
    bench_meta_t m;
    char path[256];
    json_error_t jerr;
    make_results(&res);
    meta(&m);
    snprintf(path, sizeof(path), "%s/r.json", dir);
    assert_int_equal(bench_write_json(path, &m, &res), MIXL_OK);
    json_t *root = json_load_file(path, 0, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(json_object_get(root, "meta"), "host")), "testhost");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(root, "meta"), "ranks")), 2);
    json_t *rows = json_object_get(root, "results");
    assert_int_equal(json_array_size(rows), 2);
    json_t *r0 = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "op")), "WRITE");
    assert_int_equal(json_integer_value(json_object_get(r0, "batch")), 16);
    assert_near(json_real_value(json_object_get(r0, "gbps")), 12.5, 1e-12);
    assert_near(json_real_value(json_object_get(r0, "x_mpi")), 0.95, 1e-12);
    assert_true(json_is_null(json_object_get(r0, "x_memcpy")));
    assert_string_equal(json_string_value(json_object_get(r0, "note")), "a note, with \"quotes\"");
    /* every field of the table is in every row, and documented */
    for (int i = 0; bench_fields[i].name; i++) {
        assert_non_null(json_object_get(r0, bench_fields[i].name));
        assert_non_null(json_object_get(json_object_get(root, "fields"), bench_fields[i].name));
    }
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "requests")), 32);
    json_decref(root);
    assert_int_equal(bench_write_json("/nonexistent-dir/x.json", &m, &res), MIXL_ERR_IO);
    bench_results_free(&res);
}

typedef struct {
    char mode[BENCH_STR];
    uint64_t tokens;
    double gbps;
} probe_t;

static void test_hdf5(void **state)
{
    bench_results_t res = {0};
    bench_meta_t m;
    char path[256], host[64] = "";
    make_results(&res);
    meta(&m);
    snprintf(path, sizeof(path), "%s/r.h5", dir);
    assert_int_equal(bench_write_hdf5(path, &m, &res), MIXL_OK);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t dset = H5Dopen2(file, "results", H5P_DEFAULT);
    assert_true(dset >= 0);
    hid_t space = H5Dget_space(dset);
    hsize_t dims[1];
    assert_int_equal(H5Sget_simple_extent_dims(space, dims, NULL), 1);
    assert_int_equal(dims[0], 2);
    /* Read three members by name into a struct of our own layout. */
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, BENCH_STR);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(probe_t));
    H5Tinsert(t, "mode", offsetof(probe_t, mode), str);
    H5Tinsert(t, "tokens", offsetof(probe_t, tokens), H5T_NATIVE_UINT64);
    H5Tinsert(t, "gbps", offsetof(probe_t, gbps), H5T_NATIVE_DOUBLE);
    probe_t p[2];
    assert_true(H5Dread(dset, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) >= 0);
    assert_string_equal(p[0].mode, "mixl");
    assert_near(p[0].gbps, 12.5, 1e-12);
    assert_string_equal(p[1].mode, "model-mixl");
    assert_int_equal(p[1].tokens, 4096);
    hid_t a = H5Aopen(file, "host", H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t at = H5Aget_type(a);
    assert_true(H5Tget_size(at) <= sizeof(host));
    assert_true(H5Aread(a, at, host) >= 0);
    assert_string_equal(host, "testhost");
    H5Tclose(at);
    H5Aclose(a);
    H5Tclose(t);
    H5Tclose(str);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(file);
    assert_int_equal(bench_write_hdf5("/nonexistent-dir/x.h5", &m, &res), MIXL_ERR_IO);
    bench_results_free(&res);
}

static void test_table(void **state)
{
    bench_results_t res = {0};
    char path[256], buf[8192];
    make_results(&res);
    snprintf(path, sizeof(path), "%s/t.txt", dir);
    FILE *fp = fopen(path, "w+");
    assert_non_null(fp);
    bench_write_table(fp, &res);
    rewind(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    assert_non_null(strstr(buf, "mixl "));
    assert_non_null(strstr(buf, "4K"));
    assert_non_null(strstr(buf, "12.500"));
    assert_non_null(strstr(buf, "llama3-8b"));
    bench_results_free(&res);
}

static void test_ucx_parse(void **state)
{
    const char *out =
        "+--------------+--------------+------------------------------+\n"
        "|    Stage     | # iterations | 50.0%ile | average | overall |\n"
        "Final:                   200     21.596    22.639    22.639    44171.49   44171.49       44171       44171\n";
    bench_ucx_final_t f;
    assert_int_equal(bench_ucx_parse(out, &f), MIXL_OK);
    assert_near(f.iterations, 200, 0);
    assert_near(f.lat_p50_us, 21.596, 1e-9);
    assert_near(f.lat_avg_us, 22.639, 1e-9);
    assert_near(f.bw_overall_mbs, 44171.49, 1e-6);
    assert_near(f.rate_overall, 44171, 0);
    assert_int_equal(bench_ucx_parse("connect() failed: Connection refused\n", &f), MIXL_ERR_PROTOCOL);
    assert_int_equal(bench_ucx_parse("Final: 12 abc\n", &f), MIXL_ERR_PROTOCOL);
    assert_int_equal(bench_ucx_parse("x Final: 1 2 3 4 5 6 7 8\n", &f), MIXL_ERR_PROTOCOL);
}

static int setup(void **state)
{
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    const char *files[] = {"r.csv", "r.json", "r.h5", "t.txt"};
    char p[256];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv),   cmocka_unit_test(test_json),      cmocka_unit_test(test_hdf5),
        cmocka_unit_test(test_table), cmocka_unit_test(test_ucx_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
