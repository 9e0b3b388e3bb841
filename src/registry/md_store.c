/*
 * The metadata store: publishes this process's agents' metadata under
 * "<namespace>/mixl_metadata/<agent>" bound to one lease, and serves peers'
 * metadata from a cache filled from the registry.
 *
 * A background thread, every refresh_ms: renews the lease; when the lease is
 * gone (server restarted without its data, keep-alives missed), grants a new
 * one and publishes everything again from the copies the store keeps; and
 * compares the cache with the registry (keys-only listing), dropping entries
 * whose key vanished or changed revision, so a re-published or expired peer
 * is never served stale.
 *
 * Locks: pub_lock serializes lease and publish traffic (held across
 * registry calls); cache_lock guards the cache and counters and is never
 * held across a registry call, so cached gets stay fast while the
 * background thread waits on a slow server.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mixl/metadata.h>
#include <mixl/registry.h>

#include "registry/reg_ops.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/params.h"
#include "util/log.h"

typedef struct {
    char *agent;
    void *blob;
    size_t len;
    int64_t mod_revision, version;
} md_entry_t;

typedef struct {
    md_entry_t *v;
    size_t count, cap;
} md_list_t;

struct mixl_md_store {
    mixl_registry_h reg;
    unsigned flags;
    int refresh_ms;
    char prefix[256]; /* "<ns>/mixl_metadata/" */

    pthread_mutex_t pub_lock;
    int64_t lease;        /* 0 until the first publish */
    md_list_t published;  /* what this store published, for re-publishing */
    int dirty;            /* a re-publish is incomplete: the background thread retries */
    int outage_logged;    /* the background thread warns once per outage */

    pthread_mutex_t cache_lock;
    md_list_t cache;
    uint64_t hits, misses, republished;

    pthread_mutex_t thread_lock;
    pthread_cond_t thread_cond;
    int stop;
    pthread_t thread;

    pthread_mutex_t eb_lock;
    mixl_errbuf_t eb;
};

static mixl_status_t store_error(struct mixl_md_store *s, int quiet, mixl_status_t status,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static mixl_status_t store_error(struct mixl_md_store *s, int quiet, mixl_status_t status,
                                 const char *fmt, ...)
{
    char msg[MIXL_ERRBUF_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->eb_lock);
    if (quiet) mixl_errbuf_set_quiet(&s->eb, status, "%s", msg);
    else mixl_errbuf_set(&s->eb, status, "%s", msg);
    pthread_mutex_unlock(&s->eb_lock);
    return status;
}

/* --- entry lists -------------------------------------------------------- */

static md_entry_t *list_find(md_list_t *l, const char *agent)
{
    for (size_t i = 0; i < l->count; i++) {
        if (strcmp(l->v[i].agent, agent) == 0) return &l->v[i];
    }
    return NULL;
}

static void list_remove(md_list_t *l, md_entry_t *e)
{
    free(e->agent);
    free(e->blob);
    *e = l->v[--l->count];
}

static void list_clear(md_list_t *l)
{
    while (l->count > 0) list_remove(l, &l->v[0]);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
}

/* Insert or replace agent's entry with a copy of blob. */
static mixl_status_t list_set(md_list_t *l, const char *agent, const void *blob, size_t len,
                              int64_t mod_revision, int64_t version)
{
    md_entry_t *e = list_find(l, agent);
    void *copy = malloc(len + 1);

    if (copy == NULL) return MIXL_ERR_NO_MEMORY;
    if (len > 0) memcpy(copy, blob, len);
    if (e == NULL) {
        if (l->count == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 8;
            md_entry_t *n = realloc(l->v, cap * sizeof(*n));
            if (n == NULL) goto err_copy;
            l->v = n;
            l->cap = cap;
        }
        e = &l->v[l->count];
        e->agent = strdup(agent);
        if (e->agent == NULL) goto err_copy;
        l->count++;
    } else {
        free(e->blob);
    }
    e->blob = copy;
    e->len = len;
    e->mod_revision = mod_revision;
    e->version = version;
    return MIXL_OK;

err_copy:
    free(copy);
    return MIXL_ERR_NO_MEMORY;
}

/* --- keys and validation ----------------------------------------------- */

static int agent_name_ok(const char *agent)
{
    size_t n;

    if (agent == NULL) return 0;
    n = strlen(agent);
    if (n == 0 || n >= MIXL_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)agent[i];
        if (c <= ' ' || c >= 0x7f || c == '/') return 0;
    }
    return 1;
}

