/*
 * mixl-registry bench: latency of the metadata store's three paths, as an
 * agent sees them, with a real (synthetic) metadata blob:
 *   put           mixl_md_store_publish (validate, put bound to the lease)
 *   uncached get  mixl_md_store_invalidate + mixl_md_store_get (a registry round trip + decode check)
 *   cached get    mixl_md_store_get on a cached entry
 *   verified get  the same with MIXL_MD_STORE_VERIFY (a keys-only revision check first)
 * Median, p99 and mean in microseconds. A measurement, never a test.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/metadata.h>

#include "cli.h"
#include "util/clock.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(FILE *out, const char *what, uint64_t *ns, int n)
{
    double sum = 0;

    qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
    for (int i = 0; i < n; i++) sum += (double)ns[i];
    fprintf(out, "  %-14s median %9.1f us   p99 %9.1f us   mean %9.1f us   (n=%d)\n", what,
            (double)ns[n / 2] / 1e3, (double)ns[(size_t)((n - 1) * 0.99)] / 1e3, sum / n / 1e3, n);
}

/* A blob like an agent's: `regions` host regions. */
static mixl_status_t make_blob(const char *agent, int regions, void **blob_p, size_t *len_p)
{
    mixl_metadata_t md = {.format = MIXL_METADATA_FORMAT, .mpi = {.world = 0x1234, .rank = 0}};
    mixl_md_region_t *r = calloc((size_t)regions, sizeof(*r));
    mixl_status_t st;

    if (r == NULL) return MIXL_ERR_NO_MEMORY;
    for (int i = 0; i < regions; i++) {
        r[i] = (mixl_md_region_t){.id = (uint32_t)i, .addr = 0x7f0000000000ull + (uint64_t)i * (1u << 30),
                                  .len = 1u << 30, .mem_type = MIXL_MEM_HOST, .mpi = {.window = i,
                                          .window_base = 0x7f0000000000ull + (uint64_t)i * (1u << 30)}};
    }
    snprintf(md.name, sizeof(md.name), "%s", agent);
    snprintf(md.engine_id, sizeof(md.engine_id), "%s", agent);
    snprintf(md.hostname, sizeof(md.hostname), "bench-host");
    md.region_count = (uint32_t)regions;
    md.regions = r;
    st = mixl_metadata_encode(&md, blob_p, len_p);
    free(r);
    return st;
}

int cli_bench(mixl_registry_h reg, const cli_bench_opts_t *opts, const char *agent, FILE *out)
{
    mixl_md_store_params_t sp = {.size = sizeof(sp), .reg = reg};
    mixl_md_store_h store = NULL, verify = NULL;
    uint64_t *ns = calloc((size_t)opts->count, sizeof(*ns));
    void *blob = NULL, *got;
    size_t len = 0, got_len;
    int rc = 1;

    if (ns == NULL || make_blob(agent, opts->regions, &blob, &len) != MIXL_OK ||
        mixl_md_store_create(&sp, &store) != MIXL_OK) {
        fprintf(stderr, "mixl-registry bench: setup failed\n");
        goto out;
    }
    fprintf(out, "%s registry, namespace %s, %d ops each, metadata blob %zu bytes (%d regions)\n",
            mixl_registry_backend(reg), mixl_registry_namespace(reg), opts->count, len, opts->regions);

    for (int i = 0; i < opts->count; i++) {
        uint64_t t0 = mixl_now_ns();
        if (mixl_md_store_publish(store, agent, blob, len) != MIXL_OK) goto err_op;
        ns[i] = mixl_now_ns() - t0;
    }
    report(out, "put", ns, opts->count);

    for (int i = 0; i < opts->count; i++) {
        uint64_t t0;
        mixl_md_store_invalidate(store, agent);
        t0 = mixl_now_ns();
        if (mixl_md_store_get(store, agent, 1000, &got, &got_len) != MIXL_OK) goto err_op;
        ns[i] = mixl_now_ns() - t0;
        mixl_free(got);
    }
    report(out, "uncached get", ns, opts->count);

    for (int i = 0; i < opts->count; i++) {
        uint64_t t0 = mixl_now_ns();
        if (mixl_md_store_get(store, agent, 1000, &got, &got_len) != MIXL_OK) goto err_op;
        ns[i] = mixl_now_ns() - t0;
        mixl_free(got);
    }
    report(out, "cached get", ns, opts->count);

    /* The same cached entry through a MIXL_MD_STORE_VERIFY store: one keys-only round trip. */
    sp.flags = MIXL_MD_STORE_VERIFY;
    if (mixl_md_store_create(&sp, &verify) != MIXL_OK ||
        mixl_md_store_get(verify, agent, 1000, &got, &got_len) != MIXL_OK) {
        fprintf(stderr, "mixl-registry bench: verified store: %s\n",
                verify ? mixl_md_store_last_error(verify) : "cannot create");
        goto out;
    }
    mixl_free(got);
    for (int i = 0; i < opts->count; i++) {
        uint64_t t0 = mixl_now_ns();
        if (mixl_md_store_get(verify, agent, 1000, &got, &got_len) != MIXL_OK) goto err_verify;
        ns[i] = mixl_now_ns() - t0;
        mixl_free(got);
    }
    report(out, "verified get", ns, opts->count);
    rc = 0;
    goto out;

err_verify:
    fprintf(stderr, "mixl-registry bench: %s\n", mixl_md_store_last_error(verify));
    goto out;

err_op:
    fprintf(stderr, "mixl-registry bench: %s\n", mixl_md_store_last_error(store));
out:
    mixl_md_store_destroy(verify);
    mixl_md_store_destroy(store);
    mixl_free(blob);
    free(ns);
    return rc;
}
