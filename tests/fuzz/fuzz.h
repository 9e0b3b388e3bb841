/*
 * What every fuzz target shares with the two drivers that run it: libFuzzer
 * (scripts/fuzz.sh, -DMIXL_FUZZ=ON) and fuzz_replay.c (CTest, any compiler).
 */
#ifndef MIXL_TESTS_FUZZ_H
#define MIXL_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Inputs the decoder under test accepted as a whole (fuzz_common.c); each
 * target bumps it; the replay fails when no corpus file was accepted, which
 * means the seeds no longer match the format and only reach the error paths.
 */
extern unsigned long mixl_fuzz_accepted;

/* A broken invariant: abort with the reason (libFuzzer and the replay report it). */
void mixl_fuzz_fail(const char *what) __attribute__((noreturn));

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) mixl_fuzz_fail(__FILE__ ": " #cond); \
    } while (0)

#endif /* MIXL_TESTS_FUZZ_H */
