/*
 * Driver of the registry conformance suite:
 *   registry_conf local
 *   registry_conf mpi                 (under mpirun, any number of ranks)
 *   registry_conf etcd <endpoint-file> (written by etcd_fixture.sh; exit 77 without etcd;
 *                                       TLS with the fixture's certificates when it serves https)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "conformance.h"
#include "registry_test_util.h"

static void no_barrier(conf_env_t *env)
{
    (void)env;
}

static void no_share(conf_env_t *env, char *buf, size_t len)
{
    (void)env;
    (void)buf;
    (void)len;
}

static void mpi_barrier(conf_env_t *env)
{
    (void)env;
    MPI_Barrier(MPI_COMM_WORLD);
}

static void mpi_share(conf_env_t *env, char *buf, size_t len)
{
    (void)env;
    MPI_Bcast(buf, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
}

static void local_params(conf_env_t *env, mixl_registry_params_t *p)
{
    (void)env;
    p->backend = "local";
}

static void mpi_params(conf_env_t *env, mixl_registry_params_t *p)
{
    (void)env;
    p->backend = "mpi";
    p->comm = MPI_COMM_WORLD;
    /* The last rank serves, so the suite also covers a server that is not rank 0. */
    p->server_rank = env->size - 1;
}

static regtest_tls_t tls;
static int use_tls;

static void etcd_params(conf_env_t *env, mixl_registry_params_t *p)
{
    p->backend = "etcd";
    p->endpoints = env->user;
    if (use_tls) {
        p->tls_ca = tls.ca;
        p->tls_cert = tls.cert;
        p->tls_key = tls.key;
    }
}

int main(int argc, char **argv)
{
    conf_env_t env = {.rank = 0, .size = 1, .barrier = no_barrier, .share = no_share};
    char endpoint[512];
    int failures, provided = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s local | mpi | etcd <endpoint-file>\n", argv[0]);
        return 2;
    }
    env.backend = argv[1];
    if (strcmp(argv[1], "local") == 0) {
        env.params = local_params;
    } else if (strcmp(argv[1], "mpi") == 0) {
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
        if (provided != MPI_THREAD_MULTIPLE) {
            fprintf(stderr, "registry_conf: MPI provides thread level %d, not MPI_THREAD_MULTIPLE\n",
                    provided);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        MPI_Comm_rank(MPI_COMM_WORLD, &env.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &env.size);
        env.barrier = mpi_barrier;
        env.share = mpi_share;
        env.params = mpi_params;
    } else if (strcmp(argv[1], "etcd") == 0 && argc >= 3) {
        int rc = regtest_read_endpoint(argv[2], endpoint, sizeof(endpoint));
        if (rc != 0) return rc;
        env.user = endpoint;
        env.params = etcd_params;
        use_tls = regtest_tls(argv[2], &tls);
        if (use_tls) env.backend = "etcd-tls";
    } else {
        fprintf(stderr, "registry_conf: unknown backend '%s'\n", argv[1]);
        return 2;
    }

    failures = conf_run(&env);
    if (strcmp(argv[1], "mpi") == 0) {
        int total = 0;
        MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
        failures = total;
        MPI_Finalize();
    }
    if (env.rank == 0) printf("%s: %d failed check(s)\n", env.backend, failures);
    return failures == 0 ? 0 : 1;
}
