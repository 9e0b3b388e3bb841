/*
 * Node facts and the per-peer data path. Which ranks share a node comes from
 * MPI itself (MPI_COMM_TYPE_SHARED), not from host names, so containers or
 * namespaces with equal names are told apart. One-sided MPI to a rank on
 * another node is emulated over TCP (UCX active messages, or osc pt2pt) when
 * either node lacks an RDMA transport; measured on emulated nodes, MIXL's own
 * TCP data plane was 21x faster end to end there, so AUTO takes it for such
 * peers (docs/performance.md).
 *
 * This is the data-path policy, and the one file of the agent that names
 * backends: the public data_path option and the TCP address choice are about
 * the MPI/TCP pair. Everything else in src/agent walks the backend table.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "agent/netif.h"
#include "util/log.h"

enum {
    RMA_NATIVE = 0,
    RMA_NO_DEVICE = 1, /* no RDMA device: UCX reaches other nodes over tcp only */
    RMA_UCX_TLS = 2,   /* UCX_TLS leaves no RDMA transport */
    RMA_PT2PT = 3,     /* Open MPI's osc pt2pt: one-sided over two-sided messages */
};

static const char *rma_why[] = {
    [RMA_NATIVE] = "RDMA device on every node",
    [RMA_NO_DEVICE] = "no RDMA device",
    [RMA_UCX_TLS] = "UCX_TLS has no RDMA transport",
    [RMA_PT2PT] = "osc pt2pt",
};

static int has_rdma_device(void)
{
    const char *root = getenv("MIXL_SYSFS_INFINIBAND");
    DIR *d = opendir(root != NULL ? root : "/sys/class/infiniband");
    struct dirent *e;
    int n = 0;

    if (d == NULL) return 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n > 0;
}

/* Whether one-sided MPI from this rank to another node can be native RDMA. */
static int rma_native_here(void)
{
    const char *osc = getenv("OMPI_MCA_osc"), *tls = getenv("UCX_TLS");

    if (osc != NULL && strstr(osc, "pt2pt") != NULL && strstr(osc, "ucx") == NULL) return RMA_PT2PT;
    if (!has_rdma_device()) return RMA_NO_DEVICE;
    if (tls != NULL && tls[0] != '\0' && strstr(tls, "all") == NULL && strstr(tls, "rc") == NULL &&
        strstr(tls, "dc") == NULL && strstr(tls, "ud") == NULL && strstr(tls, "ib") == NULL)
        return RMA_UCX_TLS;
    return RMA_NATIVE;
}

static mixl_status_t gather_nodes(mixl_agent_h agent)
{
    MPI_Comm node = MPI_COMM_NULL;
    int leader = agent->rank, mine[2], *all = NULL;
    mixl_status_t st = MIXL_OK;

    agent->node_of = calloc((size_t)agent->nranks, sizeof(int));
    agent->rma_native = calloc((size_t)agent->nranks, sizeof(int));
    all = calloc((size_t)agent->nranks * 2, sizeof(int));
    if (agent->node_of == NULL || agent->rma_native == NULL || all == NULL) st = MIXL_ERR_NO_MEMORY;
    st = mixl_agent_agree(agent, st);
    if (st != MIXL_OK) goto out;
    /* Every rank takes part in each collective whatever happened before. */
    if (MPI_Comm_split_type(agent->comm, MPI_COMM_TYPE_SHARED, agent->rank, MPI_INFO_NULL, &node) !=
            MPI_SUCCESS ||
        MPI_Allreduce(&agent->rank, &leader, 1, MPI_INT, MPI_MIN, node) != MPI_SUCCESS)
        st = MIXL_ERR_BACKEND;
    mine[0] = leader;
    mine[1] = rma_native_here();
    if (MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, agent->comm) != MPI_SUCCESS)
        st = MIXL_ERR_BACKEND;
    st = mixl_agent_agree(agent, st);
    if (st != MIXL_OK) {
        mixl_errbuf_set(&agent->eb, st, "agent %s: cannot find which ranks share a node",
                        agent->name);
        goto out;
    }
    agent->nnodes = 0;
    for (int r = 0; r < agent->nranks; r++) {
        agent->node_of[r] = all[2 * r];
        agent->rma_native[r] = all[2 * r + 1];
        if (agent->node_of[r] == r) agent->nnodes++;
    }
