/* mixl-registry: shared declarations of the command-line view of the registry. */
#ifndef MIXL_APPS_REGISTRY_CLI_H
#define MIXL_APPS_REGISTRY_CLI_H

#include <stdio.h>

#include <mixl/registry.h>

/* `list`: one line per agent with metadata in the namespace. Returns an exit code. */
int cli_list(mixl_registry_h reg, mixl_md_store_h store, FILE *out);

/* `show <agent>`: the decoded metadata as text. Returns an exit code. */
int cli_show(mixl_registry_h reg, mixl_md_store_h store, const char *agent, FILE *out);

typedef struct {
    int count;   /* operations per measurement */
    int regions; /* regions in the synthetic metadata blob */
} cli_bench_opts_t;

/* `bench`: put, uncached get and cached get latency through the store. Returns an exit code. */
int cli_bench(mixl_registry_h reg, const cli_bench_opts_t *opts, const char *agent, FILE *out);

#endif /* MIXL_APPS_REGISTRY_CLI_H */
