/*
 * Unit tests of the registry's internal pieces: base64 and prefix range ends
 * of the etcd backend, the in-memory database (revisions, leases, expiry on
 * a supplied clock), backend registration checks and parameter validation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/registry.h>

#include "registry/etcd/etcd.h"
#include "registry/kvdb.h"
#include "registry/reg_ops.h"

static int failures;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static void test_base64(void)
{
    /* RFC 4648 test vectors. */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    unsigned char all[256];

    for (int i = 0; i < 7; i++) {
        char *e = etcd_b64_encode(plain[i], strlen(plain[i]));
        void *d = NULL;
        size_t n = 0;
        CHECK(e != NULL && strcmp(e, enc[i]) == 0);
        CHECK(etcd_b64_decode(enc[i], &d, &n) == MIXL_OK && n == strlen(plain[i]) &&
              memcmp(d, plain[i], n) == 0);
        free(e);
        free(d);
    }
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    {
        char *e = etcd_b64_encode(all, sizeof(all));
        void *d = NULL;
        size_t n = 0;
        CHECK(etcd_b64_decode(e, &d, &n) == MIXL_OK && n == 256 && memcmp(d, all, 256) == 0);
        free(e);
        free(d);
    }
    {
        void *d = NULL;
        size_t n;
        CHECK(etcd_b64_decode("Zm9", &d, &n) == MIXL_ERR_PROTOCOL);     /* bad length */
        CHECK(etcd_b64_decode("Zm9v!A==", &d, &n) == MIXL_ERR_PROTOCOL); /* bad character */
        CHECK(etcd_b64_decode("Zg==Zm9v", &d, &n) == MIXL_ERR_PROTOCOL); /* data after padding */
    }
}

static void test_prefix_end(void)
{
    size_t n;
    char *e = etcd_prefix_end("ns/mixl_metadata/", &n);

    CHECK(e != NULL && n == 17 && memcmp(e, "ns/mixl_metadata0", 17) == 0);
    free(e);
    e = etcd_prefix_end("a\xff\xff", &n);
    CHECK(e != NULL && n == 1 && e[0] == 'b');
    free(e);
    e = etcd_prefix_end("\xff", &n);
    CHECK(e != NULL && n == 1 && e[0] == '\0');
    free(e);
}

static void test_kvdb(void)
{
    mixl_kvdb_t *db = mixl_kvdb_new();
    mixl_registry_kv_t *kv = NULL, *kvs = NULL;
    int64_t rev = 0, lease = 0;
    size_t n = 0;
    const uint64_t s = 1000000000ull;

    CHECK(db != NULL);
    CHECK(mixl_kvdb_put(db, "b", "2", 1, 0, &rev) == MIXL_OK && rev == 1);
    CHECK(mixl_kvdb_put(db, "a", "1", 1, 0, &rev) == MIXL_OK && rev == 2);
    CHECK(mixl_kvdb_put(db, "a", "11", 2, 0, &rev) == MIXL_OK && rev == 3);
    CHECK(mixl_kvdb_get(db, "a", &kv) == MIXL_OK);
    if (kv) {
        CHECK(kv->create_revision == 2 && kv->mod_revision == 3 && kv->version == 2 && kv->len == 2);
        mixl_registry_kv_free(kv);
    }
    CHECK(mixl_kvdb_put(db, "x", "1", 1, 12345, &rev) == MIXL_ERR_NOT_FOUND);
    CHECK(mixl_kvdb_lease_grant(db, 2, 10 * s, &lease) == MIXL_OK);
    CHECK(mixl_kvdb_put(db, "c", "3", 1, lease, &rev) == MIXL_OK);
    CHECK(mixl_kvdb_next_deadline(db) == 12 * s);
    CHECK(mixl_kvdb_expire(db, 11 * s) == 0);
    CHECK(mixl_kvdb_lease_keepalive(db, lease, 11 * s) == MIXL_OK);
    CHECK(mixl_kvdb_expire(db, 12 * s) == 0); /* renewed until 13 s */
    CHECK(mixl_kvdb_list(db, "", 0, &kvs, &n) == MIXL_OK && n == 3);
    if (n == 3) CHECK(strcmp(kvs[0].key, "a") == 0 && strcmp(kvs[2].key, "c") == 0);
    mixl_registry_kvs_free(kvs, n);
    CHECK(mixl_kvdb_expire(db, 13 * s) == 1);
    CHECK(mixl_kvdb_get(db, "c", &kv) == MIXL_ERR_NOT_FOUND);
    CHECK(mixl_kvdb_lease_keepalive(db, lease, 13 * s) == MIXL_ERR_NOT_FOUND);
    CHECK(mixl_kvdb_del(db, "a") == MIXL_OK && mixl_kvdb_del(db, "a") == MIXL_ERR_NOT_FOUND);
    CHECK(mixl_kvdb_list(db, "zz", 0, &kvs, &n) == MIXL_OK && n == 0 && kvs == NULL);
    mixl_kvdb_free(db);
}

