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
#include <mixl/mem.h>
#include <mixl/status.h>
#include <mixl/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Transport backends an agent may use (bit set). */
typedef enum {
    MIXL_BACKEND_MPI = 1u << 0, /* MPI one-sided windows over params.comm */
    MIXL_BACKEND_TCP = 1u << 1, /* framed TCP stream, no MPI needed */
} mixl_backend_t;

/*
 * What a backend can do (mixl_backend_caps()). A case a backend cannot do
 * is refused with the status its flag names, never silently degraded.
 */
#define MIXL_CAP_HOST (1u << 0)        /* host and pinned memory */
#define MIXL_CAP_CUDA (1u << 1)        /* device memory (directly, staged or over IPC);
                                        * without it registering device memory on an agent
                                        * that runs only this backend gives MIXL_ERR_NOT_SUPPORTED */
#define MIXL_CAP_NOTIF (1u << 2)       /* notifications delivered after the transfer's data */
#define MIXL_CAP_CROSS_WORLD (1u << 3) /* reaches agents outside the agent's MPI world */
#define MIXL_CAP_PEER_FAILURE (1u << 4) /* a peer process that dies ends transfers to it with
                                         * MIXL_ERR_DISCONNECTED, naming the peer; without it
                                         * the backend's runtime ends the whole job (MPI) */

/*
 * Backends built into this library (mixl_backend_t bits). Local, thread-safe,
 * never blocks.
 */
MIXL_EXPORT unsigned mixl_backends_available(void);

/*
 * MIXL_CAP_* flags of one backend (a single mixl_backend_t bit); 0 for a
 * backend that is not built in. Local, thread-safe, never blocks.
 */
MIXL_EXPORT unsigned mixl_backend_caps(mixl_backend_t backend);

/* Name of one backend ("mpi", "tcp"); "unknown" otherwise. Constant string. Thread-safe. */
MIXL_EXPORT const char *mixl_backend_name(mixl_backend_t backend);

/* How device memory moves when both ends cannot use it directly. */
typedef enum {
    MIXL_GPU_PATH_AUTO = 0,     /* device windows if the self-test passes, else staging */
    MIXL_GPU_PATH_STAGED = 1,   /* always stage through pinned host windows */
    MIXL_GPU_PATH_DEVICE_WIN = 2, /* require device windows; start fails if unusable */
} mixl_gpu_path_t;

/*
 * Which backend moves data to a peer reachable by both MPI and TCP.
 * AUTO takes TCP for a peer on another node when one-sided MPI to it is
 * emulated (no RDMA device on either node, or Open MPI's osc pt2pt) and MPI
 * otherwise; see mixl_agent_path_choice().
 */
typedef enum {
    MIXL_DATA_PATH_AUTO = 0,
    MIXL_DATA_PATH_MPI = 1,
    MIXL_DATA_PATH_TCP = 2,
} mixl_data_path_t;

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
    unsigned staging_slots;      /* pinned staging slots for device memory (default 2; 1 serialises copies and network) */
    size_t staging_slot_bytes;   /* bytes per staging slot (default 8 MiB) */
    const char *tcp_bind;  /* TCP backend listen address; NULL or "auto" = 127.0.0.1 when every
                            * rank of comm is on one node, else an address peers can reach */
    int tcp_port;          /* TCP backend port, 0 = ephemeral */
    int timeout_ms;        /* default for internal waits (default 30000) */
    /* Data path per peer when both MPI and TCP backends are active. */
    mixl_data_path_t data_path;
    /* Interface name (eth0) or IPv4 subnet (10.1.0.0/16) for the TCP backend's
     * listen and published address; NULL = chosen as for tcp_bind "auto". */
    const char *tcp_interface;
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
    /* TCP connections to each peer (1..16; 0 = MIXL_TCP_CONNECTIONS from the
     * environment, else 1). A transfer of at least 512 KiB is striped over
     * them; notifications keep their order (docs/tcp-protocol.md). */
    unsigned tcp_connections;
    /* After a transfer completes, the TCP progress thread watches for the
     * application's next post for this many microseconds before it sleeps
     * in epoll, so a post right after a completion needs no wake-up of that
     * thread (1..10000; 0 = MIXL_TCP_POLL_US from the environment, else the
     * default, off; negative = never watch; docs/tcp-protocol.md). The watch
     * spins on one core for at most that long per completion. */
    int tcp_poll_us;
} mixl_agent_params_t;

