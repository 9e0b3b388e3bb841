/*
 * Device memory in the MPI backend (see mpi_cuda.h): the start-up decision
 * between device windows and staging, the staged transfer machine over
 * pinned slots, and same-host CUDA IPC copies.
 *
 * Staging slots and streams are created lazily by the first transfer that
 * needs them, so an agent that never moves device memory never touches the
 * GPU. The slots are shared by every staged transfer of the agent; whichever
 * transfer is tested progresses all of them (oldest first), so a request that
 * the application does not poll cannot starve the others of slots.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "mem/copy_engine.h"
#include "mem/mem_cuda.h"
#include "mem/mem.h"
#include "mem/stage.h"
#include "transport/mpi/mpi_cuda.h"
#include "util/clock.h"
#include "util/log.h"

/* Self-test size: past 4 MiB, where CUDA-aware MPIs switch to GPUDirect
 * RDMA, and odd so a stray off-by-something shows. */
#define SELFTEST_BYTES ((4u << 20) + 4099)
#define MIXL_MPI_CUDA_MAX_DEVICES 64

typedef CUresult (*mpi_cu_flush_fn)(CUflushGPUDirectRDMAWritesTarget target,
                                    CUflushGPUDirectRDMAWritesScope scope);

struct mpi_cuda {
    unsigned nslots;
    size_t slot_bytes;
    char hostname[MIXL_NAME_MAX];
    char why[160];          /* why device windows are or are not used */
    char aware_why[96];     /* where the CUDA-awareness answer came from */
    uint64_t dev_mask;      /* devices of registered device regions */
    uint8_t *same_node;     /* per rank of the backend's communicator: shares our node */
    mpi_cu_flush_fn flush;  /* cuFlushGPUDirectRDMAWrites, once device windows are on */
    mixl_ce_t *ce;          /* created by the first transfer that needs it */
    mixl_stage_pool_t pool;
    struct mpi_cuda_xfer *active_head, *active_tail; /* staged transfers in flight, FIFO */
};

typedef struct {
    void *dst;
    const void *src;
    size_t len;
    int device; /* stream that copies */
} mpi_ipc_copy_t;

struct mpi_cuda_xfer {
    mixl_tp_t *tp;
    mpi_tp_t *m;
    mixl_tp_xfer_t *xfer;
    int target;

    /* Staged part. */
    mixl_stage_plan_t plan;
    mixl_stage_sm_t sm;
    MPI_Win *wins; /* distinct windows the pieces use; piece.tag indexes this */
    size_t nwins;
    mixl_status_t staged_st; /* MIXL_IN_PROGRESS while in the active list */
    int staged_pending;
    struct mpi_cuda_xfer *prev, *next;

    /* IPC part. */
    mpi_ipc_copy_t *ipc;
    size_t nipc;
    mixl_ce_event_t **ipc_ev; /* one per device the copies use */
    size_t nipc_ev;
    int ipc_pending;
};

/* One IPC mapping of a peer's region on one of our devices. */
typedef struct {
    uint32_t region; /* index into peer->md->regions */
    int device;
    void *base;      /* local address of the exported allocation's base */
    int owner;       /* this entry opened the handle (others share it) */
} mpi_ipc_map_t;

typedef struct {
    mpi_ipc_map_t *maps;
    size_t n, cap;
} mpi_cuda_peer_t;

static const mixl_stage_io_t mpi_stage_io;

/*
 * Whether MPI moves device memory. Open MPI answers through mpi-ext.h
 * (ompi_aware, from MPIX_Query_cuda_support); MPICH 4 through
 * MPIX_GPU_query_support; MVAPICH2-GDR and Cray MPICH only through their
 * documented switches (MV2_USE_CUDA, MPICH_GPU_SUPPORT_ENABLED).
 * MIXL_MPI_CUDA_AWARE=0/1 overrides all of them; the collective self-test
 * still has to pass before device windows are used.
 */
static int mpi_cuda_aware_detect(int ompi_aware, char *why, size_t len)
{
    const char *e = getenv("MIXL_MPI_CUDA_AWARE");
    int aware = 0;

    if (e != NULL && (strcmp(e, "0") == 0 || strcmp(e, "1") == 0)) {
        snprintf(why, len, "MIXL_MPI_CUDA_AWARE=%s", e);
        return e[0] == '1';
    }
    if (ompi_aware) {
        snprintf(why, len, "MPIX_Query_cuda_support");
        return 1;
    }
#if defined(MPIX_GPU_SUPPORT_CUDA)
    if (MPIX_GPU_query_support(MPIX_GPU_SUPPORT_CUDA, &aware) == MPI_SUCCESS && aware) {
        snprintf(why, len, "MPIX_GPU_query_support");
        return 1;
    }
#endif
    if ((e = getenv("MV2_USE_CUDA")) != NULL && atoi(e) == 1) {
        snprintf(why, len, "MV2_USE_CUDA=1");
        return 1;
    }
    if ((e = getenv("MPICH_GPU_SUPPORT_ENABLED")) != NULL && atoi(e) == 1) {
        snprintf(why, len, "MPICH_GPU_SUPPORT_ENABLED=1");
        return 1;
    }
    snprintf(why, len, "no CUDA support reported by the MPI library");
    return aware;
}

