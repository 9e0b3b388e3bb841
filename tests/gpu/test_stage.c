/*
 * Unit tests of the staging planner and slot state machine (mem/stage.h),
 * without a GPU or MPI: a simulated copy engine and network move real bytes
 * between a "device" array, pinned slots and a "remote" array, and finish
 * each step only some polls after it started, as the real ones do. A slot
 * reused before its network step completed, a chunk skipped or moved twice,
 * or a copy run before its data arrived all show up as wrong bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem/stage.h"

#define MAX_SLOT_BYTES 4096

typedef struct {
    uint8_t *dev;      /* local device memory (addresses are offsets into it) */
    uint8_t *remote;   /* the target window */
    uint8_t (*slots)[MAX_SLOT_BYTES]; /* pinned slots; shared when the pool is */
    const mixl_stage_plan_t *plan;
    mixl_op_t op;
    /* per slot: pending step and how many polls until it completes */
    int copy_busy[MIXL_STAGE_MAX_SLOTS], copy_left[MIXL_STAGE_MAX_SLOTS];
    uint64_t copy_seq[MIXL_STAGE_MAX_SLOTS], next_seq; /* copies run in order, one stream */
    int net_busy[MIXL_STAGE_MAX_SLOTS];
    uint32_t chunk_of[MIXL_STAGE_MAX_SLOTS];
    int latency;        /* polls a copy takes */
    int fail_net_chunk; /* net_start of this chunk fails; -1 never */
    int stuck_copy_chunk; /* copies of this chunk never finish; -1 never */
    unsigned *chunk_moves; /* times each chunk finished its network step */
    int overlap_seen;   /* a copy was in flight while a network step was */
    int busy_now, busy_max;
} sim_t;

static void sim_copy_exec(sim_t *s, unsigned slot)
{
    const mixl_stage_chunk_t *c = &s->plan->chunks[s->chunk_of[slot]];
    for (uint32_t i = 0; i < c->count; i++) {
        const mixl_stage_piece_t *p = &s->plan->pieces[c->first + i];
        if (s->op == MIXL_OP_WRITE) memcpy(s->slots[slot] + p->slot_off, s->dev + p->local, p->len);
        else memcpy(s->dev + p->local, s->slots[slot] + p->slot_off, p->len);
    }
}

static mixl_status_t sim_copy_start(void *ctx, unsigned slot, uint32_t chunk)
{
    sim_t *s = ctx;
    assert_false(s->copy_busy[slot]);
    assert_false(s->net_busy[slot] && s->op == MIXL_OP_WRITE);
    if (s->op == MIXL_OP_READ) {
        /* H2D only after the get into this slot completed. */
        assert_false(s->net_busy[slot]);
        assert_int_equal(s->chunk_of[slot], chunk);
    } else {
        s->busy_now++;
    }
    s->chunk_of[slot] = chunk;
    s->copy_busy[slot] = 1;
    s->copy_seq[slot] = ++s->next_seq;
    s->copy_left[slot] = (int)chunk == s->stuck_copy_chunk ? 1 << 30 : s->latency;
    if (s->busy_now > s->busy_max) s->busy_max = s->busy_now;
    return MIXL_OK;
}

static mixl_status_t sim_copy_query(void *ctx, unsigned slot)
{
    sim_t *s = ctx;
    if (!s->copy_busy[slot]) return MIXL_OK; /* like an event already reached */
    /* A stream runs its copies in order: only the oldest one advances. */
    for (unsigned i = 0; i < MIXL_STAGE_MAX_SLOTS; i++)
        if (s->copy_busy[i] && s->copy_seq[i] < s->copy_seq[slot]) return MIXL_IN_PROGRESS;
    if (s->copy_left[slot]-- > 0) return MIXL_IN_PROGRESS;
    sim_copy_exec(s, slot);
    s->copy_busy[slot] = 0;
    if (s->op == MIXL_OP_READ) s->busy_now--;
    return MIXL_OK;
}

