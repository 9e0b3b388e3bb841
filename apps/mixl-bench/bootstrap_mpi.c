/*
 * The MPI bootstrap: the rendezvous is MPI_COMM_WORLD (duplicated so the
 * benchmark's collectives never mix with the library's). Collectives are
 * the non-blocking forms polled against a deadline, so a rank that died
 * ends the run with MIXL_ERR_TIMED_OUT instead of a hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bootstrap.h"
#include "util/clock.h"
#include "util/log.h"

typedef struct {
    MPI_Comm comm;
    int rank, size;
    int timeout_ms;
} boot_mpi_t;

static mixl_status_t boot_mpi_init(int timeout_ms, void **state_p)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        mixl_error("bootstrap mpi: MPI is not initialized");
        return MIXL_ERR_BAD_STATE;
    }
    boot_mpi_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return MIXL_ERR_NO_MEMORY;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &s->comm) != MPI_SUCCESS) {
        free(s);
        mixl_error("bootstrap mpi: MPI_Comm_dup of MPI_COMM_WORLD failed");
        return MIXL_ERR_BACKEND;
    }
    MPI_Comm_rank(s->comm, &s->rank);
    MPI_Comm_size(s->comm, &s->size);
    s->timeout_ms = timeout_ms;
    *state_p = s;
    return MIXL_OK;
}

static void boot_mpi_fini(void *state)
{
    boot_mpi_t *s = state;
    if (s == NULL) return;
    MPI_Comm_free(&s->comm);
    free(s);
}

static int boot_mpi_rank(void *state) { return ((boot_mpi_t *)state)->rank; }
static int boot_mpi_size(void *state) { return ((boot_mpi_t *)state)->size; }
static MPI_Comm boot_mpi_comm(void *state) { return ((boot_mpi_t *)state)->comm; }

static mixl_status_t wait_req(boot_mpi_t *s, MPI_Request *req, const char *what, int idle)
{
    struct timespec nap = {0, 1000000};
    uint64_t deadline = mixl_deadline_ns(s->timeout_ms);
    int done = 0;
    while (!done) {
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            mixl_error("bootstrap mpi: %s on rank %d failed", what, s->rank);
            return MIXL_ERR_BACKEND;
        }
        if (!done && idle) nanosleep(&nap, NULL);
        if (!done && mixl_now_ns() > deadline) {
            /* The request cannot be freed safely while a peer is missing; the run ends. */
            mixl_error("bootstrap mpi: %s on rank %d: not every rank arrived within %d ms", what,
                       s->rank, s->timeout_ms);
            return MIXL_ERR_TIMED_OUT;
        }
    }
    return MIXL_OK;
}

static mixl_status_t boot_mpi_barrier(void *state)
{
    boot_mpi_t *s = state;
    MPI_Request req;
    if (MPI_Ibarrier(s->comm, &req) != MPI_SUCCESS) return MIXL_ERR_BACKEND;
    return wait_req(s, &req, "barrier", 0);
}

static mixl_status_t boot_mpi_barrier_idle(void *state)
{
    boot_mpi_t *s = state;
    MPI_Request req;
    if (MPI_Ibarrier(s->comm, &req) != MPI_SUCCESS) return MIXL_ERR_BACKEND;
    return wait_req(s, &req, "barrier", 1);
}

static mixl_status_t boot_mpi_exchange(void *state, const void *send, size_t len, void *recv)
{
    boot_mpi_t *s = state;
    MPI_Request req;
    if (len > INT32_MAX) {
        mixl_error("bootstrap mpi: exchange of %zu bytes is larger than MPI's int count", len);
        return MIXL_ERR_TOO_LARGE;
    }
    if (MPI_Iallgather(send, (int)len, MPI_BYTE, recv, (int)len, MPI_BYTE, s->comm, &req) !=
        MPI_SUCCESS)
        return MIXL_ERR_BACKEND;
    return wait_req(s, &req, "exchange", 0);
}

const bench_boot_ops_t bench_boot_mpi_ops = {
    .name = "mpi",
    .init = boot_mpi_init,
    .fini = boot_mpi_fini,
    .rank = boot_mpi_rank,
    .size = boot_mpi_size,
    .barrier = boot_mpi_barrier,
    .barrier_idle = boot_mpi_barrier_idle,
    .exchange = boot_mpi_exchange,
    .comm = boot_mpi_comm,
};
