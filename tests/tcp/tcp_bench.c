/*
 * TCP WRITE bandwidth through the agent API against a plain blocking
 * send/recv loop moving the same bytes between the same two processes over
 * loopback, in the same run.
 *
 *   mixl-tcp-bench [--size MiB] [--iters N] [--pairs P] [--spin | --yield]
 *                  [--only plain|mixl] [--connections N] [--pin A,B]
 *
 * The two paths run alternately P times (default 3) so that drifting
 * machine load hits both alike; the medians are compared. Each run also
 * reports the CPU time both processes spent per GiB moved (user + system,
 * from getrusage), a figure that other jobs on the machine disturb far less
 * than the wall-clock rate. --only runs one path (for strace, callgrind).
 *
 * Both sides complete an iteration the same way: the receiver has every
 * byte in its buffer and the sender knows it (MIXL: the target's ACK; plain:
 * a one-byte reply). By default MIXL's caller polls mixl_xfer_test() in a
 * plain loop (the backend pauses it, TCP_TEST_PAUSE_NS); --spin waits with
 * mixl_xfer_wait() instead; --yield calls sched_yield() between tests, as
 * this tool did before: on a loaded machine the yields push the caller
 * behind every busy thread (about 1.6 ms per 1 MiB request,
 * docs/performance.md). Exit 0 when every run moved the
 * right bytes; the figures are printed, never judged.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mixl/agent.h>
#include <mixl/metadata.h>

#include "util/clock.h"

static size_t g_size = 64u << 20;
static int g_iters = 20;
static int g_spin, g_yield;
static int g_pairs = 3;
static int g_only; /* 0 both, 1 plain, 2 mixl */
static unsigned g_conns; /* MIXL TCP connections per peer; 0 = the library's default */

