/*
 * Validate mixl-diag's JSON report (parsed with jansson): every section and
 * field a script may rely on is present with the right type, and the values
 * agree with how the run was set up.
 *
 *   diag_json_check <report.json> --ranks N [--registry down|up|none]
 *                   [--rdma-fixture]
 *
 * --ranks N           the world size mixl-diag ran with; with N >= 2 the MPI
 *                     one-sided self-test must have run and verified its data
 * --registry down     an unreachable etcd must be reported, as a finding
 * --registry up       a healthy etcd with a latency must be reported
 * --rdma-fixture      the sysfs tree written by run_diag.sh (mlx5_0 port 1
 *                     ACTIVE, port 2 DOWN) must be read back as such
 * --expect-pml NAME   the pml Open MPI selected must be NAME, and the osc
 *                     component of the same name must be loaded
 * --selftest-ok       both agent self-tests (MPI and TCP) must have passed with
 *                     their data verified: a failure reported as a finding is
 *                     still a failure here
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static int failures;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "diag_json_check: " __VA_ARGS__); \
            fputc('\n', stderr);                           \
            failures++;                                    \
        }                                                  \
    } while (0)

/* Value at a dotted path ("mpi.pml.requested"); NULL when absent. */
static json_t *at(json_t *root, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *v = root;
    for (char *save, *tok = strtok_r(buf, ".", &save); tok && v; tok = strtok_r(NULL, ".", &save))
        v = json_object_get(v, tok);
    return v;
}

static void need(json_t *root, const char *path, json_type type)
{
    json_t *v = at(root, path);
    CHECK(v, "missing %s", path);
    if (v)
        CHECK(json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v)),
              "%s has the wrong type (%d, expected %d)", path, json_typeof(v), type);
}

static void need_or_null(json_t *root, const char *path, json_type type)
{
    json_t *v = at(root, path);
    CHECK(v, "missing %s", path);
    if (v && !json_is_null(v))
        CHECK(json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v)),
              "%s has the wrong type", path);
}

