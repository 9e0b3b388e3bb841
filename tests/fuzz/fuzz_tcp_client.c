/*
 * Fuzz target: the client side of a TCP backend. A fake server accepts the
 * backend's connection, completes the handshake and then sends the input as
 * its answers, while two READs and a WRITE with a notification are in
 * flight. The transfers must end (any status) without hanging, and the guard
 * bytes around the local region the READs land in must never change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "transport/tcp/tcp_proto.h"
#include "transport/transport.h"
#include "util/clock.h"

extern const mixl_tp_ops_t mixl_tp_tcp_ops;

#define GUARD 4096
#define REGION 16384
#define REMOTE_BASE 0x10000ull

static mixl_tp_t g_tp;
static mixl_errbuf_t g_eb;
static mixl_tp_region_t g_region;
static uint8_t *g_mem;
static int g_lfd, g_port;

typedef struct {
    const uint8_t *data;
    size_t size;
    int go[2]; /* the client writes a byte once its transfers are posted */
} fake_arg_t;

static void setup(void)
{
    mixl_agent_params_t p;
    struct sockaddr_in in;
    socklen_t sl = sizeof(in);

    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.name = "fuzz-cli";
    p.timeout_ms = 1000;
    g_tp.ops = &mixl_tp_tcp_ops;
    g_tp.id = MIXL_TP_TCP;
    g_tp.eb = &g_eb;
    g_tp.agent_name = "fuzz-cli";
    g_tp.priv = calloc(1, mixl_tp_tcp_ops.priv_size);
    g_mem = malloc(REGION + 2 * GUARD);
    if (g_tp.priv == NULL || g_mem == NULL || mixl_tp_tcp_ops.init(&g_tp, &p) != MIXL_OK) abort();
    memset(g_mem, 0xa5, REGION + 2 * GUARD);
    g_region.id = 1;
    g_region.addr = g_mem + GUARD;
    g_region.len = REGION;
    g_region.mem_type = MIXL_MEM_HOST;
    if (mixl_tp_tcp_ops.mem_register(&g_tp, &g_region) != MIXL_OK) abort();

    g_lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(g_lfd, (struct sockaddr *)&in, sizeof(in)) != 0 || listen(g_lfd, 4) != 0) abort();
    getsockname(g_lfd, (struct sockaddr *)&in, &sl);
    g_port = ntohs(in.sin_port);
}

