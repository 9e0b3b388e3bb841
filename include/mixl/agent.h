/*
 * The MIXL agent: registered memory, peers' metadata, one-sided transfers
 * and notifications.
 *
 * One agent per process (or per communicator a process takes part in). An
 * agent is not thread-safe: one thread at a time calls into a given agent.
 * Different agents may be used from different threads.
 *
 * Life cycle:
 *   mixl_agent_create()       collective over params.comm when it is not MPI_COMM_NULL
 *   mixl_mem_register() ...   local: the regions known before start get static windows
 *   mixl_agent_start()        collective: creates the windows, opens the access epochs
 *   mixl_mem_register() ...   local, "late" registrations (slower dynamic-window path)
 *   mixl_metadata_export()    / mixl_metadata_import() of every peer
 *   mixl_xfer_create() / _post() / _test() / _wait() / _release()
 *   mixl_notif_poll()
 *   mixl_agent_destroy()      collective when the agent was started over a communicator
 */
#ifndef MIXL_AGENT_H
#define MIXL_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include <mixl/export.h>
#include <mixl/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest agent or engine name, including the terminating NUL. */
#define MIXL_NAME_MAX 64
/* Largest notification payload in bytes (request id, layer, flags fit easily). */
#define MIXL_NOTIF_MAX 48

typedef struct mixl_agent *mixl_agent_h;
typedef struct mixl_region *mixl_region_h;
typedef struct mixl_xfer *mixl_xfer_h;

typedef enum {
    MIXL_MEM_HOST = 0,   /* pageable host memory */
    MIXL_MEM_PINNED = 1, /* page-locked host memory (cudaMallocHost / cudaHostRegister) */
    MIXL_MEM_CUDA = 2,   /* CUDA device memory */
} mixl_mem_type_t;

typedef enum {
    MIXL_OP_READ = 0,  /* remote -> local: the initiator pulls */
    MIXL_OP_WRITE = 1, /* local -> remote: the initiator pushes */
} mixl_op_t;

/* Transport backends an agent may use (bit set). */
typedef enum {
    MIXL_BACKEND_MPI = 1u << 0, /* MPI one-sided windows over params.comm */
    MIXL_BACKEND_TCP = 1u << 1, /* framed TCP stream, no MPI needed */
} mixl_backend_t;

/* How device memory moves when both ends cannot use it directly. */
typedef enum {
    MIXL_GPU_PATH_AUTO = 0,     /* device windows if the self-test passes, else staging */
    MIXL_GPU_PATH_STAGED = 1,   /* always stage through pinned host windows */
    MIXL_GPU_PATH_DEVICE_WIN = 2, /* require device windows; start fails if unusable */
} mixl_gpu_path_t;

/*
 * Agent parameters. Set .size = sizeof(mixl_agent_params_t) so the library
 * can grow this struct without breaking callers; zeroed fields take defaults.
 */
typedef struct {
    size_t size;
    const char *name;      /* unique agent name (required, < MIXL_NAME_MAX) */
    const char *engine_id; /* engine the agent serves (default: name) */
    MPI_Comm comm;         /* communicator for the MPI backend, or MPI_COMM_NULL */
    unsigned backends;     /* mixl_backend_t bits; 0 = MPI when comm is set, else TCP */
    mixl_gpu_path_t gpu_path;
    unsigned notif_ring;   /* notification slots per peer (default 256) */
    unsigned staging_slots;      /* pinned staging slots for device memory (default 2, min 2) */
    size_t staging_slot_bytes;   /* bytes per staging slot (default 8 MiB) */
    const char *tcp_bind;  /* TCP backend listen address (default 127.0.0.1) */
    int tcp_port;          /* TCP backend port, 0 = ephemeral */
    int timeout_ms;        /* default for internal waits (default 30000) */
    /* TCP handshake authentication (docs/tcp-protocol.md), read during
     * mixl_agent_create only: the per-job secret (16..1024 bytes) every agent
     * of the job shares, or a file holding it (mode 0600 or stricter); with
     * neither, the file named by MIXL_TCP_SECRET_FILE if set. */
    const void *tcp_secret;
    size_t tcp_secret_len;
    const char *tcp_secret_file;
    /* 1: bind a non-loopback tcp_bind without a secret (anyone who reaches
     * the port may then write into registered memory). */
    int tcp_allow_unauthenticated;
} mixl_agent_params_t;

/* Create an agent. Collective over params->comm when it is not MPI_COMM_NULL. */
MIXL_EXPORT mixl_status_t mixl_agent_create(const mixl_agent_params_t *params,
                                            mixl_agent_h *agent_p);

/*
 * Create the windows for every region registered so far and open the access
 * epochs. Collective over the agent's communicator; every rank calls it once,
 * whatever number of regions it registered (ranks with fewer contribute a
 * placeholder page). A TCP-only agent may call it too (local no-op).
 */
