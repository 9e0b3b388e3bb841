/*
 * Transport self-test over raw MPI one-sided operations, the path MIXL's
 * MPI backend moves KV blocks on: rank 0 drives, rank 1 is the passive
 * target, other ranks wait. Measured the way osu_put_latency/osu_put_bw do
 * with -s flush, once on an MPI_Win_allocate window (OMB's -w allocate) and
 * once on an MPI_Win_create window over program memory (-w create, what
 * MIXL does with registered memory): one lock_all epoch, latency = 8-byte put (get) + MPI_Win_flush per iteration, bandwidth
 * = 16 one-MiB puts (gets) per flush. Each loop stops at its time budget so
 * the whole test takes a few seconds even on a slow TCP path. A 1 MiB
 * pattern is put and read back to check the data, not just the timing.
 *
 * Two more checks test what MIXL's notifications rely on:
 * - ordering: rank 0 puts 16 MiB + MPI_Win_flush into an MPI_Win_create
 *   window, then an 8-byte flag into an MPI_Win_allocate window + flush
 *   (MIXL's data-then-notification sequence on the same window kinds); rank 1
 *   waits for the flag (calling into MPI meanwhile) and then checks every
 *   byte. MPI_Win_flush promises the data is complete at the target first;
 *   a violation means a notification can arrive before its data.
 * - passive progress: the same flag put while rank 1 only reads its memory
 *   and never calls into MPI (as a poller of a notification ring does). When
 *   the MPI library emulates one-sided operations in software (osc/ucx over
 *   shared memory or TCP), the put lands only once the target enters MPI.
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

#define ORDER_ROUNDS_MAX 32
#define ORDER_WAIT_S 5.0
#define PASSIVE_WAIT_S 2.0

static unsigned char order_byte(size_t i, int round)
{
    return (unsigned char)(i * 131 + (size_t)round * 7 + 3);
}

/* Rank 1: wait for flag == want; with progress, call into MPI while waiting. */
static int wait_flag(volatile uint64_t *flag, MPI_Win fwin, uint64_t want, int progress,
                     double limit_s)
{
    double t0 = MPI_Wtime();
    for (;;) {
        if (progress) {
            int pending;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &pending, MPI_STATUS_IGNORE);
            MPI_Win_sync(fwin);
        }
        if (__atomic_load_n(flag, __ATOMIC_ACQUIRE) == want)
            return 1;
        if (MPI_Wtime() - t0 > limit_s)
            return 0;
    }
}

/*
 * Collective. The data window is created the way MIXL creates the windows of
 * registered memory (MPI_Win_create over memory the program allocated) and
 * the flag window the way it creates its notification window
 * (MPI_Win_allocate): transports treat the two kinds differently. Rank 0 and
 * 1 run rounds of data + flag until the budget is spent or a flag is lost;
 * the other ranks only follow the rounds. Results land in t on rank 0.
 */
