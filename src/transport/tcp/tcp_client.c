/*
 * Client side of connection set-up, run on the agent's thread when a peer is
 * first used: connect with a deadline, exchange the handshake, then hand the
 * socket to the progress thread. Nothing here is on the post/test path.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/tcp/tcp_internal.h"
#include "util/clock.h"
#include "util/log.h"

static int ms_left(uint64_t deadline)
{
    uint64_t now = mixl_now_ns();
    return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Wait for fd to be ready for ev; 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = ev};
        int left = ms_left(deadline);
        if (left == 0) return 0;
        int r = poll(&p, 1, left);
        if (r > 0) return 1;
        if (r == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

static int connect_addr(const struct addrinfo *ai, uint64_t deadline, int *err_p)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int err = 0;
    socklen_t el = sizeof(err);

    if (fd < 0) {
        *err_p = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *err_p = errno;
            close(fd);
            return -1;
        }
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r <= 0) {
            *err_p = r == 0 ? ETIMEDOUT : errno;
            close(fd);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            *err_p = err ? err : errno;
            close(fd);
            return -1;
        }
    }
    return fd;
}

static mixl_status_t send_all(int fd, const uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(fd, POLLOUT, deadline);
            if (r == 0) return MIXL_ERR_TIMED_OUT;
            if (r > 0) continue;
        }
        return MIXL_ERR_DISCONNECTED;
    }
    return MIXL_OK;
}

static mixl_status_t recv_all(int fd, uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) return MIXL_ERR_DISCONNECTED;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int r = wait_fd(fd, POLLIN, deadline);
            if (r == 0) return MIXL_ERR_TIMED_OUT;
            if (r > 0) continue;
        }
        return MIXL_ERR_DISCONNECTED;
    }
    return MIXL_OK;
}

/*
 * With a secret, the server must prove it first (its MAC over both nonces in
 * the reply); then we send ours in an AUTH frame and wait for its ACK. A
 * server without the secret, or one that answers without proof, is refused:
 * we never let an unauthenticated peer read from or write into our memory.
 */
static mixl_status_t client_auth(tcp_t *tcp, tcp_peer_t *peer, int fd, const mixl_tcp_hello_t *h,
                                 const uint8_t nonce_c[MIXL_TCP_NONCE_LEN], const char *where,
                                 uint64_t deadline)
{
    mixl_errbuf_t *eb = tcp->tp->eb;
    uint8_t mac[MIXL_TCP_MAC_LEN], buf[MIXL_TCP_HDR_LEN + MIXL_TCP_ERROR_MAX];
    const uint8_t *nonce_s = h->auth;
    mixl_tcp_frame_t f;
    char err[200], msg[MIXL_TCP_ERROR_MAX];
    mixl_status_t st;

    if (!(h->caps & MIXL_TCP_CAP_AUTH) || h->auth_len != MIXL_TCP_AUTH_MAX)
        return mixl_errbuf_set(eb, MIXL_ERR_AUTH,
                               "tcp agent %s: peer %s at %s does not authenticate (it has no "
                               "secret); refused",
                               tcp->name, peer->name, where);
    tcp_auth_mac(tcp, 1, nonce_c, nonce_s, peer->name, tcp->name, mac);
    if (!tcp_auth_equal(mac, h->auth + MIXL_TCP_NONCE_LEN))
        return mixl_errbuf_set(eb, MIXL_ERR_AUTH,
                               "tcp agent %s: peer %s at %s failed to prove the shared secret "
                               "(the secrets differ); refused",
                               tcp->name, peer->name, where);
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_AUTH;
    f.payload_len = MIXL_TCP_MAC_LEN;
    f.length = MIXL_TCP_MAC_LEN;
    mixl_tcp_frame_encode(&f, buf);
    tcp_auth_mac(tcp, 0, nonce_c, nonce_s, peer->name, tcp->name, buf + MIXL_TCP_HDR_LEN);
    st = send_all(fd, buf, MIXL_TCP_HDR_LEN + MIXL_TCP_MAC_LEN, deadline);
    if (st == MIXL_OK) st = recv_all(fd, buf, MIXL_TCP_HDR_LEN, deadline);
    if (st != MIXL_OK)
        return mixl_errbuf_set(eb, st, "tcp agent %s: authentication with peer %s at %s: %s",
                               tcp->name, peer->name, where,
                               st == MIXL_ERR_TIMED_OUT ? "no answer in time" : "connection lost");
    if (mixl_tcp_frame_decode(buf, MIXL_TCP_FRAME_MIN, &f, err, sizeof(err)) != MIXL_OK)
        return mixl_errbuf_set(eb, MIXL_ERR_PROTOCOL,
                               "tcp agent %s: peer %s at %s answered authentication with a bad "
                               "frame: %s",
                               tcp->name, peer->name, where, err);
    if (f.type == MIXL_TCP_ACK && f.req_id == 0) return MIXL_OK;
    if (f.type == MIXL_TCP_ERROR &&
        recv_all(fd, buf + MIXL_TCP_HDR_LEN, f.payload_len, deadline) == MIXL_OK) {
        st = mixl_tcp_error_decode(buf + MIXL_TCP_HDR_LEN, f.payload_len, msg, sizeof(msg));
        return mixl_errbuf_set(eb, st == MIXL_ERR_AUTH ? st : MIXL_ERR_PROTOCOL,
                               "tcp agent %s: peer %s at %s refused our authentication: %s",
                               tcp->name, peer->name, where, msg);
    }
    return mixl_errbuf_set(eb, MIXL_ERR_PROTOCOL,
                           "tcp agent %s: peer %s at %s answered authentication with %s",
                           tcp->name, peer->name, where, mixl_tcp_type_str(f.type));
}

