/*
 * Staging planner and slot state machine (see stage.h). No CUDA, no MPI:
 * the transport's callbacks do the copies and the network operations.
 */
#include <stdlib.h>
#include <string.h>

#include "mem/stage.h"
#include "util/clock.h"

/* Walk the spans once; with out != NULL also write pieces and chunks. */
static mixl_status_t plan_walk(const mixl_stage_span_t *spans, size_t n, uint64_t slot_bytes,
                               mixl_stage_plan_t *out, size_t *npieces_p, size_t *nchunks_p)
{
    size_t np = 0, nc = 0;
    uint64_t fill = slot_bytes; /* bytes used in the current chunk; full = start a new one */
    int dev = 0;

    for (size_t i = 0; i < n; i++) {
        uint64_t done = 0;
        if (spans[i].len == 0) return MIXL_ERR_INVALID_PARAM;
        while (done < spans[i].len) {
            uint64_t take;
            if (fill == slot_bytes || (nc > 0 && spans[i].device != dev)) {
                if (out != NULL) {
                    out->chunks[nc].first = (uint32_t)np;
                    out->chunks[nc].count = 0;
                    out->chunks[nc].bytes = 0;
                    out->chunks[nc].device = spans[i].device;
                }
                nc++;
                fill = 0;
                dev = spans[i].device;
            }
            take = spans[i].len - done;
            if (take > slot_bytes - fill) take = slot_bytes - fill;
            if (out != NULL) {
                mixl_stage_piece_t *p = &out->pieces[np];
                p->local = spans[i].local + done;
                p->remote = spans[i].remote + done;
                p->len = take;
                p->slot_off = fill;
                p->tag = spans[i].tag;
                out->chunks[nc - 1].count++;
                out->chunks[nc - 1].bytes += take;
            }
            np++;
            if (np > UINT32_MAX) return MIXL_ERR_TOO_LARGE;
            fill += take;
            done += take;
        }
    }
    *npieces_p = np;
    *nchunks_p = nc;
    return MIXL_OK;
}

mixl_status_t mixl_stage_plan(const mixl_stage_span_t *spans, size_t n, uint64_t slot_bytes,
                              mixl_stage_plan_t *plan_p)
{
    mixl_stage_plan_t plan;
    mixl_status_t st;

    if (slot_bytes == 0 || (n > 0 && spans == NULL) || plan_p == NULL) return MIXL_ERR_INVALID_PARAM;
    memset(&plan, 0, sizeof(plan));
    st = plan_walk(spans, n, slot_bytes, NULL, &plan.npieces, &plan.nchunks);
    if (st != MIXL_OK) return st;
    if (plan.nchunks > UINT32_MAX) return MIXL_ERR_TOO_LARGE;
    plan.pieces = calloc(plan.npieces ? plan.npieces : 1, sizeof(*plan.pieces));
    plan.chunks = calloc(plan.nchunks ? plan.nchunks : 1, sizeof(*plan.chunks));
    if (plan.pieces == NULL || plan.chunks == NULL) {
        mixl_stage_plan_free(&plan);
        return MIXL_ERR_NO_MEMORY;
    }
    st = plan_walk(spans, n, slot_bytes, &plan, &plan.npieces, &plan.nchunks);
    if (st != MIXL_OK) {
        mixl_stage_plan_free(&plan);
        return st;
    }
    *plan_p = plan;
    return MIXL_OK;
}

void mixl_stage_plan_free(mixl_stage_plan_t *plan)
{
    free(plan->pieces);
    free(plan->chunks);
    memset(plan, 0, sizeof(*plan));
}

mixl_status_t mixl_stage_pool_init(mixl_stage_pool_t *pool, unsigned nslots)
{
    if (nslots < 1 || nslots > MIXL_STAGE_MAX_SLOTS) return MIXL_ERR_INVALID_PARAM;
    memset(pool, 0, sizeof(*pool));
    pool->nslots = nslots;
    return MIXL_OK;
}

void mixl_stage_sm_reset(mixl_stage_sm_t *sm, mixl_op_t op, uint32_t nchunks,
                         const mixl_stage_io_t *io, void *ctx)
{
    sm->op = op;
    sm->nchunks = nchunks;
    sm->next = 0;
    sm->done = 0;
    sm->holding = 0;
    sm->err = MIXL_OK;
    sm->io = io;
    sm->ctx = ctx;
}

static void slot_release(mixl_stage_sm_t *sm, mixl_stage_slot_t *s)
{
    s->owner = NULL;
    s->state = MIXL_STAGE_SLOT_FREE;
    sm->holding--;
}

static mixl_status_t sm_fail(mixl_stage_sm_t *sm, mixl_status_t st)
{
    if (sm->err == MIXL_OK) sm->err = st;
    return sm->err;
}

/* Phase 1: steps that completed without blocking (finished copies). */
static mixl_status_t sm_reap_copies(mixl_stage_pool_t *pool, mixl_stage_sm_t *sm)
{
    for (unsigned i = 0; i < pool->nslots; i++) {
        mixl_stage_slot_t *s = &pool->slot[i];
        mixl_status_t st;

        if (s->owner != sm || s->state != MIXL_STAGE_SLOT_COPY) continue;
        st = sm->io->copy_query(sm->ctx, i);
        if (st == MIXL_IN_PROGRESS) continue;
        if (st != MIXL_OK) return sm_fail(sm, st);
        if (sm->op == MIXL_OP_WRITE) {
            /* The slot holds the chunk: send it. */
            st = sm->io->net_start(sm->ctx, i, s->chunk);
            if (st != MIXL_OK) return sm_fail(sm, st);
            s->state = MIXL_STAGE_SLOT_NET;
        } else {
            /* The chunk reached device memory: the slot is free again. */
            slot_release(sm, s);
            sm->done++;
        }
    }
    return MIXL_OK;
}

