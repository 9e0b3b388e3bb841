/*
 * Transport self-test over raw MPI one-sided operations, the path MIXL's
 * MPI backend moves KV blocks on: rank 0 drives, rank 1 is the passive
 * target, other ranks wait. Measured the way osu_put_latency/osu_put_bw do
 * with -w allocate -s flush: one MPI_Win_allocate window, one lock_all
 * epoch, latency = 8-byte put (get) + MPI_Win_flush per iteration, bandwidth
 * = 16 one-MiB puts (gets) per flush. Each loop stops at its time budget so
 * the whole test takes a few seconds even on a slow TCP path. A 1 MiB
 * pattern is put and read back to check the data, not just the timing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

#define LAT_BYTES 8
#define LAT_MAX_ITERS 10000
#define LAT_WARMUP 100
#define BW_BYTES (1 << 20)
#define BW_WINDOW 16 /* operations per flush, as OMB's -W default order of magnitude */
#define BW_MAX_ROUNDS 64
#define WIN_BYTES ((size_t)BW_BYTES * BW_WINDOW)

typedef enum { OP_PUT, OP_GET } op_t;

static void issue(op_t op, void *buf, int count, int target, MPI_Aint disp, MPI_Win win)
{
    if (op == OP_PUT)
        MPI_Put(buf, count, MPI_BYTE, target, disp, count, MPI_BYTE, win);
    else
        MPI_Get(buf, count, MPI_BYTE, target, disp, count, MPI_BYTE, win);
}

/* Microseconds per op + flush; 8-byte messages. */
static double latency_us(op_t op, char *buf, MPI_Win win, double budget)
{
    for (int i = 0; i < LAT_WARMUP; i++) {
        issue(op, buf, LAT_BYTES, 1, 0, win);
        MPI_Win_flush(1, win);
    }
    int iters = 0;
    double t0 = MPI_Wtime(), t = t0;
    while (iters < LAT_MAX_ITERS && t - t0 < budget) {
        for (int i = 0; i < 100; i++) {
            issue(op, buf, LAT_BYTES, 1, 0, win);
            MPI_Win_flush(1, win);
        }
        iters += 100;
        t = MPI_Wtime();
    }
    return (t - t0) * 1e6 / iters;
}

/* Gigabits per second (decimal) for BW_WINDOW ops of BW_BYTES per flush. */
static double bandwidth_gbit(op_t op, char *buf, MPI_Win win, double budget)
{
    for (int w = 0; w < BW_WINDOW; w++)
        issue(op, buf + (size_t)w * BW_BYTES, BW_BYTES, 1, (MPI_Aint)w * BW_BYTES, win);
    MPI_Win_flush(1, win);
    int rounds = 0;
    double t0 = MPI_Wtime(), t = t0;
    while (rounds < BW_MAX_ROUNDS && t - t0 < budget) {
        for (int w = 0; w < BW_WINDOW; w++)
            issue(op, buf + (size_t)w * BW_BYTES, BW_BYTES, 1, (MPI_Aint)w * BW_BYTES, win);
        MPI_Win_flush(1, win);
        rounds++;
        t = MPI_Wtime();
    }
    return (double)BW_BYTES * BW_WINDOW * rounds * 8.0 / (t - t0) / 1e9;
}

/* Put a pattern into rank 1, read it back, compare. */
static int data_check(char *buf, MPI_Win win)
{
    char *back = malloc(BW_BYTES);
    if (!back)
        return 0;
    for (size_t i = 0; i < BW_BYTES; i++)
        buf[i] = (char)(i * 131 + 7);
    memset(back, 0, BW_BYTES);
    MPI_Put(buf, BW_BYTES, MPI_BYTE, 1, 0, BW_BYTES, MPI_BYTE, win);
    MPI_Win_flush(1, win);
    MPI_Get(back, BW_BYTES, MPI_BYTE, 1, 0, BW_BYTES, MPI_BYTE, win);
    MPI_Win_flush(1, win);
    int ok = !memcmp(buf, back, BW_BYTES);
    free(back);
    return ok;
}

