/* mixl-bench command line; see options.h. */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* KV bytes per token = layers x 2 (K and V) x kv_heads x head_dim x dtype bytes. */
const bench_model_t bench_models[] = {
    {.name = "llama3-8b", .layers = 32, .kv_heads = 8, .head_dim = 128, .dtype_bytes = 2},
    {.name = "llama3-70b", .layers = 80, .kv_heads = 8, .head_dim = 128, .dtype_bytes = 2},
    {.name = NULL},
};

typedef struct {
    const char *name;
    unsigned bit;
} name_bit_t;

static const name_bit_t mode_names[] = {
    {"mixl", BENCH_MODE_MIXL}, {"memcpy", BENCH_MODE_MEMCPY}, {"mpi", BENCH_MODE_MPI},
    {"ucx", BENCH_MODE_UCX},   {"model", BENCH_MODE_MODEL},   {"socket", BENCH_MODE_SOCKET},
    {NULL, 0},
};
static const name_bit_t op_names[] = {{"write", BENCH_OP_WRITE}, {"read", BENCH_OP_READ}, {NULL, 0}};
static const name_bit_t mem_names[] = {
    {"host", BENCH_MEM_HOST}, {"pinned", BENCH_MEM_PINNED}, {"cuda", BENCH_MEM_CUDA},
    {"host-mpi", BENCH_MEM_HOST_MPI}, {NULL, 0}};
static const name_bit_t backend_names[] = {
    {"mpi", BENCH_BACKEND_MPI}, {"tcp", BENCH_BACKEND_TCP}, {NULL, 0}};
static const name_bit_t pattern_names[] = {
    {"pairwise", BENCH_PATTERN_PAIRWISE}, {"many-to-one", BENCH_PATTERN_MANY_TO_ONE}, {NULL, 0}};
static const name_bit_t win_names[] = {
    {"allocate", BENCH_WIN_ALLOCATE}, {"create", BENCH_WIN_CREATE}, {NULL, 0}};
static const name_bit_t scheme_names[] = {
    {"layer", BENCH_MODEL_LAYERWISE}, {"block", BENCH_MODEL_BLOCKWISE}, {NULL, 0}};

void bench_opts_default(bench_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->modes = BENCH_MODE_MIXL | BENCH_MODE_MEMCPY | BENCH_MODE_MPI | BENCH_MODE_UCX | BENCH_MODE_MODEL |
               BENCH_MODE_SOCKET;
    o->ops = BENCH_OP_WRITE | BENCH_OP_READ;
    o->mems = BENCH_MEM_HOST;
    o->backends = BENCH_BACKEND_MPI;
    o->patterns = BENCH_PATTERN_PAIRWISE;
    for (uint64_t s = 8; s <= (256ull << 20); s *= 2) o->sizes[o->nsizes++] = s;
    o->batches[o->nbatches++] = 1;
    o->max_request = 256ull << 20;
    o->iters = 1000;
    o->warmup = 100;
    o->reps = 3;
    o->timeout_ms = 60000;
    o->mpi_wins = BENCH_WIN_ALLOCATE | BENCH_WIN_CREATE;
    o->mpi_origin = BENCH_MEM_HOST;
    o->models[o->nmodels++] = &bench_models[0];
    o->models[o->nmodels++] = &bench_models[1];
    o->tokens[o->ntokens++] = 1024;
    o->tokens[o->ntokens++] = 4096;
    o->block_sizes[o->nblock_sizes++] = 16;
    o->block_sizes[o->nblock_sizes++] = 64;
    o->schemes = BENCH_MODEL_LAYERWISE | BENCH_MODEL_BLOCKWISE;
    o->model_iters = 10;
    o->model_max_bytes = 1ull << 30;
    o->notify = 1;
    o->ucx_port = 0;
}

static mixl_status_t fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static mixl_status_t fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && errlen > 0) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return MIXL_ERR_INVALID_PARAM;
}

mixl_status_t bench_parse_size(const char *text, uint64_t *bytes_p)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},    {"b", 0},    {"k", 10},   {"kb", 10}, {"kib", 10}, {"m", 20},
                 {"mb", 20}, {"mib", 20}, {"g", 30},   {"gb", 30}, {"gib", 30}, {NULL, 0}};
    char *end;
    if (text == NULL || !isdigit((unsigned char)text[0])) return MIXL_ERR_INVALID_PARAM;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0) return MIXL_ERR_INVALID_PARAM;
    for (int i = 0; units[i].suffix != NULL; i++) {
        if (strcasecmp(end, units[i].suffix) != 0) continue;
        if (units[i].shift && v > (UINT64_MAX >> units[i].shift)) return MIXL_ERR_INVALID_PARAM;
        *bytes_p = (uint64_t)v << units[i].shift;
        return MIXL_OK;
    }
    return MIXL_ERR_INVALID_PARAM;
}

