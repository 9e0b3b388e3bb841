/*
 * The TCP backend's server and client, driven through the ops table by two
 * or three backend instances in one process: WRITE and READ of small and
 * multi-frame spans, several transfers in flight on one connection,
 * notifications after their data, CRC32C, and the refusals a target makes
 * (offset outside the region, unknown region) without writing anywhere.
 * The pair tests run twice: one connection per peer, then three
 * (data_plane.tcp.connections), where transfers are striped over the
 * connections and notifications must still follow all earlier data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tcp_harness.h"
#include "transport/tcp/tcp_internal.h"

#define BIG (20u << 20) /* 20 MiB: many 1 MiB frames */

/* A pattern that differs per seed; four bytes per step (tests fill hundreds of MiB). */
static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        x = x * 1664525u + 1013904223u;
        memcpy(p + i, &x, 4);
    }
    for (; i < len; i++) p[i] = (uint8_t)(x >> (8 * (i & 3)));
}

typedef struct {
    unsigned conns; /* connections per peer of the initiator */
    h_agent_t a, b;
    h_peer_t b_at_a; /* b as a peer of a */
    uint8_t *amem, *bmem;
    mixl_tp_region_t *ar, *br;
} pair_t;

static int pair_setup_n(void **state, unsigned conns)
{
    pair_t *p = calloc(1, sizeof(*p));
    mixl_agent_params_t tmpl = {.size = sizeof(tmpl), .tcp_connections = conns};
    if (p == NULL) return -1;
    p->conns = conns;
    p->amem = malloc(BIG + 8192);
    p->bmem = malloc(BIG + 8192);
    if (p->amem == NULL || p->bmem == NULL) return -1;
    if (h_agent_init_ex(&p->a, "init-a", 5000, &tmpl) != MIXL_OK) return -1;
    if (h_agent_init(&p->b, "target-b", 5000) != MIXL_OK) return -1;
    p->ar = h_register(&p->a, p->amem, BIG + 8192);
    p->br = h_register(&p->b, p->bmem, BIG + 8192);
    if (p->ar == NULL || p->br == NULL) return -1;
    if (h_peer_add(&p->a, &p->b, &p->b_at_a) != MIXL_OK) return -1;
    *state = p;
    return 0;
}

static int pair_setup(void **state)
{
    return pair_setup_n(state, 1);
}

static int pair_setup3(void **state)
{
    return pair_setup_n(state, 3);
}

static int pair_teardown(void **state)
{
    pair_t *p = *state;
    mixl_tp_tcp_ops.peer_remove(&p->a.tp, &p->b_at_a.peer);
    h_agent_fini(&p->a);
    h_agent_fini(&p->b);
    free(p->amem);
    free(p->bmem);
    free(p);
    return 0;
}

static void test_write_small_and_big(void **state)
{
    pair_t *p = *state;
    h_xfer_t hx;
    const mixl_md_region_t *rr = &p->b_at_a.regions[0];
    uint64_t rbase = rr->addr;

    fill(p->amem, BIG + 8192, 1);
    memset(p->bmem, 0, BIG + 8192);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p->b_at_a);
    h_xfer_span(&hx, p->ar, p->amem, rr, rbase + 100, 77);                 /* tiny */
    h_xfer_span(&hx, p->ar, p->amem + 4096, rr, rbase + 8192, BIG);        /* 20 frames */
    h_xfer_span(&hx, p->ar, p->amem + 1000, rr, rbase + 5000, 3000);       /* small */
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &hx.x), MIXL_OK);
    assert_int_equal(h_run(&p->a, &hx, 20000), MIXL_OK);
    assert_memory_equal(p->bmem + 100, p->amem, 77);
    assert_memory_equal(p->bmem + 8192, p->amem + 4096, BIG);
    assert_memory_equal(p->bmem + 5000, p->amem + 1000, 3000);
    /* nothing around the spans was touched */
    for (size_t i = 0; i < 100; i++) assert_int_equal(p->bmem[i], 0);
    for (size_t i = 177; i < 5000; i++) assert_int_equal(p->bmem[i], 0);
    for (size_t i = 8000; i < 8192; i++) assert_int_equal(p->bmem[i], 0);

    /* The prepared transfer is reposted on the same connection. */
    fill(p->amem, 4096 + BIG, 2);
    assert_int_equal(h_run(&p->a, &hx, 20000), MIXL_OK);
    assert_memory_equal(p->bmem + 8192, p->amem + 4096, BIG);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &hx.x);
}

