/*
 * One side of a TCP transfer between two independently started programs
 * (no MPI world, no common parent): each publishes its agent metadata,
 * fetches the other's, and then the initiator WRITEs rounds of data with a
 * notification while the target checks each round and answers with a
 * notification of its own; finally the initiator READs the target's buffer
 * back and compares.
 *
 *   mixl-tcp-peer --role target|initiator --name NAME --peer NAME --exchange SPEC
 *                 [--size MiB] [--rounds N] [--timeout-ms MS]
 *
 * SPEC is dir:PATH (blobs as files in a shared directory) or, when MIXL is
 * built with its registry, etcd:URL (the metadata store over a real etcd:
 * mixl_md_store_publish_agent / mixl_md_store_get).
 * Exit 0 when every byte and notification was right.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mixl/agent.h>
#include <mixl/metadata.h>

#ifdef MIXL_TCP_PEER_REGISTRY
#include <mixl/registry.h>
#endif

#include "util/clock.h"

static const char *g_role, *g_name, *g_peer, *g_exchange;
static size_t g_size = 8u << 20;
static int g_rounds = 4, g_timeout = 20000;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "mixl-tcp-peer %s: ", g_name);                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        return 1;                                                                                  \
    } while (0)

/* --- metadata exchange ------------------------------------------------- */

static int dir_publish(const char *dir, const char *name, const void *blob, size_t len)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s.mixl-md", dir, name);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) return -1;
    int ok = fwrite(blob, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1; /* readers never see half a blob */
}

static void *dir_fetch(const char *dir, const char *name, size_t *len_p)
{
    char path[4096];
    uint64_t end = mixl_deadline_ns(g_timeout);
    struct timespec pause = {0, 20000000};
    snprintf(path, sizeof(path), "%s/%s.mixl-md", dir, name);
    while (mixl_now_ns() < end) {
        FILE *f = fopen(path, "rb");
        if (f != NULL) {
            uint8_t *b = malloc(1u << 20);
            size_t n = b ? fread(b, 1, 1u << 20, f) : 0;
            fclose(f);
            *len_p = n;
            return b;
        }
        nanosleep(&pause, NULL);
    }
    return NULL;
}

#ifdef MIXL_TCP_PEER_REGISTRY
static mixl_registry_h g_reg;
static mixl_md_store_h g_store;

static int etcd_open(const char *url)
{
    mixl_registry_params_t rp;
    mixl_md_store_params_t sp = {.size = sizeof(sp)};

    mixl_registry_params_init(&rp);
    rp.backend = "etcd";
    rp.endpoints = url;
    rp.ns = "mixl-tcp-peer";
    if (mixl_registry_create(&rp, &g_reg) != MIXL_OK) return -1;
    sp.reg = g_reg;
    return mixl_md_store_create(&sp, &g_store) == MIXL_OK ? 0 : -1;
}

static void etcd_close(void)
{
    if (g_store != NULL) mixl_md_store_destroy(g_store);
    if (g_reg != NULL) mixl_registry_destroy(g_reg);
}
#endif

static int is_etcd(void)
{
    return strncmp(g_exchange, "etcd:", 5) == 0;
}

static int publish(mixl_agent_h a)
{
    void *blob;
    size_t len;
#ifdef MIXL_TCP_PEER_REGISTRY
    if (is_etcd()) return mixl_md_store_publish_agent(g_store, a) == MIXL_OK ? 0 : -1;
#endif
    if (mixl_metadata_export(a, &blob, &len) != MIXL_OK) return -1;
    int rc = dir_publish(g_exchange + 4, g_name, blob, len);
    mixl_free(blob);
    return rc;
}

