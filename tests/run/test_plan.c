/*
 * Workload generation and the run plan, without MPI: arrival processes,
 * prompt-length distributions and files (with their error messages), the
 * rank layout of roles, and each impossible combination's message.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "disagg/plan.h"
#include "disagg/workload.h"

static mixl_run_config_t base(void)
{
    mixl_run_config_t cfg;
    char err[512];
    assert_int_equal(mixl_run_config_load(&cfg, NULL, NULL, 0, err, sizeof(err)), MIXL_OK);
    return cfg;
}

static void test_arrivals(void **state)
{
    mixl_run_config_t cfg = base();
    mixl_workload_t wl;
    char err[512];
    cfg.workload.requests = 5000;
    cfg.workload.rate = 1000;

    cfg.workload.arrival = MIXL_ARRIVAL_BURST;
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_OK);
    for (size_t i = 0; i < wl.count; i++) assert_int_equal(wl.arrival_ns[i], 0);
    mixl_workload_free(&wl);

    cfg.workload.arrival = MIXL_ARRIVAL_FIXED;
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_OK);
    for (size_t i = 0; i < wl.count; i++) assert_int_equal(wl.arrival_ns[i], i * 1000000ull);
    mixl_workload_free(&wl);

    cfg.workload.arrival = MIXL_ARRIVAL_POISSON;
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_OK);
    double mean = (double)wl.arrival_ns[wl.count - 1] / (double)(wl.count - 1);
    assert_true(fabs(mean - 1e6) < 0.1e6); /* mean gap 1/rate */
    size_t below = 0;
    for (size_t i = 1; i < wl.count; i++) {
        assert_true(wl.arrival_ns[i] >= wl.arrival_ns[i - 1]);
        if (wl.arrival_ns[i] - wl.arrival_ns[i - 1] < 1000000) below++;
    }
    /* Exponential gaps: P(gap < mean) = 1 - 1/e = 0.63. */
    assert_true(below > wl.count * 55 / 100 && below < wl.count * 71 / 100);
    uint64_t last = wl.arrival_ns[wl.count - 1];
    mixl_workload_free(&wl);
    /* Reproducible from the seed, different with another seed. */
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_OK);
    assert_int_equal(wl.arrival_ns[wl.count - 1], last);
    mixl_workload_free(&wl);
    cfg.run.seed = 2;
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_OK);
    assert_int_not_equal(wl.arrival_ns[wl.count - 1], last);
    mixl_workload_free(&wl);
}

