/* Shared by every fuzz target in both of its builds (libFuzzer and replay). */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"

unsigned long mixl_fuzz_accepted;

void mixl_fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz: invariant broken: %s\n", what);
    abort();
}
