/*
 * The registry conformance suite (see conformance.h): the same checks on
 * the key-value interface and on the metadata store for every backend.
 * No check depends on how long something took; waits on expiry poll with a
 * generous deadline and check the outcome.
 */
#include "conformance.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mixl/metadata.h>

#include "util/clock.h"

int conf_failures;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "<suite namespace>/<rank>/<name>" so concurrent ranks never share keys. */
static void key_of(conf_env_t *env, mixl_registry_h reg, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/kv%d/%s", mixl_registry_namespace(reg), env->rank, name);
}

/* --- key-value interface -------------------------------------------------- */

static void t_put_get(conf_env_t *env, mixl_registry_h reg)
{
    char key[256];
    mixl_registry_kv_t *kv = NULL;
    int64_t rev1 = 0, rev2 = 0;

    key_of(env, reg, "a", key, sizeof(key));
    CHECK_ST(mixl_registry_put(reg, key, "hello", 5, 0, &rev1), MIXL_OK);
    CHECK(rev1 > 0);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) {
        CHECK(strcmp(kv->key, key) == 0);
        CHECK(kv->len == 5 && memcmp(kv->value, "hello", 5) == 0);
        CHECK(kv->version == 1 && kv->mod_revision == rev1 && kv->create_revision == rev1);
        CHECK(kv->lease == 0);
        mixl_registry_kv_free(kv);
        kv = NULL;
    }
    CHECK_ST(mixl_registry_put(reg, key, "world!", 6, 0, &rev2), MIXL_OK);
    CHECK(rev2 > rev1);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->len == 6 && memcmp(kv->value, "world!", 6) == 0);
        CHECK(kv->version == 2 && kv->mod_revision == rev2 && kv->create_revision == rev1);
        mixl_registry_kv_free(kv);
    }
    CHECK_ST(mixl_registry_delete(reg, key), MIXL_OK);
}

static void t_binary_values(conf_env_t *env, mixl_registry_h reg)
{
    char key[256];
    unsigned char bytes[1024];
    mixl_registry_kv_t *kv = NULL;

    for (size_t i = 0; i < sizeof(bytes); i++) bytes[i] = (unsigned char)(i * 7 + (i >> 8));
    bytes[0] = 0;
    bytes[1] = 0xff;
    key_of(env, reg, "bin", key, sizeof(key));
    CHECK_ST(mixl_registry_put(reg, key, bytes, sizeof(bytes), 0, NULL), MIXL_OK);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->len == sizeof(bytes) && memcmp(kv->value, bytes, sizeof(bytes)) == 0);
        mixl_registry_kv_free(kv);
        kv = NULL;
    }
    /* An empty value is a value, not an absent key. */
    key_of(env, reg, "empty", key, sizeof(key));
    CHECK_ST(mixl_registry_put(reg, key, NULL, 0, 0, NULL), MIXL_OK);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->len == 0 && kv->value != NULL);
        mixl_registry_kv_free(kv);
    }
}

static void t_get_missing(conf_env_t *env, mixl_registry_h reg)
{
    char key[256];
    mixl_registry_kv_t *kv = NULL;

    key_of(env, reg, "never-written", key, sizeof(key));
    mixl_registry_clear_error(reg);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_ERR_NOT_FOUND);
    CHECK(kv == NULL);
    CHECK(strstr(mixl_registry_last_error(reg), key) != NULL);
    CHECK_ST(mixl_registry_delete(reg, key), MIXL_ERR_NOT_FOUND);
    mixl_registry_clear_error(reg);
}

