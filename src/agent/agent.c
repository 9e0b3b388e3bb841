/*
 * Agent life cycle: create (collective over the communicator), start
 * (collective window creation), destroy, error reporting, path report.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "util/coll.h"
#include "util/log.h"
#include "util/params.h"

static int name_valid(const char *name)
{
    size_t n;
    if (name == NULL) return 0;
    n = strlen(name);
    if (n == 0 || n >= MIXL_NAME_MAX) return 0;
    /* Names become registry keys and log text: printable, no '/'. */
    for (size_t i = 0; i < n; i++)
        if (name[i] <= ' ' || name[i] == '/' || name[i] == 0x7f) return 0;
    return 1;
}

mixl_status_t mixl_agent_agree(mixl_agent_h agent, mixl_status_t local)
{
    int bad = -1;
    mixl_status_t st;

    if (agent->comm == MPI_COMM_NULL) return local;
    st = mixl_coll_agree(agent->comm, local, &bad);
    /* A rank that did its part names the one that did not (its own message says why). */
    if (st != MIXL_OK && local == MIXL_OK && bad >= 0)
        mixl_errbuf_set(&agent->eb, st, "agent %s: rank %d (agent %s) failed", agent->name, bad,
                        agent->rank_names != NULL && agent->rank_names[bad][0] ? agent->rank_names[bad]
                                                                              : "?");
    return st;
}

/* Shared-memory layout parameters every rank must hold alike: each decides where a peer
 * writes into this rank's windows. */
typedef struct {
    uint64_t notif_ring, staging_slots, staging_slot_bytes;
} agent_layout_t;

/* Every rank holds the same table, so every rank reaches the same verdict without agreeing. */
static mixl_status_t agent_check_layout(mixl_agent_h agent, const agent_layout_t *all)
{
    static const struct {
        const char *key;
        size_t off;
    } keys[] = {{"notif_ring", offsetof(agent_layout_t, notif_ring)},
                {"staging_slots", offsetof(agent_layout_t, staging_slots)},
                {"staging_slot_bytes", offsetof(agent_layout_t, staging_slot_bytes)}};

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        for (int r = 1; r < agent->nranks; r++) {
            uint64_t v0 = *(const uint64_t *)((const char *)&all[0] + keys[k].off);
            uint64_t vr = *(const uint64_t *)((const char *)&all[r] + keys[k].off);
            if (v0 != vr)
                return mixl_errbuf_set(&agent->eb, MIXL_ERR_CONFIG,
                                       "agent %s: %s must be the same on every rank: rank 0 (agent %s) "
                                       "has %llu, rank %d (agent %s) has %llu", agent->name,
                                       keys[k].key, agent->rank_names[0], (unsigned long long)v0, r,
                                       agent->rank_names[r], (unsigned long long)vr);
        }
    return MIXL_OK;
}

/*
 * Collective: duplicate the communicator, gather every rank's agent name and
 * layout parameters, refuse duplicates and differences. Every rank makes every call whatever failed locally; the
 * outcome is agreed at the end. On failure agent->comm may be set (the caller
 * frees it, collectively on every rank alike).
 */
