/*
 * mixl-diag internals: each probe adds one section to a JSON report (the
 * single source for both the --json output and the table), and the
 * findings pass turns the report into plain-language conclusions.
 *
 * Probes run on rank 0 only unless noted; the transport self-tests are
 * collective over MPI_COMM_WORLD. No probe fails the program: what cannot be
 * determined is reported as such (JSON null or a "none"/"unknown" string).
 */
#ifndef MIXL_DIAG_H
#define MIXL_DIAG_H

#include <jansson.h>
#include <mpi.h>

typedef struct {
    int rank;
    int size;
    int nodes;                 /* distinct hosts in MPI_COMM_WORLD */
    int thread_requested;      /* MPI_THREAD_* asked of MPI_Init_thread */
    int thread_provided;
    const char *etcd_url;      /* --etcd, or NULL */
    int registry_timeout_ms;
    double selftest_budget_s;  /* time allowed to each self-test loop */
    json_t *report;            /* rank 0: the whole report */
} mixl_diag_t;

/* MPI library, version, thread level, CUDA awareness, pml/osc/btl components. */
void mixl_diag_probe_mpi(mixl_diag_t *d);
/* UCX library version (libucp) and the transports `ucx_info -d` lists. */
void mixl_diag_probe_ucx(mixl_diag_t *d);
/* GPUs through the CUDA runtime, or none when built without CUDA. */
void mixl_diag_probe_gpu(mixl_diag_t *d);
/* RDMA devices and port states from /sys/class/infiniband. */
void mixl_diag_probe_rdma(mixl_diag_t *d);
/* etcd (--etcd): /health with libcurl, then MIXL's etcd client. Rank 0 only. */
void mixl_diag_probe_registry(mixl_diag_t *d);
/* Collective: the embedded MPI registry, round trips from the last rank to rank 0. */
void mixl_diag_probe_registry_mpi(mixl_diag_t *d);
/* Collective: one-sided put/get + flush latency and bandwidth between ranks 0 and 1. */
void mixl_diag_selftest_rma(mixl_diag_t *d);
/* Collective: the same through the MIXL agent API (metadata, requests, notifications). */
void mixl_diag_selftest_agent(mixl_diag_t *d);
/* Collective: whether ranks 0 and 1 share a node (MPI_COMM_TYPE_SHARED). */
int mixl_diag_same_node_0_1(void);
/* Derive the findings array from the collected sections. */
void mixl_diag_findings(mixl_diag_t *d);
/* Print the report as a readable table on stdout. */
void mixl_diag_print_table(const json_t *report);

/* Append a finding: severity "error", "warning" or "info"; code is stable. */
void mixl_diag_add_finding(json_t *report, const char *severity, const char *code,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Run a shell command (bounded by `timeout`) and return its stdout, or NULL. */
char *mixl_diag_capture(const char *cmd, size_t max_bytes);

#endif /* MIXL_DIAG_H */