static int recv_n(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue; /* libFuzzer's -timeout timer (SIGALRM) */
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void *fake_server(void *arg)
{
    fake_arg_t *a = arg;
    uint8_t buf[MIXL_TCP_HELLO_MAX];
    mixl_tcp_hello_t h;
    size_t need;
    char err[128];
    int fd;

    while ((fd = accept(g_lfd, NULL, NULL)) < 0 && errno == EINTR) {} /* libFuzzer's SIGALRM */
    if (fd < 0) return NULL;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (recv_n(fd, buf, MIXL_TCP_HELLO_FIXED) == 0 &&
        mixl_tcp_hello_need(buf, MIXL_TCP_HELLO_FIXED, &need, err, sizeof(err)) == MIXL_OK &&
        recv_n(fd, buf + MIXL_TCP_HELLO_FIXED, need - MIXL_TCP_HELLO_FIXED) == 0) {
        memset(&h, 0, sizeof(h));
        h.version = MIXL_TCP_VERSION;
        h.max_frame = MIXL_TCP_FRAME_MIN;
        h.name_len = 4;
        memcpy(h.name, "fake", 4);
        size_t n = mixl_tcp_hello_encode(&h, buf);
        uint8_t go;
        (void)!send(fd, buf, n, MSG_NOSIGNAL);
        /* Answer only once both transfers use this connection. */
        ssize_t r;
        while ((r = read(a->go[0], &go, 1)) < 0 && errno == EINTR) {}
        if (r == 1) (void)!send(fd, a->data, a->size, MSG_NOSIGNAL);
    }
    /* Let the client read everything before the close. */
    shutdown(fd, SHUT_WR);
    for (ssize_t r; (r = recv(fd, buf, sizeof(buf), 0)) > 0 || (r < 0 && errno == EINTR);) {}
    close(fd);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    mixl_tp_peer_t peer;
    mixl_metadata_t md;
    mixl_md_region_t rr;
    mixl_tp_op_t rops[2], wop;
    mixl_tp_xfer_t rx, wx;
    pthread_t th;
    fake_arg_t arg = {data, size, {-1, -1}};

    if (!ready) {
        setup();
        ready = 1;
    }
    memset(&peer, 0, sizeof(peer));
    memset(&md, 0, sizeof(md));
    memset(&rr, 0, sizeof(rr));
    strcpy(peer.name, "fake");
    strcpy(md.tcp.host, "127.0.0.1");
    md.tcp.port = g_port;
    rr.id = 1;
    rr.addr = REMOTE_BASE;
    rr.len = 1 << 20;
    md.region_count = 1;
    md.regions = &rr;
    peer.md = &md;
    peer.comm_rank = -1;
    if (mixl_tp_tcp_ops.peer_add(&g_tp, &peer) != MIXL_OK) abort();
    if (pipe(arg.go) != 0 || pthread_create(&th, NULL, fake_server, &arg) != 0) abort();

    /* READ of two spans into the local region, WRITE with a notification. */
    memset(&rx, 0, sizeof(rx));
    memset(rops, 0, sizeof(rops));
    rops[0] = (mixl_tp_op_t){(uint64_t)(uintptr_t)g_region.addr, REMOTE_BASE, 100, &g_region, &rr};
    rops[1] = (mixl_tp_op_t){(uint64_t)(uintptr_t)g_region.addr + 1000, REMOTE_BASE + 4096, 9000,
                             &g_region, &rr};
    rx.op = MIXL_OP_READ;
    rx.peer = &peer;
    rx.ops = rops;
    rx.nops = 2;
    wop = (mixl_tp_op_t){(uint64_t)(uintptr_t)g_region.addr, REMOTE_BASE + 64, 5000, &g_region, &rr};
    memset(&wx, 0, sizeof(wx));
    wx.op = MIXL_OP_WRITE;
    wx.peer = &peer;
    wx.ops = &wop;
    wx.nops = 1;
    wx.notif_len = 2;
    memcpy(wx.notif, "ok", 2);
    if (mixl_tp_tcp_ops.xfer_prepare(&g_tp, &rx) == MIXL_OK) {
        if (mixl_tp_tcp_ops.xfer_prepare(&g_tp, &wx) == MIXL_OK) {
            mixl_tp_tcp_ops.xfer_post(&g_tp, &rx);
            mixl_tp_tcp_ops.xfer_post(&g_tp, &wx);
            (void)!write(arg.go[1], "g", 1);
            /* The backend's deadline (1 s) bounds both; 20 s leaves room for a
             * niced campaign on a busy machine (libFuzzer's -timeout is 30 s). */
            uint64_t end = mixl_deadline_ns(20000);
            struct timespec pause = {0, 50000};
            while ((mixl_tp_tcp_ops.xfer_test(&g_tp, &rx) == MIXL_IN_PROGRESS ||
                    mixl_tp_tcp_ops.xfer_test(&g_tp, &wx) == MIXL_IN_PROGRESS)) {
                if (mixl_now_ns() > end) abort(); /* a transfer outlived its deadline */
                nanosleep(&pause, NULL);
            }
            /* Both transfers done: the answers were decoded as a whole. */
            if (mixl_tp_tcp_ops.xfer_test(&g_tp, &rx) == MIXL_OK &&
                mixl_tp_tcp_ops.xfer_test(&g_tp, &wx) == MIXL_OK)
                mixl_fuzz_accepted++;
            mixl_tp_tcp_ops.xfer_release(&g_tp, &wx);
        }
        mixl_tp_tcp_ops.xfer_release(&g_tp, &rx);
    }
    close(arg.go[1]); /* releases the fake server if nothing was posted */
    mixl_tp_tcp_ops.peer_remove(&g_tp, &peer);
    pthread_join(th, NULL);
    close(arg.go[0]);
    mixl_errbuf_clear(&g_eb);
    for (size_t i = 0; i < GUARD; i++)
        if (g_mem[i] != 0xa5 || g_mem[GUARD + REGION + i] != 0xa5) __builtin_trap();
    return 0;
}
