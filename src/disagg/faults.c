/*
 * Faults injected on purpose (the `faults:` section of the YAML): a rank
 * killed or stalled when it takes a given request, one byte of a request's
 * KV flipped after its fill, a request's notification never sent. Each one
 * is announced on stderr where it is injected, so a test can tell the fault
 * from its detection (a checksum, a timeout, a dead peer) further on.
 */
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "disagg/dg_int.h"
#include "util/log.h"

/* The fault role this rank plays, when it is the TP rank 0 the faults hit. */
static int fault_role(const mixl_dg_t *dg)
{
    if (dg->me.tp_rank != 0) return MIXL_FAULT_ROLE_NONE;
    if (dg->me.role == MIXL_ROLE_PREFILL) return MIXL_FAULT_ROLE_PREFILL;
    if (dg->me.role == MIXL_ROLE_DECODE) return MIXL_FAULT_ROLE_DECODE;
    return MIXL_FAULT_ROLE_NONE;
}

void dg_fault_at(mixl_dg_t *dg, uint64_t req)
{
    const mixl_run_config_t *c = dg->cfg;
    int role = fault_role(dg);
    if (role == MIXL_FAULT_ROLE_NONE) return;
    if (c->faults.kill_role == role && c->faults.kill_instance == dg->me.inst &&
        req >= (uint64_t)c->faults.kill_request) {
        mixl_error("fault injection: %s (rank %d) kills itself (SIGKILL) at request %llu",
                   dg->names[dg->rank], dg->rank, (unsigned long long)req);
        fflush(stdout);
        fflush(stderr);
        raise(SIGKILL);
    }
    if (c->faults.stall_role == role && c->faults.stall_instance == dg->me.inst &&
        req >= (uint64_t)c->faults.stall_request && !dg->stalled) {
        dg->stalled = 1;
        mixl_warn("fault injection: %s (rank %d) stalls for %lld ms at request %llu",
                  dg->names[dg->rank], dg->rank, (long long)c->faults.stall_ms,
                  (unsigned long long)req);
        struct timespec ts = {c->faults.stall_ms / 1000, (c->faults.stall_ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0) continue;
    }
}

int dg_fault_corrupts(const mixl_dg_t *dg, uint64_t req, int l)
{
    const mixl_run_config_t *c = dg->cfg;
    return dg->me.role == MIXL_ROLE_PREFILL && dg->me.tp_rank == 0 &&
           c->faults.corrupt_request >= 0 && (uint64_t)c->faults.corrupt_request == req &&
           c->faults.corrupt_layer == l;
}

int dg_fault_drops(const mixl_dg_t *dg, uint64_t req)
{
    return dg->cfg->faults.drop_request >= 0 && (uint64_t)dg->cfg->faults.drop_request == req;
}
