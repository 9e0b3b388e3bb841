/*
 * Fault cases of the transport conformance suite: timeouts, release while in
 * flight, descriptors the agent must refuse, and a peer that goes away.
 */
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mixl/log.h>
#include <mixl/metadata.h>

#include "conformance.h"

extern char **environ;

/*
 * A target that stops polling: notified writes fill its notification ring
 * (4 slots here) until one cannot complete; its wait gives
 * MIXL_ERR_TIMED_OUT naming the peer, and the request is still in flight
 * (a re-post is refused with MIXL_ERR_BUSY). Once the target polls again it
 * completes, and every notification arrives.
 */
void case_timeout(void)
{
    enum { LIMIT = 4096 };
    int sent = 0;

    tr_clear();
    if (T.rank == 0) {
        mixl_desc_t l = tr_ldesc(0, 64), r = tr_rdesc(1, 0, 64);
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = T.names[1],
                                .local = &l, .remote = &r, .count = 1, .notif = "n", .notif_len = 1};
        mixl_xfer_h x;
        mixl_status_t st = mixl_xfer_create(T.agent, &p, &x);
        CHECK(st == MIXL_OK, "create: %s", mixl_status_name(st));
        if (st == MIXL_OK) {
            st = MIXL_OK;
            while (st == MIXL_OK && sent < LIMIT) {
                tr_fill(0, 64, 90000u + (uint32_t)sent);
                mixl_agent_clear_error(T.agent);
                st = mixl_xfer_post(x);
                sent++;
                if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 300);
            }
            printf("timeout: write %d of a 4-slot ring timed out\n", sent);
            CHECK(st == MIXL_ERR_TIMED_OUT, "after %d writes: %s, expected MIXL_ERR_TIMED_OUT", sent,
                  mixl_status_name(st));
            CHECK(strstr(mixl_agent_last_error(T.agent), T.names[1]) != NULL,
                  "timeout message lacks the peer's name");
            if (st == MIXL_ERR_TIMED_OUT) {
                CHECK(mixl_xfer_post(x) == MIXL_ERR_BUSY, "timed-out request not in flight any more");
                CHECK(mixl_xfer_test(x) == MIXL_IN_PROGRESS, "timed-out request not in progress");
            }
        }
        MPI_Bcast(&sent, 1, MPI_INT, 0, MPI_COMM_WORLD);
        tr_barrier(); /* now the target drains its ring */
        if (st == MIXL_ERR_TIMED_OUT) {
            st = mixl_xfer_wait(x, TR_WAIT_MS);
            CHECK(st == MIXL_OK, "completion after the target polled: %s", mixl_status_name(st));
        }
        if (x != NULL) CHECK(mixl_xfer_release(x) == MIXL_OK, "release");
    } else {
        MPI_Bcast(&sent, 1, MPI_INT, 0, MPI_COMM_WORLD);
        tr_barrier();
        if (T.rank == 1) {
            mixl_notif_t *n = calloc((size_t)sent + 1, sizeof(*n));
            size_t got = tr_wait_notifs(n, (size_t)sent, TR_WAIT_MS);
            CHECK(got == (size_t)sent, "%zu of %d notifications arrived after the timeout", got, sent);
            free(n);
        }
    }
    tr_barrier();
    if (T.rank == 1)
        CHECK(tr_bad(0, 64, 90000u + (uint32_t)sent - 1) == UINT64_MAX, "the last write's data is wrong");
    tr_barrier();
}

/*
 * Releasing a request still in flight completes it first: the data and the
 * notification arrive whole, release succeeds, and the handle is dead after.
 */
