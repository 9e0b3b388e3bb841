/*
 * Which local IPv4 address the TCP data plane listens on and publishes when
 * peers live on other nodes: never 127.0.0.1 to a remote peer, never a host
 * name that may not resolve there.
 */
#ifndef MIXL_AGENT_NETIF_H
#define MIXL_AGENT_NETIF_H

#include <stddef.h>

#include <mixl/status.h>

/*
 * The address of the interface SPEC names: an interface name (eth0) or an
 * IPv4 subnet (10.1.0.0/16). Writes a dotted address into addr_p (at least
 * 16 bytes). MIXL_ERR_NOT_FOUND, with the interfaces seen in err, when no
 * up interface matches.
 */
mixl_status_t mixl_netif_lookup(const char *spec, char *err, size_t err_len, char *addr_p);

/*
 * The address MPI's own out-of-band channel uses on this node, found in this
 * order: the local daemon's URI (Open MPI), oob_tcp_if_include, btl_tcp_if_include,
 * the interface whose subnet holds the launcher's address (orte_hnp_uri), then the
 * first up interface that is not loopback. Writes the address into addr_p and
 * which rule found it into why_p (a constant string). MIXL_ERR_NOT_FOUND when
 * the node has no IPv4 interface besides loopback.
 */
mixl_status_t mixl_netif_auto(char *addr_p, const char **why_p);

#endif /* MIXL_AGENT_NETIF_H */
