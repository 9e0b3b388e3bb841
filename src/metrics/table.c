/* Summary table rows; see table.h. */
#include "metrics/table.h"

void mixl_table_header(FILE *out)
{
    fprintf(out, "%-24s %-6s %7s %12s %12s %12s %12s %12s\n", "metric", "units", "count", "mean",
            "p50", "p90", "p99", "max");
}

void mixl_table_row(FILE *out, const char *name, const char *units, mixl_samples_t *s)
{
    mixl_summary_t r = mixl_samples_summary(s);
    fprintf(out, "%-24s %-6s %7zu %12.3f %12.3f %12.3f %12.3f %12.3f\n", name, units, r.count,
            r.mean, r.p50, r.p90, r.p99, r.max);
}
