/*
 * CUDA memory: device and pinned allocation, pointer queries, IPC handles.
 * Every runtime call is checked; a failure comes back as a status with the
 * CUDA error's name and text, so a machine without a GPU gets a clear
 * message instead of a crash.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "mem/mem_cuda.h"

_Static_assert(sizeof(cudaIpcMemHandle_t) == MIXL_IPC_HANDLE_BYTES,
               "metadata carries 64-byte CUDA IPC handles");

static mixl_status_t cuda_fail(mixl_errbuf_t *eb, mixl_status_t st, cudaError_t rc,
                               const char *what, ...) __attribute__((format(printf, 4, 5)));

static mixl_status_t cuda_fail(mixl_errbuf_t *eb, mixl_status_t st, cudaError_t rc,
                               const char *what, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, what);
    vsnprintf(msg, sizeof(msg), what, ap);
    va_end(ap);
    if (eb == NULL) return st;
    return mixl_errbuf_set_quiet(eb, st, "%s: %s (%s)", msg, cudaGetErrorString(rc), cudaGetErrorName(rc));
}

/* cuCtxGetCurrent through the runtime's driver entry point: no libcuda link. */
typedef CUresult (*mixl_cu_ctx_fn)(CUcontext *ctx);

int mixl_cuda_has_context(void)
{
    static mixl_cu_ctx_fn fn;
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    CUcontext ctx = NULL;

    if (fn == NULL) {
        void *f = NULL;
        if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &f, 12000, cudaEnableDefault, &q) !=
                cudaSuccess || q != cudaDriverEntryPointSuccess || f == NULL) {
            (void)cudaGetLastError();
            return 1; /* unknown: assume the thread chose a device */
        }
        fn = (mixl_cu_ctx_fn)f;
    }
    return fn(&ctx) == CUDA_SUCCESS && ctx != NULL;
}

mixl_status_t mixl_cuda_device_push(int device, int *prev_p)
{
    int prev = -1;
    cudaError_t rc;

    /* A thread without a context has chosen no device: setting one and
     * "restoring" device 0 afterwards would create a context there. */
    if (mixl_cuda_has_context()) {
        rc = cudaGetDevice(&prev);
        if (rc != cudaSuccess) {
            (void)cudaGetLastError();
            prev = -1;
        }
    }
    if (prev != device) {
        rc = cudaSetDevice(device);
        if (rc != cudaSuccess) {
            (void)cudaGetLastError();
            return MIXL_ERR_NOT_SUPPORTED;
        }
    }
    *prev_p = prev == device ? -1 : prev;
    return MIXL_OK;
}

void mixl_cuda_device_pop(int prev)
{
    if (prev >= 0) (void)cudaSetDevice(prev);
}

/* The CUDA driver library is present (whatever its version). */
static int driver_installed(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);

    if (h == NULL) return 0;
    dlclose(h);
    return 1;
}

mixl_status_t mixl_cuda_device_count(int *count_p)
{
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);

    /* No device, or no driver at all, is an answer here, not an error. A driver that
     * is installed but older than this runtime is an error: a machine with a GPU that
     * cannot use it must not look like a machine without one. */
    if (rc == cudaErrorInsufficientDriver && driver_installed()) {
        (void)cudaGetLastError();
        return MIXL_ERR_BACKEND;
    }
    if (rc == cudaErrorNoDevice || rc == cudaErrorInsufficientDriver) {
        (void)cudaGetLastError();
        n = 0;
    } else if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        return MIXL_ERR_BACKEND;
    }
    *count_p = n;
    return MIXL_OK;
}

