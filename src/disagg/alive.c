/*
 * Liveness of the ranks of a mixl-run job, independent of MPI.
 *
 * Open MPI 4.1 has no fault-tolerant MPI: nothing in MPI tells a survivor
 * that a peer died, and a call towards the dead rank may block. So every
 * worker holds one TCP connection to the router, opened at set-up and never
 * written after its hello. When a process dies, for whatever reason, its
 * kernel closes the connection and the other end reads end-of-file within
 * milliseconds; when a node is lost, TCP keep-alive probes (answered by the
 * kernel, so a stopped or busy process still counts as alive) give up after
 * about run.timeout_ms. The router learns which worker died, the workers
 * learn that the router died. A stalled rank is not a dead one: its
 * connection stays open and its requests time out instead.
 *
 * The router listens on loopback when every rank shares its host, else on
 * every interface; workers prove a per-job token broadcast over MPI before
 * their connection counts, and the connection never carries anything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "disagg/dg_int.h"
#include "util/clock.h"
#include "util/log.h"

#define ALIVE_MAGIC 0x4d584c56u /* "MXLV" */
#define ALIVE_ADDRS 8
#define ALIVE_TOKEN 16
/* How often a role loop looks at the connections (the look is one poll() call). */
#define ALIVE_PERIOD_NS 2000000

typedef struct {
    int32_t ok;
    uint16_t port;
    uint16_t naddr;
    uint32_t addr[ALIVE_ADDRS]; /* network byte order */
    uint8_t token[ALIVE_TOKEN];
} alive_info_t;

typedef struct {
    uint32_t magic;
    int32_t rank;
    uint8_t token[ALIVE_TOKEN];
} alive_hello_t;

static int alive_random(uint8_t *buf, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t got = read(fd, buf, len);
    close(fd);
    return got == (ssize_t)len;
}

/* Keep-alive: a lost node is noticed after about idle + 3 x interval seconds. */
static void alive_keepalive(const mixl_dg_t *dg, int fd)
{
    int on = 1, cnt = 3;
    int secs = (int)((dg->timeout_ms + 3999) / 4000);
    if (secs < 1) secs = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof(secs));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof(secs));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static int alive_listen(const mixl_dg_t *dg, int local, alive_info_t *info, char *why, size_t len)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, len, "socket: %s", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(local ? INADDR_LOOPBACK : INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, dg->world) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        snprintf(why, len, "listening: %s", strerror(errno));
        close(fd);
        return -1;
    }
    info->port = sa.sin_port;
    info->naddr = 0;
    if (!local) {
        struct ifaddrs *ifs = NULL;
        if (getifaddrs(&ifs) == 0) {
            for (struct ifaddrs *i = ifs; i != NULL && info->naddr < ALIVE_ADDRS; i = i->ifa_next) {
                if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET) continue;
                uint32_t a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
                if ((ntohl(a) >> 24) == 127) continue;
                info->addr[info->naddr++] = a;
            }
            freeifaddrs(ifs);
        }
    }
    return fd;
}