typedef struct {
    tcp_conn_t *conn;
    int attached;
} attach_arg_t;

/* On the progress thread, which owns the group's member table. */
static void attach_call(tcp_t *tcp, void *arg)
{
    attach_arg_t *a = arg;

    tcp_engine_attach(tcp, a->conn);
    a->attached = a->conn->in_engine;
    if (a->attached) a->conn->group->conns[a->conn->index] = a->conn;
}

mixl_status_t tcp_client_connect(tcp_t *tcp, tcp_peer_t *peer, tcp_group_t *g, unsigned index,
                                 tcp_conn_t **conn_p)
{
    mixl_errbuf_t *eb = tcp->tp->eb;
    uint64_t deadline = mixl_deadline_ns(tcp->timeout_ms);
    struct addrinfo hints, *res = NULL;
    char port[16], where[96], err[200];
    int fd = -1, cerr = ECONNREFUSED;
    uint8_t buf[MIXL_TCP_HELLO_MAX];
    mixl_tcp_hello_t h;
    size_t len, need;
    mixl_status_t st;
    tcp_conn_t *c;
    uint8_t nonce_c[MIXL_TCP_NONCE_LEN];

    snprintf(where, sizeof(where), "%s:%d", peer->host, peer->port);
    snprintf(port, sizeof(port), "%d", peer->port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(peer->host, port, &hints, &res);
    if (gai != 0)
        return mixl_errbuf_set(eb, MIXL_ERR_UNREACHABLE, "tcp agent %s: peer %s at %s: %s",
                               tcp->name, peer->name, where, gai_strerror(gai));
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_addr(ai, deadline, &cerr);
    freeaddrinfo(res);
    if (fd < 0)
        return mixl_errbuf_set(eb, cerr == ETIMEDOUT ? MIXL_ERR_TIMED_OUT : MIXL_ERR_UNREACHABLE,
                               "tcp agent %s: cannot connect to peer %s at %s: %s", tcp->name,
                               peer->name, where, strerror(cerr));
    tcp_socket_options(fd);

    memset(&h, 0, sizeof(h));
    h.version = MIXL_TCP_VERSION;
    h.caps = tcp->caps;
    h.max_frame = tcp->max_frame;
    h.name_len = (uint8_t)strlen(tcp->name);
    memcpy(h.name, tcp->name, h.name_len);
    h.text_len = (uint8_t)strlen(peer->name);
    memcpy(h.text, peer->name, h.text_len);
    if (tcp->secret_len > 0) {
        if (!tcp_auth_nonce(nonce_c)) {
            st = mixl_errbuf_set(eb, MIXL_ERR_BACKEND, "tcp agent %s: no random bytes for a nonce",
                                 tcp->name);
            goto err_close;
        }
        h.auth_len = MIXL_TCP_NONCE_LEN;
        memcpy(h.auth, nonce_c, MIXL_TCP_NONCE_LEN);
    }
    len = mixl_tcp_hello_encode(&h, buf);
    st = send_all(fd, buf, len, deadline);
    if (st == MIXL_OK) st = recv_all(fd, buf, MIXL_TCP_HELLO_FIXED, deadline);
    if (st != MIXL_OK) {
        mixl_errbuf_set(eb, st, "tcp agent %s: handshake with peer %s at %s: %s", tcp->name,
                        peer->name, where,
                        st == MIXL_ERR_TIMED_OUT ? "no answer in time" : "connection lost");
        goto err_close;
    }
    st = mixl_tcp_hello_need(buf, MIXL_TCP_HELLO_FIXED, &need, err, sizeof(err));
    if (st == MIXL_OK) st = recv_all(fd, buf + MIXL_TCP_HELLO_FIXED, need - MIXL_TCP_HELLO_FIXED, deadline);
    if (st == MIXL_OK) st = mixl_tcp_hello_decode(buf, need, &h, err, sizeof(err));
    else snprintf(err, sizeof(err), "%s", "reply truncated");
    if (st != MIXL_OK) {
        mixl_errbuf_set(eb, MIXL_ERR_PROTOCOL, "tcp agent %s: peer %s at %s sent a bad handshake: %s",
                        tcp->name, peer->name, where, err);
        st = MIXL_ERR_PROTOCOL;
        goto err_close;
    }
    if (h.verdict == MIXL_TCP_HELLO_BAD_VERSION || h.version != MIXL_TCP_VERSION) {
        st = mixl_errbuf_set(eb, MIXL_ERR_VERSION,
                             "tcp agent %s: peer %s at %s speaks MIXL TCP protocol version %u, "
                             "this agent speaks version %u%s%s",
                             tcp->name, peer->name, where, h.version, MIXL_TCP_VERSION,
                             h.text_len ? ": " : "", h.text);
        goto err_close;
    }
    if (h.verdict != MIXL_TCP_HELLO_ACCEPT) {
        st = mixl_errbuf_set(eb, h.verdict == MIXL_TCP_HELLO_WRONG_AGENT ? MIXL_ERR_UNKNOWN_PEER
                                 : h.verdict == MIXL_TCP_HELLO_AUTH      ? MIXL_ERR_AUTH
                                                                         : MIXL_ERR_PROTOCOL,
                             "tcp agent %s: peer %s at %s refused the handshake: %s", tcp->name,
                             peer->name, where, h.text);
        goto err_close;
    }
    if (strcmp(h.name, peer->name) != 0) {
        st = mixl_errbuf_set(eb, MIXL_ERR_UNKNOWN_PEER,
                             "tcp agent %s: %s answers as agent %s, expected %s", tcp->name, where,
                             h.name, peer->name);
        goto err_close;
    }
    if (h.max_frame < MIXL_TCP_FRAME_MIN || h.max_frame > tcp->max_frame) {
        st = mixl_errbuf_set(eb, MIXL_ERR_PROTOCOL,
                             "tcp agent %s: peer %s at %s chose frame size %u outside %u..%u",
                             tcp->name, peer->name, where, h.max_frame, MIXL_TCP_FRAME_MIN,
                             tcp->max_frame);
        goto err_close;
    }
    if (tcp->secret_len > 0) {
        st = client_auth(tcp, peer, fd, &h, nonce_c, where, deadline);
        if (st != MIXL_OK) goto err_close;
    }

    c = tcp_conn_new(tcp, fd, ROLE_CLIENT);
    if (c == NULL) {
        st = mixl_errbuf_set(eb, MIXL_ERR_NO_MEMORY, "tcp agent %s: connection to %s", tcp->name,
                             peer->name);
        goto err_close;
    }
    fd = -1;
    snprintf(c->peer_name, sizeof(c->peer_name), "%s", peer->name);
    snprintf(c->where, sizeof(c->where), "%s", where);
    c->caps = h.caps & tcp->caps;
    c->max_frame = h.max_frame;
    c->group = g;
    c->index = index;
    atomic_store(&c->state, CONN_UP);
    if (!tcp_conn_buffers(c)) {
        st = mixl_errbuf_set(eb, MIXL_ERR_NO_MEMORY, "tcp agent %s: buffers for %s", tcp->name,
                             peer->name);
        goto err_free;
    }
    attach_arg_t aa = {.conn = c, .attached = 0};
    st = tcp_engine_call(tcp, attach_call, &aa);
    if (st != MIXL_OK || !aa.attached) {
        st = mixl_errbuf_set(eb, st != MIXL_OK ? st : MIXL_ERR_IO,
                             "tcp agent %s: progress thread did not take the connection to %s",
                             tcp->name, peer->name);
        goto err_free;
    }
    mixl_debug("tcp agent %s: connected to %s at %s (connection %u of %u, frames <= %u bytes, "
               "caps 0x%x)",
               tcp->name, peer->name, where, index + 1, g->n, c->max_frame, c->caps);
    *conn_p = c;
    return MIXL_OK;

err_free:
    tcp_conn_free(c);
err_close:
    if (fd >= 0) close(fd);
    return st;
}
