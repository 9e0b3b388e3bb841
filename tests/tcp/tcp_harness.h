/*
 * Drives the TCP backend through its ops table, as the agent does, so its
 * server and client can be tested without an agent: backend instances,
 * registered regions, a peer built from another instance's endpoint, and
 * prepared transfers. Also raw-socket helpers for speaking the wire
 * protocol by hand (bad input, fake peers).
 */
#ifndef MIXL_TESTS_TCP_HARNESS_H
#define MIXL_TESTS_TCP_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/tcp/tcp_proto.h"
#include "transport/transport.h"
#include "util/clock.h"

extern const mixl_tp_ops_t mixl_tp_tcp_ops;

#define H_MAX_REGIONS 8

typedef struct {
    mixl_tp_t tp;
    mixl_errbuf_t eb;
    char name[MIXL_NAME_MAX];
    mixl_tp_region_t regions[H_MAX_REGIONS];
    size_t nregions;
    int up;
} h_agent_t;

typedef struct {
    mixl_tp_peer_t peer;
    mixl_metadata_t md;
    mixl_md_region_t regions[H_MAX_REGIONS];
} h_peer_t;

/* With tmpl: its TCP fields (bind, secret, secret file, allow, connections) are used. */
static inline mixl_status_t h_agent_init_ex(h_agent_t *a, const char *name, int timeout_ms,
                                            const mixl_agent_params_t *tmpl)
{
    mixl_agent_params_t p;
    mixl_status_t st;

    memset(a, 0, sizeof(*a));
    snprintf(a->name, sizeof(a->name), "%s", name);
    memset(&p, 0, sizeof(p));
    if (tmpl != NULL) {
        p.tcp_bind = tmpl->tcp_bind;
        p.tcp_secret = tmpl->tcp_secret;
        p.tcp_secret_len = tmpl->tcp_secret_len;
        p.tcp_secret_file = tmpl->tcp_secret_file;
        p.tcp_allow_unauthenticated = tmpl->tcp_allow_unauthenticated;
        p.tcp_connections = tmpl->tcp_connections;
        p.tcp_poll_us = tmpl->tcp_poll_us;
    }
    p.size = sizeof(p);
    p.name = a->name;
    p.backends = MIXL_BACKEND_TCP;
    p.comm = MPI_COMM_NULL;
    p.timeout_ms = timeout_ms;
    a->tp.ops = &mixl_tp_tcp_ops;
    a->tp.id = MIXL_TP_TCP;
    a->tp.eb = &a->eb;
    a->tp.agent_name = a->name;
    a->tp.comm = MPI_COMM_NULL;
    a->tp.priv = calloc(1, mixl_tp_tcp_ops.priv_size);
    if (a->tp.priv == NULL) return MIXL_ERR_NO_MEMORY;
    st = mixl_tp_tcp_ops.init(&a->tp, &p);
    if (st != MIXL_OK) {
        free(a->tp.priv);
        return st;
    }
    st = mixl_tp_tcp_ops.start(&a->tp, NULL, 0);
    a->up = 1;
    return st;
}

static inline mixl_status_t h_agent_init(h_agent_t *a, const char *name, int timeout_ms)
{
    return h_agent_init_ex(a, name, timeout_ms, NULL);
}

static inline void h_agent_fini(h_agent_t *a)
{
    if (!a->up) return;
    for (size_t i = 0; i < a->nregions; i++)
        if (a->regions[i].tp_priv[MIXL_TP_TCP] != NULL)
            mixl_tp_tcp_ops.mem_deregister(&a->tp, &a->regions[i]);
    mixl_tp_tcp_ops.fini(&a->tp);
    free(a->tp.priv);
    a->up = 0;
}

static inline mixl_tp_region_t *h_register(h_agent_t *a, void *addr, size_t len)
{
    mixl_tp_region_t *r = &a->regions[a->nregions];

    memset(r, 0, sizeof(*r));
    r->id = (uint32_t)(100 + a->nregions);
    r->addr = addr;
    r->len = len;
    r->mem_type = MIXL_MEM_HOST;
    if (mixl_tp_tcp_ops.mem_register(&a->tp, r) != MIXL_OK) return NULL;
    a->nregions++;
    return r;
}

static inline int h_port(h_agent_t *a)
{
    mixl_metadata_t md;

    memset(&md, 0, sizeof(md));
    mixl_tp_tcp_ops.export_md(&a->tp, NULL, 0, &md);
    return md.tcp.port;
}

