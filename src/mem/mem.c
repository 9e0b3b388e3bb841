/*
 * Memory of every type: host memory here, device and pinned memory through
 * the CUDA half (mem_cuda.c) when the library was built with the toolkit.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem/mem.h"
#include "mem/mem_cuda.h"
#include "util/errbuf.h"

#ifndef MIXL_HAVE_CUDA
static mixl_status_t mem_no_cuda(mixl_errbuf_t *eb, const char *what)
{
    if (eb == NULL) return MIXL_ERR_NOT_SUPPORTED;
    return mixl_errbuf_set_quiet(eb, MIXL_ERR_NOT_SUPPORTED, "%s: this library was built without CUDA",
                           what);
}
#endif

mixl_status_t mixl_mem_device_count(int *count_p)
{
#ifdef MIXL_HAVE_CUDA
    return mixl_cuda_device_count(count_p);
#else
    (void)count_p;
    return MIXL_ERR_NOT_SUPPORTED;
#endif
}

mixl_status_t mixl_mem_alloc(mixl_mem_type_t type, int device, size_t len, void **ptr_p)
{
    long page = sysconf(_SC_PAGESIZE);
    void *p = NULL;

    mixl_thread_error_clear();
    if (len == 0 || ptr_p == NULL)
        return mixl_thread_error_set(1, MIXL_ERR_INVALID_PARAM, "mixl_mem_alloc: %s",
                                     ptr_p == NULL ? "no result pointer" : "0 bytes asked");
    switch (type) {
    case MIXL_MEM_HOST:
        if (posix_memalign(&p, page > 0 ? (size_t)page : 4096, len) != 0)
            return mixl_thread_error_set(1, MIXL_ERR_NO_MEMORY,
                                         "host allocation of %zu bytes failed", len);
        memset(p, 0, len);
        *ptr_p = p;
        return MIXL_OK;
    case MIXL_MEM_PINNED:
    case MIXL_MEM_CUDA: {
#ifdef MIXL_HAVE_CUDA
        mixl_errbuf_t eb = {{0}, 0};
        mixl_status_t st = mixl_cuda_alloc(type, device, len, &eb, ptr_p);
        /* eb's message already ends with the status. */
        if (st != MIXL_OK) mixl_thread_error_keep(&eb);
        return st;
#else
        (void)device;
        return mixl_thread_error_set(1, MIXL_ERR_NOT_SUPPORTED,
                                     "%s allocation: this library was built without CUDA",
                                     type == MIXL_MEM_CUDA ? "device" : "pinned");
#endif
    }
    }
    return mixl_thread_error_set(1, MIXL_ERR_INVALID_PARAM, "mixl_mem_alloc: memory type %d",
                                 (int)type);
}

void mixl_mem_free(mixl_mem_type_t type, void *ptr)
{
    if (ptr == NULL) return;
    if (type == MIXL_MEM_HOST) {
        free(ptr);
        return;
    }
#ifdef MIXL_HAVE_CUDA
    mixl_cuda_free(type, ptr);
#endif
}

mixl_status_t mixl_mem_query(const void *ptr, mixl_errbuf_t *eb, mixl_mem_type_t *type_p,
                             int *device_p)
{
    if (ptr == NULL || type_p == NULL || device_p == NULL) return MIXL_ERR_INVALID_PARAM;
#ifdef MIXL_HAVE_CUDA
    return mixl_cuda_query(ptr, eb, type_p, device_p);
#else
    (void)eb;
    *type_p = MIXL_MEM_HOST;
    *device_p = 0;
    return MIXL_OK;
#endif
}

mixl_status_t mixl_mem_copy(void *dst, const void *src, size_t len)
{
    mixl_thread_error_clear();
    if (len == 0) return MIXL_OK;
    if (dst == NULL || src == NULL)
        return mixl_thread_error_set(1, MIXL_ERR_INVALID_PARAM, "mixl_mem_copy: NULL pointer");
#ifdef MIXL_HAVE_CUDA
    /* Without a usable device no pointer is device memory, and the runtime
     * would refuse even a host-to-host copy (no driver, or an old one). */
    int ndev = 0;
    if (mixl_cuda_device_count(&ndev) != MIXL_OK || ndev == 0) {
        memmove(dst, src, len);
        return MIXL_OK;
    }
    mixl_errbuf_t eb = {{0}, 0};
    mixl_status_t st = mixl_cuda_copy(dst, src, len, &eb);
    /* eb's message already ends with the status. */
    if (st != MIXL_OK) mixl_thread_error_keep(&eb);
    return st;
#else
    memmove(dst, src, len);
    return MIXL_OK;
#endif
}

mixl_status_t mixl_mem_ipc_export(const void *ptr, size_t len, mixl_errbuf_t *eb,
                                  uint8_t handle[MIXL_IPC_HANDLE_BYTES], uint64_t *base_p,
                                  uint64_t *size_p)
{
#ifdef MIXL_HAVE_CUDA
    return mixl_cuda_ipc_export(ptr, len, eb, handle, base_p, size_p);
#else
    (void)ptr, (void)len, (void)handle, (void)base_p, (void)size_p;
    return mem_no_cuda(eb, "CUDA IPC export");
#endif
}

mixl_status_t mixl_mem_ipc_open(const uint8_t handle[MIXL_IPC_HANDLE_BYTES], int device,
                                mixl_errbuf_t *eb, void **base_p)
{
#ifdef MIXL_HAVE_CUDA
    return mixl_cuda_ipc_open(handle, device, eb, base_p);
#else
    (void)handle, (void)device, (void)base_p;
    return mem_no_cuda(eb, "CUDA IPC open");
#endif
}

void mixl_mem_ipc_close(void *base)
{
#ifdef MIXL_HAVE_CUDA
    mixl_cuda_ipc_close(base);
#else
    (void)base;
#endif
}
