/*
 * Registry and agent together, end to end: every rank creates a real agent,
 * registers a buffer, publishes its metadata through the store
 * (mixl_md_store_publish_agent), imports its neighbour's
 * (mixl_md_store_fetch_import) and writes into the neighbour's buffer at
 * the address the neighbour published. Each rank then checks that its own
 * buffer holds what its other neighbour wrote.
 *
 *   registry_agent mpi                  (under mpirun)
 *   registry_agent etcd <endpoint-file> (under mpirun; exit 77 without etcd)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include <mixl/agent.h>
#include <mixl/metadata.h>
#include <mixl/registry.h>

#include "registry_test_util.h"

#define BUF_BYTES 4096

static int failures, rank;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "[rank %d] FAIL %s:%d: %s\n", rank, __FILE__, __LINE__, #cond);  \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

int main(int argc, char **argv)
{
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;
    mixl_md_store_params_t sp = {.size = sizeof(sp)};
    mixl_md_store_h store = NULL;
    mixl_agent_params_t ap = {.size = sizeof(ap)};
    mixl_agent_h agent = NULL;
    mixl_region_h region;
    char endpoint[512], ns[64], name[MIXL_NAME_MAX], next[MIXL_NAME_MAX];
    unsigned char *buf = NULL;
    int size, provided, total = 0, skip = 0;

    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided != MPI_THREAD_MULTIPLE) {
        fprintf(stderr, "MPI provides thread level %d, not MPI_THREAD_MULTIPLE\n", provided);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    mixl_registry_params_init(&p);
    p.backend = argc > 1 ? argv[1] : "mpi";
    if (strcmp(p.backend, "etcd") == 0) {
        int rc = argc > 2 ? regtest_read_endpoint(argv[2], endpoint, sizeof(endpoint)) : 2;
        MPI_Allreduce(&rc, &skip, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (skip != 0) {
            MPI_Finalize();
            return skip;
        }
        p.endpoints = endpoint;
    }
    snprintf(ns, sizeof(ns), "agent-test-%d", (int)MPI_Wtime());
    MPI_Bcast(ns, sizeof(ns), MPI_CHAR, 0, MPI_COMM_WORLD);
    p.ns = ns;
    CHECK(mixl_registry_create(&p, &reg) == MIXL_OK);
    if (reg == NULL) MPI_Abort(MPI_COMM_WORLD, 1);
    sp.reg = reg;
    CHECK(mixl_md_store_create(&sp, &store) == MIXL_OK);

    snprintf(name, sizeof(name), "worker-%d", rank);
    snprintf(next, sizeof(next), "worker-%d", (rank + 1) % size);
    ap.name = name;
    ap.comm = MPI_COMM_WORLD;
    buf = calloc(1, BUF_BYTES);
    CHECK(mixl_agent_create(&ap, &agent) == MIXL_OK);
    if (agent == NULL || buf == NULL || store == NULL) MPI_Abort(MPI_COMM_WORLD, 1);
    CHECK(mixl_mem_register(agent, buf, BUF_BYTES, MIXL_MEM_HOST, 0, &region) == MIXL_OK);
    CHECK(mixl_agent_start(agent) == MIXL_OK);

    /* Publish, then find the neighbour: no barrier, the store waits for late publishers. */
    CHECK(mixl_md_store_publish_agent(store, agent) == MIXL_OK);
    CHECK(mixl_md_store_fetch_import(store, agent, next, 20000) == MIXL_OK);
    CHECK(mixl_peer_check(agent, next) == MIXL_OK);
    /* An agent nobody runs is reported as such, within the timeout. */
    CHECK(mixl_md_store_fetch_import(store, agent, "nobody", 200) == MIXL_ERR_NOT_FOUND);
    CHECK(strstr(mixl_md_store_last_error(store), "metadata not found for agent nobody") != NULL);

    /* Use what was published: write into the neighbour's buffer at its advertised address. */
    {
        void *blob = NULL;
        size_t len = 0;
        mixl_metadata_t *md = NULL;
        unsigned char msg[96];
        mixl_xfer_h xfer = NULL;

        CHECK(mixl_md_store_get(store, next, 1000, &blob, &len) == MIXL_OK);
        CHECK(blob != NULL && mixl_metadata_decode(blob, len, &md) == MIXL_OK);
        if (md != NULL && md->region_count == 1) {
            mixl_desc_t local = {.addr = (uint64_t)(uintptr_t)buf + 1024, .len = sizeof(msg),
                                 .mem_type = MIXL_MEM_HOST};
            mixl_desc_t remote = {.addr = md->regions[0].addr, .len = sizeof(msg),
                                  .mem_type = MIXL_MEM_HOST};
            mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = next,
                                     .local = &local, .remote = &remote, .count = 1};
            mixl_status_t st;
            snprintf((char *)msg, sizeof(msg), "hello from %s", name);
            memcpy(buf + 1024, msg, sizeof(msg));
            CHECK(mixl_xfer_create(agent, &xp, &xfer) == MIXL_OK);
            if (xfer != NULL) {
                st = mixl_xfer_post(xfer);
                if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(xfer, 10000);
                CHECK(st == MIXL_OK);
                mixl_xfer_release(xfer);
            }
        } else {
            CHECK(md != NULL && md->region_count == 1);
        }
        mixl_metadata_free(md);
        mixl_free(blob);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    {
        char want[64];
        snprintf(want, sizeof(want), "hello from worker-%d", (rank + size - 1) % size);
        CHECK(strcmp((char *)buf, want) == 0);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    mixl_md_store_destroy(store);
    mixl_agent_destroy(agent);
    free(buf);
    mixl_registry_destroy(reg);
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("registry + agent (%s): %d failed check(s)\n", p.backend, total);
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
