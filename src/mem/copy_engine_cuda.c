/*
 * Copy engine over the CUDA runtime (see copy_engine.h): cudaMemcpyAsync on
 * one non-blocking stream per device, cudaEventRecord/cudaEventQuery to
 * learn when copies ended. Events are created without timing, which keeps
 * record and query cheap.
 */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "mem/copy_engine.h"
#include "mem/mem_cuda.h"

typedef struct {
    cudaStream_t stream;
    cudaEvent_t *slot_ev; /* one per slot */
    int ready;
} ce_dev_t;

struct mixl_ce {
    unsigned nslots;
    size_t slot_bytes;
    uint8_t *slots; /* nslots * slot_bytes pinned bytes */
    int *slot_dev;  /* device of each slot's last mark, -1 = none */
    int ndev;
    ce_dev_t *dev;
};

struct mixl_ce_event {
    cudaEvent_t ev;
    int device;
};

/* Set-up failures are recorded quietly (the caller names its object and
 * logs); hot-path failures are logged here, where they are detected. */
static mixl_status_t ce_fail(mixl_errbuf_t *eb, mixl_status_t st, cudaError_t rc, const char *what,
                             int device)
{
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls start clean */
    return mixl_errbuf_set_quiet(eb, st, "copy engine: %s on CUDA device %d: %s (%s)", what, device,
                                 cudaGetErrorString(rc), cudaGetErrorName(rc));
}

static mixl_status_t ce_fail_hot(mixl_errbuf_t *eb, mixl_status_t st, cudaError_t rc,
                                 const char *what, int device)
{
    (void)cudaGetLastError();
    return mixl_errbuf_set(eb, st, "copy engine: %s on CUDA device %d: %s (%s)", what, device,
                           cudaGetErrorString(rc), cudaGetErrorName(rc));
}

mixl_status_t mixl_ce_create(unsigned nslots, size_t slot_bytes, mixl_errbuf_t *eb,
                             mixl_ce_t **ce_p)
{
    mixl_ce_t *ce;
    cudaError_t rc;
    mixl_status_t st;
    int ndev = 0;

    if (nslots == 0 || slot_bytes == 0) return MIXL_ERR_INVALID_PARAM;
    rc = cudaGetDeviceCount(&ndev);
    if (rc != cudaSuccess) return ce_fail(eb, MIXL_ERR_NOT_SUPPORTED, rc, "cudaGetDeviceCount", -1);
    if (ndev <= 0)
        return mixl_errbuf_set_quiet(eb, MIXL_ERR_NOT_SUPPORTED, "copy engine: no CUDA device present");
    ce = calloc(1, sizeof(*ce));
    if (ce == NULL) return MIXL_ERR_NO_MEMORY;
    ce->nslots = nslots;
    ce->slot_bytes = slot_bytes;
    ce->ndev = ndev;
    ce->dev = calloc((size_t)ndev, sizeof(*ce->dev));
    ce->slot_dev = calloc(nslots, sizeof(*ce->slot_dev));
    if (ce->dev == NULL || ce->slot_dev == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto err_ce;
    }
    for (unsigned i = 0; i < nslots; i++) ce->slot_dev[i] = -1;
    rc = cudaHostAlloc((void **)&ce->slots, (size_t)nslots * slot_bytes, cudaHostAllocPortable);
    if (rc != cudaSuccess) {
        st = ce_fail(eb, MIXL_ERR_NO_MEMORY, rc, "cudaHostAlloc of the staging slots", -1);
        goto err_ce;
    }
    *ce_p = ce;
    return MIXL_OK;

err_ce:
    free(ce->dev);
    free(ce->slot_dev);
    free(ce);
    return st;
}

void mixl_ce_destroy(mixl_ce_t *ce)
{
    if (ce == NULL) return;
    for (int d = 0; d < ce->ndev; d++) {
        ce_dev_t *cd = &ce->dev[d];
        if (!cd->ready) continue;
        (void)cudaStreamSynchronize(cd->stream);
        for (unsigned i = 0; i < ce->nslots; i++) (void)cudaEventDestroy(cd->slot_ev[i]);
        (void)cudaStreamDestroy(cd->stream);
        free(cd->slot_ev);
    }
    (void)cudaFreeHost(ce->slots);
    free(ce->dev);
    free(ce->slot_dev);
    free(ce);
}

unsigned mixl_ce_nslots(const mixl_ce_t *ce)
{
    return ce->nslots;
}

size_t mixl_ce_slot_bytes(const mixl_ce_t *ce)
{
    return ce->slot_bytes;
}

uint8_t *mixl_ce_slot(mixl_ce_t *ce, unsigned slot)
{
    return ce->slots + (size_t)slot * ce->slot_bytes;
}

