/*
 * Control channel and notification helpers shared by the roles. Nothing
 * here blocks without a deadline: sends are non-blocking and progressed by
 * the event loops, receives are probed first.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disagg/dg_int.h"
#include "util/clock.h"
#include "util/log.h"

#define DG_TAG 7

int64_t dg_now(const mixl_dg_t *dg)
{
    return (int64_t)mixl_now_ns() + dg->clock_offset_ns;
}

void dg_idle(const mixl_dg_t *dg, unsigned *idle)
{
    unsigned n = ++*idle;
    if (n < 64) return;
    if (n < 64 + dg->idle_yields) {
        sched_yield();
        return;
    }
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

mixl_status_t dg_send(mixl_dg_t *dg, int dest, const dg_msg_t *msg, const mixl_kv_run_t *runs)
{
    /* A dead rank would never take it, and its request would sit in the outbox for ever. */
    if (dg->dead != NULL && dg->dead[dest]) return MIXL_ERR_DISCONNECTED;
    size_t len = sizeof(*msg) + msg->nruns * sizeof(mixl_kv_run_t);
    void *buf = malloc(len);
    if (buf == NULL) {
        mixl_error("no memory for a %zu-byte control message to %s", len, dg->names[dest]);
        return MIXL_ERR_NO_MEMORY;
    }
    memcpy(buf, msg, sizeof(*msg));
    if ((msg->type == DG_MSG_PREFILL_DONE || msg->type == DG_MSG_DECODE_DONE) && dg->agent != NULL) {
        /* The router exports every rank's counters from the latest report. */
        mixl_agent_stats_t as = {.size = sizeof(as)};
        if (mixl_agent_stats(dg->agent, &as) == MIXL_OK) {
            /* This point's share: a sweep may run several points on one agent. */
            mixl_counters_t *c = &((dg_msg_t *)buf)->agent;
            const mixl_counters_t *b = &dg->agent_base;
            *c = as.total;
            c->posts -= b->posts;
            c->completed -= b->completed;
            c->errors -= b->errors;
            c->bytes -= b->bytes;
            c->notif_sent -= b->notif_sent;
            c->notif_received -= b->notif_received;
        }
        ((dg_msg_t *)buf)->reg = dg->reg_times;
    }
    ((dg_msg_t *)buf)->epoch = dg->epoch;
    if (msg->nruns > 0)
        memcpy((char *)buf + sizeof(*msg), runs, msg->nruns * sizeof(mixl_kv_run_t));
    if (dg->nout == dg->capout) {
        size_t cap = dg->capout ? 2 * dg->capout : 32;
        dg_out_t *o = realloc(dg->outbox, cap * sizeof(*o));
        if (o == NULL) {
            free(buf);
            mixl_error("no memory to queue a control message to %s", dg->names[dest]);
            return MIXL_ERR_NO_MEMORY;
        }
        dg->outbox = o;
        dg->capout = cap;
    }
    int rc = MPI_Isend(buf, (int)len, MPI_BYTE, dest, DG_TAG, dg->ctl, &dg->outbox[dg->nout].req);
    if (rc != MPI_SUCCESS) {
        free(buf);
        mixl_error("control message %u to %s: MPI_Isend failed (%d)", msg->type, dg->names[dest],
                   rc);
        return MIXL_ERR_BACKEND;
    }
    dg->outbox[dg->nout].dest = dest;
    dg->outbox[dg->nout++].buf = buf;
    return MIXL_OK;
}

int dg_poll(mixl_dg_t *dg, int *src_p, dg_msg_t **msg_p)
{
    int flag = 0, count = 0;
    MPI_Status st;

    for (;;) {
        MPI_Iprobe(MPI_ANY_SOURCE, DG_TAG, dg->ctl, &flag, &st);
        if (!flag) return 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        void *buf = malloc(count > 0 ? (size_t)count : 1);
        if (buf == NULL) return 0; /* left queued; taken on a later poll */
        /* The message is already matched by the probe, so this receive does not wait. */
        MPI_Recv(buf, count, MPI_BYTE, st.MPI_SOURCE, DG_TAG, dg->ctl, MPI_STATUS_IGNORE);
        if ((size_t)count < sizeof(dg_msg_t) ||
            (size_t)count != sizeof(dg_msg_t) + ((dg_msg_t *)buf)->nruns * sizeof(mixl_kv_run_t)) {
            mixl_error("malformed control message of %d bytes from %s", count,
                       dg->names[st.MPI_SOURCE]);
            free(buf);
            return 0;
        }
        if (((dg_msg_t *)buf)->epoch != dg->epoch) {
            free(buf); /* an earlier sweep point's late news */
            continue;
        }
        *src_p = st.MPI_SOURCE;
        *msg_p = buf;
        return 1;
    }
}

