/*
 * mixl-registry: a command-line view of the MIXL metadata registry.
 *
 *   mixl-registry [options] list            agents with metadata in the namespace
 *   mixl-registry [options] show <agent>    one agent's metadata decoded to text
 *   mixl-registry [options] bench           put / uncached get / cached get latency
 *
 * With --backend etcd (the default) it talks to the etcd endpoints given.
 * With --backend mpi it runs inside an MPI job (mpirun -np N mixl-registry
 * --backend mpi ...): the registry lives as long as the job, so every rank
 * first publishes a real agent's metadata (--publish, one host region of
 * --region-bytes), then rank 0 runs list or show after a barrier; bench is
 * measured on rank 1 against the server on rank 0. --backend local runs
 * bench in-process.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include <mixl/agent.h>
#include <mixl/registry.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mixl-registry [options] list | show <agent> | bench\n"
            "  --backend etcd|mpi|local   registry (default etcd)\n"
            "  --endpoints URLS           etcd endpoints, comma-separated (default http://127.0.0.1:2379)\n"
            "  --namespace NS             key namespace (default mixl)\n"
            "  --timeout MS               per-operation timeout (default 5000)\n"
            "  --user U --password P      etcd token authentication\n"
            "  --cacert F --cert F --key F  etcd TLS (https endpoints)\n"
            "  --count N                  bench: operations per measurement (default 1000)\n"
            "  --regions N                bench: regions in the metadata blob (default 8)\n"
            "  --publish / --no-publish   mpi: each rank publishes an agent first (default on)\n"
            "  --region-bytes N           mpi --publish: bytes of the agent's region (default 1 MiB)\n");
}

typedef struct {
    mixl_registry_params_t reg;
    cli_bench_opts_t bench;
    int publish;
    size_t region_bytes;
    const char *command, *agent;
} opts_t;

static int parse(int argc, char **argv, opts_t *o)
{
    static const struct option longopts[] = {
        {"backend", required_argument, NULL, 'b'},   {"endpoints", required_argument, NULL, 'e'},
        {"namespace", required_argument, NULL, 'n'}, {"timeout", required_argument, NULL, 't'},
        {"user", required_argument, NULL, 'u'},      {"password", required_argument, NULL, 'p'},
        {"cacert", required_argument, NULL, 'C'},    {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},       {"count", required_argument, NULL, 'N'},
        {"regions", required_argument, NULL, 'R'},   {"publish", no_argument, NULL, 'P'},
        {"no-publish", no_argument, NULL, 'Q'},      {"region-bytes", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    int c;

    mixl_registry_params_init(&o->reg);
    o->reg.backend = "etcd";
    o->bench = (cli_bench_opts_t){.count = 1000, .regions = 8};
    o->publish = 1;
    o->region_bytes = 1u << 20;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': o->reg.backend = optarg; break;
        case 'e': o->reg.endpoints = optarg; break;
        case 'n': o->reg.ns = optarg; break;
        case 't': o->reg.op_timeout_ms = atoi(optarg); break;
        case 'u': o->reg.user = optarg; break;
        case 'p': o->reg.password = optarg; break;
        case 'C': o->reg.tls_ca = optarg; break;
        case 'c': o->reg.tls_cert = optarg; break;
        case 'k': o->reg.tls_key = optarg; break;
        case 'N': o->bench.count = atoi(optarg); break;
        case 'R': o->bench.regions = atoi(optarg); break;
        case 'P': o->publish = 1; break;
        case 'Q': o->publish = 0; break;
        case 'B': o->region_bytes = strtoull(optarg, NULL, 0); break;
        case 'h': usage(stdout); exit(0);
        default: return 2;
        }
    }
    if (optind >= argc) return 2;
    o->command = argv[optind++];
    if (strcmp(o->command, "show") == 0) {
        if (optind >= argc) return 2;
        o->agent = argv[optind++];
    } else if (strcmp(o->command, "list") != 0 && strcmp(o->command, "bench") != 0) {
        fprintf(stderr, "mixl-registry: unknown command '%s'\n", o->command);
        return 2;
    }
    if (optind < argc || o->bench.count < 1 || o->bench.regions < 1 || o->region_bytes == 0) return 2;
    return 0;
}

static int run_command(opts_t *o, mixl_registry_h reg, const char *bench_agent)
{
    mixl_md_store_params_t sp = {.size = sizeof(sp), .reg = reg};
    mixl_md_store_h store = NULL;
    int rc;

    if (strcmp(o->command, "bench") == 0) return cli_bench(reg, &o->bench, bench_agent, stdout);
    if (mixl_md_store_create(&sp, &store) != MIXL_OK) return 1;
    if (strcmp(o->command, "list") == 0) rc = cli_list(reg, store, stdout);
    else rc = cli_show(reg, store, o->agent, stdout);
    mixl_md_store_destroy(store);
    return rc;
}

/* Under mpirun: publish a real agent per rank, then one rank runs the command. */
static int run_mpi(opts_t *o, int argc, char **argv)
{
    mixl_registry_h reg = NULL;
    mixl_md_store_h store = NULL;
    mixl_agent_h agent = NULL;
    void *region = NULL;
    int rank, size, provided, rc = 0, all = 0;
    char name[MIXL_NAME_MAX];

    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided != MPI_THREAD_MULTIPLE) {
        if (rank == 0) {
            fprintf(stderr, "mixl-registry: the MPI registry needs MPI_THREAD_MULTIPLE; this MPI "
                    "provides level %d\n", provided);
        }
        MPI_Finalize();
        return 1;
    }
    o->reg.comm = MPI_COMM_WORLD;
    if (mixl_registry_create(&o->reg, &reg) != MIXL_OK) {
        MPI_Finalize();
        return 1;
    }
    snprintf(name, sizeof(name), "rank-%d", rank);
    if (o->publish) {
        mixl_agent_params_t ap = {.size = sizeof(ap), .name = name, .comm = MPI_COMM_WORLD};
        mixl_md_store_params_t sp = {.size = sizeof(sp), .reg = reg};
        mixl_region_h rh;
        mixl_status_t st = MIXL_ERR_NO_MEMORY;
        region = calloc(1, o->region_bytes);
        if (region != NULL) st = mixl_agent_create(&ap, &agent);
        if (st == MIXL_OK) st = mixl_mem_register(agent, region, o->region_bytes, MIXL_MEM_HOST, 0, &rh);
        if (agent != NULL) {
            mixl_status_t st2 = mixl_agent_start(agent); /* collective: every rank with an agent calls it */
            if (st == MIXL_OK) st = st2;
        }
        if (st == MIXL_OK) st = mixl_md_store_create(&sp, &store);
        if (st == MIXL_OK) st = mixl_md_store_publish_agent(store, agent);
        if (st != MIXL_OK) {
            fprintf(stderr, "mixl-registry: rank %d could not publish agent %s: %s\n", rank, name,
                    agent ? mixl_agent_last_error(agent) : mixl_status_str(st));
            rc = 1;
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (strcmp(o->command, "bench") == 0 ? rank == (size > 1 ? 1 : 0) : rank == 0) {
        char bench_agent[MIXL_NAME_MAX];
        snprintf(bench_agent, sizeof(bench_agent), "bench-%d", rank);
        if (run_command(o, reg, bench_agent) != 0) rc = 1;
        fflush(stdout);
    }
    MPI_Barrier(MPI_COMM_WORLD); /* nobody withdraws its metadata while rank 0 reads */
    mixl_md_store_destroy(store);
    mixl_agent_destroy(agent);
    free(region);
    mixl_registry_destroy(reg);
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return all;
}

int main(int argc, char **argv)
{
    opts_t o;
    mixl_registry_h reg = NULL;
    int rc;

    memset(&o, 0, sizeof(o));
    rc = parse(argc, argv, &o);
    if (rc != 0) {
        usage(stderr);
        return rc;
    }
    if (strcmp(o.reg.backend, "mpi") == 0) return run_mpi(&o, argc, argv);
    if (strcmp(o.reg.backend, "local") == 0 && strcmp(o.command, "bench") != 0) {
        fprintf(stderr, "mixl-registry: the local registry lives inside one process; only 'bench' "
                "is meaningful with --backend local\n");
        return 2;
    }
    if (mixl_registry_create(&o.reg, &reg) != MIXL_OK) return 1; /* the library printed why */
    rc = run_command(&o, reg, "bench-0");
    mixl_registry_destroy(reg);
    return rc;
}