void case_release_in_flight(void)
{
    enum { B = 48u << 20 };
    tr_clear();
    if (T.rank == 0) {
        tr_fill(1, B, 4242);
        mixl_desc_t l = tr_ldesc(1, B), r = tr_rdesc(1, 2, B);
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = T.names[1],
                                .local = &l, .remote = &r, .count = 1, .notif = "r", .notif_len = 1};
        mixl_xfer_h x;
        mixl_status_t st = mixl_xfer_create(T.agent, &p, &x);
        CHECK(st == MIXL_OK, "create: %s", mixl_status_name(st));
        if (st == MIXL_OK) {
            st = mixl_xfer_post(x);
            CHECK(st == MIXL_IN_PROGRESS, "post of 48 MiB: %s (expected it in flight)",
                  mixl_status_name(st));
            st = mixl_xfer_release(x);
            CHECK(st == MIXL_OK, "release while in flight: %s", mixl_status_name(st));
            CHECK(mixl_xfer_post(x) == MIXL_ERR_BAD_STATE, "post after release not refused");
        }
    } else if (T.rank == 1) {
        mixl_notif_t n;
        CHECK(tr_wait_notifs(&n, 1, TR_WAIT_MS) == 1 && n.len == 1 && n.payload[0] == 'r',
              "no notification from the released request");
        uint64_t bad = tr_bad(2, B, 4242);
        CHECK(bad == UINT64_MAX, "released request's byte %llu wrong", (unsigned long long)bad);
    }
    tr_barrier();
}

/* Error lines MIXL logged since the count was reset: an error is logged once, where found. */
static struct {
    int lines;
    char first[512];
} logged;

static void count_log(mixl_log_level_t level, const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "mixl log %d: %s\n", (int)level, msg);
    if (level != MIXL_LOG_ERROR) return;
    if (logged.lines++ == 0) snprintf(logged.first, sizeof(logged.first), "%s", msg);
}

static void log_count_start(void)
{
    memset(&logged, 0, sizeof(logged));
    mixl_log_set_handler(count_log, NULL);
}

/* Exactly one error line, and it names needle. */
static void log_count_check(const char *what, const char *needle)
{
    mixl_log_set_handler(NULL, NULL);
    CHECK(logged.lines == 1, "%s: logged %d error lines, expected exactly one", what, logged.lines);
    CHECK(strstr(logged.first, needle) != NULL, "%s: the logged line lacks '%s': %s", what, needle,
          logged.first);
}

/* One create that must fail with want, naming the descriptor, logged once; nothing is issued. */
static void refuse(const char *what, const mixl_desc_t *l, const mixl_desc_t *r, size_t count,
                   mixl_status_t want, const char *needle)
{
    mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = T.names[1],
                            .local = l, .remote = r, .count = count};
    mixl_xfer_h x = NULL;
    mixl_agent_clear_error(T.agent);
    log_count_start();
    mixl_status_t st = mixl_xfer_create(T.agent, &p, &x);
    log_count_check(what, needle);
    CHECK(st == want, "%s: %s, expected %s", what, mixl_status_name(st), mixl_status_name(want));
    CHECK(strstr(mixl_agent_last_error(T.agent), needle) != NULL, "%s: message lacks '%s'", what,
          needle);
    if (st == MIXL_OK) mixl_xfer_release(x);
}

/* A peer's blob with one bit flipped is refused, the agent's error logged once; the peer
 * imported before stays usable. */
static void refuse_import(void)
{
    size_t len = (size_t)T.blob_len[1];
    uint8_t *blob = malloc(len);
    mixl_status_t st;

    CHECK(blob != NULL, "no memory for the blob copy");
    memcpy(blob, (uint8_t *)T.blobs + T.blob_off[1], len);
    blob[len / 2] ^= 0x10;
    mixl_agent_clear_error(T.agent);
    log_count_start();
    st = mixl_metadata_import(T.agent, blob, len, NULL);
    log_count_check("import of a corrupted blob", "checksum mismatch");
    CHECK(st == MIXL_ERR_BAD_METADATA, "import of a corrupted blob: %s", mixl_status_name(st));
    free(blob);
}

/*
 * Descriptors outside a region (local, remote, straddling the end), of the
 * wrong memory type, and lists whose lengths differ are refused at create
 * with a specific status and a message naming the descriptor, logged exactly
 * once; so is a corrupted metadata blob at import. Afterwards the agent still
 * transfers, and the target's memory was never touched.
 */
