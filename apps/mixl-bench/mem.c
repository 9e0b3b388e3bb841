/* Benchmark buffers; see mem.h. */
#include "mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


const char *bench_mem_name(unsigned kind)
{
    switch (kind) {
    case BENCH_MEM_HOST: return "host";
    case BENCH_MEM_PINNED: return "pinned";
    case BENCH_MEM_CUDA: return "cuda";
    case BENCH_MEM_HOST_MPI: return "host-mpi";
    default: return "?";
    }
}

mixl_mem_type_t bench_mem_mixl_type(unsigned kind)
{
    /* host-mpi is host memory to MIXL: only where it came from differs. */
    return kind == BENCH_MEM_CUDA ? MIXL_MEM_CUDA : kind == BENCH_MEM_PINNED ? MIXL_MEM_PINNED
                                                                             : MIXL_MEM_HOST;
}

static int cuda_device_present(void)
{
    int ndev = 0;
    return mixl_mem_device_count(&ndev) == MIXL_OK && ndev > 0;
}

/* Device memory set to fill, through a host page run (set-up only). */
static mixl_status_t device_fill(void *dst, int fill, size_t len)
{
    size_t chunk = len < (4u << 20) ? len : (4u << 20);
    uint8_t *host = malloc(chunk);
    mixl_status_t st = host != NULL ? MIXL_OK : MIXL_ERR_NO_MEMORY;

    if (host != NULL) memset(host, fill, chunk);
    for (size_t off = 0; st == MIXL_OK && off < len; off += chunk)
        st = mixl_mem_copy((uint8_t *)dst + off, host, len - off < chunk ? len - off : chunk);
    free(host);
    return st;
}

mixl_status_t bench_buf_alloc(unsigned kind, size_t len, int fill, bench_buf_t *buf_p, char *note,
                              size_t notelen)
{
    bench_buf_t b = {.len = len ? len : 1, .kind = kind};
    long page = sysconf(_SC_PAGESIZE);

    switch (kind) {
    case BENCH_MEM_HOST:
    case BENCH_MEM_PINNED:
        if (kind == BENCH_MEM_PINNED && cuda_device_present()) {
            mixl_status_t st = mixl_mem_alloc(MIXL_MEM_PINNED, 0, b.len, &b.ptr);
            if (st != MIXL_OK) {
                snprintf(note, notelen, "%s", mixl_last_error());
                return st;
            }
            b.cuda_host = 1;
            break;
        }
        if (posix_memalign(&b.ptr, (size_t)page, b.len) != 0) {
            snprintf(note, notelen, "%s buffer of %zu bytes: out of memory", bench_mem_name(kind), b.len);
            return MIXL_ERR_NO_MEMORY;
        }
        /* Without a CUDA device, page-locked means mlock: the pages stay resident. */
        if (kind == BENCH_MEM_PINNED && mlock(b.ptr, b.len) != 0) {
            snprintf(note, notelen, "mlock of %zu bytes failed: %s (raise RLIMIT_MEMLOCK)", b.len,
                     strerror(errno));
            free(b.ptr);
            return MIXL_ERR_NO_RESOURCE;
        }
        break;
    case BENCH_MEM_CUDA: {
        int ndev = 0;
        mixl_status_t st = mixl_mem_device_count(&ndev);
        if (st == MIXL_ERR_NOT_SUPPORTED) {
            snprintf(note, notelen, "not measured: MIXL was built without CUDA");
            return st;
        }
        if (st != MIXL_OK || ndev == 0) {
            snprintf(note, notelen, "not measured: no CUDA device");
            return MIXL_ERR_NOT_SUPPORTED;
        }
        st = mixl_mem_alloc(MIXL_MEM_CUDA, 0, b.len, &b.ptr);
        if (st == MIXL_OK && fill != 0) st = device_fill(b.ptr, fill, b.len);
        if (st != MIXL_OK) {
            snprintf(note, notelen, "%s", mixl_last_error());
            mixl_mem_free(MIXL_MEM_CUDA, b.ptr);
            return st;
        }
        *buf_p = b;
        return MIXL_OK;
    }
    case BENCH_MEM_HOST_MPI:
        snprintf(note, notelen, "host-mpi memory is allocated collectively");
        return MIXL_ERR_NOT_SUPPORTED;
    default:
        snprintf(note, notelen, "unknown memory kind %u", kind);
        return MIXL_ERR_INVALID_PARAM;
    }
    memset(b.ptr, fill, b.len);
    *buf_p = b;
    return MIXL_OK;
}

mixl_status_t bench_buf_alloc_mpi(MPI_Comm comm, size_t len, int fill, bench_buf_t *buf_p, char *note,
                                  size_t notelen)
{
    bench_buf_t b = {.len = len > 4096 ? len : 4096, .kind = BENCH_MEM_HOST_MPI};
    mixl_status_t st = mixl_mem_alloc_mpi(comm, b.len, &b.ptr);
    if (st != MIXL_OK) {
        snprintf(note, notelen, "%s", mixl_last_error());
        return st;
    }
    memset(b.ptr, fill, b.len);
    *buf_p = b;
    return MIXL_OK;
}

void bench_buf_free(bench_buf_t *buf)
{
    if (buf->ptr == NULL) return;
    if (buf->kind == BENCH_MEM_HOST_MPI) {
        mixl_mem_free_mpi(buf->ptr);
        buf->ptr = NULL;
        return;
    }
    if (buf->kind == BENCH_MEM_CUDA || buf->cuda_host) {
        mixl_mem_free(buf->kind == BENCH_MEM_CUDA ? MIXL_MEM_CUDA : MIXL_MEM_PINNED, buf->ptr);
        buf->ptr = NULL;
        return;
    }
    if (buf->kind == BENCH_MEM_PINNED) munlock(buf->ptr, buf->len);
    free(buf->ptr);
    buf->ptr = NULL;
}

void bench_buf_copy(unsigned kind, void *dst, const void *src, size_t len)
{
    /* On the device the library's copy waits for the bytes: a baseline must. */
    if (kind == BENCH_MEM_CUDA) (void)mixl_mem_copy(dst, src, len);
    else memcpy(dst, src, len);
}

mixl_status_t bench_buf_copy_hd(void *dst, const void *src, size_t len)
{
    return mixl_mem_copy(dst, src, len);
}

void bench_buf_upload(unsigned kind, void *dst, const void *host, size_t len)
{
    if (kind == BENCH_MEM_CUDA) (void)mixl_mem_copy(dst, host, len);
    else memcpy(dst, host, len);
}

void bench_buf_download(unsigned kind, void *host, const void *src, size_t len)
{
    if (kind == BENCH_MEM_CUDA) (void)mixl_mem_copy(host, src, len);
    else memcpy(host, src, len);
}