mixl_status_t mpi_cuda_init(mixl_tp_t *tp, mpi_tp_t *m, const mixl_agent_params_t *params)
{
    struct mpi_cuda *c;

    if (params->staging_slots > MIXL_STAGE_MAX_SLOTS)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: staging_slots is %u, at most %d are supported",
                               tp->agent_name, params->staging_slots, MIXL_STAGE_MAX_SLOTS);
    if (params->staging_slot_bytes > MIXL_MPI_TP_MAX_CHUNK)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: staging_slot_bytes is %zu, at most %d (one MPI call)",
                               tp->agent_name, params->staging_slot_bytes, MIXL_MPI_TP_MAX_CHUNK);
    c = calloc(1, sizeof(*c));
    if (c == NULL) return MIXL_ERR_NO_MEMORY;
    c->nslots = params->staging_slots;
    c->slot_bytes = params->staging_slot_bytes;
    if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0)
        snprintf(c->hostname, sizeof(c->hostname), "unknown");
    snprintf(c->why, sizeof(c->why), "not decided");
    m->cuda_aware = mpi_cuda_aware_detect(m->cuda_aware, c->aware_why, sizeof(c->aware_why));
    m->cuda = c;
    return MIXL_OK;
}

void mpi_cuda_fini(mpi_tp_t *m)
{
    if (m->cuda == NULL) return;
    mixl_ce_destroy(m->cuda->ce);
    free(m->cuda->same_node);
    free(m->cuda);
    m->cuda = NULL;
}

/* --- start-up: device windows or staging -------------------------------- */

static uint8_t selftest_byte(int rank, int round, size_t i)
{
    return (uint8_t)((size_t)rank * 131u + (size_t)round * 29u + i * 7u + 1u);
}

/* cuFlushGPUDirectRDMAWrites through the runtime's driver entry point. */
static mpi_cu_flush_fn flush_entry(void)
{
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    void *fn = NULL;

    if (cudaGetDriverEntryPointByVersion("cuFlushGPUDirectRDMAWrites", &fn, 12000, cudaEnableDefault,
                                         &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return (mpi_cu_flush_fn)fn;
}

/* Make what the NIC wrote into device memory of every registered device
 * visible to work launched afterwards. */
static mixl_status_t gdr_flush_devices(mpi_cu_flush_fn fn, uint64_t mask)
{
    int prev = -1;

    if (fn == NULL) return MIXL_OK; /* drivers before 11.3: the stream order of the next launch */
    for (int d = 0; d < MIXL_MPI_CUDA_MAX_DEVICES && mask != 0; d++, mask >>= 1) {
        int p = -1;
        if (!(mask & 1u)) continue;
        if (mixl_cuda_device_push(d, &p) != MIXL_OK) return MIXL_ERR_BACKEND;
        if (prev < 0) prev = p;
        if (fn(CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TARGET_CURRENT_CTX,
               CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TO_OWNER) != CUDA_SUCCESS) {
            mixl_cuda_device_pop(prev);
            return MIXL_ERR_BACKEND;
        }
    }
    mixl_cuda_device_pop(prev);
    return MIXL_OK;
}

/* Hot path (device windows only): called after data landed in device memory
 * through MPI and before anyone is told. */
mixl_status_t mpi_cuda_gdr_flush(mixl_tp_t *tp, mpi_tp_t *m)
{
    struct mpi_cuda *c = m->cuda;

    if (!m->device_windows || c->dev_mask == 0) return MIXL_OK;
    if (gdr_flush_devices(c->flush, c->dev_mask) != MIXL_OK)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_BACKEND,
                               "agent %s: cuFlushGPUDirectRDMAWrites failed", tp->agent_name);
    return MIXL_OK;
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
    int right = (m->rank + 1) % m->nranks, left = (m->rank + m->nranks - 1) % m->nranks;
    const char *kind = dynamic ? "dynamic" : "static";
    MPI_Win win = MPI_WIN_NULL;
    MPI_Aint disp = 0, *disps = calloc((size_t)m->nranks, sizeof(MPI_Aint));
    mixl_errbuf_t eb = {{0}, 0};
    int rc;

    if (ok && disps == NULL) ok = 0;
    if (ok && (mixl_mem_alloc(MIXL_MEM_CUDA, dev, SELFTEST_BYTES, &eb, &win_buf) != MIXL_OK ||
               mixl_mem_alloc(MIXL_MEM_CUDA, dev, SELFTEST_BYTES, &eb, &origin) != MIXL_OK)) {
        snprintf(why, why_len, "device %d: %s", dev, mixl_errbuf_get(&eb));
        ok = 0;
    }
    if (ok) {
        for (size_t i = 0; i < SELFTEST_BYTES; i++) host[i] = selftest_byte(m->rank, round, i);
        /* mixl_mem_copy returns once the bytes are in device memory: MPI
         * reads them next, outside the CUDA stream order. */
        if (mixl_mem_copy(origin, host, SELFTEST_BYTES, &eb) != MIXL_OK ||
            mixl_mem_copy(win_buf, page, SELFTEST_BYTES, &eb) != MIXL_OK) {
            snprintf(why, why_len, "device %d: %s", dev, mixl_errbuf_get(&eb));
            ok = 0;
        }
    }
    void *exposed = ok ? win_buf : (page != NULL ? (void *)page : (void *)&disp);
    if (!dynamic) {
        rc = MPI_Win_create(exposed, SELFTEST_BYTES, 1, MPI_INFO_NULL, m->comm, &win);
    } else {
        rc = MPI_Win_create_dynamic(MPI_INFO_NULL, m->comm, &win);
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
                      MPI_AINT, m->comm) != MPI_SUCCESS)
        ok = 0;
    rc = MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, m->comm);
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
        MPI_Barrier(m->comm);
        if (locked) MPI_Win_sync(win);
        if (ok && gdr_flush_devices(m->cuda->flush, 1ull << dev) != MIXL_OK) {
            snprintf(why, why_len, "cuFlushGPUDirectRDMAWrites on device %d failed", dev);
            ok = 0;
        }
        if (ok) {
            /* What our left neighbour put into our device window... */
            if (mixl_mem_copy(host, win_buf, SELFTEST_BYTES, &eb) != MIXL_OK) {
                snprintf(why, why_len, "%s", mixl_errbuf_get(&eb));
                ok = 0;
            }
            for (size_t i = 0; ok && i < SELFTEST_BYTES; i++)
                if (host[i] != selftest_byte(left, round, i)) {
                    snprintf(why, why_len, "device %d, %s window: byte %zu put by rank %d arrived "
                             "as 0x%02x, expected 0x%02x", dev, kind, i, left, host[i],
                             selftest_byte(left, round, i));
                    ok = 0;
                }
        }
        if (ok) {
            /* ...and what we put into our right neighbour's, read back with MPI_Get. */
            rc = MPI_Get(origin, SELFTEST_BYTES, MPI_BYTE, right, rdisp, SELFTEST_BYTES, MPI_BYTE, win);
            if (rc == MPI_SUCCESS) rc = MPI_Win_flush(right, win);
            if (rc == MPI_SUCCESS && gdr_flush_devices(m->cuda->flush, 1ull << dev) != MIXL_OK)
                rc = MPI_ERR_OTHER;
            if (rc != MPI_SUCCESS || mixl_mem_copy(host, origin, SELFTEST_BYTES, &eb) != MIXL_OK) {
                snprintf(why, why_len, "MPI_Get into device %d memory (%s window) failed", dev, kind);
                ok = 0;
            }
            for (size_t i = 0; ok && i < SELFTEST_BYTES; i++)
                if (host[i] != selftest_byte(m->rank, round, i)) {
                    snprintf(why, why_len, "device %d, %s window: MPI_Get returned 0x%02x at byte "
                             "%zu, expected 0x%02x", dev, kind, host[i], i,
                             selftest_byte(m->rank, round, i));
                    ok = 0;
                }
        }
        /* Nobody frees the window while a neighbour still reads it. */
        MPI_Barrier(m->comm);
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
static void selftest_run(mixl_tp_t *tp, mpi_tp_t *m, int *ok_p, char *why, size_t why_len)
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

