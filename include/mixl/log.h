/*
 * Where MIXL's log lines go. By default each line is written to stderr,
 * prefixed with "mixl <level>" and the process tag; the level comes from the
 * environment variable MIXL_LOG_LEVEL (error, warn, notice, info, debug;
 * default notice). An embedding program can route the lines instead.
 */
#ifndef MIXL_LOG_H
#define MIXL_LOG_H

#include <mixl/export.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MIXL_LOG_ERROR = 0,
    MIXL_LOG_WARN = 1,
    MIXL_LOG_NOTICE = 2, /* once-per-run facts a user must see (data path chosen) */
    MIXL_LOG_INFO = 3,
    MIXL_LOG_DEBUG = 4,
} mixl_log_level_t;

/*
 * Receives one message (no prefix, no newline) at a level MIXL_LOG_LEVEL
 * lets through. Called from whichever thread logs, library progress threads
 * included, never from the transfer post/poll path; it must be thread-safe,
 * return promptly and not call into MIXL. The message is valid during the
 * call only.
 */
typedef void (*mixl_log_handler_t)(mixl_log_level_t level, const char *msg, void *arg);

/*
 * Route every later log line to handler (with arg); NULL restores stderr.
 * Local, thread-safe: a line being logged concurrently goes to the old or
 * the new handler, whole. Set it before creating agents or registries.
 */
MIXL_EXPORT void mixl_log_set_handler(mixl_log_handler_t handler, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_LOG_H */
