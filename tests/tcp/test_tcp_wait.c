/*
 * How a caller waits on TCP transfers, against a fake peer that answers each
 * request DELAY_MS after its last frame (so a transfer lasts that long
 * whatever the machine's speed):
 *   - xfer_wait sleeps once until the end: no wake-ups in between;
 *   - a caller spinning on xfer_test sleeps in short pauses (at most 100 us,
 *     ended by a completion), not on a core;
 *   - a caller polling two transfers in turn pauses once per round, on the
 *     first of them, never on the second;
 *   - the receiving progress thread, fed a 1 MiB payload in paced pieces by a
 *     raw client, reads it in a few large recv calls (SO_RCVLOWAT), not one
 *     per piece.
 * Wake-ups are counted with the thread's voluntary context switches
 * (getrusage RUSAGE_THREAD), which do not depend on the machine's load.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <netinet/tcp.h>

#include <cmocka.h>

#include "tcp_harness.h"
#include "transport/tcp/tcp_internal.h"

#define DELAY_MS 300
#define LEN (64u << 10)

/* Answer every request DELAY_MS after its last frame; until the client closes. */
static int slow_serve(int lfd)
{
    static uint8_t buf[1u << 20];
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f, a;
    int fd = accept(lfd, NULL, NULL);

    if (fd < 0 || h_recv_hello(fd, &h) != 0 || h_send_hello(fd, 1, "slow", "", 0) != 0) return 2;
    while (h_recv_frame(fd, &f, buf, sizeof(buf)) == 0) {
        if (!(f.flags & MIXL_TCP_F_LAST)) continue;
        struct timespec d = {0, DELAY_MS * 1000000L};
        nanosleep(&d, NULL);
        memset(&a, 0, sizeof(a));
        a.type = MIXL_TCP_ACK;
        a.req_id = f.req_id;
        if (h_send_frame(fd, &a, NULL) != 0) return 2;
    }
    close(fd);
    return 0;
}

typedef struct {
    h_agent_t a;
    h_peer_t p;
    h_xfer_t x[2];
    uint8_t *mem;
    pid_t pid;
} slow_t;

static int slow_setup(void **state)
{
    slow_t *s = calloc(1, sizeof(*s));
    int port, lfd = h_listen(&port);
    if (s == NULL || lfd < 0) return -1;
    s->pid = fork();
    if (s->pid == 0) _exit(slow_serve(lfd));
    close(lfd);
    s->mem = calloc(1, 2 * LEN);
    if (s->mem == NULL || h_agent_init(&s->a, "waiter", 10000) != MIXL_OK) return -1;
    mixl_tp_region_t *r = h_register(&s->a, s->mem, 2 * LEN);
    if (r == NULL || h_peer_at(&s->a, "slow", port, 0x100000, 2 * LEN, &s->p) != MIXL_OK) return -1;
    for (int i = 0; i < 2; i++) {
        h_xfer_init(&s->x[i], MIXL_OP_WRITE, &s->p);
        h_xfer_span(&s->x[i], r, s->mem + i * LEN, &s->p.regions[0], 0x100000 + i * LEN, LEN);
        if (mixl_tp_tcp_ops.xfer_prepare(&s->a.tp, &s->x[i].x) != MIXL_OK) return -1;
    }
    *state = s;
    return 0;
}

static int slow_teardown(void **state)
{
    slow_t *s = *state;
    int status;
    for (int i = 0; i < 2; i++) mixl_tp_tcp_ops.xfer_release(&s->a.tp, &s->x[i].x);
    mixl_tp_tcp_ops.peer_remove(&s->a.tp, &s->p.peer);
    h_agent_fini(&s->a);
    waitpid(s->pid, &status, 0); /* the client closed: the fake ends */
    free(s->mem);
    free(s);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static long switches(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nvcsw;
}

static mixl_status_t post(slow_t *s, int i)
{
    return mixl_tp_tcp_ops.xfer_post(&s->a.tp, &s->x[i].x);
}

static mixl_status_t test(slow_t *s, int i)
{
    return mixl_tp_tcp_ops.xfer_test(&s->a.tp, &s->x[i].x);
}

/* xfer_wait: one sleep for the whole transfer, the end reported. */
static void test_wait_sleeps_once(void **state)
{
    slow_t *s = *state;

    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    long c0 = switches();
    uint64_t t0 = mixl_now_ns();
    assert_non_null(mixl_tp_tcp_ops.xfer_wait);
    mixl_status_t st = mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[0].x, mixl_deadline_ns(5000));
    uint64_t ms = (mixl_now_ns() - t0) / 1000000;
    long woke = switches() - c0;
    print_message("xfer_wait: %llu ms, %ld voluntary switches\n", (unsigned long long)ms, woke);
    assert_int_equal(st, MIXL_OK);
    assert_true(ms >= DELAY_MS - 50);
    assert_true(woke <= 5); /* 100 us ticks would be about 3000 */

    /* A deadline before the end: in progress then, and the transfer still ends. */
    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[0].x, mixl_deadline_ns(20)),
                     MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[0].x, mixl_deadline_ns(5000)),
                     MIXL_OK);
}

