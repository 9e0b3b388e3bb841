/* Role layout and the checks that refuse impossible configs; see plan.h. */
#include "disagg/plan.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>


int mixl_dg_plan_ranks(const mixl_run_config_t *cfg)
{
    return 1 + (int)(cfg->prefill.instances * cfg->prefill.tp) +
           (int)(cfg->decode.instances * cfg->decode.tp);
}

static const char *const preset_names[] = {"tiny", "llama-3-8b", "llama-3-70b", "custom"};
static const char *const dtype_names[] = {"preset", "fp16", "bf16", "fp32", "fp8"};

mixl_status_t mixl_dg_plan_build(const mixl_run_config_t *cfg, int world, uint64_t max_prompt,
                                 mixl_dg_plan_t *plan_p, char *err, size_t err_len)
{
    mixl_dg_plan_t p;
    mixl_status_t st;

    memset(&p, 0, sizeof(p));
    st = mixl_kv_model_resolve(preset_names[cfg->model.preset], (int)cfg->model.layers,
                               (int)cfg->model.kv_heads, (int)cfg->model.head_dim,
                               dtype_names[cfg->model.dtype], (int)cfg->model.block_size, &p.model,
                               err, err_len);
    if (st != MIXL_OK) return st;
    p.world = world;
    p.prefill_instances = (int)cfg->prefill.instances;
    p.prefill_tp = (int)cfg->prefill.tp;
    p.decode_instances = (int)cfg->decode.instances;
    p.decode_tp = (int)cfg->decode.tp;
    p.max_prompt = max_prompt;
    p.max_req_blocks = mixl_kv_blocks_for(max_prompt, p.model.block_size);
    p.pool_blocks = (uint64_t)cfg->decode.pool_blocks;
    p.slots = (int)cfg->prefill.slots;
    p.prefill_mem = cfg->prefill.memory == MIXL_KVMEM_CUDA ? MIXL_MEM_CUDA : MIXL_MEM_HOST;
    p.decode_mem = cfg->decode.memory == MIXL_KVMEM_CUDA ? MIXL_MEM_CUDA : MIXL_MEM_HOST;

    if (p.model.kv_heads % p.prefill_tp != 0) {
        snprintf(err, err_len,
                 "prefill.tp: %d KV heads of model %s are not divisible by prefill.tp=%d",
                 p.model.kv_heads, p.model.name, p.prefill_tp);
        return MIXL_ERR_CONFIG;
    }
    if (p.model.kv_heads % p.decode_tp != 0) {
        snprintf(err, err_len,
                 "decode.tp: %d KV heads of model %s are not divisible by decode.tp=%d",
                 p.model.kv_heads, p.model.name, p.decode_tp);
        return MIXL_ERR_CONFIG;
    }
    int need = mixl_dg_plan_ranks(cfg);
    if (world != need) {
        snprintf(err, err_len,
                 "%s ranks than roles: the config needs %d ranks (1 router + %d prefill x TP %d + "
                 "%d decode x TP %d) but the job has %d",
                 world < need ? "fewer" : "more", need, p.prefill_instances, p.prefill_tp,
                 p.decode_instances, p.decode_tp, world);
        return MIXL_ERR_CONFIG;
    }
    if (p.max_req_blocks > p.pool_blocks) {
        snprintf(err, err_len,
                 "decode.pool_blocks: the longest prompt (%llu tokens) needs %llu blocks of %d "
                 "tokens but a decode pool holds %llu",
                 (unsigned long long)max_prompt, (unsigned long long)p.max_req_blocks,
                 p.model.block_size, (unsigned long long)p.pool_blocks);
        return MIXL_ERR_CONFIG;
    }
    if (!cfg->data_plane.rma_enabled && cfg->data_plane.fallback == MIXL_FALLBACK_NONE) {
        snprintf(err, err_len,
                 "data_plane: no data path: data_plane.rma.enabled is false and "
                 "data_plane.fallback is none");
        return MIXL_ERR_CONFIG;
    }
    if (!cfg->data_plane.rma_enabled && !(mixl_backends_available() & MIXL_BACKEND_TCP)) {
        snprintf(err, err_len,
                 "data_plane.fallback: tcp was asked for (RMA disabled) but this MIXL was built "
                 "without the TCP backend");
        return MIXL_ERR_CONFIG;
    }
    int64_t mtu = cfg->data_plane.mtu;
    if (mtu != 0 && mtu != 512 && mtu != 1024 && mtu != 2048 && mtu != 4096) {
        snprintf(
            err, err_len,
            "data_plane.tuning.mtu: %lld is not an InfiniBand MTU (512, 1024, 2048, 4096 or 0)",
            (long long)mtu);
        return MIXL_ERR_CONFIG;
    }
    /* Injected faults name things that must exist. */
    if (cfg->faults.corrupt_request >= 0 && cfg->faults.corrupt_layer >= p.model.layers) {
        snprintf(err, err_len, "faults.corrupt.layer: %lld, but model %s has %d layers",
                 (long long)cfg->faults.corrupt_layer, p.model.name, p.model.layers);
        return MIXL_ERR_CONFIG;
    }
    static const char *const fault_roles[] = {"none", "prefill", "decode"};
    const struct {
        const char *key;
        int role;
        int64_t inst;
    } hit[] = {{"faults.stall.instance", cfg->faults.stall_role, cfg->faults.stall_instance},
               {"faults.kill.instance", cfg->faults.kill_role, cfg->faults.kill_instance}};
    for (size_t i = 0; i < sizeof(hit) / sizeof(hit[0]); i++) {
        int have = hit[i].role == MIXL_FAULT_ROLE_PREFILL ? p.prefill_instances
                                                          : p.decode_instances;
        if (hit[i].role != MIXL_FAULT_ROLE_NONE && hit[i].inst >= have) {
            snprintf(err, err_len, "%s: %lld, but the job has %d %s instances", hit[i].key,
                     (long long)hit[i].inst, have, fault_roles[hit[i].role]);
            return MIXL_ERR_CONFIG;
        }
    }
#ifndef MIXL_HAVE_CUDA
    if (p.prefill_mem == MIXL_MEM_CUDA || p.decode_mem == MIXL_MEM_CUDA) {
        snprintf(err, err_len, "%s: cuda memory asked for but this MIXL was built without CUDA",
                 p.decode_mem == MIXL_MEM_CUDA ? "decode.memory" : "prefill.memory");
        return MIXL_ERR_CONFIG;
    }
#endif
    *plan_p = p;
    return MIXL_OK;
}

