/*
 * The MIXL measurements: the micro-benchmark sweep (sizes x batches x
 * READ/WRITE x memory types x backends x patterns, prepared requests) and
 * the model-shaped mode (a whole request's KV into a paged pool).
 */
#ifndef MIXL_BENCH_MODES_H
#define MIXL_BENCH_MODES_H

#include "run.h"

/* The micro-benchmark's MIXL runners are declared in sweep.h. */

/* Collective. */
mixl_status_t bench_run_model(bench_ctx_t *ctx);

#endif /* MIXL_BENCH_MODES_H */
