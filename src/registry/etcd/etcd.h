/*
 * The etcd v3 registry backend: shared declarations of its three parts.
 *   etcd_b64.c    base64 (the gateway's encoding of keys and values) and
 *                 prefix range ends
 *   etcd_http.c   the connection: endpoints with failover, retries with
 *                 back-off, token auth with re-authentication on 401, TLS,
 *                 JSON bodies through jansson, error mapping
 *   etcd_client.c the ops table (kv, leases, watch-based wait)
 */
#ifndef MIXL_REGISTRY_ETCD_H
#define MIXL_REGISTRY_ETCD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "registry/reg_ops.h"

#define ETCD_MAX_ENDPOINTS 16

/* --- base64 -------------------------------------------------------------- */

/* Standard base64 with padding, NUL-terminated; NULL on ENOMEM. Free with free(). */
char *etcd_b64_encode(const void *data, size_t len);
/* Decode; MIXL_ERR_PROTOCOL when not valid base64. *out_p gets len+1 bytes (NUL after). */
mixl_status_t etcd_b64_decode(const char *text, void **out_p, size_t *len_p);
/* etcd's range_end for "every key starting with prefix" (bytes, *len_p of them); NULL on ENOMEM. */
char *etcd_prefix_end(const char *prefix, size_t *len_p);

/* --- connection ----------------------------------------------------------- */

typedef struct {
    struct mixl_registry *reg;
    char *endpoint[ETCD_MAX_ENDPOINTS]; /* base URLs without trailing '/' */
    int endpoint_count;
    pthread_mutex_t lock;  /* guards everything below; held during a unary request */
    CURL *curl;            /* reused for unary requests (keeps the connection open) */
    int current;           /* endpoint that answered last */
    char *token;           /* auth token, NULL before authentication or without auth */
} etcd_conn_t;

mixl_status_t etcd_conn_init(etcd_conn_t *c, struct mixl_registry *reg);
void etcd_conn_fini(etcd_conn_t *c);

/*
 * POST body (not consumed) to path on the current endpoint, failing over to
 * the others and retrying rounds with back-off until deadline_ns. what names
 * the operation for messages ("put mixl/mixl_metadata/a"). On MIXL_OK
 * *resp_p is the parsed answer (json_decref it). Server refusals map to
 * MIXL_ERR_NOT_FOUND (code 5), MIXL_ERR_TOO_LARGE (request too large) or
 * MIXL_ERR_REGISTRY, recorded on the handle; a lost service to
 * MIXL_ERR_UNREACHABLE. quiet: record NOT_FOUND and UNREACHABLE without
 * logging (lease keep-alives: the store's thread reports an outage once).
 */
mixl_status_t etcd_post(etcd_conn_t *c, const char *path, json_t *body, uint64_t deadline_ns,
                        const char *what, int quiet, json_t **resp_p);

/* Set up a fresh easy handle for a streaming request (watch) on the current endpoint. */
CURL *etcd_stream_handle(etcd_conn_t *c, const char *path, struct curl_slist **headers_p,
                         int *endpoint_p);
/* The streaming request failed on endpoint idx: prefer another one next time. */
void etcd_conn_failed(etcd_conn_t *c, int idx);

/* Integer field that etcd may send as a JSON string or number; 0 when absent. */
int64_t etcd_json_i64(json_t *obj, const char *field);

#endif /* MIXL_REGISTRY_ETCD_H */
