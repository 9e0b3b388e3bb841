/*
 * Findings: what the collected sections mean for MIXL, in plain words,
 * each with a stable code (for scripts) and a severity:
 *   error    MIXL will not work as configured, or delivered wrong data
 *   warning  MIXL works but slower than the hardware allows
 *   info     worth knowing, nothing to fix
 * Thresholds are the seed's targets: < 100 us latency, > 100 Gbit/s bandwidth.
 */
#include <stdio.h>
#include <string.h>

#include "diag.h"

#define TARGET_LAT_US 100.0
#define TARGET_BW_GBIT 100.0

static int has_word(const char *list, const char *word)
{
    if (!list)
        return 0;
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ',' || p[-1] == '^') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* Is component excluded by a selection string ("^a,b" excludes, "a,b" includes)? */
static int excluded(const char *req, const char *comp)
{
    if (!req || !strcmp(req, "(all)"))
        return 0;
    if (req[0] == '^')
        return has_word(req, comp);
    return !has_word(req, comp);
}

static int has_ucx(const json_t *loaded)
{
    size_t i;
    json_t *x;
    json_array_foreach((json_t *)loaded, i, x)
        if (!strcmp(json_string_value(x), "ucx"))
            return 1;
    return 0;
}

static void mpi_findings(json_t *r, int have_gpu)
{
    json_t *mpi = json_object_get(r, "mpi");
    json_t *cc = json_object_get(mpi, "cuda_aware_compile");
    json_t *cr = json_object_get(mpi, "cuda_aware_runtime");
    const char *sev = have_gpu ? "warning" : "info";
    if (!json_is_true(cc))
        mixl_diag_add_finding(r, sev, "mpi_not_cuda_aware",
                              "MPI is not CUDA-aware: GPU transfers will be staged through host "
                              "memory (pinned staging windows)");
    else if (!json_is_true(cr))
        mixl_diag_add_finding(r, sev, "mpi_cuda_inactive",
                              "MPI was built CUDA-aware but reports no CUDA support at run time: "
                              "GPU transfers will be staged through host memory");

    const char *tp = json_string_value(json_object_get(mpi, "thread_provided"));
    const char *tr = json_string_value(json_object_get(mpi, "thread_requested"));
    if (tp && tr && strcmp(tp, tr))
        mixl_diag_add_finding(r, "info", "mpi_thread_level",
                              "MPI provides thread level %s, below the %s requested", tp, tr);

    json_t *pml = json_object_get(mpi, "pml");
    const char *pml_req = json_string_value(json_object_get(pml, "requested"));
    const char *pml_sel = json_string_value(json_object_get(pml, "selected"));
    const char *osc_req = json_string_value(json_object_get(json_object_get(mpi, "osc"), "requested"));
    if (excluded(pml_req, "ucx") || excluded(osc_req, "ucx"))
        mixl_diag_add_finding(r, "warning", "mpi_ucx_excluded",
                              "Open MPI is told not to use UCX (pml = %s, osc = %s; Debian's "
                              "/etc/openmpi/openmpi-mca-params.conf sets this): one-sided transfers "
                              "go through osc/rdma over BTLs; set OMPI_MCA_pml=ucx OMPI_MCA_osc=ucx "
                              "(as scripts/slurm/ and mixl_mpi_init() do) to use UCX",
                              pml_req ? pml_req : "?", osc_req ? osc_req : "?");
    else if (!has_ucx(json_object_get(json_object_get(mpi, "osc"), "loaded")))
        mixl_diag_add_finding(r, "warning", "mpi_osc_not_ucx",
                              "osc/ucx is not loaded (osc = %s): one-sided transfers use another "
                              "osc component; without an mlx device Open MPI 4.1 needs "
                              "--mca opal_common_ucx_tls any --mca opal_common_ucx_devices any",
                              osc_req ? osc_req : "?");
    else if (pml_sel && strcmp(pml_sel, "ucx"))
        mixl_diag_add_finding(r, "warning", "mpi_pml_not_ucx",
                              "the point-to-point layer is pml/%s, not ucx: without an mlx device "
                              "Open MPI 4.1 needs --mca opal_common_ucx_tls any --mca "
                              "opal_common_ucx_devices any to use UCX", pml_sel);
}

