/*
 * Table-driven YAML configuration: libyaml document walking, typed value
 * parsing with range checks, overrides, printing. See config.h.
 */
#include "config/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

/* Where a value came from, for messages: file name and 1-based position. */
typedef struct {
    const char *name;
    size_t line, col;
} cfg_where_t;

typedef struct {
    const mixl_cfg_schema_t *schema;
    void *obj;
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t err_len;
} cfg_ctx_t;

static mixl_status_t cfg_fail(char *err, size_t err_len, const cfg_where_t *w, const char *key,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static mixl_status_t cfg_fail(char *err, size_t err_len, const cfg_where_t *w, const char *key,
                              const char *fmt, ...)
{
    char what[MIXL_CFG_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (err != NULL && err_len > 0) {
        if (key != NULL && key[0] != '\0')
            snprintf(err, err_len, "%s:%zu:%zu: %s: %s", w->name, w->line, w->col, key, what);
        else
            snprintf(err, err_len, "%s:%zu:%zu: %s", w->name, w->line, w->col, what);
    }
    return MIXL_ERR_CONFIG;
}

const mixl_cfg_entry_t *mixl_cfg_find(const mixl_cfg_schema_t *schema, const char *key)
{
    for (size_t i = 0; i < schema->count; i++)
        if (strcmp(schema->entries[i].key, key) == 0) return &schema->entries[i];
    return NULL;
}

/* True when some key lies under section (i.e. starts with "section."). */
static int cfg_is_section(const mixl_cfg_schema_t *schema, const char *section)
{
    size_t n = strlen(section);
    for (size_t i = 0; i < schema->count; i++)
        if (strncmp(schema->entries[i].key, section, n) == 0 && schema->entries[i].key[n] == '.')
            return 1;
    return 0;
}

const char *mixl_cfg_enum_name(const mixl_cfg_entry_t *entry, int value)
{
    /* Choices live in one "a|b|c" string; the name is copied out into a per-thread buffer. */
    static __thread char buf[MIXL_CFG_STR_MAX];
    const char *p = entry->choices;
    for (int i = 0; p != NULL && *p != '\0'; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (i == value) {
            if (n >= sizeof(buf)) n = sizeof(buf) - 1;
            memcpy(buf, p, n);
            buf[n] = '\0';
            return buf;
        }
        if (bar == NULL) break;
        p = bar + 1;
    }
    return "?";
}

static int cfg_enum_index(const mixl_cfg_entry_t *entry, const char *text)
{
    const char *p = entry->choices;
    size_t tn = strlen(text);
    for (int i = 0; p != NULL && *p != '\0'; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == tn && strncmp(p, text, n) == 0) return i;
        if (bar == NULL) break;
        p = bar + 1;
    }
    return -1;
}

static void cfg_fmt_num(char *buf, size_t len, double v, int integer)
{
    if (integer)
        snprintf(buf, len, "%lld", (long long)v);
    else
        snprintf(buf, len, "%g", v);
}

void mixl_cfg_expected(const mixl_cfg_entry_t *entry, char *buf, size_t len)
{
    char lo[32], hi[32];
    switch (entry->type) {
    case MIXL_CFG_BOOL: snprintf(buf, len, "boolean (true or false)"); break;
    case MIXL_CFG_INT:
    case MIXL_CFG_DOUBLE:
        cfg_fmt_num(lo, sizeof(lo), entry->min, entry->type == MIXL_CFG_INT);
        cfg_fmt_num(hi, sizeof(hi), entry->max, entry->type == MIXL_CFG_INT);
        snprintf(buf, len, "%s %s..%s", entry->type == MIXL_CFG_INT ? "integer" : "number", lo, hi);
        break;
    case MIXL_CFG_STRING:
        snprintf(buf, len, "string of at most %d bytes", MIXL_CFG_STR_MAX - 1);
        break;
    case MIXL_CFG_ENUM: {
        size_t off = (size_t)snprintf(buf, len, "one of ");
        for (const char *p = entry->choices; *p != '\0' && off < len; p++, off++)
            buf[off] = *p == '|' ? ',' : *p;
        /* "a,b" -> "a, b" reads better; rewrite with spaces. */
        char tmp[MIXL_CFG_STR_MAX];
        size_t t = 0;
        for (size_t i = 0; i < off && i < len && t + 2 < sizeof(tmp); i++) {
            tmp[t++] = buf[i];
            if (buf[i] == ',') tmp[t++] = ' ';
        }
        tmp[t] = '\0';
        snprintf(buf, len, "%s", tmp);
        break;
    }
    case MIXL_CFG_STRLIST:
        snprintf(buf, len, "list of at most %d strings", MIXL_CFG_LIST_MAX);
        break;
    }
}

static int cfg_is_null(const char *text, int quoted)
{
    return !quoted && (text[0] == '\0' || strcmp(text, "~") == 0 || strcasecmp(text, "null") == 0);
}

/*
 * Parse one scalar into the entry's slot. quoted: the scalar was quoted in
 * YAML (so it is a string, never a number or boolean). On failure returns
 * MIXL_ERR_CONFIG with the message built from w and key.
 */
static mixl_status_t cfg_parse_scalar(const mixl_cfg_entry_t *e, void *obj, const char *text,
                                      int quoted, const cfg_where_t *w, const char *key, char *err,
                                      size_t err_len)
{
    char expected[MIXL_CFG_STR_MAX];
    char *slot = (char *)obj + e->offset;
    char *end;

    mixl_cfg_expected(e, expected, sizeof(expected));
    if (cfg_is_null(text, quoted) && e->type != MIXL_CFG_STRING && e->type != MIXL_CFG_STRLIST)
        return cfg_fail(err, err_len, w, key, "expected %s, got no value", expected);
    if (quoted && e->type != MIXL_CFG_STRING && e->type != MIXL_CFG_STRLIST &&
        e->type != MIXL_CFG_ENUM)
        return cfg_fail(err, err_len, w, key, "expected %s, got quoted string \"%s\"", expected,
                        text);

    switch (e->type) {
    case MIXL_CFG_BOOL: {
        static const char *const yes[] = {"true", "yes", "on"};
        static const char *const no[] = {"false", "no", "off"};
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(text, yes[i]) == 0) {
                *(int *)slot = 1;
                return MIXL_OK;
            }
            if (strcasecmp(text, no[i]) == 0) {
                *(int *)slot = 0;
                return MIXL_OK;
            }
        }
        return cfg_fail(err, err_len, w, key, "expected %s, got '%s'", expected, text);
    }
    case MIXL_CFG_INT: {
        errno = 0;
        long long v = strtoll(text, &end, 0);
        if (errno != 0 || end == text || *end != '\0')
            return cfg_fail(err, err_len, w, key, "expected %s, got '%s'", expected, text);
        if ((double)v < e->min || (double)v > e->max)
            return cfg_fail(err, err_len, w, key, "expected %s, got %lld (out of range)", expected,
                            v);
        *(int64_t *)slot = v;
        return MIXL_OK;
    }
    case MIXL_CFG_DOUBLE: {
        errno = 0;
        double v = strtod(text, &end);
        if (errno != 0 || end == text || *end != '\0' || !isfinite(v))
            return cfg_fail(err, err_len, w, key, "expected %s, got '%s'", expected, text);
        if (v < e->min || v > e->max)
            return cfg_fail(err, err_len, w, key, "expected %s, got %g (out of range)", expected,
                            v);
        *(double *)slot = v;
        return MIXL_OK;
    }
    case MIXL_CFG_STRING:
        if (cfg_is_null(text, quoted)) text = "";
        if (strlen(text) >= MIXL_CFG_STR_MAX)
            return cfg_fail(err, err_len, w, key, "expected %s, got %zu bytes", expected,
                            strlen(text));
        snprintf(slot, MIXL_CFG_STR_MAX, "%s", text);
        return MIXL_OK;
    case MIXL_CFG_ENUM: {
        int idx = cfg_enum_index(e, text);
        if (idx < 0) return cfg_fail(err, err_len, w, key, "expected %s, got '%s'", expected, text);
        *(int *)slot = idx;
        return MIXL_OK;
    }
    case MIXL_CFG_STRLIST: {
        /* A single scalar: comma-separated items (how overrides and defaults spell lists). */
        mixl_cfg_strlist_t list = {0};
        const char *p = text;
        if (cfg_is_null(text, quoted)) p = "";
        while (*p != '\0') {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            while (n > 0 && (*p == ' ')) {
                p++;
                n--;
            }
            while (n > 0 && p[n - 1] == ' ') n--;
            if (list.count == MIXL_CFG_LIST_MAX || n >= MIXL_CFG_STR_MAX)
                return cfg_fail(err, err_len, w, key, "expected %s (each under %d bytes)", expected,
                                MIXL_CFG_STR_MAX);
            if (n > 0) {
                memcpy(list.item[list.count], p, n);
                list.item[list.count][n] = '\0';
                list.count++;
            }
            if (comma == NULL) break;
            p = comma + 1;
        }
        memcpy(slot, &list, sizeof(list));
        return MIXL_OK;
    }
    }
    return cfg_fail(err, err_len, w, key, "unsupported type in the configuration table");
}

