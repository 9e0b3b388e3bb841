/* Unit tests of mixl-bench's command line: defaults, lists, ranges, units, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "options.h"

static mixl_status_t parse(bench_opts_t *o, char *err, size_t errlen, ...)
{
    char *argv[32] = {"mixl-bench"};
    int argc = 1;
    va_list ap;
    va_start(ap, errlen);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;) argv[argc++] = a;
    va_end(ap);
    err[0] = '\0';
    return bench_opts_parse(argc, argv, o, err, errlen);
}

static void test_defaults(void **state)
{
    bench_opts_t o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof(err), NULL), MIXL_OK);
    assert_int_equal(o.sizes[0], 8);
    assert_int_equal(o.sizes[o.nsizes - 1], 256ull << 20);
    assert_int_equal(o.nsizes, 26); /* 2^3 .. 2^28 */
    assert_int_equal(o.nbatches, 1);
    assert_int_equal(o.batches[0], 1);
    assert_true(o.ops & BENCH_OP_WRITE);
    assert_true(o.ops & BENCH_OP_READ);
    assert_int_equal(o.mems, BENCH_MEM_HOST);
    assert_int_equal(o.reps, 3);
    assert_int_equal(o.nmodels, 2);
    assert_string_equal(o.models[0]->name, "llama3-8b");
    assert_int_equal(o.help, 0);
}

static void test_sizes(void **state)
{
    bench_opts_t o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof(err), "--sizes", "8:64", NULL), MIXL_OK);
    assert_int_equal(o.nsizes, 4);
    assert_int_equal(o.sizes[0], 8);
    assert_int_equal(o.sizes[3], 64);
    assert_int_equal(parse(&o, err, sizeof(err), "--sizes", "4K,16MiB,1g", NULL), MIXL_OK);
    assert_int_equal(o.nsizes, 3);
    assert_int_equal(o.sizes[0], 4096);
    assert_int_equal(o.sizes[1], 16ull << 20);
    assert_int_equal(o.sizes[2], 1ull << 30);
    /* descending, zero, junk and empty ranges are refused with the option named */
    assert_int_equal(parse(&o, err, sizeof(err), "--sizes", "64,8", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "--sizes"));
    assert_int_equal(parse(&o, err, sizeof(err), "--sizes", "0", NULL), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(parse(&o, err, sizeof(err), "--sizes", "12X", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "12X"));
    assert_int_equal(parse(&o, err, sizeof(err), "--sizes", "64:8", NULL), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(parse(&o, err, sizeof(err), "--batch", "1:4", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "--batch"));
}

static void test_parse_size(void **state)
{
    uint64_t v = 7;
    assert_int_equal(bench_parse_size("4096", &v), MIXL_OK);
    assert_int_equal(v, 4096);
    assert_int_equal(bench_parse_size("64k", &v), MIXL_OK);
    assert_int_equal(v, 65536);
    assert_int_equal(bench_parse_size("2GiB", &v), MIXL_OK);
    assert_int_equal(v, 2ull << 30);
    v = 7;
    assert_int_equal(bench_parse_size("-1", &v), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(bench_parse_size("", &v), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(bench_parse_size("1T", &v), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(bench_parse_size("99999999999999999999", &v), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(bench_parse_size("17179869184G", &v), MIXL_ERR_INVALID_PARAM); /* 2^34 GiB overflows */
    assert_int_equal(v, 7); /* untouched on failure */
}

static void test_names(void **state)
{
    bench_opts_t o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof(err), "--modes", "mixl,mpi", "--ops", "read", "--mem",
                           "host,host-mpi", "--pattern", "all", "--backends", "tcp", NULL),
                     MIXL_OK);
    assert_int_equal(o.modes, BENCH_MODE_MIXL | BENCH_MODE_MPI);
    assert_int_equal(o.ops, BENCH_OP_READ);
    assert_int_equal(o.mems, BENCH_MEM_HOST | BENCH_MEM_HOST_MPI);
    assert_int_equal(o.patterns, BENCH_PATTERN_PAIRWISE | BENCH_PATTERN_MANY_TO_ONE);
    assert_int_equal(o.backends, BENCH_BACKEND_TCP);
    assert_int_equal(parse(&o, err, sizeof(err), "--modes", "mixl,rdma", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "rdma"));
    assert_non_null(strstr(err, "--modes"));
    assert_int_equal(parse(&o, err, sizeof(err), "--models", "llama3-70b", "--tokens", "1024,32768",
                           "--block-sizes", "16", "--schemes", "layer", NULL),
                     MIXL_OK);
    assert_int_equal(o.nmodels, 1);
    assert_int_equal(o.models[0]->layers, 80);
    assert_int_equal(o.ntokens, 2);
    assert_int_equal(o.tokens[1], 32768);
    assert_int_equal(o.schemes, BENCH_MODEL_LAYERWISE);
    assert_int_equal(parse(&o, err, sizeof(err), "--models", "gpt2", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "gpt2"));
    assert_int_equal(parse(&o, err, sizeof(err), "--mpi-win", "create", NULL), MIXL_OK);
    assert_int_equal(o.mpi_wins, BENCH_WIN_CREATE);
    assert_int_equal(o.mpi_origin, BENCH_MEM_HOST);
    assert_int_equal(parse(&o, err, sizeof(err), "--mpi-origin", "host-mpi", NULL), MIXL_OK);
    assert_int_equal(o.mpi_origin, BENCH_MEM_HOST_MPI);
    assert_int_equal(parse(&o, err, sizeof(err), "--mpi-origin", "cuda", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "--mpi-origin"));
}

static void test_numbers_and_misc(void **state)
{
    bench_opts_t o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof(err), "--iters", "10", "--warmup", "0", "--reps", "5",
                           "--csv", "/tmp/x.csv", "--quiet", "--contig", "--no-notify", NULL),
                     MIXL_OK);
    assert_int_equal(o.iters, 10);
    assert_int_equal(o.warmup, 0);
    assert_int_equal(o.reps, 5);
    assert_string_equal(o.csv, "/tmp/x.csv");
    assert_true(o.quiet && o.contig && !o.notify);
    assert_int_equal(parse(&o, err, sizeof(err), "--iters", "0", NULL), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(parse(&o, err, sizeof(err), "--iters", "ten", NULL), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(parse(&o, err, sizeof(err), "--reps", "65", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "--reps"));
    assert_int_equal(parse(&o, err, sizeof(err), "--bogus", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "--bogus"));
    assert_int_equal(parse(&o, err, sizeof(err), "stray", NULL), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(err, "stray"));
    assert_int_equal(parse(&o, err, sizeof(err), "--iters", NULL), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(parse(&o, err, sizeof(err), "--help", NULL), MIXL_OK);
    assert_int_equal(o.help, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_parse_size), cmocka_unit_test(test_names),
        cmocka_unit_test(test_numbers_and_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
