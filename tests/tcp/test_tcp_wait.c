/*
 * How a caller waits on TCP transfers, against a fake peer that answers each
 * request DELAY_MS after its last frame (so a transfer lasts that long
 * whatever the machine's speed):
 *   - xfer_wait sleeps once until the end: no wake-ups in between;
 *   - a caller spinning on xfer_test sleeps in short pauses (at most 100 us,
 *     ended by a completion), not on a core;
 *   - a caller polling two transfers in turn pauses once per round, on the
 *     first of them, never on the second;
 *   - who reads the answers: a waiting caller keeps them between requests,
 *     a polling caller reads them in its pauses, a transfer to another peer
 *     polled beside the anchor gives that peer's back at once, the progress
 *     thread reads them within ticks when the caller goes idle, and a peer
 *     that closes meanwhile is found;
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
#include <sys/epoll.h>

#include <cmocka.h>

#include "tcp_harness.h"
#include "transport/tcp/tcp_internal.h"

#define DELAY_MS 300
#define LEN (64u << 10)

/* Answer each request delay_ms after its last frame, as the agent the
 * client asked for, until the client closes or `answers` requests were
 * answered (-1: no limit); then close, linger_ms after the last answer. */
static int fake_serve(int lfd, long delay_ms, int answers, long linger_ms)
{
    static uint8_t buf[1u << 20];
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f, a;
    int fd = accept(lfd, NULL, NULL);

    if (fd < 0 || h_recv_hello(fd, &h) != 0 || h_send_hello(fd, 1, h.text, "", 0) != 0) return 2;
    while (answers != 0 && h_recv_frame(fd, &f, buf, sizeof(buf)) == 0) {
        if (!(f.flags & MIXL_TCP_F_LAST)) continue;
        struct timespec d = {0, delay_ms * 1000000L};
        nanosleep(&d, NULL);
        memset(&a, 0, sizeof(a));
        a.type = MIXL_TCP_ACK;
        a.req_id = f.req_id;
        if (h_send_frame(fd, &a, NULL) != 0) return 2;
        if (answers > 0) answers--;
    }
    struct timespec l = {linger_ms / 1000, (linger_ms % 1000) * 1000000L};
    nanosleep(&l, NULL);
    close(fd);
    return 0;
}

/* Who reads the answers needs them late, not 300 ms late. */
#define QUICK_MS 50

typedef struct {
    h_agent_t a;
    h_peer_t p;
    h_xfer_t x[2];
    uint8_t *mem;
    pid_t pid;
} slow_t;

static int setup_delay(void **state, long delay_ms)
{
    slow_t *s = calloc(1, sizeof(*s));
    int port, lfd = h_listen(&port);
    if (s == NULL || lfd < 0) return -1;
    s->pid = fork();
    if (s->pid == 0) _exit(fake_serve(lfd, delay_ms, -1, 0));
    close(lfd);
    s->mem = calloc(1, 2 * LEN);
    if (s->mem == NULL || h_agent_init(&s->a, "waiter", 10000) != MIXL_OK) return -1;
    /* The tick gives kept answers back after keep_ns without a post: long
     * here, so that a stalled test thread does not change who reads them
     * between two of its checks (test_kept_answers_read_when_idle sets it
     * back). */
    atomic_store(&((tcp_t *)s->a.tp.priv)->keep_ns, 10000000000ull);
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

static int slow_setup(void **state)
{
    return setup_delay(state, DELAY_MS);
}

static int quick_setup(void **state)
{
    return setup_delay(state, QUICK_MS);
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

/* Transfer i's status once the progress thread has ended it, the caller
 * neither testing nor waiting; within ms. */
static mixl_status_t ended_alone(slow_t *s, int i, long ms)
{
    tcp_xfer_t *xf = s->x[i].x.tp_priv;
    uint64_t end = mixl_deadline_ns(ms);
    while (atomic_load(&xf->status) == MIXL_IN_PROGRESS) {
        assert_true(mixl_now_ns() < end);
        struct timespec d = {0, 5000000L};
        nanosleep(&d, NULL);
    }
    return atomic_load(&xf->status);
}

/* The group xf's transfers go on, and whether its first connection has
 * the progress thread woken for answers. */
static tcp_group_t *group_of(slow_t *s, int i)
{
    return ((tcp_xfer_t *)s->x[i].x.tp_priv)->group;
}

static int epollin(tcp_group_t *g)
{
    return (g->conns[0]->ev & EPOLLIN) != 0;
}

/* A caller that waits (as mixl_xfer_wait does: one test, then the wait)
 * keeps its answers between requests: no EPOLLIN for the progress thread
 * after the wait, none after the next post either (so an answer that comes
 * before the next wait starts does not wake it), and the next wait reads
 * its answer itself. The test before the wait never sleeps. Who reads is
 * checked over four requests and must hold for three: on a loaded machine
 * a post can find the progress thread holding the group and queue, and
 * then the progress thread may read that request's answer. */
static void test_waiting_caller_keeps_answers(void **state)
{
    slow_t *s = *state;
    tcp_t *tcp = s->a.tp.priv;
    int kept = 0;

    for (int round = 0; round < 4; round++) {
        uint64_t reads = atomic_load(&tcp->agent_reads);
        assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
        tcp_group_t *g = group_of(s, 0);
        int ok = round == 0 || (atomic_load(&g->reader) == TCP_READER_KEPT && !epollin(g));
        /* mixl_xfer_wait tests once before it waits: that test neither
         * pauses (a wait ended the last round of polling) nor gives the
         * answers back. */
        long c0 = switches();
        assert_int_equal(test(s, 0), MIXL_IN_PROGRESS);
        assert_int_equal(switches(), c0);
        assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[0].x, mixl_deadline_ns(5000)),
                         MIXL_OK);
        ok = ok && atomic_load(&tcp->agent_reads) == reads + 1 &&
             atomic_load(&g->reader) == TCP_READER_KEPT && !epollin(g);
        kept += ok;
    }
    print_message("the caller kept and read its answers in %d of 4 requests\n", kept);
    assert_true(kept >= 3);
}

