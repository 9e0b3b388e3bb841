/*
 * Decoded view of an agent's metadata blob, for tools that show what a peer
 * published (registry listings, diagnostics). Transfers never need it: the
 * agent imports blobs with mixl_metadata_import().
 */
#ifndef MIXL_METADATA_H
#define MIXL_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/export.h>
#include <mixl/status.h>
#include <mixl/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Versioning has two layers. The blob carries MIXL_METADATA_FORMAT: a reader
 * refuses another format (MIXL_ERR_VERSION) and ignores keys it does not know,
 * so writers may add keys within a format. The decoded structs below are
 * allocated and freed by the library (mixl_metadata_decode/_free) but read
 * by field, and mixl_md_region_t is indexed as an array: their layout is
 * fixed within a library major version; new information comes as new fields
 * with a new major.
 *
 * The blob has a generic part (who the agent is, where its regions lie) and
 * one section per transport backend under "tp" (how that backend reaches
 * them). A reader skips a section it has no codec for, so an agent with a
 * backend this library lacks still decodes; the peer is then simply not
 * reachable through it. Format 1 (every field at the top level) is refused.
 */
/* Format version written by this library; blobs of another format are refused. */
#define MIXL_METADATA_FORMAT 2

/*
 * The MPI backend's part of a region ("tp"."mpi"."regions", matched by id),
 * which also carries the CUDA IPC export of device regions (the MPI
 * backend's device paths use it). A region the section does not mention has
 * window -2, window_base 0, no flags.
 */
typedef struct {
    int32_t window;       /* static window index, -1 for the dynamic window, -2 none */
    uint64_t window_base; /* windowed region: address of displacement 0 of its window;
                             device region without a window: base of the CUDA allocation
                             its IPC handle opens */
    uint32_t flags;       /* MIXL_MD_REGION_* */
    uint8_t ipc_handle[64]; /* CUDA IPC handle when flags has MIXL_MD_REGION_IPC */
    uint64_t ipc_size;    /* bytes the IPC handle maps from window_base; 0 = not told */
} mixl_md_region_mpi_t;

/* One region: the generic part, then each backend's part of it. */
typedef struct {
    uint32_t id;       /* region id, unique within the agent */
    uint64_t addr;     /* base address in the owner's process */
    uint64_t len;
    mixl_mem_type_t mem_type;
    int device;
    mixl_md_region_mpi_t mpi; /* from the MPI section */
} mixl_md_region_t;

#define MIXL_MD_REGION_IPC (1u << 0)    /* ipc_handle is valid */
#define MIXL_MD_REGION_STAGED (1u << 1) /* device region reached through a host shadow window */

/* The MPI backend's section ("tp"."mpi"); absent: world 0, rank -1. */
typedef struct {
    uint64_t world;    /* fingerprint of the agent's communicator */
    int32_t rank;      /* rank in that communicator */
} mixl_md_mpi_t;

/* The TCP backend's section ("tp"."tcp"); absent: empty host, port -1. */
typedef struct {
    char host[MIXL_NAME_MAX]; /* endpoint peers connect to */
    int32_t port;
} mixl_md_tcp_t;

typedef struct {
    uint32_t format;            /* MIXL_METADATA_FORMAT of the writer */
    char name[MIXL_NAME_MAX];
    char engine_id[MIXL_NAME_MAX];
    char hostname[MIXL_NAME_MAX];
    char library_version[16];
    uint32_t region_count;
    mixl_md_region_t *regions;
    /* Backend sections. */
    mixl_md_mpi_t mpi;
    mixl_md_tcp_t tcp;
} mixl_metadata_t;

/* Set the fields of md that a blob may leave out to their "absent" values
 * (zeroes elsewhere): what an encoder user starts from. Local, thread-safe. */
MIXL_EXPORT void mixl_metadata_init(mixl_metadata_t *md);

/*
 * Decode and validate a blob. On error returns MIXL_ERR_BAD_METADATA or
 * MIXL_ERR_VERSION, leaves *md_p untouched and puts the reason in the
 * calling thread's mixl_last_error() (not logged: the blob is the caller's
 * input). Local, thread-safe. Free the result with mixl_metadata_free().
 */
MIXL_EXPORT mixl_status_t mixl_metadata_decode(const void *blob, size_t len,
                                               mixl_metadata_t **md_p);

/* Encode md as a blob, md->format written as given (mostly for tests and tools). Free with
 * mixl_free(). Local, thread-safe. */
MIXL_EXPORT mixl_status_t mixl_metadata_encode(const mixl_metadata_t *md, void **blob_p,
                                               size_t *len_p);

/* Free a decoded view (NULL is ignored). */
MIXL_EXPORT void mixl_metadata_free(mixl_metadata_t *md);

/* Name of a memory type: "host", "pinned", "cuda" (constant string). Thread-safe. */
MIXL_EXPORT const char *mixl_mem_type_str(mixl_mem_type_t type);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_METADATA_H */