/* Phase 2: claim up to max free slots for the next chunks and start them. */
static mixl_status_t sm_fill(mixl_stage_pool_t *pool, mixl_stage_sm_t *sm, unsigned max,
                             unsigned *started_p)
{
    unsigned started = 0;

    *started_p = 0;
    for (unsigned i = 0; i < pool->nslots && sm->next < sm->nchunks && started < max; i++) {
        mixl_stage_slot_t *s = &pool->slot[i];
        mixl_status_t st;

        if (s->owner != NULL || s->state != MIXL_STAGE_SLOT_FREE) continue;
        s->owner = sm;
        s->chunk = sm->next++;
        sm->holding++;
        started++;
        *started_p = started;
        if (sm->op == MIXL_OP_WRITE) {
            s->state = MIXL_STAGE_SLOT_COPY;
            st = sm->io->copy_start(sm->ctx, i, s->chunk);
        } else {
            s->state = MIXL_STAGE_SLOT_NET;
            st = sm->io->net_start(sm->ctx, i, s->chunk);
        }
        /* Part of the chunk may be in flight: the slot stays in its state
         * so that mixl_stage_sm_abort() waits for it before freeing it. */
        if (st != MIXL_OK) return sm_fail(sm, st);
    }
    return MIXL_OK;
}

/* Phase 3: complete network steps (may block until the slot is reusable). */
static mixl_status_t sm_complete_net(mixl_stage_pool_t *pool, mixl_stage_sm_t *sm)
{
    for (unsigned i = 0; i < pool->nslots; i++) {
        mixl_stage_slot_t *s = &pool->slot[i];
        mixl_status_t st;

        if (s->owner != sm || s->state != MIXL_STAGE_SLOT_NET) continue;
        st = sm->io->net_complete(sm->ctx, i);
        if (st != MIXL_OK) return sm_fail(sm, st);
        if (sm->op == MIXL_OP_WRITE) {
            slot_release(sm, s);
            sm->done++;
        } else {
            /* The chunk landed in the slot: copy it to the device. */
            s->state = MIXL_STAGE_SLOT_COPY;
            st = sm->io->copy_start(sm->ctx, i, s->chunk);
            if (st != MIXL_OK) return sm_fail(sm, st);
        }
    }
    return MIXL_OK;
}

/* Hot path: no allocation, no logging. */
mixl_status_t mixl_stage_progress(mixl_stage_pool_t *pool, mixl_stage_sm_t *sm)
{
    mixl_status_t st;
    unsigned started;

    if (sm->err != MIXL_OK) return sm->err;
    if ((st = sm_reap_copies(pool, sm)) != MIXL_OK) return st;
    if (sm->op == MIXL_OP_WRITE) {
        /* Queue device->slot copies in every free slot before blocking in
         * the flush of an earlier chunk's puts: the GPU copies meanwhile. */
        if ((st = sm_fill(pool, sm, pool->nslots, &started)) != MIXL_OK) return st;
        if ((st = sm_complete_net(pool, sm)) != MIXL_OK) return st;
        if ((st = sm_fill(pool, sm, pool->nslots, &started)) != MIXL_OK) return st;
    } else {
        /* One get at a time: completing it starts its slot->device copy,
         * which then runs while the next chunk's get is on the network. */
        do {
            if ((st = sm_complete_net(pool, sm)) != MIXL_OK) return st;
            if ((st = sm_fill(pool, sm, 1, &started)) != MIXL_OK) return st;
        } while (started > 0);
    }
    return sm->done == sm->nchunks && sm->holding == 0 ? MIXL_OK : MIXL_IN_PROGRESS;
}

mixl_status_t mixl_stage_sm_abort(mixl_stage_pool_t *pool, mixl_stage_sm_t *sm,
                                  uint64_t deadline_ns)
{
    mixl_status_t result = sm->err;

    for (unsigned i = 0; i < pool->nslots; i++) {
        mixl_stage_slot_t *s = &pool->slot[i];

        if (s->owner != sm) continue;
        if (s->state == MIXL_STAGE_SLOT_NET) {
            (void)sm->io->net_complete(sm->ctx, i);
        } else if (s->state == MIXL_STAGE_SLOT_COPY) {
            while (sm->io->copy_query(sm->ctx, i) == MIXL_IN_PROGRESS) {
                if (mixl_now_ns() > deadline_ns) break;
            }
            if (sm->io->copy_query(sm->ctx, i) == MIXL_IN_PROGRESS) {
                /* Still being written: never hand this slot out again. */
                s->owner = NULL;
                s->state = MIXL_STAGE_SLOT_LOST;
                sm->holding--;
                result = MIXL_ERR_TIMED_OUT;
                continue;
            }
        }
        slot_release(sm, s);
    }
    sm->next = sm->nchunks;
    return result;
}
