/*
 * The etcd backend against a fake v3 JSON gateway (libmicrohttpd on a free
 * loopback port) that answers badly on purpose: wrong status codes, bodies
 * that are cut short, not JSON, JSON of the wrong shape, larger than any
 * answer may be, or dripped out a byte at a time. Every case must end in a
 * specific status with a message naming the endpoint, within the operation
 * timeout (plus a second for a loaded machine), without a crash or a leak
 * (the sanitizer build runs this test as well). The two cases that send
 * 64 MiB get a longer timeout, so that it is the size limit that ends them.
 *   etcd_gateway_faults
 * The status check made at create is always answered well, so each case
 * exercises the operation named in its row. CTest runs it as part of
 * registry.units.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include <mixl/registry.h>

#include "util/clock.h"

#define OP_TIMEOUT_MS 1000
#define BIG_TIMEOUT_MS 20000 /* cases moving 64 MiB, slow under a sanitizer on a loaded node */
#define HUGE_BYTES (65u << 20) /* over the backend's 64 MiB answer limit */

typedef enum {
    ANS_REDIRECT,    /* 302 without a body */
    ANS_HTML_400,    /* 400 with an HTML page */
    ANS_503,         /* 503 on every try: no leader, ever */
    ANS_CUT,         /* 200 announcing 4096 bytes, closing after 40 */
    ANS_TRUNC_JSON,  /* 200 with JSON that stops in the middle */
    ANS_NOT_JSON,    /* 200 with HTML */
    ANS_ARRAY,       /* 200 with a JSON array */
    ANS_NO_REVISION, /* 200 put answer without header.revision */
    ANS_KVS_STRING,  /* 200 range answer whose kvs is a string */
    ANS_BAD_B64,     /* 200 range answer with a key that is not base64 */
    ANS_OTHER_KEY,   /* 200 range answer for another key */
    ANS_NO_LEASE_ID, /* 200 lease grant answer without an ID */
    ANS_HUGE,        /* 200 with a body over the limit */
    ANS_SLOW,        /* 200 whose body drips one byte every 100 ms */
    ANS_WATCH_BAD,   /* range: empty; watch: an event whose key is not base64 */
    ANS_WATCH_HUGE,  /* range: empty; watch: one line over the limit */
} answer_t;

static atomic_int mode;
static atomic_int quitting;
static int failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                             \
        }                                                                           \
    } while (0)

/* Body generator of the streamed answers: a prefix, then filler. */
typedef struct {
    answer_t kind;
    uint64_t total;
} stream_t;

