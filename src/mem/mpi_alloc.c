/*
 * Host memory placed by MPI (see mixl_mem_alloc_mpi() in agent.h).
 *
 * Each allocation is one MPI_Win_allocate window among the node's ranks of
 * the caller's communicator, split from a private duplicate of it (errors
 * return instead of aborting, and the caller's communicator keeps its error
 * handler); the ranks agree on the outcome over the whole duplicate. The
 * window itself is never used for transfers: the agent exposes the memory
 * through its own window when it is registered. What it buys is placement
 * (peers on the node map it), so it does not span nodes: a window that did
 * would wire UCX endpoints to every rank there, which Open MPI 4.1 closes in
 * MPI_Finalize without a fence ("Endpoint timeout" over UCX's tcp transport).
 * A short list maps pointers back to their windows; it is touched only at
 * allocation and free, never on the transfer path.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/mem.h>

#include "util/errbuf.h"

#include "util/coll.h"

typedef struct mpi_block {
    struct mpi_block *next;
    void *ptr;
    MPI_Win win;
    MPI_Comm comm;
} mpi_block_t;

static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static mpi_block_t *blocks;

mixl_status_t mixl_mem_alloc_mpi(MPI_Comm comm, size_t len, void **ptr_p)
{
    char why[MPI_MAX_ERROR_STRING + 64] = "";
    int init = 0, fin = 0, n = 0, rank = 0;

    if (ptr_p == NULL || comm == MPI_COMM_NULL) {
        return mixl_thread_error_set(1, MIXL_ERR_INVALID_PARAM, "mixl_mem_alloc_mpi: %s",
                                     ptr_p == NULL ? "no result pointer" : "MPI_COMM_NULL");
    }
    *ptr_p = NULL;
    mixl_thread_error_clear();
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin)
        return mixl_thread_error_set(1, MIXL_ERR_INVALID_PARAM, "mixl_mem_alloc_mpi: MPI is %s",
                                     fin ? "finalized" : "not initialized");

    /* Whole pages, one at least: regions start page-aligned and a rank asking for 0 bytes
     * still gets a pointer of its own to free. */
    size_t bytes = len < 4096 ? 4096 : (len + 4095) & ~(size_t)4095;
    mpi_block_t *b = calloc(1, sizeof(*b));
    int ok = b != NULL;
    if (!ok) snprintf(why, sizeof(why), "out of memory");
    if (len > (size_t)PTRDIFF_MAX - 4096) {
        ok = 0;
        snprintf(why, sizeof(why), "%zu bytes is more than MPI can address", len);
    }

    MPI_Comm work = MPI_COMM_NULL;
    int rc = MPI_Comm_dup(comm, &work);
    if (!mixl_coll_check_created(comm, rc, work != MPI_COMM_NULL, "MPI_Comm_dup in mixl_mem_alloc_mpi")) {
        /* Refused on every rank alike (only seen when comm returns errors). */
        free(b);
        return mixl_thread_error_set(1, MIXL_ERR_BACKEND, "mixl_mem_alloc_mpi: MPI_Comm_dup failed");
    }
    if (rc != MPI_SUCCESS && ok) {
        ok = 0;
        snprintf(why, sizeof(why), "MPI_Comm_dup failed");
    }
    MPI_Comm_set_errhandler(work, MPI_ERRORS_RETURN);

    MPI_Comm node = MPI_COMM_NULL; /* inherits work's error handler */
    rc = MPI_Comm_split_type(work, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (!mixl_coll_check_created(work, rc, node != MPI_COMM_NULL,
                                 "MPI_Comm_split_type in mixl_mem_alloc_mpi")) {
        MPI_Comm_free(&work);
        free(b);
        return mixl_thread_error_set(1, MIXL_ERR_BACKEND, "mixl_mem_alloc_mpi: MPI_Comm_split_type failed");
    }

    /* A rank that cannot go on still takes part, with an empty window. */
    void *base = NULL;
    MPI_Win win = MPI_WIN_NULL;
    rc = MPI_Win_allocate(ok ? (MPI_Aint)bytes : 0, 1, MPI_INFO_NULL, node, &base, &win);
    /* A window MPI handed back is freed below with the others' whatever the call returned. */
    if (!mixl_coll_check_created(node, rc, win != MPI_WIN_NULL, "MPI_Win_allocate in mixl_mem_alloc_mpi"))
        win = MPI_WIN_NULL;
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int msglen = 0;
        MPI_Error_string(rc, msg, &msglen);
        if (ok) snprintf(why, sizeof(why), "MPI_Win_allocate of %zu bytes: %s", bytes, msg);
        ok = 0;
    }

    /* Every rank learns whether all succeeded (and which failed first), so none keeps memory
     * the others gave up. */
    MPI_Comm_rank(work, &rank);
    MPI_Comm_size(work, &n);
    int bad = -1;
    mixl_coll_agree(work, ok ? MIXL_OK : MIXL_ERR_BACKEND, &bad);
    MPI_Comm_free(&work);
    if (bad >= 0) {
        if (win != MPI_WIN_NULL) MPI_Win_free(&win);
        MPI_Comm_free(&node);
        free(b);
        if (!ok)
            return mixl_thread_error_set(1, MIXL_ERR_BACKEND, "mixl_mem_alloc_mpi on rank %d of %d: %s",
                                         rank, n, why);
        return mixl_thread_error_set(1, MIXL_ERR_BACKEND,
                                     "mixl_mem_alloc_mpi: rank %d of %d could not allocate; nothing kept",
                                     bad, n);
    }

    memset(base, 0, bytes);
    b->ptr = base;
    b->win = win;
    b->comm = node;
    pthread_mutex_lock(&blocks_lock);
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&blocks_lock);
    *ptr_p = base;
    return MIXL_OK;
}

mixl_status_t mixl_mem_free_mpi(void *ptr)
{
    mpi_block_t *b = NULL;

    if (ptr == NULL) return MIXL_ERR_INVALID_PARAM;
    pthread_mutex_lock(&blocks_lock);
    for (mpi_block_t **pp = &blocks; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->ptr == ptr) {
            b = *pp;
            *pp = b->next;
            break;
        }
    pthread_mutex_unlock(&blocks_lock);
    if (b == NULL) return MIXL_ERR_NOT_FOUND;
    int rc = MPI_Win_free(&b->win);
    MPI_Comm_free(&b->comm);
    free(b);
    return rc == MPI_SUCCESS ? MIXL_OK : MIXL_ERR_BACKEND;
}
