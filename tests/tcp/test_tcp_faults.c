/*
 * Bad input and faults on the TCP path, spoken byte by byte over raw
 * sockets: wrong magic, a newer protocol version (refused naming both
 * versions), truncated frames, oversize lengths, offsets outside a region,
 * answers with unknown request ids, a peer that stops answering, and peers
 * that close or are killed mid-transfer while another peer's transfers go on.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "tcp_harness.h"

#define MEM (1u << 20)

typedef struct {
    h_agent_t srv;
    uint8_t *mem;
    mixl_tp_region_t *r;
    int port;
} server_t;

static int server_setup(void **state)
{
    server_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return -1;
    s->mem = malloc(MEM);
    if (s->mem == NULL || h_agent_init(&s->srv, "srv", 3000) != MIXL_OK) return -1;
    s->r = h_register(&s->srv, s->mem, MEM);
    s->port = h_port(&s->srv);
    *state = s;
    return 0;
}

static int server_teardown(void **state)
{
    server_t *s = *state;
    h_agent_fini(&s->srv);
    free(s->mem);
    free(s);
    return 0;
}

/* The server still completes a handshake and a WRITE: one bad peer harms no one. */
static void assert_server_healthy(server_t *s)
{
    mixl_tcp_frame_t f, a;
    uint8_t pay[16] = "still serving!!", ans[MIXL_TCP_ERROR_MAX];
    int fd = h_raw_client(s->port, "healthy", "srv");

    assert_true(fd >= 0);
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_WRITE;
    f.flags = MIXL_TCP_F_LAST;
    f.req_id = 42;
    f.region = s->r->id;
    f.offset = MEM - 16;
    f.payload_len = 16;
    f.length = 16;
    assert_int_equal(h_send_frame(fd, &f, pay), 0);
    assert_int_equal(h_recv_frame(fd, &a, ans, sizeof(ans)), 0);
    assert_int_equal(a.type, MIXL_TCP_ACK);
    assert_true(a.req_id == 42);
    assert_memory_equal(s->mem + MEM - 16, pay, 16);
    close(fd);
}

static void test_wrong_magic(void **state)
{
    server_t *s = *state;
    mixl_tcp_hello_t h;
    int fd = h_connect(s->port);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    assert_true(fd >= 0);
    assert_int_equal(h_send_all(fd, http, strlen(http)), 0);
    /* Refused with a reason, then closed. */
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_MALFORMED);
    assert_non_null(strstr(h.text, "magic"));
    assert_true(h_closed(fd, 5000));
    close(fd);
    assert_server_healthy(s);
}

static void test_version_mismatch_at_server(void **state)
{
    server_t *s = *state;
    mixl_tcp_hello_t h;
    int fd = h_connect(s->port);

    assert_true(fd >= 0);
    assert_int_equal(h_send_hello(fd, 2, "future", "srv", 0), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_BAD_VERSION);
    assert_int_equal(h.version, MIXL_TCP_VERSION);
    assert_non_null(strstr(h.text, "version 2"));
    assert_non_null(strstr(h.text, "version 1"));
    assert_true(h_closed(fd, 5000));
    close(fd);

    /* Asking for another agent is refused too. */
    fd = h_connect(s->port);
    assert_int_equal(h_send_hello(fd, 1, "lost", "someone-else", 0), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_WRONG_AGENT);
    close(fd);
    assert_server_healthy(s);
}

static void test_truncated_frames(void **state)
{
    server_t *s = *state;
    mixl_tcp_frame_t f;
    uint8_t hdr[MIXL_TCP_HDR_LEN], pay[4096];

    /* Half a header, then gone. */
    int fd = h_raw_client(s->port, "trunc1", "srv");
    assert_true(fd >= 0);
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_WRITE;
    f.flags = MIXL_TCP_F_LAST;
    f.region = s->r->id;
    f.payload_len = sizeof(pay);
    f.length = sizeof(pay);
    mixl_tcp_frame_encode(&f, hdr);
    assert_int_equal(h_send_all(fd, hdr, 20), 0);
    close(fd);
    /* A header and part of its payload, then gone: the bytes that came land
     * inside the region, no ACK is owed, and the server carries on. */
    memset(s->mem, 0, 8192);
    fd = h_raw_client(s->port, "trunc2", "srv");
    assert_true(fd >= 0);
    memset(pay, 0x5a, sizeof(pay));
    assert_int_equal(h_send_all(fd, hdr, sizeof(hdr)), 0);
    assert_int_equal(h_send_all(fd, pay, 1000), 0);
    close(fd);
    assert_server_healthy(s);
    for (size_t i = 4096; i < 8192; i++) assert_int_equal(s->mem[i], 0);
    /* A truncated handshake. */
    fd = h_connect(s->port);
    assert_int_equal(h_send_all(fd, "MIXL-TCP\x01", 9), 0);
    close(fd);
    assert_server_healthy(s);
}