static void test_read_big(void **state)
{
    pair_t *p = *state;
    h_xfer_t hx;
    const mixl_md_region_t *rr = &p->b_at_a.regions[0];

    fill(p->bmem, BIG + 8192, 3);
    memset(p->amem, 0, BIG + 8192);
    h_xfer_init(&hx, MIXL_OP_READ, &p->b_at_a);
    h_xfer_span(&hx, p->ar, p->amem + 64, rr, rr->addr + 4096, BIG);
    h_xfer_span(&hx, p->ar, p->amem + BIG + 128, rr, rr->addr + 1, 5);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &hx.x), MIXL_OK);
    assert_int_equal(h_run(&p->a, &hx, 20000), MIXL_OK);
    assert_memory_equal(p->amem + 64, p->bmem + 4096, BIG);
    assert_memory_equal(p->amem + BIG + 128, p->bmem + 1, 5);
    for (size_t i = 0; i < 64; i++) assert_int_equal(p->amem[i], 0);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &hx.x);
}

static void test_many_in_flight(void **state)
{
    enum { N = 32, SZ = 256 << 10 };
    pair_t *p = *state;
    static h_xfer_t hx[N];
    const mixl_md_region_t *rr = &p->b_at_a.regions[0];

    fill(p->amem, (size_t)N * SZ, 4);
    memset(p->bmem, 0, (size_t)N * SZ);
    for (int i = 0; i < N; i++) {
        h_xfer_init(&hx[i], i % 4 == 3 ? MIXL_OP_READ : MIXL_OP_WRITE, &p->b_at_a);
        if (i % 4 == 3) /* READs pull a separate area back */
            h_xfer_span(&hx[i], p->ar, p->amem + BIG + 4096, rr, rr->addr + BIG, 4096);
        else
            h_xfer_span(&hx[i], p->ar, p->amem + (size_t)i * SZ, rr, rr->addr + (uint64_t)i * SZ, SZ);
        assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &hx[i].x), MIXL_OK);
    }
    fill(p->bmem + BIG, 4096, 5);
    for (int i = 0; i < N; i++) {
        mixl_status_t st = mixl_tp_tcp_ops.xfer_post(&p->a.tp, &hx[i].x);
        assert_true(st == MIXL_IN_PROGRESS || st == MIXL_OK);
    }
    for (int i = 0; i < N; i++) assert_int_equal(h_wait(&p->a, &hx[i], 20000), MIXL_OK);
    for (int i = 0; i < N; i++) {
        if (i % 4 == 3) continue;
        assert_memory_equal(p->bmem + (size_t)i * SZ, p->amem + (size_t)i * SZ, SZ);
    }
    assert_memory_equal(p->amem + BIG + 4096, p->bmem + BIG, 4096);
    for (int i = 0; i < N; i++) mixl_tp_tcp_ops.xfer_release(&p->a.tp, &hx[i].x);
}

