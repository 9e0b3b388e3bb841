/* The /metrics endpoint on libmicrohttpd; see prom_http.h. */
#include "metrics/prom_http.h"

#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

struct mixl_prom_server {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock; /* guards text, len, gen, served (never taken on a transfer path) */
    char *text;
    size_t len;
    uint64_t gen, served;
};

static const char content_type[] = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls)
{
    mixl_prom_server_t *srv = cls;
    struct MHD_Response *resp;
    unsigned code = MHD_HTTP_OK;
    uint64_t gen = 0;
    (void)version;
    (void)upload;
    (void)con_cls;

    if (*upload_len != 0) return MHD_NO;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "only GET and HEAD\n";
        resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") != 0) {
        static const char msg[] = "mixl-run serves /metrics\n";
        resp = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        code = MHD_HTTP_NOT_FOUND;
    } else {
        pthread_mutex_lock(&srv->lock);
        resp = MHD_create_response_from_buffer(srv->len, srv->text ? srv->text : (char *)"",
                                               MHD_RESPMEM_MUST_COPY);
        gen = srv->gen;
        pthread_mutex_unlock(&srv->lock);
        if (resp != NULL) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    }
    if (resp == NULL) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES && gen > 0) {
        pthread_mutex_lock(&srv->lock);
        if (gen > srv->served) srv->served = gen;
        pthread_mutex_unlock(&srv->lock);
    }
    return ret;
}

mixl_status_t mixl_prom_server_start(const char *bind, int port, mixl_prom_server_t **srv_p,
                                     char *err, size_t err_len)
{
    struct addrinfo hints, *ai = NULL;
    char service[16];
    mixl_prom_server_t *srv;

    if (port < 1 || port > 65535) {
        snprintf(err, err_len, "metrics.port: %d is not a TCP port", port);
        return MIXL_ERR_INVALID_PARAM;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(bind, service, &hints, &ai);
    if (rc != 0) {
        snprintf(err, err_len, "metrics.bind: cannot resolve '%s': %s", bind, gai_strerror(rc));
        return MIXL_ERR_CONFIG;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        freeaddrinfo(ai);
        return MIXL_ERR_NO_MEMORY;
    }
    pthread_mutex_init(&srv->lock, NULL);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, answer, srv,
                                   MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
                                   (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                                   MHD_OPTION_END);
    freeaddrinfo(ai);
    if (srv->daemon == NULL) {
        snprintf(err, err_len,
                 "metrics: cannot listen on %s:%d (port in use or address not local?)", bind, port);
        pthread_mutex_destroy(&srv->lock);
        free(srv);
        return MIXL_ERR_IO;
    }
    *srv_p = srv;
    return MIXL_OK;
}

mixl_status_t mixl_prom_server_publish(mixl_prom_server_t *srv, const char *text, size_t len,
                                       uint64_t *gen_p)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) return MIXL_ERR_NO_MEMORY;
    memcpy(copy, text, len);
    copy[len] = '\0';
    pthread_mutex_lock(&srv->lock);
    char *old = srv->text;
    srv->text = copy;
    srv->len = len;
    uint64_t gen = ++srv->gen;
    pthread_mutex_unlock(&srv->lock);
    free(old);
    if (gen_p != NULL) *gen_p = gen;
    return MIXL_OK;
}

uint64_t mixl_prom_server_served(mixl_prom_server_t *srv)
{
    pthread_mutex_lock(&srv->lock);
    uint64_t s = srv->served;
    pthread_mutex_unlock(&srv->lock);
    return s;
}

void mixl_prom_server_stop(mixl_prom_server_t *srv)
{
    if (srv == NULL) return;
    MHD_stop_daemon(srv->daemon);
    pthread_mutex_destroy(&srv->lock);
    free(srv->text);
    free(srv);
}