/* Parse "a,b,c" of names from table into a bit set. */
static mixl_status_t parse_names(const char *opt, const char *arg, const name_bit_t *table,
                                 unsigned *bits_p, char *err, size_t errlen)
{
    char buf[512];
    unsigned bits = 0;
    if (strlen(arg) >= sizeof(buf)) return fail(err, errlen, "--%s: value too long", opt);
    strcpy(buf, arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        if (strcmp(tok, "all") == 0) {
            for (int i = 0; table[i].name; i++) bits |= table[i].bit;
            continue;
        }
        for (int i = 0; table[i].name; i++) {
            if (strcasecmp(tok, table[i].name) == 0) {
                bits |= table[i].bit;
                found = 1;
            }
        }
        if (!found) {
            char names[256] = "";
            for (int i = 0; table[i].name; i++) {
                strcat(names, i ? ", " : "");
                strcat(names, table[i].name);
            }
            return fail(err, errlen, "--%s: unknown value '%s' (expected %s or all)", opt, tok, names);
        }
    }
    if (bits == 0) return fail(err, errlen, "--%s: empty list", opt);
    *bits_p = bits;
    return MIXL_OK;
}

/* Parse a comma list of sizes, or MIN:MAX meaning every power of two in between. */
static mixl_status_t parse_size_list(const char *opt, const char *arg, uint64_t *out, size_t *n_p,
                                     int allow_range, char *err, size_t errlen)
{
    char buf[512];
    size_t n = 0;
    if (strlen(arg) >= sizeof(buf)) return fail(err, errlen, "--%s: value too long", opt);
    strcpy(buf, arg);
    char *colon = strchr(buf, ':');
    if (colon != NULL) {
        uint64_t lo, hi;
        if (!allow_range) return fail(err, errlen, "--%s: ranges are not accepted here", opt);
        *colon = '\0';
        if (bench_parse_size(buf, &lo) != MIXL_OK || bench_parse_size(colon + 1, &hi) != MIXL_OK ||
            lo == 0 || hi < lo)
            return fail(err, errlen, "--%s: '%s': expected MIN:MAX with 0 < MIN <= MAX, e.g. 8:256M",
                        opt, arg);
        for (uint64_t s = lo; s <= hi; s *= 2) {
            if (n == BENCH_LIST_MAX)
                return fail(err, errlen, "--%s: '%s' gives more than %d values", opt, arg,
                            BENCH_LIST_MAX);
            out[n++] = s;
            if (s > UINT64_MAX / 2) break;
        }
        *n_p = n;
        return MIXL_OK;
    }
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (bench_parse_size(tok, &v) != MIXL_OK || v == 0)
            return fail(err, errlen, "--%s: '%s': expected a positive size like 4096, 64K or 16M",
                        opt, tok);
        if (n == BENCH_LIST_MAX)
            return fail(err, errlen, "--%s: more than %d values", opt, BENCH_LIST_MAX);
        out[n++] = v;
    }
    if (n == 0) return fail(err, errlen, "--%s: empty list", opt);
    *n_p = n;
    return MIXL_OK;
}

static mixl_status_t parse_uint(const char *opt, const char *arg, unsigned long lo,
                                unsigned long hi, unsigned long *v_p, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (!isdigit((unsigned char)arg[0]) || *end != '\0' || errno != 0 || v < lo || v > hi)
        return fail(err, errlen, "--%s: '%s': expected an integer %lu..%lu", opt, arg, lo, hi);
    *v_p = v;
    return MIXL_OK;
}

static mixl_status_t copy_path(const char *opt, const char *arg, char *dst, size_t len, char *err,
                               size_t errlen)
{
    if (arg[0] == '\0' || strlen(arg) >= len)
        return fail(err, errlen, "--%s: path empty or longer than %zu bytes", opt, len - 1);
    strcpy(dst, arg);
    return MIXL_OK;
}

