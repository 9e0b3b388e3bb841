/*
 * Checks a mixl-run results file through the HDF5 API:
 *   check_results FILE REQUESTS [--mode push|pull] [--queued] [--failed ID,ID...]
 *                 [--host-memory MPI_Win_allocate|malloc] [--clock-sync TEXT] [--lengths LENGTHS_FILE]
 *                 [--bytes-per-token B] [--prefill-queue-one]
 * every expected dataset is there with one entry per request, the request
 * ids are 0..REQUESTS-1 each exactly once, every request was verified
 * (status 0, no bad block), each request moved exactly prompt_tokens x
 * kv_bytes_per_token bytes, the run's attributes (config, versions) are
 * present, with --queued that back-pressure held requests, and with
 * --failed exactly the requests named failed their checksums (and were
 * counted) while every other one was verified.
 * With --prefill-queue-one (a run with prefill.queue 1 and decoding longer
 * than a prefill) a prefill instance never held two requests at once, and
 * its next request started while an earlier one was still decoding: its
 * queue place is given back when the KV is shipped, not when the request
 * ends.
 * The figures mixl-run reports are cross-checked against sources it did not
 * compute: --lengths names the prompt-lengths file the test wrote and gave
 * to the workload (request i has the file's length number i, cycled), and
 * --bytes-per-token the KV bytes per token of the model's geometry, worked
 * out by the test.
 */
#include <inttypes.h>
#include <math.h>
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

/* The lengths file as the workload reads it: one length a line, blank lines and '#' skipped. */
static size_t read_lengths(const char *path, uint64_t **lens_p)
{
    FILE *f = fopen(path, "r");
    char line[256];
    uint64_t *lens = NULL;
    size_t n = 0, cap = 0;
    if (f == NULL) return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *grown = realloc(lens, cap * sizeof(*lens));
            if (grown == NULL) break;
            lens = grown;
        }
        lens[n++] = strtoull(p, NULL, 10);
    }
    fclose(f);
    *lens_p = lens;
    return n;
}

/* "3,7" -> a 0/1 mark per request; the count of ids, or -1 on an id out of range. */
static long parse_failed(const char *list, size_t n, unsigned char *mark)
{
    long count = 0;
    for (const char *p = list; *p != '\0';) {
        char *end;
        unsigned long long id = strtoull(p, &end, 10);
        if (end == p || id >= n) return -1;
        if (!mark[id]) count++;
        mark[id] = 1;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') return -1;
    }
    return count;
}

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

