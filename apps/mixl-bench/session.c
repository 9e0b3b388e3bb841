/* MIXL agent set-up for the benchmark; see session.h. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/netif.h"
#include "transport/tcp/tcp_auth.h"
#include "util/clock.h"

const char *bench_backend_name(unsigned backend)
{
    return backend == BENCH_BACKEND_TCP ? "tcp" : "mpi";
}

mixl_status_t bench_tcp_bind_resolve(bench_ctx_t *ctx, char *bind, size_t len, char *why,
                                    size_t whylen)
{
    MPI_Comm comm = ctx->boot->ops->comm(ctx->boot->state), node = MPI_COMM_NULL;
    char addr[64], note[96] = "";
    const char *rule = NULL;
    int node_size = ctx->size;
    mixl_status_t st = MIXL_OK;

    if (bind[0] != '\0') {
        snprintf(why, whylen, "--tcp-bind");
        return MIXL_OK;
    }
    /* Shared-memory domain = node, the identity MIXL's agents use; without MPI every rank is local. */
    if (comm != MPI_COMM_NULL) {
        if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) != MPI_SUCCESS ||
            MPI_Comm_size(node, &node_size) != MPI_SUCCESS) {
            snprintf(note, sizeof(note), "cannot find which ranks share a node");
            st = MIXL_ERR_BACKEND;
        }
        if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
    }
    if (st == MIXL_OK && node_size == ctx->size) {
        snprintf(addr, sizeof(addr), "127.0.0.1");
        rule = "every rank on one node";
    } else if (st == MIXL_OK && mixl_netif_auto(addr, &rule) != MIXL_OK) {
        snprintf(note, sizeof(note), "ranks on several nodes but no interface besides loopback "
                                     "(give --tcp-bind)");
        st = MIXL_ERR_NOT_FOUND;
    }
    st = bench_agree(ctx, st, note, why, whylen);
    if (st != MIXL_OK) return st;
    snprintf(bind, len, "%s", addr);
    snprintf(why, whylen, "%s", rule);
    return MIXL_OK;
}

mixl_status_t bench_xfer_run(mixl_xfer_h x, uint64_t timeout_ns)
{
    mixl_status_t st = mixl_xfer_post(x);
    uint64_t deadline = 0;
    /*
     * The clock is first read after 4096 polls, so a request that completes
     * quickly costs exactly what the raw MPI loop costs: post, then test.
     */
    for (unsigned n = 1; st == MIXL_IN_PROGRESS; n++) {
        st = mixl_xfer_test(x);
        if ((n & 4095) == 0 && st == MIXL_IN_PROGRESS) {
            if (deadline == 0) deadline = mixl_now_ns() + timeout_ns;
            else if (mixl_now_ns() > deadline) return MIXL_ERR_TIMED_OUT;
        }
    }
    return st;
}

static void session_free_bufs(bench_session_t *s)
{
    for (int i = 0; i < BENCH_SESSION_BUFS; i++) bench_buf_free(&s->bufs[i]);
    free(s->exposed);
    free(s->names);
    s->exposed = NULL;
    s->names = NULL;
}

