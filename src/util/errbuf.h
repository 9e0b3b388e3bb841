/*
 * First-error-wins message buffer kept on handles (agent, registry, store),
 * like curl's CURLOPT_ERRORBUFFER: the first failure's message, naming the
 * object it concerns, survives until cleared so callers can show it.
 */
#ifndef MIXL_UTIL_ERRBUF_H
#define MIXL_UTIL_ERRBUF_H

#include <stdarg.h>

#include <mixl/status.h>

#define MIXL_ERRBUF_LEN 512

typedef struct {
    char msg[MIXL_ERRBUF_LEN];
    int set;
} mixl_errbuf_t;

/*
 * Record an error (if none is recorded yet), log it once at error level, and
 * return status so callers can write `return mixl_errbuf_set(&eb, st, ...)`.
 */
mixl_status_t mixl_errbuf_set(mixl_errbuf_t *eb, mixl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* As mixl_errbuf_set() but without logging (for expected, caller-handled errors). */
mixl_status_t mixl_errbuf_set_quiet(mixl_errbuf_t *eb, mixl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void mixl_errbuf_clear(mixl_errbuf_t *eb);
/*
 * The calling thread's error, for calls with no handle to carry one
 * (mixl_agent_create, mixl_metadata_decode, mixl_mem_alloc_mpi); read with
 * mixl_last_error(). Each such call clears it on entry; the latest failure
 * replaces it. Logged once unless quiet.
 */
mixl_status_t mixl_thread_error_set(int quiet, mixl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
mixl_status_t mixl_thread_error_vset(int quiet, mixl_status_t status, const char *fmt, va_list ap);
void mixl_thread_error_clear(void);
/* Hand a handle's recorded message to the thread (a create that fails frees its handle). */
void mixl_thread_error_keep(const mixl_errbuf_t *eb);
const char *mixl_errbuf_get(const mixl_errbuf_t *eb);

#endif /* MIXL_UTIL_ERRBUF_H */
