/* Preparation (config agreement) and the run of every role; see disagg.h. */
#include "disagg/disagg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/sweep.h"
#include "disagg/dg_int.h"
#include "disagg/live.h"
#include "disagg/results.h"
#include "util/clock.h"
#include "util/log.h"

/* The results file must be writable: found out now rather than after the whole run. */
static mixl_status_t dg_check_output(const char *path, char *err, size_t err_len)
{
    char dir[MIXL_CFG_STR_MAX];
    if (path[0] == '\0') return MIXL_OK;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    /* Create missing parents, as the writer will. */
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(dir, 0777);
        *p = '/';
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "run.output: cannot create the folder %s for %s: %s", dir, path,
                 strerror(errno));
        return MIXL_ERR_CONFIG;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(err, err_len, "run.output: cannot write %s: folder %s: %s", path, dir,
                 strerror(errno));
        return MIXL_ERR_CONFIG;
    }
    if (access(path, F_OK) == 0 && access(path, W_OK) != 0) {
        snprintf(err, err_len, "run.output: cannot overwrite %s: %s", path, strerror(errno));
        return MIXL_ERR_CONFIG;
    }
    return MIXL_OK;
}

mixl_status_t mixl_dg_prepare(MPI_Comm comm, const char *path, const char *const *overrides,
                              int noverrides, mixl_run_config_t *cfg, mixl_dg_plan_t *plan,
                              mixl_workload_t *wl, char *err, size_t err_len)
{
    int rank, world;
    int st = MIXL_OK;
    uint64_t max_prompt = 0;
    char msg[MIXL_CFG_ERR_MAX] = "";

    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &world);
    memset(wl, 0, sizeof(*wl));
    if (rank == 0) {
        st = mixl_run_config_load(cfg, path, overrides, noverrides, msg, sizeof(msg));
        /* Sizes this node cannot hold are refused before the workload is allocated. */
        if (st == MIXL_OK) st = mixl_dg_check_memory(cfg, msg, sizeof(msg));
        if (st == MIXL_OK) st = mixl_workload_build(cfg, wl, msg, sizeof(msg));
        if (st == MIXL_OK) {
            max_prompt = wl->max_prompt;
            st = mixl_dg_plan_build(cfg, world, max_prompt, plan, msg, sizeof(msg));
        }
        if (st == MIXL_OK) st = mixl_dg_check_plan_memory(cfg, plan, msg, sizeof(msg));
        if (st == MIXL_OK) st = dg_check_output(cfg->run.output, msg, sizeof(msg));
        if (st != MIXL_OK) mixl_workload_free(wl);
    }
    /* Everyone learns the outcome before anyone allocates. */
    MPI_Bcast(&st, 1, MPI_INT, 0, comm);
    if (st != MIXL_OK) {
        MPI_Bcast(msg, sizeof(msg), MPI_CHAR, 0, comm);
        snprintf(err, err_len, "%s", msg);
        return (mixl_status_t)st;
    }
    MPI_Bcast(cfg, sizeof(*cfg), MPI_BYTE, 0, comm);
    MPI_Bcast(&max_prompt, 1, MPI_UINT64_T, 0, comm);
    if (rank != 0) {
        st = mixl_dg_plan_build(cfg, world, max_prompt, plan, msg, sizeof(msg));
        if (st != MIXL_OK) {
            /* Same inputs as rank 0, which accepted them: only a mixed installation gets here. */
            snprintf(err, err_len, "rank %d disagrees with rank 0 about the config: %s", rank, msg);
            return (mixl_status_t)st;
        }
    }
    return MIXL_OK;
}

/*
 * The router after a rank died, once the summary and the results file are
 * out: wait (bounded) until every survivor acknowledged the stop, so that
 * the router leaves last, and say that the job ends without its collective
 * teardown.
 */
static mixl_status_t dg_router_leave(mixl_dg_t *dg, FILE *out)
{
    int waiting = dg->world - 1 - dg->ndead;
    uint64_t deadline = mixl_deadline_ns(dg->timeout_ms);
    unsigned idle = 0;
    while (waiting > 0 && mixl_now_ns() < deadline) {
        int src;
        dg_msg_t *m;
        dg_flush(dg, 0);
        if (dg_poll(dg, &src, &m)) {
            if (m->type == DG_MSG_STOPPED) waiting--;
            free(m);
            idle = 0;
        } else {
            dg_idle(dg, &idle);
        }
    }
    fprintf(out,
            "mixl-run: %d rank%s died; leaving without the collective teardown (MPI_Win_free, "
            "MPI_Barrier and MPI_Finalize would wait for %s)%s\n",
            dg->ndead, dg->ndead > 1 ? "s" : "", dg->ndead > 1 ? "them" : "it",
            waiting > 0 ? "; some survivors did not acknowledge the stop" : "");
    fflush(out);
    return MIXL_ERR_DISCONNECTED;
}

