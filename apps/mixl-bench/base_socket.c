/*
 * Plain socket baseline for the TCP backend: each pairwise initiator moves
 * the same bytes to or from its target over one blocking TCP connection
 * (TCP_NODELAY, kernel-tuned buffers), completing each request the way MIXL
 * TCP does: a WRITE ends when the target answers one byte after it has every
 * byte, a READ when the initiator has every byte of the answer to its
 * one-byte request. The target listens on --tcp-bind like MIXL's agents, so
 * the figure is the socket's limit on the same path, taken seconds apart
 * from MIXL's. Host memory, pairwise pattern only.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "baselines.h"
#include "mem.h"
#include "sweep.h"
#include "util/clock.h"

typedef struct {
    char host[64];
    int port;
} sock_ep_t;

typedef struct {
    bench_role_t role;
    int fd;
    uint8_t *buf;
    uint64_t bytes; /* of the point being measured */
    int write;
    int broken; /* an earlier point failed: every rank skips the rest */
} sock_runner_t;

static int send_all(int fd, const uint8_t *p, uint64_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (uint64_t)w;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, uint64_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (uint64_t)r;
    }
    return 0;
}

/* Initiator: one request. */
static mixl_status_t sock_iter(void *arg)
{
    sock_runner_t *s = arg;
    uint8_t one = 1;

    if (s->write) {
        if (send_all(s->fd, s->buf, s->bytes) != 0 || recv_all(s->fd, &one, 1) != 0)
            return MIXL_ERR_DISCONNECTED;
    } else if (send_all(s->fd, &one, 1) != 0 || recv_all(s->fd, s->buf, s->bytes) != 0) {
        return MIXL_ERR_DISCONNECTED;
    }
    return MIXL_OK;
}

/* Target: serve n requests. */
static mixl_status_t sock_serve(sock_runner_t *s, unsigned n)
{
    uint8_t one = 1;

    for (unsigned i = 0; i < n; i++) {
        if (s->write) {
            if (recv_all(s->fd, s->buf, s->bytes) != 0 || send_all(s->fd, &one, 1) != 0)
                return MIXL_ERR_DISCONNECTED;
        } else if (recv_all(s->fd, &one, 1) != 0 || send_all(s->fd, s->buf, s->bytes) != 0) {
            return MIXL_ERR_DISCONNECTED;
        }
    }
    return MIXL_OK;
}

typedef struct {
    sock_runner_t *s;
    unsigned iters;
} serve_arg_t;

static mixl_status_t sock_target_rep(void *arg)
{
    serve_arg_t *a = arg;
    return sock_serve(a->s, a->iters);
}

static void sock_row(bench_row_t *row, int write)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "socket");
    snprintf(row->backend, sizeof(row->backend), "tcp");
    snprintf(row->op, sizeof(row->op), "%s", write ? "WRITE" : "READ");
    snprintf(row->mem, sizeof(row->mem), "%s", bench_mem_name(BENCH_MEM_HOST));
    snprintf(row->pattern, sizeof(row->pattern), "pairwise");
}

static mixl_status_t sock_point(bench_ctx_t *ctx, bench_runner_t *r, int write, uint64_t size,
                                uint64_t batch)
{
    sock_runner_t *s = r->state;
    const bench_opts_t *o = ctx->opts;
    uint64_t bytes = size * batch;
    unsigned iters = bench_scaled_iters(o->iters, bytes, 8);
    unsigned warmup = bench_scaled_iters(o->warmup, bytes, 2);
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    serve_arg_t sa = {.s = s, .iters = iters};
    mixl_status_t st = MIXL_OK;
    bench_row_t row;

    sock_row(&row, write);
    row.size = size;
    row.batch = batch;
    row.xfer_ops = batch;
    s->bytes = bytes;
    s->write = write;
    if (s->role.initiator && (lat = calloc((size_t)o->reps * iters, sizeof(*lat))) == NULL)
        st = MIXL_ERR_NO_MEMORY;
    /* Warm-up outside the timed loop, both ends in step (the timed loop's
     * barrier would stop a target that must serve the initiator's warm-up). */
    if (s->fd >= 0 && st == MIXL_OK) {
        if (s->role.initiator)
            for (unsigned i = 0; i < warmup && st == MIXL_OK; i++) st = sock_iter(s);
        else
            st = sock_serve(s, warmup);
    }
    if (s->broken) st = MIXL_ERR_DISCONNECTED;
    if (st == MIXL_OK)
        st = bench_time_loop(ctx, s->role.initiator, 0, iters, sock_iter, s, lat, rep_ns,
                             s->fd >= 0 ? sock_target_rep : NULL, &sa);
    /* Every rank learns of a failure before the collective that follows; a
     * broken connection ends this runner (rows with a note), not the sweep. */
    char note[96] = "", agreed[96] = "";
    if (st != MIXL_OK)
        snprintf(note, sizeof(note), "plain socket loop failed on rank %d: %s", ctx->rank,
                 mixl_status_str(st));
    mixl_status_t ast = bench_agree(ctx, st, note, agreed, sizeof(agreed));
    if (ast == MIXL_OK) {
        ast = bench_collect(ctx, &row, s->role.initiator, lat, rep_ns, iters, bytes, batch);
    } else if (ast != MIXL_ERR_TIMED_OUT) {
        s->broken = 1;
        bench_skip_row(ctx, &row, agreed);
        ast = MIXL_OK;
    }
    free(lat);
    return ast;
}