/* Import the peer's metadata; its first region's base address goes to *base_p. */
static int fetch_peer(mixl_agent_h a, uint64_t *base_p)
{
    size_t len = 0;
    void *blob = NULL;
    mixl_metadata_t *md;
    int rc = -1;

#ifdef MIXL_TCP_PEER_REGISTRY
    if (is_etcd() && mixl_md_store_get(g_store, g_peer, g_timeout, &blob, &len) != MIXL_OK) {
        fprintf(stderr, "mixl-tcp-peer %s: %s\n", g_name, mixl_md_store_last_error(g_store));
        return -1;
    }
#endif
    if (!is_etcd()) blob = dir_fetch(g_exchange + 4, g_peer, &len);
    if (blob == NULL) return -1;
    if (mixl_metadata_import(a, blob, len, NULL) == MIXL_OK &&
        mixl_metadata_decode(blob, len, &md) == MIXL_OK) {
        if (md->region_count > 0 && md->tcp.port > 0) {
            *base_p = md->regions[0].addr;
            rc = 0;
        }
        mixl_metadata_free(md);
    }
    if (is_etcd())
        mixl_free(blob);
    else
        free(blob);
    return rc;
}

/* --- the two roles ------------------------------------------------------- */

static int wait_notif(mixl_agent_h a, mixl_notif_t *n)
{
    uint64_t end = mixl_deadline_ns(g_timeout);
    struct timespec pause = {0, 100000};
    size_t cnt;
    while (mixl_now_ns() < end) {
        if (mixl_notif_poll(a, n, 1, &cnt) != MIXL_OK) return -1;
        if (cnt == 1) return 0;
        nanosleep(&pause, NULL);
    }
    return -1;
}

static int wait_xfer(mixl_xfer_h x)
{
    uint64_t end = mixl_deadline_ns(g_timeout);
    struct timespec pause = {0, 20000};
    mixl_status_t st;
    while ((st = mixl_xfer_test(x)) == MIXL_IN_PROGRESS && mixl_now_ns() < end)
        nanosleep(&pause, NULL);
    return st;
}

static uint8_t pattern(int round, size_t i)
{
    return (uint8_t)(round * 7 + i * 13 + (i >> 12));
}

static int run_target(mixl_agent_h a, uint8_t *mem)
{
    uint64_t base;
    mixl_notif_t n;

    if (fetch_peer(a, &base) != 0) FAIL("no metadata from %s", g_peer);
    for (int r = 0; r < g_rounds; r++) {
        if (wait_notif(a, &n) != 0) FAIL("round %d: no notification", r);
        if (strcmp(n.peer, g_peer) != 0 || n.len != 1 || n.payload[0] != r)
            FAIL("round %d: notification from %s with %u bytes", r, n.peer, n.len);
        for (size_t i = 0; i < g_size; i++)
            if (mem[i] != pattern(r, i)) FAIL("round %d: byte %zu wrong", r, i);
        uint8_t ack = (uint8_t)r;
        if (mixl_notif_send(a, g_peer, &ack, 1) != MIXL_OK)
            FAIL("round %d: %s", r, mixl_agent_last_error(a));
    }
    /* Stay until the initiator has read our buffer back and says goodbye. */
    if (wait_notif(a, &n) != 0 || n.len != 3 || memcmp(n.payload, "bye", 3) != 0)
        FAIL("no goodbye from %s", g_peer);
    return 0;
}

