/*
 * Transfers of CUDA device memory over the MPI backend, under mpirun -np 2:
 * rank 0 initiates, rank 1 is the target. argv[1] is the case, argv[2] the
 * GPU path ("auto": device windows if the self-test passes, else staging;
 * "staged": always staging, with small slots so transfers take many chunks;
 * "device": device windows or fail), argv[3] and argv[4] optionally the
 * staging slot count and slot bytes. The path that ran is asserted: the
 * agent's path report names it, and on the emulated device (tests/cuda_emu)
 * its counters show IPC mappings, GPUDirect flushes and copies through
 * pinned slots (at least one per chunk when staged) where they belong.
 *
 *   sizes        device->host WRITE, host->device READ, device->device WRITE
 *                and READ (CUDA IPC on one host, or device windows), 1 B to
 *                20 MiB, odd sizes, unaligned offsets
 *   small_descs  1000 scattered odd-sized descriptors device->host and back
 *   notif        notifications after device data (staged and IPC), data
 *                complete when the notification is seen
 *   ipc          host<->device and device<->device over CUDA IPC, one
 *                prepared request reused
 *   refuse       no GPU needed: device targets that cannot be reached are
 *                refused at create with the region and the reason named; a
 *                host pointer registered as CUDA memory is refused; the agent
 *                stays usable
 *
 * Every GPU case exits 77 (SKIP) on every rank, before MPI starts, when the
 * library was built without CUDA or no CUDA device is present.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/metadata.h>
#include <mixl/mixl.h>

#include "mem/mem.h"

#define POOL (48u << 20)
#define SKIP 77

static int rank, nranks, failures, device;
static long (*emu_counter)(const char *name); /* the emulated device's counters, else NULL */
static long flush_base; /* GPUDirect flushes before the case (the self-test's) */
static long pinned_base;        /* emulated device: device<->pinned copies before the case */
static uint64_t stage_slot = 8u << 20; /* staging slot size in force (the default unless staged) */
static long min_staged_copies; /* rank 0: chunks the staged path must have copied */
static mixl_agent_h agent;
static uint8_t *hpool, *dpool, *scratch; /* host pool, device pool, host scratch */
static uint64_t peer_h[2], peer_d[2];
static char names[2][MIXL_NAME_MAX];

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "rank %d: %s:%d: ", rank, __FILE__, __LINE__);   \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, " [%s]\n", mixl_agent_last_error(agent));        \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static uint8_t fill_byte(uint64_t i, uint32_t salt)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ salt;
    return (uint8_t)(x >> 56);
}

static void pattern(uint8_t *p, uint64_t len, uint32_t salt)
{
    for (uint64_t i = 0; i < len; i++) p[i] = fill_byte(i, salt);
}

/* First wrong byte of p against the pattern, or UINT64_MAX. */
static uint64_t first_bad(const uint8_t *p, uint64_t len, uint32_t salt)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != fill_byte(i, salt)) return i;
    return UINT64_MAX;
}

static void dev_fill(uint64_t off, uint64_t len, uint32_t salt)
{
    pattern(scratch, len, salt);
    CHECK(mixl_mem_copy(dpool + off, scratch, len) == MIXL_OK, "filling device memory");
}

static uint64_t dev_bad(uint64_t off, uint64_t len, uint32_t salt)
{
    if (mixl_mem_copy(scratch, dpool + off, len) != MIXL_OK) return 0;
    return first_bad(scratch, len, salt);
}

/* Clear the first span bytes (the whole pool with span 0). */
static void dev_zero_span(uint64_t span)
{
    if (span == 0 || span > POOL) span = POOL;
    memset(scratch, 0, span);
    CHECK(mixl_mem_copy(dpool, scratch, span) == MIXL_OK, "clearing device memory");
}

static void dev_zero(void)
{
    dev_zero_span(0);
}

static mixl_desc_t desc(uint64_t addr, uint64_t len, mixl_mem_type_t t)
{
    mixl_desc_t d = {addr, len, t, t == MIXL_MEM_CUDA ? device : 0};
    return d;
}

/* Waits are bounded so that a failing test ends within about 30 s: 20 s
 * for the first (a loaded 2-core CI machine needs it), 2 s once a check
 * failed, and the loops below stop at their first failed round. */
static int wait_ms(void)
{
    return failures ? 2000 : 20000;
}

