/* Metadata codec: round trip, and refusal of truncated, corrupted, foreign and
 * other-version blobs with a message that says why. */
#define _GNU_SOURCE
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mixl/mixl.h>

#include "util/crc32c.h"

static mixl_metadata_t *sample(void)
{
    mixl_metadata_t *md = calloc(1, sizeof(*md));
    md->format = MIXL_METADATA_FORMAT;
    strcpy(md->name, "decode-3");
    strcpy(md->engine_id, "engine-a");
    strcpy(md->hostname, "node17");
    md->mpi.world = 0x1234567890abcdefull;
    md->mpi.rank = 3;
    strcpy(md->tcp.host, "10.1.2.3");
    md->tcp.port = 41000;
    md->region_count = 3;
    md->regions = calloc(3, sizeof(*md->regions));
    for (uint32_t i = 0; i < 3; i++) {
        md->regions[i].id = i + 10;
        md->regions[i].addr = 0x7f0000000000ull + i * (1ull << 32);
        md->regions[i].len = (1ull << 33) + i; /* > 4 GiB: 64-bit lengths survive */
        md->regions[i].mem_type = i == 2 ? MIXL_MEM_CUDA : MIXL_MEM_HOST;
        md->regions[i].device = i == 2 ? 1 : 0;
        md->regions[i].mpi.window = (int32_t)i - 1;
        md->regions[i].mpi.window_base = md->regions[i].addr;
    }
    md->regions[2].mpi.flags = MIXL_MD_REGION_IPC;
    memset(md->regions[2].mpi.ipc_handle, 0xab, sizeof(md->regions[2].mpi.ipc_handle));
    return md;
}

static void test_round_trip(void **state)
{
    mixl_metadata_t *md = sample(), *back = NULL;
    void *blob;
    size_t len;

    assert_int_equal(mixl_metadata_encode(md, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_decode(blob, len, &back), MIXL_OK);
    assert_string_equal(back->name, "decode-3");
    assert_string_equal(back->engine_id, "engine-a");
    assert_string_equal(back->hostname, "node17");
    assert_string_equal(back->tcp.host, "10.1.2.3");
    assert_int_equal(back->tcp.port, 41000);
    assert_int_equal(back->mpi.rank, 3);
    assert_true(back->mpi.world == md->mpi.world);
    assert_int_equal(back->region_count, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(back->regions[i].id, md->regions[i].id);
        assert_true(back->regions[i].addr == md->regions[i].addr);
        assert_true(back->regions[i].len == md->regions[i].len);
        assert_int_equal(back->regions[i].mem_type, md->regions[i].mem_type);
        assert_int_equal(back->regions[i].mpi.window, md->regions[i].mpi.window);
        assert_int_equal(back->regions[i].mpi.flags, md->regions[i].mpi.flags);
    }
    assert_memory_equal(back->regions[2].mpi.ipc_handle, md->regions[2].mpi.ipc_handle, 64);
    mixl_metadata_free(back);
    mixl_free(blob);
    mixl_metadata_free(md);
}

static void test_truncated(void **state)
{
    mixl_metadata_t *md = sample(), *back = NULL;
    void *blob;
    size_t len;

    assert_int_equal(mixl_metadata_encode(md, &blob, &len), MIXL_OK);
    /* Every proper prefix is refused, none crashes or is accepted. */
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(mixl_metadata_decode(blob, cut, &back),
                         MIXL_ERR_BAD_METADATA);
        assert_true(strlen(mixl_last_error()) > 0);
    }
    assert_int_equal(mixl_metadata_decode(blob, len / 2, &back),
                     MIXL_ERR_BAD_METADATA);
    assert_non_null(strstr(mixl_last_error(), "truncated or corrupted"));
    mixl_free(blob);
    mixl_metadata_free(md);
}