static size_t cfg_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[128];
    if (lb >= 128 || la >= 128) return (size_t)-1;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest known key or section to path, for "did you mean" hints; NULL when none is close. */
static void cfg_suggest(const mixl_cfg_schema_t *schema, const char *path, char *out, size_t len)
{
    size_t best = (size_t)-1;
    out[0] = '\0';
    for (size_t i = 0; i < schema->count; i++) {
        /* Compare against the key and every section prefix of it. */
        char cand[MIXL_CFG_STR_MAX];
        snprintf(cand, sizeof(cand), "%s", schema->entries[i].key);
        for (;;) {
            size_t d = cfg_edit_distance(path, cand);
            if (d < best) {
                best = d;
                snprintf(out, len, "%s", cand);
            }
            char *dot = strrchr(cand, '.');
            if (dot == NULL) break;
            *dot = '\0';
        }
    }
    if (best == (size_t)-1 || best > 2 + strlen(path) / 8) out[0] = '\0';
}

static cfg_where_t cfg_mark(const cfg_ctx_t *c, const yaml_node_t *n)
{
    cfg_where_t w = {c->name, n->start_mark.line + 1, n->start_mark.column + 1};
    return w;
}

static const char *cfg_node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a sequence";
    default: return "a scalar";
    }
}

static mixl_status_t cfg_walk(cfg_ctx_t *c, yaml_node_t *map, const char *prefix);

