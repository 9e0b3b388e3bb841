/*
 * Two programs started on their own (no shared mpirun, no MPI at all) on two
 * nodes, meeting only through an etcd registry and moving data over MIXL's
 * TCP data plane:
 *
 *   etcd_pair target    ENDPOINTS NAMESPACE NONCE
 *   etcd_pair initiator ENDPOINTS NAMESPACE NONCE
 *
 * Both publish their metadata and fetch the other's (the store waits for a
 * late publisher). The initiator writes ROUNDS different patterns into the
 * target's buffer, each followed by a notification; the target checks its
 * buffer byte for byte on each notification, then rewrites it with its own
 * pattern for that round and sends a notification back; the initiator reads
 * the buffer back and checks it. When all rounds passed, the initiator puts
 * a key saying so (the target stays until the last read-back is served, or
 * that read would meet a closed connection), then the target puts a result
 * key, which the initiator waits for before it leaves. Each side
 * prints the peer's published TCP endpoint and the rounds it verified.
 *
 * Environment: MIXL_TCP_SECRET_FILE (the shared secret, mode 0600) and
 * MIXL_PAIR_INTERFACE (interface or subnet the TCP data plane listens on).
 * Exit 0 when every round was verified on both sides, 1 otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mixl/agent.h>
#include <mixl/metadata.h>
#include <mixl/registry.h>

#define BUF_BYTES (1u << 20)
#define ROUNDS 3
#define WAIT_MS 20000

static const char *role;

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "etcd_pair %s: FAIL: %s: %s\n", role, what, detail ? detail : "");
    return 1;
}

/* A pattern per run (nonce), round and writer: nothing left over can pass. */
static uint8_t pattern(uint64_t nonce, unsigned round, int from_target, size_t i)
{
    uint64_t x = nonce * 0x9e3779b97f4a7c15ull + round * 0x100000001b3ull + (uint64_t)from_target;
    return (uint8_t)((i * 131u) ^ (x >> (8 * (i % 7))) ^ (i >> 11));
}

static void fill(uint8_t *buf, uint64_t nonce, unsigned round, int from_target)
{
    for (size_t i = 0; i < BUF_BYTES; i++) buf[i] = pattern(nonce, round, from_target, i);
}

/* Index of the first wrong byte, or -1. */
static long check(const uint8_t *buf, uint64_t nonce, unsigned round, int from_target)
{
    for (size_t i = 0; i < BUF_BYTES; i++)
        if (buf[i] != pattern(nonce, round, from_target, i)) return (long)i;
    return -1;
}

/* The next notification from peer, or MIXL_ERR_TIMED_OUT after about WAIT_MS. */
static mixl_status_t wait_notif(mixl_agent_h agent, const char *peer, unsigned *round_p)
{
    mixl_notif_t n;
    size_t got = 0;
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += WAIT_MS / 1000;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec > end.tv_nsec)) break;
        mixl_status_t st = mixl_notif_poll(agent, &n, 1, &got);
        if (st != MIXL_OK) return st;
        if (got == 1) {
            char text[32] = "";
            memcpy(text, n.payload, n.len < sizeof(text) - 1 ? n.len : sizeof(text) - 1);
            if (strcmp(n.peer, peer) != 0 || sscanf(text, "round %u", round_p) != 1)
                return MIXL_ERR_INVALID_PARAM;
            return MIXL_OK;
        }
        struct timespec ts = {.tv_nsec = 100000};
        nanosleep(&ts, NULL);
    }
    return MIXL_ERR_TIMED_OUT;
}