static void test_oversize_length(void **state)
{
    server_t *s = *state;
    mixl_tcp_frame_t f;
    uint8_t hdr[MIXL_TCP_HDR_LEN];
    int fd = h_raw_client(s->port, "huge", "srv");

    assert_true(fd >= 0);
    memset(s->mem, 0, MEM);
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_WRITE;
    f.region = s->r->id;
    f.payload_len = 0xfffffff0u;
    f.length = 0xfffffff0u;
    mixl_tcp_frame_encode(&f, hdr);
    assert_int_equal(h_send_all(fd, hdr, sizeof(hdr)), 0);
    /* A frame larger than negotiated is a protocol violation: dropped. */
    assert_true(h_closed(fd, 5000));
    close(fd);
    for (size_t i = 0; i < MEM - 16; i++)
        if (s->mem[i] != 0) fail_msg("byte %zu changed", i);
    /* An unknown frame type likewise. */
    fd = h_raw_client(s->port, "odd", "srv");
    f.payload_len = 0;
    f.length = 0;
    mixl_tcp_frame_encode(&f, hdr);
    hdr[4] = 77;
    assert_int_equal(h_send_all(fd, hdr, sizeof(hdr)), 0);
    assert_true(h_closed(fd, 5000));
    close(fd);
    assert_server_healthy(s);
}

static void test_offset_outside_region(void **state)
{
    server_t *s = *state;
    mixl_tcp_frame_t f, a;
    uint8_t pay[4096], ans[MIXL_TCP_ERROR_MAX];
    char msg[MIXL_TCP_ERROR_MAX];
    static const uint64_t offsets[] = {MEM - 100, MEM, MEM + 1, UINT64_MAX - 10};
    int fd = h_raw_client(s->port, "outside", "srv");

    assert_true(fd >= 0);
    memset(s->mem, 0, MEM);
    memset(pay, 0xee, sizeof(pay));
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        /* Two frames of one request, the first outside: one ERROR, nothing written. */
        memset(&f, 0, sizeof(f));
        f.type = MIXL_TCP_WRITE;
        f.req_id = 1000 + i;
        f.region = s->r->id;
        f.offset = offsets[i];
        f.payload_len = sizeof(pay);
        f.length = sizeof(pay);
        assert_int_equal(h_send_frame(fd, &f, pay), 0);
        f.offset = 0;
        f.flags = MIXL_TCP_F_LAST;
        assert_int_equal(h_send_frame(fd, &f, pay), 0);
        assert_int_equal(h_recv_frame(fd, &a, ans, sizeof(ans)), 0);
        assert_int_equal(a.type, MIXL_TCP_ERROR);
        assert_true(a.req_id == 1000 + i);
        assert_int_equal(mixl_tcp_error_decode(ans, a.payload_len, msg, sizeof(msg)),
                         MIXL_ERR_OUT_OF_RANGE);
        assert_non_null(strstr(msg, "outside region"));
        /* READ_REQ beyond the end */
        memset(&f, 0, sizeof(f));
        f.type = MIXL_TCP_READ_REQ;
        f.flags = MIXL_TCP_F_LAST;
        f.req_id = 2000 + i;
        f.region = s->r->id;
        f.offset = offsets[i];
        f.length = 200;
        assert_int_equal(h_send_frame(fd, &f, NULL), 0);
        assert_int_equal(h_recv_frame(fd, &a, ans, sizeof(ans)), 0);
        assert_int_equal(a.type, MIXL_TCP_ERROR);
        assert_true(a.req_id == 2000 + i);
    }
    /* READ_REQ of a huge length at offset 0 */
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_READ_REQ;
    f.flags = MIXL_TCP_F_LAST;
    f.req_id = 3000;
    f.region = s->r->id;
    f.length = UINT64_MAX;
    assert_int_equal(h_send_frame(fd, &f, NULL), 0);
    assert_int_equal(h_recv_frame(fd, &a, ans, sizeof(ans)), 0);
    assert_int_equal(a.type, MIXL_TCP_ERROR);
    for (size_t i = 0; i < MEM; i++)
        if (s->mem[i] != 0) fail_msg("byte %zu changed", i);
    /* The same connection then does a READ correctly. */
    memset(s->mem, 0x3c, 4000);
    f.req_id = 3001;
    f.length = 4000;
    assert_int_equal(h_send_frame(fd, &f, NULL), 0);
    assert_int_equal(h_recv_frame(fd, &a, pay, sizeof(pay)), 0);
    assert_int_equal(a.type, MIXL_TCP_READ_RESP);
    assert_int_equal(a.payload_len, 4000);
    assert_true(a.req_id == 3001);
    for (size_t i = 0; i < 4000; i++) assert_int_equal(pay[i], 0x3c);
    assert_int_equal(h_recv_frame(fd, &a, pay, sizeof(pay)), 0);
    assert_int_equal(a.type, MIXL_TCP_ACK);
    close(fd);
    assert_server_healthy(s);
}