void case_bad_desc(void)
{
    tr_clear();
    if (T.rank == 0) {
        static uint8_t unregistered[4096];
        mixl_mem_type_t wrong = T.kind->type == MIXL_MEM_CUDA ? MIXL_MEM_HOST : MIXL_MEM_CUDA;
        mixl_desc_t good_l = tr_ldesc(0, 4096), good_r = tr_rdesc(1, 0, 4096);
        mixl_desc_t l[3] = {good_l, good_l, good_l}, r[3] = {good_r, good_r, good_r};

        l[2].addr = (uint64_t)(uintptr_t)unregistered;
        refuse("local outside every region", l, r, 3, MIXL_ERR_NOT_REGISTERED, "local descriptor 2");
        l[2] = tr_ldesc(TR_POOL - 100, 4096);
        refuse("local straddling the region's end", l, r, 3, MIXL_ERR_NOT_REGISTERED,
               "local descriptor 2");
        l[2] = good_l;
        r[1] = tr_rdesc(1, TR_POOL - 10, 4096);
        refuse("remote past the peer's region", l, r, 3, MIXL_ERR_OUT_OF_RANGE, "remote descriptor 1");
        r[1] = good_r;
        r[1].addr = 64;
        refuse("remote outside every region", l, r, 3, MIXL_ERR_OUT_OF_RANGE, "remote descriptor 1");
        r[1] = good_r;
        l[0].mem_type = wrong;
        refuse("local of the wrong memory type", l, r, 3, MIXL_ERR_INVALID_PARAM, "local descriptor 0");
        l[0] = good_l;
        r[2].mem_type = wrong;
        refuse("remote of the wrong memory type", l, r, 3, MIXL_ERR_INVALID_PARAM, "remote descriptor 2");
        r[2] = good_r;
        r[1].len = 4095;
        refuse("lengths differ", l, r, 3, MIXL_ERR_MISMATCH, "descriptor 1");
        r[1] = good_r;
        l[1].len = r[1].len = 0;
        refuse("empty descriptor", l, r, 3, MIXL_ERR_INVALID_PARAM, "descriptor 1");
        refuse_import();

        /* The agent is unharmed. */
        tr_fill(0, 4096, 77);
        mixl_status_t st = tr_one(MIXL_OP_WRITE, 1, 0, 4096, 4096, "ok", 2);
        CHECK(st == MIXL_OK, "good transfer after the refusals: %s", mixl_status_name(st));
    } else if (T.rank == 1) {
        mixl_notif_t n;
        CHECK(tr_wait_notifs(&n, 1, TR_WAIT_MS) == 1 && n.len == 2 && memcmp(n.payload, "ok", 2) == 0,
              "only the good transfer's notification may arrive");
        CHECK(tr_nonzero(0, 4096) == UINT64_MAX, "a refused transfer wrote to the target");
        CHECK(tr_bad(4096, 4096, 77) == UINT64_MAX, "the good transfer's data is wrong");
    }
    tr_barrier();
}

/* --- a peer that goes away ---------------------------------------------- */

static mixl_agent_h lone_agent(mixl_backend_t backend, const char *name)
{
    mixl_agent_params_t p = {.size = sizeof(p), .name = name, .comm = MPI_COMM_NULL,
                             .backends = backend, .timeout_ms = 20000};
    mixl_agent_h a = NULL;
    return mixl_agent_create(&p, &a) == MIXL_OK ? a : NULL;
}

static size_t lone_wait(mixl_agent_h a, mixl_notif_t *n, int timeout_ms)
{
    struct timespec pause = {0, 200000};
    size_t cnt = 0;
    for (int waited = 0; waited < timeout_ms * 5; waited++) {
        if (mixl_notif_poll(a, n, 1, &cnt) != MIXL_OK) return 0;
        if (cnt > 0) return cnt;
        nanosleep(&pause, NULL);
    }
    return 0;
}

