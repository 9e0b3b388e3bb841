/*
 * MPI fault injection for tests: a PMPI interposition library, loaded with
 * LD_PRELOAD (mpirun -x LD_PRELOAD=libmixl_mpi_fault.so) or linked into a
 * test program ahead of libmpi. Configured by environment:
 *
 *   MIXL_FAULT_FUNC      MPI function to fail or delay ("MPI_Win_lock_all")
 *   MIXL_FAULT_RANK      rank in MPI_COMM_WORLD that sees the fault, or "all" (default)
 *   MIXL_FAULT_CALL      which call of that function on that rank, from 1 (default 1)
 *   MIXL_FAULT_ERROR     MPI error class returned: MPI_ERR_OTHER (default), MPI_ERR_NO_MEM,
 *                        MPI_ERR_WIN, MPI_ERR_COMM, MPI_ERR_INTERN, MPI_ERR_RMA_SYNC, or a number
 *   MIXL_FAULT_DELAY_MS  instead of an error: sleep this long, then make the call normally
 *   MIXL_FAULT_MODE      "corrupt" (MPI_Put of at most 4096 bytes): instead of an error, the
 *                        put is made with the byte a quarter into it flipped (in a 64-byte
 *                        notification slot: the first payload byte), as a torn write leaves it
 *   MIXL_FAULT_PHASE     set by the program under test; printed with each injection
 *   MIXL_FAULT_REPORT    file prefix: at MPI_Finalize each rank writes "<function> <calls>"
 *                        lines to <prefix>.<rank>, so a driver can enumerate every call
 *
 * A local (non-collective) call that fails is not made at all. A collective
 * call is always made, so no other rank waits in it for ever, and the
 * injected rank then gets the error; an object it created (window,
 * communicator) stays in the output handle, as MPI leaves it when a call
 * fails after its collective part. Every injection is announced on stderr as
 * "mixl-fault: rank R: <function> call N: ..." so a test can check that its
 * fault ran.
 */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FAULT_FUNCS(X)                    \
    X(MPI_Comm_dup, 1)                    \
    X(MPI_Comm_free, 1)                   \
    X(MPI_Allreduce, 1)                   \
    X(MPI_Allgather, 1)                   \
    X(MPI_Bcast, 1)                       \
    X(MPI_Barrier, 1)                     \
    X(MPI_Win_create, 1)                  \
    X(MPI_Win_allocate, 1)                \
    X(MPI_Win_create_dynamic, 1)          \
    X(MPI_Win_free, 1)                    \
    X(MPI_Win_lock_all, 0)                \
    X(MPI_Win_unlock_all, 0)              \
    X(MPI_Win_attach, 0)                  \
    X(MPI_Win_flush, 0)                   \
    X(MPI_Put, 0)                         \
    X(MPI_Get, 0)                         \
    X(MPI_Isend, 0)                       \
    X(MPI_Test, 0)

enum {
#define FAULT_ENUM_(name, coll) F_##name,
    FAULT_FUNCS(FAULT_ENUM_)
#undef FAULT_ENUM_
    F_COUNT
};

static const struct {
    const char *name;
    int collective;
} funcs[F_COUNT] = {
#define FAULT_ROW_(name, coll) {#name, coll},
    FAULT_FUNCS(FAULT_ROW_)
#undef FAULT_ROW_
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static struct {
    int func;     /* index into funcs, -1 for none */
    int rank;     /* -1 = every rank */
    long call;
    int error;
    long delay_ms;
    int corrupt;
    const char *report;
    long calls[F_COUNT];
} cfg;

static int parse_error(const char *s)
{
    static const struct {
        const char *name;
        int code;
    } names[] = {
        {"MPI_ERR_OTHER", MPI_ERR_OTHER}, {"MPI_ERR_NO_MEM", MPI_ERR_NO_MEM},
        {"MPI_ERR_WIN", MPI_ERR_WIN},     {"MPI_ERR_COMM", MPI_ERR_COMM},
        {"MPI_ERR_INTERN", MPI_ERR_INTERN}, {"MPI_ERR_RMA_SYNC", MPI_ERR_RMA_SYNC},
    };
    if (s == NULL || *s == '\0') return MPI_ERR_OTHER;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) return names[i].code;
    return atoi(s) > 0 ? atoi(s) : MPI_ERR_OTHER;
}

