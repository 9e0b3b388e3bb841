/*
 * The TCP address choice (src/agent/netif.c), run inside node n1 of the
 * emulated cluster, where the interfaces are known: lo and eth0 10.199.0.11/24.
 *   test_netif   (no arguments; exits 0 when every check passed)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/netif.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "check failed: ");                                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void clear_env(void)
{
    unsetenv("OMPI_MCA_orte_local_daemon_uri");
    unsetenv("OMPI_MCA_oob_tcp_if_include");
    unsetenv("OMPI_MCA_btl_tcp_if_include");
    unsetenv("OMPI_MCA_orte_hnp_uri");
}

/* mixl_netif_auto must give ADDR by rule WHY. */
static void expect_auto(const char *addr, const char *why)
{
    char got[64] = "";
    const char *rule = "";
    mixl_status_t st = mixl_netif_auto(got, &rule);

    CHECK(st == MIXL_OK, "auto: status %d", (int)st);
    CHECK(strcmp(got, addr) == 0, "auto (%s): address %s, expected %s", why, got, addr);
    CHECK(strcmp(rule, why) == 0, "auto: rule '%s', expected '%s'", rule, why);
}

int main(void)
{
    char addr[64], err[512];

    CHECK(mixl_netif_lookup("eth0", err, sizeof(err), addr) == MIXL_OK && strcmp(addr, "10.199.0.11") == 0,
          "eth0 by name: %s", addr);
    CHECK(mixl_netif_lookup("10.199.0.0/24", err, sizeof(err), addr) == MIXL_OK &&
              strcmp(addr, "10.199.0.11") == 0,
          "eth0 by subnet: %s", addr);
    CHECK(mixl_netif_lookup("eth9,10.199.0.0/16", err, sizeof(err), addr) == MIXL_OK &&
              strcmp(addr, "10.199.0.11") == 0,
          "second entry of a list: %s", addr);
    /* Loopback is never published to a peer on another node. */
    CHECK(mixl_netif_lookup("lo", err, sizeof(err), addr) == MIXL_ERR_NOT_FOUND, "lo accepted");
    CHECK(mixl_netif_lookup("eth9", err, sizeof(err), addr) == MIXL_ERR_NOT_FOUND &&
              strstr(err, "'eth9'") != NULL && strstr(err, "eth0 10.199.0.11") != NULL,
          "unknown interface message: %s", err);
    CHECK(mixl_netif_lookup("10.1.0.0/16", err, sizeof(err), addr) == MIXL_ERR_NOT_FOUND,
          "a subnet the node is not on was accepted");

    clear_env();
    setenv("OMPI_MCA_orte_local_daemon_uri", "1.1;tcp://127.0.0.1,10.199.0.11:4000", 1);
    expect_auto("10.199.0.11", "the address of MPI's local daemon");
    clear_env();
    setenv("OMPI_MCA_oob_tcp_if_include", "10.199.0.0/24", 1);
    expect_auto("10.199.0.11", "oob_tcp_if_include");
    clear_env();
    setenv("OMPI_MCA_btl_tcp_if_include", "eth0", 1);
    expect_auto("10.199.0.11", "btl_tcp_if_include");
    clear_env();
    setenv("OMPI_MCA_orte_hnp_uri", "1.0;tcp://10.199.0.1:5000", 1);
    expect_auto("10.199.0.11", "the subnet of mpirun's address");
    clear_env();
    setenv("OMPI_MCA_orte_hnp_uri", "1.0;tcp://192.0.2.1:5000", 1); /* another network */
    expect_auto("10.199.0.11", "the first interface that is not loopback");

    if (failures == 0) printf("netif: every check passed\n");
    return failures == 0 ? 0 : 1;
}
