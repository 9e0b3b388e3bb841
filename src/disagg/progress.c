/* One-line progress display; see progress.h. */
#include "disagg/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/run_config.h"

/*
 * Whether out reaches a terminal. A rank started by mpirun writes into a
 * pseudo-terminal the launcher made for it, whatever the launcher's own
 * output is; there the launcher's (the parent's) standard output decides:
 * a terminal, or a pipe or file (a log, CI), which gets no progress line.
 */
static int progress_on_terminal(FILE *out)
{
    if (!isatty(fileno(out))) return 0;
    if (getenv("OMPI_COMM_WORLD_RANK") == NULL && getenv("PMIX_RANK") == NULL) return 1;
    char link[64], target[256];
    snprintf(link, sizeof(link), "/proc/%ld/fd/1", (long)getppid());
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0) return 0;
    target[n] = '\0';
    return strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0;
}

void mixl_progress_init(mixl_progress_t *p, FILE *out, int mode, int64_t interval_ms)
{
    p->out = out;
    p->tty = progress_on_terminal(out);
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