static mixl_status_t agent_setup_comm(mixl_agent_h agent, MPI_Comm comm)
{
    mixl_status_t st = MIXL_OK;
    agent_layout_t mine, *all = NULL;
    int rc;

    rc = MPI_Comm_dup(comm, &agent->comm);
    if (!mixl_coll_check_created(comm, rc, agent->comm != MPI_COMM_NULL, "MPI_Comm_dup of the agent")) {
        agent->comm = MPI_COMM_NULL;
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_BACKEND, "agent %s: MPI_Comm_dup failed",
                               agent->name);
    }
    if (rc != MPI_SUCCESS)
        mixl_coll_keep(&st, mixl_errbuf_set(&agent->eb, MIXL_ERR_BACKEND,
                                            "agent %s: MPI_Comm_dup failed", agent->name));
    MPI_Comm_set_errhandler(agent->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(agent->comm, &agent->rank);
    MPI_Comm_size(agent->comm, &agent->nranks);
    agent->rank_names = calloc((size_t)agent->nranks, MIXL_NAME_MAX);
    all = calloc((size_t)agent->nranks, sizeof(*all));
    if (agent->rank_names == NULL || all == NULL)
        mixl_coll_keep(&st, mixl_errbuf_set(&agent->eb, MIXL_ERR_NO_MEMORY,
                                            "agent %s: cannot allocate the rank table", agent->name));
    /* The gathers below need the tables on every rank. */
    mixl_coll_keep(&st, mixl_agent_agree(agent, st));
    if (st != MIXL_OK) goto out;

    rc = MPI_Allgather(agent->name, MIXL_NAME_MAX, MPI_CHAR, agent->rank_names, MIXL_NAME_MAX,
                       MPI_CHAR, agent->comm);
    if (rc != MPI_SUCCESS) mixl_coll_lost(agent->comm, rc, "MPI_Allgather of agent names");
    mine.notif_ring = agent->params.notif_ring;
    mine.staging_slots = agent->params.staging_slots;
    mine.staging_slot_bytes = agent->params.staging_slot_bytes;
    rc = MPI_Allgather(&mine, 3, MPI_UINT64_T, all, 3, MPI_UINT64_T, agent->comm);
    if (rc != MPI_SUCCESS) mixl_coll_lost(agent->comm, rc, "MPI_Allgather of layout parameters");

    /* Same tables everywhere: every rank reaches the same verdict. */
    for (int i = 0; i < agent->nranks && st == MIXL_OK; i++)
        for (int j = i + 1; j < agent->nranks && st == MIXL_OK; j++)
            if (strcmp(agent->rank_names[i], agent->rank_names[j]) == 0)
                st = mixl_errbuf_set(&agent->eb, MIXL_ERR_EXISTS,
                                     "agent name '%s' is used by ranks %d and %d",
                                     agent->rank_names[i], i, j);
    if (st == MIXL_OK) st = agent_check_layout(agent, all);
    st = mixl_agent_agree(agent, st);
out:
    free(all);
    return st;
}

/* The agent's params struct as first released (fields up to gpu_path). */
#define MIXL_AGENT_PARAMS_SIZE_V1 offsetof(mixl_agent_params_t, gpu_path)

/* No backend asked for: the first in table order whose needs the params meet
 * (MPI where there is a communicator, else TCP). */
static unsigned agent_default_backend(const mixl_agent_params_t *params)
{
    for (int i = 0; i < MIXL_TP_MAX; i++) {
        const mixl_tp_ops_t *ops = mixl_tp_get((mixl_tp_id_t)i);
        if (ops != NULL && (!(ops->flags & MIXL_TP_F_COMM) || params->comm != MPI_COMM_NULL))
            return MIXL_TP_BIT(i);
    }
    return 0;
}

/* params is the caller's struct loaded by mixl_params_load(): zero past its .size. */
static mixl_status_t agent_copy_params(mixl_agent_h agent, const mixl_agent_params_t *params)
{
    memcpy(&agent->params, params, sizeof(agent->params));
    snprintf(agent->name, sizeof(agent->name), "%s", params->name);
    snprintf(agent->engine_id, sizeof(agent->engine_id), "%s",
             params->engine_id != NULL && params->engine_id[0] ? params->engine_id : params->name);
    snprintf(agent->tcp_bind, sizeof(agent->tcp_bind), "%s",
             params->tcp_bind && params->tcp_bind[0] ? params->tcp_bind : "auto");
    agent->params.name = agent->name;
    agent->params.engine_id = agent->engine_id;
    agent->params.tcp_bind = agent->tcp_bind;
    if (agent->params.data_path > MIXL_DATA_PATH_TCP)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM, "agent %s: unknown data_path %d",
                               agent->name, (int)agent->params.data_path);
    if (agent->params.notif_ring == 0) agent->params.notif_ring = MIXL_DEFAULT_NOTIF_RING;
    if (agent->params.staging_slots == 0) agent->params.staging_slots = MIXL_DEFAULT_STAGING_SLOTS;
    if (agent->params.staging_slot_bytes == 0)
        agent->params.staging_slot_bytes = MIXL_DEFAULT_STAGING_BYTES;
    if (agent->params.timeout_ms == 0) agent->params.timeout_ms = MIXL_DEFAULT_TIMEOUT_MS;
    if (agent->params.backends == 0) agent->params.backends = agent_default_backend(params);
    if (gethostname(agent->hostname, sizeof(agent->hostname) - 1) != 0)
        snprintf(agent->hostname, sizeof(agent->hostname), "unknown");

    if (agent->params.notif_ring > (1u << 16))
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: notif_ring %u exceeds 65536", agent->name,
                               agent->params.notif_ring);
    for (int i = 0; i < MIXL_TP_MAX; i++) {
        const mixl_tp_ops_t *ops = mixl_tp_get((mixl_tp_id_t)i);
        if (!(agent->params.backends & MIXL_TP_BIT(i)) || ops == NULL) continue;
        if ((ops->flags & MIXL_TP_F_COMM) && params->comm == MPI_COMM_NULL)
            return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                                   "agent %s: the %s backend needs a communicator", agent->name,
                                   ops->name);
    }
    if (agent->params.backends & ~mixl_backends_available())
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: unknown backend bits 0x%x", agent->name,
                               agent->params.backends & ~mixl_backends_available());
    return MIXL_OK;
}

