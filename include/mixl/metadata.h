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
 * refuses another major (MIXL_ERR_VERSION) and ignores keys it does not know,
 * so writers may add keys within a format. The decoded structs below are
 * allocated and freed by the library (mixl_metadata_decode/_free) but read
 * by field, and mixl_md_region_t is indexed as an array: their layout is
 * fixed within a library major version; new information comes as new fields
 * with a new major.
 */
/* Format version written by this library; blobs with another major are refused. */
#define MIXL_METADATA_FORMAT 1

typedef struct {
    uint32_t id;       /* region id, unique within the agent */
    uint64_t addr;     /* base address in the owner's process */
    uint64_t len;
    mixl_mem_type_t mem_type;
    int device;
    int32_t window;    /* static window index, -1 for the dynamic window, -2 none */
    uint64_t window_base; /* windowed region: address of displacement 0 of its window;
                             device region without a window: base of the CUDA allocation
                             its IPC handle opens */
    uint32_t flags;    /* MIXL_MD_REGION_* */
    uint8_t ipc_handle[64]; /* CUDA IPC handle when flags has MIXL_MD_REGION_IPC */
    uint64_t ipc_size; /* bytes the IPC handle maps from window_base; 0 = not told (older writer) */
} mixl_md_region_t;

#define MIXL_MD_REGION_IPC (1u << 0)    /* ipc_handle is valid */
#define MIXL_MD_REGION_STAGED (1u << 1) /* device region reached through a host shadow window */

typedef struct {
    uint32_t format;            /* MIXL_METADATA_FORMAT of the writer */
    char name[MIXL_NAME_MAX];
    char engine_id[MIXL_NAME_MAX];
    char hostname[MIXL_NAME_MAX];
    char library_version[16];
    uint64_t mpi_world;         /* fingerprint of the communicator; 0 when none */
    int32_t mpi_rank;           /* rank in that communicator; -1 when none */
    char tcp_host[MIXL_NAME_MAX]; /* TCP endpoint; empty when none */
    int32_t tcp_port;
    uint32_t region_count;
    mixl_md_region_t *regions;
} mixl_metadata_t;

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
