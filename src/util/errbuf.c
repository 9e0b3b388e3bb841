/* First-error-wins message buffer; see errbuf.h. */
#include "util/errbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

static mixl_status_t errbuf_vset(mixl_errbuf_t *eb, int quiet, mixl_status_t status,
                                 const char *fmt, va_list ap)
{
    char msg[MIXL_ERRBUF_LEN];
    const char *why = mixl_status_str(status);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);

    /* Append " (reason)" when it fits; a cut message still names the object first. */
    if (n >= 0 && (size_t)n + strlen(why) + 4 < sizeof(msg)) {
        strcat(msg, " (");
        strcat(msg, why);
        strcat(msg, ")");
    }
    if (!quiet) mixl_error("%s", msg);
    if (eb != NULL && !eb->set) {
        memcpy(eb->msg, msg, sizeof(msg));
        eb->set = 1;
    }
    return status;
}

mixl_status_t mixl_errbuf_set(mixl_errbuf_t *eb, mixl_status_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = errbuf_vset(eb, 0, status, fmt, ap);
    va_end(ap);
    return status;
}

mixl_status_t mixl_errbuf_set_quiet(mixl_errbuf_t *eb, mixl_status_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = errbuf_vset(eb, 1, status, fmt, ap);
    va_end(ap);
    return status;
}

void mixl_errbuf_clear(mixl_errbuf_t *eb)
{
    eb->msg[0] = '\0';
    eb->set = 0;
}

const char *mixl_errbuf_get(const mixl_errbuf_t *eb)
{
    return eb->set ? eb->msg : "";
}

static _Thread_local char thread_msg[MIXL_ERRBUF_LEN];

mixl_status_t mixl_thread_error_vset(int quiet, mixl_status_t status, const char *fmt, va_list ap)
{
    mixl_errbuf_t eb = {{0}, 0};
    status = errbuf_vset(&eb, quiet, status, fmt, ap);
    memcpy(thread_msg, eb.msg, sizeof(thread_msg));
    return status;
}

mixl_status_t mixl_thread_error_set(int quiet, mixl_status_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    status = mixl_thread_error_vset(quiet, status, fmt, ap);
    va_end(ap);
    return status;
}

void mixl_thread_error_clear(void)
{
    thread_msg[0] = '\0';
}

void mixl_thread_error_keep(const mixl_errbuf_t *eb)
{
    snprintf(thread_msg, sizeof(thread_msg), "%s", mixl_errbuf_get(eb));
}

const char *mixl_last_error(void)
{
    return thread_msg;
}
