/*
 * Transport self-test through the MIXL agent (include/mixl/agent.h): the
 * path KV blocks really take, with MIXL's metadata exchange, prepared
 * requests and notifications, once over the MPI backend (one-sided windows)
 * and once over the TCP backend (the fallback). Every rank creates an agent
 * and registers one host region; metadata is
 * exchanged with MPI_Allgatherv; rank 0 then writes a pattern with a
 * notification into rank 1, which checks that the data is complete when the
 * notification arrives. Latency = one 8-byte WRITE (READ) post + wait;
 * bandwidth = one 16 MiB request of 16 one-MiB descriptors. Loops stop at
 * the time budget, as in the raw MPI test, so the two can be compared.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/agent.h>

#include "diag.h"
#include "transport/tcp/tcp_auth.h"

#define AG_LAT_BYTES 8
#define AG_CHUNK ((size_t)1 << 20)
#define AG_CHUNKS 16
#define AG_REGION (AG_CHUNK * AG_CHUNKS)
#define AG_LAT_MAX 5000
#define AG_BW_MAX 64
#define AG_NOTIF_WAIT_S 5.0

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)(i * 197 + 11);
}

typedef struct {
    mixl_agent_h agent;
    unsigned char *buf;
    uint64_t *peer_addr; /* every rank's region base, by rank */
    char err[256];
} ag_t;

static int fail(ag_t *a, const char *what, mixl_status_t st)
{
    const char *detail = a->agent ? mixl_agent_last_error(a->agent) : "";
    snprintf(a->err, sizeof(a->err), "%s: %s%s%s", what, mixl_status_str(st),
             *detail ? ": " : "", detail);
    return -1;
}

/* Export this rank's metadata and import every other rank's. Collective. */
static int exchange_metadata(ag_t *a, int rank, int size)
{
    void *blob = NULL;
    size_t len = 0;
    mixl_status_t st = mixl_metadata_export(a->agent, &blob, &len);
    int mylen = st == MIXL_OK ? (int)len : -1;
    int *lens = calloc((size_t)size, sizeof(int)), *displs = calloc((size_t)size, sizeof(int));
    MPI_Allgather(&mylen, 1, MPI_INT, lens, 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0, bad = 0;
    for (int r = 0; r < size; r++) {
        bad |= lens[r] < 0;
        displs[r] = total;
        total += lens[r] < 0 ? 0 : lens[r];
    }
    int rc = 0;
    if (bad) {
        rc = st != MIXL_OK ? fail(a, "mixl_metadata_export", st) : -1;
        if (st == MIXL_OK)
            snprintf(a->err, sizeof(a->err), "metadata export failed on another rank");
        for (int r = 0; r < size; r++)
            lens[r] = lens[r] < 0 ? 0 : lens[r];
    }
    char *all = malloc((size_t)total + 1);
    MPI_Allgatherv(blob, mylen < 0 ? 0 : mylen, MPI_BYTE, all, lens, displs, MPI_BYTE,
                   MPI_COMM_WORLD);
    for (int r = 0; r < size && !rc; r++) {
        if (r == rank)
            continue;
        st = mixl_metadata_import(a->agent, all + displs[r], (size_t)lens[r], NULL);
        if (st != MIXL_OK)
            rc = fail(a, "mixl_metadata_import", st);
    }
    free(all);
    free(lens);
    free(displs);
    mixl_free(blob);
    return rc;
}

static int make_xfer(ag_t *a, mixl_op_t op, size_t bytes, size_t chunks, const void *notif,
                     size_t notif_len, mixl_xfer_h *x_p)
{
    mixl_desc_t local[AG_CHUNKS], remote[AG_CHUNKS];
    size_t each = bytes / chunks;
    for (size_t i = 0; i < chunks; i++) {
        local[i] = (mixl_desc_t){.addr = (uint64_t)(uintptr_t)(a->buf + i * each), .len = each,
                                 .mem_type = MIXL_MEM_HOST};
        remote[i] = (mixl_desc_t){.addr = a->peer_addr[1] + i * each, .len = each,
                                  .mem_type = MIXL_MEM_HOST};
    }
    mixl_xfer_params_t p = {.size = sizeof(p), .op = op, .peer = "mixl-diag-1", .local = local,
                            .remote = remote, .count = chunks, .notif = notif,
                            .notif_len = notif_len};
    mixl_status_t st = mixl_xfer_create(a->agent, &p, x_p);
    return st == MIXL_OK ? 0 : fail(a, "mixl_xfer_create", st);
}

static int post_wait(ag_t *a, mixl_xfer_h x)
{
    mixl_status_t st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS)
        st = mixl_xfer_wait(x, -1);
    return st == MIXL_OK ? 0 : fail(a, "transfer", st);
}

