/*
 * The "etcd" registry backend: the ops table over etcd's v3 JSON gateway.
 * Keys and values are base64 in the JSON bodies; MIXL writes plain keys
 * ("<ns>/mixl_metadata/<agent>") so `etcdctl get --prefix` shows them.
 * wait() reads the key, then watches it from the next revision on its own
 * connection until a PUT arrives or the deadline passes.
 */
#include <stdlib.h>
#include <string.h>

#include "registry/etcd/etcd.h"
#include "util/clock.h"
#include "util/log.h"

static uint64_t op_deadline(struct mixl_registry *reg)
{
    return mixl_deadline_ns(reg->params.op_timeout_ms);
}

/* json_t string holding the base64 of data (a new reference), NULL on ENOMEM. */
static json_t *b64_json(const void *data, size_t len)
{
    char *enc = etcd_b64_encode(data, len);
    json_t *j = enc ? json_string(enc) : NULL;
    free(enc);
    return j;
}

static json_t *lease_json(int64_t lease)
{
    char id[32];
    snprintf(id, sizeof(id), "%lld", (long long)lease);
    return json_string(id);
}

static mixl_status_t etcd_put(struct mixl_registry *reg, const char *key, const void *value,
                              size_t len, int64_t lease, int64_t *rev_p)
{
    char what[512];
    json_t *body = json_object(), *resp = NULL;
    mixl_status_t status;

    snprintf(what, sizeof(what), "put %s (%zu bytes)", key, len);
    if (body == NULL || json_object_set_new(body, "key", b64_json(key, strlen(key))) != 0 ||
        json_object_set_new(body, "value", b64_json(value, len)) != 0 ||
        (lease != 0 && json_object_set_new(body, "lease", lease_json(lease)) != 0)) {
        json_decref(body);
        return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: %s: body", what);
    }
    status = etcd_post(reg->priv, "/v3/kv/put", body, op_deadline(reg), what, 0, &resp);
    json_decref(body);
    if (status != MIXL_OK) return status;
    *rev_p = etcd_json_i64(json_object_get(resp, "header"), "revision");
    json_decref(resp);
    /* Every put makes a revision of at least 2: without one the write is not known to have happened. */
    if (*rev_p <= 0) return etcd_bad_answer(reg->priv, -1, what, "no header.revision");
    return MIXL_OK;
}

/* A range request; key_len/end as bytes. */
static mixl_status_t range(struct mixl_registry *reg, const char *key, const char *end,
                           size_t end_len, int keys_only, const char *what,
                           mixl_registry_kv_t **kvs_p, size_t *count_p, int64_t *revision_p)
{
    json_t *body = json_object(), *resp = NULL;
    mixl_registry_kv_t *out = NULL;
    size_t n = 0;
    mixl_status_t status;

    if (body == NULL || json_object_set_new(body, "key", b64_json(key, strlen(key))) != 0 ||
        (end != NULL && json_object_set_new(body, "range_end", b64_json(end, end_len)) != 0) ||
        (keys_only && json_object_set_new(body, "keys_only", json_true()) != 0)) {
        json_decref(body);
        return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: %s: body", what);
    }
    status = etcd_post(reg->priv, "/v3/kv/range", body, op_deadline(reg), what, 0, &resp);
    json_decref(body);
    if (status != MIXL_OK) return status;
    if (json_object_get(resp, "kvs") != NULL && !json_is_array(json_object_get(resp, "kvs"))) {
        status = etcd_bad_answer(reg->priv, -1, what, "kvs is not an array");
        goto out;
    }
    status = etcd_range_decode(resp, keys_only, &out, &n);
    if (status == MIXL_ERR_NO_MEMORY) {
        status = mixl_reg_error(reg, 0, status, "registry etcd: %s: out of memory decoding the "
                                "answer", what);
        goto out;
    }
    if (status != MIXL_OK) {
        status = etcd_bad_answer(reg->priv, -1, what, "a pair without a key, or not in base64");
        goto out;
    }
    if (revision_p != NULL) *revision_p = etcd_json_i64(json_object_get(resp, "header"), "revision");
    *kvs_p = out;
    *count_p = n;
out:
    json_decref(resp);
    return status;
}

