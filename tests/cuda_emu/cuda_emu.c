/*
 * An emulated CUDA device for tests: the subset of the CUDA runtime (and the
 * two driver entry points MIXL fetches through it) that MIXL calls, over host
 * memory. Built as a shared library named libcudart.so.13 with the real
 * library's symbol version, so a test finds it first on LD_LIBRARY_PATH and
 * every MIXL binary runs unchanged (sanitizer builds included: nothing is
 * preloaded).
 *
 * What it keeps faithful, because MIXL's logic depends on it:
 *  - device allocations are distinguishable from host pointers (an allocation
 *    table answers cudaPointerGetAttributes and cuMemGetAddressRange);
 *  - copies on a stream run on that stream's worker thread after a small
 *    random delay, in order; events complete when the stream reaches them;
 *  - the legacy default stream and cudaMemcpy follow the documented
 *    synchronisation rules, including a host-to-device copy from pageable
 *    memory that returns once the source was staged, before the bytes land;
 *  - device memory lives in a memfd, so a CUDA IPC handle maps the same pages
 *    in another process; handles are only taken at an allocation's base;
 *  - cuFlushGPUDirectRDMAWrites, context creation and kernel launches are
 *    counted for tests (cuda_emu_counter()).
 * What it cannot be: a GPU. Emulated device memory is host memory, so MPI
 * and plain loads reach it; timing means nothing.
 *
 * Environment:
 *   CUDA_EMU_DEVICES=n      devices per process (0, 1 or 2; default 1)
 *   CUDA_EMU_DELAY_US=n     upper bound of the random delay before each
 *                           asynchronous operation (default 100)
 *   CUDA_EMU_DELAY_MIN_US=n added to that delay (default 0)
 *   CUDA_EMU_PAGEABLE_US=n  extra delay before a host-to-device copy from
 *                           pageable memory lands (default 3000)
 *   CUDA_EMU_FAIL=f:n[:e],...  the n-th call (1-based) of runtime function f
 *                           fails with cudaError_t e (default: 2, out of
 *                           memory, for allocations; 999 otherwise)
 *   CUDA_EMU_VERBOSE=1      one line per injected failure on stderr
 *   CUDA_EMU_COUNTERS=dir   at exit, write the counters of cuda_emu_counter()
 *                           to dir/<pid>.counters ("name value" lines, plus
 *                           "rank" from the MPI launcher's environment), so a
 *                           test can check what processes it did not start
 *                           itself did on the device
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "cuda_emu.h"

#define EMU_MAX_DEVICES 2
#define EMU_IPC_MAGIC 0x554d4543u /* "CEMU" */

/* ---------------------------------------------------------------- state -- */

typedef enum { A_DEVICE = 1, A_PINNED = 2, A_IPC = 3 } alloc_kind_t;

typedef struct alloc {
    uint8_t *base;
    size_t size;
    alloc_kind_t kind;
    int device;
    int fd;        /* memfd of a device allocation (IPC export), else -1 */
    uint64_t id;   /* process-unique id, carried in IPC handles */
    pid_t owner;   /* A_IPC: the exporting process */
    uint64_t owner_id;
    int refs;      /* A_IPC: opens of the same handle */
    struct alloc *next;
} alloc_t;

typedef struct op {
    enum { OP_COPY, OP_SET, OP_RECORD } kind;
    void *dst;
    const void *src;
    size_t len;
    int value;
    void *owned;    /* staged source to free after the copy */
    struct op *next;
} op_t;

typedef struct emu_stream {
    int device;
    int legacy;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    op_t *head, *tail;
    uint64_t enqueued, completed;
    int stop;
    unsigned seed;
    struct emu_stream *next_all;
} emu_stream_t;