static void test_bad_crc(void **state)
{
    server_t *s = *state;
    mixl_tcp_frame_t f, a;
    uint8_t pay[256], ans[MIXL_TCP_ERROR_MAX];
    char msg[MIXL_TCP_ERROR_MAX];
    mixl_notif_t n[4];
    size_t cnt;
    int fd = h_raw_client(s->port, "corrupt", "srv");

    assert_true(fd >= 0);
    memset(pay, 0x11, sizeof(pay));
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_WRITE;
    f.flags = MIXL_TCP_F_CRC;
    f.req_id = 77;
    f.region = s->r->id;
    f.payload_len = sizeof(pay);
    f.length = sizeof(pay);
    f.crc = 0x12345678; /* not the payload's */
    assert_int_equal(h_send_frame(fd, &f, pay), 0);
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_NOTIF;
    f.flags = MIXL_TCP_F_LAST;
    f.req_id = 77;
    f.payload_len = 4;
    f.length = 4;
    assert_int_equal(h_send_frame(fd, &f, "evil"), 0);
    assert_int_equal(h_recv_frame(fd, &a, ans, sizeof(ans)), 0);
    assert_int_equal(a.type, MIXL_TCP_ERROR);
    assert_int_equal(mixl_tcp_error_decode(ans, a.payload_len, msg, sizeof(msg)), MIXL_ERR_CHECKSUM);
    /* The application is never told about data that failed its checksum. */
    mixl_tp_tcp_ops.notif_poll(&s->srv.tp, n, 4, &cnt);
    assert_int_equal(cnt, 0);
    close(fd);
    assert_server_healthy(s);
}

static void test_deregistered_mid_frame(void **state)
{
    server_t *s = *state;
    mixl_tcp_frame_t f, a;
    static uint8_t pay[65536];
    uint8_t ans[MIXL_TCP_ERROR_MAX];
    char msg[MIXL_TCP_ERROR_MAX];
    uint8_t *mem2 = malloc(65536);
    mixl_tp_region_t *r2 = h_register(&s->srv, mem2, 65536);
    int fd = h_raw_client(s->port, "slowpoke", "srv");

    assert_non_null(r2);
    assert_true(fd >= 0);
    memset(mem2, 0, 65536);
    memset(pay, 0x99, sizeof(pay));
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_WRITE;
    f.flags = MIXL_TCP_F_LAST;
    f.req_id = 88;
    f.region = r2->id;
    f.payload_len = 16384;
    f.length = 16384;
    uint8_t hdr[MIXL_TCP_HDR_LEN];
    mixl_tcp_frame_encode(&f, hdr);
    assert_int_equal(h_send_all(fd, hdr, sizeof(hdr)), 0);
    assert_int_equal(h_send_all(fd, pay, 4096), 0);
    /* The region goes away with the frame half received. */
    assert_int_equal(mixl_tp_tcp_ops.mem_deregister(&s->srv.tp, r2), MIXL_OK);
    memset(mem2, 0, 65536);
    assert_int_equal(h_send_all(fd, pay + 4096, 16384 - 4096), 0);
    assert_int_equal(h_recv_frame(fd, &a, ans, sizeof(ans)), 0);
    assert_int_equal(a.type, MIXL_TCP_ERROR);
    assert_int_equal(mixl_tcp_error_decode(ans, a.payload_len, msg, sizeof(msg)),
                     MIXL_ERR_NOT_REGISTERED);
    /* Not one byte landed after the deregistration returned. */
    for (size_t i = 0; i < 65536; i++)
        if (mem2[i] != 0) fail_msg("byte %zu written after deregistration", i);
    close(fd);
    free(mem2);
    assert_server_healthy(s);
}