static void t_list_prefix(conf_env_t *env, mixl_registry_h reg)
{
    char k[4][256], prefix[256];
    const char *names[4] = {"dir/b", "dir/a", "dir/c/deep", "dirx/no"};
    mixl_registry_kv_t *kvs = NULL;
    size_t n = 0;

    for (int i = 0; i < 4; i++) {
        key_of(env, reg, names[i], k[i], sizeof(k[i]));
        CHECK_ST(mixl_registry_put(reg, k[i], names[i], strlen(names[i]), 0, NULL), MIXL_OK);
    }
    key_of(env, reg, "dir/", prefix, sizeof(prefix));
    CHECK_ST(mixl_registry_list(reg, prefix, 0, &kvs, &n), MIXL_OK);
    CHECK(n == 3);
    if (n == 3) {
        /* key order, and "dirx/" is not under "dir/" */
        CHECK(strcmp(kvs[0].key, k[1]) == 0 && strcmp(kvs[1].key, k[0]) == 0 &&
              strcmp(kvs[2].key, k[2]) == 0);
        CHECK(kvs[0].len == 5 && memcmp(kvs[0].value, "dir/a", 5) == 0);
    }
    mixl_registry_kvs_free(kvs, n);
    CHECK_ST(mixl_registry_list(reg, prefix, MIXL_REGISTRY_KEYS_ONLY, &kvs, &n), MIXL_OK);
    CHECK(n == 3);
    for (size_t i = 0; i < n; i++) CHECK(kvs[i].value == NULL && kvs[i].mod_revision > 0);
    mixl_registry_kvs_free(kvs, n);
    key_of(env, reg, "nothing-here/", prefix, sizeof(prefix));
    CHECK_ST(mixl_registry_list(reg, prefix, 0, &kvs, &n), MIXL_OK);
    CHECK(n == 0 && kvs == NULL);
    for (int i = 0; i < 4; i++) CHECK_ST(mixl_registry_delete(reg, k[i]), MIXL_OK);
}

typedef struct {
    mixl_registry_h reg;
    char key[256];
    int delay_ms;
    mixl_status_t status;
} late_put_t;

static void *late_put(void *arg)
{
    late_put_t *lp = arg;
    sleep_ms(lp->delay_ms);
    lp->status = mixl_registry_put(lp->reg, lp->key, "late", 4, 0, NULL);
    return NULL;
}

static void t_wait(conf_env_t *env, mixl_registry_h reg)
{
    late_put_t lp = {.reg = reg, .delay_ms = 300};
    mixl_registry_kv_t *kv = NULL;
    pthread_t th;
    char key[256];

    key_of(env, reg, "wait-missing", key, sizeof(key));
    CHECK_ST(mixl_registry_wait(reg, key, 200, &kv), MIXL_ERR_TIMED_OUT);
    CHECK(kv == NULL);
    mixl_registry_clear_error(reg);

    key_of(env, reg, "wait-late", lp.key, sizeof(lp.key));
    CHECK(pthread_create(&th, NULL, late_put, &lp) == 0);
    CHECK_ST(mixl_registry_wait(reg, lp.key, 10000, &kv), MIXL_OK);
    pthread_join(th, NULL);
    CHECK_ST(lp.status, MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->len == 4 && memcmp(kv->value, "late", 4) == 0);
        mixl_registry_kv_free(kv);
        kv = NULL;
    }
    /* An existing key is returned at once, even with a zero timeout. */
    CHECK_ST(mixl_registry_wait(reg, lp.key, 0, &kv), MIXL_OK);
    mixl_registry_kv_free(kv);
    CHECK_ST(mixl_registry_delete(reg, lp.key), MIXL_OK);
}