static mixl_status_t cfg_value(cfg_ctx_t *c, const mixl_cfg_entry_t *e, yaml_node_t *v,
                               const char *path)
{
    cfg_where_t w = cfg_mark(c, v);
    char expected[MIXL_CFG_STR_MAX];

    if (v->type == YAML_SCALAR_NODE) {
        int quoted = v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        return cfg_parse_scalar(e, c->obj, (const char *)v->data.scalar.value, quoted, &w, path,
                                c->err, c->err_len);
    }
    if (v->type == YAML_SEQUENCE_NODE && e->type == MIXL_CFG_STRLIST) {
        mixl_cfg_strlist_t list = {0};
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *item = yaml_document_get_node(c->doc, *it);
            cfg_where_t iw = cfg_mark(c, item);
            mixl_cfg_expected(e, expected, sizeof(expected));
            if (item->type != YAML_SCALAR_NODE)
                return cfg_fail(c->err, c->err_len, &iw, path, "expected %s, got %s in the list",
                                expected, cfg_node_kind(item));
            if (list.count == MIXL_CFG_LIST_MAX || item->data.scalar.length >= MIXL_CFG_STR_MAX)
                return cfg_fail(c->err, c->err_len, &iw, path, "expected %s (each under %d bytes)",
                                expected, MIXL_CFG_STR_MAX);
            snprintf(list.item[list.count++], MIXL_CFG_STR_MAX, "%s",
                     (const char *)item->data.scalar.value);
        }
        memcpy((char *)c->obj + e->offset, &list, sizeof(list));
        return MIXL_OK;
    }
    mixl_cfg_expected(e, expected, sizeof(expected));
    return cfg_fail(c->err, c->err_len, &w, path, "expected %s, got %s", expected,
                    cfg_node_kind(v));
}

