/*
 * The transport ops table: what every data-plane backend (MPI windows, TCP)
 * implements, and the objects the agent shares with backends.
 *
 * The agent validates everything before a backend sees it: descriptors lie
 * inside registered regions, lists match, the peer is known, contiguous
 * spans are merged. A backend only moves bytes and notifications.
 *
 * Threading: the agent calls a backend from one thread at a time. A backend
 * may run its own progress thread; it then owns the locking of its state.
 */
#ifndef MIXL_TRANSPORT_H
#define MIXL_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/agent.h>
#include <mixl/metadata.h>

#include "util/errbuf.h"

/*
 * Backend slots: the index of a backend in the table of backends.c, of its
 * entry in the per-object tp_priv arrays, and of its public mixl_backend_t
 * bit (slot i is bit 1u << i). Only backends.c and a backend's own files name
 * a slot; the agent walks the table.
 */
typedef enum {
    MIXL_TP_MPI = 0,
    MIXL_TP_TCP = 1,
    MIXL_TP_MAX = 2,
} mixl_tp_id_t;

#define MIXL_TP_BIT(id) (1u << (unsigned)(id))

/* Capability flags: the public MIXL_CAP_* values (include/mixl/agent.h), which the
 * conformance suite reads through mixl_backend_caps() to know what to expect. */
#define MIXL_TP_CAP_HOST MIXL_CAP_HOST
#define MIXL_TP_CAP_CUDA MIXL_CAP_CUDA
#define MIXL_TP_CAP_NOTIF MIXL_CAP_NOTIF
#define MIXL_TP_CAP_CROSS_WORLD MIXL_CAP_CROSS_WORLD
#define MIXL_TP_CAP_PEER_FAILURE MIXL_CAP_PEER_FAILURE

/*
 * What the agent needs to know to run a backend (mixl_tp_ops_t.flags); not
 * public. The agent decides by these, never by a backend's name.
 */
#define MIXL_TP_F_COMM (1u << 0)      /* needs the agent's communicator; init, start and fini
                                       * are collective over it */
#define MIXL_TP_F_ONE_SIDED (1u << 1) /* one-sided RDMA data path (the design's path): an agent
                                       * without one says so loudly at start */

/* A registered local region, as backends see it. */
typedef struct mixl_tp_region {
    uint32_t id;
    void *addr;
    size_t len;
    mixl_mem_type_t mem_type;
    int device;
    void *tp_priv[MIXL_TP_MAX]; /* each backend's per-region state, at its slot */
} mixl_tp_region_t;

/* A peer whose metadata was imported. */
typedef struct mixl_tp_peer {
    char name[MIXL_NAME_MAX];
    mixl_metadata_t *md; /* decoded metadata (owned by the agent) */
    /* Rank of the peer in the agent's process group (mixl_tp_t.comm), -1 when
     * it is not a member: the agent's notion, like comm itself, not a
     * backend's. The backend that can prove membership sets it in peer_add
     * (MPI, from its metadata section: same world fingerprint, same name at
     * that rank); the data-path policy (agent/node.c) reads it for node
     * identity, and backends for their targets. */
    int comm_rank;
    void *tp_priv[MIXL_TP_MAX]; /* each backend's per-peer state, at its slot */
} mixl_tp_peer_t;

/* One merged operation: a contiguous local span and a contiguous remote span. */
typedef struct {
    uint64_t local_addr;
    uint64_t remote_addr;
    uint64_t len;
    mixl_tp_region_t *local_region;
    const mixl_md_region_t *remote_region;
} mixl_tp_op_t;

/* A prepared transfer. */
typedef struct mixl_tp_xfer {
    mixl_op_t op;
    mixl_tp_peer_t *peer;
    mixl_tp_op_t *ops;
    size_t nops;
    uint64_t bytes;
    uint32_t notif_len; /* 0 = no notification */
    uint8_t notif[MIXL_NOTIF_MAX];
    void *tp_priv; /* backend state, set by xfer_prepare */
} mixl_tp_xfer_t;

typedef struct mixl_tp mixl_tp_t;