/* --- fake servers for the client side ------------------------------------ */

typedef struct {
    int lfd;
    int mode;
    int done;
} fake_t;

enum { FAKE_V2 = 1, FAKE_STALE_IDS = 2, FAKE_SILENT = 3, FAKE_DIE_MID = 4 };

static void fake_serve(int lfd, int mode)
{
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f, a;
    static uint8_t buf[1u << 20];
    int fd = accept(lfd, NULL, NULL);

    if (fd < 0) return;
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (h_recv_hello(fd, &h) != 0) goto out;
    if (mode == FAKE_V2) {
        h_send_hello(fd, 2, "fake", "protocol version 1 refused: agent fake speaks MIXL TCP protocol version 2",
                     MIXL_TCP_HELLO_BAD_VERSION);
        goto out;
    }
    h_send_hello(fd, 1, "fake", "", 0);
    if (mode == FAKE_SILENT) {
        /* Read everything, answer nothing. */
        while (recv(fd, buf, sizeof(buf), 0) > 0) {}
        goto out;
    }
    if (mode == FAKE_DIE_MID) {
        /* Take part of the data, then the process dies. */
        size_t got = 0;
        while (got < (2u << 20)) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0) break;
            got += (size_t)n;
        }
        kill(getpid(), SIGKILL);
    }
    /* FAKE_STALE_IDS: answer the one WRITE with noise first. */
    if (h_recv_frame(fd, &f, buf, sizeof(buf)) != 0) goto out;
    memset(&a, 0, sizeof(a));
    a.type = MIXL_TCP_ACK;
    a.req_id = f.req_id + (1ull << 40); /* never issued */
    h_send_frame(fd, &a, NULL);
    a.type = MIXL_TCP_READ_RESP;
    a.req_id = 0xffffffffffull;
    a.payload_len = 1000;
    a.length = 1000;
    memset(buf, 0x77, 1000);
    h_send_frame(fd, &a, buf);
    a.type = MIXL_TCP_ERROR;
    a.req_id = 5;
    a.payload_len = (uint32_t)mixl_tcp_error_encode(MIXL_ERR_OUT_OF_RANGE, "stale", buf);
    a.length = a.payload_len;
    h_send_frame(fd, &a, buf);
    memset(&a, 0, sizeof(a));
    a.type = MIXL_TCP_ACK;
    a.req_id = f.req_id;
    h_send_frame(fd, &a, NULL);
    while (recv(fd, buf, sizeof(buf), 0) > 0) {}
out:
    close(fd);
}

/* Run a fake server in a child process; returns its pid. */
static pid_t fake_start(int mode, int *port_p)
{
    int lfd = h_listen(port_p);
    pid_t pid = fork();
    if (pid == 0) {
        fake_serve(lfd, mode);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static void fake_reap(pid_t pid)
{
    int status;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

static void test_version_mismatch_at_client(void **state)
{
    h_agent_t a;
    h_peer_t p;
    h_xfer_t hx;
    uint8_t mem[64];
    int port;
    (void)state;

    assert_int_equal(h_agent_init(&a, "old", 3000), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, sizeof(mem));
    pid_t pid = fake_start(FAKE_V2, &port);
    assert_int_equal(h_peer_at(&a, "fake", port, 0x1000, 64, &p), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p);
    h_xfer_span(&hx, ar, mem, &p.regions[0], 0x1000, 64);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx.x), MIXL_ERR_VERSION);
    const char *msg = mixl_errbuf_get(&a.eb);
    assert_non_null(strstr(msg, "version 2"));
    assert_non_null(strstr(msg, "version 1"));
    fake_reap(pid);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    h_agent_fini(&a);
}

static void test_unknown_request_ids(void **state)
{
    h_agent_t a;
    h_peer_t p;
    h_xfer_t hx;
    static uint8_t mem[8192];
    int port;
    (void)state;

    assert_int_equal(h_agent_init(&a, "client", 5000), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, sizeof(mem));
    memset(mem, 0, sizeof(mem));
    pid_t pid = fake_start(FAKE_STALE_IDS, &port);
    assert_int_equal(h_peer_at(&a, "fake", port, 0x1000, 64, &p), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p);
    h_xfer_span(&hx, ar, mem, &p.regions[0], 0x1000, 64);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx.x), MIXL_OK);
    /* Answers for ids never issued are dropped; the real ACK completes it
     * and none of the stray payload lands in local memory. */
    assert_int_equal(h_run(&a, &hx, 20000), MIXL_OK);
    for (size_t i = 0; i < sizeof(mem); i++) assert_int_equal(mem[i], 0);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &hx.x);
    fake_reap(pid);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    h_agent_fini(&a);
}

