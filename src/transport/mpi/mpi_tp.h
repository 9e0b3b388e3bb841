/*
 * State of the MPI one-sided backend, shared by its files:
 *   mpi_tp.c     set-up, windows, registration, metadata, peers
 *   mpi_xfer.c   prepared transfers: post (puts/gets) and test (flush, notify)
 *   mpi_notif.c  the notification rings
 *   mpi_cuda.c   device memory: self-test, staging, CUDA IPC (CUDA builds only)
 */
#ifndef MIXL_TRANSPORT_MPI_TP_H
#define MIXL_TRANSPORT_MPI_TP_H

#include <mpi.h>
#include <stdint.h>

#include "mem/mem.h"
#include "transport/transport.h"

/*
 * One notification slot (64 bytes). The sender writes it with one MPI_Put
 * after the transfer's data was flushed; the CRC covers seq, len and payload
 * so the target never takes a half-landed slot for a whole one.
 */
typedef struct {
    uint64_t seq; /* 1, 2, ... per (source, target); 0 = never written */
    uint32_t len;
    uint32_t crc;
    uint8_t payload[MIXL_NOTIF_MAX];
} mpi_notif_entry_t;

_Static_assert(sizeof(mpi_notif_entry_t) == 64, "notification slots are 64 bytes");

/*
 * Notification window layout on every rank:
 *   consumed[nranks]            uint64: entries this rank consumed from each source
 *   ring[nranks][ring_slots]    mpi_notif_entry_t: slots written by each source
 */
struct mpi_cuda;
struct mpi_cuda_xfer;

/* Per-region state (region->tp_priv[MIXL_TP_MPI]), from mem_register to mem_deregister. */
typedef struct {
    int32_t window; /* static window index, -1 the dynamic window, -2 none */
    uint64_t base;  /* address that displacement 0 of the window maps to */
    /* Device region: its CUDA IPC export (mpi_cuda_region_register), carried
     * in this backend's metadata section. */
    uint32_t md_flags;       /* MIXL_MD_REGION_* */
    uint64_t ipc_base;       /* base of the CUDA allocation the handle opens */
    uint64_t ipc_size;       /* bytes of that allocation */
    uint8_t ipc_handle[MIXL_IPC_HANDLE_BYTES];
} mpi_region_t;

typedef struct {
    MPI_Comm comm; /* our own duplicate: window creation is collective on it */
    int rank, nranks;
    uint64_t world; /* fingerprint of comm, the same on every rank (mpi.world in metadata) */

    /* The windows' communicator: comm itself, or this node's ranks of it when
     * the data-path policy keeps this backend on the node (mixl_tp_t.node_only).
     * A window spanning nodes wires UCX endpoints to every rank there, and
     * Open MPI 4.1 closes those inside MPI_Finalize without a fence: over
     * UCX's tcp transport a rank still flushing one to a rank that already
     * left prints "Endpoint timeout" at the end of a clean run. */
    MPI_Comm wcomm;
    int wrank, wnranks;
    int *wrank_of;      /* rank of comm -> rank of wcomm, -1 when wcomm leaves it out */
    int *rank_of;       /* rank of wcomm -> rank of comm */
    uint8_t *same_node; /* per rank of comm: shares our node (MPI's shared-memory split) */
    int node_only;

    MPI_Win notif_win;
    uint8_t *notif_mem;
    unsigned ring_slots;
    uint64_t *sent;          /* per target: entries written there */
    uint64_t *consumed_seen; /* per target: its consumed[] for us, as last read */
    uint64_t *fetch_buf;     /* per target: MPI_Get landing spot */
    uint64_t *recv_next;     /* per source: next seq we expect */
    uint64_t *bad_since;     /* per source: when its expected slot first failed its CRC, 0 = not */
    int poll_from;           /* round-robin start, for fairness between sources */

    MPI_Win *wins; /* static windows, one per region index */
    int nwins;
    void *placeholder; /* page exposed by ranks with fewer regions */
    MPI_Win dyn_win;
    int dyn_attached;
    int started;

    int cuda_aware;     /* MPIX_Query_cuda_support() at run time */
    int device_windows; /* device regions exposed directly through windows */
    struct mpi_cuda *cuda; /* staging slots, IPC, path decision (mpi_cuda.c) */
    int timeout_ms;
    mixl_gpu_path_t gpu_path;
} mpi_tp_t;

/* Per-operation record resolved at prepare time (no lookups on the hot path). */
typedef struct {
    void *origin;
    MPI_Aint disp;
    int count; /* bytes; operations are split so this never exceeds INT_MAX */
    MPI_Win win;
} mpi_op_t;

typedef enum {
    MIXL_MPI_XFER_IDLE = 0,
    MIXL_MPI_XFER_DATA,   /* operations issued, not yet flushed */
    MIXL_MPI_XFER_NOTIF,  /* data flushed, waiting for a free notification slot */
} mpi_xfer_phase_t;

typedef struct {
    mpi_op_t *ops;
    size_t nops;
    MPI_Win *flush; /* distinct windows the operations use */
    size_t nflush;
    int target;
    mpi_xfer_phase_t phase;
    mpi_notif_entry_t entry; /* origin buffer of the notification put */
    struct mpi_cuda_xfer *cuda; /* staged and IPC operations; NULL for host-only transfers */
    int gdr_flush; /* MPI_Get into local device memory: flush GPUDirect writes at the end */
} mpi_xfer_t;

/* Largest byte count of one MPI call (1 GiB keeps well inside INT_MAX). */
#define MIXL_MPI_TP_MAX_CHUNK (1 << 30)

mixl_status_t mpi_notif_init(mixl_tp_t *tp, mpi_tp_t *m);
void mpi_notif_fini(mpi_tp_t *m);
/* Try to write one notification to target; MIXL_IN_PROGRESS when its ring is full. */
mixl_status_t mpi_notif_put(mixl_tp_t *tp, mpi_tp_t *m, int target, mpi_notif_entry_t *entry,
                            const void *payload, uint32_t len);
mixl_status_t mpi_notif_poll(mixl_tp_t *tp, mixl_notif_t *out, size_t max, size_t *count_p);
mixl_status_t mpi_notif_send(mixl_tp_t *tp, mixl_tp_peer_t *peer, const void *payload, size_t len);

mixl_status_t mpi_xfer_prepare(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);
mixl_status_t mpi_xfer_post(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);
mixl_status_t mpi_xfer_test(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);
void mpi_xfer_release(mixl_tp_t *tp, mixl_tp_xfer_t *xfer);

/* "MPI_Put: <MPI error string>" into the agent's error buffer. */
mixl_status_t mpi_tp_error(mixl_tp_t *tp, int mpi_rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* MIXL_TRANSPORT_MPI_TP_H */
