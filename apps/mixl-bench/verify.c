/* Data verification of the micro modes; see verify.h. */
#include "verify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

/* splitmix64: cheap, and every (seed, slot, descriptor, word) gives a different word. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t word(uint64_t seed, unsigned slot, uint64_t j, uint64_t w)
{
    return mix(mix(seed * 0x100000001b3ull + slot) ^ (j << 32) ^ w);
}

uint8_t bench_verify_byte(uint64_t seed, unsigned slot, uint64_t j, uint64_t k)
{
    uint64_t v = word(seed, slot, j, k / 8);
    return (uint8_t)(v >> (8 * (k % 8)));
}

void bench_verify_fill(uint8_t *p, uint64_t size, uint64_t seed, unsigned slot, uint64_t j)
{
    uint64_t k = 0;
    for (; k + 8 <= size; k += 8) {
        uint64_t v = word(seed, slot, j, k / 8);
        memcpy(p + k, &v, 8);
    }
    for (; k < size; k++) p[k] = bench_verify_byte(seed, slot, j, k);
}

static char *desc_at(const bench_verify_t *v, const bench_side_t *s, unsigned slot, uint64_t j)
{
    uint64_t at = s->permuted ? bench_slot(j, v->batch, v->contig) : j;
    return s->base + (uint64_t)(slot - s->first_slot) * s->stride + at * v->size;
}

/* Host memory of the side's descriptor: itself, or a staging copy for device memory. */
static void side_fill(const bench_verify_t *v, const bench_side_t *s, uint64_t seed, uint8_t *stage)
{
    for (unsigned slot = s->first_slot; slot < s->first_slot + s->nslots; slot++)
        for (uint64_t j = 0; j < v->batch; j++) {
            char *d = desc_at(v, s, slot, j);
            if ((s->kind ? s->kind : v->kind) == BENCH_MEM_CUDA) {
                bench_verify_fill(stage, v->size, seed, slot, j);
                bench_buf_upload(BENCH_MEM_CUDA, d, stage, v->size);
            } else {
                bench_verify_fill((uint8_t *)d, v->size, seed, slot, j);
            }
        }
}

static int side_check(const bench_verify_t *v, const bench_side_t *s, uint64_t seed, uint8_t *stage,
                      uint8_t *want, char *note, size_t note_len)
{
    for (unsigned slot = s->first_slot; slot < s->first_slot + s->nslots; slot++)
        for (uint64_t j = 0; j < v->batch; j++) {
            const uint8_t *got = (const uint8_t *)desc_at(v, s, slot, j);
            if ((s->kind ? s->kind : v->kind) == BENCH_MEM_CUDA) {
                bench_buf_download(BENCH_MEM_CUDA, stage, got, v->size);
                got = stage;
            }
            bench_verify_fill(want, v->size, seed, slot, j);
            if (memcmp(got, want, v->size) == 0) continue;
            uint64_t k = 0;
            while (got[k] == want[k]) k++;
            /* A cut message still names the byte: truncation is harmless here. */
            if (snprintf(note, note_len, "byte %" PRIu64 " of descriptor %" PRIu64 " (initiator %u) is 0x%02x, "
                         "expected 0x%02x", k, j, slot, got[k], want[k]) < 0)
                note[0] = '\0';
            return 0;
        }
    return 1;
}

void bench_verify_directed(bench_verify_t *v, const bench_role_t *role, int write, unsigned kind,
                           char *local, char *exposed, uint64_t size, uint64_t batch, int contig)
{
    bench_side_t mine = {0}, theirs = {0};
    if (role->initiator)
        mine = (bench_side_t){.base = local, .first_slot = (unsigned)role->slot, .nslots = 1};
    if (role->sources)
        theirs = (bench_side_t){.base = exposed, .stride = size * batch, .nslots = (unsigned)role->sources,
                                .permuted = 1};
    *v = (bench_verify_t){.kind = kind, .size = size, .batch = batch, .contig = contig,
                          .src = write ? mine : theirs, .dst = write ? theirs : mine};
}

mixl_status_t bench_verify_iter(bench_ctx_t *ctx, const bench_verify_t *v, int initiator,
                                bench_iter_fn fn, void *arg, const char *what, char *note,
                                size_t note_len)
{
    /* Every rank runs the same verified iterations in the same order: the seeds agree. */
    uint64_t seed = ++ctx->verify_seq;
    uint8_t *stage = NULL, *want = NULL;
    char mine[96] = "";
    mixl_status_t st = MIXL_OK, bst;

    if (v->src.base != NULL || v->dst.base != NULL) {
        stage = malloc(v->size ? v->size : 1);
        want = malloc(v->size ? v->size : 1);
        if (stage == NULL || want == NULL) {
            st = MIXL_ERR_NO_MEMORY;
            snprintf(mine, sizeof(mine), "out of memory for verification");
        }
    }
    if (st == MIXL_OK && v->src.base != NULL) side_fill(v, &v->src, seed, stage);
    /* A different pattern in the destination: an iteration that moves nothing cannot pass. */
    if (st == MIXL_OK && v->dst.base != NULL) side_fill(v, &v->dst, ~seed, stage);
    bst = bench_boot_barrier(ctx->boot);
    if (bst != MIXL_OK) st = bst;
    if (st == MIXL_OK && initiator) {
        st = fn(arg);
        if (st != MIXL_OK) snprintf(mine, sizeof(mine), "%s iteration failed: %s", what, mixl_status_str(st));
    }
    bst = bench_boot_barrier(ctx->boot);
    if (bst != MIXL_OK && st == MIXL_OK) st = bst;
    if (st == MIXL_OK && v->dst.base != NULL) {
        char where[80];
        if (!side_check(v, &v->dst, seed, stage, want, where, sizeof(where))) {
            st = MIXL_ERR_CHECKSUM;
            if (snprintf(mine, sizeof(mine), "%s iteration: %s", what, where) < 0) mine[0] = '\0';
        }
    }
    free(stage);
    free(want);
    return bench_agree(ctx, st, mine, note, note_len);
}
