/* The column table every structured writer follows; see output.h. */
#include <stddef.h>

#include "output.h"

#define S(f, d) {#f, BENCH_F_STR, offsetof(bench_row_t, f), sizeof(((bench_row_t *)0)->f), d}
#define U64(f, d) {#f, BENCH_F_U64, offsetof(bench_row_t, f), sizeof(uint64_t), d}
#define U32(f, d) {#f, BENCH_F_U32, offsetof(bench_row_t, f), sizeof(uint32_t), d}
#define F64(f, d) {#f, BENCH_F_F64, offsetof(bench_row_t, f), sizeof(double), d}

const bench_field_t bench_fields[] = {
    S(mode, "mixl, memcpy, mpi, ucx_perftest, model-mixl, model-memcpy"),
    S(backend, "data path"),
    S(op, "READ, WRITE or COPY"),
    S(mem, "host, pinned or cuda"),
    S(pattern, "pairwise, many-to-one, layer-wise, block-wise, contiguous"),
    S(model, "model shape (model mode)"),
    U64(size, "bytes per descriptor"),
    U64(batch, "descriptors per request (model: per iteration)"),
    U64(bytes, "bytes per iteration, all initiators"),
    U64(xfer_ops, "operations issued per iteration after merging"),
    U32(initiators, "initiating ranks"),
    U32(iters, "timed iterations per repetition"),
    U32(reps, "repetitions"),
    U64(tokens, "tokens (model mode)"),
    U32(block_tokens, "tokens per KV block (model mode)"),
    U32(requests, "requests per iteration"),
    F64(gbps, "GB/s (1e9 B/s) over all repetitions"),
    F64(gbps_min, "slowest repetition, GB/s"),
    F64(gbps_max, "fastest repetition, GB/s"),
    F64(gbps_stddev, "standard deviation of per-repetition GB/s"),
    F64(lat_avg_us, "average iteration latency, us"),
    F64(lat_p50_us, "median iteration latency, us"),
    F64(lat_p99_us, "99th percentile iteration latency, us"),
    F64(lat_min_us, "fastest iteration, us"),
    F64(lat_max_us, "slowest iteration, us"),
    F64(lat_stddev_us, "standard deviation of iteration latency, us"),
    F64(ops_per_s, "descriptors per second"),
    F64(x_memcpy, "GB/s ratio to memcpy of the same bytes"),
    F64(x_mpi, "GB/s ratio to the raw MPI loop"),
    F64(lat_x_mpi, "average latency ratio to the raw MPI loop"),
    F64(x_mpi_create, "GB/s ratio to the raw loop over MPI_Win_create windows"),
    F64(x_ucx, "GB/s ratio to ucx_perftest"),
    S(note, "why a point was skipped, or how it was measured"),
    {NULL, BENCH_F_STR, 0, 0, NULL},
};
