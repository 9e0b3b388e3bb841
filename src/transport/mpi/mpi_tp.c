/*
 * MPI one-sided backend: set-up, windows and registration.
 *
 * Every region registered before start gets its own static window, created
 * collectively by mixl_agent_start() and kept under one lock_all epoch for
 * the agent's lifetime (osc/ucx: ~0.08 us per 8-byte put). Regions
 * registered later are attached to one dynamic window, the documented slower
 * path (osc/ucx looks up the remote region table on every operation, ~8x
 * slower, and caps attachments at 32-48).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(OPEN_MPI) && OPEN_MPI
#include <mpi-ext.h>
#endif

#include "transport/mpi/mpi_cuda.h"
#include "transport/mpi/mpi_tp.h"
#include "util/coll.h"
#include "util/log.h"

mixl_status_t mpi_tp_error(mixl_tp_t *tp, int mpi_rc, const char *fmt, ...)
{
    char what[256], mpimsg[MPI_MAX_ERROR_STRING];
    int n = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (MPI_Error_string(mpi_rc, mpimsg, &n) != MPI_SUCCESS) snprintf(mpimsg, sizeof(mpimsg), "error %d", mpi_rc);
    return mixl_errbuf_set(tp->eb, MIXL_ERR_BACKEND, "agent %s: %s: %s", tp->agent_name, what, mpimsg);
}

static int mpi_query_cuda_aware(void)
{
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
    return MPIX_Query_cuda_support();
#else
    return 0;
#endif
}

/*
 * Agree on the outcome of a collective step of the backend. A rank that
 * succeeded records which rank did not, so every rank's error names it.
 */
static mixl_status_t mpi_agree(mixl_tp_t *tp, mpi_tp_t *m, mixl_status_t local, const char *what)
{
    int bad = -1;
    mixl_status_t st = mixl_coll_agree(m->comm, local, &bad);

    if (st != MIXL_OK && local == MIXL_OK && bad >= 0)
        mixl_errbuf_set(tp->eb, st, "agent %s: %s failed on rank %d (agent %s)", tp->agent_name,
                        what, bad, tp->rank_names[bad]);
    return st;
}

/* A fingerprint of this communicator, so a peer's metadata naming rank r of
 * "our" world is recognised as ours only when it really is. */
static uint64_t mpi_random_u64(void)
{
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) v = 0;
        close(fd);
    }
    if (v == 0) v = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v ^ 0x9e3779b97f4a7c15ull;
    return v;
}

/*
 * Collective: which ranks share this node, by MPI's own answer (a
 * shared-memory split, not host names: containers on different nodes may
 * carry the same name), and the windows' communicator (mpi_tp.h). The split
 * is made on every rank whatever failed before; one made nowhere is an
 * error every rank sees alike.
 */
static mixl_status_t mpi_node_init(mixl_tp_t *tp, mpi_tp_t *m)
{
    MPI_Comm node = MPI_COMM_NULL;
    MPI_Group g_node, g_all;
    size_t n = (size_t)m->nranks;
    int nlocal = 0, *idx = malloc(n * sizeof(int)), *on_node = malloc(n * sizeof(int)), rc;
    mixl_status_t st = MIXL_OK;

    m->wcomm = m->comm;
    m->wrank = m->rank;
    m->wnranks = m->nranks;
    m->same_node = calloc(n, 1);
    m->wrank_of = malloc(n * sizeof(int));
    m->rank_of = malloc(n * sizeof(int));
    if (m->same_node == NULL || m->wrank_of == NULL || m->rank_of == NULL || idx == NULL ||
        on_node == NULL)
        st = mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "agent %s: node map of %d ranks",
                             tp->agent_name, m->nranks);
    /* Inherits comm's error handler (errors return). */
    rc = MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, m->rank, MPI_INFO_NULL, &node);
    if (!mixl_coll_check_created(m->comm, rc, node != MPI_COMM_NULL, "MPI_Comm_split_type for the node map"))
        st = mpi_tp_error(tp, rc, "MPI_Comm_split_type for the node map");
    if (st == MIXL_OK) {
        /* on_node[i]: rank in comm of the node's i-th rank. */
        MPI_Comm_size(node, &nlocal);
        for (int i = 0; i < nlocal; i++) idx[i] = i;
        MPI_Comm_group(node, &g_node);
        MPI_Comm_group(m->comm, &g_all);
        MPI_Group_translate_ranks(g_node, nlocal, idx, g_all, on_node);
        MPI_Group_free(&g_node);
        MPI_Group_free(&g_all);
        for (size_t i = 0; i < n; i++) m->wrank_of[i] = m->rank_of[i] = m->node_only ? -1 : (int)i;
        for (int i = 0; i < nlocal; i++) {
            m->same_node[on_node[i]] = 1;
            if (m->node_only) {
                m->wrank_of[on_node[i]] = i;
                m->rank_of[i] = on_node[i];
            }
        }
        if (m->node_only) {
            m->wcomm = node;
            node = MPI_COMM_NULL;
            MPI_Comm_rank(m->wcomm, &m->wrank);
            m->wnranks = nlocal;
        }
    }
    if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
    free(idx);
    free(on_node);
    return st;
}