typedef struct mixl_tp_ops {
    size_t size; /* sizeof(mixl_tp_ops_t), checked at registration */
    const char *name;
    unsigned caps;     /* MIXL_TP_CAP_* */
    unsigned flags;    /* MIXL_TP_F_* */
    size_t priv_size;  /* bytes of tp->priv, zeroed before init */

    /*
     * Set up the backend. For MPI: collective over params->comm. names[] holds
     * every rank's agent name (already gathered by the agent) when comm is set.
     * Errors go to tp->eb with the object named.
     */
    mixl_status_t (*init)(mixl_tp_t *tp, const mixl_agent_params_t *params);
    /* Collective step: expose every region registered so far. */
    mixl_status_t (*start)(mixl_tp_t *tp, mixl_tp_region_t *const *regions, size_t count);
    /* Tear down (collective for MPI). Never fails. */
    void (*fini)(mixl_tp_t *tp);

    /* Register a region (before start: remember it; after start: late path). */
    mixl_status_t (*mem_register)(mixl_tp_t *tp, mixl_tp_region_t *region);
    mixl_status_t (*mem_deregister)(mixl_tp_t *tp, mixl_tp_region_t *region);

    /* Fill this backend's section of the agent's exported metadata (md->mpi,
     * md->tcp, ...). md->regions[i] describes regions[i]; its generic fields
     * are set, the backend adds its per-region fields. */
    mixl_status_t (*export_md)(mixl_tp_t *tp, mixl_tp_region_t *const *regions, size_t count,
                               mixl_metadata_t *md);
    /* MIXL_OK if the backend can reach the peer (and sets peer->tp_priv[id]),
     * MIXL_ERR_UNREACHABLE if not (quietly: another backend may reach it). The
     * agent asks every active backend and keeps one (data-path policy); the
     * others get peer_remove. */
    mixl_status_t (*peer_add)(mixl_tp_t *tp, mixl_tp_peer_t *peer);
    void (*peer_remove)(mixl_tp_t *tp, mixl_tp_peer_t *peer);

    /* Resolve a prepared transfer once (windows, connections); may allocate. */
    mixl_status_t (*xfer_prepare)(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);
    /* Hot path: issue the operations. No allocation, no global lock, no logging. */
    mixl_status_t (*xfer_post)(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);
    /* Hot path: MIXL_OK when done (notification included), MIXL_IN_PROGRESS, or error. */
    mixl_status_t (*xfer_test)(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);
    /* Optional: block until the transfer ends or the clock passes deadline_ns
     * (mixl_now_ns); MIXL_IN_PROGRESS then. A backend whose completions can
     * wake a sleeper offers it so that mixl_xfer_wait sleeps once instead of
     * polling xfer_test; without it mixl_xfer_wait polls. */
    mixl_status_t (*xfer_wait)(mixl_tp_t *tp, mixl_tp_xfer_t *xfer, uint64_t deadline_ns);
    /* Free what xfer_prepare made. The transfer is not in flight. */
    void (*xfer_release)(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);

    /* Send a data-less notification, ordered after earlier transfers to the peer. */
    mixl_status_t (*notif_send)(mixl_tp_t *tp, mixl_tp_peer_t *peer, const void *payload,
                                size_t len);
    /* Collect arrived notifications (peer name filled in). */
    mixl_status_t (*notif_poll)(mixl_tp_t *tp, mixl_notif_t *out, size_t max, size_t *count_p);

    /* One line for mixl_agent_path_report(), written into buf. */
    void (*path_report)(mixl_tp_t *tp, char *buf, size_t len);
} mixl_tp_ops_t;

/* A backend instance inside an agent. */
struct mixl_tp {
    const mixl_tp_ops_t *ops;
    mixl_tp_id_t id;
    void *priv;            /* priv_size bytes of backend state */
    mixl_errbuf_t *eb;     /* the agent's error buffer */
    const char *agent_name;
    MPI_Comm comm;         /* the agent's communicator (MPI_COMM_NULL when none) */
    char (*rank_names)[MIXL_NAME_MAX]; /* agent name of each rank in comm */
    int rank, nranks;
    /* The data-path policy sends none of this backend's transfers to another
     * node (agent/node.c): collective per-peer state (MPI windows) is built
     * among the node's ranks only, and peers elsewhere are unreachable. */
    int node_only;
};

/* Look up a backend by name ("mpi", "tcp") or slot; NULL when not built in. */
const mixl_tp_ops_t *mixl_tp_find(const char *name);
const mixl_tp_ops_t *mixl_tp_get(mixl_tp_id_t id);
/* Check an ops table's mandatory entries; MIXL_ERR_INVALID_PARAM names the hole. */
mixl_status_t mixl_tp_check_ops(const mixl_tp_ops_t *ops, mixl_errbuf_t *eb);

/* Helper for backends: an op that is not supported. */
mixl_status_t mixl_tp_notif_send_enosys(mixl_tp_t *tp, mixl_tp_peer_t *peer, const void *payload,
                                        size_t len);

#endif /* MIXL_TRANSPORT_H */
