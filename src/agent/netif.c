/*
 * Local IPv4 address selection for the TCP data plane (see netif.h).
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/netif.h"

/* Parse "a.b.c.d/n" into network and mask (host order); 0 when SPEC is not a subnet. */
static int parse_cidr(const char *spec, uint32_t *net, uint32_t *mask)
{
    char buf[64];
    const char *slash = strchr(spec, '/');
    struct in_addr a;
    char *end;
    long bits;

    if (slash == NULL || (size_t)(slash - spec) >= sizeof(buf)) return 0;
    memcpy(buf, spec, (size_t)(slash - spec));
    buf[slash - spec] = '\0';
    bits = strtol(slash + 1, &end, 10);
    if (*end != '\0' || bits < 0 || bits > 32 || inet_pton(AF_INET, buf, &a) != 1) return 0;
    *mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    *net = ntohl(a.s_addr) & *mask;
    return 1;
}

/* Does up, non-loopback IPv4 interface IFA match SPEC (name or subnet)? */
static int ifa_matches(const struct ifaddrs *ifa, const char *spec)
{
    uint32_t net, mask, ip = ntohl(((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr);

    if (parse_cidr(spec, &net, &mask)) return (ip & mask) == net;
    return strcmp(ifa->ifa_name, spec) == 0;
}

static int ifa_usable(const struct ifaddrs *ifa)
{
    return ifa->ifa_addr != NULL && ifa->ifa_addr->sa_family == AF_INET &&
           (ifa->ifa_flags & IFF_UP) && !(ifa->ifa_flags & IFF_LOOPBACK);
}

static void ifa_addr_str(const struct ifaddrs *ifa, char *addr_p)
{
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr, addr_p, INET_ADDRSTRLEN);
}

/* First usable interface matching one entry of the comma list SPECS. */
static int find_in_list(struct ifaddrs *all, const char *specs, char *addr_p)
{
    char list[512], *save = NULL;

    if (specs == NULL || specs[0] == '\0' || strlen(specs) >= sizeof(list)) return 0;
    snprintf(list, sizeof(list), "%s", specs);
    for (char *s = strtok_r(list, ",", &save); s != NULL; s = strtok_r(NULL, ",", &save))
        for (struct ifaddrs *ifa = all; ifa != NULL; ifa = ifa->ifa_next)
            if (ifa_usable(ifa) && ifa_matches(ifa, s)) {
                ifa_addr_str(ifa, addr_p);
                return 1;
            }
    return 0;
}

/*
 * Open MPI URIs look like "jobid.vpid;tcp://10.0.0.1,10.0.0.2:port". With
 * SAME_SUBNET 0 the first address that is one of ours is taken (the local
 * daemon's own URI); with 1 the first of ours on the same /24 .. /8 subnet
 * as an address of the URI (the launcher's URI, on another node).
 */
static int find_from_uri(struct ifaddrs *all, const char *uri, int same_subnet, char *addr_p)
{
    const char *p;

    if (uri == NULL) return 0;
    for (p = strstr(uri, "://"); p != NULL; p = strstr(p, "://")) {
        char host[256];
        size_t n;
        char *save = NULL;

        p += 3;
        n = strcspn(p, ":;");
        if (n >= sizeof(host)) continue;
        memcpy(host, p, n);
        host[n] = '\0';
        for (char *h = strtok_r(host, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save)) {
            struct in_addr a;
            if (inet_pton(AF_INET, h, &a) != 1) continue;
            for (struct ifaddrs *ifa = all; ifa != NULL; ifa = ifa->ifa_next) {
                uint32_t mine, theirs = ntohl(a.s_addr), mask;
                if (!ifa_usable(ifa)) continue;
                mine = ntohl(((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr.s_addr);
                mask = ifa->ifa_netmask != NULL
                           ? ntohl(((const struct sockaddr_in *)ifa->ifa_netmask)->sin_addr.s_addr)
                           : 0xffffffffu;
                if (same_subnet ? (mine & mask) == (theirs & mask) : mine == theirs) {
                    ifa_addr_str(ifa, addr_p);
                    return 1;
                }
            }
        }
    }
    return 0;
}

mixl_status_t mixl_netif_lookup(const char *spec, char *err, size_t err_len, char *addr_p)
{
    struct ifaddrs *all;
    size_t used = 0;

    if (getifaddrs(&all) != 0) {
        snprintf(err, err_len, "cannot list the network interfaces");
        return MIXL_ERR_NOT_FOUND;
    }
    if (find_in_list(all, spec, addr_p)) {
        freeifaddrs(all);
        return MIXL_OK;
    }
    used = (size_t)snprintf(err, err_len, "no up IPv4 interface matches '%s' (have:", spec);
    for (struct ifaddrs *ifa = all; ifa != NULL && used < err_len; ifa = ifa->ifa_next) {
        char a[INET_ADDRSTRLEN];
        if (!ifa_usable(ifa)) continue;
        ifa_addr_str(ifa, a);
        used += (size_t)snprintf(err + used, err_len - used, " %s %s", ifa->ifa_name, a);
    }
    if (used < err_len) snprintf(err + used, err_len - used, ")");
    freeifaddrs(all);
    return MIXL_ERR_NOT_FOUND;
}

mixl_status_t mixl_netif_auto(char *addr_p, const char **why_p)
{
    struct ifaddrs *all;
    const char *why = NULL;

    if (getifaddrs(&all) != 0) return MIXL_ERR_NOT_FOUND;
    if (find_from_uri(all, getenv("OMPI_MCA_orte_local_daemon_uri"), 0, addr_p))
        why = "the address of MPI's local daemon";
    else if (find_in_list(all, getenv("OMPI_MCA_oob_tcp_if_include"), addr_p))
        why = "oob_tcp_if_include";
    else if (find_in_list(all, getenv("OMPI_MCA_btl_tcp_if_include"), addr_p))
        why = "btl_tcp_if_include";
    else if (find_from_uri(all, getenv("OMPI_MCA_orte_hnp_uri"), 1, addr_p))
        why = "the subnet of mpirun's address";
    else
        for (struct ifaddrs *ifa = all; ifa != NULL && why == NULL; ifa = ifa->ifa_next)
            if (ifa_usable(ifa)) {
                ifa_addr_str(ifa, addr_p);
                why = "the first interface that is not loopback";
            }
    freeifaddrs(all);
    if (why == NULL) return MIXL_ERR_NOT_FOUND;
    *why_p = why;
    return MIXL_OK;
}
