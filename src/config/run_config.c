/*
 * The mixl-run key table: every key, its type, default, range and doc line.
 * Keys of one section stay together (the printer nests by adjacency).
 * docs/configuration.md documents the same keys; a test checks it lists
 * every one.
 */
#include "config/run_config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define F(field) offsetof(mixl_run_config_t, field)
/* First column: SETUP when a sweep point changing the key must set up agents and memory afresh. */
#define SETUP MIXL_CFG_SETUP
#define POINT 0u
#define BOOL(fl, k, d, f, doc) {k, MIXL_CFG_BOOL, d, 0, 1, NULL, F(f), doc, fl}
#define INT(fl, k, d, lo, hi, f, doc) {k, MIXL_CFG_INT, d, lo, hi, NULL, F(f), doc, fl}
#define DBL(fl, k, d, lo, hi, f, doc) {k, MIXL_CFG_DOUBLE, d, lo, hi, NULL, F(f), doc, fl}
#define STR(fl, k, d, f, doc) {k, MIXL_CFG_STRING, d, 0, 0, NULL, F(f), doc, fl}
#define ENUM(fl, k, d, ch, f, doc) {k, MIXL_CFG_ENUM, d, 0, 0, ch, F(f), doc, fl}
#define LIST(fl, k, d, f, doc) {k, MIXL_CFG_STRLIST, d, 0, 0, NULL, F(f), doc, fl}

