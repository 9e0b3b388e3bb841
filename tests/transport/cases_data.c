/*
 * Data cases of the transport conformance suite: every byte moved is
 * checked against a pattern that differs per transfer, and so is what must
 * not have moved. Rank 0 initiates; rank nranks-1 (or 1) is the target.
 */
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

/* 1 B to 64 MiB, odd sizes and unaligned offsets on both sides: WRITE with a
 * notification (data complete when it is seen, nothing spilled), then READ back elsewhere. */
void case_sizes(void)
{
    static const uint64_t sizes[] = {1, 2, 3, 7, 8, 63, 64, 65, 4095, 4096, 4097, 65537,
                                     1000003, 4u << 20, (16u << 20) + 5, 64u << 20};
    static const uint64_t offsets[] = {0, 1, 13, 4093};
    int target = T.nranks - 1;

    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint64_t len = sizes[s], loff = offsets[s % 4], roff = offsets[(s + 1) % 4] + 8;
        uint32_t salt = (uint32_t)s * 17 + 1;
        if (roff + len + 8 > TR_POOL) roff = 8;
        tr_clear();
        if (T.rank == 0) {
            tr_fill(loff, len, salt);
            mixl_status_t st = tr_one(MIXL_OP_WRITE, target, loff, roff, len, &salt, sizeof(salt));
            CHECK(st == MIXL_OK, "WRITE of %llu bytes: %s", (unsigned long long)len, mixl_status_name(st));
        }
        if (T.rank == target) {
            mixl_notif_t n;
            CHECK(tr_wait_notifs(&n, 1, TR_WAIT_MS) == 1, "no notification for %llu bytes",
                  (unsigned long long)len);
            uint64_t bad = tr_bad(roff, len, salt);
            CHECK(bad == UINT64_MAX, "WRITE %llu bytes: byte %llu wrong when the notification came",
                  (unsigned long long)len, (unsigned long long)bad);
            CHECK(tr_nonzero(roff - 8, 8) == UINT64_MAX && tr_nonzero(roff + len, 8) == UINT64_MAX,
                  "WRITE %llu bytes spilled outside its span", (unsigned long long)len);
        }
        tr_barrier();
        if (T.rank == 0) {
            uint64_t back = loff + len + 3;
            if (back + len > TR_POOL) back = 0;
            mixl_status_t st = tr_one(MIXL_OP_READ, target, back, roff, len, NULL, 0);
            CHECK(st == MIXL_OK, "READ of %llu bytes: %s", (unsigned long long)len, mixl_status_name(st));
            uint64_t bad = tr_bad(back, len, salt);
            CHECK(bad == UINT64_MAX, "READ %llu bytes: byte %llu wrong", (unsigned long long)len,
                  (unsigned long long)bad);
        }
        tr_barrier();
    }
}

/* 4096 scattered 256-byte descriptors in one request, remote order permuted:
 * none may merge, each lands in its slot, the gaps between slots stay zero. */
void case_scattered(void)
{
    enum { N = 4096, B = 256, BASE = 1u << 20 };
    mixl_desc_t *l = malloc(N * sizeof(*l)), *r = malloc(N * sizeof(*r));

    tr_clear();
    if (T.rank == 0) {
        for (int i = 0; i < N; i++) tr_fill((uint64_t)i * B, B, 1000u + (uint32_t)i);
        for (int i = 0; i < N; i++) {
            uint64_t slot = ((uint64_t)i * 2654435761u) % N; /* a permutation: odd factor, N = 2^k */
            l[i] = tr_ldesc((uint64_t)i * B, B);
            r[i] = tr_rdesc(1, BASE + slot * 2 * B, B);
        }
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = T.names[1],
                                .local = l, .remote = r, .count = N, .notif = "d", .notif_len = 1};
        mixl_xfer_h x;
        mixl_status_t st = mixl_xfer_create(T.agent, &p, &x);
        CHECK(st == MIXL_OK, "create with %d descriptors: %s", N, mixl_status_name(st));
        if (st == MIXL_OK) {
            CHECK(mixl_xfer_ops(x) == N, "scattered descriptors merged to %zu ops", mixl_xfer_ops(x));
            CHECK(mixl_xfer_bytes(x) == (uint64_t)N * B, "request moves %llu bytes",
                  (unsigned long long)mixl_xfer_bytes(x));
            CHECK((st = tr_run(x)) == MIXL_OK, "scattered WRITE: %s", mixl_status_name(st));
            mixl_xfer_release(x);
        }
    } else if (T.rank == 1) {
        mixl_notif_t n;
        int bad = -1;
        CHECK(tr_wait_notifs(&n, 1, TR_WAIT_MS) == 1, "no notification");
        for (int i = 0; i < N && bad < 0; i++) {
            uint64_t slot = ((uint64_t)i * 2654435761u) % N;
            if (tr_bad(BASE + slot * 2 * B, B, 1000u + (uint32_t)i) != UINT64_MAX ||
                tr_nonzero(BASE + slot * 2 * B + B, B) != UINT64_MAX)
                bad = i;
        }
        CHECK(bad < 0, "descriptor %d landed wrong or spilled into the gap", bad);
    }
    free(l);
    free(r);
    tr_barrier();
}

