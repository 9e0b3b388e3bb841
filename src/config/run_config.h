/*
 * The mixl-run experiment configuration: one struct and the table that maps
 * every YAML key onto it (run_config.c). Cross-key checks that need the MPI
 * world (rank counts, pool sizes against prompts) live in disagg/plan.c.
 */
#ifndef MIXL_CONFIG_RUN_CONFIG_H
#define MIXL_CONFIG_RUN_CONFIG_H

#include <stdint.h>

#include "config/config.h"

/* Enum values, in the order of the table's choice strings. */
typedef enum {
    MIXL_PROGRESS_AUTO,
    MIXL_PROGRESS_TTY,
    MIXL_PROGRESS_PLAIN,
    MIXL_PROGRESS_OFF
} mixl_progress_mode_t;
typedef enum {
    MIXL_PRESET_TINY,
    MIXL_PRESET_LLAMA3_8B,
    MIXL_PRESET_LLAMA3_70B,
    MIXL_PRESET_CUSTOM
} mixl_preset_t;
typedef enum {
    MIXL_DTYPE_PRESET,
    MIXL_DTYPE_FP16,
    MIXL_DTYPE_BF16,
    MIXL_DTYPE_FP32,
    MIXL_DTYPE_FP8
} mixl_dtype_t;
typedef enum { MIXL_KVMEM_HOST, MIXL_KVMEM_CUDA } mixl_kvmem_t;
typedef enum { MIXL_MODE_PUSH, MIXL_MODE_PULL } mixl_xfer_mode_t;
typedef enum { MIXL_ARRIVAL_BURST, MIXL_ARRIVAL_FIXED, MIXL_ARRIVAL_POISSON } mixl_arrival_t;
typedef enum { MIXL_PROMPT_FIXED, MIXL_PROMPT_UNIFORM, MIXL_PROMPT_FILE } mixl_prompt_dist_t;
typedef enum { MIXL_FALLBACK_NONE, MIXL_FALLBACK_TCP } mixl_fallback_t;
typedef enum { MIXL_COMPLETION_POLLING } mixl_completion_t;
typedef enum { MIXL_HOSTMEM_MPI, MIXL_HOSTMEM_MALLOC } mixl_hostmem_t;
typedef enum { MIXL_PATHCFG_AUTO, MIXL_PATHCFG_MPI, MIXL_PATHCFG_TCP } mixl_path_cfg_t;
typedef enum { MIXL_GPUPATH_AUTO, MIXL_GPUPATH_STAGED, MIXL_GPUPATH_DEVICE_WIN } mixl_gpupath_cfg_t;
typedef enum { MIXL_REG_MPI, MIXL_REG_ETCD } mixl_reg_backend_t;
/* faults.stall.role, faults.kill.role: none, or the role whose rank is hit. */
typedef enum { MIXL_FAULT_ROLE_NONE, MIXL_FAULT_ROLE_PREFILL, MIXL_FAULT_ROLE_DECODE } mixl_fault_role_t;

typedef struct {
    struct {
        char name[MIXL_CFG_STR_MAX];
        char output[MIXL_CFG_STR_MAX];
        int64_t seed;
        int64_t timeout_ms;
        int progress;
        int64_t progress_interval_ms;
        int64_t flush_requests, flush_interval_ms;
    } run;
    struct {
        int preset;
        int64_t layers, kv_heads, head_dim;
        int dtype;
        int64_t block_size;
    } model;
    struct {
        int64_t instances, tp, slots, queue;
        int memory;
        int64_t device;
        double layer_compute_us;
        int64_t corrupt_every;
    } prefill;
    struct {
        int64_t instances, tp, pool_blocks;
        int memory;
        int64_t device;
        double step_us;
        int verify;
    } decode;
    struct {
        int mode;
    } transfer;
    struct {
        int64_t requests;
        int arrival;
        double rate;
        int prompt_dist;
        int64_t prompt_tokens, prompt_min, prompt_max;
        char prompt_file[MIXL_CFG_STR_MAX];
        int64_t output_tokens;
    } workload;
    struct {
        int rma_enabled;
        char rma_interface[MIXL_CFG_STR_MAX];
        int fallback;
        int64_t mtu, queue_depth;
        int completion_mode;
        int gpu_path;
        int64_t notif_ring;
        char tcp_bind[MIXL_CFG_STR_MAX];
        char tcp_interface[MIXL_CFG_STR_MAX];
        int path;
        char tcp_secret_file[MIXL_CFG_STR_MAX];
        int tcp_allow_unauthenticated;
        int64_t tcp_connections;
        int64_t tcp_poll_us;
        int host_memory;
    } data_plane;
    struct {
        int backend;
        mixl_cfg_strlist_t endpoints;
        char ns[MIXL_CFG_STR_MAX];
        int64_t lease_ttl_s;
        int64_t timeout_ms;
    } registry;
    struct {
        int64_t port;
        char bind[MIXL_CFG_STR_MAX];
        int64_t refresh_ms;
        double linger_s;
    } metrics;
    struct {
        int64_t corrupt_request, corrupt_layer;
        int64_t drop_request;
        int stall_role;
        int64_t stall_instance, stall_request, stall_ms;
        int kill_role;
        int64_t kill_instance, kill_request;
    } faults;
} mixl_run_config_t;

/* The table behind mixl_run_config_t. */
const mixl_cfg_schema_t *mixl_run_config_schema(void);

/* Defaults, then the file (when path is not NULL), then each override in order. */
mixl_status_t mixl_run_config_load(mixl_run_config_t *cfg, const char *path,
                                   const char *const *overrides, int noverrides, char *err,
                                   size_t err_len);

#endif /* MIXL_CONFIG_RUN_CONFIG_H */