static void test_silent_peer_times_out(void **state)
{
    h_agent_t a;
    h_peer_t p;
    h_xfer_t hx;
    static uint8_t mem[4096];
    int port;
    (void)state;

    assert_int_equal(h_agent_init(&a, "impatient", 500), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, sizeof(mem));
    pid_t pid = fake_start(FAKE_SILENT, &port);
    assert_int_equal(h_peer_at(&a, "fake", port, 0x1000, 4096, &p), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p);
    h_xfer_span(&hx, ar, mem, &p.regions[0], 0x1000, 4096);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx.x), MIXL_OK);
    /* The backend's own deadline ends it; the harness limit is far longer. */
    assert_int_equal(h_run(&a, &hx, 30000), MIXL_ERR_TIMED_OUT);
    /* Posting again on the failed connection says so at once. */
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &hx.x), MIXL_ERR_DISCONNECTED);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &hx.x);
    fake_reap(pid);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    h_agent_fini(&a);
}

/* Releasing a transfer still in flight cancels it; nothing touches it afterwards. */
static void test_release_in_flight(void **state)
{
    h_agent_t a;
    h_peer_t p;
    h_xfer_t hx[2];
    static uint8_t mem[1u << 20];
    int port;
    (void)state;

    assert_int_equal(h_agent_init(&a, "hasty", 20000), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, sizeof(mem));
    pid_t pid = fake_start(FAKE_SILENT, &port);
    assert_int_equal(h_peer_at(&a, "fake", port, 0x1000, sizeof(mem), &p), MIXL_OK);
    for (int i = 0; i < 2; i++) {
        h_xfer_init(&hx[i], MIXL_OP_WRITE, &p);
        h_xfer_span(&hx[i], ar, mem, &p.regions[0], 0x1000, sizeof(mem));
        assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx[i].x), MIXL_OK);
        assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &hx[i].x), MIXL_IN_PROGRESS);
    }
    mixl_tp_tcp_ops.xfer_release(&a.tp, &hx[0].x);
    assert_null(hx[0].x.tp_priv);
    /* Its connection is gone, and the other transfer on it failed with it. */
    mixl_status_t st = h_wait(&a, &hx[1], 5000);
    assert_true(st == MIXL_ERR_CANCELED || st == MIXL_ERR_DISCONNECTED);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &hx[1].x);
    fake_reap(pid);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    h_agent_fini(&a);
}

