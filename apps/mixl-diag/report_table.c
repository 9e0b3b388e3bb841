/*
 * The readable form of the report: one block per section, "key  value"
 * rows, nested objects and arrays flattened with dotted/indexed keys, and
 * the findings last, one per line with their severity.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

/* Objects of at most three scalars (a UCX transport, a GPU) fit on one line. */
static int is_small_row(const json_t *v)
{
    const char *k;
    json_t *x;
    if (!json_is_object(v) || json_object_size(v) > 3)
        return 0;
    json_object_foreach((json_t *)v, k, x)
        if (json_is_object(x) || json_is_array(x))
            return 0;
    return 1;
}

static void print_row(const char *key, const json_t *v)
{
    const char *k;
    json_t *x;
    int first = 1;
    printf("  %-34s ", key);
    json_object_foreach((json_t *)v, k, x) {
        char *s = json_dumps(x, JSON_ENCODE_ANY);
        printf("%s%s=%s", first ? "" : "  ", k, s ? s : "?");
        free(s);
        first = 0;
    }
    printf("\n");
}

static void print_value(const char *key, const json_t *v, int depth)
{
    char sub[256];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            snprintf(sub, sizeof(sub), "%s%s%s", key, *key ? "." : "", k);
            print_value(sub, x, depth + 1);
        }
        return;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        if (json_array_size(v) == 0) {
            printf("  %-34s %s\n", key, "none");
            return;
        }
        /* Arrays of strings fit on one line. */
        if (json_is_string(json_array_get(v, 0))) {
            printf("  %-34s ", key);
            json_array_foreach((json_t *)v, i, x)
                printf("%s%s", i ? ", " : "", json_string_value(x));
            printf("\n");
            return;
        }
        json_array_foreach((json_t *)v, i, x) {
            snprintf(sub, sizeof(sub), "%s[%zu]", key, i);
            if (is_small_row(x))
                print_row(sub, x);
            else
                print_value(sub, x, depth + 1);
        }
        return;
    }
    case JSON_STRING: printf("  %-34s %s\n", key, json_string_value(v)); return;
    case JSON_INTEGER: printf("  %-34s %lld\n", key, (long long)json_integer_value(v)); return;
    case JSON_REAL: printf("  %-34s %.2f\n", key, json_real_value(v)); return;
    case JSON_TRUE: printf("  %-34s yes\n", key); return;
    case JSON_FALSE: printf("  %-34s no\n", key); return;
    case JSON_NULL: printf("  %-34s unknown\n", key); return;
    }
}

void mixl_diag_print_table(const json_t *report)
{
    const char *k;
    json_t *v;
    printf("MIXL environment check (mixl-diag %s)\n",
           json_string_value(json_object_get(report, "mixl_version")));
    printf("  %-34s %s\n", "host", json_string_value(json_object_get(report, "host")));
    printf("  %-34s %lld on %lld node(s)\n", "ranks",
           json_integer_value(json_object_get(report, "ranks")),
           json_integer_value(json_object_get(report, "nodes")));
    json_object_foreach((json_t *)report, k, v) {
        if (!json_is_object(v) && !json_is_array(v))
            continue;
        if (!strcmp(k, "findings"))
            continue;
        printf("\n[%s]\n", k);
        print_value("", v, 0);
    }
    printf("\nFindings\n");
    size_t i;
    json_t *f;
    json_t *fs = json_object_get(report, "findings");
    if (json_array_size(fs) == 0)
        printf("  none: nothing limits MIXL here\n");
    json_array_foreach(fs, i, f)
        printf("  %-7s  %s\n", json_string_value(json_object_get(f, "severity")),
               json_string_value(json_object_get(f, "message")));
}
