/*
 * Transfer correctness over the MPI backend: every rank runs the same case
 * (argv[1]); rank 0 initiates unless the case says otherwise. Each case
 * verifies every byte it moved and that nothing outside the target span
 * changed. Exit 0 only when every rank passed. A second argument "mpi-mem"
 * takes the pool from mixl_mem_alloc_mpi() instead of malloc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/mixl.h>

#define POOL (72u << 20) /* fits the 64 MiB case plus offsets */

static int rank, nranks, failures;
static mixl_agent_h agent;
static uint8_t *pool;
static uint64_t *peer_base; /* pool address of every rank */
static char (*names)[MIXL_NAME_MAX];

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

static mixl_desc_t desc(uint64_t addr, uint64_t len)
{
    mixl_desc_t d = {addr, len, MIXL_MEM_HOST, 0};
    return d;
}

static mixl_status_t run(mixl_xfer_h x)
{
    mixl_status_t st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 60000);
    return st;
}

static mixl_status_t one(mixl_op_t op, int peer, uint64_t loff, uint64_t roff, uint64_t len,
                         const void *notif, size_t notif_len)
{
    mixl_desc_t l = desc((uint64_t)(uintptr_t)pool + loff, len);
    mixl_desc_t r = desc(peer_base[peer] + roff, len);
    mixl_xfer_params_t p = {.size = sizeof(p), .op = op, .peer = names[peer], .local = &l,
                            .remote = &r, .count = 1, .notif = notif, .notif_len = notif_len};
    mixl_xfer_h x;
    mixl_status_t st = mixl_xfer_create(agent, &p, &x);
    if (st != MIXL_OK) return st;
    st = run(x);
    mixl_xfer_release(x);
    return st;
}

/* Zero every rank's pool, and only then let anyone write: on memory peers map directly a put can
 * land the moment it is issued, before a slower target has finished clearing. */
static void clear_pool(void)
{
    memset(pool, 0, POOL);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Wait for n notifications; returns how many arrived before the deadline. */
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

/* Sizes from 1 B to 64 MiB, odd sizes, unaligned offsets; WRITE then READ back. */
static void case_sizes(void)
{
    static const uint64_t sizes[] = {1, 2, 3, 7, 8, 63, 64, 65, 4095, 4096, 4097, 65537,
                                     1000003, 4u << 20, (16u << 20) + 5, 64u << 20};
    static const uint64_t offsets[] = {0, 1, 13, 4093};
    int target = nranks - 1;

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint64_t len = sizes[s], loff = offsets[s % 4], roff = offsets[(s + 1) % 4] + 8;
        if (roff + len + 8 > POOL) roff = 8;
        uint32_t salt = (uint32_t)s * 17 + 1;
        memset(pool, 0, POOL);
        if (rank == 0)
            for (uint64_t i = 0; i < len; i++) pool[loff + i] = fill_byte(i, salt);
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            mixl_status_t st = one(MIXL_OP_WRITE, target, loff, roff, len, &salt, sizeof(salt));
            CHECK(st == MIXL_OK, "WRITE of %llu bytes: %s", (unsigned long long)len, mixl_status_str(st));
        }
        if (rank == target) {
            mixl_notif_t n;
            CHECK(wait_notifs(&n, 1, 60) == 1, "no notification for %llu bytes", (unsigned long long)len);
            /* The data must be complete when the notification is seen. */
            uint64_t bad = UINT64_MAX;
            for (uint64_t i = 0; i < len && bad == UINT64_MAX; i++)
                if (pool[roff + i] != fill_byte(i, salt)) bad = i;
            CHECK(bad == UINT64_MAX, "WRITE %llu bytes: byte %llu wrong", (unsigned long long)len,
                  (unsigned long long)bad);
            CHECK(pool[roff - 1] == 0 && pool[roff + len] == 0, "WRITE %llu bytes spilled outside its span",
                  (unsigned long long)len);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0) {
            /* Read it back into a different place. */
            uint64_t back = loff + len + 3;
            if (back + len > POOL) back = 0, memset(pool, 0, POOL);
            mixl_status_t st = one(MIXL_OP_READ, target, back, roff, len, NULL, 0);
            CHECK(st == MIXL_OK, "READ of %llu bytes: %s", (unsigned long long)len, mixl_status_str(st));
            uint64_t bad = UINT64_MAX;
            for (uint64_t i = 0; i < len && bad == UINT64_MAX; i++)
                if (pool[back + i] != fill_byte(i, salt)) bad = i;
            CHECK(bad == UINT64_MAX, "READ %llu bytes: byte %llu wrong", (unsigned long long)len,
                  (unsigned long long)bad);
        }
        MPI_Barrier(MPI_COMM_WORLD);
    }
}