/* Collective: whether any rank has failed a check (so every rank stops alike). */
static int any_failed(void)
{
    int all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    return all != 0;
}

static mixl_status_t run(mixl_xfer_h x)
{
    mixl_status_t st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, wait_ms());
    return st;
}

/* One transfer between rank 0 and rank 1; lt/rt choose host or device pools. */
static mixl_status_t one(mixl_op_t op, mixl_mem_type_t lt, uint64_t loff, mixl_mem_type_t rt,
                         uint64_t roff, uint64_t len, const void *notif, size_t notif_len)
{
    uint64_t lbase = (uint64_t)(uintptr_t)(lt == MIXL_MEM_CUDA ? dpool : hpool);
    uint64_t rbase = rt == MIXL_MEM_CUDA ? peer_d[1] : peer_h[1];
    mixl_desc_t l = desc(lbase + loff, len, lt), r = desc(rbase + roff, len, rt);
    mixl_xfer_params_t p = {.size = sizeof(p), .op = op, .peer = names[1], .local = &l,
                            .remote = &r, .count = 1, .notif = notif, .notif_len = notif_len};
    mixl_xfer_h x;
    mixl_status_t st = mixl_xfer_create(agent, &p, &x);
    if (st != MIXL_OK) return st;
    st = run(x);
    mixl_xfer_release(x);
    return st;
}

static size_t wait_notifs(mixl_notif_t *out, size_t n, double seconds)
{
    size_t got = 0;
    double end = MPI_Wtime() + seconds;
    while (got < n && MPI_Wtime() < end) {
        size_t k = 0;
        if (mixl_notif_poll(agent, out + got, n - got, &k) != MIXL_OK) break;
        got += k;
    }
    return got;
}

static const char *tname(mixl_mem_type_t t)
{
    return t == MIXL_MEM_CUDA ? "device" : "host";
}

/* rank 0 WRITEs its lt pool to rank 1's rt pool, rank 1 checks; then rank 0 READs it back. */
static void write_then_read(mixl_mem_type_t lt, mixl_mem_type_t rt, uint64_t len, uint64_t loff,
                            uint64_t roff, uint32_t salt)
{
    /* Everything below touches at most the first 2 len + 256 bytes of a pool. */
    uint64_t span = 2 * len + 256 < POOL ? 2 * len + 256 : POOL;

    memset(hpool, 0, span);
    dev_zero_span(span);
    if (rank == 0) {
        if (lt == MIXL_MEM_CUDA) dev_fill(loff, len, salt);
        else pattern(hpool + loff, len, salt);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        mixl_status_t st = one(MIXL_OP_WRITE, lt, loff, rt, roff, len, &salt, sizeof(salt));
        CHECK(st == MIXL_OK, "WRITE %s->%s of %llu bytes: %s", tname(lt), tname(rt),
              (unsigned long long)len, mixl_status_str(st));
    } else {
        mixl_notif_t n;
        uint64_t bad;
        uint8_t edge[2] = {1, 1};
        CHECK(wait_notifs(&n, 1, wait_ms() / 1000.0) == 1, "no notification for %llu bytes", (unsigned long long)len);
        if (rt == MIXL_MEM_CUDA) {
            bad = dev_bad(roff, len, salt);
            mixl_mem_copy(&edge[0], dpool + roff - 1, 1);
            mixl_mem_copy(&edge[1], dpool + roff + len, 1);
        } else {
            bad = first_bad(hpool + roff, len, salt);
            edge[0] = hpool[roff - 1];
            edge[1] = hpool[roff + len];
        }
        CHECK(bad == UINT64_MAX, "WRITE %s->%s %llu bytes: byte %llu wrong", tname(lt), tname(rt),
              (unsigned long long)len, (unsigned long long)bad);
        CHECK(edge[0] == 0 && edge[1] == 0, "WRITE %s->%s %llu bytes spilled outside its span",
              tname(lt), tname(rt), (unsigned long long)len);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        uint64_t back = loff + len + 5, bad;
        mixl_status_t st;
        if (back + len + 1 > POOL) back = 1;
        if (lt == MIXL_MEM_CUDA) dev_zero_span(span);
        else memset(hpool, 0, span);
        st = one(MIXL_OP_READ, lt, back, rt, roff, len, NULL, 0);
        CHECK(st == MIXL_OK, "READ %s<-%s of %llu bytes: %s", tname(lt), tname(rt),
              (unsigned long long)len, mixl_status_str(st));
        bad = lt == MIXL_MEM_CUDA ? dev_bad(back, len, salt) : first_bad(hpool + back, len, salt);
        CHECK(bad == UINT64_MAX, "READ %s<-%s %llu bytes: byte %llu wrong", tname(lt), tname(rt),
              (unsigned long long)len, (unsigned long long)bad);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void case_sizes(void)
{
    static const uint64_t sizes[] = {1, 3, 4096, 65537, (1u << 20) + 13, 8u << 20, (8u << 20) + 1,
                                     (20u << 20) + 7};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]) && !any_failed(); s++) {
        uint64_t loff = 1 + (s * 13) % 64, roff = 3 + (s * 7) % 64;
        uint32_t salt = (uint32_t)s * 31 + 7;
        write_then_read(MIXL_MEM_CUDA, MIXL_MEM_HOST, sizes[s], loff, roff, salt);  /* staged */
        min_staged_copies += 2 * (long)((sizes[s] + stage_slot - 1) / stage_slot); /* WRITE + READ */
        write_then_read(MIXL_MEM_CUDA, MIXL_MEM_CUDA, sizes[s], loff, roff, salt + 1); /* IPC/windows */
    }
}

