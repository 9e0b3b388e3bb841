/*
 * The etcd connection: JSON over HTTP POST to the v3 gateway with libcurl.
 * Endpoints are tried in turn starting from the one that answered last;
 * a round over all of them is repeated up to `retries` more times with a
 * doubling back-off, and the whole operation never outlives its deadline.
 * An answer from a server (even an error) ends the retries, except 401
 * (token expired: authenticate again, once), 5xx (no leader yet), 408
 * (the member is shutting down) and a malformed 200 (empty, not a JSON
 * object, or over ETCD_MAX_ANSWER_BYTES): another member may answer well,
 * and when none does the operation ends in MIXL_ERR_PROTOCOL naming the
 * endpoint and what was wrong with its answer.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/etcd/etcd.h"
#include "util/clock.h"
#include "util/log.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not thread-safe: once per process, never cleaned up (other users may remain). */
static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct {
    char *data;
    size_t len, cap;
    int over; /* the answer passed ETCD_MAX_ANSWER_BYTES: the transfer was stopped */
} membuf_t;

static size_t membuf_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    membuf_t *b = arg;
    size_t n = size * nmemb;

    if (n > ETCD_MAX_ANSWER_BYTES - b->len) {
        b->over = 1;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *d;
        while (cap < b->len + n + 1) cap *= 2;
        d = realloc(b->data, cap);
        if (d == NULL) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

int64_t etcd_json_i64(json_t *obj, const char *field)
{
    json_t *v = obj ? json_object_get(obj, field) : NULL;

    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_string(v)) return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static void apply_tls(etcd_conn_t *c, CURL *h)
{
    struct mixl_registry *reg = c->reg;

    if (reg->tls_ca) curl_easy_setopt(h, CURLOPT_CAINFO, reg->tls_ca);
    if (reg->tls_cert) curl_easy_setopt(h, CURLOPT_SSLCERT, reg->tls_cert);
    if (reg->tls_key) curl_easy_setopt(h, CURLOPT_SSLKEY, reg->tls_key);
}

/* Headers for a request: JSON, and the token when authenticated. */
static struct curl_slist *make_headers(const char *token)
{
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h != NULL && token != NULL) {
        char line[1024];
        snprintf(line, sizeof(line), "Authorization: %s", token);
        struct curl_slist *n = curl_slist_append(h, line);
        if (n == NULL) {
            curl_slist_free_all(h);
            return NULL;
        }
        h = n;
    }
    return h;
}

/* Outcome of one HTTP exchange with one endpoint. */
typedef struct {
    CURLcode curl_rc;
    long http;
    json_t *json; /* parsed body, NULL when absent or not JSON */
    char curl_err[CURL_ERROR_SIZE];
    char bad[200]; /* why the body is not a usable answer; empty when it is */
} exchange_t;

/* One POST to one endpoint, with the lock held. */
static void exchange(etcd_conn_t *c, int idx, const char *path, const char *body,
                     uint64_t deadline_ns, int with_token, exchange_t *x)
{
    char url[1024];
    membuf_t buf = {0};
    struct curl_slist *headers = make_headers(with_token ? c->token : NULL);
    uint64_t now = mixl_now_ns();
    long remaining_ms = deadline_ns > now ? (long)((deadline_ns - now) / 1000000ull) : 0;
    CURL *h = c->curl;

    memset(x, 0, sizeof(*x));
    if (remaining_ms < 1) remaining_ms = 1;
    snprintf(url, sizeof(url), "%s%s", c->endpoint[idx], path);
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, remaining_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, remaining_ms < 1000 ? remaining_ms : 1000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, membuf_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->curl_err);
    apply_tls(c, h);
    x->curl_rc = headers == NULL ? CURLE_OUT_OF_MEMORY : curl_easy_perform(h);
    if (x->curl_rc == CURLE_WRITE_ERROR && buf.over) {
        /* A server that never stops talking is a malformed answer, not a lost one. */
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->http);
        x->curl_rc = CURLE_OK;
        snprintf(x->bad, sizeof(x->bad), "answer longer than %d MiB, not read to its end",
                 ETCD_MAX_ANSWER_BYTES >> 20);
    } else if (x->curl_rc == CURLE_OK) {
        json_error_t jerr;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->http);
        if (buf.len == 0) {
            snprintf(x->bad, sizeof(x->bad), "empty answer");
        } else if ((x->json = json_loadb(buf.data, buf.len, 0, &jerr)) == NULL) {
            snprintf(x->bad, sizeof(x->bad), "answer of %zu bytes is not JSON (line %d, column "
                     "%d: %.80s)", buf.len, jerr.line, jerr.column, jerr.text);
        } else if (!json_is_object(x->json)) {
            snprintf(x->bad, sizeof(x->bad), "answer is JSON but not an object");
            json_decref(x->json);
            x->json = NULL;
        }
    } else if (x->curl_err[0] == '\0') {
        snprintf(x->curl_err, sizeof(x->curl_err), "%s", curl_easy_strerror(x->curl_rc));
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(headers);
    free(buf.data);
}