mixl_status_t dg_flush(mixl_dg_t *dg, int drain)
{
    uint64_t deadline = mixl_deadline_ns(dg->timeout_ms);
    do {
        size_t k = 0;
        for (size_t i = 0; i < dg->nout; i++) {
            int done = 0;
            MPI_Test(&dg->outbox[i].req, &done, MPI_STATUS_IGNORE);
            if (done)
                free(dg->outbox[i].buf);
            else
                dg->outbox[k++] = dg->outbox[i];
        }
        dg->nout = k;
        /* What a rank that died before it took it will never complete does not count. */
        size_t owed = 0;
        for (size_t i = 0; i < dg->nout; i++)
            if (dg->dead == NULL || !dg->dead[dg->outbox[i].dest]) owed++;
        if (!drain || owed == 0) return MIXL_OK;
    } while (mixl_now_ns() < deadline);
    mixl_error("%zu control messages still unsent after %d ms", dg->nout, dg->timeout_ms);
    return MIXL_ERR_TIMED_OUT;
}

static size_t dg_poll_agent(mixl_dg_t *dg, dg_notif_t *out, size_t max);

mixl_status_t dg_notify(mixl_dg_t *dg, int dest, int kind, uint64_t req, int layer, int status)
{
    dg_notif_t n = {DG_NOTIF_MAGIC, (uint16_t)kind, (uint16_t)layer, req, dg->rank, status,
                    dg->epoch, 0};
    /* Never into a dead rank's window: the flush behind the notification could wait for ever. */
    if (dg->dead != NULL && dg->dead[dest]) return MIXL_ERR_DISCONNECTED;
    uint64_t deadline = mixl_deadline_ns(dg->timeout_ms);
    for (;;) {
        mixl_status_t st = mixl_notif_send(dg->agent, dg->names[dest], &n, sizeof(n));
        if (st != MIXL_IN_PROGRESS && st != MIXL_ERR_BUSY) return st;
        /* The peer's ring is full: keep draining ours so two full rings cannot wait on each other. */
        dg_notif_t tmp[16];
        size_t got = dg_poll_agent(dg, tmp, 16);
        for (size_t i = 0; i < got; i++) dg_park(dg, &tmp[i]);
        if (mixl_now_ns() >= deadline) {
            mixl_error("notification to %s: the peer's ring stayed full for %d ms", dg->names[dest],
                       dg->timeout_ms);
            return MIXL_ERR_TIMED_OUT;
        }
    }
}

void dg_park(mixl_dg_t *dg, const dg_notif_t *n)
{
    if (dg->nparked == dg->capparked) {
        size_t cap = dg->capparked ? 2 * dg->capparked : 64;
        dg_notif_t *p = realloc(dg->parked, cap * sizeof(*p));
        if (p == NULL) {
            mixl_error("out of memory keeping a notification");
            return;
        }
        dg->parked = p;
        dg->capparked = cap;
    }
    dg->parked[dg->nparked++] = *n;
}

/* Notifications straight from the agent (not the parked ones). */
static size_t dg_poll_agent(mixl_dg_t *dg, dg_notif_t *out, size_t max)
{
    size_t n = 0;
    while (n < max) {
        mixl_notif_t raw[16];
        size_t want = max - n < 16 ? max - n : 16, got = 0;
        if (mixl_notif_poll(dg->agent, raw, want, &got) != MIXL_OK || got == 0) break;
        for (size_t i = 0; i < got; i++) {
            dg_notif_t d;
            if (raw[i].len != sizeof(d)) continue;
            memcpy(&d, raw[i].payload, sizeof(d));
            if (d.magic != DG_NOTIF_MAGIC) {
                mixl_warn("ignoring a foreign notification from %s", raw[i].peer);
                continue;
            }
            if (d.epoch != dg->epoch) continue; /* an earlier sweep point's late news */
            out[n++] = d;
        }
    }
    return n;
}

size_t dg_notifs(mixl_dg_t *dg, dg_notif_t *out, size_t max)
{
    /* Parked ones first, in arrival order. */
    size_t take = dg->nparked < max ? dg->nparked : max;
    if (take > 0) {
        memcpy(out, dg->parked, take * sizeof(*out));
        memmove(dg->parked, dg->parked + take, (dg->nparked - take) * sizeof(*out));
        dg->nparked -= take;
    }
    return take + dg_poll_agent(dg, out + take, max - take);
}

void dg_peer_dead(mixl_dg_t *dg, int r)
{
    if (r <= 0 || r >= dg->world || dg->dead == NULL || dg->dead[r]) return;
    dg->dead[r] = 1;
    dg->ndead++;
    mixl_notice("%s (rank %d, host %s) died: its requests on this rank fail", dg->names[r], r,
                dg->hosts[r]);
}
