/*
 * Registry section, through the same code MIXL uses (include/mixl/registry.h)
 * plus a plain HTTP check:
 * - mpi: the embedded rank-0 registry, created collectively over
 *   MPI_COMM_WORLD as mixl-run does; the highest rank (rank 0 alone in a
 *   singleton) times put + get round trips to the server thread on rank 0.
 * - etcd (with --etcd URL): GET URL/health three times with libcurl (etcd's
 *   own answer and the median round trip), then MIXL's etcd client against
 *   the same endpoint: put, get and delete of a probe key.
 * Every request is bounded by --registry-timeout.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include <mixl/registry.h>

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

/* GET URL/health: reachable, healthy, latency_ms (or error) into reg. */
static void etcd_health(mixl_diag_t *d, json_t *reg)
{

    char url[1024];
    size_t ulen = strlen(d->etcd_url);
    snprintf(url, sizeof(url), "%s%shealth", d->etcd_url,
             ulen && d->etcd_url[ulen - 1] == '/' ? "" : "/");
    /* No other thread of mixl-diag uses libcurl while this runs. */
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

static double ms_since(double t0)
{
    return (MPI_Wtime() - t0) * 1e3;
}

/* put + get + delete of one key; median put and get in ms. 0 or -1 (err set). */
static int round_trips(mixl_registry_h r, const char *key, int rounds, double *put_ms_p,
                       double *get_ms_p, char *err, size_t errlen)
{
    double put[16], get[16];
    char value[64];
    mixl_status_t st = MIXL_OK;
    if (rounds > 16)
        rounds = 16;
    for (int i = 0; i < rounds && st == MIXL_OK; i++) {
        int n = snprintf(value, sizeof(value), "mixl-diag probe %d", i);
        double t0 = MPI_Wtime();
        st = mixl_registry_put(r, key, value, (size_t)n, 0, NULL);
        put[i] = ms_since(t0);
        if (st != MIXL_OK)
            break;
        mixl_registry_kv_t *kv = NULL;
        t0 = MPI_Wtime();
        st = mixl_registry_get(r, key, &kv);
        get[i] = ms_since(t0);
        if (st == MIXL_OK && (kv->len != (size_t)n || memcmp(kv->value, value, (size_t)n))) {
            snprintf(err, errlen, "get of %s returned other bytes than the put stored", key);
            mixl_registry_kv_free(kv);
            return -1;
        }
        mixl_registry_kv_free(kv);
    }
    if (st == MIXL_OK)
        st = mixl_registry_delete(r, key);
    if (st != MIXL_OK) {
        const char *detail = mixl_registry_last_error(r);
        snprintf(err, errlen, "%s%s%s", mixl_status_str(st), *detail ? ": " : "", detail);
        return -1;
    }
    qsort(put, (size_t)rounds, sizeof(double), cmp_double);
    qsort(get, (size_t)rounds, sizeof(double), cmp_double);
    *put_ms_p = put[rounds / 2];
    *get_ms_p = get[rounds / 2];
    return 0;
}

/* MIXL's etcd client against --etcd URL, into reg.mixl_client. */
static void etcd_client(mixl_diag_t *d, json_t *reg)
{
    json_t *c = json_object();
    json_object_set_new(reg, "mixl_client", c);
    mixl_registry_params_t p;
    mixl_registry_params_init(&p);
    p.backend = "etcd";
    p.endpoints = d->etcd_url;
    p.op_timeout_ms = d->registry_timeout_ms;
    p.retries = 0;
    mixl_registry_h r = NULL;
    mixl_status_t st = mixl_registry_create(&p, &r);
    if (st != MIXL_OK) {
        json_object_set_new(c, "status", json_string(mixl_status_str(st)));
        return;
    }
    char key[128], err[512] = "";
    snprintf(key, sizeof(key), "%s/mixl-diag/%d", mixl_registry_namespace(r), (int)getpid());
    double put_ms = 0, get_ms = 0;
    if (round_trips(r, key, 5, &put_ms, &get_ms, err, sizeof(err)) == 0) {
        json_object_set_new(c, "status", json_string("ok"));
        json_object_set_new(c, "put_ms", json_real(put_ms));
        json_object_set_new(c, "get_ms", json_real(get_ms));
    } else {
        json_object_set_new(c, "status", json_string("failed"));
        json_object_set_new(c, "error", json_string(err));
    }
    mixl_registry_destroy(r);
}

void mixl_diag_probe_registry(mixl_diag_t *d)
{
    json_t *reg = json_object();
    json_object_set_new(d->report, "registry", reg);
    json_t *etcd = json_object();
    json_object_set_new(reg, "etcd", etcd);
    if (!d->etcd_url) {
        json_object_set_new(etcd, "checked", json_false());
        json_object_set_new(etcd, "note", json_string("no --etcd URL given"));
        return;
    }
    json_object_set_new(etcd, "checked", json_true());
    json_object_set_new(etcd, "endpoint", json_string(d->etcd_url));
    etcd_health(d, etcd);
    etcd_client(d, etcd);
}

void mixl_diag_probe_registry_mpi(mixl_diag_t *d)
{
    json_t *m = NULL;
    if (d->rank == 0) {
        m = json_object();
        json_object_set_new(json_object_get(d->report, "registry"), "mpi", m);
    }
    /* The registry refuses anything below MPI_THREAD_MULTIPLE (its server is a thread). */
    if (d->thread_provided < MPI_THREAD_MULTIPLE) {
        if (m) {
            json_object_set_new(m, "checked", json_false());
            json_object_set_new(m, "note", json_string("needs MPI_THREAD_MULTIPLE"));
        }
        return;
    }
    mixl_registry_params_t p;
    mixl_registry_params_init(&p);
    p.backend = "mpi";
    p.comm = MPI_COMM_WORLD;
    p.server_rank = 0;
    p.op_timeout_ms = d->registry_timeout_ms;
    mixl_registry_h r = NULL;
    mixl_status_t st = mixl_registry_create(&p, &r);
    int created = st == MIXL_OK, all_created = 0;
    MPI_Allreduce(&created, &all_created, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

    int client = d->size - 1;
    /* [ok, put_ms, get_ms] from the client rank; the error text follows when not ok. */
    double res[3] = {0, 0, 0};
    char err[512] = "";
    if (!created)
        snprintf(err, sizeof(err), "mixl_registry_create: %s", mixl_status_str(st));
    else if (!all_created)
        snprintf(err, sizeof(err), "mixl_registry_create failed on another rank");
    if (all_created && d->rank == client) {
        char key[128];
        snprintf(key, sizeof(key), "%s/mixl-diag/rank-%d", mixl_registry_namespace(r), d->rank);
        res[0] = round_trips(r, key, 10, &res[1], &res[2], err, sizeof(err)) == 0;
    }
    if (client != 0) {
        if (d->rank == client) {
            MPI_Send(res, 3, MPI_DOUBLE, 0, 78, MPI_COMM_WORLD);
            MPI_Send(err, sizeof(err), MPI_CHAR, 0, 79, MPI_COMM_WORLD);
        } else if (d->rank == 0) {
            char err0[sizeof(err)];
            memcpy(err0, err, sizeof(err));
            MPI_Recv(res, 3, MPI_DOUBLE, client, 78, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Recv(err, sizeof(err), MPI_CHAR, client, 79, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            /* Rank 0's own failure explains more than the client's consequence. */
            if (*err0)
                memcpy(err, err0, sizeof(err));
        }
    }
    if (m) {
        json_object_set_new(m, "checked", json_true());
        json_object_set_new(m, "server_rank", json_integer(0));
        json_object_set_new(m, "client_rank", json_integer(client));
        json_object_set_new(m, "reachable", json_boolean(res[0] != 0));
        if (res[0] != 0) {
            json_object_set_new(m, "put_ms", json_real(res[1]));
            json_object_set_new(m, "get_ms", json_real(res[2]));
        } else {
            json_object_set_new(m, "error", json_string(*err ? err : "no answer"));
        }
    }
    if (created)
        mixl_registry_destroy(r);
}
