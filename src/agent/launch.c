/* MPI start-up with MIXL's MCA defaults; see include/mixl/launch.h. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/launch.h>

#include "util/log.h"

/* True when the kernel lists an RDMA device (InfiniBand, RoCE, iWARP). */
static int have_rdma_device(void)
{
    DIR *d = opendir("/sys/class/infiniband");
    struct dirent *e;
    int found = 0;

    if (d == NULL) return 0;
    while (!found && (e = readdir(d)) != NULL) found = e->d_name[0] != '.';
    closedir(d);
    return found;
}

void mixl_mpi_defaults(void)
{
    const char *force = getenv("MIXL_MPI_UCX");

    /*
     * Without an RDMA device, Open MPI's own choice (osc/rdma over the vader
     * shared-memory BTL with CMA single copy) moves large messages several
     * times faster on one node than osc/ucx over UCX's shared-memory and TCP
     * transports, whose puts need the target to progress. MIXL_MPI_UCX=1
     * forces UCX anyway, =0 never selects it.
     */
    if (force != NULL ? strcmp(force, "1") != 0 : !have_rdma_device()) return;
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
