/*
 * Checks a mixl-run results file through the HDF5 API:
 *   check_results FILE REQUESTS [--mode push|pull] [--queued] [--errors K]
 *                 [--host-memory MPI_Win_allocate|malloc]
 * every expected dataset is there with one entry per request, every request
 * was verified (status 0, no bad block), each request moved exactly
 * prompt_tokens x kv_bytes_per_token bytes, the run's attributes (config,
 * versions) are present, with --queued that back-pressure held requests, and
 * with --errors K that exactly K requests failed their checksums (and were
 * counted) while every other one was verified.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed: ");                                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static int read_u64(hid_t f, const char *path, uint64_t *out, size_t n)
{
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hssize_t len = H5Sget_simple_extent_npoints(s);
    int rc = (len == (hssize_t)n &&
              H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0)
                 ? 0
                 : -1;
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

static int read_f64(hid_t f, const char *path, double *out, size_t n)
{
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hssize_t len = H5Sget_simple_extent_npoints(s);
    int rc = (len == (hssize_t)n &&
              H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0)
                 ? 0
                 : -1;
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

static int read_attr_u64(hid_t f, const char *obj, const char *name, uint64_t *v)
{
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -1;
    int rc = H5Aread(a, H5T_NATIVE_UINT64, v) >= 0 ? 0 : -1;
    H5Aclose(a);
    return rc;
}

static int read_attr_str(hid_t f, const char *obj, const char *name, char *buf, size_t len)
{
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    size_t sz = H5Tget_size(t);
    char *tmp = calloc(sz + 1, 1);
    int rc = H5Aread(a, t, tmp) >= 0 ? 0 : -1;
    snprintf(buf, len, "%s", tmp);
    free(tmp);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: check_results FILE REQUESTS [--mode push|pull] [--queued]\n");
        return 2;
    }
    const char *file = argv[1];
    size_t n = (size_t)strtoull(argv[2], NULL, 10);
    const char *mode = NULL, *host_memory = NULL;
    int want_queued = 0;
    long want_errors = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) mode = argv[++i];
        if (strcmp(argv[i], "--host-memory") == 0 && i + 1 < argc) host_memory = argv[++i];
        if (strcmp(argv[i], "--queued") == 0) want_queued = 1;
        if (strcmp(argv[i], "--errors") == 0 && i + 1 < argc) want_errors = atol(argv[++i]);
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "cannot open %s as HDF5\n", file);
        return 1;
    }

    static const char *const u64_sets[] = {"id",      "prompt_tokens", "output_tokens",
                                           "blocks",  "block_runs",    "bytes",
                                           "rma_ops", "transfers",     "bad_blocks"};
    static const char *const f64_sets[] = {
        "arrival_us",       "alloc_us",       "prefill_start_us", "prefill_end_us",
        "first_byte_us",    "last_byte_us",   "notify_us",        "first_token_us",
        "decode_end_us",    "ttft_us",        "queue_us",         "transfer_latency_us",
        "transfer_span_us", "bandwidth_gbps", "hidden_share"};
    uint64_t *u = calloc(n, sizeof(uint64_t)), *prompt = calloc(n, sizeof(uint64_t)),
             *bytes = calloc(n, sizeof(uint64_t)), *bad = calloc(n, sizeof(uint64_t));
    double *d = calloc(n, sizeof(double)), *fb = calloc(n, sizeof(double)),
           *lb = calloc(n, sizeof(double));
    char path[128], sval[4096];

    for (size_t i = 0; i < sizeof(u64_sets) / sizeof(u64_sets[0]); i++) {
        snprintf(path, sizeof(path), "/requests/%s", u64_sets[i]);
        CHECK(read_u64(f, path, u, n) == 0, "%s missing or not %zu long", path, n);
    }
    for (size_t i = 0; i < sizeof(f64_sets) / sizeof(f64_sets[0]); i++) {
        snprintf(path, sizeof(path), "/requests/%s", f64_sets[i]);
        CHECK(read_f64(f, path, d, n) == 0, "%s missing or not %zu long", path, n);
    }
    hid_t st = H5Dopen2(f, "/requests/status", H5P_DEFAULT);
    CHECK(st >= 0, "/requests/status missing");
    if (st >= 0) {
        int32_t *s = calloc(n, sizeof(int32_t));
        CHECK(H5Dread(st, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0,
              "reading status");
        long failed = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] == 0) continue;
            failed++;
            CHECK(want_errors > 0 && s[i] == -21, "request %zu ended with status %d", i, s[i]);
        }
        CHECK(failed == want_errors, "%ld requests failed, expected %ld", failed, want_errors);
        free(s);
        H5Dclose(st);
    }
    uint64_t bpt = 0, sum_bytes = 0, sum_tokens = 0, queued = 0;
    CHECK(read_attr_u64(f, "/", "kv_bytes_per_token", &bpt) == 0 && bpt > 0, "kv_bytes_per_token");
    if (read_u64(f, "/requests/prompt_tokens", prompt, n) == 0 &&
        read_u64(f, "/requests/bytes", bytes, n) == 0 &&
        read_u64(f, "/requests/bad_blocks", bad, n) == 0) {
        for (size_t i = 0; i < n; i++) {
            CHECK(bytes[i] == prompt[i] * bpt,
                  "request %zu moved %" PRIu64 " bytes, expected %" PRIu64 " tokens x %" PRIu64, i,
                  bytes[i], prompt[i], bpt);
            CHECK(want_errors > 0 || bad[i] == 0, "request %zu has %" PRIu64 " bad blocks", i,
                  bad[i]);
            sum_bytes += bytes[i];
            sum_tokens += prompt[i];
        }
        CHECK(sum_bytes == sum_tokens * bpt,
              "total bytes %" PRIu64 " != %" PRIu64 " tokens x %" PRIu64, sum_bytes, sum_tokens,
              bpt);
    }
    if (read_f64(f, "/requests/first_byte_us", fb, n) == 0 &&
        read_f64(f, "/requests/last_byte_us", lb, n) == 0)
        for (size_t i = 0; i < n; i++)
            CHECK(fb[i] <= lb[i], "request %zu: first byte after last byte", i);
    uint64_t reqs = 0, errors = 1;
    CHECK(read_attr_u64(f, "/summary", "requests", &reqs) == 0 && reqs == n, "summary requests");
    CHECK(read_attr_u64(f, "/summary", "errors", &errors) == 0 && errors == (uint64_t)want_errors,
          "summary errors");
    static const char *const attrs[] = {"config",       "mixl_version", "mpi_library_version",
                                        "hdf5_version", "model",        "transfer_mode"};
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        CHECK(read_attr_str(f, "/", attrs[i], sval, sizeof(sval)) == 0 && sval[0] != '\0',
              "root attribute %s", attrs[i]);
    CHECK(read_attr_str(f, "/", "config", sval, sizeof(sval)) == 0 && strstr(sval, "workload:"),
          "config attribute holds the resolved YAML");
    if (mode != NULL)
        CHECK(read_attr_str(f, "/", "transfer_mode", sval, sizeof(sval)) == 0 &&
                  strcmp(sval, mode) == 0,
              "transfer_mode is %s, expected %s", sval, mode);
    if (host_memory != NULL)
        CHECK(read_attr_str(f, "/", "host_memory", sval, sizeof(sval)) == 0 &&
                  strcmp(sval, host_memory) == 0,
              "host_memory is %s, expected %s", sval, host_memory);
    if (want_queued)
        CHECK(read_attr_u64(f, "/summary", "max_queued", &queued) == 0 && queued > 0,
              "expected requests to wait for decode blocks (max_queued %" PRIu64 ")", queued);
    hid_t h = H5Dopen2(f, "/histograms/ttft_us", H5P_DEFAULT);
    CHECK(h >= 0, "/histograms/ttft_us missing");
    if (h >= 0) H5Dclose(h);

    free(u);
    free(prompt);
    free(bytes);
    free(bad);
    free(d);
    free(fb);
    free(lb);
    H5Fclose(f);
    if (failures == 0)
        printf("%s: %zu requests verified, %" PRIu64 " bytes = %" PRIu64 " tokens x %" PRIu64 "\n",
               file, n, sum_bytes, sum_tokens, bpt);
    return failures ? 1 : 0;
}
