/*
 * Fuzz target: a live TCP backend server. Each input is sent, after a valid
 * handshake, on a fresh connection to a backend serving one registered
 * region that sits between two guard zones; the connection is then closed
 * and the server's answers drained. The server must survive every input,
 * and the guard bytes around the region must never change.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "util/clock.h"
#include "transport/tcp/tcp_proto.h"
#include "transport/transport.h"

extern const mixl_tp_ops_t mixl_tp_tcp_ops;

#define GUARD 4096
#define REGION 65536

static mixl_tp_t g_tp;
static mixl_errbuf_t g_eb;
static mixl_tp_region_t g_region;
static uint8_t *g_mem;
static int g_port;
static uint8_t g_hello[MIXL_TCP_HELLO_MAX];
static size_t g_hello_len;

static void setup(void)
{
    mixl_agent_params_t p;
    mixl_metadata_t md;
    mixl_tcp_hello_t h;

    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.name = "fuzz-srv";
    p.timeout_ms = 2000;
    g_tp.ops = &mixl_tp_tcp_ops;
    g_tp.id = MIXL_TP_TCP;
    g_tp.eb = &g_eb;
    g_tp.agent_name = "fuzz-srv";
    g_tp.priv = calloc(1, mixl_tp_tcp_ops.priv_size);
    g_mem = malloc(REGION + 2 * GUARD);
    if (g_tp.priv == NULL || g_mem == NULL || mixl_tp_tcp_ops.init(&g_tp, &p) != MIXL_OK) abort();
    memset(g_mem, 0xa5, REGION + 2 * GUARD);
    g_region.id = 1;
    g_region.addr = g_mem + GUARD;
    g_region.len = REGION;
    g_region.mem_type = MIXL_MEM_HOST;
    if (mixl_tp_tcp_ops.mem_register(&g_tp, &g_region) != MIXL_OK) abort();
    memset(&md, 0, sizeof(md));
    mixl_tp_tcp_ops.export_md(&g_tp, NULL, 0, &md);
    g_port = md.tcp.port;
    memset(&h, 0, sizeof(h));
    h.version = MIXL_TCP_VERSION;
    h.max_frame = MIXL_TCP_FRAME_MIN;
    h.name_len = 5;
    memcpy(h.name, "fuzzy", 5);
    h.text_len = 8;
    memcpy(h.text, "fuzz-srv", 8);
    g_hello_len = mixl_tcp_hello_encode(&h, g_hello);
}

/*
 * libFuzzer's -timeout runs an interval timer: its SIGALRM interrupts a
 * blocking call of this harness every few seconds, so every wait here goes
 * on after EINTR instead of taking it for the server's failure.
 */
static int poll_for(int fd, short events, int ms)
{
    uint64_t end = mixl_deadline_ns(ms);
    struct pollfd p = {.fd = fd, .events = events};

    for (;;) {
        uint64_t now = mixl_now_ns();
        int r = poll(&p, 1, now < end ? (int)((end - now) / 1000000u) : 0);
        if (r >= 0 || errno != EINTR) return r > 0 ? p.revents : r;
        if (mixl_now_ns() >= end) return 0;
    }
}

static int connect_srv(void)
{
    struct sockaddr_in in;
    int fd = socket(AF_INET, SOCK_STREAM, 0), err = 0;
    socklen_t el = sizeof(err);

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)g_port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) abort();
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
        /* Interrupted, the connection goes on in the background. */
        if (errno != EINTR || poll_for(fd, POLLOUT, 25000) <= 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            fprintf(stderr, "fuzz_tcp_server: connect to port %d: %s\n", g_port,
                    strerror(err ? err : errno));
            abort();
        }
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    uint8_t buf[65536];
    int fd, applied = 0;

    if (!ready) {
        setup();
        ready = 1;
    }
    memset(g_mem + GUARD, 0x5a, REGION);
    fd = connect_srv();
    /* Inputs starting with 'R' replace the handshake (raw bytes first). */
    if (size == 0 || data[0] != 'R') (void)!send(fd, g_hello, g_hello_len, MSG_NOSIGNAL);
    else {
        data++;
        size--;
    }
    size_t off = 0;
    while (off < size) {
        int ev = poll_for(fd, POLLOUT | POLLIN, 25000);
        if (ev <= 0) { /* the server stopped serving */
            fprintf(stderr, "fuzz_tcp_server: the server neither read nor answered for 25 s\n");
            abort();
        }
        if (ev & POLLIN) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n == 0) break; /* the server dropped us: fine */
        }
        if (ev & (POLLERR | POLLHUP)) break;
        if (ev & POLLOUT) {
            ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (w < 0) break;
            off += (size_t)w;
        }
    }
    shutdown(fd, SHUT_WR);
    for (;;) { /* drain until the server closes: it must, within its timeout */
        /* The server's deadline is 2 s; 25 s (under libFuzzer's -timeout=30
         * in scripts/fuzz.sh) leaves room for a niced campaign on a busy machine. */
        if (poll_for(fd, POLLIN, 25000) <= 0) {
            fprintf(stderr, "fuzz_tcp_server: the server kept the connection open for 25 s\n");
            abort();
        }
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;
    }
    close(fd);
    mixl_notif_t n[64];
    size_t cnt;
    do {
        mixl_tp_tcp_ops.notif_poll(&g_tp, n, 64, &cnt);
        applied |= cnt > 0;
    } while (cnt > 0);
    /* A WRITE landed or a notification arrived: the input got past the checks. */
    for (size_t i = 0; i < REGION && !applied; i++) applied = g_mem[GUARD + i] != 0x5a;
    if (applied) mixl_fuzz_accepted++;
    for (size_t i = 0; i < GUARD; i++)
        if (g_mem[i] != 0xa5 || g_mem[GUARD + REGION + i] != 0xa5) __builtin_trap();
    return 0;
}