struct emu_event {
    emu_stream_t *stream;
    uint64_t seq;      /* stream position this event waits for */
    uint64_t gen;      /* records so far */
    int device;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static alloc_t *g_allocs;
static uint64_t g_next_id = 1;
static emu_stream_t *g_streams;
static emu_stream_t *g_legacy[EMU_MAX_DEVICES];
static int g_ndev = 1;
static unsigned g_delay_us = 100;
static unsigned g_pageable_us = 3000;
static unsigned g_delay_min_us;
static int g_verbose;
static long g_ctx_created[EMU_MAX_DEVICES];
static long g_flushes, g_kernels, g_pageable_h2d, g_h2d, g_pinned_copies, g_ipc_opens, g_async_ops;
static char g_counters_dir[512];

static __thread int t_device;
static __thread int t_device_set;
static __thread cudaError_t t_last_error;

/* -------------------------------------------------------- fault hooks -- */

typedef struct {
    char name[48];
    long nth;
    long calls;
    cudaError_t err;
} fault_t;

#define EMU_MAX_FAULTS 16
static fault_t g_faults[EMU_MAX_FAULTS];
static int g_nfaults;

static void parse_faults(const char *spec)
{
    char buf[512], *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", spec);
    for (tok = strtok_r(buf, ",", &save); tok != NULL && g_nfaults < EMU_MAX_FAULTS;
         tok = strtok_r(NULL, ",", &save)) {
        fault_t *f = &g_faults[g_nfaults];
        char *c1 = strchr(tok, ':'), *c2;

        f->nth = 1;
        f->err = (cudaError_t)999;
        if (c1 != NULL) {
            *c1 = '\0';
            f->nth = strtol(c1 + 1, NULL, 10);
            c2 = strchr(c1 + 1, ':');
            if (c2 != NULL) f->err = (cudaError_t)strtol(c2 + 1, NULL, 10);
        }
        snprintf(f->name, sizeof(f->name), "%s", tok);
        if (c1 == NULL || strchr(c1 + 1, ':') == NULL)
            if (strstr(f->name, "Alloc") != NULL || strstr(f->name, "Malloc") != NULL)
                f->err = cudaErrorMemoryAllocation;
        g_nfaults++;
    }
}

static const char *const k_counter_names[] = {"flush", "kernels", "pageable_h2d", "h2d", "pinned_copies",
                                               "ipc_opens", "async_ops", "ctx0", "ctx1", "devices"};

/* CUDA_EMU_COUNTERS: the counters of this process, for a test script. */
static void write_counters(void)
{
    char path[600];
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    FILE *f;

    if (rank == NULL) rank = getenv("PMI_RANK");
    snprintf(path, sizeof(path), "%s/%ld.counters", g_counters_dir, (long)getpid());
    if ((f = fopen(path, "w")) == NULL) {
        fprintf(stderr, "cuda_emu: cannot write %s\n", path);
        return;
    }
    fprintf(f, "rank %s\n", rank != NULL ? rank : "-1");
    for (size_t i = 0; i < sizeof(k_counter_names) / sizeof(k_counter_names[0]); i++)
        fprintf(f, "%s %ld\n", k_counter_names[i], cuda_emu_counter(k_counter_names[i]));
    fclose(f);
}

static void emu_init(void)
{
    const char *s;

    if ((s = getenv("CUDA_EMU_DEVICES")) != NULL) {
        g_ndev = atoi(s);
        if (g_ndev < 0) g_ndev = 0;
        if (g_ndev > EMU_MAX_DEVICES) g_ndev = EMU_MAX_DEVICES;
    }
    if ((s = getenv("CUDA_EMU_DELAY_US")) != NULL) g_delay_us = (unsigned)strtoul(s, NULL, 10);
    if ((s = getenv("CUDA_EMU_DELAY_MIN_US")) != NULL) g_delay_min_us = (unsigned)strtoul(s, NULL, 10);
    if ((s = getenv("CUDA_EMU_PAGEABLE_US")) != NULL) g_pageable_us = (unsigned)strtoul(s, NULL, 10);
    if ((s = getenv("CUDA_EMU_FAIL")) != NULL) parse_faults(s);
    g_verbose = getenv("CUDA_EMU_VERBOSE") != NULL;
    if ((s = getenv("CUDA_EMU_COUNTERS")) != NULL && *s != '\0') {
        snprintf(g_counters_dir, sizeof(g_counters_dir), "%s", s);
        atexit(write_counters);
    }
}

static cudaError_t ret(cudaError_t e)
{
    if (e != cudaSuccess) t_last_error = e;
    return e;
}

/* Every entry point starts here: initialisation and injected failures. */
static cudaError_t enter(const char *fn)
{
    cudaError_t e = cudaSuccess;

    pthread_once(&g_once, emu_init);
    if (g_nfaults == 0) return cudaSuccess;
    pthread_mutex_lock(&g_mu);
    for (int i = 0; i < g_nfaults; i++) {
        fault_t *f = &g_faults[i];
        if (strcmp(f->name, fn) != 0) continue;
        if (++f->calls == f->nth) {
            e = f->err;
            if (g_verbose) fprintf(stderr, "cuda_emu: injected error %d into call %ld of %s\n", (int)e, f->calls, fn);
        }
    }
    pthread_mutex_unlock(&g_mu);
    return ret(e);
}

#define ENTER(fn)                            \
    do {                                     \
        cudaError_t enter_e_ = enter(fn);    \
        if (enter_e_ != cudaSuccess) return enter_e_; \
    } while (0)

static cudaError_t no_device(void)
{
    return g_ndev == 0 ? ret(cudaErrorNoDevice) : cudaSuccess;
}

/* A runtime call that needs a context creates the current device's. */
static void ctx_touch(int device)
{
    if (device < 0 || device >= EMU_MAX_DEVICES) return;
    t_device_set = 1; /* the runtime makes the primary context current */
    pthread_mutex_lock(&g_mu);
    g_ctx_created[device] = 1;
    pthread_mutex_unlock(&g_mu);
}

/* ---------------------------------------------------- allocation table -- */

/* The allocation that contains p (caller holds g_mu). */
static alloc_t *find_locked(const void *p)
{
    for (alloc_t *a = g_allocs; a != NULL; a = a->next)
        if ((const uint8_t *)p >= a->base && (const uint8_t *)p < a->base + a->size) return a;
    return NULL;
}

static alloc_kind_t kind_of(const void *p, int *device_p)
{
    alloc_kind_t k = 0;

    pthread_mutex_lock(&g_mu);
    alloc_t *a = find_locked(p);
    if (a != NULL) {
        k = a->kind;
        if (device_p != NULL) *device_p = a->device;
    }
    pthread_mutex_unlock(&g_mu);
    return k;
}

static void table_add(alloc_t *a)
{
    pthread_mutex_lock(&g_mu);
    a->id = g_next_id++;
    a->next = g_allocs;
    g_allocs = a;
    pthread_mutex_unlock(&g_mu);
}

/* Unlink the allocation based exactly at p of kind k; NULL if none. */
static alloc_t *table_remove(const void *p, alloc_kind_t k)
{
    alloc_t **pp, *a = NULL;

    pthread_mutex_lock(&g_mu);
    for (pp = &g_allocs; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->base == p && (*pp)->kind == k) {
            a = *pp;
            *pp = a->next;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    return a;
}

/* ------------------------------------------------------------- streams -- */

static void sleep_us(unsigned us)
{
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000L};
    if (us > 0) nanosleep(&ts, NULL);
}

static void *stream_main(void *arg)
{
    emu_stream_t *s = arg;

    pthread_mutex_lock(&s->mu);
    for (;;) {
        op_t *op;
        while (s->head == NULL && !s->stop) pthread_cond_wait(&s->cv, &s->mu);
        if (s->head == NULL && s->stop) break;
        op = s->head;
        pthread_mutex_unlock(&s->mu);

        if (op->kind != OP_RECORD && g_delay_us > 0)
            sleep_us(g_delay_min_us + (unsigned)rand_r(&s->seed) % g_delay_us);
        /* A staged pageable copy lands late: whoever reads the destination
         * without synchronising sees the old bytes for a few milliseconds. */
        if (op->owned != NULL) sleep_us(g_pageable_us);
        switch (op->kind) {
        case OP_COPY: memmove(op->dst, op->src, op->len); break;
        case OP_SET: memset(op->dst, op->value, op->len); break;
        case OP_RECORD: break;
        }
        free(op->owned);

        pthread_mutex_lock(&s->mu);
        s->head = op->next;
        if (s->head == NULL) s->tail = NULL;
        s->completed++;
        free(op);
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static emu_stream_t *stream_new(int device, int legacy)
{
    emu_stream_t *s = calloc(1, sizeof(*s));

    if (s == NULL) return NULL;
    s->device = device;
    s->legacy = legacy;
    s->seed = (unsigned)getpid() * 2654435761u ^ (unsigned)(uintptr_t)s;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, stream_main, s) != 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_lock(&g_mu);
    s->next_all = g_streams;
    g_streams = s;
    pthread_mutex_unlock(&g_mu);
    return s;
}

/* The stream an API call names: NULL and the legacy handles mean the current
 * device's legacy default stream (made on first use). */
static emu_stream_t *stream_of(cudaStream_t st)
{
    static pthread_mutex_t legacy_mu = PTHREAD_MUTEX_INITIALIZER;
    int dev = t_device;
    emu_stream_t *s;

    if (st != NULL && st != cudaStreamLegacy && st != cudaStreamPerThread) return (emu_stream_t *)st;
    pthread_mutex_lock(&legacy_mu);
    if (g_legacy[dev] == NULL) g_legacy[dev] = stream_new(dev, 1);
    s = g_legacy[dev];
    pthread_mutex_unlock(&legacy_mu);
    return s;
}

static uint64_t stream_push(emu_stream_t *s, op_t *op)
{
    uint64_t seq;

    pthread_mutex_lock(&s->mu);
    if (s->tail != NULL) s->tail->next = op;
    else s->head = op;
    s->tail = op;
    seq = ++s->enqueued;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&g_mu);
    g_async_ops++;
    pthread_mutex_unlock(&g_mu);
    return seq;
}

static void stream_wait_seq(emu_stream_t *s, uint64_t seq)
{
    pthread_mutex_lock(&s->mu);
    while (s->completed < seq) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void stream_drain(emu_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t seq = s->enqueued;
    pthread_mutex_unlock(&s->mu);
    stream_wait_seq(s, seq);
}

static op_t *op_new(int kind)
{
    op_t *op = calloc(1, sizeof(*op));
    if (op != NULL) op->kind = kind;
    return op;
}

/* ----------------------------------------------------- device management -- */

cudaError_t cudaGetDeviceCount(int *count)
{
    ENTER("cudaGetDeviceCount");
    if (count == NULL) return ret(cudaErrorInvalidValue);
    *count = g_ndev;
    return no_device();
}

cudaError_t cudaSetDevice(int device)
{
    ENTER("cudaSetDevice");
    if (g_ndev == 0) return ret(cudaErrorNoDevice);
    if (device < 0 || device >= g_ndev) return ret(cudaErrorInvalidDevice);
    t_device = device;
    t_device_set = 1;
    ctx_touch(device); /* since CUDA 12 cudaSetDevice initialises the primary context */
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device)
{
    ENTER("cudaGetDevice");
    if (g_ndev == 0) return ret(cudaErrorNoDevice);
    *device = t_device;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    ENTER("cudaDeviceSynchronize");
    ctx_touch(t_device);
    /* A stream is destroyed only by its owner, who does not race with its
     * own synchronisation, so draining a snapshot of the list is safe. */
    emu_stream_t *list[64];
    int n = 0;
    pthread_mutex_lock(&g_mu);
    for (emu_stream_t *s = g_streams; s != NULL && n < 64; s = s->next_all)
        if (s->device == t_device) list[n++] = s;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < n; i++) stream_drain(list[i]);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    ENTER("cudaGetDeviceProperties");
    if (device < 0 || device >= g_ndev) return ret(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof(*prop));
    snprintf(prop->name, sizeof(prop->name), "MIXL emulated CUDA device %d", device);
    prop->totalGlobalMem = (size_t)16 << 30;
    prop->major = 9;
    prop->minor = 0;
    prop->pciBusID = 0xe0 + device;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v)
{
    ENTER("cudaDriverGetVersion");
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
    ENTER("cudaRuntimeGetVersion");
    *v = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = t_last_error;
    t_last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void)
{
    return t_last_error;
}

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorMapBufferObjectFailed: return "cudaErrorMapBufferObjectFailed";
    case cudaErrorDeviceUninitialized: return "cudaErrorDeviceUninitialized";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory (emulated)";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (emulation set to 0 devices)";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorMapBufferObjectFailed: return "mapping of buffer object failed";
    case cudaErrorDeviceUninitialized: return "invalid device context";
    default: return "unknown error (emulated)";
    }
}

