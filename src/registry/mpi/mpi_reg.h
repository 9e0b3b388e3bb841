/*
 * The MPI registry: wire format and state shared by its client (every rank,
 * mpi_client.c) and its server (a thread on the server rank, mpi_server.c).
 *
 * Messages travel on a duplicate of the user's communicator, so they never
 * match the application's own traffic. A request goes to the server rank
 * with tag REGMPI_TAG_REQ; the answer comes back with tag REGMPI_TAG_RESP
 * plus the request's slot, carrying the request's sequence number, so a
 * late answer to a request that timed out is recognised and dropped. Nobody ever blocks in MPI: sends and
 * receives are polled (MPI_Test, MPI_Improbe) against a deadline.
 */
#ifndef MIXL_REGISTRY_MPI_REG_H
#define MIXL_REGISTRY_MPI_REG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

#include "registry/kvdb.h"
#include "registry/reg_ops.h"

#define REGMPI_TAG_REQ 0x4d31
#define REGMPI_TAG_RESP 0x4d40 /* + the request's slot */
#define REGMPI_SLOTS 64        /* requests one handle may have in flight at once */
#define REGMPI_MAGIC 0x4d584c52u /* "MXLR" */

typedef enum {
    REGMPI_PUT = 1,
    REGMPI_GET = 2,
    REGMPI_LIST = 3,
    REGMPI_DEL = 4,
    REGMPI_WAIT = 5,
    REGMPI_GRANT = 6,
    REGMPI_KEEPALIVE = 7,
    REGMPI_REVOKE = 8,
    REGMPI_DONE = 9, /* this rank's client is finished; the server counts them */
} regmpi_op_t;

typedef struct {
    uint32_t magic;
    uint16_t op;      /* regmpi_op_t */
    uint16_t flags;   /* MIXL_REGISTRY_KEYS_ONLY for LIST */
    uint32_t seq;
    uint16_t slot;    /* answer on tag REGMPI_TAG_RESP + slot */
    uint16_t pad;
    uint32_t key_len;
    uint64_t val_len;
    int64_t lease;    /* PUT, KEEPALIVE, REVOKE */
    int64_t arg;      /* GRANT: ttl_s; WAIT: timeout_ms */
} regmpi_req_t;       /* followed by key_len key bytes, then val_len value bytes */

typedef struct {
    uint32_t magic;
    int32_t status;   /* mixl_status_t */
    uint32_t seq;
    uint32_t count;   /* pairs that follow */
    int64_t value;    /* PUT: revision; GRANT: lease id */
} regmpi_resp_t;

typedef struct {
    uint32_t key_len;
    uint32_t has_value;
    uint64_t val_len;
    int64_t create_revision, mod_revision, version, lease;
} regmpi_kv_t;        /* followed by key bytes, then value bytes when has_value */

/* Bytes one pair takes on the wire. */
size_t regmpi_kv_wire_size(const mixl_registry_kv_t *kv);
/* Append pairs after a response header; buf has room (sum of regmpi_kv_wire_size). */
void regmpi_kvs_pack(uint8_t *buf, const mixl_registry_kv_t *kvs, size_t count);
/* Decode count pairs from [buf, buf+len); MIXL_ERR_PROTOCOL when malformed. */
mixl_status_t regmpi_kvs_unpack(const uint8_t *buf, size_t len, size_t count,
                                mixl_registry_kv_t **kvs_p);

/*
 * Check a request of len bytes as received and split it: *r_p gets the
 * header, *key_p a malloc'd NUL-terminated copy of the key, *value_p points
 * at the val_len value bytes inside msg. MIXL_ERR_PROTOCOL when the magic,
 * op, slot or lengths are wrong, or the key is empty (put, get, list,
 * delete, wait) or holds a NUL byte (nothing set); MIXL_ERR_NO_MEMORY with only
 * *r_p set, so that the server can still answer.
 */
mixl_status_t regmpi_req_decode(const uint8_t *msg, size_t len, regmpi_req_t *r_p, char **key_p,
                                const uint8_t **value_p);

/* The server (runs only on the server rank). */
typedef struct regmpi_server regmpi_server_t;
mixl_status_t regmpi_server_start(MPI_Comm comm, int nranks, mixl_errbuf_t *eb,
                                  regmpi_server_t **server_p);
/*
 * Wait (up to timeout_ms) for the server to see every rank's DONE, then stop
 * its thread either way and free it.
 */
void regmpi_server_stop(regmpi_server_t *server, int timeout_ms);

/* Poll loop pacing shared by client and server: spin, then yield, then sleep. */
void regmpi_backoff(unsigned *idle);

#endif /* MIXL_REGISTRY_MPI_REG_H */
