/*
 * In-memory key-value database with revisions and leases (see kvdb.h).
 * Keys live in an array kept sorted by key so gets are binary searches and
 * prefix listings are one contiguous run; registries hold at most a few
 * thousand agents, so the O(n) insert is cheaper than a tree.
 */
#include "registry/kvdb.h"

#include <stdlib.h>
#include <string.h>

#include "registry/reg_ops.h"

typedef struct {
    char *key;
    void *value;
    size_t len;
    int64_t create_revision, mod_revision, version, lease;
} kvdb_entry_t;

typedef struct {
    int64_t id;
    int ttl_s;
    uint64_t deadline_ns;
} kvdb_lease_t;

struct mixl_kvdb {
    kvdb_entry_t *entries;
    size_t count, cap;
    kvdb_lease_t *leases;
    size_t lease_count, lease_cap;
    int64_t revision;
    int64_t next_lease;
};

mixl_kvdb_t *mixl_kvdb_new(void)
{
    mixl_kvdb_t *db = calloc(1, sizeof(*db));

    if (db != NULL) db->next_lease = 0x4d49584c00000001ll; /* "MIXL": ids look like etcd's */
    return db;
}

static void entry_free(kvdb_entry_t *e)
{
    free(e->key);
    free(e->value);
}

void mixl_kvdb_free(mixl_kvdb_t *db)
{
    if (db == NULL) return;
    for (size_t i = 0; i < db->count; i++) entry_free(&db->entries[i]);
    free(db->entries);
    free(db->leases);
    free(db);
}

int64_t mixl_kvdb_revision(const mixl_kvdb_t *db)
{
    return db->revision;
}

/* Index of key, or of where it would go (*found = 0). */
static size_t find(const mixl_kvdb_t *db, const char *key, int *found)
{
    size_t lo = 0, hi = db->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(db->entries[mid].key, key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = 0;
    return lo;
}

static kvdb_lease_t *lease_find(mixl_kvdb_t *db, int64_t id)
{
    for (size_t i = 0; i < db->lease_count; i++) {
        if (db->leases[i].id == id) return &db->leases[i];
    }
    return NULL;
}

static void remove_at(mixl_kvdb_t *db, size_t i)
{
    entry_free(&db->entries[i]);
    memmove(&db->entries[i], &db->entries[i + 1], (db->count - i - 1) * sizeof(db->entries[0]));
    db->count--;
}

/* Delete every key bound to lease and the lease itself. */
static size_t lease_drop(mixl_kvdb_t *db, size_t li)
{
    int64_t id = db->leases[li].id;
    size_t dropped = 0;

    for (size_t i = db->count; i-- > 0;) {
        if (db->entries[i].lease == id) {
            remove_at(db, i);
            dropped++;
        }
    }
    db->leases[li] = db->leases[db->lease_count - 1];
    db->lease_count--;
    db->revision++;
    return dropped;
}

size_t mixl_kvdb_expire(mixl_kvdb_t *db, uint64_t now_ns)
{
    size_t dropped = 0;

    for (size_t i = db->lease_count; i-- > 0;) {
        if (db->leases[i].deadline_ns <= now_ns) dropped += lease_drop(db, i);
    }
    return dropped;
}

mixl_status_t mixl_kvdb_put(mixl_kvdb_t *db, const char *key, const void *value, size_t len,
                            int64_t lease, int64_t *rev_p)
{
    kvdb_entry_t *e;
    void *copy;
    int found;
    size_t i;

    if (lease != 0 && lease_find(db, lease) == NULL) return MIXL_ERR_NOT_FOUND;
    copy = malloc(len + 1);
    if (copy == NULL) return MIXL_ERR_NO_MEMORY;
    if (len > 0) memcpy(copy, value, len);
    i = find(db, key, &found);
    if (!found) {
        char *kcopy = strdup(key);
        if (kcopy == NULL) goto err_copy;
        if (db->count == db->cap) {
            size_t cap = db->cap ? db->cap * 2 : 16;
            kvdb_entry_t *n = realloc(db->entries, cap * sizeof(*n));
            if (n == NULL) {
                free(kcopy);
                goto err_copy;
            }
            db->entries = n;
            db->cap = cap;
        }
        memmove(&db->entries[i + 1], &db->entries[i], (db->count - i) * sizeof(db->entries[0]));
        db->count++;
        e = &db->entries[i];
        memset(e, 0, sizeof(*e));
        e->key = kcopy;
        e->create_revision = db->revision + 1;
    } else {
        e = &db->entries[i];
        free(e->value);
    }
    db->revision++;
    e->value = copy;
    e->len = len;
    e->mod_revision = db->revision;
    e->version++;
    e->lease = lease;
    if (rev_p != NULL) *rev_p = db->revision;
    return MIXL_OK;

err_copy:
    free(copy);
    return MIXL_ERR_NO_MEMORY;
}

static mixl_status_t fill(mixl_registry_kv_t *kv, const kvdb_entry_t *e, int keys_only)
{
    mixl_status_t status = mixl_reg_kv_fill(kv, e->key, strlen(e->key),
                                            keys_only ? NULL : e->value, e->len);
    if (status != MIXL_OK) return status;
    kv->create_revision = e->create_revision;
    kv->mod_revision = e->mod_revision;
    kv->version = e->version;
    kv->lease = e->lease;
    return MIXL_OK;
}

mixl_status_t mixl_kvdb_get(const mixl_kvdb_t *db, const char *key, mixl_registry_kv_t **kv_p)
{
    mixl_registry_kv_t *kv;
    int found;
    size_t i = find(db, key, &found);

    if (!found) return MIXL_ERR_NOT_FOUND;
    kv = calloc(1, sizeof(*kv));
    if (kv == NULL) return MIXL_ERR_NO_MEMORY;
    if (fill(kv, &db->entries[i], 0) != MIXL_OK) {
        free(kv);
        return MIXL_ERR_NO_MEMORY;
    }
    *kv_p = kv;
    return MIXL_OK;
}

mixl_status_t mixl_kvdb_list(const mixl_kvdb_t *db, const char *prefix, unsigned flags,
                             mixl_registry_kv_t **kvs_p, size_t *count_p)
{
    size_t plen = strlen(prefix), n = 0, first;
    mixl_registry_kv_t *kvs;
    int found;

    first = find(db, prefix, &found);
    while (first + n < db->count && strncmp(db->entries[first + n].key, prefix, plen) == 0) n++;
    if (n == 0) {
        *kvs_p = NULL;
        *count_p = 0;
        return MIXL_OK;
    }
    kvs = calloc(n, sizeof(*kvs));
    if (kvs == NULL) return MIXL_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i++) {
        if (fill(&kvs[i], &db->entries[first + i], (flags & MIXL_REGISTRY_KEYS_ONLY) != 0) != MIXL_OK) {
            mixl_registry_kvs_free(kvs, i);
            return MIXL_ERR_NO_MEMORY;
        }
    }
    *kvs_p = kvs;
    *count_p = n;
    return MIXL_OK;
}