static mixl_status_t sim_net_start(void *ctx, unsigned slot, uint32_t chunk)
{
    sim_t *s = ctx;
    assert_false(s->net_busy[slot]);
    assert_false(s->copy_busy[slot]);
    if ((int)chunk == s->fail_net_chunk) return MIXL_ERR_BACKEND;
    if (s->op == MIXL_OP_WRITE) {
        assert_int_equal(s->chunk_of[slot], chunk); /* the slot holds this chunk's bytes */
    } else {
        s->chunk_of[slot] = chunk;
        s->busy_now++;
        if (s->busy_now > s->busy_max) s->busy_max = s->busy_now;
    }
    s->net_busy[slot] = 1;
    return MIXL_OK;
}

/* The "NIC" reads/writes the slot only at completion: early reuse corrupts data. */
static mixl_status_t sim_net_complete(void *ctx, unsigned slot)
{
    sim_t *s = ctx;
    const mixl_stage_chunk_t *c;

    if (!s->net_busy[slot]) return MIXL_OK; /* a flush with nothing pending */
    /* Overlap: the network finishes a chunk while a device copy is running. */
    for (unsigned i = 0; i < MIXL_STAGE_MAX_SLOTS; i++)
        if (s->copy_busy[i]) s->overlap_seen = 1;
    c = &s->plan->chunks[s->chunk_of[slot]];
    for (uint32_t i = 0; i < c->count; i++) {
        const mixl_stage_piece_t *p = &s->plan->pieces[c->first + i];
        if (s->op == MIXL_OP_WRITE) memcpy(s->remote + p->remote, s->slots[slot] + p->slot_off, p->len);
        else memcpy(s->slots[slot] + p->slot_off, s->remote + p->remote, p->len);
    }
    s->chunk_moves[s->chunk_of[slot]]++;
    s->net_busy[slot] = 0;
    if (s->op == MIXL_OP_WRITE) s->busy_now--;
    /* Poison the slot: a chunk that skipped its copy would carry this. */
    if (s->op == MIXL_OP_WRITE) memset(s->slots[slot], 0xEE, MAX_SLOT_BYTES);
    return MIXL_OK;
}

static sim_t *sim_new(void)
{
    sim_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->slots = calloc(MIXL_STAGE_MAX_SLOTS, MAX_SLOT_BYTES);
    assert_non_null(s->slots);
    s->fail_net_chunk = -1;
    s->stuck_copy_chunk = -1;
    return s;
}

static void sim_free(sim_t *s)
{
    free(s->slots);
    free(s->chunk_moves);
    free(s);
}

static const mixl_stage_io_t sim_io = {
    .copy_start = sim_copy_start,
    .copy_query = sim_copy_query,
    .net_start = sim_net_start,
    .net_complete = sim_net_complete,
};

static uint8_t pattern(size_t i, unsigned salt)
{
    return (uint8_t)((i * 2654435761u) >> 13 ^ salt);
}

/* Spans with odd lengths and gaps, scattered over both buffers. */
static size_t make_spans(mixl_stage_span_t *sp, size_t max, size_t total, unsigned seed)
{
    size_t n = 0, loff = 3, roff = 11;
    srand(seed);
    while (n < max) {
        size_t len = 1 + (size_t)rand() % 6000;
        if (loff + len >= total || roff + len >= total) break;
        sp[n].local = loff;
        sp[n].remote = roff;
        sp[n].len = len;
        sp[n].tag = 0;
        sp[n].device = 0;
        loff += len + (size_t)rand() % 5;
        roff += len + (size_t)rand() % 7;
        n++;
    }
    return n;
}

