/*
 * Collective sequences that survive a local error.
 *
 * Every rank of a collective sequence (agent create and start, the MPI
 * backend's set-up, mixl_mem_alloc_mpi) makes every collective call of it
 * whatever happened to it locally, because a rank that returned early would
 * leave its peers waiting in the next collective for ever (MPI has no
 * timeout on them). Each rank keeps its first local error
 * (mixl_coll_keep), and at the end of the sequence, or before a step that
 * only makes sense if all succeeded, the ranks agree on one outcome
 * (mixl_coll_agree) and take the same path from there.
 *
 * Two failures cannot be recovered from this way, and end the job with
 * MPI_Abort and a message saying why (mixl_coll_lost): the agreement itself
 * failing, and a collective whose result decides the calls that follow
 * (a count of windows, a gathered table) failing on some rank. Without ULFM
 * the ranks could no longer know that they make the same calls, and a hang
 * is worse than an aborted job.
 *
 * Header-only so every layer that speaks MPI (mem, transport, agent) can use
 * it without linking a lower layer against MPI.
 */
#ifndef MIXL_UTIL_COLL_H
#define MIXL_UTIL_COLL_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include <mixl/status.h>

#include "util/log.h"

/* Exit status of a job ended by mixl_coll_lost() (EX_SOFTWARE). */
#define MIXL_COLL_ABORT_CODE 70

/* Keep the first error of a sequence: later steps still run, their errors are dropped. */
static inline void mixl_coll_keep(mixl_status_t *first_p, mixl_status_t step)
{
    if (*first_p == MIXL_OK && step != MIXL_OK) *first_p = step;
}

/*
 * End the job: a collective whose outcome the ranks must share failed here.
 * what names the call and the object ("MPI_Allreduce of region counts in
 * agent prefill-0"). Does not return.
 */
static inline void mixl_coll_lost(MPI_Comm comm, int mpi_rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int n = 0, rank = -1;

    if (MPI_Error_string(mpi_rc, msg, &n) != MPI_SUCCESS) msg[0] = '\0';
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    mixl_error("rank %d: %s failed (%s): the ranks can no longer keep their collective calls in "
               "step; collective sequence lost, aborting the job rather than leaving peers hung",
               rank, what, msg);
    MPI_Abort(comm != MPI_COMM_NULL ? comm : MPI_COMM_WORLD, MIXL_COLL_ABORT_CODE);
    abort(); /* MPI_Abort does not return; never let a caller go on if it did */
}

/*
 * Every rank learns the worst outcome of the sequence (the lowest status,
 * errors being negative) and *bad_rank_p (may be NULL) the lowest rank of
 * comm that had it, -1 when every rank succeeded. Collective over comm.
 */
static inline mixl_status_t mixl_coll_agree(MPI_Comm comm, mixl_status_t local, int *bad_rank_p)
{
    struct {
        int st, rank;
    } in, out;
    int rc;

    in.st = (int)local;
    in.rank = 0;
    MPI_Comm_rank(comm, &in.rank);
    out = in;
    rc = MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MINLOC, comm);
    if (rc != MPI_SUCCESS) mixl_coll_lost(comm, rc, "MPI_Allreduce agreeing on a collective outcome");
    if (bad_rank_p != NULL) *bad_rank_p = out.st != MIXL_OK ? out.rank : -1;
    return (mixl_status_t)out.st;
}

/*
 * After a collective call that makes an object (communicator, window): 1 when
 * every rank holds it, 0 when none does (a refusal every rank saw alike: the
 * sequence goes on without it). Some ranks holding it and others not cannot
 * be recovered, since the collective frees that follow would never match:
 * mixl_coll_lost(). Collective over comm, the communicator the object was
 * made from. A rank whose call returned an error but handed back an object
 * counts as holding it (it takes part in freeing it).
 */
static inline int mixl_coll_check_created(MPI_Comm comm, int mpi_rc, int have, const char *what)
{
    int in[2] = {have ? 1 : 0, have ? -1 : 0}, out[2] = {0, 0};
    char why[256];
    int rc = MPI_Allreduce(in, out, 2, MPI_INT, MPI_MIN, comm);

    if (rc != MPI_SUCCESS) {
        snprintf(why, sizeof(why), "MPI_Allreduce checking %s", what);
        mixl_coll_lost(comm, rc, why);
    }
    if (out[0] != -out[1]) {
        snprintf(why, sizeof(why), "%s (made on some ranks only, %s here)", what,
                 have ? "made" : "not made");
        mixl_coll_lost(comm, mpi_rc, why);
    }
    return out[0];
}

#endif /* MIXL_UTIL_COLL_H */