/* 4096 scattered 256-byte descriptors in one request, in a permuted order. */
static void case_small_descs(void)
{
    enum { N = 4096, B = 256 };
    mixl_desc_t *l = malloc(N * sizeof(*l)), *r = malloc(N * sizeof(*r));
    clear_pool();
    if (rank == 0) {
        for (uint64_t i = 0; i < (uint64_t)N * B; i++) pool[i] = fill_byte(i, 99);
        for (int i = 0; i < N; i++) {
            int slot = (int)(((uint64_t)i * 2654435761u) % N); /* a permutation (N is 2^k, odd factor) */
            l[i] = desc((uint64_t)(uintptr_t)pool + (uint64_t)i * B, B);
            r[i] = desc(peer_base[1] + (1u << 20) + (uint64_t)slot * 2 * B, B);
        }
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                .local = l, .remote = r, .count = N, .notif = "d", .notif_len = 1};
        mixl_xfer_h x;
        CHECK(mixl_xfer_create(agent, &p, &x) == MIXL_OK, "create with %d descriptors", N);
        CHECK(mixl_xfer_ops(x) == N, "scattered descriptors merged to %zu ops", mixl_xfer_ops(x));
        CHECK(run(x) == MIXL_OK, "scattered WRITE");
        mixl_xfer_release(x);
    } else if (rank == 1) {
        mixl_notif_t n;
        CHECK(wait_notifs(&n, 1, 60) == 1, "no notification");
        int bad = 0;
        for (int i = 0; i < N && !bad; i++) {
            int slot = (int)(((uint64_t)i * 2654435761u) % N);
            const uint8_t *dst = pool + (1u << 20) + (uint64_t)slot * 2 * B;
            for (int k = 0; k < B; k++)
                if (dst[k] != fill_byte((uint64_t)i * B + k, 99)) bad = 1;
            for (int k = B; k < 2 * B; k++)
                if (dst[k] != 0) bad = 2;
        }
        CHECK(!bad, "scattered WRITE landed wrong (%d)", bad);
    }
    free(l);
    free(r);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* 64 requests posted before any is tested; then all complete and are correct. */
