/*
 * The run plan: which rank plays which role, the model shape and the memory
 * every role needs, derived from the config and the MPI world size. Every
 * config that cannot work is refused here, on rank 0, before any rank
 * allocates anything, with one message naming the numbers.
 *
 * Ranks: 0 = router (and the embedded registry), then prefill instance i,
 * TP rank t at 1 + i*prefill.tp + t, then decode instance j, TP rank t at
 * 1 + P*prefill.tp + j*decode.tp + t.
 */
#ifndef MIXL_DISAGG_PLAN_H
#define MIXL_DISAGG_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/agent.h>

#include "config/run_config.h"
#include "kv/layout.h"
#include "kv/model.h"

typedef enum { MIXL_ROLE_ROUTER = 0, MIXL_ROLE_PREFILL = 1, MIXL_ROLE_DECODE = 2 } mixl_role_t;

typedef struct {
    mixl_kv_model_t model;
    int world;
    int prefill_instances, prefill_tp;
    int decode_instances, decode_tp;
    uint64_t max_prompt;     /* longest prompt in the workload (tokens) */
    uint64_t max_req_blocks; /* blocks it needs */
    uint64_t pool_blocks;
    int slots;
    mixl_mem_type_t prefill_mem, decode_mem;
} mixl_dg_plan_t;

typedef struct {
    mixl_role_t role;
    int inst;    /* instance index within the role */
    int tp_rank; /* rank within the instance */
} mixl_dg_rank_t;

/* Ranks the config needs: 1 + P*prefill.tp + D*decode.tp. */
int mixl_dg_plan_ranks(const mixl_run_config_t *cfg);

/*
 * Check the config against the world size and the longest prompt, and fill
 * the plan. err gets one line naming the numbers at fault.
 */
mixl_status_t mixl_dg_plan_build(const mixl_run_config_t *cfg, int world, uint64_t max_prompt,
                                 mixl_dg_plan_t *plan_p, char *err, size_t err_len);

/*
 * Refuse, before anything is allocated, values in range that this node cannot
 * hold: a decode KV pool larger than the memory the process may take, a
 * notification window (notif_ring slots per rank of the job) as large, or more
 * requests than the router's per-request records fit in. The bound is the
 * smaller of MemAvailable, RLIMIT_DATA and RLIMIT_AS. MIXL_ERR_CONFIG with the
 * key, the sizes and the bound in err.
 */
#define MIXL_DG_ROUTER_BYTES_PER_REQUEST 512
mixl_status_t mixl_dg_check_memory(const mixl_run_config_t *cfg, char *err, size_t err_len);

/*
 * The same for what only the plan knows (the longest prompt comes from the
 * workload): a prefill rank's layer buffers, prefill.slots of them, each one
 * layer of the longest prompt. Host memory only; MIXL_ERR_CONFIG as above.
 */
mixl_status_t mixl_dg_check_plan_memory(const mixl_run_config_t *cfg, const mixl_dg_plan_t *plan,
                                        char *err, size_t err_len);

mixl_dg_rank_t mixl_dg_rank_of(const mixl_dg_plan_t *p, int rank);
int mixl_dg_prefill_rank(const mixl_dg_plan_t *p, int inst, int tp_rank);
int mixl_dg_decode_rank(const mixl_dg_plan_t *p, int inst, int tp_rank);

/* Agent name of a rank: "router", "prefill-<i>.<t>", "decode-<j>.<t>". */
void mixl_dg_rank_name(const mixl_dg_plan_t *p, int rank, char name[MIXL_NAME_MAX]);

/* A prefill rank's layer buffers: slots regions of one layer each, sized for the longest prompt. */
mixl_kv_layout_t mixl_dg_prefill_layout(const mixl_dg_plan_t *p, int tp_rank);
/* A decode rank's pool: every layer, pool_blocks blocks. */
mixl_kv_layout_t mixl_dg_decode_layout(const mixl_dg_plan_t *p, int tp_rank);

#endif /* MIXL_DISAGG_PLAN_H */
