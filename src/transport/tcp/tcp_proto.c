/* Encoding and validation of the MIXL TCP handshake and frame headers. */
#include "transport/tcp/tcp_proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static mixl_status_t proto_fail(mixl_status_t st, char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static mixl_status_t proto_fail(mixl_status_t st, char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err_len > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return st;
}

size_t mixl_tcp_hello_encode(const mixl_tcp_hello_t *h, uint8_t *buf)
{
    size_t total = MIXL_TCP_HELLO_FIXED + h->name_len + h->text_len + h->auth_len;

    memcpy(buf, MIXL_TCP_MAGIC, MIXL_TCP_MAGIC_LEN);
    mixl_tcp_put_u16(buf + 8, h->version);
    mixl_tcp_put_u16(buf + 10, (uint16_t)total);
    mixl_tcp_put_u32(buf + 12, h->caps);
    mixl_tcp_put_u32(buf + 16, h->max_frame);
    buf[20] = h->name_len;
    buf[21] = h->text_len;
    mixl_tcp_put_u16(buf + 22, h->verdict);
    memcpy(buf + MIXL_TCP_HELLO_FIXED, h->name, h->name_len);
    memcpy(buf + MIXL_TCP_HELLO_FIXED + h->name_len, h->text, h->text_len);
    memcpy(buf + MIXL_TCP_HELLO_FIXED + h->name_len + h->text_len, h->auth, h->auth_len);
    return total;
}

mixl_status_t mixl_tcp_hello_need(const uint8_t *buf, size_t len, size_t *need_p, char *err,
                                  size_t err_len)
{
    if (len < MIXL_TCP_HELLO_FIXED)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "handshake truncated: %zu of %d fixed bytes", len,
                          MIXL_TCP_HELLO_FIXED);
    if (memcmp(buf, MIXL_TCP_MAGIC, MIXL_TCP_MAGIC_LEN) != 0)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "wrong magic 0x%016llx (not a MIXL TCP peer)",
                          (unsigned long long)mixl_tcp_get_u64(buf));
    size_t total = mixl_tcp_get_u16(buf + 10);
    size_t want = MIXL_TCP_HELLO_FIXED + (size_t)buf[20] + (size_t)buf[21];
    /* What follows the text is the authentication part: none, a nonce, or a
     * nonce and a MAC. */
    if (total != want && total != want + MIXL_TCP_NONCE_LEN && total != want + MIXL_TCP_AUTH_MAX)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "handshake length %zu does not match its name and text (%zu)", total,
                          want);
    *need_p = total;
    return MIXL_OK;
}

static int name_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e) return 0;
    }
    return 1;
}

mixl_status_t mixl_tcp_hello_decode(const uint8_t *buf, size_t len, mixl_tcp_hello_t *h_p,
                                    char *err, size_t err_len)
{
    mixl_tcp_hello_t h;
    size_t need;
    mixl_status_t st = mixl_tcp_hello_need(buf, len, &need, err, err_len);

    if (st != MIXL_OK) return st;
    if (len != need)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "handshake is %zu bytes, its header says %zu", len, need);
    memset(&h, 0, sizeof(h));
    h.version = mixl_tcp_get_u16(buf + 8);
    h.caps = mixl_tcp_get_u32(buf + 12);
    h.max_frame = mixl_tcp_get_u32(buf + 16);
    h.name_len = buf[20];
    h.text_len = buf[21];
    h.verdict = mixl_tcp_get_u16(buf + 22);
    memcpy(h.name, buf + MIXL_TCP_HELLO_FIXED, h.name_len);
    memcpy(h.text, buf + MIXL_TCP_HELLO_FIXED + h.name_len, h.text_len);
    h.auth_len = (uint8_t)(need - MIXL_TCP_HELLO_FIXED - h.name_len - h.text_len);
    memcpy(h.auth, buf + MIXL_TCP_HELLO_FIXED + h.name_len + h.text_len, h.auth_len);
    /* Only the version and length fields are frozen across versions; the
     * rest is judged by the caller once the versions agree. */
    if (h.name_len == 0 || h.name_len >= 64 || !name_ok(h.name, h.name_len))
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "handshake agent name is empty, longer than 63 bytes or not printable "
                          "(length %u)",
                          h.name_len);
    if (h.auth_len > 0 && !(h.caps & MIXL_TCP_CAP_AUTH))
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "handshake carries %u authentication bytes without the AUTH capability",
                          h.auth_len);
    if (h.verdict > MIXL_TCP_HELLO_AUTH)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len, "handshake verdict %u unknown",
                          h.verdict);
    *h_p = h;
    return MIXL_OK;
}

