/*
 * Writes the seed corpora of the decoder fuzz targets from MIXL's own
 * encoders, so the seeds are real inputs of the current format, plus edge
 * cases built beside them (limits, wrong types, refusals):
 *
 *   fuzz_seeds CORPUS-DIR
 *
 * writes CORPUS-DIR/{metadata,config,registry_mpi,etcd,tcp}/seed-* (the
 * directories must exist). Rerun it when a format changes and commit the
 * result; the replay tests fail when no seed is accepted any more.
 */
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/metadata.h>

#include "config/run_config.h"
#include "registry/etcd/etcd.h"
#include "registry/mpi/mpi_reg.h"
#include "transport/tcp/tcp_proto.h"
#include "util/crc32c.h"

static const char *g_dir;

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/seed-%s", g_dir, target, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
        exit(1);
    }
}

static void put_str(const char *target, const char *name, const char *text)
{
    put(target, name, text, strlen(text));
}

/* A string literal that may hold NUL bytes, without its terminating NUL. */
#define PUT_LIT(target, name, lit) put(target, name, lit, sizeof(lit) - 1)

/* A byte selecting the harness mode, then the text. */
static void put_mode(const char *target, const char *name, uint8_t mode, const void *data,
                     size_t len)
{
    uint8_t *b = malloc(len + 1);
    if (b == NULL) exit(1);
    b[0] = mode;
    memcpy(b + 1, data, len);
    put(target, name, b, len + 1);
    free(b);
}

/* --- metadata ------------------------------------------------------------- */

static void md_put(const char *name, const mixl_metadata_t *md)
{
    void *blob;
    size_t len;
    if (mixl_metadata_encode(md, &blob, &len) != MIXL_OK) exit(1);
    put("metadata", name, blob, len);
    mixl_free(blob);
}

static void md_base(mixl_metadata_t *md, mixl_md_region_t *r, uint32_t n)
{
    memset(md, 0, sizeof(*md));
    md->format = MIXL_METADATA_FORMAT;
    snprintf(md->name, sizeof(md->name), "prefill-0");
    snprintf(md->engine_id, sizeof(md->engine_id), "engine-7f3a");
    snprintf(md->hostname, sizeof(md->hostname), "node001");
    md->mpi.world = 0x1234abcd5678ef00ull;
    md->mpi.rank = 3;
    snprintf(md->tcp.host, sizeof(md->tcp.host), "10.0.0.1");
    md->tcp.port = 40123;
    md->region_count = n;
    md->regions = r;
    for (uint32_t i = 0; i < n; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].id = i + 1;
        r[i].addr = 0x7f0000000000ull + (uint64_t)i * 0x100000;
        r[i].len = 0x100000;
        r[i].mem_type = MIXL_MEM_HOST;
        r[i].mpi.window = (int32_t)i;
        r[i].mpi.window_base = r[i].addr;
    }
}

