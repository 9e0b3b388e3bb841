/*
 * mixl_mem_alloc_mpi() / mixl_mem_free_mpi() under mpirun (3 ranks):
 * different sizes per rank (0 included) come back page-aligned, zeroed and
 * writable; a rank that cannot allocate makes every rank fail alike with a
 * message naming it, and nothing is left allocated; sub-communicators and
 * out-of-order frees work; bad arguments get their own status.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/mixl.h>

static int rank, nranks, failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "rank %d: %s:%d: ", rank, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static int all_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0) return 0;
    return 1;
}

static void sizes_per_rank(void)
{
    size_t len = rank == 0 ? 0 : (size_t)rank * 100003; /* 0, then odd sizes */
    unsigned char *p = NULL;
    mixl_status_t st = mixl_mem_alloc_mpi(MPI_COMM_WORLD, len, (void **)&p);
    CHECK(st == MIXL_OK && p != NULL, "alloc of %zu bytes: %s: %s", len, mixl_status_name(st), mixl_last_error());
    if (p == NULL) return;
    size_t usable = len < 4096 ? 4096 : (len + 4095) & ~(size_t)4095;
    CHECK(((uintptr_t)p & 4095) == 0, "%p is not page-aligned", (void *)p);
    CHECK(all_zero(p, usable), "memory of %zu bytes is not zeroed", usable);
    memset(p, 0xa5, usable);
    CHECK(mixl_mem_free_mpi(p) == MIXL_OK, "free");
}

static void one_rank_fails(void)
{
    void *p = (void *)1;
    /* Rank 1 asks for more than any process can address; the others for a page. */
    size_t len = rank == 1 ? SIZE_MAX - 16 : 4096;
    mixl_status_t st = mixl_mem_alloc_mpi(MPI_COMM_WORLD, len, &p);
    CHECK(st == MIXL_ERR_BACKEND, "expected MIXL_ERR_BACKEND on every rank, got %s", mixl_status_name(st));
    CHECK(p == NULL, "failed allocation left a pointer");
    CHECK(strstr(mixl_last_error(), "rank 1 of") != NULL, "message does not name rank 1: '%s'", mixl_last_error());
    if (rank == 0) printf("one rank failing: %s\n", mixl_last_error());

    /* Nothing is stuck: the next collective allocation works everywhere. */
    st = mixl_mem_alloc_mpi(MPI_COMM_WORLD, 8192, &p);
    CHECK(st == MIXL_OK, "allocation after a failed one: %s: %s", mixl_status_name(st), mixl_last_error());
    if (st == MIXL_OK) CHECK(mixl_mem_free_mpi(p) == MIXL_OK, "free");
}

static void subcomm_and_order(void)
{
    MPI_Comm half;
    void *a = NULL, *b = NULL;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
    CHECK(mixl_mem_alloc_mpi(half, 1 << 20, &a) == MIXL_OK, "sub-communicator: %s", mixl_last_error());
    CHECK(mixl_mem_alloc_mpi(MPI_COMM_WORLD, 3 << 20, &b) == MIXL_OK, "world: %s", mixl_last_error());
    CHECK(a != b, "two allocations share a pointer");
    /* Freed in the opposite order, the first over the world, then the halves. */
    if (b != NULL) CHECK(mixl_mem_free_mpi(b) == MIXL_OK, "free world block");
    if (a != NULL) CHECK(mixl_mem_free_mpi(a) == MIXL_OK, "free half block");
    MPI_Comm_free(&half);
}

static void bad_arguments(void)
{
    char local[16];
    void *p;
    CHECK(mixl_mem_alloc_mpi(MPI_COMM_NULL, 4096, &p) == MIXL_ERR_INVALID_PARAM,
          "MPI_COMM_NULL accepted");
    CHECK(strstr(mixl_last_error(), "MPI_COMM_NULL") != NULL, "message: '%s'", mixl_last_error());
    CHECK(mixl_mem_alloc_mpi(MPI_COMM_WORLD, 4096, NULL) == MIXL_ERR_INVALID_PARAM,
          "NULL result pointer accepted");
    CHECK(mixl_mem_free_mpi(NULL) == MIXL_ERR_INVALID_PARAM, "free(NULL)");
    CHECK(mixl_mem_free_mpi(local) == MIXL_ERR_NOT_FOUND, "free of memory it did not allocate");
}

int main(int argc, char **argv)
{
    int provided, all = 0;
    if (mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MIXL_OK) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    sizes_per_rank();
    if (nranks >= 2) one_rank_fails();
    subcomm_and_order();
    bad_arguments();
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("mem_alloc_mpi: %s (%d failures)\n", all ? "FAILED" : "passed", all);
    MPI_Finalize();
    return all ? 1 : 0;
}
