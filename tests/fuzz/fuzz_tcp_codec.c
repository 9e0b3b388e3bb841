/*
 * Fuzz target: the TCP handshake and frame header decoders. The input is
 * read as a handshake followed by a stream of frame headers and payloads,
 * the way a server reads a connection. Every accepted header must satisfy
 * the invariants the receive path relies on; a violation traps.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "transport/tcp/tcp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mixl_tcp_hello_t h;
    mixl_tcp_frame_t f;
    char err[200];
    size_t need = 0, pos = 0;
    const uint32_t max_frame = 1u << 16;

    if (mixl_tcp_hello_need(data, size, &need, err, sizeof(err)) == MIXL_OK) {
        if (need < MIXL_TCP_HELLO_FIXED || need > MIXL_TCP_HELLO_MAX) __builtin_trap();
        if (need <= size && mixl_tcp_hello_decode(data, need, &h, err, sizeof(err)) == MIXL_OK) {
            if (h.name_len == 0 || h.name_len >= 64 || strlen(h.name) != h.name_len)
                __builtin_trap();
            pos = need;
            mixl_fuzz_accepted++;
        }
    }
    while (size - pos >= MIXL_TCP_HDR_LEN) {
        mixl_status_t st = mixl_tcp_frame_decode(data + pos, max_frame, &f, err, sizeof(err));
        if (st != MIXL_OK) {
            if (st != MIXL_ERR_PROTOCOL && st != MIXL_ERR_TOO_LARGE) __builtin_trap();
            if (err[0] == '\0') __builtin_trap();
            break;
        }
        mixl_fuzz_accepted++;
        /* What the receive path assumes of an accepted header. */
        if (f.flags & ~MIXL_TCP_F_ALL) __builtin_trap();
        if ((f.type == MIXL_TCP_WRITE || f.type == MIXL_TCP_READ_RESP) &&
            (f.payload_len == 0 || f.payload_len > max_frame || f.length != f.payload_len))
            __builtin_trap();
        if (f.type == MIXL_TCP_NOTIF && f.payload_len > MIXL_TCP_NOTIF_MAX) __builtin_trap();
        if (f.type == MIXL_TCP_ERROR && (f.payload_len < 4 || f.payload_len > MIXL_TCP_ERROR_MAX))
            __builtin_trap();
        if ((f.type == MIXL_TCP_ACK || f.type == MIXL_TCP_CLOSE || f.type == MIXL_TCP_READ_REQ) &&
            f.payload_len != 0)
            __builtin_trap();
        uint8_t re[MIXL_TCP_HDR_LEN];
        mixl_tcp_frame_encode(&f, re);
        if (memcmp(re, data + pos, MIXL_TCP_HDR_LEN) != 0) __builtin_trap();
        pos += MIXL_TCP_HDR_LEN;
        size_t pay = f.payload_len < size - pos ? f.payload_len : size - pos;
        if (f.type == MIXL_TCP_ERROR && pay >= 4) {
            char msg[64];
            mixl_status_t es = mixl_tcp_error_decode(data + pos, pay, msg, sizeof(msg));
            if (es >= 0 || strlen(msg) >= sizeof(msg)) __builtin_trap();
        }
        pos += pay;
    }
    return 0;
}
