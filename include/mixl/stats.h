/*
 * Counters an agent keeps about its own traffic, for an embedding engine to
 * export its own way (mixl-run's Prometheus exporter is built on them).
 *
 * Counting costs the transfer path a few plain stores: no allocation, no
 * lock, no logging. Every counter only grows, from mixl_agent_create() on.
 */
#ifndef MIXL_STATS_H
#define MIXL_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/agent.h>
#include <mixl/export.h>
#include <mixl/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Backends counted separately, indexed by MIXL_STATS_MPI and MIXL_STATS_TCP. */
#define MIXL_STATS_BACKENDS 2
#define MIXL_STATS_MPI 0
#define MIXL_STATS_TCP 1

typedef struct {
    uint64_t posts;          /* transfers posted (mixl_xfer_post accepted them) */
    uint64_t completed;      /* posts that ended with the data visible at the target */
    uint64_t errors;         /* posts that ended in an error, at post or at completion */
    uint64_t bytes;          /* bytes of the completed posts */
    uint64_t notif_sent;     /* notifications delivered, alone or after a transfer's data */
    uint64_t notif_received; /* notifications returned by mixl_notif_poll */
} mixl_counters_t;

/* Set .size = sizeof(mixl_agent_stats_t) so the struct can grow. */
typedef struct {
    size_t size;
    mixl_counters_t total;
    mixl_counters_t backend[MIXL_STATS_BACKENDS];
} mixl_agent_stats_t;

/* One peer's share; notifications received are counted per backend only. */
typedef struct {
    char peer[MIXL_NAME_MAX];
    unsigned backend; /* mixl_backend_t bit that reaches the peer, 0 when none does */
    uint64_t posts, completed, errors, bytes, notif_sent;
} mixl_peer_stats_t;

/*
 * The agent's counters, totals and per backend. May be called from any
 * thread, also while another thread uses the agent: each counter is read
 * whole, though the set is not one instant's cut. stats_p->size must be set.
 */
MIXL_EXPORT mixl_status_t mixl_agent_stats(mixl_agent_h agent, mixl_agent_stats_t *stats_p);

/*
 * Per-peer counters of up to max peers into out; *count_p gets the number of
 * peers the agent knows (may exceed max: call again with a larger array).
 * A peer keeps its counters across re-imports of its metadata and loses
 * them with mixl_peer_forget(). From the agent's thread only (the peer table
 * changes on import).
 */
MIXL_EXPORT mixl_status_t mixl_agent_peer_stats(mixl_agent_h agent, mixl_peer_stats_t *out,
                                                size_t max, size_t *count_p);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_STATS_H */
