/*
 * MPI section of the report: library and standard version, thread level,
 * CUDA awareness (compile time from mpi-ext.h, run time from
 * MPIX_Query_cuda_support) and which point-to-point (pml), one-sided (osc)
 * and byte-transfer (btl) components Open MPI uses.
 *
 * How the components are found, since MPI has no standard query for them:
 * - "requested": the selection MCA variables pml/osc/btl read through the
 *   MPI tool interface (MPI_T cvars), i.e. what the environment
 *   (OMPI_MCA_*), mpirun --mca and the parameter files
 *   (/etc/openmpi/openmpi-mca-params.conf) ask for;
 * - "loaded": the mca_<framework>_*.so component libraries mapped into this
 *   process after MPI_Init (dl_iterate_phdr); Open MPI unloads the pml
 *   components it did not select, and opens only the osc components the
 *   selection allows (each window then picks the highest priority that works);
 * - "selected" (pml only): the component Open MPI recorded as selected in its
 *   exported mca_pml_base_selected_component, read only after checking that
 *   the record's framework name is "pml".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

#if defined(OPEN_MPI) && OPEN_MPI && defined(__has_include)
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>
#endif
#endif

static const char *thread_name(int level)
{
    switch (level) {
    case MPI_THREAD_SINGLE: return "single";
    case MPI_THREAD_FUNNELED: return "funneled";
    case MPI_THREAD_SERIALIZED: return "serialized";
    case MPI_THREAD_MULTIPLE: return "multiple";
    default: return "unknown";
    }
}

/* Read a string MPI_T control variable by name; NULL when absent. */
static char *cvar_string(const char *want)
{
    int n = 0;
    if (MPI_T_cvar_get_num(&n) != MPI_SUCCESS)
        return NULL;
    for (int i = 0; i < n; i++) {
        char name[256], desc[8];
        int name_len = sizeof(name), desc_len = sizeof(desc), verbosity, bind, scope;
        MPI_Datatype type;
        MPI_T_enum enumtype;
        if (MPI_T_cvar_get_info(i, name, &name_len, &verbosity, &type, &enumtype, desc,
                                &desc_len, &bind, &scope) != MPI_SUCCESS)
            continue;
        if (strcmp(name, want) || type != MPI_CHAR || bind != MPI_T_BIND_NO_OBJECT)
            continue;
        MPI_T_cvar_handle h;
        int count = 0;
        if (MPI_T_cvar_handle_alloc(i, NULL, &h, &count) != MPI_SUCCESS)
            return NULL;
        char *val = calloc(1, (size_t)count + 1);
        if (val && MPI_T_cvar_read(h, val) != MPI_SUCCESS) {
            free(val);
            val = NULL;
        }
        MPI_T_cvar_handle_free(&h);
        return val;
    }
    return NULL;
}

typedef struct {
    json_t *pml, *osc, *btl;
} loaded_t;

static int collect_component(struct dl_phdr_info *info, size_t size, void *arg)
{
    loaded_t *l = arg;
    const char *base = strrchr(info->dlpi_name, '/');
    base = base ? base + 1 : info->dlpi_name;
    static const char *const fw[] = {"pml", "osc", "btl"};
    for (int k = 0; k < 3; k++) {
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "mca_%s_", fw[k]);
        size_t plen = strlen(prefix);
        if (strncmp(base, prefix, plen))
            continue;
        const char *end = strstr(base + plen, ".so");
        if (!end)
            continue;
        json_t *arr = k == 0 ? l->pml : k == 1 ? l->osc : l->btl;
        json_array_append_new(arr, json_stringn(base + plen, (size_t)(end - base - plen)));
    }
    return 0;
}

/* Open MPI's mca_base_component_t (2.1.0 layout, Open MPI 2.x-5.x) starts with these. */
typedef struct {
    int mca_major_version, mca_minor_version, mca_release_version;
    char mca_project_name[16];
    int mca_project_major_version, mca_project_minor_version, mca_project_release_version;
    char mca_type_name[32];
    int mca_type_major_version, mca_type_minor_version, mca_type_release_version;
    char mca_component_name[64];
} ompi_component_head_t;