/* A numeric attribute, converted to `type` (H5T_NATIVE_UINT64, H5T_NATIVE_DOUBLE). */
static int read_attr_num(hid_t f, const char *obj, const char *name, hid_t type, void *v)
{
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return -1;
    int rc = H5Aread(a, type, v) >= 0 ? 0 : -1;
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

/* --prefill-queue-one: see the top of the file. */
static void check_queue_one(hid_t f, size_t n)
{
    double *start = calloc(n, sizeof(double)), *end = calloc(n, sizeof(double)),
           *dend = calloc(n, sizeof(double));
    uint64_t *inst = calloc(n, sizeof(uint64_t));
    size_t *order = calloc(n, sizeof(size_t)), overlapped = 0;

    CHECK(start && end && dend && inst && order, "no memory");
    if (start && end && dend && inst && order &&
        read_f64(f, "/requests/prefill_start_us", start, n) == 0 &&
        read_f64(f, "/requests/prefill_end_us", end, n) == 0 &&
        read_f64(f, "/requests/decode_end_us", dend, n) == 0 &&
        read_u64(f, "/requests/prefill_instance", inst, n) == 0) {
        /* Requests in the order their prefill started (insertion sort: a few dozen). */
        for (size_t i = 0; i < n; i++) {
            size_t j = i;
            for (; j > 0 && start[order[j - 1]] > start[i]; j--) order[j] = order[j - 1];
            order[j] = i;
        }
        for (size_t k = 0; k < n; k++) {
            size_t a = order[k], b = n;
            for (size_t m = k + 1; m < n && b == n; m++)
                if (inst[order[m]] == inst[a]) b = order[m];
            if (b == n) continue;
            CHECK(start[b] >= end[a],
                  "requests %zu and %zu were in prefill instance %" PRIu64 " at once (%.0f < %.0f us)",
                  a, b, inst[a], start[b], end[a]);
            if (start[b] < dend[a]) overlapped++;
        }
        CHECK(overlapped > 0,
              "no request started its prefill while the one before it was decoding: the prefill "
              "instance's queue place was held until the request ended");
    } else {
        CHECK(0, "prefill_start_us, prefill_end_us, decode_end_us or prefill_instance unreadable");
    }
    free(start);
    free(end);
    free(dend);
    free(inst);
    free(order);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: check_results FILE REQUESTS [--mode push|pull] [--queued] "
                        "[--failed ID,...] [--host-memory KIND] [--clock-sync TEXT] [--lengths FILE] [--bytes-per-token B]\n"
                        "       [--prefill-queue-one]\n");
        return 2;
    }
    const char *file = argv[1];
    size_t n = (size_t)strtoull(argv[2], NULL, 10);
    const char *clock_sync = NULL; /* text the clock_sync attribute must hold */
    const char *mode = NULL, *host_memory = NULL, *lengths_file = NULL, *failed_list = "";
    int want_queued = 0, want_queue_one = 0;
    long want_errors = 0;
    uint64_t want_bpt = 0;
    if (n == 0) {
        fprintf(stderr, "check_results: REQUESTS must be a positive count, got '%s'\n", argv[2]);
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) mode = argv[++i];
        else if (strcmp(argv[i], "--host-memory") == 0 && i + 1 < argc) host_memory = argv[++i];
        else if (strcmp(argv[i], "--clock-sync") == 0 && i + 1 < argc) clock_sync = argv[++i];
        else if (strcmp(argv[i], "--queued") == 0) want_queued = 1;
        else if (strcmp(argv[i], "--prefill-queue-one") == 0) want_queue_one = 1;
        else if (strcmp(argv[i], "--failed") == 0 && i + 1 < argc) failed_list = argv[++i];
        else if (strcmp(argv[i], "--lengths") == 0 && i + 1 < argc) lengths_file = argv[++i];
        else if (strcmp(argv[i], "--bytes-per-token") == 0 && i + 1 < argc)
            want_bpt = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "check_results: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    unsigned char *want_failed = calloc(n, 1);
    want_errors = want_failed ? parse_failed(failed_list, n, want_failed) : -1;
    if (want_errors < 0) {
        fprintf(stderr, "check_results: --failed '%s': expected request ids below %zu\n", failed_list, n);
        return 2;
    }
    uint64_t *lens = NULL;
    size_t nlens = 0;
    if (lengths_file != NULL && (nlens = read_lengths(lengths_file, &lens)) == 0) {
        fprintf(stderr, "check_results: %s: no prompt lengths\n", lengths_file);
        return 2;
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
    uint64_t *u = calloc(n, sizeof(uint64_t)), *ids = calloc(n, sizeof(uint64_t)), *prompt = calloc(n, sizeof(uint64_t)),
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
    /* Request ids: 0..n-1, each exactly once (a row written twice or lost shows here). */
    unsigned char *seen = calloc(n, 1);
    int have_ids = read_u64(f, "/requests/id", ids, n) == 0;
    if (have_ids)
        for (size_t i = 0; i < n; i++) {
            if (ids[i] >= n) {
                CHECK(0, "row %zu has request id %" PRIu64 ", outside 0..%zu", i, ids[i], n - 1);
                have_ids = 0;
            } else {
                CHECK(!seen[ids[i]], "request id %" PRIu64 " appears more than once", ids[i]);
                seen[ids[i]] = 1;
            }
        }
    free(seen);
    hid_t st = H5Dopen2(f, "/requests/status", H5P_DEFAULT);
    CHECK(st >= 0, "/requests/status missing");
    if (st >= 0) {
        int32_t *s = calloc(n, sizeof(int32_t));
        CHECK(H5Dread(st, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0,
              "reading status");
        long failed = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t id = have_ids ? ids[i] : i;
            if (have_ids && want_failed[id])
                CHECK(s[i] == -21, "request %" PRIu64 " should have failed its checksum (status -21), "
                      "ended with status %d", id, s[i]);
            if (s[i] == 0) continue;
            failed++;
            CHECK(have_ids && want_failed[id], "request %" PRIu64 " ended with status %d", id, s[i]);
        }
        CHECK(failed == want_errors, "%ld requests failed, expected %ld", failed, want_errors);
        free(s);
        H5Dclose(st);
    }
    uint64_t bpt = 0, sum_bytes = 0, sum_tokens = 0, queued = 0;
    CHECK(read_attr_num(f, "/", "kv_bytes_per_token", H5T_NATIVE_UINT64, &bpt) == 0 && bpt > 0,
          "kv_bytes_per_token");
    if (want_bpt != 0)
        CHECK(bpt == want_bpt, "kv_bytes_per_token is %" PRIu64 ", the model's geometry gives %" PRIu64,
              bpt, want_bpt);
    if (read_u64(f, "/requests/prompt_tokens", prompt, n) == 0 &&
        read_u64(f, "/requests/bytes", bytes, n) == 0 &&
        read_u64(f, "/requests/bad_blocks", bad, n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (lens != NULL && have_ids)
                CHECK(prompt[i] == lens[ids[i] % nlens],
                      "request %" PRIu64 " has %" PRIu64 " prompt tokens, the lengths file says %" PRIu64,
                      ids[i], prompt[i], lens[ids[i] % nlens]);
            if (lens != NULL && have_ids && want_bpt != 0)
                CHECK(bytes[i] == lens[ids[i] % nlens] * want_bpt,
                      "request %" PRIu64 " moved %" PRIu64 " bytes, the lengths file and the model give %" PRIu64,
                      ids[i], bytes[i], lens[ids[i] % nlens] * want_bpt);
            CHECK(bytes[i] == prompt[i] * bpt,
                  "request %zu moved %" PRIu64 " bytes, expected %" PRIu64 " tokens x %" PRIu64, i,
                  bytes[i], prompt[i], bpt);
            uint64_t id = have_ids ? ids[i] : i;
            CHECK(want_failed[id] ? bad[i] > 0 : bad[i] == 0, "request %" PRIu64 " has %" PRIu64
                  " bad blocks%s", id, bad[i], want_failed[id] ? ", expected some" : "");
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
    /* The summary's KV stream spans the requests' first and last bytes. */
    if (read_f64(f, "/requests/first_byte_us", fb, n) == 0 &&
        read_f64(f, "/requests/last_byte_us", lb, n) == 0 &&
        read_u64(f, "/requests/transfers", u, n) == 0) {
        double lo = INFINITY, hi = -INFINITY, stream_s = -1, wall_s = -1;
        for (size_t i = 0; i < n; i++) {
            /* Only NaN means "none": a worker on another host may put its first
             * byte a little before the router's start (clock alignment is
             * within half a round trip), and the summary counts it. */
            if (u[i] == 0 || isnan(fb[i]) || isnan(lb[i]) || lb[i] < fb[i]) continue;
            if (fb[i] < lo) lo = fb[i];
            if (lb[i] > hi) hi = lb[i];
        }
        CHECK(read_attr_num(f, "/summary", "stream_s", H5T_NATIVE_DOUBLE, &stream_s) == 0 &&
                  read_attr_num(f, "/summary", "wall_s", H5T_NATIVE_DOUBLE, &wall_s) == 0,
              "summary stream_s or wall_s missing");
        if (hi > lo)
            CHECK(fabs(stream_s - (hi - lo) / 1e6) < 1e-6 && stream_s <= wall_s,
                  "stream_s %.6f s: the requests' first and last bytes give %.6f s (wall %.6f s)",
                  stream_s, (hi - lo) / 1e6, wall_s);
    }
    uint64_t reqs = 0, errors = 1;
    CHECK(read_attr_num(f, "/summary", "requests", H5T_NATIVE_UINT64, &reqs) == 0 && reqs == n,
          "summary requests");
    CHECK(read_attr_num(f, "/summary", "errors", H5T_NATIVE_UINT64, &errors) == 0 &&
              errors == (uint64_t)want_errors,
          "summary errors");
    static const char *const attrs[] = {"config",       "mixl_version", "mpi_library_version",
                                        "hdf5_version", "model",        "transfer_mode",
                                        "clock_sync"};
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
        CHECK(read_attr_str(f, "/", attrs[i], sval, sizeof(sval)) == 0 && sval[0] != '\0',
              "root attribute %s", attrs[i]);
    CHECK(read_attr_str(f, "/", "config", sval, sizeof(sval)) == 0 && strstr(sval, "workload:"),
          "config attribute holds the resolved YAML");
    if (mode != NULL)
        CHECK(read_attr_str(f, "/", "transfer_mode", sval, sizeof(sval)) == 0 &&
                  strcmp(sval, mode) == 0,
              "transfer_mode is %s, expected %s", sval, mode);
    if (clock_sync != NULL)
        CHECK(read_attr_str(f, "/", "clock_sync", sval, sizeof(sval)) == 0 &&
                  strstr(sval, clock_sync) != NULL,
              "clock_sync is \"%s\", expected it to say \"%s\"", sval, clock_sync);
    if (host_memory != NULL)
        CHECK(read_attr_str(f, "/", "host_memory", sval, sizeof(sval)) == 0 &&
                  strcmp(sval, host_memory) == 0,
              "host_memory is %s, expected %s", sval, host_memory);
    if (want_queued)
        CHECK(read_attr_num(f, "/summary", "max_queued", H5T_NATIVE_UINT64, &queued) == 0 &&
                  queued > 0,
              "expected requests to wait for decode blocks (max_queued %" PRIu64 ")", queued);
    if (want_queue_one) check_queue_one(f, n);
    hid_t h = H5Dopen2(f, "/histograms/ttft_us", H5P_DEFAULT);
    CHECK(h >= 0, "/histograms/ttft_us missing");
    if (h >= 0) H5Dclose(h);

    free(u);
    free(ids);
    free(lens);
    free(want_failed);
    free(prompt);
    free(bytes);
    free(bad);
    free(d);
    free(fb);
    free(lb);
    H5Fclose(f);
    if (failures == 0)
        printf("%s: %zu requests (ids 0..%zu once each) verified, %" PRIu64 " bytes = %" PRIu64
               " tokens x %" PRIu64 "%s%s\n", file, n, n - 1, sum_bytes, sum_tokens, bpt,
               lens ? ", prompt lengths as in " : "", lens ? lengths_file : "");
    return failures ? 1 : 0;
}