/* 1000 scattered descriptors of odd sizes from device memory, then read back. */
static void case_small_descs(void)
{
    enum { N = 1000, STRIDE = 1500 };
    mixl_desc_t *l = malloc(N * sizeof(*l)), *r = malloc(N * sizeof(*r));
    uint64_t total = 0;

    memset(hpool, 0, POOL);
    dev_zero();
    if (rank == 0) dev_fill(0, (uint64_t)N * STRIDE, 123);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                .local = l, .remote = r, .count = N};
        mixl_xfer_h x;
        mixl_status_t st;
        for (int i = 0; i < N; i++) {
            uint64_t len = 1000 + (uint64_t)(i % 7) * 61;
            int slot = (int)(((uint64_t)i * 7919u) % N); /* permuted remote order */
            l[i] = desc((uint64_t)(uintptr_t)dpool + (uint64_t)i * STRIDE, len, MIXL_MEM_CUDA);
            r[i] = desc(peer_h[1] + 7 + (uint64_t)slot * STRIDE, len, MIXL_MEM_HOST);
            total += len;
        }
        st = mixl_xfer_create(agent, &p, &x);
        CHECK(st == MIXL_OK, "create of %d descriptors: %s", N, mixl_status_str(st));
        if (st == MIXL_OK) {
            CHECK(mixl_xfer_bytes(x) == total, "request moves %llu bytes, expected %llu",
                  (unsigned long long)mixl_xfer_bytes(x), (unsigned long long)total);
            st = run(x);
            CHECK(st == MIXL_OK, "WRITE of %d descriptors: %s", N, mixl_status_str(st));
            mixl_xfer_release(x);
        }
        /* Read every piece back into device memory after the first pool half. */
        for (int i = 0; i < N; i++) l[i].addr += POOL / 2;
        p.op = MIXL_OP_READ;
        st = mixl_xfer_create(agent, &p, &x);
        if (st == MIXL_OK) {
            st = run(x);
            mixl_xfer_release(x);
        }
        CHECK(st == MIXL_OK, "READ of %d descriptors: %s", N, mixl_status_str(st));
        min_staged_copies += 2 * (long)((total + stage_slot - 1) / stage_slot);
        if (mixl_mem_copy(scratch, dpool + POOL / 2, (uint64_t)N * STRIDE) == MIXL_OK) {
            int bad = -1;
            for (int i = 0; i < N && bad < 0; i++)
                for (uint64_t k = 0; k < l[i].len && bad < 0; k++)
                    if (scratch[(uint64_t)i * STRIDE + k] != fill_byte((uint64_t)i * STRIDE + k, 123)) bad = i;
            CHECK(bad < 0, "descriptor %d read back wrong", bad);
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        int bad = -1;
        for (int i = 0; i < N && bad < 0; i++) {
            uint64_t len = 1000 + (uint64_t)(i % 7) * 61;
            int slot = (int)(((uint64_t)i * 7919u) % N);
            for (uint64_t k = 0; k < len && bad < 0; k++)
                if (hpool[7 + (uint64_t)slot * STRIDE + k] != fill_byte((uint64_t)i * STRIDE + k, 123)) bad = i;
        }
        CHECK(bad < 0, "descriptor %d arrived wrong", bad);
    }
    free(l);
    free(r);
}