/* Every backend asked for in params.backends, in table order (backends.c). */
static mixl_status_t agent_init_backends(mixl_agent_h agent)
{
    mixl_status_t st = MIXL_OK;

    for (int i = 0; i < MIXL_TP_MAX && st == MIXL_OK; i++) {
        const mixl_tp_ops_t *ops = mixl_tp_get((mixl_tp_id_t)i);
        mixl_tp_t *tp = &agent->tps[i];

        if (!(agent->params.backends & MIXL_TP_BIT(i))) continue;
        if (ops == NULL) {
            st = mixl_errbuf_set(&agent->eb, MIXL_ERR_NOT_SUPPORTED,
                                 "agent %s: transport backend #%d is not built into this library",
                                 agent->name, i);
            break;
        }
        st = mixl_tp_check_ops(ops, &agent->eb);
        if (st != MIXL_OK) break;
        tp->ops = ops;
        tp->id = (mixl_tp_id_t)i;
        tp->eb = &agent->eb;
        tp->agent_name = agent->name;
        tp->comm = agent->comm;
        tp->rank_names = agent->rank_names;
        tp->rank = agent->rank;
        tp->nranks = agent->nranks;
        tp->node_only = mixl_agent_node_only(agent, i);
        tp->priv = calloc(1, ops->priv_size ? ops->priv_size : 1);
        if (tp->priv == NULL) {
            st = mixl_errbuf_set(&agent->eb, MIXL_ERR_NO_MEMORY, "agent %s: %s backend state",
                                 agent->name, ops->name);
            break;
        }
        st = ops->init(tp, &agent->params);
        if (st != MIXL_OK) {
            free(tp->priv);
            tp->priv = NULL;
            break;
        }
        agent->tp_active[i] = 1;
    }
    return st;
}

/* Stop one backend: it forgets every region first (its per-region state goes
 * with it), then fini (collective for a MIXL_TP_F_COMM backend). */
static void agent_fini_backend(mixl_agent_h agent, int i)
{
    mixl_tp_t *tp = &agent->tps[i];

    for (size_t r = 0; r < agent->nregions; r++)
        tp->ops->mem_deregister(tp, &agent->regions[r]->tp);
    tp->ops->fini(tp);
    free(tp->priv);
    tp->priv = NULL;
    agent->tp_active[i] = 0;
}

static void agent_fini_backends(mixl_agent_h agent)
{
    for (int i = MIXL_TP_MAX - 1; i >= 0; i--)
        if (agent->tp_active[i]) agent_fini_backend(agent, i);
}

/* Another active backend that reaches any peer (across worlds) can stand in for i. */
static int agent_can_drop(mixl_agent_h agent, int i)
{
    for (int j = 0; j < MIXL_TP_MAX; j++)
        if (j != i && agent->tp_active[j] && (agent->tps[j].ops->caps & MIXL_TP_CAP_CROSS_WORLD))
            return 1;
    return 0;
}

