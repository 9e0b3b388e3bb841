/*
 * HDF5 writer: one compound dataset /results (members = the field table,
 * strings fixed-length NUL-terminated) and the run's description as string
 * and integer attributes of the root group.
 */
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

#include "output.h"

static herr_t attr_str(hid_t loc, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR), a;
    herr_t rc = -1;
    H5Tset_size(t, strlen(value) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        rc = H5Awrite(a, t, value);
        H5Aclose(a);
    }
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static herr_t attr_int(hid_t loc, const char *name, int value)
{
    hid_t sp = H5Screate(H5S_SCALAR), a;
    herr_t rc = -1;
    a = H5Acreate2(loc, name, H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        rc = H5Awrite(a, H5T_NATIVE_INT, &value);
        H5Aclose(a);
    }
    H5Sclose(sp);
    return rc;
}

mixl_status_t bench_write_hdf5(const char *path, const bench_meta_t *meta, const bench_results_t *res)
{
    mixl_status_t st = MIXL_ERR_IO;
    hsize_t dims[1] = {res->n};
    hid_t file, type, space = -1, dset = -1;
    herr_t rc = 0;

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* report failures once, here, by file name */
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        fprintf(stderr, "mixl-bench: hdf5 %s: cannot create the file\n", path);
        return MIXL_ERR_IO;
    }
    type = H5Tcreate(H5T_COMPOUND, sizeof(bench_row_t));
    if (type < 0) goto err_file;
    for (int i = 0; bench_fields[i].name && rc >= 0; i++) {
        const bench_field_t *fd = &bench_fields[i];
        hid_t mt;
        switch (fd->type) {
        case BENCH_F_STR:
            mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, fd->size);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            rc = H5Tinsert(type, fd->name, fd->offset, mt);
            H5Tclose(mt);
            break;
        case BENCH_F_U64: rc = H5Tinsert(type, fd->name, fd->offset, H5T_NATIVE_UINT64); break;
        case BENCH_F_U32: rc = H5Tinsert(type, fd->name, fd->offset, H5T_NATIVE_UINT32); break;
        case BENCH_F_F64: rc = H5Tinsert(type, fd->name, fd->offset, H5T_NATIVE_DOUBLE); break;
        }
    }
    if (rc < 0) goto err_type;
    space = H5Screate_simple(1, dims, NULL);
    if (space < 0) goto err_type;
    dset = H5Dcreate2(file, "results", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (dset < 0) goto err_space;
    if (res->n > 0 && H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, res->rows) < 0) goto err_dset;
    if (attr_str(file, "host", meta->host) < 0 || attr_str(file, "cpu", meta->cpu) < 0 ||
        attr_int(file, "ncpu", meta->ncpu) < 0 || attr_str(file, "mpi", meta->mpi) < 0 ||
        attr_int(file, "ranks", meta->ranks) < 0 || attr_str(file, "date", meta->date) < 0 ||
        attr_str(file, "command", meta->cmdline) < 0 || attr_str(file, "path", meta->path) < 0)
        goto err_dset;
    st = MIXL_OK;
err_dset:
    H5Dclose(dset);
err_space:
    H5Sclose(space);
err_type:
    H5Tclose(type);
err_file:
    if (H5Fclose(file) < 0) st = MIXL_ERR_IO;
    if (st != MIXL_OK) fprintf(stderr, "mixl-bench: hdf5 %s: writing the results failed\n", path);
    return st;
}
