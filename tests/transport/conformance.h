/*
 * The transport conformance suite: one set of cases over the public agent
 * API that every backend (mpi, tcp) runs on every memory kind it can reach
 * (malloc'd host memory, mixl_mem_alloc_mpi() memory, and device memory
 * staged, in device windows or over CUDA IPC).
 *
 * Every process of an `mpirun -np N` job runs the same case; MPI is only the
 * suite's bootstrap (barriers, exchanging metadata blobs) unless the backend
 * under test is MPI itself. What a backend cannot do it declares in its
 * capability flags (mixl_backend_caps()); a case reads them and then checks
 * the documented refusal instead of the transfer, so no case is skipped.
 */
#ifndef MIXL_TESTS_TRANSPORT_CONFORMANCE_H
#define MIXL_TESTS_TRANSPORT_CONFORMANCE_H

#include <stdint.h>
#include <stdio.h>

#include <mixl/mixl.h>

/* A memory kind: where each process's pool lives and how the agent reaches it. */
typedef struct tr_kind {
    const char *name;         /* "host", "host_mpi", "cuda_staged", "cuda_devwin", "cuda_ipc" */
    mixl_mem_type_t type;     /* type of the pool's descriptors */
    mixl_gpu_path_t gpu_path; /* agent parameter for device kinds */
    int from_mpi;             /* pool from mixl_mem_alloc_mpi() */
    int late;                 /* registered after mixl_agent_start() (no window: CUDA IPC) */
    const char *path_expect;  /* substring of mixl_agent_path_report() proving the path ran */
} tr_kind_t;

typedef struct tr {
    const char *backend_name;
    mixl_backend_t backend;
    unsigned caps; /* mixl_backend_caps(backend) */
    const tr_kind_t *kind;
    int rank, nranks, device;
    mixl_agent_h agent;
    uint8_t *pool;    /* this process's pool (device memory for device kinds) */
    uint8_t *scratch; /* host staging for filling and checking device pools */
    uint64_t *peer_base;                /* every rank's pool address */
    char (*names)[MIXL_NAME_MAX];       /* every rank's agent name */
    void *blobs;                        /* every rank's metadata blob */
    int *blob_len, *blob_off;
    const char *self_exe;               /* for spawning a peer process */
} tr_t;

#define TR_POOL (72u << 20) /* fits the 64 MiB case plus offsets */
#define TR_WAIT_MS 60000

extern tr_t T;
extern int tr_failures;

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s/%s rank %d: %s:%d: ", T.backend_name, T.kind->name, \
                    T.rank, __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                          \
            fprintf(stderr, " [%s]\n", mixl_agent_last_error(T.agent));            \
            tr_failures++;                                                         \
        }                                                                          \
    } while (0)

/* --- memory kinds (kinds.c) -------------------------------------------- */
const tr_kind_t *tr_kind_find(const char *name);
/* 77 with the reason printed when the kind needs a device that is absent. */
int tr_kind_available(const tr_kind_t *k, int *device_p);
mixl_status_t tr_pool_alloc(void);
void tr_pool_free(void);
/* Write the pattern for salt over pool[off, off+len) (pattern index 0 at off). */
void tr_fill(uint64_t off, uint64_t len, uint32_t salt);
/* First byte of pool[off, off+len) that differs from the pattern, or UINT64_MAX. */
uint64_t tr_bad(uint64_t off, uint64_t len, uint32_t salt);
/* First non-zero byte of pool[off, off+len), or UINT64_MAX. */
uint64_t tr_nonzero(uint64_t off, uint64_t len);
/* Zero the whole pool on every rank, then barrier: no write may land before a slow rank cleared. */
void tr_clear(void);

/* --- helpers (main.c) ---------------------------------------------------- */
void tr_barrier(void);
mixl_desc_t tr_ldesc(uint64_t off, uint64_t len);
mixl_desc_t tr_rdesc(int peer, uint64_t off, uint64_t len);
mixl_status_t tr_run(mixl_xfer_h x);
mixl_status_t tr_one(mixl_op_t op, int peer, uint64_t loff, uint64_t roff, uint64_t len,
                     const void *notif, size_t notif_len);
size_t tr_wait_notifs(mixl_notif_t *out, size_t n, int timeout_ms);
/* Agent parameters every case starts from; notif_ring 0 keeps the default. */
mixl_agent_params_t tr_agent_params(const char *name, unsigned notif_ring);

/* --- cases --------------------------------------------------------------- */
void case_sizes(void);         /* cases_data.c */
void case_scattered(void);
void case_in_flight(void);
void case_notif_order(void);
void case_reuse(void);
void case_read_write(void);
void case_many_to_one(void);
void case_timeout(void);       /* cases_faults.c */
void case_release_in_flight(void);
void case_bad_desc(void);
void case_peer_gone(void);
/* The process a peer_gone case starts: a lone agent that dies after its first notification. */
int tr_vanishing_peer(const char *backend, int fd);

#endif /* MIXL_TESTS_TRANSPORT_CONFORMANCE_H */
