/*
 * Authentication of the TCP handshake (docs/tcp-protocol.md,
 * "Authentication"): agents sharing the job's secret transfer; a wrong
 * secret, no secret, a replayed handshake and a client that stops between
 * the two proofs are refused with MIXL_ERR_AUTH or dropped in bounded time,
 * counted, and never touch registered memory. A non-loopback listener
 * without a secret is refused unless allowed. The raw-socket client computes
 * the proofs from the documented byte layout with libcrypto directly, so the
 * test also pins the wire format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tcp_harness.h"
#include "transport/tcp/tcp_internal.h"

#define MEM (256u << 10)

static const char SECRET[] = "job-7f3a9c secret shared by every agent";
static const char OTHER[] = "a different secret, of another job!";

static mixl_agent_params_t with_secret(const char *secret)
{
    mixl_agent_params_t p;

    memset(&p, 0, sizeof(p));
    p.tcp_secret = secret;
    p.tcp_secret_len = secret != NULL ? strlen(secret) : 0;
    return p;
}

static uint64_t rejected(h_agent_t *a)
{
    return atomic_load(&((tcp_t *)a->tp.priv)->auth_rejected);
}

/* The counter as seen within limit_ms (a refusal may be counted just after
 * the peer saw its connection end). */
static uint64_t rejected_at_least(h_agent_t *a, uint64_t want, int limit_ms)
{
    uint64_t end = mixl_deadline_ns(limit_ms);
    while (rejected(a) < want && mixl_now_ns() < end) usleep(1000);
    return rejected(a);
}

typedef struct {
    h_agent_t srv;
    uint8_t *mem;
    mixl_tp_region_t *r;
    int port;
} server_t;

static int server_setup(void **state)
{
    server_t *s = calloc(1, sizeof(*s));
    mixl_agent_params_t p = with_secret(SECRET);

    if (s == NULL) return -1;
    s->mem = calloc(1, MEM);
    if (s->mem == NULL || h_agent_init_ex(&s->srv, "srv", 700, &p) != MIXL_OK) return -1;
    s->r = h_register(&s->srv, s->mem, MEM);
    s->port = h_port(&s->srv);
    *state = s;
    return 0;
}

static int server_teardown(void **state)
{
    server_t *s = *state;
    h_agent_fini(&s->srv);
    free(s->mem);
    free(s);
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}

/* The proof as documented: HMAC-SHA256(secret, label NUL nonce_c nonce_s
 * len server len client). */
static void doc_mac(const char *secret, const char *label, const uint8_t *nc, const uint8_t *ns,
                    const char *server, const char *client, uint8_t out[32])
{
    uint8_t msg[512];
    size_t pos = 0;
    unsigned len = 32;

    memcpy(msg, label, strlen(label) + 1);
    pos += strlen(label) + 1;
    memcpy(msg + pos, nc, 32);
    pos += 32;
    memcpy(msg + pos, ns, 32);
    pos += 32;
    msg[pos++] = (uint8_t)strlen(server);
    memcpy(msg + pos, server, strlen(server));
    pos += strlen(server);
    msg[pos++] = (uint8_t)strlen(client);
    memcpy(msg + pos, client, strlen(client));
    pos += strlen(client);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, pos, out, &len);
}

/* Hello of client `name` to `target` carrying nonce nc. */
static size_t auth_hello(uint8_t *buf, const char *name, const char *target, const uint8_t *nc)
{
    mixl_tcp_hello_t h;

    memset(&h, 0, sizeof(h));
    h.version = MIXL_TCP_VERSION;
    h.caps = MIXL_TCP_CAP_CRC32C | MIXL_TCP_CAP_AUTH;
    h.max_frame = MIXL_TCP_FRAME_DEFAULT;
    h.name_len = (uint8_t)strlen(name);
    memcpy(h.name, name, h.name_len);
    h.text_len = (uint8_t)strlen(target);
    memcpy(h.text, target, h.text_len);
    h.auth_len = 32;
    memcpy(h.auth, nc, 32);
    return mixl_tcp_hello_encode(&h, buf);
}

static size_t auth_frame(uint8_t *buf, const uint8_t mac[32])
{
    mixl_tcp_frame_t f;

    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_AUTH;
    f.payload_len = 32;
    f.length = 32;
    mixl_tcp_frame_encode(&f, buf);
    memcpy(buf + MIXL_TCP_HDR_LEN, mac, 32);
    return MIXL_TCP_HDR_LEN + 32;
}