static json_t *selected_pml(void)
{
    const ompi_component_head_t *c = dlsym(RTLD_DEFAULT, "mca_pml_base_selected_component");
    if (!c || strncmp(c->mca_type_name, "pml", sizeof(c->mca_type_name)))
        return json_null();
    size_t len = strnlen(c->mca_component_name, sizeof(c->mca_component_name));
    if (len == 0 || len == sizeof(c->mca_component_name))
        return json_null();
    return json_stringn(c->mca_component_name, len);
}

static json_t *component_section(const char *fw, json_t *loaded)
{
    json_t *o = json_object();
    char *req = cvar_string(fw);
    char env[32];
    snprintf(env, sizeof(env), "OMPI_MCA_%s", fw);
    json_object_set_new(o, "requested", req && *req ? json_string(req) : json_string("(all)"));
    json_object_set_new(o, "requested_by",
                        json_string(getenv(env) ? env : "mpirun --mca / MCA parameter files / default"));
    free(req);
    if (!strcmp(fw, "pml"))
        json_object_set_new(o, "selected", selected_pml());
    json_object_set_new(o, "loaded", loaded);
    return o;
}

void mixl_diag_probe_mpi(mixl_diag_t *d)
{
    json_t *mpi = json_object();
    char lib[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0, major = 0, minor = 0;

    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, "\n")] = '\0'; /* the first line names library and version */
    size_t n = strlen(lib);
    while (n && (lib[n - 1] == ' ' || lib[n - 1] == ','))
        lib[--n] = '\0';
    MPI_Get_version(&major, &minor);
    char std[16];
    snprintf(std, sizeof(std), "%d.%d", major, minor);
    json_object_set_new(mpi, "library", json_string(lib));
    json_object_set_new(mpi, "standard", json_string(std));
    json_object_set_new(mpi, "thread_requested", json_string(thread_name(d->thread_requested)));
    json_object_set_new(mpi, "thread_provided", json_string(thread_name(d->thread_provided)));

#if defined(MPIX_CUDA_AWARE_SUPPORT)
    json_object_set_new(mpi, "cuda_aware_compile", json_boolean(MPIX_CUDA_AWARE_SUPPORT));
#else
    json_object_set_new(mpi, "cuda_aware_compile", json_null());
#endif
#if defined(OMPI_HAVE_MPI_EXT_CUDA) && OMPI_HAVE_MPI_EXT_CUDA
    json_object_set_new(mpi, "cuda_aware_runtime", json_boolean(MPIX_Query_cuda_support()));
#else
    json_object_set_new(mpi, "cuda_aware_runtime", json_null());
#endif

    int provided;
    /* Ask MPI_T for the level MPI already provides: Open MPI 4.1 records the
     * MPI_T request as the process's thread level, and MPI_Query_thread (which
     * the MPI registry checks) would then report less than MPI_Init_thread gave. */
    int have_t = MPI_T_init_thread(d->thread_provided, &provided) == MPI_SUCCESS;
    loaded_t l = {json_array(), json_array(), json_array()};
    dl_iterate_phdr(collect_component, &l);
    json_object_set_new(mpi, "pml", component_section("pml", l.pml));
    json_object_set_new(mpi, "osc", component_section("osc", l.osc));
    json_object_set_new(mpi, "btl", component_section("btl", l.btl));
    char *ucx_tls = have_t ? cvar_string("opal_common_ucx_tls") : NULL;
    char *ucx_dev = have_t ? cvar_string("opal_common_ucx_devices") : NULL;
    /* Registered only when a UCX component was opened. */
    if (ucx_tls)
        json_object_set_new(mpi, "opal_common_ucx_tls", json_string(ucx_tls));
    if (ucx_dev)
        json_object_set_new(mpi, "opal_common_ucx_devices", json_string(ucx_dev));
    free(ucx_tls);
    free(ucx_dev);
    if (have_t)
        MPI_T_finalize();
    json_object_set_new(d->report, "mpi", mpi);
}
