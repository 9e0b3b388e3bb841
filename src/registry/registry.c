/*
 * Registry front end: backend registration and lookup, parameter defaults
 * and validation, argument checks, and the pair helpers backends share.
 */
#include "registry/reg_ops.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/params.h"

/* Backends known to this build, registered explicitly (no constructors). */
static const mixl_reg_ops_t *const reg_backends[] = {
    &mixl_reg_mpi_ops,
    &mixl_reg_etcd_ops,
    &mixl_reg_local_ops,
};

mixl_status_t mixl_reg_check_ops(const mixl_reg_ops_t *ops, mixl_errbuf_t *eb)
{
    const char *hole = NULL;

    if (ops->size != sizeof(mixl_reg_ops_t)) hole = "size";
    else if (ops->name == NULL) hole = "name";
    else if (ops->init == NULL) hole = "init";
    else if (ops->fini == NULL) hole = "fini";
    else if (ops->put == NULL) hole = "put";
    else if (ops->get == NULL) hole = "get";
    else if (ops->list == NULL) hole = "list";
    else if (ops->del == NULL) hole = "del";
    else if (ops->wait == NULL) hole = "wait";
    else if (ops->lease_grant == NULL) hole = "lease_grant";
    else if (ops->lease_keepalive == NULL) hole = "lease_keepalive";
    else if (ops->lease_revoke == NULL) hole = "lease_revoke";
    if (hole != NULL) {
        return mixl_errbuf_set(eb, MIXL_ERR_INVALID_PARAM, "registry backend %s: ops table lacks %s",
                               ops->name ? ops->name : "(unnamed)", hole);
    }
    return MIXL_OK;
}

const mixl_reg_ops_t *mixl_reg_find(const char *name)
{
    for (size_t i = 0; i < sizeof(reg_backends) / sizeof(reg_backends[0]); i++) {
        if (strcmp(reg_backends[i]->name, name) == 0) return reg_backends[i];
    }
    return NULL;
}

void mixl_registry_params_init(mixl_registry_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
    p->backend = "mpi";
    p->ns = "mixl";
    p->lease_ttl_s = 10;
    p->op_timeout_ms = 5000;
    p->max_value_bytes = 1u << 20;
    p->comm = MPI_COMM_WORLD;
    p->server_rank = 0;
    p->endpoints = "http://127.0.0.1:2379";
    p->retries = 2;
    p->backoff_ms = 50;
}

mixl_status_t mixl_reg_error(struct mixl_registry *reg, int quiet, mixl_status_t status,
                             const char *fmt, ...)
{
    char msg[MIXL_ERRBUF_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&reg->eb_lock);
    if (quiet) mixl_errbuf_set_quiet(&reg->eb, status, "%s", msg);
    else mixl_errbuf_set(&reg->eb, status, "%s", msg);
    pthread_mutex_unlock(&reg->eb_lock);
    return status;
}

static char *dup_opt(const char *s, int *failed)
{
    char *d;

    if (s == NULL) return NULL;
    d = strdup(s);
    if (d == NULL) *failed = 1;
    return d;
}

static void reg_free_strings(struct mixl_registry *reg)
{
    free(reg->ns);
    free(reg->endpoints);
    free(reg->user);
    free(reg->password);
    free(reg->tls_ca);
    free(reg->tls_cert);
    free(reg->tls_key);
}

/* A namespace is a key component: non-empty, no '/' at either end, printable. */
static int ns_valid(const char *ns)
{
    size_t n = strlen(ns);

    if (n == 0 || n > 200 || ns[0] == '/' || ns[n - 1] == '/') return 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)ns[i] <= ' ' || (unsigned char)ns[i] >= 0x7f) return 0;
    }
    return 1;
}

