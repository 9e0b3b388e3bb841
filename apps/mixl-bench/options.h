/*
 * mixl-bench command line: defaults, parsing and the usage text. Parsing
 * is a pure function of argv so the unit tests can drive it.
 */
#ifndef MIXL_BENCH_OPTIONS_H
#define MIXL_BENCH_OPTIONS_H

#include <stdio.h>

#include "bench.h"

/* The model shapes the model-shaped mode knows (NULL-terminated by name). */
extern const bench_model_t bench_models[];

/* Fill opts with the defaults. */
void bench_opts_default(bench_opts_t *opts);

/*
 * Parse argv into opts (defaults first). On a bad argument returns
 * MIXL_ERR_INVALID_PARAM and writes a message naming the option and the
 * value into err; opts is then unspecified. --help sets opts->help.
 */
mixl_status_t bench_opts_parse(int argc, char **argv, bench_opts_t *opts, char *err, size_t errlen);

/* Parse "4096", "64K", "16MiB", "1G" (binary units) into *bytes_p. */
mixl_status_t bench_parse_size(const char *text, uint64_t *bytes_p);

void bench_usage(FILE *out, const char *prog);

/* Name lists for a bit set, e.g. "READ,WRITE" (buffer of len bytes). */
const char *bench_mode_names(unsigned modes, char *buf, size_t len);

#endif /* MIXL_BENCH_OPTIONS_H */