/* Notifications follow the device data, for staged and device->device transfers. */
static void case_notif(void)
{
    enum { ROUNDS = 5, LEN = (5u << 20) + 3 };
    for (int round = 0; round < ROUNDS && !any_failed(); round++) {
        mixl_mem_type_t rt = round % 2 ? MIXL_MEM_CUDA : MIXL_MEM_HOST;
        uint32_t salt = 1000u + (uint32_t)round;
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "layer-%d", round);

        if (rank == 0) dev_fill(11, LEN, salt);
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            mixl_status_t st = one(MIXL_OP_WRITE, MIXL_MEM_CUDA, 11, rt, 17, LEN, msg, (size_t)n);
            CHECK(st == MIXL_OK, "round %d WRITE: %s", round, mixl_status_str(st));
        } else {
            mixl_notif_t got;
            uint64_t bad;
            CHECK(wait_notifs(&got, 1, wait_ms() / 1000.0) == 1, "round %d: no notification", round);
            CHECK(got.len == (uint32_t)n && memcmp(got.payload, msg, (size_t)n) == 0 &&
                      strcmp(got.peer, names[0]) == 0, "round %d: wrong notification", round);
            bad = rt == MIXL_MEM_CUDA ? dev_bad(17, LEN, salt) : first_bad(hpool + 17, LEN, salt);
            CHECK(bad == UINT64_MAX, "round %d: notification before byte %llu arrived", round,
                  (unsigned long long)bad);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
}