static void test_prompts(void **state)
{
    mixl_run_config_t cfg = base();
    mixl_workload_t wl;
    char err[512];
    cfg.workload.requests = 2000;
    cfg.workload.prompt_dist = MIXL_PROMPT_UNIFORM;
    cfg.workload.prompt_min = 10;
    cfg.workload.prompt_max = 20;
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_OK);
    int seen[21] = {0};
    uint64_t total = 0;
    for (size_t i = 0; i < wl.count; i++) {
        assert_true(wl.prompt[i] >= 10 && wl.prompt[i] <= 20);
        seen[wl.prompt[i]] = 1;
        total += wl.prompt[i];
    }
    for (int v = 10; v <= 20; v++) assert_true(seen[v]);
    assert_int_equal(wl.total_prompt, total);
    assert_int_equal(wl.max_prompt, 20);
    mixl_workload_free(&wl);

    cfg.workload.prompt_min = 30;
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_ERR_CONFIG);
    assert_string_equal(err, "workload.prompt: min (30) is larger than max (20)");

    char path[128];
    snprintf(path, sizeof(path), "/tmp/mixl-test-lengths-%d.txt", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("# lengths\n5\n\n 7  # seven\n9\n", f);
    fclose(f);
    cfg.workload.prompt_dist = MIXL_PROMPT_FILE;
    cfg.workload.requests = 7;
    snprintf(cfg.workload.prompt_file, sizeof(cfg.workload.prompt_file), "%s", path);
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_OK);
    const uint64_t want[7] = {5, 7, 9, 5, 7, 9, 5};
    for (int i = 0; i < 7; i++) assert_int_equal(wl.prompt[i], want[i]);
    mixl_workload_free(&wl);

    f = fopen(path, "w");
    fputs("5\n0\n", f);
    fclose(f);
    char want_err[300];
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_ERR_CONFIG);
    snprintf(want_err, sizeof(want_err),
             "%s:2: workload.prompt.file: expected a prompt length 1..16777216, got '0'", path);
    assert_string_equal(err, want_err);
    f = fopen(path, "w");
    fputs("# nothing\n", f);
    fclose(f);
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_ERR_CONFIG);
    snprintf(want_err, sizeof(want_err), "workload.prompt.file: %s: holds no prompt lengths", path);
    assert_string_equal(err, want_err);
    unlink(path);
    assert_int_equal(mixl_workload_build(&cfg, &wl, err, sizeof(err)), MIXL_ERR_CONFIG);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_rank_layout(void **state)
{
    mixl_run_config_t cfg = base();
    mixl_dg_plan_t p;
    char err[512], name[MIXL_NAME_MAX];
    cfg.model.preset = MIXL_PRESET_LLAMA3_8B;
    cfg.prefill.instances = 2;
    cfg.prefill.tp = 2;
    cfg.decode.instances = 1;
    cfg.decode.tp = 4;
    assert_int_equal(mixl_dg_plan_ranks(&cfg), 9);
    assert_int_equal(mixl_dg_plan_build(&cfg, 9, 100, &p, err, sizeof(err)), MIXL_OK);
    mixl_dg_rank_t r = mixl_dg_rank_of(&p, 0);
    assert_int_equal(r.role, MIXL_ROLE_ROUTER);
    r = mixl_dg_rank_of(&p, 4);
    assert_int_equal(r.role, MIXL_ROLE_PREFILL);
    assert_int_equal(r.inst, 1);
    assert_int_equal(r.tp_rank, 1);
    r = mixl_dg_rank_of(&p, 7);
    assert_int_equal(r.role, MIXL_ROLE_DECODE);
    assert_int_equal(r.inst, 0);
    assert_int_equal(r.tp_rank, 2);
    assert_int_equal(mixl_dg_prefill_rank(&p, 1, 1), 4);
    assert_int_equal(mixl_dg_decode_rank(&p, 0, 3), 8);
    mixl_dg_rank_name(&p, 4, name);
    assert_string_equal(name, "prefill-1.1");
    mixl_dg_rank_name(&p, 0, name);
    assert_string_equal(name, "router");
    mixl_kv_layout_t dl = mixl_dg_decode_layout(&p, 3);
    assert_int_equal(dl.heads, 2);
    assert_int_equal(dl.head0, 6);
    assert_int_equal(dl.layers, 32);
    mixl_kv_layout_t pl = mixl_dg_prefill_layout(&p, 1);
    assert_int_equal(pl.heads, 4);
    assert_int_equal(pl.layers, cfg.prefill.slots);
    assert_int_equal(pl.blocks, 7); /* 100 tokens / 16 */
}

static void expect_plan_error(mixl_run_config_t *cfg, int world, uint64_t max_prompt,
                              const char *want)
{
    mixl_dg_plan_t p;
    char err[512] = "";
    assert_int_equal(mixl_dg_plan_build(cfg, world, max_prompt, &p, err, sizeof(err)),
                     MIXL_ERR_CONFIG);
    assert_string_equal(err, want);
}