/* ---------------------------------------------------------- allocation -- */

static cudaError_t device_alloc(void **p, size_t size, int device)
{
    alloc_t *a;
    int fd;
    void *m;

    if (size == 0) size = 1;
    fd = memfd_create("cuda_emu", MFD_CLOEXEC);
    if (fd < 0) return ret(cudaErrorMemoryAllocation);
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        return ret(cudaErrorMemoryAllocation);
    }
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        close(fd);
        return ret(cudaErrorMemoryAllocation);
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        munmap(m, size);
        close(fd);
        return ret(cudaErrorMemoryAllocation);
    }
    /* Fresh device memory is not zero on a GPU: make reads of unwritten bytes visible. */
    memset(m, 0xa5, size);
    a->base = m;
    a->size = size;
    a->kind = A_DEVICE;
    a->device = device;
    a->fd = fd;
    table_add(a);
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t size)
{
    ENTER("cudaMalloc");
    if (no_device() != cudaSuccess) return cudaErrorNoDevice;
    if (p == NULL) return ret(cudaErrorInvalidValue);
    ctx_touch(t_device);
    return device_alloc(p, size, t_device);
}

cudaError_t cudaMallocAsync(void **p, size_t size, cudaStream_t stream)
{
    ENTER("cudaMallocAsync");
    (void)stream;
    if (no_device() != cudaSuccess) return cudaErrorNoDevice;
    ctx_touch(t_device);
    return device_alloc(p, size, t_device);
}

