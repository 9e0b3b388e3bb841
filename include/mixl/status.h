/*
 * MIXL status codes.
 *
 * 0 is success, 1 means "still in progress", negative values are errors.
 * The list is append-only: a value, once released, keeps its meaning.
 * Every code has a constant message; mixl_status_str() never returns NULL.
 */
#ifndef MIXL_STATUS_H
#define MIXL_STATUS_H

#include <mixl/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message) -- the single source of codes and messages. */
#define MIXL_STATUS_MAP(X)                                                        \
    X(MIXL_OK,                    0, "success")                                   \
    X(MIXL_IN_PROGRESS,           1, "operation in progress")                     \
    X(MIXL_ERR_INVALID_PARAM,    -1, "invalid parameter")                         \
    X(MIXL_ERR_NO_MEMORY,        -2, "out of memory")                             \
    X(MIXL_ERR_NOT_FOUND,        -3, "not found")                                 \
    X(MIXL_ERR_NOT_SUPPORTED,    -4, "operation not supported")                   \
    X(MIXL_ERR_TIMED_OUT,        -5, "timed out")                                 \
    X(MIXL_ERR_OUT_OF_RANGE,     -6, "descriptor outside the registered region")  \
    X(MIXL_ERR_NOT_REGISTERED,   -7, "memory not registered")                     \
    X(MIXL_ERR_MISMATCH,         -8, "descriptor lists do not match")             \
    X(MIXL_ERR_UNKNOWN_PEER,     -9, "unknown peer")                              \
    X(MIXL_ERR_BAD_STATE,       -10, "object in the wrong state for this call")   \
    X(MIXL_ERR_BUSY,            -11, "resource busy")                             \
    X(MIXL_ERR_BACKEND,         -12, "transport backend failure")                 \
    X(MIXL_ERR_DISCONNECTED,    -13, "remote peer disconnected")                  \
    X(MIXL_ERR_BAD_METADATA,    -14, "malformed metadata")                        \
    X(MIXL_ERR_VERSION,         -15, "incompatible version")                      \
    X(MIXL_ERR_CONFIG,          -16, "invalid configuration")                     \
    X(MIXL_ERR_IO,              -17, "I/O error")                                 \
    X(MIXL_ERR_REGISTRY,        -18, "registry failure")                          \
    X(MIXL_ERR_TOO_LARGE,       -19, "value too large")                           \
    X(MIXL_ERR_CANCELED,        -20, "operation canceled")                        \
    X(MIXL_ERR_CHECKSUM,        -21, "checksum mismatch")                         \
    X(MIXL_ERR_PROTOCOL,        -22, "protocol error")                            \
    X(MIXL_ERR_EXISTS,          -23, "already exists")                            \
    X(MIXL_ERR_UNREACHABLE,     -24, "peer or service unreachable")               \
    X(MIXL_ERR_NO_RESOURCE,     -25, "resource exhausted")                        \
    X(MIXL_ERR_AUTH,            -26, "authentication failed")

typedef enum {
#define MIXL_STATUS_ENUM_(name, value, msg) name = value,
    MIXL_STATUS_MAP(MIXL_STATUS_ENUM_)
#undef MIXL_STATUS_ENUM_
} mixl_status_t;

/* Constant message for a status; unknown values give "unknown status". Thread-safe. */
MIXL_EXPORT const char *mixl_status_str(mixl_status_t status);

/* Symbolic name ("MIXL_ERR_TIMED_OUT") for a status. Thread-safe. */
MIXL_EXPORT const char *mixl_status_name(mixl_status_t status);

/*
 * Errors have one channel per scope. A call on a handle records its failure
 * on the handle (mixl_agent_last_error, mixl_registry_last_error,
 * mixl_md_store_last_error). A call with no handle to carry it --
 * mixl_agent_create, mixl_metadata_decode, mixl_mem_alloc_mpi -- records it
 * for the calling thread: mixl_last_error() returns that message ("" when
 * the thread's latest such call succeeded). Local, thread-safe; the string
 * belongs to the calling thread and stays valid until its next such call.
 */
MIXL_EXPORT const char *mixl_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* MIXL_STATUS_H */
