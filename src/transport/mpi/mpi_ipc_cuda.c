/*
 * The CUDA IPC device path (mpi_cuda_int.h): a peer on this node that
 * exported an IPC handle for a device region without an MPI window is
 * mapped once (cached on the peer, one mapping per allocation and device)
 * and moved with cudaMemcpyAsync on the copy engine's streams (NVLink or
 * PCIe peer copies), with one completion event per device.
 */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "mem/mem.h"
#include "transport/mpi/mpi_cuda_int.h"
#include "util/clock.h"

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

mixl_status_t mpi_cuda_ipc_check(mixl_tp_t *tp, mpi_tp_t *m, const mixl_tp_peer_t *peer,
                                 const mixl_md_region_t *rr)
{
    const char *reason;

    if (peer->comm_rank == m->rank) return MIXL_OK; /* our own memory: a plain device copy */
    /* Same node by MPI's shared-memory split (mpi_node_init); the host name as
     * well, so metadata that names another host is never mapped. */
    if (peer->comm_rank < 0 || peer->comm_rank >= m->nranks || m->same_node == NULL ||
        !m->same_node[peer->comm_rank] || strcmp(peer->md->hostname, m->cuda->hostname) != 0)
        reason = "the peer is on another host and MPI cannot reach device memory there (no "
                 "CUDA-aware MPI with device windows): target a host region instead";
    else if (!(rr->mpi.flags & MIXL_MD_REGION_IPC))
        reason = "the peer is on this host but exported no CUDA IPC handle for it";
    else if (rr->mpi.window_base > rr->addr)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_BAD_METADATA,
                               "agent %s: region %u of peer %s: IPC allocation base 0x%llx lies "
                               "above the region", tp->agent_name, rr->id, peer->name,
                               (unsigned long long)rr->mpi.window_base);
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
        if (memcmp(o->mpi.ipc_handle, rr->mpi.ipc_handle, sizeof(rr->mpi.ipc_handle)) == 0) {
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
    if (owner && mixl_mem_ipc_open(rr->mpi.ipc_handle, device, &eb, &base) != MIXL_OK)
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

static mixl_status_t ipc_prepare(mixl_tp_t *tp, mpi_tp_t *m, mixl_tp_xfer_t *xfer,
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
        if (xfer->peer->comm_rank == m->rank) {
            /* Our own region: CUDA refuses to open a process's own handle, and
             * the address is valid here anyway. */
            remote = (void *)(uintptr_t)op->remote_addr;
        } else {
            st = ipc_map(tp, xfer->peer, rr, c->device, &base);
            if (st != MIXL_OK) break;
            remote = (uint8_t *)base + (op->remote_addr - rr->mpi.window_base);
        }
        c->dst = xfer->op == MIXL_OP_WRITE ? remote : local;
        c->src = xfer->op == MIXL_OP_WRITE ? local : remote;
        c->len = op->len;
        cx->nipc++;
    }
    if (st == MIXL_OK) st = mpi_cuda_engine(tp, m, &ce);
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

/* Hot path: enqueue every copy, then one event per device (nothing when the
 * transfer has no IPC operation). */
static mixl_status_t ipc_post(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    struct mpi_cuda *c = m->cuda;
    mixl_status_t st = MIXL_OK;

    if (cx->nipc == 0) return MIXL_OK;
    for (size_t i = 0; i < cx->nipc && st == MIXL_OK; i++)
        st = mixl_ce_copy(c->ce, cx->ipc[i].device, cx->ipc[i].dst, cx->ipc[i].src, cx->ipc[i].len,
                          tp->eb);
    for (size_t i = 0; i < cx->nipc_ev && st == MIXL_OK; i++)
        st = mixl_ce_event_record(c->ce, cx->ipc_ev[i], tp->eb);
    if (st != MIXL_OK) {
        ipc_drain(m, cx);
        return st;
    }
    cx->ipc_pending = 1;
    return MIXL_OK;
}

/* Hot path. */
static mixl_status_t ipc_test(mixl_tp_t *tp, mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    mixl_status_t res = MIXL_OK;

    (void)m;
    if (!cx->ipc_pending) return MIXL_OK;
    for (size_t i = 0; i < cx->nipc_ev; i++) {
        mixl_status_t st = mixl_ce_event_query(cx->ipc_ev[i], tp->eb);
        if (st == MIXL_IN_PROGRESS) return MIXL_IN_PROGRESS;
        if (st != MIXL_OK && res == MIXL_OK) res = st;
    }
    return res;
}

static void ipc_release(mpi_tp_t *m, struct mpi_cuda_xfer *cx)
{
    (void)m;
    for (size_t i = 0; i < cx->nipc_ev; i++) mixl_ce_event_destroy(cx->ipc_ev[i]);
    free(cx->ipc_ev);
    free(cx->ipc);
}

const mpi_dev_path_t mpi_path_ipc = {
    .name = "ipc",
    .kind = MIXL_MPI_OP_IPC,
    .prepare = ipc_prepare,
    .post = ipc_post,
    .test = ipc_test,
    .release = ipc_release,
};