static void load(void)
{
    const char *f = getenv("MIXL_FAULT_FUNC"), *r = getenv("MIXL_FAULT_RANK");
    const char *c = getenv("MIXL_FAULT_CALL"), *d = getenv("MIXL_FAULT_DELAY_MS");

    cfg.func = -1;
    if (f != NULL && *f != '\0') {
        for (int i = 0; i < F_COUNT; i++)
            if (strcmp(f, funcs[i].name) == 0) cfg.func = i;
        if (cfg.func < 0) {
            /* A typo would make every test pass without a fault: refuse it. */
            fprintf(stderr, "mixl-fault: MIXL_FAULT_FUNC=%s is not an interposed function\n", f);
            PMPI_Abort(MPI_COMM_WORLD, 99);
        }
    }
    cfg.rank = r == NULL || *r == '\0' || strcmp(r, "all") == 0 ? -1 : atoi(r);
    cfg.call = c != NULL && atol(c) > 0 ? atol(c) : 1;
    cfg.error = parse_error(getenv("MIXL_FAULT_ERROR"));
    cfg.delay_ms = d != NULL ? atol(d) : 0;
    cfg.report = getenv("MIXL_FAULT_REPORT");
    cfg.corrupt = getenv("MIXL_FAULT_MODE") != NULL && strcmp(getenv("MIXL_FAULT_MODE"), "corrupt") == 0;
}