mixl_status_t bench_session_open(bench_ctx_t *ctx, unsigned backend, unsigned kind,
                                 const size_t len[BENCH_SESSION_BUFS], bench_session_t *s,
                                 char *note, size_t notelen)
{
    char mynote[96] = "";
    char name[MIXL_NAME_MAX];
    mixl_status_t st = MIXL_OK;
    void *blobs = NULL, *blob = NULL;
    size_t stride = 0, bloblen = 0;
    MPI_Comm comm = ctx->boot->ops->comm(ctx->boot->state);

    if (kind == BENCH_MEM_HOST_MPI && comm == MPI_COMM_NULL) {
        snprintf(note, notelen, "host-mpi memory needs an MPI bootstrap");
        return MIXL_ERR_NOT_SUPPORTED;
    }

    memset(s, 0, sizeof(*s));
    s->backend = backend;
    s->exposed = calloc((size_t)ctx->size, sizeof(*s->exposed));
    s->names = calloc((size_t)ctx->size, sizeof(*s->names));
    if (s->exposed == NULL || s->names == NULL) {
        snprintf(mynote, sizeof(mynote), "out of memory");
        st = MIXL_ERR_NO_MEMORY;
    }
    for (int i = 0; i < BENCH_SESSION_BUFS && st == MIXL_OK; i++) {
        if (kind == BENCH_MEM_HOST_MPI) /* collective: every rank allocates, a page at least */
            st = bench_buf_alloc_mpi(comm, len[i], 0x10 + i, &s->bufs[i], mynote, sizeof(mynote));
        else if (len[i] > 0)
            st = bench_buf_alloc(kind, len[i], 0x10 + i, &s->bufs[i], mynote, sizeof(mynote));
    }
    st = bench_agree(ctx, st, mynote, note, notelen);
    if (st != MIXL_OK) goto err_bufs;

    snprintf(name, sizeof(name), "bench-%s-%d", bench_backend_name(backend), ctx->rank);
    mixl_agent_params_t p = {
        .size = sizeof(p),
        .name = name,
        .comm = backend == BENCH_BACKEND_MPI ? comm : MPI_COMM_NULL,
        .backends = backend == BENCH_BACKEND_MPI ? MIXL_BACKEND_MPI : MIXL_BACKEND_TCP,
        .timeout_ms = ctx->opts->timeout_ms,
    };
    /* TCP peers prove a per-run secret that rank 0 makes (the exchange
     * gives every rank rank 0's contribution). */
    uint8_t secret[1 + MIXL_TCP_SECRET_BYTES] = {0}, *secrets = NULL;
    if (backend == BENCH_BACKEND_TCP) {
        if (ctx->opts->tcp_bind[0] != '\0') p.tcp_bind = ctx->opts->tcp_bind;
        p.tcp_connections = ctx->opts->tcp_connections;
        p.tcp_poll_us = ctx->opts->tcp_poll_us;
        if (ctx->rank == 0) secret[0] = mixl_tcp_secret_new(secret + 1) == MIXL_OK;
        secrets = calloc((size_t)ctx->size, sizeof(secret));
        if (secrets != NULL &&
            bench_boot_exchange(ctx->boot, secret, sizeof(secret), secrets) == MIXL_OK &&
            secrets[0]) {
            p.tcp_secret = secrets + 1;
            p.tcp_secret_len = MIXL_TCP_SECRET_BYTES;
        }
    }
    if (backend == BENCH_BACKEND_MPI && comm == MPI_COMM_NULL) {
        snprintf(mynote, sizeof(mynote), "the MPI backend needs an MPI bootstrap");
        st = MIXL_ERR_NOT_SUPPORTED;
    } else if (backend == BENCH_BACKEND_TCP && p.tcp_secret == NULL) {
        snprintf(mynote, sizeof(mynote), "no per-run TCP secret from rank 0");
        st = MIXL_ERR_BACKEND;
    } else {
        st = mixl_agent_create(&p, &s->agent);
        if (st != MIXL_OK) snprintf(mynote, sizeof(mynote), "mixl_agent_create: %s", mixl_status_str(st));
    }
    if (secrets != NULL) memset(secrets, 0, (size_t)ctx->size * sizeof(secret));
    free(secrets);
    memset(secret, 0, sizeof(secret));
    st = bench_agree(ctx, st, mynote, note, notelen);
    if (st != MIXL_OK) goto err_agent;

    for (int i = 0; i < BENCH_SESSION_BUFS && st == MIXL_OK; i++) {
        mixl_region_h reg;
        if (s->bufs[i].ptr == NULL || len[i] == 0) continue;
        st = mixl_mem_register(s->agent, s->bufs[i].ptr, s->bufs[i].len, bench_mem_mixl_type(kind), 0,
                               &reg);
        if (st != MIXL_OK)
            snprintf(mynote, sizeof(mynote), "%s", mixl_agent_last_error(s->agent));
    }
    st = bench_agree(ctx, st, mynote, note, notelen);
    if (st != MIXL_OK) goto err_agent;
    /* Collective on the agent's communicator whatever each rank registered. */
    st = mixl_agent_start(s->agent);
    if (st != MIXL_OK) snprintf(mynote, sizeof(mynote), "%s", mixl_agent_last_error(s->agent));
    st = bench_agree(ctx, st, mynote, note, notelen);
    if (st != MIXL_OK) goto err_agent;

    st = mixl_metadata_export(s->agent, &blob, &bloblen);
    if (st != MIXL_OK) snprintf(mynote, sizeof(mynote), "%s", mixl_agent_last_error(s->agent));
    st = bench_agree(ctx, st, mynote, note, notelen);
    if (st != MIXL_OK) goto err_agent;
    st = bench_boot_exchange_var(ctx->boot, blob, bloblen, &blobs, &stride);
    mixl_free(blob);
    if (st != MIXL_OK) goto err_agent;
    for (int r = 0; r < ctx->size && st == MIXL_OK; r++) {
        const uint8_t *slot = (const uint8_t *)blobs + (size_t)r * stride;
        uint64_t blen;
        memcpy(&blen, slot, sizeof(blen));
        if (r == ctx->rank) {
            snprintf(s->names[r], MIXL_NAME_MAX, "%s", name);
            continue;
        }
        st = mixl_metadata_import(s->agent, slot + sizeof(blen), blen, s->names[r]);
        if (st != MIXL_OK) snprintf(mynote, sizeof(mynote), "%s", mixl_agent_last_error(s->agent));
    }
    free(blobs);
    st = bench_agree(ctx, st, mynote, note, notelen);
    if (st != MIXL_OK) goto err_agent;

    uint64_t mine = (uint64_t)(uintptr_t)s->bufs[1].ptr;
    st = bench_boot_exchange(ctx->boot, &mine, sizeof(mine), s->exposed);
    if (st != MIXL_OK) goto err_agent;
    return MIXL_OK;

err_agent:
    if (s->agent != NULL) mixl_agent_destroy(s->agent);
    s->agent = NULL;
err_bufs:
    session_free_bufs(s);
    return st;
}

void bench_session_close(bench_ctx_t *ctx, bench_session_t *s)
{
    if (s->agent != NULL) mixl_agent_destroy(s->agent);
    s->agent = NULL;
    session_free_bufs(s);
}