mixl_status_t mixl_agent_create(const mixl_agent_params_t *params, mixl_agent_h *agent_p)
{
    mixl_agent_params_t loaded;
    mixl_agent_h agent;
    mixl_status_t st;
    size_t size = 0;
    int collective;

    mixl_thread_error_clear();
    st = mixl_params_load(params, MIXL_AGENT_PARAMS_SIZE_V1, sizeof(loaded), &loaded, &size);
    if (st != MIXL_OK || agent_p == NULL)
        return mixl_thread_error_set(0, st != MIXL_OK ? st : MIXL_ERR_INVALID_PARAM,
                                     "mixl_agent_create: params missing, or params.size %zu outside "
                                     "%zu..%zu", size, (size_t)MIXL_AGENT_PARAMS_SIZE_V1, sizeof(loaded));
    params = &loaded;
    collective = params->comm != MPI_COMM_NULL;
    agent = calloc(1, sizeof(*agent));
    if (agent == NULL)
        return mixl_thread_error_set(0, MIXL_ERR_NO_MEMORY, "mixl_agent_create: no memory for the agent");
    agent->comm = MPI_COMM_NULL;
    agent->rank = -1;

    if (!name_valid(params->name)) {
        st = mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                             "agent name '%s' is empty, too long (max %d) or has spaces or '/'",
                             params->name ? params->name : "(null)", MIXL_NAME_MAX - 1);
    } else {
        st = agent_copy_params(agent, params);
    }
    if (collective) {
        /* Every rank must take the same path through the collectives below. */
        int bad = -1;
        mixl_status_t all = mixl_coll_agree(params->comm, st, &bad);
        if (all != MIXL_OK && st == MIXL_OK)
            st = mixl_errbuf_set(&agent->eb, all, "agent %s: rank %d refused its parameters",
                                 agent->name, bad);
        if (st != MIXL_OK) goto err_free;
        st = agent_setup_comm(agent, params->comm);
        if (st != MIXL_OK) goto err_comm;
    } else if (st != MIXL_OK) {
        goto err_free;
    }
    st = mixl_agent_node_setup(agent);
    st = mixl_agent_agree(agent, st);
    if (st != MIXL_OK) goto err_backends;

    st = agent_init_backends(agent);
    st = mixl_agent_agree(agent, st);
    if (st != MIXL_OK) goto err_backends;

    *agent_p = agent;
    return MIXL_OK;

err_backends:
    agent_fini_backends(agent);
    mixl_agent_node_free(agent);
err_comm:
    if (agent->comm != MPI_COMM_NULL) MPI_Comm_free(&agent->comm);
    free(agent->rank_names);
err_free:
    /* The handle goes away: its message stays reachable through mixl_last_error(). */
    mixl_thread_error_keep(&agent->eb);
    free(agent);
    return st;
}

/* Upper-case name of the first active backend, for the loud warning. */
static void agent_first_active_name(mixl_agent_h agent, char *buf, size_t len)
{
    snprintf(buf, len, "NONE");
    for (int i = 0; i < MIXL_TP_MAX; i++)
        if (agent->tp_active[i]) {
            size_t k;
            for (k = 0; k + 1 < len && agent->tps[i].ops->name[k]; k++)
                buf[k] = (char)toupper((unsigned char)agent->tps[i].ops->name[k]);
            buf[k] = '\0';
            return;
        }
}

/* Whether params asked for a one-sided backend (which then failed to start). */
static int agent_wanted_one_sided(mixl_agent_h agent)
{
    for (int i = 0; i < MIXL_TP_MAX; i++) {
        const mixl_tp_ops_t *ops = mixl_tp_get((mixl_tp_id_t)i);
        if ((agent->params.backends & MIXL_TP_BIT(i)) && ops != NULL &&
            (ops->flags & MIXL_TP_F_ONE_SIDED))
            return 1;
    }
    return 0;
}