/* A bounded connect to one address of the router. */
static int alive_connect(uint32_t addr, uint16_t port, int timeout_ms)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = addr;
    sa.sin_port = port;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t el = sizeof(err);
        if (errno != EINPROGRESS || poll(&p, 1, timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Router: accept until every worker proved the token, or the deadline. */
static int alive_accept_all(mixl_dg_t *dg, int lfd, const alive_info_t *info, char *why, size_t len)
{
    uint64_t deadline = mixl_deadline_ns(dg->timeout_ms);
    int have = 0;
    while (have < dg->world - 1) {
        struct pollfd p = {lfd, POLLIN, 0};
        int left = (int)(((int64_t)deadline - (int64_t)mixl_now_ns()) / 1000000);
        if (left <= 0 || poll(&p, 1, left) != 1) break;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        /* The hello is sent right after connect: a short bounded read. */
        struct timeval tv = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        alive_hello_t h;
        ssize_t got = recv(fd, &h, sizeof(h), MSG_WAITALL);
        if (got != (ssize_t)sizeof(h) || h.magic != ALIVE_MAGIC || h.rank <= 0 ||
            h.rank >= dg->world || dg->alive[h.rank].fd >= 0 ||
            memcmp(h.token, info->token, ALIVE_TOKEN) != 0) {
            mixl_warn("liveness: dropped a connection that did not prove this job's token");
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFL, O_NONBLOCK);
        alive_keepalive(dg, fd);
        dg->alive[h.rank].fd = fd;
        have++;
    }
    if (have == dg->world - 1) return 1;
    for (int r = 1; r < dg->world; r++)
        if (dg->alive[r].fd < 0) {
            snprintf(why, len, "%s (rank %d, host %s) did not connect within %d ms", dg->names[r], r,
                     dg->hosts[r], dg->timeout_ms);
            break;
        }
    return 0;
}

mixl_status_t dg_alive_setup(mixl_dg_t *dg)
{
    alive_info_t info;
    char why[256] = "";
    int lfd = -1, ok = 1;

    dg->alive = malloc((size_t)dg->world * sizeof(*dg->alive));
    dg->dead = calloc((size_t)dg->world, 1);
    if (dg->alive == NULL || dg->dead == NULL) return MIXL_ERR_NO_MEMORY;
    /* poll() skips negative descriptors: one array, indexed by rank, serves every look. */
    for (int r = 0; r < dg->world; r++) dg->alive[r] = (struct pollfd){-1, POLLIN, 0};
    memset(&info, 0, sizeof(info));
    if (dg->rank == 0) {
        int local = 1;
        for (int r = 1; r < dg->world; r++)
            if (strcmp(dg->hosts[r], dg->hosts[0]) != 0) local = 0;
        if (!alive_random(info.token, sizeof(info.token))) {
            snprintf(why, sizeof(why), "no random source for the token");
        } else if ((lfd = alive_listen(dg, local, &info, why, sizeof(why))) >= 0) {
            info.ok = 1;
        }
    }
    if (MPI_Bcast(&info, sizeof(info), MPI_BYTE, 0, dg->ctl) != MPI_SUCCESS) info.ok = 0;
    if (dg->rank != 0 && info.ok) {
        int fd = -1;
        int same = strcmp(dg->hosts[dg->rank], dg->hosts[0]) == 0;
        int each = dg->timeout_ms < 2000 ? dg->timeout_ms : 2000;
        if (same) fd = alive_connect(htonl(INADDR_LOOPBACK), info.port, each);
        for (int i = 0; fd < 0 && i < info.naddr; i++) fd = alive_connect(info.addr[i], info.port, each);
        alive_hello_t h = {ALIVE_MAGIC, dg->rank, {0}};
        memcpy(h.token, info.token, ALIVE_TOKEN);
        if (fd >= 0 && send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
            close(fd);
            fd = -1;
        }
        if (fd >= 0) alive_keepalive(dg, fd);
        dg->alive[0].fd = fd;
    }
    if (dg->rank == 0 && info.ok) ok = alive_accept_all(dg, lfd, &info, why, sizeof(why));
    if (lfd >= 0) close(lfd);
    if (dg->rank == 0 && !info.ok) ok = 0;
    /* One outcome for every rank: all watch, or none does. */
    if (MPI_Bcast(&ok, 1, MPI_INT, 0, dg->ctl) != MPI_SUCCESS) ok = 0;
    if (!ok) {
        if (dg->rank == 0)
            mixl_warn("rank death detection is off (%s): a rank that dies leaves the others "
                      "waiting until run.timeout_ms",
                      why);
        for (int r = 0; r < dg->world; r++)
            if (dg->alive[r].fd >= 0) close(dg->alive[r].fd);
        for (int r = 0; r < dg->world; r++) dg->alive[r].fd = -1;
    }
    dg->watching = ok;
    return MIXL_OK;
}

int dg_alive_poll(mixl_dg_t *dg)
{
    if (!dg->watching) return -1;
    int64_t now = (int64_t)mixl_now_ns();
    if (now < dg->alive_next_ns) return -1;
    dg->alive_next_ns = now + ALIVE_PERIOD_NS;
    /* The router watches every worker; a worker watches the router (entry 0). */
    nfds_t n = dg->rank == 0 ? (nfds_t)dg->world : 1;
    if (poll(dg->alive, n, 0) <= 0) return -1;
    for (nfds_t r = 0; r < n; r++) {
        if (dg->alive[r].fd < 0 || dg->alive[r].revents == 0) continue;
        char c;
        ssize_t got = recv(dg->alive[r].fd, &c, 1, MSG_DONTWAIT);
        if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR))) continue;
        close(dg->alive[r].fd);
        dg->alive[r].fd = -1;
        return (int)r;
    }
    return -1;
}

void dg_alive_close(mixl_dg_t *dg)
{
    if (dg->alive != NULL)
        for (int r = 0; r < dg->world; r++)
            if (dg->alive[r].fd >= 0) close(dg->alive[r].fd);
    free(dg->alive);
    free(dg->dead);
    dg->alive = NULL;
    dg->dead = NULL;
    dg->watching = 0;
}