static int run_initiator(mixl_agent_h a, uint8_t *mem)
{
    uint64_t base;
    mixl_xfer_h w, r;
    mixl_notif_t n;

    if (fetch_peer(a, &base) != 0) FAIL("no metadata from %s", g_peer);
    mixl_desc_t l = {(uint64_t)(uintptr_t)mem, g_size, MIXL_MEM_HOST, 0};
    mixl_desc_t rm = {base, g_size, MIXL_MEM_HOST, 0};
    mixl_xfer_params_t wp = {.size = sizeof(wp), .op = MIXL_OP_WRITE, .peer = g_peer,
                             .local = &l, .remote = &rm, .count = 1};
    if (mixl_xfer_create(a, &wp, &w) != MIXL_OK) FAIL("%s", mixl_agent_last_error(a));
    for (int k = 0; k < g_rounds; k++) {
        uint8_t tag = (uint8_t)k;
        for (size_t i = 0; i < g_size; i++) mem[i] = pattern(k, i);
        if (mixl_xfer_set_notif(w, &tag, 1) != MIXL_OK) FAIL("set_notif");
        mixl_status_t st = mixl_xfer_post(w);
        if (st == MIXL_IN_PROGRESS) st = wait_xfer(w);
        if (st != MIXL_OK) FAIL("round %d: %s", k, mixl_agent_last_error(a));
        if (wait_notif(a, &n) != 0 || n.len != 1 || n.payload[0] != tag)
            FAIL("round %d: no answer from %s", k, g_peer);
    }
    memset(mem, 0, g_size);
    mixl_xfer_params_t rp = wp;
    rp.op = MIXL_OP_READ;
    if (mixl_xfer_create(a, &rp, &r) != MIXL_OK) FAIL("%s", mixl_agent_last_error(a));
    mixl_status_t st = mixl_xfer_post(r);
    if (st == MIXL_IN_PROGRESS) st = wait_xfer(r);
    if (st != MIXL_OK) FAIL("read back: %s", mixl_agent_last_error(a));
    for (size_t i = 0; i < g_size; i++)
        if (mem[i] != pattern(g_rounds - 1, i)) FAIL("read back: byte %zu wrong", i);
    if (mixl_notif_send(a, g_peer, "bye", 3) != MIXL_OK) FAIL("%s", mixl_agent_last_error(a));
    mixl_xfer_release(w);
    mixl_xfer_release(r);
    printf("mixl-tcp-peer %s: %d rounds of %zu MiB to %s written, checked and read back\n", g_name,
           g_rounds, g_size >> 20, g_peer);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--role") == 0) g_role = argv[i + 1];
        else if (strcmp(argv[i], "--name") == 0) g_name = argv[i + 1];
        else if (strcmp(argv[i], "--peer") == 0) g_peer = argv[i + 1];
        else if (strcmp(argv[i], "--exchange") == 0) g_exchange = argv[i + 1];
        else if (strcmp(argv[i], "--size") == 0) g_size = (size_t)atoi(argv[i + 1]) << 20;
        else if (strcmp(argv[i], "--rounds") == 0) g_rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--timeout-ms") == 0) g_timeout = atoi(argv[i + 1]);
        else break;
    }
    if (g_role == NULL || g_name == NULL || g_peer == NULL || g_exchange == NULL || g_size == 0 ||
        g_rounds < 1 || g_rounds > 200 ||
        (strncmp(g_exchange, "dir:", 4) != 0 && !is_etcd())) {
        fprintf(stderr, "usage: %s --role target|initiator --name NAME --peer NAME "
                        "--exchange dir:PATH|etcd:URL [--size MiB] [--rounds N] [--timeout-ms MS]\n",
                argv[0]);
        return 2;
    }
    if (is_etcd()) {
#ifdef MIXL_TCP_PEER_REGISTRY
        if (etcd_open(g_exchange + 5) != 0) FAIL("cannot reach etcd at %s", g_exchange + 5);
#else
        FAIL("this build has no registry: etcd exchange unavailable");
#endif
    }
    mixl_agent_params_t p;
    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.name = g_name;
    p.comm = MPI_COMM_NULL;
    p.backends = MIXL_BACKEND_TCP;
    p.timeout_ms = g_timeout;
    mixl_agent_h a;
    mixl_region_h reg;
    uint8_t *mem = calloc(1, g_size);
    if (mem == NULL || mixl_agent_create(&p, &a) != MIXL_OK) FAIL("cannot create the agent");
    if (mixl_mem_register(a, mem, g_size, MIXL_MEM_HOST, 0, &reg) != MIXL_OK ||
        mixl_agent_start(a) != MIXL_OK || publish(a) != 0)
        FAIL("cannot set up: %s", mixl_agent_last_error(a));
    int rc = strcmp(g_role, "target") == 0 ? run_target(a, mem) : run_initiator(a, mem);
    mixl_agent_destroy(a);
#ifdef MIXL_TCP_PEER_REGISTRY
    etcd_close();
#endif
    free(mem);
    return rc;
}
