/*
 * Transfer requests: validation and merging at create time, then the hot
 * post/test path, which only checks the request's state and hands over to
 * the peer's backend (no allocation, no lock, no logging there).
 */
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "util/clock.h"
#include "util/params.h"

static int xfer_valid(mixl_xfer_h xfer)
{
    return xfer != NULL && xfer->magic == MIXL_XFER_MAGIC;
}

/* Check every descriptor pair and count the operations left after merging. */
static mixl_status_t xfer_validate(mixl_agent_h agent, const mixl_xfer_params_t *p,
                                   mixl_peer_t *peer, mixl_tp_op_t *ops, size_t *nops_p,
                                   uint64_t *bytes_p)
{
    size_t nops = 0;
    uint64_t bytes = 0;

    for (size_t i = 0; i < p->count; i++) {
        const mixl_desc_t *l = &p->local[i], *r = &p->remote[i];
        struct mixl_region *lr;
        const mixl_md_region_t *rr;
        mixl_tp_op_t *prev = nops > 0 ? &ops[nops - 1] : NULL;

        if (l->len != r->len)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_MISMATCH,
                                   "agent %s: transfer to %s: descriptor %zu has local length %llu "
                                   "but remote length %llu", agent->name, peer->tp.name, i,
                                   (unsigned long long)l->len, (unsigned long long)r->len);
        if (l->len == 0)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                                   "agent %s: transfer to %s: descriptor %zu has length 0",
                                   agent->name, peer->tp.name, i);
        lr = mixl_agent_find_region(agent, l->addr, l->len);
        if (lr == NULL)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_NOT_REGISTERED,
                                   "agent %s: local descriptor %zu [0x%llx, +%llu) is not inside a "
                                   "registered region", agent->name, i,
                                   (unsigned long long)l->addr, (unsigned long long)l->len);
        if (lr->tp.mem_type != l->mem_type)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                                   "agent %s: local descriptor %zu says %s memory but region %u is %s",
                                   agent->name, i, mixl_mem_type_str(l->mem_type), lr->tp.id,
                                   mixl_mem_type_str(lr->tp.mem_type));
        rr = mixl_peer_find_region(peer, r->addr, r->len);
        if (rr == NULL)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_OUT_OF_RANGE,
                                   "agent %s: remote descriptor %zu [0x%llx, +%llu) is outside every "
                                   "region of peer %s", agent->name, i,
                                   (unsigned long long)r->addr, (unsigned long long)r->len,
                                   peer->tp.name);
        if (rr->mem_type != r->mem_type)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                                   "agent %s: remote descriptor %zu says %s memory but region %u of "
                                   "peer %s is %s", agent->name, i, mixl_mem_type_str(r->mem_type),
                                   rr->id, peer->tp.name, mixl_mem_type_str(rr->mem_type));
        bytes += l->len;
        /* Adjacent on both sides and in the same regions: one operation. */
        if (prev != NULL && prev->local_region == &lr->tp && prev->remote_region == rr &&
            prev->local_addr + prev->len == l->addr && prev->remote_addr + prev->len == r->addr) {
            prev->len += l->len;
            continue;
        }
        ops[nops].local_addr = l->addr;
        ops[nops].remote_addr = r->addr;
        ops[nops].len = l->len;
        ops[nops].local_region = &lr->tp;
        ops[nops].remote_region = rr;
        nops++;
    }
    *nops_p = nops;
    *bytes_p = bytes;
    return MIXL_OK;
}