static const char *json_message(json_t *j)
{
    json_t *m = j ? json_object_get(j, "message") : NULL;
    if (!json_is_string(m) && j != NULL) m = json_object_get(j, "error");
    return json_is_string(m) ? json_string_value(m) : "(no message)";
}

/* With the lock held: get a fresh token from endpoint idx. */
static mixl_status_t authenticate(etcd_conn_t *c, int idx, uint64_t deadline_ns)
{
    struct mixl_registry *reg = c->reg;
    json_t *body = json_pack("{s:s, s:s}", "name", reg->user, "password", reg->password);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *tok;
    exchange_t x;
    mixl_status_t status;

    json_decref(body);
    if (text == NULL) return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: auth body");
    exchange(c, idx, "/v3/auth/authenticate", text, deadline_ns, 0, &x);
    free(text);
    if (x.curl_rc != CURLE_OK) {
        status = MIXL_ERR_UNREACHABLE; /* the caller tries the next endpoint */
        goto out;
    }
    tok = x.json ? json_object_get(x.json, "token") : NULL;
    if (x.http != 200 || !json_is_string(tok)) {
        status = mixl_reg_error(reg, 0, MIXL_ERR_REGISTRY, "registry etcd %s: authentication as "
                                "user %s failed: HTTP %ld: %s", c->endpoint[idx], reg->user, x.http,
                                json_message(x.json));
        goto out;
    }
    free(c->token);
    c->token = strdup(json_string_value(tok));
    status = c->token ? MIXL_OK : mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: token");
out:
    json_decref(x.json);
    return status;
}

