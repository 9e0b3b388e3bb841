/*
 * Internals shared by the roles of a mixl-run job: the per-rank context,
 * control messages between roles, and notification payloads.
 *
 * Control messages (request placement, RemotePrefillRequest, completion
 * reports) go over MPI two-sided messaging on a duplicate of the job's
 * communicator, always non-blocking: sends sit in an outbox that the event
 * loop tests, receives are probed. KV data and the per-layer "landed" /
 * "ready" / "freed" signals go through the MIXL agent (one-sided).
 */
#ifndef MIXL_DISAGG_DG_INT_H
#define MIXL_DISAGG_DG_INT_H

#include <poll.h>
#include <stdint.h>

#include <mixl/agent.h>
#include <mixl/registry.h>
#include <mixl/stats.h>

#include "config/run_config.h"
#include "disagg/plan.h"
#include "disagg/workload.h"
#include "kv/layout.h"
#include "kv/mem.h"
#include "kv/runs.h"

/* Control message types. */
enum {
    DG_MSG_ALLOC = 1,    /* router -> decode leader: allocate blocks for req */
    DG_MSG_ALLOC_OK,     /* leader -> router: the block runs */
    DG_MSG_ALLOC_FULL,   /* leader -> router: no room now (router requeues) */
    DG_MSG_PREFILL,      /* router -> prefill ranks: the RemotePrefillRequest */
    DG_MSG_EXPECT,       /* router -> decode ranks: KV for req is coming */
    DG_MSG_PREFILL_DONE, /* prefill rank -> router: timeline and transfer figures */
    DG_MSG_DECODE_DONE,  /* decode rank -> router: verification, timeline */
    DG_MSG_FREE,         /* router -> decode leader: release req's blocks */
    DG_MSG_STOP,         /* router -> all: the run is over */
    DG_MSG_STOPPED,      /* all -> router: acknowledged */
    DG_MSG_PEER_DEAD,    /* router -> workers: rank `req` died; stop using it */
};

/* Timeline slots (ns on the router's clock). */
enum {
    DG_T_ARRIVAL = 0,
    DG_T_ALLOC,
    DG_T_PREFILL_START,
    DG_T_PREFILL_END,
    DG_T_FIRST_BYTE,
    DG_T_LAST_BYTE,
    DG_T_NOTIFY,
    DG_T_FIRST_TOKEN,
    DG_T_DECODE_END,
    DG_T_COUNT
};

/* Room for a host name (gethostname), for messages naming where a rank ran. */
#define DG_HOST_MAX 64

/* Registry operation times of one rank (publish, fetch) for mixl_registry_operation_seconds. */
#define DG_REG_OPS 2
#define DG_REG_BUCKETS 12
typedef struct {
    uint32_t count[DG_REG_OPS][DG_REG_BUCKETS + 1]; /* per bucket; the last one above every bound */
    double sum_s[DG_REG_OPS];
} dg_reg_times_t;

/* One control message; nruns mixl_kv_run_t follow it. */
typedef struct {
    uint32_t type;
    int32_t status; /* mixl_status_t of the reported step */
    uint64_t req;
    uint64_t tokens;
    uint64_t out_tokens;
    int32_t prefill_inst, decode_inst;
    uint32_t nruns;
    uint32_t epoch; /* the sweep point it belongs to (set by dg_send) */
    int64_t t[DG_T_COUNT];
    uint64_t bytes, ops, xfers, busy_ns, lat_sum_ns, bad_blocks;
    mixl_counters_t agent; /* reports: the sender's agent counters (set by dg_send) */
    dg_reg_times_t reg;    /* reports: the sender's registry operation times (set by dg_send) */
} dg_msg_t;

/* Notification payloads (fit MIXL_NOTIF_MAX). */
#define DG_NOTIF_MAGIC 0x4d58444eu /* "MXDN" */
enum {
    DG_NOTIF_LAYER = 1, /* push: layer's K and V landed in the decode blocks */
    DG_NOTIF_DONE,      /* push: every layer of the request landed (completion) */
    DG_NOTIF_READY,     /* pull: layer computed, decode may READ it */
    DG_NOTIF_FREED,     /* pull: decode read the layer, the slot may be reused */
    DG_NOTIF_ABORT,     /* the request failed on the sender; stop waiting for it */
};
typedef struct {
    uint32_t magic;
    uint16_t kind;
    uint16_t layer;
    uint64_t req;
    int32_t src_rank;
    int32_t status;
    uint32_t epoch; /* the sweep point it belongs to: a late one from an earlier point is dropped */
    uint32_t pad;
} dg_notif_t;

