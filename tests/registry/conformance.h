/*
 * The registry conformance suite: one set of test functions that every
 * backend (local, mpi, etcd) must pass unchanged. A driver per backend
 * fills a conf_env_t and calls conf_run().
 *
 * Under MPI every rank runs the suite at the same time against the shared
 * server, on keys that carry its rank, with a barrier between tests.
 */
#ifndef MIXL_TESTS_REGISTRY_CONFORMANCE_H
#define MIXL_TESTS_REGISTRY_CONFORMANCE_H

#include <stdio.h>

#include <mixl/registry.h>

typedef struct conf_env {
    const char *backend; /* name shown in the output */
    int rank, size;      /* 0 and 1 outside MPI */
    /* Collective across ranks (no-op outside MPI). */
    void (*barrier)(struct conf_env *env);
    /* Copy rank 0's buf to every rank (no-op outside MPI). */
    void (*share)(struct conf_env *env, char *buf, size_t len);
    /* Fill params for this backend (namespace and timeouts are set by the suite). */
    void (*params)(struct conf_env *env, mixl_registry_params_t *p);
    void *user;
} conf_env_t;

/* Run every test; returns the number of failed checks (0 = pass). */
int conf_run(conf_env_t *env);

extern int conf_failures;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            conf_failures++;                                                                \
        }                                                                                   \
    } while (0)

#define CHECK_ST(expr, want)                                                                \
    do {                                                                                    \
        mixl_status_t st_ = (expr);                                                         \
        if (st_ != (want)) {                                                                \
            fprintf(stderr, "FAIL %s:%d: %s gave %s, expected %s\n", __FILE__, __LINE__,   \
                    #expr, mixl_status_name(st_), mixl_status_name(want));                  \
            conf_failures++;                                                                \
        }                                                                                   \
    } while (0)

#endif /* MIXL_TESTS_REGISTRY_CONFORMANCE_H */
