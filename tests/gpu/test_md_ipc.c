/*
 * The allocation size that rides with a CUDA IPC handle in the metadata:
 * encoded and decoded intact, and a region that runs past the allocation
 * its handle maps is refused at decode (MIXL_ERR_BAD_METADATA) so no
 * importer ever copies outside its mapping. Needs no GPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/metadata.h>
#include <mixl/mixl.h>

static int failures;

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);         \
            fprintf(stderr, __VA_ARGS__);                           \
            fputc('\n', stderr);                                    \
            failures++;                                             \
        }                                                           \
    } while (0)

/* Encode a one-region blob whose region starts off bytes into an IPC
 * allocation of size bytes at 0x7f0000000000 and is len long; decode it. */
static mixl_status_t roundtrip(uint64_t off, uint64_t len, uint64_t size, uint64_t *size_back,
                               char *err, size_t err_len)
{
    mixl_md_region_t r;
    mixl_metadata_t md, *out = NULL;
    void *blob = NULL;
    size_t blen = 0;
    mixl_status_t st;

    memset(&md, 0, sizeof(md));
    memset(&r, 0, sizeof(r));
    snprintf(md.name, sizeof(md.name), "gpu-peer");
    snprintf(md.hostname, sizeof(md.hostname), "node0");
    md.format = MIXL_METADATA_FORMAT;
    md.mpi.rank = -1;
    r.id = 7;
    r.mpi.window_base = 0x7f0000000000ull;
    r.addr = r.mpi.window_base + off;
    r.len = len;
    r.mem_type = MIXL_MEM_CUDA;
    r.mpi.window = -2;
    r.mpi.flags = MIXL_MD_REGION_IPC;
    r.mpi.ipc_size = size;
    memset(r.mpi.ipc_handle, 0x5a, sizeof(r.mpi.ipc_handle));
    md.regions = &r;
    md.region_count = 1;
    st = mixl_metadata_encode(&md, &blob, &blen);
    if (st != MIXL_OK) return st;
    st = mixl_metadata_decode(blob, blen, &out);
    if (st != MIXL_OK) snprintf(err, err_len, "%s", mixl_last_error());
    if (st == MIXL_OK) {
        *size_back = out->regions[0].mpi.ipc_size;
        mixl_metadata_free(out);
    }
    mixl_free(blob);
    return st;
}

int main(void)
{
    char err[256] = "";
    uint64_t back = 0;
    mixl_status_t st;

    st = roundtrip(4096, 1 << 20, 4u << 20, &back, err, sizeof(err));
    CHECK(st == MIXL_OK && back == (4u << 20), "inside: %s, size back %llu (%s)", mixl_status_str(st),
          (unsigned long long)back, err);
    st = roundtrip((4u << 20) - 100, 100, 4u << 20, &back, err, sizeof(err));
    CHECK(st == MIXL_OK, "ending exactly at the allocation's end: %s (%s)", mixl_status_str(st), err);
    st = roundtrip((4u << 20) - 100, 101, 4u << 20, &back, err, sizeof(err));
    CHECK(st == MIXL_ERR_BAD_METADATA && strstr(err, "runs past the CUDA allocation") != NULL,
          "one byte past the allocation: %s (%s)", mixl_status_str(st), err);
    st = roundtrip(5u << 20, 16, 4u << 20, &back, err, sizeof(err));
    CHECK(st == MIXL_ERR_BAD_METADATA, "starting past the allocation: %s", mixl_status_str(st));
    st = roundtrip(0, 1u << 30, 0, &back, err, sizeof(err));
    CHECK(st == MIXL_OK && back == 0, "no size told (older writer): %s", mixl_status_str(st));
    printf("test_md_ipc: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