static mixl_status_t xfer(mixl_agent_h agent, mixl_op_t op, const char *peer, uint8_t *local,
                          uint64_t remote_addr, const char *notif)
{
    mixl_desc_t l = {.addr = (uint64_t)(uintptr_t)local, .len = BUF_BYTES, .mem_type = MIXL_MEM_HOST};
    mixl_desc_t r = {.addr = remote_addr, .len = BUF_BYTES, .mem_type = MIXL_MEM_HOST};
    mixl_xfer_params_t xp = {.size = sizeof(xp), .op = op, .peer = peer, .local = &l,
                             .remote = &r, .count = 1, .notif = notif,
                             .notif_len = notif ? strlen(notif) : 0};
    mixl_xfer_h x = NULL;
    mixl_status_t st = mixl_xfer_create(agent, &xp, &x);
    if (st != MIXL_OK) return st;
    st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, WAIT_MS);
    mixl_xfer_release(x);
    return st;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "target") != 0 && strcmp(argv[1], "initiator") != 0)) {
        fprintf(stderr, "usage: %s target|initiator ENDPOINTS NAMESPACE NONCE\n", argv[0]);
        return 2;
    }
    role = argv[1];
    int is_target = strcmp(role, "target") == 0;
    const char *me = role, *peer = is_target ? "initiator" : "target";
    uint64_t nonce = strtoull(argv[4], NULL, 10);
    mixl_registry_params_t rp;
    mixl_registry_h reg = NULL;
    mixl_md_store_h store = NULL;
    mixl_agent_h agent = NULL;
    mixl_region_h region;
    mixl_metadata_t *md = NULL;
    void *blob = NULL;
    size_t len = 0;
    uint8_t *buf = calloc(1, BUF_BYTES);
    char key[256], text[64];
    unsigned verified = 0, round = 0;
    long bad;
    int rc = 1;
    mixl_status_t st;

    if (buf == NULL) return fail("memory", "calloc");
    mixl_registry_params_init(&rp);
    rp.backend = "etcd";
    rp.endpoints = argv[2];
    rp.ns = argv[3];
    if ((st = mixl_registry_create(&rp, &reg)) != MIXL_OK) {
        rc = fail("registry", mixl_status_str(st));
        goto out;
    }
    mixl_md_store_params_t sp = {.size = sizeof(sp), .reg = reg};
    if (mixl_md_store_create(&sp, &store) != MIXL_OK) {
        rc = fail("metadata store", mixl_registry_last_error(reg));
        goto out;
    }
    mixl_agent_params_t ap = {.size = sizeof(ap), .name = me, .comm = MPI_COMM_NULL,
                              .backends = MIXL_BACKEND_TCP,
                              .tcp_interface = getenv("MIXL_PAIR_INTERFACE")};
    if ((st = mixl_agent_create(&ap, &agent)) != MIXL_OK) {
        rc = fail("agent", mixl_status_str(st));
        goto out;
    }
    if (mixl_mem_register(agent, buf, BUF_BYTES, MIXL_MEM_HOST, 0, &region) != MIXL_OK ||
        mixl_agent_start(agent) != MIXL_OK) {
        rc = fail("agent start", mixl_agent_last_error(agent));
        goto out;
    }
    printf("%s: data path: %s\n", me, mixl_agent_path_report(agent));
    if (mixl_md_store_publish_agent(store, agent) != MIXL_OK ||
        mixl_md_store_fetch_import(store, agent, peer, WAIT_MS) != MIXL_OK ||
        mixl_md_store_get(store, peer, WAIT_MS, &blob, &len) != MIXL_OK ||
        mixl_metadata_decode(blob, len, &md) != MIXL_OK || md->region_count != 1) {
        rc = fail("meeting the peer through etcd", mixl_md_store_last_error(store)[0]
                                                       ? mixl_md_store_last_error(store)
                                                       : mixl_agent_last_error(agent));
        goto out;
    }
    printf("%s: %s published tcp %s:%d from host %s\n", me, peer, md->tcp.host, (int)md->tcp.port,
           md->hostname);
    fflush(stdout);

    for (unsigned k = 1; k <= ROUNDS; k++) {
        snprintf(text, sizeof(text), "round %u", k);
        if (is_target) {
            if ((st = wait_notif(agent, peer, &round)) != MIXL_OK || round != k) {
                rc = fail("waiting for the initiator's write",
                          st != MIXL_OK ? mixl_status_str(st) : "wrong round");
                goto out;
            }
            if ((bad = check(buf, nonce, k, 0)) >= 0) {
                snprintf(key, sizeof(key), "round %u, byte %ld", k, bad);
                rc = fail("the initiator's data", key);
                goto out;
            }
            fill(buf, nonce, k, 1);
            if ((st = mixl_notif_send(agent, peer, text, strlen(text))) != MIXL_OK) {
                rc = fail("notification to the initiator", mixl_agent_last_error(agent));
                goto out;
            }
        } else {
            /* The registered buffer is the source, then (still holding this round's pattern,
             * which the target's differs from) the destination of the read-back. */
            fill(buf, nonce, k, 0);
            const char *step = "write";
            st = xfer(agent, MIXL_OP_WRITE, peer, buf, md->regions[0].addr, text);
            if (st == MIXL_OK) {
                step = "the target's notification";
                st = wait_notif(agent, peer, &round);
                if (st == MIXL_OK && round != k) st = MIXL_ERR_INVALID_PARAM;
            }
            if (st == MIXL_OK) {
                step = "read";
                st = xfer(agent, MIXL_OP_READ, peer, buf, md->regions[0].addr, NULL);
            }
            if (st != MIXL_OK) {
                snprintf(key, sizeof(key), "%s: %s: %s %s", text, step, mixl_status_str(st),
                         mixl_agent_last_error(agent));
                rc = fail("transfer", key);
                goto out;
            }
            if ((bad = check(buf, nonce, k, 1)) >= 0) {
                snprintf(key, sizeof(key), "round %u, byte %ld", k, bad);
                rc = fail("the target's data read back", key);
                goto out;
            }
        }
        verified++;
    }
    /* The initiator says its reads are done, then the target that it is
     * done; each leaves only after the other's word. */
    char done_key[256];
    snprintf(key, sizeof(key), "%s/pair-result", argv[3]);
    snprintf(done_key, sizeof(done_key), "%s/pair-reads-done", argv[3]);
    snprintf(text, sizeof(text), "verified %u", verified);
    mixl_registry_kv_t *kv = NULL;
    if (is_target) {
        st = mixl_registry_wait(reg, done_key, WAIT_MS, &kv);
        if (st == MIXL_OK) st = mixl_registry_put(reg, key, text, strlen(text), 0, NULL);
    } else {
        st = mixl_registry_put(reg, done_key, text, strlen(text), 0, NULL);
        if (st == MIXL_OK) st = mixl_registry_wait(reg, key, WAIT_MS, &kv);
        if (st == MIXL_OK && (kv->len != strlen("verified 3") || memcmp(kv->value, "verified 3", kv->len) != 0))
            st = MIXL_ERR_INVALID_PARAM;
        if (st == MIXL_OK) st = mixl_registry_delete(reg, key);
        if (st == MIXL_OK) st = mixl_registry_delete(reg, done_key);
    }
    if (kv != NULL) mixl_registry_kv_free(kv);
    if (st != MIXL_OK) {
        rc = fail("result key", mixl_registry_last_error(reg));
        goto out;
    }
    printf("%s: %u of %u rounds verified\n", me, verified, ROUNDS);
    rc = 0;
out:
    mixl_metadata_free(md);
    mixl_free(blob);
    if (store != NULL) mixl_md_store_destroy(store);
    if (agent != NULL) mixl_agent_destroy(agent);
    if (reg != NULL) mixl_registry_destroy(reg);
    free(buf);
    return rc;
}
