/* HDF5 results writer; see h5.h. Errors are kept (first wins) and reported at close. */
#include "metrics/h5.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hdf5.h>

struct mixl_h5 {
    hid_t file;
    char path[512];
    mixl_status_t status;
    char err[1024];
};

static mixl_status_t h5_fail(mixl_h5_t *h, const char *fmt, const char *what)
{
    if (h->status == MIXL_OK) {
        h->status = MIXL_ERR_IO;
        snprintf(h->err, sizeof(h->err), "%s: ", h->path);
        size_t n = strlen(h->err);
        snprintf(h->err + n, sizeof(h->err) - n, fmt, what);
    }
    return MIXL_ERR_IO;
}

static void h5_mkdirs(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0777); /* an existing folder is fine; a real failure shows at H5Fcreate */
        *p = '/';
    }
}

mixl_status_t mixl_h5_create(const char *path, mixl_h5_t **h5_p, char *err, size_t err_len)
{
    mixl_h5_t *h = calloc(1, sizeof(*h));
    if (h == NULL) return MIXL_ERR_NO_MEMORY;
    snprintf(h->path, sizeof(h->path), "%s", path);
    /*
     * A file whose close failed (full file system) stays open inside the
     * library, and HDF5's exit handler crashes closing it again; every file
     * MIXL writes is closed explicitly, so the handler has nothing to do.
     * (Effective only before the library's first use; harmless after.)
     */
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* report through our messages, not the HDF5 stack */
    h5_mkdirs(path);
    h->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (h->file < 0) {
        snprintf(err, err_len,
                 "%s: cannot create the HDF5 results file (folder missing or not writable?)", path);
        free(h);
        return MIXL_ERR_IO;
    }
    *h5_p = h;
    return MIXL_OK;
}

mixl_status_t mixl_h5_open(const char *path, mixl_h5_t **h5_p, char *err, size_t err_len)
{
    mixl_h5_t *h = calloc(1, sizeof(*h));
    if (h == NULL) return MIXL_ERR_NO_MEMORY;
    snprintf(h->path, sizeof(h->path), "%s", path);
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    h->file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (h->file < 0) {
        snprintf(err, err_len, "%s: cannot open the HDF5 results file to add to it", path);
        free(h);
        return MIXL_ERR_IO;
    }
    *h5_p = h;
    return MIXL_OK;
}

mixl_status_t mixl_h5_close(mixl_h5_t *h, char *err, size_t err_len)
{
    mixl_status_t st = h->status;
    if (H5Fclose(h->file) < 0 && st == MIXL_OK) {
        st = MIXL_ERR_IO;
        snprintf(h->err, sizeof(h->err), "%s: closing the HDF5 file failed", h->path);
    }
    if (st != MIXL_OK) snprintf(err, err_len, "%s", h->err);
    free(h);
    return st;
}

