/*
 * The one-line progress display of long runs: rewritten in place (carriage
 * return) on a terminal; with mode auto nothing at all otherwise (logs, CI),
 * plain lines only when asked for (plain).
 */
#ifndef MIXL_DISAGG_PROGRESS_H
#define MIXL_DISAGG_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *out;
    int enabled, tty;
    int64_t interval_ns, next_ns;
    int drawn; /* an in-place line is on screen */
} mixl_progress_t;

/* mode: a mixl_progress_mode_t. */
void mixl_progress_init(mixl_progress_t *p, FILE *out, int mode, int64_t interval_ms);
/* Show the line when the interval has passed (or when force is set). */
void mixl_progress_update(mixl_progress_t *p, int64_t now_ns, int force, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* End the in-place line so the next output starts on a fresh one. */
void mixl_progress_end(mixl_progress_t *p);

#endif /* MIXL_DISAGG_PROGRESS_H */
