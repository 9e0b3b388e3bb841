/* MPI start-up with MIXL's MCA defaults; see include/mixl/launch.h. */
#include <stdlib.h>

#include <mixl/launch.h>

#include "util/log.h"

void mixl_mpi_defaults(void)
{
    static const char *const defaults[][2] = {
        {"OMPI_MCA_pml", "ucx"},
        {"OMPI_MCA_osc", "ucx"},
        {"OMPI_MCA_opal_common_ucx_tls", "any"},
        {"OMPI_MCA_opal_common_ucx_devices", "any"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        setenv(defaults[i][0], defaults[i][1], 0 /* keep the user's value */);
}

mixl_status_t mixl_mpi_init(int *argc, char ***argv, int required, int *provided_p)
{
    int provided = MPI_THREAD_SINGLE;

    mixl_mpi_defaults();
    if (MPI_Init_thread(argc, argv, required, &provided) != MPI_SUCCESS) {
        mixl_error("MPI_Init_thread failed");
        return MIXL_ERR_BACKEND;
    }
    if (provided_p != NULL) *provided_p = provided;
    if (provided < required) {
        mixl_error("MPI provides thread level %d, MIXL needs %d (MPI_THREAD_MULTIPLE is %d)",
                   provided, required, MPI_THREAD_MULTIPLE);
        return MIXL_ERR_NOT_SUPPORTED;
    }
    return MIXL_OK;
}