/*
 * Which ranks share this node, by MPI's own answer (a shared-memory split
 * of the communicator), not by host name: containers on different nodes
 * may carry the same host name, and CUDA IPC between them cannot work.
 */
static mixl_status_t node_map(mixl_tp_t *tp, mpi_tp_t *m)
{
    struct mpi_cuda *c = m->cuda;
    MPI_Comm node = MPI_COMM_NULL;
    int nlocal = 0, rc;
    int *local = NULL, *mine = NULL;
    MPI_Group g_node, g_all;

    c->same_node = calloc((size_t)m->nranks, 1);
    if (c->same_node == NULL) return MIXL_ERR_NO_MEMORY;
    rc = MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return mpi_tp_error(tp, rc, "MPI_Comm_split_type for the node map");
    MPI_Comm_size(node, &nlocal);
    local = malloc((size_t)nlocal * sizeof(int));
    mine = malloc((size_t)nlocal * sizeof(int));
    if (local == NULL || mine == NULL) {
        free(local);
        free(mine);
        MPI_Comm_free(&node);
        return MIXL_ERR_NO_MEMORY;
    }
    for (int i = 0; i < nlocal; i++) local[i] = i;
    MPI_Comm_group(node, &g_node);
    MPI_Comm_group(m->comm, &g_all);
    MPI_Group_translate_ranks(g_node, nlocal, local, g_all, mine);
    for (int i = 0; i < nlocal; i++)
        if (mine[i] >= 0 && mine[i] < m->nranks) c->same_node[mine[i]] = 1;
    MPI_Group_free(&g_node);
    MPI_Group_free(&g_all);
    MPI_Comm_free(&node);
    free(local);
    free(mine);
    return MIXL_OK;
}

