/*
 * etcd registry faults, against real etcd servers:
 *   - no server at start: a clear MIXL_ERR_UNREACHABLE within the op timeout;
 *     a dead endpoint listed first is skipped (failover)
 *   - a value over etcd's request limit: MIXL_ERR_TOO_LARGE naming the key
 *   - values are visible to `etcdctl get --prefix <ns>/mixl_metadata/`
 *   - etcd killed and restarted (data wiped) mid-run: the store re-grants its
 *     lease and re-publishes; operations during the outage fail cleanly
 *   - token auth: works with the right password, fails clearly with a wrong
 *     one, and re-authenticates when the token expires
 *
 *   registry_etcd_faults <etcd_fixture.sh> <private-dir> <shared-endpoint-file>
 *   registry_etcd_faults --cluster <etcd_fixture.sh> <dir>
 *     (a real 3-member cluster: a client keeps working when the member it
 *     talks to dies, and fails cleanly once the cluster loses its quorum)
 *   registry_etcd_faults --tls <endpoint-file-of-a-TLS-fixture>
 *     (TLS: the right CA and client certificate work; without the client
 *     certificate, or without the CA, a clear MIXL_ERR_UNREACHABLE naming why)
 * The shared server (CTest fixture) serves the read-only checks; a private
 * one in <private-dir> is killed, restarted and put under auth.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mixl/registry.h>

#include "registry_test_util.h"
#include "util/clock.h"

static int failures;
static const char *fixture, *private_dir;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fixture_cmd(const char *cmd, const char *env)
{
    char line[2048];
    snprintf(line, sizeof(line), "%s %s '%s' %s", env ? env : "", fixture, cmd == NULL ? "" : cmd,
             private_dir);
    return system(line);
}

static void stop_private(void)
{
    fixture_cmd("stop", NULL);
}

static mixl_status_t open_reg(const char *endpoints, const char *ns, int timeout_ms,
                              mixl_registry_h *reg_p)
{
    mixl_registry_params_t p;

    mixl_registry_params_init(&p);
    p.backend = "etcd";
    p.endpoints = endpoints;
    p.ns = ns;
    p.op_timeout_ms = timeout_ms;
    p.lease_ttl_s = 4;
    return mixl_registry_create(&p, reg_p);
}

static void test_not_running(const char *good)
{
    mixl_registry_h reg = NULL;
    char both[1024];
    mixl_status_t st;

    /* Port 1 on loopback: nothing listens, connections are refused. */
    st = open_reg("http://127.0.0.1:1", "faults", 800, &reg);
    CHECK(st == MIXL_ERR_UNREACHABLE && reg == NULL);
    printf("etcd not running: %s\n", mixl_status_name(st));
    snprintf(both, sizeof(both), "http://127.0.0.1:1,%s", good);
    CHECK(open_reg(both, "faults", 3000, &reg) == MIXL_OK);
    if (reg != NULL) {
        mixl_registry_kv_t *kv = NULL;
        CHECK(mixl_registry_put(reg, "faults/failover", "ok", 2, 0, NULL) == MIXL_OK);
        CHECK(mixl_registry_get(reg, "faults/failover", &kv) == MIXL_OK);
        mixl_registry_kv_free(kv);
        CHECK(mixl_registry_delete(reg, "faults/failover") == MIXL_OK);
        mixl_registry_destroy(reg);
    }
}

static void test_too_large(const char *good)
{
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;
    /* Over etcd's --max-request-bytes (1.5 MiB), and over the gateway's gRPC limit (2 MiB). */
    size_t sizes[2] = {1600u << 10, 2u << 20}, big = sizes[1];
    void *v = calloc(1, big);

    mixl_registry_params_init(&p);
    p.backend = "etcd";
    p.endpoints = good;
    p.ns = "faults";
    p.max_value_bytes = 8u << 20; /* let the server be the one to refuse */
    CHECK(v != NULL && mixl_registry_create(&p, &reg) == MIXL_OK);
    if (reg != NULL && v != NULL) {
        for (int i = 0; i < 2; i++) {
            mixl_registry_clear_error(reg);
            CHECK(mixl_registry_put(reg, "faults/huge", v, sizes[i], 0, NULL) == MIXL_ERR_TOO_LARGE);
            CHECK(strstr(mixl_registry_last_error(reg), "faults/huge") != NULL);
            printf("value of %zu bytes: %s\n", sizes[i], mixl_registry_last_error(reg));
        }
        /* The connection is still usable. */
        CHECK(mixl_registry_put(reg, "faults/small", "s", 1, 0, NULL) == MIXL_OK);
        CHECK(mixl_registry_delete(reg, "faults/small") == MIXL_OK);
    }
    mixl_registry_destroy(reg);
    free(v);
}