/* A worker that knows of a dead rank (or lost the router): acknowledge and leave. */
static mixl_status_t dg_worker_leave(mixl_dg_t *dg)
{
    if (dg->router_gone) {
        mixl_error("the router (rank 0, host %s) died; leaving without the collective teardown",
                   dg->hosts[0]);
        return MIXL_ERR_DISCONNECTED;
    }
    dg_msg_t ack;
    memset(&ack, 0, sizeof(ack));
    ack.type = DG_MSG_STOPPED;
    dg_send(dg, 0, &ack, NULL);
    dg_flush(dg, 1);
    mixl_info("leaving without the collective teardown: %d rank%s died", dg->ndead,
              dg->ndead > 1 ? "s" : "");
    return MIXL_ERR_DISCONNECTED;
}

mixl_status_t mixl_dg_run(MPI_Comm comm, const mixl_run_config_t *cfg, const mixl_dg_plan_t *plan,
                          const mixl_workload_t *wl, FILE *out, uint64_t *failed_p)
{
    return mixl_dg_run_point(comm, cfg, plan, wl, NULL, NULL, out, failed_p);
}

/* A set-up (agents, windows, memory, registry) and what it was made for. */
struct mixl_dg_kept {
    mixl_dg_t dg;
    mixl_run_config_t cfg;   /* the configuration it was set up for */
    uint64_t max_req_blocks; /* blocks of one request the prefill layer buffers hold */
};

/* Collective: tear a set-up down (the agents' windows are freed collectively). */
static void dg_kept_free(mixl_dg_kept_t *k)
{
    dg_teardown(&k->dg);
    MPI_Comm_free(&k->dg.ctl);
    free(k);
}

void mixl_dg_kept_release(mixl_dg_kept_t **kept_pp)
{
    if (*kept_pp != NULL) dg_kept_free(*kept_pp);
    *kept_pp = NULL;
}

/*
 * Between two points on one set-up nothing of the first may reach the
 * second: control messages and notifications carry the point's epoch and
 * the parked notifications of the first are dropped; the per-point figures
 * (requests finished, resident-memory mark, registry times, agent counters)
 * start again from here.
 */
static void dg_point_begin(mixl_dg_t *dg, uint32_t epoch)
{
    dg->epoch = epoch;
    dg->nparked = 0;
    dg->finished = 0;
    dg->rss_mark_kib = 0;
    memset(&dg->reg_times, 0, sizeof(dg->reg_times));
    mixl_agent_stats_t as = {.size = sizeof(as)};
    memset(&dg->agent_base, 0, sizeof(dg->agent_base));
    if (dg->agent != NULL && mixl_agent_stats(dg->agent, &as) == MIXL_OK)
        dg->agent_base = as.total;
}

/*
 * Every rank's resident memory and registry times to the router (collective
 * over the control communicator, after the roles ran): the memory goes to the
 * summary and the results file, the registry times to the final metrics (a
 * rank that served no request never reported them). rss_p and reg_p are set
 * on rank 0 only.
 */
static void dg_gather_rss(mixl_dg_t *dg, long end_kib, mixl_dg_rss_t **rss_p,
                          dg_reg_times_t **reg_p)
{
    static const char *const roles[] = {"router", "prefill", "decode"};
    mixl_dg_rss_t mine;
    memset(&mine, 0, sizeof(mine));
    mine.rank = dg->rank;
    mine.inst = dg->me.inst;
    snprintf(mine.role, sizeof(mine.role), "%s", roles[dg->me.role]);
    mine.requests = dg->finished;
    mine.mark_requests = DG_RSS_MARK;
    mine.mark_kib = dg->finished >= DG_RSS_MARK ? dg->rss_mark_kib : -1;
    mine.end_kib = end_kib;
    if (rss_p != NULL) *rss_p = NULL;
    if (reg_p != NULL) *reg_p = NULL;
    mixl_dg_rss_t *all = dg->rank == 0 ? calloc((size_t)dg->world, sizeof(*all)) : NULL;
    dg_reg_times_t *reg = dg->rank == 0 ? calloc((size_t)dg->world, sizeof(*reg)) : NULL;
    /* Every rank takes part even when the router has no room: it then receives nothing. */
    int room = dg->rank != 0 || (all != NULL && reg != NULL);
    MPI_Bcast(&room, 1, MPI_INT, 0, dg->ctl);
    if (room) {
        MPI_Gather(&mine, sizeof(mine), MPI_BYTE, all, sizeof(mine), MPI_BYTE, 0, dg->ctl);
        MPI_Gather(&dg->reg_times, sizeof(dg->reg_times), MPI_BYTE, reg, sizeof(dg->reg_times),
                   MPI_BYTE, 0, dg->ctl);
    }
    if (dg->rank == 0 && room) {
        if (rss_p != NULL) *rss_p = all;
        else free(all);
        if (reg_p != NULL) *reg_p = reg;
        else free(reg);
    } else {
        free(all);
        free(reg);
    }
}

