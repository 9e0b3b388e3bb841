/*
 * The agent's public counters (include/mixl/stats.h): two TCP agents in one
 * process move data of a different size each time, with and without
 * notifications, and every counter (totals, the TCP backend's, the peer's)
 * must equal what was done; a transfer to a peer that went away counts as an
 * error and moves no bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <mixl/mixl.h>

#include "util/clock.h"

static mixl_agent_h make_agent(const char *name)
{
    mixl_agent_params_t p;
    mixl_agent_h a = NULL;
    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.name = name;
    p.comm = MPI_COMM_NULL;
    p.backends = MIXL_BACKEND_TCP;
    p.timeout_ms = 3000;
    return mixl_agent_create(&p, &a) == MIXL_OK ? a : NULL;
}

static void exchange(mixl_agent_h from, mixl_agent_h to)
{
    void *blob;
    size_t len;
    assert_int_equal(mixl_metadata_export(from, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_import(to, blob, len, NULL), MIXL_OK);
    mixl_free(blob);
}

static mixl_status_t wait_xfer(mixl_xfer_h x)
{
    uint64_t end = mixl_deadline_ns(20000);
    struct timespec pause = {0, 20000};
    mixl_status_t st;
    while ((st = mixl_xfer_test(x)) == MIXL_IN_PROGRESS && mixl_now_ns() < end)
        nanosleep(&pause, NULL);
    return st;
}

static size_t drain_notifs(mixl_agent_h a, size_t want)
{
    uint64_t end = mixl_deadline_ns(20000);
    struct timespec pause = {0, 100000};
    mixl_notif_t n[8];
    size_t got = 0, cnt;
    while (got < want && mixl_now_ns() < end) {
        assert_int_equal(mixl_notif_poll(a, n, 8, &cnt), MIXL_OK);
        got += cnt;
        if (cnt == 0) nanosleep(&pause, NULL);
    }
    return got;
}

static void test_counters(void **state)
{
    enum { LEN = 1u << 20, ROUNDS = 5 };
    uint8_t *pm = calloc(1, LEN), *dm = calloc(1, LEN);
    mixl_region_h pr, dr;
    mixl_xfer_h x[ROUNDS];
    uint64_t bytes = 0;
    (void)state;

    mixl_agent_h src = make_agent("stats-src"), dst = make_agent("stats-dst");
    assert_non_null(src);
    assert_non_null(dst);
    assert_int_equal(mixl_mem_register(src, pm, LEN, MIXL_MEM_HOST, 0, &pr), MIXL_OK);
    assert_int_equal(mixl_mem_register(dst, dm, LEN, MIXL_MEM_HOST, 0, &dr), MIXL_OK);
    assert_int_equal(mixl_agent_start(src), MIXL_OK);
    assert_int_equal(mixl_agent_start(dst), MIXL_OK);
    exchange(dst, src);
    exchange(src, dst);

    /* Round i moves (i + 1) * 4099 bytes; odd rounds carry a notification. */
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t len = (uint64_t)(i + 1) * 4099;
        memset(pm, 'a' + i, len);
        mixl_desc_t l = {(uint64_t)(uintptr_t)pm, len, MIXL_MEM_HOST, 0};
        mixl_desc_t r = {(uint64_t)(uintptr_t)dm, len, MIXL_MEM_HOST, 0};
        mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = "stats-dst",
                                 .local = &l, .remote = &r, .count = 1,
                                 .notif = (i % 2) ? "n" : NULL, .notif_len = (i % 2) ? 1 : 0};
        assert_int_equal(mixl_xfer_create(src, &xp, &x[i]), MIXL_OK);
        mixl_status_t st = mixl_xfer_post(x[i]);
        assert_true(st == MIXL_OK || st == MIXL_IN_PROGRESS);
        assert_int_equal(wait_xfer(x[i]), MIXL_OK);
        assert_int_equal(dm[len - 1], 'a' + i);
        bytes += len;
    }
    /* Two data-less notifications back. */
    assert_int_equal(mixl_notif_send(dst, "stats-src", "x", 1), MIXL_OK);
    assert_int_equal(mixl_notif_send(dst, "stats-src", "y", 1), MIXL_OK);
    assert_int_equal(drain_notifs(dst, 2), 2);
    assert_int_equal(drain_notifs(src, 2), 2);

    mixl_agent_stats_t s = {.size = sizeof(s)};
    assert_int_equal(mixl_agent_stats(src, &s), MIXL_OK);
    assert_int_equal(s.total.posts, ROUNDS);
    assert_int_equal(s.total.completed, ROUNDS);
    assert_int_equal(s.total.errors, 0);
    assert_int_equal(s.total.bytes, bytes);
    assert_int_equal(s.total.notif_sent, 2);
    assert_int_equal(s.total.notif_received, 2);
    assert_memory_equal(&s.backend[MIXL_STATS_TCP], &s.total, sizeof(s.total));
    assert_int_equal(s.backend[MIXL_STATS_MPI].posts, 0);

    mixl_agent_stats_t d = {.size = sizeof(d)};
    assert_int_equal(mixl_agent_stats(dst, &d), MIXL_OK);
    assert_int_equal(d.total.posts, 0);
    assert_int_equal(d.total.bytes, 0);
    assert_int_equal(d.total.notif_sent, 2);
    assert_int_equal(d.total.notif_received, 2);

    mixl_peer_stats_t ps[2];
    size_t np = 0;
    assert_int_equal(mixl_agent_peer_stats(src, ps, 2, &np), MIXL_OK);
    assert_int_equal(np, 1);
    assert_string_equal(ps[0].peer, "stats-dst");
    assert_int_equal(ps[0].backend, MIXL_BACKEND_TCP);
    assert_int_equal(ps[0].posts, ROUNDS);
    assert_int_equal(ps[0].completed, ROUNDS);
    assert_int_equal(ps[0].bytes, bytes);
    assert_int_equal(ps[0].notif_sent, 2);
    /* A refreshed import keeps the peer's counters. */
    exchange(dst, src);
    assert_int_equal(mixl_agent_peer_stats(src, ps, 0, &np), MIXL_OK);
    assert_int_equal(np, 1);
    for (int i = 0; i < ROUNDS; i++) assert_int_equal(mixl_xfer_release(x[i]), MIXL_OK);
    assert_int_equal(mixl_agent_peer_stats(src, ps, 2, &np), MIXL_OK);
    assert_int_equal(ps[0].bytes, bytes);

    /* The target goes away: the next transfer ends in an error, counted, no bytes. */
    mixl_desc_t l = {(uint64_t)(uintptr_t)pm, 4096, MIXL_MEM_HOST, 0};
    mixl_desc_t r = {(uint64_t)(uintptr_t)dm, 4096, MIXL_MEM_HOST, 0};
    mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = "stats-dst",
                             .local = &l, .remote = &r, .count = 1};
    mixl_xfer_h bad;
    assert_int_equal(mixl_xfer_create(src, &xp, &bad), MIXL_OK);
    mixl_agent_destroy(dst);
    mixl_status_t st = mixl_xfer_post(bad);
    if (st == MIXL_IN_PROGRESS) st = wait_xfer(bad);
    assert_true(st < 0);
    assert_int_equal(mixl_agent_stats(src, &s), MIXL_OK);
    assert_int_equal(s.total.posts, ROUNDS + 1);
    assert_int_equal(s.total.errors, 1);
    assert_int_equal(s.total.completed, ROUNDS);
    assert_int_equal(s.total.bytes, bytes);
    (void)mixl_xfer_release(bad);

    /* Bad arguments. */
    mixl_agent_stats_t small = {.size = 8};
    assert_int_equal(mixl_agent_stats(src, &small), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(mixl_agent_stats(NULL, &s), MIXL_ERR_INVALID_PARAM);
    assert_int_equal(mixl_agent_peer_stats(src, NULL, 1, &np), MIXL_ERR_INVALID_PARAM);
    mixl_agent_destroy(src);
    free(pm);
    free(dm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_counters)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
