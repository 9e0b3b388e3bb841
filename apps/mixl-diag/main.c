/*
 * mixl-diag: one command that tells a user what MIXL will run on and how
 * fast it is — MPI library and its components, CUDA awareness, UCX, GPUs,
 * RDMA ports, the registry, and a short transport self-test — and ends with
 * findings in plain words. Runs alone (MPI singleton) or under mpirun/srun;
 * the self-test between ranks needs at least two ranks.
 *
 *   mixl-diag [--json] [--json-file PATH] [--etcd URL] [--registry-timeout MS]
 *             [--selftest-seconds S] [--thread single|funneled|serialized|multiple]
 *             [--system-mca] [--strict]
 *
 * MPI starts with the MCA defaults every MIXL program applies
 * (mixl_mpi_defaults: pml/osc ucx unless the user chose), so the report shows
 * what mixl-run will get; --system-mca leaves them out to show the MPI
 * library's own selection.
 *
 * Exit status: 0 whatever the findings (an unreachable registry or a missing
 * device is a finding, not a failure), 1 with --strict when a finding has
 * severity "error", 2 on bad usage or when --json-file cannot be written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mixl/launch.h>
#include <mixl/version.h>

#include "diag.h"

static const struct {
    const char *name;
    int level;
} thread_levels[] = {
    {"single", MPI_THREAD_SINGLE},
    {"funneled", MPI_THREAD_FUNNELED},
    {"serialized", MPI_THREAD_SERIALIZED},
    {"multiple", MPI_THREAD_MULTIPLE},
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mixl-diag [--json] [--json-file PATH] [--etcd URL] [--registry-timeout MS]\n"
            "                 [--selftest-seconds S] [--thread single|funneled|serialized|multiple]\n"
            "                 [--system-mca] [--strict]\n"
            "  --json              print the report as JSON instead of a table\n"
            "  --json-file PATH    also write the JSON report to PATH\n"
            "  --etcd URL          check an etcd registry endpoint (GET URL/health)\n"
            "  --registry-timeout  per-request timeout in ms (default 2000)\n"
            "  --selftest-seconds  time allowed to each self-test loop (default 0.3)\n"
            "  --thread LEVEL      thread level to request from MPI (default multiple)\n"
            "  --system-mca        start MPI without MIXL's MCA defaults (pml/osc ucx)\n"
            "  --strict            exit 1 when a finding has severity \"error\"\n"
            "Run under mpirun/srun with 2 or more ranks to measure the transport.\n");
}

/* Parse arguments before MPI_Init so --help and bad usage need no MPI. */
static int parse_args(int argc, char **argv, mixl_diag_t *d, int *json_p, int *strict_p,
                      int *system_mca_p, const char **json_file_p)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            *json_p = 1;
        } else if (!strcmp(a, "--strict")) {
            *strict_p = 1;
        } else if (!strcmp(a, "--system-mca")) {
            *system_mca_p = 1;
        } else if (!strcmp(a, "--json-file") && v) {
            *json_file_p = v;
            i++;
        } else if (!strcmp(a, "--etcd") && v) {
            d->etcd_url = v;
            i++;
        } else if (!strcmp(a, "--registry-timeout") && v) {
            char *end;
            long ms = strtol(v, &end, 10);
            if (*end || ms < 1 || ms > 600000) {
                fprintf(stderr, "mixl-diag: --registry-timeout %s: expected 1..600000 ms\n", v);
                return 2;
            }
            d->registry_timeout_ms = (int)ms;
            i++;
        } else if (!strcmp(a, "--selftest-seconds") && v) {
            char *end;
            double s = strtod(v, &end);
            if (*end || !(s > 0.0 && s <= 60.0)) {
                fprintf(stderr, "mixl-diag: --selftest-seconds %s: expected (0, 60]\n", v);
                return 2;
            }
            d->selftest_budget_s = s;
            i++;
        } else if (!strcmp(a, "--thread") && v) {
            size_t k;
            for (k = 0; k < sizeof(thread_levels) / sizeof(thread_levels[0]); k++)
                if (!strcmp(v, thread_levels[k].name))
                    break;
            if (k == sizeof(thread_levels) / sizeof(thread_levels[0])) {
                fprintf(stderr, "mixl-diag: --thread %s: expected single, funneled, serialized "
                                "or multiple\n", v);
                return 2;
            }
            d->thread_requested = thread_levels[k].level;
            i++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "mixl-diag: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    return 0;
}

/* Count distinct nodes: one leader per shared-memory communicator. */
static int count_nodes(void)
{
    MPI_Comm node;
    int node_rank, leaders = 0, one;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &node_rank);
    one = node_rank == 0;
    MPI_Allreduce(&one, &leaders, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Comm_free(&node);
    return leaders;
}

int main(int argc, char **argv)
{
    mixl_diag_t d = {
        .thread_requested = MPI_THREAD_MULTIPLE,
        .registry_timeout_ms = 2000,
        .selftest_budget_s = 0.3,
    };
    int json = 0, strict = 0, system_mca = 0;
    const char *json_file = NULL;
    int rc = parse_args(argc, argv, &d, &json, &strict, &system_mca, &json_file);
    if (rc)
        return rc == 1 ? 0 : rc;

    if (!system_mca)
        mixl_mpi_defaults();
    MPI_Init_thread(&argc, &argv, d.thread_requested, &d.thread_provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &d.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d.size);
    d.nodes = count_nodes();

    if (d.rank == 0) {
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        d.report = json_object();
        json_object_set_new(d.report, "tool", json_string("mixl-diag"));
        json_object_set_new(d.report, "mixl_version", json_string(MIXL_VERSION_STRING));
        json_object_set_new(d.report, "host", json_string(host));
        json_object_set_new(d.report, "ranks", json_integer(d.size));
        json_object_set_new(d.report, "nodes", json_integer(d.nodes));
        json_object_set_new(d.report, "mixl_mca_defaults", json_boolean(!system_mca));
        mixl_diag_probe_mpi(&d);
        mixl_diag_probe_ucx(&d);
        mixl_diag_probe_gpu(&d);
        mixl_diag_probe_rdma(&d);
        mixl_diag_probe_registry(&d);
    }
    mixl_diag_probe_registry_mpi(&d);
    mixl_diag_selftest_rma(&d);
    mixl_diag_selftest_agent(&d);

    rc = 0;
    if (d.rank == 0) {
        mixl_diag_findings(&d);
        if (json) {
            json_dumpf(d.report, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', stdout);
        } else {
            mixl_diag_print_table(d.report);
        }
        fflush(stdout);
        if (json_file &&
            json_dump_file(d.report, json_file, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
            fprintf(stderr, "mixl-diag: cannot write the JSON report to %s\n", json_file);
            rc = 2;
        }
        if (strict && rc == 0) {
            size_t i;
            json_t *f;
            json_array_foreach(json_object_get(d.report, "findings"), i, f)
                if (!strcmp(json_string_value(json_object_get(f, "severity")), "error"))
                    rc = 1;
        }
        json_decref(d.report);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return rc;
}