mixl_status_t mixl_agent_start(mixl_agent_h agent)
{
    mixl_status_t st = MIXL_OK;
    mixl_tp_region_t **views;
    char *p;
    size_t left;

    if (agent == NULL) return MIXL_ERR_INVALID_PARAM;
    if (agent->started)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_BAD_STATE, "agent %s: already started",
                               agent->name);
    views = calloc(agent->nregions ? agent->nregions : 1, sizeof(*views));
    if (views == NULL) st = MIXL_ERR_NO_MEMORY;
    st = mixl_agent_agree(agent, st);
    if (st != MIXL_OK) goto out;
    for (size_t i = 0; i < agent->nregions; i++) views[i] = &agent->regions[i]->tp;
    for (int i = 0; i < MIXL_TP_MAX && st == MIXL_OK; i++) {
        if (!agent->tp_active[i]) continue;
        st = agent->tps[i].ops->start(&agent->tps[i], views, agent->nregions);
        st = mixl_agent_agree(agent, st);
        if (st != MIXL_OK && agent_can_drop(agent, i)) {
            /* Could not start on some rank: go on without it, on every rank alike. */
            mixl_warn("agent %s: %s backend unavailable (%s); going on without it", agent->name,
                      agent->tps[i].ops->name, mixl_errbuf_get(&agent->eb));
            agent_fini_backend(agent, i);
            st = MIXL_OK;
        }
    }
    if (st != MIXL_OK) goto out;
    agent->started = 1;

    p = agent->path_report;
    left = sizeof(agent->path_report);
    p[0] = '\0';
    for (int i = 0; i < MIXL_TP_MAX; i++) {
        size_t n;
        if (!agent->tp_active[i]) continue;
        if (p != agent->path_report && left > 2) {
            strcat(p, "; ");
            p += 2;
            left -= 2;
        }
        agent->tps[i].ops->path_report(&agent->tps[i], p, left);
        n = strlen(p);
        p += n;
        left -= n;
    }
    mixl_agent_path_choose(agent);
    mixl_agent_path_note(agent, p, left);
    if (agent->rank <= 0) {
        char name[16];
        int one_sided = 0;
        agent_first_active_name(agent, name, sizeof(name));
        for (int i = 0; i < MIXL_TP_MAX; i++)
            if (agent->tp_active[i] && (agent->tps[i].ops->flags & MIXL_TP_F_ONE_SIDED)) one_sided = 1;
        if (!one_sided)
            /* Loud on purpose: nobody should benchmark a stream transport by mistake. */
            mixl_warn("agent %s: DATA PLANE IS %s, NOT RDMA (no one-sided backend is %s): %s",
                      agent->name, name,
                      agent_wanted_one_sided(agent) ? "available" : "enabled", agent->path_report);
        else
            mixl_notice("agent %s data path: %s", agent->name, agent->path_report);
    }
out:
    free(views);
    return st;
}

void mixl_agent_destroy(mixl_agent_h agent)
{
    if (agent == NULL) return;
    mixl_xfers_destroy(agent);
    mixl_peers_destroy(agent);
    /* Backends first: windows reference region memory until freed collectively. */
    agent_fini_backends(agent);
    mixl_regions_destroy(agent);
    mixl_agent_node_free(agent);
    if (agent->comm != MPI_COMM_NULL) MPI_Comm_free(&agent->comm);
    free(agent->rank_names);
    free(agent);
}

const char *mixl_agent_name(mixl_agent_h agent)
{
    return agent != NULL ? agent->name : "";
}

const char *mixl_agent_last_error(mixl_agent_h agent)
{
    return agent != NULL ? mixl_errbuf_get(&agent->eb) : "no agent";
}

void mixl_agent_clear_error(mixl_agent_h agent)
{
    if (agent != NULL) mixl_errbuf_clear(&agent->eb);
}

unsigned mixl_agent_backends(mixl_agent_h agent)
{
    unsigned bits = 0;
    if (agent == NULL) return 0;
    for (int i = 0; i < MIXL_TP_MAX; i++)
        if (agent->tp_active[i]) bits |= MIXL_TP_BIT(i);
    return bits;
}

const char *mixl_agent_path_report(mixl_agent_h agent)
{
    if (agent == NULL) return "";
    return agent->started ? agent->path_report : "not started";
}
