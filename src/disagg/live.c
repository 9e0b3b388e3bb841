/* Live metrics of a run, served to Prometheus from the router; see live.h. */
#include "disagg/live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mixl/version.h>

#include "metrics/prom.h"
#include "metrics/prom_http.h"
#include "util/clock.h"

/* Bounds 1, 2.5, 5 per decade: latencies from 10 us to 10 s, waits up to 100 s. */
static const double lat_le[] = {1e-5,   2.5e-5, 5e-5, 1e-4,   2.5e-4, 5e-4, 1e-3,
                                2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   0.1,  0.25,
                                0.5,    1,      2.5,  5,      10};
static const double wait_le[] = {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
                                 1e-2, 2.5e-2, 5e-2, 0.1,  0.25,   0.5,  1,    2.5,    5,
                                 10,   25,     50,   100};
/* 1 MB/s to 1 TB/s. */
static const double bw_le[] = {1e6,   2.5e6,  5e6,  1e7,   2.5e7,  5e7,  1e8,
                               2.5e8, 5e8,    1e9,  2.5e9, 5e9,    1e10, 2.5e10,
                               5e10,  1e11,   2.5e11, 5e11, 1e12};
static const double ratio_le[] = {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1};

/* Registry operations: 100 us to 1 s. */
static const double reg_le[DG_REG_BUCKETS] = {1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
                                              1e-2, 2.5e-2, 5e-2, 0.1,  0.5,    1};

#define NLE(a) (sizeof(a) / sizeof((a)[0]))
/* Request failure reasons are statuses: -1 .. -(MAX_REASON - 1). */
#define MAX_REASON 64

struct dg_live {
    const mixl_dg_t *dg;
    mixl_prom_server_t *srv;
    mixl_prom_buf_t buf;
    int64_t refresh_ns, next_ns;
    uint64_t final_gen;
    mixl_prom_hist_t lat, ttft, queue, bw, hidden;
    uint64_t ok, failed;
    uint64_t *bytes_by_decode; /* per decode instance */
    uint64_t errors[MAX_REASON];
    mixl_counters_t *ranks; /* latest report per rank */
    dg_reg_times_t *reg;    /* latest registry times per rank */
    char path_report[512], backends[32], host_memory[32], osc[32];
};

mixl_status_t dg_live_start(const mixl_dg_t *dg, dg_live_t **lv_p, char *err, size_t err_len)
{
    const mixl_run_config_t *cfg = dg->cfg;
    dg_live_t *lv;
    mixl_status_t st;

    *lv_p = NULL;
    if (cfg->metrics.port == 0) return MIXL_OK;
    lv = calloc(1, sizeof(*lv));
    if (lv == NULL) return MIXL_ERR_NO_MEMORY;
    lv->dg = dg;
    lv->refresh_ns = cfg->metrics.refresh_ms * 1000000;
    mixl_prom_buf_init(&lv->buf);
    lv->bytes_by_decode = calloc((size_t)dg->plan.decode_instances, sizeof(uint64_t));
    lv->ranks = calloc((size_t)dg->world, sizeof(mixl_counters_t));
    lv->reg = calloc((size_t)dg->world, sizeof(dg_reg_times_t));
    st = (lv->bytes_by_decode && lv->ranks && lv->reg) ? MIXL_OK : MIXL_ERR_NO_MEMORY;
    if (st == MIXL_OK) st = mixl_prom_hist_init(&lv->lat, lat_le, NLE(lat_le));
    if (st == MIXL_OK) st = mixl_prom_hist_init(&lv->ttft, wait_le, NLE(wait_le));
    if (st == MIXL_OK) st = mixl_prom_hist_init(&lv->queue, wait_le, NLE(wait_le));
    if (st == MIXL_OK) st = mixl_prom_hist_init(&lv->bw, bw_le, NLE(bw_le));
    if (st == MIXL_OK) st = mixl_prom_hist_init(&lv->hidden, ratio_le, NLE(ratio_le));
    if (st != MIXL_OK) {
        snprintf(err, err_len, "metrics: out of memory");
        goto err_lv;
    }
    st = mixl_prom_server_start(cfg->metrics.bind, (int)cfg->metrics.port, &lv->srv, err, err_len);
    if (st != MIXL_OK) goto err_lv;
    *lv_p = lv;
    return MIXL_OK;

err_lv:
    dg_live_stop(lv);
    return st;
}