static void test_notif_after_data(void **state)
{
    pair_t *p = *state;
    h_xfer_t w, r;
    mixl_notif_t n[4];
    const mixl_md_region_t *rr = &p->b_at_a.regions[0];

    /* Drain anything earlier tests left. */
    size_t cnt;
    do mixl_tp_tcp_ops.notif_poll(&p->b.tp, n, 4, &cnt); while (cnt > 0);

    fill(p->amem, BIG, 6);
    memset(p->bmem, 0, BIG);
    h_xfer_init(&w, MIXL_OP_WRITE, &p->b_at_a);
    h_xfer_span(&w, p->ar, p->amem, rr, rr->addr, BIG);
    h_xfer_notif(&w, "req-17:layer-3");
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &w.x), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&p->a.tp, &w.x), MIXL_IN_PROGRESS);
    /* The target sees the notification only with all the data in place,
     * whether or not the initiator has polled yet. */
    assert_int_equal(h_notif_wait(&p->b, n, 4, 20000), 1);
    assert_string_equal(n[0].peer, "init-a");
    assert_int_equal(n[0].len, strlen("req-17:layer-3"));
    assert_memory_equal(n[0].payload, "req-17:layer-3", n[0].len);
    assert_memory_equal(p->bmem, p->amem, BIG);
    assert_int_equal(h_wait(&p->a, &w, 20000), MIXL_OK);

    /* READ with a notification: delivered at the target after the data left it. */
    h_xfer_init(&r, MIXL_OP_READ, &p->b_at_a);
    h_xfer_span(&r, p->ar, p->amem + BIG, rr, rr->addr, 4096);
    h_xfer_notif(&r, "read-done");
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &r.x), MIXL_OK);
    assert_int_equal(h_run(&p->a, &r, 20000), MIXL_OK);
    assert_memory_equal(p->amem + BIG, p->bmem, 4096);
    assert_int_equal(h_notif_wait(&p->b, n, 4, 20000), 1);
    assert_memory_equal(n[0].payload, "read-done", 9);

    /* Data-less notifications, in order, the empty one included. */
    assert_int_equal(mixl_tp_tcp_ops.notif_send(&p->a.tp, &p->b_at_a.peer, "one", 3), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.notif_send(&p->a.tp, &p->b_at_a.peer, "", 0), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.notif_send(&p->a.tp, &p->b_at_a.peer, "three", 5), MIXL_OK);
    size_t got = 0;
    uint64_t end = mixl_deadline_ns(10000);
    while (got < 3 && mixl_now_ns() < end) {
        mixl_tp_tcp_ops.notif_poll(&p->b.tp, n + got, 4 - got, &cnt);
        got += cnt;
    }
    assert_int_equal(got, 3);
    assert_int_equal(n[0].len, 3);
    assert_int_equal(n[1].len, 0);
    assert_int_equal(n[2].len, 5);
    assert_memory_equal(n[2].payload, "three", 5);
    assert_int_equal(mixl_tp_tcp_ops.notif_send(&p->a.tp, &p->b_at_a.peer, n, 49),
                     MIXL_ERR_TOO_LARGE);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &w.x);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &r.x);
}

static void test_target_refusals(void **state)
{
    pair_t *p = *state;
    h_xfer_t hx, ok;
    mixl_md_region_t fake[2];
    const mixl_md_region_t *rr = &p->b_at_a.regions[0];
    mixl_notif_t n[2];
    size_t cnt;

    do mixl_tp_tcp_ops.notif_poll(&p->b.tp, n, 2, &cnt); while (cnt > 0);
    mixl_errbuf_clear(&p->a.eb);
    /* A stale view of the region: the peer claims it is larger than it is. */
    fake[0] = *rr;
    fake[0].len = rr->len + 65536;
    memset(p->bmem, 0xab, BIG + 8192);
    fill(p->amem, 65536, 7);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p->b_at_a);
    h_xfer_span(&hx, p->ar, p->amem, &fake[0], rr->addr + rr->len - 100, 4096);
    h_xfer_notif(&hx, "must-not-arrive");
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &hx.x), MIXL_OK);
    assert_int_equal(h_run(&p->a, &hx, 20000), MIXL_ERR_OUT_OF_RANGE);
    assert_non_null(strstr(mixl_errbuf_get(&p->a.eb), "outside region"));
    for (size_t i = 0; i < BIG + 8192; i++)
        if (p->bmem[i] != 0xab) fail_msg("byte %zu of the target changed", i);
    assert_int_equal(h_notif_wait(&p->b, n, 2, 300), 0);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &hx.x);
    mixl_errbuf_clear(&p->a.eb);

    /* A READ past the end, and a region id the target never registered. */
    h_xfer_init(&hx, MIXL_OP_READ, &p->b_at_a);
    h_xfer_span(&hx, p->ar, p->amem, &fake[0], rr->addr + rr->len, 1);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &hx.x), MIXL_OK);
    assert_int_equal(h_run(&p->a, &hx, 20000), MIXL_ERR_OUT_OF_RANGE);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &hx.x);
    fake[1] = *rr;
    fake[1].id = 999;
    h_xfer_init(&hx, MIXL_OP_WRITE, &p->b_at_a);
    h_xfer_span(&hx, p->ar, p->amem, &fake[1], rr->addr, 4096);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &hx.x), MIXL_OK);
    assert_int_equal(h_run(&p->a, &hx, 20000), MIXL_ERR_NOT_REGISTERED);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &hx.x);

    /* The connection still serves good transfers. */
    h_xfer_init(&ok, MIXL_OP_WRITE, &p->b_at_a);
    h_xfer_span(&ok, p->ar, p->amem, rr, rr->addr, 4096);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &ok.x), MIXL_OK);
    assert_int_equal(h_run(&p->a, &ok, 20000), MIXL_OK);
    assert_memory_equal(p->bmem, p->amem, 4096);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &ok.x);
}

