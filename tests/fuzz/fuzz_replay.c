/*
 * Runs a fuzz target without libFuzzer, with any compiler (and under the
 * sanitizers of a -DMIXL_SANITIZE=ON build): replays every file of the
 * corpus directories given, then a fixed, seeded series of mutations of
 * them (byte flips, truncations, splices).
 *
 *   fuzz_replay [--mutations N] corpus-dir...
 *
 * It fails, rather than passing without testing anything, when a directory
 * is missing or unreadable, when no corpus file was found, and when the
 * target accepted none of the corpus files as a whole (the seeds no longer
 * match the format, so only error paths would be replayed). Files of any
 * size are replayed; it prints how many inputs it ran. When the target
 * aborts or traps, the input is left in ./fuzz-replay-crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

/* Mutated inputs stay under this size (seeds themselves may be larger). */
#define MUTANT_MAX (1u << 20)

typedef struct {
    uint8_t *data;
    size_t len;
} seed_t;

static seed_t *seeds;
static size_t nseeds, seed_cap;

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "fuzz replay: ");
    fprintf(stderr, fmt, arg, strerror(errno));
    fputc('\n', stderr);
    exit(1);
}

static void add_seed(uint8_t *d, size_t n)
{
    if (nseeds == seed_cap) {
        size_t cap = seed_cap ? 2 * seed_cap : 64;
        seed_t *s = realloc(seeds, cap * sizeof(*s));
        if (s == NULL) die("out of memory%s (%s)", "");
        seeds = s;
        seed_cap = cap;
    }
    seeds[nseeds].data = d;
    seeds[nseeds++].len = n;
}

static uint8_t *read_file(const char *path, size_t *len_p)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL) die("cannot open corpus file %s: %s", path);
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *b = realloc(buf, cap);
            if (b == NULL) die("out of memory reading %s (%s)", path);
            buf = b;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) die("cannot read corpus file %s: %s", path);
    fclose(f);
    *len_p = len;
    return buf;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order (the mutation series is then reproducible). */
static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (d == NULL) die("cannot open corpus directory %s: %s", dir);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (nn == NULL) die("out of memory listing %s (%s)", dir);
            names = nn;
        }
        names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (names[n] == NULL) die("out of memory listing %s (%s)", dir);
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *data = read_file(names[i], &len);
        add_seed(data, len);
        free(names[i]);
    }
    free(names);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The input being run, saved by the handler below when the target aborts or traps. */
static const uint8_t *cur;
static size_t cur_len;
#define CRASH_FILE "fuzz-replay-crash"

static void on_crash(int sig)
{
    int fd = open(CRASH_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static const char msg[] = "fuzz replay: the failing input is in " CRASH_FILE
                              " (replay it with the libFuzzer binary)\n";
    if (fd >= 0) {
        (void)!write(fd, cur, cur_len);
        close(fd);
    }
    (void)!write(2, msg, sizeof(msg) - 1);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One input in a buffer of exactly its size, so a read past the end is caught by ASan. */
static void run_one(const uint8_t *d, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (copy == NULL) die("out of memory%s (%s)", "");
    memcpy(copy, d, n);
    cur = copy;
    cur_len = n;
    LLVMFuzzerTestOneInput(copy, n);
    cur = NULL;
    cur_len = 0;
    free(copy);
}

int main(int argc, char **argv)
{
    long mutations = 5000;
    int dirs = 0;
    size_t bytes = 0;
    unsigned long accepted;
    uint8_t *buf;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mutations") == 0 && i + 1 < argc) {
            mutations = atol(argv[++i]);
        } else {
            load_dir(argv[i]);
            dirs++;
        }
    }
    if (dirs == 0) {
        fprintf(stderr, "usage: %s [--mutations N] corpus-dir...\n", argv[0]);
        return 2;
    }
    signal(SIGABRT, on_crash);
    signal(SIGILL, on_crash);
    if (nseeds == 0) {
        fprintf(stderr, "fuzz replay: no corpus file in the %d directories given\n", dirs);
        return 1;
    }
    for (size_t i = 0; i < nseeds; i++) {
        run_one(seeds[i].data, seeds[i].len);
        bytes += seeds[i].len;
    }
    accepted = mixl_fuzz_accepted;
    if (accepted == 0) {
        fprintf(stderr, "fuzz replay: the target accepted none of the %zu corpus files: the seeds "
                "no longer match the format\n", nseeds);
        return 1;
    }

    buf = malloc(MUTANT_MAX);
    if (buf == NULL) die("out of memory%s (%s)", "");
    for (long m = 0; m < mutations; m++) {
        size_t s = (size_t)(next() % nseeds);
        size_t n = seeds[s].len < MUTANT_MAX ? seeds[s].len : MUTANT_MAX;
        memcpy(buf, seeds[s].data, n);
        int edits = 1 + (int)(next() % 4);
        for (int k = 0; k < edits && n > 0; k++) {
            switch (next() % 4) {
            case 0: buf[next() % n] ^= (uint8_t)(1u << (next() % 8)); break;
            case 1: buf[next() % n] = (uint8_t)next(); break;
            case 2: n = next() % (n + 1); break;
            default: {
                size_t o = (size_t)(next() % nseeds);
                size_t take = seeds[o].len < MUTANT_MAX - n ? seeds[o].len : MUTANT_MAX - n;
                memcpy(buf + n, seeds[o].data, take);
                n += take;
            }
            }
        }
        run_one(buf, n);
    }
    printf("fuzz replay: ran %zu corpus files (%zu bytes, %lu accepted) and %ld mutations, "
           "%zu inputs in all, no failure\n", nseeds, bytes, accepted, mutations,
           nseeds + (size_t)mutations);
    free(buf);
    for (size_t i = 0; i < nseeds; i++) free(seeds[i].data);
    free(seeds);
    return 0;
}
