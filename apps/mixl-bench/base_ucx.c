/*
 * ucx_perftest baseline: rank 0 runs a ucx_perftest server and client pair
 * on loopback for each size (ucp_put_lat for WRITE latency, ucp_put_bw for
 * WRITE bandwidth, ucp_get for READ) and parses the client's "Final:" line.
 * Skipped with a note when the program is not installed. The other ranks
 * wait in a barrier, so the pair has the node to itself as MIXL's ranks had.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "baselines.h"
#include "sweep.h"
#include "util/clock.h"
#include "util/log.h"

extern char **environ;

mixl_status_t bench_ucx_parse(const char *text, bench_ucx_final_t *final_p)
{
    const char *p = text;
    while ((p = strstr(p, "Final:")) != NULL) {
        bench_ucx_final_t f;
        /* Only a line start counts: the header never contains "Final:". */
        if (p == text || p[-1] == '\n') {
            int n = sscanf(p, "Final: %lf %lf %lf %lf %lf %lf %lf %lf", &f.iterations, &f.lat_p50_us,
                           &f.lat_avg_us, &f.lat_overall_us, &f.bw_avg_mbs, &f.bw_overall_mbs,
                           &f.rate_avg, &f.rate_overall);
            if (n == 8 && f.iterations > 0) {
                *final_p = f;
                return MIXL_OK;
            }
        }
        p += 6;
    }
    return MIXL_ERR_PROTOCOL;
}

/* Find prog (a path or a name looked up in PATH); 0 when found. */
static int find_program(const char *prog, char *path, size_t len)
{
    if (strchr(prog, '/') != NULL) {
        snprintf(path, len, "%s", prog);
        return access(path, X_OK);
    }
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s", env ? env : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, len, "%s/%s", d, prog);
        if (access(path, X_OK) == 0) return 0;
    }
    return -1;
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Wait for pid until deadline; kill it past that. Exit status, or -1 when killed. */
static int wait_child(pid_t pid, uint64_t deadline)
{
    int ws;
    for (;;) {
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid) return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
        if (w < 0 && errno != EINTR) return -1;
        if (mixl_now_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &ws, 0);
            return -1;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

/* Run one server/client pair; the client's output goes to out (NUL-terminated). */
static mixl_status_t ucx_pair(const char *prog, int port, const char *test, uint64_t size,
                              unsigned iters, unsigned warmup, int timeout_ms, char *out,
                              size_t outlen, char *note, size_t notelen)
{
    char sport[16], ssize[32], siters[16], swarm[16];
    char *srv_argv[] = {(char *)prog, "-p", sport, NULL};
    char *cli_argv[] = {(char *)prog, "127.0.0.1", "-p", sport, "-t", (char *)test, "-s", ssize,
                        "-n", siters, "-w", swarm, NULL};
    posix_spawn_file_actions_t fa;
    char tmpl[] = "/tmp/mixl-bench-ucx-XXXXXX";
    uint64_t deadline = mixl_deadline_ns(timeout_ms);
    mixl_status_t st = MIXL_ERR_BACKEND;
    pid_t srv, cli = -1;
    int fd, rc = -1;

    snprintf(sport, sizeof(sport), "%d", port);
    snprintf(ssize, sizeof(ssize), "%llu", (unsigned long long)size);
    snprintf(siters, sizeof(siters), "%u", iters);
    snprintf(swarm, sizeof(swarm), "%u", warmup);

    fd = mkstemp(tmpl);
    if (fd < 0) {
        snprintf(note, notelen, "mkstemp: %s", strerror(errno));
        return MIXL_ERR_IO;
    }
    unlink(tmpl);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&srv, prog, &fa, NULL, srv_argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        close(fd);
        snprintf(note, notelen, "cannot start %s", prog);
        return MIXL_ERR_IO;
    }
    posix_spawn_file_actions_destroy(&fa);

    /* The server needs a moment to listen; a refused client is simply retried. */
    for (int attempt = 0; attempt < 50 && mixl_now_ns() < deadline; attempt++) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) break;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, fd, STDERR_FILENO);
        rc = posix_spawn(&cli, prog, &fa, NULL, cli_argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) break;
        rc = wait_child(cli, deadline);
        if (rc == 0) break;
        /* Still refused: the server is not up yet (or the run failed; the output says). */
    }
    if (rc == 0) {
        /* The Final line is last: keep the tail when the output is long. */
        struct stat sb;
        off_t off = fstat(fd, &sb) == 0 && sb.st_size > (off_t)(outlen - 1) ? sb.st_size - (off_t)(outlen - 1) : 0;
        ssize_t n = pread(fd, out, outlen - 1, off);
        out[n > 0 ? n : 0] = '\0';
        st = MIXL_OK;
    } else {
        snprintf(note, notelen, "ucx_perftest %s -s %llu failed or timed out", test,
                 (unsigned long long)size);
    }
    close(fd);
    if (wait_child(srv, rc == 0 ? mixl_deadline_ns(5000) : mixl_now_ns()) != 0 && st == MIXL_OK) {
        snprintf(note, notelen, "ucx_perftest server for %s exited with an error", test);
        st = MIXL_ERR_BACKEND;
    }
    return st;
}

