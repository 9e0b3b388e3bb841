/*
 * Library logging: one line per event on stderr, prefixed with the level and
 * the process's tag (set by apps to e.g. "rank 3"). Level from the
 * environment variable MIXL_LOG_LEVEL (error, warn, notice, info, debug; default notice).
 * Never called on the transfer post/poll path.
 */
#ifndef MIXL_UTIL_LOG_H
#define MIXL_UTIL_LOG_H

#include <stdarg.h>

#include <mixl/log.h> /* the levels and mixl_log_set_handler() */

int mixl_log_enabled(mixl_log_level_t level);
void mixl_log(mixl_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mixl_vlog(mixl_log_level_t level, const char *fmt, va_list ap);
/* Tag prepended to every line (copied; NULL clears it). */
void mixl_log_set_tag(const char *tag);

#define mixl_error(...) mixl_log(MIXL_LOG_ERROR, __VA_ARGS__)
#define mixl_warn(...) mixl_log(MIXL_LOG_WARN, __VA_ARGS__)
#define mixl_notice(...) mixl_log(MIXL_LOG_NOTICE, __VA_ARGS__)
#define mixl_info(...) mixl_log(MIXL_LOG_INFO, __VA_ARGS__)
#define mixl_debug(...) \
    do { if (mixl_log_enabled(MIXL_LOG_DEBUG)) mixl_log(MIXL_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif /* MIXL_UTIL_LOG_H */
