/*
 * CRC32C (Castagnoli), used for notification entries, TCP frame payloads and
 * KV block checksums. Uses the SSE4.2 instruction when the CPU has it.
 */
#ifndef MIXL_UTIL_CRC32C_H
#define MIXL_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0. */
uint32_t mixl_crc32c(uint32_t crc, const void *data, size_t len);

#endif /* MIXL_UTIL_CRC32C_H */
