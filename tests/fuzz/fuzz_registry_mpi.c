/*
 * Fuzz target: the MPI registry's wire decoders. The first byte picks the
 * side:
 *   even: the server's request decoder (regmpi_req_decode). The rest is a
 *         series of requests, each prefixed by its length (2 bytes, little
 *         endian), applied in turn to a database as the server does; every
 *         answer's pairs are packed and unpacked again and must match.
 *   odd:  the client's answer decoder: a response header, then pairs
 *         (regmpi_kvs_unpack with the header's count).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "registry/mpi/mpi_reg.h"

static void check_same(const mixl_registry_kv_t *a, const mixl_registry_kv_t *b)
{
    FUZZ_CHECK(strcmp(a->key, b->key) == 0);
    FUZZ_CHECK((a->value == NULL) == (b->value == NULL));
    FUZZ_CHECK(a->len == b->len);
    FUZZ_CHECK(a->value == NULL || memcmp(a->value, b->value, a->len) == 0);
    FUZZ_CHECK(a->create_revision == b->create_revision && a->mod_revision == b->mod_revision &&
               a->version == b->version && a->lease == b->lease);
}

/* Pack pairs as the server answers them, unpack as the client does: the same pairs. */
static void round_trip(const mixl_registry_kv_t *kvs, size_t count)
{
    size_t size = 0;
    uint8_t *buf;
    mixl_registry_kv_t *back = NULL;

    for (size_t i = 0; i < count; i++) size += regmpi_kv_wire_size(&kvs[i]);
    buf = malloc(size ? size : 1);
    if (buf == NULL) abort();
    regmpi_kvs_pack(buf, kvs, count);
    FUZZ_CHECK(regmpi_kvs_unpack(buf, size, count, &back) == MIXL_OK);
    for (size_t i = 0; i < count; i++) check_same(&kvs[i], &back[i]);
    mixl_registry_kvs_free(back, count);
    free(buf);
}

/* What the server does with a decoded request, minus the MPI answer. */
static void apply(mixl_kvdb_t *db, const regmpi_req_t *r, const char *key, const uint8_t *value)
{
    mixl_registry_kv_t *kvs = NULL;
    size_t count = 0;
    int64_t out = 0;

    switch ((regmpi_op_t)r->op) {
    case REGMPI_PUT: (void)mixl_kvdb_put(db, key, value, (size_t)r->val_len, r->lease, &out); break;
    case REGMPI_GET:
    case REGMPI_WAIT:
        if (mixl_kvdb_get(db, key, &kvs) == MIXL_OK) {
            FUZZ_CHECK(strcmp(kvs->key, key) == 0);
            round_trip(kvs, 1);
            mixl_registry_kvs_free(kvs, 1);
        }
        break;
    case REGMPI_LIST:
        if (mixl_kvdb_list(db, key, r->flags, &kvs, &count) == MIXL_OK) {
            for (size_t i = 0; i < count; i++)
                FUZZ_CHECK(strncmp(kvs[i].key, key, strlen(key)) == 0);
            round_trip(kvs, count);
            mixl_registry_kvs_free(kvs, count);
        }
        break;
    case REGMPI_DEL: (void)mixl_kvdb_del(db, key); break;
    case REGMPI_GRANT:
        if (r->arg >= 1 && r->arg <= 1000000) (void)mixl_kvdb_lease_grant(db, (int)r->arg, 0, &out);
        break;
    case REGMPI_KEEPALIVE: (void)mixl_kvdb_lease_keepalive(db, r->lease, 0); break;
    case REGMPI_REVOKE: (void)mixl_kvdb_lease_revoke(db, r->lease); break;
    case REGMPI_DONE: break;
    }
}

static void server_side(const uint8_t *data, size_t size)
{
    mixl_kvdb_t *db = mixl_kvdb_new();
    size_t pos = 0;

    if (db == NULL) abort();
    while (size - pos >= 2) {
        size_t n = (size_t)data[pos] | (size_t)data[pos + 1] << 8;
        regmpi_req_t r;
        char *key = NULL;
        const uint8_t *value = NULL;
        uint8_t *msg;

        pos += 2;
        if (n > size - pos) n = size - pos;
        /* A copy of exactly n bytes, as MPI_Mrecv hands it over: reads past it are caught. */
        msg = malloc(n ? n : 1);
        if (msg == NULL) abort();
        memcpy(msg, data + pos, n);
        pos += n;
        if (regmpi_req_decode(msg, n, &r, &key, &value) == MIXL_OK) {
            mixl_fuzz_accepted++;
            FUZZ_CHECK(r.magic == REGMPI_MAGIC && r.slot < REGMPI_SLOTS);
            FUZZ_CHECK(sizeof(r) + r.key_len + r.val_len == n);
            FUZZ_CHECK(value == msg + sizeof(r) + r.key_len);
            apply(db, &r, key, value);
            free(key);
        }
        free(msg);
    }
    /* Expiry far in the future drops every lease with its keys. */
    (void)mixl_kvdb_expire(db, UINT64_MAX);
    mixl_kvdb_free(db);
}

static void client_side(const uint8_t *data, size_t size)
{
    regmpi_resp_t rh;
    mixl_registry_kv_t *kvs = NULL;
    uint8_t *msg;

    if (size < sizeof(rh)) return;
    msg = malloc(size);
    if (msg == NULL) abort();
    memcpy(msg, data, size);
    memcpy(&rh, msg, sizeof(rh));
    if (regmpi_kvs_unpack(msg + sizeof(rh), size - sizeof(rh), rh.count, &kvs) == MIXL_OK) {
        mixl_fuzz_accepted++;
        FUZZ_CHECK(rh.count == 0 || kvs != NULL);
        for (uint32_t i = 0; i < rh.count; i++) FUZZ_CHECK(kvs[i].key != NULL);
        mixl_registry_kvs_free(kvs, rh.count);
    }
    free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] & 1) client_side(data + 1, size - 1);
    else server_side(data + 1, size - 1);
    return 0;
}