static void test_etcdctl_sees_values(const char *good)
{
    mixl_registry_h reg = NULL;
    mixl_md_store_params_t sp = {.size = sizeof(sp), .flags = MIXL_MD_STORE_RAW};
    mixl_md_store_h s = NULL;
    char cmd[1024], line[512];
    int seen = 0;
    FILE *f;

    /* The fixture needs etcdctl too (scripts/deps.sh installs etcd-client): its absence is a
     * broken setup, never a passed check. */
    if (access("/usr/bin/etcdctl", X_OK) != 0) {
        fprintf(stderr, "FAIL: /usr/bin/etcdctl not installed (etcd-client): cannot check that "
                        "values are visible to etcdctl\n");
        failures++;
        return;
    }
    CHECK(open_reg(good, "visible", 3000, &reg) == MIXL_OK);
    if (reg == NULL) return;
    sp.reg = reg;
    CHECK(mixl_md_store_create(&sp, &s) == MIXL_OK);
    CHECK(s != NULL && mixl_md_store_publish(s, "prefill-0", "metadata-bytes", 14) == MIXL_OK);
    snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=%s get --prefix "
             "visible/mixl_metadata/", good);
    f = popen(cmd, "r");
    CHECK(f != NULL);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strcmp(line, "visible/mixl_metadata/prefill-0\n") == 0) seen |= 1;
        if (strcmp(line, "metadata-bytes\n") == 0) seen |= 2;
    }
    if (f != NULL) CHECK(pclose(f) == 0);
    CHECK(seen == 3);
    mixl_md_store_destroy(s);
    mixl_registry_destroy(reg);
}

/* Poll until key holds want (deadline_ms); 1 when it did. */
static int wait_value(mixl_registry_h reg, const char *key, const char *want, int deadline_ms)
{
    uint64_t until = mixl_deadline_ns(deadline_ms);

    while (mixl_now_ns() < until) {
        mixl_registry_kv_t *kv = NULL;
        if (mixl_registry_get(reg, key, &kv) == MIXL_OK) {
            int same = kv->len == strlen(want) && memcmp(kv->value, want, kv->len) == 0;
            mixl_registry_kv_free(kv);
            if (same) return 1;
        }
        mixl_registry_clear_error(reg);
        sleep_ms(200);
    }
    return 0;
}

static void test_restart(const char *endpoint)
{
    mixl_registry_h reg = NULL;
    mixl_md_store_params_t sp = {.size = sizeof(sp), .flags = MIXL_MD_STORE_RAW, .refresh_ms = 300};
    mixl_md_store_h s = NULL;
    mixl_registry_kv_t *kv = NULL;
    uint64_t republished = 0;
    const char *key = "restart/mixl_metadata/decode-7";

    CHECK(open_reg(endpoint, "restart", 1500, &reg) == MIXL_OK);
    if (reg == NULL) return;
    sp.reg = reg;
    CHECK(mixl_md_store_create(&sp, &s) == MIXL_OK);
    if (s == NULL) goto out;
    CHECK(mixl_md_store_publish(s, "decode-7", "blocks@0x1000", 13) == MIXL_OK);

    /* Kill etcd: operations fail within their timeout, with a clear status. */
    CHECK(fixture_cmd("kill", NULL) == 0);
    CHECK(mixl_registry_get(reg, key, &kv) == MIXL_ERR_UNREACHABLE);
    printf("during the outage: %s\n", mixl_registry_last_error(reg));
    mixl_registry_clear_error(reg);
    sleep_ms(1000); /* a few keep-alive rounds fail meanwhile */

    /* Back with its data wiped: the lease and the key are gone; the store puts them back. */
    CHECK(fixture_cmd("restart", "WIPE=1") == 0);
    CHECK(wait_value(reg, key, "blocks@0x1000", 20000));
    mixl_md_store_stats(s, NULL, NULL, &republished);
    CHECK(republished >= 1);
    CHECK(mixl_registry_get(reg, key, &kv) == MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->lease != 0);
        CHECK(mixl_registry_lease_keepalive(reg, kv->lease) == MIXL_OK);
        mixl_registry_kv_free(kv);
        kv = NULL;
    }
    printf("after restart with wiped data: re-published %llu time(s)\n",
           (unsigned long long)republished);

    /* Back with its data kept: the lease survived, the key is still there. */
    CHECK(fixture_cmd("kill", NULL) == 0);
    CHECK(fixture_cmd("restart", NULL) == 0);
    CHECK(wait_value(reg, key, "blocks@0x1000", 20000));
out:
    mixl_md_store_destroy(s);
    mixl_registry_destroy(reg);
}

