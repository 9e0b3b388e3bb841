/*
 * Driver of the transport conformance suite:
 *   test_transport <backend> <memory kind> <case>      (under mpirun)
 *   test_transport --vanishing-peer <backend> <fd>     (started by peer_gone)
 * Exit 0 when every rank passed, 77 (every rank alike, before MPI starts)
 * when the memory kind needs a device that is absent, 1 otherwise.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mixl/metadata.h>

#include "conformance.h"

tr_t T;
int tr_failures;

void tr_barrier(void)
{
    MPI_Barrier(MPI_COMM_WORLD);
}

mixl_desc_t tr_ldesc(uint64_t off, uint64_t len)
{
    mixl_desc_t d = {(uint64_t)(uintptr_t)T.pool + off, len, T.kind->type,
                     T.kind->type == MIXL_MEM_CUDA ? T.device : 0};
    return d;
}

mixl_desc_t tr_rdesc(int peer, uint64_t off, uint64_t len)
{
    mixl_desc_t d = {T.peer_base[peer] + off, len, T.kind->type,
                     T.kind->type == MIXL_MEM_CUDA ? T.device : 0};
    return d;
}

mixl_status_t tr_run(mixl_xfer_h x)
{
    mixl_status_t st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, TR_WAIT_MS);
    return st;
}

mixl_status_t tr_one(mixl_op_t op, int peer, uint64_t loff, uint64_t roff, uint64_t len,
                     const void *notif, size_t notif_len)
{
    mixl_desc_t l = tr_ldesc(loff, len), r = tr_rdesc(peer, roff, len);
    mixl_xfer_params_t p = {.size = sizeof(p), .op = op, .peer = T.names[peer], .local = &l,
                            .remote = &r, .count = 1, .notif = notif, .notif_len = notif_len};
    mixl_xfer_h x;
    mixl_status_t st = mixl_xfer_create(T.agent, &p, &x);
    if (st != MIXL_OK) return st;
    st = tr_run(x);
    mixl_xfer_release(x);
    return st;
}

size_t tr_wait_notifs(mixl_notif_t *out, size_t n, int timeout_ms)
{
    size_t got = 0;
    double end = MPI_Wtime() + timeout_ms / 1000.0;
    struct timespec pause = {0, 20000};
    while (got < n && MPI_Wtime() < end) {
        size_t k = 0;
        if (mixl_notif_poll(T.agent, out + got, n - got, &k) != MIXL_OK) break;
        got += k;
        /* A TCP agent's progress thread needs the CPU more than this loop on a
         * small machine; an MPI agent progresses only inside these polls. */
        if (k == 0 && T.backend != MIXL_BACKEND_MPI) nanosleep(&pause, NULL);
    }
    return got;
}

mixl_agent_params_t tr_agent_params(const char *name, unsigned notif_ring)
{
    mixl_agent_params_t p = {.size = sizeof(p), .name = name, .backends = T.backend,
                             .comm = T.backend == MIXL_BACKEND_MPI ? MPI_COMM_WORLD : MPI_COMM_NULL,
                             .notif_ring = notif_ring, .gpu_path = T.kind->gpu_path,
                             .timeout_ms = 30000};
    if (T.kind->gpu_path == MIXL_GPU_PATH_STAGED) {
        /* Small odd slots: transfers take many chunks. */
        p.staging_slots = 3;
        p.staging_slot_bytes = (1u << 20) + 4093;
    }
    return p;
}

