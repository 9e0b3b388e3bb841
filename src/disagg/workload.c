/* Arrival processes and prompt-length distributions; see workload.h. */
#include "disagg/workload.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* xoshiro-style generator seeded by splitmix64: small, fast and reproducible everywhere. */
typedef struct {
    uint64_t s;
} wl_rng_t;

static uint64_t wl_next(wl_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1]. */
static double wl_unit(wl_rng_t *r)
{
    return ((double)(wl_next(r) >> 11) + 1.0) / 9007199254740992.0;
}

/* Read the lengths file: one positive integer per line, blank lines and '#' comments skipped. */
static mixl_status_t wl_read_file(const char *path, uint64_t **lens_p, size_t *n_p, char *err,
                                  size_t err_len)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t n = 0, cap = 0, lineno = 0;
    uint64_t *lens = NULL;

    if (f == NULL) {
        snprintf(err, err_len, "workload.prompt.file: %s: cannot open: %s", path, strerror(errno));
        return MIXL_ERR_CONFIG;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *p = line, *end;
        char *hash = strchr(p, '#');
        if (hash != NULL) *hash = '\0';
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' || *p == '\n' || *p == '\r') continue;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (errno != 0 || end == p || *end != '\0' || v < 1 || v > 16777216) {
            p[strcspn(p, "\r\n")] = '\0';
            snprintf(err, err_len,
                     "%s:%zu: workload.prompt.file: expected a prompt length 1..16777216, got '%s'",
                     path, lineno, p);
            goto err_parse;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *nl = realloc(lens, cap * sizeof(*nl));
            if (nl == NULL) {
                snprintf(err, err_len, "workload.prompt.file: out of memory");
                goto err_parse;
            }
            lens = nl;
        }
        lens[n++] = (uint64_t)v;
    }
    fclose(f);
    if (n == 0) {
        snprintf(err, err_len, "workload.prompt.file: %s: holds no prompt lengths", path);
        free(lens);
        return MIXL_ERR_CONFIG;
    }
    *lens_p = lens;
    *n_p = n;
    return MIXL_OK;

err_parse:
    fclose(f);
    free(lens);
    return MIXL_ERR_CONFIG;
}

mixl_status_t mixl_workload_build(const mixl_run_config_t *cfg, mixl_workload_t *wl, char *err,
                                  size_t err_len)
{
    size_t n = (size_t)cfg->workload.requests;
    uint64_t *file_lens = NULL;
    size_t nfile = 0;
    wl_rng_t rng = {(uint64_t)cfg->run.seed};
    mixl_status_t st;

    memset(wl, 0, sizeof(*wl));
    if (cfg->workload.prompt_dist == MIXL_PROMPT_UNIFORM &&
        cfg->workload.prompt_min > cfg->workload.prompt_max) {
        snprintf(err, err_len, "workload.prompt: min (%lld) is larger than max (%lld)",
                 (long long)cfg->workload.prompt_min, (long long)cfg->workload.prompt_max);
        return MIXL_ERR_CONFIG;
    }
    if (cfg->workload.prompt_dist == MIXL_PROMPT_FILE) {
        if (cfg->workload.prompt_file[0] == '\0') {
            snprintf(err, err_len,
                     "workload.prompt.file: required when workload.prompt.distribution is file");
            return MIXL_ERR_CONFIG;
        }
        st = wl_read_file(cfg->workload.prompt_file, &file_lens, &nfile, err, err_len);
        if (st != MIXL_OK) return st;
    }
    wl->arrival_ns = calloc(n, sizeof(uint64_t));
    wl->prompt = calloc(n, sizeof(uint64_t));
    if (wl->arrival_ns == NULL || wl->prompt == NULL) {
        free(file_lens);
        mixl_workload_free(wl);
        snprintf(err, err_len, "workload: out of memory for %zu requests", n);
        return MIXL_ERR_NO_MEMORY;
    }
    wl->count = n;
    wl->output_tokens = (uint64_t)cfg->workload.output_tokens;

    double t = 0, gap = 1e9 / cfg->workload.rate;
    for (size_t i = 0; i < n; i++) {
        switch (cfg->workload.arrival) {
        case MIXL_ARRIVAL_BURST: wl->arrival_ns[i] = 0; break;
        case MIXL_ARRIVAL_FIXED: wl->arrival_ns[i] = (uint64_t)((double)i * gap); break;
        default: /* Poisson: exponential gaps, the first request at 0 */
            if (i > 0) t += -log(wl_unit(&rng)) * gap;
            wl->arrival_ns[i] = (uint64_t)t;
            break;
        }
        switch (cfg->workload.prompt_dist) {
        case MIXL_PROMPT_FIXED: wl->prompt[i] = (uint64_t)cfg->workload.prompt_tokens; break;
        case MIXL_PROMPT_UNIFORM: {
            uint64_t span = (uint64_t)(cfg->workload.prompt_max - cfg->workload.prompt_min) + 1;
            wl->prompt[i] = (uint64_t)cfg->workload.prompt_min + wl_next(&rng) % span;
            break;
        }
        default: wl->prompt[i] = file_lens[i % nfile]; break;
        }
        if (wl->prompt[i] > wl->max_prompt) wl->max_prompt = wl->prompt[i];
        wl->total_prompt += wl->prompt[i];
    }
    free(file_lens);
    return MIXL_OK;
}

void mixl_workload_free(mixl_workload_t *wl)
{
    free(wl->arrival_ns);
    free(wl->prompt);
    wl->arrival_ns = wl->prompt = NULL;
    wl->count = 0;
}
