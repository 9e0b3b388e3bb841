/*
 * The registry ops table every backend implements ("local", "mpi", "etcd"),
 * and the handle the backends share with registry.c.
 *
 * registry.c validates arguments (non-NULL keys, value size against
 * max_value_bytes, out-pointers) before a backend sees them, and owns the
 * handle's first-error buffer. Backends record errors with mixl_reg_error().
 *
 * Threading: every op may be called from any thread, concurrently; each
 * backend does its own locking. Blocking: every op returns within the
 * handle's op timeout (wait: within its own timeout plus a margin).
 * Ownership: keys and values passed in are borrowed for the call; pairs
 * returned are allocated with malloc and owned by the caller
 * (mixl_registry_kvs_free).
 */
#ifndef MIXL_REGISTRY_REG_OPS_H
#define MIXL_REGISTRY_REG_OPS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <mixl/registry.h>

#include "util/errbuf.h"

typedef struct mixl_reg_ops {
    size_t size;      /* sizeof(mixl_reg_ops_t), checked at registration */
    const char *name; /* backend name used in the params ("local", "mpi", "etcd") */
    size_t priv_size; /* bytes of reg->priv, zeroed before init */

    /*
     * Connect or start. reg->params holds the validated, defaulted settings
     * (strings owned by the handle). "mpi": collective over params.comm.
     * On failure everything acquired is released (fini is not called).
     */
    mixl_status_t (*init)(struct mixl_registry *reg);
    /* Disconnect, stop threads, free reg->priv contents. Never fails. */
    void (*fini)(struct mixl_registry *reg);

    /* Store key -> value (bound to lease unless 0); *rev_p gets the revision. NOT_FOUND:
     * lease unknown. TOO_LARGE: over the server's limit. */
    mixl_status_t (*put)(struct mixl_registry *reg, const char *key, const void *value,
                         size_t len, int64_t lease, int64_t *rev_p);
    /* One pair, NOT_FOUND when absent (recorded quietly: absence is expected). */
    mixl_status_t (*get)(struct mixl_registry *reg, const char *key, mixl_registry_kv_t **kv_p);
    /* Every pair under prefix in key order; count 0 gives kvs NULL. */
    mixl_status_t (*list)(struct mixl_registry *reg, const char *prefix, unsigned flags,
                          mixl_registry_kv_t **kvs_p, size_t *count_p);
    /* Delete one key; NOT_FOUND when it did not exist. */
    mixl_status_t (*del)(struct mixl_registry *reg, const char *key);
    /* The pair as soon as key exists; TIMED_OUT after timeout_ms (>= 0 here). */
    mixl_status_t (*wait)(struct mixl_registry *reg, const char *key, int timeout_ms,
                          mixl_registry_kv_t **kv_p);
    /* New lease of ttl_s seconds (>= 1 here). */
    mixl_status_t (*lease_grant)(struct mixl_registry *reg, int ttl_s, int64_t *lease_p);
    /* Renew for the full TTL; NOT_FOUND when expired or revoked. */
    mixl_status_t (*lease_keepalive)(struct mixl_registry *reg, int64_t lease);
    /* Revoke and delete its keys; NOT_FOUND when unknown. */
    mixl_status_t (*lease_revoke)(struct mixl_registry *reg, int64_t lease);
} mixl_reg_ops_t;

struct mixl_registry {
    const mixl_reg_ops_t *ops;
    mixl_registry_params_t params; /* defaults applied; strings below own the copies */
    char *ns, *endpoints, *user, *password, *tls_ca, *tls_cert, *tls_key;
    pthread_mutex_t eb_lock;       /* backends record errors from several threads */
    mixl_errbuf_t eb;
    void *priv;                    /* ops->priv_size bytes of backend state */
};

/* Backend ops tables, registered explicitly in registry.c. */
extern const mixl_reg_ops_t mixl_reg_local_ops;
extern const mixl_reg_ops_t mixl_reg_mpi_ops;
extern const mixl_reg_ops_t mixl_reg_etcd_ops;

/* Look up a backend by name; NULL when unknown. */
const mixl_reg_ops_t *mixl_reg_find(const char *name);
/* Check an ops table's mandatory entries; MIXL_ERR_INVALID_PARAM names the hole. */
mixl_status_t mixl_reg_check_ops(const mixl_reg_ops_t *ops, mixl_errbuf_t *eb);

/*
 * Record an error on the handle (first wins) and return status. quiet: do
 * not log (for outcomes the caller expects, such as a missing key).
 */
mixl_status_t mixl_reg_error(struct mixl_registry *reg, int quiet, mixl_status_t status,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Allocate one pair (copies of key and value; value NULL keeps it NULL). NULL on ENOMEM. */
mixl_registry_kv_t *mixl_reg_kv_new(const char *key, size_t key_len, const void *value,
                                    size_t len);
/* Fill one element of an array the same way; MIXL_ERR_NO_MEMORY on failure. */
mixl_status_t mixl_reg_kv_fill(mixl_registry_kv_t *kv, const char *key, size_t key_len,
                               const void *value, size_t len);
/* Sort pairs by key (byte order, as etcd does). */
void mixl_reg_kvs_sort(mixl_registry_kv_t *kvs, size_t count);

#endif /* MIXL_REGISTRY_REG_OPS_H */
