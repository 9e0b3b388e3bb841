/*
 * The MIXL metadata registry: where agents publish their metadata blobs and
 * find their peers'.
 *
 * Two layers:
 *   mixl_registry_*  a small key-value interface with leases, implemented by
 *                    three backends chosen by name: "mpi" (a rank of an MPI
 *                    communicator serves the others; the embedded default),
 *                    "etcd" (a real etcd v3 server through its JSON gateway)
 *                    and "local" (in-process, for tests and single-process use).
 *   mixl_md_store_*  the metadata store on top: publishes this agent's blob
 *                    under "<namespace>/mixl_metadata/<agent>" bound to a
 *                    lease that a background thread keeps alive, and returns
 *                    peers' blobs from a cache or from the registry.
 *
 * Every call is thread-safe unless said otherwise; every call that talks to
 * a server is bounded by a timeout (the op timeout of the params).
 */
#ifndef MIXL_REGISTRY_H
#define MIXL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include <mixl/export.h>
#include <mixl/mem.h>
#include <mixl/status.h>
#include <mixl/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Key component under the namespace that holds agents' metadata. */
#define MIXL_REGISTRY_MD_DIR "mixl_metadata"

/*
 * Registry settings. A plain struct so the YAML layer can fill it: call
 * mixl_registry_params_init() first (sets .size and every default), then
 * overwrite what the configuration names. Strings are borrowed during
 * mixl_registry_create() only (the registry copies them). docs/registry.md
 * lists every field with its default.
 */
typedef struct {
    size_t size;             /* sizeof(mixl_registry_params_t) */
    const char *backend;     /* "mpi" (default), "etcd" or "local" */
    const char *ns;          /* namespace, the first key component (default "mixl") */
    int lease_ttl_s;         /* TTL of the lease a store binds its keys to (default 10, min 2) */
    int op_timeout_ms;       /* bound on each operation, retries included (default 5000) */
    size_t max_value_bytes;  /* larger puts are refused with MIXL_ERR_TOO_LARGE (default 1 MiB) */

    /* backend "mpi" */
    MPI_Comm comm;           /* communicator to serve over (default MPI_COMM_WORLD); duplicated */
    int server_rank;         /* rank of comm that runs the server thread (default 0) */

    /* backend "etcd" */
    const char *endpoints;   /* comma-separated URLs (default "http://127.0.0.1:2379") */
    const char *user;        /* user for token auth; NULL = no auth */
    const char *password;
    const char *tls_ca;      /* CA bundle to verify the server (https endpoints) */
    const char *tls_cert;    /* client certificate (mutual TLS) */
    const char *tls_key;     /* client key */
    int retries;             /* extra rounds over all endpoints after the first (default 2, <0: none) */
    int backoff_ms;          /* pause before the first retry round, doubled each round (default 50) */
} mixl_registry_params_t;

/* Fill p with the defaults above (and p->size). Never fails. */
MIXL_EXPORT void mixl_registry_params_init(mixl_registry_params_t *p);

/*
 * One key-value pair as the registry returns it; revisions as etcd defines
 * them. The library allocates arrays of it (mixl_registry_list) and frees
 * them (mixl_registry_kvs_free), but callers index them, so the layout is
 * fixed within a major version, as mixl_notif_t's is.
 */
typedef struct {
    char *key;               /* NUL-terminated */
    void *value;             /* NULL for keys-only listings */
    size_t len;              /* value bytes (also set for keys-only listings when known) */
    int64_t create_revision; /* revision of the put that created the key */
    int64_t mod_revision;    /* revision of the last put (changes on every re-publish) */
    int64_t version;         /* puts since creation, 1 for a fresh key */
    int64_t lease;           /* lease the key is bound to, 0 when none */
} mixl_registry_kv_t;

/* Flags for mixl_registry_list(). */
#define MIXL_REGISTRY_KEYS_ONLY (1u << 0) /* leave value NULL (revisions still filled) */

/*
 * Create a registry client. Backend "mpi" is collective over params->comm:
 * every rank calls it, the server rank also starts the server thread. The
 * process must have initialised MPI with MPI_THREAD_MULTIPLE (refused with
 * MIXL_ERR_NOT_SUPPORTED otherwise). Backend "etcd" checks that an endpoint
 * answers within op_timeout_ms (MIXL_ERR_UNREACHABLE otherwise) and
 * authenticates when a user is set. On error *reg_p is untouched.
 */
MIXL_EXPORT mixl_status_t mixl_registry_create(const mixl_registry_params_t *params,
                                               mixl_registry_h *reg_p);

