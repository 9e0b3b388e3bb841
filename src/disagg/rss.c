/*
 * Resident memory of a mixl-run rank: sampled once the rank has finished
 * DG_RSS_MARK requests and again at the end, gathered on the router into
 * one summary line ("rss (KiB ...): rank 0 router -/20480, ...") and the
 * results file's /rss table, so a long run shows whether memory grows per
 * request (the soak test reads the table).
 */
#include <stdio.h>
#include <unistd.h>

#include "disagg/dg_int.h"

long dg_rss_kib(void)
{
    long pages_total = 0, pages_resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
    fclose(f);
    return pages_resident < 0 ? -1 : pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

void dg_finished_one(mixl_dg_t *dg)
{
    /* Once per request, off the transfer path: one read of a small /proc file at the mark. */
    if (++dg->finished == DG_RSS_MARK) dg->rss_mark_kib = dg_rss_kib();
}