/* Everyone imports everyone (the registry's job in real runs). */
static void exchange_metadata(void)
{
    void *blob;
    size_t len;
    int mylen, total = 0;

    if (mixl_metadata_export(T.agent, &blob, &len) != MIXL_OK) MPI_Abort(MPI_COMM_WORLD, 2);
    mylen = (int)len;
    T.blob_len = malloc(sizeof(int) * T.nranks);
    T.blob_off = malloc(sizeof(int) * T.nranks);
    MPI_Allgather(&mylen, 1, MPI_INT, T.blob_len, 1, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < T.nranks; r++) T.blob_off[r] = total, total += T.blob_len[r];
    T.blobs = malloc((size_t)total);
    MPI_Allgatherv(blob, mylen, MPI_BYTE, T.blobs, T.blob_len, T.blob_off, MPI_BYTE, MPI_COMM_WORLD);
    mixl_free(blob);
    T.names = calloc((size_t)T.nranks, MIXL_NAME_MAX);
    for (int r = 0; r < T.nranks; r++)
        if (mixl_metadata_import(T.agent, (uint8_t *)T.blobs + T.blob_off[r],
                                 (size_t)T.blob_len[r], T.names[r]) != MIXL_OK) {
            fprintf(stderr, "rank %d: import of rank %d: %s\n", T.rank, r,
                    mixl_agent_last_error(T.agent));
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    T.peer_base = malloc(sizeof(uint64_t) * T.nranks);
    uint64_t mine = (uint64_t)(uintptr_t)T.pool;
    MPI_Allgather(&mine, 1, MPI_UINT64_T, T.peer_base, 1, MPI_UINT64_T, MPI_COMM_WORLD);
}

/* The path the memory kind names must be the one the agent runs: no silent fallback. */
static void check_path(void)
{
    const char *rep = mixl_agent_path_report(T.agent);
    unsigned running = mixl_agent_backends(T.agent);

    if (T.rank == 0) printf("%s/%s: data path: %s\n", T.backend_name, T.kind->name, rep);
    CHECK(running == (unsigned)T.backend, "agent runs backends 0x%x, expected only %s", running,
          T.backend_name);
    CHECK(strncmp(rep, T.backend_name, strlen(T.backend_name)) == 0,
          "path report does not start with %s: %s", T.backend_name, rep);
    if (T.kind->late && T.kind->type == MIXL_MEM_CUDA) {
        /* A device region without a window is reachable only over CUDA IPC. */
        int peer = (T.rank + 1) % T.nranks;
        mixl_metadata_t *md = NULL;
        mixl_status_t st = mixl_metadata_decode((uint8_t *)T.blobs + T.blob_off[peer],
                                                (size_t)T.blob_len[peer], &md);
        CHECK(st == MIXL_OK && md->region_count == 1 && md->regions[0].mpi.window == -2 &&
                  (md->regions[0].mpi.flags & MIXL_MD_REGION_IPC),
              "memory kind %s: the peer's device region is not exported for CUDA IPC only",
              T.kind->name);
        mixl_metadata_free(md);
    }
    if (T.kind->path_expect != NULL)
        CHECK(strstr(rep, T.kind->path_expect) != NULL, "memory kind %s: path report lacks '%s': %s",
              T.kind->name, T.kind->path_expect, rep);
    /* A combination run with a backend setting from the environment (TCP
     * connections per peer) names what the report must then say. */
    const char *extra = getenv("MIXL_TR_PATH_EXPECT");
    if (extra != NULL && extra[0] != '\0')
        CHECK(strstr(rep, extra) != NULL, "path report lacks '%s' (MIXL_TR_PATH_EXPECT): %s", extra,
              rep);
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"sizes", case_sizes},
    {"scattered", case_scattered},
    {"in_flight", case_in_flight},
    {"notif_order", case_notif_order},
    {"reuse", case_reuse},
    {"read_write", case_read_write},
    {"many_to_one", case_many_to_one},
    {"timeout", case_timeout},
    {"release_in_flight", case_release_in_flight},
    {"bad_desc", case_bad_desc},
    {"peer_gone", case_peer_gone},
};