/* A killed peer fails its transfers with DISCONNECTED; another peer's go on. */
static void test_peer_killed_mid_transfer(void **state)
{
    enum { LEN = 16u << 20 };
    h_agent_t a, good;
    h_peer_t p_dead, p_good;
    h_xfer_t dead, ok[4];
    uint8_t *mem = malloc(LEN), *gmem = calloc(1, LEN);
    int port;
    (void)state;

    assert_int_equal(h_agent_init(&a, "survivor", 10000), MIXL_OK);
    assert_int_equal(h_agent_init(&good, "good", 10000), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, LEN);
    h_register(&good, gmem, LEN);
    memset(mem, 0x42, LEN);
    pid_t pid = fake_start(FAKE_DIE_MID, &port);
    assert_int_equal(h_peer_at(&a, "fake", port, 0x100000, LEN, &p_dead), MIXL_OK);
    assert_int_equal(h_peer_add(&a, &good, &p_good), MIXL_OK);
    h_xfer_init(&dead, MIXL_OP_WRITE, &p_dead);
    h_xfer_span(&dead, ar, mem, &p_dead.regions[0], 0x100000, LEN);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &dead.x), MIXL_OK);
    for (int i = 0; i < 4; i++) {
        h_xfer_init(&ok[i], MIXL_OP_WRITE, &p_good);
        h_xfer_span(&ok[i], ar, mem + (size_t)i * (LEN / 4), &p_good.regions[0],
                    p_good.regions[0].addr + (uint64_t)i * (LEN / 4), LEN / 4);
        assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &ok[i].x), MIXL_OK);
    }
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &dead.x), MIXL_IN_PROGRESS);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &ok[i].x), MIXL_IN_PROGRESS);
    assert_int_equal(h_wait(&a, &dead, 30000), MIXL_ERR_DISCONNECTED);
    assert_non_null(strstr(mixl_errbuf_get(&a.eb), "fake"));
    for (int i = 0; i < 4; i++) assert_int_equal(h_wait(&a, &ok[i], 30000), MIXL_OK);
    assert_memory_equal(gmem, mem, LEN);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* The good peer then closes in order mid-stream: its transfer fails. */
    for (int i = 0; i < 4; i++) mixl_tp_tcp_ops.xfer_release(&a.tp, &ok[i].x);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &dead.x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p_dead.peer);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p_good.peer);
    h_agent_fini(&a);
    h_agent_fini(&good);
    free(mem);
    free(gmem);
}

/* A target that shuts down with transfers to it queued: they fail, in time. */
static void test_target_closes(void **state)
{
    enum { LEN = 8u << 20, N = 16 };
    h_agent_t a, b;
    h_peer_t pb;
    static h_xfer_t hx[N];
    uint8_t *mem = malloc(LEN), *bmem = malloc(LEN);
    (void)state;

    assert_int_equal(h_agent_init(&a, "writer", 10000), MIXL_OK);
    assert_int_equal(h_agent_init(&b, "closer", 10000), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, LEN);
    h_register(&b, bmem, LEN);
    assert_int_equal(h_peer_add(&a, &b, &pb), MIXL_OK);
    for (int i = 0; i < N; i++) {
        h_xfer_init(&hx[i], MIXL_OP_WRITE, &pb);
        h_xfer_span(&hx[i], ar, mem, &pb.regions[0], pb.regions[0].addr, LEN);
        assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx[i].x), MIXL_OK);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &hx[i].x), MIXL_IN_PROGRESS);
    /* Shut the target down with its region still registered: it sends
     * CLOSE and stops serving (h_agent_fini would deregister first). */
    mixl_tp_tcp_ops.fini(&b.tp);
    free(b.tp.priv);
    b.up = 0;
    int failed = 0;
    for (int i = 0; i < N; i++) {
        mixl_status_t st = h_wait(&a, &hx[i], 30000);
        assert_true(st == MIXL_OK || st == MIXL_ERR_DISCONNECTED);
        failed += st == MIXL_ERR_DISCONNECTED;
    }
    /* At least the last of 128 MiB queued could not have finished. */
    assert_true(failed > 0);
    for (int i = 0; i < N; i++) mixl_tp_tcp_ops.xfer_release(&a.tp, &hx[i].x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &pb.peer);
    h_agent_fini(&a);
    free(mem);
    free(bmem);
}

/*
 * Three connections to a fake peer that serves two of them and drops the
 * third in the middle of its stripe: exit 0 when the client then closed the
 * other two as well (within 10 s), 3 otherwise.
 */
