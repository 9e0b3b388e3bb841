/* Block-id run merging; see runs.h. */
#include "kv/runs.h"

size_t mixl_kv_runs_from_ids(const uint64_t *ids, size_t n, mixl_kv_run_t *out, size_t max)
{
    size_t nruns = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && ids[i] == ids[i - 1] + 1) {
            if (nruns <= max) out[nruns - 1].count++; /* the current run is stored */
        } else {
            if (nruns < max) {
                out[nruns].start = ids[i];
                out[nruns].count = 1;
            }
            nruns++;
        }
    }
    return nruns;
}

uint64_t mixl_kv_runs_blocks(const mixl_kv_run_t *runs, size_t nruns)
{
    uint64_t total = 0;
    for (size_t i = 0; i < nruns; i++) total += runs[i].count;
    return total;
}

uint64_t mixl_kv_runs_block(const mixl_kv_run_t *runs, size_t nruns, uint64_t i)
{
    for (size_t r = 0; r < nruns; r++) {
        if (i < runs[r].count) return runs[r].start + i;
        i -= runs[r].count;
    }
    return UINT64_MAX;
}