static void mpi_node_fini(mpi_tp_t *m)
{
    if (m->wcomm != m->comm && m->wcomm != MPI_COMM_NULL) MPI_Comm_free(&m->wcomm);
    m->wcomm = MPI_COMM_NULL;
    free(m->same_node);
    free(m->wrank_of);
    free(m->rank_of);
    m->same_node = NULL;
    m->wrank_of = m->rank_of = NULL;
}

/*
 * Collective: duplicate the communicator, share a world fingerprint, find the node, set up
 * staging (local) and the notification window (collective), then agree. Every rank makes every
 * collective call whatever failed before it locally; on a common failure
 * every rank frees what it made, again collectively.
 */
static mixl_status_t mpi_init(mixl_tp_t *tp, const mixl_agent_params_t *params)
{
    mpi_tp_t *m = tp->priv;
    mixl_status_t st = MIXL_OK;
    int rc;

    m->comm = m->wcomm = MPI_COMM_NULL;
    m->dyn_win = MPI_WIN_NULL;
    m->notif_win = MPI_WIN_NULL;
    rc = MPI_Comm_dup(tp->comm, &m->comm);
    if (mixl_coll_check_created(tp->comm, rc, m->comm != MPI_COMM_NULL, "MPI_Comm_dup for the MPI backend") != 1)
        return mpi_tp_error(tp, rc, "MPI_Comm_dup for the MPI backend");
    if (rc != MPI_SUCCESS) mixl_coll_keep(&st, mpi_tp_error(tp, rc, "MPI_Comm_dup for the MPI backend"));
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    m->rank = tp->rank;
    m->nranks = tp->nranks;
    m->ring_slots = params->notif_ring;
    m->timeout_ms = params->timeout_ms;
    m->gpu_path = params->gpu_path;
    m->node_only = tp->node_only;
    m->cuda_aware = mpi_query_cuda_aware();
    if (m->rank == 0) m->world = mpi_random_u64();
    rc = MPI_Bcast(&m->world, 1, MPI_UINT64_T, 0, m->comm);
    if (rc != MPI_SUCCESS) mixl_coll_lost(m->comm, rc, "MPI_Bcast of the world fingerprint");

    mixl_coll_keep(&st, mpi_node_init(tp, m));
    /* Windows are made only on a communicator every rank holds alike. */
    st = mpi_agree(tp, m, st, "the node map of the MPI backend");
    if (st != MIXL_OK) {
        mpi_node_fini(m);
        MPI_Comm_free(&m->comm);
        return st;
    }
    /* A refusal here is local: the notification window below is still made with the others. */
    mixl_coll_keep(&st, mpi_cuda_init(tp, m, params));
    mixl_coll_keep(&st, mpi_notif_init(tp, m));
    st = mpi_agree(tp, m, st, "set-up of the MPI backend");
    if (st != MIXL_OK) {
        mpi_notif_fini(m);
        mpi_cuda_fini(m);
        mpi_node_fini(m);
        MPI_Comm_free(&m->comm);
    }
    return st;
}

