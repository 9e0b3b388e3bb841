/* Derived metrics, the summary table and the HDF5 results file; see results.h. */
#include "disagg/results.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include <mixl/version.h>

#include "config/config.h"
#include "metrics/h5.h"
#include "metrics/stats.h"
#include "metrics/table.h"

enum { T_ARR, T_ALLOC, T_PS, T_PE, T_FB, T_LB, T_NOTIFY, T_FT, T_DE };

typedef mixl_dg_derived_t derived_t;

const char *mixl_dg_reason(int32_t status, char *buf, size_t len)
{
    if (status == 0) {
        snprintf(buf, len, "%s", "");
        return buf;
    }
    const char *n = mixl_status_name((mixl_status_t)status);
    if (strncmp(n, "MIXL_ERR_", 9) == 0) n += 9;
    else if (strncmp(n, "MIXL_", 5) == 0) n += 5;
    size_t i = 0;
    for (; n[i] != '\0' && i + 1 < len; i++) buf[i] = (char)tolower((unsigned char)n[i]);
    if (len > 0) buf[i] = '\0';
    return buf;
}

mixl_dg_derived_t mixl_dg_derive(const mixl_dg_req_t *r)
{
    derived_t d = {0};
    d.ttft_us = r->t[T_FT] > 0 ? (double)(r->t[T_FT] - r->t[T_ARR]) / 1e3 : NAN;
    d.queue_us = (double)(r->t[T_ALLOC] - r->t[T_ARR]) / 1e3;
    d.lat_us = r->xfers > 0 ? (double)r->lat_sum_ns / (double)r->xfers / 1e3 : NAN;
    int64_t span = r->t[T_LB] - r->t[T_FB];
    d.span_us = r->xfers > 0 ? (double)span / 1e3 : NAN;
    d.gbps = r->busy_ns > 0 ? (double)r->bytes * 8.0 / (double)r->busy_ns : NAN;
    if (r->xfers == 0) {
        d.hidden = NAN;
    } else if (span <= 0) {
        d.hidden = r->t[T_LB] <= r->t[T_PE] ? 1.0 : 0.0;
    } else {
        int64_t a = r->t[T_FB] > r->t[T_PS] ? r->t[T_FB] : r->t[T_PS];
        int64_t b = r->t[T_LB] < r->t[T_PE] ? r->t[T_LB] : r->t[T_PE];
        d.hidden = b > a ? (double)(b - a) / (double)span : 0.0;
    }
    return d;
}

static void fmt_bytes(char *buf, size_t len, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(buf, len, "%.2f %s", b, u[i]);
}

static const char *const mode_names[] = {"push", "pull"};

