/*
 * Starting MPI the way MIXL's data plane needs it.
 *
 * MIXL's windows are meant to run over Open MPI's UCX components (pml/osc
 * ucx). Debian's Open MPI disables them by default, and their default UCX
 * transport list only matches Mellanox devices. mixl_mpi_init() sets
 * OMPI_MCA_pml=ucx, OMPI_MCA_osc=ucx, OMPI_MCA_opal_common_ucx_tls=any and
 * OMPI_MCA_opal_common_ucx_devices=any in the process environment -- each
 * only when the user has not set it -- and then initialises MPI, so that
 * `mpirun -np 4 mixl-run ...` works without extra flags. A user's own
 * OMPI_MCA_* settings (or --mca flags) always win.
 */
#ifndef MIXL_LAUNCH_H
#define MIXL_LAUNCH_H

#include <mpi.h>

#include <mixl/export.h>
#include <mixl/status.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Set the MCA defaults above without initialising MPI (for programs that call MPI_Init
 * themselves). Local; call it before MPI_Init, from one thread (it sets environment variables). */
MIXL_EXPORT void mixl_mpi_defaults(void);

/*
 * mixl_mpi_defaults(), then MPI_Init_thread(): collective over MPI_COMM_WORLD
 * as MPI_Init is. Fails with MIXL_ERR_NOT_SUPPORTED (after initialising MPI)
 * when the library provides less than `required`. Call once, from the main thread.
 */
MIXL_EXPORT mixl_status_t mixl_mpi_init(int *argc, char ***argv, int required, int *provided_p);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_LAUNCH_H */