mixl_status_t mixl_xfer_create(mixl_agent_h agent, const mixl_xfer_params_t *params,
                               mixl_xfer_h *xfer_p)
{
    mixl_xfer_params_t in;
    const mixl_xfer_params_t *p = &in;
    size_t size = 0;
    struct mixl_xfer *xfer;
    mixl_peer_t *peer;
    mixl_tp_op_t *ops, *shrunk;
    mixl_status_t st;
    size_t nops = 0;
    uint64_t bytes = 0;

    if (agent == NULL || xfer_p == NULL) return MIXL_ERR_INVALID_PARAM;
    st = mixl_params_load(params, sizeof(mixl_xfer_params_t), sizeof(in), &in, &size);
    if (st != MIXL_OK)
        return mixl_errbuf_set(&agent->eb, st,
                               "agent %s: transfer parameters missing, or .size %zu is not %zu",
                               agent->name, size, sizeof(in));
    if (p->op != MIXL_OP_READ && p->op != MIXL_OP_WRITE)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: unknown transfer operation %d", agent->name, (int)p->op);
    if (p->count == 0 || p->local == NULL || p->remote == NULL)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: transfer with no descriptors", agent->name);
    if (p->notif_len > MIXL_NOTIF_MAX || (p->notif_len > 0 && p->notif == NULL))
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_TOO_LARGE,
                               "agent %s: notification payload of %zu bytes, limit %d", agent->name,
                               p->notif_len, MIXL_NOTIF_MAX);
    if (p->peer == NULL || (peer = mixl_agent_find_peer(agent, p->peer)) == NULL)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_UNKNOWN_PEER,
                               "agent %s: transfer to unknown peer '%s' (import its metadata first)",
                               agent->name, p->peer ? p->peer : "(null)");
    if (peer->backend < 0)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_UNREACHABLE,
                               "agent %s: no enabled transport reaches peer %s (host %s)",
                               agent->name, peer->tp.name, peer->tp.md->hostname);

    ops = malloc(p->count * sizeof(*ops));
    if (ops == NULL) return MIXL_ERR_NO_MEMORY;
    st = xfer_validate(agent, p, peer, ops, &nops, &bytes);
    if (st != MIXL_OK) goto err_ops;
    shrunk = realloc(ops, nops * sizeof(*ops));
    if (shrunk != NULL) ops = shrunk;

    xfer = calloc(1, sizeof(*xfer));
    if (xfer == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto err_ops;
    }
    xfer->magic = MIXL_XFER_MAGIC;
    xfer->agent = agent;
    xfer->peer = peer;
    memcpy(xfer->peer_name, peer->tp.name, MIXL_NAME_MAX);
    xfer->backend = &agent->tps[peer->backend];
    xfer->tp.op = p->op;
    xfer->tp.peer = &peer->tp;
    xfer->tp.ops = ops;
    xfer->tp.nops = nops;
    xfer->tp.bytes = bytes;
    xfer->tp.notif_len = (uint32_t)p->notif_len;
    if (p->notif_len) memcpy(xfer->tp.notif, p->notif, p->notif_len);
    st = xfer->backend->ops->xfer_prepare(xfer->backend, &xfer->tp);
    if (st != MIXL_OK) goto err_xfer;

    for (size_t i = 0; i < nops; i++) ((struct mixl_region *)ops[i].local_region)->refs++;
    peer->refs++;
    xfer->next = agent->live;
    if (agent->live != NULL) agent->live->prev = xfer;
    agent->live = xfer;
    xfer->state = XFER_IDLE;
    *xfer_p = xfer;
    return MIXL_OK;

err_xfer:
    free(xfer);
err_ops:
    free(ops);
    return st;
}

mixl_status_t mixl_xfer_set_notif(mixl_xfer_h xfer, const void *notif, size_t notif_len)
{
    if (!xfer_valid(xfer)) return MIXL_ERR_INVALID_PARAM;
    if (xfer->state == XFER_RELEASED) return MIXL_ERR_BAD_STATE;
    if (xfer->state == XFER_POSTED) return MIXL_ERR_BUSY;
    if (notif_len > MIXL_NOTIF_MAX || (notif_len > 0 && notif == NULL)) return MIXL_ERR_TOO_LARGE;
    if (notif_len) memcpy(xfer->tp.notif, notif, notif_len);
    xfer->tp.notif_len = (uint32_t)notif_len;
    return MIXL_OK;
}