/* Error handler and the one access epoch of a window. */
static mixl_status_t mpi_win_open(mixl_tp_t *tp, MPI_Win win, const char *what)
{
    int rc;
    MPI_Win_set_errhandler(win, MPI_ERRORS_RETURN);
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
    if (rc != MPI_SUCCESS) return mpi_tp_error(tp, rc, "MPI_Win_lock_all on %s", what);
    return MIXL_OK;
}

/* Device memory goes into a window only when MPI is CUDA-aware and allowed to. */
static int mpi_region_windowable(const mpi_tp_t *m, const mixl_tp_region_t *r)
{
    return r->mem_type != MIXL_MEM_CUDA || m->device_windows;
}

/*
 * Collective: one static window per region index (ranks with fewer regions
 * expose a placeholder page), then the dynamic window. Every rank creates
 * every window whatever failed locally before (a refused device path, a
 * failed lock), and the outcome is agreed at the end; the windows made stay
 * for mpi_fini(), which frees them collectively on every rank alike.
 */
static mixl_status_t mpi_start(mixl_tp_t *tp, mixl_tp_region_t *const *regions, size_t count)
{
    mpi_tp_t *m = tp->priv;
    int mine = (int)count, most = 0, rc;
    mixl_status_t st = MIXL_OK, table;

    /* Collective: device windows only if every rank's self-test passed. */
    mixl_coll_keep(&st, mpi_cuda_select_path(tp, m));

    rc = MPI_Allreduce(&mine, &most, 1, MPI_INT, MPI_MAX, m->comm);
    if (rc != MPI_SUCCESS) mixl_coll_lost(m->comm, rc, "MPI_Allreduce of region counts");
    /* osc/ucx fails on zero-size or NULL bases: ranks with fewer regions expose a page. */
    m->placeholder = calloc(1, 4096);
    m->wins = calloc(most ? (size_t)most : 1, sizeof(*m->wins));
    table = m->placeholder != NULL && m->wins != NULL
                ? MIXL_OK
                : mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "agent %s: window table for %d windows",
                                  tp->agent_name, most);
    /* Windows are made only where every rank can keep their handles. */
    table = mpi_agree(tp, m, table, "allocating the window table");
    if (table != MIXL_OK) return table;

    for (int j = 0; j < most; j++) m->wins[j] = MPI_WIN_NULL;
    m->nwins = most;
    for (int j = 0; j < most; j++) {
        mixl_tp_region_t *r = j < mine ? regions[j] : NULL;
        int use = r != NULL && mpi_region_windowable(m, r);
        char what[64];

        snprintf(what, sizeof(what), "static window %d (region %u)", j, r ? r->id : 0);
        rc = MPI_Win_create(use ? r->addr : m->placeholder, use ? (MPI_Aint)r->len : 4096, 1,
                            MPI_INFO_NULL, m->wcomm, &m->wins[j]);
        if (mixl_coll_check_created(m->wcomm, rc, m->wins[j] != MPI_WIN_NULL, "MPI_Win_create") != 1) {
            /* Consistently refused on every rank: nothing to free, nothing more to make. */
            m->nwins = j;
            mixl_coll_keep(&st, mpi_tp_error(tp, rc, "MPI_Win_create for %s", what));
            break;
        }
        if (rc != MPI_SUCCESS) mixl_coll_keep(&st, mpi_tp_error(tp, rc, "MPI_Win_create for %s", what));
        mixl_coll_keep(&st, mpi_win_open(tp, m->wins[j], what));
        if (use) {
            mpi_region_t *mr = r->tp_priv[tp->id];
            mr->window = j;
            mr->base = (uint64_t)(uintptr_t)r->addr;
        }
    }

    rc = MPI_Win_create_dynamic(MPI_INFO_NULL, m->wcomm, &m->dyn_win);
    if (mixl_coll_check_created(m->wcomm, rc, m->dyn_win != MPI_WIN_NULL, "MPI_Win_create_dynamic") == 1)
        mixl_coll_keep(&st, mpi_win_open(tp, m->dyn_win, "the dynamic window"));
    if (rc != MPI_SUCCESS) mixl_coll_keep(&st, mpi_tp_error(tp, rc, "MPI_Win_create_dynamic"));

    st = mpi_agree(tp, m, st, "window creation");
    if (st == MIXL_OK) m->started = 1;
    return st;
}

