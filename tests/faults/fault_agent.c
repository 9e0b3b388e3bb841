/*
 * One agent life cycle at 2+ ranks, meant to run under the MPI fault
 * library (mpi_fault.c): mixl_mem_alloc_mpi, agent create, register, start,
 * metadata exchange, a WRITE with notification from rank 0 to rank 1, a
 * notification back, destroy, free. Each rank prints one line per step,
 * "rank R: <step> ok" or "rank R: <step> FAILED: <status>: <message>", and
 * stops at its first failed step (then cleans up: destroy and free are
 * collective and every rank reaches them). Exit 0 only when every step passed
 * here. The program's own coordination uses PMPI_ calls so the fault library
 * neither counts nor fails it; before each phase it sets MIXL_FAULT_PHASE,
 * which the fault library prints with each injection.
 *
 * argv[1] (optional): "registry" adds the MPI registry (put/get through the
 * rank-0 service) between start and the transfers; "layout-notif" and
 * "layout-staging" give rank 1 a different notif_ring or staging_slot_bytes
 * than the others, which every rank must refuse at create (MIXL_ERR_CONFIG;
 * exit 0 when every rank did).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/mixl.h>
#include <mixl/registry.h>


#define POOL (1u << 20)
#define WAIT_S 10.0

static int rank, nranks, failed;
static mixl_agent_h agent;

static void phase(const char *name)
{
    setenv("MIXL_FAULT_PHASE", name, 1);
}

static int step(const char *name, mixl_status_t st, const char *msg)
{
    if (st == MIXL_OK) {
        printf("rank %d: %s ok\n", rank, name);
    } else {
        failed = 1;
        printf("rank %d: %s FAILED: %s: %s\n", rank, name, mixl_status_name(st), msg ? msg : "");
    }
    fflush(stdout);
    return st == MIXL_OK;
}

/* The harness's own agreement on going on (not a MIXL collective). */
static int all_ok(int ok)
{
    int all = 0;
    PMPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 2654435761u) >> 13) ^ 0x5a;
}

static mixl_status_t wait_notif(mixl_notif_t *n)
{
    double end = PMPI_Wtime() + WAIT_S;
    while (PMPI_Wtime() < end) {
        size_t k = 0;
        mixl_status_t st = mixl_notif_poll(agent, n, 1, &k);
        if (st != MIXL_OK) return st;
        if (k == 1) return MIXL_OK;
    }
    return MIXL_ERR_TIMED_OUT;
}

static int exchange(uint8_t *pool, char (*names)[MIXL_NAME_MAX], uint64_t *bases)
{
    void *blob = NULL;
    size_t len = 0;
    mixl_status_t st = mixl_metadata_export(agent, &blob, &len);
    int mylen = st == MIXL_OK ? (int)len : 0, ok = st == MIXL_OK;
    int *lens = calloc((size_t)nranks, sizeof(int)), *displs = calloc((size_t)nranks, sizeof(int));
    uint64_t mine = (uint64_t)(uintptr_t)pool;

    PMPI_Allgather(&mylen, 1, MPI_INT, lens, 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0;
    for (int r = 0; r < nranks; r++) displs[r] = total, total += lens[r];
    uint8_t *blobs = malloc(total > 0 ? (size_t)total : 1);
    PMPI_Allgatherv(blob, mylen, MPI_BYTE, blobs, lens, displs, MPI_BYTE, MPI_COMM_WORLD);
    PMPI_Allgather(&mine, 1, MPI_UINT64_T, bases, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int r = 0; r < nranks && ok; r++) {
        if (lens[r] == 0) {
            st = MIXL_ERR_BAD_METADATA;
            ok = 0;
            break;
        }
        st = mixl_metadata_import(agent, blobs + displs[r], (size_t)lens[r], names[r]);
        ok = st == MIXL_OK;
    }
    step("metadata", st, mixl_agent_last_error(agent));
    mixl_free(blob);
    free(blobs);
    free(lens);
    free(displs);
    return ok;
}

/* Rank 0 writes a pattern (salted by nothing: one run, one pattern) into rank 1, with a notification;
 * rank 1 checks every byte and answers with a notification of its own. */
static int transfer(uint8_t *pool, char (*names)[MIXL_NAME_MAX], const uint64_t *bases)
{
    mixl_status_t st = MIXL_OK;
    mixl_notif_t n;

    if (rank == 0) {
        for (size_t i = 0; i < POOL / 2; i++) pool[i] = pattern(i);
        mixl_desc_t l = {(uint64_t)(uintptr_t)pool, POOL / 2, MIXL_MEM_HOST, 0};
        mixl_desc_t r = {bases[1] + POOL / 2, POOL / 2, MIXL_MEM_HOST, 0};
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                .local = &l, .remote = &r, .count = 1, .notif = "data",
                                .notif_len = 4};
        mixl_xfer_h x = NULL;
        st = mixl_xfer_create(agent, &p, &x);
        if (st == MIXL_OK) st = mixl_xfer_post(x);
        if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, (int)(WAIT_S * 1000));
        if (x != NULL) mixl_xfer_release(x);
        if (!step("write", st, mixl_agent_last_error(agent))) return 0;
        st = wait_notif(&n);
        if (st == MIXL_OK && (n.len != 3 || memcmp(n.payload, "ack", 3) != 0)) st = MIXL_ERR_PROTOCOL;
        return step("ack", st, mixl_agent_last_error(agent));
    }
    if (rank == 1) {
        st = wait_notif(&n);
        if (st == MIXL_OK && (n.len != 4 || memcmp(n.payload, "data", 4) != 0)) st = MIXL_ERR_PROTOCOL;
        for (size_t i = 0; st == MIXL_OK && i < POOL / 2; i++)
            if (pool[POOL / 2 + i] != pattern(i)) st = MIXL_ERR_CHECKSUM;
        if (!step("receive", st, mixl_agent_last_error(agent))) return 0;
        st = mixl_notif_send(agent, names[0], "ack", 3);
        return step("ack", st, mixl_agent_last_error(agent));
    }
    return 1;
}