uint64_t mixl_dg_results_print(mixl_dg_results_t *res, const mixl_dg_plan_t *plan,
                               const mixl_run_config_t *cfg, FILE *out)
{
    mixl_samples_t ttft, queue, lat, span, gbps, hidden;
    uint64_t errors = 0, bytes = 0, tokens = 0, bad = 0;
    const mixl_kv_model_t *m = &plan->model;
    char b1[32], b2[32];

    mixl_samples_init(&ttft);
    mixl_samples_init(&queue);
    mixl_samples_init(&lat);
    mixl_samples_init(&span);
    mixl_samples_init(&gbps);
    mixl_samples_init(&hidden);
    for (size_t i = 0; i < res->count; i++) {
        const mixl_dg_req_t *r = &res->req[i];
        derived_t d = mixl_dg_derive(r);
        bytes += r->bytes;
        tokens += r->prompt;
        bad += r->bad_blocks;
        if (r->status != 0) {
            errors++;
            continue;
        }
        mixl_samples_add(&ttft, d.ttft_us);
        mixl_samples_add(&queue, d.queue_us);
        if (!isnan(d.lat_us)) mixl_samples_add(&lat, d.lat_us);
        if (!isnan(d.span_us)) mixl_samples_add(&span, d.span_us);
        if (!isnan(d.gbps)) mixl_samples_add(&gbps, d.gbps);
        if (!isnan(d.hidden)) mixl_samples_add(&hidden, d.hidden * 100.0);
    }
    double wall = (double)(res->end_ns - res->start_ns) / 1e9;
    fmt_bytes(b1, sizeof(b1), (double)mixl_kv_bytes_per_token(m));
    fprintf(out, "\nmixl-run %s: model %s (%d layers, %d KV heads x %d, %s, %s/token), %s mode\n",
            cfg->run.name, m->name, m->layers, m->kv_heads, m->head_dim, m->dtype, b1,
            mode_names[cfg->transfer.mode]);
    fprintf(out,
            "roles: router + %d prefill x TP %d + %d decode x TP %d; %llu blocks of %d tokens per "
            "decode rank\n",
            plan->prefill_instances, plan->prefill_tp, plan->decode_instances, plan->decode_tp,
            (unsigned long long)plan->pool_blocks, m->block_size);
    fprintf(out,
            "requests: %zu, %s %llu, errors %llu (error rate %.3f%%), bad blocks %llu, most "
            "waiting at the router %llu\n",
            res->count, cfg->decode.verify ? "verified" : "delivered (decode.verify off)",
            (unsigned long long)(res->count - errors), (unsigned long long)errors,
            res->count ? 100.0 * (double)errors / (double)res->count : 0.0, (unsigned long long)bad,
            (unsigned long long)res->max_queued);
    fmt_bytes(b2, sizeof(b2), (double)bytes);
    fprintf(out,
            "moved %s (%llu bytes; %llu prompt tokens x %llu bytes/token = %llu) in %.3f s wall, "
            "%.3f Gbps overall\n",
            b2, (unsigned long long)bytes, (unsigned long long)tokens,
            (unsigned long long)mixl_kv_bytes_per_token(m),
            (unsigned long long)(tokens * mixl_kv_bytes_per_token(m)), wall,
            wall > 0 ? (double)bytes * 8.0 / wall / 1e9 : 0.0);
    fputc('\n', out);
    mixl_table_header(out);
    mixl_table_row(out, "ttft", "us", &ttft);
    mixl_table_row(out, "queue_wait", "us", &queue);
    mixl_table_row(out, "transfer_latency", "us", &lat);
    mixl_table_row(out, "transfer_span", "us", &span);
    mixl_table_row(out, "bandwidth", "Gbps", &gbps);
    mixl_table_row(out, "hidden_behind_compute", "%", &hidden);
    if (res->path_report[0] != '\0') fprintf(out, "\ndata path: %s\n", res->path_report);
    if (res->host_memory != NULL) fprintf(out, "host memory: %s\n", res->host_memory);
    if (cfg->registry.backend == MIXL_REG_ETCD)
        fprintf(out, "registry: etcd at %s, namespace %s\n", cfg->registry.endpoints.item[0],
                cfg->registry.ns);
    else
        fprintf(out, "registry: embedded (rank 0), namespace %s\n", cfg->registry.ns);
    mixl_samples_fini(&ttft);
    mixl_samples_fini(&queue);
    mixl_samples_fini(&lat);
    mixl_samples_fini(&span);
    mixl_samples_fini(&gbps);
    mixl_samples_fini(&hidden);
    return errors;
}

/* A per-request column as f64 microseconds relative to the start. */
static mixl_status_t write_time(mixl_h5_t *h, const mixl_dg_results_t *res, double *buf, int slot,
                                const char *name)
{
    char path[128];
    for (size_t i = 0; i < res->count; i++) {
        int64_t t = res->req[i].t[slot];
        buf[i] = t > 0 ? (double)(t - res->start_ns) / 1e3 : NAN;
    }
    snprintf(path, sizeof(path), "/requests/%s", name);
    return mixl_h5_write_f64(h, path, buf, res->count, "us since start");
}

static mixl_status_t write_summary_attrs(mixl_h5_t *h, const char *name, mixl_samples_t *s)
{
    mixl_summary_t r = mixl_samples_summary(s);
    char key[96];
    const struct {
        const char *suffix;
        double v;
    } vals[] = {{"mean", r.mean}, {"p50", r.p50}, {"p90", r.p90}, {"p99", r.p99}, {"max", r.max}};
    snprintf(key, sizeof(key), "%s_count", name);
    mixl_status_t st = mixl_h5_attr_u64(h, "/summary", key, (uint64_t)r.count);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]) && st == MIXL_OK; i++) {
        snprintf(key, sizeof(key), "%s_%s", name, vals[i].suffix);
        st = mixl_h5_attr_f64(h, "/summary", key, vals[i].v);
    }
    return st;
}

static mixl_status_t write_hist(mixl_h5_t *h, const char *name, const double *v, size_t n)
{
    mixl_hist_t hist;
    char path[128];
    mixl_status_t st = mixl_hist_init(&hist, 1.0, 1e8, 40);
    if (st != MIXL_OK) return st;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) mixl_hist_add(&hist, v[i]);
    snprintf(path, sizeof(path), "/histograms/%s", name);
    st = mixl_h5_write_u64(h, path, hist.counts, hist.nbins + 2, "requests");
    if (st == MIXL_OK) st = mixl_h5_attr_f64v(h, path, "bin_edges_us", hist.edges, hist.nbins + 1);
    if (st == MIXL_OK)
        st =
            mixl_h5_attr_str(h, path, "layout", "[underflow, bins between bin_edges_us, overflow]");
    mixl_hist_fini(&hist);
    return st;
}