/* 64 requests posted before any completes. Re-posting one still in flight is
 * refused with MIXL_ERR_BUSY; the check must have run on at least one request
 * (a backend completing every post inline would make it vacuous). */
void case_in_flight(void)
{
    enum { N = 64, B = 1u << 20 };
    tr_clear();
    if (T.rank == 0) {
        mixl_xfer_h x[N];
        int busy_checked = 0;
        for (int i = 0; i < N; i++) tr_fill((uint64_t)i * B, B, 5000u + (uint32_t)i);
        for (int i = 0; i < N; i++) {
            mixl_desc_t l = tr_ldesc((uint64_t)i * B, B), r = tr_rdesc(1, (uint64_t)i * B, B);
            mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = T.names[1],
                                    .local = &l, .remote = &r, .count = 1, .notif = &i,
                                    .notif_len = sizeof(i)};
            x[i] = NULL;
            CHECK(mixl_xfer_create(T.agent, &p, &x[i]) == MIXL_OK, "create %d", i);
        }
        for (int i = 0; i < N; i++) {
            if (x[i] == NULL) continue;
            mixl_status_t st = mixl_xfer_post(x[i]);
            CHECK(st == MIXL_IN_PROGRESS || st == MIXL_OK, "post %d: %s", i, mixl_status_name(st));
            if (st == MIXL_IN_PROGRESS) {
                mixl_status_t again = mixl_xfer_post(x[i]);
                busy_checked++;
                CHECK(again == MIXL_ERR_BUSY, "re-post of in-flight request %d gave %s", i,
                      mixl_status_name(again));
                CHECK(mixl_xfer_set_notif(x[i], "x", 1) == MIXL_ERR_BUSY,
                      "notification of in-flight request %d replaced", i);
            }
        }
        CHECK(busy_checked > 0, "no post was still in flight: the re-post check did not run");
        printf("in_flight: %d of %d re-posts checked while in flight\n", busy_checked, N);
        for (int i = N - 1; i >= 0; i--) {
            if (x[i] == NULL) continue;
            mixl_status_t st = mixl_xfer_wait(x[i], TR_WAIT_MS);
            CHECK(st == MIXL_OK, "wait %d: %s", i, mixl_status_name(st));
            mixl_xfer_release(x[i]);
        }
    } else if (T.rank == 1) {
        mixl_notif_t n[N];
        int seen[N] = {0};
        CHECK(tr_wait_notifs(n, N, TR_WAIT_MS) == N, "not all %d notifications arrived", N);
        for (int k = 0; k < N; k++) {
            int i;
            memcpy(&i, n[k].payload, sizeof(i));
            CHECK(i >= 0 && i < N && !seen[i], "notification %d duplicated or unknown", i);
            if (i < 0 || i >= N || seen[i]) continue;
            seen[i] = 1;
            CHECK(tr_bad((uint64_t)i * B, B, 5000u + (uint32_t)i) == UINT64_MAX,
                  "request %d: data not complete when its notification arrived", i);
        }
    }
    tr_barrier();
}

/* The target checks each whole block the moment its notification arrives
 * while the initiator keeps writing: a notification never overtakes its
 * data, and notifications keep their order. More of them than ring slots. */
