/*
 * The "local" registry backend: one in-process database shared by every
 * local handle of the process, so several agents in one process (unit
 * tests, single-process use) see each other. Leases expire on time: every
 * operation first sweeps expired leases, and waiters wake at the next
 * lease deadline so an expiry is seen even with no other traffic.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "registry/kvdb.h"
#include "registry/reg_ops.h"
#include "util/clock.h"

static pthread_mutex_t local_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t local_cond;   /* broadcast on every change */
static mixl_kvdb_t *local_db;       /* shared by every local handle */
static unsigned local_users;        /* handles alive; the db goes with the last */

static mixl_status_t local_init(struct mixl_registry *reg)
{
    mixl_status_t status = MIXL_OK;

    pthread_mutex_lock(&local_lock);
    if (local_users == 0) {
        pthread_condattr_t attr;
        local_db = mixl_kvdb_new();
        if (local_db == NULL) {
            status = mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry local: allocation failed");
            goto out;
        }
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&local_cond, &attr);
        pthread_condattr_destroy(&attr);
    }
    local_users++;
out:
    pthread_mutex_unlock(&local_lock);
    return status;
}

static void local_fini(struct mixl_registry *reg)
{
    pthread_mutex_lock(&local_lock);
    if (--local_users == 0) {
        mixl_kvdb_free(local_db);
        local_db = NULL;
        pthread_cond_destroy(&local_cond);
    }
    pthread_mutex_unlock(&local_lock);
}

/* Lock and sweep expired leases; wakes waiters when keys went. */
static void lock_db(void)
{
    pthread_mutex_lock(&local_lock);
    if (mixl_kvdb_expire(local_db, mixl_now_ns()) > 0) pthread_cond_broadcast(&local_cond);
}

static mixl_status_t local_put(struct mixl_registry *reg, const char *key, const void *value,
                               size_t len, int64_t lease, int64_t *rev_p)
{
    mixl_status_t status;

    lock_db();
    status = mixl_kvdb_put(local_db, key, value, len, lease, rev_p);
    if (status == MIXL_OK) pthread_cond_broadcast(&local_cond);
    pthread_mutex_unlock(&local_lock);
    if (status == MIXL_ERR_NOT_FOUND) {
        return mixl_reg_error(reg, 0, status, "registry local: put %s: lease %llx not found "
                              "(expired or revoked)", key, (unsigned long long)lease);
    }
    if (status != MIXL_OK) return mixl_reg_error(reg, 0, status, "registry local: put %s", key);
    return MIXL_OK;
}

static mixl_status_t local_get(struct mixl_registry *reg, const char *key,
                               mixl_registry_kv_t **kv_p)
{
    mixl_status_t status;

    lock_db();
    status = mixl_kvdb_get(local_db, key, kv_p);
    pthread_mutex_unlock(&local_lock);
    if (status == MIXL_ERR_NOT_FOUND) {
        return mixl_reg_error(reg, 1, status, "registry local: key %s not found", key);
    }
    if (status != MIXL_OK) return mixl_reg_error(reg, 0, status, "registry local: get %s", key);
    return MIXL_OK;
}

static mixl_status_t local_list(struct mixl_registry *reg, const char *prefix, unsigned flags,
                                mixl_registry_kv_t **kvs_p, size_t *count_p)
{
    mixl_status_t status;

    lock_db();
    status = mixl_kvdb_list(local_db, prefix, flags, kvs_p, count_p);
    pthread_mutex_unlock(&local_lock);
    if (status != MIXL_OK) return mixl_reg_error(reg, 0, status, "registry local: list %s", prefix);
    return MIXL_OK;
}

static mixl_status_t local_del(struct mixl_registry *reg, const char *key)
{
    mixl_status_t status;

    lock_db();
    status = mixl_kvdb_del(local_db, key);
    if (status == MIXL_OK) pthread_cond_broadcast(&local_cond);
    pthread_mutex_unlock(&local_lock);
    if (status == MIXL_ERR_NOT_FOUND) {
        return mixl_reg_error(reg, 1, status, "registry local: delete: key %s not found", key);
    }
    return status;
}

static struct timespec abs_ts(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    return ts;
}

static mixl_status_t local_wait(struct mixl_registry *reg, const char *key, int timeout_ms,
                                mixl_registry_kv_t **kv_p)
{
    uint64_t deadline = mixl_deadline_ns(timeout_ms);
    mixl_status_t status;

    lock_db();
    for (;;) {
        uint64_t wake;
        struct timespec ts;

        status = mixl_kvdb_get(local_db, key, kv_p);
        if (status != MIXL_ERR_NOT_FOUND) break;
        if (mixl_now_ns() >= deadline) {
            status = MIXL_ERR_TIMED_OUT;
            break;
        }
        wake = mixl_kvdb_next_deadline(local_db);
        if (wake > deadline) wake = deadline;
        ts = abs_ts(wake);
        pthread_cond_timedwait(&local_cond, &local_lock, &ts);
        if (mixl_kvdb_expire(local_db, mixl_now_ns()) > 0) pthread_cond_broadcast(&local_cond);
    }
    pthread_mutex_unlock(&local_lock);
    if (status == MIXL_ERR_TIMED_OUT) {
        return mixl_reg_error(reg, 1, status, "registry local: key %s did not appear within %d ms",
                              key, timeout_ms);
    }
    if (status != MIXL_OK) return mixl_reg_error(reg, 0, status, "registry local: wait %s", key);
    return MIXL_OK;
}

static mixl_status_t local_lease_grant(struct mixl_registry *reg, int ttl_s, int64_t *lease_p)
{
    mixl_status_t status;

    lock_db();
    status = mixl_kvdb_lease_grant(local_db, ttl_s, mixl_now_ns(), lease_p);
    pthread_cond_broadcast(&local_cond); /* waiters recompute their next wake-up */
    pthread_mutex_unlock(&local_lock);
    if (status != MIXL_OK) return mixl_reg_error(reg, 0, status, "registry local: lease grant");
    return MIXL_OK;
}

static mixl_status_t local_lease_keepalive(struct mixl_registry *reg, int64_t lease)
{
    mixl_status_t status;

    lock_db();
    status = mixl_kvdb_lease_keepalive(local_db, lease, mixl_now_ns());
    pthread_mutex_unlock(&local_lock);
    if (status != MIXL_OK) {
        return mixl_reg_error(reg, 1, status, "registry local: lease %llx expired or revoked",
                              (unsigned long long)lease);
    }
    return MIXL_OK;
}

static mixl_status_t local_lease_revoke(struct mixl_registry *reg, int64_t lease)
{
    mixl_status_t status;

    lock_db();
    status = mixl_kvdb_lease_revoke(local_db, lease);
    if (status == MIXL_OK) pthread_cond_broadcast(&local_cond);
    pthread_mutex_unlock(&local_lock);
    if (status != MIXL_OK) {
        return mixl_reg_error(reg, 1, status, "registry local: revoke: lease %llx not found",
                              (unsigned long long)lease);
    }
    return MIXL_OK;
}

const mixl_reg_ops_t mixl_reg_local_ops = {
    .size = sizeof(mixl_reg_ops_t),
    .name = "local",
    .priv_size = 0,
    .init = local_init,
    .fini = local_fini,
    .put = local_put,
    .get = local_get,
    .list = local_list,
    .del = local_del,
    .wait = local_wait,
    .lease_grant = local_lease_grant,
    .lease_keepalive = local_lease_keepalive,
    .lease_revoke = local_lease_revoke,
};
