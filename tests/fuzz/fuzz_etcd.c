/*
 * Fuzz target: decoding of the etcd gateway's answers. The first byte picks
 * what the rest is:
 *   0 mod 3: a /v3/kv/range answer (JSON), decoded with values (bit 3 clear)
 *            or keys only (bit 3 set), plus the integer fields MIXL reads
 *            from other answers (revision, lease ID and TTL, deleted)
 *   1 mod 3: a /v3/watch stream for key WATCH_KEY, handed to the curl write
 *            callback in chunks of (second byte + 1) bytes
 *   2 mod 3: base64 text, decoded
 * Every decoded key and value must encode back to base64 that decodes to
 * the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "registry/etcd/etcd.h"

#define WATCH_KEY "mixl/mixl_metadata/decode-0"

static void check_b64(const void *bytes, size_t len)
{
    char *text = etcd_b64_encode(bytes, len);
    void *back = NULL;
    size_t back_len = 0;

    FUZZ_CHECK(text != NULL && strlen(text) == 4 * ((len + 2) / 3));
    FUZZ_CHECK(etcd_b64_decode(text, &back, &back_len) == MIXL_OK);
    FUZZ_CHECK(back_len == len && memcmp(back, bytes, len) == 0);
    free(back);
    free(text);
}

static void range_answer(const char *text, size_t len, int keys_only)
{
    json_t *resp = json_loadb(text, len, 0, NULL);
    mixl_registry_kv_t *kvs = NULL;
    size_t count = 99;

    if (resp == NULL) return;
    (void)etcd_json_i64(json_object_get(resp, "header"), "revision");
    (void)etcd_json_i64(resp, "ID");
    (void)etcd_json_i64(json_object_get(resp, "result"), "TTL");
    (void)etcd_json_i64(resp, "deleted");
    if (etcd_range_decode(resp, keys_only, &kvs, &count) == MIXL_OK) {
        mixl_fuzz_accepted++;
        FUZZ_CHECK(count == 0 ? kvs == NULL : kvs != NULL);
        for (size_t i = 0; i < count; i++) {
            FUZZ_CHECK(kvs[i].key != NULL);
            check_b64(kvs[i].key, strlen(kvs[i].key));
            if (keys_only) {
                FUZZ_CHECK(kvs[i].value == NULL && kvs[i].len == 0);
            } else {
                FUZZ_CHECK(kvs[i].value != NULL);
                check_b64(kvs[i].value, kvs[i].len);
            }
        }
        mixl_registry_kvs_free(kvs, count);
    }
    json_decref(resp);
}

static void watch_stream(const uint8_t *data, size_t size)
{
    etcd_watch_t w = {.key = WATCH_KEY};
    size_t chunk, pos = 0;
    char *copy;

    if (size < 1) return;
    chunk = (size_t)data[0] + 1;
    data++;
    size--;
    /* Curl hands over a writable buffer of exactly the chunk's size. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) abort();
    memcpy(copy, data, size);
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        size_t took = etcd_watch_write(copy + pos, 1, n, &w);
        if (took != n) {
            FUZZ_CHECK(took == 0 && (w.kv != NULL || w.canceled || w.failed));
            break;
        }
        pos += n;
    }
    FUZZ_CHECK(w.len <= w.cap);
    if (w.kv != NULL) {
        mixl_fuzz_accepted++;
        FUZZ_CHECK(strcmp(w.kv->key, WATCH_KEY) == 0 && w.kv->value != NULL);
        check_b64(w.kv->value, w.kv->len);
        mixl_registry_kv_free(w.kv);
    }
    free(w.line);
    free(copy);
}

static void base64(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    void *out = NULL;
    size_t len = 0;

    if (text == NULL) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    if (etcd_b64_decode(text, &out, &len) == MIXL_OK) {
        mixl_fuzz_accepted++;
        FUZZ_CHECK(len <= strlen(text) / 4 * 3 && ((char *)out)[len] == '\0');
        check_b64(out, len);
        free(out);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    switch (data[0] % 3) {
    case 0: range_answer((const char *)data + 1, size - 1, (data[0] & 8) != 0); break;
    case 1: watch_stream(data + 1, size - 1); break;
    default: base64(data + 1, size - 1); break;
    }
    return 0;
}