static size_t write_frame(uint8_t *buf, uint32_t region, uint64_t off, const uint8_t *pay,
                          uint32_t len)
{
    mixl_tcp_frame_t f;

    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_WRITE;
    f.flags = MIXL_TCP_F_LAST;
    f.req_id = 5;
    f.region = region;
    f.offset = off;
    f.payload_len = len;
    f.length = len;
    mixl_tcp_frame_encode(&f, buf);
    memcpy(buf + MIXL_TCP_HDR_LEN, pay, len);
    return MIXL_TCP_HDR_LEN + len;
}

/* A client agent (secret or none) prepares a WRITE to srv: its status. */
static mixl_status_t client_write(server_t *s, const char *secret, uint8_t seed, char *err,
                                  size_t err_len)
{
    h_agent_t c;
    h_peer_t p;
    h_xfer_t hx;
    static uint8_t src[4096];
    mixl_agent_params_t cp = with_secret(secret);
    mixl_status_t st;

    for (size_t i = 0; i < sizeof(src); i++) src[i] = (uint8_t)(i * 7 + seed);
    assert_int_equal(h_agent_init_ex(&c, "cli", 2000, &cp), MIXL_OK);
    mixl_tp_region_t *lr = h_register(&c, src, sizeof(src));
    assert_int_equal(h_peer_add(&c, &s->srv, &p), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_WRITE, &p);
    h_xfer_span(&hx, lr, src, &p.regions[0], p.regions[0].addr + 4096, sizeof(src));
    st = mixl_tp_tcp_ops.xfer_prepare(&c.tp, &hx.x);
    if (st == MIXL_OK) {
        st = h_run(&c, &hx, 10000);
        if (st == MIXL_OK) assert_memory_equal(s->mem + 4096, src, sizeof(src));
        mixl_tp_tcp_ops.xfer_release(&c.tp, &hx.x);
    }
    snprintf(err, err_len, "%s", mixl_errbuf_get(&c.eb));
    mixl_tp_tcp_ops.peer_remove(&c.tp, &p.peer);
    h_agent_fini(&c);
    return st;
}

static void test_same_secret_transfers(void **state)
{
    server_t *s = *state;
    char err[512], line[256];

    for (uint8_t seed = 1; seed <= 3; seed++)
        assert_int_equal(client_write(s, SECRET, seed, err, sizeof(err)), MIXL_OK);
    assert_int_equal(rejected(&s->srv), 0);
    mixl_tp_tcp_ops.path_report(&s->srv.tp, line, sizeof(line));
    assert_non_null(strstr(line, "peers authenticated"));
}

static void test_wrong_secret(void **state)
{
    server_t *s = *state;
    char err[512];
    uint64_t before = rejected(&s->srv);

    /* A client agent with another job's secret finds the server's proof wrong. */
    assert_int_equal(client_write(s, OTHER, 9, err, sizeof(err)), MIXL_ERR_AUTH);
    assert_non_null(strstr(err, "failed to prove the shared secret"));
    assert_true(all_zero(s->mem, MEM));

    /* A client that ignores that and sends its proof anyway is refused by the
     * server: ERROR (MIXL_ERR_AUTH) and the connection closed, data not taken. */
    uint8_t nc[32], buf[MIXL_TCP_HELLO_MAX + 4096], mac[32], pay[64];
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f;
    memset(nc, 0x5a, sizeof(nc));
    memset(pay, 0xee, sizeof(pay));
    int fd = h_connect(s->port);
    assert_true(fd >= 0);
    assert_int_equal(h_send_all(fd, buf, auth_hello(buf, "intruder", "srv", nc)), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_ACCEPT);
    assert_int_equal(h.auth_len, 64);
    doc_mac(OTHER, "MIXL-TCP-AUTH client", nc, h.auth, "srv", "intruder", mac);
    size_t n = auth_frame(buf, mac);
    n += write_frame(buf + n, s->r->id, 0, pay, sizeof(pay));
    assert_int_equal(h_send_all(fd, buf, n), 0);
    assert_int_equal(h_recv_frame(fd, &f, buf, sizeof(buf)), 0);
    assert_int_equal(f.type, MIXL_TCP_ERROR);
    char msg[256];
    assert_int_equal(mixl_tcp_error_decode(buf, f.payload_len, msg, sizeof(msg)), MIXL_ERR_AUTH);
    assert_non_null(strstr(msg, "wrong proof"));
    assert_true(h_closed(fd, 3000));
    close(fd);
    assert_true(all_zero(s->mem, MEM));
    assert_true(rejected_at_least(&s->srv, before + 2, 3000) == before + 2);
}