static void run_case(mixl_op_t op, unsigned nslots, uint64_t slot_bytes, int latency)
{
    enum { TOTAL = 1 << 20 };
    mixl_stage_span_t sp[400];
    mixl_stage_plan_t plan;
    mixl_stage_pool_t pool;
    mixl_stage_sm_t sm;
    sim_t *s = sim_new();
    uint8_t *expect_dev, *expect_remote;
    size_t n = make_spans(sp, 400, TOTAL, nslots * 7 + (unsigned)slot_bytes);
    mixl_status_t st;
    int polls = 0;

    s->dev = malloc(TOTAL);
    s->remote = malloc(TOTAL);
    expect_dev = malloc(TOTAL);
    expect_remote = malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++) {
        s->dev[i] = pattern(i, 1);
        s->remote[i] = pattern(i, 2);
    }
    memcpy(expect_dev, s->dev, TOTAL);
    memcpy(expect_remote, s->remote, TOTAL);
    for (size_t i = 0; i < n; i++) {
        if (op == MIXL_OP_WRITE) memcpy(expect_remote + sp[i].remote, s->dev + sp[i].local, sp[i].len);
        else memcpy(expect_dev + sp[i].local, s->remote + sp[i].remote, sp[i].len);
    }

    assert_int_equal(mixl_stage_plan(sp, n, slot_bytes, &plan), MIXL_OK);
    s->plan = &plan;
    s->op = op;
    s->latency = latency;
    s->fail_net_chunk = -1;
    s->stuck_copy_chunk = -1;
    s->chunk_moves = calloc(plan.nchunks, sizeof(unsigned));
    assert_int_equal(mixl_stage_pool_init(&pool, nslots), MIXL_OK);
    mixl_stage_sm_reset(&sm, op, (uint32_t)plan.nchunks, &sim_io, s);
    while ((st = mixl_stage_progress(&pool, &sm)) == MIXL_IN_PROGRESS) assert_true(++polls < 10000000);
    assert_int_equal(st, MIXL_OK);
    for (size_t c = 0; c < plan.nchunks; c++) assert_int_equal(s->chunk_moves[c], 1);
    assert_memory_equal(s->dev, expect_dev, TOTAL);
    assert_memory_equal(s->remote, expect_remote, TOTAL);
    assert_true(s->busy_max <= (int)nslots);
    /* Two slots or more overlap a copy with the network; one serialises them. */
    if (plan.nchunks > 2 && latency > 0 && nslots > 1) assert_true(s->overlap_seen);
    if (nslots == 1) assert_false(s->overlap_seen);
    for (unsigned i = 0; i < nslots; i++) assert_null(pool.slot[i].owner);
    mixl_stage_plan_free(&plan);
    free(s->dev);
    free(s->remote);
    free(expect_dev);
    free(expect_remote);
    sim_free(s);
}

static void test_write_two_slots(void **state)
{
    run_case(MIXL_OP_WRITE, 2, 4096, 3);
}

static void test_read_two_slots(void **state)
{
    run_case(MIXL_OP_READ, 2, 4096, 3);
}

static void test_one_slot(void **state)
{
    run_case(MIXL_OP_WRITE, 1, 4093, 3);
    run_case(MIXL_OP_READ, 1, 777, 2);
}

static void test_odd_slot_sizes(void **state)
{
    run_case(MIXL_OP_WRITE, 3, 1000, 1);
    run_case(MIXL_OP_READ, 5, 4093, 0);
    run_case(MIXL_OP_WRITE, 2, 1, 2);
}

/* Every byte covered once, pieces inside slots, chunks not over slot size. */
static void test_plan_shape(void **state)
{
    mixl_stage_span_t sp[3] = {
        {.local = 0, .remote = 100, .len = 10, .device = 0},
        {.local = 50, .remote = 500, .len = 25, .device = 0},
        {.local = 1000, .remote = 2000, .len = 7, .device = 1},
    };
    mixl_stage_plan_t plan;
    uint64_t covered = 0;

    assert_int_equal(mixl_stage_plan(sp, 3, 16, &plan), MIXL_OK);
    /* 16-byte slots: [10+6] [16] [3] then device 1 starts its own chunk [7]. */
    assert_int_equal(plan.nchunks, 4);
    assert_int_equal(plan.chunks[0].bytes, 16);
    assert_int_equal(plan.chunks[1].bytes, 16);
    assert_int_equal(plan.chunks[2].bytes, 3);
    assert_int_equal(plan.chunks[3].bytes, 7);
    assert_int_equal(plan.chunks[3].device, 1);
    for (size_t c = 0; c < plan.nchunks; c++) {
        uint64_t off = 0;
        for (uint32_t i = 0; i < plan.chunks[c].count; i++) {
            const mixl_stage_piece_t *p = &plan.pieces[plan.chunks[c].first + i];
            assert_int_equal(p->slot_off, off);
            off += p->len;
            covered += p->len;
        }
        assert_true(off <= 16);
    }
    assert_int_equal(covered, 42);
    /* Pieces of one span continue where the previous left off. */
    assert_int_equal(plan.pieces[2].local, 56);
    assert_int_equal(plan.pieces[2].remote, 506);
    mixl_stage_plan_free(&plan);
}