static void device_findings(json_t *r, int have_gpu)
{
    json_t *devs = json_object_get(json_object_get(r, "rdma"), "devices");
    size_t i, j;
    json_t *dev, *port;
    int active = 0, ports = 0;
    json_array_foreach(devs, i, dev) {
        json_array_foreach(json_object_get(dev, "ports"), j, port) {
            const char *st = json_string_value(json_object_get(port, "state"));
            ports++;
            if (st && !strcmp(st, "ACTIVE"))
                active++;
            else
                mixl_diag_add_finding(r, "warning", "rdma_port_down",
                                      "RDMA device %s port %lld is %s: it carries no traffic",
                                      json_string_value(json_object_get(dev, "name")),
                                      json_integer_value(json_object_get(port, "port")),
                                      st ? st : "in an unknown state");
        }
    }
    if (json_array_size(devs) == 0)
        mixl_diag_add_finding(r, "warning", "no_rdma_device",
                              "no RDMA device: inter-node transfers will use TCP");
    else if (ports > 0 && active == 0)
        mixl_diag_add_finding(r, "warning", "no_active_rdma_port",
                              "no RDMA port is ACTIVE: inter-node transfers will use TCP");

    if (!have_gpu)
        mixl_diag_add_finding(r, "info", "no_gpu",
                              "no GPU: MIXL will move host memory only");

    json_t *tls = json_object_get(json_object_get(r, "ucx"), "transports");
    if (json_is_array(tls)) {
        int cuda_tl = 0;
        json_t *t;
        json_array_foreach(tls, i, t) {
            const char *n = json_string_value(json_object_get(t, "transport"));
            if (n && !strncmp(n, "cuda", 4))
                cuda_tl = 1;
        }
        if (have_gpu && !cuda_tl)
            mixl_diag_add_finding(r, "warning", "ucx_no_cuda",
                                  "UCX has no CUDA transport (cuda_copy/cuda_ipc): it was built "
                                  "without CUDA, so device memory cannot go through UCX directly");
    }
}

static void registry_findings(json_t *r)
{
    json_t *mpi = json_object_get(json_object_get(r, "registry"), "mpi");
    if (json_is_false(json_object_get(mpi, "checked")))
        mixl_diag_add_finding(r, "warning", "registry_mpi_thread_level",
                              "the embedded MPI registry needs MPI_THREAD_MULTIPLE, which this MPI "
                              "did not provide: runs must use an etcd registry");
    else if (json_is_false(json_object_get(mpi, "reachable")))
        mixl_diag_add_finding(r, "error", "registry_mpi_failed",
                              "the embedded MPI registry did not serve rank %lld from rank 0 (%s): "
                              "metadata exchange through it will fail",
                              json_integer_value(json_object_get(mpi, "client_rank")),
                              json_string_value(json_object_get(mpi, "error")));

    json_t *etcd = json_object_get(json_object_get(r, "registry"), "etcd");
    if (!json_is_true(json_object_get(etcd, "checked")))
        return;
    const char *ep = json_string_value(json_object_get(etcd, "endpoint"));
    json_t *client = json_object_get(etcd, "mixl_client");
    const char *cst = json_string_value(json_object_get(client, "status"));
    if (!json_is_true(json_object_get(etcd, "reachable")))
        mixl_diag_add_finding(r, "error", "registry_unreachable",
                              "etcd registry %s is unreachable (%s): runs configured for etcd will "
                              "fail; use the embedded MPI registry or start etcd",
                              ep, json_string_value(json_object_get(etcd, "error")));
    else if (!json_is_true(json_object_get(etcd, "healthy")))
        mixl_diag_add_finding(r, "error", "registry_unhealthy",
                              "%s answered HTTP %lld but not as a healthy etcd", ep,
                              json_integer_value(json_object_get(etcd, "http_status")));
    else if (cst && strcmp(cst, "ok"))
        mixl_diag_add_finding(r, "error", "registry_client_failed",
                              "etcd at %s is healthy but MIXL's etcd client failed (%s%s%s)", ep,
                              cst, json_object_get(client, "error") ? ": " : "",
                              json_string_value(json_object_get(client, "error")) ?: "");
}