/* A hand-made blob: the CRC field is left zero (the harness fills it in). */
static void md_raw(const char *name, void (*body)(msgpack_packer *pk))
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    body(&pk);
    put("metadata", name, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pk_head(msgpack_packer *pk, size_t entries)
{
    msgpack_pack_map(pk, entries);
    pk_str(pk, "crc");
    msgpack_pack_str_body(pk, "\xce\0\0\0\0", 5); /* fixed-width uint32 placeholder */
    pk_str(pk, "magic");
    pk_str(pk, "MIXL-MD");
    pk_str(pk, "format");
    msgpack_pack_uint32(pk, MIXL_METADATA_FORMAT);
    pk_str(pk, "name");
    pk_str(pk, "decode-0");
}

static void raw_map16_unknown(msgpack_packer *pk)
{
    pk_head(pk, 18);
    pk_str(pk, "regions");
    msgpack_pack_array(pk, 0);
    for (int i = 0; i < 13; i++) { /* keys a later format may add: ignored */
        char k[16];
        snprintf(k, sizeof(k), "future%d", i);
        pk_str(pk, k);
        if (i % 3 == 0) msgpack_pack_nil(pk);
        else if (i % 3 == 1) msgpack_pack_double(pk, 1.5);
        else msgpack_pack_array(pk, 0);
    }
}

static void raw_regions_not_array(msgpack_packer *pk)
{
    pk_head(pk, 5);
    pk_str(pk, "regions");
    msgpack_pack_map(pk, 0);
}

static void raw_too_many_regions(msgpack_packer *pk)
{
    pk_head(pk, 5);
    pk_str(pk, "regions");
    msgpack_pack_array(pk, 65537);
    for (int i = 0; i < 65537; i++) msgpack_pack_nil(pk);
}

static void raw_region_types(msgpack_packer *pk)
{
    pk_head(pk, 5);
    pk_str(pk, "regions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 5);
    pk_str(pk, "id");
    msgpack_pack_int64(pk, -1);
    pk_str(pk, "addr");
    pk_str(pk, "0x1000");
    pk_str(pk, "len");
    msgpack_pack_uint64(pk, 4096);
    pk_str(pk, "mem");
    msgpack_pack_uint32(pk, 7);
    pk_str(pk, "ipc");
    msgpack_pack_bin(pk, 3);
    msgpack_pack_bin_body(pk, "abc", 3);
}

static void raw_huge_array_claim(msgpack_packer *pk)
{
    /* An array header that claims 2^32-1 regions in a few bytes. */
    pk_head(pk, 5);
    pk_str(pk, "regions");
    msgpack_pack_str_body(pk, "\xdd\xff\xff\xff\xff\xc0", 6);
}

/* One host region with id 1, then a "tp" key whose value body() writes. */
static void pk_one_region_tp(msgpack_packer *pk)
{
    pk_head(pk, 6);
    pk_str(pk, "regions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 4);
    pk_str(pk, "id");
    msgpack_pack_uint32(pk, 1);
    pk_str(pk, "addr");
    msgpack_pack_uint64(pk, 0x10000);
    pk_str(pk, "len");
    msgpack_pack_uint64(pk, 4096);
    pk_str(pk, "mem");
    msgpack_pack_uint32(pk, 0);
    pk_str(pk, "tp");
}

static void raw_tp_unknown_section(msgpack_packer *pk)
{
    /* A backend this library lacks: skipped, the blob is accepted. */
    pk_one_region_tp(pk);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "rdma-future");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "qp");
    msgpack_pack_uint32(pk, 7);
    pk_str(pk, "tcp");
    msgpack_pack_map(pk, 2);
    pk_str(pk, "host");
    pk_str(pk, "10.0.0.9");
    pk_str(pk, "port");
    msgpack_pack_int32(pk, 4000);
}

static void raw_tp_not_map(msgpack_packer *pk)
{
    pk_one_region_tp(pk);
    msgpack_pack_array(pk, 0);
}

static void raw_tp_mpi_unknown_region(msgpack_packer *pk)
{
    pk_one_region_tp(pk);
    msgpack_pack_map(pk, 1);
    pk_str(pk, "mpi");
    msgpack_pack_map(pk, 3);
    pk_str(pk, "world");
    msgpack_pack_uint64(pk, 99);
    pk_str(pk, "rank");
    msgpack_pack_int32(pk, 0);
    pk_str(pk, "regions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    pk_str(pk, "id");
    msgpack_pack_uint32(pk, 2);
    pk_str(pk, "win");
    msgpack_pack_int32(pk, 0);
}

static void raw_format1(msgpack_packer *pk)
{
    /* The previous format, fields at the top level: refused as another version. */
    msgpack_pack_map(pk, 7);
    pk_str(pk, "crc");
    msgpack_pack_str_body(pk, "\xce\0\0\0\0", 5);
    pk_str(pk, "magic");
    pk_str(pk, "MIXL-MD");
    pk_str(pk, "format");
    msgpack_pack_uint32(pk, 1);
    pk_str(pk, "name");
    pk_str(pk, "decode-0");
    pk_str(pk, "mpi_rank");
    msgpack_pack_int32(pk, 0);
    pk_str(pk, "tcp_port");
    msgpack_pack_int32(pk, 4000);
    pk_str(pk, "regions");
    msgpack_pack_array(pk, 0);
}

static void metadata_seeds(void)
{
    mixl_metadata_t md;
    mixl_md_region_t r[8];

    md_base(&md, r, 0);
    md.mpi.rank = -1;
    md.mpi.world = 0;
    md.tcp.host[0] = '\0';
    md.tcp.port = -1;
    md_put("no-regions", &md);
    md_base(&md, r, 1);
    md_put("one-host-region", &md);
    md_base(&md, r, 4);
    r[1].mem_type = MIXL_MEM_PINNED;
    r[2].mem_type = MIXL_MEM_CUDA;
    r[2].device = 1;
    r[2].mpi.window = -2;
    r[2].mpi.flags = MIXL_MD_REGION_IPC;
    memset(r[2].mpi.ipc_handle, 0xab, sizeof(r[2].mpi.ipc_handle));
    r[3].mem_type = MIXL_MEM_CUDA;
    r[3].mpi.flags = MIXL_MD_REGION_STAGED;
    r[3].mpi.window = -1;
    md_put("mixed-regions", &md);
    md_base(&md, r, 2);
    memset(md.name, 'n', sizeof(md.name) - 1);
    memset(md.engine_id, 'e', sizeof(md.engine_id) - 1);
    memset(md.hostname, 'h', sizeof(md.hostname) - 1);
    memset(md.tcp.host, 't', sizeof(md.tcp.host) - 1);
    snprintf(md.library_version, sizeof(md.library_version), "123.456.789.012");
    md.tcp.port = 65535;
    md.mpi.rank = INT32_MAX;
    r[0].id = UINT32_MAX;
    r[0].addr = UINT64_MAX - 4096;
    r[0].len = 4096;
    r[1].id = 0;
    r[1].mpi.window = INT32_MAX;
    r[1].mpi.flags = UINT32_MAX & ~MIXL_MD_REGION_IPC;
    md_put("limits", &md);
    /* Refused ones: the encoder writes what the decoder must reject. */
    md_base(&md, r, 2);
    r[1].id = r[0].id;
    md_put("dup-region-id", &md);
    md_base(&md, r, 1);
    r[0].addr = UINT64_MAX - 10;
    md_put("span-overflow", &md);
    md_base(&md, r, 1);
    r[0].len = 0;
    md_put("empty-span", &md);
    md_base(&md, r, 1);
    r[0].mpi.flags = MIXL_MD_REGION_IPC;
    md_put("ipc-on-host", &md);
    md_base(&md, r, 1);
    md.format = MIXL_METADATA_FORMAT + 1;
    md_put("future-format", &md);
    md_base(&md, r, 1);
    md.name[0] = '\0';
    md_put("empty-name", &md);
    md_raw("map16-unknown-keys", raw_map16_unknown);
    md_raw("regions-not-array", raw_regions_not_array);
    md_raw("too-many-regions", raw_too_many_regions);
    md_raw("region-field-types", raw_region_types);
    md_raw("huge-array-claim", raw_huge_array_claim);
    md_raw("tp-unknown-section", raw_tp_unknown_section);
    md_raw("tp-not-map", raw_tp_not_map);
    md_raw("tp-mpi-unknown-region", raw_tp_mpi_unknown_region);
    md_raw("format-1", raw_format1);
}

/* --- config --------------------------------------------------------------- */

static void config_seeds(void)
{
    mixl_run_config_t *cfg = calloc(1, sizeof(*cfg));
    char err[MIXL_CFG_ERR_MAX];
    char *text;

    if (cfg == NULL || mixl_cfg_defaults(mixl_run_config_schema(), cfg, err, sizeof(err)) != MIXL_OK)
        exit(1);
    text = mixl_cfg_to_string(mixl_run_config_schema(), cfg); /* every key, as --print-config */
    if (text == NULL) exit(1);
    put_str("config", "print-config", text);
    free(text);
    free(cfg);
    put_str("config", "empty", "");
    put_str("config", "null-doc", "~\n");
    put_str("config", "small",
            "run:\n  name: \"tiny \\\"quoted\\\" run\"\n  seed: 0x2a\n  progress: plain\n"
            "workload:\n  requests: 4\n"
            "registry:\n  endpoints: [\"http://10.0.0.1:2379\", 'https://b:2379']\n"
            "  lease_ttl_s: 3600\n");
    put_str("config", "flow-and-anchors",
            "{run: {name: &n exp, timeout_ms: 100}, registry: {namespace: *n, endpoints: a,b, c}}\n");
    put_str("config", "block-scalars",
            "run:\n  name: |\n    two\n    lines\n  output: >-\n    folded\n    text\n");
    put_str("config", "section-empty", "run:\nregistry: ~\n");
    put_str("config", "unknown-key", "run:\n  nmae: x\n");
    put_str("config", "duplicate-key", "run:\n  seed: 1\n  seed: 2\n");
    put_str("config", "out-of-range", "run:\n  timeout_ms: 99\n");
    put_str("config", "wrong-kind", "run: [1, 2]\n");
    put_str("config", "quoted-number", "run:\n  seed: \"5\"\n");
    put_str("config", "bool-words", "run:\n  name: yes\n");
    put_str("config", "two-docs", "run:\n  seed: 1\n---\nrun:\n  seed: 2\n");
    put_str("config", "bad-yaml", "run:\n  name: [unclosed\n");
    put_str("config", "escapes", "run:\n  name: \"tab\\there \\u00e9 \\x41\"\n");
    put_str("config", "tags", "run:\n  seed: !!int 7\n  name: !!str 8\n");
}

/* --- MPI registry ---------------------------------------------------------- */

static size_t req(uint8_t *out, uint16_t op, uint16_t flags, uint16_t slot, const char *key,
                  const void *val, size_t vlen, int64_t lease, int64_t arg)
{
    regmpi_req_t h;
    size_t n;

    memset(&h, 0, sizeof(h)); /* padding bytes too: the seeds are reproducible */
    h.magic = REGMPI_MAGIC;
    h.op = op;
    h.flags = flags;
    h.seq = 7;
    h.slot = slot;
    h.key_len = (uint32_t)strlen(key);
    h.val_len = vlen;
    h.lease = lease;
    h.arg = arg;
    n = sizeof(h) + h.key_len + vlen;
    out[0] = (uint8_t)n;
    out[1] = (uint8_t)(n >> 8);
    memcpy(out + 2, &h, sizeof(h));
    memcpy(out + 2 + sizeof(h), key, h.key_len);
    memcpy(out + 2 + sizeof(h) + h.key_len, val, vlen);
    return 2 + n;
}

static void registry_mpi_seeds(void)
{
    static uint8_t b[65536];
    size_t n = 1;
    mixl_registry_kv_t kvs[3] = {
        {.key = "mixl/mixl_metadata/prefill-0", .value = "blob-bytes", .len = 10,
         .create_revision = 2, .mod_revision = 5, .version = 3, .lease = 0x6b8b4567},
        {.key = "mixl/mixl_metadata/decode-0", .value = "", .len = 0, .create_revision = 3,
         .mod_revision = 3, .version = 1},
        {.key = "mixl/keys-only", .value = NULL, .len = 0},
    };

    /* Server side (even first byte): a session of requests. */
    b[0] = 0;
    n += req(b + n, REGMPI_GRANT, 0, 0, "", NULL, 0, 0, 10);
    n += req(b + n, REGMPI_PUT, 0, 1, "mixl/mixl_metadata/prefill-0", "blob", 4, 0, 0);
    n += req(b + n, REGMPI_PUT, 0, 2, "mixl/mixl_metadata/decode-0", "", 0, 1, 0);
    n += req(b + n, REGMPI_GET, 0, 3, "mixl/mixl_metadata/prefill-0", NULL, 0, 0, 0);
    n += req(b + n, REGMPI_LIST, 0, 4, "mixl/", NULL, 0, 0, 0);
    n += req(b + n, REGMPI_LIST, MIXL_REGISTRY_KEYS_ONLY, 5, "mixl/", NULL, 0, 0, 0);
    n += req(b + n, REGMPI_WAIT, 0, 6, "mixl/absent", NULL, 0, 0, 100);
    n += req(b + n, REGMPI_KEEPALIVE, 0, 7, "", NULL, 0, 1, 0);
    n += req(b + n, REGMPI_DEL, 0, 8, "mixl/mixl_metadata/prefill-0", NULL, 0, 0, 0);
    n += req(b + n, REGMPI_REVOKE, 0, 63, "", NULL, 0, 1, 0);
    n += req(b + n, REGMPI_DONE, 0, 0, "", NULL, 0, 0, 0);
    put("registry_mpi", "server-session", b, n);
    n = 1;
    n += req(b + n, REGMPI_PUT, 0, 64, "slot-out-of-range", "v", 1, 0, 0);
    n += req(b + n, 10, 0, 0, "unknown-op", NULL, 0, 0, 0);
    n += req(b + n, REGMPI_GRANT, 0, 0, "", NULL, 0, 0, 1000001);
    n += req(b + n, REGMPI_PUT, 0, 0, "k", "v", 1, 0x7fffffffffffffffll, 0);
    put("registry_mpi", "server-refused", b, n);
    /* Found by fuzzing: the server stored an empty key, and answers carrying it were undecodable. */
    n = 1;
    n += req(b + n, REGMPI_PUT, 0, 0, "", "v", 1, 0, 0);
    n += req(b + n, REGMPI_GET, 0, 1, "", NULL, 0, 0, 0);
    put("registry_mpi", "regress-empty-key", b, n);

    /* Client side (odd first byte): answers as the server packs them. */
    {
        regmpi_resp_t h;
        size_t size = sizeof(h);
        memset(&h, 0, sizeof(h));
        h.magic = REGMPI_MAGIC;
        h.status = MIXL_OK;
        h.seq = 7;
        h.count = 3;
        for (int i = 0; i < 3; i++) size += regmpi_kv_wire_size(&kvs[i]);
        b[0] = 1;
        memcpy(b + 1, &h, sizeof(h));
        regmpi_kvs_pack(b + 1 + sizeof(h), kvs, 3);
        put("registry_mpi", "client-list-answer", b, 1 + size);
        /* The same answer claiming one pair more than it carries. */
        h.count = 4;
        memcpy(b + 1, &h, sizeof(h));
        put("registry_mpi", "client-count-too-big", b, 1 + size);
        /* A count of 2^32-1 in a short answer. */
        h.count = UINT32_MAX;
        memcpy(b + 1, &h, sizeof(h));
        put("registry_mpi", "client-count-huge", b, 1 + sizeof(h) + 8);
        h.count = 0;
        h.status = MIXL_ERR_NOT_FOUND;
        memcpy(b + 1, &h, sizeof(h));
        put("registry_mpi", "client-not-found", b, 1 + sizeof(h));
    }
}

/* --- etcd ----------------------------------------------------------------- */

static char *etcd_answer(const mixl_registry_kv_t *kvs, size_t count, int keys_only)
{
    json_t *arr = json_array(), *resp;
    char *text;

    for (size_t i = 0; i < count; i++) {
        char *k = etcd_b64_encode(kvs[i].key, strlen(kvs[i].key));
        char *v = etcd_b64_encode(kvs[i].value, kvs[i].len);
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "key", k, "create_revision", "12",
                              "mod_revision", "13", "version", (json_int_t)1, "lease",
                              "7587869123456789");
        if (!keys_only) json_object_set_new(o, "value", json_string(v));
        json_array_append_new(arr, o);
        free(k);
        free(v);
    }
    resp = json_pack("{s:{s:s, s:s, s:s, s:s}, s:o, s:s}", "header", "cluster_id",
                     "14841639068965178418", "member_id", "10276657743932975437", "revision", "13",
                     "raft_term", "2", "kvs", arr, "count", "2");
    text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    if (text == NULL) exit(1);
    return text;
}

static void etcd_seeds(void)
{
    mixl_registry_kv_t kvs[2] = {
        {.key = "mixl/mixl_metadata/decode-0", .value = "\x81\xa3" "crc\xce\0\0\0\0", .len = 9},
        {.key = "mixl/mixl_metadata/prefill-0", .value = "", .len = 0},
    };
    char *text = etcd_answer(kvs, 2, 0);
    char line[4096];
    char *k, *v;

    put_mode("etcd", "range-values", 0, text, strlen(text));
    free(text);
    text = etcd_answer(kvs, 2, 1);
    put_mode("etcd", "range-keys-only", 9, text, strlen(text));
    free(text);
    PUT_LIT("etcd", "range-empty", "\x00{\"header\":{\"revision\":\"5\"}}");
    PUT_LIT("etcd", "range-bad-b64", "\x00{\"kvs\":[{\"key\":\"a===\"}]}");
    PUT_LIT("etcd", "lease-answers",
            "\x03{\"ID\":\"7587869123456789\",\"TTL\":\"10\",\"result\":{\"TTL\":\"-1\"},"
            "\"deleted\":\"1\"}");

    /* A watch stream: created, a PUT of another key, a DELETE, then the PUT awaited. */
    k = etcd_b64_encode(kvs[0].key, strlen(kvs[0].key));
    v = etcd_b64_encode(kvs[0].value, kvs[0].len);
    snprintf(line, sizeof(line) - 1,
             "%c{\"result\":{\"header\":{\"revision\":\"9\"},\"created\":true}}\n\n"
             "{\"result\":{\"events\":[{\"kv\":{\"key\":\"b3RoZXI=\",\"value\":\"eA==\"}}]}}\n"
             "{\"result\":{\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"%s\"}}]}}\n"
             "{\"result\":{\"events\":[{\"kv\":{\"key\":\"%s\",\"create_revision\":\"10\","
             "\"mod_revision\":\"10\",\"version\":\"1\",\"value\":\"%s\"}}]}}\n",
             7, k, k, v);
    put_mode("etcd", "watch-put", 1, line, strlen(line));
    /* Mode byte, chunk-size byte, stream. */
    PUT_LIT("etcd", "watch-canceled",
            "\x04\x00{\"result\":{\"canceled\":true,\"compact_revision\":\"12\"}}\n");
    PUT_LIT("etcd", "watch-bad-event", "\x01\x10{\"result\":{\"events\":[{\"kv\":{}}]}}\n");
    free(k);
    free(v);
    PUT_LIT("etcd", "b64-padded", "\x02" "bWl4bC9hYg==");
    PUT_LIT("etcd", "b64-full", "\x02" "AAECA/79/w+/");
    PUT_LIT("etcd", "b64-bad", "\x02" "bW=4");
}

/* --- TCP (the frames the replay used to build in; kept as files) ------------ */

static size_t frame(uint8_t *out, uint8_t type, uint8_t flags, uint64_t req_id, uint32_t region,
                    uint64_t offset, uint64_t length, uint32_t payload)
{
    mixl_tcp_frame_t f = {.payload_len = payload, .type = type, .flags = flags, .req_id = req_id,
                          .region = region, .offset = offset, .length = length};
    mixl_tcp_frame_encode(&f, out);
    memset(out + MIXL_TCP_HDR_LEN, 0x3c, payload);
    return MIXL_TCP_HDR_LEN + payload;
}

static void tcp_seeds(void)
{
    static uint8_t b[8192];
    size_t n;
    mixl_tcp_hello_t h;

    memset(&h, 0, sizeof(h));
    h.version = 1;
    h.max_frame = 4096;
    h.name_len = 1;
    h.name[0] = 'a';
    h.text_len = 1;
    h.text[0] = 'b';
    put("tcp", "hello-short-names", b, mixl_tcp_hello_encode(&h, b));
    n = frame(b, MIXL_TCP_WRITE, MIXL_TCP_F_LAST, 1, 1, 0, 100, 100);
    n += frame(b + n, MIXL_TCP_READ_REQ, MIXL_TCP_F_LAST, 2, 1, 10, 3000, 0);
    n += frame(b + n, MIXL_TCP_NOTIF, MIXL_TCP_F_LAST, 3, 0, 0, 5, 5);
    n += frame(b + n, MIXL_TCP_WRITE, 0, 4, 1, 65530, 100, 100);
    n += frame(b + n, MIXL_TCP_WRITE, MIXL_TCP_F_LAST, 4, 1, 0, 100, 100);
    n += frame(b + n, MIXL_TCP_CLOSE, 0, 0, 0, 0, 0, 0);
    put("tcp", "frames-mixed", b, n);
    put("tcp", "frame-error", b, frame(b, MIXL_TCP_ERROR, 0, 9, 0, 0, 8, 8));
    put("tcp", "frame-write-crc-edge", b,
        frame(b, MIXL_TCP_WRITE, MIXL_TCP_F_LAST | MIXL_TCP_F_CRC, 5, 1, 65000, 600, 600));
    put("tcp", "frame-read-max-length", b,
        frame(b, MIXL_TCP_READ_REQ, MIXL_TCP_F_CRC, 6, 1, 0, UINT64_MAX, 0));
    put_str("tcp", "raw-http", "RGET / HTTP/1.0\r\n\r\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    metadata_seeds();
    config_seeds();
    registry_mpi_seeds();
    etcd_seeds();
    tcp_seeds();
    return 0;
}