/* A caller spinning on xfer_test: short pauses, each a sleep. */
static void test_spinning_caller_pauses(void **state)
{
    slow_t *s = *state;
    long calls = 0;

    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    long c0 = switches();
    mixl_status_t st;
    while ((st = test(s, 0)) == MIXL_IN_PROGRESS) calls++;
    long woke = switches() - c0;
    print_message("spinning on xfer_test: %ld calls, %ld voluntary switches\n", calls, woke);
    assert_int_equal(st, MIXL_OK);
    /* 300 ms in pauses of 100 us: about 3000 calls, each a sleep; without
     * pauses millions of calls and hardly a switch. */
    assert_true(calls >= 100);
    assert_true(calls <= 6000);
    assert_true(woke >= calls / 2);
}

/* Two transfers polled in turn: the pause comes on the first of the round. */
static void test_one_pause_per_round(void **state)
{
    slow_t *s = *state;
    uint64_t in_second = 0;
    int done[2] = {0, 0};
    long rounds = 0;

    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    assert_int_equal(post(s, 1), MIXL_IN_PROGRESS);
    while (!done[0]) { /* the fake answers in order: the first ends first */
        rounds++;
        mixl_status_t st = test(s, 0);
        if (st != MIXL_IN_PROGRESS) {
            assert_int_equal(st, MIXL_OK);
            done[0] = 1;
        }
        uint64_t t = mixl_now_ns();
        st = test(s, 1);
        in_second += mixl_now_ns() - t;
        assert_int_equal(st, MIXL_IN_PROGRESS); /* answered DELAY_MS after the first */
    }
    print_message("%ld rounds, %llu us inside the second transfer's tests\n", rounds,
                  (unsigned long long)(in_second / 1000));
    assert_true(rounds >= 100 && rounds <= 6000); /* the first transfer's tests paused */
    /* The second transfer's tests never paused (a pause is 100 us). */
    assert_true(in_second < (uint64_t)rounds * 50000);
    assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[1].x, mixl_deadline_ns(5000)),
                     MIXL_OK);
}

#define PIECES 32
#define PIECE (32u << 10)

/* A raw client sends one WRITE of PIECES * PIECE bytes (1 MiB, the default
 * frame) in pieces 2 ms apart; returns the receiving agent's recv calls for
 * it, having checked the ACK and every byte. */
static uint64_t paced_write_reads(void)
{
    h_agent_t srv;
    mixl_tcp_frame_t f, a;
    uint8_t *mem = calloc(1, PIECES * PIECE), *pay = malloc(PIECES * PIECE);
    uint8_t ans[MIXL_TCP_ERROR_MAX];

    assert_non_null(mem);
    assert_non_null(pay);
    for (size_t i = 0; i < PIECES * PIECE; i++) pay[i] = (uint8_t)(i * 7 + i / 4099);
    assert_int_equal(h_agent_init(&srv, "paced", 10000), MIXL_OK);
    mixl_tp_region_t *r = h_register(&srv, mem, PIECES * PIECE);
    assert_non_null(r);
    int fd = h_raw_client(h_port(&srv), "pacer", "paced"), one = 1;
    assert_true(fd >= 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    tcp_t *tcp = srv.tp.priv;
    uint64_t before = atomic_load(&tcp->rx_reads);
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_WRITE;
    f.flags = MIXL_TCP_F_LAST;
    f.req_id = 7;
    f.region = r->id;
    f.payload_len = PIECES * PIECE;
    f.length = PIECES * PIECE;
    assert_int_equal(h_send_frame(fd, &f, NULL), 0);
    for (int i = 0; i < PIECES; i++) {
        struct timespec d = {0, 2000000L};
        nanosleep(&d, NULL);
        assert_int_equal(h_send_all(fd, pay + (size_t)i * PIECE, PIECE), 0);
    }
    assert_int_equal(h_recv_frame(fd, &a, ans, sizeof(ans)), 0);
    assert_int_equal(a.type, MIXL_TCP_ACK);
    assert_true(a.req_id == 7);
    uint64_t reads = atomic_load(&tcp->rx_reads) - before;
    assert_memory_equal(mem, pay, PIECES * PIECE);
    close(fd);
    h_agent_fini(&srv);
    free(mem);
    free(pay);
    return reads;
}

/* Inside a payload the receiver is woken for 256 KiB at a time: a 1 MiB
 * frame arriving as 32 pieces takes a handful of reads, not one per piece
 * (MIXL_TCP_RCVLOWAT=0 turns it off: then about 33). */
static void test_payload_read_in_few_calls(void **state)
{
    (void)state;
    uint64_t reads = paced_write_reads();
    print_message("1 MiB WRITE in %d paced pieces: %llu recv calls\n", PIECES,
                  (unsigned long long)reads);
    assert_true(reads >= 1);
    assert_true(reads <= 8);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wait_sleeps_once, slow_setup, slow_teardown),
        cmocka_unit_test_setup_teardown(test_spinning_caller_pauses, slow_setup, slow_teardown),
        cmocka_unit_test_setup_teardown(test_one_pause_per_round, slow_setup, slow_teardown),
        cmocka_unit_test(test_payload_read_in_few_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