static void t_lease_revoke(conf_env_t *env, mixl_registry_h reg)
{
    char key[256], key2[256];
    int64_t lease = 0;
    mixl_registry_kv_t *kv = NULL;

    key_of(env, reg, "leased", key, sizeof(key));
    key_of(env, reg, "leased2", key2, sizeof(key2));
    CHECK_ST(mixl_registry_lease_grant(reg, 30, &lease), MIXL_OK);
    CHECK(lease > 0);
    CHECK_ST(mixl_registry_put(reg, key, "x", 1, lease, NULL), MIXL_OK);
    CHECK_ST(mixl_registry_put(reg, key2, "y", 1, lease, NULL), MIXL_OK);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->lease == lease);
        mixl_registry_kv_free(kv);
        kv = NULL;
    }
    CHECK_ST(mixl_registry_lease_keepalive(reg, lease), MIXL_OK);
    CHECK_ST(mixl_registry_lease_revoke(reg, lease), MIXL_OK);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_ERR_NOT_FOUND);
    CHECK_ST(mixl_registry_get(reg, key2, &kv), MIXL_ERR_NOT_FOUND);
    CHECK_ST(mixl_registry_lease_keepalive(reg, lease), MIXL_ERR_NOT_FOUND);
    CHECK_ST(mixl_registry_put(reg, key, "x", 1, lease, NULL), MIXL_ERR_NOT_FOUND);
    CHECK_ST(mixl_registry_lease_revoke(reg, lease), MIXL_ERR_NOT_FOUND);
    mixl_registry_clear_error(reg);
}

static void t_lease_expiry(conf_env_t *env, mixl_registry_h reg)
{
    char key[256], kept[256];
    int64_t lease = 0, lease_kept = 0;
    mixl_registry_kv_t *kv = NULL;
    uint64_t until;

    key_of(env, reg, "expiring", key, sizeof(key));
    key_of(env, reg, "renewed", kept, sizeof(kept));
    CHECK_ST(mixl_registry_lease_grant(reg, 2, &lease), MIXL_OK);
    CHECK_ST(mixl_registry_lease_grant(reg, 2, &lease_kept), MIXL_OK);
    CHECK_ST(mixl_registry_put(reg, key, "x", 1, lease, NULL), MIXL_OK);
    CHECK_ST(mixl_registry_put(reg, kept, "y", 1, lease_kept, NULL), MIXL_OK);
    /* Renew one lease while the other runs out; only the unrenewed key goes. */
    until = mixl_deadline_ns(15000);
    while (mixl_now_ns() < until) {
        mixl_status_t st = mixl_registry_get(reg, key, &kv);
        CHECK_ST(mixl_registry_lease_keepalive(reg, lease_kept), MIXL_OK);
        if (st == MIXL_ERR_NOT_FOUND) break;
        if (st == MIXL_OK) mixl_registry_kv_free(kv);
        kv = NULL;
        sleep_ms(200);
    }
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_ERR_NOT_FOUND);
    CHECK_ST(mixl_registry_lease_keepalive(reg, lease), MIXL_ERR_NOT_FOUND);
    CHECK_ST(mixl_registry_get(reg, kept, &kv), MIXL_OK);
    mixl_registry_kv_free(kv);
    CHECK_ST(mixl_registry_lease_revoke(reg, lease_kept), MIXL_OK);
    mixl_registry_clear_error(reg);
}

static void t_too_large(conf_env_t *env, mixl_registry_h reg)
{
    char key[256];
    size_t big = (1u << 20) + 1; /* the suite runs with the default max_value_bytes */
    void *v = calloc(1, big);
    mixl_registry_kv_t *kv = NULL;

    key_of(env, reg, "big", key, sizeof(key));
    CHECK(v != NULL);
    if (v == NULL) return;
    CHECK_ST(mixl_registry_put(reg, key, v, big, 0, NULL), MIXL_ERR_TOO_LARGE);
    CHECK(strstr(mixl_registry_last_error(reg), key) != NULL);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_ERR_NOT_FOUND);
    /* The largest allowed value goes through. */
    CHECK_ST(mixl_registry_put(reg, key, v, big - 1, 0, NULL), MIXL_OK);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) CHECK(kv->len == big - 1);
    mixl_registry_kv_free(kv);
    CHECK_ST(mixl_registry_delete(reg, key), MIXL_OK);
    free(v);
    mixl_registry_clear_error(reg);
}