static mixl_status_t etcd_get(struct mixl_registry *reg, const char *key, mixl_registry_kv_t **kv_p)
{
    char what[512];
    mixl_registry_kv_t *kvs = NULL;
    size_t n = 0;
    mixl_status_t status;

    snprintf(what, sizeof(what), "get %s", key);
    status = range(reg, key, NULL, 0, 0, what, &kvs, &n, NULL);
    if (status != MIXL_OK) return status;
    if (n == 0) return mixl_reg_error(reg, 1, MIXL_ERR_NOT_FOUND, "registry etcd: key %s not found", key);
    if (n != 1 || strcmp(kvs[0].key, key) != 0) {
        char why[600];
        if (n != 1)
            snprintf(why, sizeof(why), "%zu pairs for one key", n);
        else
            snprintf(why, sizeof(why), "a pair for another key, %.500s", kvs[0].key);
        mixl_registry_kvs_free(kvs, n);
        return etcd_bad_answer(reg->priv, -1, what, why);
    }
    *kv_p = kvs;
    return MIXL_OK;
}

static mixl_status_t etcd_list(struct mixl_registry *reg, const char *prefix, unsigned flags,
                               mixl_registry_kv_t **kvs_p, size_t *count_p)
{
    char what[512];
    size_t end_len;
    char *end = etcd_prefix_end(prefix, &end_len);
    mixl_status_t status;

    if (end == NULL) return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: list %s", prefix);
    snprintf(what, sizeof(what), "list %s", prefix);
    status = range(reg, prefix, end, end_len, (flags & MIXL_REGISTRY_KEYS_ONLY) != 0, what, kvs_p,
                   count_p, NULL);
    free(end);
    return status;
}

static mixl_status_t etcd_del(struct mixl_registry *reg, const char *key)
{
    char what[512];
    json_t *body = json_object(), *resp = NULL;
    mixl_status_t status;

    snprintf(what, sizeof(what), "delete %s", key);
    if (body == NULL || json_object_set_new(body, "key", b64_json(key, strlen(key))) != 0) {
        json_decref(body);
        return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: %s: body", what);
    }
    status = etcd_post(reg->priv, "/v3/kv/deleterange", body, op_deadline(reg), what, 0, &resp);
    json_decref(body);
    if (status != MIXL_OK) return status;
    if (etcd_json_i64(resp, "deleted") == 0) {
        status = mixl_reg_error(reg, 1, MIXL_ERR_NOT_FOUND, "registry etcd: delete: key %s not found", key);
    }
    json_decref(resp);
    return status;
}

/* --- wait: range, then watch --------------------------------------------- */

static mixl_status_t etcd_wait(struct mixl_registry *reg, const char *key, int timeout_ms,
                               mixl_registry_kv_t **kv_p)
{
    uint64_t deadline = mixl_deadline_ns(timeout_ms);
    char what[512];
    mixl_status_t status;

    snprintf(what, sizeof(what), "wait %s", key);
    for (;;) {
        mixl_registry_kv_t *kvs = NULL;
        size_t n = 0;
        int64_t revision = 0;
        etcd_watch_t w = {.key = key};
        struct curl_slist *headers = NULL;
        json_t *body;
        char *text;
        CURL *h;
        int idx;
        uint64_t now;
        CURLcode rc;

        status = range(reg, key, NULL, 0, 0, what, &kvs, &n, &revision);
        if (status != MIXL_OK) return status;
        if (n > 0) {
            *kv_p = kvs;
            return MIXL_OK;
        }
        now = mixl_now_ns();
        if (now >= deadline) break;

        {
            char rev[32];
            snprintf(rev, sizeof(rev), "%lld", (long long)(revision + 1));
            /* Watch from the revision after our read: nothing published in between is missed. */
            body = json_pack("{s:{s:o, s:s}}", "create_request", "key", b64_json(key, strlen(key)),
                             "start_revision", rev);
        }
        text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        h = text ? etcd_stream_handle(reg->priv, "/v3/watch", &headers, &idx) : NULL;
        if (h == NULL) {
            free(text);
            return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: %s: watch", what);
        }
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)((deadline - now) / 1000000ull) + 1);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, etcd_watch_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
        rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        curl_slist_free_all(headers);
        free(text);
        free(w.line);
        if (w.kv != NULL) {
            *kv_p = w.kv;
            return MIXL_OK;
        }
        if (w.failed)
            return etcd_bad_answer(reg->priv, idx, what, "watch event not decodable, or a line "
                                   "over the answer limit");
        if (rc == CURLE_OPERATION_TIMEDOUT) break;
        /* The watch ended without the key: canceled (compaction), refused, or the connection
         * failed (then prefer another endpoint). Pause briefly, read again, watch again. */
        if (rc != CURLE_OK && !w.canceled) etcd_conn_failed(reg->priv, idx);
        if (mixl_now_ns() + 50 * 1000000ull >= deadline) break;
        {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return mixl_reg_error(reg, 1, MIXL_ERR_TIMED_OUT, "registry etcd: key %s did not appear within "
                          "%d ms", key, timeout_ms);
}