mixl_status_t mpi_cuda_select_path(mixl_tp_t *tp, mpi_tp_t *m)
{
    struct mpi_cuda *c = m->cuda;
    mixl_status_t st;
    int want = m->gpu_path != MIXL_GPU_PATH_STAGED && m->cuda_aware, all_want = 0;
    int ok = 0, first_bad = 0, mine;
    char why[160] = "";
    int rc;

    m->device_windows = 0;
    st = node_map(tp, m);
    if (st != MIXL_OK) return st;
    /* Ranks must take the same path through the collective self-test. */
    rc = MPI_Allreduce(&want, &all_want, 1, MPI_INT, MPI_MIN, m->comm);
    if (rc != MPI_SUCCESS) return mpi_tp_error(tp, rc, "MPI_Allreduce of the GPU path choice");
    if (!all_want) {
        if (m->gpu_path == MIXL_GPU_PATH_STAGED) snprintf(c->why, sizeof(c->why), "gpu_path is STAGED");
        else if (!m->cuda_aware) snprintf(c->why, sizeof(c->why), "MPI is not CUDA-aware (%s)", c->aware_why);
        else snprintf(c->why, sizeof(c->why), "another rank's MPI is not CUDA-aware or it asked for staging");
    } else {
        c->flush = flush_entry();
        selftest_run(tp, m, &ok, why, sizeof(why));
        mine = ok ? m->nranks : m->rank;
        rc = MPI_Allreduce(&mine, &first_bad, 1, MPI_INT, MPI_MIN, m->comm);
        if (rc != MPI_SUCCESS) return mpi_tp_error(tp, rc, "MPI_Allreduce of the device-window self-test");
        if (first_bad == m->nranks) {
            m->device_windows = 1;
            snprintf(c->why, sizeof(c->why), "self-test passed (CUDA-aware: %s)", c->aware_why);
        } else {
            if (!ok) mixl_warn("agent %s: device-window self-test failed here: %s", tp->agent_name, why);
            /* The reason may be cut short to fit; the warning above has it whole. */
            int n = snprintf(c->why, sizeof(c->why), "device-window self-test failed on rank %d",
                             first_bad);
            if (!ok && n > 0 && (size_t)n < sizeof(c->why))
                snprintf(c->why + n, sizeof(c->why) - (size_t)n, ": %.*s",
                         (int)(sizeof(c->why) - (size_t)n), why);
        }
    }
    if (m->gpu_path == MIXL_GPU_PATH_DEVICE_WIN && !m->device_windows)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                               "agent %s: gpu path 'device windows' requested but unusable: %s",
                               tp->agent_name, c->why);
    return MIXL_OK;
}

static void format_bytes(size_t n, char *buf, size_t len)
{
    if (n % (1u << 20) == 0) snprintf(buf, len, "%zu MiB", n >> 20);
    else if (n % (1u << 10) == 0) snprintf(buf, len, "%zu KiB", n >> 10);
    else snprintf(buf, len, "%zu bytes", n);
}

void mpi_cuda_path_report(const mpi_tp_t *m, char *buf, size_t len)
{
    const struct mpi_cuda *c = m->cuda;
    char slot[32];

    format_bytes(c->slot_bytes, slot, sizeof(slot));
    if (m->device_windows)
        snprintf(buf, len, "cuda: device windows: %s; CUDA IPC for same-node peers' unwindowed regions",
                 c->why);
    else if (c->nslots == 1)
        snprintf(buf, len, "cuda: staged through 1 pinned slot of %s (copies and network serialised): "
                 "%s; CUDA IPC for same-node peers", slot, c->why);
    else
        snprintf(buf, len, "cuda: staged through %u pinned slots of %s: %s; CUDA IPC for same-node peers",
                 c->nslots, slot, c->why);
}

/* --- registration -------------------------------------------------------- */

mixl_status_t mpi_cuda_region_register(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_region_t *r)
{
    mixl_errbuf_t eb = {{0}, 0};
    mixl_mem_type_t type;
    mixl_status_t st;
    uint64_t base = 0;
    int device = 0;

    if (mixl_mem_query(r->addr, &eb, &type, &device) != MIXL_OK)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: region %u at %p registered as CUDA memory: %s",
                               tp->agent_name, r->id, r->addr, mixl_errbuf_get(&eb));
    if (type != MIXL_MEM_CUDA)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: region %u at %p registered as CUDA memory but the CUDA "
                               "runtime says it is %s memory", tp->agent_name, r->id, r->addr,
                               mixl_mem_type_str(type));
    if (device != r->device)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: region %u at %p registered for CUDA device %d but lives "
                               "on device %d", tp->agent_name, r->id, r->addr, r->device, device);
    if (device >= 0 && device < MIXL_MPI_CUDA_MAX_DEVICES) m->cuda->dev_mask |= 1ull << device;
    /* Not every allocation can be exported (cudaMallocAsync pools, VMM):
     * then same-host peers cannot map it, which they are told at prepare.
     * A span past its allocation is the caller's error. */
    st = mixl_mem_ipc_export(r->addr, r->len, &eb, r->ipc_handle, &base, &r->ipc_size);
    if (st == MIXL_ERR_INVALID_PARAM)
        return mixl_errbuf_set(tp->eb, st, "agent %s: region %u: %s", tp->agent_name, r->id,
                               mixl_errbuf_get(&eb));
    if (st == MIXL_OK) {
        r->md_flags |= MIXL_MD_REGION_IPC;
        /* Offsets inside the IPC mapping count from the allocation's base;
         * window_base carries it while the region has no window. */
        r->window_base = base;
    } else {
        mixl_info("agent %s: region %u: no CUDA IPC handle (%s)", tp->agent_name, r->id,
                  mixl_errbuf_get(&eb));
    }
    return MIXL_OK;
}

