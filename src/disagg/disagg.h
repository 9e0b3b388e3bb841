/*
 * mixl-run's job, as a library entry: load and check the configuration on
 * rank 0 and share the outcome with every rank (so a bad config stops every
 * rank before any of them allocates), then run the roles and, on rank 0,
 * print the summary and write the results file.
 */
#ifndef MIXL_DISAGG_DISAGG_H
#define MIXL_DISAGG_DISAGG_H

#include <stdio.h>

#include <mpi.h>

#include "config/run_config.h"
#include "disagg/plan.h"
#include "disagg/results.h"
#include "disagg/workload.h"

/*
 * Collective over comm. Rank 0 loads path (NULL = defaults only) and the
 * overrides, builds the workload and checks the plan against the size of
 * comm; the outcome is broadcast. On error every rank returns it with the
 * same message in err (rank 0 is the one that should print it). On success
 * every rank has the same cfg and plan; wl is filled on rank 0 only.
 */
mixl_status_t mixl_dg_prepare(MPI_Comm comm, const char *path, const char *const *overrides,
                              int noverrides, mixl_run_config_t *cfg, mixl_dg_plan_t *plan,
                              mixl_workload_t *wl, char *err, size_t err_len);

/*
 * Run the job. Collective over comm. Rank 0 prints the summary to out and
 * writes run.output; *failed_p (rank 0) counts requests that were not
 * delivered intact. Returns an error when the job itself failed.
 */
mixl_status_t mixl_dg_run(MPI_Comm comm, const mixl_run_config_t *cfg, const mixl_dg_plan_t *plan,
                          const mixl_workload_t *wl, FILE *out, uint64_t *failed_p);

/* What one sweep point leaves set up for the next: agents, windows, KV memory, registry. */
typedef struct mixl_dg_kept mixl_dg_kept_t;

/*
 * The same for one point of a sweep (point may be NULL): the results go into
 * the group /point_<index> of run.output, created by point 0, with the
 * point's parameters as the group's attributes.
 *
 * With kept_pp NULL everything is set up and torn down within the call. With
 * kept_pp, *kept_pp (NULL at the first point) is the previous point's set-up:
 * it is reused when this point differs from the configuration it was made
 * for in no key flagged MIXL_CFG_SETUP and its prefill layer buffers hold
 * this point's longest prompt; otherwise it is torn down and a new one made.
 * On success *kept_pp holds the set-up for the next point; on failure it is
 * torn down and *kept_pp is NULL. The group's attributes setup_reused,
 * setup_change and agents_created say which happened.
 */
mixl_status_t mixl_dg_run_point(MPI_Comm comm, const mixl_run_config_t *cfg,
                                const mixl_dg_plan_t *plan, const mixl_workload_t *wl,
                                const mixl_dg_point_t *point, mixl_dg_kept_t **kept_pp, FILE *out,
                                uint64_t *failed_p);

/* Collective over the job's communicator: tear down a kept set-up; *kept_pp becomes NULL. */
void mixl_dg_kept_release(mixl_dg_kept_t **kept_pp);

#endif /* MIXL_DISAGG_DISAGG_H */