static void case_in_flight(void)
{
    enum { N = 64, B = 65536 };
    clear_pool();
    if (rank == 0) {
        mixl_xfer_h x[N];
        for (uint64_t i = 0; i < (uint64_t)N * B; i++) pool[i] = fill_byte(i, 5);
        for (int i = 0; i < N; i++) {
            mixl_desc_t l = desc((uint64_t)(uintptr_t)pool + (uint64_t)i * B, B);
            mixl_desc_t r = desc(peer_base[1] + (uint64_t)i * B, B);
            mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                    .local = &l, .remote = &r, .count = 1, .notif = &i,
                                    .notif_len = sizeof(i)};
            CHECK(mixl_xfer_create(agent, &p, &x[i]) == MIXL_OK, "create %d", i);
        }
        for (int i = 0; i < N; i++) {
            mixl_status_t st = mixl_xfer_post(x[i]);
            CHECK(st == MIXL_IN_PROGRESS || st == MIXL_OK, "post %d: %s", i, mixl_status_str(st));
            CHECK(mixl_xfer_post(x[i]) == MIXL_ERR_BUSY || st == MIXL_OK, "repost of active request %d not refused", i);
        }
        for (int i = N - 1; i >= 0; i--) {
            CHECK(mixl_xfer_wait(x[i], 60000) == MIXL_OK, "wait %d", i);
            mixl_xfer_release(x[i]);
        }
    } else if (rank == 1) {
        mixl_notif_t n[N];
        int seen[N] = {0};
        CHECK(wait_notifs(n, N, 60) == N, "not all %d notifications arrived", N);
        for (int k = 0; k < N; k++) {
            int i;
            memcpy(&i, n[k].payload, sizeof(i));
            CHECK(i >= 0 && i < N && !seen[i], "notification %d duplicated or unknown", i);
            if (i < 0 || i >= N) continue;
            seen[i] = 1;
            for (int b = 0; b < B; b++)
                if (pool[(uint64_t)i * B + b] != fill_byte((uint64_t)i * B + b, 5)) {
                    CHECK(0, "request %d: data not complete when its notification arrived", i);
                    break;
                }
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* The target checks each block at the moment its notification arrives,
 * while the initiator keeps writing: a notification must never overtake data.
 * More notifications than ring slots, so the ring wraps many times. */
static void case_notif_order(void)
{
    enum { N = 2000, B = 32768 };
    clear_pool();
    if (rank == 0) {
        for (int i = 0; i < N; i++) {
            uint64_t slot = (uint64_t)(i % 64) * B;
            for (int b = 0; b < B; b += 512) pool[slot + b] = (uint8_t)i;
            pool[slot + B - 1] = (uint8_t)i;
            mixl_status_t st = one(MIXL_OP_WRITE, 1, slot, slot, B, &i, sizeof(i));
            CHECK(st == MIXL_OK, "write %d: %s", i, mixl_status_str(st));
            /* Do not overwrite a block before the target checked it. */
            if (i % 64 == 63) MPI_Barrier(MPI_COMM_WORLD);
        }
        if (N % 64) MPI_Barrier(MPI_COMM_WORLD);
    } else if (rank == 1) {
        for (int i = 0; i < N; i++) {
            mixl_notif_t n;
            int got;
            CHECK(wait_notifs(&n, 1, 60) == 1, "notification %d missing", i);
            memcpy(&got, n.payload, sizeof(got));
            CHECK(got == i, "notification %d arrived as %d (out of order)", i, got);
            uint64_t slot = (uint64_t)(i % 64) * B;
            CHECK(pool[slot + B - 1] == (uint8_t)i && pool[slot] == (uint8_t)i,
                  "block %d incomplete when its notification arrived", i);
            if (i % 64 == 63) MPI_Barrier(MPI_COMM_WORLD);
        }
        if (N % 64) MPI_Barrier(MPI_COMM_WORLD);
    } else {
        for (int i = 0; i < (N + 63) / 64; i++) MPI_Barrier(MPI_COMM_WORLD);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* One prepared request posted 10,000 times, payload changed between posts. */
static void case_reuse(void)
{
    enum { N = 10000, B = 4096 };
    clear_pool();
    if (rank == 0) {
        mixl_desc_t l = desc((uint64_t)(uintptr_t)pool, B), r = desc(peer_base[1], B);
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                .local = &l, .remote = &r, .count = 1};
        mixl_xfer_h x;
        CHECK(mixl_xfer_create(agent, &p, &x) == MIXL_OK, "create");
        for (int i = 0; i < N && !failures; i++) {
            memset(pool, (uint8_t)i, B);
            if (i == N - 1) CHECK(mixl_xfer_set_notif(x, &i, sizeof(i)) == MIXL_OK, "set_notif");
            CHECK(run(x) == MIXL_OK, "post %d", i);
        }
        mixl_xfer_release(x);
    } else if (rank == 1) {
        mixl_notif_t n;
        int last;
        CHECK(wait_notifs(&n, 1, 120) == 1, "final notification missing");
        memcpy(&last, n.payload, sizeof(last));
        CHECK(last == N - 1, "final payload %d", last);
        for (int b = 0; b < B; b++)
            if (pool[b] != (uint8_t)(N - 1)) {
                CHECK(0, "final contents wrong at %d", b);
                break;
            }
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A READ with a notification tells the source its data was taken. */
static void case_read_notify(void)
{
    enum { B = 1 << 20 };
    memset(pool, 0, POOL);
    if (rank == 1)
        for (int b = 0; b < B; b++) pool[b] = fill_byte((uint64_t)b, 3);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {
        CHECK(one(MIXL_OP_READ, 1, 0, 0, B, "taken", 5) == MIXL_OK, "READ");
        for (int b = 0; b < B; b++)
            if (pool[b] != fill_byte((uint64_t)b, 3)) {
                CHECK(0, "READ byte %d", b);
                break;
            }
    } else if (rank == 1) {
        mixl_notif_t n;
        CHECK(wait_notifs(&n, 1, 60) == 1, "no notification after READ");
        CHECK(n.len == 5 && memcmp(n.payload, "taken", 5) == 0 && strcmp(n.peer, names[0]) == 0,
              "wrong notification after READ");
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Every other rank writes its own stripe of rank 0's pool at the same time. */
static void case_many_to_one(void)
{
    enum { B = 4 << 20 };
    clear_pool();
    if (rank != 0) {
        for (int b = 0; b < B; b++) pool[b] = fill_byte((uint64_t)b, (uint32_t)rank);
        for (int round = 0; round < 8; round++) {
            mixl_status_t st = one(MIXL_OP_WRITE, 0, 0, (uint64_t)(rank - 1) * B, B, &rank, sizeof(rank));
            CHECK(st == MIXL_OK, "round %d: %s", round, mixl_status_str(st));
        }
    } else {
        mixl_notif_t n[64];
        int count[64] = {0};
        size_t want = (size_t)(nranks - 1) * 8;
        CHECK(wait_notifs(n, want, 60) == want, "missing notifications");
        for (size_t k = 0; k < want; k++) {
            int from;
            memcpy(&from, n[k].payload, sizeof(from));
            CHECK(from > 0 && from < nranks && strcmp(n[k].peer, names[from]) == 0,
                  "notification names the wrong sender");
            if (from > 0 && from < nranks) count[from]++;
        }
        for (int r = 1; r < nranks; r++) {
            CHECK(count[r] == 8, "rank %d: %d notifications", r, count[r]);
            for (int b = 0; b < B; b++)
                if (pool[(uint64_t)(r - 1) * B + b] != fill_byte((uint64_t)b, (uint32_t)r)) {
                    CHECK(0, "stripe of rank %d wrong at %d", r, b);
                    break;
                }
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* A target that stops polling: with a 4-slot ring the fifth notified write
 * cannot complete; its wait times out with a message naming the peer, and
 * the request completes once the target polls again. */
static void case_timeout(void)
{
    enum { RING = 4 };
    if (rank == 0) {
        mixl_desc_t l = desc((uint64_t)(uintptr_t)pool, 64), r = desc(peer_base[1], 64);
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = names[1],
                                .local = &l, .remote = &r, .count = 1, .notif = "n", .notif_len = 1};
        mixl_xfer_h x;
        CHECK(mixl_xfer_create(agent, &p, &x) == MIXL_OK, "create");
        for (int i = 0; i < RING; i++) CHECK(run(x) == MIXL_OK, "write %d", i);
        mixl_agent_clear_error(agent);
        mixl_status_t st = mixl_xfer_post(x);
        if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 300);
        CHECK(st == MIXL_ERR_TIMED_OUT, "fifth write: %s, expected a timeout", mixl_status_str(st));
        CHECK(strstr(mixl_agent_last_error(agent), names[1]) != NULL, "timeout message lacks the peer");
        MPI_Barrier(MPI_COMM_WORLD); /* now the target drains its ring */
        CHECK(mixl_xfer_wait(x, 30000) == MIXL_OK, "completion after the target polled");
        CHECK(mixl_xfer_release(x) == MIXL_OK, "release");
    } else if (rank == 1) {
        MPI_Barrier(MPI_COMM_WORLD);
        mixl_notif_t n[RING + 1];
        CHECK(wait_notifs(n, RING + 1, 60) == RING + 1, "notifications lost after the timeout");
    } else {
        MPI_Barrier(MPI_COMM_WORLD);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {{"sizes", case_sizes},         {"small_descs", case_small_descs},
                 {"in_flight", case_in_flight}, {"notif_order", case_notif_order},
                 {"reuse", case_reuse},         {"read_notify", case_read_notify},
                 {"many_to_one", case_many_to_one}, {"timeout", case_timeout}};
    char name[MIXL_NAME_MAX];
    mixl_region_h region;
    int provided, all;

    if (mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MIXL_OK) return 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    snprintf(name, sizeof(name), "rank-%d", rank);
    mixl_agent_params_t params = {.size = sizeof(params), .name = name, .comm = MPI_COMM_WORLD};
    if (argc > 1 && strcmp(argv[1], "timeout") == 0) params.notif_ring = 4;
    if (mixl_agent_create(&params, &agent) != MIXL_OK) MPI_Abort(MPI_COMM_WORLD, 2);
    int mpi_mem = argc > 2 && strcmp(argv[2], "mpi-mem") == 0;
    if (mpi_mem) {
        char err[512];
        if (mixl_mem_alloc_mpi(MPI_COMM_WORLD, POOL, (void **)&pool, err, sizeof(err)) != MIXL_OK) {
            fprintf(stderr, "rank %d: %s\n", rank, err);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    } else {
        pool = aligned_alloc(4096, POOL);
    }
    if (mixl_mem_register(agent, pool, POOL, MIXL_MEM_HOST, 0, &region) != MIXL_OK ||
        mixl_agent_start(agent) != MIXL_OK)
        MPI_Abort(MPI_COMM_WORLD, 2);

    /* Everyone imports everyone (the registry's job in real runs). */
    void *blob;
    size_t len;
    mixl_metadata_export(agent, &blob, &len);
    int mylen = (int)len, *lens = malloc(sizeof(int) * nranks), *displs = malloc(sizeof(int) * nranks);
    MPI_Allgather(&mylen, 1, MPI_INT, lens, 1, MPI_INT, MPI_COMM_WORLD);
    int total = 0;
    for (int r = 0; r < nranks; r++) displs[r] = total, total += lens[r];
    uint8_t *all_blobs = malloc((size_t)total);
    MPI_Allgatherv(blob, mylen, MPI_BYTE, all_blobs, lens, displs, MPI_BYTE, MPI_COMM_WORLD);
    names = calloc((size_t)nranks, MIXL_NAME_MAX);
    for (int r = 0; r < nranks; r++)
        if (mixl_metadata_import(agent, all_blobs + displs[r], (size_t)lens[r], names[r]) != MIXL_OK)
            MPI_Abort(MPI_COMM_WORLD, 2);
    peer_base = malloc(sizeof(uint64_t) * nranks);
    uint64_t mine = (uint64_t)(uintptr_t)pool;
    MPI_Allgather(&mine, 1, MPI_UINT64_T, peer_base, 1, MPI_UINT64_T, MPI_COMM_WORLD);

    int found = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (argc > 1 && strcmp(argv[1], cases[i].name) == 0) {
            cases[i].fn();
            found = 1;
        }
    if (!found) {
        if (rank == 0) fprintf(stderr, "unknown case '%s'\n", argc > 1 ? argv[1] : "");
        failures++;
    }
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%s: %s (%d failures)\n", argc > 1 ? argv[1] : "?", all ? "FAILED" : "passed", all);
    mixl_free(blob);
    free(all_blobs);
    free(lens);
    free(displs);
    mixl_agent_destroy(agent);
    if (mpi_mem)
        mixl_mem_free_mpi(pool);
    else
        free(pool);
    free(names);
    free(peer_base);
    MPI_Finalize();
    return all ? 1 : 0;
}
