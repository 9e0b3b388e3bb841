/*
 * The etcd v3 registry backend: shared declarations of its three parts.
 *   etcd_b64.c    base64 (the gateway's encoding of keys and values) and
 *                 prefix range ends
 *   etcd_http.c   the connection: endpoints with failover, retries with
 *                 back-off, token auth with re-authentication on 401, TLS,
 *                 JSON bodies through jansson, error mapping
 *   etcd_client.c the ops table (kv, leases, watch-based wait)
 *   etcd_decode.c the answers' decoding (range results, watch streams),
 *                 free of any connection so that it can be fuzzed
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
/* Longest answer read from a server (a unary answer, or one line of a watch
 * stream): far above any listing of metadata (values are at most
 * max_value_bytes, 1 MiB by default), low enough that a broken server cannot
 * make a rank allocate without bound. */
#define ETCD_MAX_ANSWER_BYTES (64 << 20)

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
    int outage;            /* an unreachable service was logged: stay quiet until it answers */
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
 * An outage is logged once: later UNREACHABLE results are recorded quietly
 * until an answer comes, which is logged as the end of the outage.
 */
mixl_status_t etcd_post(etcd_conn_t *c, const char *path, json_t *body, uint64_t deadline_ns,
                        const char *what, int quiet, json_t **resp_p);

/* Set up a fresh easy handle for a streaming request (watch) on the current endpoint. */
CURL *etcd_stream_handle(etcd_conn_t *c, const char *path, struct curl_slist **headers_p,
                         int *endpoint_p);
/* The streaming request failed on endpoint idx: prefer another one next time. */
void etcd_conn_failed(etcd_conn_t *c, int idx);

/*
 * Record MIXL_ERR_PROTOCOL for an answer that arrived but cannot be used
 * (what: the operation; why: what is wrong), naming the endpoint that sent
 * it (endpoint idx, or the one that answered last when idx < 0).
 */
mixl_status_t etcd_bad_answer(etcd_conn_t *c, int idx, const char *what, const char *why);

/* Integer field that etcd may send as a JSON string or number; 0 when absent. */
int64_t etcd_json_i64(json_t *obj, const char *field);

/* --- decoding answers (etcd_decode.c) --------------------------------------- */

/*
 * One "kv" object of an answer into *kv (keys and values base64-decoded).
 * with_value: the answer carries values, so a missing "value" is an empty
 * one (proto3 drops it). MIXL_ERR_PROTOCOL when "key" is absent or either
 * is not valid base64; MIXL_ERR_NO_MEMORY. *kv is untouched on failure.
 */
mixl_status_t etcd_kv_decode(json_t *j, int with_value, mixl_registry_kv_t *kv);

/*
 * The pairs of a /v3/kv/range answer ("kvs" absent: none). On MIXL_OK
 * *kvs_p (NULL when *count_p is 0) is freed with mixl_registry_kvs_free();
 * keys_only leaves values NULL with len 0. Fails as etcd_kv_decode().
 */
mixl_status_t etcd_range_decode(json_t *resp, int keys_only, mixl_registry_kv_t **kvs_p,
                                size_t *count_p);

/* State of one /v3/watch stream waiting for a PUT of key. */
typedef struct {
    char *line;             /* partial line carried between chunks (free it) */
    size_t len, cap;
    const char *key;
    mixl_registry_kv_t *kv; /* set when a PUT of key arrived (caller frees) */
    int canceled;           /* the server canceled the watch (compaction) */
    int failed;             /* out of memory, malformed event, or a line over
                             * ETCD_MAX_ANSWER_BYTES */
} etcd_watch_t;

/*
 * curl write callback of a watch stream: splits chunks into lines (a line
 * may span chunks) and decodes each. Returns 0, which ends the transfer,
 * once kv, canceled or failed is set.
 */
size_t etcd_watch_write(char *ptr, size_t size, size_t nmemb, void *arg);

#endif /* MIXL_REGISTRY_ETCD_H */