static void test_no_secret(void **state)
{
    server_t *s = *state;
    char err[512];
    uint64_t before = rejected(&s->srv);

    /* A client agent without a secret is told authentication is required. */
    assert_int_equal(client_write(s, NULL, 4, err, sizeof(err)), MIXL_ERR_AUTH);
    assert_non_null(strstr(err, "requires authentication"));
    assert_int_equal(rejected(&s->srv), before + 1);

    /* A raw peer that skips authentication and sends a WRITE at once. */
    uint8_t buf[MIXL_TCP_HELLO_MAX], pay[64];
    mixl_tcp_hello_t h;
    memset(pay, 0xab, sizeof(pay));
    int fd = h_connect(s->port);
    assert_true(fd >= 0);
    assert_int_equal(h_send_hello(fd, MIXL_TCP_VERSION, "anon", "srv", 0), 0);
    assert_int_equal(h_send_all(fd, buf, write_frame(buf, s->r->id, 0, pay, sizeof(pay))), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_AUTH);
    assert_true(h_closed(fd, 3000));
    close(fd);
    assert_true(all_zero(s->mem, MEM));
    assert_int_equal(rejected(&s->srv), before + 2);

    /* The other way round: a client with a secret refuses a server without. */
    h_agent_t open_srv;
    static uint8_t mem[8192];
    assert_int_equal(h_agent_init(&open_srv, "open", 2000), MIXL_OK);
    assert_non_null(h_register(&open_srv, mem, sizeof(mem)));
    h_agent_t c;
    h_peer_t p;
    h_xfer_t hx;
    mixl_agent_params_t cp = with_secret(SECRET);
    assert_int_equal(h_agent_init_ex(&c, "cli", 2000, &cp), MIXL_OK);
    mixl_tp_region_t *lr = h_register(&c, mem, 4096);
    assert_int_equal(h_peer_add(&c, &open_srv, &p), MIXL_OK);
    h_xfer_init(&hx, MIXL_OP_READ, &p);
    h_xfer_span(&hx, lr, mem, &p.regions[0], p.regions[0].addr + 4096, 4096);
    assert_int_equal(mixl_tp_tcp_ops.xfer_prepare(&c.tp, &hx.x), MIXL_ERR_AUTH);
    assert_non_null(strstr(mixl_errbuf_get(&c.eb), "does not authenticate"));
    mixl_tp_tcp_ops.peer_remove(&c.tp, &p.peer);
    h_agent_fini(&c);
    h_agent_fini(&open_srv);
}

static void test_replayed_handshake(void **state)
{
    server_t *s = *state;
    uint8_t nc[32], rec[1024], buf[1024], mac[32], pay1[64], pay2[64];
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f;
    size_t n;
    uint64_t before = rejected(&s->srv);

    memset(nc, 0x11, sizeof(nc));
    memset(pay1, 0x31, sizeof(pay1));
    memset(pay2, 0x32, sizeof(pay2));

    /* A legitimate client, byte by byte; its bytes are recorded. */
    int fd = h_connect(s->port);
    assert_true(fd >= 0);
    size_t hello_len = auth_hello(rec, "legit", "srv", nc);
    assert_int_equal(h_send_all(fd, rec, hello_len), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_ACCEPT);
    assert_true(h.caps & MIXL_TCP_CAP_AUTH);
    assert_int_equal(h.auth_len, 64);
    /* The server's proof follows the documented layout. */
    doc_mac(SECRET, "MIXL-TCP-AUTH server", nc, h.auth, "srv", "legit", mac);
    assert_memory_equal(mac, h.auth + 32, 32);
    doc_mac(SECRET, "MIXL-TCP-AUTH client", nc, h.auth, "srv", "legit", mac);
    size_t auth_len = auth_frame(rec + hello_len, mac);
    assert_int_equal(h_send_all(fd, rec + hello_len, auth_len), 0);
    assert_int_equal(h_recv_frame(fd, &f, buf, sizeof(buf)), 0);
    assert_int_equal(f.type, MIXL_TCP_ACK);
    n = write_frame(buf, s->r->id, 0, pay1, sizeof(pay1));
    assert_int_equal(h_send_all(fd, buf, n), 0);
    assert_int_equal(h_recv_frame(fd, &f, buf, sizeof(buf)), 0);
    assert_int_equal(f.type, MIXL_TCP_ACK);
    assert_memory_equal(s->mem, pay1, sizeof(pay1));
    close(fd);

    /* The recorded handshake replayed on a new connection, followed by a
     * WRITE of another pattern: the server's fresh nonce makes the old proof
     * worthless. */
    fd = h_connect(s->port);
    assert_true(fd >= 0);
    memcpy(buf, rec, hello_len + auth_len);
    n = hello_len + auth_len;
    n += write_frame(buf + n, s->r->id, 0, pay2, sizeof(pay2));
    assert_int_equal(h_send_all(fd, buf, n), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_ACCEPT);
    assert_int_equal(h_recv_frame(fd, &f, buf, sizeof(buf)), 0);
    assert_int_equal(f.type, MIXL_TCP_ERROR);
    assert_true(h_closed(fd, 3000));
    close(fd);
    assert_memory_equal(s->mem, pay1, sizeof(pay1)); /* the replay wrote nothing */
    assert_true(all_zero(s->mem + sizeof(pay1), MEM - sizeof(pay1)));
    assert_int_equal(rejected(&s->srv), before + 1);
    memset(s->mem, 0, sizeof(pay1));
}