mixl_dg_rank_t mixl_dg_rank_of(const mixl_dg_plan_t *p, int rank)
{
    mixl_dg_rank_t r = {MIXL_ROLE_ROUTER, 0, 0};
    int nprefill = p->prefill_instances * p->prefill_tp;
    if (rank == 0) return r;
    if (rank <= nprefill) {
        r.role = MIXL_ROLE_PREFILL;
        r.inst = (rank - 1) / p->prefill_tp;
        r.tp_rank = (rank - 1) % p->prefill_tp;
        return r;
    }
    r.role = MIXL_ROLE_DECODE;
    r.inst = (rank - 1 - nprefill) / p->decode_tp;
    r.tp_rank = (rank - 1 - nprefill) % p->decode_tp;
    return r;
}

int mixl_dg_prefill_rank(const mixl_dg_plan_t *p, int inst, int tp_rank)
{
    return 1 + inst * p->prefill_tp + tp_rank;
}

int mixl_dg_decode_rank(const mixl_dg_plan_t *p, int inst, int tp_rank)
{
    return 1 + p->prefill_instances * p->prefill_tp + inst * p->decode_tp + tp_rank;
}

void mixl_dg_rank_name(const mixl_dg_plan_t *p, int rank, char name[MIXL_NAME_MAX])
{
    mixl_dg_rank_t r = mixl_dg_rank_of(p, rank);
    if (r.role == MIXL_ROLE_ROUTER)
        snprintf(name, MIXL_NAME_MAX, "router");
    else
        snprintf(name, MIXL_NAME_MAX, "%s-%d.%d",
                 r.role == MIXL_ROLE_PREFILL ? "prefill" : "decode", r.inst, r.tp_rank);
}

mixl_kv_layout_t mixl_dg_prefill_layout(const mixl_dg_plan_t *p, int tp_rank)
{
    return mixl_kv_layout(&p->model, p->prefill_tp, tp_rank, p->slots, p->max_req_blocks);
}

mixl_kv_layout_t mixl_dg_decode_layout(const mixl_dg_plan_t *p, int tp_rank)
{
    return mixl_kv_layout(&p->model, p->decode_tp, tp_rank, p->model.layers, p->pool_blocks);
}

/* Memory this process may still take: the smaller of the node's MemAvailable and the data and
 * address-space limits. *what names the bound. 0 when nothing is known. */
static uint64_t mem_limit(const char **what)
{
    uint64_t best = 0;
    char line[256];
    struct rlimit rl;
    FILE *f = fopen("/proc/meminfo", "r");

    *what = "unknown";
    if (f != NULL) {
        unsigned long long kib;
        while (fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) {
                best = (uint64_t)kib * 1024;
                *what = "available on this node (MemAvailable)";
            }
        fclose(f);
    }
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (best == 0 || (uint64_t)rl.rlim_cur < best)) {
        best = (uint64_t)rl.rlim_cur;
        *what = "this process may use (RLIMIT_DATA)";
    }
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (best == 0 || (uint64_t)rl.rlim_cur < best)) {
        best = (uint64_t)rl.rlim_cur;
        *what = "this process may map (RLIMIT_AS)";
    }
    return best;
}