mixl_status_t mixl_kvdb_del(mixl_kvdb_t *db, const char *key)
{
    int found;
    size_t i = find(db, key, &found);

    if (!found) return MIXL_ERR_NOT_FOUND;
    remove_at(db, i);
    db->revision++;
    return MIXL_OK;
}

mixl_status_t mixl_kvdb_lease_grant(mixl_kvdb_t *db, int ttl_s, uint64_t now_ns, int64_t *lease_p)
{
    kvdb_lease_t *l;

    if (db->lease_count == db->lease_cap) {
        size_t cap = db->lease_cap ? db->lease_cap * 2 : 8;
        kvdb_lease_t *n = realloc(db->leases, cap * sizeof(*n));
        if (n == NULL) return MIXL_ERR_NO_MEMORY;
        db->leases = n;
        db->lease_cap = cap;
    }
    l = &db->leases[db->lease_count++];
    l->id = db->next_lease++;
    l->ttl_s = ttl_s;
    l->deadline_ns = now_ns + (uint64_t)ttl_s * 1000000000ull;
    *lease_p = l->id;
    return MIXL_OK;
}

mixl_status_t mixl_kvdb_lease_keepalive(mixl_kvdb_t *db, int64_t lease, uint64_t now_ns)
{
    kvdb_lease_t *l = lease_find(db, lease);

    if (l == NULL) return MIXL_ERR_NOT_FOUND;
    l->deadline_ns = now_ns + (uint64_t)l->ttl_s * 1000000000ull;
    return MIXL_OK;
}

mixl_status_t mixl_kvdb_lease_revoke(mixl_kvdb_t *db, int64_t lease)
{
    for (size_t i = 0; i < db->lease_count; i++) {
        if (db->leases[i].id == lease) {
            lease_drop(db, i);
            return MIXL_OK;
        }
    }
    return MIXL_ERR_NOT_FOUND;
}

uint64_t mixl_kvdb_next_deadline(const mixl_kvdb_t *db)
{
    uint64_t d = UINT64_MAX;

    for (size_t i = 0; i < db->lease_count; i++) {
        if (db->leases[i].deadline_ns < d) d = db->leases[i].deadline_ns;
    }
    return d;
}
