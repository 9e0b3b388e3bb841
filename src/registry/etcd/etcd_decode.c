/*
 * Decoding of the etcd gateway's answers: range results and watch streams
 * into MIXL key-value pairs. Pure functions of the bytes received (no
 * network, no handle), so tests/fuzz can drive them with hostile input.
 */
#include <stdlib.h>
#include <string.h>

#include "registry/etcd/etcd.h"

mixl_status_t etcd_kv_decode(json_t *j, int with_value, mixl_registry_kv_t *kv)
{
    json_t *k = json_object_get(j, "key"), *v = json_object_get(j, "value");
    void *key = NULL, *value = NULL;
    size_t key_len = 0, len = 0;
    mixl_status_t status;

    if (!json_is_string(k)) return MIXL_ERR_PROTOCOL;
    status = etcd_b64_decode(json_string_value(k), &key, &key_len);
    if (status != MIXL_OK) return status;
    /* A keys-only answer carries no values: one that does anyway (a proxy, a
     * hostile server) must not hand the caller a value with a length of 0. */
    if (with_value && json_is_string(v)) {
        status = etcd_b64_decode(json_string_value(v), &value, &len);
        if (status != MIXL_OK) goto out;
    }
    status = mixl_reg_kv_fill(kv, key, key_len, value != NULL ? value : with_value ? "" : NULL, len);
    if (status != MIXL_OK) goto out;
    kv->create_revision = etcd_json_i64(j, "create_revision");
    kv->mod_revision = etcd_json_i64(j, "mod_revision");
    kv->version = etcd_json_i64(j, "version");
    kv->lease = etcd_json_i64(j, "lease");
out:
    free(key);
    free(value);
    return status;
}

mixl_status_t etcd_range_decode(json_t *resp, int keys_only, mixl_registry_kv_t **kvs_p,
                                size_t *count_p)
{
    json_t *kvs = json_object_get(resp, "kvs");
    size_t n = json_is_array(kvs) ? json_array_size(kvs) : 0;
    mixl_registry_kv_t *out = NULL;

    if (n > 0) {
        out = calloc(n, sizeof(*out));
        if (out == NULL) return MIXL_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        mixl_status_t status = etcd_kv_decode(json_array_get(kvs, i), !keys_only, &out[i]);
        if (status != MIXL_OK) {
            mixl_registry_kvs_free(out, i);
            return status;
        }
        if (keys_only) out[i].len = 0; /* keys-only answers carry no value size */
    }
    *kvs_p = out;
    *count_p = n;
    return MIXL_OK;
}

/* One line of the stream: a JSON object, or blank (keep-alive). */
static void watch_line(etcd_watch_t *w, const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, 0, NULL), *result, *events;

    if (j == NULL) return; /* blank keep-alive lines */
    result = json_object_get(j, "result");
    if (result == NULL) result = j;
    if (json_is_true(json_object_get(result, "canceled"))) w->canceled = 1;
    events = json_object_get(result, "events");
    for (size_t i = 0; json_is_array(events) && i < json_array_size(events) && w->kv == NULL; i++) {
        json_t *ev = json_array_get(events, i), *type = json_object_get(ev, "type");
        mixl_registry_kv_t *kv;
        /* proto3 omits the default: no "type" means PUT. */
        if (json_is_string(type) && strcmp(json_string_value(type), "PUT") != 0) continue;
        kv = calloc(1, sizeof(*kv));
        if (kv == NULL || etcd_kv_decode(json_object_get(ev, "kv"), 1, kv) != MIXL_OK) {
            free(kv);
            w->failed = 1;
            break;
        }
        if (strcmp(kv->key, w->key) == 0) {
            w->kv = kv;
        } else {
            mixl_registry_kv_free(kv);
        }
    }
    json_decref(j);
}

size_t etcd_watch_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    etcd_watch_t *w = arg;
    size_t n = size * nmemb;

    for (size_t i = 0; i < n; i++) {
        if (ptr[i] == '\n') {
            watch_line(w, w->line ? w->line : "", w->len);
            w->len = 0;
            if (w->kv != NULL || w->canceled || w->failed) return 0;
            continue;
        }
        if (w->len + 1 >= ETCD_MAX_ANSWER_BYTES) {
            w->failed = 1; /* a line that never ends: a broken server */
            return 0;
        }
        if (w->len + 1 >= w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 4096;
            char *l = realloc(w->line, cap);
            if (l == NULL) {
                w->failed = 1;
                return 0;
            }
            w->line = l;
            w->cap = cap;
        }
        w->line[w->len++] = ptr[i];
    }
    return n;
}