int main(int argc, char **argv)
{
    char name[MIXL_NAME_MAX];
    mixl_region_h region;
    void (*fn)(void) = NULL;
    int provided, all, rc;

    if (argc == 4 && strcmp(argv[1], "--vanishing-peer") == 0)
        return tr_vanishing_peer(argv[2], atoi(argv[3]));
    if (argc != 4) {
        fprintf(stderr, "usage: %s <mpi|tcp> <memory kind> <case>\n", argv[0]);
        return 1;
    }
    T.self_exe = argv[0];
    T.backend_name = argv[1];
    T.backend = strcmp(argv[1], "mpi") == 0   ? MIXL_BACKEND_MPI
                : strcmp(argv[1], "tcp") == 0 ? MIXL_BACKEND_TCP
                                              : 0;
    T.kind = tr_kind_find(argv[2]);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (strcmp(argv[3], cases[i].name) == 0) fn = cases[i].fn;
    if (T.backend == 0 || T.kind == NULL || fn == NULL) {
        fprintf(stderr, "unknown backend, memory kind or case: %s %s %s\n", argv[1], argv[2], argv[3]);
        return 1;
    }
    if (!(mixl_backends_available() & T.backend)) {
        fprintf(stderr, "backend %s is not built into this library\n", T.backend_name);
        return 1;
    }
    T.caps = mixl_backend_caps(T.backend);
    /* Before MPI: every rank decides alike and nothing collective is left waiting. */
    if ((rc = tr_kind_available(T.kind, &T.device)) != 0) return rc;

    if (mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MIXL_OK) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &T.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &T.nranks);
    if (T.nranks < 2) {
        fprintf(stderr, "run under mpirun with at least 2 ranks\n");
        MPI_Finalize();
        return 1;
    }
    snprintf(name, sizeof(name), "tr-%s-%d", T.backend_name, T.rank);
    mixl_agent_params_t params = tr_agent_params(name, fn == case_timeout ? 4 : 0);
    if (mixl_agent_create(&params, &T.agent) != MIXL_OK) MPI_Abort(MPI_COMM_WORLD, 2);
    if (tr_pool_alloc() != MIXL_OK) {
        fprintf(stderr, "rank %d: no %s pool\n", T.rank, T.kind->name);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int device_refused = T.kind->type == MIXL_MEM_CUDA && !(T.caps & MIXL_CAP_CUDA);
    if (device_refused) {
        /* The documented refusal of a backend without MIXL_CAP_CUDA; nothing else to run. */
        mixl_status_t st = mixl_mem_register(T.agent, T.pool, TR_POOL, MIXL_MEM_CUDA, T.device, &region);
        CHECK(st == MIXL_ERR_NOT_SUPPORTED, "device memory on %s (no MIXL_CAP_CUDA): %s",
              T.backend_name, mixl_status_name(st));
        fn = NULL;
    } else {
        if (!T.kind->late && mixl_mem_register(T.agent, T.pool, TR_POOL, T.kind->type, T.device,
                                               &region) != MIXL_OK) {
            fprintf(stderr, "rank %d: register: %s\n", T.rank, mixl_agent_last_error(T.agent));
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        mixl_status_t st = mixl_agent_start(T.agent);
        int refused = st == MIXL_ERR_NOT_SUPPORTED && T.kind->gpu_path == MIXL_GPU_PATH_DEVICE_WIN &&
                      strstr(mixl_agent_last_error(T.agent), "device windows") != NULL, all_refused;
        MPI_Allreduce(&refused, &all_refused, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (all_refused) {
            /* The documented refusal: this MPI cannot place windows in device memory. */
            if (T.rank == 0)
                printf("SKIP: device windows are unusable with this MPI: %s\n",
                       mixl_agent_last_error(T.agent));
            mixl_agent_destroy(T.agent);
            tr_pool_free();
            MPI_Finalize();
            return 77;
        }
        if (st != MIXL_OK) {
            fprintf(stderr, "rank %d: start: %s\n", T.rank, mixl_agent_last_error(T.agent));
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        if (T.kind->late && mixl_mem_register(T.agent, T.pool, TR_POOL, T.kind->type, T.device,
                                              &region) != MIXL_OK) {
            fprintf(stderr, "rank %d: late register: %s\n", T.rank, mixl_agent_last_error(T.agent));
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
        exchange_metadata();
        check_path();
        tr_barrier();
        fn();
    }
    MPI_Allreduce(&tr_failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (T.rank == 0)
        printf("transport %s/%s %s: %s (%d failures)\n", T.backend_name, T.kind->name, argv[3],
               all ? "FAILED" : "passed", all);
    mixl_agent_destroy(T.agent);
    tr_pool_free();
    free(T.blobs);
    free(T.blob_len);
    free(T.blob_off);
    free(T.names);
    free(T.peer_base);
    MPI_Finalize();
    return all ? 1 : 0;
}
