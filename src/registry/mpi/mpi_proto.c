/* Wire encoding of key-value pairs for the MPI registry (see mpi_reg.h). */
#include "registry/mpi/mpi_reg.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t regmpi_kv_wire_size(const mixl_registry_kv_t *kv)
{
    return sizeof(regmpi_kv_t) + strlen(kv->key) + (kv->value != NULL ? kv->len : 0);
}

void regmpi_kvs_pack(uint8_t *buf, const mixl_registry_kv_t *kvs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        regmpi_kv_t h = {
            .key_len = (uint32_t)strlen(kvs[i].key),
            .has_value = kvs[i].value != NULL,
            .val_len = kvs[i].len,
            .create_revision = kvs[i].create_revision,
            .mod_revision = kvs[i].mod_revision,
            .version = kvs[i].version,
            .lease = kvs[i].lease,
        };
        memcpy(buf, &h, sizeof(h));
        buf += sizeof(h);
        memcpy(buf, kvs[i].key, h.key_len);
        buf += h.key_len;
        if (h.has_value) {
            memcpy(buf, kvs[i].value, kvs[i].len);
            buf += kvs[i].len;
        }
    }
}

mixl_status_t regmpi_kvs_unpack(const uint8_t *buf, size_t len, size_t count,
                                mixl_registry_kv_t **kvs_p)
{
    mixl_registry_kv_t *kvs;
    size_t off = 0;

    if (count == 0) {
        *kvs_p = NULL;
        return MIXL_OK;
    }
    /* The count comes off the wire: bound it by the bytes before allocating for it. */
    if (count > len / sizeof(regmpi_kv_t)) return MIXL_ERR_PROTOCOL;
    kvs = calloc(count, sizeof(*kvs));
    if (kvs == NULL) return MIXL_ERR_NO_MEMORY;
    for (size_t i = 0; i < count; i++) {
        regmpi_kv_t h;
        size_t vlen;
        if (len - off < sizeof(h)) goto err_proto;
        memcpy(&h, buf + off, sizeof(h));
        off += sizeof(h);
        vlen = h.has_value ? (size_t)h.val_len : 0;
        if (h.key_len == 0 || len - off < h.key_len || len - off - h.key_len < vlen) goto err_proto;
        if (mixl_reg_kv_fill(&kvs[i], (const char *)buf + off, h.key_len,
                             h.has_value ? buf + off + h.key_len : NULL, (size_t)h.val_len) != MIXL_OK) {
            mixl_registry_kvs_free(kvs, i);
            return MIXL_ERR_NO_MEMORY;
        }
        off += h.key_len + vlen;
        kvs[i].create_revision = h.create_revision;
        kvs[i].mod_revision = h.mod_revision;
        kvs[i].version = h.version;
        kvs[i].lease = h.lease;
        continue;
    err_proto:
        mixl_registry_kvs_free(kvs, i);
        return MIXL_ERR_PROTOCOL;
    }
    *kvs_p = kvs;
    return MIXL_OK;
}

mixl_status_t regmpi_req_decode(const uint8_t *msg, size_t len, regmpi_req_t *r_p, char **key_p,
                                const uint8_t **value_p)
{
    regmpi_req_t r;
    char *key;

    if (len < sizeof(r)) return MIXL_ERR_PROTOCOL;
    memcpy(&r, msg, sizeof(r));
    if (r.magic != REGMPI_MAGIC || r.op < REGMPI_PUT || r.op > REGMPI_DONE ||
        r.slot >= REGMPI_SLOTS || len - sizeof(r) < r.key_len ||
        len - sizeof(r) - r.key_len != r.val_len)
        return MIXL_ERR_PROTOCOL;
    /*
     * Keys are C strings, and the key ops need one: the client side refuses
     * empty keys, and a stored empty key would make every later answer that
     * carries it undecodable (regmpi_kvs_unpack refuses key_len 0).
     */
    if ((r.op <= REGMPI_WAIT && r.key_len == 0) || memchr(msg + sizeof(r), '\0', r.key_len) != NULL)
        return MIXL_ERR_PROTOCOL;
    *r_p = r;
    key = malloc((size_t)r.key_len + 1);
    if (key == NULL) return MIXL_ERR_NO_MEMORY;
    memcpy(key, msg + sizeof(r), r.key_len);
    key[r.key_len] = '\0';
    *key_p = key;
    *value_p = msg + sizeof(r) + r.key_len;
    return MIXL_OK;
}

/*
 * Polling pace. On a machine with more ranks than cores a busy poll would
 * starve the very rank it waits for, so after a short spin the poller
 * yields, and once idle for a while it sleeps in short steps.
 */
void regmpi_backoff(unsigned *idle)
{
    unsigned n = (*idle)++;

    if (n < 64) return;
    if (n < 512) {
        sched_yield();
        return;
    }
    {
        struct timespec ts = {0, n < 4096 ? 20000 : 200000};
        nanosleep(&ts, NULL);
    }
}
