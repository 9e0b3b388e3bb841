#define _GNU_SOURCE /* accept4 */
/*
 * The progress engine of one TCP backend: a listening socket, an epoll set,
 * an eventfd to wake it, and one thread that serves every connection. The
 * thread makes transfers progress without the application calling in, so a
 * target serves READs and WRITEs while its owner computes.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/tcp/tcp_internal.h"
#include "util/clock.h"
#include "util/log.h"

void tcp_conn_set_events(tcp_conn_t *c, uint32_t ev)
{
    struct epoll_event e;

    if (!c->in_engine || c->ev == ev) return;
    memset(&e, 0, sizeof(e));
    e.events = ev;
    e.data.ptr = c;
    if (epoll_ctl(c->tcp->epoll_fd, EPOLL_CTL_MOD, c->fd, &e) == 0) c->ev = ev;
}

void tcp_engine_attach(tcp_t *tcp, tcp_conn_t *c)
{
    struct epoll_event e;

    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN;
    e.data.ptr = c;
    if (epoll_ctl(tcp->epoll_fd, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        tcp_conn_abort(c, MIXL_ERR_IO, "epoll_ctl: %s", strerror(errno));
        return;
    }
    c->ev = EPOLLIN;
    c->in_engine = 1;
    c->next = tcp->conns;
    tcp->conns = c;
}

void tcp_engine_detach(tcp_t *tcp, tcp_conn_t *c)
{
    if (!c->in_engine) return;
    epoll_ctl(tcp->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    for (tcp_conn_t **pp = &tcp->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->in_engine = 0;
}

void tcp_engine_wake(tcp_t *tcp)
{
    uint64_t one = 1;

    if (atomic_exchange(&tcp->wake_pending, 1)) return;
    /* Sequentially consistent with engine_sleep's store of 0 to `awake`
     * and its load of wake_pending: either it sees our 1 or we see its 0. */
    if (atomic_load(&tcp->awake)) return;
    if (write(tcp->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        atomic_store(&tcp->wake_pending, 0);
}

void tcp_socket_options(int fd)
{
    int one = 1, idle = 10, intvl = 5, cnt = 3;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static void engine_accept(tcp_t *tcp)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(tcp->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                mixl_warn("tcp agent %s: accept: %s", tcp->name, strerror(errno));
            return;
        }
        tcp_socket_options(fd);
        tcp_conn_t *c = tcp_conn_new(tcp, fd, ROLE_SERVER);
        if (c == NULL) {
            mixl_warn("tcp agent %s: no memory for an incoming connection", tcp->name);
            close(fd);
            continue;
        }
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            port = ntohs(in6->sin6_port);
        }
        snprintf(c->where, sizeof(c->where), "%s:%d", host, port);
        c->hs_deadline_ns = mixl_deadline_ns(tcp->timeout_ms);
        tcp_engine_attach(tcp, c); /* on failure the connection is reaped */
    }
}

static void engine_run_call(tcp_t *tcp)
{
    pthread_mutex_lock(&tcp->call_lock);
    if (tcp->call_fn != NULL) {
        tcp->call_fn(tcp, tcp->call_arg);
        tcp->call_fn = NULL;
        tcp->call_done = 1;
        pthread_cond_broadcast(&tcp->call_cond);
    }
    pthread_mutex_unlock(&tcp->call_lock);
}

static void engine_periodic(tcp_t *tcp, uint64_t now)
{
    tcp_conn_t *c = tcp->conns;

    while (c != NULL) {
        tcp_conn_t *next = c->next;
        if (atomic_load(&c->state) == CONN_HANDSHAKE && now >= c->hs_deadline_ns) {
            if (c->hs_stage == 1) tcp_auth_reject(c, "no proof of the secret in time");
            tcp_conn_abort(c, MIXL_ERR_TIMED_OUT, "no handshake within %d ms", tcp->timeout_ms);
        }
        else
            tcp_conn_check_deadlines(c, now);
        c = next;
    }
}