/* --- CUDA IPC ------------------------------------------------------------ */

mixl_status_t mpi_cuda_ipc_check(mixl_tp_t *tp, mpi_tp_t *m, const mixl_tp_peer_t *peer,
                                 const mixl_md_region_t *rr)
{
    const char *reason;

    if (peer->mpi_rank == m->rank) return MIXL_OK; /* our own memory: a plain device copy */
    /* Same node by MPI's shared-memory split (node_map); the host name as
     * well, so metadata that names another host is never mapped. */
    if (peer->mpi_rank < 0 || peer->mpi_rank >= m->nranks || m->cuda->same_node == NULL ||
        !m->cuda->same_node[peer->mpi_rank] || strcmp(peer->md->hostname, m->cuda->hostname) != 0)
        reason = "the peer is on another host and MPI cannot reach device memory there (no "
                 "CUDA-aware MPI with device windows): target a host region instead";
    else if (!(rr->flags & MIXL_MD_REGION_IPC))
        reason = "the peer is on this host but exported no CUDA IPC handle for it";
    else if (rr->window_base > rr->addr)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_BAD_METADATA,
                               "agent %s: region %u of peer %s: IPC allocation base 0x%llx lies "
                               "above the region", tp->agent_name, rr->id, peer->name,
                               (unsigned long long)rr->window_base);
    else
        return MIXL_OK;
    return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                           "agent %s: region %u of peer %s (host %s) is CUDA memory without an MPI "
                           "window, and %s", tp->agent_name, rr->id, peer->name,
                           peer->md->hostname, reason);
}

/* The local mapping of peer region rr on device, opened once and cached on the peer. */
static mixl_status_t ipc_map(mixl_tp_t *tp, mixl_tp_peer_t *peer, const mixl_md_region_t *rr,
                             int device, void **base_p)
{
    mpi_cuda_peer_t *p = peer->tp_priv[MIXL_TP_MPI];
    uint32_t idx = (uint32_t)(rr - peer->md->regions);
    mixl_errbuf_t eb = {{0}, 0};
    void *base = NULL;
    int owner = 1;

    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        if (p == NULL) return MIXL_ERR_NO_MEMORY;
        peer->tp_priv[MIXL_TP_MPI] = p;
    }
    for (size_t i = 0; i < p->n; i++) {
        const mixl_md_region_t *o = &peer->md->regions[p->maps[i].region];
        if (p->maps[i].device != device) continue;
        if (p->maps[i].region == idx) {
            *base_p = p->maps[i].base;
            return MIXL_OK;
        }
        /* Two regions in one allocation share the handle: one mapping. */
        if (memcmp(o->ipc_handle, rr->ipc_handle, sizeof(rr->ipc_handle)) == 0) {
            base = p->maps[i].base;
            owner = 0;
        }
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 4;
        mpi_ipc_map_t *n = realloc(p->maps, cap * sizeof(*n));
        if (n == NULL) return MIXL_ERR_NO_MEMORY;
        p->maps = n;
        p->cap = cap;
    }
    if (owner && mixl_mem_ipc_open(rr->ipc_handle, device, &eb, &base) != MIXL_OK)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                               "agent %s: region %u of peer %s: cannot map its CUDA IPC handle on "
                               "device %d: %s", tp->agent_name, rr->id, peer->name, device,
                               mixl_errbuf_get(&eb));
    p->maps[p->n].region = idx;
    p->maps[p->n].device = device;
    p->maps[p->n].base = base;
    p->maps[p->n].owner = owner;
    p->n++;
    *base_p = base;
    return MIXL_OK;
}

void mpi_cuda_peer_remove(mixl_tp_t *tp, mixl_tp_peer_t *peer)
{
    mpi_cuda_peer_t *p = peer->tp_priv[MIXL_TP_MPI];

    if (p == NULL) return;
    for (size_t i = 0; i < p->n; i++)
        if (p->maps[i].owner) mixl_mem_ipc_close(p->maps[i].base);
    free(p->maps);
    free(p);
    peer->tp_priv[MIXL_TP_MPI] = NULL;
}

/* --- prepared transfers -------------------------------------------------- */

static mixl_status_t engine_get(mixl_tp_t *tp, mpi_tp_t *m, mixl_ce_t **ce_p)
{
    struct mpi_cuda *c = m->cuda;
    mixl_errbuf_t eb = {{0}, 0};
    mixl_status_t st;

    if (c->ce == NULL) {
        st = mixl_ce_create(c->nslots, c->slot_bytes, &eb, &c->ce);
        if (st != MIXL_OK)
            return mixl_errbuf_set(tp->eb, st, "agent %s: device-memory staging (%u slots of %zu "
                                   "bytes): %s", tp->agent_name, c->nslots, c->slot_bytes,
                                   mixl_errbuf_get(&eb));
        (void)mixl_stage_pool_init(&c->pool, c->nslots);
    }
    *ce_p = c->ce;
    return MIXL_OK;
}