void dg_live_set_info(dg_live_t *lv, const char *path_report, const char *backends,
                      const char *host_memory)
{
    if (lv == NULL) return;
    snprintf(lv->path_report, sizeof(lv->path_report), "%s", path_report);
    snprintf(lv->backends, sizeof(lv->backends), "%s", backends);
    snprintf(lv->host_memory, sizeof(lv->host_memory), "%s", host_memory);
    /* "mpi: osc=ucx static windows; ..." -> "ucx" */
    const char *o = strstr(path_report, "osc=");
    if (o != NULL) {
        o += 4;
        size_t n = strcspn(o, " ;,)");
        snprintf(lv->osc, sizeof(lv->osc), "%.*s", (int)(n < sizeof(lv->osc) ? n : 0), o);
    }
}

void dg_live_request(dg_live_t *lv, const mixl_dg_req_t *r)
{
    if (lv == NULL) return;
    if (r->decode_inst >= 0 && r->decode_inst < lv->dg->plan.decode_instances)
        lv->bytes_by_decode[r->decode_inst] += r->bytes;
    if (r->status != 0) {
        lv->failed++;
        int idx = -r->status;
        lv->errors[idx > 0 && idx < MAX_REASON ? idx : 0]++;
        return;
    }
    lv->ok++;
    mixl_dg_derived_t d = mixl_dg_derive(r);
    mixl_prom_hist_add(&lv->lat, d.lat_us / 1e6);
    mixl_prom_hist_add(&lv->ttft, d.ttft_us / 1e6);
    mixl_prom_hist_add(&lv->queue, d.queue_us / 1e6);
    mixl_prom_hist_add(&lv->bw, d.gbps * 1e9 / 8.0);
    mixl_prom_hist_add(&lv->hidden, d.hidden);
}

void dg_live_counters(dg_live_t *lv, int rank, const mixl_counters_t *c, const dg_reg_times_t *reg)
{
    if (lv == NULL || rank < 0 || rank >= lv->dg->world) return;
    lv->ranks[rank] = *c;
    lv->reg[rank] = *reg;
}

void dg_reg_time_add(dg_reg_times_t *t, int op, int64_t ns)
{
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < DG_REG_BUCKETS && s > reg_le[b]) b++;
    t->count[op][b]++;
    t->sum_s[op] += s;
}

/* Every rank's registry times, summed into one histogram per operation. */
static void render_registry(dg_live_t *lv, mixl_prom_buf_t *b)
{
    static const char *const ops[DG_REG_OPS] = {"publish", "fetch"};
    const char *backend = lv->dg->cfg->registry.backend == MIXL_REG_ETCD ? "etcd" : "mpi";
    uint64_t counts[DG_REG_BUCKETS + 1];
    mixl_prom_family(b, "mixl_registry_operation_seconds", "histogram",
                     "metadata registry operations of every rank at set-up");
    for (int op = 0; op < DG_REG_OPS; op++) {
        mixl_prom_hist_t h = {.n = DG_REG_BUCKETS, .le = reg_le, .counts = counts};
        memset(counts, 0, sizeof(counts));
        for (int r = 0; r < lv->dg->world; r++) {
            for (int k = 0; k <= DG_REG_BUCKETS; k++) {
                counts[k] += lv->reg[r].count[op][k];
                h.count += lv->reg[r].count[op][k];
            }
            h.sum += lv->reg[r].sum_s[op];
        }
        mixl_prom_label_t l[] = {{"op", ops[op]}, {"backend", backend}};
        mixl_prom_hist_write(b, "mixl_registry_operation_seconds", l, 2, &h);
    }
}

static const char *const role_names[] = {"router", "prefill", "decode"};