static void test_corrupted(void **state)
{
    mixl_metadata_t *md = sample(), *back = NULL;
    uint8_t *blob;
    size_t len;

    assert_int_equal(mixl_metadata_encode(md, (void **)&blob, &len), MIXL_OK);
    /* Flip one bit anywhere: never accepted. */
    for (size_t i = 0; i < len; i++) {
        blob[i] ^= 0x10;
        mixl_status_t st = mixl_metadata_decode(blob, len, &back);
        assert_true(st == MIXL_ERR_BAD_METADATA || st == MIXL_ERR_VERSION);
        blob[i] ^= 0x10;
    }
    /* A flipped address bit is caught by the checksum, and the message says so. */
    mixl_free(blob);
    md->regions[0].addr = 0x7f0000000000ull;
    assert_int_equal(mixl_metadata_encode(md, (void **)&blob, &len), MIXL_OK);
    uint8_t needle[] = {0x00, 0x00, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00};
    uint8_t *hit = memmem(blob, len, needle, sizeof(needle));
    assert_non_null(hit);
    hit[7] ^= 1;
    assert_int_equal(mixl_metadata_decode(blob, len, &back),
                     MIXL_ERR_BAD_METADATA);
    assert_non_null(strstr(mixl_last_error(), "checksum"));
    /* Trailing garbage is refused too. */
    hit[7] ^= 1;
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, blob, len);
    longer[len] = 0xc0;
    assert_int_equal(mixl_metadata_decode(longer, len + 1, &back),
                     MIXL_ERR_BAD_METADATA);
    assert_non_null(strstr(mixl_last_error(), "checksum"));
    free(longer);
    mixl_free(blob);
    mixl_metadata_free(md);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void test_foreign(void **state)
{
    mixl_metadata_t *back = NULL;
    msgpack_sbuffer sb;
    msgpack_packer pk;

    /* A Dynamo-style NixlMetadata map: valid msgpack, not ours. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "engine_id");
    pack_str(&pk, "vllm-0");
    pack_str(&pk, "num_blocks");
    msgpack_pack_int(&pk, 1000);
    assert_int_equal(mixl_metadata_decode(sb.data, sb.size, &back),
                     MIXL_ERR_BAD_METADATA);
    assert_non_null(strstr(mixl_last_error(), "not a MIXL metadata blob"));
    /* Zero bytes after a valid blob still cannot pass the checksum. */
    msgpack_sbuffer_destroy(&sb);

    /* JSON text and an empty value. */
    const char *json = "{\"name\": \"x\"}";
    assert_int_equal(mixl_metadata_decode(json, strlen(json), &back),
                     MIXL_ERR_BAD_METADATA);
    assert_int_equal(mixl_metadata_decode(json, 0, &back), MIXL_ERR_BAD_METADATA);
    assert_non_null(strstr(mixl_last_error(), "empty"));
}