/* A caller polling xfer_test reads its answers in its pauses, as a wait
 * does: the answer wakes it, not the progress thread; before and after a
 * wait alike (checked over three requests each, one must show it). */
static void test_polling_caller_reads_in_pauses(void **state)
{
    slow_t *s = *state;
    tcp_t *tcp = s->a.tp.priv;

    for (int phase = 0; phase < 2; phase++) {
        int read_by_caller = 0;
        if (phase == 1) {
            assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
            assert_int_equal(
                mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[0].x, mixl_deadline_ns(5000)), MIXL_OK);
        }
        for (int round = 0; round < 3; round++) {
            uint64_t reads = atomic_load(&tcp->agent_reads), end = mixl_deadline_ns(5000);
            assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
            mixl_status_t st;
            while ((st = test(s, 0)) == MIXL_IN_PROGRESS) assert_true(mixl_now_ns() < end);
            assert_int_equal(st, MIXL_OK);
            read_by_caller += atomic_load(&tcp->agent_reads) > reads;
        }
        print_message("%s a wait: the polling caller read %d of 3 answers\n",
                      phase ? "after" : "before", read_by_caller);
        assert_true(read_by_caller >= 1);
    }
}

/* Two peers. The caller keeps the answers of the second (it waited on it),
 * then polls a transfer to each: its pauses read the first peer's answers
 * (the round's anchor), so the second peer's go back to the progress
 * thread at that transfer's second test - at once, not a tick later - and
 * both transfers end. */
