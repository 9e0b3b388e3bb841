/*
 * Sweeps: configuration keys with lists of values, run as points of one job.
 * From the YAML `sweep:` section
 *
 *   sweep:
 *     mode: cartesian          # every combination (default), or zip: the i-th of each list
 *     workload.rate: [100, 200, 400]
 *     transfer.mode: [push, pull]
 *
 * or from repeated `--sweep key=v1,v2,...` arguments (added after the file's
 * keys; the same key twice is refused). Each point is a set of key=value
 * overrides applied after the file and --set.
 */
#ifndef MIXL_CONFIG_SWEEP_H
#define MIXL_CONFIG_SWEEP_H

#include <stddef.h>

#include "config/config.h"

#define MIXL_SWEEP_KEYS 8
#define MIXL_SWEEP_VALUES 64
#define MIXL_SWEEP_VALUE_MAX 128

typedef struct {
    int zip;   /* 0: Cartesian product, 1: zipped lists */
    int nkeys;
    char key[MIXL_SWEEP_KEYS][MIXL_CFG_STR_MAX];
    int nvalues[MIXL_SWEEP_KEYS];
    char value[MIXL_SWEEP_KEYS][MIXL_SWEEP_VALUES][MIXL_SWEEP_VALUE_MAX];
} mixl_sweep_t;

void mixl_sweep_init(mixl_sweep_t *sw);

/* Read the `sweep:` section of a YAML file, if it has one; file:line:col errors. */
mixl_status_t mixl_sweep_load_file(mixl_sweep_t *sw, const char *path, char *err, size_t err_len);

/* Add "key=v1,v2,..." (a --sweep argument). */
mixl_status_t mixl_sweep_add_arg(mixl_sweep_t *sw, const char *arg, char *err, size_t err_len);

/*
 * Check every key against the schema and every value by setting it on
 * scratch (an object of the schema's type, clobbered); zipped lists must have
 * equal lengths; run.output cannot be swept (one file holds every point).
 */
mixl_status_t mixl_sweep_check(const mixl_sweep_t *sw, const mixl_cfg_schema_t *schema,
                               void *scratch, char *err, size_t err_len);

/* Number of points: 0 when nothing is swept. */
size_t mixl_sweep_points(const mixl_sweep_t *sw);

/* The value of key k at point p. */
const char *mixl_sweep_value(const mixl_sweep_t *sw, size_t p, int k);

/*
 * The first key flagged MIXL_CFG_SETUP whose value differs between the
 * configurations a and b (objects of the schema's type), or NULL when they
 * differ at most in other keys: then what was set up for a serves b.
 */
const char *mixl_sweep_setup_change(const mixl_cfg_schema_t *schema, const void *a, const void *b);

#endif /* MIXL_CONFIG_SWEEP_H */
