/*
 * Checks what a mixl-bench smoke run wrote: the JSON, CSV and HDF5 files
 * load, hold the same number of rows, and every expected mode has a
 * measured row (or, for ucx_perftest, a row saying it is not installed).
 * Model rows must carry the decode side's placement check.
 * A row that was not measured fails the check -- a failed transfer or data
 * check is a failure, whatever its note says -- unless its note gives one of
 * the reasons a point is legitimately left out (skip_reasons below).
 *   bench_check PREFIX MODE[,MODE...] RANKS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>
#include <jansson.h>

/* Why a point may be left out of a run without the run being wrong. */
static const char *const skip_reasons[] = {
    "not installed",                 /* ucx_perftest absent */
    "not measured: no CUDA device",  /* cuda memory on a machine without a GPU */
    "not measured: MIXL was built without CUDA",
    "above --model-max-bytes",
    "size above MPI's int count",
};

static int allowed_skip(const char *note)
{
    for (size_t i = 0; note != NULL && i < sizeof(skip_reasons) / sizeof(skip_reasons[0]); i++)
        if (strstr(note, skip_reasons[i]) != NULL) return 1;
    return 0;
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "bench_check: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

int main(int argc, char **argv)
{
    char path[512], line[8192], modes[256];
    json_error_t jerr;
    size_t csv_rows = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: bench_check PREFIX MODE[,MODE...] RANKS\n");
        return 2;
    }
    snprintf(path, sizeof(path), "%s.json", argv[1]);
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) return fail("%s: %s", path, jerr.text);
    json_t *rows = json_object_get(root, "results");
    size_t n = json_array_size(rows);
    if (n == 0) return fail("%s: no result rows%s", path, "");
    if (json_integer_value(json_object_get(json_object_get(root, "meta"), "ranks")) != atoi(argv[3]))
        return fail("%s: meta.ranks is not %s", path, argv[3]);

    snprintf(modes, sizeof(modes), "%s", argv[2]);
    for (char *save = NULL, *m = strtok_r(modes, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        int ok = 0;
        for (size_t i = 0; i < n && !ok; i++) {
            json_t *r = json_array_get(rows, i);
            const char *mode = json_string_value(json_object_get(r, "mode"));
            const char *note = json_string_value(json_object_get(r, "note"));
            double gbps = json_real_value(json_object_get(r, "gbps"));
            if (mode == NULL || strcmp(mode, m) != 0) continue;
            if (strcmp(m, "ucx_perftest") == 0 && note && strstr(note, "not installed")) ok = 1;
            if (gbps > 0 && (strcmp(m, "model-mixl") != 0 || (note && strstr(note, "placement verified"))))
                ok = 1;
        }
        if (!ok) return fail("%s: no measured row of mode %s", path, m);
    }
    for (size_t i = 0; i < n; i++) {
        /* An unmeasured point passes only with a reason that is not a failure. */
        json_t *r = json_array_get(rows, i);
        const char *note = json_string_value(json_object_get(r, "note"));
        if (json_real_value(json_object_get(r, "gbps")) <= 0 && !allowed_skip(note)) {
            char what[512];
            snprintf(what, sizeof(what), "mode %s %s size %lld batch %lld: %s",
                     json_string_value(json_object_get(r, "mode")) ?: "?",
                     json_string_value(json_object_get(r, "op")) ?: "?",
                     (long long)json_integer_value(json_object_get(r, "size")),
                     (long long)json_integer_value(json_object_get(r, "batch")),
                     note && note[0] ? note : "no reason given");
            return fail("%s: a point failed (%s)", path, what);
        }
    }

    snprintf(path, sizeof(path), "%s.csv", argv[1]);
    FILE *f = fopen(path, "r");
    if (f == NULL) return fail("%s: cannot open%s", path, "");
    if (fgets(line, sizeof(line), f) == NULL || strncmp(line, "mode,", 5) != 0)
        return fail("%s: no header line%s", path, "");
    while (fgets(line, sizeof(line), f)) csv_rows++;
    fclose(f);
    if (csv_rows != n) return fail("%s: row count differs from the JSON file%s", path, "");

    snprintf(path, sizeof(path), "%s.h5", argv[1]);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) return fail("%s: cannot open%s", path, "");
    hid_t dset = H5Dopen2(file, "results", H5P_DEFAULT);
    hsize_t dims[1] = {0};
    if (dset >= 0) {
        hid_t sp = H5Dget_space(dset);
        H5Sget_simple_extent_dims(sp, dims, NULL);
        H5Sclose(sp);
        H5Dclose(dset);
    }
    H5Fclose(file);
    if (dims[0] != n) return fail("%s: dataset /results row count differs from the JSON file%s", path, "");
    json_decref(root);
    printf("bench_check: %s: %zu rows in JSON, CSV and HDF5; modes %s present\n", argv[1], n, argv[2]);
    return 0;
}
