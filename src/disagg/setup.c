/*
 * Set-up shared by every role: the control communicator, clock alignment
 * with the router, KV memory, the agent (one per rank over the job's
 * communicator, memory registered once before start so it gets a static
 * window), and the exchange of the workers' metadata through the registry
 * (the embedded rank-0 MPI registry or etcd).
 *
 * Each local step that can fail is followed by an agreement (MPI_Allreduce
 * of the status) so that when one rank fails every rank stops together
 * instead of waiting in a later collective.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disagg/dg_int.h"
#include "disagg/live.h"
#include "util/clock.h"
#include "util/log.h"

#define DG_TAG_CLOCK 8

static unsigned long long dg_agents_made;

unsigned long long dg_agents_created(void)
{
    return dg_agents_made;
}
#define DG_CLOCK_ROUNDS 8

/* All ranks agree on the worst status (errors are negative). */
static mixl_status_t dg_agree(mixl_dg_t *dg, mixl_status_t st)
{
    int mine = (int)st, worst = 0;
    if (MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MIN, dg->ctl) != MPI_SUCCESS)
        return MIXL_ERR_BACKEND;
    return worst < 0 ? (mixl_status_t)worst : MIXL_OK;
}

/* A receive that gives up at the deadline instead of waiting forever. */
static mixl_status_t dg_recv_deadline(mixl_dg_t *dg, void *buf, int len, int src, int tag)
{
    MPI_Request rq;
    int done = 0;
    uint64_t deadline = mixl_deadline_ns(dg->timeout_ms);
    MPI_Irecv(buf, len, MPI_BYTE, src, tag, dg->ctl, &rq);
    while (!done) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (!done && mixl_now_ns() >= deadline) {
            MPI_Cancel(&rq);
            MPI_Request_free(&rq);
            mixl_error("no clock reply from %s within %d ms", dg->names[src], dg->timeout_ms);
            return MIXL_ERR_TIMED_OUT;
        }
    }
    return MIXL_OK;
}

#define DG_CLOCK_KEY 128

/* The first line of `path` starting with `prefix` ("" for the first line),
 * without its newline; "" when there is none. */
static void read_line(const char *path, const char *prefix, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[64];

    out[0] = '\0';
    if (f == NULL) return;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, len, "%s", line);
            break;
        }
    fclose(f);
}

/* What makes two ranks' CLOCK_MONOTONIC one clock: the same kernel (its boot
 * id) seen through the same time-namespace offset (a container may shift
 * it); "" when unknown. Ranks on one node - and the nodes of an emulated
 * cluster, namespaces on one kernel - share it. */
static void clock_key(char key[DG_CLOCK_KEY])
{
    char boot[64], offset[64];

    read_line("/proc/sys/kernel/random/boot_id", "", boot, sizeof(boot));
    read_line("/proc/self/timens_offsets", "monotonic", offset, sizeof(offset));
    memset(key, 0, DG_CLOCK_KEY);
    if (boot[0] != '\0') snprintf(key, DG_CLOCK_KEY, "%s %s", boot, offset);
}

/* Rank 0 learns each rank's best round trip into all[] (ranks that share its
 * clock had none) and writes how the timelines were aligned into
 * dg->clock_sync; frees shared and all. Collective. */
static mixl_status_t clock_report(mixl_dg_t *dg, mixl_status_t st, int *shared, int64_t *all,
                                  int64_t rtt_ns)
{
    int n_shared = 0;
    int64_t worst = 0;

    if (MPI_Gather(&rtt_ns, 1, MPI_INT64_T, all, 1, MPI_INT64_T, 0, dg->ctl) != MPI_SUCCESS)
        st = MIXL_ERR_BACKEND;
    if (dg->rank == 0) {
        for (int r = 1; r < dg->world; r++) {
            if (shared[r]) n_shared++;
            else if (all[r] > worst) worst = all[r];
        }
        int probed = dg->world - 1 - n_shared;
        if (probed == 0)
            snprintf(dg->clock_sync, sizeof(dg->clock_sync),
                     "the router's own clock on all %d other ranks (one kernel)", dg->world - 1);
        else
            snprintf(dg->clock_sync, sizeof(dg->clock_sync),
                     "the router's own clock on %d ranks; round trips on %d (worst best round "
                     "trip %.1f us: times within %.1f us)",
                     n_shared, probed, (double)worst / 1e3, (double)worst / 2e3);
    }
    free(all);
    free(shared);
    return st;
}

