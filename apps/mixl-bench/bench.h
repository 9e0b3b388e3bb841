/*
 * mixl-bench: shared types. The options a run takes, one result row per
 * measured point, and the growing table of rows every mode appends to and
 * every output writer reads.
 */
#ifndef MIXL_BENCH_H
#define MIXL_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

#define BENCH_LIST_MAX 64
#define BENCH_STR 24

/* What a run measures; each is a bit in opts.modes. */
enum {
    BENCH_MODE_MIXL = 1u << 0,   /* MIXL prepared requests */
    BENCH_MODE_MEMCPY = 1u << 1, /* memcpy of the same bytes in one process */
    BENCH_MODE_MPI = 1u << 2,    /* raw MPI_Put/MPI_Get + MPI_Win_flush loop */
    BENCH_MODE_UCX = 1u << 3,    /* ucx_perftest server/client pair on loopback */
    BENCH_MODE_MODEL = 1u << 4,  /* a whole request's KV, block-wise and layer-wise */
    BENCH_MODE_SOCKET = 1u << 5, /* plain blocking socket loop (with --backends tcp) */
};

enum { BENCH_OP_READ = 1u << 0, BENCH_OP_WRITE = 1u << 1 };
/*
 * Memory kinds. host-mpi is host memory that MPI_Win_allocate handed out
 * (with osc/ucx: UCX-mapped shared memory that peers on the node can
 * store into directly), registered with MIXL like any host memory.
 */
enum {
    BENCH_MEM_HOST = 1u << 0,
    BENCH_MEM_PINNED = 1u << 1,
    BENCH_MEM_CUDA = 1u << 2,
    BENCH_MEM_HOST_MPI = 1u << 3,
    BENCH_MEM_LAST = BENCH_MEM_HOST_MPI,
};
enum { BENCH_BACKEND_MPI = 1u << 0, BENCH_BACKEND_TCP = 1u << 1 };
enum { BENCH_PATTERN_PAIRWISE = 1u << 0, BENCH_PATTERN_MANY_TO_ONE = 1u << 1 };
/* Raw MPI loop windows: MPI_Win_allocate (OSU's default) or MPI_Win_create on malloc'd memory. */
enum { BENCH_WIN_ALLOCATE = 1u << 0, BENCH_WIN_CREATE = 1u << 1 };
enum { BENCH_MODEL_LAYERWISE = 1u << 0, BENCH_MODEL_BLOCKWISE = 1u << 1 };

/* A model shape for the model-shaped mode. */
typedef struct {
    const char *name;
    unsigned layers;
    unsigned kv_heads;
    unsigned head_dim;
    unsigned dtype_bytes;
} bench_model_t;

typedef struct {
    unsigned modes;     /* BENCH_MODE_* */
    unsigned ops;       /* BENCH_OP_* */
    unsigned mems;      /* BENCH_MEM_* */
    unsigned backends;  /* BENCH_BACKEND_* */
    unsigned patterns;  /* BENCH_PATTERN_* */
    uint64_t sizes[BENCH_LIST_MAX]; /* bytes per descriptor, ascending */
    size_t nsizes;
    uint64_t batches[BENCH_LIST_MAX]; /* descriptors per request */
    size_t nbatches;
    uint64_t max_request;   /* skip size x batch above this many bytes */
    unsigned iters;         /* timed iterations per repetition (scaled down above 1 MiB) */
    unsigned warmup;        /* untimed iterations before the first repetition */
    unsigned reps;          /* repetitions; the spread is taken over them */
    int contig;             /* batch descriptors adjacent on both sides (merged) */
    int timeout_ms;         /* bound on every wait */
    char tcp_bind[64];      /* TCP listen address; empty: chosen at start (bench_tcp_bind_resolve) */
    unsigned tcp_connections; /* TCP connections per peer; 0 = the library's default */
    int tcp_poll_us;          /* mixl_agent_params_t.tcp_poll_us: 0 default, -1 never */
    unsigned mpi_wins;      /* BENCH_WIN_*: window kinds of the raw MPI loop */
    unsigned mpi_origin;    /* BENCH_MEM_HOST or _HOST_MPI: where the raw loop's origin buffer lives */
    /* model-shaped mode */
    const bench_model_t *models[BENCH_LIST_MAX];
    size_t nmodels;
    uint64_t tokens[BENCH_LIST_MAX];
    size_t ntokens;
    uint64_t block_sizes[BENCH_LIST_MAX]; /* tokens per KV block */
    size_t nblock_sizes;
    unsigned schemes;       /* BENCH_MODEL_* */
    unsigned model_iters;
    uint64_t model_max_bytes; /* skip model points whose KV is larger */
    int notify;             /* attach a completion notification to each model request */
    /* baselines */
    char ucx_perftest[256]; /* program; "" = look up ucx_perftest in PATH */
    int ucx_port;
    /* output */
    char csv[256];
    char json[256];
    char hdf5[256];
    int quiet;              /* no table on stdout */
    int help;
} bench_opts_t;