static void engine_reap(tcp_t *tcp)
{
    while (tcp->dead != NULL) {
        tcp_conn_t *c = tcp->dead;
        tcp->dead = c->next_dead;
        tcp_conn_free(c);
    }
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Watch wake_pending for up to poll_ns (see tcp_t); 1 when a post came. */
static int engine_watch(tcp_t *tcp)
{
    uint64_t end = mixl_now_ns() + tcp->poll_ns;

    for (unsigned spin = 0;; spin++) {
        if (atomic_load_explicit(&tcp->wake_pending, memory_order_relaxed)) break;
        if ((spin & 63) == 63 && mixl_now_ns() >= end) break;
        cpu_relax();
    }
    if (!atomic_load(&tcp->wake_pending)) return 0;
    atomic_fetch_add_explicit(&tcp->polled_posts, 1, memory_order_relaxed);
    return 1;
}

/*
 * Sleep in epoll unless a post came while this thread was awake: posters
 * write the eventfd only while `awake` reads 0 (tcp_engine_wake), so a post
 * made while this thread was busy costs no eventfd write, no read of it and
 * no sleep. The sockets are still polled then (timeout 0), so a stream of
 * posts cannot hold back the answers that free their slots. Returns the
 * number of events; *woke is set when a post is pending.
 */
static int engine_sleep(tcp_t *tcp, struct epoll_event *evs, int max, int *woke)
{
    atomic_store(&tcp->awake, 0);
    int pending = atomic_load(&tcp->wake_pending);
    if (pending) atomic_store(&tcp->awake, 1);
    int n = epoll_wait(tcp->epoll_fd, evs, max, pending ? 0 : TCP_TICK_MS);
    atomic_store(&tcp->awake, 1);
    if (pending) *woke = 1;
    return n;
}

static void *engine_main(void *arg)
{
    tcp_t *tcp = arg;
    struct epoll_event evs[64];
    uint64_t next_tick = 0;
    uint32_t done_seen = atomic_load(&tcp->completions);

    atomic_store(&tcp->awake, 1);
    while (!atomic_load(&tcp->stop)) {
        uint32_t done = atomic_load_explicit(&tcp->completions, memory_order_relaxed);
        int woke = tcp->poll_ns > 0 && done != done_seen && engine_watch(tcp);
        int n = woke ? 0 : engine_sleep(tcp, evs, 64, &woke);

        done_seen = done;

        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tcp->wake_fd) {
                uint64_t v;
                if (read(tcp->wake_fd, &v, sizeof(v)) < 0) { /* nothing pending */ }
                woke = 1;
                continue;
            }
            if (p == &tcp->listen_fd) {
                engine_accept(tcp);
                continue;
            }
            tcp_conn_t *c = p;
            if (atomic_load(&c->state) == CONN_DEAD) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) tcp_conn_readable(c);
            if (atomic_load(&c->state) != CONN_DEAD && (evs[i].events & EPOLLOUT))
                tcp_conn_writable(c);
        }
        if (woke) {
            atomic_store(&tcp->wake_pending, 0);
            engine_run_call(tcp);
            for (tcp_conn_t *c = tcp->conns; c != NULL;) {
                tcp_conn_t *next = c->next;
                tcp_conn_writable(c);
                c = next;
            }
        }
        uint64_t now = mixl_now_ns();
        if (now >= next_tick) {
            engine_periodic(tcp, now);
            next_tick = now + TCP_TICK_MS * 1000000ull;
        }
        /* Freed only here: an epoll batch may still name a connection that
         * an earlier event in the same batch closed. */
        engine_reap(tcp);
        tcp_completions_wake(tcp); /* completions outside a work lock (calls, aborts) */
    }
    return NULL;
}

mixl_status_t tcp_engine_call(tcp_t *tcp, tcp_call_fn fn, void *arg)
{
    mixl_status_t st = MIXL_OK;
    struct timespec ts;

    if (!tcp->thread_started) {
        fn(tcp, arg);
        return MIXL_OK;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)(tcp->timeout_ms > 0 ? tcp->timeout_ms : 30000);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&tcp->call_lock);
    tcp->call_fn = fn;
    tcp->call_arg = arg;
    tcp->call_done = 0;
    pthread_mutex_unlock(&tcp->call_lock);
    tcp_engine_wake(tcp);
    pthread_mutex_lock(&tcp->call_lock);
    while (!tcp->call_done) {
        if (pthread_cond_timedwait(&tcp->call_cond, &tcp->call_lock, &ts) == ETIMEDOUT &&
            !tcp->call_done) {
            tcp->call_fn = NULL; /* withdrawn: it must not run after we return */
            st = MIXL_ERR_TIMED_OUT;
            break;
        }
    }
    pthread_mutex_unlock(&tcp->call_lock);
    return st;
}

