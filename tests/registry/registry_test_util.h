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

#endif /* MIXL_TESTS_REGISTRY_TEST_UTIL_H */