static void sock_close(bench_ctx_t *ctx, bench_runner_t *r)
{
    sock_runner_t *s = r->state;
    (void)ctx;
    if (s->fd >= 0) close(s->fd);
    free(s->buf);
    free(s);
}

/* Listen on the --tcp-bind address; the endpoint peers connect to. */
static int sock_listen(const char *bind_host, sock_ep_t *ep)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    int one = 1, fd;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, bind_host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        sl = sizeof(*in);
    } else if (inet_pton(AF_INET6, bind_host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        sl = sizeof(*in6);
    } else {
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 4) != 0) {
        close(fd);
        return -1;
    }
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    ep->port = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
    /* A wildcard address is no use to a peer: advertise the host name, as MIXL does. */
    if (strcmp(bind_host, "0.0.0.0") == 0 || strcmp(bind_host, "::") == 0) {
        if (gethostname(ep->host, sizeof(ep->host)) != 0) snprintf(ep->host, sizeof(ep->host), "?");
        ep->host[sizeof(ep->host) - 1] = '\0';
    } else {
        snprintf(ep->host, sizeof(ep->host), "%s", bind_host);
    }
    return fd;
}

static int sock_connect(const sock_ep_t *ep, int timeout_ms)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    int fd = -1;
    uint64_t end = mixl_deadline_ns(timeout_ms);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", ep->port);
    if (getaddrinfo(ep->host, port, &hints, &res) != 0) return -1;
    /* The target listens before the endpoints are exchanged; retry only a
     * refused connect, within the bound. */
    while (fd < 0 && mixl_now_ns() < end) {
        for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
            fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
                close(fd);
                fd = -1;
            }
        }
        if (fd < 0) usleep(10000);
    }
    freeaddrinfo(res);
    return fd;
}

static int sock_accept(int lfd, int timeout_ms)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) return -1;
    return accept(lfd, NULL, NULL);
}

mixl_status_t bench_socket_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs)
{
    const bench_opts_t *o = ctx->opts;
    const char *bind_host = o->tcp_bind[0] ? o->tcp_bind : "127.0.0.1";
    sock_ep_t mine, *all = NULL;
    char note[96] = "", agreed[96] = "";
    int lfd = -1, one = 1;
    mixl_status_t st = MIXL_OK;
    bench_row_t like;

    if (!(o->backends & BENCH_BACKEND_TCP) || !(o->mems & BENCH_MEM_HOST) ||
        !(o->patterns & BENCH_PATTERN_PAIRWISE) || rs->n == BENCH_RUNNERS_MAX)
        return MIXL_OK;
    sock_runner_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return MIXL_ERR_NO_MEMORY;
    s->fd = -1;
    s->role = bench_role(ctx, BENCH_PATTERN_PAIRWISE);
    memset(&mine, 0, sizeof(mine));
    if (s->role.sources > 0 || s->role.initiator) {
        s->buf = malloc(maxbytes);
        if (s->buf == NULL) {
            st = MIXL_ERR_NO_MEMORY;
            snprintf(note, sizeof(note), "no memory for %llu bytes", (unsigned long long)maxbytes);
        } else {
            for (uint64_t i = 0; i < maxbytes; i++) s->buf[i] = (uint8_t)(i * 13 + ctx->rank);
        }
    }
    if (st == MIXL_OK && s->role.sources > 0 && (lfd = sock_listen(bind_host, &mine)) < 0) {
        st = MIXL_ERR_IO;
        snprintf(note, sizeof(note), "cannot listen on %s: %s", bind_host, strerror(errno));
    }
    all = calloc((size_t)ctx->size, sizeof(*all));
    if (all == NULL) st = MIXL_ERR_NO_MEMORY;
    mixl_status_t xst = bench_boot_exchange(ctx->boot, &mine, sizeof(mine), all);
    if (st == MIXL_OK) st = xst;
    if (st == MIXL_OK && s->role.initiator) {
        s->fd = sock_connect(&all[s->role.peer], o->timeout_ms);
        if (s->fd < 0) {
            st = MIXL_ERR_UNREACHABLE;
            snprintf(note, sizeof(note), "cannot connect to rank %d at %s:%d", s->role.peer,
                     all[s->role.peer].host, all[s->role.peer].port);
        }
    } else if (st == MIXL_OK && lfd >= 0) {
        s->fd = sock_accept(lfd, o->timeout_ms);
        if (s->fd < 0) {
            st = MIXL_ERR_TIMED_OUT;
            snprintf(note, sizeof(note), "no connection from the initiator");
        }
    }
    if (s->fd >= 0) {
        /* Blocking I/O, bounded: a peer that vanished ends in an error, not a hang. */
        struct timeval tv = {o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000};
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (lfd >= 0) close(lfd);
    free(all);
    st = bench_agree(ctx, st, note, agreed, sizeof(agreed));
    if (st != MIXL_OK) {
        sock_row(&like, 1);
        bench_skip_row(ctx, &like, agreed);
        sock_close(ctx, &(bench_runner_t){.state = s});
        return xst != MIXL_OK ? xst : MIXL_OK;
    }
    rs->r[rs->n++] = (bench_runner_t){.point = sock_point, .close = sock_close, .directed = 1,
                                      .state = s};
    return MIXL_OK;
}