/* CUDA IPC (or device windows): host<->device and a prepared device->device request reused. */
static void case_ipc(void)
{
    enum { LEN = (3u << 20) + 5, REUSE = 20 };
    write_then_read(MIXL_MEM_HOST, MIXL_MEM_CUDA, LEN, 9, 33, 77);
    mixl_xfer_h x = NULL;
    mixl_status_t st = MIXL_OK;
    if (rank == 0) {
        mixl_desc_t l = desc((uint64_t)(uintptr_t)dpool + 1, LEN, MIXL_MEM_CUDA);
        mixl_desc_t r = desc(peer_d[1] + 2, LEN, MIXL_MEM_CUDA);
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                .local = &l, .remote = &r, .count = 1};
        st = mixl_xfer_create(agent, &p, &x);
        CHECK(st == MIXL_OK, "prepare device->device: %s", mixl_status_str(st));
    }
    /* Every round ends in a barrier: the target has checked before the next overwrite. */
    for (int i = 0; i < REUSE && !any_failed(); i++) {
        uint32_t salt = 500u + (uint32_t)i;
        if (rank == 0 && st == MIXL_OK) {
            dev_fill(1, LEN, salt);
            st = run(x);
            CHECK(st == MIXL_OK, "reuse %d: %s", i, mixl_status_str(st));
            if (st == MIXL_OK) {
                st = mixl_notif_send(agent, names[1], &salt, sizeof(salt));
                CHECK(st == MIXL_OK, "notification %d: %s", i, mixl_status_str(st));
            }
        } else if (rank == 1) {
            mixl_notif_t n;
            uint32_t got;
            if (wait_notifs(&n, 1, wait_ms() / 1000.0) == 1) {
                memcpy(&got, n.payload, sizeof(got));
                CHECK(got == salt, "reuse %d: notification for round %u", i, got - 500u);
                CHECK(dev_bad(2, LEN, salt) == UINT64_MAX, "reuse %d: wrong bytes", i);
            } else {
                CHECK(0, "reuse %d: no notification", i);
            }
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if (x != NULL) mixl_xfer_release(x);
}

/* A device copy that fails (CUDA_EMU_FAIL=cudaMemcpyAsync:N on the emulated
 * device) fails its staged request with the CUDA error named, within the
 * wait; the next request over the same slots moves the data intact. */
static void case_fault(void)
{
    enum { LEN = (6u << 20) + 11 };
    mixl_status_t st;

    memset(hpool, 0, LEN + 64);
    if (rank == 0) dev_fill(3, LEN, 4242);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        double t0 = MPI_Wtime();
        st = one(MIXL_OP_WRITE, MIXL_MEM_CUDA, 3, MIXL_MEM_HOST, 5, LEN, NULL, 0);
        CHECK(st == MIXL_ERR_BACKEND, "WRITE with a failing device copy gave %s", mixl_status_str(st));
        CHECK(strstr(mixl_agent_last_error(agent), "cudaMemcpyAsync") != NULL,
              "the failure does not name the CUDA call");
        CHECK(MPI_Wtime() - t0 < 10.0, "the failure took %.1f s", MPI_Wtime() - t0);
        mixl_agent_clear_error(agent);
        st = one(MIXL_OP_WRITE, MIXL_MEM_CUDA, 3, MIXL_MEM_HOST, 5, LEN, NULL, 0);
        CHECK(st == MIXL_OK, "WRITE after the failure: %s", mixl_status_str(st));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 1) {
        uint64_t bad = first_bad(hpool + 5, LEN, 4242);
        CHECK(bad == UINT64_MAX, "byte %llu wrong after the retry", (unsigned long long)bad);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Device targets that cannot be reached: refused at create, the region named. No GPU needed. */
static void case_refuse(const void *peer_blob, size_t peer_len)
{
    mixl_metadata_t *md = NULL;

    if (rank == 0) {
        mixl_md_region_t *regs;
        mixl_region_h bad_region;
        uint8_t host_page[64];
        void *blob = NULL;
        size_t len = 0;
        mixl_status_t st;
        const char *rep = mixl_agent_path_report(agent);

        CHECK(strstr(rep, "cuda: ") != NULL, "path report without the device path: %s", rep);
#ifdef MIXL_HAVE_CUDA
        CHECK(strstr(rep, "staged through") != NULL || strstr(rep, "device windows") != NULL,
              "path report names no device path: %s", rep);
        /* A host pointer registered as device memory is refused, not trusted. */
        st = mixl_mem_register(agent, host_page, sizeof(host_page), MIXL_MEM_CUDA, 0, &bad_region);
        CHECK(st == MIXL_ERR_INVALID_PARAM, "host page registered as CUDA memory: %s",
              mixl_status_str(st));
#else
        st = mixl_mem_register(agent, host_page, sizeof(host_page), MIXL_MEM_CUDA, 0, &bad_region);
        CHECK(st == MIXL_ERR_NOT_SUPPORTED, "CUDA registration without CUDA: %s", mixl_status_str(st));
#endif
        /* The peer's metadata plus a device region without a window. */
        CHECK(mixl_metadata_decode(peer_blob, peer_len, &md) == MIXL_OK,
              "decode of the peer's metadata: %s", mixl_last_error());
        if (md == NULL) return;
        regs = realloc(md->regions, (md->region_count + 1) * sizeof(*regs));
        if (regs == NULL) return;
        md->regions = regs;
        memset(&regs[md->region_count], 0, sizeof(*regs));
        regs[md->region_count].id = 4242;
        regs[md->region_count].addr = 0x7e0000000000ull;
        regs[md->region_count].len = 1u << 20;
        regs[md->region_count].mem_type = MIXL_MEM_CUDA;
        regs[md->region_count].mpi.window = -2;
        md->region_count++;

        static const struct {
            const char *host;
            uint32_t flags;
            const char *expect;
        } variants[] = {
#ifdef MIXL_HAVE_CUDA
            {"elsewhere.invalid", MIXL_MD_REGION_IPC, "another host"},
            {NULL, 0, "no CUDA IPC handle"},
            {NULL, MIXL_MD_REGION_IPC, "cannot map its CUDA IPC handle"},
#else
            {"elsewhere.invalid", MIXL_MD_REGION_IPC, "built without CUDA"},
            {NULL, 0, "built without CUDA"},
#endif
        };
        char own_host[MIXL_NAME_MAX];
        snprintf(own_host, sizeof(own_host), "%s", md->hostname);
        for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
            mixl_desc_t l = desc((uint64_t)(uintptr_t)hpool, 4096, MIXL_MEM_HOST);
            mixl_desc_t r = desc(0x7e0000000000ull + 64, 4096, MIXL_MEM_CUDA);
            mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                    .local = &l, .remote = &r, .count = 1};
            mixl_xfer_h x = NULL;

            /* An IPC region's allocation base rides in window_base. */
            regs[md->region_count - 1].mpi.window_base = 0x7e0000000000ull;
            regs[md->region_count - 1].mpi.flags = variants[v].flags;
            if (variants[v].flags & MIXL_MD_REGION_IPC)
                memset(regs[md->region_count - 1].mpi.ipc_handle, 0xAB, sizeof(regs->mpi.ipc_handle));
            snprintf(md->hostname, sizeof(md->hostname), "%s", variants[v].host ? variants[v].host : own_host);
            md->engine_id[0] = (char)('a' + v); /* a different blob each time */
            CHECK(mixl_metadata_encode(md, &blob, &len) == MIXL_OK, "encode");
            st = mixl_metadata_import(agent, blob, len, NULL);
            CHECK(st == MIXL_OK, "import of the altered metadata: %s", mixl_status_str(st));
            mixl_free(blob);
            mixl_agent_clear_error(agent);
            st = mixl_xfer_create(agent, &p, &x);
            CHECK(st == MIXL_ERR_NOT_SUPPORTED, "variant %zu: create gave %s", v, mixl_status_str(st));
            CHECK(strstr(mixl_agent_last_error(agent), "region 4242") != NULL &&
                      strstr(mixl_agent_last_error(agent), variants[v].expect) != NULL,
                  "variant %zu: message does not name the region and '%s'", v, variants[v].expect);
            if (st == MIXL_OK) mixl_xfer_release(x);
        }
        mixl_metadata_free(md);
        /* Back to the real metadata; the agent still moves host memory. */
        CHECK(mixl_metadata_import(agent, peer_blob, peer_len, NULL) == MIXL_OK, "re-import");
        pattern(hpool, 100000, 3);
        st = one(MIXL_OP_WRITE, MIXL_MEM_HOST, 0, MIXL_MEM_HOST, 5, 100000, NULL, 0);
        CHECK(st == MIXL_OK, "host WRITE after the refusals: %s", mixl_status_str(st));
        memset(hpool + 200000, 0, 100000);
        st = one(MIXL_OP_READ, MIXL_MEM_HOST, 200000, MIXL_MEM_HOST, 5, 100000, NULL, 0);
        CHECK(st == MIXL_OK && first_bad(hpool + 200000, 100000, 3) == UINT64_MAX,
              "host READ back after the refusals: %s", mixl_status_str(st));
        CHECK(mixl_notif_send(agent, names[1], "done", 4) == MIXL_OK, "final notification");
    } else {
        mixl_notif_t n;
        /* Polling progresses MPI for the initiator's operations. */
        CHECK(wait_notifs(&n, 1, wait_ms() / 1000.0) == 1, "no final notification");
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The path the agent chose is the one asked for; auto says which it took. */
static void check_path_report(int staged, int devwin, unsigned slots, size_t slot_bytes)
{
    const char *rep = mixl_agent_path_report(agent);
    const char *aware = getenv("MIXL_MPI_CUDA_AWARE");
    char want[96];

    if (staged) {
        char n[32];
        snprintf(n, sizeof(n), slots == 1 ? "1 pinned slot" : "%u pinned slots", slots);
        if (slot_bytes % (1u << 20) == 0)
            snprintf(want, sizeof(want), "staged through %s of %zu MiB", n, slot_bytes >> 20);
        else if (slot_bytes % 1024 == 0)
            snprintf(want, sizeof(want), "staged through %s of %zu KiB", n, slot_bytes >> 10);
        else
            snprintf(want, sizeof(want), "staged through %s of %zu bytes", n, slot_bytes);
    } else if (devwin || (aware != NULL && strcmp(aware, "1") == 0)) {
        snprintf(want, sizeof(want), "device windows: self-test passed");
    } else {
        snprintf(want, sizeof(want), "%s", strstr(rep, "device windows") ? "device windows" : "staged through");
    }
    CHECK(strstr(rep, want) != NULL, "path report lacks '%s': %s", want, rep);
    /* A host span registered as device memory past its allocation is refused. */
    mixl_region_h r;
    uint8_t *small = NULL;
    mixl_status_t st = mixl_mem_alloc(MIXL_MEM_CUDA, device, 4096, (void **)&small);
    CHECK(st == MIXL_OK, "small device allocation: %s", mixl_status_str(st));
    if (st != MIXL_OK) return;
    st = mixl_mem_register(agent, small + 4000, 200, MIXL_MEM_CUDA, device, &r);
    CHECK(st == MIXL_ERR_INVALID_PARAM, "device span past its allocation registered: %s",
          mixl_status_str(st));
    if (st == MIXL_OK) mixl_mem_deregister(agent, r);
    mixl_agent_clear_error(agent);
    mixl_mem_free(MIXL_MEM_CUDA, small);
}

/* On the emulated device: evidence of the path in its counters. */
static void check_path_ran(const char *which, int staged, int devwin)
{
    int windows = strstr(mixl_agent_path_report(agent), "cuda: device windows") != NULL;
    long opens, flushes, ctx0, pinned;

    if (emu_counter == NULL) return; /* real hardware: nothing to count */
    opens = emu_counter("ipc_opens");
    pinned = emu_counter("pinned_copies") - pinned_base;
    flushes = emu_counter("flush") - flush_base;
    ctx0 = emu_counter("ctx0");
    if (staged) CHECK(!windows, "staged run reports device windows");
    /* Staging is the only user of pinned memory here: device<->slot copies. */
    if (windows) CHECK(pinned == 0, "device windows, yet %ld copies through pinned slots", pinned);
    else if (rank == 0 && (strcmp(which, "sizes") == 0 || strcmp(which, "small_descs") == 0))
        CHECK(pinned >= min_staged_copies, "staged path: %ld copies through pinned slots, expected at least %ld",
              pinned, min_staged_copies);
    if (devwin) CHECK(windows, "device run without device windows");
    if (windows) {
        /* Device->device goes through the windows; device data is flushed. */
        CHECK(opens == 0, "device windows, yet %ld CUDA IPC mappings", opens);
        /* Rank 1 is told of device data by notifications, rank 0 READs into device memory. */
        if ((rank == 1 && strcmp(which, "small_descs") != 0) ||
            (rank == 0 && strcmp(which, "sizes") == 0))
            CHECK(flushes > 0, "device data announced without cuFlushGPUDirectRDMAWrites");
    } else if (rank == 0 && strcmp(which, "small_descs") != 0 && strcmp(which, "fault") != 0) {
        /* Device->device without windows is CUDA IPC, mapped on the initiator. */
        CHECK(opens > 0, "no CUDA IPC mapping for device->device transfers");
    }
    /* A rank that uses device 1 only never creates a context on device 0. */
    if (device != 0) CHECK(ctx0 == 0, "rank %d (device %d) created a context on device 0", rank, device);
    printf("rank %d: device %d, ipc_opens %ld, gdr_flushes %ld, ctx0 %ld, pinned copies %ld\n", rank, device,
           opens, flushes, ctx0, pinned);
}

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "", *path = argc > 2 ? argv[2] : "auto";
    int refuse = strcmp(which, "refuse") == 0, staged = strcmp(path, "staged") == 0;
    int devwin = strcmp(path, "device") == 0;
    unsigned slots = argc > 3 ? (unsigned)atoi(argv[3]) : 3;
    size_t slot_bytes = argc > 4 ? (size_t)atol(argv[4]) : (1u << 20) + 4093;
    if (staged) stage_slot = slot_bytes;
    mixl_region_h hreg, dreg;
    char name[MIXL_NAME_MAX];
    int provided, all, ndev = 0;
    mixl_status_t st;

    if (!refuse) {
        /* Before MPI: every rank decides alike and nothing collective is left waiting. */
        st = mixl_mem_device_count(&ndev);
        if (st == MIXL_ERR_NOT_SUPPORTED) {
            printf("SKIP: MIXL was built without CUDA\n");
            return SKIP;
        }
        if (st != MIXL_OK) {
            /* A CUDA error other than "no device" (driver/runtime mismatch, ...) fails. */
            printf("FAIL: cannot count CUDA devices: %s\n", mixl_status_str(st));
            return 1;
        }
        if (ndev == 0) {
            printf("SKIP: no CUDA device present\n");
            return SKIP;
        }
        const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
        device = (lr ? atoi(lr) : 0) % ndev;
    }
    if (mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MIXL_OK) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (nranks != 2) {
        if (rank == 0) fprintf(stderr, "run with 2 ranks\n");
        MPI_Finalize();
        return 1;
    }
    snprintf(name, sizeof(name), "gpu-rank-%d", rank);
    mixl_agent_params_t params = {.size = sizeof(params), .name = name, .comm = MPI_COMM_WORLD,
                                  .gpu_path = staged   ? MIXL_GPU_PATH_STAGED
                                              : devwin ? MIXL_GPU_PATH_DEVICE_WIN
                                                       : MIXL_GPU_PATH_AUTO,
                                  .staging_slots = staged ? slots : 0,
                                  .staging_slot_bytes = staged ? slot_bytes : 0};
    emu_counter = (long (*)(const char *))dlsym(RTLD_DEFAULT, "cuda_emu_counter");
    if (mixl_agent_create(&params, &agent) != MIXL_OK) MPI_Abort(MPI_COMM_WORLD, 2);
    hpool = aligned_alloc(4096, POOL);
    scratch = malloc(POOL);
    if (hpool == NULL || scratch == NULL) MPI_Abort(MPI_COMM_WORLD, 2);
    memset(hpool, 0, POOL);
    if (mixl_mem_register(agent, hpool, POOL, MIXL_MEM_HOST, 0, &hreg) != MIXL_OK) MPI_Abort(MPI_COMM_WORLD, 2);
    if (!refuse) {
        if (mixl_mem_alloc(MIXL_MEM_CUDA, device, POOL, (void **)&dpool) != MIXL_OK ||
            mixl_mem_register(agent, dpool, POOL, MIXL_MEM_CUDA, device, &dreg) != MIXL_OK) {
            fprintf(stderr, "rank %d: device pool: %s\n", rank, mixl_agent_last_error(agent));
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    }
    if (mixl_agent_start(agent) != MIXL_OK) {
        fprintf(stderr, "rank %d: start: %s\n", rank, mixl_agent_last_error(agent));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    if (rank == 0) printf("data path: %s\n", mixl_agent_path_report(agent));
    if (!refuse) check_path_report(staged, devwin, slots, slot_bytes);
    if (emu_counter != NULL) {
        flush_base = emu_counter("flush");
        pinned_base = emu_counter("pinned_copies");
    }

    void *blob;
    size_t len;
    if (mixl_metadata_export(agent, &blob, &len) != MIXL_OK) MPI_Abort(MPI_COMM_WORLD, 2);
    int mylen = (int)len, lens[2], displs[2];
    MPI_Allgather(&mylen, 1, MPI_INT, lens, 1, MPI_INT, MPI_COMM_WORLD);
    displs[0] = 0;
    displs[1] = lens[0];
    uint8_t *blobs = malloc((size_t)lens[0] + (size_t)lens[1]);
    MPI_Allgatherv(blob, mylen, MPI_BYTE, blobs, lens, displs, MPI_BYTE, MPI_COMM_WORLD);
    for (int r = 0; r < 2; r++)
        if (mixl_metadata_import(agent, blobs + displs[r], (size_t)lens[r], names[r]) != MIXL_OK)
            MPI_Abort(MPI_COMM_WORLD, 2);
    uint64_t mine[2] = {(uint64_t)(uintptr_t)hpool, (uint64_t)(uintptr_t)dpool}, both[4];
    MPI_Allgather(mine, 2, MPI_UINT64_T, both, 2, MPI_UINT64_T, MPI_COMM_WORLD);
    for (int r = 0; r < 2; r++) {
        peer_h[r] = both[2 * r];
        peer_d[r] = both[2 * r + 1];
    }

    if (strcmp(which, "fault") == 0 && emu_counter == NULL) {
        /* Real hardware cannot be told to fail a copy: nothing to check. */
        if (rank == 0) printf("fault: needs the emulated device\n");
        which = "none";
    }
    if (strcmp(which, "none") == 0) ;
    else if (strcmp(which, "sizes") == 0) case_sizes();
    else if (strcmp(which, "small_descs") == 0) case_small_descs();
    else if (strcmp(which, "notif") == 0) case_notif();
    else if (strcmp(which, "ipc") == 0) case_ipc();
    else if (strcmp(which, "fault") == 0) case_fault();
    else if (refuse) case_refuse(blobs + displs[1], (size_t)lens[1]);
    else {
        if (rank == 0) fprintf(stderr, "unknown case '%s'\n", which);
        failures++;
    }
    if (!refuse) check_path_ran(which, staged, devwin);
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%s (%s): %s (%d failures)\n", which, path, all ? "FAILED" : "passed", all);
    mixl_free(blob);
    free(blobs);
    mixl_agent_destroy(agent);
    mixl_mem_free(MIXL_MEM_CUDA, dpool);
    free(hpool);
    free(scratch);
    MPI_Finalize();
    return all ? 1 : 0;
}
