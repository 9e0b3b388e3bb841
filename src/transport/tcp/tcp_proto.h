/*
 * The MIXL TCP wire format (docs/tcp-protocol.md): the handshake message and
 * the 40-byte frame header, encoded and decoded byte by byte in little-endian
 * order. Pure functions with no I/O, so the fuzz targets and the unit tests
 * exercise exactly what the server and the client run.
 */
#ifndef MIXL_TCP_PROTO_H
#define MIXL_TCP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

#define MIXL_TCP_MAGIC "MIXL-TCP" /* 8 bytes, no terminating NUL on the wire */
#define MIXL_TCP_MAGIC_LEN 8
#define MIXL_TCP_VERSION 1

/* Handshake: fixed part, then name[name_len], text[text_len], then the
 * authentication part (0, 32 or 64 bytes; see MIXL_TCP_CAP_AUTH). */
#define MIXL_TCP_HELLO_FIXED 24
#define MIXL_TCP_NONCE_LEN 32
#define MIXL_TCP_MAC_LEN 32 /* HMAC-SHA256 */
#define MIXL_TCP_AUTH_MAX (MIXL_TCP_NONCE_LEN + MIXL_TCP_MAC_LEN)
#define MIXL_TCP_HELLO_MAX (MIXL_TCP_HELLO_FIXED + 255 + 255 + MIXL_TCP_AUTH_MAX)

/* Capability bits exchanged in the handshake. */
#define MIXL_TCP_CAP_CRC32C (1u << 0) /* the sender may set MIXL_TCP_F_CRC */
/* Challenge-response with a shared secret: a request carries the client's
 * nonce (32 bytes), an accepting reply the server's nonce and its MAC (64);
 * the client then proves itself with an AUTH frame before any other frame. */
#define MIXL_TCP_CAP_AUTH (1u << 1)

/* Verdict of a handshake reply. */
typedef enum {
    MIXL_TCP_HELLO_ACCEPT = 0,
    MIXL_TCP_HELLO_BAD_VERSION = 1,
    MIXL_TCP_HELLO_WRONG_AGENT = 2,
    MIXL_TCP_HELLO_MALFORMED = 3,
    MIXL_TCP_HELLO_AUTH = 4, /* authentication required (the server has a secret) */
} mixl_tcp_verdict_t;

typedef struct {
    uint16_t version;
    uint32_t caps;
    uint32_t max_frame; /* largest payload the sender of this message accepts */
    uint16_t verdict;   /* 0 in a request */
    uint8_t name_len;
    uint8_t text_len;
    char name[256];     /* NUL-terminated copy: the sender's agent name */
    char text[256];     /* request: the agent the client wants; reply: refusal reason */
    uint8_t auth_len;   /* 0, or with MIXL_TCP_CAP_AUTH: 32 (request), 64 (reply) */
    uint8_t auth[MIXL_TCP_AUTH_MAX]; /* request: client nonce; reply: server nonce, server MAC */
} mixl_tcp_hello_t;

/* Frame types. Client = initiator of transfers, server = their target. */
typedef enum {
    MIXL_TCP_WRITE = 1,     /* client -> server: payload lands at region+offset */
    MIXL_TCP_READ_REQ = 2,  /* client -> server: send back length bytes at region+offset */
    MIXL_TCP_READ_RESP = 3, /* server -> client: a slice of the data a READ_REQ asked for */
    MIXL_TCP_NOTIF = 4,     /* client -> server: notification payload (<= MIXL_NOTIF_MAX) */
    MIXL_TCP_ACK = 5,       /* server -> client: the request completed */
    MIXL_TCP_ERROR = 6,     /* server -> client: the request failed; payload status + text */
    MIXL_TCP_CLOSE = 7,     /* either way: orderly close, nothing follows */
    MIXL_TCP_AUTH = 8,      /* client -> server, right after the handshake: the client's MAC */
} mixl_tcp_type_t;

/* Frame flags. */
#define MIXL_TCP_F_LAST (1u << 0) /* last frame of a request: the server answers ACK/ERROR */
#define MIXL_TCP_F_CRC (1u << 1)  /* crc holds CRC32C of the payload (READ_REQ: checksum the answers) */
#define MIXL_TCP_F_ALL (MIXL_TCP_F_LAST | MIXL_TCP_F_CRC)

#define MIXL_TCP_HDR_LEN 40
/* Largest ERROR payload: 4-byte status and a message. */
#define MIXL_TCP_ERROR_MAX 256
/* Largest NOTIF payload. */
#define MIXL_TCP_NOTIF_MAX 48
/* Bounds on the negotiated data frame size. */
#define MIXL_TCP_FRAME_MIN 4096u
#define MIXL_TCP_FRAME_MAX (64u << 20)
#define MIXL_TCP_FRAME_DEFAULT (1u << 20)

typedef struct {
    uint32_t payload_len;
    uint8_t type;
    uint8_t flags;
    uint64_t req_id;
    uint32_t region;
    uint32_t crc;
    uint64_t offset;
    uint64_t length;
} mixl_tcp_frame_t;

/* Encode a hello; returns its length (<= MIXL_TCP_HELLO_MAX). */
size_t mixl_tcp_hello_encode(const mixl_tcp_hello_t *h, uint8_t *buf);

/*
 * How many bytes the hello at buf needs in total, from its first
 * MIXL_TCP_HELLO_FIXED bytes: MIXL_OK with *need_p set, MIXL_ERR_PROTOCOL for
 * a wrong magic or an impossible length (message in err).
 */
mixl_status_t mixl_tcp_hello_need(const uint8_t *buf, size_t len, size_t *need_p, char *err,
                                  size_t err_len);

/*
 * Decode a complete hello. The version is not judged here (the caller refuses
 * a mismatch naming both versions); everything else is: magic, lengths, name
 * characters, reserved bits. MIXL_ERR_PROTOCOL with err on failure.
 */
mixl_status_t mixl_tcp_hello_decode(const uint8_t *buf, size_t len, mixl_tcp_hello_t *h_p,
                                    char *err, size_t err_len);

void mixl_tcp_frame_encode(const mixl_tcp_frame_t *f, uint8_t buf[MIXL_TCP_HDR_LEN]);

/*
 * Decode and check a frame header against the negotiated max_frame: known
 * type, known flags, reserved bytes zero, payload length within the type's
 * bound, length consistent with the payload. Region and offset are checked
 * by the receiver against its own tables. MIXL_ERR_PROTOCOL or
 * MIXL_ERR_TOO_LARGE with err on failure.
 */
mixl_status_t mixl_tcp_frame_decode(const uint8_t buf[MIXL_TCP_HDR_LEN], uint32_t max_frame,
                                    mixl_tcp_frame_t *f_p, char *err, size_t err_len);

/* Name of a frame type ("WRITE", ...) or "unknown". */
const char *mixl_tcp_type_str(unsigned type);

/* Little-endian helpers, shared with the ERROR payload codec. */
static inline void mixl_tcp_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void mixl_tcp_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void mixl_tcp_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t mixl_tcp_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t mixl_tcp_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t mixl_tcp_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/*
 * ERROR payload: int32 status (a negative mixl_status_t) and message bytes.
 * Encode returns the payload length. Decode maps a status that is not a
 * MIXL error to MIXL_ERR_PROTOCOL and NUL-terminates the message into msg.
 */
size_t mixl_tcp_error_encode(mixl_status_t status, const char *msg, uint8_t *buf);
mixl_status_t mixl_tcp_error_decode(const uint8_t *buf, size_t len, char *msg, size_t msg_len);

#endif /* MIXL_TCP_PROTO_H */