static void test_plan_rejects(void **state)
{
    mixl_stage_span_t sp = {.local = 0, .remote = 0, .len = 0};
    mixl_stage_plan_t plan;
    mixl_stage_pool_t pool;

    assert_int_equal(mixl_stage_plan(&sp, 1, 16, &plan), MIXL_ERR_INVALID_PARAM);
    sp.len = 5;
    assert_int_equal(mixl_stage_plan(&sp, 1, 0, &plan), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(mixl_stage_pool_init(&pool, 0), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(mixl_stage_pool_init(&pool, MIXL_STAGE_MAX_SLOTS + 1), MIXL_ERR_INVALID_PARAM);
}

/* Two transfers share two slots; both finish with the right bytes. */
static void test_shared_pool(void **state)
{
    mixl_stage_span_t a = {.local = 0, .remote = 0, .len = 20000}, b = {.local = 30000, .remote = 30000, .len = 9999};
    mixl_stage_plan_t pa, pb;
    mixl_stage_pool_t pool;
    mixl_stage_sm_t sa, sb;
    sim_t *x = sim_new(), *y = sim_new();
    uint8_t *dev = malloc(65536), *remote = calloc(1, 65536);
    mixl_status_t s1 = MIXL_IN_PROGRESS, s2 = MIXL_IN_PROGRESS;

    for (size_t i = 0; i < 65536; i++) dev[i] = pattern(i, 9);
    assert_int_equal(mixl_stage_plan(&a, 1, 4096, &pa), MIXL_OK);
    assert_int_equal(mixl_stage_plan(&b, 1, 4096, &pb), MIXL_OK);
    x->dev = y->dev = dev;
    x->remote = y->remote = remote;
    x->plan = &pa;
    y->plan = &pb;
    x->op = y->op = MIXL_OP_WRITE;
    x->latency = y->latency = 2;
    free(y->slots);
    y->slots = x->slots; /* one pool, one set of slots */
    x->chunk_moves = calloc(pa.nchunks, sizeof(unsigned));
    y->chunk_moves = calloc(pb.nchunks, sizeof(unsigned));
    assert_int_equal(mixl_stage_pool_init(&pool, 2), MIXL_OK);
    mixl_stage_sm_reset(&sa, MIXL_OP_WRITE, (uint32_t)pa.nchunks, &sim_io, x);
    mixl_stage_sm_reset(&sb, MIXL_OP_WRITE, (uint32_t)pb.nchunks, &sim_io, y);
    for (int n = 0; (s1 == MIXL_IN_PROGRESS || s2 == MIXL_IN_PROGRESS) && n < 100000; n++) {
        if (s1 == MIXL_IN_PROGRESS) s1 = mixl_stage_progress(&pool, &sa);
        if (s2 == MIXL_IN_PROGRESS) s2 = mixl_stage_progress(&pool, &sb);
    }
    assert_int_equal(s1, MIXL_OK);
    assert_int_equal(s2, MIXL_OK);
    assert_memory_equal(remote, dev, 20000);
    assert_memory_equal(remote + 30000, dev + 30000, 9999);
    mixl_stage_plan_free(&pa);
    mixl_stage_plan_free(&pb);
    y->slots = NULL;
    free(dev);
    free(remote);
    sim_free(x);
    sim_free(y);
}

/* A failing network step ends the transfer with its error and frees every slot. */
static void test_error_frees_slots(void **state)
{
    mixl_stage_span_t sp = {.local = 0, .remote = 0, .len = 40000};
    mixl_stage_plan_t plan;
    mixl_stage_pool_t pool;
    mixl_stage_sm_t sm;
    sim_t *s = sim_new();
    mixl_status_t st;

    s->dev = calloc(1, 65536);
    s->remote = calloc(1, 65536);
    assert_int_equal(mixl_stage_plan(&sp, 1, 4096, &plan), MIXL_OK);
    s->plan = &plan;
    s->op = MIXL_OP_WRITE;
    s->latency = 1;
    s->fail_net_chunk = 3;
    s->chunk_moves = calloc(plan.nchunks, sizeof(unsigned));
    assert_int_equal(mixl_stage_pool_init(&pool, 2), MIXL_OK);
    mixl_stage_sm_reset(&sm, MIXL_OP_WRITE, (uint32_t)plan.nchunks, &sim_io, s);
    while ((st = mixl_stage_progress(&pool, &sm)) == MIXL_IN_PROGRESS)
        ;
    assert_int_equal(st, MIXL_ERR_BACKEND);
    assert_int_equal(mixl_stage_progress(&pool, &sm), MIXL_ERR_BACKEND);
    assert_int_equal(mixl_stage_sm_abort(&pool, &sm, UINT64_MAX), MIXL_ERR_BACKEND);
    for (unsigned i = 0; i < 2; i++) {
        assert_null(pool.slot[i].owner);
        assert_int_equal(pool.slot[i].state, MIXL_STAGE_SLOT_FREE);
    }
    assert_int_equal(sm.holding, 0);
    /* The same machine re-armed on the healthy pool completes. */
    s->fail_net_chunk = -1;
    mixl_stage_sm_reset(&sm, MIXL_OP_WRITE, (uint32_t)plan.nchunks, &sim_io, s);
    while ((st = mixl_stage_progress(&pool, &sm)) == MIXL_IN_PROGRESS)
        ;
    assert_int_equal(st, MIXL_OK);
    mixl_stage_plan_free(&plan);
    free(s->dev);
    free(s->remote);
    sim_free(s);
}

/* A copy that never ends: abort gives up at the deadline and retires its
 * slot, and the slots whose copies queue behind it on the same stream. */
static void test_stuck_copy_retires_slot(void **state)
{
    mixl_stage_span_t sp = {.local = 0, .remote = 0, .len = 4096 * 3};
    mixl_stage_plan_t plan;
    mixl_stage_pool_t pool;
    mixl_stage_sm_t sm;
    sim_t *s = sim_new();
    mixl_status_t st = MIXL_IN_PROGRESS;
    unsigned lost = 0;

    s->dev = calloc(1, 65536);
    s->remote = calloc(1, 65536);
    assert_int_equal(mixl_stage_plan(&sp, 1, 4096, &plan), MIXL_OK);
    s->plan = &plan;
    s->op = MIXL_OP_WRITE;
    s->latency = 0;
    s->stuck_copy_chunk = 0;
    for (size_t i = 0; i < 65536; i++) s->dev[i] = pattern(i, 5);
    s->chunk_moves = calloc(plan.nchunks, sizeof(unsigned));
    assert_int_equal(mixl_stage_pool_init(&pool, 4), MIXL_OK);
    mixl_stage_sm_reset(&sm, MIXL_OP_WRITE, (uint32_t)plan.nchunks, &sim_io, s);
    for (int i = 0; i < 100; i++) st = mixl_stage_progress(&pool, &sm);
    assert_int_equal(st, MIXL_IN_PROGRESS);
    sm.err = MIXL_ERR_CANCELED; /* as if the request was given up */
    assert_int_equal(mixl_stage_sm_abort(&pool, &sm, 0), MIXL_ERR_TIMED_OUT);
    for (unsigned i = 0; i < 4; i++) {
        assert_null(pool.slot[i].owner);
        lost += pool.slot[i].state == MIXL_STAGE_SLOT_LOST;
    }
    assert_int_equal(lost, 3);
    assert_int_equal(sm.holding, 0);
    /* The one slot left still carries a transfer through. */
    s->stuck_copy_chunk = -1;
    memset(s->copy_busy, 0, sizeof(s->copy_busy));
    mixl_stage_sm_reset(&sm, MIXL_OP_WRITE, (uint32_t)plan.nchunks, &sim_io, s);
    while ((st = mixl_stage_progress(&pool, &sm)) == MIXL_IN_PROGRESS)
        ;
    assert_int_equal(st, MIXL_OK);
    assert_memory_equal(s->remote, s->dev, 4096 * 3);
    mixl_stage_plan_free(&plan);
    free(s->dev);
    free(s->remote);
    sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_shape),
        cmocka_unit_test(test_plan_rejects),
        cmocka_unit_test(test_write_two_slots),
        cmocka_unit_test(test_read_two_slots),
        cmocka_unit_test(test_one_slot),
        cmocka_unit_test(test_odd_slot_sizes),
        cmocka_unit_test(test_shared_pool),
        cmocka_unit_test(test_error_frees_slots),
        cmocka_unit_test(test_stuck_copy_retires_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
