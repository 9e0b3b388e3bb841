/* Library logging to stderr; see log.h. */
#include "util/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int log_level = -1;
static char log_tag[64];
/* Logging is never on the hot path: a mutex keeps handler and arg a pair. */
static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static mixl_log_handler_t log_handler;
static void *log_handler_arg;

void mixl_log_set_handler(mixl_log_handler_t handler, void *arg)
{
    pthread_mutex_lock(&handler_lock);
    log_handler = handler;
    log_handler_arg = arg;
    pthread_mutex_unlock(&handler_lock);
}

static int log_level_from_env(void)
{
    const char *s = getenv("MIXL_LOG_LEVEL");
    if (s == NULL) return MIXL_LOG_NOTICE;
    if (!strcasecmp(s, "error")) return MIXL_LOG_ERROR;
    if (!strcasecmp(s, "warn")) return MIXL_LOG_WARN;
    if (!strcasecmp(s, "notice")) return MIXL_LOG_NOTICE;
    if (!strcasecmp(s, "info")) return MIXL_LOG_INFO;
    if (!strcasecmp(s, "debug")) return MIXL_LOG_DEBUG;
    return MIXL_LOG_NOTICE;
}

int mixl_log_enabled(mixl_log_level_t level)
{
    if (log_level < 0) log_level = log_level_from_env();
    return (int)level <= log_level;
}

void mixl_log_set_tag(const char *tag)
{
    if (tag == NULL) log_tag[0] = '\0';
    else snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

void mixl_vlog(mixl_log_level_t level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "notice", "info", "debug"};
    char line[1024];
    int n;

    if (!mixl_log_enabled(level)) return;
    pthread_mutex_lock(&handler_lock);
    mixl_log_handler_t handler = log_handler;
    void *arg = log_handler_arg;
    pthread_mutex_unlock(&handler_lock);
    if (handler != NULL) {
        vsnprintf(line, sizeof(line), fmt, ap);
        handler(level, line, arg);
        return;
    }
    n = snprintf(line, sizeof(line), "mixl %s%s%s: ", names[level], log_tag[0] ? " " : "",
                 log_tag);
    if (n < 0 || (size_t)n >= sizeof(line)) n = 0;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    /* One fputs per line so lines from ranks sharing a terminal do not interleave. */
    strncat(line, "\n", sizeof(line) - strlen(line) - 1);
    fputs(line, stderr);
}

void mixl_log(mixl_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mixl_vlog(level, fmt, ap);
    va_end(ap);
}
