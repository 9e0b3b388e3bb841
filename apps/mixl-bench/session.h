/*
 * A MIXL agent set up for one benchmark configuration: created over the
 * bootstrap's communicator (or TCP-only), the benchmark's buffers
 * registered before start so they get static windows, every peer's
 * metadata imported, and each rank's exposed buffer address known to all.
 */
#ifndef MIXL_BENCH_SESSION_H
#define MIXL_BENCH_SESSION_H

#include <mixl/agent.h>

#include "mem.h"
#include "run.h"

#define BENCH_SESSION_BUFS 2

typedef struct {
    mixl_agent_h agent;
    unsigned backend;           /* BENCH_BACKEND_* */
    bench_buf_t bufs[BENCH_SESSION_BUFS]; /* [0] local source/sink, [1] exposed to peers */
    uint64_t *exposed;          /* per rank: address of its bufs[1] */
    char (*names)[MIXL_NAME_MAX]; /* per rank: agent name */
    /* notifications taken while waiting in barriers (target side) */
    uint64_t notifs;
} bench_session_t;

/*
 * Collective. Allocate bufs of kind (len[i] bytes, 0 = none), create and
 * start the agent, exchange metadata. On failure every rank gets the same
 * status and note, and nothing is left allocated.
 */
mixl_status_t bench_session_open(bench_ctx_t *ctx, unsigned backend, unsigned kind,
                                 const size_t len[BENCH_SESSION_BUFS], bench_session_t *s,
                                 char *note, size_t notelen);
/* Collective. */
void bench_session_close(bench_ctx_t *ctx, bench_session_t *s);

const char *bench_backend_name(unsigned backend);

/*
 * Collective. The address the TCP backend and the socket loop listen on
 * (and publish) when --tcp-bind left bind empty: loopback while every rank
 * shares this node, else this node's address on the interface MPI's own
 * out-of-band channel uses (agent/netif.h), so peers on other nodes reach
 * it. Writes the address into bind (len bytes) and why it was chosen (or
 * what failed, on every rank alike) into why.
 */
mixl_status_t bench_tcp_bind_resolve(bench_ctx_t *ctx, char *bind, size_t len, char *why,
                                     size_t whylen);

/*
 * Post a prepared request and poll it to completion; MIXL_ERR_TIMED_OUT
 * when it is still in flight about timeout_ns after the first few thousand
 * polls. Hot path: no clock read while the request completes quickly.
 */
mixl_status_t bench_xfer_run(mixl_xfer_h x, uint64_t timeout_ns);

#endif /* MIXL_BENCH_SESSION_H */
