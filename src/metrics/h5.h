/*
 * A small HDF5 results writer: groups, 1-D datasets of numbers with a
 * `units` attribute, and scalar string/number attributes, all in portable
 * little-endian file types so `h5dump` and h5py read them anywhere.
 * Serial HDF5: only one process (the router) writes a file.
 */
#ifndef MIXL_METRICS_H5_H
#define MIXL_METRICS_H5_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

typedef struct mixl_h5 mixl_h5_t;

/* Create (truncate) path; parent folders are created. err names the file on failure. */
mixl_status_t mixl_h5_create(const char *path, mixl_h5_t **h5_p, char *err, size_t err_len);

/* Close the file, flushing everything; returns the first error seen by any call, if any. */
mixl_status_t mixl_h5_close(mixl_h5_t *h5, char *err, size_t err_len);

/* Create a group ("/requests"); its parent must exist. */
mixl_status_t mixl_h5_group(mixl_h5_t *h5, const char *path);

/* 1-D datasets; units may be NULL. */
mixl_status_t mixl_h5_write_f64(mixl_h5_t *h5, const char *path, const double *data, size_t n,
                                const char *units);
mixl_status_t mixl_h5_write_u64(mixl_h5_t *h5, const char *path, const uint64_t *data, size_t n,
                                const char *units);
mixl_status_t mixl_h5_write_i32(mixl_h5_t *h5, const char *path, const int32_t *data, size_t n,
                                const char *units);

/* Attributes on an existing object ("/" for the file). */
mixl_status_t mixl_h5_attr_str(mixl_h5_t *h5, const char *obj, const char *name, const char *value);
mixl_status_t mixl_h5_attr_f64(mixl_h5_t *h5, const char *obj, const char *name, double value);
mixl_status_t mixl_h5_attr_u64(mixl_h5_t *h5, const char *obj, const char *name, uint64_t value);
/* A 1-D f64 attribute (histogram edges). */
mixl_status_t mixl_h5_attr_f64v(mixl_h5_t *h5, const char *obj, const char *name,
                                const double *values, size_t n);

/* "1.10.8" */
const char *mixl_h5_library_version(void);

#endif /* MIXL_METRICS_H5_H */