static void test_other_version(void **state)
{
    mixl_metadata_t *md = sample(), *back = NULL;
    void *blob;
    size_t len;

    md->format = MIXL_METADATA_FORMAT + 1;
    assert_int_equal(mixl_metadata_encode(md, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_decode(blob, len, &back), MIXL_ERR_VERSION);
    assert_non_null(strstr(mixl_last_error(), "format"));
    mixl_free(blob);
    md->format = 0; /* an older format */
    assert_int_equal(mixl_metadata_encode(md, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_decode(blob, len, &back), MIXL_ERR_VERSION);
    mixl_free(blob);
    mixl_metadata_free(md);
}

static void test_duplicate_region_ids(void **state)
{
    mixl_metadata_t *md = sample(), *back = NULL;
    void *blob;
    size_t len;

    md->regions[1].id = md->regions[0].id;
    assert_int_equal(mixl_metadata_encode(md, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_decode(blob, len, &back), MIXL_ERR_BAD_METADATA);
    assert_non_null(strstr(mixl_last_error(), "twice"));
    mixl_free(blob);
    mixl_metadata_free(md);
}

/* A hand-packed blob: map header then "crc" with a zero placeholder; seal() fills the CRC32C. */
static void head(msgpack_packer *pk, msgpack_sbuffer *sb, size_t entries, unsigned format)
{
    msgpack_pack_map(pk, entries);
    pack_str(pk, "crc");
    msgpack_sbuffer_write(sb, "\xce\0\0\0\0", 5);
    pack_str(pk, "magic");
    pack_str(pk, "MIXL-MD");
    pack_str(pk, "format");
    msgpack_pack_uint32(pk, format);
    pack_str(pk, "name");
    pack_str(pk, "sections-0");
}

static void seal(msgpack_sbuffer *sb)
{
    uint8_t *b = (uint8_t *)sb->data + 1 + 4 + 1; /* fixmap, "crc" key, 0xce */
    uint32_t crc = mixl_crc32c(0, sb->data, sb->size);
    b[0] = (uint8_t)(crc >> 24);
    b[1] = (uint8_t)(crc >> 16);
    b[2] = (uint8_t)(crc >> 8);
    b[3] = (uint8_t)crc;
}

/* One host region, id 1, then the "tp" key (its value is the caller's). */
static void one_region_then_tp(msgpack_packer *pk, msgpack_sbuffer *sb)
{
    head(pk, sb, 6, MIXL_METADATA_FORMAT);
    pack_str(pk, "regions");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 4);
    pack_str(pk, "id");
    msgpack_pack_uint32(pk, 1);
    pack_str(pk, "addr");
    msgpack_pack_uint64(pk, 0x10000);
    pack_str(pk, "len");
    msgpack_pack_uint64(pk, 4096);
    pack_str(pk, "mem");
    msgpack_pack_uint32(pk, MIXL_MEM_HOST);
    pack_str(pk, "tp");
}

/*
 * Backend sections: an empty one is not written; a section this library has
 * no codec for is skipped (the other sections still read); a section naming
 * a region the generic part lacks is refused; the previous format, with the
 * MPI and TCP fields at the top level, is refused as another version.
 */
static void test_sections(void **state)
{
    mixl_metadata_t md, *back = NULL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    void *blob;
    size_t len;

    mixl_metadata_init(&md);
    strcpy(md.name, "bare-0");
    assert_int_equal(mixl_metadata_encode(&md, &blob, &len), MIXL_OK);
    assert_null(memmem(blob, len, "\xa3mpi", 4));
    assert_null(memmem(blob, len, "\xa3tcp", 4));
    assert_int_equal(mixl_metadata_decode(blob, len, &back), MIXL_OK);
    assert_int_equal(back->mpi.rank, -1);
    assert_true(back->mpi.world == 0);
    assert_int_equal(back->tcp.port, -1);
    assert_string_equal(back->tcp.host, "");
    mixl_metadata_free(back);
    mixl_free(blob);

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    one_region_then_tp(&pk, &sb);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "rdma-next");
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "qp");
    msgpack_pack_uint32(&pk, 7);
    pack_str(&pk, "tcp");
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "host");
    pack_str(&pk, "10.0.0.9");
    pack_str(&pk, "port");
    msgpack_pack_int32(&pk, 4000);
    seal(&sb);
    assert_int_equal(mixl_metadata_decode(sb.data, sb.size, &back), MIXL_OK);
    assert_string_equal(back->tcp.host, "10.0.0.9");
    assert_int_equal(back->tcp.port, 4000);
    assert_int_equal(back->mpi.rank, -1);
    assert_int_equal(back->regions[0].mpi.window, -2);
    mixl_metadata_free(back);
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    one_region_then_tp(&pk, &sb);
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "mpi");
    msgpack_pack_map(&pk, 1);
    pack_str(&pk, "regions");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    pack_str(&pk, "id");
    msgpack_pack_uint32(&pk, 2);
    pack_str(&pk, "win");
    msgpack_pack_int32(&pk, 0);
    seal(&sb);
    assert_int_equal(mixl_metadata_decode(sb.data, sb.size, &back), MIXL_ERR_BAD_METADATA);
    assert_non_null(strstr(mixl_last_error(), "tp.mpi names region 2, which the blob lacks"));
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    head(&pk, &sb, 6, 1);
    pack_str(&pk, "mpi_rank");
    msgpack_pack_int32(&pk, 0);
    pack_str(&pk, "regions");
    msgpack_pack_array(&pk, 0);
    seal(&sb);
    assert_int_equal(mixl_metadata_decode(sb.data, sb.size, &back), MIXL_ERR_VERSION);
    assert_non_null(strstr(mixl_last_error(), "metadata format 1"));
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupted),        cmocka_unit_test(test_foreign),
        cmocka_unit_test(test_other_version),    cmocka_unit_test(test_duplicate_region_ids),
        cmocka_unit_test(test_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
