/*
 * Block-id runs: a request's blocks as (start, count) stretches of
 * consecutive ids. Runs keep protocol messages small and let the transfer
 * code emit one span per stretch instead of one per block.
 */
#ifndef MIXL_KV_RUNS_H
#define MIXL_KV_RUNS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t start;
    uint64_t count;
} mixl_kv_run_t;

/*
 * Merge a list of block ids (in request order) into runs: consecutive ids
 * extend the current run. Writes at most max runs; returns the number the
 * whole list needs (so a return > max means out was too small).
 */
size_t mixl_kv_runs_from_ids(const uint64_t *ids, size_t n, mixl_kv_run_t *out, size_t max);

/* Blocks covered by runs. */
uint64_t mixl_kv_runs_blocks(const mixl_kv_run_t *runs, size_t nruns);

/* The id of the i-th block (request order); UINT64_MAX when i is past the end. */
uint64_t mixl_kv_runs_block(const mixl_kv_run_t *runs, size_t nruns, uint64_t i);

#endif /* MIXL_KV_RUNS_H */