static void t_bad_args(conf_env_t *env, mixl_registry_h reg)
{
    mixl_registry_kv_t *kv = NULL;
    int64_t lease;

    CHECK_ST(mixl_registry_put(reg, "", "x", 1, 0, NULL), MIXL_ERR_INVALID_PARAM);
    CHECK_ST(mixl_registry_put(reg, NULL, "x", 1, 0, NULL), MIXL_ERR_INVALID_PARAM);
    CHECK_ST(mixl_registry_get(reg, "k", NULL), MIXL_ERR_INVALID_PARAM);
    CHECK_ST(mixl_registry_wait(reg, NULL, 0, &kv), MIXL_ERR_INVALID_PARAM);
    CHECK_ST(mixl_registry_lease_grant(reg, 0, &lease), MIXL_ERR_INVALID_PARAM);
    CHECK_ST(mixl_registry_lease_keepalive(reg, 0), MIXL_ERR_INVALID_PARAM);
    mixl_registry_clear_error(reg);
}

/* --- metadata store -------------------------------------------------------- */

static mixl_md_store_h store_new(mixl_registry_h reg, unsigned flags)
{
    mixl_md_store_params_t sp = {.size = sizeof(sp), .reg = reg, .flags = flags, .refresh_ms = 200};
    mixl_md_store_h s = NULL;

    CHECK_ST(mixl_md_store_create(&sp, &s), MIXL_OK);
    return s;
}

static void agent_of(conf_env_t *env, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s-r%d", name, env->rank);
}

/* Get agent's blob through store s and compare it with want. */
static void expect_blob(mixl_md_store_h s, const char *agent, int timeout_ms, const char *want)
{
    void *blob = NULL;
    size_t len = 0;

    CHECK_ST(mixl_md_store_get(s, agent, timeout_ms, &blob, &len), MIXL_OK);
    if (blob != NULL) {
        CHECK(len == strlen(want) && memcmp(blob, want, len) == 0);
        mixl_free(blob);
    }
}

static void t_store_publish_get(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_h a = store_new(reg, MIXL_MD_STORE_RAW), b = store_new(reg, MIXL_MD_STORE_RAW);
    char agent[64], key[256];
    mixl_registry_kv_t *kv = NULL;
    uint64_t hits = 0, misses = 0;

    agent_of(env, "pub", agent, sizeof(agent));
    /* The key layout is part of the contract (etcdctl users rely on it). */
    snprintf(key, sizeof(key), "%s/mixl_metadata/%s", mixl_registry_namespace(reg), agent);
    if (a == NULL || b == NULL) goto out;
    CHECK_ST(mixl_md_store_publish(a, agent, "blob-v1", 7), MIXL_OK);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->lease != 0); /* bound to the store's lease */
        mixl_registry_kv_free(kv);
    }
    expect_blob(b, agent, 1000, "blob-v1");
    expect_blob(b, agent, 1000, "blob-v1");
    mixl_md_store_stats(b, &hits, &misses, NULL);
    CHECK(hits == 1 && misses == 1);
    /* Bad agent names are refused before touching the registry. */
    CHECK_ST(mixl_md_store_publish(a, "with/slash", "x", 1), MIXL_ERR_INVALID_PARAM);
    CHECK_ST(mixl_md_store_publish(a, "", "x", 1), MIXL_ERR_INVALID_PARAM);
out:
    mixl_md_store_destroy(b);
    mixl_md_store_destroy(a);
    /* Destroying the publisher revoked its lease: the entry is gone. */
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_ERR_NOT_FOUND);
    mixl_registry_clear_error(reg);
}

