/*
 * Result writers: a table on stdout, CSV, JSON (jansson) and HDF5 (the
 * HDF5 C API). One field table describes a row's columns; the CSV, JSON
 * and HDF5 writers are all driven by it, so the formats cannot drift apart.
 */
#ifndef MIXL_BENCH_OUTPUT_H
#define MIXL_BENCH_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include "bench.h"

typedef enum { BENCH_F_STR, BENCH_F_U64, BENCH_F_U32, BENCH_F_F64 } bench_ftype_t;

typedef struct {
    const char *name; /* column / key / compound member name */
    bench_ftype_t type;
    size_t offset;    /* in bench_row_t */
    size_t size;      /* bytes (string capacity for BENCH_F_STR) */
    const char *doc;
} bench_field_t;

/* The columns of a row, in output order; terminated by a NULL name. */
extern const bench_field_t bench_fields[];

/* What the run was, written beside the rows. */
typedef struct {
    char host[64];
    char cpu[128];
    int ncpu;
    char mpi[256];   /* MPI_Get_library_version, first line */
    int ranks;
    char date[32];   /* UTC, ISO 8601 */
    char cmdline[1024];
    char path[896];  /* the agents' data-path reports (one per backend) and the TCP listen address */
} bench_meta_t;

void bench_write_table(FILE *out, const bench_results_t *res);
/* The performance targets, each with the ratio this run measured and whether it was met. */
void bench_write_targets(FILE *out, const bench_results_t *res);
/* The writers return MIXL_ERR_IO with a message on stderr naming the file when it cannot be written. */
mixl_status_t bench_write_csv(const char *path, const bench_results_t *res);
mixl_status_t bench_write_json(const char *path, const bench_meta_t *meta, const bench_results_t *res);
mixl_status_t bench_write_hdf5(const char *path, const bench_meta_t *meta, const bench_results_t *res);

#endif /* MIXL_BENCH_OUTPUT_H */
