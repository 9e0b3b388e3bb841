/*
 * The bootstrap table: how the benchmark's ranks find each other (size,
 * rank, barrier, exchange). The benchmark code sees only this ops struct,
 * so the same code can run from mpirun, srun or another rendezvous; the
 * MPI implementation is the one built in.
 */
#ifndef MIXL_BENCH_BOOTSTRAP_H
#define MIXL_BENCH_BOOTSTRAP_H

#include <stddef.h>

#include <mpi.h>

#include <mixl/status.h>

typedef struct bench_boot bench_boot_t;

typedef struct {
    const char *name;
    /* Collective. Ready the rendezvous; *state_p is the implementation's state. */
    mixl_status_t (*init)(int timeout_ms, void **state_p);
    /* Collective. Release the state. */
    void (*fini)(void *state);
    int (*rank)(void *state);
    int (*size)(void *state);
    /*
     * Collective, blocks until every rank arrived or timeout: MIXL_ERR_TIMED_OUT.
     * The wait polls, which also drives MPI progress for one-sided traffic
     * that needs the target's help.
     */
    mixl_status_t (*barrier)(void *state);
    /* As barrier, but the wait sleeps between polls to leave the CPU to other processes. */
    mixl_status_t (*barrier_idle)(void *state);
    /*
     * Collective exchange: every rank contributes len bytes from send; recv
     * (size x len bytes, caller-owned) receives rank r's bytes at r x len.
     */
    mixl_status_t (*exchange)(void *state, const void *send, size_t len, void *recv);
    /* The communicator MIXL's MPI backend may use, or MPI_COMM_NULL when there is none. */
    MPI_Comm (*comm)(void *state);
} bench_boot_ops_t;

struct bench_boot {
    const bench_boot_ops_t *ops;
    void *state;
};

extern const bench_boot_ops_t bench_boot_mpi_ops;

static inline int bench_boot_rank(bench_boot_t *b) { return b->ops->rank(b->state); }
static inline int bench_boot_size(bench_boot_t *b) { return b->ops->size(b->state); }
static inline mixl_status_t bench_boot_barrier(bench_boot_t *b) { return b->ops->barrier(b->state); }
static inline mixl_status_t bench_boot_barrier_idle(bench_boot_t *b)
{
    return b->ops->barrier_idle(b->state);
}
static inline mixl_status_t bench_boot_exchange(bench_boot_t *b, const void *send, size_t len,
                                                void *recv)
{
    return b->ops->exchange(b->state, send, len, recv);
}

/*
 * Exchange variable-length blobs: *all_p (malloc'd, free it) holds size
 * slots of *stride_p bytes, slot r starting with rank r's length as a
 * uint64_t and followed by its bytes.
 */
mixl_status_t bench_boot_exchange_var(bench_boot_t *b, const void *send, size_t len, void **all_p,
                                      size_t *stride_p);

#endif /* MIXL_BENCH_BOOTSTRAP_H */
