/*
 * The device-window self-test (mpi_cuda_int.h): before MPI windows over
 * device memory are trusted, every rank puts to and gets from its
 * neighbours' device memory through a static and a dynamic window on every
 * device it uses, and checks every byte. Collective: every rank runs every
 * MPI call whatever happens locally, so none is left waiting.
 */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "mem/mem.h"
#include "mem/mem_cuda.h"
#include "transport/mpi/mpi_cuda_int.h"

/* Self-test size: past 4 MiB, where CUDA-aware MPIs switch to GPUDirect
 * RDMA, and odd so a stray off-by-something shows. */
#define SELFTEST_BYTES ((4u << 20) + 4099)

static uint8_t selftest_byte(int rank, int round, size_t i)
{
    return (uint8_t)((size_t)rank * 131u + (size_t)round * 29u + i * 7u + 1u);
}


/* The devices the self-test covers: every device a region was registered
 * on; none registered yet, the thread's device if it chose one, else the
 * node-local rank's share, so no context is created on device 0 for a rank
 * that will never use it. */
static int selftest_devices(mpi_tp_t *m, int *devs, int max)
{
    int n = 0, ndev = 0, local = 0;
    MPI_Comm node;

    /* Collective: every rank splits, whichever answer it ends up using. */
    if (MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
    }
    for (int d = 0; d < MIXL_MPI_CUDA_MAX_DEVICES && n < max; d++)
        if (m->cuda->dev_mask & (1ull << d)) devs[n++] = d;
    if (n > 0) return n;
    if (mixl_cuda_has_context() && cudaGetDevice(&devs[0]) == cudaSuccess) return 1;
    (void)cudaGetLastError();
    if (mixl_mem_device_count(&ndev) != MIXL_OK || ndev <= 0) ndev = 1;
    devs[0] = local % ndev;
    return 1;
}

/*
 * One round of the device-window self-test on device dev, through a static
 * window or (dynamic) a region attached to a dynamic window: put to the
 * right neighbour, check what the left one put, read back with MPI_Get.
 * Every rank runs every collective whatever happens locally (a rank without
 * usable device memory exposes host memory) so nobody hangs; *ok_p says
 * whether it worked here.
 */