mixl_status_t mixl_h5_group(mixl_h5_t *h, const char *path)
{
    hid_t g = H5Gcreate2(h->file, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return h5_fail(h, "cannot create group %s", path);
    H5Gclose(g);
    return MIXL_OK;
}

static mixl_status_t h5_attr(mixl_h5_t *h, const char *obj, const char *name, hid_t ftype,
                             hid_t mtype, hid_t space, const void *value)
{
    hid_t o = H5Oopen(h->file, obj, H5P_DEFAULT);
    if (o < 0) return h5_fail(h, "no object %s for an attribute", obj);
    if (H5Aexists(o, name) > 0) H5Adelete(o, name);
    hid_t a = H5Acreate2(o, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mtype, value);
    if (a >= 0) H5Aclose(a);
    H5Oclose(o);
    if (rc < 0) return h5_fail(h, "cannot write attribute %s", name);
    return MIXL_OK;
}

mixl_status_t mixl_h5_attr_str(mixl_h5_t *h, const char *obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    size_t n = strlen(value);
    H5Tset_size(t, n > 0 ? n + 1 : 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    hid_t s = H5Screate(H5S_SCALAR);
    mixl_status_t st = h5_attr(h, obj, name, t, t, s, value);
    H5Sclose(s);
    H5Tclose(t);
    return st;
}

mixl_status_t mixl_h5_attr_f64(mixl_h5_t *h, const char *obj, const char *name, double value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    mixl_status_t st = h5_attr(h, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, &value);
    H5Sclose(s);
    return st;
}

mixl_status_t mixl_h5_attr_u64(mixl_h5_t *h, const char *obj, const char *name, uint64_t value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    mixl_status_t st = h5_attr(h, obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, s, &value);
    H5Sclose(s);
    return st;
}

mixl_status_t mixl_h5_attr_f64v(mixl_h5_t *h, const char *obj, const char *name,
                                const double *values, size_t n)
{
    hsize_t dims[1] = {n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    mixl_status_t st = h5_attr(h, obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s, values);
    H5Sclose(s);
    return st;
}

static mixl_status_t h5_write(mixl_h5_t *h, const char *path, hid_t ftype, hid_t mtype,
                              const void *data, size_t n, const char *units)
{
    hsize_t dims[1] = {n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(h->file, path, ftype, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : (n > 0 ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0);
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    if (rc < 0) return h5_fail(h, "cannot write dataset %s", path);
    if (units != NULL) return mixl_h5_attr_str(h, path, "units", units);
    return MIXL_OK;
}

mixl_status_t mixl_h5_write_f64(mixl_h5_t *h, const char *path, const double *data, size_t n,
                                const char *units)
{
    return h5_write(h, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, n, units);
}

mixl_status_t mixl_h5_write_u64(mixl_h5_t *h, const char *path, const uint64_t *data, size_t n,
                                const char *units)
{
    return h5_write(h, path, H5T_STD_U64LE, H5T_NATIVE_UINT64, data, n, units);
}

mixl_status_t mixl_h5_write_i32(mixl_h5_t *h, const char *path, const int32_t *data, size_t n,
                                const char *units)
{
    return h5_write(h, path, H5T_STD_I32LE, H5T_NATIVE_INT32, data, n, units);
}

/* File and memory types of a column type; a string type is a copy the caller closes. */
static void col_types(mixl_h5_type_t type, hid_t *ftype_p, hid_t *mtype_p, int *owned_p)
{
    *owned_p = 0;
    switch (type) {
    case MIXL_H5_F64:
        *ftype_p = H5T_IEEE_F64LE;
        *mtype_p = H5T_NATIVE_DOUBLE;
        break;
    case MIXL_H5_U64:
        *ftype_p = H5T_STD_U64LE;
        *mtype_p = H5T_NATIVE_UINT64;
        break;
    case MIXL_H5_I32:
        *ftype_p = H5T_STD_I32LE;
        *mtype_p = H5T_NATIVE_INT32;
        break;
    case MIXL_H5_U32:
        *ftype_p = H5T_STD_U32LE;
        *mtype_p = H5T_NATIVE_UINT32;
        break;
    case MIXL_H5_I64:
        *ftype_p = H5T_STD_I64LE;
        *mtype_p = H5T_NATIVE_INT64;
        break;
    case MIXL_H5_STR:
    default:
        *ftype_p = H5Tcopy(H5T_C_S1);
        H5Tset_size(*ftype_p, MIXL_H5_STR_LEN);
        H5Tset_strpad(*ftype_p, H5T_STR_NULLPAD);
        *mtype_p = *ftype_p;
        *owned_p = 1;
        break;
    }
}

mixl_status_t mixl_h5_column(mixl_h5_t *h, const char *path, mixl_h5_type_t type,
                             const char *units)
{
    hsize_t dims[1] = {0}, max[1] = {H5S_UNLIMITED}, chunk[1] = {1024};
    hid_t ftype, mtype;
    int owned;
    col_types(type, &ftype, &mtype, &owned);
    hid_t s = H5Screate_simple(1, dims, max);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 1, chunk);
    hid_t d = H5Dcreate2(h->file, path, ftype, s, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (d >= 0) H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(s);
    if (owned) H5Tclose(ftype);
    if (d < 0) return h5_fail(h, "cannot create column %s", path);
    if (units != NULL) return mixl_h5_attr_str(h, path, "units", units);
    return MIXL_OK;
}

mixl_status_t mixl_h5_column_put(mixl_h5_t *h, const char *path, mixl_h5_type_t type,
                                 size_t offset, const void *data, size_t n)
{
    hid_t ftype, mtype;
    int owned;
    herr_t rc = -1;
    if (n == 0) return MIXL_OK;
    hid_t d = H5Dopen2(h->file, path, H5P_DEFAULT);
    if (d < 0) return h5_fail(h, "no column %s", path);
    col_types(type, &ftype, &mtype, &owned);
    hid_t fs = H5Dget_space(d);
    hsize_t cur[1] = {0};
    H5Sget_simple_extent_dims(fs, cur, NULL);
    H5Sclose(fs);
    hsize_t want[1] = {offset + n};
    if (want[0] <= cur[0] || H5Dset_extent(d, want) >= 0) {
        hsize_t start[1] = {offset}, count[1] = {n};
        fs = H5Dget_space(d);
        hid_t ms = H5Screate_simple(1, count, NULL);
        if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
            rc = H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, data);
        H5Sclose(ms);
        H5Sclose(fs);
    }
    if (owned) H5Tclose(ftype);
    H5Dclose(d);
    if (rc < 0) return h5_fail(h, "cannot write column %s (file system full?)", path);
    return MIXL_OK;
}

/* A member's type in memory (file = 0) or in the file (file = 1); the caller closes it. */
static hid_t member_type(const mixl_h5_member_t *m, int file)
{
    hid_t t;
    switch (m->type) {
    case MIXL_H5_F64: return H5Tcopy(file ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE);
    case MIXL_H5_U64: return H5Tcopy(file ? H5T_STD_U64LE : H5T_NATIVE_UINT64);
    case MIXL_H5_I32: return H5Tcopy(file ? H5T_STD_I32LE : H5T_NATIVE_INT32);
    case MIXL_H5_U32: return H5Tcopy(file ? H5T_STD_U32LE : H5T_NATIVE_UINT32);
    case MIXL_H5_I64: return H5Tcopy(file ? H5T_STD_I64LE : H5T_NATIVE_INT64);
    case MIXL_H5_STR:
    default:
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, m->size > 0 ? m->size : 1);
        H5Tset_strpad(t, H5T_STR_NULLTERM);
        return t;
    }
}

mixl_status_t mixl_h5_table(mixl_h5_t *h, const char *path, const mixl_h5_member_t *members,
                            size_t nmembers, size_t row_size, const void *rows, size_t n)
{
    size_t fsize = 0;
    herr_t rc = 0;
    for (size_t i = 0; i < nmembers; i++) {
        hid_t t = member_type(&members[i], 1);
        fsize += H5Tget_size(t);
        H5Tclose(t);
    }
    hid_t mt = H5Tcreate(H5T_COMPOUND, row_size);
    hid_t ft = H5Tcreate(H5T_COMPOUND, fsize > 0 ? fsize : 1);
    if (mt < 0 || ft < 0) rc = -1;
    for (size_t i = 0, off = 0; i < nmembers && rc >= 0; i++) {
        hid_t a = member_type(&members[i], 0), b = member_type(&members[i], 1);
        rc = H5Tinsert(mt, members[i].name, members[i].offset, a);
        if (rc >= 0) rc = H5Tinsert(ft, members[i].name, off, b);
        off += H5Tget_size(b);
        H5Tclose(a);
        H5Tclose(b);
    }
    if (rc >= 0) {
        hsize_t dims[1] = {n};
        hid_t s = H5Screate_simple(1, dims, NULL);
        hid_t d = H5Dcreate2(h->file, path, ft, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc = d < 0 ? -1 : (n > 0 ? H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) : 0);
        if (d >= 0) H5Dclose(d);
        H5Sclose(s);
    }
    if (mt >= 0) H5Tclose(mt);
    if (ft >= 0) H5Tclose(ft);
    if (rc < 0) return h5_fail(h, "cannot write table %s", path);
    return MIXL_OK;
}

mixl_status_t mixl_h5_flush(mixl_h5_t *h)
{
    if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0)
        return h5_fail(h, "%s", "flushing the HDF5 file failed (file system full?)");
    return MIXL_OK;
}

mixl_status_t mixl_h5_error(const mixl_h5_t *h, char *err, size_t err_len)
{
    if (h->status != MIXL_OK) snprintf(err, err_len, "%s", h->err);
    return h->status;
}

const char *mixl_h5_library_version(void)
{
    static char buf[32];
    unsigned maj, min, rel;
    if (buf[0] == '\0' && H5get_libversion(&maj, &min, &rel) >= 0)
        snprintf(buf, sizeof(buf), "%u.%u.%u", maj, min, rel);
    return buf;
}