static mixl_status_t engine_device(mixl_tp_t *tp, mixl_ce_t *ce, int device)
{
    mixl_errbuf_t eb = {{0}, 0};
    mixl_status_t st = mixl_ce_use_device(ce, device, &eb);
    if (st != MIXL_OK)
        return mixl_errbuf_set(tp->eb, st, "agent %s: %s", tp->agent_name, mixl_errbuf_get(&eb));
    return MIXL_OK;
}

static MPI_Win remote_win(const mpi_tp_t *m, const mixl_md_region_t *rr)
{
    return rr->window >= 0 ? m->wins[rr->window] : m->dyn_win;
}

static mixl_status_t prepare_staged(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
                                    const uint8_t *kinds, struct mpi_cuda_xfer *cx, size_t nstaged)
{
    mixl_stage_span_t *spans = calloc(nstaged, sizeof(*spans));
    mixl_ce_t *ce;
    mixl_status_t st;
    size_t k = 0;

    cx->wins = calloc(nstaged, sizeof(*cx->wins));
    if (spans == NULL || cx->wins == NULL) {
        free(spans);
        return MIXL_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < xfer->nops; i++) {
        const mixl_tp_op_t *op = &xfer->ops[i];
        MPI_Win w;
        size_t t;

        if (kinds[i] != MIXL_MPI_OP_STAGED) continue;
        w = remote_win(m, op->remote_region);
        for (t = 0; t < cx->nwins && cx->wins[t] != w; t++)
            ;
        if (t == cx->nwins) cx->wins[cx->nwins++] = w;
        spans[k].local = op->local_addr;
        spans[k].remote = op->remote_addr - op->remote_region->window_base;
        spans[k].len = op->len;
        spans[k].tag = (uint32_t)t;
        spans[k].device = op->local_region->device;
        k++;
    }
    st = engine_get(tp, m, &ce);
    if (st == MIXL_OK) {
        st = mixl_stage_plan(spans, k, mixl_ce_slot_bytes(ce), &cx->plan);
        if (st != MIXL_OK)
            st = mixl_errbuf_set(tp->eb, st, "agent %s: staging plan for %zu device spans to %s",
                                 tp->agent_name, k, xfer->peer->name);
    }
    for (size_t j = 0; st == MIXL_OK && j < cx->plan.nchunks; j++)
        st = engine_device(tp, ce, cx->plan.chunks[j].device);
    free(spans);
    return st;
}

static mixl_status_t prepare_ipc(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
                                 const uint8_t *kinds, struct mpi_cuda_xfer *cx, size_t nipc)
{
    mixl_ce_t *ce;
    mixl_status_t st = MIXL_OK;
    int cur = 0;

    if (cudaGetDevice(&cur) != cudaSuccess) {
        (void)cudaGetLastError();
        cur = 0;
    }
    cx->ipc = calloc(nipc, sizeof(*cx->ipc));
    cx->ipc_ev = calloc(nipc, sizeof(*cx->ipc_ev));
    if (cx->ipc == NULL || cx->ipc_ev == NULL) return MIXL_ERR_NO_MEMORY;
    /* Map the peer's regions first: a failure there names the region. */
    for (size_t i = 0; i < xfer->nops && st == MIXL_OK; i++) {
        const mixl_tp_op_t *op = &xfer->ops[i];
        const mixl_md_region_t *rr = op->remote_region;
        mpi_ipc_copy_t *c = &cx->ipc[cx->nipc];
        void *base = NULL, *remote, *local = (void *)(uintptr_t)op->local_addr;

        if (kinds[i] != MIXL_MPI_OP_IPC) continue;
        /* Copies run on the local memory's device, or the caller's current one for host memory. */
        c->device = op->local_region->mem_type == MIXL_MEM_CUDA ? op->local_region->device : cur;
        if (xfer->peer->mpi_rank == m->rank) {
            /* Our own region: CUDA refuses to open a process's own handle, and
             * the address is valid here anyway. */
            remote = (void *)(uintptr_t)op->remote_addr;
        } else {
            st = ipc_map(tp, xfer->peer, rr, c->device, &base);
            if (st != MIXL_OK) break;
            remote = (uint8_t *)base + (op->remote_addr - rr->window_base);
        }
        c->dst = xfer->op == MIXL_OP_WRITE ? remote : local;
        c->src = xfer->op == MIXL_OP_WRITE ? local : remote;
        c->len = op->len;
        cx->nipc++;
    }
    if (st == MIXL_OK) st = engine_get(tp, m, &ce);
    /* One completion event per device whose stream carries copies. */
    for (size_t i = 0; i < cx->nipc && st == MIXL_OK; i++) {
        mixl_errbuf_t eb = {{0}, 0};
        int seen = 0;

        for (size_t j = 0; j < i && !seen; j++) seen = cx->ipc[j].device == cx->ipc[i].device;
        if (seen) continue;
        st = mixl_ce_event_create(ce, cx->ipc[i].device, &eb, &cx->ipc_ev[cx->nipc_ev]);
        if (st != MIXL_OK)
            st = mixl_errbuf_set(tp->eb, st, "agent %s: IPC copies to %s: %s", tp->agent_name,
                                 xfer->peer->name, mixl_errbuf_get(&eb));
        else
            cx->nipc_ev++;
    }
    return st;
}