static void free_alloc(alloc_t *a)
{
    munmap(a->base, a->size);
    if (a->fd >= 0) close(a->fd);
    free(a);
}

cudaError_t cudaFree(void *p)
{
    alloc_t *a;

    ENTER("cudaFree");
    if (p == NULL) {
        ctx_touch(t_device); /* cudaFree(0) is the classic way to create a context */
        return cudaSuccess;
    }
    /* cudaFree synchronises the device first. */
    (void)cudaDeviceSynchronize();
    a = table_remove(p, A_DEVICE);
    if (a == NULL) return ret(cudaErrorInvalidValue);
    free_alloc(a);
    return cudaSuccess;
}

cudaError_t cudaFreeAsync(void *p, cudaStream_t stream)
{
    ENTER("cudaFreeAsync");
    stream_drain(stream_of(stream));
    return cudaFree(p);
}

static cudaError_t pinned_alloc(void **p, size_t size)
{
    alloc_t *a;
    void *m;

    if (size == 0) size = 1;
    m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return ret(cudaErrorMemoryAllocation);
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        munmap(m, size);
        return ret(cudaErrorMemoryAllocation);
    }
    a->base = m;
    a->size = size;
    a->kind = A_PINNED;
    a->device = -1;
    a->fd = -1;
    table_add(a);
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int flags)
{
    ENTER("cudaHostAlloc");
    (void)flags;
    if (no_device() != cudaSuccess) return cudaErrorNoDevice;
    ctx_touch(t_device);
    return pinned_alloc(p, size);
}

cudaError_t cudaMallocHost(void **p, size_t size)
{
    ENTER("cudaMallocHost");
    if (no_device() != cudaSuccess) return cudaErrorNoDevice;
    ctx_touch(t_device);
    return pinned_alloc(p, size);
}