static void t_store_not_found(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_h s = store_new(reg, MIXL_MD_STORE_RAW);
    char agent[64], want[256];
    void *blob = NULL;
    size_t len = 0;

    if (s == NULL) return;
    agent_of(env, "ghost", agent, sizeof(agent));
    CHECK_ST(mixl_md_store_get(s, agent, 300, &blob, &len), MIXL_ERR_NOT_FOUND);
    CHECK(blob == NULL);
    snprintf(want, sizeof(want), "metadata not found for agent %s in namespace %s", agent,
             mixl_registry_namespace(reg));
    CHECK(strstr(mixl_md_store_last_error(s), want) != NULL);
    mixl_md_store_destroy(s);
}

typedef struct {
    mixl_md_store_h s;
    char agent[64];
    mixl_status_t status;
} late_pub_t;

static void *late_publish(void *arg)
{
    late_pub_t *lp = arg;
    sleep_ms(300);
    lp->status = mixl_md_store_publish(lp->s, lp->agent, "late-blob", 9);
    return NULL;
}

static void t_store_wait_for_publisher(conf_env_t *env, mixl_registry_h reg)
{
    late_pub_t lp = {.s = store_new(reg, MIXL_MD_STORE_RAW)};
    mixl_md_store_h b = store_new(reg, MIXL_MD_STORE_RAW);
    pthread_t th;

    if (lp.s == NULL || b == NULL) goto out;
    agent_of(env, "late", lp.agent, sizeof(lp.agent));
    CHECK(pthread_create(&th, NULL, late_publish, &lp) == 0);
    expect_blob(b, lp.agent, 10000, "late-blob");
    pthread_join(th, NULL);
    CHECK_ST(lp.status, MIXL_OK);
out:
    mixl_md_store_destroy(b);
    mixl_md_store_destroy(lp.s);
}

static void t_store_republish_invalidates(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_h a = store_new(reg, MIXL_MD_STORE_RAW), b = store_new(reg, MIXL_MD_STORE_RAW);
    char agent[64];
    uint64_t misses = 0;

    if (a == NULL || b == NULL) goto out;
    agent_of(env, "repub", agent, sizeof(agent));
    CHECK_ST(mixl_md_store_publish(a, agent, "v1", 2), MIXL_OK);
    expect_blob(b, agent, 1000, "v1");
    CHECK_ST(mixl_md_store_publish(a, agent, "v2-longer", 9), MIXL_OK);
    /* An explicit refresh sees the new revision at once (the thread would, within refresh_ms). */
    CHECK_ST(mixl_md_store_refresh(b), MIXL_OK);
    expect_blob(b, agent, 1000, "v2-longer");
    mixl_md_store_stats(b, NULL, &misses, NULL);
    CHECK(misses == 2);
    /* Unpublish removes the entry; the reader's cache drops it on refresh. */
    CHECK_ST(mixl_md_store_unpublish(a, agent), MIXL_OK);
    CHECK_ST(mixl_md_store_refresh(b), MIXL_OK);
    {
        void *blob = NULL;
        size_t len;
        CHECK_ST(mixl_md_store_get(b, agent, 0, &blob, &len), MIXL_ERR_NOT_FOUND);
    }
    CHECK_ST(mixl_md_store_unpublish(a, agent), MIXL_ERR_NOT_FOUND);
out:
    mixl_md_store_destroy(b);
    mixl_md_store_destroy(a);
}

