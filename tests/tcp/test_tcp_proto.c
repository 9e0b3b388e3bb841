/* The TCP wire codec: round trips and every refusal of a malformed header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "transport/tcp/tcp_proto.h"

static mixl_tcp_frame_t frame(uint8_t type, uint32_t payload, uint64_t length)
{
    mixl_tcp_frame_t f;
    memset(&f, 0, sizeof(f));
    f.type = type;
    f.payload_len = payload;
    f.length = length;
    f.req_id = 0x1122334455667788ull;
    f.region = 0xdeadbeef;
    f.offset = 0x0102030405060708ull;
    f.crc = 0xcafef00d;
    f.flags = MIXL_TCP_F_LAST;
    return f;
}

static void test_frame_round_trip(void **state)
{
    static const struct {
        uint8_t type;
        uint32_t payload;
        uint64_t length;
    } cases[] = {
        {MIXL_TCP_WRITE, 4096, 4096},    {MIXL_TCP_READ_REQ, 0, 1ull << 40},
        {MIXL_TCP_READ_RESP, 1, 1},      {MIXL_TCP_NOTIF, 48, 48},
        {MIXL_TCP_NOTIF, 0, 0},          {MIXL_TCP_ACK, 0, 0},
        {MIXL_TCP_ERROR, 200, 200},      {MIXL_TCP_CLOSE, 0, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mixl_tcp_frame_t f = frame(cases[i].type, cases[i].payload, cases[i].length), g;
        uint8_t buf[MIXL_TCP_HDR_LEN];
        char err[128];
        mixl_tcp_frame_encode(&f, buf);
        assert_int_equal(mixl_tcp_frame_decode(buf, 1u << 20, &g, err, sizeof(err)), MIXL_OK);
        assert_int_equal(g.type, f.type);
        assert_int_equal(g.flags, f.flags);
        assert_int_equal(g.payload_len, f.payload_len);
        assert_true(g.req_id == f.req_id);
        assert_int_equal(g.region, f.region);
        assert_true(g.offset == f.offset);
        assert_true(g.length == f.length);
        assert_int_equal(g.crc, f.crc);
    }
}

static void test_frame_byte_layout(void **state)
{
    /* The layout docs/tcp-protocol.md promises, byte by byte. */
    mixl_tcp_frame_t f = frame(MIXL_TCP_WRITE, 0x10, 0x10);
    uint8_t b[MIXL_TCP_HDR_LEN];
    (void)state;
    f.flags = MIXL_TCP_F_LAST | MIXL_TCP_F_CRC;
    mixl_tcp_frame_encode(&f, b);
    static const uint8_t want[MIXL_TCP_HDR_LEN] = {
        0x10, 0, 0, 0, 1, 3, 0, 0,                      /* payload_len, type, flags, reserved */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* request id */
        0xef, 0xbe, 0xad, 0xde, 0x0d, 0xf0, 0xfe, 0xca, /* region, crc */
        8, 7, 6, 5, 4, 3, 2, 1,                         /* offset */
        0x10, 0, 0, 0, 0, 0, 0, 0,                      /* length */
    };
    assert_memory_equal(b, want, sizeof(want));
}

static mixl_status_t decode_mod(mixl_tcp_frame_t f, size_t at, uint8_t value, char *err)
{
    uint8_t buf[MIXL_TCP_HDR_LEN];
    mixl_tcp_frame_t g;
    mixl_tcp_frame_encode(&f, buf);
    if (at < sizeof(buf)) buf[at] = value;
    return mixl_tcp_frame_decode(buf, 1u << 20, &g, err, 128);
}

static void test_frame_refusals(void **state)
{
    char err[128];
    (void)state;
    /* unknown type */
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, 8, 8), 4, 99, err), MIXL_ERR_PROTOCOL);
    assert_non_null(strstr(err, "type 99"));
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, 8, 8), 4, 0, err), MIXL_ERR_PROTOCOL);
    /* unknown flag, reserved bytes */
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, 8, 8), 5, 0x80, err), MIXL_ERR_PROTOCOL);
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, 8, 8), 6, 1, err), MIXL_ERR_PROTOCOL);
    /* oversize payloads */
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, (1u << 20) + 1, (1u << 20) + 1), 99, 0, err),
                     MIXL_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "exceeds"));
    assert_int_equal(decode_mod(frame(MIXL_TCP_NOTIF, 49, 49), 99, 0, err), MIXL_ERR_TOO_LARGE);
    assert_int_equal(decode_mod(frame(MIXL_TCP_ACK, 1, 1), 99, 0, err), MIXL_ERR_TOO_LARGE);
    assert_int_equal(decode_mod(frame(MIXL_TCP_READ_REQ, 5, 5), 99, 0, err), MIXL_ERR_TOO_LARGE);
    assert_int_equal(decode_mod(frame(MIXL_TCP_ERROR, 257, 257), 99, 0, err), MIXL_ERR_TOO_LARGE);
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, 0xffffffffu, 0xffffffffu), 99, 0, err),
                     MIXL_ERR_TOO_LARGE);
    /* empty data frames, short error frames */
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, 0, 0), 99, 0, err), MIXL_ERR_PROTOCOL);
    assert_int_equal(decode_mod(frame(MIXL_TCP_ERROR, 3, 3), 99, 0, err), MIXL_ERR_PROTOCOL);
    /* length field disagreeing with the payload */
    assert_int_equal(decode_mod(frame(MIXL_TCP_WRITE, 8, 9), 99, 0, err), MIXL_ERR_PROTOCOL);
    assert_non_null(strstr(err, "differs"));
    /* READ_REQ of nothing */
    assert_int_equal(decode_mod(frame(MIXL_TCP_READ_REQ, 0, 0), 99, 0, err), MIXL_ERR_PROTOCOL);
    /* CRC flag without payload */
    mixl_tcp_frame_t f = frame(MIXL_TCP_ACK, 0, 0);
    f.flags = MIXL_TCP_F_CRC;
    assert_int_equal(decode_mod(f, 99, 0, err), MIXL_ERR_PROTOCOL);
}