enum {
    OPT_MODES = 256, OPT_OPS, OPT_MEM, OPT_BACKENDS, OPT_PATTERN, OPT_SIZES, OPT_BATCH,
    OPT_MAX_REQUEST, OPT_ITERS, OPT_WARMUP, OPT_REPS, OPT_CONTIG, OPT_TIMEOUT, OPT_MODELS,
    OPT_TOKENS, OPT_BLOCKS, OPT_SCHEMES, OPT_MODEL_ITERS, OPT_MODEL_MAX, OPT_NO_NOTIFY, OPT_UCX,
    OPT_UCX_PORT, OPT_TCP_BIND, OPT_TCP_CONNS, OPT_TCP_POLL, OPT_MPI_WIN, OPT_MPI_ORIGIN, OPT_CSV, OPT_JSON, OPT_HDF5, OPT_QUIET, OPT_HELP,
};

static const struct option long_opts[] = {
    {"modes", required_argument, NULL, OPT_MODES},
    {"ops", required_argument, NULL, OPT_OPS},
    {"mem", required_argument, NULL, OPT_MEM},
    {"backends", required_argument, NULL, OPT_BACKENDS},
    {"pattern", required_argument, NULL, OPT_PATTERN},
    {"sizes", required_argument, NULL, OPT_SIZES},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"max-request", required_argument, NULL, OPT_MAX_REQUEST},
    {"iters", required_argument, NULL, OPT_ITERS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"reps", required_argument, NULL, OPT_REPS},
    {"contig", no_argument, NULL, OPT_CONTIG},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"models", required_argument, NULL, OPT_MODELS},
    {"tokens", required_argument, NULL, OPT_TOKENS},
    {"block-sizes", required_argument, NULL, OPT_BLOCKS},
    {"schemes", required_argument, NULL, OPT_SCHEMES},
    {"model-iters", required_argument, NULL, OPT_MODEL_ITERS},
    {"model-max-bytes", required_argument, NULL, OPT_MODEL_MAX},
    {"no-notify", no_argument, NULL, OPT_NO_NOTIFY},
    {"ucx-perftest", required_argument, NULL, OPT_UCX},
    {"ucx-port", required_argument, NULL, OPT_UCX_PORT},
    {"tcp-bind", required_argument, NULL, OPT_TCP_BIND},
    {"tcp-connections", required_argument, NULL, OPT_TCP_CONNS},
    {"tcp-poll-us", required_argument, NULL, OPT_TCP_POLL},
    {"mpi-win", required_argument, NULL, OPT_MPI_WIN},
    {"mpi-origin", required_argument, NULL, OPT_MPI_ORIGIN},
    {"csv", required_argument, NULL, OPT_CSV},
    {"json", required_argument, NULL, OPT_JSON},
    {"hdf5", required_argument, NULL, OPT_HDF5},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

