/*
 * Live metrics of a mixl-run job, kept by the router and served to
 * Prometheus while the run goes on (metrics.port). Every figure is
 * aggregated over all ranks: request figures come from the completion
 * reports the router already gathers, the agents' counters ride on those
 * reports (dg_send stamps them). The router refreshes the served text at
 * least once a second; serving happens on libmicrohttpd's thread, so a slow
 * scraper never holds up the router.
 */
#ifndef MIXL_DISAGG_LIVE_H
#define MIXL_DISAGG_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/stats.h>

#include "disagg/dg_int.h"
#include "disagg/results.h"

typedef struct dg_live dg_live_t;

/*
 * Start serving when cfg->metrics.port is set (*lv_p stays NULL when it is
 * not). Rank 0 only; err names the address on failure.
 */
mixl_status_t dg_live_start(const mixl_dg_t *dg, dg_live_t **lv_p, char *err, size_t err_len);

/* The run's data path, known once the agents started (for mixl_info). */
void dg_live_set_info(dg_live_t *lv, const char *path_report, const char *backends,
                      const char *host_memory);

/* A request finished (delivered or failed): its figures go into the counters and histograms. */
void dg_live_request(dg_live_t *lv, const mixl_dg_req_t *r);

/* The latest agent counters and registry times reported by rank. */
void dg_live_counters(dg_live_t *lv, int rank, const mixl_counters_t *c, const dg_reg_times_t *reg);

/* Count one registry operation (0 publish, 1 fetch) of this rank that took ns. */
void dg_reg_time_add(dg_reg_times_t *t, int op, int64_t ns);

/*
 * Refresh the served text when metrics.refresh_ms has passed, or now when
 * finished is set (that publication says mixl_run_finished 1). dec_free[j]:
 * blocks free in decode instance j (of plan.pool_blocks).
 */
void dg_live_tick(dg_live_t *lv, int64_t now_ns, int finished, const uint64_t *dec_free,
                  size_t inflight, size_t queued);

/*
 * After the run: keep serving until a scrape has read the final values or
 * metrics.linger_s passed; says which on out.
 */
void dg_live_linger(dg_live_t *lv, FILE *out);
/*
 * Router, after the end-of-run gather: every rank's registry times (world
 * entries), including ranks that served no request and so never reported,
 * then the final exposition again with them.
 */
void dg_live_final_registry(dg_live_t *lv, const dg_reg_times_t *all);

void dg_live_stop(dg_live_t *lv);

#endif /* MIXL_DISAGG_LIVE_H */