int mixl_diag_same_node_0_1(void)
{
    MPI_Comm node;
    int me, leader;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    leader = me;
    MPI_Bcast(&leader, 1, MPI_INT, 0, node);
    MPI_Comm_free(&node);
    int leaders[2] = {0, 0};
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int *all = malloc(sizeof(int) * (size_t)size);
    MPI_Allgather(&leader, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    leaders[0] = all[0];
    leaders[1] = all[1];
    free(all);
    return leaders[0] == leaders[1];
}

void mixl_diag_selftest_rma(mixl_diag_t *d)
{
    json_t *t = NULL;
    if (d->rank == 0) {
        json_t *arr = json_array();
        json_object_set_new(d->report, "selftest", arr);
        t = json_object();
        json_object_set_new(t, "path", json_string("mpi-rma"));
        json_array_append_new(arr, t);
    }
    if (d->size < 2) {
        json_object_set_new(t, "status", json_string("skipped"));
        json_object_set_new(t, "reason", json_string("one rank: run under mpirun/srun with 2+ ranks"));
        return;
    }
    int same = mixl_diag_same_node_0_1();

    /* A failed window creation is a finding, not an abort. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    char *base = NULL;
    MPI_Win win = MPI_WIN_NULL;
    int rc = MPI_Win_allocate((MPI_Aint)WIN_BYTES, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
    int ok = rc == MPI_SUCCESS, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    if (!all_ok) {
        if (d->rank == 0) {
            char err[MPI_MAX_ERROR_STRING] = "window creation failed on another rank";
            int len;
            if (rc != MPI_SUCCESS)
                MPI_Error_string(rc, err, &len);
            json_object_set_new(t, "status", json_string("failed"));
            json_object_set_new(t, "error", json_string(err));
        }
        if (ok)
            MPI_Win_free(&win);
        return;
    }

    if (d->rank == 0) {
        int *model = NULL, flag = 0;
        MPI_Win_get_attr(win, MPI_WIN_MODEL, &model, &flag);
        json_object_set_new(t, "peer_rank", json_integer(1));
        json_object_set_new(t, "same_node", json_boolean(same));
        json_object_set_new(t, "window_model",
                            json_string(!flag ? "unknown"
                                        : *model == MPI_WIN_UNIFIED ? "unified" : "separate"));
        char *buf = malloc(WIN_BYTES);
        if (!buf) {
            json_object_set_new(t, "status", json_string("failed"));
            json_object_set_new(t, "error", json_string("out of memory for the origin buffer"));
        } else {
            memset(buf, 1, WIN_BYTES);
            MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
            int data_ok = data_check(buf, win);
            double put_lat = latency_us(OP_PUT, buf, win, d->selftest_budget_s);
            double get_lat = latency_us(OP_GET, buf, win, d->selftest_budget_s);
            double put_bw = bandwidth_gbit(OP_PUT, buf, win, d->selftest_budget_s);
            double get_bw = bandwidth_gbit(OP_GET, buf, win, d->selftest_budget_s);
            MPI_Win_unlock_all(win);
            free(buf);
            json_object_set_new(t, "status", json_string(data_ok ? "ok" : "data mismatch"));
            json_object_set_new(t, "data_ok", json_boolean(data_ok));
            json_object_set_new(t, "put_latency_us", json_real(put_lat));
            json_object_set_new(t, "get_latency_us", json_real(get_lat));
            json_object_set_new(t, "put_bandwidth_gbit_s", json_real(put_bw));
            json_object_set_new(t, "get_bandwidth_gbit_s", json_real(get_bw));
            json_object_set_new(t, "latency_message_bytes", json_integer(LAT_BYTES));
            json_object_set_new(t, "bandwidth_message_bytes", json_integer(BW_BYTES));
        }
    }
    /* The target stays passive until rank 0 is done. */
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_free(&win);
}