/* Microseconds per post + wait, or -1 on error. */
static double time_loop(ag_t *a, mixl_xfer_h x, int max, double budget)
{
    for (int i = 0; i < 10; i++)
        if (post_wait(a, x))
            return -1;
    int n = 0;
    double t0 = MPI_Wtime(), t = t0;
    while (n < max && t - t0 < budget) {
        if (post_wait(a, x))
            return -1;
        n++;
        t = MPI_Wtime();
    }
    return (t - t0) * 1e6 / n;
}

enum { RECV_OK = 0, RECV_MISMATCH = 1, RECV_NONE = 2 };

/* Rank 1: wait (bounded) for rank 0's notification, then check the data. */
static int receive_and_check(ag_t *a)
{
    mixl_notif_t n;
    size_t got = 0;
    double t0 = MPI_Wtime();
    while (!got && MPI_Wtime() - t0 < AG_NOTIF_WAIT_S) {
        mixl_status_t st = mixl_notif_poll(a->agent, &n, 1, &got);
        if (st != MIXL_OK) {
            fail(a, "mixl_notif_poll", st);
            return RECV_NONE;
        }
    }
    if (!got) {
        snprintf(a->err, sizeof(a->err), "no notification within %.0f s", AG_NOTIF_WAIT_S);
        return RECV_NONE;
    }
    for (size_t i = 0; i < AG_REGION; i++) {
        if (a->buf[i] != pattern_byte(i)) {
            snprintf(a->err, sizeof(a->err), "byte %zu of %zu wrong after the notification", i,
                     AG_REGION);
            return RECV_MISMATCH;
        }
    }
    return RECV_OK;
}