void mixl_tcp_frame_encode(const mixl_tcp_frame_t *f, uint8_t buf[MIXL_TCP_HDR_LEN])
{
    mixl_tcp_put_u32(buf + 0, f->payload_len);
    buf[4] = f->type;
    buf[5] = f->flags;
    mixl_tcp_put_u16(buf + 6, 0);
    mixl_tcp_put_u64(buf + 8, f->req_id);
    mixl_tcp_put_u32(buf + 16, f->region);
    mixl_tcp_put_u32(buf + 20, f->crc);
    mixl_tcp_put_u64(buf + 24, f->offset);
    mixl_tcp_put_u64(buf + 32, f->length);
}

const char *mixl_tcp_type_str(unsigned type)
{
    switch (type) {
    case MIXL_TCP_WRITE: return "WRITE";
    case MIXL_TCP_READ_REQ: return "READ_REQ";
    case MIXL_TCP_READ_RESP: return "READ_RESP";
    case MIXL_TCP_NOTIF: return "NOTIF";
    case MIXL_TCP_ACK: return "ACK";
    case MIXL_TCP_ERROR: return "ERROR";
    case MIXL_TCP_CLOSE: return "CLOSE";
    case MIXL_TCP_AUTH: return "AUTH";
    default: return "unknown";
    }
}

mixl_status_t mixl_tcp_frame_decode(const uint8_t buf[MIXL_TCP_HDR_LEN], uint32_t max_frame,
                                    mixl_tcp_frame_t *f_p, char *err, size_t err_len)
{
    mixl_tcp_frame_t f;
    uint32_t lo = 0, hi = 0; /* payload bounds for the type */
    int len_is_payload = 1;

    f.payload_len = mixl_tcp_get_u32(buf + 0);
    f.type = buf[4];
    f.flags = buf[5];
    f.req_id = mixl_tcp_get_u64(buf + 8);
    f.region = mixl_tcp_get_u32(buf + 16);
    f.crc = mixl_tcp_get_u32(buf + 20);
    f.offset = mixl_tcp_get_u64(buf + 24);
    f.length = mixl_tcp_get_u64(buf + 32);

    if (mixl_tcp_get_u16(buf + 6) != 0)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "frame header reserved bytes are 0x%04x, must be 0",
                          mixl_tcp_get_u16(buf + 6));
    if (f.flags & ~MIXL_TCP_F_ALL)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len, "frame flags 0x%02x unknown",
                          f.flags);
    switch (f.type) {
    case MIXL_TCP_WRITE:
    case MIXL_TCP_READ_RESP: lo = 1; hi = max_frame; break;
    case MIXL_TCP_READ_REQ: len_is_payload = 0; break;
    case MIXL_TCP_NOTIF: hi = MIXL_TCP_NOTIF_MAX; break;
    case MIXL_TCP_ACK:
    case MIXL_TCP_CLOSE: break;
    case MIXL_TCP_ERROR: lo = 4; hi = MIXL_TCP_ERROR_MAX; break;
    case MIXL_TCP_AUTH: lo = hi = MIXL_TCP_MAC_LEN; break;
    default:
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len, "frame type %u unknown", f.type);
    }
    if (f.payload_len > hi)
        return proto_fail(MIXL_ERR_TOO_LARGE, err, err_len,
                          "frame payload of %u bytes exceeds the limit of %u", f.payload_len,
                          hi);
    if (f.payload_len < lo)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "frame payload of %u bytes is below the minimum of %u",
                          f.payload_len, lo);
    if (len_is_payload && f.length != f.payload_len)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "frame length field %llu differs from its payload length %u",
                          (unsigned long long)f.length, f.payload_len);
    if (!len_is_payload && f.length == 0)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len, "READ_REQ asks for 0 bytes");
    if ((f.flags & MIXL_TCP_F_CRC) && f.payload_len == 0 && f.type != MIXL_TCP_READ_REQ)
        return proto_fail(MIXL_ERR_PROTOCOL, err, err_len,
                          "frame %s carries a CRC but no payload",
                          mixl_tcp_type_str(f.type));
    *f_p = f;
    return MIXL_OK;
}

size_t mixl_tcp_error_encode(mixl_status_t status, const char *msg, uint8_t *buf)
{
    size_t n = strlen(msg);

    if (n > MIXL_TCP_ERROR_MAX - 4) n = MIXL_TCP_ERROR_MAX - 4;
    mixl_tcp_put_u32(buf, (uint32_t)(int32_t)status);
    memcpy(buf + 4, msg, n);
    return 4 + n;
}

mixl_status_t mixl_tcp_error_decode(const uint8_t *buf, size_t len, char *msg, size_t msg_len)
{
    int32_t st = (int32_t)mixl_tcp_get_u32(buf);
    size_t n = len - 4;

    if (n >= msg_len) n = msg_len - 1;
    for (size_t i = 0; i < n; i++) {
        char c = (char)buf[4 + i];
        msg[i] = (c >= 0x20 && c <= 0x7e) ? c : '?';
    }
    msg[n] = '\0';
    if (st >= 0 || st < MIXL_ERR_AUTH) return MIXL_ERR_PROTOCOL;
    return (mixl_status_t)st;
}