static void human(double b, char *buf, size_t len)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int i = 0;
    while (b >= 1024 && i < 5) {
        b /= 1024;
        i++;
    }
    snprintf(buf, len, "%.1f %s", b, u[i]);
}

mixl_status_t mixl_dg_check_memory(const mixl_run_config_t *cfg, char *err, size_t err_len)
{
    mixl_kv_model_t m;
    const char *what;
    uint64_t limit = mem_limit(&what);
    char need_s[32], have_s[32];
    mixl_status_t st;

    if (limit == 0) return MIXL_OK;
    st = mixl_kv_model_resolve(preset_names[cfg->model.preset], (int)cfg->model.layers,
                               (int)cfg->model.kv_heads, (int)cfg->model.head_dim,
                               dtype_names[cfg->model.dtype], (int)cfg->model.block_size, &m, err,
                               err_len);
    if (st != MIXL_OK) return st;
    human((double)limit, have_s, sizeof(have_s));
    if (cfg->decode.memory != MIXL_KVMEM_CUDA && cfg->decode.tp > 0) {
        /* K and V of every layer for every block, this rank's share of the heads. */
        double pool = 2.0 * m.layers * (double)cfg->decode.pool_blocks * m.block_size *
                      ((double)m.kv_heads / (double)cfg->decode.tp) * m.head_dim * m.elem_bytes;
        if (pool > (double)limit) {
            human(pool, need_s, sizeof(need_s));
            snprintf(err, err_len,
                     "decode.pool_blocks: %lld blocks make a KV pool of %s per decode rank, more "
                     "than the %s %s; lower decode.pool_blocks",
                     (long long)cfg->decode.pool_blocks, need_s, have_s, what);
            return MIXL_ERR_CONFIG;
        }
    }
    if (cfg->data_plane.rma_enabled) {
        /* Every rank's notification window holds notif_ring slots for each rank of the job;
         * a slot is its header (seq, len, crc: 16 bytes) and MIXL_NOTIF_MAX of payload. */
        int ranks = mixl_dg_plan_ranks(cfg);
        double ring = (double)ranks * (double)cfg->data_plane.notif_ring * (16.0 + MIXL_NOTIF_MAX);
        if (ring > (double)limit) {
            human(ring, need_s, sizeof(need_s));
            snprintf(err, err_len,
                     "data_plane.notif_ring: %lld slots for each of the job's %d ranks make "
                     "notification windows of %s per rank, more than the %s %s; lower "
                     "data_plane.notif_ring",
                     (long long)cfg->data_plane.notif_ring, ranks, need_s, have_s, what);
            return MIXL_ERR_CONFIG;
        }
    }
    double router = (double)cfg->workload.requests * MIXL_DG_ROUTER_BYTES_PER_REQUEST;
    if (router > (double)limit) {
        human(router, need_s, sizeof(need_s));
        snprintf(err, err_len,
                 "workload.requests: %lld requests need about %s on the router (%d bytes each for "
                 "the workload, timelines and results), more than the %s %s; run fewer requests",
                 (long long)cfg->workload.requests, need_s, MIXL_DG_ROUTER_BYTES_PER_REQUEST,
                 have_s, what);
        return MIXL_ERR_CONFIG;
    }
    return MIXL_OK;
}

mixl_status_t mixl_dg_check_plan_memory(const mixl_run_config_t *cfg, const mixl_dg_plan_t *p,
                                        char *err, size_t err_len)
{
    const char *what;
    uint64_t limit = mem_limit(&what);
    char need_s[32], have_s[32];

    if (limit == 0 || p->prefill_mem == MIXL_MEM_CUDA || p->prefill_tp <= 0) return MIXL_OK;
    /* K and V of one layer of the longest prompt per slot, this rank's share of the heads
     * (in doubles: a product of in-range keys can pass 2^64). */
    double bufs = 2.0 * p->slots * (double)p->max_req_blocks * p->model.block_size *
                  ((double)p->model.kv_heads / p->prefill_tp) * p->model.head_dim *
                  p->model.elem_bytes;
    if (bufs <= (double)limit) return MIXL_OK;
    human(bufs, need_s, sizeof(need_s));
    human((double)limit, have_s, sizeof(have_s));
    snprintf(err, err_len,
             "prefill.slots: %lld layer buffers for the longest prompt (%llu tokens) make %s per "
             "prefill rank, more than the %s %s; lower prefill.slots or the prompt lengths",
             (long long)cfg->prefill.slots, (unsigned long long)p->max_prompt, need_s, have_s,
             what);
    return MIXL_ERR_CONFIG;
}