out:
    if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
    free(all);
    return st;
}

/* tcp_bind "auto": loopback while every rank is on this node, else an address peers reach. */
static mixl_status_t resolve_tcp_bind(mixl_agent_h agent)
{
    char addr[64], err[320];
    const char *why;
    const char *iface = agent->params.tcp_interface;

    if (iface != NULL && iface[0] != '\0') {
        if (mixl_netif_lookup(iface, err, sizeof(err), addr) != MIXL_OK)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                                   "agent %s: tcp interface: %s", agent->name, err);
        snprintf(agent->tcp_bind, sizeof(agent->tcp_bind), "%s", addr);
        snprintf(agent->tcp_bind_why, sizeof(agent->tcp_bind_why), "interface %s", iface);
        return MIXL_OK;
    }
    if (strcmp(agent->tcp_bind, "auto") != 0) {
        snprintf(agent->tcp_bind_why, sizeof(agent->tcp_bind_why), "configured");
        return MIXL_OK;
    }
    if (agent->nnodes <= 1 || mixl_netif_auto(addr, &why) != MIXL_OK) {
        snprintf(agent->tcp_bind, sizeof(agent->tcp_bind), "127.0.0.1");
        snprintf(agent->tcp_bind_why, sizeof(agent->tcp_bind_why), "%s",
                 agent->nnodes <= 1 ? "every rank on one node" : "no interface but loopback");
        return MIXL_OK;
    }
    snprintf(agent->tcp_bind, sizeof(agent->tcp_bind), "%s", addr);
    snprintf(agent->tcp_bind_why, sizeof(agent->tcp_bind_why), "%s", why);
    return MIXL_OK;
}

mixl_status_t mixl_agent_node_setup(mixl_agent_h agent)
{
    mixl_status_t st = MIXL_OK;

    agent->nnodes = 1;
    if (agent->comm != MPI_COMM_NULL) st = gather_nodes(agent);
    if (st == MIXL_OK) st = resolve_tcp_bind(agent);
    return st;
}

void mixl_agent_node_free(mixl_agent_h agent)
{
    free(agent->node_of);
    free(agent->rma_native);
    agent->node_of = agent->rma_native = NULL;
}

/* First rank whose node cannot do native one-sided MPI, or -1. */
static int first_emulated(mixl_agent_h agent)
{
    if (agent->rma_native == NULL) return -1;
    for (int r = 0; r < agent->nranks; r++)
        if (agent->rma_native[r] != RMA_NATIVE) return r;
    return -1;
}

void mixl_agent_path_choose(mixl_agent_h agent)
{
    char *c = agent->path_choice;
    size_t len = sizeof(agent->path_choice);
    int both = agent->tp_active[MIXL_TP_MPI] && agent->tp_active[MIXL_TP_TCP], r;

    if (!both)
        snprintf(c, len, "%s only (the other backend is %s)",
                 agent->tp_active[MIXL_TP_MPI] ? "mpi" : "tcp",
                 agent->params.backends == (MIXL_BACKEND_MPI | MIXL_BACKEND_TCP) ? "unavailable"
                                                                                  : "disabled");
    else if (agent->params.data_path == MIXL_DATA_PATH_MPI)
        snprintf(c, len, "mpi (forced)");
    else if (agent->params.data_path == MIXL_DATA_PATH_TCP)
        snprintf(c, len, "tcp (forced)");
    else if (agent->nnodes <= 1)
        snprintf(c, len, "auto: mpi (every rank on one node)");
    else if ((r = first_emulated(agent)) < 0)
        snprintf(c, len, "auto: mpi between nodes (%s), mpi within a node", rma_why[RMA_NATIVE]);
    else
        snprintf(c, len,
                 "auto: tcp between nodes (one-sided MPI is emulated there: %s on rank %d's node), "
                 "mpi within a node",
                 rma_why[agent->rma_native[r]], r);
}

