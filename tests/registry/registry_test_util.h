/* Small helpers shared by the registry test programs (header-only). */
#ifndef MIXL_TESTS_REGISTRY_TEST_UTIL_H
#define MIXL_TESTS_REGISTRY_TEST_UTIL_H

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define REGTEST_SKIP 77

/*
 * Read the endpoint the etcd fixture wrote. 0 on success; REGTEST_SKIP when
 * there is no file because etcd is not installed; 1 when the fixture failed.
 */
static inline int regtest_read_endpoint(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        char skip[1024];
        const char *slash = strrchr(path, '/');
        snprintf(skip, sizeof(skip), "%.*s/skip", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (access(skip, R_OK) == 0) {
            fprintf(stderr, "SKIP: the etcd fixture could not set up (see %s)\n", skip);
            return REGTEST_SKIP;
        }
        if (access("/usr/bin/etcd", X_OK) != 0) {
            fprintf(stderr, "SKIP: etcd is not installed (no /usr/bin/etcd)\n");
            return REGTEST_SKIP;
        }
        fprintf(stderr, "FAIL: etcd is installed but the fixture wrote no endpoint file %s\n", path);
        return 1;
    }
    if (fgets(buf, (int)len, f) == NULL) buf[0] = '\0';
    fclose(f);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = '\0';
    if (n == 0) {
        fprintf(stderr, "FAIL: endpoint file %s is empty\n", path);
        return 1;
    }
    return 0;
}

/*
 * When the fixture serves TLS (<dir of endpoint file>/tls/ca.crt exists), fill the paths of
 * its CA and client certificate; returns 1 then, 0 for a plain-http fixture.
 */
typedef struct {
    char ca[1024], cert[1024], key[1024];
} regtest_tls_t;

static inline int regtest_tls(const char *endpoint_file, regtest_tls_t *t)
{
    const char *slash = strrchr(endpoint_file, '/');
    int n = slash ? (int)(slash - endpoint_file) : 1;
    const char *dir = slash ? endpoint_file : ".";

    snprintf(t->ca, sizeof(t->ca), "%.*s/tls/ca.crt", n, dir);
    snprintf(t->cert, sizeof(t->cert), "%.*s/tls/client.crt", n, dir);
    snprintf(t->key, sizeof(t->key), "%.*s/tls/client.key", n, dir);
    return access(t->ca, R_OK) == 0;
}

#endif /* MIXL_TESTS_REGISTRY_TEST_UTIL_H */