/*
 * Align clocks with the router. A rank that reads the router's own clock
 * (same kernel, same time namespace) needs nothing: offset 0, exactly.
 * Others ping-pong, keeping the round trip with the smallest delay
 * (Cristian's method): timelines from different hosts then share one time
 * axis to within half that round trip - on a loaded machine tens of ms,
 * enough to put a worker's first byte before the router's start.
 */
static mixl_status_t dg_clock_sync(mixl_dg_t *dg)
{
    mixl_status_t st = MIXL_OK;
    char mine[DG_CLOCK_KEY];
    char (*keys)[DG_CLOCK_KEY] = calloc((size_t)dg->world, DG_CLOCK_KEY);
    int *shared = calloc((size_t)dg->world, sizeof(int));
    int64_t *all = dg->rank == 0 ? calloc((size_t)dg->world, sizeof(int64_t)) : NULL;

    if (keys == NULL || shared == NULL || (dg->rank == 0 && all == NULL)) {
        mixl_error("clock alignment: no memory for the keys of %d ranks", dg->world);
        st = MIXL_ERR_NO_MEMORY;
    }
    /* MIXL_CLOCK_SYNC=probe: round trips even where the clock is shared (to
     * see what they give; tests of the path every multi-node run takes).
     * The environment may differ between nodes: every rank agrees before
     * the first collective of its own. */
    const char *how = getenv("MIXL_CLOCK_SYNC");
    int probe = how != NULL && strcmp(how, "probe") == 0;
    if (how != NULL && !probe && strcmp(how, "auto") != 0) {
        mixl_error("MIXL_CLOCK_SYNC=%s: expected auto or probe", how);
        st = MIXL_ERR_CONFIG;
    }
    if ((st = dg_agree(dg, st)) == MIXL_OK) {
        clock_key(mine);
        if (probe) mine[0] = '\0';
        if (MPI_Allgather(mine, DG_CLOCK_KEY, MPI_CHAR, keys, DG_CLOCK_KEY, MPI_CHAR, dg->ctl) !=
            MPI_SUCCESS)
            st = MIXL_ERR_BACKEND;
    }
    if (st != MIXL_OK) {
        free(keys);
        free(shared);
        free(all);
        return st;
    }
    /* Every rank decides alike which ranks ping-pong. */
    for (int r = 0; r < dg->world; r++)
        shared[r] = keys[0][0] != '\0' && strcmp(keys[r], keys[0]) == 0;
    free(keys);
    dg->clock_offset_ns = 0;
    if (dg->rank == 0) {
        for (int r = 1; r < dg->world && st == MIXL_OK; r++)
            for (int k = 0; k < DG_CLOCK_ROUNDS && st == MIXL_OK && !shared[r]; k++) {
                int64_t ping, t0;
                st = dg_recv_deadline(dg, &ping, sizeof(ping), r, DG_TAG_CLOCK);
                t0 = (int64_t)mixl_now_ns();
                if (st == MIXL_OK) MPI_Send(&t0, sizeof(t0), MPI_BYTE, r, DG_TAG_CLOCK, dg->ctl);
            }
        return clock_report(dg, st, shared, all, 0);
    }
    int64_t best_rtt = INT64_MAX;
    for (int k = 0; k < DG_CLOCK_ROUNDS && st == MIXL_OK && !shared[dg->rank]; k++) {
        int64_t t1 = (int64_t)mixl_now_ns(), t0 = 0;
        MPI_Send(&t1, sizeof(t1), MPI_BYTE, 0, DG_TAG_CLOCK, dg->ctl);
        st = dg_recv_deadline(dg, &t0, sizeof(t0), 0, DG_TAG_CLOCK);
        int64_t t2 = (int64_t)mixl_now_ns();
        if (st == MIXL_OK && t2 - t1 < best_rtt) {
            best_rtt = t2 - t1;
            dg->clock_offset_ns = t0 - (t1 + t2) / 2;
        }
    }
    return clock_report(dg, st, shared, all, best_rtt);
}