static const char huge_prefix[] = "{\"header\":{\"revision\":\"5\"},\"filler\":\"";
static const char watch_prefix[] = "{\"result\":{\"created\":true,\"filler\":\"";

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *s = cls;

    if (atomic_load(&quitting)) return MHD_CONTENT_READER_END_WITH_ERROR;
    switch (s->kind) {
    case ANS_CUT:
        if (pos >= 40) return MHD_CONTENT_READER_END_WITH_ERROR; /* connection closed early */
        memset(buf, ' ', max < 40 ? max : 40);
        buf[0] = '{';
        return (ssize_t)(max < 40 ? max : 40);
    case ANS_SLOW: {
        struct timespec ts = {0, 100 * 1000000L};
        if (pos >= 200) return MHD_CONTENT_READER_END_OF_STREAM; /* 20 s: past every deadline */
        nanosleep(&ts, NULL);
        buf[0] = pos == 0 ? '{' : ' ';
        return 1;
    }
    default: { /* ANS_HUGE, ANS_WATCH_HUGE: a prefix, then 'a' without end */
        const char *prefix = s->kind == ANS_HUGE ? huge_prefix : watch_prefix;
        size_t plen = strlen(prefix), n = 0;
        if (pos >= s->total) return MHD_CONTENT_READER_END_OF_STREAM;
        while (n < max && pos + n < s->total) {
            buf[n] = pos + n < plen ? prefix[pos + n] : 'a';
            n++;
        }
        return (ssize_t)n;
    }
    }
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned code, const char *body,
                             const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (r == NULL) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue_stream(struct MHD_Connection *conn, answer_t kind, uint64_t size)
{
    stream_t *s = malloc(sizeof(*s));
    struct MHD_Response *r;
    enum MHD_Result ret;

    if (s == NULL) return MHD_NO;
    s->kind = kind;
    s->total = size == MHD_SIZE_UNKNOWN ? HUGE_BYTES : size;
    r = MHD_create_response_from_callback(size, 1 << 20, stream_read, s, free);
    if (r == NULL) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* The answer for one POST, by mode and path. */
static enum MHD_Result answer(struct MHD_Connection *conn, const char *url)
{
    static const char *const json = "application/json";
    answer_t m = (answer_t)atomic_load(&mode);
    int is_range = strcmp(url, "/v3/kv/range") == 0;

    if (strcmp(url, "/v3/maintenance/status") == 0)
        return queue(conn, 200, "{\"header\":{\"revision\":\"1\"},\"version\":\"3.5.0-fake\"}", json);
    switch (m) {
    case ANS_REDIRECT: {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;
        if (r == NULL) return MHD_NO;
        MHD_add_response_header(r, "Location", "http://127.0.0.1:1/elsewhere");
        ret = MHD_queue_response(conn, 302, r);
        MHD_destroy_response(r);
        return ret;
    }
    case ANS_HTML_400:
        return queue(conn, 400, "<html><body>Bad Request</body></html>", "text/html");
    case ANS_503:
        return queue(conn, 503, "{\"error\":\"etcdserver: no leader\",\"code\":14}", json);
    case ANS_CUT:
        return queue_stream(conn, ANS_CUT, 4096);
    case ANS_TRUNC_JSON:
        return queue(conn, 200, "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"7", json);
    case ANS_NOT_JSON:
        return queue(conn, 200, "<html>It works!</html>", "text/html");
    case ANS_ARRAY:
        return queue(conn, 200, "[1,2,3]", json);
    case ANS_NO_REVISION:
        return queue(conn, 200, "{\"header\":{\"cluster_id\":\"1\"}}", json);
    case ANS_KVS_STRING:
        return queue(conn, 200, "{\"header\":{\"revision\":\"7\"},\"kvs\":\"none\",\"count\":\"1\"}", json);
    case ANS_BAD_B64:
        return queue(conn, 200, "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"%%%not base64\","
                                "\"value\":\"b2s=\"}],\"count\":\"1\"}", json);
    case ANS_OTHER_KEY: /* "other" / "ok" */
        return queue(conn, 200, "{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"b3RoZXI=\","
                                "\"value\":\"b2s=\"}],\"count\":\"1\"}", json);
    case ANS_NO_LEASE_ID:
        return queue(conn, 200, "{\"header\":{\"revision\":\"7\"},\"TTL\":\"4\"}", json);
    case ANS_HUGE:
        return queue_stream(conn, ANS_HUGE, HUGE_BYTES);
    case ANS_SLOW:
        return queue_stream(conn, ANS_SLOW, MHD_SIZE_UNKNOWN);
    case ANS_WATCH_BAD:
        if (is_range) return queue(conn, 200, "{\"header\":{\"revision\":\"7\"}}", json);
        return queue(conn, 200, "{\"result\":{\"header\":{\"revision\":\"8\"},\"events\":[{\"kv\":"
                                "{\"key\":\"***\",\"value\":\"b2s=\"}}]}}\n", json);
    case ANS_WATCH_HUGE:
        if (is_range) return queue(conn, 200, "{\"header\":{\"revision\":\"7\"}}", json);
        return queue_stream(conn, ANS_WATCH_HUGE, MHD_SIZE_UNKNOWN);
    }
    return MHD_NO;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    static int started;

    (void)cls;
    (void)method;
    (void)version;
    (void)upload;
    if (*con_cls == NULL) { /* headers only so far */
        *con_cls = &started;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* the request body: not needed */
        *upload_size = 0;
        return MHD_YES;
    }
    return answer(conn, url);
}

static mixl_registry_h open_fake(const char *endpoint, int timeout_ms)
{
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;

    mixl_registry_params_init(&p);
    p.backend = "etcd";
    p.endpoints = endpoint;
    p.ns = "gw";
    p.op_timeout_ms = timeout_ms;
    p.lease_ttl_s = 4;
    if (mixl_registry_create(&p, &reg) != MIXL_OK) {
        fprintf(stderr, "FAIL: cannot open the fake gateway %s\n", endpoint);
        failures++;
        return NULL;
    }
    return reg;
}

typedef enum { OP_PUT, OP_GET, OP_GRANT, OP_WAIT } op_t;

static const struct {
    answer_t mode;
    op_t op;
    mixl_status_t want;
    const char *text; /* also in the message, besides the endpoint */
    int timeout_ms;   /* 0: OP_TIMEOUT_MS */
} cases[] = {
    {ANS_REDIRECT, OP_PUT, MIXL_ERR_REGISTRY, "HTTP 302", 0},
    {ANS_HTML_400, OP_GET, MIXL_ERR_REGISTRY, "HTTP 400", 0},
    {ANS_503, OP_PUT, MIXL_ERR_UNREACHABLE, "HTTP 503: etcdserver: no leader", 0},
    {ANS_CUT, OP_GET, MIXL_ERR_UNREACHABLE, "bytes remaining", 0},
    {ANS_TRUNC_JSON, OP_PUT, MIXL_ERR_PROTOCOL, "is not JSON", 0},
    {ANS_NOT_JSON, OP_GET, MIXL_ERR_PROTOCOL, "is not JSON", 0},
    {ANS_ARRAY, OP_GRANT, MIXL_ERR_PROTOCOL, "not an object", 0},
    {ANS_NO_REVISION, OP_PUT, MIXL_ERR_PROTOCOL, "no header.revision", 0},
    {ANS_KVS_STRING, OP_GET, MIXL_ERR_PROTOCOL, "kvs is not an array", 0},
    {ANS_BAD_B64, OP_GET, MIXL_ERR_PROTOCOL, "not in base64", 0},
    {ANS_OTHER_KEY, OP_GET, MIXL_ERR_PROTOCOL, "another key, other", 0},
    {ANS_NO_LEASE_ID, OP_GRANT, MIXL_ERR_PROTOCOL, "no lease ID", 0},
    {ANS_HUGE, OP_GET, MIXL_ERR_PROTOCOL, "answer longer than 64 MiB", BIG_TIMEOUT_MS},
    {ANS_SLOW, OP_PUT, MIXL_ERR_UNREACHABLE, "timed out", 0},
    {ANS_WATCH_BAD, OP_WAIT, MIXL_ERR_PROTOCOL, "watch event not decodable", 0},
    {ANS_WATCH_HUGE, OP_WAIT, MIXL_ERR_PROTOCOL, "a line over the answer limit", BIG_TIMEOUT_MS},
};

static const char *const op_names[] = {"put", "get", "lease grant", "wait"};

static void run_case(int i, const char *endpoint)
{
    int timeout_ms = cases[i].timeout_ms ? cases[i].timeout_ms : OP_TIMEOUT_MS;
    mixl_registry_h reg = open_fake(endpoint, timeout_ms);
    mixl_registry_kv_t *kv = NULL;
    int64_t lease = 0;
    mixl_status_t st = MIXL_OK;
    uint64_t t0;
    double ms;
    const char *msg;

    if (reg == NULL) return;
    atomic_store(&mode, (int)cases[i].mode);
    t0 = mixl_now_ns();
    switch (cases[i].op) {
    case OP_PUT: st = mixl_registry_put(reg, "gw/key", "v", 1, 0, NULL); break;
    case OP_GET: st = mixl_registry_get(reg, "gw/key", &kv); break;
    case OP_GRANT: st = mixl_registry_lease_grant(reg, 4, &lease); break;
    case OP_WAIT: st = mixl_registry_wait(reg, "gw/key", timeout_ms, &kv); break;
    }
    ms = (double)(mixl_now_ns() - t0) / 1e6;
    msg = mixl_registry_last_error(reg);
    printf("case %2d %-11s -> %-20s in %5.0f ms: %s\n", i, op_names[cases[i].op],
           mixl_status_name(st), ms, msg);
    if (st != cases[i].want || strstr(msg, endpoint) == NULL || strstr(msg, cases[i].text) == NULL) {
        fprintf(stderr, "FAIL case %d: want %s with '%s' and the endpoint %s\n", i,
                mixl_status_name(cases[i].want), cases[i].text, endpoint);
        failures++;
    }
    /* The operation timeout bounds every case; a second more for a loaded machine. */
    CHECK(ms < timeout_ms + 1000);
    if (st == MIXL_OK) mixl_registry_kv_free(kv);
    mixl_registry_destroy(reg);
}

int main(void)
{
    struct sockaddr_in sin;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    char endpoint[64];

    setvbuf(stdout, NULL, _IOLBF, 0); /* each case's line survives a timeout kill */
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0; /* a free port */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sin,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "FAIL: cannot start the fake gateway on 127.0.0.1: %s\n", strerror(errno));
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "FAIL: the fake gateway has no port\n");
        MHD_stop_daemon(d);
        return 1;
    }
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", (unsigned)info->port);
    printf("fake etcd gateway at %s, operation timeout %d ms (%d ms for 64 MiB answers)\n",
           endpoint, OP_TIMEOUT_MS, BIG_TIMEOUT_MS);
    for (int i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) run_case(i, endpoint);
    atomic_store(&quitting, 1);
    MHD_stop_daemon(d);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
