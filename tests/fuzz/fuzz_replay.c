/*
 * Runs a fuzz target without libFuzzer, with any compiler: replays every
 * file of the corpus directories given, the built-in seeds, and a fixed,
 * seeded series of mutations of them (byte flips, truncations, splices).
 *
 *   fuzz_replay [--mutations N] [corpus-dir...]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/tcp/tcp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX 8192
#define MAX_SEEDS 64

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static int nseeds;

static void add_seed(const uint8_t *d, size_t n)
{
    if (nseeds == MAX_SEEDS || n > REPLAY_MAX) return;
    seeds[nseeds] = malloc(n ? n : 1);
    memcpy(seeds[nseeds], d, n);
    seed_len[nseeds++] = n;
}

static size_t frame(uint8_t *out, uint8_t type, uint8_t flags, uint64_t req, uint32_t region,
                    uint64_t offset, uint64_t length, uint32_t payload)
{
    mixl_tcp_frame_t f = {.payload_len = payload, .type = type, .flags = flags, .req_id = req,
                          .region = region, .offset = offset, .length = length};
    mixl_tcp_frame_encode(&f, out);
    memset(out + MIXL_TCP_HDR_LEN, 0x3c, payload);
    return MIXL_TCP_HDR_LEN + payload;
}

static void builtin_seeds(void)
{
    uint8_t b[REPLAY_MAX];
    size_t n = 0;
    mixl_tcp_hello_t h;

    memset(&h, 0, sizeof(h));
    h.version = 1;
    h.max_frame = 4096;
    h.name_len = 1;
    h.name[0] = 'a';
    h.text_len = 1;
    h.text[0] = 'b';
    add_seed(b, mixl_tcp_hello_encode(&h, b));
    n = frame(b, MIXL_TCP_WRITE, MIXL_TCP_F_LAST, 1, 1, 0, 100, 100);
    n += frame(b + n, MIXL_TCP_READ_REQ, MIXL_TCP_F_LAST, 2, 1, 10, 3000, 0);
    n += frame(b + n, MIXL_TCP_NOTIF, MIXL_TCP_F_LAST, 3, 0, 0, 5, 5);
    n += frame(b + n, MIXL_TCP_WRITE, 0, 4, 1, 65530, 100, 100);
    n += frame(b + n, MIXL_TCP_WRITE, MIXL_TCP_F_LAST, 4, 1, 0, 100, 100);
    n += frame(b + n, MIXL_TCP_CLOSE, 0, 0, 0, 0, 0, 0);
    add_seed(b, n);
    n = frame(b, MIXL_TCP_ERROR, 0, 9, 0, 0, 8, 8);
    add_seed(b, n);
    n = frame(b, MIXL_TCP_WRITE, MIXL_TCP_F_LAST | MIXL_TCP_F_CRC, 5, 1, 65000, 600, 600);
    add_seed(b, n);
    n = frame(b, MIXL_TCP_READ_REQ, MIXL_TCP_F_CRC, 6, 1, 0, UINT64_MAX, 0);
    add_seed(b, n);
    memcpy(b, "RGET / HTTP/1.0\r\n\r\n", 19);
    add_seed(b, 19);
}

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    uint8_t buf[REPLAY_MAX];

    if (d == NULL) return;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) continue;
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        add_seed(buf, n);
    }
    closedir(d);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    long mutations = 5000;
    uint8_t buf[REPLAY_MAX];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mutations") == 0 && i + 1 < argc) mutations = atol(argv[++i]);
        else load_dir(argv[i]);
    }
    builtin_seeds();
    for (int i = 0; i < nseeds; i++) LLVMFuzzerTestOneInput(seeds[i], seed_len[i]);
    for (long m = 0; m < mutations; m++) {
        int s = (int)(next() % (uint64_t)nseeds);
        size_t n = seed_len[s];
        memcpy(buf, seeds[s], n);
        int edits = 1 + (int)(next() % 4);
        for (int k = 0; k < edits && n > 0; k++) {
            switch (next() % 4) {
            case 0: buf[next() % n] ^= (uint8_t)(1u << (next() % 8)); break;
            case 1: buf[next() % n] = (uint8_t)next(); break;
            case 2: n = next() % (n + 1); break;
            default: {
                int o = (int)(next() % (uint64_t)nseeds);
                size_t take = seed_len[o] < REPLAY_MAX - n ? seed_len[o] : REPLAY_MAX - n;
                memcpy(buf + n, seeds[o], take);
                n += take;
            }
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz replay: %d seeds, %ld mutations, no failure\n", nseeds, mutations);
    for (int i = 0; i < nseeds; i++) free(seeds[i]);
    return 0;
}
