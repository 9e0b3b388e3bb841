/* One-line progress display; see progress.h. */
#include "disagg/progress.h"

#include <stdarg.h>
#include <unistd.h>

#include "config/run_config.h"

void mixl_progress_init(mixl_progress_t *p, FILE *out, int mode, int64_t interval_ms)
{
    p->out = out;
    p->tty = isatty(fileno(out));
    /* auto: a line in place on a terminal, nothing in logs (CI output stays clean). */
    p->enabled = mode != MIXL_PROGRESS_OFF && (mode != MIXL_PROGRESS_AUTO || p->tty);
    if (mode == MIXL_PROGRESS_TTY) p->tty = 1;
    if (mode == MIXL_PROGRESS_PLAIN) p->tty = 0;
    p->interval_ns = interval_ms * 1000000;
    p->next_ns = 0;
    p->drawn = 0;
}

void mixl_progress_update(mixl_progress_t *p, int64_t now_ns, int force, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    if (!p->enabled || (!force && now_ns < p->next_ns)) return;
    p->next_ns = now_ns + p->interval_ns;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (p->tty) {
        fprintf(p->out, "\r\033[K%s", line);
        p->drawn = 1;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
}

void mixl_progress_end(mixl_progress_t *p)
{
    if (p->drawn) fputc('\n', p->out);
    p->drawn = 0;
    fflush(p->out);
}