/*
 * Whole-request order: a transfer's notification is delivered only after
 * its data and the data of every transfer posted before it to that peer. A
 * large WRITE without notification (striped over every connection when
 * there are several) is followed by a small WRITE whose notification rides
 * the lead connection, then by a data-less notification; when each
 * notification arrives, all earlier data must be in the target's memory.
 */
static void test_whole_request_order(void **state)
{
    enum { ROUNDS = 3, SMALL = 4096 };
    const size_t large = 6u << 20;
    pair_t *p = *state;
    h_xfer_t big, small;
    mixl_notif_t n[4];
    const mixl_md_region_t *rr = &p->b_at_a.regions[0];
    char tag[16];
    size_t cnt;

    do mixl_tp_tcp_ops.notif_poll(&p->b.tp, n, 4, &cnt); while (cnt > 0);
    h_xfer_init(&big, MIXL_OP_WRITE, &p->b_at_a);
    h_xfer_span(&big, p->ar, p->amem, rr, rr->addr, large / 2);
    h_xfer_span(&big, p->ar, p->amem + large / 2 + 8192, rr, rr->addr + large / 2 + 8192,
                large / 2);
    h_xfer_init(&small, MIXL_OP_WRITE, &p->b_at_a);
    h_xfer_span(&small, p->ar, p->amem + BIG, rr, rr->addr + BIG, SMALL);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &big.x), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&p->a.tp, &small.x), MIXL_OK);
    for (int r = 0; r < ROUNDS; r++) {
        fill(p->amem, large + 8192, 100 + (uint32_t)r);
        fill(p->amem + BIG, SMALL, 200 + (uint32_t)r);
        snprintf(tag, sizeof(tag), "round-%d", r);
        h_xfer_notif(&small, tag);
        assert_int_equal(mixl_tp_tcp_ops.xfer_post(&p->a.tp, &big.x), MIXL_IN_PROGRESS);
        assert_int_equal(mixl_tp_tcp_ops.xfer_post(&p->a.tp, &small.x), MIXL_IN_PROGRESS);
        assert_int_equal(h_notif_wait(&p->b, n, 1, 20000), 1);
        assert_memory_equal(n[0].payload, tag, strlen(tag));
        /* Checked as soon as the notification is seen: nothing may still be on its way. */
        assert_memory_equal(p->bmem, p->amem, large / 2);
        assert_memory_equal(p->bmem + large / 2 + 8192, p->amem + large / 2 + 8192, large / 2);
        assert_memory_equal(p->bmem + BIG, p->amem + BIG, SMALL);
        assert_int_equal(h_wait(&p->a, &small, 20000), MIXL_OK);
        assert_int_equal(h_wait(&p->a, &big, 20000), MIXL_OK);

        /* A data-less notification after a striped transfer still in flight. */
        fill(p->amem, large + 8192, 300 + (uint32_t)r);
        assert_int_equal(mixl_tp_tcp_ops.xfer_post(&p->a.tp, &big.x), MIXL_IN_PROGRESS);
        assert_int_equal(mixl_tp_tcp_ops.notif_send(&p->a.tp, &p->b_at_a.peer, tag, 3), MIXL_OK);
        assert_int_equal(h_notif_wait(&p->b, n, 1, 20000), 1);
        assert_memory_equal(p->bmem, p->amem, large / 2);
        assert_memory_equal(p->bmem + large / 2 + 8192, p->amem + large / 2 + 8192, large / 2);
        assert_int_equal(h_wait(&p->a, &big, 20000), MIXL_OK);
    }
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &big.x);
    mixl_tp_tcp_ops.xfer_release(&p->a.tp, &small.x);
}