cudaError_t cudaFreeHost(void *p)
{
    alloc_t *a;

    ENTER("cudaFreeHost");
    if (p == NULL) return cudaSuccess;
    (void)cudaDeviceSynchronize();
    a = table_remove(p, A_PINNED);
    if (a == NULL) return ret(cudaErrorInvalidValue);
    free_alloc(a);
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attr, const void *p)
{
    int device = -1;
    alloc_kind_t k;

    ENTER("cudaPointerGetAttributes");
    if (attr == NULL) return ret(cudaErrorInvalidValue);
    memset(attr, 0, sizeof(*attr));
    k = kind_of(p, &device);
    switch (k) {
    case A_DEVICE:
    case A_IPC:
        attr->type = cudaMemoryTypeDevice;
        attr->device = device;
        attr->devicePointer = (void *)(uintptr_t)p;
        break;
    case A_PINNED:
        attr->type = cudaMemoryTypeHost;
        attr->device = t_device;
        attr->devicePointer = (void *)(uintptr_t)p;
        attr->hostPointer = (void *)(uintptr_t)p;
        break;
    default:
        attr->type = cudaMemoryTypeUnregistered;
        attr->device = -2;
        break;
    }
    return cudaSuccess;
}

/* -------------------------------------------------------------- copies -- */

static int is_dev(alloc_kind_t k)
{
    return k == A_DEVICE || k == A_IPC;
}

/* Enqueue a copy on s. A pageable host source is staged first, as the
 * driver does, so the caller may reuse it as soon as this returns. */
static uint64_t enqueue_copy(emu_stream_t *s, void *dst, const void *src, size_t len, int stage)
{
    op_t *op = op_new(OP_COPY);

    if (op == NULL) return 0;
    op->dst = dst;
    op->len = len;
    if (stage) {
        op->owned = malloc(len ? len : 1);
        if (op->owned == NULL) {
            free(op);
            return 0;
        }
        memcpy(op->owned, src, len);
        op->src = op->owned;
    } else {
        op->src = src;
    }
    return stream_push(s, op);
}

/* Host-to-device copies (among them those from pageable memory), and copies between device and pinned memory. */
static void count_copy(alloc_kind_t kd, alloc_kind_t ks)
{
    int h2d = is_dev(kd) && !is_dev(ks);
    int pinned = (is_dev(kd) && ks == A_PINNED) || (kd == A_PINNED && is_dev(ks));
    if (!h2d && !pinned) return;
    pthread_mutex_lock(&g_mu);
    g_h2d += h2d;
    g_pageable_h2d += h2d && ks == 0;
    g_pinned_copies += pinned;
    pthread_mutex_unlock(&g_mu);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t len, enum cudaMemcpyKind kind)
{
    alloc_kind_t kd, ks;
    emu_stream_t *s;
    uint64_t seq;

    ENTER("cudaMemcpy");
    (void)kind;
    if (no_device() != cudaSuccess) return cudaErrorNoDevice;
    if (len == 0) return cudaSuccess;
    ctx_touch(t_device);
    kd = kind_of(dst, NULL);
    ks = kind_of(src, NULL);
    s = stream_of(NULL);
    count_copy(kd, ks);
    if (is_dev(kd) && ks == 0) {
        /* Pageable host to device: returns once the source is staged; the
         * DMA to the final destination may not have completed. */
        if (enqueue_copy(s, dst, src, len, 1) == 0) return ret(cudaErrorMemoryAllocation);
        return cudaSuccess;
    }
    seq = enqueue_copy(s, dst, src, len, 0);
    if (seq == 0) return ret(cudaErrorMemoryAllocation);
    /* Device to device: no host-side synchronisation. Every other
     * direction is synchronous with respect to the host. */
    if (!(is_dev(kd) && is_dev(ks))) stream_wait_seq(s, seq);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t len, enum cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    alloc_kind_t kd, ks;
    emu_stream_t *s;
    uint64_t seq;

    ENTER("cudaMemcpyAsync");
    (void)kind;
    if (no_device() != cudaSuccess) return cudaErrorNoDevice;
    if (len == 0) return cudaSuccess;
    kd = kind_of(dst, NULL);
    ks = kind_of(src, NULL);
    s = stream_of(stream);
    count_copy(kd, ks);
    if (kd == 0 && is_dev(ks)) {
        /* Device to pageable host: synchronous, as documented. */
        seq = enqueue_copy(s, dst, src, len, 0);
        if (seq == 0) return ret(cudaErrorMemoryAllocation);
        stream_wait_seq(s, seq);
        return cudaSuccess;
    }
    seq = enqueue_copy(s, dst, src, len, is_dev(kd) && ks == 0);
    return seq == 0 ? ret(cudaErrorMemoryAllocation) : cudaSuccess;
}