static void t_store_verify_never_stale(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_params_t sp = {.size = sizeof(sp), .reg = reg,
                                 .flags = MIXL_MD_STORE_RAW | MIXL_MD_STORE_VERIFY,
                                 .refresh_ms = 60000}; /* the thread never refreshes here */
    mixl_md_store_h a = store_new(reg, MIXL_MD_STORE_RAW), b = NULL;
    char agent[64], longer[80];
    uint64_t hits = 0, misses = 0;

    CHECK_ST(mixl_md_store_create(&sp, &b), MIXL_OK);
    if (a == NULL || b == NULL) goto out;
    agent_of(env, "strict", agent, sizeof(agent));
    snprintf(longer, sizeof(longer), "%s-longer", agent); /* shares the key prefix */
    CHECK_ST(mixl_md_store_publish(a, agent, "s1", 2), MIXL_OK);
    CHECK_ST(mixl_md_store_publish(a, longer, "other", 5), MIXL_OK);
    expect_blob(b, agent, 1000, "s1");
    expect_blob(b, agent, 1000, "s1"); /* verified hit */
    CHECK_ST(mixl_md_store_publish(a, agent, "s2", 2), MIXL_OK);
    expect_blob(b, agent, 1000, "s2"); /* no refresh needed */
    mixl_md_store_stats(b, &hits, &misses, NULL);
    CHECK(hits == 1 && misses == 2);
    CHECK_ST(mixl_md_store_unpublish(a, agent), MIXL_OK);
    {
        void *blob = NULL;
        size_t len;
        CHECK_ST(mixl_md_store_get(b, agent, 0, &blob, &len), MIXL_ERR_NOT_FOUND);
    }
out:
    mixl_md_store_destroy(b);
    mixl_md_store_destroy(a);
}

static void t_store_expiry_drops_cache(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_h b = store_new(reg, MIXL_MD_STORE_RAW);
    char agent[64], key[256];
    int64_t lease = 0;
    uint64_t until;
    int dropped = 0;

    if (b == NULL) return;
    /* A peer that publishes and then dies: its lease is never renewed. */
    agent_of(env, "dying", agent, sizeof(agent));
    CHECK_ST(mixl_md_store_key(b, agent, key, sizeof(key)), MIXL_OK);
    CHECK_ST(mixl_registry_lease_grant(reg, 2, &lease), MIXL_OK);
    CHECK_ST(mixl_registry_put(reg, key, "last-words", 10, lease, NULL), MIXL_OK);
    expect_blob(b, agent, 1000, "last-words");
    until = mixl_deadline_ns(15000);
    while (!dropped && mixl_now_ns() < until) {
        void *blob = NULL;
        size_t len;
        /* Only the store's own thread refreshes here: the check is that it notices. */
        mixl_status_t st = mixl_md_store_get(b, agent, 0, &blob, &len);
        if (st == MIXL_ERR_NOT_FOUND) dropped = 1;
        else mixl_free(blob);
        if (!dropped) sleep_ms(200);
    }
    CHECK(dropped);
    mixl_registry_clear_error(reg);
    mixl_md_store_destroy(b);
}

static void t_store_lease_lost_republishes(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_h a = store_new(reg, MIXL_MD_STORE_RAW);
    char agent[64], key[256];
    mixl_registry_kv_t *kv = NULL;
    uint64_t republished = 0;
    int64_t old_lease = 0;

    if (a == NULL) return;
    agent_of(env, "phoenix", agent, sizeof(agent));
    CHECK_ST(mixl_md_store_key(a, agent, key, sizeof(key)), MIXL_OK);
    CHECK_ST(mixl_md_store_publish(a, agent, "still-here", 10), MIXL_OK);
    CHECK_ST(mixl_registry_get(reg, key, &kv), MIXL_OK);
    if (kv != NULL) {
        old_lease = kv->lease;
        mixl_registry_kv_free(kv);
        kv = NULL;
    }
    /* The server forgets the lease (as after a restart without its data). */
    CHECK_ST(mixl_registry_lease_revoke(reg, old_lease), MIXL_OK);
    CHECK_ST(mixl_registry_wait(reg, key, 10000, &kv), MIXL_OK);
    if (kv != NULL) {
        CHECK(kv->len == 10 && memcmp(kv->value, "still-here", 10) == 0);
        CHECK(kv->lease != 0 && kv->lease != old_lease);
        mixl_registry_kv_free(kv);
    }
    /* The counter moves just after the put that wait() saw. */
    for (uint64_t until = mixl_deadline_ns(5000); republished == 0 && mixl_now_ns() < until;) {
        mixl_md_store_stats(a, NULL, NULL, &republished);
        if (republished == 0) sleep_ms(50);
    }
    CHECK(republished >= 1);
    mixl_md_store_destroy(a);
}