mixl_status_t dg_exchange_metadata(mixl_dg_t *dg)
{
    const mixl_run_config_t *cfg = dg->cfg;
    mixl_registry_params_t rp;
    char endpoints[MIXL_CFG_LIST_MAX * MIXL_CFG_STR_MAX] = "";
    mixl_status_t st;

    for (int i = 0; i < cfg->registry.endpoints.count; i++) {
        if (i > 0) strcat(endpoints, ",");
        strcat(endpoints, cfg->registry.endpoints.item[i]);
    }
    mixl_registry_params_init(&rp);
    rp.backend = cfg->registry.backend == MIXL_REG_ETCD ? "etcd" : "mpi";
    rp.ns = cfg->registry.ns;
    rp.lease_ttl_s = (int)cfg->registry.lease_ttl_s;
    rp.op_timeout_ms = (int)cfg->registry.timeout_ms;
    rp.comm = dg->ctl;
    rp.server_rank = 0;
    if (endpoints[0] != '\0') rp.endpoints = endpoints;
    st = mixl_registry_create(&rp, &dg->reg); /* logs its own failure, naming the endpoint */
    if (st != MIXL_OK) dg->reg = NULL;
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;

    mixl_md_store_params_t sp;
    memset(&sp, 0, sizeof(sp));
    sp.size = sizeof(sp);
    sp.reg = dg->reg;
    st = mixl_md_store_create(&sp, &dg->store); /* logs its own failure */
    if (st != MIXL_OK) dg->store = NULL;
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;

    /* The router moves no KV: only workers publish, and they import every other worker. */
    if (dg->rank != 0) {
        int64_t t0 = (int64_t)mixl_now_ns();
        st = mixl_md_store_publish_agent(dg->store, dg->agent);
        /* A failure is logged by the store (or the agent) where it happened. */
        if (st == MIXL_OK) dg_reg_time_add(&dg->reg_times, 0, (int64_t)mixl_now_ns() - t0);
    }
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;
    if (dg->rank != 0)
        for (int r = 1; r < dg->world && st == MIXL_OK; r++) {
            if (r == dg->rank) continue;
            int64_t t0 = (int64_t)mixl_now_ns();
            st = mixl_md_store_fetch_import(dg->store, dg->agent, dg->names[r],
                                            (int)cfg->registry.timeout_ms);
            if (st == MIXL_OK) dg_reg_time_add(&dg->reg_times, 1, (int64_t)mixl_now_ns() - t0);
        }
    return dg_agree(dg, st);
}

static unsigned dg_backends(const mixl_run_config_t *cfg)
{
    unsigned b = 0;
    if (cfg->data_plane.rma_enabled) b |= MIXL_BACKEND_MPI;
    if (cfg->data_plane.fallback == MIXL_FALLBACK_TCP && (mixl_backends_available() & MIXL_BACKEND_TCP))
        b |= MIXL_BACKEND_TCP;
    return b;
}

static mixl_status_t dg_alloc_memory(mixl_dg_t *dg)
{
    char err[256];
    int local_rank = 0;
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (lr == NULL) lr = getenv("SLURM_LOCALID");
    if (lr != NULL) local_rank = atoi(lr);

    /* Host memory from MPI is collective over the control communicator: the router takes part. */
    MPI_Comm comm = dg->cfg->data_plane.host_memory == MIXL_HOSTMEM_MPI ? dg->ctl : MPI_COMM_NULL;
    if (dg->me.role == MIXL_ROLE_ROUTER) {
        if (comm != MPI_COMM_NULL &&
            mixl_mem_alloc_mpi(comm, 0, &dg->mem.mpi_ptr) != MIXL_OK)
            mixl_warn("%s", mixl_last_error());
        return MIXL_OK;
    }
    int decode = dg->me.role == MIXL_ROLE_DECODE;
    dg->layout = decode ? mixl_dg_decode_layout(&dg->plan, dg->me.tp_rank)
                        : mixl_dg_prefill_layout(&dg->plan, dg->me.tp_rank);
    uint64_t bytes = mixl_kv_region_bytes(&dg->layout);
    mixl_mem_type_t type = decode ? dg->plan.decode_mem : dg->plan.prefill_mem;
    int device = (int)(decode ? dg->cfg->decode.device : dg->cfg->prefill.device);
    mixl_status_t st =
        mixl_kv_mem_alloc(&dg->mem, bytes, type, device, local_rank, comm, err, sizeof(err));
    if (st != MIXL_OK)
        mixl_error("%s for its %s (%llu bytes)", err, decode ? "KV pool" : "layer buffers",
                   (unsigned long long)bytes);
    return st;
}