mixl_status_t mixl_ce_use_device(mixl_ce_t *ce, int device, mixl_errbuf_t *eb)
{
    ce_dev_t *cd;
    cudaError_t rc;
    int prev = -1;
    unsigned made = 0;

    if (device < 0 || device >= ce->ndev)
        return mixl_errbuf_set_quiet(eb, MIXL_ERR_INVALID_PARAM,
                                     "copy engine: CUDA device %d does not exist (%d present)",
                                     device, ce->ndev);
    cd = &ce->dev[device];
    if (cd->ready) return MIXL_OK;
    cd->slot_ev = calloc(ce->nslots, sizeof(*cd->slot_ev));
    if (cd->slot_ev == NULL) return MIXL_ERR_NO_MEMORY;
    if (mixl_cuda_device_push(device, &prev) != MIXL_OK) {
        free(cd->slot_ev);
        cd->slot_ev = NULL;
        return ce_fail(eb, MIXL_ERR_NOT_SUPPORTED, cudaErrorInvalidDevice, "cudaSetDevice", device);
    }
    rc = cudaStreamCreateWithFlags(&cd->stream, cudaStreamNonBlocking);
    for (; rc == cudaSuccess && made < ce->nslots; made++) {
        rc = cudaEventCreateWithFlags(&cd->slot_ev[made], cudaEventDisableTiming);
        if (rc != cudaSuccess) break;
    }
    mixl_cuda_device_pop(prev);
    if (rc != cudaSuccess) {
        for (unsigned i = 0; i < made; i++) (void)cudaEventDestroy(cd->slot_ev[i]);
        if (made > 0 || cd->stream != NULL) (void)cudaStreamDestroy(cd->stream);
        free(cd->slot_ev);
        cd->slot_ev = NULL;
        return ce_fail(eb, MIXL_ERR_BACKEND, rc, "creating the copy stream and events", device);
    }
    cd->ready = 1;
    return MIXL_OK;
}

/* Hot path. */
mixl_status_t mixl_ce_copy(mixl_ce_t *ce, int device, void *dst, const void *src, size_t len,
                           mixl_errbuf_t *eb)
{
    /* cudaMemcpyDefault: unified addressing tells host from device (and IPC mappings). */
    cudaError_t rc = cudaMemcpyAsync(dst, src, len, cudaMemcpyDefault, ce->dev[device].stream);
    if (rc != cudaSuccess) return ce_fail_hot(eb, MIXL_ERR_BACKEND, rc, "cudaMemcpyAsync", device);
    return MIXL_OK;
}

/* Hot path. */
mixl_status_t mixl_ce_slot_mark(mixl_ce_t *ce, unsigned slot, int device, mixl_errbuf_t *eb)
{
    ce_dev_t *cd = &ce->dev[device];
    cudaError_t rc = cudaEventRecord(cd->slot_ev[slot], cd->stream);
    if (rc != cudaSuccess) return ce_fail_hot(eb, MIXL_ERR_BACKEND, rc, "cudaEventRecord", device);
    ce->slot_dev[slot] = device;
    return MIXL_OK;
}

/* Hot path. */
mixl_status_t mixl_ce_slot_query(mixl_ce_t *ce, unsigned slot, mixl_errbuf_t *eb)
{
    int device = ce->slot_dev[slot];
    cudaError_t rc;

    if (device < 0) return MIXL_OK;
    rc = cudaEventQuery(ce->dev[device].slot_ev[slot]);
    if (rc == cudaSuccess) return MIXL_OK;
    if (rc == cudaErrorNotReady) return MIXL_IN_PROGRESS;
    return ce_fail_hot(eb, MIXL_ERR_BACKEND, rc, "staging copy (cudaEventQuery)", device);
}

/* Hot path. */
mixl_status_t mixl_ce_slot_wait(mixl_ce_t *ce, unsigned slot, mixl_errbuf_t *eb)
{
    int device = ce->slot_dev[slot];
    cudaError_t rc;

    if (device < 0) return MIXL_OK;
    rc = cudaEventSynchronize(ce->dev[device].slot_ev[slot]);
    if (rc != cudaSuccess)
        return ce_fail_hot(eb, MIXL_ERR_BACKEND, rc, "staging copy (cudaEventSynchronize)", device);
    ce->slot_dev[slot] = -1; /* done: later waits cost nothing */
    return MIXL_OK;
}

mixl_status_t mixl_ce_event_create(mixl_ce_t *ce, int device, mixl_errbuf_t *eb,
                                   mixl_ce_event_t **ev_p)
{
    mixl_ce_event_t *e;
    mixl_status_t st;
    cudaError_t rc = cudaErrorInvalidDevice;
    int prev = -1;

    st = mixl_ce_use_device(ce, device, eb);
    if (st != MIXL_OK) return st;
    e = calloc(1, sizeof(*e));
    if (e == NULL) return MIXL_ERR_NO_MEMORY;
    if (mixl_cuda_device_push(device, &prev) == MIXL_OK) {
        rc = cudaEventCreateWithFlags(&e->ev, cudaEventDisableTiming);
        mixl_cuda_device_pop(prev);
    }
    if (rc != cudaSuccess) {
        free(e);
        return ce_fail(eb, MIXL_ERR_BACKEND, rc, "cudaEventCreate", device);
    }
    e->device = device;
    *ev_p = e;
    return MIXL_OK;
}

void mixl_ce_event_destroy(mixl_ce_event_t *ev)
{
    if (ev == NULL) return;
    (void)cudaEventSynchronize(ev->ev);
    (void)cudaEventDestroy(ev->ev);
    free(ev);
}

/* Hot path. */
mixl_status_t mixl_ce_event_record(mixl_ce_t *ce, mixl_ce_event_t *ev, mixl_errbuf_t *eb)
{
    cudaError_t rc = cudaEventRecord(ev->ev, ce->dev[ev->device].stream);
    if (rc != cudaSuccess) return ce_fail_hot(eb, MIXL_ERR_BACKEND, rc, "cudaEventRecord", ev->device);
    return MIXL_OK;
}

/* Hot path. */
mixl_status_t mixl_ce_event_query(mixl_ce_event_t *ev, mixl_errbuf_t *eb)
{
    cudaError_t rc = cudaEventQuery(ev->ev);
    if (rc == cudaSuccess) return MIXL_OK;
    if (rc == cudaErrorNotReady) return MIXL_IN_PROGRESS;
    return ce_fail_hot(eb, MIXL_ERR_BACKEND, rc, "device copy (cudaEventQuery)", ev->device);
}
