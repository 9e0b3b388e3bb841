/*
 * The baselines measured in the same run as MIXL: memcpy of the same bytes
 * in one process (the physical limit on one node), a raw MPI_Put/MPI_Get +
 * MPI_Win_flush loop over the same MPI (OSU -w allocate -s flush style),
 * and ucx_perftest put/get on loopback when it is installed.
 */
#ifndef MIXL_BENCH_BASELINES_H
#define MIXL_BENCH_BASELINES_H

#include "run.h"

/* The runners of each baseline are declared in sweep.h. */

/* ucx_perftest's "Final:" line. */
typedef struct {
    double iterations;
    double lat_p50_us, lat_avg_us, lat_overall_us;
    double bw_avg_mbs, bw_overall_mbs; /* ucx_perftest's MB is 2^20 bytes */
    double rate_avg, rate_overall;
} bench_ucx_final_t;

/* Parse ucx_perftest's output; MIXL_ERR_PROTOCOL when no well-formed Final line is in it. */
mixl_status_t bench_ucx_parse(const char *text, bench_ucx_final_t *final_p);

#endif /* MIXL_BENCH_BASELINES_H */