static mixl_status_t cfg_walk(cfg_ctx_t *c, yaml_node_t *map, const char *prefix)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        cfg_where_t kw = cfg_mark(c, k);
        char path[MIXL_CFG_STR_MAX];
        mixl_status_t st;

        if (k->type != YAML_SCALAR_NODE)
            return cfg_fail(c->err, c->err_len, &kw, prefix, "expected a key name, got %s",
                            cfg_node_kind(k));
        const char *name = (const char *)k->data.scalar.value;
        if (snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", name) >=
            (int)sizeof(path))
            return cfg_fail(c->err, c->err_len, &kw, prefix, "key name too long");

        /* libyaml keeps duplicate keys; the first one wins nowhere, so refuse them. */
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(c->doc, q->key);
            if (qk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)qk->data.scalar.value, name) == 0)
                return cfg_fail(c->err, c->err_len, &kw, path,
                                "duplicate key (first given at line %zu)",
                                (size_t)qk->start_mark.line + 1);
        }

        const mixl_cfg_entry_t *e = mixl_cfg_find(c->schema, path);
        if (prefix[0] == '\0' && strcmp(name, "sweep") == 0) {
            st = MIXL_OK; /* the sweep section is read by config/sweep.c */
        } else if (e != NULL) {
            st = cfg_value(c, e, v, path);
        } else if (cfg_is_section(c->schema, path)) {
            if (v->type == YAML_MAPPING_NODE) {
                st = cfg_walk(c, v, path);
            } else if (v->type == YAML_SCALAR_NODE &&
                       cfg_is_null((const char *)v->data.scalar.value,
                                   v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)) {
                st = MIXL_OK; /* "section:" with nothing under it */
            } else {
                cfg_where_t vw = cfg_mark(c, v);
                return cfg_fail(c->err, c->err_len, &vw, path,
                                "expected a mapping (a section of keys), got %s", cfg_node_kind(v));
            }
        } else {
            char hint[MIXL_CFG_STR_MAX];
            cfg_suggest(c->schema, path, hint, sizeof(hint));
            if (hint[0] != '\0')
                return cfg_fail(c->err, c->err_len, &kw, path, "unknown key (did you mean %s?)",
                                hint);
            return cfg_fail(c->err, c->err_len, &kw, path, "unknown key");
        }
        if (st != MIXL_OK) return st;
    }
    return MIXL_OK;
}

static mixl_status_t cfg_load_parser(const mixl_cfg_schema_t *schema, void *obj, const char *name,
                                     yaml_parser_t *parser, char *err, size_t err_len)
{
    yaml_document_t doc;
    mixl_status_t st = MIXL_OK;

    if (!yaml_parser_load(parser, &doc)) {
        cfg_where_t w = {name, parser->problem_mark.line + 1, parser->problem_mark.column + 1};
        if (parser->context != NULL)
            return cfg_fail(err, err_len, &w, NULL, "malformed YAML: %s (%s at line %zu col %zu)",
                            parser->problem ? parser->problem : "error", parser->context,
                            (size_t)parser->context_mark.line + 1,
                            (size_t)parser->context_mark.column + 1);
        return cfg_fail(err, err_len, &w, NULL, "malformed YAML: %s",
                        parser->problem ? parser->problem : "error");
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL) goto out; /* empty file: every key keeps its default */
    cfg_ctx_t c = {schema, obj, &doc, name, err, err_len};
    if (root->type == YAML_SCALAR_NODE &&
        cfg_is_null((const char *)root->data.scalar.value,
                    root->data.scalar.style != YAML_PLAIN_SCALAR_STYLE))
        goto out;
    if (root->type != YAML_MAPPING_NODE) {
        cfg_where_t w = cfg_mark(&c, root);
        st = cfg_fail(err, err_len, &w, NULL,
                      "expected a mapping of sections at the top level, got %s",
                      cfg_node_kind(root));
        goto out;
    }
    st = cfg_walk(&c, root, "");
    if (st != MIXL_OK) goto out;

    /* A second document would be silently ignored; refuse it instead. */
    yaml_document_t extra;
    if (!yaml_parser_load(parser, &extra)) {
        cfg_where_t w = {name, parser->problem_mark.line + 1, parser->problem_mark.column + 1};
        st = cfg_fail(err, err_len, &w, NULL, "malformed YAML: %s",
                      parser->problem ? parser->problem : "error");
        goto out;
    }
    yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
    if (extra_root != NULL) {
        cfg_where_t w = {name, extra_root->start_mark.line + 1, extra_root->start_mark.column + 1};
        st = cfg_fail(err, err_len, &w, NULL, "expected one YAML document, found a second one");
    }
    yaml_document_delete(&extra);
out:
    yaml_document_delete(&doc);
    return st;
}