static void test_auth(const char *endpoint)
{
    char cmd[1024];
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;
    mixl_status_t st;

    /* Tokens that expire after 1 s idle, to exercise re-authentication. */
    CHECK(fixture_cmd("kill", NULL) == 0);
    CHECK(fixture_cmd("restart", "ETCD_EXTRA_ARGS='--auth-token-ttl 1'") == 0);
    snprintf(cmd, sizeof(cmd), "export ETCDCTL_API=3; E=--endpoints=%s; "
             "/usr/bin/etcdctl $E user add root:s3cret >/dev/null && "
             "/usr/bin/etcdctl $E user grant-role root root >/dev/null && "
             "/usr/bin/etcdctl $E auth enable >/dev/null", endpoint);
    CHECK(system(cmd) == 0);

    mixl_registry_params_init(&p);
    p.backend = "etcd";
    p.endpoints = endpoint;
    p.ns = "auth";
    p.op_timeout_ms = 3000;
    p.user = "root";
    p.password = "wrong";
    st = mixl_registry_create(&p, &reg);
    CHECK(st == MIXL_ERR_REGISTRY && reg == NULL);
    printf("wrong password: %s\n", mixl_status_name(st));

    p.password = "s3cret";
    CHECK(mixl_registry_create(&p, &reg) == MIXL_OK);
    if (reg != NULL) {
        mixl_registry_kv_t *kv = NULL;
        CHECK(mixl_registry_put(reg, "auth/k", "v", 1, 0, NULL) == MIXL_OK);
        sleep_ms(2500); /* the token expires */
        CHECK(mixl_registry_get(reg, "auth/k", &kv) == MIXL_OK);
        mixl_registry_kv_free(kv);
        mixl_registry_destroy(reg);
    }
    /* Without credentials the server refuses, and says so. */
    p.user = p.password = NULL;
    CHECK(mixl_registry_create(&p, &reg) == MIXL_OK); /* status needs no auth */
    if (reg != NULL) {
        mixl_registry_kv_t *kv = NULL;
        CHECK(mixl_registry_get(reg, "auth/k", &kv) == MIXL_ERR_REGISTRY);
        printf("no credentials: %s\n", mixl_registry_last_error(reg));
        mixl_registry_destroy(reg);
    }
}

static int tls_checks(const char *endpoint_file)
{
    char ep[512];
    regtest_tls_t t;
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;
    mixl_status_t st;
    int rc = regtest_read_endpoint(endpoint_file, ep, sizeof(ep));

    if (rc != 0) return rc;
    CHECK(regtest_tls(endpoint_file, &t) == 1);
    mixl_registry_params_init(&p);
    p.backend = "etcd";
    p.endpoints = ep;
    p.ns = "tls";
    p.op_timeout_ms = 2000;
    p.tls_ca = t.ca;
    p.tls_cert = t.cert;
    p.tls_key = t.key;
    CHECK(mixl_registry_create(&p, &reg) == MIXL_OK);
    if (reg != NULL) {
        mixl_registry_kv_t *kv = NULL;
        CHECK(mixl_registry_put(reg, "tls/k", "v", 1, 0, NULL) == MIXL_OK);
        CHECK(mixl_registry_get(reg, "tls/k", &kv) == MIXL_OK);
        mixl_registry_kv_free(kv);
        CHECK(mixl_registry_delete(reg, "tls/k") == MIXL_OK);
        mixl_registry_destroy(reg);
        reg = NULL;
    }
    /* The server demands a client certificate. */
    p.tls_cert = p.tls_key = NULL;
    st = mixl_registry_create(&p, &reg);
    CHECK(st == MIXL_ERR_UNREACHABLE && reg == NULL);
    printf("TLS without a client certificate: %s\n", mixl_status_name(st));
    /* The server's certificate is not trusted without our CA. */
    p.tls_ca = NULL;
    p.tls_cert = t.cert;
    p.tls_key = t.key;
    st = mixl_registry_create(&p, &reg);
    CHECK(st == MIXL_ERR_UNREACHABLE && reg == NULL);
    printf("TLS without the CA: %s\n", mixl_status_name(st));
    printf("etcd TLS: %d failed check(s)\n", failures);
    return failures == 0 ? 0 : 1;
}

