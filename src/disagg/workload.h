/*
 * The workload: when each request arrives and how long its prompt is.
 * Generated once on the router from the config (seeded, so a run is
 * reproducible); prompt-length files are read here, with errors naming the
 * file and line.
 */
#ifndef MIXL_DISAGG_WORKLOAD_H
#define MIXL_DISAGG_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

#include "config/run_config.h"

typedef struct {
    size_t count;
    uint64_t *arrival_ns; /* offset from the start of the run, non-decreasing */
    uint64_t *prompt;     /* tokens */
    uint64_t output_tokens;
    uint64_t max_prompt;
    uint64_t total_prompt;
} mixl_workload_t;

mixl_status_t mixl_workload_build(const mixl_run_config_t *cfg, mixl_workload_t *wl, char *err,
                                  size_t err_len);
void mixl_workload_free(mixl_workload_t *wl);

#endif /* MIXL_DISAGG_WORKLOAD_H */
