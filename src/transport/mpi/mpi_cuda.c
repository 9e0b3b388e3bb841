/*
 * Device memory in the MPI backend (see mpi_cuda.h and, for the modules,
 * mpi_cuda_int.h): set-up, the start-up decision between device windows and
 * staging, registration of device regions, the GPUDirect flush, and a
 * transfer's device part, run through the paths' ops tables.
 *
 * Staging slots and streams are created lazily by the first transfer that
 * needs them, so an agent that never moves device memory never touches the
 * GPU.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "mem/mem.h"
#include "mem/mem_cuda.h"
#include "transport/mpi/mpi_cuda_int.h"
#include "util/log.h"

/* A transfer's device paths, in the order they are posted. */
static const mpi_dev_path_t *const paths[] = {&mpi_path_ipc, &mpi_path_staged};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

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
    free(m->cuda);
    m->cuda = NULL;
}

/* --- start-up: device windows or staging -------------------------------- */

/* cuFlushGPUDirectRDMAWrites through the runtime's driver entry point. */
mpi_cu_flush_fn mpi_cuda_flush_entry(void)
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
mixl_status_t mpi_cuda_flush_devices(mpi_cu_flush_fn fn, uint64_t mask)
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
    if (mpi_cuda_flush_devices(c->flush, c->dev_mask) != MIXL_OK)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_BACKEND,
                               "agent %s: cuFlushGPUDirectRDMAWrites failed", tp->agent_name);
    return MIXL_OK;
}


mixl_status_t mpi_cuda_select_path(mixl_tp_t *tp, mpi_tp_t *m)
{
    struct mpi_cuda *c = m->cuda;
    int want = m->gpu_path != MIXL_GPU_PATH_STAGED && m->cuda_aware, all_want = 0;
    int ok = 0, first_bad = 0, mine;
    char why[160] = "";
    int rc;

    m->device_windows = 0;
    /* Ranks must take the same path through the collective self-test. */
    rc = MPI_Allreduce(&want, &all_want, 1, MPI_INT, MPI_MIN, m->comm);
    if (rc != MPI_SUCCESS) return mpi_tp_error(tp, rc, "MPI_Allreduce of the GPU path choice");
    if (!all_want) {
        if (m->gpu_path == MIXL_GPU_PATH_STAGED) snprintf(c->why, sizeof(c->why), "gpu_path is STAGED");
        else if (!m->cuda_aware) snprintf(c->why, sizeof(c->why), "MPI is not CUDA-aware (%s)", c->aware_why);
        else snprintf(c->why, sizeof(c->why), "another rank's MPI is not CUDA-aware or it asked for staging");
    } else {
        c->flush = mpi_cuda_flush_entry();
        mpi_cuda_selftest(tp, m, &ok, why, sizeof(why));
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
    mpi_region_t *mr = r->tp_priv[tp->id];
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
    st = mixl_mem_ipc_export(r->addr, r->len, &eb, mr->ipc_handle, &base, &mr->ipc_size);
    if (st == MIXL_ERR_INVALID_PARAM)
        return mixl_errbuf_set(tp->eb, st, "agent %s: region %u: %s", tp->agent_name, r->id,
                               mixl_errbuf_get(&eb));
    if (st == MIXL_OK) {
        mr->md_flags |= MIXL_MD_REGION_IPC;
        /* Offsets inside the IPC mapping count from the allocation's base;
         * the metadata's window_base carries it while the region has no window. */
        mr->ipc_base = base;
    } else {
        mixl_info("agent %s: region %u: no CUDA IPC handle (%s)", tp->agent_name, r->id,
                  mixl_errbuf_get(&eb));
    }
    return MIXL_OK;
}

/* --- prepared transfers -------------------------------------------------- */

mixl_status_t mpi_cuda_engine(mixl_tp_t *tp, mpi_tp_t *m, mixl_ce_t **ce_p)
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

mixl_status_t mpi_cuda_xfer_prepare(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
                                    const uint8_t *kinds, struct mpi_cuda_xfer **cx_p)
{
    struct mpi_cuda_xfer *cx = calloc(1, sizeof(*cx));
    mixl_status_t st = MIXL_OK;

    if (cx == NULL) return MIXL_ERR_NO_MEMORY;
    cx->tp = tp;
    cx->m = m;
    cx->xfer = xfer;
    cx->target = m->wrank_of[xfer->peer->comm_rank]; /* a rank of the windows' communicator */
    for (size_t p = 0; p < NPATHS && st == MIXL_OK; p++) {
        size_t n = 0;
        for (size_t i = 0; i < xfer->nops; i++) n += kinds[i] == paths[p]->kind;
        if (n > 0) st = paths[p]->prepare(tp, m, xfer, kinds, cx, n);
    }
    if (st != MIXL_OK) {
        mpi_cuda_xfer_release(m, cx);
        return st;
    }
    *cx_p = cx;
    return MIXL_OK;
}

void mpi_cuda_xfer_release(mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    if (cx == NULL) return;
    for (size_t p = 0; p < NPATHS; p++) paths[p]->release(m, cx);
    free(cx);
}

/* Hot path: start every path that has operations; MIXL_IN_PROGRESS. */
mixl_status_t mpi_cuda_xfer_post(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    for (size_t p = 0; p < NPATHS; p++) {
        mixl_status_t st = paths[p]->post(tp, m, cx);
        if (st != MIXL_OK) return st;
    }
    return MIXL_IN_PROGRESS;
}

/* Hot path: every path is asked (the staged one progresses all staged
 * transfers); in progress while any is, else the first error. */
mixl_status_t mpi_cuda_xfer_test(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    mixl_status_t res = MIXL_OK;
    int busy = 0;

    for (size_t p = 0; p < NPATHS; p++) {
        mixl_status_t st = paths[p]->test(tp, m, cx);
        if (st == MIXL_IN_PROGRESS) busy = 1;
        else if (st != MIXL_OK && res == MIXL_OK) res = st;
    }
    return busy ? MIXL_IN_PROGRESS : res;
}