/* The path the group names ran: with several connections, transfers were
 * striped, and the target accepted that many connections from us. */
static void test_connections_used(void **state)
{
    pair_t *p = *state;
    tcp_t *ta = p->a.tp.priv, *tb = p->b.tp.priv;
    char report[256];

    mixl_tp_tcp_ops.path_report(&p->a.tp, report, sizeof(report));
    char want[48];
    snprintf(want, sizeof(want), "%u connection%s per peer", p->conns, p->conns == 1 ? "" : "s");
    assert_non_null(strstr(report, want));
    assert_int_equal(atomic_load(&tb->accepted), p->conns);
    if (p->conns > 1)
        assert_true(atomic_load(&ta->striped) > 0);
    else
        assert_int_equal(atomic_load(&ta->striped), 0);
    /* Who wrote the frames and read the answers: the caller's thread unless
     * MIXL_TCP_DIRECT=0; it reads them whenever it waits in xfer_wait (and
     * in a polling caller's pauses, when the answer is not there at once). */
    uint64_t direct = atomic_load(&ta->direct_posts), reads = atomic_load(&ta->agent_reads);
    print_message("%llu direct posts, %llu waits read by the caller\n", (unsigned long long)direct,
                  (unsigned long long)reads);
    if (!ta->direct) {
        assert_int_equal(direct, 0);
        assert_int_equal(reads, 0);
    } else {
        assert_true(direct > 0);
        if (h_waiting()) assert_true(reads > 0);
    }
}

static void test_crc(void **state)
{
    h_agent_t a, b;
    h_peer_t pb;
    h_xfer_t w, r;
    size_t len = 3u << 20;
    uint8_t *am = malloc(2 * len), *bm = calloc(1, len);
    (void)state;

    setenv("MIXL_TCP_CRC", "1", 1);
    assert_int_equal(h_agent_init(&a, "crc-a", 5000), MIXL_OK);
    assert_int_equal(h_agent_init(&b, "crc-b", 5000), MIXL_OK);
    unsetenv("MIXL_TCP_CRC");
    mixl_tp_region_t *ar = h_register(&a, am, 2 * len);
    h_register(&b, bm, len);
    assert_int_equal(h_peer_add(&a, &b, &pb), MIXL_OK);
    char report[256];
    mixl_tp_tcp_ops.path_report(&a.tp, report, sizeof(report));
    assert_non_null(strstr(report, "crc32c on"));
    fill(am, len, 8);
    h_xfer_init(&w, MIXL_OP_WRITE, &pb);
    h_xfer_span(&w, ar, am, &pb.regions[0], pb.regions[0].addr, len);
    h_xfer_notif(&w, "crc");
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &w.x), MIXL_OK);
    assert_int_equal(h_run(&a, &w, 20000), MIXL_OK);
    assert_memory_equal(bm, am, len);
    h_xfer_init(&r, MIXL_OP_READ, &pb);
    h_xfer_span(&r, ar, am + len, &pb.regions[0], pb.regions[0].addr, len);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &r.x), MIXL_OK);
    assert_int_equal(h_run(&a, &r, 20000), MIXL_OK);
    assert_memory_equal(am + len, bm, len);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &w.x);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &r.x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &pb.peer);
    h_agent_fini(&a);
    h_agent_fini(&b);
    free(am);
    free(bm);
}