mixl_status_t mixl_cfg_load_file(const mixl_cfg_schema_t *schema, void *obj, const char *path,
                                 char *err, size_t err_len)
{
    yaml_parser_t parser;
    mixl_status_t st;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        snprintf(err, err_len, "%s: cannot open the configuration file: %s", path, strerror(errno));
        return MIXL_ERR_IO;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, err_len, "%s: cannot initialize the YAML parser", path);
        return MIXL_ERR_NO_MEMORY;
    }
    yaml_parser_set_input_file(&parser, f);
    st = cfg_load_parser(schema, obj, path, &parser, err, err_len);
    yaml_parser_delete(&parser);
    fclose(f);
    return st;
}

mixl_status_t mixl_cfg_load_string(const mixl_cfg_schema_t *schema, void *obj, const char *name,
                                   const char *text, size_t len, char *err, size_t err_len)
{
    yaml_parser_t parser;
    mixl_status_t st;

    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, err_len, "%s: cannot initialize the YAML parser", name);
        return MIXL_ERR_NO_MEMORY;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    st = cfg_load_parser(schema, obj, name, &parser, err, err_len);
    yaml_parser_delete(&parser);
    return st;
}

mixl_status_t mixl_cfg_set(const mixl_cfg_schema_t *schema, void *obj, const char *assignment,
                           char *err, size_t err_len)
{
    char key[MIXL_CFG_STR_MAX], value[MIXL_CFG_STR_MAX * 2];
    const char *eq = strchr(assignment, '=');
    cfg_where_t w = {"--set", 1, 1};
    int quoted = 0;

    if (eq == NULL || eq == assignment)
        return cfg_fail(err, err_len, &w, NULL, "expected key=value, got '%s'", assignment);
    size_t kn = (size_t)(eq - assignment);
    if (kn >= sizeof(key)) return cfg_fail(err, err_len, &w, NULL, "key too long");
    memcpy(key, assignment, kn);
    key[kn] = '\0';
    snprintf(value, sizeof(value), "%s", eq + 1);
    const mixl_cfg_entry_t *e = mixl_cfg_find(schema, key);
    if (e == NULL) {
        char hint[MIXL_CFG_STR_MAX];
        cfg_suggest(schema, key, hint, sizeof(hint));
        if (hint[0] != '\0')
            return cfg_fail(err, err_len, &w, key, "unknown key (did you mean %s?)", hint);
        return cfg_fail(err, err_len, &w, key, "unknown key");
    }
    size_t vn = strlen(value);
    if (vn >= 2 && ((value[0] == '"' && value[vn - 1] == '"') ||
                    (value[0] == '\'' && value[vn - 1] == '\''))) {
        memmove(value, value + 1, vn - 2);
        value[vn - 2] = '\0';
        quoted = 1;
    }
    w.col = kn + 2; /* the value starts after "key=" */
    return cfg_parse_scalar(e, obj, value, quoted, &w, key, err, err_len);
}

mixl_status_t mixl_cfg_defaults(const mixl_cfg_schema_t *schema, void *obj, char *err,
                                size_t err_len)
{
    for (size_t i = 0; i < schema->count; i++) {
        const mixl_cfg_entry_t *e = &schema->entries[i];
        cfg_where_t w = {"<defaults>", i + 1, 1};
        mixl_status_t st =
            cfg_parse_scalar(e, obj, e->def, e->type == MIXL_CFG_STRING, &w, e->key, err, err_len);
        if (st != MIXL_OK) return st;
    }
    return MIXL_OK;
}

/* Length of the UTF-8 sequence at s and its code point; 0 when it is not valid UTF-8. */
static size_t cfg_utf8(const unsigned char *s, uint32_t *cp_p)
{
    size_t n;
    uint32_t cp;

    if (s[0] >= 0xf0 && s[0] <= 0xf4) n = 4, cp = s[0] & 0x07u;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) n = 3, cp = s[0] & 0x0fu;
    else if (s[0] >= 0xc2 && s[0] <= 0xdf) n = 2, cp = s[0] & 0x1fu;
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    *cp_p = cp;
    return n;
}