/* A pending non-blocking send. */
typedef struct {
    MPI_Request req;
    void *buf;
    int dest;
} dg_out_t;

typedef struct {
    const mixl_run_config_t *cfg;
    mixl_dg_plan_t plan;
    mixl_dg_rank_t me;
    int rank, world;
    MPI_Comm ctl;
    int timeout_ms;
    int64_t clock_offset_ns; /* add to the local monotonic clock to get the router's */
    char clock_sync[160];    /* rank 0: how the ranks' clocks were aligned (results) */
    char (*names)[MIXL_NAME_MAX];
    char (*hosts)[DG_HOST_MAX]; /* each rank's host name */
    uint64_t *peer_base; /* each rank's registered KV memory base address */
    unsigned peers_on[2]; /* rank 0: peers over mpi and over tcp, summed over every rank */
    /* Idle passes spent yielding before sleeping (dg_idle): many while a peer
     * moves data over MPI, whose one-sided operations across nodes progress
     * only while this rank calls MPI, and on the router, whose dispatch
     * latency is every request's (sleeping there cost 10% of the default
     * run's wall time); none on a worker whose data peers are all over TCP,
     * whose progress thread needs no help (the yields took a fifth of the
     * CPU of a 2-core node from the data plane, docs/performance.md). */
    unsigned idle_yields;

    mixl_agent_h agent;
    mixl_registry_h reg; /* metadata registry (rank 0 serves it for backend mpi) */
    mixl_md_store_h store;
    mixl_kv_mem_t mem; /* pool (decode) or layer buffers (prefill) */
    mixl_region_h region;
    mixl_kv_layout_t layout;

    /* Sweep point on this set-up: control messages and notifications of another are dropped,
     * and the KV fill of each point differs (stale blocks of an earlier point fail the check). */
    uint32_t epoch;
    mixl_counters_t agent_base; /* the agent's counters when the point began */

    struct dg_live *live; /* router: the Prometheus exporter, NULL when metrics.port is 0 */
    dg_reg_times_t reg_times; /* this rank's registry operations (set-up) */

    dg_out_t *outbox;
    size_t nout, capout;

    /* Resident memory: sampled when this rank finished DG_RSS_MARK requests and at the end
     * (the soak test checks that it does not grow per request). */
    uint64_t finished;
    long rss_mark_kib;

    /* Liveness (alive.c): router: one connection per worker; worker: entry 0, the router. */
    struct pollfd *alive;
    int watching;          /* the connections are up: deaths are detected */
    int64_t alive_next_ns; /* next look at them */
    uint8_t *dead;         /* ranks known dead: nothing is sent to them any more */
    int ndead;
    int router_gone; /* worker: the router died */
    int stalled;     /* the injected stall happened (once per run) */

    /* Notifications taken from the agent but not yet claimed (request not known yet). */
    dg_notif_t *parked;
    size_t nparked, capparked;
} mixl_dg_t;

/* The id a request's KV content is derived from: the request and the sweep point. */
static inline uint64_t dg_fill_id(const mixl_dg_t *dg, uint64_t req)
{
    return req ^ ((uint64_t)dg->epoch << 40);
}

/* Agents this process created so far (a sweep re-creates them where a point needs it). */
unsigned long long dg_agents_created(void);

/* Requests after which each rank samples its resident memory. */
#define DG_RSS_MARK 1000

/* This rank is done with one more request (counts it, samples RSS at DG_RSS_MARK). */
void dg_finished_one(mixl_dg_t *dg);
/* Resident set size of this process in KiB, -1 when unknown. */
long dg_rss_kib(void);

/* Router-clock time now. */
int64_t dg_now(const mixl_dg_t *dg);