static void render(dg_live_t *lv, int finished, const uint64_t *dec_free, size_t inflight,
                   size_t queued)
{
    const mixl_dg_t *dg = lv->dg;
    const mixl_run_config_t *cfg = dg->cfg;
    mixl_prom_buf_t *b = &lv->buf;
    char v1[32], v2[32];

    mixl_prom_buf_reset(b);
    static const char *const gpu_paths[] = {"auto", "staged", "device_win"};
    mixl_prom_label_t info[] = {
        {"version", MIXL_VERSION_STRING},
        {"run", cfg->run.name},
        {"model", dg->plan.model.name},
        {"mode", cfg->transfer.mode == MIXL_MODE_PULL ? "pull" : "push"},
        {"backend", lv->backends},
        {"osc", lv->osc},
        {"gpu_path", gpu_paths[cfg->data_plane.gpu_path]},
        {"host_memory", lv->host_memory},
        {"registry", cfg->registry.backend == MIXL_REG_ETCD ? "etcd" : "mpi"},
        {"data_path", lv->path_report},
    };
    mixl_prom_family(b, "mixl_info", "gauge", "MIXL build and the run's data path");
    mixl_prom_sample(b, "mixl_info", info, NLE(info), 1);

    mixl_prom_family(b, "mixl_run_finished", "gauge", "1 once every request of the run ended");
    mixl_prom_sample(b, "mixl_run_finished", NULL, 0, finished ? 1 : 0);
    mixl_prom_family(b, "mixl_run_requests", "gauge", "requests the run submits in all");
    mixl_prom_sample(b, "mixl_run_requests", NULL, 0, (double)cfg->workload.requests);
    mixl_prom_family(b, "mixl_requests_in_flight", "gauge",
                     "requests handed to prefill and decode that have not ended");
    mixl_prom_sample(b, "mixl_requests_in_flight", NULL, 0, (double)inflight);
    mixl_prom_family(b, "mixl_requests_queued", "gauge",
                     "requests waiting at the router for decode blocks or a prefill slot");
    mixl_prom_sample(b, "mixl_requests_queued", NULL, 0, (double)queued);

    mixl_prom_family(b, "mixl_requests_total", "counter", "requests that ended, by outcome");
    mixl_prom_label_t ok = {"status", "ok"}, failed = {"status", "failed"};
    mixl_prom_sample(b, "mixl_requests_total", &ok, 1, (double)lv->ok);
    mixl_prom_sample(b, "mixl_requests_total", &failed, 1, (double)lv->failed);

    mixl_prom_family(b, "mixl_transfer_errors_total", "counter",
                     "requests that failed, by reason (a MIXL status)");
    for (int i = 0; i < MAX_REASON; i++) {
        if (lv->errors[i] == 0) continue;
        char reason[48];
        mixl_prom_label_t l = {"reason", i ? mixl_dg_reason(-i, reason, sizeof(reason)) : "other"};
        mixl_prom_sample(b, "mixl_transfer_errors_total", &l, 1, (double)lv->errors[i]);
    }

    mixl_prom_family(b, "mixl_transfer_bytes_total", "counter",
                     "KV bytes moved for ended requests, by decode instance");
    for (int j = 0; j < dg->plan.decode_instances; j++) {
        snprintf(v1, sizeof(v1), "%d", j);
        mixl_prom_label_t l = {"decode_instance", v1};
        mixl_prom_sample(b, "mixl_transfer_bytes_total", &l, 1, (double)lv->bytes_by_decode[j]);
    }

    /* The per-request histograms: one row each, name, help and the histogram. */
    const struct {
        const char *name, *help;
        const mixl_prom_hist_t *h;
    } hists[] = {
        {"mixl_transfer_latency_seconds",
         "per delivered request: mean time from post to completion of its transfers", &lv->lat},
        {"mixl_transfer_bandwidth_bytes_per_second",
         "per delivered request: bytes over the time its transfers were in flight", &lv->bw},
        {"mixl_ttft_seconds", "per delivered request: arrival to first token", &lv->ttft},
        {"mixl_queue_wait_seconds", "per delivered request: arrival to decode blocks allocated",
         &lv->queue},
        {"mixl_hidden_behind_compute_ratio",
         "per delivered request: share of its transfer span overlapped by prefill", &lv->hidden},
    };
    for (size_t i = 0; i < sizeof(hists) / sizeof(hists[0]); i++) {
        mixl_prom_family(b, hists[i].name, "histogram", hists[i].help);
        mixl_prom_hist_write(b, hists[i].name, NULL, 0, hists[i].h);
    }

    mixl_prom_family(b, "mixl_kv_blocks_in_use", "gauge",
                     "KV blocks held by requests, per decode instance");
    for (int j = 0; j < dg->plan.decode_instances; j++) {
        snprintf(v1, sizeof(v1), "%d", j);
        mixl_prom_label_t l = {"decode_instance", v1};
        mixl_prom_sample(b, "mixl_kv_blocks_in_use", &l, 1,
                         dec_free ? (double)(dg->plan.pool_blocks - dec_free[j]) : 0);
    }

    /* The agents' own counters (mixl_agent_stats), summed per role and instance. */
    static const struct {
        const char *name, *help;
        size_t off;
    } agent[] = {
        {"mixl_agent_transfers_total", "transfers the agents posted",
         offsetof(mixl_counters_t, posts)},
        {"mixl_agent_transfer_errors_total", "agent transfers that ended in an error",
         offsetof(mixl_counters_t, errors)},
        {"mixl_agent_transfer_bytes_total", "bytes of the agents' completed transfers",
         offsetof(mixl_counters_t, bytes)},
    };
    for (size_t k = 0; k < NLE(agent); k++) {
        mixl_prom_family(b, agent[k].name, "counter", agent[k].help);
        for (int role = MIXL_ROLE_PREFILL; role <= MIXL_ROLE_DECODE; role++) {
            int ninst = role == MIXL_ROLE_PREFILL ? dg->plan.prefill_instances
                                                  : dg->plan.decode_instances;
            for (int inst = 0; inst < ninst; inst++) {
                uint64_t sum = 0;
                for (int r = 1; r < dg->world; r++) {
                    mixl_dg_rank_t who = mixl_dg_rank_of(&dg->plan, r);
                    if ((int)who.role == role && who.inst == inst)
                        sum += *(const uint64_t *)((const char *)&lv->ranks[r] + agent[k].off);
                }
                snprintf(v1, sizeof(v1), "%d", inst);
                mixl_prom_label_t l[] = {{"role", role_names[role]}, {"role_instance", v1}};
                mixl_prom_sample(b, agent[k].name, l, 2, (double)sum);
            }
        }
    }
    render_registry(lv, b);
    mixl_prom_family(b, "mixl_notifications_total", "counter",
                     "notifications the agents sent and received, per role");
    for (int role = MIXL_ROLE_PREFILL; role <= MIXL_ROLE_DECODE; role++) {
        uint64_t sent = 0, recv = 0;
        for (int r = 1; r < dg->world; r++) {
            if ((int)mixl_dg_rank_of(&dg->plan, r).role != role) continue;
            sent += lv->ranks[r].notif_sent;
            recv += lv->ranks[r].notif_received;
        }
        snprintf(v1, sizeof(v1), "sent");
        snprintf(v2, sizeof(v2), "received");
        mixl_prom_label_t ls[] = {{"role", role_names[role]}, {"direction", v1}};
        mixl_prom_label_t lr[] = {{"role", role_names[role]}, {"direction", v2}};
        mixl_prom_sample(b, "mixl_notifications_total", ls, 2, (double)sent);
        mixl_prom_sample(b, "mixl_notifications_total", lr, 2, (double)recv);
    }
}