mixl_status_t bench_opts_parse(int argc, char **argv, bench_opts_t *o, char *err, size_t errlen)
{
    mixl_status_t st = MIXL_OK;
    unsigned long v;
    int c;

    bench_opts_default(o);
    optind = 0; /* full reset of getopt's state so the parser can run more than once */
    opterr = 0;
    while (st == MIXL_OK && (c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        switch (c) {
        case OPT_MODES: st = parse_names("modes", optarg, mode_names, &o->modes, err, errlen); break;
        case OPT_OPS: st = parse_names("ops", optarg, op_names, &o->ops, err, errlen); break;
        case OPT_MEM: st = parse_names("mem", optarg, mem_names, &o->mems, err, errlen); break;
        case OPT_BACKENDS:
            st = parse_names("backends", optarg, backend_names, &o->backends, err, errlen);
            break;
        case OPT_PATTERN:
            st = parse_names("pattern", optarg, pattern_names, &o->patterns, err, errlen);
            break;
        case OPT_MPI_WIN: st = parse_names("mpi-win", optarg, win_names, &o->mpi_wins, err, errlen); break;
        case OPT_MPI_ORIGIN:
            st = parse_names("mpi-origin", optarg, mem_names, &o->mpi_origin, err, errlen);
            if (st == MIXL_OK && o->mpi_origin != BENCH_MEM_HOST && o->mpi_origin != BENCH_MEM_HOST_MPI) {
                snprintf(err, errlen, "--mpi-origin: one of host, host-mpi, not '%s'", optarg);
                st = MIXL_ERR_INVALID_PARAM;
            }
            break;
        case OPT_SCHEMES:
            st = parse_names("schemes", optarg, scheme_names, &o->schemes, err, errlen);
            break;
        case OPT_SIZES:
            st = parse_size_list("sizes", optarg, o->sizes, &o->nsizes, 1, err, errlen);
            break;
        case OPT_BATCH:
            st = parse_size_list("batch", optarg, o->batches, &o->nbatches, 0, err, errlen);
            break;
        case OPT_TOKENS:
            st = parse_size_list("tokens", optarg, o->tokens, &o->ntokens, 0, err, errlen);
            break;
        case OPT_BLOCKS:
            st = parse_size_list("block-sizes", optarg, o->block_sizes, &o->nblock_sizes, 0, err,
                                 errlen);
            break;
        case OPT_MAX_REQUEST:
        case OPT_MODEL_MAX: {
            uint64_t b;
            const char *on = c == OPT_MAX_REQUEST ? "max-request" : "model-max-bytes";
            if (bench_parse_size(optarg, &b) != MIXL_OK || b == 0)
                st = fail(err, errlen, "--%s: '%s': expected a positive size like 256M", on, optarg);
            else if (c == OPT_MAX_REQUEST)
                o->max_request = b;
            else
                o->model_max_bytes = b;
            break;
        }
        case OPT_ITERS:
            if ((st = parse_uint("iters", optarg, 1, 10000000, &v, err, errlen)) == MIXL_OK)
                o->iters = (unsigned)v;
            break;
        case OPT_WARMUP:
            if ((st = parse_uint("warmup", optarg, 0, 10000000, &v, err, errlen)) == MIXL_OK)
                o->warmup = (unsigned)v;
            break;
        case OPT_REPS:
            if ((st = parse_uint("reps", optarg, 1, BENCH_LIST_MAX, &v, err, errlen)) == MIXL_OK)
                o->reps = (unsigned)v;
            break;
        case OPT_MODEL_ITERS:
            if ((st = parse_uint("model-iters", optarg, 1, 100000, &v, err, errlen)) == MIXL_OK)
                o->model_iters = (unsigned)v;
            break;
        case OPT_TIMEOUT:
            if ((st = parse_uint("timeout-ms", optarg, 1, 3600000, &v, err, errlen)) == MIXL_OK)
                o->timeout_ms = (int)v;
            break;
        case OPT_TCP_BIND:
            if (strlen(optarg) >= sizeof(o->tcp_bind)) {
                snprintf(err, errlen, "--tcp-bind: address too long");
                st = MIXL_ERR_INVALID_PARAM;
            } else {
                snprintf(o->tcp_bind, sizeof(o->tcp_bind), "%s", optarg);
            }
            break;
        case OPT_TCP_CONNS:
            if ((st = parse_uint("tcp-connections", optarg, 1, 16, &v, err, errlen)) == MIXL_OK)
                o->tcp_connections = (unsigned)v;
            break;
        case OPT_TCP_POLL:
            if ((st = parse_uint("tcp-poll-us", optarg, 0, 10000, &v, err, errlen)) == MIXL_OK)
                o->tcp_poll_us = v > 0 ? (int)v : -1;
            break;
        case OPT_UCX_PORT:
            if ((st = parse_uint("ucx-port", optarg, 1, 65535, &v, err, errlen)) == MIXL_OK)
                o->ucx_port = (int)v;
            break;
        case OPT_MODELS: {
            char buf[256];
            o->nmodels = 0;
            if (strlen(optarg) >= sizeof(buf)) {
                st = fail(err, errlen, "--models: value too long");
                break;
            }
            strcpy(buf, optarg);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && st == MIXL_OK;
                 tok = strtok_r(NULL, ",", &save)) {
                const bench_model_t *m = NULL;
                for (int i = 0; bench_models[i].name; i++)
                    if (strcasecmp(tok, bench_models[i].name) == 0) m = &bench_models[i];
                if (m == NULL)
                    st = fail(err, errlen, "--models: unknown model '%s' (expected llama3-8b, llama3-70b)",
                              tok);
                else if (o->nmodels < BENCH_LIST_MAX)
                    o->models[o->nmodels++] = m;
            }
            if (st == MIXL_OK && o->nmodels == 0) st = fail(err, errlen, "--models: empty list");
            break;
        }
        case OPT_CONTIG: o->contig = 1; break;
        case OPT_NO_NOTIFY: o->notify = 0; break;
        case OPT_QUIET: o->quiet = 1; break;
        case OPT_UCX: st = copy_path("ucx-perftest", optarg, o->ucx_perftest, sizeof(o->ucx_perftest), err, errlen); break;
        case OPT_CSV: st = copy_path("csv", optarg, o->csv, sizeof(o->csv), err, errlen); break;
        case OPT_JSON: st = copy_path("json", optarg, o->json, sizeof(o->json), err, errlen); break;
        case OPT_HDF5: st = copy_path("hdf5", optarg, o->hdf5, sizeof(o->hdf5), err, errlen); break;
        case 'h':
        case OPT_HELP: o->help = 1; break;
        case ':': st = fail(err, errlen, "%s: missing value", name); break;
        default: st = fail(err, errlen, "%s: unknown option (see --help)", name); break;
        }
    }
    if (st != MIXL_OK) return st;
    if (optind < argc) return fail(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
    for (size_t i = 1; i < o->nsizes; i++)
        if (o->sizes[i] <= o->sizes[i - 1])
            return fail(err, errlen, "--sizes: values must be ascending");
    for (size_t i = 0; i < o->nblock_sizes; i++)
        if (o->block_sizes[i] > 4096)
            return fail(err, errlen, "--block-sizes: %llu tokens per block is more than 4096",
                        (unsigned long long)o->block_sizes[i]);
    return MIXL_OK;
}

const char *bench_mode_names(unsigned modes, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; mode_names[i].name; i++)
        if (modes & mode_names[i].bit)
            off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s", off ? "," : "",
                                    mode_names[i].name);
    return buf;
}

