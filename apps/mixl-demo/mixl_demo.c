/*
 * mixl-demo: the smallest complete use of the public API, under
 * `mpirun -np 2`. Both ranks register a buffer, exchange metadata, then rank
 * 0 WRITEs into rank 1 and READs it back, with notifications; every byte is
 * verified and the bandwidth printed. Uses only include/mixl/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/mixl.h>

#define CHECK(call)                                                                          \
    do {                                                                                     \
        mixl_status_t st_ = (call);                                                          \
        if (st_ != MIXL_OK) {                                                                \
            fprintf(stderr, "mixl-demo: %s failed: %s\n  %s\n", #call, mixl_status_str(st_), \
                    agent ? mixl_agent_last_error(agent) : "");                              \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                    \
        }                                                                                    \
    } while (0)

/*
 * One notification, or exit: a peer that died or hangs must not keep this
 * rank polling forever (the transfers themselves have a 30 s wait too).
 */
#define NOTIF_WAIT_S 30.0
static void wait_notif(mixl_agent_h agent, mixl_notif_t *n, const char *what)
{
    size_t got = 0;
    double deadline = MPI_Wtime() + NOTIF_WAIT_S;
    while (got == 0) {
        CHECK(mixl_notif_poll(agent, n, 1, &got));
        if (got == 0 && MPI_Wtime() > deadline) {
            fprintf(stderr, "mixl-demo: no %s within %.0f s\n", what, NOTIF_WAIT_S);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
}

static uint8_t pattern(size_t i, int round)
{
    return (uint8_t)(i * 131 + (size_t)round * 7 + (i >> 12));
}

int main(int argc, char **argv)
{
    size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 0) : 64u << 20;
    int iters = argc > 2 ? atoi(argv[2]) : 10;
    mixl_agent_h agent = NULL;
    int rank, size, provided;
    char name[MIXL_NAME_MAX], peer[MIXL_NAME_MAX];
    uint8_t *buf;
    mixl_region_h region;
    void *blob;
    size_t blob_len;

    if (mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MIXL_OK) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        if (rank == 0) fprintf(stderr, "mixl-demo: run with exactly 2 ranks (mpirun -np 2)\n");
        MPI_Finalize();
        return 2;
    }
    snprintf(name, sizeof(name), "%s-%d", rank == 0 ? "prefill" : "decode", rank);

    mixl_agent_params_t params = {.size = sizeof(params), .name = name, .comm = MPI_COMM_WORLD};
    CHECK(mixl_agent_create(&params, &agent));
    /* Memory MPI places itself: peers on this node can map it (see mixl_mem_alloc_mpi). */
    if (mixl_mem_alloc_mpi(MPI_COMM_WORLD, bytes, (void **)&buf) != MIXL_OK) {
        fprintf(stderr, "mixl-demo: %s\n", mixl_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    CHECK(mixl_mem_register(agent, buf, bytes, MIXL_MEM_HOST, 0, &region));
    CHECK(mixl_agent_start(agent));
    if (rank == 0) printf("mixl-demo: %s\n", mixl_agent_path_report(agent));

    /* Exchange metadata blobs (mixl-run does this through the registry). */
    CHECK(mixl_metadata_export(agent, &blob, &blob_len));
    {
        int len = (int)blob_len, peer_len;
        MPI_Sendrecv(&len, 1, MPI_INT, 1 - rank, 0, &peer_len, 1, MPI_INT, 1 - rank, 0,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        void *peer_blob = malloc((size_t)peer_len);
        MPI_Sendrecv(blob, len, MPI_BYTE, 1 - rank, 1, peer_blob, peer_len, MPI_BYTE, 1 - rank, 1,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        CHECK(mixl_metadata_import(agent, peer_blob, (size_t)peer_len, peer));
        free(peer_blob);
    }
    uint64_t peer_addr;
    {
        uint64_t mine = (uint64_t)(uintptr_t)buf;
        MPI_Sendrecv(&mine, 1, MPI_UINT64_T, 1 - rank, 2, &peer_addr, 1, MPI_UINT64_T, 1 - rank, 2,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }

    int failed = 0;
    double write_s = 0, read_s = 0;
    for (int round = 0; round < iters; round++) {
        if (rank == 0) {
            mixl_desc_t l = {(uint64_t)(uintptr_t)buf, bytes, MIXL_MEM_HOST, 0};
            mixl_desc_t r = {peer_addr, bytes, MIXL_MEM_HOST, 0};
            mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = peer,
                                     .local = &l, .remote = &r, .count = 1,
                                     .notif = &round, .notif_len = sizeof(round)};
            mixl_xfer_h x;
            for (size_t i = 0; i < bytes; i++) buf[i] = pattern(i, round);
            CHECK(mixl_xfer_create(agent, &xp, &x));
            double t0 = MPI_Wtime();
            mixl_status_t st = mixl_xfer_post(x);
            if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 30000);
            CHECK(st);
            write_s += MPI_Wtime() - t0;
            CHECK(mixl_xfer_release(x));

            /* Wait for the decode side to verify and answer, then read it back. */
            mixl_notif_t n;
            wait_notif(agent, &n, "answer from the decode side");
            memset(buf, 0, bytes);
            xp.op = MIXL_OP_READ;
            xp.notif_len = 0;
            CHECK(mixl_xfer_create(agent, &xp, &x));
            t0 = MPI_Wtime();
            st = mixl_xfer_post(x);
            if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 30000);
            CHECK(st);
            read_s += MPI_Wtime() - t0;
            CHECK(mixl_xfer_release(x));
            for (size_t i = 0; i < bytes; i++)
                if (buf[i] != pattern(i, round)) {
                    fprintf(stderr, "mixl-demo: READ round %d byte %zu wrong\n", round, i);
                    failed = 1;
                    break;
                }
        } else {
            mixl_notif_t n;
            wait_notif(agent, &n, "WRITE notification");
            int r;
            memcpy(&r, n.payload, sizeof(r));
            if (n.len != sizeof(r) || r != round || strcmp(n.peer, peer) != 0) {
                fprintf(stderr, "mixl-demo: unexpected notification from %s\n", n.peer);
                failed = 1;
            }
            for (size_t i = 0; i < bytes; i++)
                if (buf[i] != pattern(i, round)) {
                    fprintf(stderr, "mixl-demo: WRITE round %d byte %zu wrong\n", round, i);
                    failed = 1;
                    break;
                }
            CHECK(mixl_notif_send(agent, peer, "ok", 2));
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) {
        double moved = (double)bytes * iters;
        printf("mixl-demo: %d rounds of %zu bytes, WRITE %.2f GB/s, READ %.2f GB/s, "
               "%.0f bytes moved, every byte %s\n",
               iters, bytes, moved / write_s / 1e9, moved / read_s / 1e9, 2 * moved,
               failed ? "NOT verified" : "verified");
    }
    free(blob);
    mixl_agent_destroy(agent);
    mixl_mem_free_mpi(buf);
    MPI_Finalize();
    return failed;
}