mixl_status_t dg_setup(mixl_dg_t *dg)
{
    mixl_status_t st;

    dg->names = calloc((size_t)dg->world, MIXL_NAME_MAX);
    dg->hosts = calloc((size_t)dg->world, DG_HOST_MAX);
    dg->peer_base = calloc((size_t)dg->world, sizeof(uint64_t));
    st = (dg->names && dg->hosts && dg->peer_base) ? MIXL_OK : MIXL_ERR_NO_MEMORY;
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;
    for (int r = 0; r < dg->world; r++) mixl_dg_rank_name(&dg->plan, r, dg->names[r]);
    mixl_log_set_tag(dg->names[dg->rank]);
    /* Host names: messages about a rank say where it ran; liveness connects by them. */
    char host[DG_HOST_MAX] = "";
    if (gethostname(host, sizeof(host) - 1) != 0) snprintf(host, sizeof(host), "?");
    if (MPI_Allgather(host, DG_HOST_MAX, MPI_CHAR, dg->hosts, DG_HOST_MAX, MPI_CHAR, dg->ctl) !=
        MPI_SUCCESS)
        st = MIXL_ERR_BACKEND;
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;

    if ((st = dg_agree(dg, dg_clock_sync(dg))) != MIXL_OK) return st;
    if ((st = dg_agree(dg, dg_alive_setup(dg))) != MIXL_OK) return st;
    if ((st = dg_agree(dg, dg_alloc_memory(dg))) != MIXL_OK) return st;

    mixl_agent_params_t ap;
    memset(&ap, 0, sizeof(ap));
    ap.size = sizeof(ap);
    ap.name = dg->names[dg->rank];
    ap.engine_id = dg->names[dg->rank];
    ap.comm = dg->ctl;
    ap.backends = dg_backends(dg->cfg);
    ap.gpu_path = (mixl_gpu_path_t)dg->cfg->data_plane.gpu_path;
    ap.notif_ring = (unsigned)dg->cfg->data_plane.notif_ring;
    ap.timeout_ms = dg->timeout_ms;
    ap.tcp_bind = dg->cfg->data_plane.tcp_bind[0] != '\0' ? dg->cfg->data_plane.tcp_bind : NULL;
    ap.tcp_interface =
        dg->cfg->data_plane.tcp_interface[0] != '\0' ? dg->cfg->data_plane.tcp_interface : NULL;
    ap.data_path = dg->cfg->data_plane.path == MIXL_PATHCFG_TCP   ? MIXL_DATA_PATH_TCP
                   : dg->cfg->data_plane.path == MIXL_PATHCFG_MPI ? MIXL_DATA_PATH_MPI
                                                                  : MIXL_DATA_PATH_AUTO;
    ap.tcp_allow_unauthenticated = dg->cfg->data_plane.tcp_allow_unauthenticated;
    ap.tcp_connections = (unsigned)dg->cfg->data_plane.tcp_connections;
    /* The YAML's 0 is "never"; the library's 0 is "its default". */
    ap.tcp_poll_us = dg->cfg->data_plane.tcp_poll_us > 0 ? (int)dg->cfg->data_plane.tcp_poll_us : -1;
    /* Start-up as a user sees it: agent create + start + publish + import of every peer. */
    int64_t t_startup = (int64_t)mixl_now_ns();
    /* TCP peers prove a per-job secret: the configured key file, or 32 random
     * bytes rank 0 makes and broadcasts (every rank takes this branch alike:
     * it depends on the configuration only). */
    uint8_t secret[1 + MIXL_TCP_SECRET_BYTES] = {0};
    if (ap.backends & MIXL_BACKEND_TCP) {
        if (dg->cfg->data_plane.tcp_secret_file[0] != '\0') {
            ap.tcp_secret_file = dg->cfg->data_plane.tcp_secret_file;
        } else {
            if (dg->rank == 0) secret[0] = mixl_tcp_secret_new(secret + 1) == MIXL_OK;
            if (MPI_Bcast(secret, sizeof(secret), MPI_BYTE, 0, dg->ctl) != MPI_SUCCESS)
                secret[0] = 0;
            ap.tcp_secret = secret + 1;
            ap.tcp_secret_len = MIXL_TCP_SECRET_BYTES;
        }
    }
    if ((ap.backends & MIXL_BACKEND_TCP) && ap.tcp_secret != NULL && !secret[0]) {
        mixl_error("no per-job TCP secret: rank 0 found no random source");
        st = MIXL_ERR_BACKEND;
    } else {
        st = mixl_agent_create(&ap, &dg->agent);
        if (st == MIXL_OK) dg_agents_made++;
    }
    memset(secret, 0, sizeof(secret));
    /* mixl_agent_create logs its own failure (each rank the part it saw). */
    if (st != MIXL_OK) dg->agent = NULL;
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;
    int64_t t_created = (int64_t)mixl_now_ns();

    if (dg->mem.ptr != NULL) {
        /* The agent logs a refusal, naming the region. */
        st = mixl_mem_register(dg->agent, dg->mem.ptr, dg->mem.len, dg->mem.type, dg->mem.device,
                               &dg->region);
    }
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;
    st = mixl_agent_start(dg->agent); /* logs its own failure */
    if ((st = dg_agree(dg, st)) != MIXL_OK) return st;
    int64_t t_started = (int64_t)mixl_now_ns();

    if ((st = dg_exchange_metadata(dg)) != MIXL_OK) goto out;
    /* Whole start-up and its phases, each the slowest rank's (phases end in a collective agreement). */
    int64_t t_end = (int64_t)mixl_now_ns();
    double ms[4] = {(double)(t_end - t_startup) / 1e6, (double)(t_created - t_startup) / 1e6,
                    (double)(t_started - t_created) / 1e6, (double)(t_end - t_started) / 1e6};
    double slowest[4] = {0};
    if (MPI_Reduce(ms, slowest, 4, MPI_DOUBLE, MPI_MAX, 0, dg->ctl) == MPI_SUCCESS && dg->rank == 0)
        mixl_notice("start-up: %.1f ms on the slowest of %d ranks (agent create %.1f ms, register + "
                    "start %.1f ms, metadata publish + import of every peer %.1f ms)",
                    slowest[0], dg->world, slowest[1], slowest[2], slowest[3]);
    /*
     * The membership of an MPI job is fixed and a dead rank ends the job, so
     * once every worker holds its peers' metadata the embedded registry has
     * done its work; its server thread would otherwise keep polling MPI
     * beside the data plane (about 30% more CPU time for the default run on
     * a 2-core node). An etcd store stays open: its lease keeps the metadata
     * visible (etcdctl) for the whole run.
     */
    if (dg->cfg->registry.backend == MIXL_REG_MPI) {
        mixl_md_store_destroy(dg->store);
        mixl_registry_destroy(dg->reg);
        dg->store = NULL;
        dg->reg = NULL;
    }

    uint64_t base = (uint64_t)(uintptr_t)dg->mem.ptr;
    if (MPI_Allgather(&base, 1, MPI_UINT64_T, dg->peer_base, 1, MPI_UINT64_T, dg->ctl) !=
        MPI_SUCCESS)
        st = MIXL_ERR_BACKEND;
    /* Which backend each rank's peers ended up on, for the summary and the results file. */
    unsigned on[2] = {mixl_agent_peers_on(dg->agent, MIXL_BACKEND_MPI),
                      mixl_agent_peers_on(dg->agent, MIXL_BACKEND_TCP)};
    if (MPI_Reduce(on, dg->peers_on, 2, MPI_UNSIGNED, MPI_SUM, 0, dg->ctl) != MPI_SUCCESS)
        st = MIXL_ERR_BACKEND;
    dg->idle_yields = on[0] > 0 || dg->me.role == MIXL_ROLE_ROUTER ? DG_IDLE_YIELDS : 0;
    st = dg_agree(dg, st);
    if (st == MIXL_OK && dg->rank == 0)
        mixl_info("data path: %s; choice %s", mixl_agent_path_report(dg->agent),
                  mixl_agent_path_choice(dg->agent));
out:
    return st;
}