mixl_status_t mixl_md_store_key(mixl_md_store_h s, const char *agent, char *buf, size_t len)
{
    if (!agent_name_ok(agent)) {
        return store_error(s, 0, MIXL_ERR_INVALID_PARAM,
                           "metadata store: agent name '%s' must be 1..%d printable characters "
                           "without '/' or spaces", agent ? agent : "(null)", MIXL_NAME_MAX - 1);
    }
    if ((size_t)snprintf(buf, len, "%s%s", s->prefix, agent) >= len) {
        return store_error(s, 0, MIXL_ERR_INVALID_PARAM, "metadata store: key buffer too small");
    }
    return MIXL_OK;
}

/*
 * A value under a MIXL key must be a metadata blob of the agent the key
 * names; anything else is refused with a message naming the key.
 */
static mixl_status_t validate(struct mixl_md_store *s, const char *key, const char *agent,
                              const void *blob, size_t len)
{
    mixl_metadata_t *md = NULL;
    mixl_status_t status;

    if (s->flags & MIXL_MD_STORE_RAW) return MIXL_OK;
    status = mixl_metadata_decode(blob, len, &md);
    if (status != MIXL_OK) {
        const char *why = mixl_last_error();
        return store_error(s, 0, status, "metadata under key %s (%zu bytes) does not decode: %s",
                           key, len, why[0] ? why : mixl_status_str(status));
    }
    if (strcmp(md->name, agent) != 0) {
        status = store_error(s, 0, MIXL_ERR_BAD_METADATA,
                             "metadata under key %s belongs to agent '%s', not '%s'", key, md->name,
                             agent);
    }
    mixl_metadata_free(md);
    return status;
}

/* --- publishing ----------------------------------------------------------- */

/*
 * With pub_lock held: put every published entry again, under a freshly
 * granted lease when regrant. Until all puts succeed the store stays dirty
 * and the background thread tries again.
 */
static mixl_status_t republish(struct mixl_md_store *s, int regrant)
{
    char key[512];
    int64_t lease;
    mixl_status_t status;

    s->dirty = 1;
    if (regrant) {
        status = mixl_registry_lease_grant(s->reg, s->reg->params.lease_ttl_s, &lease);
        if (status != MIXL_OK) return status;
        s->lease = lease;
    }
    for (size_t i = 0; i < s->published.count; i++) {
        md_entry_t *e = &s->published.v[i];
        snprintf(key, sizeof(key), "%s%s", s->prefix, e->agent);
        status = mixl_registry_put(s->reg, key, e->blob, e->len, s->lease, &e->mod_revision);
        if (status != MIXL_OK) return status;
    }
    s->dirty = 0;
    return MIXL_OK;
}

mixl_status_t mixl_md_store_publish(mixl_md_store_h s, const char *agent, const void *blob,
                                    size_t len)
{
    char key[512];
    int64_t rev = 0;
    mixl_status_t status;

    if (blob == NULL && len > 0) {
        return store_error(s, 0, MIXL_ERR_INVALID_PARAM, "metadata store: publish: NULL blob");
    }
    status = mixl_md_store_key(s, agent, key, sizeof(key));
    if (status != MIXL_OK) return status;
    status = validate(s, key, agent, blob, len);
    if (status != MIXL_OK) return status;

    pthread_mutex_lock(&s->pub_lock);
    if (s->lease == 0) {
        status = mixl_registry_lease_grant(s->reg, s->reg->params.lease_ttl_s, &s->lease);
        if (status != MIXL_OK) goto out;
    }
    status = mixl_registry_put(s->reg, key, blob, len, s->lease, &rev);
    if (status == MIXL_ERR_NOT_FOUND) {
        /* The lease went (expired or the server lost it): start over with a new one. */
        mixl_registry_clear_error(s->reg);
        status = republish(s, 1);
        if (status == MIXL_OK) status = mixl_registry_put(s->reg, key, blob, len, s->lease, &rev);
    }
    if (status != MIXL_OK) goto out;
    if (list_set(&s->published, agent, blob, len, rev, 0) != MIXL_OK) {
        status = store_error(s, 0, MIXL_ERR_NO_MEMORY, "metadata store: publish %s: out of memory",
                             key);
    }
out:
    pthread_mutex_unlock(&s->pub_lock);
    if (status != MIXL_OK && status != MIXL_ERR_NO_MEMORY) {
        store_error(s, 1, status, "metadata store: publish %s failed: %s", key,
                    mixl_registry_last_error(s->reg));
    }
    return status;
}