static int has_finding(json_t *root, const char *code, const char *severity)
{
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(root, "findings"), i, f) {
        if (!strcmp(json_string_value(json_object_get(f, "code")), code) &&
            (!severity || !strcmp(json_string_value(json_object_get(f, "severity")), severity)))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *registry = "none";
    long ranks = -1;
    int rdma_fixture = 0, selftest_ok = 0;
    const char *expect_pml = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ranks") && i + 1 < argc)
            ranks = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--registry") && i + 1 < argc)
            registry = argv[++i];
        else if (!strcmp(argv[i], "--expect-pml") && i + 1 < argc)
            expect_pml = argv[++i];
        else if (!strcmp(argv[i], "--rdma-fixture"))
            rdma_fixture = 1;
        else if (!strcmp(argv[i], "--selftest-ok"))
            selftest_ok = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "diag_json_check: unknown option %s\n", argv[i]);
            return 2;
        } else
            file = argv[i];
    }
    if (!file || ranks < 1) {
        fprintf(stderr, "usage: diag_json_check <report.json> --ranks N [--registry down|up|none] "
                        "[--rdma-fixture] [--expect-pml NAME] [--selftest-ok]\n");
        return 2;
    }
    json_error_t err;
    json_t *r = json_load_file(file, 0, &err);
    if (!r) {
        fprintf(stderr, "diag_json_check: %s:%d:%d: not JSON: %s\n", file, err.line, err.column,
                err.text);
        return 1;
    }

    need(r, "tool", JSON_STRING);
    need(r, "mixl_version", JSON_STRING);
    need(r, "host", JSON_STRING);
    need(r, "ranks", JSON_INTEGER);
    need(r, "nodes", JSON_INTEGER);
    need(r, "mixl_mca_defaults", JSON_TRUE);
    CHECK(json_integer_value(at(r, "ranks")) == ranks, "ranks is %lld, expected %ld",
          json_integer_value(at(r, "ranks")), ranks);
    CHECK(json_integer_value(at(r, "nodes")) >= 1, "nodes < 1");

    need(r, "mpi.library", JSON_STRING);
    need(r, "mpi.standard", JSON_STRING);
    need(r, "mpi.thread_requested", JSON_STRING);
    need(r, "mpi.thread_provided", JSON_STRING);
    need_or_null(r, "mpi.cuda_aware_compile", JSON_TRUE);
    need_or_null(r, "mpi.cuda_aware_runtime", JSON_TRUE);
    CHECK(strstr(json_string_value(at(r, "mpi.library")) ?: "", "MPI") != NULL,
          "mpi.library does not name an MPI library");
    static const char *const fws[] = {"pml", "osc", "btl"};
    for (int k = 0; k < 3; k++) {
        char p[64];
        snprintf(p, sizeof(p), "mpi.%s.requested", fws[k]);
        need(r, p, JSON_STRING);
        snprintf(p, sizeof(p), "mpi.%s.loaded", fws[k]);
        need(r, p, JSON_ARRAY);
    }
    need_or_null(r, "mpi.pml.selected", JSON_STRING);
    /* One-sided MPI needs at least one osc component. */
    CHECK(json_array_size(at(r, "mpi.osc.loaded")) > 0, "no osc component loaded");

    need_or_null(r, "ucx.version", JSON_STRING);
    need_or_null(r, "ucx.transports", JSON_ARRAY);
    need(r, "gpu.devices", JSON_ARRAY);
    need(r, "gpu.cuda_compiled", JSON_TRUE);
    need(r, "rdma.devices", JSON_ARRAY);
    need(r, "registry.etcd.checked", JSON_TRUE);
    need(r, "registry.mpi.checked", JSON_TRUE);
    /* Open MPI provides MPI_THREAD_MULTIPLE: the embedded registry must have answered. */
    if (!strcmp(json_string_value(at(r, "mpi.thread_provided")) ?: "", "multiple")) {
        CHECK(json_is_true(at(r, "registry.mpi.reachable")), "embedded MPI registry not reachable: %s",
              json_string_value(at(r, "registry.mpi.error")) ?: "");
        CHECK(json_integer_value(at(r, "registry.mpi.client_rank")) == ranks - 1,
              "MPI registry client is not the last rank");
        CHECK(json_is_real(at(r, "registry.mpi.get_ms")) && json_real_value(at(r, "registry.mpi.get_ms")) > 0,
              "no MPI registry get latency");
    }
    need(r, "selftest", JSON_ARRAY);
    need(r, "findings", JSON_ARRAY);

    size_t i;
    json_t *f;
    json_array_foreach(at(r, "findings"), i, f) {
        const char *sev = json_string_value(json_object_get(f, "severity"));
        CHECK(sev && (!strcmp(sev, "error") || !strcmp(sev, "warning") || !strcmp(sev, "info")),
              "finding %zu has a bad severity", i);
        CHECK(json_is_string(json_object_get(f, "code")), "finding %zu has no code", i);
        CHECK(json_is_string(json_object_get(f, "message")), "finding %zu has no message", i);
    }
    /* The findings must agree with the sections they come from. */
    if (json_array_size(at(r, "rdma.devices")) == 0)
        CHECK(has_finding(r, "no_rdma_device", NULL), "no RDMA device but no no_rdma_device finding");
    if (!json_is_true(at(r, "mpi.cuda_aware_compile")))
        CHECK(has_finding(r, "mpi_not_cuda_aware", NULL),
              "MPI not CUDA-aware but no mpi_not_cuda_aware finding");

    json_t *tests = at(r, "selftest");
    json_t *st = json_array_get(tests, 0);
    CHECK(st && !strcmp(json_string_value(json_object_get(st, "path")) ?: "", "mpi-rma"),
          "selftest[0] is not the mpi-rma path");
    if (ranks >= 2) {
        CHECK(json_array_size(tests) == 4, "expected 4 self-tests, found %zu", json_array_size(tests));
        static const char *const wins[] = {"MPI_Win_allocate", "MPI_Win_create"};
        for (int w = 0; w < 2; w++) {
            st = json_array_get(tests, (size_t)w);
            const char *status = json_string_value(json_object_get(st, "status"));
            CHECK(!strcmp(json_string_value(json_object_get(st, "path")) ?: "", "mpi-rma") &&
                  !strcmp(json_string_value(json_object_get(st, "window")) ?: "", wins[w]),
                  "selftest[%d] is not mpi-rma on %s", w, wins[w]);
            CHECK(status && !strcmp(status, "ok"), "mpi-rma %s status %s, expected ok", wins[w],
                  status ? status : "(none)");
            CHECK(json_is_true(json_object_get(st, "data_ok")), "mpi-rma %s data check failed",
                  wins[w]);
            static const char *const nums[] = {"put_latency_us", "get_latency_us",
                                               "put_bandwidth_gbit_s", "get_bandwidth_gbit_s"};
            for (int k = 0; k < 4; k++) {
                json_t *v = json_object_get(st, nums[k]);
                CHECK(json_is_real(v) && json_real_value(v) > 0.0,
                      "mpi-rma %s %s missing or not > 0", wins[w], nums[k]);
            }
            CHECK(json_is_boolean(json_object_get(st, "same_node")), "selftest same_node missing");
        }

        /* The notification prerequisites were measured, and reported when they fail. */
        st = json_array_get(tests, 1);
        json_t *rounds = json_object_get(st, "ordering_rounds");
        json_t *viol = json_object_get(st, "ordering_violations");
        json_t *lost = json_object_get(st, "ordering_flags_lost");
        json_t *passive = json_object_get(st, "passive_target_progress");
        CHECK(json_is_integer(rounds) && json_integer_value(rounds) >= 1, "no ordering rounds");
        CHECK(json_is_integer(viol) && json_is_integer(lost), "ordering counts missing");
        CHECK(json_is_boolean(passive), "passive_target_progress missing");
        if (json_integer_value(viol) > 0 || json_integer_value(lost) > 0)
            CHECK(has_finding(r, "rma_flush_ordering", "error"),
                  "ordering violations without an rma_flush_ordering finding");
        if (json_is_false(passive))
            CHECK(has_finding(r, "rma_needs_target_progress", NULL),
                  "no passive progress without an rma_needs_target_progress finding");

        /* The agent paths ran (MPI, then TCP); a failure must be explained by a finding. */
        static const char *const backends[] = {"mpi", "tcp"};
        for (int b = 0; b < 2; b++) {
            json_t *ag = json_array_get(tests, (size_t)(2 + b));
            const char *ag_status = json_string_value(json_object_get(ag, "status"));
            CHECK(ag && !strcmp(json_string_value(json_object_get(ag, "path")) ?: "", "mixl-agent") &&
                  !strcmp(json_string_value(json_object_get(ag, "backend")) ?: "", backends[b]),
                  "selftest[%d] is not the mixl-agent path over %s", 2 + b, backends[b]);
            CHECK(ag_status && strcmp(ag_status, "skipped"), "mixl-agent %s self-test did not run",
                  backends[b]);
            CHECK(json_is_string(json_object_get(ag, "data_path")), "mixl-agent data_path missing");
            if (selftest_ok)
                CHECK(ag_status && !strcmp(ag_status, "ok") && json_is_true(json_object_get(ag, "data_ok")),
                      "mixl-agent %s self-test status %s, expected ok with its data verified (%s)",
                      backends[b], ag_status ? ag_status : "(none)",
                      json_string_value(json_object_get(ag, "error")) ?: "no error given");
            if (ag_status && !strcmp(ag_status, "ok")) {
                CHECK(json_is_true(json_object_get(ag, "data_ok")), "agent ok without data_ok");
                static const char *const agnums[] = {"write_latency_us", "read_latency_us",
                                                     "write_bandwidth_gbit_s",
                                                     "read_bandwidth_gbit_s"};
                for (int k = 0; k < 4; k++) {
                    json_t *v = json_object_get(ag, agnums[k]);
                    CHECK(json_is_real(v) && json_real_value(v) > 0.0,
                          "agent %s %s missing or not > 0", backends[b], agnums[k]);
                }
            } else {
                CHECK(json_is_string(json_object_get(ag, "error")),
                      "failed agent self-test without error");
                CHECK(has_finding(r, "selftest_failed", "error"),
                      "failed agent self-test without a selftest_failed finding");
            }
        }
    } else {
        const char *status = json_string_value(json_object_get(st, "status"));
        CHECK(status && !strcmp(status, "skipped"), "one rank: self-test should be skipped");
    }

    if (!strcmp(registry, "down")) {
        CHECK(json_is_true(at(r, "registry.etcd.checked")), "etcd not checked");
        CHECK(json_is_false(at(r, "registry.etcd.reachable")), "closed port reported reachable");
        CHECK(json_is_string(at(r, "registry.etcd.error")), "no registry.etcd.error message");
        CHECK(strcmp(json_string_value(at(r, "registry.etcd.mixl_client.status")) ?: "ok", "ok"),
              "MIXL's etcd client reported ok against a closed port");
        CHECK(has_finding(r, "registry_unreachable", "error"), "no registry_unreachable finding");
    } else if (!strcmp(registry, "up")) {
        CHECK(json_is_true(at(r, "registry.etcd.reachable")), "running etcd reported unreachable");
        CHECK(json_is_true(at(r, "registry.etcd.healthy")), "running etcd reported unhealthy");
        CHECK(json_is_real(at(r, "registry.etcd.latency_ms")) &&
              json_real_value(at(r, "registry.etcd.latency_ms")) > 0.0, "no registry latency");
        CHECK(!strcmp(json_string_value(at(r, "registry.etcd.mixl_client.status")) ?: "", "ok"),
              "MIXL's etcd client failed: %s",
              json_string_value(at(r, "registry.etcd.mixl_client.error")) ?: "");
        CHECK(json_is_real(at(r, "registry.etcd.mixl_client.get_ms")), "no etcd client latency");
        CHECK(!has_finding(r, "registry_unreachable", NULL), "healthy etcd reported unreachable");
    } else {
        CHECK(json_is_false(at(r, "registry.etcd.checked")), "etcd checked without --etcd");
    }

    if (rdma_fixture) {
        json_t *dev = json_array_get(at(r, "rdma.devices"), 0);
        CHECK(json_array_size(at(r, "rdma.devices")) == 1, "expected one RDMA device");
        CHECK(!strcmp(json_string_value(json_object_get(dev, "name")) ?: "", "mlx5_0"),
              "device name not mlx5_0");
        json_t *p1 = json_array_get(json_object_get(dev, "ports"), 0);
        json_t *p2 = json_array_get(json_object_get(dev, "ports"), 1);
        CHECK(!strcmp(json_string_value(json_object_get(p1, "state")) ?: "", "ACTIVE"),
              "port 1 not ACTIVE");
        CHECK(!strcmp(json_string_value(json_object_get(p1, "rate")) ?: "", "200 Gb/sec (4X HDR)"),
              "port 1 rate not read");
        CHECK(!strcmp(json_string_value(json_object_get(p2, "state")) ?: "", "DOWN"),
              "port 2 not DOWN");
        CHECK(has_finding(r, "rdma_port_down", "warning"), "no rdma_port_down finding for port 2");
        CHECK(!has_finding(r, "no_rdma_device", NULL), "no_rdma_device reported with a device");
    }

    if (expect_pml) {
        const char *sel = json_string_value(at(r, "mpi.pml.selected"));
        CHECK(sel && !strcmp(sel, expect_pml), "pml selected is %s, expected %s",
              sel ? sel : "(unknown)", expect_pml);
        int found = 0;
        json_array_foreach(at(r, "mpi.osc.loaded"), i, f)
            found |= !strcmp(json_string_value(f), expect_pml);
        CHECK(found, "osc/%s not loaded", expect_pml);
    }

    json_decref(r);
    if (failures)
        fprintf(stderr, "diag_json_check: %d check(s) failed in %s\n", failures, file);
    else
        printf("diag_json_check: %s valid\n", file);
    return failures ? 1 : 0;
}
