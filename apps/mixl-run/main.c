/*
 * mixl-run: the YAML-configured disaggregated prefill/decode experiment.
 *
 *   mpirun -np 4 mixl-run configs/default.yaml
 *   srun --mpi=pmix -n 4 mixl-run configs/llama3-8b.yaml --set workload.requests=8
 *   mixl-run --print-config [config.yaml] [--set key=value ...]
 *   mpirun -np 4 mixl-run configs/default.yaml --sweep workload.rate=100,200,400
 *
 * Exit status: 0 every request delivered and verified; 1 some requests
 * failed; 2 bad command line or configuration; 3 the job failed; 4 a rank
 * died (the run finished without it: summary and results are out, and the
 * survivors left without MPI_Finalize).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include <mixl/launch.h>
#include <mixl/version.h>

#include "config/run_config.h"
#include "config/sweep.h"
#include "disagg/disagg.h"
#include "util/log.h"

#define MAX_OVERRIDES 128

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: mixl-run [options] [config.yaml]\n"
        "  --set key=value   override one config key (repeatable), e.g. --set workload.requests=4\n"
        "  -o, --output FILE results file (same as --set run.output=FILE)\n"
        "  --sweep key=v1,v2 run every value of key in one job, one results group per point\n"
        "                    (repeatable: the Cartesian product, or zipped with sweep.mode: zip)\n"
        "  --print-config    print the resolved configuration with every key documented, then "
        "exit\n"
        "  --version         print the version\n"
        "  -h, --help        this help\n"
        "Run under mpirun or srun with 1 + prefill.instances*prefill.tp + "
        "decode.instances*decode.tp ranks.\n");
}

/* The process's rank before MPI is up, from the launcher's environment (-1 when unknown). */
static int launcher_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
                                       "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL) return atoi(v);
    }
    return -1;
}

/*
 * UCX reads its environment when MPI starts, so the data-plane keys that map
 * onto UCX settings are applied before MPI_Init. A config that does not load
 * here is reported properly by rank 0 after MPI_Init.
 */
static void apply_ucx_env(const char *path, const char *const *ov, int nov)
{
    mixl_run_config_t cfg;
    char err[MIXL_CFG_ERR_MAX];
    if (mixl_run_config_load(&cfg, path, ov, nov, err, sizeof(err)) != MIXL_OK) return;
    if (cfg.data_plane.rma_interface[0] != '\0')
        setenv("UCX_NET_DEVICES", cfg.data_plane.rma_interface, 0);
    if (cfg.data_plane.mtu != 0) {
        static const char *const mtu_vars[] = {"UCX_RC_VERBS_PATH_MTU", "UCX_RC_MLX5_PATH_MTU",
                                               "UCX_DC_MLX5_PATH_MTU", "UCX_UD_VERBS_PATH_MTU",
                                               "UCX_UD_MLX5_PATH_MTU"};
        char val[16];
        snprintf(val, sizeof(val), "%lld", (long long)cfg.data_plane.mtu);
        for (size_t i = 0; i < sizeof(mtu_vars) / sizeof(mtu_vars[0]); i++)
            setenv(mtu_vars[i], val, 0);
    }
}

/*
 * The longest prompt of any point of the sweep (rank 0 builds each point's
 * workload; every rank gets the figure): the prefill layer buffers are set up
 * for it, so a point that only changes prompt lengths never needs new ones.
 * A point whose configuration does not load counts 0; its own preparation
 * reports the error.
 */