MIXL_EXPORT mixl_status_t mixl_agent_start(mixl_agent_h agent);

/*
 * Destroy the agent: releases every region, request and peer. Collective over
 * the communicator when the agent was started with one. Requests still in
 * flight are completed first (bounded by the agent's timeout).
 */
MIXL_EXPORT void mixl_agent_destroy(mixl_agent_h agent);

MIXL_EXPORT const char *mixl_agent_name(mixl_agent_h agent);

/*
 * The first error recorded on the agent since the last call to
 * mixl_agent_clear_error(), with the object it concerns; "" when none.
 * The string stays valid until the next call on the agent.
 */
MIXL_EXPORT const char *mixl_agent_last_error(mixl_agent_h agent);
MIXL_EXPORT void mixl_agent_clear_error(mixl_agent_h agent);

/*
 * One line naming the data path chosen for each memory type, e.g.
 * "mpi: osc=ucx static windows; cuda: staged (MPI is not CUDA-aware)".
 */
MIXL_EXPORT const char *mixl_agent_path_report(mixl_agent_h agent);

/* Backends (mixl_backend_t bits) the agent actually runs after start; a
 * failed MPI start with TCP enabled leaves only MIXL_BACKEND_TCP. */
MIXL_EXPORT unsigned mixl_agent_backends(mixl_agent_h agent);

/* --- memory registration --------------------------------------------- */

/*
 * Register [addr, addr+len) for transfers. The memory stays owned by the
 * caller and must outlive the region. Before mixl_agent_start() the region
 * gets a static window; afterwards it is attached to the dynamic window
 * (slower per operation, limited in number by the MPI library).
 * Overlapping registrations are refused (MIXL_ERR_EXISTS).
 */
MIXL_EXPORT mixl_status_t mixl_mem_register(mixl_agent_h agent, void *addr, size_t len,
                                            mixl_mem_type_t type, int device,
                                            mixl_region_h *region_p);

/*
 * Deregister a region. Refused with MIXL_ERR_BUSY while a request uses it.
 * Statically windowed regions stay exposed until mixl_agent_destroy().
 */
MIXL_EXPORT mixl_status_t mixl_mem_deregister(mixl_agent_h agent, mixl_region_h region);

/*
 * Host memory placed by MPI (MPI_Win_allocate), for pools that will be
 * registered. Memory from malloc can only be exposed through MPI_Win_create,
 * and on a node whose UCX has no xpmem/knem a peer reaches such a window
 * through emulated RMA: several times slower, and dependent on the target
 * calling MPI. Memory MPI placed itself is mapped into the peers on the node,
 * so a region registered on it runs at the speed of raw MPI RMA
 * (docs/performance.md). Elsewhere it costs nothing over malloc.
 *
 * Collective over comm; len may differ between ranks (0 gives one page).
 * The memory is zeroed and page-aligned. On failure on any rank every rank
 * gets the same status (MIXL_ERR_BACKEND, or MIXL_ERR_INVALID_PARAM) and
 * nothing stays allocated; *err (may be NULL) gets a message naming the
 * rank and the MPI error. Thread-safe; not for the transfer path.
 */
MIXL_EXPORT mixl_status_t mixl_mem_alloc_mpi(MPI_Comm comm, size_t len, void **ptr_p, char *err,
                                             size_t err_len);

/*
 * Free memory from mixl_mem_alloc_mpi(): collective over the same
 * communicator, after every agent that registered it has been destroyed.
 * MIXL_ERR_NOT_FOUND for a pointer it did not return.
 */
MIXL_EXPORT mixl_status_t mixl_mem_free_mpi(void *ptr);

/* --- descriptors ------------------------------------------------------ */

/*
 * A contiguous span of memory. For local lists, addr is a pointer value in
 * this process; for remote lists, an address in the peer's process as the
 * peer exported it in its metadata.
 */
typedef struct {
    uint64_t addr;
    uint64_t len;
    mixl_mem_type_t mem_type;
    int device; /* CUDA device ordinal, 0 for host memory */
} mixl_desc_t;

/* --- metadata --------------------------------------------------------- */

/*
 * Serialize this agent's metadata (name, engine id, endpoints and every
 * registered region's remote-access information) as a versioned msgpack
 * blob. *blob_p is allocated by the library: free it with mixl_free().
 */
MIXL_EXPORT mixl_status_t mixl_metadata_export(mixl_agent_h agent, void **blob_p,
                                               size_t *len_p);

/*
 * Load a peer's metadata blob. Truncated, corrupted, foreign or
 * incompatible-version blobs are refused with MIXL_ERR_BAD_METADATA or
 * MIXL_ERR_VERSION and leave the agent unchanged. Re-importing a peer
 * replaces its earlier metadata (prepared requests to it must be recreated).
 * The peer's name is copied to name_out when it is not NULL.
 */