void bench_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: mpirun -np N %s [options]\n"
            "Measures MIXL transfers next to memcpy, a raw MPI RMA loop and ucx_perftest.\n"
            "Ranks: pairwise = even rank i initiates to rank i+1; many-to-one = every\n"
            "rank > 0 initiates into rank 0.\n\n"
            "  --modes LIST        mixl,memcpy,mpi,ucx,model,socket or all (default all;\n"
            "                      socket = plain TCP send/recv loop, with --backends tcp)\n"
            "  --ops LIST          write,read (default both)\n"
            "  --mem LIST          host,pinned,cuda,host-mpi (default host; cuda needs a CUDA\n"
            "                      build; host-mpi = host memory from mixl_mem_alloc_mpi)\n"
            "  --backends LIST     mpi,tcp (default mpi)\n"
            "  --pattern LIST      pairwise,many-to-one (default pairwise)\n"
            "  --sizes MIN:MAX|L   bytes per descriptor, powers of two or a list (default 8:256M)\n"
            "  --batch LIST        descriptors per request (default 1)\n"
            "  --max-request SIZE  skip size x batch above this (default 256M)\n"
            "  --contig            batch descriptors adjacent (merged into one op); default is\n"
            "                      scattered remote slots so each descriptor is its own op\n"
            "  --iters N           timed iterations per repetition (default 1000; above 1 MiB\n"
            "                      scaled to N x 1MiB/bytes, at least 8)\n"
            "  --warmup N          untimed iterations first (default 100, scaled likewise)\n"
            "  --reps N            repetitions, for the spread (default 3)\n"
            "  --timeout-ms N      bound on every wait (default 60000)\n"
            "  --tcp-bind ADDR     TCP backend and socket loop listen address (default:\n"
            "                      127.0.0.1 while every rank shares a node, else the\n"
            "                      address of the interface MPI's own channel uses; peers\n"
            "                      authenticate with a secret rank 0 makes)\n"
            "  --tcp-connections N TCP connections per peer, 1..16 (default: the library's, 1;\n"
            "                      data_plane.tcp.connections); large transfers are striped\n"
            "  --tcp-poll-us US    microseconds the TCP progress thread watches for the next\n"
            "                      post after a completion, 0..10000, 0 never (default: the\n"
            "                      library's; data_plane.tcp.poll_us)\n"
            "  --models LIST       llama3-8b,llama3-70b (default both)\n"
            "  --tokens LIST       tokens per request (default 1024,4096)\n"
            "  --block-sizes LIST  tokens per KV block (default 16,64)\n"
            "  --schemes LIST      layer,block (default both)\n"
            "  --model-iters N     iterations per repetition in model mode (default 10)\n"
            "  --model-max-bytes S skip model points whose KV exceeds S (default 1G)\n"
            "  --no-notify         no completion notification on model requests\n"
            "  --mpi-win LIST      raw MPI loop windows: allocate (MPI_Win_allocate, OSU's\n"
            "                      default), create (MPI_Win_create on malloc'd memory, the\n"
            "                      kind MIXL exposes); default both\n"
            "  --mpi-origin KIND   raw MPI loop's origin buffer: host (malloc, default) or\n"
            "                      host-mpi (mixl_mem_alloc_mpi, like MIXL's host-mpi rows)\n"
            "  --ucx-perftest PATH ucx_perftest program (default: from PATH)\n"
            "  --ucx-port N        its TCP port (default: chosen free port)\n"
            "  --csv FILE --json FILE --hdf5 FILE   write the results there too\n"
            "  --quiet             no table on stdout\n",
            prog);
}