/* --- leases --------------------------------------------------------------- */

static mixl_status_t etcd_lease_grant(struct mixl_registry *reg, int ttl_s, int64_t *lease_p)
{
    json_t *body = json_pack("{s:i}", "TTL", ttl_s), *resp = NULL;
    mixl_status_t status;
    int64_t id;

    if (body == NULL) return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: lease grant");
    status = etcd_post(reg->priv, "/v3/lease/grant", body, op_deadline(reg), "lease grant", 0, &resp);
    json_decref(body);
    if (status != MIXL_OK) return status;
    id = etcd_json_i64(resp, "ID");
    json_decref(resp);
    if (id <= 0) return etcd_bad_answer(reg->priv, -1, "lease grant", "no lease ID");
    *lease_p = id;
    return MIXL_OK;
}

static mixl_status_t etcd_lease_keepalive(struct mixl_registry *reg, int64_t lease)
{
    json_t *body = json_object(), *resp = NULL;
    mixl_status_t status;
    int64_t ttl;

    if (body == NULL || json_object_set_new(body, "ID", lease_json(lease)) != 0) {
        json_decref(body);
        return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: keepalive");
    }
    status = etcd_post(reg->priv, "/v3/lease/keepalive", body, op_deadline(reg), "lease keepalive",
                       1, &resp);
    json_decref(body);
    if (status != MIXL_OK) return status;
    /* An expired or unknown lease answers 200 without a TTL. */
    ttl = etcd_json_i64(json_object_get(resp, "result"), "TTL");
    json_decref(resp);
    if (ttl <= 0) {
        return mixl_reg_error(reg, 1, MIXL_ERR_NOT_FOUND, "registry etcd: lease %llx expired or "
                              "revoked", (unsigned long long)lease);
    }
    return MIXL_OK;
}

static mixl_status_t etcd_lease_revoke(struct mixl_registry *reg, int64_t lease)
{
    json_t *body = json_object(), *resp = NULL;
    mixl_status_t status;

    if (body == NULL || json_object_set_new(body, "ID", lease_json(lease)) != 0) {
        json_decref(body);
        return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: revoke");
    }
    status = etcd_post(reg->priv, "/v3/lease/revoke", body, op_deadline(reg), "lease revoke", 1, &resp);
    json_decref(body);
    json_decref(resp);
    return status;
}

/* --- life cycle ------------------------------------------------------------ */

static mixl_status_t etcd_init(struct mixl_registry *reg)
{
    etcd_conn_t *c = reg->priv;
    json_t *body, *resp = NULL;
    mixl_status_t status;

    status = etcd_conn_init(c, reg);
    if (status != MIXL_OK) return status;
    /* Fail now, within the op timeout, rather than at the first publish. */
    body = json_object();
    if (body == NULL) {
        etcd_conn_fini(c);
        return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: init");
    }
    status = etcd_post(c, "/v3/maintenance/status", body, op_deadline(reg), "status check", 0, &resp);
    json_decref(body);
    if (status != MIXL_OK) {
        etcd_conn_fini(c);
        return status;
    }
    mixl_debug("registry etcd: connected to %s (etcd %s), namespace %s", c->endpoint[c->current],
               json_string_value(json_object_get(resp, "version")), reg->ns);
    json_decref(resp);
    return MIXL_OK;
}

static void etcd_fini(struct mixl_registry *reg)
{
    etcd_conn_fini(reg->priv);
}

const mixl_reg_ops_t mixl_reg_etcd_ops = {
    .size = sizeof(mixl_reg_ops_t),
    .name = "etcd",
    .priv_size = sizeof(etcd_conn_t),
    .init = etcd_init,
    .fini = etcd_fini,
    .put = etcd_put,
    .get = etcd_get,
    .list = etcd_list,
    .del = etcd_del,
    .wait = etcd_wait,
    .lease_grant = etcd_lease_grant,
    .lease_keepalive = etcd_lease_keepalive,
    .lease_revoke = etcd_lease_revoke,
};
