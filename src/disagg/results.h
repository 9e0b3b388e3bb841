/*
 * Results of a mixl-run job, gathered on the router: one timeline and set of
 * transfer figures per request, the derived metrics (TTFT, transfer
 * latency, bandwidth, share of transfer hidden behind compute), a summary
 * table with p50/p90/p99, and the HDF5 file.
 *
 * Definitions (times on the router's clock, aligned at start-up):
 *   ttft_us              first_token - arrival
 *   queue_us             alloc - arrival (back-pressure shows here)
 *   transfer_latency_us  mean over the request's layer transfers of
 *                        (completion - post); per layer and initiator rank
 *   transfer_span_us     last_byte - first_byte
 *   bandwidth_gbps       bytes x 8 / the time the request's transfers were
 *                        in flight (union of their intervals; for TP, the
 *                        busiest initiator rank)
 *   hidden_share         part of [first_byte, last_byte] that lies inside
 *                        [prefill_start, prefill_end], i.e. transfer time
 *                        overlapped by compute (1 = fully hidden)
 */
#ifndef MIXL_DISAGG_RESULTS_H
#define MIXL_DISAGG_RESULTS_H

#include <stdint.h>
#include <stdio.h>

#include "config/run_config.h"
#include "disagg/plan.h"

#define MIXL_DG_T_COUNT 9

typedef struct {
    uint64_t id, prompt, out_tokens, blocks, runs;
    int32_t prefill_inst, decode_inst;
    int32_t status;             /* mixl_status_t; 0 = delivered and verified */
    int64_t t[MIXL_DG_T_COUNT]; /* arrival, alloc, prefill start/end, first/last byte, notify,
                                   first token, decode end (ns, router clock) */
    uint64_t bytes, ops, xfers, busy_ns, lat_sum_ns, bad_blocks;
    int reports; /* completion reports received */
} mixl_dg_req_t;

/* One rank's resident memory, gathered on the router at the end of a run (or sweep point). */
typedef struct {
    int32_t rank, inst;
    char role[16];
    uint64_t requests;      /* requests this rank finished */
    uint64_t mark_requests; /* when the mark was taken */
    int64_t mark_kib;       /* resident KiB after mark_requests requests; -1 when it finished fewer */
    int64_t end_kib;        /* resident KiB at the end; -1 when unknown */
} mixl_dg_rss_t;

typedef struct mixl_dg_writer mixl_dg_writer_t;

/* One point of a sweep: its parameters, written as attributes of its group /point_<index>. */
typedef struct {
    size_t index, count;
    int nkeys, zip;
    const char *const *keys;
    const char *const *values;
    uint64_t longest_prompt; /* over every point of the sweep: what prefill buffers are sized for */
} mixl_dg_point_t;

typedef struct mixl_dg_results {
    size_t count;
    mixl_dg_req_t *req;
    int64_t start_ns, end_ns;
    uint64_t bytes_per_token;
    uint64_t max_queued; /* most requests waiting for decode blocks at once */
    char path_report[512];
    char path_choice[512]; /* data-path policy, its reason, and peers per backend over all ranks */
    const char *host_memory; /* where host KV memory came from: "MPI_Win_allocate" or "malloc" */
    const char *clock_sync;  /* how the ranks' timelines share the router's time axis */
    mixl_dg_writer_t *writer; /* the results file while the run goes on, or NULL */
    const mixl_dg_point_t *point; /* the sweep point being run, or NULL */
    int setup_reused;             /* the agents, windows and memory of the previous point served */
    char setup_change[64];        /* the key (or "longest prompt") that forced a new set-up */
    uint64_t agents_created;      /* agents created in the job so far, over every rank */
    mixl_dg_rss_t *rss;           /* every rank's resident memory (rank order), or NULL */
    int nrss;
} mixl_dg_results_t;

/* A request's derived metrics (NaN where undefined, e.g. no transfer); see the definitions above. */
typedef struct {
    double ttft_us, queue_us, lat_us, span_us, gbps, hidden;
} mixl_dg_derived_t;

mixl_dg_derived_t mixl_dg_derive(const mixl_dg_req_t *r);

/* Short reason of a request's outcome, for labels and the results file: "" when it succeeded,
 * else the status's name in lower case without its prefix ("timed_out", "checksum"). */
const char *mixl_dg_reason(int32_t status, char *buf, size_t len);

/* Print the summary table (and totals) to out. Returns the number of failed requests. */
uint64_t mixl_dg_results_print(mixl_dg_results_t *res, const mixl_dg_plan_t *plan,
                               const mixl_run_config_t *cfg, FILE *out);

/*
 * The HDF5 file named by run.output, written while the run goes on: open it
 * before the requests start (root attributes, empty extendable /requests
 * columns, finished = 0), hand over each ended request, tick from the loop;
 * completed rows are written and the file flushed every run.flush_requests
 * requests or run.flush_interval_ms, so a job killed at any point leaves a
 * readable file holding every request completed up to the last flush.
 * A write failure is logged once and stops further writes; the run goes on
 * and close reports it. err names the file.
 */
mixl_status_t mixl_dg_results_open(mixl_dg_results_t *res, const mixl_dg_plan_t *plan,
                                   const mixl_run_config_t *cfg, int world, char *err,
                                   size_t err_len);
/* Request id ended (delivered or failed); its record in res->req is final. No-op without a file. */
void mixl_dg_results_done(mixl_dg_results_t *res, size_t id);
/* Flush when run.flush_interval_ms passed since the last flush. */
void mixl_dg_results_tick(mixl_dg_results_t *res);
/*
 * Finish the file: with finished, every request rewritten in request order,
 * the summary and histograms, finished = 1; otherwise the pending rows only
 * (finished stays 0). Returns the first write error of the whole run.
 */
mixl_status_t mixl_dg_results_close(mixl_dg_results_t *res, int finished, char *err,
                                    size_t err_len);

#endif /* MIXL_DISAGG_RESULTS_H */
