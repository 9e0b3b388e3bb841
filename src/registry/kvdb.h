/*
 * In-memory key-value database with revisions and leases, shared by the
 * "local" backend and the MPI registry server. It follows etcd's model:
 * one revision counter bumped by every change, per-key create/mod
 * revisions and version, leases whose expiry or revocation deletes the keys
 * bound to them.
 *
 * Not thread-safe: the owner holds its lock around every call. Time is
 * passed in (monotonic ns) so expiry is deterministic for the caller.
 */
#ifndef MIXL_REGISTRY_KVDB_H
#define MIXL_REGISTRY_KVDB_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/registry.h>

typedef struct mixl_kvdb mixl_kvdb_t;

mixl_kvdb_t *mixl_kvdb_new(void);
void mixl_kvdb_free(mixl_kvdb_t *db);

/* Current revision (bumped by every put, delete and expiry). */
int64_t mixl_kvdb_revision(const mixl_kvdb_t *db);

/* Drop leases whose deadline passed, with their keys. Returns how many keys went. */
size_t mixl_kvdb_expire(mixl_kvdb_t *db, uint64_t now_ns);

/* NOT_FOUND when lease != 0 is unknown; NO_MEMORY. */
mixl_status_t mixl_kvdb_put(mixl_kvdb_t *db, const char *key, const void *value, size_t len,
                            int64_t lease, int64_t *rev_p);
/* Copy of one pair; NOT_FOUND. */
mixl_status_t mixl_kvdb_get(const mixl_kvdb_t *db, const char *key, mixl_registry_kv_t **kv_p);
/* Copies of the pairs under prefix, sorted; values left NULL with MIXL_REGISTRY_KEYS_ONLY. */
mixl_status_t mixl_kvdb_list(const mixl_kvdb_t *db, const char *prefix, unsigned flags,
                             mixl_registry_kv_t **kvs_p, size_t *count_p);
/* NOT_FOUND when absent. */
mixl_status_t mixl_kvdb_del(mixl_kvdb_t *db, const char *key);

mixl_status_t mixl_kvdb_lease_grant(mixl_kvdb_t *db, int ttl_s, uint64_t now_ns, int64_t *lease_p);
/* NOT_FOUND when unknown (expired leases are swept by mixl_kvdb_expire first). */
mixl_status_t mixl_kvdb_lease_keepalive(mixl_kvdb_t *db, int64_t lease, uint64_t now_ns);
mixl_status_t mixl_kvdb_lease_revoke(mixl_kvdb_t *db, int64_t lease);

/* Earliest lease deadline, UINT64_MAX when there is no lease (for timed sleeps). */
uint64_t mixl_kvdb_next_deadline(const mixl_kvdb_t *db);

#endif /* MIXL_REGISTRY_KVDB_H */