/* One measured point. Unused numeric fields are NaN (ratios) or 0. */
typedef struct {
    char mode[BENCH_STR];    /* mixl, memcpy, mpi, ucx_perftest, model-mixl, model-memcpy */
    char backend[BENCH_STR]; /* mpi, tcp, shm (memcpy), ucp (ucx_perftest) */
    char op[BENCH_STR];      /* READ, WRITE, COPY */
    char mem[BENCH_STR];     /* host, pinned, cuda */
    char pattern[BENCH_STR]; /* pairwise, many-to-one, layer-wise, block-wise, contiguous */
    char model[BENCH_STR];   /* model name in the model-shaped mode, else "" */
    uint64_t size;           /* bytes per descriptor */
    uint64_t batch;          /* descriptors per request (model: descriptors per iteration) */
    uint64_t bytes;          /* bytes per iteration (all initiators together) */
    uint64_t xfer_ops;       /* operations issued per iteration after merging */
    uint32_t initiators;
    uint32_t iters;
    uint32_t reps;
    uint64_t tokens;         /* model mode */
    uint32_t block_tokens;   /* model mode */
    uint32_t requests;       /* requests per iteration (model mode; else 1) */
    double gbps;             /* bytes per second / 1e9, over all repetitions */
    double gbps_min, gbps_max, gbps_stddev; /* spread of per-repetition GB/s */
    double lat_avg_us, lat_p50_us, lat_p99_us, lat_min_us, lat_max_us, lat_stddev_us;
    double ops_per_s;        /* descriptors moved per second */
    double x_memcpy;         /* GB/s ratio to the memcpy row of the same bytes */
    double x_mpi;            /* GB/s ratio to the raw MPI row of the same shape */
    double lat_x_mpi;        /* average-latency ratio to the raw MPI row */
    double x_mpi_create;     /* GB/s ratio to the raw loop over MPI_Win_create windows */
    double x_ucx;            /* GB/s ratio to the ucx_perftest row of the same size */
    char note[96];           /* why a point was skipped, or the path used */
} bench_row_t;

typedef struct {
    bench_row_t *rows;
    size_t n, cap;
} bench_results_t;

/* Append a row (copied). MIXL_ERR_NO_MEMORY when the table cannot grow. */
mixl_status_t bench_results_add(bench_results_t *res, const bench_row_t *row);
void bench_results_free(bench_results_t *res);
/* A row with every ratio set to NaN and the strings empty. */
void bench_row_init(bench_row_t *row);
/* Fill x_memcpy / x_mpi / lat_x_mpi of MIXL rows from the baseline rows of the same shape. */
void bench_results_ratios(bench_results_t *res);
/* Order rows for reading: by mode, backend, memory, pattern, operation, then batch and size. */
void bench_results_sort(bench_results_t *res);

#endif /* MIXL_BENCH_H */