static void test_unreachable_peer(void **state)
{
    h_agent_t a;
    h_peer_t p;
    mixl_tp_peer_t bare;
    mixl_metadata_t md;
    h_xfer_t hx;
    uint8_t mem[64];
    (void)state;

    assert_int_equal(h_agent_init(&a, "lonely", 2000), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, sizeof(mem));
    /* No endpoint in the metadata: not reachable over TCP. */
    memset(&bare, 0, sizeof(bare));
    memset(&md, 0, sizeof(md));
    snprintf(bare.name, sizeof(bare.name), "mpi-only");
    bare.md = &md;
    assert_int_equal(mixl_tp_tcp_ops.peer_add(&a.tp, &bare), MIXL_ERR_UNREACHABLE);
    assert_non_null(strstr(mixl_errbuf_get(&a.eb), "mpi-only"));
    mixl_errbuf_clear(&a.eb);
    /* An endpoint nobody listens on: the first use fails, naming the peer. */
    int port = 0;
    int fd = h_listen(&port);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(h_peer_at(&a, "gone", port, 0x1000, 64, &p), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p);
    h_xfer_span(&hx, ar, mem, &p.regions[0], 0x1000, 64);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx.x), MIXL_ERR_UNREACHABLE);
    assert_non_null(strstr(mixl_errbuf_get(&a.eb), "gone"));
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    h_agent_fini(&a);
}

/*
 * N back-to-back WRITEs of a fresh pattern each, with the progress
 * thread's watch after a completion at poll_us (mixl_agent_params_t); every
 * iteration's bytes are checked. Returns how many posts the watch caught
 * without a wake-up.
 */
static uint64_t poll_run(int poll_us)
{
    enum { N = 64, LEN = 256 << 10 };
    mixl_agent_params_t tmpl = {.size = sizeof(tmpl), .tcp_poll_us = poll_us};
    h_agent_t a, b;
    h_peer_t pb;
    h_xfer_t hx;
    uint8_t *amem = malloc(LEN), *bmem = calloc(1, LEN);

    assert_non_null(amem);
    assert_non_null(bmem);
    assert_int_equal(h_agent_init_ex(&a, "poll-a", 5000, &tmpl), MIXL_OK);
    assert_int_equal(h_agent_init(&b, "poll-b", 5000), MIXL_OK);
    /* The watch catches posts handed to the progress thread: the caller's
     * thread writing its own frames would leave it nothing to catch. */
    ((tcp_t *)a.tp.priv)->direct = 0;
    mixl_tp_region_t *ar = h_register(&a, amem, LEN);
    assert_non_null(ar);
    assert_non_null(h_register(&b, bmem, LEN));
    assert_int_equal(h_peer_add(&a, &b, &pb), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_WRITE, &pb);
    h_xfer_span(&hx, ar, amem, &pb.regions[0], pb.regions[0].addr, LEN);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx.x), MIXL_OK);
    for (int i = 0; i < N; i++) {
        fill(amem, LEN, 100u + (uint32_t)i);
        assert_int_equal(h_run(&a, &hx, 5000), MIXL_OK);
        assert_memory_equal(bmem, amem, LEN);
    }
    uint64_t polled = atomic_load(&((tcp_t *)a.tp.priv)->polled_posts);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &hx.x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &pb.peer);
    h_agent_fini(&a);
    h_agent_fini(&b);
    free(amem);
    free(bmem);
    return polled;
}

/* The watch after a completion (data_plane.tcp.poll_us) catches the next
 * post when on, never when off; the bytes arrive either way. The window
 * is wide so that a loaded machine still posts inside it. */
static void test_poll_after_completion(void **state)
{
    (void)state;
    assert_int_equal(poll_run(-1), 0);
    assert_true(poll_run(5000) > 0);
}

/* Each of the backend's environment variables, malformed or out of range,
 * fails init with MIXL_ERR_CONFIG and a message naming it, its value and
 * the range; the run's own setting (MIXL_TCP_DIRECT in .queued) is kept. */