/*
 * 1 when MPI carries nothing between nodes: TCP is forced, or on AUTO no two
 * ranks on different nodes both have native one-sided MPI (prefer_tcp below
 * sends every such pair over TCP). The MPI backend then builds its windows
 * among each node's ranks only, so MPI_Finalize has no endpoint to another
 * node to close (mpi_tp.h says why that matters over UCX's tcp transport).
 * Needs the TCP backend: a TCP backend that fails to start ends the agent.
 */
int mixl_agent_node_only(mixl_agent_h agent, int i)
{
    int native_node = -1;

    if (i != MIXL_TP_MPI || agent->nnodes <= 1 || agent->node_of == NULL ||
        !(agent->params.backends & MIXL_TP_BIT(MIXL_TP_TCP)))
        return 0;
    if (agent->params.data_path == MIXL_DATA_PATH_TCP) return 1;
    if (agent->params.data_path == MIXL_DATA_PATH_MPI) return 0;
    for (int r = 0; r < agent->nranks; r++) {
        if (agent->rma_native[r] != RMA_NATIVE) continue;
        if (native_node >= 0 && agent->node_of[r] != native_node) return 0;
        native_node = agent->node_of[r];
    }
    return 1;
}

/* 1 when the policy sends this peer's transfers over TCP although MPI reaches it. */
static int prefer_tcp(mixl_agent_h agent, const mixl_peer_t *peer)
{
    int me = agent->rank, them = peer->tp.comm_rank;

    if (agent->params.data_path == MIXL_DATA_PATH_TCP) return 1;
    if (agent->params.data_path == MIXL_DATA_PATH_MPI) return 0;
    if (them < 0 || agent->node_of == NULL || agent->node_of[me] == agent->node_of[them]) return 0;
    return agent->rma_native[me] != RMA_NATIVE || agent->rma_native[them] != RMA_NATIVE;
}

int mixl_agent_pick_backend(mixl_agent_h agent, const mixl_peer_t *peer, unsigned reachable)
{
    if ((reachable & MIXL_TP_BIT(MIXL_TP_TCP)) && (reachable & MIXL_TP_BIT(MIXL_TP_MPI)) &&
        prefer_tcp(agent, peer))
        return MIXL_TP_TCP;
    /* Otherwise the first in table order. */
    for (int i = 0; i < MIXL_TP_MAX; i++)
        if (reachable & MIXL_TP_BIT(i)) return i;
    return -1;
}

void mixl_agent_path_note(mixl_agent_h agent, char *p, size_t left)
{
    if (agent->tp_active[MIXL_TP_TCP] && left > 1) {
        int n = snprintf(p, left, " (tcp address: %s)", agent->tcp_bind_why);
        if (n > 0 && (size_t)n < left) p += n, left -= (size_t)n;
    }
    if (agent->tp_active[MIXL_TP_MPI] && agent->tp_active[MIXL_TP_TCP] && left > 1)
        snprintf(p, left, " [path %s]", agent->path_choice);
}

const char *mixl_agent_path_choice(mixl_agent_h agent)
{
    if (agent == NULL) return "";
    return agent->started ? agent->path_choice : "not started";
}

unsigned mixl_agent_peers_on(mixl_agent_h agent, unsigned backend)
{
    unsigned n = 0;
    int id = -1;

    for (int i = 0; i < MIXL_TP_MAX; i++)
        if (backend == MIXL_TP_BIT(i)) id = i;
    if (agent == NULL || id < 0) return 0;
    for (size_t i = 0; i < agent->npeers; i++)
        if (agent->peers[i]->backend == id) n++;
    return n;
}