/* Make `target` known to `self` as a peer (what metadata import does). */
static inline mixl_status_t h_peer_add(h_agent_t *self, h_agent_t *target, h_peer_t *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->peer.name, sizeof(p->peer.name), "%s", target->name);
    snprintf(p->md.name, sizeof(p->md.name), "%s", target->name);
    mixl_tp_tcp_ops.export_md(&target->tp, NULL, 0, &p->md);
    for (size_t i = 0; i < target->nregions; i++) {
        p->regions[i].id = target->regions[i].id;
        p->regions[i].addr = (uint64_t)(uintptr_t)target->regions[i].addr;
        p->regions[i].len = target->regions[i].len;
    }
    p->md.region_count = (uint32_t)target->nregions;
    p->md.regions = p->regions;
    p->peer.md = &p->md;
    p->peer.comm_rank = -1;
    return mixl_tp_tcp_ops.peer_add(&self->tp, &p->peer);
}

/* A peer by name and endpoint only, for fake servers. */
static inline mixl_status_t h_peer_at(h_agent_t *self, const char *name, int port,
                                      uint64_t region_addr, uint64_t region_len, h_peer_t *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->peer.name, sizeof(p->peer.name), "%s", name);
    snprintf(p->md.tcp.host, sizeof(p->md.tcp.host), "127.0.0.1");
    p->md.tcp.port = port;
    p->regions[0].id = 7;
    p->regions[0].addr = region_addr;
    p->regions[0].len = region_len;
    p->md.region_count = 1;
    p->md.regions = p->regions;
    p->peer.md = &p->md;
    p->peer.comm_rank = -1;
    return mixl_tp_tcp_ops.peer_add(&self->tp, &p->peer);
}

typedef struct {
    mixl_tp_xfer_t x;
    mixl_tp_op_t ops[16];
} h_xfer_t;

/* One span: local [laddr, +len) in local region lr, remote at raddr in rr. */
static inline void h_xfer_init(h_xfer_t *hx, mixl_op_t op, h_peer_t *p)
{
    memset(hx, 0, sizeof(*hx));
    hx->x.op = op;
    hx->x.peer = &p->peer;
    hx->x.ops = hx->ops;
}

static inline void h_xfer_span(h_xfer_t *hx, mixl_tp_region_t *lr, void *laddr,
                               const mixl_md_region_t *rr, uint64_t raddr, uint64_t len)
{
    mixl_tp_op_t *o = &hx->ops[hx->x.nops++];
    o->local_addr = (uint64_t)(uintptr_t)laddr;
    o->remote_addr = raddr;
    o->len = len;
    o->local_region = lr;
    o->remote_region = rr;
    hx->x.bytes += len;
}

static inline void h_xfer_notif(h_xfer_t *hx, const char *msg)
{
    hx->x.notif_len = (uint32_t)strlen(msg);
    memcpy(hx->x.notif, msg, hx->x.notif_len);
}

/* 1 when the tests wait in xfer_wait (MIXL_TEST_TCP_WAIT=1), where the
 * caller's thread reads the answers; else they poll xfer_test, where the
 * progress thread does. */
static inline int h_waiting(void)
{
    const char *w = getenv("MIXL_TEST_TCP_WAIT");
    return w != NULL && strcmp(w, "1") == 0;
}

/* Until done, bounded by limit_ms (the backend's own deadline is shorter). */
static inline mixl_status_t h_wait(h_agent_t *a, h_xfer_t *hx, int limit_ms)
{
    uint64_t end = mixl_deadline_ns(limit_ms);
    struct timespec pause = {0, 50000};
    mixl_status_t st;

    if (h_waiting()) {
        st = mixl_tp_tcp_ops.xfer_wait(&a->tp, &hx->x, end);
        return st == MIXL_IN_PROGRESS ? MIXL_ERR_TIMED_OUT : st;
    }
    while ((st = mixl_tp_tcp_ops.xfer_test(&a->tp, &hx->x)) == MIXL_IN_PROGRESS) {
        if (mixl_now_ns() > end) return MIXL_ERR_TIMED_OUT;
        nanosleep(&pause, NULL);
    }
    return st;
}

static inline mixl_status_t h_run(h_agent_t *a, h_xfer_t *hx, int limit_ms)
{
    mixl_status_t st = mixl_tp_tcp_ops.xfer_post(&a->tp, &hx->x);
    if (st == MIXL_IN_PROGRESS) st = h_wait(a, hx, limit_ms);
    return st;
}

