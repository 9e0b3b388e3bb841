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

/* MIXL_TCP_SECRET_BYTES and mixl_tcp_secret_new() are public (mixl/agent.h). */
#include <mixl/agent.h>

#endif /* MIXL_TCP_AUTH_H */