static void test_bad_environment(void **state)
{
    static const struct {
        const char *var, *value, *range;
    } bad[] = {
        {"MIXL_TCP_DIRECT", "2", "0..1"},
        {"MIXL_TCP_DIRECT", "1x", "0..1"},
        {"MIXL_TCP_FRAME_BYTES", "1x", "4096..67108864"},
        {"MIXL_TCP_RCVLOWAT", "-1", "0..67108864"},
        {"MIXL_TCP_POLL_US", "fast", "0..10000"},
        {"MIXL_TCP_CONNECTIONS", "17", "1..16"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *old = getenv(bad[i].var);
        char *keep = old != NULL ? strdup(old) : NULL, want[96];
        h_agent_t a;

        setenv(bad[i].var, bad[i].value, 1);
        mixl_status_t st = h_agent_init(&a, "env", 2000);
        if (keep != NULL)
            setenv(bad[i].var, keep, 1);
        else
            unsetenv(bad[i].var);
        free(keep);
        print_message("%s=%s: %s\n", bad[i].var, bad[i].value, mixl_errbuf_get(&a.eb));
        assert_int_equal(st, MIXL_ERR_CONFIG);
        snprintf(want, sizeof(want), "%s=%s outside %s", bad[i].var, bad[i].value, bad[i].range);
        assert_non_null(strstr(mixl_errbuf_get(&a.eb), want));
    }
}

/* A configured port is used as given; one already taken fails init, naming it. */
static void test_fixed_port(void **state)
{
    h_agent_t a;
    mixl_tp_t tp;
    mixl_errbuf_t eb;
    mixl_agent_params_t p;
    char want[32];
    (void)state;

    assert_int_equal(h_agent_init(&a, "first", 2000), MIXL_OK);
    int port = h_port(&a);
    assert_true(port > 0);
    memset(&tp, 0, sizeof(tp));
    memset(&eb, 0, sizeof(eb));
    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.name = "second";
    p.tcp_bind = "127.0.0.1";
    p.tcp_port = port;
    tp.ops = &mixl_tp_tcp_ops;
    tp.eb = &eb;
    tp.agent_name = "second";
    tp.priv = calloc(1, mixl_tp_tcp_ops.priv_size);
    assert_int_equal(mixl_tp_tcp_ops.init(&tp, &p), MIXL_ERR_IO);
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    assert_non_null(strstr(mixl_errbuf_get(&eb), want));
    free(tp.priv);
    /* Freed, the port can be taken by the next agent as configured. */
    h_agent_fini(&a);
    memset(&tp, 0, sizeof(tp));
    tp.ops = &mixl_tp_tcp_ops;
    tp.eb = &eb;
    tp.agent_name = "second";
    tp.priv = calloc(1, mixl_tp_tcp_ops.priv_size);
    assert_int_equal(mixl_tp_tcp_ops.init(&tp, &p), MIXL_OK);
    mixl_metadata_t md;
    memset(&md, 0, sizeof(md));
    mixl_tp_tcp_ops.export_md(&tp, NULL, 0, &md);
    assert_int_equal(md.tcp.port, port);
    assert_string_equal(md.tcp.host, "127.0.0.1");
    mixl_tp_tcp_ops.fini(&tp);
    free(tp.priv);
}

int main(void)
{
    const struct CMUnitTest pair_tests[] = {
        cmocka_unit_test(test_write_small_and_big), cmocka_unit_test(test_read_big),
        cmocka_unit_test(test_many_in_flight),      cmocka_unit_test(test_notif_after_data),
        cmocka_unit_test(test_target_refusals),     cmocka_unit_test(test_whole_request_order),
        cmocka_unit_test(test_connections_used),
    };
    const struct CMUnitTest solo_tests[] = {
        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_unreachable_peer),
        cmocka_unit_test(test_fixed_port),
        cmocka_unit_test(test_bad_environment),
        cmocka_unit_test(test_poll_after_completion),
    };
    int failed = cmocka_run_group_tests_name("tcp pair", pair_tests, pair_setup, pair_teardown);
    failed += cmocka_run_group_tests_name("tcp pair, 3 connections", pair_tests, pair_setup3,
                                          pair_teardown);
    failed += cmocka_run_group_tests_name("tcp solo", solo_tests, NULL, NULL);
    return failed;
}