mixl_status_t mixl_registry_create(const mixl_registry_params_t *params, mixl_registry_h *reg_p)
{
    mixl_registry_params_t p;
    struct mixl_registry *reg;
    const mixl_reg_ops_t *ops;
    mixl_errbuf_t eb = {0};
    mixl_status_t status;
    int failed = 0;

    if (params == NULL || reg_p == NULL) {
        return mixl_errbuf_set(&eb, MIXL_ERR_INVALID_PARAM, "registry: params or out-pointer is NULL");
    }
    mixl_registry_params_init(&p);
    {
        /* Fields beyond the caller's size read as zero, which means default. */
        mixl_registry_params_t in;
        if (mixl_params_load(params, offsetof(mixl_registry_params_t, comm), sizeof(in), &in, NULL) !=
            MIXL_OK)
            return mixl_errbuf_set(&eb, MIXL_ERR_VERSION,
                                   "registry: params.size %zu outside %zu..%zu; "
                                   "call mixl_registry_params_init()", params->size,
                                   offsetof(mixl_registry_params_t, comm), sizeof(p));
        if (in.backend != NULL) p.backend = in.backend;
        if (in.ns != NULL) p.ns = in.ns;
        if (in.lease_ttl_s != 0) p.lease_ttl_s = in.lease_ttl_s;
        if (in.op_timeout_ms != 0) p.op_timeout_ms = in.op_timeout_ms;
        if (in.max_value_bytes != 0) p.max_value_bytes = in.max_value_bytes;
        if (in.comm != MPI_COMM_NULL && in.comm != (MPI_Comm)0) p.comm = in.comm;
        p.server_rank = in.server_rank;
        if (in.endpoints != NULL) p.endpoints = in.endpoints;
        p.user = in.user;
        p.password = in.password;
        p.tls_ca = in.tls_ca;
        p.tls_cert = in.tls_cert;
        p.tls_key = in.tls_key;
        if (in.retries != 0) p.retries = in.retries < 0 ? 0 : in.retries;
        if (in.backoff_ms != 0) p.backoff_ms = in.backoff_ms < 0 ? 0 : in.backoff_ms;
    }

    ops = mixl_reg_find(p.backend);
    if (ops == NULL) {
        return mixl_errbuf_set(&eb, MIXL_ERR_CONFIG,
                               "registry: unknown backend '%s' (expected mpi, etcd or local)",
                               p.backend);
    }
    status = mixl_reg_check_ops(ops, &eb);
    if (status != MIXL_OK) return status;
    if (!ns_valid(p.ns)) {
        return mixl_errbuf_set(&eb, MIXL_ERR_CONFIG,
                               "registry: namespace '%s' must be non-empty, printable, without "
                               "spaces and without a leading or trailing '/'", p.ns);
    }
    if (p.lease_ttl_s < 2 || p.op_timeout_ms < 1 || p.server_rank < 0) {
        return mixl_errbuf_set(&eb, MIXL_ERR_CONFIG,
                               "registry: lease_ttl_s %d (min 2), op_timeout_ms %d (min 1), "
                               "server_rank %d (min 0) out of range",
                               p.lease_ttl_s, p.op_timeout_ms, p.server_rank);
    }
    if ((p.user == NULL) != (p.password == NULL)) {
        return mixl_errbuf_set(&eb, MIXL_ERR_CONFIG, "registry: user and password go together");
    }

    reg = calloc(1, sizeof(*reg));
    if (reg == NULL) {
        return mixl_errbuf_set(&eb, MIXL_ERR_NO_MEMORY, "registry: handle allocation failed");
    }
    reg->ops = ops;
    reg->ns = dup_opt(p.ns, &failed);
    reg->endpoints = dup_opt(p.endpoints, &failed);
    reg->user = dup_opt(p.user, &failed);
    reg->password = dup_opt(p.password, &failed);
    reg->tls_ca = dup_opt(p.tls_ca, &failed);
    reg->tls_cert = dup_opt(p.tls_cert, &failed);
    reg->tls_key = dup_opt(p.tls_key, &failed);
    if (failed) {
        status = mixl_errbuf_set(&eb, MIXL_ERR_NO_MEMORY, "registry: copying parameters failed");
        goto err_strings;
    }
    p.backend = ops->name;
    p.ns = reg->ns;
    p.endpoints = reg->endpoints;
    p.user = reg->user;
    p.password = reg->password;
    p.tls_ca = reg->tls_ca;
    p.tls_cert = reg->tls_cert;
    p.tls_key = reg->tls_key;
    reg->params = p;
    pthread_mutex_init(&reg->eb_lock, NULL);
    if (ops->priv_size > 0) {
        reg->priv = calloc(1, ops->priv_size);
        if (reg->priv == NULL) {
            status = mixl_errbuf_set(&eb, MIXL_ERR_NO_MEMORY, "registry %s: state allocation failed",
                                     ops->name);
            goto err_lock;
        }
    }
    status = ops->init(reg);
    if (status != MIXL_OK) goto err_priv;
    *reg_p = reg;
    return MIXL_OK;

err_priv:
    free(reg->priv);
err_lock:
    pthread_mutex_destroy(&reg->eb_lock);
err_strings:
    reg_free_strings(reg);
    free(reg);
    return status;
}