void case_notif_order(void)
{
    enum { N = 2000, B = 32768, SLOTS = 64 };
    tr_clear();
    if (T.rank == 0) {
        for (int i = 0; i < N; i++) {
            uint64_t slot = (uint64_t)(i % SLOTS) * B;
            tr_fill(slot, B, 7000u + (uint32_t)i);
            mixl_status_t st = tr_one(MIXL_OP_WRITE, 1, slot, slot, B, &i, sizeof(i));
            CHECK(st == MIXL_OK, "write %d: %s", i, mixl_status_name(st));
            /* Do not overwrite a block before the target checked it. */
            if (i % SLOTS == SLOTS - 1 || i == N - 1) tr_barrier();
        }
    } else if (T.rank == 1) {
        for (int i = 0; i < N; i++) {
            mixl_notif_t n;
            int got = -1;
            if (tr_wait_notifs(&n, 1, TR_WAIT_MS) == 1) memcpy(&got, n.payload, sizeof(got));
            CHECK(got == i, "notification %d arrived as %d (lost or out of order)", i, got);
            CHECK(tr_bad((uint64_t)(i % SLOTS) * B, B, 7000u + (uint32_t)i) == UINT64_MAX,
                  "block %d incomplete when its notification arrived", i);
            if (i % SLOTS == SLOTS - 1 || i == N - 1) tr_barrier();
        }
    } else {
        for (int i = 0; i < (N + SLOTS - 1) / SLOTS; i++) tr_barrier();
    }
    tr_barrier();
}

/* One prepared request posted many times, its notification replaced each
 * time and every notification checked in order: at 4 KiB every iteration's
 * data is verified with its own pattern, at 8 MiB + 3 every 97th (and the
 * last); the others still carry a distinct head. */
static void reuse_one(uint64_t len, int iters, int every, uint32_t base)
{
    mixl_xfer_h x = NULL;
    if (T.rank == 0) {
        mixl_desc_t l = tr_ldesc(5, len), r = tr_rdesc(1, 11, len);
        mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = T.names[1],
                                .local = &l, .remote = &r, .count = 1};
        CHECK(mixl_xfer_create(T.agent, &p, &x) == MIXL_OK, "create");
    }
    for (int i = 0; i < iters; i++) {
        int verify = i % every == 0 || i == iters - 1;
        uint32_t salt = base + (uint32_t)i;
        if (T.rank == 0 && x != NULL) {
            if (verify || len <= 65536)
                tr_fill(5, len, salt);
            else
                tr_fill(5, 4096, salt); /* a distinct head, cheaply */
            CHECK(mixl_xfer_set_notif(x, &i, sizeof(i)) == MIXL_OK, "set_notif %d", i);
            mixl_status_t st = tr_run(x);
            CHECK(st == MIXL_OK, "post %d of %llu bytes: %s", i, (unsigned long long)len,
                  mixl_status_name(st));
        } else if (T.rank == 1) {
            mixl_notif_t n;
            int got = -1;
            if (tr_wait_notifs(&n, 1, TR_WAIT_MS) == 1) memcpy(&got, n.payload, sizeof(got));
            CHECK(got == i, "iteration %d: notification says %d", i, got);
            uint64_t bad = verify ? tr_bad(11, len, salt) : UINT64_MAX;
            CHECK(bad == UINT64_MAX, "iteration %d of %llu bytes: byte %llu wrong", i,
                  (unsigned long long)len, (unsigned long long)bad);
        }
        if (verify) tr_barrier(); /* checked before the next overwrite */
    }
    if (x != NULL) CHECK(mixl_xfer_release(x) == MIXL_OK, "release");
}

void case_reuse(void)
{
    tr_clear();
    reuse_one(4096, 2000, 1, 20000u);
    reuse_one((8u << 20) + 3, 200, 97, 40000u);
    tr_barrier();
}

/* READ and WRITE in one request list each: a READ with a notification tells
 * the source its data was taken (after the data left), and the initiator's
 * READ of what the target wrote itself returns the target's bytes. */