/*
 * A separate process, outside the MPI job: a lone agent of the backend
 * publishes its metadata on fd and kills itself when its first notification
 * arrives (the data is known to be there: it is the moment a real decode
 * worker could crash).
 */
int tr_vanishing_peer(const char *backend, int fd)
{
    enum { LEN = 16u << 20 };
    char name[MIXL_NAME_MAX];
    mixl_region_h r;
    mixl_notif_t n;
    void *blob;
    size_t len;
    uint8_t *mem = calloc(1, LEN);

    snprintf(name, sizeof(name), "vanishing-%d", (int)getpid());
    mixl_agent_h a = lone_agent(strcmp(backend, "mpi") == 0 ? MIXL_BACKEND_MPI : MIXL_BACKEND_TCP, name);
    if (a == NULL || mem == NULL) return 2;
    if (mixl_mem_register(a, mem, LEN, MIXL_MEM_HOST, 0, &r) != MIXL_OK) return 3;
    if (mixl_agent_start(a) != MIXL_OK || mixl_metadata_export(a, &blob, &len) != MIXL_OK) return 4;
    uint64_t n64 = len;
    if (write(fd, &n64, sizeof(n64)) != (ssize_t)sizeof(n64) || write(fd, blob, len) != (ssize_t)len)
        return 5;
    close(fd);
    if (lone_wait(a, &n, 60000) != 1) return 6;
    kill(getpid(), SIGKILL);
    return 7;
}

static pid_t spawn_vanishing(int *rd_p)
{
    int fds[2];
    char fdarg[16];
    pid_t pid;

    if (pipe(fds) != 0) return -1;
    snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
    char *argv[] = {(char *)T.self_exe, "--vanishing-peer", "tcp", fdarg, NULL};
    if (posix_spawn(&pid, T.self_exe, NULL, NULL, argv, environ) != 0) pid = -1;
    close(fds[1]);
    *rd_p = fds[0];
    return pid;
}

static void *read_blob(int fd, size_t *len_p)
{
    uint64_t n;
    size_t got = 0;
    if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n) || n == 0 || n > (1u << 20)) return NULL;
    uint8_t *b = malloc(n);
    while (b != NULL && got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k <= 0) {
            free(b);
            return NULL;
        }
        got += (size_t)k;
    }
    *len_p = n;
    return b;
}

/*
 * Every backend: a peer that is forgotten cannot be forgotten while a
 * request to it exists (MIXL_ERR_BUSY), then is unknown (MIXL_ERR_UNKNOWN_PEER),
 * and can be imported again.
 * A process outside the MPI job that dies: with MIXL_CAP_PEER_FAILURE the
 * backend reaches it (MIXL_CAP_CROSS_WORLD) and, after the death, ends the
 * transfer with MIXL_ERR_DISCONNECTED naming it, within the agent's timeout.
 * Without MIXL_CAP_CROSS_WORLD the documented refusal is MIXL_ERR_UNREACHABLE
 * at create (an MPI agent reaches only its own world, where a dead rank ends the job).
 */
