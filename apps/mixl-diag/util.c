/* Helpers shared by the probes: findings and bounded command capture. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

void mixl_diag_add_finding(json_t *report, const char *severity, const char *code,
                           const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *f = json_object();
    json_object_set_new(f, "severity", json_string(severity));
    json_object_set_new(f, "code", json_string(code));
    json_object_set_new(f, "message", json_string(msg));
    json_array_append_new(json_object_get(report, "findings"), f);
}

/*
 * `timeout` bounds the command (a wedged driver tool must not hang the
 * check); stderr is dropped. NULL when the command is absent or fails.
 */
char *mixl_diag_capture(const char *cmd, size_t max_bytes)
{
    char line[512];
    snprintf(line, sizeof(line), "timeout 10 %s 2>/dev/null", cmd);
    FILE *p = popen(line, "r");
    if (!p)
        return NULL;
    char *buf = malloc(max_bytes + 1);
    size_t n = buf ? fread(buf, 1, max_bytes, p) : 0;
    int status = pclose(p);
    if (!buf || status != 0 || n == 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}