mixl_status_t mixl_dg_results_write(mixl_dg_results_t *res, const mixl_dg_plan_t *plan,
                                    const mixl_run_config_t *cfg, int world, char *err,
                                    size_t err_len)
{
    mixl_h5_t *h;
    size_t n = res->count;
    mixl_status_t st = mixl_h5_create(cfg->run.output, &h, err, err_len);
    if (st != MIXL_OK) return st;

    double *f = calloc(n ? n : 1, sizeof(double));
    double *ttft = calloc(n ? n : 1, sizeof(double));
    double *lat = calloc(n ? n : 1, sizeof(double));
    uint64_t *u = calloc(n ? n : 1, sizeof(uint64_t));
    int32_t *i32 = calloc(n ? n : 1, sizeof(int32_t));
    if (!f || !ttft || !lat || !u || !i32) {
        st = MIXL_ERR_NO_MEMORY;
        goto out;
    }

    /* Root attributes: what ran, with what, where. */
    char *yaml = mixl_cfg_to_string(mixl_run_config_schema(), cfg);
    char mpi_ver[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int mpi_len = 0;
    MPI_Get_library_version(mpi_ver, &mpi_len);
    mpi_ver[strcspn(mpi_ver, "\n")] = '\0';
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    mixl_h5_attr_str(h, "/", "config", yaml ? yaml : "");
    free(yaml);
    mixl_h5_attr_str(h, "/", "run_name", cfg->run.name);
    mixl_h5_attr_str(h, "/", "mixl_version", MIXL_VERSION_STRING);
    mixl_h5_attr_str(h, "/", "mpi_library_version", mpi_ver);
    mixl_h5_attr_str(h, "/", "hdf5_version", mixl_h5_library_version());
    mixl_h5_attr_str(h, "/", "router_host", host);
    mixl_h5_attr_str(h, "/", "finished_utc", when);
    mixl_h5_attr_str(h, "/", "data_path", res->path_report);
    mixl_h5_attr_str(h, "/", "host_memory", res->host_memory != NULL ? res->host_memory : "");
    mixl_h5_attr_str(h, "/", "registry", cfg->registry.backend == MIXL_REG_ETCD ? "etcd" : "mpi");
    mixl_h5_attr_str(h, "/", "model", plan->model.name);
    mixl_h5_attr_u64(h, "/", "model_layers", (uint64_t)plan->model.layers);
    mixl_h5_attr_u64(h, "/", "model_kv_heads", (uint64_t)plan->model.kv_heads);
    mixl_h5_attr_u64(h, "/", "model_head_dim", (uint64_t)plan->model.head_dim);
    mixl_h5_attr_str(h, "/", "model_dtype", plan->model.dtype);
    mixl_h5_attr_u64(h, "/", "block_size", (uint64_t)plan->model.block_size);
    mixl_h5_attr_u64(h, "/", "prefill_tp", (uint64_t)plan->prefill_tp);
    mixl_h5_attr_u64(h, "/", "decode_tp", (uint64_t)plan->decode_tp);
    mixl_h5_attr_str(h, "/", "transfer_mode", mode_names[cfg->transfer.mode]);
    mixl_h5_attr_u64(h, "/", "world_size", (uint64_t)world);
    mixl_h5_attr_u64(h, "/", "kv_bytes_per_token", res->bytes_per_token);

    mixl_h5_group(h, "/requests");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].id;
    mixl_h5_write_u64(h, "/requests/id", u, n, NULL);
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].prompt;
    mixl_h5_write_u64(h, "/requests/prompt_tokens", u, n, "tokens");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].out_tokens;
    mixl_h5_write_u64(h, "/requests/output_tokens", u, n, "tokens");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].blocks;
    mixl_h5_write_u64(h, "/requests/blocks", u, n, "blocks");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].runs;
    mixl_h5_write_u64(h, "/requests/block_runs", u, n, "runs");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].bytes;
    mixl_h5_write_u64(h, "/requests/bytes", u, n, "bytes");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].ops;
    mixl_h5_write_u64(h, "/requests/rma_ops", u, n, "operations");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].xfers;
    mixl_h5_write_u64(h, "/requests/transfers", u, n, "posts");
    for (size_t i = 0; i < n; i++) u[i] = res->req[i].bad_blocks;
    mixl_h5_write_u64(h, "/requests/bad_blocks", u, n, "blocks");
    for (size_t i = 0; i < n; i++) i32[i] = res->req[i].status;
    mixl_h5_write_i32(h, "/requests/status", i32, n, "mixl_status_t (0 = verified)");
    for (size_t i = 0; i < n; i++) i32[i] = res->req[i].prefill_inst;
    mixl_h5_write_i32(h, "/requests/prefill_instance", i32, n, NULL);
    for (size_t i = 0; i < n; i++) i32[i] = res->req[i].decode_inst;
    mixl_h5_write_i32(h, "/requests/decode_instance", i32, n, NULL);

    static const char *const tnames[MIXL_DG_T_COUNT] = {
        "arrival_us",   "alloc_us",  "prefill_start_us", "prefill_end_us", "first_byte_us",
        "last_byte_us", "notify_us", "first_token_us",   "decode_end_us"};
    for (int s = 0; s < MIXL_DG_T_COUNT; s++) write_time(h, res, f, s, tnames[s]);

    mixl_samples_t s_ttft, s_lat, s_gbps, s_hidden, s_queue, s_span;
    mixl_samples_init(&s_ttft);
    mixl_samples_init(&s_lat);
    mixl_samples_init(&s_gbps);
    mixl_samples_init(&s_hidden);
    mixl_samples_init(&s_queue);
    mixl_samples_init(&s_span);
    uint64_t errors = 0, bytes = 0;
    derived_t *d = calloc(n ? n : 1, sizeof(*d));
    if (d == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        d[i] = mixl_dg_derive(&res->req[i]);
        bytes += res->req[i].bytes;
        ttft[i] = d[i].ttft_us;
        lat[i] = d[i].lat_us;
        if (res->req[i].status != 0) {
            errors++;
            continue;
        }
        if (!isnan(d[i].ttft_us)) mixl_samples_add(&s_ttft, d[i].ttft_us);
        if (!isnan(d[i].lat_us)) mixl_samples_add(&s_lat, d[i].lat_us);
        if (!isnan(d[i].gbps)) mixl_samples_add(&s_gbps, d[i].gbps);
        if (!isnan(d[i].hidden)) mixl_samples_add(&s_hidden, d[i].hidden);
        if (!isnan(d[i].span_us)) mixl_samples_add(&s_span, d[i].span_us);
        mixl_samples_add(&s_queue, d[i].queue_us);
    }
    mixl_h5_write_f64(h, "/requests/ttft_us", ttft, n, "us");
    mixl_h5_write_f64(h, "/requests/transfer_latency_us", lat, n, "us");
    for (size_t i = 0; i < n; i++) f[i] = d[i].queue_us;
    mixl_h5_write_f64(h, "/requests/queue_us", f, n, "us");
    for (size_t i = 0; i < n; i++) f[i] = d[i].span_us;
    mixl_h5_write_f64(h, "/requests/transfer_span_us", f, n, "us");
    for (size_t i = 0; i < n; i++) f[i] = d[i].gbps;
    mixl_h5_write_f64(h, "/requests/bandwidth_gbps", f, n, "Gbps");
    for (size_t i = 0; i < n; i++) f[i] = d[i].hidden;
    mixl_h5_write_f64(h, "/requests/hidden_share", f, n, "fraction 0..1");
    free(d);

    mixl_h5_group(h, "/summary");
    mixl_h5_attr_u64(h, "/summary", "requests", n);
    mixl_h5_attr_u64(h, "/summary", "errors", errors);
    mixl_h5_attr_f64(h, "/summary", "error_rate", n ? (double)errors / (double)n : 0.0);
    mixl_h5_attr_u64(h, "/summary", "bytes", bytes);
    double wall = (double)(res->end_ns - res->start_ns) / 1e9;
    mixl_h5_attr_f64(h, "/summary", "wall_s", wall);
    mixl_h5_attr_f64(h, "/summary", "aggregate_gbps",
                     wall > 0 ? (double)bytes * 8 / wall / 1e9 : 0);
    mixl_h5_attr_u64(h, "/summary", "max_queued", res->max_queued);
    write_summary_attrs(h, "ttft_us", &s_ttft);
    write_summary_attrs(h, "transfer_latency_us", &s_lat);
    write_summary_attrs(h, "bandwidth_gbps", &s_gbps);
    write_summary_attrs(h, "hidden_share", &s_hidden);
    write_summary_attrs(h, "queue_us", &s_queue);
    write_summary_attrs(h, "transfer_span_us", &s_span);
    mixl_samples_fini(&s_ttft);
    mixl_samples_fini(&s_lat);
    mixl_samples_fini(&s_gbps);
    mixl_samples_fini(&s_hidden);
    mixl_samples_fini(&s_queue);
    mixl_samples_fini(&s_span);

    mixl_h5_group(h, "/histograms");
    write_hist(h, "ttft_us", ttft, n);
    write_hist(h, "transfer_latency_us", lat, n);
out:
    free(f);
    free(ttft);
    free(lat);
    free(u);
    free(i32);
    {
        mixl_status_t cst = mixl_h5_close(h, err, err_len);
        if (st == MIXL_OK)
            st = cst;
        else if (cst == MIXL_OK)
            snprintf(err, err_len, "%s: out of memory while writing results", cfg->run.output);
    }
    return st;
}