static void sleep_until(uint64_t until_ns)
{
    uint64_t now = mixl_now_ns();
    if (until_ns > now) {
        struct timespec ts = {(time_t)((until_ns - now) / 1000000000ull),
                              (long)((until_ns - now) % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

mixl_status_t etcd_post(etcd_conn_t *c, const char *path, json_t *body, uint64_t deadline_ns,
                        const char *what, int quiet, json_t **resp_p)
{
    struct mixl_registry *reg = c->reg;
    char *text = json_dumps(body, JSON_COMPACT);
    char last_err[CURL_ERROR_SIZE + 256] = "no attempt made";
    uint64_t backoff_ns = (uint64_t)reg->params.backoff_ms * 1000000ull;
    mixl_status_t status = MIXL_ERR_UNREACHABLE;
    /* malformed: the last failure was a bad 200 answer; garbled: one with a body, which a
     * later round would only fetch again (an empty one can be a member on its way down) */
    int reauthed = 0, malformed = 0, garbled = 0;

    if (text == NULL) return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: %s: body", what);
    pthread_mutex_lock(&c->lock);
    for (int round = 0; round <= reg->params.retries; round++) {
        if (round > 0) {
            uint64_t until;
            if (garbled) break;
            until = mixl_now_ns() + backoff_ns;
            if (until >= deadline_ns) break;
            pthread_mutex_unlock(&c->lock);
            sleep_until(until);
            pthread_mutex_lock(&c->lock);
            backoff_ns *= 2;
        }
        for (int k = 0; k < c->endpoint_count; k++) {
            int idx = (c->current + k) % c->endpoint_count;
            exchange_t x;

            if (mixl_now_ns() >= deadline_ns) goto give_up;
            if (reg->user != NULL && c->token == NULL) {
                status = authenticate(c, idx, deadline_ns);
                if (status == MIXL_ERR_UNREACHABLE) {
                    snprintf(last_err, sizeof(last_err), "%s: cannot authenticate", c->endpoint[idx]);
                    continue;
                }
                if (status != MIXL_OK) goto out;
            }
            exchange(c, idx, path, text, deadline_ns, 1, &x);
            if (x.curl_rc != CURLE_OK) {
                snprintf(last_err, sizeof(last_err), "%s: %s", c->endpoint[idx], x.curl_err);
                malformed = garbled = 0;
                continue;
            }
            if (x.http == 401 && reg->user != NULL && !reauthed) {
                /* Simple tokens expire when idle: authenticate again and repeat once. */
                json_decref(x.json);
                reauthed = 1;
                free(c->token);
                c->token = NULL;
                k--;
                continue;
            }
            /* 5xx: no leader yet; 408: the member is shutting down ("the client connection
             * is closing"); a malformed 200: a broken gateway. Another member may answer. */
            if (x.http >= 500 || x.http == 408 || (x.http == 200 && x.json == NULL)) {
                malformed = x.http == 200;
                garbled = malformed && strcmp(x.bad, "empty answer") != 0;
                snprintf(last_err, sizeof(last_err), "%s: HTTP %ld: %s", c->endpoint[idx], x.http,
                         x.json ? json_message(x.json) : x.bad[0] ? x.bad : "no JSON object");
                json_decref(x.json);
                continue;
            }
            c->current = idx;
            if (c->outage) {
                mixl_info("registry etcd %s: answering again (%s)", c->endpoint[idx], what);
                c->outage = 0;
            }
            if (x.http == 200) {
                *resp_p = x.json;
                status = MIXL_OK;
                goto out;
            }
            {
                const char *msg = x.json != NULL ? json_message(x.json) : x.bad;
                if (x.http == 404) {
                    status = mixl_reg_error(reg, quiet, MIXL_ERR_NOT_FOUND,
                                            "registry etcd %s: %s: %s", c->endpoint[idx], what, msg);
                } else if (strstr(msg, "too large") != NULL || strstr(msg, "larger than max") != NULL ||
                           x.http == 413 || x.http == 429) {
                    /* etcd's --max-request-bytes ("request is too large") or the gateway's
                     * gRPC message limit ("received message larger than max", HTTP 429). */
                    status = mixl_reg_error(reg, 0, MIXL_ERR_TOO_LARGE,
                                            "registry etcd %s: %s: %s (raise etcd's "
                                            "--max-request-bytes or publish less)",
                                            c->endpoint[idx], what, msg);
                } else {
                    int needs_auth = reg->user == NULL && (x.http == 401 ||
                                                           strstr(msg, "user name is empty") != NULL);
                    status = mixl_reg_error(reg, 0, MIXL_ERR_REGISTRY, "registry etcd %s: %s: "
                                            "HTTP %ld: %s%s", c->endpoint[idx], what, x.http, msg,
                                            needs_auth ? " (the server requires authentication: "
                                                         "set user and password)" : "");
                }
                json_decref(x.json);
                goto out;
            }
        }
    }
give_up:
    if (malformed) {
        status = mixl_reg_error(reg, 0, MIXL_ERR_PROTOCOL, "registry etcd: %s: no usable answer "
                                "from %s; last: malformed answer from %s", what, reg->endpoints,
                                last_err);
        goto out;
    }
    /* Logged once per outage: a store thread retrying every few hundred ms stays quiet. */
    status = mixl_reg_error(reg, quiet || c->outage, MIXL_ERR_UNREACHABLE,
                            "registry etcd: %s: no endpoint of %s answered (%d round%s, deadline "
                            "%d ms); last: %s", what, reg->endpoints, reg->params.retries + 1,
                            reg->params.retries ? "s" : "", reg->params.op_timeout_ms, last_err);
    if (!quiet) c->outage = 1;
out:
    pthread_mutex_unlock(&c->lock);
    free(text);
    return status;
}

mixl_status_t etcd_bad_answer(etcd_conn_t *c, int idx, const char *what, const char *why)
{
    char endpoint[1024];

    pthread_mutex_lock(&c->lock);
    snprintf(endpoint, sizeof(endpoint), "%s", c->endpoint[idx >= 0 ? idx : c->current]);
    pthread_mutex_unlock(&c->lock);
    return mixl_reg_error(c->reg, 0, MIXL_ERR_PROTOCOL, "registry etcd %s: %s: malformed answer: %s",
                          endpoint, what, why);
}

CURL *etcd_stream_handle(etcd_conn_t *c, const char *path, struct curl_slist **headers_p,
                         int *endpoint_p)
{
    char url[1024];
    CURL *h = curl_easy_init();
    struct curl_slist *headers;

    if (h == NULL) return NULL;
    pthread_mutex_lock(&c->lock);
    headers = make_headers(c->token);
    *endpoint_p = c->current;
    snprintf(url, sizeof(url), "%s%s", c->endpoint[c->current], path);
    pthread_mutex_unlock(&c->lock);
    if (headers == NULL) {
        curl_easy_cleanup(h);
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    apply_tls(c, h);
    *headers_p = headers;
    return h;
}

void etcd_conn_failed(etcd_conn_t *c, int idx)
{
    pthread_mutex_lock(&c->lock);
    if (c->current == idx) c->current = (idx + 1) % c->endpoint_count;
    pthread_mutex_unlock(&c->lock);
}

mixl_status_t etcd_conn_init(etcd_conn_t *c, struct mixl_registry *reg)
{
    char *list, *save = NULL;

    c->reg = reg;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        return mixl_reg_error(reg, 0, MIXL_ERR_BACKEND, "registry etcd: curl_global_init: %s",
                              curl_easy_strerror(curl_init_rc));
    }
    list = strdup(reg->endpoints);
    if (list == NULL) return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: endpoints");
    for (char *tok = strtok_r(list, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
        size_t n = strlen(tok);
        if (c->endpoint_count == ETCD_MAX_ENDPOINTS) {
            free(list);
            etcd_conn_fini(c);
            return mixl_reg_error(reg, 0, MIXL_ERR_CONFIG, "registry etcd: more than %d endpoints "
                                  "in '%s'", ETCD_MAX_ENDPOINTS, reg->endpoints);
        }
        while (n > 0 && tok[n - 1] == '/') tok[--n] = '\0';
        if (strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0) {
            mixl_reg_error(reg, 0, MIXL_ERR_CONFIG, "registry etcd: endpoint '%s' must start with "
                           "http:// or https://", tok);
            free(list);
            etcd_conn_fini(c);
            return MIXL_ERR_CONFIG;
        }
        c->endpoint[c->endpoint_count] = strdup(tok);
        if (c->endpoint[c->endpoint_count] == NULL) {
            free(list);
            etcd_conn_fini(c);
            return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry etcd: endpoints");
        }
        c->endpoint_count++;
    }
    free(list);
    if (c->endpoint_count == 0) {
        return mixl_reg_error(reg, 0, MIXL_ERR_CONFIG, "registry etcd: no endpoint in '%s'",
                              reg->endpoints);
    }
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        etcd_conn_fini(c);
        return mixl_reg_error(reg, 0, MIXL_ERR_BACKEND, "registry etcd: curl_easy_init failed");
    }
    pthread_mutex_init(&c->lock, NULL);
    return MIXL_OK;
}

void etcd_conn_fini(etcd_conn_t *c)
{
    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
        pthread_mutex_destroy(&c->lock);
        c->curl = NULL;
    }
    for (int i = 0; i < c->endpoint_count; i++) free(c->endpoint[i]);
    c->endpoint_count = 0;
    free(c->token);
    c->token = NULL;
}