static int listen_on(tcp_t *tcp)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int one = 1, fd;

    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, tcp->bind_host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)tcp->port);
        sl = sizeof(*in);
    } else if (inet_pton(AF_INET6, tcp->bind_host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)tcp->port);
        sl = sizeof(*in6);
    } else {
        errno = EINVAL;
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        tcp->port = ntohs(ss.ss_family == AF_INET ? in->sin_port : in6->sin6_port);
    return fd;
}

mixl_status_t tcp_engine_start(tcp_t *tcp)
{
    mixl_errbuf_t *eb = tcp->tp->eb;
    struct epoll_event e;
    int err;

    tcp->listen_fd = listen_on(tcp);
    if (tcp->listen_fd < 0)
        return mixl_errbuf_set(eb, MIXL_ERR_IO, "tcp agent %s: cannot listen on %s:%d: %s",
                               tcp->name, tcp->bind_host, tcp->port, strerror(errno));
    tcp->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    tcp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (tcp->epoll_fd < 0 || tcp->wake_fd < 0)
        return mixl_errbuf_set(eb, MIXL_ERR_IO, "tcp agent %s: epoll/eventfd: %s", tcp->name,
                               strerror(errno));
    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN;
    e.data.ptr = &tcp->listen_fd;
    if (epoll_ctl(tcp->epoll_fd, EPOLL_CTL_ADD, tcp->listen_fd, &e) != 0)
        return mixl_errbuf_set(eb, MIXL_ERR_IO, "tcp agent %s: epoll_ctl: %s", tcp->name,
                               strerror(errno));
    e.data.ptr = &tcp->wake_fd;
    if (epoll_ctl(tcp->epoll_fd, EPOLL_CTL_ADD, tcp->wake_fd, &e) != 0)
        return mixl_errbuf_set(eb, MIXL_ERR_IO, "tcp agent %s: epoll_ctl: %s", tcp->name,
                               strerror(errno));
    err = pthread_create(&tcp->thread, NULL, engine_main, tcp);
    if (err != 0)
        return mixl_errbuf_set(eb, MIXL_ERR_NO_RESOURCE,
                               "tcp agent %s: cannot start the progress thread: %s", tcp->name,
                               strerror(err));
    tcp->thread_started = 1;
    return MIXL_OK;
}

static void engine_close_all(tcp_t *tcp, void *arg)
{
    mixl_tcp_frame_t f;
    uint8_t hdr[MIXL_TCP_HDR_LEN];

    (void)arg;
    /* Orderly close: tell every peer nothing more follows, before a client
     * connection's abort closes the rest of its group. */
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_CLOSE;
    mixl_tcp_frame_encode(&f, hdr);
    for (tcp_conn_t *c = tcp->conns; c != NULL; c = c->next) {
        if (atomic_load(&c->state) == CONN_UP && !c->tx.active) {
            ssize_t w = send(c->fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
            (void)w;
        }
    }
    while (tcp->conns != NULL)
        tcp_conn_abort(tcp->conns, MIXL_OK, "agent %s is shutting down", tcp->name);
}

void tcp_engine_stop(tcp_t *tcp)
{
    if (tcp->thread_started) {
        tcp_engine_call(tcp, engine_close_all, NULL);
        atomic_store(&tcp->stop, 1);
        tcp_engine_wake(tcp);
        pthread_join(tcp->thread, NULL);
        tcp->thread_started = 0;
    } else {
        engine_close_all(tcp, NULL);
    }
    engine_reap(tcp);
    if (tcp->listen_fd >= 0) close(tcp->listen_fd);
    if (tcp->epoll_fd >= 0) close(tcp->epoll_fd);
    if (tcp->wake_fd >= 0) close(tcp->wake_fd);
    tcp->listen_fd = tcp->epoll_fd = tcp->wake_fd = -1;
}