mixl_status_t mixl_cuda_alloc(mixl_mem_type_t type, int device, size_t len, mixl_errbuf_t *eb,
                              void **ptr_p)
{
    void *p = NULL;
    cudaError_t rc;
    int prev = -1;

    if (type == MIXL_MEM_PINNED) {
        rc = cudaHostAlloc(&p, len, cudaHostAllocPortable);
        if (rc != cudaSuccess)
            return cuda_fail(eb, MIXL_ERR_NO_MEMORY, rc, "cudaHostAlloc of %zu pinned bytes", len);
        memset(p, 0, len);
        *ptr_p = p;
        return MIXL_OK;
    }
    if (mixl_cuda_device_push(device, &prev) != MIXL_OK)
        return cuda_fail(eb, MIXL_ERR_NOT_SUPPORTED, cudaErrorInvalidDevice, "CUDA device %d", device);
    rc = cudaMalloc(&p, len);
    if (rc != cudaSuccess) {
        mixl_cuda_device_pop(prev);
        return cuda_fail(eb, MIXL_ERR_NO_MEMORY, rc, "cudaMalloc of %zu bytes on device %d", len,
                         device);
    }
    /* cudaMemset may return before it ran: a kernel on another stream or
     * MPI writing next would be overwritten. */
    rc = cudaMemset(p, 0, len);
    if (rc == cudaSuccess) rc = cudaDeviceSynchronize();
    mixl_cuda_device_pop(prev);
    if (rc != cudaSuccess) {
        (void)cudaFree(p);
        return cuda_fail(eb, MIXL_ERR_BACKEND, rc, "zeroing %zu bytes on device %d", len, device);
    }
    *ptr_p = p;
    return MIXL_OK;
}

void mixl_cuda_free(mixl_mem_type_t type, void *ptr)
{
    if (type == MIXL_MEM_PINNED) (void)cudaFreeHost(ptr);
    else (void)cudaFree(ptr);
}

mixl_status_t mixl_cuda_query(const void *ptr, mixl_errbuf_t *eb, mixl_mem_type_t *type_p,
                              int *device_p)
{
    struct cudaPointerAttributes a;
    cudaError_t rc;

    memset(&a, 0, sizeof(a));
    rc = cudaPointerGetAttributes(&a, ptr);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        return cuda_fail(eb, MIXL_ERR_BACKEND, rc, "cudaPointerGetAttributes(%p)", ptr);
    }
    switch (a.type) {
    case cudaMemoryTypeDevice:
    case cudaMemoryTypeManaged:
        *type_p = MIXL_MEM_CUDA;
        *device_p = a.device;
        break;
    case cudaMemoryTypeHost:
        *type_p = MIXL_MEM_PINNED;
        *device_p = 0;
        break;
    default:
        *type_p = MIXL_MEM_HOST;
        *device_p = 0;
        break;
    }
    return MIXL_OK;
}

mixl_status_t mixl_cuda_copy(void *dst, const void *src, size_t len, mixl_errbuf_t *eb)
{
    cudaError_t rc = cudaMemcpy(dst, src, len, cudaMemcpyDefault);
    /* cudaMemcpy from pageable memory to the device (and device to device)
     * may return before the bytes land; callers of this function expose the
     * destination to MPI or the NIC next, which do not order after the
     * default stream. */
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(cudaStreamLegacy);
    if (rc != cudaSuccess)
        return cuda_fail(eb, MIXL_ERR_BACKEND, rc, "cudaMemcpy of %zu bytes %p -> %p", len, src, dst);
    return MIXL_OK;
}

/* cuMemGetAddressRange through the runtime's driver entry point: no libcuda link. */
typedef CUresult (*mixl_cu_range_fn)(CUdeviceptr *base, size_t *size, CUdeviceptr dptr);

