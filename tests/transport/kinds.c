/*
 * Memory kinds of the transport conformance suite: allocating each
 * process's pool and filling and checking it, directly for host memory and
 * through a host scratch buffer (mixl_mem_copy) for device memory.
 */
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "mem/mem.h"

static const tr_kind_t kinds[] = {
    {.name = "host", .type = MIXL_MEM_HOST},
    {.name = "host_mpi", .type = MIXL_MEM_HOST, .from_mpi = 1},
    {.name = "cuda_staged", .type = MIXL_MEM_CUDA, .gpu_path = MIXL_GPU_PATH_STAGED,
     .path_expect = "staged through"},
    {.name = "cuda_devwin", .type = MIXL_MEM_CUDA, .gpu_path = MIXL_GPU_PATH_DEVICE_WIN,
     .path_expect = "device windows"},
    {.name = "cuda_ipc", .type = MIXL_MEM_CUDA, .gpu_path = MIXL_GPU_PATH_AUTO, .late = 1,
     .path_expect = "CUDA IPC"},
};

const tr_kind_t *tr_kind_find(const char *name)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].name, name) == 0) return &kinds[i];
    return NULL;
}

int tr_kind_available(const tr_kind_t *k, int *device_p)
{
    int ndev = 0;
    mixl_status_t st;

    *device_p = 0;
    if (k->type != MIXL_MEM_CUDA) return 0;
    st = mixl_mem_device_count(&ndev);
    if (st == MIXL_ERR_NOT_SUPPORTED) {
        printf("SKIP: memory kind %s needs CUDA; this MIXL was built without it\n", k->name);
        return 77;
    }
    if (st != MIXL_OK) {
        /* A CUDA error other than "no device" (driver/runtime mismatch, ...) fails. */
        printf("FAIL: memory kind %s: cannot count CUDA devices: %s\n", k->name, mixl_status_str(st));
        return 1;
    }
    if (ndev == 0) {
        printf("SKIP: memory kind %s needs a CUDA device; none is present\n", k->name);
        return 77;
    }
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    *device_p = (lr != NULL ? atoi(lr) : 0) % ndev;
    return 0;
}

mixl_status_t tr_pool_alloc(void)
{
    mixl_status_t st;

    if (T.kind->from_mpi) return mixl_mem_alloc_mpi(MPI_COMM_WORLD, TR_POOL, (void **)&T.pool);
    if (T.kind->type == MIXL_MEM_CUDA) {
        T.scratch = malloc(TR_POOL);
        if (T.scratch == NULL) return MIXL_ERR_NO_MEMORY;
        st = mixl_mem_alloc(MIXL_MEM_CUDA, T.device, TR_POOL, (void **)&T.pool);
        return st;
    }
    T.pool = aligned_alloc(4096, TR_POOL);
    return T.pool != NULL ? MIXL_OK : MIXL_ERR_NO_MEMORY;
}

void tr_pool_free(void)
{
    if (T.kind->from_mpi)
        mixl_mem_free_mpi(T.pool);
    else if (T.kind->type == MIXL_MEM_CUDA)
        mixl_mem_free(MIXL_MEM_CUDA, T.pool);
    else
        free(T.pool);
    free(T.scratch);
    T.pool = T.scratch = NULL;
}

/* Eight pattern bytes at word index w: differs per salt and per position. */
static uint64_t word(uint64_t w, uint32_t salt)
{
    uint64_t x = (w + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)salt << 29 | salt);
    x ^= x >> 31;
    return x * 0xbf58476d1ce4e5b9ull;
}

static void pattern(uint8_t *p, uint64_t len, uint32_t salt)
{
    uint64_t w = 0, i = 0;
    for (; i + 8 <= len; i += 8, w++) {
        uint64_t x = word(w, salt);
        memcpy(p + i, &x, 8);
    }
    if (i < len) {
        uint64_t x = word(w, salt);
        memcpy(p + i, &x, len - i);
    }
}

/* Host view of pool[off, off+len): the pool itself, or a copy of device memory in scratch. */
static uint8_t *host_view(uint64_t off, uint64_t len)
{
    if (T.kind->type != MIXL_MEM_CUDA) return T.pool + off;
    if (mixl_mem_copy(T.scratch, T.pool + off, len) != MIXL_OK) {
        CHECK(0, "copying %llu bytes of device memory to the host", (unsigned long long)len);
        memset(T.scratch, 0xEE, len);
    }
    return T.scratch;
}

void tr_fill(uint64_t off, uint64_t len, uint32_t salt)
{
    if (T.kind->type != MIXL_MEM_CUDA) {
        pattern(T.pool + off, len, salt);
        return;
    }
    pattern(T.scratch, len, salt);
    CHECK(mixl_mem_copy(T.pool + off, T.scratch, len) == MIXL_OK, "filling device memory");
}

uint64_t tr_bad(uint64_t off, uint64_t len, uint32_t salt)
{
    const uint8_t *p = host_view(off, len);
    uint8_t want[4096];

    /* Compare in chunks of whole pattern words so each chunk restarts on a word. */
    for (uint64_t at = 0; at < len; at += sizeof(want)) {
        uint64_t n = len - at < sizeof(want) ? len - at : sizeof(want);
        uint64_t w0 = at / 8;
        uint64_t tmp[sizeof(want) / 8];
        for (uint64_t k = 0; k < (n + 7) / 8; k++) tmp[k] = word(w0 + k, salt);
        memcpy(want, tmp, n);
        if (memcmp(p + at, want, n) != 0)
            for (uint64_t k = 0; k < n; k++)
                if (p[at + k] != want[k]) return at + k;
    }
    return UINT64_MAX;
}

uint64_t tr_nonzero(uint64_t off, uint64_t len)
{
    const uint8_t *p = host_view(off, len);
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != 0) return i;
    return UINT64_MAX;
}

void tr_clear(void)
{
    if (T.kind->type == MIXL_MEM_CUDA) {
        memset(T.scratch, 0, TR_POOL);
        CHECK(mixl_mem_copy(T.pool, T.scratch, TR_POOL) == MIXL_OK, "clearing device memory");
    } else {
        memset(T.pool, 0, TR_POOL);
    }
    tr_barrier();
}
