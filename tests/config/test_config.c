/*
 * Configuration loader: every bad-input case gives the exact
 * `file:line:col: key: expected ...` message; defaults, overrides, lists,
 * printing (which must load back to the same values), shipped configs and
 * the documentation of every key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/run_config.h"
#include "config/sweep.h"

static char tmp_path[256];

/* Load text as a file; returns the status, the message in err. */
static mixl_status_t load_text(const char *text, mixl_run_config_t *cfg, char *err, size_t len)
{
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/mixl-test-config-%d.yaml", (int)getpid());
    FILE *f = fopen(tmp_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    mixl_status_t st = mixl_run_config_load(cfg, tmp_path, NULL, 0, err, len);
    unlink(tmp_path);
    return st;
}

/* Expect a failure whose message is "<file>:<rest>". */
static void expect_error(const char *text, const char *rest)
{
    mixl_run_config_t cfg;
    char err[MIXL_CFG_ERR_MAX] = "", want[MIXL_CFG_ERR_MAX];
    mixl_status_t st = load_text(text, &cfg, err, sizeof(err));
    assert_int_equal(st, MIXL_ERR_CONFIG);
    snprintf(want, sizeof(want), "%s:%s", tmp_path, rest);
    assert_string_equal(err, want);
}

static void test_defaults(void **state)
{
    mixl_run_config_t cfg;
    char err[MIXL_CFG_ERR_MAX] = "";
    assert_int_equal(mixl_run_config_load(&cfg, NULL, NULL, 0, err, sizeof(err)), MIXL_OK);
    assert_int_equal(cfg.model.preset, MIXL_PRESET_TINY);
    assert_int_equal(cfg.model.block_size, 16);
    assert_int_equal(cfg.transfer.mode, MIXL_MODE_PUSH);
    assert_int_equal(cfg.data_plane.rma_enabled, 1);
    assert_int_equal(cfg.data_plane.queue_depth, 128);
    assert_int_equal(cfg.registry.endpoints.count, 1);
    assert_string_equal(cfg.registry.endpoints.item[0], "http://127.0.0.1:2379");
}

static void test_values(void **state)
{
    mixl_run_config_t cfg;
    char err[MIXL_CFG_ERR_MAX] = "";
    const char *text =
        "model:\n  preset: llama-3-70b\n  block_size: 32\n"
        "transfer: {mode: pull}\n"
        "workload:\n  requests: 7\n  rate: 2.5\n  arrival: poisson\n"
        "  prompt:\n    distribution: uniform\n    min: 10\n    max: 0x20\n"
        "data_plane:\n  rma:\n    enabled: no\n    interface: \"mlx5_0:1\"\n"
        "registry:\n  backend: etcd\n  endpoints:\n    - http://a:1\n    - http://b:2\n"
        "  namespace: ~\n";
    assert_int_equal(load_text(text, &cfg, err, sizeof(err)), MIXL_OK);
    assert_int_equal(cfg.model.preset, MIXL_PRESET_LLAMA3_70B);
    assert_int_equal(cfg.model.block_size, 32);
    assert_int_equal(cfg.transfer.mode, MIXL_MODE_PULL);
    assert_int_equal(cfg.workload.requests, 7);
    assert_true(cfg.workload.rate == 2.5);
    assert_int_equal(cfg.workload.arrival, MIXL_ARRIVAL_POISSON);
    assert_int_equal(cfg.workload.prompt_dist, MIXL_PROMPT_UNIFORM);
    assert_int_equal(cfg.workload.prompt_max, 32);
    assert_int_equal(cfg.data_plane.rma_enabled, 0);
    assert_string_equal(cfg.data_plane.rma_interface, "mlx5_0:1");
    assert_int_equal(cfg.registry.backend, MIXL_REG_ETCD);
    assert_int_equal(cfg.registry.endpoints.count, 2);
    assert_string_equal(cfg.registry.endpoints.item[1], "http://b:2");
    assert_string_equal(cfg.registry.ns, "");
}

static void test_empty_file(void **state)
{
    mixl_run_config_t cfg;
    char err[MIXL_CFG_ERR_MAX] = "";
    assert_int_equal(load_text("", &cfg, err, sizeof(err)), MIXL_OK);
    assert_int_equal(cfg.workload.requests, 32);
    assert_int_equal(load_text("# only a comment\n", &cfg, err, sizeof(err)), MIXL_OK);
}

static void test_malformed(void **state)
{
    expect_error("model:\n  preset: tiny\n layers: 3\n",
                 "3:2: malformed YAML: did not find expected key (while parsing a block mapping "
                 "at line 1 col 1)");
    expect_error("model:\n\tpreset: tiny\n",
                 "2:1: malformed YAML: found character that cannot start any token (while "
                 "scanning for the next token at line 2 col 1)");
    expect_error("workload: {requests: 3\n",
                 "2:1: malformed YAML: did not find expected ',' or '}' (while parsing a flow "
                 "mapping at line 1 col 11)");
}

static void test_unknown_key(void **state)
{
    expect_error("workload:\n  reqests: 3\n",
                 "2:3: workload.reqests: unknown key (did you mean workload.requests?)");
    expect_error("colour: blue\n", "1:1: colour: unknown key");
    expect_error("data_plane:\n  rmx:\n    enabled: true\n",
                 "2:3: data_plane.rmx: unknown key (did you mean data_plane.rma?)");
    expect_error("data_plane:\n  nixl:\n    enabled: true\n", "2:3: data_plane.nixl: unknown key");
}

static void test_duplicate_key(void **state)
{
    expect_error("workload:\n  requests: 3\n  requests: 4\n",
                 "3:3: workload.requests: duplicate key (first given at line 2)");
    expect_error("model: {preset: tiny}\nmodel: {layers: 2}\n",
                 "2:1: model: duplicate key (first given at line 1)");
}

static void test_wrong_type(void **state)
{
    expect_error("workload:\n  requests: many\n",
                 "2:13: workload.requests: expected integer 1..10000000, got 'many'");
    expect_error("workload:\n  requests: \"4\"\n",
                 "2:13: workload.requests: expected integer 1..10000000, got quoted string \"4\"");
    expect_error("decode:\n  verify: maybe\n",
                 "2:11: decode.verify: expected boolean (true or false), got 'maybe'");
    expect_error("workload:\n  rate: fast\n",
                 "2:9: workload.rate: expected number 0.001..1e+09, got 'fast'");
    expect_error("transfer:\n  mode: sideways\n",
                 "2:9: transfer.mode: expected one of push, pull, got 'sideways'");
    expect_error("workload:\n  requests:\n",
                 "2:12: workload.requests: expected integer 1..10000000, got no value");
    expect_error("workload:\n  requests: [1, 2]\n",
                 "2:13: workload.requests: expected integer 1..10000000, got a sequence");
    expect_error("model: tiny\n",
                 "1:8: model: expected a mapping (a section of keys), got a scalar");
    expect_error("- 1\n- 2\n",
                 "1:1: expected a mapping of sections at the top level, got a sequence");
    expect_error(
        "registry:\n  endpoints:\n    - {a: 1}\n",
        "3:7: registry.endpoints: expected list of at most 8 strings, got a mapping in the list");
}

static void test_out_of_range(void **state)
{
    expect_error("workload:\n  requests: 0\n",
                 "2:13: workload.requests: expected integer 1..10000000, got 0 (out of range)");
    expect_error("data_plane:\n  tuning:\n    queue_depth: 100000\n",
                 "3:18: data_plane.tuning.queue_depth: expected integer 1..65536, got 100000 (out "
                 "of range)");
    expect_error("prefill:\n  layer_compute_us: -1\n",
                 "2:21: prefill.layer_compute_us: expected number 0..1e+08, got -1 (out of range)");
}

static void test_second_document(void **state)
{
    expect_error("workload: {requests: 2}\n---\nworkload: {requests: 3}\n",
                 "3:1: expected one YAML document, found a second one");
}

static void test_missing_file(void **state)
{
    mixl_run_config_t cfg;
    char err[MIXL_CFG_ERR_MAX] = "";
    assert_int_equal(mixl_run_config_load(&cfg, "/nonexistent/x.yaml", NULL, 0, err, sizeof(err)),
                     MIXL_ERR_IO);
    assert_string_equal(err, "/nonexistent/x.yaml: cannot open the configuration file: No such "
                             "file or directory");
}

static void test_overrides(void **state)
{
    mixl_run_config_t cfg;
    char err[MIXL_CFG_ERR_MAX] = "";
    const char *ok[] = {"workload.requests=5", "transfer.mode=pull", "run.name=\"x y\"",
                        "registry.endpoints=http://h1:1, http://h2:2"};
    assert_int_equal(mixl_run_config_load(&cfg, NULL, ok, 4, err, sizeof(err)), MIXL_OK);
    assert_int_equal(cfg.workload.requests, 5);
    assert_int_equal(cfg.transfer.mode, MIXL_MODE_PULL);
    assert_string_equal(cfg.run.name, "x y");
    assert_int_equal(cfg.registry.endpoints.count, 2);
    assert_string_equal(cfg.registry.endpoints.item[1], "http://h2:2");

    const char *bad1[] = {"workload.requests=abc"};
    assert_int_equal(mixl_run_config_load(&cfg, NULL, bad1, 1, err, sizeof(err)), MIXL_ERR_CONFIG);
    assert_string_equal(err,
                        "--set:1:19: workload.requests: expected integer 1..10000000, got 'abc'");
    const char *bad2[] = {"workload.request=3"};
    assert_int_equal(mixl_run_config_load(&cfg, NULL, bad2, 1, err, sizeof(err)), MIXL_ERR_CONFIG);
    assert_string_equal(
        err, "--set:1:1: workload.request: unknown key (did you mean workload.requests?)");
    const char *bad3[] = {"workload.requests"};
    assert_int_equal(mixl_run_config_load(&cfg, NULL, bad3, 1, err, sizeof(err)), MIXL_ERR_CONFIG);
    assert_string_equal(err, "--set:1:1: expected key=value, got 'workload.requests'");
}

static void test_print_roundtrip(void **state)
{
    const mixl_cfg_schema_t *schema = mixl_run_config_schema();
    mixl_run_config_t a, b;
    char err[MIXL_CFG_ERR_MAX] = "";
    const char *ov[] = {"run.name=with \"quotes\" and \\", "workload.rate=0.3",
                        "registry.endpoints=http://x:1,http://y:2", "model.preset=llama-3-8b",
                        "decode.verify=false"};
    assert_int_equal(mixl_run_config_load(&a, NULL, ov, 5, err, sizeof(err)), MIXL_OK);
    char *text = mixl_cfg_to_string(schema, &a);
    assert_non_null(text);
    memset(&b, 0, sizeof(b));
    assert_int_equal(mixl_cfg_defaults(schema, &b, err, sizeof(err)), MIXL_OK);
    assert_int_equal(
        mixl_cfg_load_string(schema, &b, "printed", text, strlen(text), err, sizeof(err)), MIXL_OK);
    free(text);
    assert_memory_equal(&a, &b, sizeof(a));

    /* With docs: still valid YAML that loads back. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mixl_cfg_print(schema, &a, f, 1);
    fclose(f);
    assert_non_null(strstr(buf, "# requests to run [integer 1..10000000]"));
    assert_int_equal(mixl_cfg_load_string(schema, &b, "printed", buf, len, err, sizeof(err)),
                     MIXL_OK);
    free(buf);
    assert_memory_equal(&a, &b, sizeof(a));
}

static void test_docs_cover_every_key(void **state)
{
    const mixl_cfg_schema_t *schema = mixl_run_config_schema();
    FILE *f = fopen(MIXL_SOURCE_DIR "/docs/configuration.md", "r");
    assert_non_null(f);
    static char doc[1 << 18];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < schema->count; i++) {
        char want[300];
        snprintf(want, sizeof(want), "`%s`", schema->entries[i].key);
        if (strstr(doc, want) == NULL) fail_msg("docs/configuration.md does not document %s", want);
    }
}

/* A sweep point reuses the set-up unless a key flagged MIXL_CFG_SETUP changes (every value type). */
static void test_sweep_setup_keys(void **state)
{
    const mixl_cfg_schema_t *schema = mixl_run_config_schema();
    static mixl_run_config_t a, b;
    char err[MIXL_CFG_ERR_MAX] = "";
    assert_int_equal(mixl_run_config_load(&a, NULL, NULL, 0, err, sizeof(err)), MIXL_OK);
    static const char *const keep[] = {
        "workload.rate=7",        "workload.requests=3",      "workload.prompt.max=4096",
        "transfer.mode=pull",     "prefill.queue=9",          "prefill.layer_compute_us=5",
        "decode.step_us=2",       "decode.verify=false",      "run.seed=42",
        "metrics.port=9464",      "data_plane.tuning.queue_depth=7", "run.name=x",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        assert_int_equal(mixl_run_config_load(&b, NULL, &keep[i], 1, err, sizeof(err)), MIXL_OK);
        if (mixl_sweep_setup_change(schema, &a, &b) != NULL)
            fail_msg("%s: the set-up would be made afresh", keep[i]);
    }
    static const struct {
        const char *set, *key;
    } renew[] = {
        {"decode.memory=cuda", "decode.memory"},         /* enum */
        {"prefill.tp=2", "prefill.tp"},                  /* integer */
        {"decode.pool_blocks=64", "decode.pool_blocks"}, /* pool geometry */
        {"model.block_size=8", "model.block_size"},
        {"data_plane.path=tcp", "data_plane.path"},
        {"data_plane.rma.enabled=false", "data_plane.rma.enabled"}, /* bool */
        {"data_plane.tcp.bind=127.0.0.2", "data_plane.tcp.bind"},   /* string */
        {"registry.endpoints=http://a:1,http://b:2", "registry.endpoints"}, /* list */
        {"run.timeout_ms=1000", "run.timeout_ms"},
    };
    for (size_t i = 0; i < sizeof(renew) / sizeof(renew[0]); i++) {
        assert_int_equal(mixl_run_config_load(&b, NULL, &renew[i].set, 1, err, sizeof(err)),
                         MIXL_OK);
        const char *got = mixl_sweep_setup_change(schema, &a, &b);
        if (got == NULL || strcmp(got, renew[i].key) != 0)
            fail_msg("%s: set-up change %s, expected %s", renew[i].set, got ? got : "none",
                     renew[i].key);
    }
}

static void test_shipped_configs_load(void **state)
{
    static const char *names[] = {"default",     "llama3-8b", "llama3-70b",
                                  "tp-mismatch", "pull",      "etcd"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[512], err[MIXL_CFG_ERR_MAX] = "";
        mixl_run_config_t cfg;
        snprintf(path, sizeof(path), "%s/configs/%s.yaml", MIXL_SOURCE_DIR, names[i]);
        if (mixl_run_config_load(&cfg, path, NULL, 0, err, sizeof(err)) != MIXL_OK)
            fail_msg("%s", err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_second_document),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_print_roundtrip),
        cmocka_unit_test(test_docs_cover_every_key),
        cmocka_unit_test(test_sweep_setup_keys),
        cmocka_unit_test(test_shipped_configs_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
