/*
 * Staging planner and state machine for device memory that cannot go through
 * MPI windows directly. Pure logic, no CUDA and no MPI: the caller supplies
 * the copy and network steps as callbacks, which is what lets the unit tests
 * drive it without a GPU.
 *
 * Plan: a transfer's spans (local device address, remote displacement,
 * length) are cut into pieces that fit a staging slot; consecutive pieces of
 * one device fill a chunk of at most slot_bytes. Built once at prepare time.
 *
 * Machine: a pool of pinned slots is shared by every staged transfer of a
 * backend. Each slot cycles
 *   WRITE: FREE -> COPY (device->slot) -> NET (MPI_Put from slot) -> FREE
 *   READ:  FREE -> NET (MPI_Get into slot) -> COPY (slot->device) -> FREE
 * and is reused only after net_complete() (MPI_Win_flush_local) for its
 * operations. A WRITE progress call finishes the copies that ended, queues
 * copies into every free slot, and only then blocks in net_complete(): the
 * device copy of chunk k+1 runs while the network moves chunk k. A READ
 * issues one get at a time and starts its slot->device copy as soon as it
 * completed, so that copy runs while the next chunk's get is on the wire.
 * With one slot nothing overlaps: each chunk's copy and network step run one
 * after the other, the slot reused only once both ended.
 */
#ifndef MIXL_MEM_STAGE_H
#define MIXL_MEM_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/export.h>
#include <mixl/status.h>
#include <mixl/types.h>

/* Most slots one pool may have (params.staging_slots is checked against it). */
#define MIXL_STAGE_MAX_SLOTS 64

/* One contiguous span to stage, as the transport resolved it. */
typedef struct {
    uint64_t local;  /* device address in this process */
    uint64_t remote; /* remote displacement (opaque to the planner) */
    uint64_t len;
    uint32_t tag;    /* caller's index (e.g. which window) */
    int device;      /* CUDA device of the local memory; chunks never mix devices */
} mixl_stage_span_t;

/* A piece: part of one span that lies in one chunk. */
typedef struct {
    uint64_t local;
    uint64_t remote;
    uint64_t len;
    uint64_t slot_off; /* where the piece lives in the slot */
    uint32_t tag;
} mixl_stage_piece_t;

typedef struct {
    uint32_t first; /* first piece */
    uint32_t count; /* pieces */
    uint64_t bytes; /* <= slot_bytes */
    int device;
} mixl_stage_chunk_t;

typedef struct {
    mixl_stage_piece_t *pieces;
    size_t npieces;
    mixl_stage_chunk_t *chunks;
    size_t nchunks;
} mixl_stage_plan_t;

/*
 * Build the plan for spans[0..n) with slots of slot_bytes (> 0). Allocates;
 * free with mixl_stage_plan_free(). MIXL_ERR_INVALID_PARAM for a zero slot
 * size or an empty span, MIXL_ERR_TOO_LARGE when more than UINT32_MAX pieces
 * would be needed, MIXL_ERR_NO_MEMORY. *plan_p is set only on success.
 */
mixl_status_t mixl_stage_plan(const mixl_stage_span_t *spans, size_t n, uint64_t slot_bytes,
                              mixl_stage_plan_t *plan_p);
void mixl_stage_plan_free(mixl_stage_plan_t *plan);

typedef enum {
    MIXL_STAGE_SLOT_FREE = 0,
    MIXL_STAGE_SLOT_COPY, /* device copy in flight (D2H for WRITE, H2D for READ) */
    MIXL_STAGE_SLOT_NET,  /* puts/gets issued, not yet locally complete */
    MIXL_STAGE_SLOT_LOST, /* a copy into it never ended: kept out of use */
} mixl_stage_slot_state_t;

struct mixl_stage_sm;

typedef struct {
    struct mixl_stage_sm *owner; /* NULL when free */
    uint32_t chunk;
    mixl_stage_slot_state_t state;
} mixl_stage_slot_t;

typedef struct {
    unsigned nslots;
    mixl_stage_slot_t slot[MIXL_STAGE_MAX_SLOTS];
} mixl_stage_pool_t;

/*
 * The steps a transport provides. All of them run on the hot path: no
 * allocation, no logging; an error is returned (and described by the
 * transport in its own error buffer).
 *   copy_start:    issue the chunk's device copies for the slot and mark their end
 *   copy_query:    MIXL_OK once they finished, MIXL_IN_PROGRESS, or an error
 *   net_start:     issue the chunk's puts (WRITE) or gets (READ) from/into the slot
 *   net_complete:  complete them locally (may block until the NIC is done with
 *                  the slot); MIXL_OK or an error
 */
typedef struct {
    mixl_status_t (*copy_start)(void *ctx, unsigned slot, uint32_t chunk);
    mixl_status_t (*copy_query)(void *ctx, unsigned slot);
    mixl_status_t (*net_start)(void *ctx, unsigned slot, uint32_t chunk);
    mixl_status_t (*net_complete)(void *ctx, unsigned slot);
} mixl_stage_io_t;

/* One staged transfer's progress through its chunks. */
typedef struct mixl_stage_sm {
    mixl_op_t op;
    uint32_t nchunks;
    uint32_t next;     /* next chunk to start */
    uint32_t done;     /* chunks finished */
    unsigned holding;  /* slots owned now */
    mixl_status_t err; /* first error; MIXL_OK while healthy */
    const mixl_stage_io_t *io;
    void *ctx;
} mixl_stage_sm_t;

/* Prepare a pool of nslots (1..MIXL_STAGE_MAX_SLOTS) free slots; one slot serialises. */
mixl_status_t mixl_stage_pool_init(mixl_stage_pool_t *pool, unsigned nslots);

/* (Re)arm a machine for one post of a transfer with nchunks chunks. */
void mixl_stage_sm_reset(mixl_stage_sm_t *sm, mixl_op_t op, uint32_t nchunks,
                         const mixl_stage_io_t *io, void *ctx);

/*
 * Advance sm as far as it can now: finish completed steps, claim free slots
 * for its next chunks, start them. Returns MIXL_OK when every chunk is done
 * (the machine holds no slot), MIXL_IN_PROGRESS, or the first error; after
 * an error call mixl_stage_sm_abort(). Hot path: no allocation, no logging.
 */
mixl_status_t mixl_stage_progress(mixl_stage_pool_t *pool, mixl_stage_sm_t *sm);

/*
 * Give back every slot sm holds after an error, first waiting for what is in
 * flight in it: copies are polled until they end or fail, network steps are
 * completed. A copy still running at deadline_ns (CLOCK_MONOTONIC) keeps its
 * slot out of the pool for good (its memory may still be written) and the
 * result is MIXL_ERR_TIMED_OUT; otherwise returns sm->err.
 */
mixl_status_t mixl_stage_sm_abort(mixl_stage_pool_t *pool, mixl_stage_sm_t *sm,
                                  uint64_t deadline_ns);

#endif /* MIXL_MEM_STAGE_H */