cudaError_t cudaMemset(void *dst, int value, size_t len)
{
    op_t *op;

    ENTER("cudaMemset");
    if (!is_dev(kind_of(dst, NULL))) return ret(cudaErrorInvalidValue);
    op = op_new(OP_SET);
    if (op == NULL) return ret(cudaErrorMemoryAllocation);
    op->dst = dst;
    op->value = value;
    op->len = len;
    /* Asynchronous with respect to the host for device memory. */
    (void)stream_push(stream_of(NULL), op);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t len, cudaStream_t stream)
{
    op_t *op;

    ENTER("cudaMemsetAsync");
    if (!is_dev(kind_of(dst, NULL))) return ret(cudaErrorInvalidValue);
    op = op_new(OP_SET);
    if (op == NULL) return ret(cudaErrorMemoryAllocation);
    op->dst = dst;
    op->value = value;
    op->len = len;
    (void)stream_push(stream_of(stream), op);
    return cudaSuccess;
}

/* ----------------------------------------------------- streams, events -- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags)
{
    emu_stream_t *s;

    ENTER("cudaStreamCreateWithFlags");
    (void)flags;
    if (no_device() != cudaSuccess) return cudaErrorNoDevice;
    ctx_touch(t_device);
    s = stream_new(t_device, 0);
    if (s == NULL) return ret(cudaErrorMemoryAllocation);
    *stream = (cudaStream_t)s;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream)
{
    return cudaStreamCreateWithFlags(stream, 0);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    ENTER("cudaStreamSynchronize");
    stream_drain(stream_of(stream));
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    emu_stream_t *s = (emu_stream_t *)stream, **pp;

    ENTER("cudaStreamDestroy");
    if (s == NULL) return ret(cudaErrorInvalidResourceHandle);
    pthread_mutex_lock(&g_mu);
    for (pp = &g_streams; *pp != NULL; pp = &(*pp)->next_all)
        if (*pp == s) {
            *pp = s->next_all;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    /* Work already enqueued completes, as on a device. */
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    struct emu_event *e;

    ENTER("cudaEventCreateWithFlags");
    (void)flags;
    e = calloc(1, sizeof(*e));
    if (e == NULL) return ret(cudaErrorMemoryAllocation);
    e->device = t_device;
    *event = (cudaEvent_t)e;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    return cudaEventCreateWithFlags(event, 0);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    struct emu_event *e = (struct emu_event *)event;
    emu_stream_t *s;
    op_t *op;

    ENTER("cudaEventRecord");
    if (e == NULL) return ret(cudaErrorInvalidResourceHandle);
    s = stream_of(stream);
    op = op_new(OP_RECORD);
    if (op == NULL) return ret(cudaErrorMemoryAllocation);
    e->stream = s;
    e->seq = stream_push(s, op);
    e->gen++;
    return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t event)
{
    struct emu_event *e = (struct emu_event *)event;
    cudaError_t r = cudaSuccess;

    ENTER("cudaEventQuery");
    if (e == NULL) return ret(cudaErrorInvalidResourceHandle);
    if (e->stream == NULL) return cudaSuccess; /* never recorded: complete */
    pthread_mutex_lock(&e->stream->mu);
    if (e->stream->completed < e->seq) r = cudaErrorNotReady;
    pthread_mutex_unlock(&e->stream->mu);
    return r; /* NotReady is not an error: last error untouched */
}

cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    struct emu_event *e = (struct emu_event *)event;

    ENTER("cudaEventSynchronize");
    if (e == NULL) return ret(cudaErrorInvalidResourceHandle);
    if (e->stream != NULL) stream_wait_seq(e->stream, e->seq);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    ENTER("cudaEventDestroy");
    free(event);
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    struct emu_event *e = (struct emu_event *)event;

    ENTER("cudaStreamWaitEvent");
    (void)stream;
    (void)flags;
    /* Conservative: the host waits, which orders the stream after the event. */
    if (e != NULL && e->stream != NULL) stream_wait_seq(e->stream, e->seq);
    return cudaSuccess;
}

/* ----------------------------------------------------------------- IPC -- */

typedef struct {
    uint32_t magic;
    int32_t pid;
    int32_t fd;
    int32_t device;
    uint64_t size;
    uint64_t id;
    uint8_t pad[CUDA_IPC_HANDLE_SIZE - 32];
} emu_ipc_handle_t;

_Static_assert(sizeof(emu_ipc_handle_t) == sizeof(cudaIpcMemHandle_t), "IPC handle size");

cudaError_t cudaIpcGetMemHandle(cudaIpcMemHandle_t *handle, void *p)
{
    emu_ipc_handle_t h;
    alloc_t *a;

    ENTER("cudaIpcGetMemHandle");
    memset(&h, 0, sizeof(h));
    pthread_mutex_lock(&g_mu);
    a = find_locked(p);
    if (a == NULL || a->kind != A_DEVICE || a->base != p) {
        /* Like the driver: only the base of a cudaMalloc allocation exports. */
        pthread_mutex_unlock(&g_mu);
        return ret(cudaErrorInvalidValue);
    }
    h.magic = EMU_IPC_MAGIC;
    h.pid = (int32_t)getpid();
    h.fd = a->fd;
    h.device = a->device;
    h.size = a->size;
    h.id = a->id;
    pthread_mutex_unlock(&g_mu);
    memcpy(handle, &h, sizeof(h));
    return cudaSuccess;
}