static void test_client_stops_mid_handshake(void **state)
{
    server_t *s = *state;
    uint8_t nc[32], buf[MIXL_TCP_HELLO_MAX];
    mixl_tcp_hello_t h;
    uint64_t before = rejected(&s->srv);

    memset(nc, 0x77, sizeof(nc));
    int fd = h_connect(s->port);
    assert_true(fd >= 0);
    uint64_t t0 = mixl_now_ns();
    assert_int_equal(h_send_all(fd, buf, auth_hello(buf, "staller", "srv", nc)), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h.verdict, MIXL_TCP_HELLO_ACCEPT);
    /* ... and never sends its proof: dropped after the server's timeout (700 ms). */
    assert_true(h_closed(fd, 5000));
    double waited = (double)(mixl_now_ns() - t0) / 1e9;
    close(fd);
    assert_true(waited >= 0.6 && waited < 3.0);
    assert_int_equal(rejected(&s->srv), before + 1);
    /* Half a proof, then silence: dropped too. */
    fd = h_connect(s->port);
    assert_true(fd >= 0);
    assert_int_equal(h_send_all(fd, buf, auth_hello(buf, "staller", "srv", nc)), 0);
    assert_int_equal(h_recv_hello(fd, &h), 0);
    assert_int_equal(h_send_all(fd, buf, 20), 0);
    assert_true(h_closed(fd, 5000));
    close(fd);
    assert_int_equal(rejected(&s->srv), before + 2);
    assert_true(all_zero(s->mem, MEM));
}

static void test_open_bind_needs_secret(void **state)
{
    h_agent_t a;
    mixl_agent_params_t p;
    (void)state;

    memset(&p, 0, sizeof(p));
    p.tcp_bind = "0.0.0.0";
    assert_int_equal(h_agent_init_ex(&a, "wide", 1000, &p), MIXL_ERR_CONFIG);
    assert_non_null(strstr(mixl_errbuf_get(&a.eb), "without a secret"));
    p.tcp_allow_unauthenticated = 1;
    assert_int_equal(h_agent_init_ex(&a, "wide", 1000, &p), MIXL_OK);
    h_agent_fini(&a);
    p.tcp_allow_unauthenticated = 0;
    p.tcp_secret = SECRET;
    p.tcp_secret_len = strlen(SECRET);
    assert_int_equal(h_agent_init_ex(&a, "wide", 1000, &p), MIXL_OK);
    h_agent_fini(&a);
    p.tcp_secret_len = 8; /* too short to be a secret */
    assert_int_equal(h_agent_init_ex(&a, "wide", 1000, &p), MIXL_ERR_INVALID_PARAM);
}

static void test_secret_file(void **state)
{
    h_agent_t a;
    mixl_agent_params_t p;
    char path[] = "/tmp/mixl-tcp-secret-XXXXXX";
    int fd = mkstemp(path);
    (void)state;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, SECRET, strlen(SECRET)), (ssize_t)strlen(SECRET));
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);
    memset(&p, 0, sizeof(p));
    p.tcp_bind = "0.0.0.0";
    p.tcp_secret_file = path;
    chmod(path, 0644); /* readable by others: refused */
    assert_int_equal(h_agent_init_ex(&a, "keyed", 1000, &p), MIXL_ERR_CONFIG);
    assert_non_null(strstr(mixl_errbuf_get(&a.eb), "chmod 600"));
    chmod(path, 0600);
    assert_int_equal(h_agent_init_ex(&a, "keyed", 1000, &p), MIXL_OK);
    /* The file's secret (newline dropped) is the one in the parameters. */
    tcp_t *t = a.tp.priv;
    assert_int_equal(t->secret_len, strlen(SECRET));
    assert_memory_equal(t->secret, SECRET, strlen(SECRET));
    h_agent_fini(&a);
    unlink(path);
    assert_int_equal(h_agent_init_ex(&a, "keyed", 1000, &p), MIXL_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_secret_transfers, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_secret, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_no_secret, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_replayed_handshake, server_setup, server_teardown),
        cmocka_unit_test_setup_teardown(test_client_stops_mid_handshake, server_setup,
                                        server_teardown),
        cmocka_unit_test(test_open_bind_needs_secret),
        cmocka_unit_test(test_secret_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