/* Size of the per-job TCP secret that mixl_tcp_secret_new() makes. */
#define MIXL_TCP_SECRET_BYTES 32

/*
 * Fill out with MIXL_TCP_SECRET_BYTES bytes from a cryptographic random
 * source, for a launcher to hand to every agent of a job
 * (mixl_agent_params_t.tcp_secret). Local, thread-safe; MIXL_ERR_BACKEND
 * when no random source is available.
 */
MIXL_EXPORT mixl_status_t mixl_tcp_secret_new(uint8_t out[MIXL_TCP_SECRET_BYTES]);

/*
 * Create an agent. Collective over params->comm when it is not MPI_COMM_NULL
 * (blocks until every rank of it calls); local otherwise. Creates the
 * notification window and checks every enabled backend's mandatory ops. On
 * failure *agent_p is untouched, the reason is logged once and
 * mixl_last_error() returns it to the calling thread. Thread-safe with
 * respect to other agents.
 */
MIXL_EXPORT mixl_status_t mixl_agent_create(const mixl_agent_params_t *params,
                                            mixl_agent_h *agent_p);

/*
 * Create the windows for every region registered so far and open the access
 * epochs (the notification window exists since create). Collective over the
 * agent's communicator, blocking until every rank calls; every rank calls it once,
 * whatever number of regions it registered (ranks with fewer contribute a
 * placeholder page). A TCP-only agent may call it too (local no-op).
 */
MIXL_EXPORT mixl_status_t mixl_agent_start(mixl_agent_h agent);

/*
 * Destroy the agent: releases every region, request and peer. Collective over
 * the communicator whenever the agent was created on one (started or not):
 * it frees windows created at create. Requests still in flight are completed
 * first (bounded by the agent's timeout). Local for a TCP-only agent.
 */
MIXL_EXPORT void mixl_agent_destroy(mixl_agent_h agent);

/* The agent's name: owned by the agent, valid until mixl_agent_destroy(). Local. */
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
 * Local. Owned by the agent: valid until the next call of this function on
 * the agent or mixl_agent_destroy().
 */
MIXL_EXPORT const char *mixl_agent_path_report(mixl_agent_h agent);

/*
 * The data-path policy and why, the same text on every rank of the agent's
 * communicator, e.g. "auto: tcp between nodes (one-sided MPI across nodes is
 * emulated: no RDMA device ... on the node of rank 1), mpi within a node".
 */
MIXL_EXPORT const char *mixl_agent_path_choice(mixl_agent_h agent);

/* Imported peers whose transfers use BACKEND (one mixl_backend_t bit). */
MIXL_EXPORT unsigned mixl_agent_peers_on(mixl_agent_h agent, unsigned backend);

/* Backends (mixl_backend_t bits) the agent actually runs after start; a
 * failed MPI start with TCP enabled leaves only MIXL_BACKEND_TCP. Local. */
MIXL_EXPORT unsigned mixl_agent_backends(mixl_agent_h agent);

/* --- memory registration --------------------------------------------- */

/*
 * Register [addr, addr+len) for transfers. The memory stays owned by the
 * caller and must outlive the region. Before mixl_agent_start() the region
 * gets a static window; afterwards it is attached to the dynamic window
 * (slower per operation, limited in number by the MPI library).
 * Overlapping registrations are refused (MIXL_ERR_EXISTS). Local; a late
 * registration on MPI attaches to the dynamic window (no other rank takes
 * part). Never blocks on peers.
 */
MIXL_EXPORT mixl_status_t mixl_mem_register(mixl_agent_h agent, void *addr, size_t len,
                                            mixl_mem_type_t type, int device,
                                            mixl_region_h *region_p);

/*
 * Deregister a region. Refused with MIXL_ERR_BUSY while a request uses it.
 * Statically windowed regions stay exposed until mixl_agent_destroy().
 * Local, never blocks on peers.
 */
MIXL_EXPORT mixl_status_t mixl_mem_deregister(mixl_agent_h agent, mixl_region_h region);

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
 * Local, never blocks.
 */
MIXL_EXPORT mixl_status_t mixl_metadata_export(mixl_agent_h agent, void **blob_p,
                                               size_t *len_p);

/*
 * Load a peer's metadata blob. Truncated, corrupted, foreign or
 * incompatible-version blobs are refused with MIXL_ERR_BAD_METADATA or
 * MIXL_ERR_VERSION and leave the agent unchanged. Re-importing a peer
 * replaces its earlier metadata (prepared requests to it must be recreated).
 * The peer's name is copied to name_out when it is not NULL. Local: a TCP
 * peer is connected lazily, at the first mixl_xfer_create() to it.
 */