/*
 * Destroy the client. Backend "mpi": collective over the communicator; each
 * rank tells the server it is done, the server rank waits (bounded by
 * op_timeout_ms) for every rank before its server thread exits. Leases are
 * not revoked here (the store does that); they expire on their own. Call it
 * after every store on the handle is destroyed and no other thread uses it.
 */
MIXL_EXPORT void mixl_registry_destroy(mixl_registry_h reg);

/* Name of the backend and the namespace: owned by the handle, valid until
 * mixl_registry_destroy(). Local, thread-safe. */
MIXL_EXPORT const char *mixl_registry_backend(mixl_registry_h reg);
MIXL_EXPORT const char *mixl_registry_namespace(mixl_registry_h reg);
/*
 * First error recorded on the handle, with the key or endpoint concerned; ""
 * when none. Local, thread-safe, never blocks on the network. The string is
 * a copy owned by the calling thread: valid until that thread calls
 * mixl_registry_last_error() again (other threads' errors never change it).
 */
MIXL_EXPORT const char *mixl_registry_last_error(mixl_registry_h reg);
/* Forget the recorded error. Local, thread-safe. */
MIXL_EXPORT void mixl_registry_clear_error(mixl_registry_h reg);

/*
 * Store value under key, bound to lease (0: no lease). *rev_p (may be NULL)
 * gets the revision of the put. MIXL_ERR_NOT_FOUND when the lease does not
 * exist (expired or revoked), MIXL_ERR_TOO_LARGE over max_value_bytes or
 * over the server's own limit.
 */
MIXL_EXPORT mixl_status_t mixl_registry_put(mixl_registry_h reg, const char *key,
                                            const void *value, size_t len, int64_t lease,
                                            int64_t *rev_p);

/* Fetch one key (MIXL_ERR_NOT_FOUND when absent). Free *kv_p with mixl_registry_kv_free(). */
MIXL_EXPORT mixl_status_t mixl_registry_get(mixl_registry_h reg, const char *key,
                                            mixl_registry_kv_t **kv_p);

/*
 * Every key starting with prefix, in key order. *kvs_p is NULL when *count_p
 * is 0; else free with mixl_registry_kvs_free(*kvs_p, *count_p).
 */
MIXL_EXPORT mixl_status_t mixl_registry_list(mixl_registry_h reg, const char *prefix,
                                             unsigned flags, mixl_registry_kv_t **kvs_p,
                                             size_t *count_p);

/* Delete one key; MIXL_ERR_NOT_FOUND when it did not exist. */
MIXL_EXPORT mixl_status_t mixl_registry_delete(mixl_registry_h reg, const char *key);

/*
 * Return key's pair as soon as it exists, waiting up to timeout_ms
 * (MIXL_ERR_TIMED_OUT after that; < 0 means op_timeout_ms).
 */
MIXL_EXPORT mixl_status_t mixl_registry_wait(mixl_registry_h reg, const char *key, int timeout_ms,
                                             mixl_registry_kv_t **kv_p);

/* Grant a lease of ttl_s seconds (the server may raise it to its minimum). */
MIXL_EXPORT mixl_status_t mixl_registry_lease_grant(mixl_registry_h reg, int ttl_s,
                                                    int64_t *lease_p);
/* Renew a lease for its full TTL; MIXL_ERR_NOT_FOUND once it expired or was revoked. */
MIXL_EXPORT mixl_status_t mixl_registry_lease_keepalive(mixl_registry_h reg, int64_t lease);
/* Revoke a lease, deleting every key bound to it at once; MIXL_ERR_NOT_FOUND if unknown. */
MIXL_EXPORT mixl_status_t mixl_registry_lease_revoke(mixl_registry_h reg, int64_t lease);

MIXL_EXPORT void mixl_registry_kv_free(mixl_registry_kv_t *kv);
MIXL_EXPORT void mixl_registry_kvs_free(mixl_registry_kv_t *kvs, size_t count);

/* ---------------------------------------------------------------------- */
/* Metadata store                                                          */
/* ---------------------------------------------------------------------- */

/* Store flags. */
#define MIXL_MD_STORE_RAW (1u << 0)    /* values are opaque bytes: no mixl_metadata_decode() check */
#define MIXL_MD_STORE_VERIFY (1u << 1) /* a cache hit is checked against the registry's revision
                                        * first (one keys-only round trip): never stale, slower */