static mixl_status_t cuda_alloc_base(const void *ptr, mixl_errbuf_t *eb, uint64_t *base_p,
                                     uint64_t *size_p)
{
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    void *fn = NULL;
    CUdeviceptr base = 0;
    size_t size = 0;
    cudaError_t rc;
    CUresult cr;

    rc = cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault, &q);
    if (rc != cudaSuccess || q != cudaDriverEntryPointSuccess || fn == NULL)
        return cuda_fail(eb, MIXL_ERR_NOT_SUPPORTED, rc, "driver entry point cuMemGetAddressRange");
    cr = ((mixl_cu_range_fn)fn)(&base, &size, (CUdeviceptr)(uintptr_t)ptr);
    if (cr != CUDA_SUCCESS) {
        if (eb != NULL) mixl_errbuf_set_quiet(eb, MIXL_ERR_BACKEND, "cuMemGetAddressRange(%p): CUresult %d", ptr, (int)cr);
        return MIXL_ERR_BACKEND;
    }
    *base_p = (uint64_t)base;
    *size_p = (uint64_t)size;
    return MIXL_OK;
}

mixl_status_t mixl_cuda_ipc_export(const void *ptr, size_t len, mixl_errbuf_t *eb,
                                   uint8_t handle[MIXL_IPC_HANDLE_BYTES], uint64_t *base_p,
                                   uint64_t *size_p)
{
    cudaIpcMemHandle_t h;
    mixl_mem_type_t type;
    uint64_t base = 0, size = 0, addr = (uint64_t)(uintptr_t)ptr;
    mixl_status_t st;
    cudaError_t rc;
    int device = 0, prev = -1;

    st = mixl_cuda_query(ptr, eb, &type, &device);
    if (st != MIXL_OK) return st;
    /* The driver call below needs the owning device's context current. */
    if (mixl_cuda_device_push(device, &prev) != MIXL_OK)
        return cuda_fail(eb, MIXL_ERR_NOT_SUPPORTED, cudaErrorInvalidDevice, "CUDA device %d", device);
    st = cuda_alloc_base(ptr, eb, &base, &size);
    /* A peer maps [base, base + size): a span past it would make the
     * importer copy outside its mapping. */
    if (st == MIXL_OK && (addr < base || len > size - (addr - base)))
        st = mixl_errbuf_set_quiet(eb, MIXL_ERR_INVALID_PARAM,
                                   "%zu bytes at %p run past their CUDA allocation (base 0x%llx, "
                                   "%llu bytes)", len, ptr, (unsigned long long)base,
                                   (unsigned long long)size);
    if (st == MIXL_OK) {
        rc = cudaIpcGetMemHandle(&h, (void *)(uintptr_t)base);
        if (rc != cudaSuccess) {
            (void)cudaGetLastError();
            st = cuda_fail(eb, MIXL_ERR_NOT_SUPPORTED, rc, "cudaIpcGetMemHandle(%p)", ptr);
        }
    }
    mixl_cuda_device_pop(prev);
    if (st != MIXL_OK) return st;
    memcpy(handle, &h, sizeof(h));
    *base_p = base;
    *size_p = size;
    return MIXL_OK;
}

mixl_status_t mixl_cuda_ipc_open(const uint8_t handle[MIXL_IPC_HANDLE_BYTES], int device,
                                 mixl_errbuf_t *eb, void **base_p)
{
    cudaIpcMemHandle_t h;
    void *p = NULL;
    cudaError_t rc;
    int prev = -1;

    memcpy(&h, handle, sizeof(h));
    if (mixl_cuda_device_push(device, &prev) != MIXL_OK)
        return cuda_fail(eb, MIXL_ERR_NOT_SUPPORTED, cudaErrorInvalidDevice, "CUDA device %d", device);
    rc = cudaIpcOpenMemHandle(&p, h, cudaIpcMemLazyEnablePeerAccess);
    mixl_cuda_device_pop(prev);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();
        return cuda_fail(eb, MIXL_ERR_NOT_SUPPORTED, rc, "cudaIpcOpenMemHandle on device %d", device);
    }
    *base_p = p;
    return MIXL_OK;
}

void mixl_cuda_ipc_close(void *base)
{
    (void)cudaIpcCloseMemHandle(base);
}