void dg_live_tick(dg_live_t *lv, int64_t now_ns, int finished, const uint64_t *dec_free,
                  size_t inflight, size_t queued)
{
    if (lv == NULL || (!finished && now_ns < lv->next_ns)) return;
    lv->next_ns = now_ns + lv->refresh_ns;
    render(lv, finished, dec_free, inflight, queued);
    if (lv->buf.oom) return; /* keep serving the previous, complete text */
    uint64_t gen = 0;
    if (mixl_prom_server_publish(lv->srv, lv->buf.buf, lv->buf.len, &gen) == MIXL_OK && finished)
        lv->final_gen = gen;
}

void dg_live_final_registry(dg_live_t *lv, const dg_reg_times_t *all)
{
    if (lv == NULL || all == NULL || lv->final_gen == 0) return;
    for (int r = 0; r < lv->dg->world; r++) lv->reg[r] = all[r];
    /* Nothing is in flight any more: every decode block is free again. */
    render(lv, 1, NULL, 0, 0);
    if (lv->buf.oom) return;
    uint64_t gen = 0;
    if (mixl_prom_server_publish(lv->srv, lv->buf.buf, lv->buf.len, &gen) == MIXL_OK)
        lv->final_gen = gen;
}

void dg_live_linger(dg_live_t *lv, FILE *out)
{
    if (lv == NULL || lv->final_gen == 0) return;
    uint64_t deadline = mixl_deadline_ns((int)(lv->dg->cfg->metrics.linger_s * 1000.0));
    struct timespec pause = {0, 20000000};
    while (mixl_prom_server_served(lv->srv) < lv->final_gen && mixl_now_ns() < deadline)
        nanosleep(&pause, NULL);
    if (mixl_prom_server_served(lv->srv) >= lv->final_gen)
        fprintf(out, "metrics: the final values were scraped\n");
    else
        fprintf(out, "metrics: no scrape read the final values within metrics.linger_s = %g s\n",
                lv->dg->cfg->metrics.linger_s);
    fflush(out);
}

void dg_live_stop(dg_live_t *lv)
{
    if (lv == NULL) return;
    mixl_prom_server_stop(lv->srv);
    mixl_prom_buf_fini(&lv->buf);
    mixl_prom_hist_fini(&lv->lat);
    mixl_prom_hist_fini(&lv->ttft);
    mixl_prom_hist_fini(&lv->queue);
    mixl_prom_hist_fini(&lv->bw);
    mixl_prom_hist_fini(&lv->hidden);
    free(lv->bytes_by_decode);
    free(lv->ranks);
    free(lv->reg);
    free(lv);
}
