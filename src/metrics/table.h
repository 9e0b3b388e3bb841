/*
 * The summary table on stdout: one row per metric with count, mean, p50,
 * p90, p99 and max, in the metric's units.
 */
#ifndef MIXL_METRICS_TABLE_H
#define MIXL_METRICS_TABLE_H

#include <stdio.h>

#include "metrics/stats.h"

void mixl_table_header(FILE *out);
void mixl_table_row(FILE *out, const char *name, const char *units, mixl_samples_t *s);

#endif /* MIXL_METRICS_TABLE_H */
