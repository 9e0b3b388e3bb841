/*
 * Agent internals shared by the files of src/agent: the agent, region, peer
 * and transfer objects. Backends never include this header; they see the
 * mixl_tp_* views embedded at the start of these structs.
 */
#ifndef MIXL_AGENT_INT_H
#define MIXL_AGENT_INT_H

#include <stdatomic.h>

#include <mixl/agent.h>
#include <mixl/metadata.h>

#include "transport/transport.h"
#include "util/errbuf.h"

#define MIXL_DEFAULT_TIMEOUT_MS 30000
#define MIXL_DEFAULT_NOTIF_RING 256
#define MIXL_DEFAULT_STAGING_SLOTS 2
#define MIXL_DEFAULT_STAGING_BYTES (8u << 20)
/* Released requests wait this many further releases before their memory is
 * reused, so a stale handle is caught as MIXL_ERR_BAD_STATE meanwhile. */
#define MIXL_XFER_QUARANTINE 1024

/*
 * Traffic counters (include/mixl/stats.h). Only the agent's thread writes
 * them and any thread may read them: relaxed atomics keep a value whole,
 * and an increment stays a plain load and store (no locked instruction).
 */
typedef struct {
    _Atomic uint64_t posts, completed, errors, bytes, notif_sent, notif_received;
} mixl_ctr_t;

static inline void mixl_ctr_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

struct mixl_region {
    mixl_tp_region_t tp; /* first: backends get &region->tp */
    mixl_agent_h agent;
    unsigned refs;       /* prepared requests using the region */
    int late;            /* registered after mixl_agent_start() */
};

typedef struct mixl_peer {
    mixl_tp_peer_t tp;   /* first */
    int backend;         /* slot (mixl_tp_id_t) chosen for this peer, -1 = unreachable */
    unsigned refs;       /* prepared requests to this peer */
    uint32_t blob_crc;   /* of the imported blob: identical re-imports are no-ops */
    size_t blob_len;
    const mixl_md_region_t **by_addr; /* md->regions sorted by address */
    mixl_ctr_t ctr;      /* this peer's share of the agent's counters */
} mixl_peer_t;

typedef enum {
    XFER_IDLE = 0,   /* prepared, not in flight */
    XFER_POSTED,     /* in flight */
    XFER_RELEASED,   /* handle no longer valid */
} xfer_state_t;

#define MIXL_XFER_MAGIC 0x4d49584c58464552ull /* "MIXLXFER" */

struct mixl_xfer {
    uint64_t magic;
    mixl_tp_xfer_t tp;
    mixl_agent_h agent;
    mixl_peer_t *peer;  /* valid until release */
    char peer_name[MIXL_NAME_MAX]; /* for messages about released requests */
    mixl_tp_t *backend;
    xfer_state_t state;
    mixl_status_t last; /* outcome of the last completed post */
    struct mixl_xfer *prev, *next; /* the agent's live requests */
};

struct mixl_agent {
    char name[MIXL_NAME_MAX];
    char engine_id[MIXL_NAME_MAX];
    char hostname[MIXL_NAME_MAX];
    char tcp_bind[MIXL_NAME_MAX];
    mixl_agent_params_t params; /* copy; string fields point into this struct */
    mixl_errbuf_t eb;

    MPI_Comm comm; /* duplicate of params.comm, or MPI_COMM_NULL */
    int rank, nranks;
    char (*rank_names)[MIXL_NAME_MAX];

    mixl_tp_t tps[MIXL_TP_MAX];
    int tp_active[MIXL_TP_MAX];
    int started;

    /* Regions sorted by address (no overlaps), for descriptor lookup. */
    struct mixl_region **regions;
    size_t nregions, cap_regions;
    uint32_t next_region_id;

    mixl_peer_t **peers;
    size_t npeers, cap_peers;

    struct mixl_xfer *quarantine[MIXL_XFER_QUARANTINE];
    size_t quarantine_head, quarantine_count;
    struct mixl_xfer *live; /* requests created and not released */

    char path_report[512];

    /* Node facts (node.c), gathered at create when the agent has a communicator. */
    int *node_of;    /* per rank: lowest rank on its node (MPI_COMM_TYPE_SHARED) */
    int *rma_native; /* per rank: 0 = one-sided MPI to another node is native, else why not */
    int nnodes;
    char tcp_bind_why[96];  /* how the TCP address was chosen */
    char path_choice[384];  /* policy and reason, the same text on every rank */
    mixl_ctr_t ctr, tp_ctr[MIXL_TP_MAX]; /* totals and per backend */
};

/* Region containing [addr, addr+len), or NULL. */
struct mixl_region *mixl_agent_find_region(mixl_agent_h agent, uint64_t addr, uint64_t len);
mixl_peer_t *mixl_agent_find_peer(mixl_agent_h agent, const char *name);
/* Remote region of peer containing [addr, addr+len), or NULL. */
const mixl_md_region_t *mixl_peer_find_region(const mixl_peer_t *peer, uint64_t addr, uint64_t len);
void mixl_peers_destroy(mixl_agent_h agent);

/* node.c: gather node facts and resolve the TCP address (collective when the
 * agent has a communicator; before the backends start). */
mixl_status_t mixl_agent_node_setup(mixl_agent_h agent);
void mixl_agent_node_free(mixl_agent_h agent);
/* 1 when the policy sends none of backend i's transfers to another node
 * (mixl_tp_t.node_only); known before the backends start. */
int mixl_agent_node_only(mixl_agent_h agent, int i);
/* Write agent->path_choice once the active backends are known. */
void mixl_agent_path_choose(mixl_agent_h agent);
/* The data-path policy: which of the backends that reach a peer (slot bits)
 * carries its transfers; -1 when none does. */
int mixl_agent_pick_backend(mixl_agent_h agent, const mixl_peer_t *peer, unsigned reachable);
/* Append the policy's part of the path report (address choice, path per peer). */
void mixl_agent_path_note(mixl_agent_h agent, char *p, size_t left);
void mixl_regions_destroy(mixl_agent_h agent);
void mixl_xfers_destroy(mixl_agent_h agent);

/* Count a post's outcome (st from the backend's post or test) and a delivered notification. */
void mixl_stats_xfer(struct mixl_xfer *xfer, int posted, mixl_status_t st);
void mixl_stats_notif_sent(mixl_agent_h agent, mixl_peer_t *peer, int backend);
void mixl_stats_notif_received(mixl_agent_h agent, int backend, size_t n);

/*
 * Make every rank agree on an outcome: returns the lowest (worst) status any
 * rank passed in. No-op without a communicator.
 */
mixl_status_t mixl_agent_agree(mixl_agent_h agent, mixl_status_t local);

#endif /* MIXL_AGENT_INT_H */