/* Hot path. */
mixl_status_t mixl_xfer_post(mixl_xfer_h xfer)
{
    mixl_status_t st;

    if (!xfer_valid(xfer)) return MIXL_ERR_INVALID_PARAM;
    if (xfer->state != XFER_IDLE) {
        if (xfer->state == XFER_POSTED) return MIXL_ERR_BUSY;
        return mixl_errbuf_set(&xfer->agent->eb, MIXL_ERR_BAD_STATE,
                               "agent %s: post of a released transfer request to %s",
                               xfer->agent->name, xfer->peer_name);
    }
    st = xfer->backend->ops->xfer_post(xfer->backend, &xfer->tp);
    if (st == MIXL_IN_PROGRESS) xfer->state = XFER_POSTED;
    xfer->last = st;
    mixl_stats_xfer(xfer, 1, st);
    return st;
}

/* Hot path. */
mixl_status_t mixl_xfer_test(mixl_xfer_h xfer)
{
    mixl_status_t st;

    if (!xfer_valid(xfer)) return MIXL_ERR_INVALID_PARAM;
    if (xfer->state != XFER_POSTED)
        return xfer->state == XFER_RELEASED ? MIXL_ERR_BAD_STATE : xfer->last;
    st = xfer->backend->ops->xfer_test(xfer->backend, &xfer->tp);
    if (st != MIXL_IN_PROGRESS) {
        xfer->state = XFER_IDLE;
        xfer->last = st;
        mixl_stats_xfer(xfer, 0, st);
    }
    return st;
}

mixl_status_t mixl_xfer_wait(mixl_xfer_h xfer, int timeout_ms)
{
    uint64_t deadline;
    mixl_status_t st;

    if (!xfer_valid(xfer)) return MIXL_ERR_INVALID_PARAM;
    if (timeout_ms < 0) timeout_ms = xfer->agent->params.timeout_ms;
    deadline = mixl_deadline_ns(timeout_ms);
    while ((st = mixl_xfer_test(xfer)) == MIXL_IN_PROGRESS) {
        if (xfer->backend->ops->xfer_wait != NULL) {
            /* Sleep until it ends: no periodic wake-up taking a core from
             * the threads that move the bytes. */
            st = xfer->backend->ops->xfer_wait(xfer->backend, &xfer->tp, deadline);
            if (st != MIXL_IN_PROGRESS) continue; /* mixl_xfer_test records the end */
        }
        if (mixl_now_ns() > deadline)
            return mixl_errbuf_set(&xfer->agent->eb, MIXL_ERR_TIMED_OUT,
                                   "agent %s: transfer of %llu bytes to %s not complete after %d ms",
                                   xfer->agent->name, (unsigned long long)xfer->tp.bytes,
                                   xfer->peer->tp.name, timeout_ms);
    }
    return st;
}

uint64_t mixl_xfer_bytes(mixl_xfer_h xfer)
{
    return xfer_valid(xfer) ? xfer->tp.bytes : 0;
}

size_t mixl_xfer_ops(mixl_xfer_h xfer)
{
    return xfer_valid(xfer) ? xfer->tp.nops : 0;
}

/* Drop what the request holds; its struct stays (marked released) in quarantine. */
static void xfer_retire(struct mixl_xfer *xfer)
{
    mixl_agent_h agent = xfer->agent;

    xfer->backend->ops->xfer_release(xfer->backend, &xfer->tp);
    for (size_t i = 0; i < xfer->tp.nops; i++)
        ((struct mixl_region *)xfer->tp.ops[i].local_region)->refs--;
    xfer->peer->refs--;
    free(xfer->tp.ops);
    xfer->tp.ops = NULL;
    xfer->state = XFER_RELEASED;
    if (xfer->prev != NULL) xfer->prev->next = xfer->next;
    else agent->live = xfer->next;
    if (xfer->next != NULL) xfer->next->prev = xfer->prev;
    xfer->prev = xfer->next = NULL;
}

