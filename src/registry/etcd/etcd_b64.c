/*
 * Base64 as the etcd JSON gateway wants it (standard alphabet, padded, no
 * line breaks), and the range end that turns a key into a prefix query.
 */
#include <stdlib.h>
#include <string.h>

#include "registry/etcd/etcd.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *data, size_t len)
{
    const unsigned char *in = data;
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

    if (out == NULL) return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

mixl_status_t etcd_b64_decode(const char *text, void **out_p, size_t *len_p)
{
    size_t n = strlen(text), len = 0;
    unsigned char *out;

    if (n % 4 != 0) return MIXL_ERR_PROTOCOL;
    out = malloc(n / 4 * 3 + 1);
    if (out == NULL) return MIXL_ERR_NO_MEMORY;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (text[i + j] == '=' && i + 4 == n && j >= 2) {
                v[j] = 0;
                pad++;
            } else {
                v[j] = b64_value(text[i + j]);
                if (v[j] < 0 || pad > 0) goto err_bad; /* data after padding */
            }
        }
        {
            uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
            out[len++] = (unsigned char)(w >> 16);
            if (pad < 2) out[len++] = (unsigned char)(w >> 8);
            if (pad < 1) out[len++] = (unsigned char)w;
        }
    }
    out[len] = '\0';
    *out_p = out;
    *len_p = len;
    return MIXL_OK;

err_bad:
    free(out);
    return MIXL_ERR_PROTOCOL;
}

char *etcd_prefix_end(const char *prefix, size_t *len_p)
{
    size_t n = strlen(prefix);
    char *end = malloc(n + 1);

    if (end == NULL) return NULL;
    memcpy(end, prefix, n + 1);
    /* RangeRequest: drop trailing 0xff bytes, then increment the last byte. */
    while (n > 0 && (unsigned char)end[n - 1] == 0xff) n--;
    if (n == 0) {
        end[0] = '\0'; /* "\0" means: every key >= key */
        *len_p = 1;
        return end;
    }
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    *len_p = n;
    return end;
}