static int registry(void)
{
    mixl_registry_params_t rp;
    mixl_registry_h reg = NULL;
    mixl_registry_kv_t *kv = NULL;
    char key[64], val[64];
    mixl_status_t st;

    mixl_registry_params_init(&rp);
    rp.backend = "mpi";
    rp.comm = MPI_COMM_WORLD;
    rp.op_timeout_ms = 5000;
    phase("registry create");
    st = mixl_registry_create(&rp, &reg);
    if (!step("registry create", st, "see log")) return 0;
    phase("registry");
    snprintf(key, sizeof(key), "faults/%d", rank);
    snprintf(val, sizeof(val), "value of rank %d", rank);
    st = mixl_registry_put(reg, key, val, strlen(val) + 1, 0, NULL);
    if (st == MIXL_OK) {
        snprintf(key, sizeof(key), "faults/%d", (rank + 1) % nranks);
        st = mixl_registry_wait(reg, key, 5000, &kv);
    }
    if (st == MIXL_OK) {
        snprintf(val, sizeof(val), "value of rank %d", (rank + 1) % nranks);
        if (kv->len != strlen(val) + 1 || memcmp(kv->value, val, kv->len) != 0) st = MIXL_ERR_PROTOCOL;
    }
    mixl_registry_kv_free(kv);
    int ok = step("registry put/get", st, mixl_registry_last_error(reg));
    /* Destroying is collective for the MPI registry: every rank gets here, whatever happened. */
    phase("registry destroy");
    mixl_registry_destroy(reg);
    return ok;
}

int main(int argc, char **argv)
{
    char name[MIXL_NAME_MAX];
    uint8_t *pool = NULL;
    mixl_region_h region;
    int provided, ok;
    mixl_status_t st;

    if (mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MIXL_OK) return 2;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    PMPI_Comm_size(MPI_COMM_WORLD, &nranks);
    snprintf(name, sizeof(name), "faults-%d", rank);
    char (*names)[MIXL_NAME_MAX] = calloc((size_t)nranks, MIXL_NAME_MAX);
    uint64_t *bases = calloc((size_t)nranks, sizeof(uint64_t));

    phase("alloc");
    st = mixl_mem_alloc_mpi(MPI_COMM_WORLD, POOL, (void **)&pool);
    if (!step("alloc", st, mixl_last_error())) goto out;

    phase("create");
    mixl_agent_params_t params = {.size = sizeof(params), .name = name, .comm = MPI_COMM_WORLD,
                                  .backends = MIXL_BACKEND_MPI, .notif_ring = 8,
                                  .timeout_ms = 3000};
    if (argc > 1 && rank == 1 && strcmp(argv[1], "layout-notif") == 0) params.notif_ring = 16;
    if (argc > 1 && rank == 1 && strcmp(argv[1], "layout-staging") == 0)
        params.staging_slot_bytes = 3u << 20;
    st = mixl_agent_create(&params, &agent);
    if (argc > 1 && strncmp(argv[1], "layout-", 7) == 0) {
        int refused = all_ok(st == MIXL_ERR_CONFIG && agent == NULL);
        printf("rank %d: create with a different %s on rank 1: %s\n", rank, argv[1] + 7,
               mixl_status_name(st));
        if (st == MIXL_OK) mixl_agent_destroy(agent);
        mixl_mem_free_mpi(pool);
        free(names);
        free(bases);
        MPI_Finalize();
        return refused ? 0 : 1;
    }
    if (!step("create", st, agent ? mixl_agent_last_error(agent) : "see log")) goto out_pool;

    phase("register");
    st = mixl_mem_register(agent, pool, POOL, MIXL_MEM_HOST, 0, &region);
    ok = all_ok(step("register", st, mixl_agent_last_error(agent)));
    if (!ok) goto out_agent;

    phase("start");
    st = mixl_agent_start(agent);
    if (!step("start", st, mixl_agent_last_error(agent))) goto out_agent;
    if (!(mixl_agent_backends(agent) & MIXL_BACKEND_MPI)) {
        step("start path", MIXL_ERR_BACKEND, "the MPI backend is not running");
        goto out_agent;
    }

    phase("metadata");
    if (!all_ok(exchange(pool, names, bases))) goto out_agent;
    if (argc > 1 && strcmp(argv[1], "registry") == 0 && !all_ok(registry())) goto out_agent;

    phase("transfer");
    ok = all_ok(transfer(pool, names, bases));
    if (ok && rank == 0) printf("all steps passed\n");

out_agent:
    phase("destroy");
    mixl_agent_destroy(agent);
out_pool:
    phase("free");
    if (pool != NULL) {
        st = mixl_mem_free_mpi(pool);
        step("free", st, "");
    }
out:
    phase("finalize");
    free(names);
    free(bases);
    fflush(stdout);
    MPI_Finalize();
    return failed ? 1 : 0;
}