mixl_status_t mixl_xfer_release(mixl_xfer_h xfer)
{
    mixl_agent_h agent;
    mixl_status_t st = MIXL_OK;
    size_t slot;

    if (!xfer_valid(xfer)) return MIXL_ERR_INVALID_PARAM;
    agent = xfer->agent;
    if (xfer->state == XFER_RELEASED)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_BAD_STATE,
                               "agent %s: transfer request to %s was already released", agent->name,
                               xfer->peer_name);
    if (xfer->state == XFER_POSTED) {
        /* Complete it: MPI cannot cancel one-sided operations once issued. */
        st = mixl_xfer_wait(xfer, -1);
        if (st == MIXL_ERR_TIMED_OUT) return st;
    }
    xfer_retire(xfer);

    slot = (agent->quarantine_head + agent->quarantine_count) % MIXL_XFER_QUARANTINE;
    if (agent->quarantine_count == MIXL_XFER_QUARANTINE) {
        struct mixl_xfer *oldest = agent->quarantine[agent->quarantine_head];
        oldest->magic = 0;
        free(oldest);
        agent->quarantine_head = (agent->quarantine_head + 1) % MIXL_XFER_QUARANTINE;
        agent->quarantine_count--;
        slot = (agent->quarantine_head + agent->quarantine_count) % MIXL_XFER_QUARANTINE;
    }
    agent->quarantine[slot] = xfer;
    agent->quarantine_count++;
    return st == MIXL_OK || st == MIXL_IN_PROGRESS ? MIXL_OK : st;
}

void mixl_xfers_destroy(mixl_agent_h agent)
{
    /* Requests the application did not release: complete and free them. */
    while (agent->live != NULL) {
        struct mixl_xfer *x = agent->live;
        if (x->state == XFER_POSTED) (void)mixl_xfer_wait(x, -1);
        xfer_retire(x);
        x->magic = 0;
        free(x);
    }
    while (agent->quarantine_count > 0) {
        struct mixl_xfer *x = agent->quarantine[agent->quarantine_head];
        x->magic = 0;
        free(x);
        agent->quarantine_head = (agent->quarantine_head + 1) % MIXL_XFER_QUARANTINE;
        agent->quarantine_count--;
    }
}

mixl_status_t mixl_notif_poll(mixl_agent_h agent, mixl_notif_t *out, size_t max, size_t *count_p)
{
    size_t total = 0;

    if (agent == NULL || count_p == NULL || (out == NULL && max > 0)) return MIXL_ERR_INVALID_PARAM;
    for (int i = 0; i < MIXL_TP_MAX && total < max; i++) {
        size_t n = 0;
        mixl_status_t st;
        if (!agent->tp_active[i]) continue;
        st = agent->tps[i].ops->notif_poll(&agent->tps[i], out + total, max - total, &n);
        if (st != MIXL_OK) return st;
        if (n > 0) mixl_stats_notif_received(agent, i, n);
        total += n;
    }
    *count_p = total;
    return MIXL_OK;
}

mixl_status_t mixl_notif_send(mixl_agent_h agent, const char *peer_name, const void *payload,
                              size_t len)
{
    mixl_peer_t *peer;

    if (agent == NULL || peer_name == NULL || (payload == NULL && len > 0))
        return MIXL_ERR_INVALID_PARAM;
    if (len > MIXL_NOTIF_MAX)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_TOO_LARGE,
                               "agent %s: notification of %zu bytes to %s, limit %d", agent->name,
                               len, peer_name, MIXL_NOTIF_MAX);
    peer = mixl_agent_find_peer(agent, peer_name);
    if (peer == NULL)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_UNKNOWN_PEER,
                               "agent %s: notification to unknown peer '%s'", agent->name, peer_name);
    if (peer->backend < 0)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_UNREACHABLE,
                               "agent %s: no enabled transport reaches peer %s", agent->name,
                               peer_name);
    mixl_status_t st = agent->tps[peer->backend].ops->notif_send(&agent->tps[peer->backend],
                                                                 &peer->tp, payload, len);
    if (st == MIXL_OK) mixl_stats_notif_sent(agent, peer, peer->backend);
    return st;
}
