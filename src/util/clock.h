/* Monotonic time helpers for timeouts and timelines. */
#ifndef MIXL_UTIL_CLOCK_H
#define MIXL_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mixl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Deadline timeout_ms from now; timeout_ms < 0 means never. */
static inline uint64_t mixl_deadline_ns(int timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : mixl_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

#endif /* MIXL_UTIL_CLOCK_H */
