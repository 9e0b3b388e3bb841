/*
 * Registry section: when --etcd URL is given, GET URL/health three times
 * with libcurl (bounded by --registry-timeout) and report whether etcd
 * answered healthy and the median round trip. Without --etcd the registry
 * MIXL uses is the embedded rank-0 MPI service, which lives inside the job
 * and has nothing to reach beforehand.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "diag.h"

typedef struct {
    char buf[512];
    size_t len;
} body_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    body_t *b = arg;
    size_t n = size * nmemb;
    size_t room = sizeof(b->buf) - 1 - b->len;
    memcpy(b->buf + b->len, data, n < room ? n : room);
    b->len += n < room ? n : room;
    b->buf[b->len] = '\0';
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void mixl_diag_probe_registry(mixl_diag_t *d)
{
    json_t *reg = json_object();
    json_object_set_new(d->report, "registry", reg);
    if (!d->etcd_url) {
        json_object_set_new(reg, "kind", json_string("mpi (embedded rank-0 registry)"));
        json_object_set_new(reg, "checked", json_false());
        json_object_set_new(reg, "note",
                            json_string("no --etcd URL given; the MPI registry runs inside the job"));
        return;
    }
    json_object_set_new(reg, "kind", json_string("etcd"));
    json_object_set_new(reg, "endpoint", json_string(d->etcd_url));
    json_object_set_new(reg, "checked", json_true());

    char url[1024];
    size_t ulen = strlen(d->etcd_url);
    snprintf(url, sizeof(url), "%s%shealth", d->etcd_url,
             ulen && d->etcd_url[ulen - 1] == '/' ? "" : "/");
    /* mixl-diag is single-threaded at this point, as curl_global_init requires. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    if (!c) {
        curl_global_cleanup();
        json_object_set_new(reg, "reachable", json_false());
        json_object_set_new(reg, "error", json_string("curl_easy_init failed"));
        return;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    body_t body;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)d->registry_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)d->registry_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);

    double ms[3];
    int got = 0;
    long code = 0;
    CURLcode rc = CURLE_OK;
    for (int i = 0; i < 3; i++) {
        body.len = 0;
        body.buf[0] = '\0';
        rc = curl_easy_perform(c);
        if (rc != CURLE_OK)
            break;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        double t = 0;
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
        ms[got++] = t * 1e3;
    }
    curl_easy_cleanup(c);
    curl_global_cleanup();

    if (rc != CURLE_OK) {
        json_object_set_new(reg, "reachable", json_false());
        json_object_set_new(reg, "error",
                            json_string(*errbuf ? errbuf : curl_easy_strerror(rc)));
        return;
    }
    /* etcd answers {"health":"true",...}; anything else is not a healthy etcd. */
    json_t *h = json_loads(body.buf, 0, NULL);
    const char *health = json_string_value(json_object_get(h, "health"));
    int healthy = code == 200 && health && !strcmp(health, "true");
    qsort(ms, (size_t)got, sizeof(ms[0]), cmp_double);
    json_object_set_new(reg, "reachable", json_true());
    json_object_set_new(reg, "http_status", json_integer(code));
    json_object_set_new(reg, "healthy", json_boolean(healthy));
    json_object_set_new(reg, "latency_ms", json_real(ms[got / 2]));
    if (!healthy)
        json_object_set_new(reg, "response", json_string(body.buf));
    json_decref(h);
}
