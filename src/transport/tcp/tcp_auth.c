/*
 * Authentication of TCP peers: the per-job secret (from the agent's
 * parameters, a key file, or MIXL_TCP_SECRET_FILE), nonces, and the
 * HMAC-SHA256 proofs both sides exchange in the handshake
 * (docs/tcp-protocol.md, "Authentication"), with OpenSSL's libcrypto. Also
 * the rule that a non-loopback listener needs a secret.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "transport/tcp/tcp_auth.h"
#include "transport/tcp/tcp_internal.h"
#include "util/log.h"

static mixl_status_t read_secret_file(tcp_t *tcp, const char *path)
{
    mixl_errbuf_t *eb = tcp->tp->eb;
    struct stat sb;
    uint8_t buf[TCP_SECRET_MAX + 2];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return mixl_errbuf_set(eb, MIXL_ERR_CONFIG, "tcp agent %s: secret file %s: %s", tcp->name,
                               path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
        close(fd);
        return mixl_errbuf_set(eb, MIXL_ERR_CONFIG,
                               "tcp agent %s: secret file %s must be a regular file readable by "
                               "its owner only (chmod 600)",
                               tcp->name, path);
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == sizeof(buf)) break;
    }
    close(fd);
    /* A trailing newline is an editor's, not the secret's. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    if (n < TCP_SECRET_MIN || n > TCP_SECRET_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return mixl_errbuf_set(eb, MIXL_ERR_CONFIG,
                               "tcp agent %s: secret file %s holds %zu bytes, expected %d..%d",
                               tcp->name, path, n, TCP_SECRET_MIN, TCP_SECRET_MAX);
    }
    memcpy(tcp->secret, buf, n);
    tcp->secret_len = n;
    OPENSSL_cleanse(buf, sizeof(buf));
    return MIXL_OK;
}

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

mixl_status_t tcp_auth_init(tcp_t *tcp, const mixl_agent_params_t *params)
{
    mixl_errbuf_t *eb = tcp->tp->eb;
    const char *file = params->tcp_secret_file;
    const char *env = getenv("MIXL_TCP_ALLOW_UNAUTHENTICATED");
    int allow = params->tcp_allow_unauthenticated || (env != NULL && strcmp(env, "1") == 0);
    mixl_status_t st;

    if (params->tcp_secret != NULL && params->tcp_secret_len > 0) {
        if (params->tcp_secret_len < TCP_SECRET_MIN || params->tcp_secret_len > TCP_SECRET_MAX)
            return mixl_errbuf_set(eb, MIXL_ERR_INVALID_PARAM,
                                   "tcp agent %s: secret of %zu bytes, expected %d..%d",
                                   tcp->name, params->tcp_secret_len, TCP_SECRET_MIN,
                                   TCP_SECRET_MAX);
        memcpy(tcp->secret, params->tcp_secret, params->tcp_secret_len);
        tcp->secret_len = params->tcp_secret_len;
    } else {
        if (file == NULL || file[0] == '\0') file = getenv("MIXL_TCP_SECRET_FILE");
        if (file != NULL && file[0] != '\0' && (st = read_secret_file(tcp, file)) != MIXL_OK)
            return st;
    }
    if (tcp->secret_len > 0) {
        tcp->caps |= MIXL_TCP_CAP_AUTH;
        return MIXL_OK;
    }
    if (!is_loopback(tcp->bind_host) && !allow)
        return mixl_errbuf_set(eb, MIXL_ERR_CONFIG,
                               "tcp agent %s: refusing to listen on %s without a secret: anyone "
                               "who reaches the port could write into registered memory; give "
                               "data_plane.tcp.secret_file (or allow it explicitly with "
                               "data_plane.tcp.allow_unauthenticated)",
                               tcp->name, tcp->bind_host);
    if (!is_loopback(tcp->bind_host))
        mixl_warn("tcp agent %s: listening on %s WITHOUT authentication (allowed explicitly)",
                  tcp->name, tcp->bind_host);
    return MIXL_OK;
}

int tcp_auth_nonce(uint8_t nonce[MIXL_TCP_NONCE_LEN])
{
    return RAND_bytes(nonce, MIXL_TCP_NONCE_LEN) == 1;
}

static void put_name(uint8_t *msg, size_t *pos, const char *name)
{
    size_t n = strlen(name);

    msg[(*pos)++] = (uint8_t)n;
    memcpy(msg + *pos, name, n);
    *pos += n;
}

void tcp_auth_mac(const tcp_t *tcp, int role_server, const uint8_t nonce_c[MIXL_TCP_NONCE_LEN],
                  const uint8_t nonce_s[MIXL_TCP_NONCE_LEN], const char *server,
                  const char *client, uint8_t mac[MIXL_TCP_MAC_LEN])
{
    /* Distinct labels: a server's proof is never a valid client proof. */
    const char *label = role_server ? "MIXL-TCP-AUTH server" : "MIXL-TCP-AUTH client";
    uint8_t msg[32 + 2 * MIXL_TCP_NONCE_LEN + 2 * 256];
    size_t pos = strlen(label) + 1;
    unsigned int len = MIXL_TCP_MAC_LEN;

    memcpy(msg, label, pos); /* with its NUL */
    memcpy(msg + pos, nonce_c, MIXL_TCP_NONCE_LEN);
    pos += MIXL_TCP_NONCE_LEN;
    memcpy(msg + pos, nonce_s, MIXL_TCP_NONCE_LEN);
    pos += MIXL_TCP_NONCE_LEN;
    put_name(msg, &pos, server);
    put_name(msg, &pos, client);
    if (HMAC(EVP_sha256(), tcp->secret, (int)tcp->secret_len, msg, pos, mac, &len) == NULL)
        memset(mac, 0, MIXL_TCP_MAC_LEN); /* never matches a real proof */
}

int tcp_auth_equal(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, MIXL_TCP_MAC_LEN) == 0;
}

void tcp_auth_reject(tcp_conn_t *c, const char *why)
{
    uint64_t n = atomic_fetch_add(&c->tcp->auth_rejected, 1) + 1;

    mixl_warn("tcp agent %s: peer %s from %s refused by authentication: %s (%llu refused so far)",
              c->tcp->name, c->peer_name[0] ? c->peer_name : "?", c->where, why,
              (unsigned long long)n);
}

mixl_status_t mixl_tcp_secret_new(uint8_t out[MIXL_TCP_SECRET_BYTES])
{
    return RAND_bytes(out, MIXL_TCP_SECRET_BYTES) == 1 ? MIXL_OK : MIXL_ERR_BACKEND;
}