MIXL_EXPORT mixl_status_t mixl_metadata_import(mixl_agent_h agent, const void *blob, size_t len,
                                               char name_out[MIXL_NAME_MAX]);

/* Forget a peer. Refused with MIXL_ERR_BUSY while requests to it exist. Local. */
MIXL_EXPORT mixl_status_t mixl_peer_forget(mixl_agent_h agent, const char *peer);

/* MIXL_OK when the peer's metadata is loaded, else MIXL_ERR_UNKNOWN_PEER. Local, never blocks. */
MIXL_EXPORT mixl_status_t mixl_peer_check(mixl_agent_h agent, const char *peer);


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
 * the message names the offending descriptor. Local; may allocate, and on
 * TCP may connect to the peer (bounded by the agent's timeout).
 */
MIXL_EXPORT mixl_status_t mixl_xfer_create(mixl_agent_h agent, const mixl_xfer_params_t *params,
                                           mixl_xfer_h *xfer_p);

/* Replace the notification payload of an idle prepared request (MIXL_ERR_BUSY while in flight). Local. */
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
 * MIXL_IN_PROGRESS, or the error that ended it. Hot path, as above. Local,
 * but not non-blocking on MPI: see below.
 *
 * MPI backend: completion is one MPI_Win_flush, which blocks until the
 * target side is done. Where the window is emulated (malloc memory on a
 * node without xpmem/knem) that needs the target process to enter MPI
 * (mixl_notif_poll() does), and no MIXL timeout can cut the flush short.
 * mixl_mem_alloc_mpi() memory avoids the emulated path.
 */
MIXL_EXPORT mixl_status_t mixl_xfer_test(mixl_xfer_h xfer);

/*
 * Progress until done or timeout_ms (< 0: the agent's default) passes. After
 * MIXL_ERR_TIMED_OUT the request is still in flight: test, wait or release it
 * later (a post of it gives MIXL_ERR_BUSY until it completes). Blocks as
 * mixl_xfer_test() does, so an MPI flush can outlast timeout_ms.
 */
MIXL_EXPORT mixl_status_t mixl_xfer_wait(mixl_xfer_h xfer, int timeout_ms);

/* Bytes one post of the request moves, and the operations it issues after merging. Local. */
MIXL_EXPORT uint64_t mixl_xfer_bytes(mixl_xfer_h xfer);
MIXL_EXPORT size_t mixl_xfer_ops(mixl_xfer_h xfer);

/*
 * Release a request. An in-flight request is completed first (blocking,
 * bounded by the agent's timeout; MIXL_ERR_TIMED_OUT leaves it in flight and
 * not released). Using the handle afterwards is an error
 * (MIXL_ERR_BAD_STATE) as long as its memory has not been reused.
 */
MIXL_EXPORT mixl_status_t mixl_xfer_release(mixl_xfer_h xfer);

/* --- notifications ---------------------------------------------------- */

/*
 * Versioning: callers pass arrays of this struct, so its size is part of the
 * ABI and it carries no .size field. It never changes within a major
 * version; a new layout comes with a new major (SOVERSION) and new field
 * names, never a silent change of meaning.
 */
typedef struct {
    char peer[MIXL_NAME_MAX];        /* the agent that sent it */
    uint32_t len;                    /* payload bytes */
    uint8_t payload[MIXL_NOTIF_MAX];
} mixl_notif_t;

/*
 * Collect up to max notifications that have arrived, oldest first per peer.
 * A notification attached to a transfer is returned only after all of that
 * transfer's data is visible in this agent's memory. *count_p may be 0.
 * Local, never blocks; on MPI it also drives MPI progress, which a target of
 * emulated windows needs (poll often: a target that sleeps between polls
 * slows an initiator's large writes to it).
 */
MIXL_EXPORT mixl_status_t mixl_notif_poll(mixl_agent_h agent, mixl_notif_t *out, size_t max,
                                          size_t *count_p);

/*
 * Send a notification with no data, ordered after earlier transfers to the
 * peer. Blocking: on MPI it flushes every window to the peer first (then
 * the notification slot); on TCP it waits for the peer's acknowledgement,
 * at most the agent's timeout. Not for the hot path.
 */
MIXL_EXPORT mixl_status_t mixl_notif_send(mixl_agent_h agent, const char *peer,
                                          const void *payload, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_AGENT_H */
