/*
 * The TCP backend's authentication, as the rest of MIXL sees it: making a
 * per-job secret that a launcher hands to every agent of the job
 * (mixl_agent_params_t.tcp_secret). docs/tcp-protocol.md, "Authentication".
 */
#ifndef MIXL_TCP_AUTH_H
#define MIXL_TCP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

#define MIXL_TCP_SECRET_BYTES 32 /* what mixl_tcp_secret_new makes */

/* Fill out with MIXL_TCP_SECRET_BYTES bytes from a cryptographic random
 * source. MIXL_ERR_BACKEND when none is available. Thread-safe. */
mixl_status_t mixl_tcp_secret_new(uint8_t out[MIXL_TCP_SECRET_BYTES]);

#endif /* MIXL_TCP_AUTH_H */