/* One agent self-test over one backend; appends its entry to arr on rank 0. */
static void agent_path(mixl_diag_t *d, mixl_backend_t backend, int same, json_t *arr)
{
    const char *bname = backend == MIXL_BACKEND_MPI ? "mpi" : "tcp";
    json_t *t = NULL;
    if (d->rank == 0) {
        t = json_object();
        json_object_set_new(t, "path", json_string("mixl-agent"));
        json_object_set_new(t, "backend", json_string(bname));
        json_array_append_new(arr, t);
    }
    ag_t a = {0};
    char name[MIXL_NAME_MAX];
    snprintf(name, sizeof(name), "mixl-diag-%d", d->rank);
    mixl_agent_params_t p = {.size = sizeof(p), .name = name, .backends = backend,
                             .timeout_ms = 10000};
    if (backend == MIXL_BACKEND_MPI) {
        p.comm = MPI_COMM_WORLD;
    } else {
        /* TCP needs no communicator; MPI only bootstraps the metadata exchange.
         * Loopback when the pair shares a node, else every interface (the
         * backend then advertises the host name). */
        p.comm = MPI_COMM_NULL;
        p.tcp_bind = same ? "127.0.0.1" : "0.0.0.0";
    }
    /* The pair proves a per-job secret over TCP: rank 0 makes it. */
    uint8_t secret[1 + MIXL_TCP_SECRET_BYTES] = {0};
    if (backend != MIXL_BACKEND_MPI) {
        if (d->rank == 0) secret[0] = mixl_tcp_secret_new(secret + 1) == MIXL_OK;
        MPI_Bcast(secret, sizeof(secret), MPI_BYTE, 0, MPI_COMM_WORLD);
        if (secret[0]) {
            p.tcp_secret = secret + 1;
            p.tcp_secret_len = MIXL_TCP_SECRET_BYTES;
        }
    }
    mixl_region_h region;
    int rc = 0;
    mixl_status_t st = mixl_agent_create(&p, &a.agent);
    /* TCP creation is local: agree before any collective so no rank waits alone. */
    int created = st == MIXL_OK, all_created = 0;
    MPI_Allreduce(&created, &all_created, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all_created) {
        if (d->rank == 0) {
            if (created)
                snprintf(a.err, sizeof(a.err), "mixl_agent_create failed on another rank");
            else
                fail(&a, "mixl_agent_create", st);
            json_object_set_new(t, "status", json_string("failed"));
            json_object_set_new(t, "error", json_string(a.err));
        }
        if (created)
            mixl_agent_destroy(a.agent);
        return;
    }
    /* The memory mixl-run uses by default; malloc when MPI refuses (every rank alike). */
    int mpi_mem = mixl_mem_alloc_mpi(MPI_COMM_WORLD, AG_REGION, (void **)&a.buf) == MIXL_OK;
    if (!mpi_mem) a.buf = aligned_alloc(4096, AG_REGION);
    if (d->rank == 0)
        json_object_set_new(t, "memory", json_string(mpi_mem ? "mixl_mem_alloc_mpi" : "malloc"));
    a.peer_addr = calloc((size_t)d->size, sizeof(uint64_t));
    if (!a.buf || !a.peer_addr) {
        snprintf(a.err, sizeof(a.err), "out of memory for a %zu-byte region", AG_REGION);
        rc = -1;
    } else {
        memset(a.buf, 0, AG_REGION);
        st = mixl_mem_register(a.agent, a.buf, AG_REGION, MIXL_MEM_HOST, 0, &region);
        if (st != MIXL_OK)
            rc = fail(&a, "mixl_mem_register", st);
    }
    /* Start is collective whatever happened locally; the ranks agree afterwards. */
    st = mixl_agent_start(a.agent);
    if (!rc && st != MIXL_OK)
        rc = fail(&a, "mixl_agent_start", st);
    /* Every rank needs the address table before the collectives below. */
    int have = a.peer_addr != NULL;
    MPI_Allreduce(MPI_IN_PLACE, &have, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (have) {
        uint64_t mine = (uint64_t)(uintptr_t)a.buf;
        MPI_Allgather(&mine, 1, MPI_UINT64_T, a.peer_addr, 1, MPI_UINT64_T, MPI_COMM_WORLD);
        if (!rc)
            rc = exchange_metadata(&a, d->rank, d->size);
    } else if (!rc) {
        snprintf(a.err, sizeof(a.err), "out of memory on another rank");
        rc = -1;
    }
    int all_rc = 0;
    MPI_Allreduce(&rc, &all_rc, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

    int outcome = RECV_NONE;
    if (all_rc == 0) {
        if (d->rank == 0) {
            for (size_t i = 0; i < AG_REGION; i++)
                a.buf[i] = pattern_byte(i);
            mixl_xfer_h x;
            static const char note[] = "mixl-diag";
            rc = make_xfer(&a, MIXL_OP_WRITE, AG_REGION, AG_CHUNKS, note, sizeof(note), &x);
            if (!rc) {
                rc = post_wait(&a, x);
                mixl_xfer_release(x);
            }
        } else if (d->rank == 1) {
            outcome = receive_and_check(&a);
        }
        /* Rank 1 judged the data; rank 0 reports it, its own error first. */
        MPI_Bcast(&outcome, 1, MPI_INT, 1, MPI_COMM_WORLD);
        if (outcome != RECV_OK) {
            char err1[sizeof(a.err)];
            if (d->rank == 1)
                MPI_Send(a.err, sizeof(a.err), MPI_CHAR, 0, 77, MPI_COMM_WORLD);
            if (d->rank == 0) {
                MPI_Recv(err1, sizeof(err1), MPI_CHAR, 1, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (rc == 0)
                    snprintf(a.err, sizeof(a.err), "%s", err1);
            }
        }
    } else if (d->rank == 0 && rc == 0) {
        snprintf(a.err, sizeof(a.err), "agent set-up failed on another rank");
    }

    if (d->rank == 0) {
        json_object_set_new(t, "peer_rank", json_integer(1));
        json_object_set_new(t, "same_node", json_boolean(same));
        json_object_set_new(t, "data_path", json_string(mixl_agent_path_report(a.agent)));
        double lat_w = -1, lat_r = -1, bw_w = -1, bw_r = -1;
        int data_ok = all_rc == 0 && outcome == RECV_OK && rc == 0;
        if (data_ok) {
            mixl_xfer_h w8 = NULL, r8 = NULL, wb = NULL, rb = NULL;
            if (!make_xfer(&a, MIXL_OP_WRITE, AG_LAT_BYTES, 1, NULL, 0, &w8) &&
                !make_xfer(&a, MIXL_OP_READ, AG_LAT_BYTES, 1, NULL, 0, &r8) &&
                !make_xfer(&a, MIXL_OP_WRITE, AG_REGION, AG_CHUNKS, NULL, 0, &wb) &&
                !make_xfer(&a, MIXL_OP_READ, AG_REGION, AG_CHUNKS, NULL, 0, &rb)) {
                double b = d->selftest_budget_s;
                lat_w = time_loop(&a, w8, AG_LAT_MAX, b);
                lat_r = lat_w < 0 ? -1 : time_loop(&a, r8, AG_LAT_MAX, b);
                double us_w = lat_r < 0 ? -1 : time_loop(&a, wb, AG_BW_MAX, b);
                double us_r = us_w < 0 ? -1 : time_loop(&a, rb, AG_BW_MAX, b);
                bw_w = us_w > 0 ? AG_REGION * 8.0 / us_w / 1e3 : -1;
                bw_r = us_r > 0 ? AG_REGION * 8.0 / us_r / 1e3 : -1;
            }
            mixl_xfer_h xs[] = {w8, r8, wb, rb};
            for (int i = 0; i < 4; i++)
                if (xs[i])
                    mixl_xfer_release(xs[i]);
        }
        int ok = all_rc == 0 && data_ok && lat_w > 0 && lat_r > 0 && bw_w > 0 && bw_r > 0;
        json_object_set_new(t, "status", json_string(ok ? "ok"
                                                     : outcome == RECV_MISMATCH ? "data mismatch"
                                                                                : "failed"));
        json_object_set_new(t, "data_ok", json_boolean(data_ok));
        if (!ok)
            json_object_set_new(t, "error", json_string(a.err));
        else {
            json_object_set_new(t, "write_latency_us", json_real(lat_w));
            json_object_set_new(t, "read_latency_us", json_real(lat_r));
            json_object_set_new(t, "write_bandwidth_gbit_s", json_real(bw_w));
            json_object_set_new(t, "read_bandwidth_gbit_s", json_real(bw_r));
            json_object_set_new(t, "latency_message_bytes", json_integer(AG_LAT_BYTES));
            json_object_set_new(t, "bandwidth_request_bytes", json_integer((json_int_t)AG_REGION));
        }
    }
    /* Rank 1 stays a passive target until rank 0 has finished timing. */
    MPI_Barrier(MPI_COMM_WORLD);
    mixl_agent_destroy(a.agent);
    free(a.peer_addr);
    if (mpi_mem)
        mixl_mem_free_mpi(a.buf);
    else
        free(a.buf);
}

void mixl_diag_selftest_agent(mixl_diag_t *d)
{
    json_t *arr = d->rank == 0 ? json_object_get(d->report, "selftest") : NULL;
    if (d->size < 2) {
        json_t *t = json_object();
        json_object_set_new(t, "path", json_string("mixl-agent"));
        json_object_set_new(t, "status", json_string("skipped"));
        json_object_set_new(t, "reason", json_string("one rank: run under mpirun/srun with 2+ ranks"));
        json_array_append_new(arr, t);
        return;
    }
    int same = mixl_diag_same_node_0_1();
    agent_path(d, MIXL_BACKEND_MPI, same, arr);
    agent_path(d, MIXL_BACKEND_TCP, same, arr);
}