static void t_store_list(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_h a = store_new(reg, MIXL_MD_STORE_RAW);
    char one[64], two[64];
    char **names = NULL;
    size_t n = 0;
    int seen = 0;

    if (a == NULL) return;
    agent_of(env, "list-one", one, sizeof(one));
    agent_of(env, "list-two", two, sizeof(two));
    CHECK_ST(mixl_md_store_publish(a, one, "1", 1), MIXL_OK);
    CHECK_ST(mixl_md_store_publish(a, two, "2", 1), MIXL_OK);
    CHECK_ST(mixl_md_store_list(a, &names, &n), MIXL_OK);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], one) == 0) seen |= 1;
        if (strcmp(names[i], two) == 0) seen |= 2;
        if (i > 0) CHECK(strcmp(names[i - 1], names[i]) < 0);
    }
    CHECK(seen == 3);
    mixl_md_store_names_free(names, n);
    mixl_md_store_destroy(a);
}

/* A MIXL blob for agent, as an agent would export it. */
static mixl_status_t make_blob(const char *agent, void **blob_p, size_t *len_p)
{
    mixl_md_region_t region = {.id = 1, .addr = 0x10000, .len = 4096, .mem_type = MIXL_MEM_HOST,
                               .mpi = {.window = 0}};
    mixl_metadata_t md = {.format = MIXL_METADATA_FORMAT, .mpi = {.rank = -1}, .region_count = 1,
                          .regions = &region};

    snprintf(md.name, sizeof(md.name), "%s", agent);
    snprintf(md.engine_id, sizeof(md.engine_id), "%s", agent);
    return mixl_metadata_encode(&md, blob_p, len_p);
}

static void t_store_foreign_value(conf_env_t *env, mixl_registry_h reg)
{
    mixl_md_store_h a = store_new(reg, 0), b = store_new(reg, 0);
    char agent[64], other[64], key[256];
    void *blob = NULL, *got = NULL;
    size_t len = 0, got_len = 0;

    if (a == NULL || b == NULL) goto out;
    agent_of(env, "foreign", agent, sizeof(agent));
    agent_of(env, "genuine", other, sizeof(other));
    CHECK_ST(mixl_md_store_key(b, agent, key, sizeof(key)), MIXL_OK);
    /* Someone else's JSON under a MIXL key. */
    CHECK_ST(mixl_registry_put(reg, key, "{\"not\":\"mixl\"}", 14, 0, NULL), MIXL_OK);
    CHECK_ST(mixl_md_store_get(b, agent, 1000, &got, &got_len), MIXL_ERR_BAD_METADATA);
    CHECK(strstr(mixl_md_store_last_error(b), key) != NULL);
    /* A store refuses to publish garbage in the first place. */
    CHECK_ST(mixl_md_store_publish(a, other, "garbage", 7), MIXL_ERR_BAD_METADATA);
    /* A corrupted MIXL blob (one flipped bit) is refused too. */
    CHECK_ST(make_blob(agent, &blob, &len), MIXL_OK);
    if (blob != NULL) {
        ((unsigned char *)blob)[len - 1] ^= 0x01;
        CHECK_ST(mixl_registry_put(reg, key, blob, len, 0, NULL), MIXL_OK);
        CHECK_ST(mixl_md_store_get(b, agent, 1000, &got, &got_len), MIXL_ERR_BAD_METADATA);
        mixl_free(blob);
        blob = NULL;
    }
    /* A genuine blob of another agent under this key is refused as well. */
    CHECK_ST(make_blob(other, &blob, &len), MIXL_OK);
    if (blob != NULL) {
        CHECK_ST(mixl_registry_put(reg, key, blob, len, 0, NULL), MIXL_OK);
        CHECK_ST(mixl_md_store_get(b, agent, 1000, &got, &got_len), MIXL_ERR_BAD_METADATA);
        /* The store keeps working: a genuine blob published normally is served. */
        CHECK_ST(mixl_md_store_publish(a, other, blob, len), MIXL_OK);
        CHECK_ST(mixl_md_store_get(b, other, 1000, &got, &got_len), MIXL_OK);
        CHECK(got_len == len && got != NULL && memcmp(got, blob, len) == 0);
        if (got != NULL) {
            mixl_metadata_t *md = NULL;
            CHECK_ST(mixl_metadata_decode(got, got_len, &md), MIXL_OK);
            if (md != NULL) CHECK(strcmp(md->name, other) == 0 && md->region_count == 1);
            mixl_metadata_free(md);
        }
        mixl_free(got);
        mixl_free(blob);
    }
    CHECK_ST(mixl_registry_delete(reg, key), MIXL_OK);
out:
    mixl_md_store_destroy(b);
    mixl_md_store_destroy(a);
}