typedef struct {
    size_t size;           /* sizeof(mixl_md_store_params_t) */
    mixl_registry_h reg;   /* registry to use (borrowed; outlives the store) */
    unsigned flags;        /* MIXL_MD_STORE_* */
    int refresh_ms;        /* period of the background thread that renews the lease,
                            * re-publishes after a lost lease and drops stale cache
                            * entries (default lease_ttl_s * 1000 / 4, at least 100) */
} mixl_md_store_params_t;

/* Start a store and its background thread. Local (not collective). */
MIXL_EXPORT mixl_status_t mixl_md_store_create(const mixl_md_store_params_t *params,
                                               mixl_md_store_h *store_p);

/*
 * Stop the background thread and revoke the store's lease, which removes
 * everything it published (bounded by the registry's op timeout).
 */
MIXL_EXPORT void mixl_md_store_destroy(mixl_md_store_h store);

/* The store's key for agent: "<namespace>/mixl_metadata/<agent>", written into buf. */
MIXL_EXPORT mixl_status_t mixl_md_store_key(mixl_md_store_h store, const char *agent, char *buf,
                                            size_t len);

/*
 * Publish blob as agent's metadata, bound to the store's lease (granted on
 * first use). The store remembers it, so that after a lost lease (server
 * restarted, keep-alive missed) the background thread re-grants the lease
 * and publishes it again. Unless MIXL_MD_STORE_RAW, the blob must decode
 * (MIXL_ERR_BAD_METADATA otherwise). Publishing again replaces the value.
 */
MIXL_EXPORT mixl_status_t mixl_md_store_publish(mixl_md_store_h store, const char *agent,
                                                const void *blob, size_t len);

/*
 * Delete agent's entry and forget it (MIXL_ERR_NOT_FOUND if not published by
 * this store; an entry already expired counts as deleted). When the registry
 * cannot be reached the entry stays published and remembered: call again.
 */
MIXL_EXPORT mixl_status_t mixl_md_store_unpublish(mixl_md_store_h store, const char *agent);

/*
 * Peer agent's blob: from the cache (checked against the registry first
 * with MIXL_MD_STORE_VERIFY), or fetched, waiting up to timeout_ms
 * (< 0: the registry's op timeout) for a peer that has not published yet.
 * MIXL_ERR_NOT_FOUND "metadata not found for agent X in namespace Y" when it
 * never appears; MIXL_ERR_BAD_METADATA naming the key when the value does
 * not decode (it is not cached). *blob_p is a copy: free with mixl_free().
 */
MIXL_EXPORT mixl_status_t mixl_md_store_get(mixl_md_store_h store, const char *agent,
                                            int timeout_ms, void **blob_p, size_t *len_p);

/* Drop agent's cache entry (e.g. after a transfer to it failed). */
MIXL_EXPORT void mixl_md_store_invalidate(mixl_md_store_h store, const char *agent);

/*
 * Compare every cache entry with the registry now and drop those whose key
 * vanished or changed revision (the background thread does this every
 * refresh_ms).
 */
MIXL_EXPORT mixl_status_t mixl_md_store_refresh(mixl_md_store_h store);

/* Names of the agents with metadata in the namespace, sorted. Free with mixl_md_store_names_free(). */
MIXL_EXPORT mixl_status_t mixl_md_store_list(mixl_md_store_h store, char ***names_p,
                                             size_t *count_p);
MIXL_EXPORT void mixl_md_store_names_free(char **names, size_t count);

/* Cache counters since creation (for tests and benchmarks). */
MIXL_EXPORT void mixl_md_store_stats(mixl_md_store_h store, uint64_t *hits_p, uint64_t *misses_p,
                                     uint64_t *republished_p);

/* First error recorded on the store; "" when none. Local, thread-safe; a
 * copy owned by the calling thread, valid until its next call of this function. */
MIXL_EXPORT const char *mixl_md_store_last_error(mixl_md_store_h store);

/*
 * Convenience for agents: export agent's metadata (mixl_metadata_export) and
 * publish it under the agent's name. Part of the agent library (the
 * registry does not depend on the agent): an export failure is the agent's
 * error (mixl_agent_last_error), a publish failure the store's.
 */
MIXL_EXPORT mixl_status_t mixl_md_store_publish_agent(mixl_md_store_h store, mixl_agent_h agent);

/*
 * Convenience for agents: get peer's blob (as mixl_md_store_get) and load it
 * with mixl_metadata_import(). An import failure drops the cache entry and
 * is the agent's error (mixl_agent_last_error); a fetch failure the store's.
 * Part of the agent library.
 */
MIXL_EXPORT mixl_status_t mixl_md_store_fetch_import(mixl_md_store_h store, mixl_agent_h agent,
                                                     const char *peer, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_REGISTRY_H */