cudaError_t cudaIpcOpenMemHandle(void **p, cudaIpcMemHandle_t handle, unsigned int flags)
{
    emu_ipc_handle_t h;
    char path[64];
    alloc_t *a;
    void *m;
    int fd;

    ENTER("cudaIpcOpenMemHandle");
    (void)flags;
    memcpy(&h, &handle, sizeof(h));
    if (h.magic != EMU_IPC_MAGIC) return ret(cudaErrorInvalidResourceHandle);
    if (h.pid == (int32_t)getpid()) return ret(cudaErrorDeviceUninitialized); /* own handle */
    ctx_touch(t_device);
    pthread_mutex_lock(&g_mu);
    for (a = g_allocs; a != NULL; a = a->next)
        if (a->kind == A_IPC && a->owner == h.pid && a->owner_id == h.id) {
            a->refs++;
            *p = a->base;
            pthread_mutex_unlock(&g_mu);
            return cudaSuccess;
        }
    pthread_mutex_unlock(&g_mu);
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)h.pid, (int)h.fd);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return ret(cudaErrorMapBufferObjectFailed);
    m = mmap(NULL, h.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return ret(cudaErrorMapBufferObjectFailed);
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        munmap(m, h.size);
        return ret(cudaErrorMemoryAllocation);
    }
    a->base = m;
    a->size = h.size;
    a->kind = A_IPC;
    a->device = t_device;
    a->fd = -1;
    a->owner = h.pid;
    a->owner_id = h.id;
    a->refs = 1;
    table_add(a);
    pthread_mutex_lock(&g_mu);
    g_ipc_opens++;
    pthread_mutex_unlock(&g_mu);
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaIpcCloseMemHandle(void *p)
{
    alloc_t *a;
    int last = 0;

    ENTER("cudaIpcCloseMemHandle");
    pthread_mutex_lock(&g_mu);
    a = find_locked(p);
    if (a != NULL && a->kind == A_IPC && a->base == p) last = --a->refs == 0;
    else a = NULL;
    pthread_mutex_unlock(&g_mu);
    if (a == NULL) return ret(cudaErrorInvalidValue);
    if (last) {
        (void)cudaDeviceSynchronize();
        a = table_remove(p, A_IPC);
        if (a != NULL) free_alloc(a);
    }
    return cudaSuccess;
}

/* ------------------------------------------------ driver entry points -- */

static CUresult emu_cuMemGetAddressRange(CUdeviceptr *base, size_t *size, CUdeviceptr dptr)
{
    alloc_t *a;

    pthread_mutex_lock(&g_mu);
    a = find_locked((const void *)(uintptr_t)dptr);
    if (a == NULL || a->kind == A_PINNED) {
        pthread_mutex_unlock(&g_mu);
        return CUDA_ERROR_NOT_FOUND;
    }
    if (base != NULL) *base = (CUdeviceptr)(uintptr_t)a->base;
    if (size != NULL) *size = a->size;
    pthread_mutex_unlock(&g_mu);
    return CUDA_SUCCESS;
}

static CUresult emu_cuFlushGPUDirectRDMAWrites(CUflushGPUDirectRDMAWritesTarget target,
                                               CUflushGPUDirectRDMAWritesScope scope)
{
    (void)target;
    (void)scope;
    pthread_mutex_lock(&g_mu);
    g_flushes++;
    pthread_mutex_unlock(&g_mu);
    return CUDA_SUCCESS;
}

/* The emulation's contexts: one per device, current once the thread chose it. */
static CUresult emu_cuCtxGetCurrent(CUcontext *ctx)
{
    *ctx = t_device_set ? (CUcontext)(uintptr_t)(0x1000 + t_device) : NULL;
    return CUDA_SUCCESS;
}

cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **fn, unsigned int version,
                                             unsigned long long flags,
                                             enum cudaDriverEntryPointQueryResult *status)
{
    ENTER("cudaGetDriverEntryPointByVersion");
    (void)version;
    (void)flags;
    *fn = NULL;
    if (strcmp(symbol, "cuMemGetAddressRange") == 0) *fn = (void *)emu_cuMemGetAddressRange;
    else if (strcmp(symbol, "cuFlushGPUDirectRDMAWrites") == 0) *fn = (void *)emu_cuFlushGPUDirectRDMAWrites;
    else if (strcmp(symbol, "cuCtxGetCurrent") == 0) *fn = (void *)emu_cuCtxGetCurrent;
    if (status != NULL)
        *status = *fn != NULL ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
    return cudaSuccess;
}

/* ------------------------------------------------------------- kernels -- */

/*
 * Kernels compiled by nvcc register a host stub; the emulation cannot run
 * device code, so a launch runs the host fallback that the program
 * registered for that stub with cuda_emu_register_host_kernel() (looked up
 * with dlsym, so programs do not link the emulation), on the launch stream.
 */