static void selftest_findings(json_t *r)
{
    size_t i;
    json_t *t;
    json_t *alloc_win = NULL, *create_win = NULL;
    json_array_foreach(json_object_get(r, "selftest"), i, t) {
        const char *win = json_string_value(json_object_get(t, "window"));
        const char *backend = json_string_value(json_object_get(t, "backend"));
        const char *detail = win ? win : backend;
        char path[96];
        snprintf(path, sizeof(path), "%s%s%s%s", json_string_value(json_object_get(t, "path")),
                 detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
        const char *st = json_string_value(json_object_get(t, "status"));
        if (!st)
            continue;
        if (!strcmp(st, "skipped")) {
            mixl_diag_add_finding(r, "info", "selftest_skipped", "%s self-test skipped: %s", path,
                                  json_string_value(json_object_get(t, "reason")));
            continue;
        }
        if (strcmp(st, "ok")) {
            const char *err = json_string_value(json_object_get(t, "error"));
            mixl_diag_add_finding(r, "error", "selftest_failed", "%s self-test %s%s%s", path, st,
                                  err ? ": " : "", err ? err : "");
            continue;
        }
        if (win && !strcmp(win, "MPI_Win_allocate"))
            alloc_win = t;
        if (win && !strcmp(win, "MPI_Win_create"))
            create_win = t;
        json_t *viol = json_object_get(t, "ordering_violations");
        if (json_integer_value(viol) > 0 || json_integer_value(json_object_get(t, "ordering_flags_lost")) > 0)
            mixl_diag_add_finding(r, "error", "rma_flush_ordering",
                                  "%s: a flag put after MPI_Win_flush of 16 MiB was seen before all "
                                  "the data in %lld of %lld rounds (%lld flags lost): with this MPI "
                                  "configuration a notification can overtake its data; use osc/ucx "
                                  "(OMPI_MCA_osc=ucx) or verify block checksums",
                                  path, json_integer_value(viol),
                                  json_integer_value(json_object_get(t, "ordering_rounds")),
                                  json_integer_value(json_object_get(t, "ordering_flags_lost")));
        if (json_is_false(json_object_get(t, "passive_target_progress")))
            mixl_diag_add_finding(r, "info", "rma_needs_target_progress",
                                  "%s: a put did not land while the target stayed out of MPI for "
                                  "2 s: one-sided operations are emulated in software here (no "
                                  "RDMA transport) and complete only while the target calls into "
                                  "MPI; MIXL's notification polling does, other code that polls "
                                  "window memory must too", path);
        const char *where = json_is_true(json_object_get(t, "same_node")) ? "same node" : "between nodes";
        /* Raw MPI names its numbers put/get, the agent write/read. */
        json_t *lv = json_object_get(t, "put_latency_us");
        json_t *bv = json_object_get(t, "put_bandwidth_gbit_s");
        if (!lv)
            lv = json_object_get(t, "write_latency_us");
        if (!bv)
            bv = json_object_get(t, "write_bandwidth_gbit_s");
        if (!lv || !bv)
            continue;
        double lat = json_real_value(lv), bw = json_real_value(bv);
        if (lat > TARGET_LAT_US)
            mixl_diag_add_finding(r, "warning", "latency_above_target",
                                  "%s write latency %.1f us (%s) is above the %.0f us target", path,
                                  lat, where, TARGET_LAT_US);
        if (bw < TARGET_BW_GBIT)
            mixl_diag_add_finding(r, "info", "bandwidth_below_target",
                                  "%s write bandwidth %.1f Gbit/s (%s) is below the %.0f Gbit/s "
                                  "target of an RDMA fabric", path, bw, where, TARGET_BW_GBIT);
    }
    /* MIXL exposes registered memory with MPI_Win_create: compare it with the best case. */
    if (alloc_win && create_win) {
        double la = json_real_value(json_object_get(alloc_win, "put_latency_us"));
        double lc = json_real_value(json_object_get(create_win, "put_latency_us"));
        double ba = json_real_value(json_object_get(alloc_win, "put_bandwidth_gbit_s"));
        double bc = json_real_value(json_object_get(create_win, "put_bandwidth_gbit_s"));
        /* A factor of 4, and at least 1 us, so that two fast paths are not flagged. */
        if ((la > 0 && lc > 4 * la && lc - la > 1.0) || (bc > 0 && ba > 4 * bc))
            mixl_diag_add_finding(r, "warning", "create_window_slow",
                                  "one-sided puts on MPI_Win_create windows (how MIXL exposes "
                                  "registered memory) take %.2f us and reach %.1f Gbit/s, against "
                                  "%.2f us and %.1f Gbit/s on MPI_Win_allocate windows: the MPI "
                                  "library handles program memory on a slower path here",
                                  lc, bc, la, ba);
    }
}

void mixl_diag_findings(mixl_diag_t *d)
{
    json_t *r = d->report;
    /* Last key, so the JSON and the table both end with the conclusions. */
    json_object_set_new(r, "findings", json_array());
    int have_gpu = json_array_size(json_object_get(json_object_get(r, "gpu"), "devices")) > 0;
    mpi_findings(r, have_gpu);
    device_findings(r, have_gpu);
    registry_findings(r);
    selftest_findings(r);
}