static void ordering_check(mixl_diag_t *d, json_t *t)
{
    char *data = aligned_alloc(4096, WIN_BYTES);
    char *src = d->rank == 0 ? malloc(WIN_BYTES) : NULL;
    int ok = data != NULL && (d->rank != 0 || src != NULL);
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!ok) {
        if (d->rank == 0)
            json_object_set_new(t, "ordering_error", json_string("out of memory"));
        free(data);
        free(src);
        return;
    }
    memset(data, 0, WIN_BYTES);
    uint64_t *flag = NULL;
    MPI_Win dwin, fwin;
    MPI_Win_create(data, (MPI_Aint)WIN_BYTES, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &dwin);
    MPI_Win_allocate(64, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &flag, &fwin);
    __atomic_store_n(flag, 0, __ATOMIC_RELEASE);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, dwin);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, fwin);

    int rounds = 0, violations = 0, lost = 0, go = 1;
    double t0 = MPI_Wtime();
    while (go) {
        int round = rounds + 1;
        if (d->rank == 0) {
            for (size_t i = 0; i < WIN_BYTES; i++)
                src[i] = (char)order_byte(i, round);
            uint64_t f = (uint64_t)round;
            MPI_Put(src, (int)WIN_BYTES, MPI_BYTE, 1, 0, (int)WIN_BYTES, MPI_BYTE, dwin);
            MPI_Win_flush(1, dwin);
            MPI_Put(&f, 1, MPI_UINT64_T, 1, 0, 1, MPI_UINT64_T, fwin);
            MPI_Win_flush(1, fwin);
        } else if (d->rank == 1) {
            if (!wait_flag(flag, fwin, (uint64_t)round, 1, ORDER_WAIT_S)) {
                lost++;
            } else {
                MPI_Win_sync(dwin);
                for (size_t i = 0; i < WIN_BYTES; i++) {
                    if ((unsigned char)data[i] != order_byte(i, round)) {
                        violations++;
                        break;
                    }
                }
            }
        }
        rounds++;
        /* Another round while the budget lasts and no flag went missing. */
        go = rounds < ORDER_ROUNDS_MAX && MPI_Wtime() - t0 < d->selftest_budget_s && !lost;
        MPI_Allreduce(MPI_IN_PLACE, &go, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    }
    int counts[2] = {violations, lost};
    MPI_Bcast(counts, 2, MPI_INT, 1, MPI_COMM_WORLD);

    /* Passive progress: a put into the MPI_Win_create window while rank 1
     * reads its memory and makes no MPI call (bounded wait). */
    int passive_ok = 1;
    uint64_t marker = 0x6d69786c00000000ull + (uint64_t)rounds;
    if (d->rank == 0) {
        MPI_Put(&marker, 1, MPI_UINT64_T, 1, 0, 1, MPI_UINT64_T, dwin);
        MPI_Win_flush_local(1, dwin);
    } else if (d->rank == 1) {
        passive_ok = wait_flag((volatile uint64_t *)data, dwin, marker, 0, PASSIVE_WAIT_S);
    }
    MPI_Bcast(&passive_ok, 1, MPI_INT, 1, MPI_COMM_WORLD);
    /* Rank 1 is in MPI now: a put still pending completes. */
    if (d->rank == 0)
        MPI_Win_flush(1, dwin);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Win_unlock_all(fwin);
    MPI_Win_unlock_all(dwin);
    MPI_Win_free(&fwin);
    MPI_Win_free(&dwin);
    free(data);
    free(src);

    if (d->rank == 0) {
        json_object_set_new(t, "ordering_rounds", json_integer(rounds));
        json_object_set_new(t, "ordering_violations", json_integer(counts[0]));
        json_object_set_new(t, "ordering_flags_lost", json_integer(counts[1]));
        json_object_set_new(t, "passive_target_progress", json_boolean(passive_ok));
    }
}

typedef enum { WIN_ALLOCATE, WIN_CREATE } win_kind_t;

/*
 * Collective: latency, bandwidth and a data check on one window kind.
 * MPI_Win_allocate lets the library place the memory (shared segments, UCX
 * mapped memory); MPI_Win_create exposes memory the program allocated, which
 * is how MIXL exposes registered KV memory. Transports without RDMA hardware
 * may serve the two very differently, hence one entry each.
 */
static void measure_window(mixl_diag_t *d, win_kind_t kind, int same, json_t *arr)
{
    json_t *t = NULL;
    if (d->rank == 0) {
        t = json_object();
        json_object_set_new(t, "path", json_string("mpi-rma"));
        json_object_set_new(t, "window",
                            json_string(kind == WIN_ALLOCATE ? "MPI_Win_allocate" : "MPI_Win_create"));
        json_array_append_new(arr, t);
    }
    /* A failed window creation is a finding, not an abort. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    char *base = NULL, *own = NULL;
    MPI_Win win = MPI_WIN_NULL;
    int rc;
    if (kind == WIN_ALLOCATE) {
        rc = MPI_Win_allocate((MPI_Aint)WIN_BYTES, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &base, &win);
    } else {
        own = aligned_alloc(4096, WIN_BYTES);
        if (own)
            memset(own, 0, WIN_BYTES);
        /* Every rank must join the collective; a rank without memory exposes 0 bytes. */
        rc = MPI_Win_create(own, own ? (MPI_Aint)WIN_BYTES : 0, 1, MPI_INFO_NULL, MPI_COMM_WORLD,
                            &win);
        if (rc == MPI_SUCCESS && !own)
            rc = MPI_ERR_NO_MEM;
    }
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
        if (win != MPI_WIN_NULL)
            MPI_Win_free(&win);
        free(own);
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
    free(own);
    if (kind == WIN_CREATE)
        ordering_check(d, t);
}

void mixl_diag_selftest_rma(mixl_diag_t *d)
{
    json_t *arr = NULL;
    if (d->rank == 0) {
        arr = json_array();
        json_object_set_new(d->report, "selftest", arr);
    }
    if (d->size < 2) {
        json_t *t = json_object();
        json_object_set_new(t, "path", json_string("mpi-rma"));
        json_object_set_new(t, "status", json_string("skipped"));
        json_object_set_new(t, "reason", json_string("one rank: run under mpirun/srun with 2+ ranks"));
        json_array_append_new(arr, t);
        return;
    }
    int same = mixl_diag_same_node_0_1();
    measure_window(d, WIN_ALLOCATE, same, arr);
    measure_window(d, WIN_CREATE, same, arr);
}