typedef struct host_kernel {
    const void *stub;
    void (*fn)(void **args, unsigned grid, unsigned block);
    struct host_kernel *next;
} host_kernel_t;

static host_kernel_t *g_kernels_table;
static __thread dim3 t_grid, t_block;
static __thread size_t t_shmem;
static __thread cudaStream_t t_stream;

void cuda_emu_register_host_kernel(const void *stub, void (*fn)(void **args, unsigned grid, unsigned block))
{
    host_kernel_t *k = calloc(1, sizeof(*k));
    if (k == NULL) return;
    k->stub = stub;
    k->fn = fn;
    pthread_mutex_lock(&g_mu);
    k->next = g_kernels_table;
    g_kernels_table = k;
    pthread_mutex_unlock(&g_mu);
}

void **__cudaRegisterFatBinary(void *fatbin)
{
    static void *handle;
    (void)fatbin;
    return &handle;
}

void __cudaRegisterFatBinaryEnd(void **handle)
{
    (void)handle;
}

void __cudaUnregisterFatBinary(void **handle)
{
    (void)handle;
}

void __cudaRegisterFunction(void **handle, const char *host_fun, char *device_fun, const char *device_name,
                            int thread_limit, uint3 *tid, uint3 *bid, dim3 *bdim, dim3 *gdim, int *wsize)
{
    (void)handle, (void)host_fun, (void)device_fun, (void)device_name, (void)thread_limit;
    (void)tid, (void)bid, (void)bdim, (void)gdim, (void)wsize;
}

unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t shmem, struct CUstream_st *stream)
{
    t_grid = grid;
    t_block = block;
    t_shmem = shmem;
    t_stream = stream;
    return 0;
}

cudaError_t __cudaPopCallConfiguration(dim3 *grid, dim3 *block, size_t *shmem, void *stream)
{
    *grid = t_grid;
    *block = t_block;
    *shmem = t_shmem;
    *(cudaStream_t *)stream = t_stream;
    return cudaSuccess;
}

cudaError_t cudaLaunchKernel(const void *func, dim3 grid, dim3 block, void **args, size_t shmem,
                             cudaStream_t stream)
{
    void (*fn)(void **, unsigned, unsigned) = NULL;
    op_t *op;

    ENTER("cudaLaunchKernel");
    (void)shmem;
    pthread_mutex_lock(&g_mu);
    for (host_kernel_t *k = g_kernels_table; k != NULL; k = k->next)
        if (k->stub == func) fn = k->fn;
    pthread_mutex_unlock(&g_mu);
    if (fn == NULL) return ret(cudaErrorInvalidDeviceFunction);
    op = op_new(OP_RECORD);
    if (op == NULL) return ret(cudaErrorMemoryAllocation);
    /* The arguments live in the caller's frame only during the launch, so
     * the fallback runs now, after the stream's earlier work (stream order). */
    stream_drain(stream_of(stream));
    fn(args, grid.x * grid.y * grid.z, block.x * block.y * block.z);
    (void)stream_push(stream_of(stream), op);
    pthread_mutex_lock(&g_mu);
    g_kernels++;
    pthread_mutex_unlock(&g_mu);
    return cudaSuccess;
}

/*
 * nvcc 13 launches through a kernel handle: __cudaGetKernel gives the host
 * stub itself as the handle, so both launch paths find the same fallback.
 */
cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *func)
{
    ENTER("__cudaGetKernel");
    *kernel = (cudaKernel_t)func;
    return cudaSuccess;
}

cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid, dim3 block, void **args, size_t shmem,
                               cudaStream_t stream)
{
    return cudaLaunchKernel((const void *)kernel, grid, block, args, shmem, stream);
}

cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 grid, dim3 block, void **args, size_t shmem,
                                    cudaStream_t stream)
{
    return cudaLaunchKernel((const void *)kernel, grid, block, args, shmem, stream);
}

char __cudaInitModule(void **handle)
{
    (void)handle;
    return 0;
}

/* --------------------------------------------------------- test queries -- */

long cuda_emu_counter(const char *name)
{
    long v = -1;

    pthread_once(&g_once, emu_init);
    pthread_mutex_lock(&g_mu);
    if (strcmp(name, "flush") == 0) v = g_flushes;
    else if (strcmp(name, "kernels") == 0) v = g_kernels;
    else if (strcmp(name, "pageable_h2d") == 0) v = g_pageable_h2d;
    else if (strcmp(name, "h2d") == 0) v = g_h2d;
    else if (strcmp(name, "pinned_copies") == 0) v = g_pinned_copies;
    else if (strcmp(name, "ipc_opens") == 0) v = g_ipc_opens;
    else if (strcmp(name, "async_ops") == 0) v = g_async_ops;
    else if (strcmp(name, "ctx0") == 0) v = g_ctx_created[0];
    else if (strcmp(name, "ctx1") == 0) v = g_ctx_created[1];
    else if (strcmp(name, "devices") == 0) v = g_ndev;
    pthread_mutex_unlock(&g_mu);
    return v;
}