mixl_status_t mpi_cuda_xfer_prepare(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
                                    const uint8_t *kinds, struct mpi_cuda_xfer **cx_p)
{
    struct mpi_cuda_xfer *cx;
    size_t nstaged = 0, nipc = 0;
    mixl_status_t st = MIXL_OK;

    for (size_t i = 0; i < xfer->nops; i++) {
        nstaged += kinds[i] == MIXL_MPI_OP_STAGED;
        nipc += kinds[i] == MIXL_MPI_OP_IPC;
    }
    cx = calloc(1, sizeof(*cx));
    if (cx == NULL) return MIXL_ERR_NO_MEMORY;
    cx->tp = tp;
    cx->m = m;
    cx->xfer = xfer;
    cx->target = xfer->peer->mpi_rank;
    if (nstaged > 0) st = prepare_staged(tp, m, xfer, kinds, cx, nstaged);
    if (st == MIXL_OK && nipc > 0) st = prepare_ipc(tp, m, xfer, kinds, cx, nipc);
    if (st != MIXL_OK) {
        mpi_cuda_xfer_release(m, cx);
        return st;
    }
    *cx_p = cx;
    return MIXL_OK;
}

static void active_remove(struct mpi_cuda *c, struct mpi_cuda_xfer *cx);

void mpi_cuda_xfer_release(mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    if (cx == NULL) return;
    /* A request given up while its chunks were moving (a wait that timed
     * out, then destroy): take its slots back before its memory goes. */
    if (cx->staged_pending && cx->staged_st == MIXL_IN_PROGRESS) {
        (void)mixl_stage_sm_abort(&m->cuda->pool, &cx->sm, mixl_deadline_ns(m->timeout_ms));
        active_remove(m->cuda, cx);
    }
    for (size_t i = 0; i < cx->nipc_ev; i++) mixl_ce_event_destroy(cx->ipc_ev[i]);
    free(cx->ipc_ev);
    free(cx->ipc);
    mixl_stage_plan_free(&cx->plan);
    free(cx->wins);
    free(cx);
}

/* --- the staged machine's steps (hot path: no allocation, no logging) ---- */

static mixl_status_t io_copy_start(void *ctx, unsigned slot, uint32_t chunk)
{
    struct mpi_cuda_xfer *cx = ctx;
    mixl_ce_t *ce = cx->m->cuda->ce;
    const mixl_stage_chunk_t *c = &cx->plan.chunks[chunk];
    uint8_t *buf = mixl_ce_slot(ce, slot);
    mixl_status_t st = MIXL_OK;

    for (uint32_t i = 0; i < c->count && st == MIXL_OK; i++) {
        const mixl_stage_piece_t *p = &cx->plan.pieces[c->first + i];
        void *dev = (void *)(uintptr_t)p->local;
        if (cx->xfer->op == MIXL_OP_WRITE)
            st = mixl_ce_copy(ce, c->device, buf + p->slot_off, dev, p->len, cx->tp->eb);
        else
            st = mixl_ce_copy(ce, c->device, dev, buf + p->slot_off, p->len, cx->tp->eb);
    }
    /* Mark even after a failed enqueue: the abort path waits on the mark. */
    if (mixl_ce_slot_mark(ce, slot, c->device, cx->tp->eb) != MIXL_OK && st == MIXL_OK)
        st = MIXL_ERR_BACKEND;
    return st;
}

static mixl_status_t io_copy_query(void *ctx, unsigned slot)
{
    struct mpi_cuda_xfer *cx = ctx;
    return mixl_ce_slot_query(cx->m->cuda->ce, slot, cx->tp->eb);
}

static mixl_status_t io_net_start(void *ctx, unsigned slot, uint32_t chunk)
{
    struct mpi_cuda_xfer *cx = ctx;
    const mixl_stage_chunk_t *c = &cx->plan.chunks[chunk];
    uint8_t *buf = mixl_ce_slot(cx->m->cuda->ce, slot);
    int rc = MPI_SUCCESS;

    for (uint32_t i = 0; i < c->count && rc == MPI_SUCCESS; i++) {
        const mixl_stage_piece_t *p = &cx->plan.pieces[c->first + i];
        int n = (int)p->len; /* pieces fit a slot, and slots are at most MIXL_MPI_TP_MAX_CHUNK */
        if (cx->xfer->op == MIXL_OP_WRITE)
            rc = MPI_Put(buf + p->slot_off, n, MPI_BYTE, cx->target, (MPI_Aint)p->remote, n,
                         MPI_BYTE, cx->wins[p->tag]);
        else
            rc = MPI_Get(buf + p->slot_off, n, MPI_BYTE, cx->target, (MPI_Aint)p->remote, n,
                         MPI_BYTE, cx->wins[p->tag]);
    }
    if (rc != MPI_SUCCESS)
        return mpi_tp_error(cx->tp, rc, "staged %s of a %llu-byte chunk with rank %d (%s)",
                            cx->xfer->op == MIXL_OP_WRITE ? "MPI_Put" : "MPI_Get",
                            (unsigned long long)c->bytes, cx->target, cx->xfer->peer->name);
    return MIXL_OK;
}