static void mpi_fini(mixl_tp_t *tp)
{
    mpi_tp_t *m = tp->priv;

    /* Window frees are collective: every rank gets here from mixl_agent_destroy() (or from a
     * start that failed on some rank, agreed by all) holding the same windows. An epoch that
     * never opened makes MPI_Win_unlock_all return an error, which changes nothing. */
    if (m->dyn_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(m->dyn_win);
        MPI_Win_free(&m->dyn_win);
    }
    for (int j = m->nwins - 1; j >= 0; j--) {
        if (m->wins[j] == MPI_WIN_NULL) continue;
        MPI_Win_unlock_all(m->wins[j]);
        MPI_Win_free(&m->wins[j]);
    }
    free(m->wins);
    free(m->placeholder);
    mpi_cuda_fini(m);
    mpi_notif_fini(m);
    mpi_node_fini(m);
    MPI_Comm_free(&m->comm);
}

static mixl_status_t mpi_mem_register(mixl_tp_t *tp, mixl_tp_region_t *r)
{
    mpi_tp_t *m = tp->priv;
    mpi_region_t *mr;
    mixl_status_t st;
    int rc;

    mr = calloc(1, sizeof(*mr));
    if (mr == NULL)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "agent %s: region %u: MPI region state",
                               tp->agent_name, r->id);
    mr->window = -2;
    r->tp_priv[tp->id] = mr;
    if (r->mem_type == MIXL_MEM_CUDA) {
        st = mpi_cuda_region_register(tp, m, r);
        if (st != MIXL_OK) goto err_state;
    }
    if (!m->started) return MIXL_OK; /* exposed by start() */
    if (!mpi_region_windowable(m, r)) return MIXL_OK; /* device memory: not through MPI */
    rc = MPI_Win_attach(m->dyn_win, r->addr, (MPI_Aint)r->len);
    if (rc != MPI_SUCCESS) {
        st = mpi_tp_error(tp, rc, "late registration of region %u (%zu bytes) in the dynamic "
                          "window (%d already attached)", r->id, r->len, m->dyn_attached);
        goto err_state;
    }
    m->dyn_attached++;
    mr->window = -1;
    mr->base = 0; /* dynamic windows address by absolute address */
    return MIXL_OK;

err_state:
    r->tp_priv[tp->id] = NULL;
    free(mr);
    return st;
}

static mixl_status_t mpi_mem_deregister(mixl_tp_t *tp, mixl_tp_region_t *r)
{
    mpi_tp_t *m = tp->priv;
    mpi_region_t *mr = r->tp_priv[tp->id];

    if (mr == NULL) return MIXL_OK;
    if (mr->window == -1) {
        MPI_Win_detach(m->dyn_win, r->addr);
        m->dyn_attached--;
    }
    /* A static window keeps exposing the memory until the agent is destroyed. */
    r->tp_priv[tp->id] = NULL;
    free(mr);
    return MIXL_OK;
}

/* Contract: fills md->mpi (world, rank) and each region's window; a device
 * region's CUDA IPC export (mpi_cuda.c) rides in the same section. */
