/* Sweep sections and --sweep arguments; see sweep.h. */
#include "config/sweep.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

void mixl_sweep_init(mixl_sweep_t *sw)
{
    memset(sw, 0, sizeof(*sw));
}

static mixl_status_t sweep_new_key(mixl_sweep_t *sw, const char *key, int *k_p, char *err,
                                   size_t err_len, const char *where)
{
    for (int k = 0; k < sw->nkeys; k++)
        if (strcmp(sw->key[k], key) == 0) {
            snprintf(err, err_len, "%s: sweep.%s: swept twice", where, key);
            return MIXL_ERR_CONFIG;
        }
    if (sw->nkeys == MIXL_SWEEP_KEYS) {
        snprintf(err, err_len, "%s: sweep.%s: at most %d keys can be swept", where, key,
                 MIXL_SWEEP_KEYS);
        return MIXL_ERR_CONFIG;
    }
    if (strlen(key) >= MIXL_CFG_STR_MAX) {
        snprintf(err, err_len, "%s: sweep key too long", where);
        return MIXL_ERR_CONFIG;
    }
    *k_p = sw->nkeys++;
    snprintf(sw->key[*k_p], MIXL_CFG_STR_MAX, "%s", key);
    sw->nvalues[*k_p] = 0;
    return MIXL_OK;
}

static mixl_status_t sweep_add_value(mixl_sweep_t *sw, int k, const char *v, char *err,
                                     size_t err_len, const char *where)
{
    if (sw->nvalues[k] == MIXL_SWEEP_VALUES) {
        snprintf(err, err_len, "%s: sweep.%s: at most %d values", where, sw->key[k],
                 MIXL_SWEEP_VALUES);
        return MIXL_ERR_CONFIG;
    }
    if (strlen(v) >= MIXL_SWEEP_VALUE_MAX || v[0] == '\0') {
        snprintf(err, err_len, "%s: sweep.%s: value '%.40s' is empty or too long", where,
                 sw->key[k], v);
        return MIXL_ERR_CONFIG;
    }
    snprintf(sw->value[k][sw->nvalues[k]++], MIXL_SWEEP_VALUE_MAX, "%s", v);
    return MIXL_OK;
}

mixl_status_t mixl_sweep_load_file(mixl_sweep_t *sw, const char *path, char *err, size_t err_len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    mixl_status_t st = MIXL_OK;
    char where[MIXL_CFG_STR_MAX + 32];
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        snprintf(err, err_len, "%s: cannot open", path);
        return MIXL_ERR_CONFIG;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        /* The config loader reports malformed YAML with its position. */
        yaml_parser_delete(&parser);
        fclose(f);
        return MIXL_OK;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE) goto out;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        if (k->type != YAML_SCALAR_NODE || strcmp((const char *)k->data.scalar.value, "sweep"))
            continue;
        if (v->type == YAML_SCALAR_NODE) continue; /* "sweep:" with nothing under it */
        if (v->type != YAML_MAPPING_NODE) {
            snprintf(err, err_len, "%s:%zu:%zu: sweep: expected a mapping of keys to lists", path,
                     (size_t)v->start_mark.line + 1, (size_t)v->start_mark.column + 1);
            st = MIXL_ERR_CONFIG;
            goto out;
        }
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top;
             q++) {
            yaml_node_t *sk = yaml_document_get_node(&doc, q->key);
            yaml_node_t *sv = yaml_document_get_node(&doc, q->value);
            snprintf(where, sizeof(where), "%s:%zu:%zu", path, (size_t)sk->start_mark.line + 1,
                     (size_t)sk->start_mark.column + 1);
            if (sk->type != YAML_SCALAR_NODE) {
                snprintf(err, err_len, "%s: sweep: expected a key name", where);
                st = MIXL_ERR_CONFIG;
                goto out;
            }
            const char *name = (const char *)sk->data.scalar.value;
            if (strcmp(name, "mode") == 0) {
                const char *m = sv->type == YAML_SCALAR_NODE ? (const char *)sv->data.scalar.value
                                                             : "";
                if (strcmp(m, "cartesian") != 0 && strcmp(m, "zip") != 0) {
                    snprintf(err, err_len, "%s: sweep.mode: expected cartesian or zip, got '%s'",
                             where, m);
                    st = MIXL_ERR_CONFIG;
                    goto out;
                }
                sw->zip = strcmp(m, "zip") == 0;
                continue;
            }
            if (sv->type != YAML_SEQUENCE_NODE) {
                snprintf(err, err_len, "%s: sweep.%s: expected a list of values ([a, b, c])", where,
                         name);
                st = MIXL_ERR_CONFIG;
                goto out;
            }
            int idx;
            st = sweep_new_key(sw, name, &idx, err, err_len, where);
            for (yaml_node_item_t *it = sv->data.sequence.items.start;
                 st == MIXL_OK && it < sv->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(&doc, *it);
                if (item->type != YAML_SCALAR_NODE) {
                    snprintf(err, err_len, "%s: sweep.%s: values must be scalars", where, name);
                    st = MIXL_ERR_CONFIG;
                } else {
                    st = sweep_add_value(sw, idx, (const char *)item->data.scalar.value, err,
                                         err_len, where);
                }
            }
            if (st == MIXL_OK && sw->nvalues[idx] == 0) {
                snprintf(err, err_len, "%s: sweep.%s: the list is empty", where, name);
                st = MIXL_ERR_CONFIG;
            }
            if (st != MIXL_OK) goto out;
        }
    }
out:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return st;
}

mixl_status_t mixl_sweep_add_arg(mixl_sweep_t *sw, const char *arg, char *err, size_t err_len)
{
    char key[MIXL_CFG_STR_MAX], buf[MIXL_SWEEP_VALUES * MIXL_SWEEP_VALUE_MAX];
    const char *eq = strchr(arg, '=');
    int k;
    if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(key) || eq[1] == '\0') {
        snprintf(err, err_len, "--sweep %s: expected key=v1,v2,...", arg);
        return MIXL_ERR_CONFIG;
    }
    snprintf(key, sizeof(key), "%.*s", (int)(eq - arg), arg);
    mixl_status_t st = sweep_new_key(sw, key, &k, err, err_len, "--sweep");
    if (st != MIXL_OK) return st;
    snprintf(buf, sizeof(buf), "%s", eq + 1);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok != NULL && st == MIXL_OK;
         tok = strtok_r(NULL, ",", &save))
        st = sweep_add_value(sw, k, tok, err, err_len, "--sweep");
    return st;
}

mixl_status_t mixl_sweep_check(const mixl_sweep_t *sw, const mixl_cfg_schema_t *schema,
                               void *scratch, char *err, size_t err_len)
{
    char assign[MIXL_CFG_STR_MAX + MIXL_SWEEP_VALUE_MAX + 2];
    for (int k = 0; k < sw->nkeys; k++) {
        if (mixl_cfg_find(schema, sw->key[k]) == NULL) {
            snprintf(err, err_len, "sweep.%s: unknown key", sw->key[k]);
            return MIXL_ERR_CONFIG;
        }
        if (strcmp(sw->key[k], "run.output") == 0) {
            snprintf(err, err_len, "sweep.run.output: every point goes into one file (a group each)");
            return MIXL_ERR_CONFIG;
        }
        if (sw->zip && sw->nvalues[k] != sw->nvalues[0]) {
            snprintf(err, err_len, "sweep: zipped lists differ in length (%s has %d, %s has %d)",
                     sw->key[0], sw->nvalues[0], sw->key[k], sw->nvalues[k]);
            return MIXL_ERR_CONFIG;
        }
        for (int v = 0; v < sw->nvalues[k]; v++) {
            snprintf(assign, sizeof(assign), "%s=%s", sw->key[k], sw->value[k][v]);
            mixl_status_t st = mixl_cfg_set(schema, scratch, assign, err, err_len);
            if (st != MIXL_OK) return st;
        }
    }
    size_t n = mixl_sweep_points(sw);
    if (n > 10000) {
        snprintf(err, err_len, "sweep: %zu points; at most 10000", n);
        return MIXL_ERR_CONFIG;
    }
    return MIXL_OK;
}

size_t mixl_sweep_points(const mixl_sweep_t *sw)
{
    if (sw->nkeys == 0) return 0;
    if (sw->zip) return (size_t)sw->nvalues[0];
    size_t n = 1;
    for (int k = 0; k < sw->nkeys; k++) n *= (size_t)sw->nvalues[k];
    return n;
}

/* Cartesian order: the last key varies fastest. */
const char *mixl_sweep_value(const mixl_sweep_t *sw, size_t p, int k)
{
    if (sw->zip) return sw->value[k][p];
    size_t stride = 1;
    for (int j = sw->nkeys - 1; j > k; j--) stride *= (size_t)sw->nvalues[j];
    return sw->value[k][(p / stride) % (size_t)sw->nvalues[k]];
}

/* Values compare by their stored form: a key given as 16 in one file and 16.0 in another is equal. */
static int sweep_entry_equal(const mixl_cfg_entry_t *e, const void *a, const void *b)
{
    const char *pa = (const char *)a + e->offset, *pb = (const char *)b + e->offset;
    switch (e->type) {
    case MIXL_CFG_BOOL:
    case MIXL_CFG_ENUM: return *(const int *)pa == *(const int *)pb;
    case MIXL_CFG_INT: return *(const int64_t *)pa == *(const int64_t *)pb;
    case MIXL_CFG_DOUBLE: return *(const double *)pa == *(const double *)pb;
    case MIXL_CFG_STRING: return strcmp(pa, pb) == 0;
    case MIXL_CFG_STRLIST: {
        const mixl_cfg_strlist_t *la = (const mixl_cfg_strlist_t *)pa;
        const mixl_cfg_strlist_t *lb = (const mixl_cfg_strlist_t *)pb;
        if (la->count != lb->count) return 0;
        for (int i = 0; i < la->count; i++)
            if (strcmp(la->item[i], lb->item[i]) != 0) return 0;
        return 1;
    }
    }
    return 0;
}

const char *mixl_sweep_setup_change(const mixl_cfg_schema_t *schema, const void *a, const void *b)
{
    for (size_t i = 0; i < schema->count; i++) {
        const mixl_cfg_entry_t *e = &schema->entries[i];
        if ((e->flags & MIXL_CFG_SETUP) && !sweep_entry_equal(e, a, b)) return e->key;
    }
    return NULL;
}