static uint64_t sweep_longest_prompt(const mixl_sweep_t *sw, size_t npoints, int rank,
                                     const char *path, const char **ov, int nov)
{
    uint64_t longest = 0;
    if (rank == 0) {
        static mixl_run_config_t cfg;
        char assign[MIXL_SWEEP_KEYS][MIXL_CFG_STR_MAX + MIXL_SWEEP_VALUE_MAX + 2];
        char err[MIXL_CFG_ERR_MAX];
        for (size_t p = 0; p < npoints; p++) {
            int n = nov;
            for (int k = 0; k < sw->nkeys; k++) {
                snprintf(assign[k], sizeof(assign[k]), "%s=%s", sw->key[k],
                         mixl_sweep_value(sw, p, k));
                ov[n++] = assign[k];
            }
            mixl_workload_t wl;
            memset(&wl, 0, sizeof(wl));
            if (mixl_run_config_load(&cfg, path, ov, n, err, sizeof(err)) == MIXL_OK &&
                mixl_workload_build(&cfg, &wl, err, sizeof(err)) == MIXL_OK &&
                wl.max_prompt > longest)
                longest = wl.max_prompt;
            mixl_workload_free(&wl);
        }
    }
    MPI_Bcast(&longest, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    return longest;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *ov[MAX_OVERRIDES + MIXL_SWEEP_KEYS];
    const char *sweeps[MIXL_SWEEP_KEYS];
    int nsweeps = 0;
    char outbuf[MIXL_CFG_STR_MAX + 16];
    int nov = 0, print = 0, ranks = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--set") == 0 || strcmp(a, "-s") == 0) {
            if (i + 1 >= argc || nov == MAX_OVERRIDES) {
                fprintf(stderr, "mixl-run: %s needs key=value\n", a);
                return 2;
            }
            ov[nov++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0 && nov < MAX_OVERRIDES) {
            ov[nov++] = a + 6;
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc &&
                   nov < MAX_OVERRIDES) {
            snprintf(outbuf, sizeof(outbuf), "run.output=%s", argv[++i]);
            ov[nov++] = outbuf;
        } else if (strcmp(a, "--sweep") == 0) {
            if (i + 1 >= argc || nsweeps == MIXL_SWEEP_KEYS) {
                fprintf(stderr, "mixl-run: --sweep needs key=v1,v2,... (at most %d keys)\n",
                        MIXL_SWEEP_KEYS);
                return 2;
            }
            sweeps[nsweeps++] = argv[++i];
        } else if (strcmp(a, "--print-config") == 0) {
            print = 1;
        } else if (strcmp(a, "--ranks") == 0) {
            ranks = 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("mixl-run %s\n", MIXL_VERSION_STRING);
            return 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "mixl-run: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (path == NULL) {
            path = a;
        } else {
            fprintf(stderr, "mixl-run: more than one config file (%s and %s)\n", path, a);
            return 2;
        }
    }

    if (print || ranks) {
        /* No MPI needed; under a launcher only the first rank prints. */
        mixl_run_config_t cfg;
        char err[MIXL_CFG_ERR_MAX];
        if (launcher_rank() > 0) return 0;
        if (mixl_run_config_load(&cfg, path, ov, nov, err, sizeof(err)) != MIXL_OK) {
            fprintf(stderr, "mixl-run: %s\n", err);
            return 2;
        }
        if (ranks) {
            printf("%d\n", mixl_dg_plan_ranks(&cfg));
            return 0;
        }
        printf("# mixl-run %s: resolved configuration%s%s\n", MIXL_VERSION_STRING,
               path ? " of " : " (defaults)", path ? path : "");
        mixl_cfg_print(mixl_run_config_schema(), &cfg, stdout, 1);
        return 0;
    }

    apply_ucx_env(path, ov, nov);
    /* UCX components for the one-sided data plane; threads for the embedded registry's server. */
    int provided = MPI_THREAD_SINGLE, rank;
    mixl_status_t ist = mixl_mpi_init(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (ist != MIXL_OK) {
        /* Every rank got the same answer from the same library, so all leave together. */
        if (rank == 0)
            fprintf(stderr, "mixl-run: MPI must provide MPI_THREAD_MULTIPLE (got level %d)\n",
                    provided);
        MPI_Finalize();
        return 3;
    }

    mixl_run_config_t cfg;
    mixl_dg_plan_t plan;
    mixl_workload_t wl;
    char err[MIXL_CFG_ERR_MAX] = "";
    /* Every rank reads the same sweep and reaches the same verdict; rank 0 says it. */
    static mixl_sweep_t sw;
    mixl_sweep_init(&sw);
    mixl_status_t st = path != NULL ? mixl_sweep_load_file(&sw, path, err, sizeof(err)) : MIXL_OK;
    for (int i = 0; i < nsweeps && st == MIXL_OK; i++)
        st = mixl_sweep_add_arg(&sw, sweeps[i], err, sizeof(err));
    if (st == MIXL_OK) st = mixl_sweep_check(&sw, mixl_run_config_schema(), &cfg, err, sizeof(err));
    if (st != MIXL_OK) {
        if (rank == 0) fprintf(stderr, "mixl-run: %s\n", err);
        MPI_Finalize();
        return 2;
    }
    size_t npoints = mixl_sweep_points(&sw);
    uint64_t failed = 0, longest = 0;
    if (npoints > 0) longest = sweep_longest_prompt(&sw, npoints, rank, path, ov, nov);
    mixl_dg_kept_t *kept = NULL; /* agents, windows and memory, reused by the next point if it can */
    for (size_t p = 0; p < (npoints ? npoints : 1); p++) {
        char assign[MIXL_SWEEP_KEYS][MIXL_CFG_STR_MAX + MIXL_SWEEP_VALUE_MAX + 2];
        const char *keys[MIXL_SWEEP_KEYS], *values[MIXL_SWEEP_KEYS];
        int n = nov;
        for (int k = 0; npoints && k < sw.nkeys; k++) {
            keys[k] = sw.key[k];
            values[k] = mixl_sweep_value(&sw, p, k);
            snprintf(assign[k], sizeof(assign[k]), "%s=%s", keys[k], values[k]);
            ov[n++] = assign[k];
        }
        st = mixl_dg_prepare(MPI_COMM_WORLD, path, ov, n, &cfg, &plan, &wl, err, sizeof(err));
        if (st != MIXL_OK) {
            if (rank == 0)
                fprintf(stderr, "mixl-run: %s%s\n", err,
                        npoints ? " (at a sweep point, see the line above)" : "");
            mixl_dg_kept_release(&kept);
            MPI_Finalize();
            return 2;
        }
        mixl_dg_point_t point = {.index = p,
                                 .count = npoints,
                                 .nkeys = sw.nkeys,
                                 .zip = sw.zip,
                                 .keys = keys,
                                 .values = values,
                                 .longest_prompt = longest};
        if (npoints && rank == 0) {
            printf("\n== sweep point %zu/%zu:", p + 1, npoints);
            for (int k = 0; k < sw.nkeys; k++) printf(" %s=%s", keys[k], values[k]);
            printf("\n");
            fflush(stdout);
        }
        uint64_t f = 0;
        st = mixl_dg_run_point(MPI_COMM_WORLD, &cfg, &plan, &wl, npoints ? &point : NULL,
                               npoints ? &kept : NULL, stdout, &f);
        failed += f;
        mixl_workload_free(&wl);
        if (st == MIXL_ERR_DISCONNECTED) {
            /* A rank died: the results are out; MPI_Finalize would wait for the dead rank. */
            fflush(stdout);
            fflush(stderr);
            _exit(4);
        }
        /* The next point is collective: every rank stops at the first point that failed anywhere. */
        int mine = (int)st, worst_st = mine;
        if (npoints) MPI_Allreduce(&mine, &worst_st, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (worst_st != MIXL_OK) {
            if (st == MIXL_OK) st = (mixl_status_t)worst_st;
            break;
        }
    }
    mixl_dg_kept_release(&kept);
    /* Every rank leaves with the job's outcome, not only rank 0. */
    int code = st != MIXL_OK ? 3 : (failed > 0 ? 1 : 0), worst = 0;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return worst;
}