/* Poll notifications until one arrives or limit_ms passes. */
static inline size_t h_notif_wait(h_agent_t *a, mixl_notif_t *out, size_t max, int limit_ms)
{
    uint64_t end = mixl_deadline_ns(limit_ms);
    struct timespec pause = {0, 100000};
    size_t n = 0;

    do {
        mixl_tp_tcp_ops.notif_poll(&a->tp, out, max, &n);
        if (n > 0) return n;
        nanosleep(&pause, NULL);
    } while (mixl_now_ns() < end);
    return 0;
}

/* --- raw sockets --------------------------------------------------------- */

static inline int h_connect(int port)
{
    struct sockaddr_in in;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* A listening socket on an ephemeral loopback port. */
static inline int h_listen(int *port_p)
{
    struct sockaddr_in in;
    socklen_t sl = sizeof(in);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&in, sizeof(in)) != 0 || listen(fd, 4) != 0) {
        close(fd);
        return -1;
    }
    getsockname(fd, (struct sockaddr *)&in, &sl);
    *port_p = ntohs(in.sin_port);
    return fd;
}

static inline int h_send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* 0 on success, -1 on EOF/error/timeout. */
static inline int h_recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read a hello (request or reply) from a raw socket. */
static inline int h_recv_hello(int fd, mixl_tcp_hello_t *h)
{
    uint8_t buf[MIXL_TCP_HELLO_MAX];
    size_t need;
    char err[128];

    if (h_recv_all(fd, buf, MIXL_TCP_HELLO_FIXED) != 0) return -1;
    if (mixl_tcp_hello_need(buf, MIXL_TCP_HELLO_FIXED, &need, err, sizeof(err)) != MIXL_OK)
        return -1;
    if (h_recv_all(fd, buf + MIXL_TCP_HELLO_FIXED, need - MIXL_TCP_HELLO_FIXED) != 0) return -1;
    return mixl_tcp_hello_decode(buf, need, h, err, sizeof(err)) == MIXL_OK ? 0 : -1;
}

static inline int h_send_hello(int fd, uint16_t version, const char *name, const char *text,
                               uint16_t verdict)
{
    mixl_tcp_hello_t h;
    uint8_t buf[MIXL_TCP_HELLO_MAX];

    memset(&h, 0, sizeof(h));
    h.version = version;
    h.caps = MIXL_TCP_CAP_CRC32C;
    h.max_frame = MIXL_TCP_FRAME_DEFAULT;
    h.verdict = verdict;
    h.name_len = (uint8_t)strlen(name);
    memcpy(h.name, name, h.name_len);
    h.text_len = (uint8_t)strlen(text);
    memcpy(h.text, text, h.text_len);
    return h_send_all(fd, buf, mixl_tcp_hello_encode(&h, buf));
}

/* Connect and complete a handshake as client `name` to agent `target`. */
static inline int h_raw_client(int port, const char *name, const char *target)
{
    mixl_tcp_hello_t h;
    int fd = h_connect(port);

    if (fd < 0) return -1;
    if (h_send_hello(fd, MIXL_TCP_VERSION, name, target, 0) != 0 || h_recv_hello(fd, &h) != 0 ||
        h.verdict != MIXL_TCP_HELLO_ACCEPT) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int h_send_frame(int fd, const mixl_tcp_frame_t *f, const void *payload)
{
    uint8_t hdr[MIXL_TCP_HDR_LEN];

    mixl_tcp_frame_encode(f, hdr);
    if (h_send_all(fd, hdr, sizeof(hdr)) != 0) return -1;
    return payload != NULL && f->payload_len > 0 ? h_send_all(fd, payload, f->payload_len) : 0;
}

/* Read one frame header (no validation beyond decoding); payload into buf. */
static inline int h_recv_frame(int fd, mixl_tcp_frame_t *f, void *buf, size_t buf_len)
{
    uint8_t hdr[MIXL_TCP_HDR_LEN];
    char err[128];

    if (h_recv_all(fd, hdr, sizeof(hdr)) != 0) return -1;
    if (mixl_tcp_frame_decode(hdr, MIXL_TCP_FRAME_MAX, f, err, sizeof(err)) != MIXL_OK) return -1;
    if (f->payload_len > buf_len) return -1;
    return f->payload_len > 0 ? h_recv_all(fd, buf, f->payload_len) : 0;
}

/* 1 when the peer closed the socket (EOF or reset) within limit_ms. */
static inline int h_closed(int fd, int limit_ms)
{
    uint8_t b[4096];
    uint64_t end = mixl_deadline_ns(limit_ms);
    while (mixl_now_ns() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n <= 0) return 1;
    }
    return 0;
}

#endif /* MIXL_TESTS_TCP_HARNESS_H */
