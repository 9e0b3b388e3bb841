/* CSV writer: a header of the field names, then one line per row (RFC 4180 quoting). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "output.h"

static void put_str(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

mixl_status_t bench_write_csv(const char *path, const bench_results_t *res)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "mixl-bench: csv %s: %s\n", path, strerror(errno));
        return MIXL_ERR_IO;
    }
    for (int i = 0; bench_fields[i].name; i++) fprintf(f, "%s%s", i ? "," : "", bench_fields[i].name);
    fputc('\n', f);
    for (size_t r = 0; r < res->n; r++) {
        const char *row = (const char *)&res->rows[r];
        for (int i = 0; bench_fields[i].name; i++) {
            const bench_field_t *fd = &bench_fields[i];
            const void *p = row + fd->offset;
            if (i) fputc(',', f);
            switch (fd->type) {
            case BENCH_F_STR: put_str(f, p); break;
            case BENCH_F_U64: fprintf(f, "%" PRIu64, *(const uint64_t *)p); break;
            case BENCH_F_U32: fprintf(f, "%" PRIu32, *(const uint32_t *)p); break;
            case BENCH_F_F64: {
                double v = *(const double *)p;
                /* Empty field for "not applicable": gnuplot and spreadsheets skip it. */
                if (!isnan(v)) fprintf(f, "%.6g", v);
                break;
            }
            }
        }
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "mixl-bench: csv %s: write failed: %s\n", path, strerror(errno));
        return MIXL_ERR_IO;
    }
    return MIXL_OK;
}