mixl_status_t mixl_md_store_unpublish(mixl_md_store_h s, const char *agent)
{
    char key[512];
    md_entry_t *e;
    mixl_status_t status;

    status = mixl_md_store_key(s, agent, key, sizeof(key));
    if (status != MIXL_OK) return status;
    pthread_mutex_lock(&s->pub_lock);
    e = list_find(&s->published, agent);
    if (e == NULL) {
        pthread_mutex_unlock(&s->pub_lock);
        return store_error(s, 0, MIXL_ERR_NOT_FOUND, "metadata store: unpublish: agent %s was not "
                           "published by this store", agent);
    }
    status = mixl_registry_delete(s->reg, key);
    /* Already gone (expired) is what unpublish wants. On any other failure the entry stays
     * remembered (and its lease alive), so the caller can try again. */
    if (status == MIXL_ERR_NOT_FOUND) {
        mixl_registry_clear_error(s->reg);
        status = MIXL_OK;
    }
    if (status == MIXL_OK) list_remove(&s->published, e);
    pthread_mutex_unlock(&s->pub_lock);
    return status;
}

/* --- lookups ------------------------------------------------------------- */

/*
 * MIXL_MD_STORE_VERIFY: before serving agent from the cache, compare its revision with the
 * registry's (a keys-only read: one round trip, no value) and drop it when it changed or went.
 */
static mixl_status_t verify_cached(struct mixl_md_store *s, const char *agent, const char *key)
{
    mixl_registry_kv_t *kvs = NULL;
    const mixl_registry_kv_t *kv = NULL;
    int64_t mod = 0, version = 0;
    size_t n = 0;
    md_entry_t *e;
    mixl_status_t status;

    pthread_mutex_lock(&s->cache_lock);
    e = list_find(&s->cache, agent);
    if (e != NULL) {
        mod = e->mod_revision;
        version = e->version;
    }
    pthread_mutex_unlock(&s->cache_lock);
    if (e == NULL) return MIXL_OK;

    status = mixl_registry_list(s->reg, key, MIXL_REGISTRY_KEYS_ONLY, &kvs, &n);
    if (status != MIXL_OK) {
        return store_error(s, 1, status, "metadata store: verifying cached %s failed: %s", key,
                           mixl_registry_last_error(s->reg));
    }
    for (size_t i = 0; i < n && kv == NULL; i++) {
        if (strcmp(kvs[i].key, key) == 0) kv = &kvs[i]; /* the prefix also matches longer names */
    }
    if (kv == NULL || kv->mod_revision != mod || kv->version != version) {
        pthread_mutex_lock(&s->cache_lock);
        e = list_find(&s->cache, agent);
        if (e != NULL && e->mod_revision == mod) list_remove(&s->cache, e);
        pthread_mutex_unlock(&s->cache_lock);
    }
    mixl_registry_kvs_free(kvs, n);
    return MIXL_OK;
}