void case_read_write(void)
{
    enum { B = (1u << 20) + 17 };
    tr_clear();
    if (T.rank == 1) tr_fill(100, B, 31);
    tr_barrier();
    if (T.rank == 0) {
        mixl_status_t st = tr_one(MIXL_OP_READ, 1, 3, 100, B, "taken", 5);
        CHECK(st == MIXL_OK, "READ: %s", mixl_status_name(st));
        uint64_t bad = tr_bad(3, B, 31);
        CHECK(bad == UINT64_MAX, "READ byte %llu wrong", (unsigned long long)bad);
        tr_fill(2u << 20, B, 32);
        st = tr_one(MIXL_OP_WRITE, 1, 2u << 20, 4u << 20, B, "given", 5);
        CHECK(st == MIXL_OK, "WRITE: %s", mixl_status_name(st));
    } else if (T.rank == 1) {
        mixl_notif_t n[2];
        CHECK(tr_wait_notifs(n, 2, TR_WAIT_MS) == 2, "notifications after READ and WRITE missing");
        CHECK(n[0].len == 5 && memcmp(n[0].payload, "taken", 5) == 0 &&
                  strcmp(n[0].peer, T.names[0]) == 0,
              "wrong notification after READ");
        CHECK(n[1].len == 5 && memcmp(n[1].payload, "given", 5) == 0, "wrong notification after WRITE");
        CHECK(tr_bad(4u << 20, B, 32) == UINT64_MAX, "WRITE data wrong");
        CHECK(tr_bad(100, B, 31) == UINT64_MAX, "the READ changed its source");
    }
    tr_barrier();
    /* A data-less notification is ordered after earlier transfers to the same peer. */
    if (T.rank == 1) {
        tr_fill(8u << 20, 4096, 33);
        mixl_status_t st = tr_one(MIXL_OP_WRITE, 0, 8u << 20, 8u << 20, 4096, NULL, 0);
        CHECK(st == MIXL_OK, "WRITE back: %s", mixl_status_name(st));
        st = mixl_notif_send(T.agent, T.names[0], "done", 4);
        CHECK(st == MIXL_OK, "notif_send: %s", mixl_status_name(st));
    } else if (T.rank == 0) {
        mixl_notif_t n;
        CHECK(tr_wait_notifs(&n, 1, TR_WAIT_MS) == 1 && n.len == 4 && memcmp(n.payload, "done", 4) == 0,
              "data-less notification missing");
        CHECK(tr_bad(8u << 20, 4096, 33) == UINT64_MAX, "data not there before the notification");
    }
    tr_barrier();
}

/* Every other rank writes its own stripe of rank 0's pool at the same time. */
void case_many_to_one(void)
{
    enum { B = 4u << 20, ROUNDS = 8 };
    tr_clear();
    if (T.rank != 0) {
        for (int round = 0; round < ROUNDS; round++) {
            uint32_t salt = (uint32_t)(T.rank * 100 + round);
            tr_fill(0, B, salt);
            mixl_status_t st = tr_one(MIXL_OP_WRITE, 0, 0, (uint64_t)(T.rank - 1) * B, B, &salt,
                                      sizeof(salt));
            CHECK(st == MIXL_OK, "round %d: %s", round, mixl_status_name(st));
        }
    } else {
        size_t want = (size_t)(T.nranks - 1) * ROUNDS;
        mixl_notif_t *n = calloc(want, sizeof(*n));
        int *count = calloc((size_t)T.nranks, sizeof(int));
        CHECK(tr_wait_notifs(n, want, TR_WAIT_MS) == want, "missing notifications");
        for (size_t k = 0; k < want; k++) {
            uint32_t salt;
            memcpy(&salt, n[k].payload, sizeof(salt));
            int from = (int)(salt / 100), round = (int)(salt % 100);
            CHECK(from > 0 && from < T.nranks && strcmp(n[k].peer, T.names[from]) == 0,
                  "notification names the wrong sender");
            if (from <= 0 || from >= T.nranks) continue;
            CHECK(round == count[from], "rank %d: round %d arrived as number %d", from, round,
                  count[from]);
            count[from]++;
        }
        for (int r = 1; r < T.nranks; r++) {
            CHECK(count[r] == ROUNDS, "rank %d: %d notifications", r, count[r]);
            CHECK(tr_bad((uint64_t)(r - 1) * B, B, (uint32_t)(r * 100 + ROUNDS - 1)) == UINT64_MAX,
                  "stripe of rank %d wrong", r);
        }
        free(n);
        free(count);
    }
    tr_barrier();
}