static mixl_status_t mpi_export_md(mixl_tp_t *tp, mixl_tp_region_t *const *regions, size_t count,
                                   mixl_metadata_t *md)
{
    mpi_tp_t *m = tp->priv;

    md->mpi.world = m->world;
    md->mpi.rank = m->rank;
    for (size_t i = 0; i < count; i++) {
        const mixl_tp_region_t *r = regions[i];
        const mpi_region_t *mr = r->tp_priv[tp->id];
        mixl_md_region_t *out = &md->regions[i];

        out->mpi.window = mr->window;
        /* A windowed region counts displacements from its window's base; a
         * device region without one, from its CUDA allocation (IPC). */
        out->mpi.window_base = mr->window != -2 ? mr->base : mr->ipc_base;
        out->mpi.flags = mr->md_flags;
        memcpy(out->mpi.ipc_handle, mr->ipc_handle, sizeof(out->mpi.ipc_handle));
        out->mpi.ipc_size = mr->ipc_size;
    }
    return MIXL_OK;
}

/* Contract: reachable when the peer's MPI section names a rank of this
 * world under the peer's own name, and (node_only) that rank shares our
 * node; sets peer->comm_rank. */
static mixl_status_t mpi_peer_add(mixl_tp_t *tp, mixl_tp_peer_t *peer)
{
    mpi_tp_t *m = tp->priv;
    const mixl_metadata_t *md = peer->md;

    if (md->mpi.world != m->world || md->mpi.rank < 0 || md->mpi.rank >= m->nranks ||
        strcmp(tp->rank_names[md->mpi.rank], md->name) != 0)
        return MIXL_ERR_UNREACHABLE;
    if (m->wrank_of[md->mpi.rank] < 0) return MIXL_ERR_UNREACHABLE; /* another node, node_only */
    for (uint32_t i = 0; i < md->region_count; i++)
        if (md->regions[i].mpi.window >= m->nwins)
            return mixl_errbuf_set(tp->eb, MIXL_ERR_BAD_METADATA,
                                   "agent %s: peer %s region %u names static window %d, only %d exist",
                                   tp->agent_name, peer->name, md->regions[i].id,
                                   md->regions[i].mpi.window, m->nwins);
    peer->comm_rank = md->mpi.rank;
    return MIXL_OK;
}

static void mpi_peer_remove(mixl_tp_t *tp, mixl_tp_peer_t *peer)
{
    mpi_cuda_peer_remove(tp, peer);
    peer->comm_rank = -1;
}

static void mpi_path_report(mixl_tp_t *tp, char *buf, size_t len)
{
    mpi_tp_t *m = tp->priv;
    const char *osc = getenv("OMPI_MCA_osc");
    int n;

    n = snprintf(buf, len,
                 "mpi: one-sided, %d static window%s, dynamic window for late registrations, "
                 "%s, osc=%s; ", m->nwins, m->nwins == 1 ? "" : "s",
                 m->wcomm != m->comm ? "windows within this node" : "windows over every rank",
                 osc ? osc : "Open MPI default");
    if (n >= 0 && (size_t)n < len) mpi_cuda_path_report(m, buf + n, len - (size_t)n);
}

const mixl_tp_ops_t mixl_tp_mpi_ops = {
    .size = sizeof(mixl_tp_ops_t),
    .name = "mpi",
#ifdef MIXL_HAVE_CUDA
    .caps = MIXL_TP_CAP_HOST | MIXL_TP_CAP_CUDA | MIXL_TP_CAP_NOTIF,
#else
    .caps = MIXL_TP_CAP_HOST | MIXL_TP_CAP_NOTIF,
#endif
    .flags = MIXL_TP_F_COMM | MIXL_TP_F_ONE_SIDED,
    .priv_size = sizeof(mpi_tp_t),
    .init = mpi_init,
    .start = mpi_start,
    .fini = mpi_fini,
    .mem_register = mpi_mem_register,
    .mem_deregister = mpi_mem_deregister,
    .export_md = mpi_export_md,
    .peer_add = mpi_peer_add,
    .peer_remove = mpi_peer_remove,
    .xfer_prepare = mpi_xfer_prepare,
    .xfer_post = mpi_xfer_post,
    .xfer_test = mpi_xfer_test,
    .xfer_release = mpi_xfer_release,
    .notif_send = mpi_notif_send,
    .notif_poll = mpi_notif_poll,
    .path_report = mpi_path_report,
};
