/*
 * The MPI registry under load: every rank publishes and fetches at the same
 * time (a publisher thread and a fetching main thread per rank), thousands
 * of operations in all, then checks that nothing was lost or mixed up.
 * First, misconfigured creates (server rank out of range, ranks naming
 * different servers) must fail on every rank with MIXL_ERR_CONFIG; last,
 * a server that left early must give the others MIXL_ERR_UNREACHABLE.
 *
 *   registry_mpi_load <ops-per-rank>      under mpirun (4 ranks in CTest)
 *   registry_mpi_load --single-threaded   checks the clear refusal without
 *                                         MPI_THREAD_MULTIPLE
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include <mixl/registry.h>

static int failures;
static int rank, size;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "[rank %d] FAIL %s:%d: %s\n", rank, __FILE__, __LINE__, #cond); \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

typedef struct {
    mixl_registry_h reg;
    int n;
    int errors;
} publisher_t;

static void key_for(mixl_registry_h reg, int r, int i, char *buf, size_t len)
{
    snprintf(buf, len, "%s/load/r%d/k%05d", mixl_registry_namespace(reg), r, i);
}

static void *publish_all(void *arg)
{
    publisher_t *p = arg;
    char key[256], value[64];

    for (int i = 0; i < p->n; i++) {
        key_for(p->reg, rank, i, key, sizeof(key));
        snprintf(value, sizeof(value), "rank %d value %d", rank, i);
        if (mixl_registry_put(p->reg, key, value, strlen(value), 0, NULL) != MIXL_OK) p->errors++;
    }
    return NULL;
}

static int single_threaded(int argc, char **argv)
{
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;
    mixl_status_t st;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    mixl_registry_params_init(&p);
    p.backend = "mpi";
    st = mixl_registry_create(&p, &reg);
    CHECK(st == MIXL_ERR_NOT_SUPPORTED && reg == NULL);
    MPI_Finalize();
    if (rank == 0) printf("without MPI_THREAD_MULTIPLE: %s (expected MIXL_ERR_NOT_SUPPORTED)\n",
                          mixl_status_name(st));
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;
    publisher_t pub;
    pthread_t th;
    char ns[64], key[256], want[64], prefix[256];
    int n, provided, total = 0, fetched = 0;

    if (argc > 1 && strcmp(argv[1], "--single-threaded") == 0) return single_threaded(argc, argv);
    n = argc > 1 ? atoi(argv[1]) : 1000;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (provided != MPI_THREAD_MULTIPLE) {
        fprintf(stderr, "MPI provides thread level %d, not MPI_THREAD_MULTIPLE\n", provided);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* Misconfigurations fail on every rank alike, without hanging any. */
    mixl_registry_params_init(&p);
    p.backend = "mpi";
    p.server_rank = size; /* no such rank */
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG && reg == NULL);
    if (size > 1) {
        p.server_rank = rank; /* ranks disagree */
        CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG && reg == NULL);
    }

    snprintf(ns, sizeof(ns), "load-%d", (int)MPI_Wtime());
    MPI_Bcast(ns, sizeof(ns), MPI_CHAR, 0, MPI_COMM_WORLD);
    mixl_registry_params_init(&p);
    p.backend = "mpi";
    p.ns = ns;
    p.op_timeout_ms = 20000; /* 4 busy ranks on 2 cores: generous, never hit when healthy */
    if (mixl_registry_create(&p, &reg) != MIXL_OK) MPI_Abort(MPI_COMM_WORLD, 1);

    /* Phase 1: a publisher thread puts n keys while the main thread waits for the
     * other ranks' keys as they appear. */
    pub = (publisher_t){.reg = reg, .n = n};
    CHECK(pthread_create(&th, NULL, publish_all, &pub) == 0);
    for (int i = 0; i < n; i++) {
        int peer = (rank + 1 + i % (size > 1 ? size - 1 : 1)) % size;
        mixl_registry_kv_t *kv = NULL;
        key_for(reg, peer, i, key, sizeof(key));
        snprintf(want, sizeof(want), "rank %d value %d", peer, i);
        if (mixl_registry_wait(reg, key, 30000, &kv) == MIXL_OK) {
            CHECK(kv->len == strlen(want) && memcmp(kv->value, want, kv->len) == 0);
            mixl_registry_kv_free(kv);
            fetched++;
        }
    }
    pthread_join(th, NULL);
    CHECK(pub.errors == 0);
    CHECK(fetched == n);
    MPI_Barrier(MPI_COMM_WORLD);

    /* Phase 2: every key of every rank is there, once, with its own value. */
    snprintf(prefix, sizeof(prefix), "%s/load/", ns);
    {
        mixl_registry_kv_t *kvs = NULL;
        size_t count = 0;
        CHECK(mixl_registry_list(reg, prefix, 0, &kvs, &count) == MIXL_OK);
        CHECK(count == (size_t)n * (size_t)size);
        for (size_t i = 0; i < count; i++) {
            int r = -1, k = -1;
            CHECK(sscanf(kvs[i].key + strlen(prefix), "r%d/k%d", &r, &k) == 2);
            snprintf(want, sizeof(want), "rank %d value %d", r, k);
            CHECK(kvs[i].len == strlen(want) && memcmp(kvs[i].value, want, kvs[i].len) == 0);
        }
        mixl_registry_kvs_free(kvs, count);
    }

    /* Phase 3: stores re-publish concurrently; after a refresh every reader sees the last version. */
    {
        mixl_md_store_params_t sp = {.size = sizeof(sp), .reg = reg, .flags = MIXL_MD_STORE_RAW};
        mixl_md_store_h s = NULL;
        char agent[64], blob[128];
        CHECK(mixl_md_store_create(&sp, &s) == MIXL_OK);
        snprintf(agent, sizeof(agent), "agent-%d", rank);
        for (int v = 0; v < 100 && s != NULL; v++) {
            void *got = NULL;
            size_t len;
            char peer[64];
            snprintf(blob, sizeof(blob), "%s version %d", agent, v);
            CHECK(mixl_md_store_publish(s, agent, blob, strlen(blob)) == MIXL_OK);
            snprintf(peer, sizeof(peer), "agent-%d", (rank + 1) % size);
            if (mixl_md_store_get(s, peer, 30000, &got, &len) == MIXL_OK) {
                CHECK(len > 0 && strncmp(got, peer, strlen(peer)) == 0);
                mixl_free(got);
            } else {
                failures++;
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(s == NULL || mixl_md_store_refresh(s) == MIXL_OK);
        for (int r = 0; r < size && s != NULL; r++) {
            void *got = NULL;
            size_t len;
            snprintf(agent, sizeof(agent), "agent-%d", r);
            snprintf(blob, sizeof(blob), "%s version %d", agent, 99);
            CHECK(mixl_md_store_get(s, agent, 5000, &got, &len) == MIXL_OK);
            if (got != NULL) CHECK(len == strlen(blob) && memcmp(got, blob, len) == 0);
            mixl_free(got);
        }
        MPI_Barrier(MPI_COMM_WORLD); /* nobody revokes its lease before everyone has read */
        mixl_md_store_destroy(s);
    }

    mixl_registry_destroy(reg);

    /* Phase 4: the server goes away first. Its destroy stops waiting for the others after
     * op_timeout_ms; the others' requests then fail with MIXL_ERR_UNREACHABLE, no hang. */
    if (size > 1) {
        mixl_registry_kv_t *kv = NULL;
        mixl_registry_params_init(&p);
        p.backend = "mpi";
        p.op_timeout_ms = 500;
        reg = NULL;
        CHECK(mixl_registry_create(&p, &reg) == MIXL_OK);
        if (reg != NULL && rank == 0) mixl_registry_destroy(reg);
        MPI_Barrier(MPI_COMM_WORLD);
        if (reg != NULL && rank != 0) {
            CHECK(mixl_registry_get(reg, "gone/server", &kv) == MIXL_ERR_UNREACHABLE);
            CHECK(strstr(mixl_registry_last_error(reg), "no answer from server rank 0") != NULL);
            mixl_registry_destroy(reg);
        }
    }
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("mpi registry load: %d ranks x (%d puts + %d waits + 100 publishes + 100 gets), "
               "%d failed check(s)\n", size, n, n, total);
    }
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