static void test_polled_on_other_peer_gives_back(void **state)
{
    slow_t *s = *state;
    tcp_t *tcp = s->a.tp.priv;
    h_peer_t p2;
    h_xfer_t y;
    int port = 0, lfd = h_listen(&port), status;

    assert_true(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) _exit(fake_serve(lfd, QUICK_MS, -1, 0));
    close(lfd);
    assert_int_equal(h_peer_at(&s->a, "slow2", port, 0x100000, 2 * LEN, &p2), MIXL_OK);
    h_xfer_init(&y, MIXL_OP_WRITE, &p2);
    h_xfer_span(&y, s->x[1].x.ops[0].local_region, s->mem + LEN, &p2.regions[0], 0x100000, LEN);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&s->a.tp, &y.x), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&s->a.tp, &y.x), MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &y.x, mixl_deadline_ns(5000)), MIXL_OK);
    tcp_group_t *g2 = ((tcp_xfer_t *)y.x.tp_priv)->group;
    assert_ptr_not_equal(g2, group_of(s, 0));
    assert_int_equal(atomic_load(&g2->reader), TCP_READER_KEPT);

    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&s->a.tp, &y.x), MIXL_IN_PROGRESS);
    assert_int_equal(test(s, 0), MIXL_IN_PROGRESS); /* the anchor */
    assert_int_equal(mixl_tp_tcp_ops.xfer_test(&s->a.tp, &y.x), MIXL_IN_PROGRESS);
    assert_int_equal(atomic_load(&g2->reader), TCP_READER_KEPT);
    /* From its second test on (each tries once; the group may be busy for
     * a moment); the tick would take 10 s here (keep_ns). */
    uint64_t soon = mixl_deadline_ns(1000);
    do {
        assert_int_equal(mixl_tp_tcp_ops.xfer_test(&s->a.tp, &y.x), MIXL_IN_PROGRESS);
        assert_true(mixl_now_ns() < soon);
    } while (atomic_load(&g2->reader) != TCP_READER_NONE);
    assert_true(epollin(g2));
    assert_true(atomic_load(&tcp->unkept) >= 1);
    int done[2] = {0, 0};
    uint64_t end = mixl_deadline_ns(5000);
    while (!done[0] || !done[1]) {
        assert_true(mixl_now_ns() < end);
        mixl_status_t st = done[0] ? MIXL_OK : test(s, 0);
        if (st != MIXL_IN_PROGRESS) {
            assert_int_equal(st, MIXL_OK);
            done[0] = 1;
        }
        st = done[1] ? MIXL_OK : mixl_tp_tcp_ops.xfer_test(&s->a.tp, &y.x);
        if (st != MIXL_IN_PROGRESS) {
            assert_int_equal(st, MIXL_OK);
            done[1] = 1;
        }
    }
    mixl_tp_tcp_ops.xfer_release(&s->a.tp, &y.x);
    mixl_tp_tcp_ops.peer_remove(&s->a.tp, &p2.peer);
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* After waiting, the caller posts and then neither tests nor waits: within
 * a few ticks the progress thread reads the answer and ends the transfer,
 * so its deadline, metrics and completion do not depend on the caller's
 * coming back. */
static void test_kept_answers_read_when_idle(void **state)
{
    slow_t *s = *state;
    tcp_t *tcp = s->a.tp.priv;

    atomic_store(&tcp->keep_ns, TCP_TICK_MS * 1000000ull); /* the library's own */
    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[0].x, mixl_deadline_ns(5000)),
                     MIXL_OK);
    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    assert_int_equal(ended_alone(s, 0, QUICK_MS + 2000), MIXL_OK);
    assert_int_equal(atomic_load(&tcp->unkept), 1);
    assert_int_equal(atomic_load(&group_of(s, 0)->reader), TCP_READER_NONE);
    assert_int_equal(test(s, 0), MIXL_OK);
}

/* After waiting, the caller keeps posting and never comes back (keep_ns
 * long, so the idle tick does not give the answers back): the answer came
 * in QUICK_MS but is nobody's to read until the transfer's deadline. The
 * tick then reads what came before it judges: the transfer ends well, at
 * its deadline, not as timed out. */
static void test_kept_answer_read_before_late(void **state)
{
    slow_t *s = *state;
    tcp_t *tcp = s->a.tp.priv;
    const int timeout_ms = 1000;

    tcp->timeout_ms = timeout_ms; /* read at each post */
    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&s->a.tp, &s->x[0].x, mixl_deadline_ns(5000)),
                     MIXL_OK);
    assert_int_equal(atomic_load(&group_of(s, 0)->reader), TCP_READER_KEPT);
    uint64_t unkept = atomic_load(&tcp->unkept), t0 = mixl_now_ns();
    assert_int_equal(post(s, 0), MIXL_IN_PROGRESS);
    mixl_status_t st = ended_alone(s, 0, timeout_ms + 3000);
    uint64_t ms = (mixl_now_ns() - t0) / 1000000;
    print_message("kept answer read by the tick after %llu ms (deadline %d ms): %s\n",
                  (unsigned long long)ms, timeout_ms, mixl_status_str(st));
    assert_int_equal(st, MIXL_OK);
    assert_true(ms >= (uint64_t)timeout_ms - 50); /* nobody read it before */
    assert_int_equal(atomic_load(&tcp->unkept), unkept + 1);
    assert_int_equal(atomic_load(&group_of(s, 0)->reader), TCP_READER_NONE);
    assert_int_equal(test(s, 0), MIXL_OK);
}