mixl_status_t mixl_md_store_get(mixl_md_store_h s, const char *agent, int timeout_ms,
                                void **blob_p, size_t *len_p)
{
    char key[512];
    mixl_registry_kv_t *kv = NULL;
    md_entry_t *e;
    void *copy;
    mixl_status_t status;

    if (blob_p == NULL || len_p == NULL) {
        return store_error(s, 0, MIXL_ERR_INVALID_PARAM, "metadata store: get: NULL out-pointer");
    }
    status = mixl_md_store_key(s, agent, key, sizeof(key));
    if (status != MIXL_OK) return status;
    if (s->flags & MIXL_MD_STORE_VERIFY) {
        status = verify_cached(s, agent, key);
        if (status != MIXL_OK) return status;
    }

    pthread_mutex_lock(&s->cache_lock);
    e = list_find(&s->cache, agent);
    if (e != NULL) {
        copy = malloc(e->len + 1);
        if (copy != NULL) {
            memcpy(copy, e->blob, e->len);
            *blob_p = copy;
            *len_p = e->len;
            s->hits++;
        }
        pthread_mutex_unlock(&s->cache_lock);
        if (copy == NULL) {
            return store_error(s, 0, MIXL_ERR_NO_MEMORY, "metadata store: get %s: out of memory", key);
        }
        return MIXL_OK;
    }
    s->misses++;
    pthread_mutex_unlock(&s->cache_lock);

    status = mixl_registry_wait(s->reg, key, timeout_ms < 0 ? s->reg->params.op_timeout_ms : timeout_ms,
                                &kv);
    if (status == MIXL_ERR_TIMED_OUT) {
        mixl_registry_clear_error(s->reg);
        return store_error(s, 0, MIXL_ERR_NOT_FOUND, "metadata not found for agent %s in namespace %s "
                           "(key %s, waited %d ms)", agent, s->reg->ns, key,
                           timeout_ms < 0 ? s->reg->params.op_timeout_ms : timeout_ms);
    }
    if (status != MIXL_OK) {
        return store_error(s, 1, status, "metadata store: get %s failed: %s", key,
                           mixl_registry_last_error(s->reg));
    }
    status = validate(s, key, agent, kv->value, kv->len);
    if (status != MIXL_OK) goto out;

    copy = malloc(kv->len + 1);
    if (copy == NULL) {
        status = store_error(s, 0, MIXL_ERR_NO_MEMORY, "metadata store: get %s: out of memory", key);
        goto out;
    }
    memcpy(copy, kv->value, kv->len);
    pthread_mutex_lock(&s->cache_lock);
    e = list_find(&s->cache, agent);
    /* A concurrent get may have cached a newer revision meanwhile: keep the newer. */
    if (e == NULL || e->mod_revision < kv->mod_revision) {
        list_set(&s->cache, agent, kv->value, kv->len, kv->mod_revision, kv->version);
    }
    pthread_mutex_unlock(&s->cache_lock);
    *blob_p = copy;
    *len_p = kv->len;
out:
    mixl_registry_kv_free(kv);
    return status;
}

void mixl_md_store_invalidate(mixl_md_store_h s, const char *agent)
{
    md_entry_t *e;

    pthread_mutex_lock(&s->cache_lock);
    e = agent ? list_find(&s->cache, agent) : NULL;
    if (e != NULL) list_remove(&s->cache, e);
    pthread_mutex_unlock(&s->cache_lock);
}

static const mixl_registry_kv_t *kvs_find(const mixl_registry_kv_t *kvs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i].key, key) == 0) return &kvs[i];
    }
    return NULL;
}

mixl_status_t mixl_md_store_refresh(mixl_md_store_h s)
{
    mixl_registry_kv_t *kvs = NULL;
    size_t n = 0;
    char key[512];
    mixl_status_t status;

    pthread_mutex_lock(&s->cache_lock);
    n = s->cache.count;
    pthread_mutex_unlock(&s->cache_lock);
    if (n == 0) return MIXL_OK;

    status = mixl_registry_list(s->reg, s->prefix, MIXL_REGISTRY_KEYS_ONLY, &kvs, &n);
    if (status != MIXL_OK) return status;
    pthread_mutex_lock(&s->cache_lock);
    for (size_t i = s->cache.count; i-- > 0;) {
        md_entry_t *e = &s->cache.v[i];
        const mixl_registry_kv_t *kv;
        snprintf(key, sizeof(key), "%s%s", s->prefix, e->agent);
        kv = kvs_find(kvs, n, key);
        if (kv == NULL || kv->mod_revision != e->mod_revision || kv->version != e->version) {
            mixl_debug("metadata store: dropping cached %s (%s)", key,
                       kv == NULL ? "gone" : "re-published");
            list_remove(&s->cache, e);
        }
    }
    pthread_mutex_unlock(&s->cache_lock);
    mixl_registry_kvs_free(kvs, n);
    return MIXL_OK;
}

