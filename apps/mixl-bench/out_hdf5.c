/*
 * HDF5 output through the one results writer (metrics/h5.h): one compound
 * dataset /results whose members are the field table (strings fixed-length,
 * NUL-terminated), and the run's description as attributes of the root group.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "metrics/h5.h"
#include "output.h"

static const mixl_h5_type_t field_types[] = {
    [BENCH_F_STR] = MIXL_H5_STR,
    [BENCH_F_U64] = MIXL_H5_U64,
    [BENCH_F_U32] = MIXL_H5_U32,
    [BENCH_F_F64] = MIXL_H5_F64,
};

mixl_status_t bench_write_hdf5(const char *path, const bench_meta_t *meta, const bench_results_t *res)
{
    mixl_h5_member_t members[128];
    size_t n = 0;
    char dir[512], err[1024] = "";
    mixl_h5_t *h;

    /* Like the CSV and JSON files: the folder must exist (the writer would create it). */
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        if (slash == dir) slash++;
        *slash = '\0';
    }
    if (slash != NULL && access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "mixl-bench: hdf5 %s: cannot create the file (folder %s)\n", path, dir);
        return MIXL_ERR_IO;
    }
    for (int i = 0; bench_fields[i].name != NULL; i++) {
        if (n == sizeof(members) / sizeof(members[0])) {
            fprintf(stderr, "mixl-bench: hdf5 %s: more than %zu fields\n", path, n);
            return MIXL_ERR_IO;
        }
        const bench_field_t *fd = &bench_fields[i];
        members[n++] = (mixl_h5_member_t){.name = fd->name,
                                          .type = field_types[fd->type],
                                          .offset = fd->offset,
                                          .size = fd->size};
    }
    mixl_status_t st = mixl_h5_create(path, &h, err, sizeof(err));
    if (st != MIXL_OK) {
        fprintf(stderr, "mixl-bench: hdf5 %s\n", err);
        return st;
    }
    mixl_h5_table(h, "/results", members, n, sizeof(bench_row_t), res->rows, res->n);
    const struct {
        const char *name, *value;
    } strs[] = {{"host", meta->host}, {"cpu", meta->cpu},         {"mpi", meta->mpi},
                {"date", meta->date}, {"command", meta->cmdline}, {"path", meta->path}};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        mixl_h5_attr_str(h, "/", strs[i].name, strs[i].value);
    mixl_h5_attr_u64(h, "/", "ncpu", (uint64_t)(meta->ncpu > 0 ? meta->ncpu : 0));
    mixl_h5_attr_u64(h, "/", "ranks", (uint64_t)(meta->ranks > 0 ? meta->ranks : 0));
    /* Errors are kept by the writer (first wins) and reported here, once, by file. */
    st = mixl_h5_close(h, err, sizeof(err));
    if (st != MIXL_OK) fprintf(stderr, "mixl-bench: hdf5 %s: writing the results failed: %s\n", path, err);
    return st;
}