/* A peer that answers the first request after QUICK_MS (the caller is
 * waiting by then: an answer at once may be the progress thread's to read)
 * and closes 200 ms later goes away while the caller keeps the answers (no
 * EPOLLIN): the tick gives them back after keep_ns without a post, the
 * hang-up is found, and the next post fails naming the peer. */
static void test_peer_gone_while_kept(void **state)
{
    h_agent_t a;
    h_peer_t p;
    h_xfer_t x;
    int port = 0, lfd = h_listen(&port), status;
    uint8_t *mem = calloc(1, LEN);
    (void)state;

    assert_true(lfd >= 0);
    assert_non_null(mem);
    pid_t pid = fork();
    if (pid == 0) _exit(fake_serve(lfd, QUICK_MS, 1, 200)); /* closes after the wait */
    close(lfd);
    assert_int_equal(h_agent_init(&a, "keeper", 10000), MIXL_OK);
    tcp_t *tcp = a.tp.priv;
    /* Long until the check below, so that a stalled test thread does not
     * see the answers given back before it looks. */
    atomic_store(&tcp->keep_ns, 10000000000ull);
    mixl_tp_region_t *r = h_register(&a, mem, LEN);
    assert_int_equal(h_peer_at(&a, "once", port, 0x100000, LEN, &p), MIXL_OK);
    h_xfer_init(&x, MIXL_OP_WRITE, &p);
    h_xfer_span(&x, r, mem, &p.regions[0], 0x100000, LEN);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &x.x), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &x.x), MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_wait(&a.tp, &x.x, mixl_deadline_ns(5000)), MIXL_OK);
    tcp_group_t *g = ((tcp_xfer_t *)x.x.tp_priv)->group;
    assert_int_equal(atomic_load(&g->reader), TCP_READER_KEPT);
    atomic_store(&tcp->keep_ns, TCP_TICK_MS * 1000000ull); /* the library's own */
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    uint64_t end = mixl_deadline_ns(2000);
    while (atomic_load(&g->state) == CONN_UP) {
        assert_true(mixl_now_ns() < end);
        struct timespec d = {0, 5000000L};
        nanosleep(&d, NULL);
    }
    mixl_status_t st = mixl_tp_tcp_ops.xfer_post(&a.tp, &x.x);
    if (st == MIXL_IN_PROGRESS) st = mixl_tp_tcp_ops.xfer_wait(&a.tp, &x.x, mixl_deadline_ns(5000));
    print_message("post after the peer left: %s (%s)\n", mixl_status_str(st), a.eb.msg);
    assert_true(st != MIXL_OK && st != MIXL_IN_PROGRESS);
    assert_non_null(strstr(a.eb.msg, "tcp connection to agent once")); /* names the peer */
    mixl_tp_tcp_ops.xfer_release(&a.tp, &x.x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    h_agent_fini(&a);
    free(mem);
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

/* Inside a payload the receiver is woken for up to 256 KiB at a time, half
 * of what the frame still owes near its end: a 1 MiB frame arriving as 32
 * pieces takes about eight reads (256, 512, 768, 896, 960, 992 KiB, ...),
 * not one per piece (MIXL_TCP_RCVLOWAT=0 turns it off: then about 33). */
static void test_payload_read_in_few_calls(void **state)
{
    (void)state;
    uint64_t reads = paced_write_reads();
    print_message("1 MiB WRITE in %d paced pieces: %llu recv calls\n", PIECES,
                  (unsigned long long)reads);
    assert_true(reads >= 1);
    assert_true(reads <= 12);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wait_sleeps_once, slow_setup, slow_teardown),
        cmocka_unit_test_setup_teardown(test_spinning_caller_pauses, slow_setup, slow_teardown),
        cmocka_unit_test_setup_teardown(test_one_pause_per_round, slow_setup, slow_teardown),
        cmocka_unit_test_setup_teardown(test_waiting_caller_keeps_answers, quick_setup,
                                        slow_teardown),
        cmocka_unit_test_setup_teardown(test_polling_caller_reads_in_pauses, quick_setup,
                                        slow_teardown),
        cmocka_unit_test_setup_teardown(test_polled_on_other_peer_gives_back, quick_setup,
                                        slow_teardown),
        cmocka_unit_test_setup_teardown(test_kept_answers_read_when_idle, quick_setup,
                                        slow_teardown),
        cmocka_unit_test_setup_teardown(test_kept_answer_read_before_late, quick_setup,
                                        slow_teardown),
        cmocka_unit_test(test_peer_gone_while_kept),
        cmocka_unit_test(test_payload_read_in_few_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