static int fake_group_serve(int lfd)
{
    enum { N = 3 };
    static uint8_t buf[1u << 20];
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f, a;
    struct pollfd pf[N];
    int closed[N] = {0};
    size_t got = 0;

    for (int i = 0; i < N; i++) {
        pf[i].fd = accept(lfd, NULL, NULL);
        pf[i].events = POLLIN;
        if (pf[i].fd < 0 || h_recv_hello(pf[i].fd, &h) != 0 ||
            h_send_hello(pf[i].fd, 1, "fake", "", 0) != 0)
            return 2;
    }
    uint64_t end = mixl_deadline_ns(10000);
    while (mixl_now_ns() < end && !(closed[0] && closed[1])) {
        if (poll(pf, N, 100) <= 0) continue;
        for (int i = 0; i < N; i++) {
            if (closed[i] || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (i == N - 1) {
                ssize_t n = recv(pf[i].fd, buf, sizeof(buf), 0);
                got += n > 0 ? (size_t)n : 0;
                if (n <= 0 || got >= (64u << 10)) {
                    close(pf[i].fd); /* unread bytes: the client sees a reset */
                    pf[i].fd = -1;
                    closed[i] = 1;
                }
                continue;
            }
            if (h_recv_frame(pf[i].fd, &f, buf, sizeof(buf)) != 0) {
                closed[i] = 1; /* the client closed it */
                continue;
            }
            if (f.flags & MIXL_TCP_F_LAST) {
                memset(&a, 0, sizeof(a));
                a.type = MIXL_TCP_ACK;
                a.req_id = f.req_id;
                h_send_frame(pf[i].fd, &a, NULL);
            }
        }
    }
    return closed[0] && closed[1] ? 0 : 3;
}

/* One connection of a peer's group dropping fails the transfer striped over
 * it with DISCONNECTED, naming that connection, and takes the group down. */
static void test_group_member_drops(void **state)
{
    enum { LEN = 8u << 20 };
    h_agent_t a;
    h_peer_t p;
    h_xfer_t hx;
    mixl_agent_params_t tmpl = {.size = sizeof(tmpl), .tcp_connections = 3};
    uint8_t *mem = malloc(LEN);
    int port = 0, status;
    (void)state;

    assert_int_equal(h_agent_init_ex(&a, "striper", 10000, &tmpl), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, LEN);
    memset(mem, 0x5a, LEN);
    int lfd = h_listen(&port);
    assert_true(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) _exit(fake_group_serve(lfd));
    close(lfd);
    assert_int_equal(h_peer_at(&a, "fake", port, 0x100000, LEN, &p), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p);
    h_xfer_span(&hx, ar, mem, &p.regions[0], 0x100000, LEN);
    h_xfer_notif(&hx, "never");
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &hx.x), MIXL_OK);
    assert_int_equal(h_run(&a, &hx, 30000), MIXL_ERR_DISCONNECTED);
    assert_non_null(strstr(mixl_errbuf_get(&a.eb), "connection 3 of 3 to agent fake"));
    /* The group is down: posting says so at once. */
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &hx.x), MIXL_ERR_DISCONNECTED);
    /* The fake saw the other two connections closed by the client. */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &hx.x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    h_agent_fini(&a);
    free(mem);
}

/* Read frames from fd, ACKing each LAST one, until `lasts` of them; 0 ok,
 * 4 when a NOTIF comes (it must wait for the other connections), 2 error. */
static int fake_take_requests(int fd, int lasts, uint8_t *buf, size_t len)
{
    mixl_tcp_frame_t f, a;

    while (lasts > 0) {
        if (h_recv_frame(fd, &f, buf, len) != 0) return 2;
        if (f.type == MIXL_TCP_NOTIF) return 4;
        if (!(f.flags & MIXL_TCP_F_LAST)) continue;
        memset(&a, 0, sizeof(a));
        a.type = MIXL_TCP_ACK;
        a.req_id = f.req_id;
        if (h_send_frame(fd, &a, NULL) != 0) return 2;
        lasts--;
    }
    return 0;
}

/*
 * A peer of three connections that answers the lead one at once and holds
 * back the other two: exit 0 when the client's NOTIF arrived on the lead
 * connection only after the other two were answered, 4 when it came early.
 */