static int world_rank(void)
{
    int rank = -1;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

/* What the program under test says it is doing (it sets MIXL_FAULT_PHASE), for the reports. */
static const char *phase(void)
{
    const char *p = getenv("MIXL_FAULT_PHASE");
    return p != NULL && *p != '\0' ? p : "?";
}

/* Counts the call; 1 when this call must fail (after a delay has been served, 0). */
static int hit(int f)
{
    long n;
    int rank;

    pthread_once(&load_once, load);
    n = __atomic_add_fetch(&cfg.calls[f], 1, __ATOMIC_RELAXED);
    if (cfg.func != f || n != cfg.call) return 0;
    rank = world_rank();
    if (cfg.rank >= 0 && rank != cfg.rank) return 0;
    if (cfg.delay_ms > 0) {
        struct timespec ts = {cfg.delay_ms / 1000, (cfg.delay_ms % 1000) * 1000000L};
        fprintf(stderr, "mixl-fault: rank %d: %s call %ld (phase %s): delayed %ld ms\n", rank,
                funcs[f].name, n, phase(), cfg.delay_ms);
        nanosleep(&ts, NULL);
        return 0;
    }
    fprintf(stderr, "mixl-fault: rank %d: %s call %ld (phase %s): returns error %d%s\n", rank,
            funcs[f].name, n, phase(), cfg.error,
            funcs[f].collective ? " after the collective" : " (not made)");
    return 1;
}

/* Local call: fail instead of making it. */
#define LOCAL(f, call)                       \
    do {                                     \
        if (hit(F_##f)) return cfg.error;    \
        return call;                         \
    } while (0)

/* Collective call: always made; the error replaces its result. */
#define COLLECTIVE(f, call)                  \
    do {                                     \
        int fail_ = hit(F_##f);              \
        int rc_ = call;                      \
        return fail_ ? cfg.error : rc_;      \
    } while (0)

int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm)
{
    COLLECTIVE(MPI_Comm_dup, PMPI_Comm_dup(comm, newcomm));
}

int MPI_Comm_free(MPI_Comm *comm)
{
    COLLECTIVE(MPI_Comm_free, PMPI_Comm_free(comm));
}

int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype datatype, MPI_Op op,
                  MPI_Comm comm)
{
    COLLECTIVE(MPI_Allreduce, PMPI_Allreduce(sendbuf, recvbuf, count, datatype, op, comm));
}

int MPI_Allgather(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf,
                  int recvcount, MPI_Datatype recvtype, MPI_Comm comm)
{
    COLLECTIVE(MPI_Allgather,
               PMPI_Allgather(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm));
}

int MPI_Bcast(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm)
{
    COLLECTIVE(MPI_Bcast, PMPI_Bcast(buffer, count, datatype, root, comm));
}

int MPI_Barrier(MPI_Comm comm)
{
    COLLECTIVE(MPI_Barrier, PMPI_Barrier(comm));
}

int MPI_Win_create(void *base, MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm,
                   MPI_Win *win)
{
    COLLECTIVE(MPI_Win_create, PMPI_Win_create(base, size, disp_unit, info, comm, win));
}

int MPI_Win_allocate(MPI_Aint size, int disp_unit, MPI_Info info, MPI_Comm comm, void *baseptr,
                     MPI_Win *win)
{
    COLLECTIVE(MPI_Win_allocate, PMPI_Win_allocate(size, disp_unit, info, comm, baseptr, win));
}

int MPI_Win_create_dynamic(MPI_Info info, MPI_Comm comm, MPI_Win *win)
{
    COLLECTIVE(MPI_Win_create_dynamic, PMPI_Win_create_dynamic(info, comm, win));
}

int MPI_Win_free(MPI_Win *win)
{
    COLLECTIVE(MPI_Win_free, PMPI_Win_free(win));
}

int MPI_Win_lock_all(int assert, MPI_Win win)
{
    LOCAL(MPI_Win_lock_all, PMPI_Win_lock_all(assert, win));
}

int MPI_Win_unlock_all(MPI_Win win)
{
    LOCAL(MPI_Win_unlock_all, PMPI_Win_unlock_all(win));
}

int MPI_Win_attach(MPI_Win win, void *base, MPI_Aint size)
{
    LOCAL(MPI_Win_attach, PMPI_Win_attach(win, base, size));
}

int MPI_Win_flush(int rank, MPI_Win win)
{
    LOCAL(MPI_Win_flush, PMPI_Win_flush(rank, win));
}

int MPI_Put(const void *origin_addr, int origin_count, MPI_Datatype origin_datatype,
            int target_rank, MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype,
            MPI_Win win)
{
    if (cfg.corrupt && origin_datatype == MPI_BYTE && origin_count > 0 && origin_count <= 4096) {
        pthread_once(&load_once, load);
        long n = __atomic_load_n(&cfg.calls[F_MPI_Put], __ATOMIC_RELAXED) + 1;
        int rank = world_rank();
        if (cfg.func == F_MPI_Put && n == cfg.call && (cfg.rank < 0 || cfg.rank == rank)) {
            unsigned char copy[4096];
            __atomic_add_fetch(&cfg.calls[F_MPI_Put], 1, __ATOMIC_RELAXED);
            memcpy(copy, origin_addr, (size_t)origin_count);
            copy[origin_count / 4] ^= 0xff;
            fprintf(stderr, "mixl-fault: rank %d: MPI_Put call %ld (phase %s): %d bytes put with "
                    "byte %d flipped\n", rank, n, phase(), origin_count, origin_count / 4);
            /* The origin buffer must outlive the put: complete it before returning. */
            int rc = PMPI_Put(copy, origin_count, origin_datatype, target_rank, target_disp,
                              target_count, target_datatype, win);
            if (rc == MPI_SUCCESS) rc = PMPI_Win_flush(target_rank, win);
            return rc;
        }
    }
    LOCAL(MPI_Put, PMPI_Put(origin_addr, origin_count, origin_datatype, target_rank, target_disp,
                            target_count, target_datatype, win));
}

int MPI_Get(void *origin_addr, int origin_count, MPI_Datatype origin_datatype, int target_rank,
            MPI_Aint target_disp, int target_count, MPI_Datatype target_datatype, MPI_Win win)
{
    LOCAL(MPI_Get, PMPI_Get(origin_addr, origin_count, origin_datatype, target_rank, target_disp,
                            target_count, target_datatype, win));
}

int MPI_Isend(const void *buf, int count, MPI_Datatype datatype, int dest, int tag, MPI_Comm comm,
              MPI_Request *request)
{
    LOCAL(MPI_Isend, PMPI_Isend(buf, count, datatype, dest, tag, comm, request));
}

int MPI_Test(MPI_Request *request, int *flag, MPI_Status *status)
{
    LOCAL(MPI_Test, PMPI_Test(request, flag, status));
}

int MPI_Finalize(void)
{
    pthread_once(&load_once, load);
    if (cfg.report != NULL && *cfg.report != '\0') {
        char path[4096];
        FILE *f;
        snprintf(path, sizeof(path), "%s.%d", cfg.report, world_rank());
        f = fopen(path, "w");
        if (f != NULL) {
            for (int i = 0; i < F_COUNT; i++) fprintf(f, "%s %ld\n", funcs[i].name, cfg.calls[i]);
            fclose(f);
        }
    }
    return PMPI_Finalize();
}