/*
 * Whether the set-up kept from the previous point serves this one: NULL when
 * it does, else what forces a new one (a key flagged MIXL_CFG_SETUP in the
 * key table, or prompts longer than the prefill layer buffers hold).
 */
static const char *dg_kept_unfit(const mixl_dg_kept_t *k, const mixl_run_config_t *cfg,
                                 const mixl_dg_plan_t *plan)
{
    const char *key = mixl_sweep_setup_change(mixl_run_config_schema(), &k->cfg, cfg);
    if (key != NULL) return key;
    if (plan->max_req_blocks > k->max_req_blocks) return "longest_prompt";
    return NULL;
}

mixl_status_t mixl_dg_run_point(MPI_Comm comm, const mixl_run_config_t *cfg,
                                const mixl_dg_plan_t *plan, const mixl_workload_t *wl,
                                const mixl_dg_point_t *point, mixl_dg_kept_t **kept_pp, FILE *out,
                                uint64_t *failed_p)
{
    mixl_dg_kept_t *kept = kept_pp != NULL ? *kept_pp : NULL;
    mixl_dg_results_t res;
    mixl_status_t st = MIXL_OK;
    long rss_end = -1;
    /* Every rank holds the same cfg and plan, so every rank reaches the same verdict. */
    const char *change = kept != NULL ? dg_kept_unfit(kept, cfg, plan) : NULL;
    int reuse = kept != NULL && change == NULL;

    memset(&res, 0, sizeof(res));
    res.point = point;
    res.setup_reused = reuse;
    if (change != NULL) snprintf(res.setup_change, sizeof(res.setup_change), "%s", change);
    if (kept_pp != NULL) *kept_pp = NULL;
    if (kept != NULL && !reuse) {
        dg_kept_free(kept);
        kept = NULL;
    }
    if (kept == NULL) {
        int ok = (kept = calloc(1, sizeof(*kept))) != NULL, all = 0;
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
        if (!all) {
            free(kept);
            return MIXL_ERR_NO_MEMORY;
        }
        kept->cfg = *cfg;
        kept->max_req_blocks = plan->max_req_blocks;
        /* Sized for the sweep's longest prompt, so that no later point outgrows them. */
        uint64_t blocks =
            point != NULL ? mixl_kv_blocks_for(point->longest_prompt, plan->model.block_size) : 0;
        if (blocks > kept->max_req_blocks) kept->max_req_blocks = blocks;
        kept->dg.ctl = MPI_COMM_NULL;
        kept->dg.idle_yields = DG_IDLE_YIELDS; /* until dg_setup knows the data peers */
    }
    mixl_dg_t *dg = &kept->dg;
    dg->cfg = cfg;
    dg->plan = *plan;
    /* The layer buffers keep the size they were set up with; peers derive offsets from it. */
    dg->plan.max_req_blocks = kept->max_req_blocks;
    dg->timeout_ms = (int)cfg->run.timeout_ms;
    MPI_Comm_rank(comm, &dg->rank);
    MPI_Comm_size(comm, &dg->world);
    dg->me = mixl_dg_rank_of(plan, dg->rank);
    dg->live = NULL;
    dg_point_begin(dg, point != NULL ? (uint32_t)point->index : 0);
    if (!reuse) {
        if (MPI_Comm_dup(comm, &dg->ctl) != MPI_SUCCESS) {
            free(kept);
            return MIXL_ERR_BACKEND;
        }
        MPI_Comm_set_errhandler(dg->ctl, MPI_ERRORS_RETURN);
    }

    /* The metrics endpoint first: a taken port stops every rank before any allocates. */
    int lst = MIXL_OK;
    char lerr[256] = "";
    if (dg->rank == 0) lst = dg_live_start(dg, &dg->live, lerr, sizeof(lerr));
    MPI_Bcast(&lst, 1, MPI_INT, 0, comm);
    if (lst != MIXL_OK) {
        if (dg->rank == 0) mixl_error("%s", lerr);
        st = (mixl_status_t)lst;
        goto out;
    }
    if (dg->live != NULL)
        fprintf(out, "metrics: http://%s:%lld/metrics\n", cfg->metrics.bind,
                (long long)cfg->metrics.port);

    if (!reuse) {
        st = dg_setup(dg);
        if (st != MIXL_OK) {
            if (dg->rank == 0)
                mixl_error("set-up failed on at least one rank: %s", mixl_status_str(st));
            goto out;
        }
        /* The registry times are this set-up's, reported with its first point. */
        dg_reg_times_t set_up = dg->reg_times;
        dg_point_begin(dg, dg->epoch);
        dg->reg_times = set_up;
    }
    unsigned long long made = dg_agents_created(), all_made = 0;
    MPI_Reduce(&made, &all_made, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, dg->ctl);
    res.agents_created = all_made;
    if (dg->rank == 0) {
        snprintf(res.path_report, sizeof(res.path_report), "%s", mixl_agent_path_report(dg->agent));
        snprintf(res.path_choice, sizeof(res.path_choice), "%s; peers over mpi %u, over tcp %u",
                 mixl_agent_path_choice(dg->agent), dg->peers_on[0], dg->peers_on[1]);
        /* The allocation was agreed collectively: the router's own page says how every rank fared. */
        res.host_memory = dg->mem.mpi_ptr != NULL ? "MPI_Win_allocate" : "malloc";
        res.clock_sync = dg->clock_sync;
        unsigned be = mixl_agent_backends(dg->agent);
        dg_live_set_info(dg->live, res.path_report,
                         be == (MIXL_BACKEND_MPI | MIXL_BACKEND_TCP) ? "mpi+tcp"
                         : be == MIXL_BACKEND_TCP                    ? "tcp"
                                                                     : "mpi",
                         res.host_memory);
        char werr[1024] = "";
        mixl_status_t wst = MIXL_OK;
        if (cfg->run.output[0] != '\0') {
            wst = mixl_dg_results_open(&res, plan, cfg, dg->world, werr, sizeof(werr));
            if (wst != MIXL_OK) mixl_error("results: %s; the run goes on without a file", werr);
        }
        st = dg_router_run(dg, wl, &res);
        /* Before the summary and the HDF5 writer allocate: the run's own memory only. */
        rss_end = dg_rss_kib();
        if (st != MIXL_OK) {
            /* A rank stopped answering: without fault-tolerant MPI the only safe end is an abort. */
            if (mixl_dg_results_close(&res, 0, werr, sizeof(werr)) == MIXL_OK &&
                cfg->run.output[0] != '\0')
                fprintf(out, "results (unfinished): %s\n", cfg->run.output);
            fflush(stdout);
            mixl_error("aborting the job");
            MPI_Abort(comm, 3);
        }
        dg_msg_t stop;
        memset(&stop, 0, sizeof(stop));
        stop.type = DG_MSG_STOP;
        for (int r = 1; r < dg->world; r++) dg_send(dg, r, &stop, NULL); /* not to the dead */
        dg_flush(dg, dg->ndead == 0);
        /* The gather waits for every rank: only when none died. */
        dg_reg_times_t *reg_all = NULL;
        if (dg->ndead == 0) {
            dg_gather_rss(dg, rss_end, &res.rss, &reg_all);
            if (res.rss != NULL) res.nrss = dg->world;
        }
        dg_live_final_registry(dg->live, reg_all);
        free(reg_all);
        uint64_t failed = mixl_dg_results_print(&res, plan, cfg, out);
        if (failed_p != NULL) *failed_p = failed;
        if (cfg->run.output[0] != '\0') {
            if (wst == MIXL_OK) wst = mixl_dg_results_close(&res, 1, werr, sizeof(werr));
            if (wst != MIXL_OK) {
                mixl_error("results: %s: the file is missing or incomplete: %s", cfg->run.output,
                           werr);
                st = wst;
            } else {
                fprintf(out, "results: %s\n", cfg->run.output);
            }
        }
        fflush(out);
        dg_live_linger(dg->live, out);
        if (dg->ndead > 0) st = dg_router_leave(dg, out);
    } else {
        st = dg->me.role == MIXL_ROLE_PREFILL ? dg_prefill_run(dg) : dg_decode_run(dg);
        if (!dg->router_gone && dg->ndead == 0) dg_gather_rss(dg, dg_rss_kib(), NULL, NULL);
    }
    if (dg->rank != 0 && (dg->router_gone || dg->ndead > 0)) st = dg_worker_leave(dg);
    if (st == MIXL_ERR_DISCONNECTED) {
        /* Windows, the Allreduce below, the barrier and MPI_Finalize would wait for the
         * dead rank: the set-up is left as it is (the process ends next). */
        dg_live_stop(dg->live);
        dg->live = NULL;
        free(res.req);
        free(res.rss);
        return st;
    }
out:
    dg_live_stop(dg->live);
    dg->live = NULL;
    free(res.req);
    free(res.rss);
    /* Every control message of this point has left before the next point (or the end) begins. */
    if (st == MIXL_OK) st = dg_flush(dg, 1);
    int mine = (int)st, worst = 0;
    if (MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        worst = MIXL_ERR_BACKEND;
    if (kept_pp != NULL && worst == MIXL_OK) {
        *kept_pp = kept;
    } else if (dg->ctl != MPI_COMM_NULL) {
        dg_kept_free(kept);
    } else {
        free(kept);
    }
    return st;
}