void case_peer_gone(void)
{
    tr_barrier();
    if (T.rank == 0) {
        mixl_desc_t l = tr_ldesc(0, 4096), r = tr_rdesc(1, 0, 4096);
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = T.names[1],
                                .local = &l, .remote = &r, .count = 1};
        mixl_xfer_h x;
        char back[MIXL_NAME_MAX];
        CHECK(mixl_xfer_create(T.agent, &p, &x) == MIXL_OK, "create");
        CHECK(mixl_peer_forget(T.agent, T.names[1]) == MIXL_ERR_BUSY, "forgot a peer with a request");
        CHECK(mixl_xfer_release(x) == MIXL_OK, "release");
        CHECK(mixl_peer_forget(T.agent, T.names[1]) == MIXL_OK, "forget");
        CHECK(mixl_peer_check(T.agent, T.names[1]) == MIXL_ERR_UNKNOWN_PEER, "forgotten peer still known");
        CHECK(mixl_xfer_create(T.agent, &p, &x) == MIXL_ERR_UNKNOWN_PEER,
              "transfer to a forgotten peer not refused");
        CHECK(mixl_metadata_import(T.agent, (uint8_t *)T.blobs + T.blob_off[1], (size_t)T.blob_len[1],
                                   back) == MIXL_OK && strcmp(back, T.names[1]) == 0,
              "re-import");
        CHECK(tr_one(MIXL_OP_WRITE, 1, 0, 0, 4096, NULL, 0) == MIXL_OK, "transfer after re-import");

        /* The process that dies: a lone TCP agent, the one kind every build has. */
        int rd = -1, status = 0;
        size_t blen = 0;
        pid_t pid = spawn_vanishing(&rd);
        CHECK(pid > 0, "could not start the vanishing peer");
        void *blob = pid > 0 ? read_blob(rd, &blen) : NULL;
        CHECK(blob != NULL, "vanishing peer published no metadata");
        mixl_metadata_t *md = NULL;
        if (blob != NULL) {
            char peer[MIXL_NAME_MAX];
            mixl_xfer_h v = NULL;
            CHECK(mixl_metadata_import(T.agent, blob, blen, peer) == MIXL_OK, "import of the vanishing peer");
            CHECK(mixl_metadata_decode(blob, blen, &md) == MIXL_OK, "decode");
            mixl_desc_t vl = tr_ldesc(0, 16u << 20);
            mixl_desc_t vr = {md->regions[0].addr, 16u << 20, MIXL_MEM_HOST, 0};
            mixl_xfer_params_t vp = {.size = sizeof(vp), .op = MIXL_OP_WRITE, .peer = peer,
                                     .local = &vl, .remote = &vr, .count = 1, .notif = "v",
                                     .notif_len = 1};
            vl.mem_type = T.kind->type;
            mixl_status_t st = mixl_xfer_create(T.agent, &vp, &v);
            if (!(T.caps & MIXL_CAP_CROSS_WORLD)) {
                CHECK(st == MIXL_ERR_UNREACHABLE, "%s has no MIXL_CAP_CROSS_WORLD: create to a process "
                      "outside its world gave %s", T.backend_name, mixl_status_name(st));
                kill(pid, SIGKILL);
            } else if (!(T.caps & MIXL_CAP_PEER_FAILURE)) {
                CHECK(0, "%s reaches other worlds without MIXL_CAP_PEER_FAILURE", T.backend_name);
                kill(pid, SIGKILL);
            } else {
                CHECK(st == MIXL_OK, "create to the vanishing peer: %s", mixl_status_name(st));
                int rounds = 0;
                mixl_agent_clear_error(T.agent);
                while (st == MIXL_OK && rounds < 1000) {
                    st = tr_run(v);
                    rounds++;
                }
                CHECK(st == MIXL_ERR_DISCONNECTED, "after the peer died (%d rounds): %s", rounds,
                      mixl_status_name(st));
                CHECK(strstr(mixl_agent_last_error(T.agent), peer) != NULL,
                      "the failure does not name the dead peer");
                CHECK(mixl_xfer_release(v) == MIXL_OK, "release after the failure");
                CHECK(mixl_peer_forget(T.agent, peer) == MIXL_OK, "forget the dead peer");
            }
            if (!(T.caps & MIXL_CAP_CROSS_WORLD) && st == MIXL_OK) mixl_xfer_release(v);
            if (!(T.caps & MIXL_CAP_CROSS_WORLD)) mixl_peer_forget(T.agent, peer);
        }
        if (pid > 0) {
            CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the vanishing peer did not die as planned (status 0x%x)", status);
        }
        mixl_metadata_free(md);
        free(blob);
        if (rd >= 0) close(rd);
        /* The rest of the world is unaffected. */
        CHECK(tr_one(MIXL_OP_WRITE, 1, 0, 0, 4096, NULL, 0) == MIXL_OK, "transfer to a live peer after");
    }
    tr_barrier();
}
