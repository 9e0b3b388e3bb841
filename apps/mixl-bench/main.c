/*
 * mixl-bench: MIXL's transfer figures next to memcpy, a raw MPI RMA loop and
 * ucx_perftest, measured in one run and one process layout, printed as a
 * table and written as CSV, JSON and HDF5 on request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include <mixl/launch.h>

#include "baselines.h"
#include "bootstrap.h"
#include "modes.h"
#include "options.h"
#include "session.h"
#include "sweep.h"
#include "output.h"
#include "util/log.h"

static void fill_meta(bench_meta_t *m, int argc, char **argv, int ranks)
{
    char line[256];
    int len = 0;
    FILE *f;
    time_t now = time(NULL);

    memset(m, 0, sizeof(*m));
    gethostname(m->host, sizeof(m->host) - 1);
    m->ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    m->ranks = ranks;
    if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                snprintf(m->cpu, sizeof(m->cpu), "%.127s", c ? c + 2 : line);
                m->cpu[strcspn(m->cpu, "\n")] = '\0';
                break;
            }
        fclose(f);
    }
    char ver[MPI_MAX_LIBRARY_VERSION_STRING];
    MPI_Get_library_version(ver, &len);
    ver[strcspn(ver, "\n,")] = '\0';
    snprintf(m->mpi, sizeof(m->mpi), "%s", ver);
    strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    size_t off = 0;
    for (int i = 0; i < argc && off < sizeof(m->cmdline); i++)
        off += (size_t)snprintf(m->cmdline + off, sizeof(m->cmdline) - off, "%s%s", i ? " " : "", argv[i]);
}

int main(int argc, char **argv)
{
    bench_opts_t opts;
    char err[256] = "";
    bench_results_t res = {0};
    bench_boot_t boot = {.ops = &bench_boot_mpi_ops};
    bench_meta_t meta;
    mixl_status_t st;
    int rc = 0;

    /* Options first: --help and bad arguments need no MPI. */
    st = bench_opts_parse(argc, argv, &opts, err, sizeof(err));
    if (st != MIXL_OK) {
        fprintf(stderr, "mixl-bench: %s\n", err);
        return 2;
    }
    if (opts.help) {
        bench_usage(stdout, argv[0]);
        return 0;
    }
    /* MIXL's MCA defaults (pml/osc ucx) unless the user chose otherwise: the baselines run on the same MPI set-up. */
    if (mixl_mpi_init(&argc, &argv, MPI_THREAD_SINGLE, NULL) != MIXL_OK) {
        fprintf(stderr, "mixl-bench: MPI start-up failed\n");
        return 1;
    }
    st = boot.ops->init(opts.timeout_ms, &boot.state);
    if (st != MIXL_OK) {
        MPI_Finalize();
        return 1;
    }
    bench_ctx_t ctx = {.opts = &opts, .boot = &boot, .res = &res, .rank = bench_boot_rank(&boot),
                       .size = bench_boot_size(&boot)};
    char tag[32];
    snprintf(tag, sizeof(tag), "rank %d", ctx.rank);
    mixl_log_set_tag(tag);
    fill_meta(&meta, argc, argv, ctx.size);
    if (ctx.size < 2) {
        if (ctx.rank == 0) fprintf(stderr, "mixl-bench: needs at least 2 ranks (mpirun -np 2)\n");
        rc = 2;
        goto out;
    }

    /* Where the TCP backend and the socket loop listen: an address other nodes reach when ranks span nodes. */
    char tcp_why[128] = "";
    if ((opts.backends & BENCH_BACKEND_TCP) || (opts.modes & BENCH_MODE_SOCKET)) {
        st = bench_tcp_bind_resolve(&ctx, opts.tcp_bind, sizeof(opts.tcp_bind), tcp_why, sizeof(tcp_why));
        if (st != MIXL_OK) {
            if (ctx.rank == 0) fprintf(stderr, "mixl-bench: TCP listen address: %s\n", tcp_why);
            rc = 1;
            goto out;
        }
    }
    /* Every configuration measured at one point before the next point (see sweep.h). */
    st = bench_run_sweep(&ctx, meta.path, sizeof(meta.path));
    if (tcp_why[0] != '\0') {
        size_t n = strlen(meta.path);
        snprintf(meta.path + n, sizeof(meta.path) - n, "%stcp listen: %s (%s)", n ? "; " : "",
                 opts.tcp_bind, tcp_why);
    }
    if (st == MIXL_OK && (opts.modes & BENCH_MODE_MODEL)) st = bench_run_model(&ctx);
    if (st != MIXL_OK) {
        fprintf(stderr, "mixl-bench: rank %d: run stopped: %s\n", ctx.rank, mixl_status_str(st));
        rc = 1;
    }
    if (ctx.rank == 0) {
        bench_results_ratios(&res);
        bench_results_sort(&res);
        if (!opts.quiet) {
            printf("# mixl-bench on %s (%s, %d CPUs), %s, %d ranks\n", meta.host, meta.cpu, meta.ncpu,
                   meta.mpi, meta.ranks);
            if (meta.path[0]) printf("# path: %s\n", meta.path);
            bench_write_table(stdout, &res);
            bench_write_targets(stdout, &res);
            fflush(stdout);
        }
        if (opts.csv[0] && bench_write_csv(opts.csv, &res) != MIXL_OK) rc = 1;
        if (opts.json[0] && bench_write_json(opts.json, &meta, &res) != MIXL_OK) rc = 1;
        if (opts.hdf5[0] && bench_write_hdf5(opts.hdf5, &meta, &res) != MIXL_OK) rc = 1;
    }
out:
    bench_results_free(&res);
    boot.ops->fini(boot.state);
    MPI_Finalize();
    return rc;
}
