/* Derived metrics, the summary table and the HDF5 results file; see results.h. */
#include "disagg/results.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
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
#include "util/clock.h"
#include "util/log.h"

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

/*
 * The KV stream: from the first byte any request moved to the last byte of
 * any, the bytes moved in between. The wall time also holds the start
 * before the first transfer and the decoding after the last (64 ms of the
 * 2.2 s of a 32-request Llama-3-8B run across nodes), which are not the
 * data path's. Seconds, 0 when nothing moved.
 */
static double kv_stream_s(const mixl_dg_results_t *res, uint64_t *bytes)
{
    int64_t first = INT64_MAX, last = INT64_MIN;

    *bytes = 0;
    for (size_t i = 0; i < res->count; i++) {
        const mixl_dg_req_t *r = &res->req[i];
        if (r->xfers == 0 || r->t[T_FB] <= 0 || r->t[T_LB] < r->t[T_FB]) continue;
        *bytes += r->bytes;
        if (r->t[T_FB] < first) first = r->t[T_FB];
        if (r->t[T_LB] > last) last = r->t[T_LB];
    }
    return last > first ? (double)(last - first) / 1e9 : 0.0;
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
    uint64_t sbytes;
    double stream = kv_stream_s(res, &sbytes);
    if (stream > 0)
        fprintf(out, "KV stream: %.3f Gbps from the first byte to the last (%.3f s; start-up before "
                "and decoding after it are not in it)\n",
                (double)sbytes * 8.0 / stream / 1e9, stream);
    fputc('\n', out);
    mixl_table_header(out);
    mixl_table_row(out, "ttft", "us", &ttft);
    mixl_table_row(out, "queue_wait", "us", &queue);
    mixl_table_row(out, "transfer_latency", "us", &lat);
    mixl_table_row(out, "transfer_span", "us", &span);
    mixl_table_row(out, "bandwidth", "Gbps", &gbps);
    mixl_table_row(out, "hidden_behind_compute", "%", &hidden);
    if (res->path_report[0] != '\0') fprintf(out, "\ndata path: %s\n", res->path_report);
    if (res->path_choice[0] != '\0') fprintf(out, "data path choice: %s\n", res->path_choice);
    if (res->host_memory != NULL) fprintf(out, "host memory: %s\n", res->host_memory);
    if (res->clock_sync != NULL && res->clock_sync[0] != '\0')
        fprintf(out, "clocks: %s\n", res->clock_sync);
    if (res->nrss > 0) {
        /* One line for every rank: resident memory at the mark and at the end. */
        fprintf(out, "rss (KiB after %llu requests / at the end):",
                (unsigned long long)res->rss[0].mark_requests);
        for (int i = 0; i < res->nrss; i++) {
            const mixl_dg_rss_t *r = &res->rss[i];
            char mark[24] = "-";
            if (r->mark_kib >= 0) snprintf(mark, sizeof(mark), "%lld", (long long)r->mark_kib);
            fprintf(out, "%s rank %d %s", i ? "," : "", (int)r->rank, r->role);
            if (strcmp(r->role, "router") != 0) fprintf(out, "-%d", (int)r->inst);
            fprintf(out, " %s/%lld", mark, (long long)r->end_kib);
        }
        fputc('\n', out);
    }
    if (res->point != NULL && res->point->index > 0)
        fprintf(out, "set-up: %s%s%s (agents created in the job: %llu)\n",
                res->setup_reused ? "reused from the previous point" : "new: ",
                res->setup_reused                          ? ""
                : strchr(res->setup_change, '.') != NULL ? res->setup_change
                                                           : "the longest prompt",
                res->setup_reused                          ? ""
                : strchr(res->setup_change, '.') != NULL ? " changed"
                                                           : " outgrew the prefill layer buffers",
                (unsigned long long)res->agents_created);
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

/*
 * The per-request columns, one row per request: where each value comes from
 * and its units. The same table drives the incremental rows written during
 * the run and the final rewrite in request order.
 */
enum { SRC_U64, SRC_I32, SRC_TIME, SRC_DERIVED, SRC_REASON };

typedef struct {
    const char *name;
    int src;
    size_t off; /* field offset (u64, i32, derived) or timeline slot */
    const char *units;
} col_t;

#define REQ_U64(n, f, u) {n, SRC_U64, offsetof(mixl_dg_req_t, f), u}
#define REQ_I32(n, f, u) {n, SRC_I32, offsetof(mixl_dg_req_t, f), u}
#define TIME(n, slot) {n, SRC_TIME, slot, "us since start"}
#define DERIVED(n, f, u) {n, SRC_DERIVED, offsetof(mixl_dg_derived_t, f), u}

static const col_t cols[] = {
    REQ_U64("id", id, NULL),
    REQ_U64("prompt_tokens", prompt, "tokens"),
    REQ_U64("output_tokens", out_tokens, "tokens"),
    REQ_U64("blocks", blocks, "blocks"),
    REQ_U64("block_runs", runs, "runs"),
    REQ_U64("bytes", bytes, "bytes"),
    REQ_U64("rma_ops", ops, "operations"),
    REQ_U64("transfers", xfers, "posts"),
    REQ_U64("bad_blocks", bad_blocks, "blocks"),
    REQ_I32("status", status, "mixl_status_t (0 = verified)"),
    {"failure_reason", SRC_REASON, 0, "MIXL status name; empty = delivered"},
    REQ_I32("prefill_instance", prefill_inst, NULL),
    REQ_I32("decode_instance", decode_inst, NULL),
    TIME("arrival_us", T_ARR),
    TIME("alloc_us", T_ALLOC),
    TIME("prefill_start_us", T_PS),
    TIME("prefill_end_us", T_PE),
    TIME("first_byte_us", T_FB),
    TIME("last_byte_us", T_LB),
    TIME("notify_us", T_NOTIFY),
    TIME("first_token_us", T_FT),
    TIME("decode_end_us", T_DE),
    DERIVED("ttft_us", ttft_us, "us"),
    DERIVED("transfer_latency_us", lat_us, "us"),
    DERIVED("queue_us", queue_us, "us"),
    DERIVED("transfer_span_us", span_us, "us"),
    DERIVED("bandwidth_gbps", gbps, "Gbps"),
    DERIVED("hidden_share", hidden, "fraction 0..1"),
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

static mixl_h5_type_t col_type(const col_t *c)
{
    switch (c->src) {
    case SRC_U64: return MIXL_H5_U64;
    case SRC_I32: return MIXL_H5_I32;
    case SRC_REASON: return MIXL_H5_STR;
    default: return MIXL_H5_F64;
    }
}

/* Rows written per batch (a flush may take several). */
#define BATCH 4096

struct mixl_dg_writer {
    mixl_h5_t *h;
    char base[64];           /* "" or "/point_N" (sweeps) */
    char path[MIXL_CFG_STR_MAX];
    size_t *pending;         /* completed request ids not yet written */
    size_t npending, cap;
    size_t rows;             /* rows written so far */
    uint8_t *buf;            /* one column of a batch */
    uint64_t interval_ns, next_flush_ns;
    int broken;              /* a write failed: logged once, nothing more is written */
};

static void wpath(const mixl_dg_writer_t *w, char *out, size_t len, const char *rel)
{
    snprintf(out, len, "%s%s", w->base, rel);
}

/* Write rows for ids[0..k) at row offset. */
static mixl_status_t write_rows(mixl_dg_writer_t *w, const mixl_dg_results_t *res,
                                const size_t *ids, size_t first_id, size_t k, size_t offset)
{
    char path[128];
    mixl_status_t st = MIXL_OK;
    for (size_t c = 0; c < NCOLS && st == MIXL_OK; c++) {
        const col_t *col = &cols[c];
        for (size_t i = 0; i < k; i++) {
            const mixl_dg_req_t *r = &res->req[ids ? ids[i] : first_id + i];
            switch (col->src) {
            case SRC_U64:
                memcpy(w->buf + 8 * i, (const char *)r + col->off, 8);
                break;
            case SRC_I32:
                memcpy(w->buf + 4 * i, (const char *)r + col->off, 4);
                break;
            case SRC_TIME: {
                int64_t t = r->t[col->off];
                double v = t > 0 ? (double)(t - res->start_ns) / 1e3 : NAN;
                memcpy(w->buf + 8 * i, &v, 8);
                break;
            }
            case SRC_DERIVED: {
                mixl_dg_derived_t d = mixl_dg_derive(r);
                memcpy(w->buf + 8 * i, (const char *)&d + col->off, 8);
                break;
            }
            case SRC_REASON: {
                char reason[MIXL_H5_STR_LEN];
                mixl_dg_reason(r->status, reason, sizeof(reason));
                memset(w->buf + MIXL_H5_STR_LEN * i, 0, MIXL_H5_STR_LEN);
                memcpy(w->buf + MIXL_H5_STR_LEN * i, reason, strlen(reason));
                break;
            }
            }
        }
        snprintf(path, sizeof(path), "%s/requests/%s", w->base, col->name);
        st = mixl_h5_column_put(w->h, path, col_type(col), offset, w->buf, k);
    }
    return st;
}

/* The first failure is logged here, once; the file is left as it was. */
static void writer_failed(mixl_dg_writer_t *w)
{
    char err[1024] = "write failed";
    if (w->broken) return;
    w->broken = 1;
    mixl_h5_error(w->h, err, sizeof(err));
    mixl_error("results: %s; no more requests are written, the run goes on", err);
}

static void writer_flush(mixl_dg_writer_t *w, const mixl_dg_results_t *res)
{
    char path[128];
    if (w->broken || w->npending == 0) return;
    mixl_status_t st = write_rows(w, res, w->pending, 0, w->npending, w->rows);
    if (st == MIXL_OK) {
        w->rows += w->npending;
        w->npending = 0;
        wpath(w, path, sizeof(path), w->base[0] ? "" : "/");
        st = mixl_h5_attr_u64(w->h, path, "requests_written", w->rows);
    }
    if (st == MIXL_OK) st = mixl_h5_flush(w->h);
    if (st != MIXL_OK) writer_failed(w);
    w->next_flush_ns = mixl_now_ns() + w->interval_ns;
}

mixl_status_t mixl_dg_results_open(mixl_dg_results_t *res, const mixl_dg_plan_t *plan,
                                   const mixl_run_config_t *cfg, int world, char *err,
                                   size_t err_len)
{
    mixl_dg_writer_t *w = calloc(1, sizeof(*w));
    mixl_status_t st;
    char path[128];

    if (w == NULL) return MIXL_ERR_NO_MEMORY;
    snprintf(w->path, sizeof(w->path), "%s", cfg->run.output);
    w->cap = cfg->run.flush_requests < BATCH ? (size_t)cfg->run.flush_requests : BATCH;
    w->pending = calloc(w->cap, sizeof(size_t));
    w->buf = calloc(BATCH, MIXL_H5_STR_LEN);
    w->interval_ns = (uint64_t)cfg->run.flush_interval_ms * 1000000u;
    w->next_flush_ns = mixl_now_ns() + w->interval_ns;
    if (w->pending == NULL || w->buf == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        snprintf(err, err_len, "%s: out of memory for the results writer", cfg->run.output);
        goto err_w;
    }
    const mixl_dg_point_t *pt = res->point;
    if (pt != NULL) snprintf(w->base, sizeof(w->base), "/point_%zu", pt->index);
    if (pt != NULL && pt->index > 0)
        st = mixl_h5_open(cfg->run.output, &w->h, err, err_len);
    else
        st = mixl_h5_create(cfg->run.output, &w->h, err, err_len);
    if (st != MIXL_OK) goto err_w;

    /* What ran, with what, where: on the file, or on the point's group in a sweep. */
    mixl_h5_t *h = w->h;
    const char *obj = pt != NULL ? w->base : "/";
    if (pt != NULL && pt->index == 0) {
        char keys[MIXL_CFG_STR_MAX * 2] = "";
        for (int k = 0; k < pt->nkeys; k++) {
            size_t used = strlen(keys);
            snprintf(keys + used, sizeof(keys) - used, "%s%s", k ? "," : "", pt->keys[k]);
        }
        mixl_h5_attr_u64(h, "/", "finished", 0);
        mixl_h5_attr_str(h, "/", "sweep_keys", keys);
        mixl_h5_attr_str(h, "/", "sweep_mode", pt->zip ? "zip" : "cartesian");
        mixl_h5_attr_u64(h, "/", "sweep_points", pt->count);
        mixl_h5_attr_str(h, "/", "mixl_version", MIXL_VERSION_STRING);
    }
    if (pt != NULL) {
        mixl_h5_group(h, w->base);
        mixl_h5_attr_u64(h, obj, "sweep_point", pt->index);
        mixl_h5_attr_u64(h, obj, "setup_reused", (uint64_t)res->setup_reused);
        mixl_h5_attr_str(h, obj, "setup_change", res->setup_change);
        for (int k = 0; k < pt->nkeys; k++) mixl_h5_attr_str(h, obj, pt->keys[k], pt->values[k]);
    }
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
    /* The run's description: strings, then numbers, each written the same way. */
    const struct {
        const char *name, *value;
    } strs[] = {
        {"config", yaml ? yaml : ""},
        {"run_name", cfg->run.name},
        {"mixl_version", MIXL_VERSION_STRING},
        {"mpi_library_version", mpi_ver},
        {"hdf5_version", mixl_h5_library_version()},
        {"router_host", host},
        {"started_utc", when},
        {"data_path", res->path_report},
        {"data_path_choice", res->path_choice},
        {"host_memory", res->host_memory != NULL ? res->host_memory : ""},
        {"clock_sync", res->clock_sync != NULL ? res->clock_sync : ""},
        {"registry", cfg->registry.backend == MIXL_REG_ETCD ? "etcd" : "mpi"},
        {"model", plan->model.name},
        {"model_dtype", plan->model.dtype},
        {"transfer_mode", mode_names[cfg->transfer.mode]},
        {"rows", "/requests rows are in completion order until the run finishes, then in "
                 "request order (row i = request i)"},
    };
    const struct {
        const char *name;
        uint64_t value;
    } nums[] = {
        {"finished", 0},
        {"requests_written", 0},
        {"model_layers", (uint64_t)plan->model.layers},
        {"model_kv_heads", (uint64_t)plan->model.kv_heads},
        {"model_head_dim", (uint64_t)plan->model.head_dim},
        {"block_size", (uint64_t)plan->model.block_size},
        {"prefill_tp", (uint64_t)plan->prefill_tp},
        {"decode_tp", (uint64_t)plan->decode_tp},
        {"world_size", (uint64_t)world},
        {"agents_created", res->agents_created},
        {"kv_bytes_per_token", mixl_kv_bytes_per_token(&plan->model)},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        mixl_h5_attr_u64(h, obj, nums[i].name, nums[i].value);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        mixl_h5_attr_str(h, obj, strs[i].name, strs[i].value);
    free(yaml);
    wpath(w, path, sizeof(path), "/requests");
    mixl_h5_group(h, path);
    for (size_t c = 0; c < NCOLS; c++) {
        snprintf(path, sizeof(path), "%s/requests/%s", w->base, cols[c].name);
        mixl_h5_column(h, path, col_type(&cols[c]), cols[c].units);
    }
    st = mixl_h5_flush(h);
    if (st == MIXL_OK) st = mixl_h5_error(h, err, err_len);
    if (st != MIXL_OK) {
        mixl_h5_error(h, err, err_len);
        char cerr[16];
        mixl_h5_close(h, cerr, sizeof(cerr));
        goto err_w;
    }
    res->writer = w;
    return MIXL_OK;

err_w:
    free(w->pending);
    free(w->buf);
    free(w);
    return st;
}

void mixl_dg_results_done(mixl_dg_results_t *res, size_t id)
{
    mixl_dg_writer_t *w = res->writer;
    if (w == NULL || w->broken) return;
    w->pending[w->npending++] = id;
    if (w->npending == w->cap) writer_flush(w, res);
}

void mixl_dg_results_tick(mixl_dg_results_t *res)
{
    mixl_dg_writer_t *w = res->writer;
    if (w == NULL || w->npending == 0 || mixl_now_ns() < w->next_flush_ns) return;
    writer_flush(w, res);
}

static mixl_status_t write_summary_attrs(mixl_h5_t *h, const char *obj, const char *name,
                                         mixl_samples_t *s)
{
    mixl_summary_t r = mixl_samples_summary(s);
    char key[96];
    const struct {
        const char *suffix;
        double v;
    } vals[] = {{"mean", r.mean}, {"p50", r.p50}, {"p90", r.p90}, {"p99", r.p99}, {"max", r.max}};
    snprintf(key, sizeof(key), "%s_count", name);
    mixl_status_t st = mixl_h5_attr_u64(h, obj, key, (uint64_t)r.count);
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]) && st == MIXL_OK; i++) {
        snprintf(key, sizeof(key), "%s_%s", name, vals[i].suffix);
        st = mixl_h5_attr_f64(h, obj, key, vals[i].v);
    }
    return st;
}