/*
 * Back off when a loop found nothing to do: spin briefly (lowest latency),
 * then yield (oversubscribed nodes) for dg->idle_yields passes, then sleep
 * 50 us so idle ranks do not burn a core. *idle counts consecutive idle
 * passes.
 */
void dg_idle(const mixl_dg_t *dg, unsigned *idle);
#define DG_IDLE_YIELDS 4032 /* yielding passes while a data peer is over MPI */

/* Control channel. */
mixl_status_t dg_send(mixl_dg_t *dg, int dest, const dg_msg_t *msg, const mixl_kv_run_t *runs);
/* Take one message if there is one: 1 and *msg_p (malloc'd, runs follow), or 0. */
int dg_poll(mixl_dg_t *dg, int *src_p, dg_msg_t **msg_p);
/* Progress the outbox; with drain, wait (bounded by the timeout) until it is empty. */
mixl_status_t dg_flush(mixl_dg_t *dg, int drain);
static inline const mixl_kv_run_t *dg_runs(const dg_msg_t *m)
{
    return (const mixl_kv_run_t *)(m + 1);
}

/*
 * Create one request's transfers, layer by layer and peer by peer, into
 * xfers[l * npeers + p]: WRITE (prefill: from our layer buffers into each
 * peer's pool, with a layer notification) or READ (decode: from each peer's
 * layer buffers into our pool). peer_layouts[p] is the KV layout of rank
 * peers[p]. On failure the transfers made so far stay in xfers for the
 * caller to release; the agent has logged the cause.
 */
mixl_status_t dg_kv_xfers(mixl_dg_t *dg, const dg_msg_t *m, mixl_op_t op, int layers,
                          const int *peers, const mixl_kv_layout_t *peer_layouts, int npeers,
                          mixl_xfer_h *xfers);

/* Notifications: send (retrying while the peer's ring is full), collect, park. */
mixl_status_t dg_notify(mixl_dg_t *dg, int dest, int kind, uint64_t req, int layer, int status);
/* Fill out[] with up to max arrived notifications (parked first); returns the count. */
size_t dg_notifs(mixl_dg_t *dg, dg_notif_t *out, size_t max);
/* Keep a notification for later (its request is not known yet). */
void dg_park(mixl_dg_t *dg, const dg_notif_t *n);

/*
 * Liveness (alive.c). Setup is collective over the control communicator and
 * never fails the run: when the connections cannot be made the router warns
 * once and deaths go undetected. Poll returns a rank whose connection
 * closed (router: a worker; worker: 0 for the router), else -1; it looks at
 * most every 2 ms, one poll() call.
 */
mixl_status_t dg_alive_setup(mixl_dg_t *dg);
int dg_alive_poll(mixl_dg_t *dg);
void dg_alive_close(mixl_dg_t *dg);
/* Worker: the router says rank r died (DG_MSG_PEER_DEAD). */
void dg_peer_dead(mixl_dg_t *dg, int r);

/* Injected faults (the `faults:` section) that hit this rank at request req. */
void dg_fault_at(mixl_dg_t *dg, uint64_t req);
/* Whether this rank corrupts layer l of request req / drops its notification. */
int dg_fault_corrupts(const mixl_dg_t *dg, uint64_t req, int l);
int dg_fault_drops(const mixl_dg_t *dg, uint64_t req);

/* Set-up shared by every role: agent, memory, metadata exchange, clock sync. */
mixl_status_t dg_setup(mixl_dg_t *dg);
void dg_teardown(mixl_dg_t *dg);

/* The roles. Each returns when the router says stop; the router returns the results. */
struct mixl_dg_results;
mixl_status_t dg_router_run(mixl_dg_t *dg, const mixl_workload_t *wl, struct mixl_dg_results *res);
mixl_status_t dg_prefill_run(mixl_dg_t *dg);
mixl_status_t dg_decode_run(mixl_dg_t *dg);

/*
 * The one place peers' metadata is exchanged (collective): every worker
 * publishes its agent's metadata in the registry and imports the metadata
 * of every other worker from it.
 */
mixl_status_t dg_exchange_metadata(mixl_dg_t *dg);

#endif /* MIXL_DISAGG_DG_INT_H */
