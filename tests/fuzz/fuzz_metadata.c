/*
 * Fuzz target: the metadata blob decoder (mixl_metadata_decode), which reads
 * what a peer published in the registry.
 *
 * Random bytes almost never carry the right CRC32C, so the decoder would
 * stop at the checksum. When the input starts the way a blob does (a map
 * whose first key is "crc" with a 4-byte value), the harness writes the
 * correct checksum before decoding, so mutations reach the structure checks:
 * msgpack shape, field types and lengths, region limit and spans.
 *
 * An accepted blob must satisfy what the agent relies on, and must encode
 * and decode back to the same contents.
 */
#include <stdlib.h>
#include <string.h>

#include <mixl/mem.h>
#include <mixl/metadata.h>
#include <mixl/status.h>
#include <mixl/version.h>

#include "fuzz.h"
#include "util/crc32c.h"

/* Where the 4 CRC bytes sit (as metadata.c writes them); 0 when the input is not blob-shaped. */
static size_t crc_at(const uint8_t *b, size_t len)
{
    static const uint8_t key[] = {0xa3, 'c', 'r', 'c', 0xce};
    size_t h;

    if (len < 1) return 0;
    if ((b[0] & 0xf0) == 0x80) h = 1;
    else if (b[0] == 0xde) h = 3;
    else if (b[0] == 0xdf) h = 5;
    else return 0;
    if (len < h + sizeof(key) + 4 || memcmp(b + h, key, sizeof(key)) != 0) return 0;
    return h + sizeof(key);
}

static void check_strings(const mixl_metadata_t *md)
{
    FUZZ_CHECK(memchr(md->name, '\0', sizeof(md->name)) != NULL && md->name[0] != '\0');
    FUZZ_CHECK(memchr(md->engine_id, '\0', sizeof(md->engine_id)) != NULL);
    FUZZ_CHECK(memchr(md->hostname, '\0', sizeof(md->hostname)) != NULL);
    FUZZ_CHECK(memchr(md->library_version, '\0', sizeof(md->library_version)) != NULL);
    FUZZ_CHECK(memchr(md->tcp.host, '\0', sizeof(md->tcp.host)) != NULL);
}

/* Regions as the encoder writes them: an IPC handle and allocation size only where the
 * flag says they are valid. */
static void canonical(mixl_metadata_t *md)
{
    for (uint32_t i = 0; i < md->region_count; i++)
        if (!(md->regions[i].mpi.flags & MIXL_MD_REGION_IPC)) {
            memset(md->regions[i].mpi.ipc_handle, 0, sizeof(md->regions[i].mpi.ipc_handle));
            md->regions[i].mpi.ipc_size = 0;
        }
}

static int same(const mixl_metadata_t *a, const mixl_metadata_t *b)
{
    return a->format == b->format && strcmp(a->name, b->name) == 0 &&
           strcmp(a->engine_id, b->engine_id) == 0 && strcmp(a->hostname, b->hostname) == 0 &&
           /* The encoder writes its own version where the blob named none. */
           strcmp(a->library_version[0] ? a->library_version : MIXL_VERSION_STRING,
                  b->library_version) == 0 &&
           a->mpi.world == b->mpi.world &&
           a->mpi.rank == b->mpi.rank && strcmp(a->tcp.host, b->tcp.host) == 0 &&
           a->tcp.port == b->tcp.port && a->region_count == b->region_count &&
           (a->region_count == 0 ||
            memcmp(a->regions, b->regions, a->region_count * sizeof(*a->regions)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *blob = malloc(size ? size : 1);
    mixl_metadata_t *md = NULL, *again = NULL;
    void *re = NULL;
    size_t re_len = 0, at;
    mixl_status_t st;

    if (blob == NULL) abort();
    memcpy(blob, data, size);
    at = crc_at(blob, size);
    if (at != 0) {
        uint32_t crc;
        memset(blob + at, 0, 4);
        crc = mixl_crc32c(0, blob, size);
        blob[at] = (uint8_t)(crc >> 24);
        blob[at + 1] = (uint8_t)(crc >> 16);
        blob[at + 2] = (uint8_t)(crc >> 8);
        blob[at + 3] = (uint8_t)crc;
    }
    st = mixl_metadata_decode(blob, size, &md);
    if (st != MIXL_OK) {
        /* Every refusal says why, with a status of its own kind. */
        FUZZ_CHECK(st == MIXL_ERR_BAD_METADATA || st == MIXL_ERR_VERSION);
        FUZZ_CHECK(mixl_last_error()[0] != '\0');
        free(blob);
        return 0;
    }
    mixl_fuzz_accepted++;
    FUZZ_CHECK(md->format == MIXL_METADATA_FORMAT);
    FUZZ_CHECK(md->region_count == 0 || md->regions != NULL);
    FUZZ_CHECK(md->mpi.rank >= -1 && md->tcp.port >= -1 && md->tcp.port <= 65535);
    check_strings(md);
    for (uint32_t i = 0; i < md->region_count; i++) {
        const mixl_md_region_t *r = &md->regions[i];
        FUZZ_CHECK(r->len > 0 && r->addr + r->len > r->addr);
        FUZZ_CHECK(r->mem_type == MIXL_MEM_HOST || r->mem_type == MIXL_MEM_PINNED ||
                   r->mem_type == MIXL_MEM_CUDA);
        FUZZ_CHECK(!(r->mpi.flags & MIXL_MD_REGION_IPC) || r->mem_type == MIXL_MEM_CUDA);
        for (uint32_t j = i + 1; j < md->region_count; j++) FUZZ_CHECK(r->id != md->regions[j].id);
    }
    FUZZ_CHECK(mixl_metadata_encode(md, &re, &re_len) == MIXL_OK);
    FUZZ_CHECK(mixl_metadata_decode(re, re_len, &again) == MIXL_OK);
    canonical(md);
    FUZZ_CHECK(same(md, again));
    mixl_metadata_free(again);
    mixl_free(re);
    mixl_metadata_free(md);
    free(blob);
    return 0;
}