static mixl_status_t write_hist(mixl_h5_t *h, const char *base, const char *name, const double *v,
                                size_t n)
{
    mixl_hist_t hist;
    char path[128];
    mixl_status_t st = mixl_hist_init(&hist, 1.0, 1e8, 40);
    if (st != MIXL_OK) return st;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) mixl_hist_add(&hist, v[i]);
    snprintf(path, sizeof(path), "%s/histograms/%s", base, name);
    st = mixl_h5_write_u64(h, path, hist.counts, hist.nbins + 2, "requests");
    if (st == MIXL_OK) st = mixl_h5_attr_f64v(h, path, "bin_edges_us", hist.edges, hist.nbins + 1);
    if (st == MIXL_OK)
        st =
            mixl_h5_attr_str(h, path, "layout", "[underflow, bins between bin_edges_us, overflow]");
    mixl_hist_fini(&hist);
    return st;
}

/* Every rank's resident memory as one table, row i = rank i. */
static mixl_status_t write_rss(mixl_dg_writer_t *w, const mixl_dg_results_t *res)
{
#define RSS(n, t, f) {n, t, offsetof(mixl_dg_rss_t, f), sizeof(((mixl_dg_rss_t *)0)->f)}
    static const mixl_h5_member_t members[] = {
        RSS("rank", MIXL_H5_I32, rank),
        RSS("role", MIXL_H5_STR, role),
        RSS("instance", MIXL_H5_I32, inst),
        RSS("requests", MIXL_H5_U64, requests),
        RSS("mark_requests", MIXL_H5_U64, mark_requests),
        RSS("mark_kib", MIXL_H5_I64, mark_kib),
        RSS("end_kib", MIXL_H5_I64, end_kib),
    };
#undef RSS
    char path[96];
    if (res->nrss == 0) return MIXL_OK;
    wpath(w, path, sizeof(path), "/rss");
    mixl_status_t st = mixl_h5_table(w->h, path, members, sizeof(members) / sizeof(members[0]),
                                     sizeof(mixl_dg_rss_t), res->rss, (size_t)res->nrss);
    if (st == MIXL_OK)
        st = mixl_h5_attr_str(w->h, path, "units",
                              "KiB resident (mark_kib after mark_requests requests, -1 when the "
                              "rank finished fewer; end_kib at the end)");
    return st;
}