void mixl_registry_destroy(mixl_registry_h reg)
{
    if (reg == NULL) return;
    reg->ops->fini(reg);
    free(reg->priv);
    pthread_mutex_destroy(&reg->eb_lock);
    reg_free_strings(reg);
    free(reg);
}

const char *mixl_registry_backend(mixl_registry_h reg)
{
    return reg->ops->name;
}

const char *mixl_registry_namespace(mixl_registry_h reg)
{
    return reg->ns;
}

/* The handle's buffer changes under other threads (the store's refresh
 * thread records and clears errors): copy it under the lock into a buffer of
 * the calling thread, which stays valid until that thread calls again. */
const char *mixl_registry_last_error(mixl_registry_h reg)
{
    static _Thread_local char copy[MIXL_ERRBUF_LEN];

    pthread_mutex_lock(&reg->eb_lock);
    snprintf(copy, sizeof(copy), "%s", mixl_errbuf_get(&reg->eb));
    pthread_mutex_unlock(&reg->eb_lock);
    return copy;
}

void mixl_registry_clear_error(mixl_registry_h reg)
{
    pthread_mutex_lock(&reg->eb_lock);
    mixl_errbuf_clear(&reg->eb);
    pthread_mutex_unlock(&reg->eb_lock);
}

static int key_bad(const char *key)
{
    return key == NULL || key[0] == '\0';
}

mixl_status_t mixl_registry_put(mixl_registry_h reg, const char *key, const void *value,
                                size_t len, int64_t lease, int64_t *rev_p)
{
    int64_t rev = 0;
    mixl_status_t status;

    if (key_bad(key) || (value == NULL && len > 0) || lease < 0) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: put: empty key, "
                              "NULL value or negative lease", reg->ops->name);
    }
    if (len > reg->params.max_value_bytes) {
        return mixl_reg_error(reg, 0, MIXL_ERR_TOO_LARGE,
                              "registry %s: put %s: value of %zu bytes exceeds max_value_bytes %zu",
                              reg->ops->name, key, len, reg->params.max_value_bytes);
    }
    status = reg->ops->put(reg, key, value, len, lease, &rev);
    if (status == MIXL_OK && rev_p != NULL) *rev_p = rev;
    return status;
}

mixl_status_t mixl_registry_get(mixl_registry_h reg, const char *key, mixl_registry_kv_t **kv_p)
{
    if (key_bad(key) || kv_p == NULL) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: get: empty key or "
                              "NULL out-pointer", reg->ops->name);
    }
    return reg->ops->get(reg, key, kv_p);
}