static const mixl_cfg_entry_t run_entries[] = {
    STR(POINT, "run.name", "mixl-run", run.name, "experiment name, stored in the results file"),
    STR(POINT, "run.output", "mixl-run.h5", run.output,
        "HDF5 results file (parent folders are created); empty = no file"),
    INT(POINT, "run.seed", "1", 0, 9.2e18, run.seed, "seed for arrivals and prompt lengths"),
    INT(SETUP, "run.timeout_ms", "30000", 100, 3600000, run.timeout_ms,
        "deadline for every wait: control messages, transfers, notifications"),
    ENUM(POINT, "run.progress", "auto", "auto|tty|plain|off", run.progress,
         "progress line: in place on a terminal (auto: only there; tty: always), plain lines, or none"),
    INT(POINT, "run.progress_interval_ms", "1000", 10, 600000, run.progress_interval_ms,
        "time between progress updates"),
    INT(POINT, "run.flush_requests", "256", 1, 1e9, run.flush_requests,
        "results file: completed requests written and flushed at least every this many"),
    INT(POINT, "run.flush_interval_ms", "1000", 10, 3600000, run.flush_interval_ms,
        "results file: completed requests written and flushed at least this often"),

    ENUM(SETUP, "model.preset", "tiny", "tiny|llama-3-8b|llama-3-70b|custom", model.preset,
         "model shape; custom needs layers, kv_heads, head_dim and dtype"),
    INT(SETUP, "model.layers", "0", 0, 1024, model.layers, "transformer layers; 0 = from the preset"),
    INT(SETUP, "model.kv_heads", "0", 0, 1024, model.kv_heads, "KV heads; 0 = from the preset"),
    INT(SETUP, "model.head_dim", "0", 0, 4096, model.head_dim, "head dimension; 0 = from the preset"),
    ENUM(SETUP, "model.dtype", "preset", "preset|fp16|bf16|fp32|fp8", model.dtype,
         "KV element type; preset = the preset's"),
    INT(SETUP, "model.block_size", "16", 1, 4096, model.block_size, "tokens per KV block"),

    INT(SETUP, "prefill.instances", "1", 1, 4096, prefill.instances, "prefill instances (TP groups)"),
    INT(SETUP, "prefill.tp", "1", 1, 64, prefill.tp, "tensor-parallel ranks per prefill instance"),
    INT(SETUP, "prefill.slots", "4", 1, 1024, prefill.slots,
        "layer buffers per prefill rank: layers computed ahead of their transfer"),
    INT(POINT, "prefill.queue", "2", 1, 1e6, prefill.queue,
        "requests handed to a prefill instance at once (until their KV is shipped); the rest wait "
        "at the router"),
    ENUM(SETUP, "prefill.memory", "host", "host|cuda", prefill.memory, "where prefill computes its KV"),
    INT(SETUP, "prefill.device", "-1", -1, 1024, prefill.device,
        "CUDA device; -1 = local rank modulo visible devices"),
    DBL(POINT, "prefill.layer_compute_us", "0", 0, 1e8, prefill.layer_compute_us,
        "emulated compute time per layer (microseconds) on top of the fill"),
    INT(POINT, "prefill.corrupt_every", "0", 0, 1e9, prefill.corrupt_every,
        "fault injection: flip one byte of every Nth request's KV after its fill; 0 = never"),

    INT(SETUP, "decode.instances", "1", 1, 4096, decode.instances, "decode instances (TP groups)"),
    INT(SETUP, "decode.tp", "1", 1, 64, decode.tp, "tensor-parallel ranks per decode instance"),
    INT(SETUP, "decode.pool_blocks", "256", 1, 1e9, decode.pool_blocks,
        "KV blocks in each decode rank's pool (all layers, K and V)"),
    ENUM(SETUP, "decode.memory", "host", "host|cuda", decode.memory, "where the KV pool lives"),
    INT(SETUP, "decode.device", "-1", -1, 1024, decode.device,
        "CUDA device; -1 = local rank modulo visible devices"),
    DBL(POINT, "decode.step_us", "0", 0, 1e8, decode.step_us,
        "emulated time per generated token (microseconds)"),
    BOOL(POINT, "decode.verify", "true", decode.verify,
         "check every received block word by word against the expected fill"),

    ENUM(POINT, "transfer.mode", "push", "push|pull", transfer.mode,
         "push: prefill WRITEs each layer; pull: decode READs after a layer-ready notification"),

    INT(POINT, "workload.requests", "32", 1, 1e7, workload.requests, "requests to run"),
    ENUM(POINT, "workload.arrival", "burst", "burst|fixed|poisson", workload.arrival,
         "all at once, at a fixed rate, or Poisson arrivals"),
    DBL(POINT, "workload.rate", "100", 0.001, 1e9, workload.rate,
        "requests per second for fixed and poisson arrivals"),
    ENUM(POINT, "workload.prompt.distribution", "fixed", "fixed|uniform|file",
         workload.prompt_dist, "prompt lengths: fixed, uniform in [min, max], or read from file"),
    INT(POINT, "workload.prompt.tokens", "128", 1, 16777216, workload.prompt_tokens,
        "prompt length for fixed"),
    INT(POINT, "workload.prompt.min", "64", 1, 16777216, workload.prompt_min, "shortest prompt for uniform"),
    INT(POINT, "workload.prompt.max", "256", 1, 16777216, workload.prompt_max, "longest prompt for uniform"),
    STR(POINT, "workload.prompt.file", "", workload.prompt_file,
        "file of prompt lengths, one per line ('#' comments), used in order and cycled"),
    INT(POINT, "workload.output_tokens", "16", 0, 16777216, workload.output_tokens,
        "tokens each request generates on its decode rank"),

    BOOL(SETUP, "data_plane.rma.enabled", "true", data_plane.rma_enabled,
         "move KV with MPI one-sided RMA windows"),
    STR(SETUP, "data_plane.rma.interface", "", data_plane.rma_interface,
        "RDMA device for UCX (e.g. mlx5_0:1); sets UCX_NET_DEVICES unless already set"),
    ENUM(SETUP, "data_plane.fallback", "tcp", "none|tcp", data_plane.fallback,
         "transport when RMA is disabled or cannot reach a peer"),
    INT(SETUP, "data_plane.tuning.mtu", "0", 0, 4096, data_plane.mtu,
        "InfiniBand path MTU for UCX (512, 1024, 2048 or 4096); 0 = UCX's choice"),
    INT(POINT, "data_plane.tuning.queue_depth", "128", 1, 65536, data_plane.queue_depth,
        "transfer requests in flight per rank"),
    ENUM(SETUP, "data_plane.tuning.completion_mode", "polling", "polling", data_plane.completion_mode,
         "how completions are detected"),
    ENUM(SETUP, "data_plane.gpu_path", "auto", "auto|staged|device_win", data_plane.gpu_path,
         "device memory path: self-tested device windows, pinned staging, or device windows only"),
    INT(SETUP, "data_plane.notif_ring", "256", 16, 65536, data_plane.notif_ring,
        "notification slots per peer"),
    ENUM(SETUP, "data_plane.host_memory", "mpi", "mpi|malloc", data_plane.host_memory,
         "where host KV memory comes from: MPI_Win_allocate (peers on the node map it) or malloc"),
    STR(SETUP, "data_plane.tcp.bind", "auto", data_plane.tcp_bind,
        "TCP listen address; auto = 127.0.0.1 when every rank is on one node, else the address of "
        "data_plane.tcp.interface or of the interface MPI's out-of-band channel uses"),
    STR(SETUP, "data_plane.tcp.interface", "", data_plane.tcp_interface,
        "network interface (eth0) or IPv4 subnet (10.1.0.0/16) whose address the TCP data plane "
        "listens on and publishes to peers; empty = chosen as for bind auto"),
    STR(SETUP, "data_plane.tcp.secret_file", "", data_plane.tcp_secret_file,
        "file (mode 0600) holding the TCP handshake secret; empty: rank 0 makes one per job"),
    BOOL(SETUP, "data_plane.tcp.allow_unauthenticated", "false", data_plane.tcp_allow_unauthenticated,
         "allow a non-loopback TCP listener without a secret"),
    INT(SETUP, "data_plane.tcp.connections", "1", 1, 16, data_plane.tcp_connections,
        "TCP connections to each peer; a transfer of 512 KiB or more is striped over them, "
        "notifications keep their order"),
    INT(SETUP, "data_plane.tcp.poll_us", "0", 0, 10000, data_plane.tcp_poll_us,
        "after a TCP transfer completes, microseconds the progress thread watches for the next "
        "post before it sleeps (0: never)"),
    ENUM(SETUP, "data_plane.path", "auto", "auto|mpi|tcp", data_plane.path,
         "data path per peer: auto = MIXL's TCP where one-sided MPI to the peer is emulated "
         "(another node and no RDMA device, or osc pt2pt), else MPI; mpi or tcp force it"),

    ENUM(SETUP, "registry.backend", "mpi", "mpi|etcd", registry.backend,
         "metadata registry: embedded rank-0 MPI service or an etcd cluster"),
    LIST(SETUP, "registry.endpoints", "http://127.0.0.1:2379", registry.endpoints,
         "etcd endpoints (URLs of the v3 JSON gateway)"),
    STR(SETUP, "registry.namespace", "mixl", registry.ns, "key prefix in the registry"),
    INT(SETUP, "registry.lease_ttl_s", "10", 1, 3600, registry.lease_ttl_s,
        "lease on published metadata (seconds)"),
    INT(SETUP, "registry.timeout_ms", "5000", 1, 600000, registry.timeout_ms,
        "deadline for registry operations and waiting for a peer's metadata"),

    INT(POINT, "metrics.port", "0", 0, 65535, metrics.port,
        "serve Prometheus metrics at http://BIND:PORT/metrics from the router; 0 = off"),
    STR(POINT, "metrics.bind", "127.0.0.1", metrics.bind,
        "address the metrics endpoint listens on (0.0.0.0 for every interface)"),
    INT(POINT, "metrics.refresh_ms", "500", 50, 1000, metrics.refresh_ms,
        "how often the router refreshes the served metrics during the run"),
    DBL(POINT, "metrics.linger_s", "5", 0, 3600, metrics.linger_s,
        "after the run, keep serving until a scrape read the final values, at most this long"),

    INT(POINT, "faults.corrupt.request", "-1", -1, 1e7, faults.corrupt_request,
        "flip one byte of this request's KV on its prefill rank after the fill (the decode "
        "checksum must catch it); -1 = off"),
    INT(POINT, "faults.corrupt.layer", "0", 0, 1023, faults.corrupt_layer,
        "layer whose first block faults.corrupt.request damages"),
    INT(POINT, "faults.drop_notification.request", "-1", -1, 1e7, faults.drop_request,
        "the prefill ranks never send this request's completion notification (push) or its "
        "layer-0 ready notification (pull); -1 = off"),
    ENUM(POINT, "faults.stall.role", "none", "none|prefill|decode", faults.stall_role,
         "role of the rank that stalls (TP rank 0 of faults.stall.instance); none = off"),
    INT(POINT, "faults.stall.instance", "0", 0, 4095, faults.stall_instance,
        "instance of faults.stall.role that stalls"),
    INT(POINT, "faults.stall.request", "0", 0, 1e7, faults.stall_request,
        "the rank stalls when it takes its first request with this id or a later one"),
    INT(POINT, "faults.stall.ms", "1000", 1, 3600000, faults.stall_ms,
        "how long the rank stalls (it neither computes nor answers)"),
    ENUM(POINT, "faults.kill.role", "none", "none|prefill|decode", faults.kill_role,
         "role of the rank killed with SIGKILL (TP rank 0 of faults.kill.instance); none = off"),
    INT(POINT, "faults.kill.instance", "0", 0, 4095, faults.kill_instance,
        "instance of faults.kill.role that is killed"),
    INT(POINT, "faults.kill.request", "0", 0, 1e7, faults.kill_request,
        "the rank is killed when it takes its first request with this id or a later one"),
};

static const mixl_cfg_schema_t run_schema = {run_entries,
                                             sizeof(run_entries) / sizeof(run_entries[0])};

const mixl_cfg_schema_t *mixl_run_config_schema(void)
{
    return &run_schema;
}

mixl_status_t mixl_run_config_load(mixl_run_config_t *cfg, const char *path,
                                   const char *const *overrides, int noverrides, char *err,
                                   size_t err_len)
{
    /* Zeroed first so the struct is byte-for-byte reproducible (it is broadcast and compared). */
    memset(cfg, 0, sizeof(*cfg));
    mixl_status_t st = mixl_cfg_defaults(&run_schema, cfg, err, err_len);
    if (st != MIXL_OK) return st;
    if (path != NULL) {
        st = mixl_cfg_load_file(&run_schema, cfg, path, err, err_len);
        if (st != MIXL_OK) return st;
    }
    for (int i = 0; i < noverrides; i++) {
        st = mixl_cfg_set(&run_schema, cfg, overrides[i], err, err_len);
        if (st != MIXL_OK) return st;
    }
    return MIXL_OK;
}