/* Summary attributes and histograms over the delivered requests. */
static mixl_status_t write_summary(mixl_dg_writer_t *w, const mixl_dg_results_t *res)
{
    mixl_h5_t *h = w->h;
    size_t n = res->count;
    char sum[96], hist[96];
    mixl_samples_t s[6];
    static const char *const names[6] = {"ttft_us",      "transfer_latency_us", "bandwidth_gbps",
                                         "hidden_share", "queue_us",            "transfer_span_us"};
    double *ttft = calloc(n ? n : 1, sizeof(double));
    double *lat = calloc(n ? n : 1, sizeof(double));
    uint64_t errors = 0, bytes = 0;
    mixl_status_t st = MIXL_OK;

    if (ttft == NULL || lat == NULL) {
        free(ttft);
        free(lat);
        return MIXL_ERR_NO_MEMORY;
    }
    for (int k = 0; k < 6; k++) mixl_samples_init(&s[k]);
    for (size_t i = 0; i < n; i++) {
        mixl_dg_derived_t d = mixl_dg_derive(&res->req[i]);
        bytes += res->req[i].bytes;
        ttft[i] = d.ttft_us;
        lat[i] = d.lat_us;
        if (res->req[i].status != 0) {
            errors++;
            continue;
        }
        const double v[6] = {d.ttft_us, d.lat_us, d.gbps, d.hidden, d.queue_us, d.span_us};
        for (int k = 0; k < 6; k++)
            if (!isnan(v[k])) mixl_samples_add(&s[k], v[k]);
    }
    wpath(w, sum, sizeof(sum), "/summary");
    wpath(w, hist, sizeof(hist), "/histograms");
    mixl_h5_group(h, sum);
    mixl_h5_attr_u64(h, sum, "requests", n);
    mixl_h5_attr_u64(h, sum, "errors", errors);
    mixl_h5_attr_f64(h, sum, "error_rate", n ? (double)errors / (double)n : 0.0);
    mixl_h5_attr_u64(h, sum, "bytes", bytes);
    double wall = (double)(res->end_ns - res->start_ns) / 1e9;
    mixl_h5_attr_f64(h, sum, "wall_s", wall);
    mixl_h5_attr_f64(h, sum, "aggregate_gbps", wall > 0 ? (double)bytes * 8 / wall / 1e9 : 0);
    uint64_t sbytes;
    double stream = kv_stream_s(res, &sbytes);
    mixl_h5_attr_f64(h, sum, "stream_s", stream);
    mixl_h5_attr_f64(h, sum, "stream_gbps", stream > 0 ? (double)sbytes * 8 / stream / 1e9 : 0);
    mixl_h5_attr_u64(h, sum, "max_queued", res->max_queued);
    for (int k = 0; k < 6; k++) write_summary_attrs(h, sum, names[k], &s[k]);
    for (int k = 0; k < 6; k++) mixl_samples_fini(&s[k]);
    mixl_h5_group(h, hist);
    write_hist(h, w->base, "ttft_us", ttft, n);
    write_hist(h, w->base, "transfer_latency_us", lat, n);
    free(ttft);
    free(lat);
    return st;
}