static void ucx_row(bench_row_t *row, int write, uint64_t size)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "ucx_perftest");
    snprintf(row->backend, sizeof(row->backend), "ucp");
    snprintf(row->op, sizeof(row->op), "%s", write ? "WRITE" : "READ");
    snprintf(row->mem, sizeof(row->mem), "host");
    snprintf(row->pattern, sizeof(row->pattern), "pairwise");
    row->size = size;
    row->batch = 1;
    row->xfer_ops = 1;
    row->initiators = 1;
    row->reps = 1;
    row->bytes = size;
}

static mixl_status_t ucx_measure(const bench_opts_t *o, const char *prog, int write, uint64_t size,
                                 bench_row_t *row)
{
    static char out[16384];
    bench_ucx_final_t bw, lat;
    char note[96] = "";
    unsigned iters = bench_scaled_iters(o->iters, size, 8);
    unsigned warmup = bench_scaled_iters(o->warmup, size, 2);
    int port = o->ucx_port ? o->ucx_port : free_port();
    mixl_status_t st;

    ucx_row(row, write, size);
    st = ucx_pair(prog, port, write ? "ucp_put_bw" : "ucp_get", size, iters, warmup, o->timeout_ms,
                  out, sizeof(out), note, sizeof(note));
    if (st == MIXL_OK && (st = bench_ucx_parse(out, &bw)) != MIXL_OK)
        snprintf(note, sizeof(note), "no Final line in ucx_perftest output");
    if (st == MIXL_OK && write) {
        port = o->ucx_port ? o->ucx_port : free_port();
        st = ucx_pair(prog, port, "ucp_put_lat", size, iters, warmup, o->timeout_ms, out, sizeof(out),
                      note, sizeof(note));
        if (st == MIXL_OK && (st = bench_ucx_parse(out, &lat)) != MIXL_OK)
            snprintf(note, sizeof(note), "no Final line in ucx_perftest output");
    } else {
        /* ucp_get has no latency test: its per-operation overhead stands in. */
        lat = bw;
    }
    if (st != MIXL_OK) {
        snprintf(row->note, sizeof(row->note), "%s", note);
        return st;
    }
    row->iters = (uint32_t)bw.iterations;
    row->gbps = bw.bw_overall_mbs * 1048576.0 / 1e9;
    row->gbps_min = row->gbps_max = row->gbps;
    row->gbps_stddev = NAN;
    row->lat_avg_us = lat.lat_avg_us;
    row->lat_p50_us = lat.lat_p50_us;
    row->lat_p99_us = NAN; /* ucx_perftest reports no tail percentile */
    row->lat_min_us = row->lat_max_us = row->lat_stddev_us = NAN;
    row->ops_per_s = bw.rate_overall;
    /* ucx_perftest has no option to check what it moved, unlike every other row. */
    snprintf(row->note, sizeof(row->note), "%s; data not checked (external program)",
             write ? "lat: ucp_put_lat (half round trip)" : "lat: ucp_get per-op overhead");
    return MIXL_OK;
}

typedef struct {
    char prog[512];
} ucx_runner_t;

static mixl_status_t ucx_runner_point(bench_ctx_t *ctx, bench_runner_t *r, int write, uint64_t size,
                                      uint64_t batch)
{
    ucx_runner_t *u = r->state;
    if (ctx->rank == 0) {
        bench_row_t row;
        if (ucx_measure(ctx->opts, u->prog, write, size, &row) != MIXL_OK)
            bench_skip_row(ctx, &row, row.note);
        else
            bench_results_add(ctx->res, &row);
    }
    /* The other ranks sleep here: the pair needs both cores of a small node. */
    return bench_boot_barrier_idle(ctx->boot);
}

static void ucx_runner_close(bench_ctx_t *ctx, bench_runner_t *r)
{
    free(r->state);
}

mixl_status_t bench_ucx_runners(bench_ctx_t *ctx, uint64_t maxbytes, bench_runners_t *rs)
{
    const bench_opts_t *o = ctx->opts;
    ucx_runner_t *u;
    int batch1 = 0;

    for (size_t b = 0; b < o->nbatches; b++) batch1 |= o->batches[b] == 1;
    if (!batch1 || rs->n == BENCH_RUNNERS_MAX) return MIXL_OK;
    if ((u = calloc(1, sizeof(*u))) == NULL) return MIXL_ERR_NO_MEMORY;
    /* Every rank looks: they run on one node, and all must agree to take part. */
    if (find_program(o->ucx_perftest[0] ? o->ucx_perftest : "ucx_perftest", u->prog, sizeof(u->prog)) != 0) {
        bench_row_t row;
        ucx_row(&row, 1, 0);
        bench_skip_row(ctx, &row, "ucx_perftest not installed (Debian package ucx-utils)");
        free(u);
        return MIXL_OK;
    }
    rs->r[rs->n++] = (bench_runner_t){.point = ucx_runner_point, .close = ucx_runner_close,
                                      .directed = 1, .batch1_only = 1, .state = u};
    return MIXL_OK;
}
