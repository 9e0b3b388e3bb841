/*
 * The HDF5 results writer of mixl-run and mixl-bench: groups, 1-D datasets
 * of numbers with a `units` attribute, extendable columns, tables (compound
 * datasets), and scalar string/number attributes, all in portable
 * little-endian file types so `h5dump` and h5py read them anywhere.
 * Serial HDF5: only one process (the router, bench rank 0) writes a file.
 */
#ifndef MIXL_METRICS_H5_H
#define MIXL_METRICS_H5_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

typedef struct mixl_h5 mixl_h5_t;

/* Create (truncate) path; parent folders are created. err names the file on failure. */
mixl_status_t mixl_h5_create(const char *path, mixl_h5_t **h5_p, char *err, size_t err_len);

/* Open an existing file for writing more into it (the points of a sweep). */
mixl_status_t mixl_h5_open(const char *path, mixl_h5_t **h5_p, char *err, size_t err_len);

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

/* Attributes on an existing object ("/" for the file); writing one again replaces it. */
mixl_status_t mixl_h5_attr_str(mixl_h5_t *h5, const char *obj, const char *name, const char *value);
mixl_status_t mixl_h5_attr_f64(mixl_h5_t *h5, const char *obj, const char *name, double value);
mixl_status_t mixl_h5_attr_u64(mixl_h5_t *h5, const char *obj, const char *name, uint64_t value);
/* A 1-D f64 attribute (histogram edges). */
mixl_status_t mixl_h5_attr_f64v(mixl_h5_t *h5, const char *obj, const char *name,
                                const double *values, size_t n);

/*
 * Columns: extendable, chunked 1-D datasets that grow as rows are put, for
 * results written while a run goes on. MIXL_H5_STR holds fixed strings of
 * MIXL_H5_STR_LEN bytes (NUL-padded; longer values are cut).
 */
typedef enum {
    MIXL_H5_F64,
    MIXL_H5_U64,
    MIXL_H5_I32,
    MIXL_H5_STR,
    MIXL_H5_U32,
    MIXL_H5_I64,
} mixl_h5_type_t;
#define MIXL_H5_STR_LEN 32

/* An empty column; units may be NULL. */
mixl_status_t mixl_h5_column(mixl_h5_t *h5, const char *path, mixl_h5_type_t type,
                             const char *units);
/* Write n rows from data (packed values of the column's type) at row offset, growing the column. */
mixl_status_t mixl_h5_column_put(mixl_h5_t *h5, const char *path, mixl_h5_type_t type,
                                 size_t offset, const void *data, size_t n);

/*
 * A table: one 1-D compound dataset of n rows (h5py reads it as a record
 * array, h5dump member by member). In memory the rows are n structs of
 * row_size bytes; each member names its field's type and offset (size:
 * the capacity of a MIXL_H5_STR field, which is NUL-terminated there and in
 * the file; MIXL_H5_U32 and MIXL_H5_I64 are for tables only). The file holds the members
 * packed, in their order, little-endian.
 */
typedef struct {
    const char *name;
    mixl_h5_type_t type;
    size_t offset;
    size_t size;
} mixl_h5_member_t;
mixl_status_t mixl_h5_table(mixl_h5_t *h5, const char *path, const mixl_h5_member_t *members,
                            size_t nmembers, size_t row_size, const void *rows, size_t n);

/* Push everything written so far to the file, so a process killed later leaves it readable. */
mixl_status_t mixl_h5_flush(mixl_h5_t *h5);

/* The first error so far (MIXL_OK when none); its message goes to err. */
mixl_status_t mixl_h5_error(const mixl_h5_t *h5, char *err, size_t err_len);

/* "1.10.8" */
const char *mixl_h5_library_version(void);

#endif /* MIXL_METRICS_H5_H */