void dg_teardown(mixl_dg_t *dg)
{
    dg_flush(dg, 1);
    /* The store revokes its lease (removing what it published); the mpi registry ends collectively. */
    if (dg->store != NULL) mixl_md_store_destroy(dg->store);
    if (dg->reg != NULL) mixl_registry_destroy(dg->reg);
    dg->store = NULL;
    dg->reg = NULL;
    if (dg->agent != NULL) {
        if (dg->region != NULL) mixl_mem_deregister(dg->agent, dg->region);
        mixl_agent_destroy(dg->agent);
        dg->agent = NULL;
    }
    mixl_kv_mem_free(&dg->mem);
    /*
     * No barrier before MPI_Finalize: MPI_Win_free is collective already, and
     * UCX's "error during flush: Endpoint timeout" that Open MPI 4.1 + UCX over
     * tcp sometimes prints inside MPI_Finalize comes with or without one, in
     * plain MPI programs too (docs/performance.md, "The UCX endpoint timeout").
     */
    /* Every rank is past its run before the liveness connections close: the
     * router reads a closed connection as a death. */
    MPI_Barrier(dg->ctl);
    dg_alive_close(dg);
    free(dg->hosts);
    dg->hosts = NULL;
    free(dg->names);
    free(dg->peer_base);
    free(dg->outbox);
    free(dg->parked);
    dg->names = NULL;
    dg->peer_base = NULL;
    dg->outbox = NULL;
    dg->parked = NULL;
}