static void selftest_round(mixl_tp_t *tp, mpi_tp_t *m, int dev, int dynamic, int round, int *ok_p,
                           char *why, size_t why_len)
{
    uint8_t *host = malloc(SELFTEST_BYTES), *page = calloc(1, SELFTEST_BYTES);
    void *win_buf = NULL, *origin = NULL;
    int ok = *ok_p && host != NULL && page != NULL, all = 0, locked = 0;
    int right = (m->wrank + 1) % m->wnranks, left = (m->wrank + m->wnranks - 1) % m->wnranks;
    const char *kind = dynamic ? "dynamic" : "static";
    MPI_Win win = MPI_WIN_NULL;
    MPI_Aint disp = 0, *disps = calloc((size_t)m->wnranks, sizeof(MPI_Aint));
    int rc;

    if (ok && disps == NULL) ok = 0;
    if (ok && (mixl_mem_alloc(MIXL_MEM_CUDA, dev, SELFTEST_BYTES, &win_buf) != MIXL_OK ||
               mixl_mem_alloc(MIXL_MEM_CUDA, dev, SELFTEST_BYTES, &origin) != MIXL_OK)) {
        snprintf(why, why_len, "device %d: %s", dev, mixl_last_error());
        ok = 0;
    }
    if (ok) {
        for (size_t i = 0; i < SELFTEST_BYTES; i++) host[i] = selftest_byte(m->wrank, round, i);
        /* mixl_mem_copy returns once the bytes are in device memory: MPI
         * reads them next, outside the CUDA stream order. */
        if (mixl_mem_copy(origin, host, SELFTEST_BYTES) != MIXL_OK) {
            snprintf(why, why_len, "device %d: %s", dev, mixl_last_error());
            ok = 0;
        }
    }
    void *exposed = ok ? win_buf : (page != NULL ? (void *)page : (void *)&disp);
    if (!dynamic) {
        rc = MPI_Win_create(exposed, SELFTEST_BYTES, 1, MPI_INFO_NULL, m->wcomm, &win);
    } else {
        rc = MPI_Win_create_dynamic(MPI_INFO_NULL, m->wcomm, &win);
        if (rc == MPI_SUCCESS) rc = MPI_Win_attach(win, exposed, SELFTEST_BYTES);
        MPI_Get_address(exposed, &disp);
    }
    if (rc != MPI_SUCCESS) {
        snprintf(why, why_len, "MPI_Win_create (%s) on memory of device %d failed", kind, dev);
        ok = 0;
    }
    if (win != MPI_WIN_NULL) MPI_Win_set_errhandler(win, MPI_ERRORS_RETURN);
    /* Dynamic windows address by absolute address: everyone learns everyone's. */
    if (MPI_Allgather(&disp, 1, MPI_AINT, disps != NULL ? disps : &disp, disps != NULL ? 1 : 0,
                      MPI_AINT, m->wcomm) != MPI_SUCCESS)
        ok = 0;
    rc = MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, m->wcomm);
    if (rc != MPI_SUCCESS) all = 0;
    if (all) {
        MPI_Aint rdisp = dynamic ? disps[right] : 0;

        rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
        locked = rc == MPI_SUCCESS;
        if (rc == MPI_SUCCESS) rc = MPI_Put(origin, SELFTEST_BYTES, MPI_BYTE, right, rdisp, SELFTEST_BYTES, MPI_BYTE, win);
        if (rc == MPI_SUCCESS) rc = MPI_Win_flush(right, win);
        if (rc != MPI_SUCCESS) {
            snprintf(why, why_len, "MPI_Put/MPI_Win_flush from device %d memory (%s window) failed",
                     dev, kind);
            ok = 0;
        }
        /* Everyone's put has landed once everyone flushed. */
        MPI_Barrier(m->wcomm);
        if (locked) MPI_Win_sync(win);
        if (ok && mpi_cuda_flush_devices(m->cuda->flush, 1ull << dev) != MIXL_OK) {
            snprintf(why, why_len, "cuFlushGPUDirectRDMAWrites on device %d failed", dev);
            ok = 0;
        }
        if (ok) {
            /* What our left neighbour put into our device window... */
            if (mixl_mem_copy(host, win_buf, SELFTEST_BYTES) != MIXL_OK) {
                snprintf(why, why_len, "%s", mixl_last_error());
                ok = 0;
            }
            for (size_t i = 0; ok && i < SELFTEST_BYTES; i++)
                if (host[i] != selftest_byte(left, round, i)) {
                    snprintf(why, why_len, "device %d, %s window: byte %zu put by rank %d arrived "
                             "as 0x%02x, expected 0x%02x", dev, kind, i, m->rank_of[left], host[i],
                             selftest_byte(left, round, i));
                    ok = 0;
                }
        }
        if (ok) {
            /* ...and what we put into our right neighbour's, read back with MPI_Get. */
            rc = MPI_Get(origin, SELFTEST_BYTES, MPI_BYTE, right, rdisp, SELFTEST_BYTES, MPI_BYTE, win);
            if (rc == MPI_SUCCESS) rc = MPI_Win_flush(right, win);
            if (rc == MPI_SUCCESS && mpi_cuda_flush_devices(m->cuda->flush, 1ull << dev) != MIXL_OK)
                rc = MPI_ERR_OTHER;
            if (rc != MPI_SUCCESS || mixl_mem_copy(host, origin, SELFTEST_BYTES) != MIXL_OK) {
                snprintf(why, why_len, "MPI_Get into device %d memory (%s window) failed", dev, kind);
                ok = 0;
            }
            for (size_t i = 0; ok && i < SELFTEST_BYTES; i++)
                if (host[i] != selftest_byte(m->wrank, round, i)) {
                    snprintf(why, why_len, "device %d, %s window: MPI_Get returned 0x%02x at byte "
                             "%zu, expected 0x%02x", dev, kind, host[i], i,
                             selftest_byte(m->wrank, round, i));
                    ok = 0;
                }
        }
        /* Nobody frees the window while a neighbour still reads it. */
        MPI_Barrier(m->wcomm);
        if (locked) MPI_Win_unlock_all(win);
    } else if (ok) {
        snprintf(why, why_len, "another rank could not set up its device memory");
        ok = 0;
    }
    if (win != MPI_WIN_NULL) {
        if (dynamic) MPI_Win_detach(win, exposed);
        MPI_Win_free(&win);
    }
    mixl_mem_free(MIXL_MEM_CUDA, win_buf);
    mixl_mem_free(MIXL_MEM_CUDA, origin);
    free(disps);
    free(host);
    free(page);
    *ok_p = ok;
}

/* Every device this rank uses, static and dynamic windows; collective. */
void mpi_cuda_selftest(mixl_tp_t *tp, mpi_tp_t *m, int *ok_p, char *why, size_t why_len)
{
    int devs[MIXL_MPI_CUDA_MAX_DEVICES];
    int n = selftest_devices(m, devs, MIXL_MPI_CUDA_MAX_DEVICES), rounds = 0, ok = 1;

    /* Ranks with fewer devices repeat their last one so the collectives match. */
    if (MPI_Allreduce(&n, &rounds, 1, MPI_INT, MPI_MAX, m->comm) != MPI_SUCCESS) rounds = n;
    for (int k = 0; k < rounds; k++)
        for (int dynamic = 0; dynamic < 2; dynamic++)
            selftest_round(tp, m, devs[k < n ? k : n - 1], dynamic, 2 * k + dynamic, &ok, why,
                           why_len);
    *ok_p = ok;
}
