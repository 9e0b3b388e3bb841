/*
 * An external program built against an installed MIXL (find_package(mixl) or
 * pkg-config mixl), as a user's would be: 2 ranks started by a plain mpirun
 * with no MCA flags, mixl_mpi_init() choosing the components. Rank 0 WRITEs
 * a region into rank 1 with a notification, rank 1 checks every byte, writes
 * its own pattern into a second region and answers; rank 0 READs that back
 * and checks it. Three rounds, a different pattern each. Prints the file
 * libmixl was loaded from, so the test can tell the installed shared
 * library ran, and the data path MIXL chose.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mixl/mixl.h>

#define LEN ((size_t)(1u << 20) + 13) /* odd: a tail that is not a whole word */
#define ROUNDS 3

static mixl_agent_h agent;

static void die(const char *what, mixl_status_t st)
{
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, mixl_status_str(st),
            agent ? mixl_agent_last_error(agent) : "");
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static uint8_t pattern(size_t i, int round, int who)
{
    return (uint8_t)((i * 2654435761u) >> 13) ^ (uint8_t)(round * 37 + who * 101 + 1);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One notification from peer, within 30 s. */
static void wait_notif(mixl_notif_t *n)
{
    size_t got = 0;
    double deadline = now() + 30;
    while (got == 0) {
        mixl_status_t st = mixl_notif_poll(agent, n, 1, &got);
        if (st != MIXL_OK) die("mixl_notif_poll", st);
        if (got == 0 && now() > deadline) die("no notification within 30 s", MIXL_ERR_TIMED_OUT);
    }
}

static void xfer(mixl_op_t op, const char *peer, uint8_t *local, uint64_t remote, const void *notif,
                 size_t notif_len)
{
    mixl_desc_t l = {.addr = (uint64_t)(uintptr_t)local, .len = LEN, .mem_type = MIXL_MEM_HOST};
    mixl_desc_t r = {.addr = remote, .len = LEN, .mem_type = MIXL_MEM_HOST};
    mixl_xfer_params_t xp = {.size = sizeof(xp), .op = op, .peer = peer, .local = &l, .remote = &r,
                             .count = 1, .notif = notif, .notif_len = notif_len};
    mixl_xfer_h x;
    mixl_status_t st = mixl_xfer_create(agent, &xp, &x);
    if (st != MIXL_OK) die("mixl_xfer_create", st);
    st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 30000);
    if (st != MIXL_OK) die(op == MIXL_OP_WRITE ? "WRITE" : "READ", st);
    mixl_xfer_release(x);
}

static int check(const uint8_t *p, int round, int who, const char *what)
{
    for (size_t i = 0; i < LEN; i++)
        if (p[i] != pattern(i, round, who)) {
            fprintf(stderr, "consumer: %s round %d: byte %zu is 0x%02x, expected 0x%02x\n", what, round, i,
                    p[i], pattern(i, round, who));
            return 1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    int rank, size, provided, failed = 0;
    char name[MIXL_NAME_MAX], peer[MIXL_NAME_MAX];
    mixl_region_h region;
    mixl_status_t st;
    Dl_info info;

    if ((st = mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided)) != MIXL_OK) die("mixl_mpi_init", st);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != 2) {
        fprintf(stderr, "consumer: needs exactly 2 ranks\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    snprintf(name, sizeof(name), "consumer-%d", rank);
    mixl_agent_params_t params = {.size = sizeof(params), .name = name, .comm = MPI_COMM_WORLD};
    if ((st = mixl_agent_create(&params, &agent)) != MIXL_OK) die("mixl_agent_create", st);
    /* [0, LEN): what rank 0 writes into rank 1; [LEN, 2 LEN): what rank 0 reads from rank 1. */
    uint8_t *buf = calloc(2, LEN);
    if (buf == NULL) die("calloc", MIXL_ERR_NO_MEMORY);
    if ((st = mixl_mem_register(agent, buf, 2 * LEN, MIXL_MEM_HOST, 0, &region)) != MIXL_OK)
        die("mixl_mem_register", st);
    if ((st = mixl_agent_start(agent)) != MIXL_OK) die("mixl_agent_start", st);

    void *blob;
    size_t blob_len;
    if ((st = mixl_metadata_export(agent, &blob, &blob_len)) != MIXL_OK) die("mixl_metadata_export", st);
    int len = (int)blob_len, peer_len;
    MPI_Sendrecv(&len, 1, MPI_INT, 1 - rank, 0, &peer_len, 1, MPI_INT, 1 - rank, 0, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    void *peer_blob = malloc((size_t)peer_len);
    MPI_Sendrecv(blob, len, MPI_BYTE, 1 - rank, 1, peer_blob, peer_len, MPI_BYTE, 1 - rank, 1,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if ((st = mixl_metadata_import(agent, peer_blob, (size_t)peer_len, peer)) != MIXL_OK)
        die("mixl_metadata_import", st);
    free(peer_blob);
    uint64_t mine = (uint64_t)(uintptr_t)buf, theirs;
    MPI_Sendrecv(&mine, 1, MPI_UINT64_T, 1 - rank, 2, &theirs, 1, MPI_UINT64_T, 1 - rank, 2,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rank == 0) {
        if (dladdr((void *)mixl_status_str, &info) != 0 && info.dli_fname != NULL)
            printf("consumer: libmixl loaded from %s\n", info.dli_fname);
        printf("consumer: %s\n", mixl_agent_path_report(agent));
    }

    for (int round = 0; round < ROUNDS && !failed; round++) {
        mixl_notif_t n;
        if (rank == 0) {
            for (size_t i = 0; i < LEN; i++) buf[i] = pattern(i, round, 0);
            xfer(MIXL_OP_WRITE, peer, buf, theirs, &round, sizeof(round));
            wait_notif(&n); /* rank 1 checked the WRITE and filled the READ region */
            failed |= n.len != 2 || memcmp(n.payload, "ok", 2) != 0;
            memset(buf + LEN, 0, LEN);
            xfer(MIXL_OP_READ, peer, buf + LEN, theirs + LEN, NULL, 0);
            failed |= check(buf + LEN, round, 1, "READ");
        } else {
            wait_notif(&n);
            int r = -1;
            memcpy(&r, n.payload, sizeof(r));
            if (n.len != sizeof(r) || r != round || strcmp(n.peer, peer) != 0) {
                fprintf(stderr, "consumer: round %d: notification %d from %s\n", round, r, n.peer);
                failed = 1;
            }
            failed |= check(buf, round, 0, "WRITE");
            for (size_t i = 0; i < LEN; i++) buf[LEN + i] = pattern(i, round, 1);
            if ((st = mixl_notif_send(agent, peer, failed ? "no" : "ok", 2)) != MIXL_OK) die("mixl_notif_send", st);
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0)
        printf("consumer: %d rounds of WRITE+notification and READ of %zu bytes: %s\n", ROUNDS, LEN,
               failed ? "DATA WRONG" : "every byte verified");
    free(blob);
    mixl_agent_destroy(agent);
    free(buf);
    MPI_Finalize();
    return failed;
}