mixl_status_t mixl_dg_results_close(mixl_dg_results_t *res, int finished, char *err,
                                    size_t err_len)
{
    mixl_dg_writer_t *w = res->writer;
    mixl_status_t st = MIXL_OK;
    char path[128];

    if (w == NULL) return MIXL_OK;
    res->writer = NULL;
    if (!w->broken && finished) {
        /* Every request, in request order. */
        for (size_t i = 0; i < res->count && st == MIXL_OK; i += BATCH) {
            size_t k = res->count - i < BATCH ? res->count - i : BATCH;
            st = write_rows(w, res, NULL, i, k, i);
        }
        if (st == MIXL_OK) st = write_summary(w, res);
        if (st == MIXL_OK) st = write_rss(w, res);
        wpath(w, path, sizeof(path), w->base[0] ? "" : "/");
        char when[64];
        time_t now = time(NULL);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        mixl_h5_attr_str(w->h, path, "finished_utc", when);
        mixl_h5_attr_u64(w->h, path, "requests_written", res->count);
        mixl_h5_attr_u64(w->h, path, "finished", 1);
        if (res->point != NULL && res->point->index + 1 == res->point->count)
            mixl_h5_attr_u64(w->h, "/", "finished", 1); /* the whole sweep ended */
    } else if (!w->broken) {
        writer_flush(w, res);
    }
    mixl_status_t cst = mixl_h5_close(w->h, err, err_len);
    if (st == MIXL_OK) st = cst;
    if (st != MIXL_OK && err[0] == '\0') snprintf(err, err_len, "%s: writing results failed", w->path);
    free(w->pending);
    free(w->buf);
    free(w);
    return st;
}