/* --- runner ---------------------------------------------------------------- */

typedef struct {
    const char *name;
    void (*fn)(conf_env_t *env, mixl_registry_h reg);
} conf_test_t;

static const conf_test_t conf_tests[] = {
    {"put_get", t_put_get},
    {"binary_values", t_binary_values},
    {"get_missing", t_get_missing},
    {"list_prefix", t_list_prefix},
    {"wait", t_wait},
    {"lease_revoke", t_lease_revoke},
    {"lease_expiry", t_lease_expiry},
    {"too_large", t_too_large},
    {"bad_args", t_bad_args},
    {"store_publish_get", t_store_publish_get},
    {"store_not_found", t_store_not_found},
    {"store_wait_for_publisher", t_store_wait_for_publisher},
    {"store_republish_invalidates", t_store_republish_invalidates},
    {"store_verify_never_stale", t_store_verify_never_stale},
    {"store_expiry_drops_cache", t_store_expiry_drops_cache},
    {"store_lease_lost_republishes", t_store_lease_lost_republishes},
    {"store_list", t_store_list},
    {"store_foreign_value", t_store_foreign_value},
};

int conf_run(conf_env_t *env)
{
    mixl_registry_params_t p;
    mixl_registry_h reg = NULL;
    char ns[96];
    const char *only = getenv("MIXL_CONF_ONLY"); /* run one test by name while debugging */

    mixl_registry_params_init(&p);
    /* A fresh namespace per run: leftovers of an earlier run cannot satisfy a check. */
    snprintf(ns, sizeof(ns), "mixl-conf-%s-%ld-%d", env->backend, (long)time(NULL), (int)getpid());
    p.ns = ns;
    p.op_timeout_ms = 5000;
    env->share(env, ns, sizeof(ns)); /* every rank uses rank 0's namespace */
    env->params(env, &p);
    CHECK_ST(mixl_registry_create(&p, &reg), MIXL_OK);
    if (reg == NULL) return conf_failures;

    size_t ran = 0;
    for (size_t i = 0; i < sizeof(conf_tests) / sizeof(conf_tests[0]); i++) {
        int before = conf_failures;
        if (only != NULL && strcmp(only, conf_tests[i].name) != 0) continue;
        ran++;
        env->barrier(env);
        conf_tests[i].fn(env, reg);
        printf("[%s rank %d] %-30s %s\n", env->backend, env->rank, conf_tests[i].name,
               conf_failures == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    /* A misspelt MIXL_CONF_ONLY would otherwise run nothing and pass. */
    if (ran == 0) {
        fprintf(stderr, "[%s rank %d] MIXL_CONF_ONLY=%s names no conformance case\n", env->backend,
                env->rank, only);
        conf_failures++;
    }
    env->barrier(env);
    mixl_registry_destroy(reg);
    return conf_failures;
}