static void test_impossible(void **state)
{
    mixl_run_config_t cfg = base();
    expect_plan_error(
        &cfg, 2, 10,
        "fewer ranks than roles: the config needs 3 ranks (1 router + 1 prefill x TP 1 "
        "+ 1 decode x TP 1) but the job has 2");
    expect_plan_error(
        &cfg, 4, 10,
        "more ranks than roles: the config needs 3 ranks (1 router + 1 prefill x TP 1 "
        "+ 1 decode x TP 1) but the job has 4");
    expect_plan_error(&cfg, 3, 256 * 16 + 1,
                      "decode.pool_blocks: the longest prompt (4097 tokens) needs 257 blocks of 16 "
                      "tokens but a decode pool holds 256");
    cfg.prefill.tp = 3;
    expect_plan_error(&cfg, 5, 10,
                      "prefill.tp: 4 KV heads of model tiny are not divisible by prefill.tp=3");
    cfg.prefill.tp = 1;
    cfg.decode.tp = 8;
    expect_plan_error(&cfg, 10, 10,
                      "decode.tp: 4 KV heads of model tiny are not divisible by decode.tp=8");
    cfg.decode.tp = 1;
    cfg.data_plane.rma_enabled = 0;
    cfg.data_plane.fallback = MIXL_FALLBACK_NONE;
    expect_plan_error(&cfg, 3, 10,
                      "data_plane: no data path: data_plane.rma.enabled is false and "
                      "data_plane.fallback is none");
    cfg.data_plane.rma_enabled = 1;
    cfg.data_plane.mtu = 1500;
    expect_plan_error(
        &cfg, 3, 10,
        "data_plane.tuning.mtu: 1500 is not an InfiniBand MTU (512, 1024, 2048, 4096 or 0)");
    cfg.data_plane.mtu = 0;
    cfg.model.preset = MIXL_PRESET_CUSTOM;
    cfg.model.layers = 2;
    expect_plan_error(&cfg, 3, 10,
                      "model: the custom preset needs model.layers, model.kv_heads, model.head_dim "
                      "and model.dtype (got layers=2 kv_heads=0 head_dim=0 dtype=preset)");
}

/* Layer buffers no node holds (Llama-3-70B, 1024 slots of a 16M-token prompt: 64 TiB) are
 * refused before anything is allocated, naming the key, the size and the bound. */
static void test_huge_prefill(void **state)
{
    mixl_run_config_t cfg = base();
    mixl_dg_plan_t p;
    char err[512] = "";
    (void)state;
    cfg.model.preset = MIXL_PRESET_LLAMA3_70B;
    cfg.prefill.slots = 1024;
    cfg.decode.pool_blocks = 1048576;
    assert_int_equal(mixl_dg_plan_build(&cfg, 3, 16777216, &p, err, sizeof(err)), MIXL_OK);
    assert_int_equal(mixl_dg_check_plan_memory(&cfg, &p, err, sizeof(err)), MIXL_ERR_CONFIG);
    assert_non_null(strstr(err, "prefill.slots: 1024 layer buffers for the longest prompt "
                                "(16777216 tokens) make 64.0 TiB per prefill rank, more than the"));
    cfg.prefill.slots = 1;
    assert_int_equal(mixl_dg_plan_build(&cfg, 3, 1024, &p, err, sizeof(err)), MIXL_OK);
    assert_int_equal(mixl_dg_check_plan_memory(&cfg, &p, err, sizeof(err)), MIXL_OK);
}

/* Notification windows of 65536 slots of 64 bytes for each of 262,146 ranks (1 TiB per rank)
 * likewise. */
static void test_huge_notif_ring(void **state)
{
    mixl_run_config_t cfg = base();
    char err[512] = "";
    (void)state;
    cfg.prefill.instances = 4096;
    cfg.prefill.tp = 64;
    cfg.data_plane.notif_ring = 65536;
    assert_int_equal(mixl_dg_check_memory(&cfg, err, sizeof(err)), MIXL_ERR_CONFIG);
    assert_non_null(strstr(err, "data_plane.notif_ring: 65536 slots for each of the job's 262146 "
                                "ranks make notification windows of 1.0 TiB per rank, more than"));
    cfg.data_plane.notif_ring = 256;
    cfg.prefill.instances = 1;
    cfg.prefill.tp = 1;
    assert_int_equal(mixl_dg_check_memory(&cfg, err, sizeof(err)), MIXL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arrivals),
        cmocka_unit_test(test_prompts),
        cmocka_unit_test(test_rank_layout),
        cmocka_unit_test(test_impossible),
        cmocka_unit_test(test_huge_prefill),
        cmocka_unit_test(test_huge_notif_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