/*
 * A double-quoted YAML scalar that loads back to exactly s: control
 * characters, and characters YAML reads as line breaks (U+0085, U+2028,
 * U+2029) or refuses (U+FEFF, U+FFFE, U+FFFF), are escaped; a raw newline
 * would be folded into a space on loading. A byte that is not valid UTF-8
 * (only an override can hold one) is written as \xHH, the nearest YAML has.
 */
static void cfg_print_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    fputc('"', out);
    while (*p != '\0') {
        uint32_t cp = 0;
        size_t n = *p < 0x80 ? 1 : cfg_utf8(p, &cp);
        if (*p == '"' || *p == '\\') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else if (*p == '\t') {
            fputs("\\t", out);
        } else if (*p < 0x20 || *p == 0x7f || n == 0) {
            fprintf(out, "\\x%02x", *p);
            n = 1;
        } else if (n > 1 && (cp < 0xa0 || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff ||
                             cp == 0xfffe || cp == 0xffff)) {
            fprintf(out, "\\u%04x", (unsigned)cp);
        } else {
            fwrite(p, 1, n, out);
        }
        p += n;
    }
    fputc('"', out);
}

static void cfg_print_value(const mixl_cfg_entry_t *e, const void *obj, FILE *out)
{
    const char *slot = (const char *)obj + e->offset;
    switch (e->type) {
    case MIXL_CFG_BOOL: fputs(*(const int *)slot ? "true" : "false", out); break;
    case MIXL_CFG_INT: fprintf(out, "%lld", (long long)*(const int64_t *)slot); break;
    case MIXL_CFG_DOUBLE: fprintf(out, "%.17g", *(const double *)slot); break;
    case MIXL_CFG_STRING: cfg_print_string(out, slot); break;
    case MIXL_CFG_ENUM: fputs(mixl_cfg_enum_name(e, *(const int *)slot), out); break;
    case MIXL_CFG_STRLIST: {
        const mixl_cfg_strlist_t *l = (const mixl_cfg_strlist_t *)slot;
        fputc('[', out);
        for (int i = 0; i < l->count; i++) {
            if (i) fputs(", ", out);
            cfg_print_string(out, l->item[i]);
        }
        fputc(']', out);
        break;
    }
    }
}

void mixl_cfg_print(const mixl_cfg_schema_t *schema, const void *obj, FILE *out, int docs)
{
    char prev[MIXL_CFG_STR_MAX] = "";

    for (size_t i = 0; i < schema->count; i++) {
        const mixl_cfg_entry_t *e = &schema->entries[i];
        char cur[MIXL_CFG_STR_MAX];
        snprintf(cur, sizeof(cur), "%s", e->key);

        /* Split both keys into section components; open the sections that differ. */
        char *pc[16], *cc[16];
        int np = 0, nc = 0;
        char pbuf[MIXL_CFG_STR_MAX], cbuf[MIXL_CFG_STR_MAX];
        snprintf(pbuf, sizeof(pbuf), "%s", prev);
        snprintf(cbuf, sizeof(cbuf), "%s", cur);
        for (char *s = strtok(pbuf, "."); s && np < 16; s = strtok(NULL, ".")) pc[np++] = s;
        for (char *s = strtok(cbuf, "."); s && nc < 16; s = strtok(NULL, ".")) cc[nc++] = s;
        int same = 0;
        while (same < np - 1 && same < nc - 1 && strcmp(pc[same], cc[same]) == 0) same++;
        for (int d = same; d < nc - 1; d++) {
            if (d == 0 && i > 0) fputc('\n', out);
            fprintf(out, "%*s%s:\n", 2 * d, "", cc[d]);
        }
        if (docs) {
            char expected[MIXL_CFG_STR_MAX];
            mixl_cfg_expected(e, expected, sizeof(expected));
            fprintf(out, "%*s# %s [%s]\n", 2 * (nc - 1), "", e->doc, expected);
        }
        fprintf(out, "%*s%s: ", 2 * (nc - 1), "", cc[nc - 1]);
        cfg_print_value(e, obj, out);
        fputc('\n', out);
        snprintf(prev, sizeof(prev), "%s", e->key);
    }
}

char *mixl_cfg_to_string(const mixl_cfg_schema_t *schema, const void *obj)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) return NULL;
    mixl_cfg_print(schema, obj, f, 0);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