/* CPU seconds (user + system) of this process and its waited-for children. */
static double cpu_now(void)
{
    struct rusage s, c;
    getrusage(RUSAGE_SELF, &s);
    getrusage(RUSAGE_CHILDREN, &c);
    return (double)(s.ru_utime.tv_sec + s.ru_stime.tv_sec + c.ru_utime.tv_sec + c.ru_stime.tv_sec) +
           (double)(s.ru_utime.tv_usec + s.ru_stime.tv_usec + c.ru_utime.tv_usec +
                    c.ru_stime.tv_usec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --pin A,B: the initiator's threads (application and, created from it,
 * the progress thread; the plain loop's sender) on CPU A, the target's on
 * CPU B, for both paths alike. Which threads share a core and a cache
 * moves the loopback figures by 2x between runs on a small machine; pinned,
 * both paths run in the same placement every time. */
static int g_pin[2] = {-1, -1};

static void pin(int side)
{
    cpu_set_t cs;

    if (g_pin[side] < 0) return;
    CPU_ZERO(&cs);
    CPU_SET(g_pin[side], &cs);
    if (pthread_setaffinity_np(pthread_self(), sizeof(cs), &cs) != 0)
        fprintf(stderr, "mixl-tcp-bench: cannot pin to CPU %d\n", g_pin[side]);
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int recv_all(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r <= 0) return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* --- plain sockets -------------------------------------------------------- */

static int plain_receiver(int lfd, int iters)
{
    pin(1);
    int fd = accept(lfd, NULL, NULL), one = 1;
    uint8_t *buf = malloc(g_size), ack = 1;
    if (fd < 0 || buf == NULL) return 2;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (int i = 0; i < iters; i++) {
        if (recv_all(fd, buf, g_size) != 0) return 3;
        if (buf[0] != (uint8_t)i || buf[g_size - 1] != (uint8_t)i) return 4;
        if (send_all(fd, &ack, 1) != 0) return 5;
    }
    close(fd);
    free(buf);
    return 0;
}

static double plain_run(uint8_t *src)
{
    struct sockaddr_in in;
    socklen_t sl = sizeof(in);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1, status;
    uint8_t ack;

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&in, sizeof(in)) != 0 || listen(lfd, 1) != 0) return -1;
    getsockname(lfd, (struct sockaddr *)&in, &sl);
    pid_t pid = fork();
    if (pid == 0) _exit(plain_receiver(lfd, g_iters + 1));
    close(lfd);
    pin(0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint64_t t0 = 0;
    for (int i = 0; i <= g_iters; i++) { /* iteration 0 warms up */
        if (i == 1) t0 = mixl_now_ns();
        src[0] = src[g_size - 1] = (uint8_t)i;
        if (send_all(fd, src, g_size) != 0 || recv_all(fd, &ack, 1) != 0) return -1;
    }
    uint64_t t1 = mixl_now_ns();
    close(fd);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return (double)g_size * g_iters / ((double)(t1 - t0) / 1e9);
}

/* --- MIXL TCP ------------------------------------------------------------- */

static mixl_agent_h make_agent(const char *name)
{
    mixl_agent_params_t p;
    mixl_agent_h a = NULL;
    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.name = name;
    p.comm = MPI_COMM_NULL;
    p.backends = MIXL_BACKEND_TCP;
    p.timeout_ms = 30000;
    p.tcp_connections = g_conns;
    return mixl_agent_create(&p, &a) == MIXL_OK ? a : NULL;
}

static int mixl_target(int out_fd, int in_fd)
{
    uint8_t *buf = calloc(1, g_size), x;
    mixl_region_h r;
    void *blob;
    size_t len;
    uint64_t n;
    pin(1);
    mixl_agent_h a = make_agent("bench-target");
    if (a == NULL || buf == NULL) return 2;
    if (mixl_mem_register(a, buf, g_size, MIXL_MEM_HOST, 0, &r) != MIXL_OK) return 3;
    if (mixl_agent_start(a) != MIXL_OK || mixl_metadata_export(a, &blob, &len) != MIXL_OK) return 4;
    n = len;
    if (write(out_fd, &n, sizeof(n)) != sizeof(n) || write(out_fd, blob, len) != (ssize_t)len)
        return 5;
    mixl_free(blob);
    /* The progress thread serves the WRITEs; we only wait for the end and
     * then check what the last iteration left. */
    if (read(in_fd, &x, 1) != 1) return 6;
    int ok = buf[0] == x && buf[g_size - 1] == x;
    mixl_agent_destroy(a);
    free(buf);
    return ok ? 0 : 7;
}

static double mixl_run(uint8_t *src)
{
    int up[2], down[2], status;
    uint64_t n;
    char peer[MIXL_NAME_MAX];
    mixl_region_h lr;
    mixl_xfer_h x;
    mixl_metadata_t *md;

    if (pipe(up) != 0 || pipe(down) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        _exit(mixl_target(up[1], down[0]));
    }
    close(up[1]);
    close(down[0]);
    pin(0);
    mixl_agent_h a = make_agent("bench-init");
    if (a == NULL || mixl_mem_register(a, src, g_size, MIXL_MEM_HOST, 0, &lr) != MIXL_OK ||
        mixl_agent_start(a) != MIXL_OK)
        return -1;
    if (read(up[0], &n, sizeof(n)) != sizeof(n) || n > (1u << 20)) return -1;
    char *blob = malloc(n);
    for (size_t got = 0; blob != NULL && got < n;) {
        ssize_t rd = read(up[0], blob + got, n - got);
        if (rd <= 0) return -1;
        got += (size_t)rd;
    }
    if (blob == NULL) return -1;
    if (mixl_metadata_import(a, blob, n, peer) != MIXL_OK ||
        mixl_metadata_decode(blob, n, &md) != MIXL_OK)
        return -1;
    mixl_desc_t l = {(uint64_t)(uintptr_t)src, g_size, MIXL_MEM_HOST, 0};
    mixl_desc_t r = {md->regions[0].addr, g_size, MIXL_MEM_HOST, 0};
    mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = peer,
                             .local = &l, .remote = &r, .count = 1};
    if (mixl_xfer_create(a, &xp, &x) != MIXL_OK) return -1;
    uint64_t t0 = 0;
    for (int i = 0; i <= g_iters; i++) {
        if (i == 1) t0 = mixl_now_ns();
        src[0] = src[g_size - 1] = (uint8_t)i;
        mixl_status_t st = mixl_xfer_post(x);
        if (g_spin) {
            if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, -1);
        } else {
            while (st == MIXL_IN_PROGRESS) {
                if (g_yield) sched_yield();
                st = mixl_xfer_test(x);
            }
        }
        if (st != MIXL_OK) {
            fprintf(stderr, "mixl-tcp-bench: %s\n", mixl_agent_last_error(a));
            return -1;
        }
    }
    uint64_t t1 = mixl_now_ns();
    uint8_t last = (uint8_t)g_iters;
    if (write(down[1], &last, 1) != 1) return -1;
    waitpid(pid, &status, 0);
    mixl_xfer_release(x);
    mixl_metadata_free(md);
    free(blob);
    mixl_agent_destroy(a);
    close(up[0]);
    close(down[1]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return (double)g_size * g_iters / ((double)(t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
            g_size = (size_t)strtoul(argv[++i], NULL, 0) << 20;
        else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
            g_iters = atoi(argv[++i]);
        else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc)
            g_pairs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--connections") == 0 && i + 1 < argc)
            g_conns = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--spin") == 0)
            g_spin = 1;
        else if (strcmp(argv[i], "--yield") == 0)
            g_yield = 1;
        else if (strcmp(argv[i], "--pin") == 0 && i + 1 < argc &&
                 sscanf(argv[i + 1], "%d,%d", &g_pin[0], &g_pin[1]) == 2 && g_pin[0] >= 0 &&
                 g_pin[1] >= 0)
            i++;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            i++;
            g_only = strcmp(argv[i], "plain") == 0 ? 1 : strcmp(argv[i], "mixl") == 0 ? 2 : -1;
            if (g_only < 0) return 2;
        }
        else {
            fprintf(stderr, "usage: %s [--size MiB] [--iters N] [--pairs P] [--spin | --yield] [--only plain|mixl] [--connections N] [--pin A,B]\n", argv[0]);
            return 2;
        }
    }
    if (g_size == 0 || g_iters < 1 || g_pairs < 1 || g_pairs > 50) return 2;
    signal(SIGPIPE, SIG_IGN);
    uint8_t *src = malloc(g_size);
    if (src == NULL) return 1;
    for (size_t i = 0; i < g_size; i++) src[i] = (uint8_t)(i * 31);
    /* Alternate so drift in machine load hits both alike. */
    double plain[50], mixl[50], cpu_plain = 0, cpu_mixl = 0;
    for (int k = 0; k < g_pairs; k++) {
        double c0 = cpu_now();
        plain[k] = g_only == 2 ? 1 : plain_run(src);
        double c1 = cpu_now();
        mixl[k] = g_only == 1 ? 1 : mixl_run(src);
        cpu_plain += c1 - c0;
        cpu_mixl += cpu_now() - c1;
        if (plain[k] < 0 || mixl[k] < 0) {
            fprintf(stderr, "mixl-tcp-bench: a run failed\n");
            return 1;
        }
    }
    char conns[16] = "default";
    if (g_conns > 0) snprintf(conns, sizeof(conns), "%u", g_conns);
    char pinned[32] = "no";
    if (g_pin[0] >= 0) snprintf(pinned, sizeof(pinned), "CPU %d -> CPU %d", g_pin[0], g_pin[1]);
    printf("size %zu MiB x %d iterations, %d pairs, loopback, wait=%s, connections %s, pinned %s\n",
           g_size >> 20, g_iters, g_pairs, g_spin ? "mixl_xfer_wait" : g_yield ? "test+yield" : "test", conns, pinned);
    printf("plain send/recv GB/s:");
    for (int k = 0; k < g_pairs; k++) printf(" %.2f", plain[k] / 1e9);
    printf("\nmixl tcp WRITE  GB/s:");
    for (int k = 0; k < g_pairs; k++) printf(" %.2f", mixl[k] / 1e9);
    qsort(plain, (size_t)g_pairs, sizeof(double), cmp_double);
    qsort(mixl, (size_t)g_pairs, sizeof(double), cmp_double);
    double mp = plain[g_pairs / 2], mm = mixl[g_pairs / 2];
    printf("\nmedian: plain %.2f GB/s, mixl %.2f GB/s, ratio %.3f\n", mp / 1e9, mm / 1e9, mm / mp);
    /* Both processes, warm-up and set-up included. */
    double gib = (double)g_size * (g_iters + 1) * g_pairs / (double)(1u << 30);
    printf("cpu s/GiB (both processes): plain %.3f, mixl %.3f\n", cpu_plain / gib, cpu_mixl / gib);
    free(src);
    return 0;
}