MIXL_EXPORT mixl_status_t mixl_metadata_import(mixl_agent_h agent, const void *blob, size_t len,
                                               char name_out[MIXL_NAME_MAX]);

/* Forget a peer. Refused with MIXL_ERR_BUSY while requests to it exist. */
MIXL_EXPORT mixl_status_t mixl_peer_forget(mixl_agent_h agent, const char *peer);

/* MIXL_OK when the peer's metadata is loaded, else MIXL_ERR_UNKNOWN_PEER. */
MIXL_EXPORT mixl_status_t mixl_peer_check(mixl_agent_h agent, const char *peer);

/* Free memory returned by the library. */
MIXL_EXPORT void mixl_free(void *ptr);

/* --- transfers -------------------------------------------------------- */

/*
 * A transfer between a local and a remote descriptor list of equal length,
 * element i of one matching element i of the other in length. Set
 * .size = sizeof(mixl_xfer_params_t).
 */
typedef struct {
    size_t size;
    mixl_op_t op;
    const char *peer;          /* the remote agent's name */
    const mixl_desc_t *local;  /* local spans, each inside a registered region */
    const mixl_desc_t *remote; /* remote spans, each inside a region of the peer */
    size_t count;              /* entries in each list */
    const void *notif;         /* optional payload delivered to the peer after the data */
    size_t notif_len;          /* 0..MIXL_NOTIF_MAX */
} mixl_xfer_params_t;

/*
 * Validate and prepare a transfer. Contiguous descriptors (adjacent on both
 * sides) are merged; the result can be posted any number of times without
 * being validated again. On error nothing is issued and *xfer_p is untouched;
 * the message names the offending descriptor.
 */
MIXL_EXPORT mixl_status_t mixl_xfer_create(mixl_agent_h agent, const mixl_xfer_params_t *params,
                                           mixl_xfer_h *xfer_p);

/* Replace the notification payload of an idle prepared request. */
MIXL_EXPORT mixl_status_t mixl_xfer_set_notif(mixl_xfer_h xfer, const void *notif,
                                              size_t notif_len);

/*
 * Start the transfer. Returns MIXL_IN_PROGRESS (poll with _test/_wait),
 * MIXL_OK when it completed inline, or an error. Posting a request that is
 * still in flight gives MIXL_ERR_BUSY. Hot path: no allocation, no global
 * lock, no logging.
 */
MIXL_EXPORT mixl_status_t mixl_xfer_post(mixl_xfer_h xfer);

/*
 * Progress and check a posted request: MIXL_OK once the data is visible at
 * the target (and the notification, if any, was delivered after it),
 * MIXL_IN_PROGRESS, or the error that ended it. Hot path, as above.
 *
 * MPI backend: completion is one MPI_Win_flush, which blocks until the
 * target side is done. Where the window is emulated (malloc memory on a
 * node without xpmem/knem) that needs the target process to enter MPI
 * (mixl_notif_poll() does), and no MIXL timeout can cut the flush short.
 * mixl_mem_alloc_mpi() memory avoids the emulated path.
 */
MIXL_EXPORT mixl_status_t mixl_xfer_test(mixl_xfer_h xfer);

/* Progress until done or timeout_ms (< 0: the agent's default) passes. */
MIXL_EXPORT mixl_status_t mixl_xfer_wait(mixl_xfer_h xfer, int timeout_ms);

/* Bytes one post of the request moves, and the operations it issues after merging. */
MIXL_EXPORT uint64_t mixl_xfer_bytes(mixl_xfer_h xfer);
MIXL_EXPORT size_t mixl_xfer_ops(mixl_xfer_h xfer);

/*
 * Release a request. An in-flight request is completed first (bounded by
 * the agent's timeout). Using the handle afterwards is an error
 * (MIXL_ERR_BAD_STATE) as long as its memory has not been reused.
 */
MIXL_EXPORT mixl_status_t mixl_xfer_release(mixl_xfer_h xfer);

/* --- notifications ---------------------------------------------------- */

typedef struct {
    char peer[MIXL_NAME_MAX];        /* the agent that sent it */
    uint32_t len;                    /* payload bytes */
    uint8_t payload[MIXL_NOTIF_MAX];
} mixl_notif_t;

/*
 * Collect up to max notifications that have arrived, oldest first per peer.
 * A notification attached to a transfer is returned only after all of that
 * transfer's data is visible in this agent's memory. *count_p may be 0.
 */
MIXL_EXPORT mixl_status_t mixl_notif_poll(mixl_agent_h agent, mixl_notif_t *out, size_t max,
                                          size_t *count_p);

/* Send a notification with no data (ordered after earlier transfers to the peer). */
MIXL_EXPORT mixl_status_t mixl_notif_send(mixl_agent_h agent, const char *peer,
                                          const void *payload, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_AGENT_H */
