/* JSON writer (jansson): {"meta": {...}, "fields": {...docs}, "results": [{...}, ...]}. */
#include <math.h>
#include <stdio.h>

#include <jansson.h>

#include "output.h"

static json_t *meta_json(const bench_meta_t *m)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:i, s:s, s:s, s:s}", "host", m->host, "cpu", m->cpu,
                     "ncpu", m->ncpu, "mpi", m->mpi, "ranks", m->ranks, "date", m->date, "command",
                     m->cmdline, "path", m->path);
}

mixl_status_t bench_write_json(const char *path, const bench_meta_t *meta, const bench_results_t *res)
{
    json_t *root = json_object(), *rows = json_array(), *docs = json_object();
    mixl_status_t st = MIXL_OK;

    if (root == NULL || rows == NULL || docs == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto out;
    }
    for (int i = 0; bench_fields[i].name; i++)
        json_object_set_new(docs, bench_fields[i].name, json_string(bench_fields[i].doc));
    for (size_t r = 0; r < res->n; r++) {
        const char *row = (const char *)&res->rows[r];
        json_t *o = json_object();
        if (o == NULL) {
            st = MIXL_ERR_NO_MEMORY;
            goto out;
        }
        for (int i = 0; bench_fields[i].name; i++) {
            const bench_field_t *fd = &bench_fields[i];
            const void *p = row + fd->offset;
            json_t *v = NULL;
            switch (fd->type) {
            case BENCH_F_STR: v = json_string(p); break;
            case BENCH_F_U64: v = json_integer((json_int_t) * (const uint64_t *)p); break;
            case BENCH_F_U32: v = json_integer((json_int_t) * (const uint32_t *)p); break;
            case BENCH_F_F64: {
                double d = *(const double *)p;
                v = isfinite(d) ? json_real(d) : json_null(); /* JSON has no NaN */
                break;
            }
            }
            json_object_set_new(o, fd->name, v);
        }
        json_array_append_new(rows, o);
    }
    json_object_set_new(root, "meta", meta_json(meta));
    json_object_set_new(root, "fields", docs);
    json_object_set_new(root, "results", rows);
    rows = docs = NULL;
    if (json_dump_file(root, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0) {
        fprintf(stderr, "mixl-bench: json %s: cannot write the file\n", path);
        st = MIXL_ERR_IO;
    }
out:
    json_decref(rows);
    json_decref(docs);
    json_decref(root);
    return st;
}
