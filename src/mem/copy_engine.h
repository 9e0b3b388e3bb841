/*
 * The asynchronous copy engine for device memory: pinned host staging slots
 * (allocated once), one non-blocking CUDA stream per device, and events that
 * tell when a slot's copies or a transfer's copies have finished.
 *
 * Set-up calls (create, use_device, event_create) allocate and may be slow.
 * The copy/mark/query calls are for the transfer hot path: they neither
 * allocate nor log unless they fail (then eb gets the CUDA error, once).
 * One thread at a time per engine (the agent's rule).
 *
 * Built only with the CUDA toolkit (copy_engine_cuda.c).
 */
#ifndef MIXL_MEM_COPY_ENGINE_H
#define MIXL_MEM_COPY_ENGINE_H

#ifdef MIXL_HAVE_CUDA
#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

#include "util/errbuf.h"

typedef struct mixl_ce mixl_ce_t;
typedef struct mixl_ce_event mixl_ce_event_t;

/*
 * nslots pinned slots of slot_bytes each (cudaHostAlloc, portable to every
 * device). Fails with the CUDA error in eb when there is no device or not
 * enough pinned memory; *ce_p is set only on success.
 */
mixl_status_t mixl_ce_create(unsigned nslots, size_t slot_bytes, mixl_errbuf_t *eb,
                             mixl_ce_t **ce_p);
/* Waits for every stream, then frees streams, events and slots. */
void mixl_ce_destroy(mixl_ce_t *ce);

unsigned mixl_ce_nslots(const mixl_ce_t *ce);
size_t mixl_ce_slot_bytes(const mixl_ce_t *ce);
uint8_t *mixl_ce_slot(mixl_ce_t *ce, unsigned slot);

/* Create device's stream and per-slot events once (idempotent). */
mixl_status_t mixl_ce_use_device(mixl_ce_t *ce, int device, mixl_errbuf_t *eb);

/* Hot path: enqueue a copy (any direction) on device's stream. */
mixl_status_t mixl_ce_copy(mixl_ce_t *ce, int device, void *dst, const void *src, size_t len,
                           mixl_errbuf_t *eb);
/* Hot path: mark the end of the copies enqueued so far for slot on device's stream. */
mixl_status_t mixl_ce_slot_mark(mixl_ce_t *ce, unsigned slot, int device, mixl_errbuf_t *eb);
/* Hot path: MIXL_OK when the slot's marked copies finished, MIXL_IN_PROGRESS, or error. */
mixl_status_t mixl_ce_slot_query(mixl_ce_t *ce, unsigned slot, mixl_errbuf_t *eb);

/* Blocks until the slot's marked copies finished: MIXL_OK or error. For a
 * caller that must reuse the slot now (the TCP progress thread, whose next
 * frame goes into it); a slot never marked is ready. */
mixl_status_t mixl_ce_slot_wait(mixl_ce_t *ce, unsigned slot, mixl_errbuf_t *eb);

/* An event of the engine's stream on device, for transfers that copy without slots. */
mixl_status_t mixl_ce_event_create(mixl_ce_t *ce, int device, mixl_errbuf_t *eb,
                                   mixl_ce_event_t **ev_p);
void mixl_ce_event_destroy(mixl_ce_event_t *ev);
/* Hot path: mark the end of the copies enqueued so far on the event's device. */
mixl_status_t mixl_ce_event_record(mixl_ce_t *ce, mixl_ce_event_t *ev, mixl_errbuf_t *eb);
/* Hot path: MIXL_OK once reached, MIXL_IN_PROGRESS, or error. */
mixl_status_t mixl_ce_event_query(mixl_ce_event_t *ev, mixl_errbuf_t *eb);
#endif

#endif /* MIXL_MEM_COPY_ENGINE_H */