static int cluster_checks(void)
{
    char eps[1024], rev[2100], path[1024], *comma;
    mixl_registry_h a = NULL, b = NULL;
    mixl_md_store_params_t sp = {.size = sizeof(sp), .flags = MIXL_MD_STORE_RAW, .refresh_ms = 300};
    mixl_md_store_h sa = NULL, sb = NULL;
    mixl_registry_kv_t *kv = NULL;
    void *blob = NULL;
    size_t len;
    int rc;

    if (fixture_cmd("cluster", NULL) != 0) {
        fprintf(stderr, "FAIL: could not start a 3-member etcd cluster\n");
        return 1;
    }
    atexit(stop_private);
    snprintf(path, sizeof(path), "%s/endpoint", private_dir);
    rc = regtest_read_endpoint(path, eps, sizeof(eps));
    if (rc != 0) return rc;
    /* b lists the members the other way round: it reads from another member than a writes to. */
    comma = strrchr(eps, ',');
    snprintf(rev, sizeof(rev), "%s,%.*s", comma ? comma + 1 : eps, comma ? (int)(comma - eps) : 0, eps);

    CHECK(open_reg(eps, "cluster", 3000, &a) == MIXL_OK);
    CHECK(open_reg(rev, "cluster", 3000, &b) == MIXL_OK);
    if (a == NULL || b == NULL) goto out;
    sp.reg = a;
    CHECK(mixl_md_store_create(&sp, &sa) == MIXL_OK);
    sp.reg = b;
    CHECK(mixl_md_store_create(&sp, &sb) == MIXL_OK);
    if (sa == NULL || sb == NULL) goto out;
    CHECK(mixl_md_store_publish(sa, "prefill-0", "v1", 2) == MIXL_OK);
    CHECK(mixl_md_store_get(sb, "prefill-0", 3000, &blob, &len) == MIXL_OK);
    mixl_free(blob);
    blob = NULL;

    /* The member a talks to dies: a fails over, its lease stays alive, b sees new values. */
    {
        char line[2048];
        snprintf(line, sizeof(line), "%s kill-member %s 0", fixture, private_dir);
        CHECK(system(line) == 0);
    }
    CHECK(mixl_md_store_publish(sa, "prefill-0", "v2", 2) == MIXL_OK);
    sleep_ms(1500); /* several keep-alive rounds through the surviving members */
    CHECK(mixl_md_store_refresh(sb) == MIXL_OK);
    CHECK(mixl_md_store_get(sb, "prefill-0", 3000, &blob, &len) == MIXL_OK);
    if (blob != NULL) CHECK(len == 2 && memcmp(blob, "v2", 2) == 0);
    mixl_free(blob);
    CHECK(mixl_registry_get(a, "cluster/mixl_metadata/prefill-0", &kv) == MIXL_OK);
    if (kv != NULL) CHECK(mixl_registry_lease_keepalive(a, kv->lease) == MIXL_OK);
    mixl_registry_kv_free(kv);
    kv = NULL;
    printf("cluster after losing member 0: a still publishes and keeps its lease, b reads\n");

    /* A second member dies: no quorum. Operations fail within their timeout. */
    {
        char line[2048];
        mixl_status_t st;
        snprintf(line, sizeof(line), "%s kill-member %s 1", fixture, private_dir);
        CHECK(system(line) == 0);
        mixl_registry_clear_error(a);
        st = mixl_registry_put(a, "cluster/no-quorum", "x", 1, 0, NULL);
        CHECK(st != MIXL_OK);
        printf("cluster without quorum: %s: %s\n", mixl_status_name(st), mixl_registry_last_error(a));
    }
out:
    mixl_md_store_destroy(sb);
    mixl_md_store_destroy(sa);
    mixl_registry_destroy(b);
    mixl_registry_destroy(a);
    printf("etcd cluster: %d failed check(s)\n", failures);
    return failures == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char shared[512], priv[512], path[1024];
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows even when CTest kills a hung run */
    if (argc == 4 && strcmp(argv[1], "--cluster") == 0) {
        fixture = argv[2];
        private_dir = argv[3];
        if (access("/usr/bin/etcd", X_OK) != 0) {
            fprintf(stderr, "SKIP: etcd is not installed\n");
            return REGTEST_SKIP;
        }
        return cluster_checks();
    }

    if (argc == 3 && strcmp(argv[1], "--tls") == 0) return tls_checks(argv[2]);
    if (argc < 4) {
        fprintf(stderr, "usage: %s <etcd_fixture.sh> <private-dir> <shared-endpoint-file>\n", argv[0]);
        return 2;
    }
    fixture = argv[1];
    private_dir = argv[2];
    rc = regtest_read_endpoint(argv[3], shared, sizeof(shared));
    if (rc != 0) return rc;

    test_not_running(shared);
    test_too_large(shared);
    test_etcdctl_sees_values(shared);

    if (fixture_cmd("start", NULL) != 0) {
        fprintf(stderr, "FAIL: could not start a private etcd\n");
        return 1;
    }
    atexit(stop_private);
    snprintf(path, sizeof(path), "%s/endpoint", private_dir);
    rc = regtest_read_endpoint(path, priv, sizeof(priv));
    if (rc != 0) return rc;
    test_restart(priv);
    test_auth(priv);

    printf("etcd faults: %d failed check(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