mixl_status_t mixl_registry_list(mixl_registry_h reg, const char *prefix, unsigned flags,
                                 mixl_registry_kv_t **kvs_p, size_t *count_p)
{
    if (key_bad(prefix) || kvs_p == NULL || count_p == NULL) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: list: empty prefix "
                              "or NULL out-pointer", reg->ops->name);
    }
    return reg->ops->list(reg, prefix, flags, kvs_p, count_p);
}

mixl_status_t mixl_registry_delete(mixl_registry_h reg, const char *key)
{
    if (key_bad(key)) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: delete: empty key",
                              reg->ops->name);
    }
    return reg->ops->del(reg, key);
}

mixl_status_t mixl_registry_wait(mixl_registry_h reg, const char *key, int timeout_ms,
                                 mixl_registry_kv_t **kv_p)
{
    if (key_bad(key) || kv_p == NULL) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: wait: empty key or "
                              "NULL out-pointer", reg->ops->name);
    }
    if (timeout_ms < 0) timeout_ms = reg->params.op_timeout_ms;
    return reg->ops->wait(reg, key, timeout_ms, kv_p);
}

mixl_status_t mixl_registry_lease_grant(mixl_registry_h reg, int ttl_s, int64_t *lease_p)
{
    int64_t lease = 0;
    mixl_status_t status;

    if (ttl_s < 1 || lease_p == NULL) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: lease grant: ttl %d "
                              "(min 1) or NULL out-pointer", reg->ops->name, ttl_s);
    }
    status = reg->ops->lease_grant(reg, ttl_s, &lease);
    if (status == MIXL_OK) *lease_p = lease;
    return status;
}

mixl_status_t mixl_registry_lease_keepalive(mixl_registry_h reg, int64_t lease)
{
    if (lease <= 0) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: keepalive: lease %lld",
                              reg->ops->name, (long long)lease);
    }
    return reg->ops->lease_keepalive(reg, lease);
}

mixl_status_t mixl_registry_lease_revoke(mixl_registry_h reg, int64_t lease)
{
    if (lease <= 0) {
        return mixl_reg_error(reg, 0, MIXL_ERR_INVALID_PARAM, "registry %s: revoke: lease %lld",
                              reg->ops->name, (long long)lease);
    }
    return reg->ops->lease_revoke(reg, lease);
}

void mixl_registry_kvs_free(mixl_registry_kv_t *kvs, size_t count)
{
    if (kvs == NULL) return;
    for (size_t i = 0; i < count; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

void mixl_registry_kv_free(mixl_registry_kv_t *kv)
{
    mixl_registry_kvs_free(kv, 1);
}

mixl_status_t mixl_reg_kv_fill(mixl_registry_kv_t *kv, const char *key, size_t key_len,
                               const void *value, size_t len)
{
    kv->key = malloc(key_len + 1);
    if (kv->key == NULL) return MIXL_ERR_NO_MEMORY;
    memcpy(kv->key, key, key_len);
    kv->key[key_len] = '\0';
    kv->value = NULL;
    kv->len = len;
    if (value != NULL) {
        /* One spare byte so an empty value still gets a non-NULL pointer. */
        kv->value = malloc(len + 1);
        if (kv->value == NULL) {
            free(kv->key);
            kv->key = NULL;
            return MIXL_ERR_NO_MEMORY;
        }
        memcpy(kv->value, value, len);
    }
    return MIXL_OK;
}

mixl_registry_kv_t *mixl_reg_kv_new(const char *key, size_t key_len, const void *value, size_t len)
{
    mixl_registry_kv_t *kv = calloc(1, sizeof(*kv));

    if (kv == NULL) return NULL;
    if (mixl_reg_kv_fill(kv, key, key_len, value, len) != MIXL_OK) {
        free(kv);
        return NULL;
    }
    return kv;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const mixl_registry_kv_t *)a)->key, ((const mixl_registry_kv_t *)b)->key);
}

void mixl_reg_kvs_sort(mixl_registry_kv_t *kvs, size_t count)
{
    if (count > 1) qsort(kvs, count, sizeof(*kvs), kv_cmp);
}