mixl_status_t mixl_md_store_list(mixl_md_store_h s, char ***names_p, size_t *count_p)
{
    mixl_registry_kv_t *kvs = NULL;
    size_t n = 0, plen = strlen(s->prefix), out = 0;
    char **names = NULL;
    mixl_status_t status;

    if (names_p == NULL || count_p == NULL) {
        return store_error(s, 0, MIXL_ERR_INVALID_PARAM, "metadata store: list: NULL out-pointer");
    }
    status = mixl_registry_list(s->reg, s->prefix, MIXL_REGISTRY_KEYS_ONLY, &kvs, &n);
    if (status != MIXL_OK) return status;
    if (n > 0) {
        names = calloc(n, sizeof(*names));
        if (names == NULL) {
            status = store_error(s, 0, MIXL_ERR_NO_MEMORY, "metadata store: list: out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *agent = kvs[i].key + plen;
        if (!agent_name_ok(agent)) continue; /* deeper keys under the directory are not agents */
        names[out] = strdup(agent);
        if (names[out] == NULL) {
            mixl_md_store_names_free(names, out);
            status = store_error(s, 0, MIXL_ERR_NO_MEMORY, "metadata store: list: out of memory");
            goto out;
        }
        out++;
    }
    *names_p = names;
    *count_p = out;
out:
    mixl_registry_kvs_free(kvs, n);
    return status;
}

void mixl_md_store_names_free(char **names, size_t count)
{
    if (names == NULL) return;
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

void mixl_md_store_stats(mixl_md_store_h s, uint64_t *hits_p, uint64_t *misses_p,
                         uint64_t *republished_p)
{
    pthread_mutex_lock(&s->cache_lock);
    if (hits_p) *hits_p = s->hits;
    if (misses_p) *misses_p = s->misses;
    if (republished_p) *republished_p = s->republished;
    pthread_mutex_unlock(&s->cache_lock);
}

/* As mixl_registry_last_error(): a per-thread copy taken under the lock,
 * since the refresh thread records errors on the same buffer. */
const char *mixl_md_store_last_error(mixl_md_store_h s)
{
    static _Thread_local char copy[MIXL_ERRBUF_LEN];

    pthread_mutex_lock(&s->eb_lock);
    snprintf(copy, sizeof(copy), "%s", mixl_errbuf_get(&s->eb));
    pthread_mutex_unlock(&s->eb_lock);
    return copy;
}

/* --- background thread --------------------------------------------------- */

/*
 * Renew the lease; after a lost lease (or an incomplete re-publish), grant
 * a new one and publish everything again.
 */
static void keep_alive(struct mixl_md_store *s)
{
    mixl_status_t status = MIXL_OK;
    int regrant = 0;

    pthread_mutex_lock(&s->pub_lock);
    if (s->lease == 0) goto out;
    /* The handle keeps the first error; start clean so a warning below names this failure. */
    mixl_registry_clear_error(s->reg);
    status = mixl_registry_lease_keepalive(s->reg, s->lease);
    if (status == MIXL_ERR_NOT_FOUND) regrant = 1;
    if (regrant || (status == MIXL_OK && s->dirty)) {
        mixl_registry_clear_error(s->reg);
        status = republish(s, regrant);
        if (status == MIXL_ERR_NOT_FOUND) status = republish(s, 1); /* lease lost meanwhile */
        if (status == MIXL_OK) {
            mixl_info("metadata store %s: lease was lost; re-published %zu entr%s under lease %llx",
                      s->prefix, s->published.count, s->published.count == 1 ? "y" : "ies",
                      (unsigned long long)s->lease);
            pthread_mutex_lock(&s->cache_lock);
            s->republished++;
            pthread_mutex_unlock(&s->cache_lock);
        }
    }
    if (status == MIXL_OK) {
        if (s->outage_logged) mixl_warn("metadata store %s: registry reachable again", s->prefix);
        s->outage_logged = 0;
    } else {
        if (!s->outage_logged) {
            /* The handle keeps its first error, which may come from another thread's call. */
            mixl_warn("metadata store %s: keeping lease %llx alive failed: %s (first error on the "
                      "registry handle: %s); retrying every %d ms",
                      s->prefix, (unsigned long long)s->lease, mixl_status_str(status),
                      mixl_registry_last_error(s->reg), s->refresh_ms);
        }
        s->outage_logged = 1;
        mixl_registry_clear_error(s->reg);
    }
out:
    pthread_mutex_unlock(&s->pub_lock);
}

static void *store_thread(void *arg)
{
    struct mixl_md_store *s = arg;

    pthread_mutex_lock(&s->thread_lock);
    while (!s->stop) {
        uint64_t wake = mixl_deadline_ns(s->refresh_ms);
        struct timespec ts = {.tv_sec = (time_t)(wake / 1000000000ull),
                              .tv_nsec = (long)(wake % 1000000000ull)};
        while (!s->stop && mixl_now_ns() < wake) {
            pthread_cond_timedwait(&s->thread_cond, &s->thread_lock, &ts);
        }
        if (s->stop) break;
        pthread_mutex_unlock(&s->thread_lock);
        keep_alive(s);
        if (mixl_md_store_refresh(s) != MIXL_OK) mixl_registry_clear_error(s->reg);
        pthread_mutex_lock(&s->thread_lock);
    }
    pthread_mutex_unlock(&s->thread_lock);
    return NULL;
}

/* --- life cycle ---------------------------------------------------------- */

mixl_status_t mixl_md_store_create(const mixl_md_store_params_t *params, mixl_md_store_h *store_p)
{
    struct mixl_md_store *s;
    pthread_condattr_t attr;
    mixl_errbuf_t eb = {0};

    if (params == NULL || store_p == NULL || params->reg == NULL) {
        return mixl_errbuf_set(&eb, MIXL_ERR_INVALID_PARAM,
                               "metadata store: params, registry or out-pointer is NULL");
    }
    mixl_md_store_params_t in;
    if (mixl_params_load(params, sizeof(mixl_md_store_params_t), sizeof(in), &in, NULL) != MIXL_OK) {
        return mixl_errbuf_set(&eb, MIXL_ERR_VERSION, "metadata store: params.size %zu unknown "
                               "(this library: %zu)", params->size, sizeof(mixl_md_store_params_t));
    }
    params = &in;
    s = calloc(1, sizeof(*s));
    if (s == NULL) return mixl_errbuf_set(&eb, MIXL_ERR_NO_MEMORY, "metadata store: allocation failed");
    s->reg = params->reg;
    s->flags = params->flags;
    s->refresh_ms = params->refresh_ms > 0 ? params->refresh_ms
                                           : s->reg->params.lease_ttl_s * 1000 / 4;
    if (s->refresh_ms < 100) s->refresh_ms = 100;
    snprintf(s->prefix, sizeof(s->prefix), "%s/%s/", s->reg->ns, MIXL_REGISTRY_MD_DIR);
    pthread_mutex_init(&s->pub_lock, NULL);
    pthread_mutex_init(&s->cache_lock, NULL);
    pthread_mutex_init(&s->thread_lock, NULL);
    pthread_mutex_init(&s->eb_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->thread_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&s->thread, NULL, store_thread, s) != 0) {
        mixl_errbuf_set(&eb, MIXL_ERR_NO_RESOURCE, "metadata store %s: cannot start its thread",
                        s->prefix);
        goto err_sync;
    }
    *store_p = s;
    return MIXL_OK;

err_sync:
    pthread_cond_destroy(&s->thread_cond);
    pthread_mutex_destroy(&s->eb_lock);
    pthread_mutex_destroy(&s->thread_lock);
    pthread_mutex_destroy(&s->cache_lock);
    pthread_mutex_destroy(&s->pub_lock);
    free(s);
    return MIXL_ERR_NO_RESOURCE;
}

void mixl_md_store_destroy(mixl_md_store_h s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->thread_lock);
    s->stop = 1;
    pthread_cond_signal(&s->thread_cond);
    pthread_mutex_unlock(&s->thread_lock);
    pthread_join(s->thread, NULL);

    if (s->lease != 0 && mixl_registry_lease_revoke(s->reg, s->lease) != MIXL_OK) {
        mixl_registry_clear_error(s->reg); /* an unreachable server expires the lease itself */
    }
    list_clear(&s->published);
    list_clear(&s->cache);
    pthread_cond_destroy(&s->thread_cond);
    pthread_mutex_destroy(&s->eb_lock);
    pthread_mutex_destroy(&s->thread_lock);
    pthread_mutex_destroy(&s->cache_lock);
    pthread_mutex_destroy(&s->pub_lock);
    free(s);
}
