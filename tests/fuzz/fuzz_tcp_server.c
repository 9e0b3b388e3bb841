/*
 * Fuzz target: a live TCP backend server. Each input is sent, after a valid
 * handshake, on a fresh connection to a backend serving one registered
 * region that sits between two guard zones; the connection is then closed
 * and the server's answers drained. The server must survive every input,
 * and the guard bytes around the region must never change.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
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

static int connect_srv(void)
{
    struct sockaddr_in in;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)g_port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) abort();
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
        struct pollfd p = {.fd = fd, .events = POLLOUT | POLLIN};
        if (poll(&p, 1, 5000) <= 0) abort(); /* the server stopped serving */
        if (p.revents & POLLIN) {
            ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n == 0) break; /* the server dropped us: fine */
        }
        if (p.revents & (POLLERR | POLLHUP)) break;
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) break;
            off += (size_t)w;
        }
    }
    shutdown(fd, SHUT_WR);
    for (;;) { /* drain until the server closes: it must, within its timeout */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0) abort();
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
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