static mixl_status_t io_net_complete(void *ctx, unsigned slot)
{
    struct mpi_cuda_xfer *cx = ctx;

    /* Local completion is all a slot needs before reuse; remote completion
     * of a WRITE comes from the request's final MPI_Win_flush. */
    for (size_t w = 0; w < cx->nwins; w++) {
        int rc = MPI_Win_flush_local(cx->target, cx->wins[w]);
        if (rc != MPI_SUCCESS)
            return mpi_tp_error(cx->tp, rc, "MPI_Win_flush_local of staging slot %u to rank %d (%s)",
                                slot, cx->target, cx->xfer->peer->name);
    }
    return MIXL_OK;
}

static const mixl_stage_io_t mpi_stage_io = {
    .copy_start = io_copy_start,
    .copy_query = io_copy_query,
    .net_start = io_net_start,
    .net_complete = io_net_complete,
};

static void active_remove(struct mpi_cuda *c, struct mpi_cuda_xfer *cx)
{
    if (cx->prev != NULL) cx->prev->next = cx->next;
    else c->active_head = cx->next;
    if (cx->next != NULL) cx->next->prev = cx->prev;
    else c->active_tail = cx->prev;
    cx->prev = cx->next = NULL;
}

/* Advance every staged transfer in flight, oldest first. */
static void progress_all(mpi_tp_t *m)
{
    struct mpi_cuda *c = m->cuda;
    struct mpi_cuda_xfer *cx = c->active_head, *next;

    for (; cx != NULL; cx = next) {
        mixl_status_t st = mixl_stage_progress(&c->pool, &cx->sm);
        next = cx->next;
        if (st == MIXL_IN_PROGRESS) continue;
        if (st != MIXL_OK)
            st = mixl_stage_sm_abort(&c->pool, &cx->sm, mixl_deadline_ns(m->timeout_ms));
        cx->staged_st = st;
        active_remove(c, cx);
    }
}

/* Wait (bounded) for copies enqueued by a post that then failed. */
static void ipc_drain(mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    uint64_t deadline = mixl_deadline_ns(m->timeout_ms);
    for (size_t i = 0; i < cx->nipc_ev; i++) {
        if (mixl_ce_event_record(m->cuda->ce, cx->ipc_ev[i], NULL) != MIXL_OK) continue;
        while (mixl_ce_event_query(cx->ipc_ev[i], NULL) == MIXL_IN_PROGRESS &&
               mixl_now_ns() < deadline)
            ;
    }
}

/* Hot path. */
mixl_status_t mpi_cuda_xfer_post(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    struct mpi_cuda *c = m->cuda;
    mixl_status_t st = MIXL_OK;

    for (size_t i = 0; i < cx->nipc && st == MIXL_OK; i++)
        st = mixl_ce_copy(c->ce, cx->ipc[i].device, cx->ipc[i].dst, cx->ipc[i].src, cx->ipc[i].len,
                          tp->eb);
    for (size_t i = 0; i < cx->nipc_ev && st == MIXL_OK; i++)
        st = mixl_ce_event_record(c->ce, cx->ipc_ev[i], tp->eb);
    if (st != MIXL_OK) {
        ipc_drain(m, cx);
        return st;
    }
    cx->ipc_pending = cx->nipc > 0;

    if (cx->plan.nchunks > 0) {
        mixl_stage_sm_reset(&cx->sm, cx->xfer->op, (uint32_t)cx->plan.nchunks, &mpi_stage_io, cx);
        cx->staged_st = MIXL_IN_PROGRESS;
        cx->staged_pending = 1;
        cx->prev = c->active_tail;
        cx->next = NULL;
        if (c->active_tail != NULL) c->active_tail->next = cx;
        else c->active_head = cx;
        c->active_tail = cx;
        /* Start the first copies (WRITE) or gets (READ) now. */
        progress_all(m);
    }
    return MIXL_IN_PROGRESS;
}

/* Hot path. */
mixl_status_t mpi_cuda_xfer_test(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    mixl_status_t staged = MIXL_OK, ipc = MIXL_OK;

    if (m->cuda->active_head != NULL) progress_all(m);
    if (cx->staged_pending) {
        if (cx->staged_st == MIXL_IN_PROGRESS) return MIXL_IN_PROGRESS;
        staged = cx->staged_st;
    }
    if (cx->ipc_pending) {
        for (size_t i = 0; i < cx->nipc_ev; i++) {
            mixl_status_t st = mixl_ce_event_query(cx->ipc_ev[i], tp->eb);
            if (st == MIXL_IN_PROGRESS) return MIXL_IN_PROGRESS;
            if (st != MIXL_OK && ipc == MIXL_OK) ipc = st;
        }
    }
    cx->staged_pending = 0;
    cx->ipc_pending = 0;
    return staged != MIXL_OK ? staged : ipc;
}