static int fake_order_serve(int lfd)
{
    enum { N = 3 };
    static uint8_t buf[1u << 20];
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f, a;
    int fd[N], rc;

    for (int i = 0; i < N; i++) {
        fd[i] = accept(lfd, NULL, NULL);
        if (fd[i] < 0 || h_recv_hello(fd[i], &h) != 0 || h_send_hello(fd[i], 1, "fake", "", 0) != 0)
            return 2;
    }
    /* Lead: the large transfer's first stripe and the small transfer's data. */
    if ((rc = fake_take_requests(fd[0], 2, buf, sizeof(buf))) != 0) return rc;
    /* Nothing more may come on it while the other stripes are unanswered. */
    struct pollfd p = {.fd = fd[0], .events = POLLIN};
    if (poll(&p, 1, 500) > 0) return 4;
    for (int i = 1; i < N; i++)
        if ((rc = fake_take_requests(fd[i], 1, buf, sizeof(buf))) != 0) return rc;
    /* Now the notification, a request of its own on the lead connection. */
    if (h_recv_frame(fd[0], &f, buf, sizeof(buf)) != 0 || f.type != MIXL_TCP_NOTIF ||
        !(f.flags & MIXL_TCP_F_LAST) || f.payload_len != 5 || memcmp(buf, "after", 5) != 0)
        return 5;
    memset(&a, 0, sizeof(a));
    a.type = MIXL_TCP_ACK;
    a.req_id = f.req_id;
    if (h_send_frame(fd[0], &a, NULL) != 0) return 2;
    for (int i = 0; i < N; i++) h_closed(fd[i], 5000);
    return 0;
}

/* With several connections, a notification waits for the answers to every
 * earlier stripe, on whichever connection (deterministic: the fake target
 * holds two connections back). */
static void test_group_notif_waits(void **state)
{
    enum { LEN = 3u << 20 };
    h_agent_t a;
    h_peer_t p;
    h_xfer_t big, small;
    mixl_agent_params_t tmpl = {.size = sizeof(tmpl), .tcp_connections = 3};
    uint8_t *mem = malloc(LEN + 4096);
    int port = 0, status;
    (void)state;

    assert_int_equal(h_agent_init_ex(&a, "orderly", 10000, &tmpl), MIXL_OK);
    mixl_tp_region_t *ar = h_register(&a, mem, LEN + 4096);
    memset(mem, 0x3c, LEN + 4096);
    int lfd = h_listen(&port);
    assert_true(lfd >= 0);
    pid_t pid = fork();
    if (pid == 0) _exit(fake_order_serve(lfd));
    close(lfd);
    assert_int_equal(h_peer_at(&a, "fake", port, 0x100000, LEN + 4096, &p), MIXL_OK);
    h_xfer_init(&big, MIXL_OP_WRITE, &p);
    h_xfer_span(&big, ar, mem, &p.regions[0], 0x100000, LEN);
    h_xfer_init(&small, MIXL_OP_WRITE, &p);
    h_xfer_span(&small, ar, mem + LEN, &p.regions[0], 0x100000 + LEN, 4096);
    h_xfer_notif(&small, "after");
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &big.x), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &small.x), MIXL_OK);
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &big.x), MIXL_IN_PROGRESS);
    assert_int_equal(mixl_tp_tcp_ops.xfer_post(&a.tp, &small.x), MIXL_IN_PROGRESS);
    assert_int_equal(h_wait(&a, &small, 20000), MIXL_OK);
    /* Transfers in the order queue complete in order. */
    assert_int_equal(mixl_tp_tcp_ops.xfer_test(&a.tp, &big.x), MIXL_OK);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &big.x);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &small.x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &p.peer);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    h_agent_fini(&a);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest server_tests[] = {
        cmocka_unit_test(test_wrong_magic),        cmocka_unit_test(test_version_mismatch_at_server),
        cmocka_unit_test(test_truncated_frames),   cmocka_unit_test(test_oversize_length),
        cmocka_unit_test(test_offset_outside_region), cmocka_unit_test(test_bad_crc),
        cmocka_unit_test(test_deregistered_mid_frame),
    };
    const struct CMUnitTest client_tests[] = {
        cmocka_unit_test(test_version_mismatch_at_client),
        cmocka_unit_test(test_unknown_request_ids),
        cmocka_unit_test(test_silent_peer_times_out),
        cmocka_unit_test(test_release_in_flight),
        cmocka_unit_test(test_peer_killed_mid_transfer),
        cmocka_unit_test(test_target_closes),
        cmocka_unit_test(test_group_member_drops),
        cmocka_unit_test(test_group_notif_waits),
    };
    signal(SIGPIPE, SIG_IGN);
    int failed = cmocka_run_group_tests_name("tcp server input", server_tests, server_setup,
                                             server_teardown);
    failed += cmocka_run_group_tests_name("tcp client faults", client_tests, NULL, NULL);
    return failed;
}
