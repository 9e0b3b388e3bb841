/*
 * slurm_probe: a small MPI program with mixl-run's command line
 * (`<config.yaml> -o <results.h5> [--role prefill|decode]`) that proves a
 * launch path end to end: every rank joins one MPI_COMM_WORLD, puts a value
 * into its neighbour's window with one-sided MPI (the path MIXL moves KV
 * blocks on), checks what arrived, and rank 0 writes one row per rank to an
 * HDF5 file with the HDF5 C API. The Slurm tests read that file back.
 *
 * HDF5 layout: /role (int32[n], 0 = prefill, 1 = decode), /rma_ok (int32[n]),
 * /slurm_procid (int32[n], -1 outside Slurm), /host (string[n]); attributes
 * on the root group: world_size, slurm_job_id, config.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>
#include <mpi.h>

#define PROBE_HOST_MAX 64

enum { ROLE_PREFILL = 0, ROLE_DECODE = 1 };

typedef struct {
    int32_t role;
    int32_t rma_ok;
    int32_t slurm_procid;
    char host[PROBE_HOST_MAX];
} probe_row_t;

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s <config.yaml> -o <results.h5> [--role prefill|decode]\n", prog);
    return 2;
}

/* Each rank puts (rank + 1) * 1000003 into the next rank's window and checks
 * the value its predecessor put into its own: 1 when it matches. */
static int rma_ring_check(int rank, int size)
{
    int64_t *base = NULL;
    MPI_Win win;
    int ok = 0;

    if (MPI_Win_allocate(sizeof(int64_t), sizeof(int64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &base,
                         &win) != MPI_SUCCESS) {
        fprintf(stderr, "slurm_probe: rank %d: MPI_Win_allocate failed\n", rank);
        return 0;
    }
    *base = -1;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    int64_t value = (int64_t)(rank + 1) * 1000003;
    int next = (rank + 1) % size;
    MPI_Put(&value, 1, MPI_INT64_T, next, 0, 1, MPI_INT64_T, win);
    MPI_Win_flush(next, win);
    MPI_Win_unlock_all(win);
    /* After everyone's flush the puts are complete at their targets. */
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_lock(MPI_LOCK_SHARED, rank, 0, win);
    int prev = (rank + size - 1) % size;
    ok = (*base == (int64_t)(prev + 1) * 1000003);
    MPI_Win_unlock(rank, win);
    if (!ok)
        fprintf(stderr, "slurm_probe: rank %d: window holds %lld, expected %lld\n", rank,
                (long long)*base, (long long)(prev + 1) * 1000003);
    MPI_Win_free(&win);
    return ok;
}

static int write_int_dataset(hid_t file, const char *name, const int32_t *v, hsize_t n)
{
    hid_t space = H5Screate_simple(1, &n, NULL);
    hid_t dset = H5Dcreate2(file, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT);
    herr_t rc = dset < 0 ? -1 : H5Dwrite(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (dset >= 0)
        H5Dclose(dset);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

static int write_str_attr(hid_t obj, const char *name, const char *value)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(value) + 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = attr < 0 ? -1 : H5Awrite(attr, type, value);
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return rc < 0 ? -1 : 0;
}

static int write_results(const char *path, const char *config, const probe_row_t *rows, int n)
{
    hsize_t count = (hsize_t)n;
    int32_t *col = malloc(sizeof(*col) * (size_t)n);
    char *hosts = malloc((size_t)n * PROBE_HOST_MAX);
    int rc = -1;

    if (!col || !hosts)
        goto out;
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        fprintf(stderr, "slurm_probe: %s: cannot create HDF5 file\n", path);
        goto out;
    }
    rc = 0;
    for (int i = 0; i < n; i++)
        col[i] = rows[i].role;
    rc |= write_int_dataset(file, "/role", col, count);
    for (int i = 0; i < n; i++)
        col[i] = rows[i].rma_ok;
    rc |= write_int_dataset(file, "/rma_ok", col, count);
    for (int i = 0; i < n; i++)
        col[i] = rows[i].slurm_procid;
    rc |= write_int_dataset(file, "/slurm_procid", col, count);

    hid_t stype = H5Tcopy(H5T_C_S1);
    H5Tset_size(stype, PROBE_HOST_MAX);
    hid_t space = H5Screate_simple(1, &count, NULL);
    hid_t dset = H5Dcreate2(file, "/host", stype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int i = 0; i < n; i++)
        memcpy(hosts + (size_t)i * PROBE_HOST_MAX, rows[i].host, PROBE_HOST_MAX);
    if (dset < 0 || H5Dwrite(dset, stype, H5S_ALL, H5S_ALL, H5P_DEFAULT, hosts) < 0)
        rc = -1;
    if (dset >= 0)
        H5Dclose(dset);
    H5Sclose(space);
    H5Tclose(stype);

    hid_t aspace = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, "world_size", H5T_STD_I32LE, aspace, H5P_DEFAULT, H5P_DEFAULT);
    int32_t ws = n;
    if (attr < 0 || H5Awrite(attr, H5T_NATIVE_INT32, &ws) < 0)
        rc = -1;
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(aspace);
    const char *job = getenv("SLURM_JOB_ID");
    rc |= write_str_attr(file, "slurm_job_id", job ? job : "none");
    rc |= write_str_attr(file, "config", config);
    if (H5Fclose(file) < 0)
        rc = -1;
    if (rc)
        fprintf(stderr, "slurm_probe: %s: writing results failed\n", path);
out:
    free(hosts);
    free(col);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *out = NULL, *role_arg = NULL;
    int rank, size;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--role") && i + 1 < argc)
            role_arg = argv[++i];
        else if (argv[i][0] != '-' && !config)
            config = argv[i];
        else
            return usage(argv[0]);
    }
    if (!config || !out)
        return usage(argv[0]);

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    probe_row_t me;
    memset(&me, 0, sizeof(me));
    if (role_arg && !strcmp(role_arg, "prefill"))
        me.role = ROLE_PREFILL;
    else if (role_arg && !strcmp(role_arg, "decode"))
        me.role = ROLE_DECODE;
    else if (role_arg) {
        fprintf(stderr, "slurm_probe: rank %d: unknown role '%s'\n", rank, role_arg);
        MPI_Abort(MPI_COMM_WORLD, 2);
    } else {
        /* No role given: the first half prefills, as mixl-run does by default. */
        me.role = rank < (size + 1) / 2 ? ROLE_PREFILL : ROLE_DECODE;
    }
    const char *procid = getenv("SLURM_PROCID");
    me.slurm_procid = procid ? atoi(procid) : -1;
    gethostname(me.host, sizeof(me.host) - 1);
    me.rma_ok = size > 1 ? rma_ring_check(rank, size) : 1;

    probe_row_t *rows = rank == 0 ? calloc((size_t)size, sizeof(*rows)) : NULL;
    MPI_Gather(&me, (int)sizeof(me), MPI_BYTE, rows, (int)sizeof(me), MPI_BYTE, 0,
               MPI_COMM_WORLD);
    int rc = 0;
    if (rank == 0) {
        rc = write_results(out, config, rows, size) ? 1 : 0;
        int all_ok = 1;
        for (int i = 0; i < size; i++)
            all_ok &= rows[i].rma_ok;
        printf("slurm_probe: %d ranks, rma %s, results in %s\n", size, all_ok ? "ok" : "FAILED",
               out);
        if (!all_ok)
            rc = 1;
        free(rows);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
