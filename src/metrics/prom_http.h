/*
 * The HTTP side of the Prometheus exporter: libmicrohttpd serves the last
 * published exposition text at /metrics from its own thread. The producer
 * publishes a complete text whenever it likes (mixl-run's router: at least
 * once a second); a scrape always sees one whole publication.
 */
#ifndef MIXL_METRICS_PROM_HTTP_H
#define MIXL_METRICS_PROM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

typedef struct mixl_prom_server mixl_prom_server_t;

/*
 * Listen on bind:port (an IPv4 or IPv6 address or a host name; port 1..65535).
 * err names the address on failure (e.g. the port is taken).
 */
mixl_status_t mixl_prom_server_start(const char *bind, int port, mixl_prom_server_t **srv_p,
                                     char *err, size_t err_len);

/* Replace the served text with a copy of text[0..len). Returns the publication's number (1, 2, ...). */
mixl_status_t mixl_prom_server_publish(mixl_prom_server_t *srv, const char *text, size_t len,
                                       uint64_t *gen_p);

/* Publication number the last successful /metrics scrape was served (0: none yet). */
uint64_t mixl_prom_server_served(mixl_prom_server_t *srv);

/* Stop serving (waits for the server thread) and free. NULL is fine. */
void mixl_prom_server_stop(mixl_prom_server_t *srv);

#endif /* MIXL_METRICS_PROM_HTTP_H */