static size_t hello(uint8_t *buf, uint16_t version, const char *name, const char *text)
{
    mixl_tcp_hello_t h;
    memset(&h, 0, sizeof(h));
    h.version = version;
    h.caps = MIXL_TCP_CAP_CRC32C;
    h.max_frame = 1u << 20;
    h.name_len = (uint8_t)strlen(name);
    memcpy(h.name, name, h.name_len);
    h.text_len = (uint8_t)strlen(text);
    memcpy(h.text, text, h.text_len);
    return mixl_tcp_hello_encode(&h, buf);
}

static void test_hello(void **state)
{
    uint8_t buf[MIXL_TCP_HELLO_MAX];
    mixl_tcp_hello_t h;
    size_t need, len = hello(buf, 1, "prefill-0", "decode-3");
    char err[128];
    (void)state;

    assert_int_equal(len, MIXL_TCP_HELLO_FIXED + 9 + 8);
    assert_memory_equal(buf, "MIXL-TCP", 8);
    assert_int_equal(mixl_tcp_hello_need(buf, len, &need, err, sizeof(err)), MIXL_OK);
    assert_int_equal(need, len);
    assert_int_equal(mixl_tcp_hello_decode(buf, len, &h, err, sizeof(err)), MIXL_OK);
    assert_int_equal(h.version, 1);
    assert_string_equal(h.name, "prefill-0");
    assert_string_equal(h.text, "decode-3");
    assert_int_equal(h.max_frame, 1u << 20);
    assert_int_equal(h.caps, MIXL_TCP_CAP_CRC32C);

    /* A future version still decodes: the caller refuses it by number. */
    len = hello(buf, 7, "a", "b");
    assert_int_equal(mixl_tcp_hello_decode(buf, len, &h, err, sizeof(err)), MIXL_OK);
    assert_int_equal(h.version, 7);

    /* truncated */
    assert_int_equal(mixl_tcp_hello_need(buf, 10, &need, err, sizeof(err)), MIXL_ERR_PROTOCOL);
    assert_int_equal(mixl_tcp_hello_decode(buf, len - 1, &h, err, sizeof(err)), MIXL_ERR_PROTOCOL);
    /* wrong magic */
    len = hello(buf, 1, "a", "b");
    memcpy(buf, "GET / HT", 8);
    assert_int_equal(mixl_tcp_hello_decode(buf, len, &h, err, sizeof(err)), MIXL_ERR_PROTOCOL);
    assert_non_null(strstr(err, "magic"));
    /* total length disagreeing with the name and text lengths */
    len = hello(buf, 1, "a", "b");
    buf[10] = (uint8_t)(len + 1);
    assert_int_equal(mixl_tcp_hello_need(buf, len, &need, err, sizeof(err)), MIXL_ERR_PROTOCOL);
    /* empty or unprintable names */
    len = hello(buf, 1, "", "b");
    assert_int_equal(mixl_tcp_hello_decode(buf, len, &h, err, sizeof(err)), MIXL_ERR_PROTOCOL);
    len = hello(buf, 1, "a\x01", "b");
    assert_int_equal(mixl_tcp_hello_decode(buf, len, &h, err, sizeof(err)), MIXL_ERR_PROTOCOL);
}

static void test_error_payload(void **state)
{
    uint8_t buf[MIXL_TCP_ERROR_MAX];
    char msg[64];
    (void)state;
    size_t n = mixl_tcp_error_encode(MIXL_ERR_OUT_OF_RANGE, "offset 9 outside region 3", buf);
    assert_int_equal(n, 4 + strlen("offset 9 outside region 3"));
    assert_int_equal(mixl_tcp_error_decode(buf, n, msg, sizeof(msg)), MIXL_ERR_OUT_OF_RANGE);
    assert_string_equal(msg, "offset 9 outside region 3");
    /* A status that is not a MIXL error becomes a protocol error. */
    mixl_tcp_put_u32(buf, 5);
    assert_int_equal(mixl_tcp_error_decode(buf, n, msg, sizeof(msg)), MIXL_ERR_PROTOCOL);
    mixl_tcp_put_u32(buf, (uint32_t)-10000);
    assert_int_equal(mixl_tcp_error_decode(buf, n, msg, sizeof(msg)), MIXL_ERR_PROTOCOL);
    /* long message truncated to the buffer, control bytes masked */
    buf[5] = '\n';
    assert_int_equal(mixl_tcp_error_decode(buf, n, msg, 8), MIXL_ERR_PROTOCOL);
    assert_int_equal(strlen(msg), 7);
    assert_int_equal(msg[1], '?');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_round_trip), cmocka_unit_test(test_frame_byte_layout),
        cmocka_unit_test(test_frame_refusals),   cmocka_unit_test(test_hello),
        cmocka_unit_test(test_error_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
