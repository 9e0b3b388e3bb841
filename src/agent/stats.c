/*
 * The agent's traffic counters (include/mixl/stats.h): counted on the
 * transfer path by the agent's thread, read by anyone.
 */
#include <mixl/stats.h>

#include <stdio.h>
#include <string.h>

#include "agent/agent_int.h"

static void ctr_xfer(mixl_ctr_t *c, int posted, mixl_status_t st, uint64_t bytes, int notif)
{
    if (posted) mixl_ctr_add(&c->posts, 1);
    if (st == MIXL_OK) {
        mixl_ctr_add(&c->completed, 1);
        mixl_ctr_add(&c->bytes, bytes);
        if (notif) mixl_ctr_add(&c->notif_sent, 1);
    } else if (st != MIXL_IN_PROGRESS) {
        mixl_ctr_add(&c->errors, 1);
    }
}

/* Hot path: a few relaxed stores per post and per completion. */
void mixl_stats_xfer(struct mixl_xfer *xfer, int posted, mixl_status_t st)
{
    mixl_agent_h agent = xfer->agent;
    int tp = (int)(xfer->backend - agent->tps);
    int notif = xfer->tp.notif_len > 0;
    ctr_xfer(&agent->ctr, posted, st, xfer->tp.bytes, notif);
    ctr_xfer(&agent->tp_ctr[tp], posted, st, xfer->tp.bytes, notif);
    ctr_xfer(&xfer->peer->ctr, posted, st, xfer->tp.bytes, notif);
}

void mixl_stats_notif_sent(mixl_agent_h agent, mixl_peer_t *peer, int backend)
{
    mixl_ctr_add(&agent->ctr.notif_sent, 1);
    mixl_ctr_add(&agent->tp_ctr[backend].notif_sent, 1);
    mixl_ctr_add(&peer->ctr.notif_sent, 1);
}

void mixl_stats_notif_received(mixl_agent_h agent, int backend, size_t n)
{
    mixl_ctr_add(&agent->ctr.notif_received, n);
    mixl_ctr_add(&agent->tp_ctr[backend].notif_received, n);
}

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void ctr_read(const mixl_ctr_t *c, mixl_counters_t *out)
{
    out->posts = ld(&c->posts);
    out->completed = ld(&c->completed);
    out->errors = ld(&c->errors);
    out->bytes = ld(&c->bytes);
    out->notif_sent = ld(&c->notif_sent);
    out->notif_received = ld(&c->notif_received);
}

_Static_assert(MIXL_TP_MPI == MIXL_STATS_MPI && MIXL_TP_TCP == MIXL_STATS_TCP &&
                   MIXL_TP_MAX == MIXL_STATS_BACKENDS,
               "public backend indices follow the transport table");

mixl_status_t mixl_agent_stats(mixl_agent_h agent, mixl_agent_stats_t *stats_p)
{
    if (agent == NULL || stats_p == NULL || stats_p->size < sizeof(mixl_agent_stats_t))
        return MIXL_ERR_INVALID_PARAM;
    ctr_read(&agent->ctr, &stats_p->total);
    for (int i = 0; i < MIXL_STATS_BACKENDS; i++) ctr_read(&agent->tp_ctr[i], &stats_p->backend[i]);
    return MIXL_OK;
}

mixl_status_t mixl_agent_peer_stats(mixl_agent_h agent, mixl_peer_stats_t *out, size_t max,
                                    size_t *count_p)
{
    if (agent == NULL || count_p == NULL || (out == NULL && max > 0)) return MIXL_ERR_INVALID_PARAM;
    for (size_t i = 0; i < agent->npeers && i < max; i++) {
        const mixl_peer_t *p = agent->peers[i];
        mixl_counters_t c;
        ctr_read(&p->ctr, &c);
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].peer, sizeof(out[i].peer), "%s", p->tp.name);
        out[i].backend = p->backend >= 0 ? MIXL_TP_BIT(p->backend) : 0u;
        out[i].posts = c.posts;
        out[i].completed = c.completed;
        out[i].errors = c.errors;
        out[i].bytes = c.bytes;
        out[i].notif_sent = c.notif_sent;
    }
    *count_p = agent->npeers;
    return MIXL_OK;
}