static mixl_status_t dummy_init(struct mixl_registry *reg)
{
    (void)reg;
    return MIXL_OK;
}

static void test_ops_check(void)
{
    mixl_reg_ops_t holey = mixl_reg_local_ops;
    mixl_errbuf_t eb = {0};

    CHECK(mixl_reg_check_ops(&mixl_reg_local_ops, &eb) == MIXL_OK);
    CHECK(mixl_reg_check_ops(&mixl_reg_mpi_ops, &eb) == MIXL_OK);
    CHECK(mixl_reg_check_ops(&mixl_reg_etcd_ops, &eb) == MIXL_OK);
    holey.wait = NULL;
    holey.init = dummy_init;
    CHECK(mixl_reg_check_ops(&holey, &eb) == MIXL_ERR_INVALID_PARAM);
    CHECK(strstr(mixl_errbuf_get(&eb), "lacks wait") != NULL);
    CHECK(mixl_reg_find("etcd") == &mixl_reg_etcd_ops && mixl_reg_find("zookeeper") == NULL);
}

static void test_params(void)
{
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;

    mixl_registry_params_init(&p);
    CHECK(strcmp(p.backend, "mpi") == 0 && p.lease_ttl_s == 10 && p.op_timeout_ms == 5000);
    p.backend = "zookeeper";
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG && reg == NULL);
    p.backend = "local";
    p.ns = "/leading";
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG);
    p.ns = "has space";
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG);
    p.ns = "ok";
    p.lease_ttl_s = 1;
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG);
    p.lease_ttl_s = 10;
    p.size = 3;
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_VERSION);
    p.size = sizeof(p);
    p.backend = "etcd";
    p.endpoints = "127.0.0.1:2379"; /* no scheme */
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG);
    p.endpoints = "http://127.0.0.1:1";
    p.user = "root"; /* without a password */
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_CONFIG);
    p.user = NULL;
    /* Nothing listens on port 1: a clear error within the op timeout, no hang. */
    p.op_timeout_ms = 500;
    CHECK(mixl_registry_create(&p, &reg) == MIXL_ERR_UNREACHABLE && reg == NULL);
    /* A zeroed struct with only size and backend set takes the defaults. */
    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.backend = "local";
    CHECK(mixl_registry_create(&p, &reg) == MIXL_OK);
    if (reg != NULL) {
        CHECK(strcmp(mixl_registry_namespace(reg), "mixl") == 0);
        CHECK(strcmp(mixl_registry_backend(reg), "local") == 0);
        mixl_registry_destroy(reg);
    }
}

int main(void)
{
    test_base64();
    test_prefix_end();
    test_kvdb();
    test_ops_check();
    test_params();
    printf("registry units: %d failed check(s)\n", failures);
    return failures == 0 ? 0 : 1;
}
