/*
 * The list of built-in transport backends, registered explicitly (no static
 * constructors): one line per backend, indexed by mixl_tp_id_t.
 */
#include <string.h>

#include "transport/transport.h"

extern const mixl_tp_ops_t mixl_tp_mpi_ops;
extern const mixl_tp_ops_t mixl_tp_tcp_ops;

static const mixl_tp_ops_t *const backends[MIXL_TP_MAX] = {
    [MIXL_TP_MPI] = &mixl_tp_mpi_ops,
    [MIXL_TP_TCP] = &mixl_tp_tcp_ops,
};

const mixl_tp_ops_t *mixl_tp_get(mixl_tp_id_t id)
{
    return (unsigned)id < MIXL_TP_MAX ? backends[id] : NULL;
}

const mixl_tp_ops_t *mixl_tp_find(const char *name)
{
    for (int i = 0; i < MIXL_TP_MAX; i++)
        if (backends[i] != NULL && strcmp(backends[i]->name, name) == 0) return backends[i];
    return NULL;
}

/* A single mixl_backend_t bit to its slot: bit i is slot i. */
static const mixl_tp_ops_t *backend_of(mixl_backend_t backend)
{
    for (int i = 0; i < MIXL_TP_MAX; i++)
        if ((unsigned)backend == (1u << i)) return backends[i];
    return NULL;
}

unsigned mixl_backends_available(void)
{
    unsigned mask = 0;
    for (int i = 0; i < MIXL_TP_MAX; i++)
        if (backends[i] != NULL) mask |= 1u << i;
    return mask;
}

unsigned mixl_backend_caps(mixl_backend_t backend)
{
    const mixl_tp_ops_t *ops = backend_of(backend);
    return ops != NULL ? ops->caps : 0;
}

const char *mixl_backend_name(mixl_backend_t backend)
{
    const mixl_tp_ops_t *ops = backend_of(backend);
    return ops != NULL ? ops->name : "unknown";
}

mixl_status_t mixl_tp_check_ops(const mixl_tp_ops_t *ops, mixl_errbuf_t *eb)
{
    static const struct {
        const char *name;
        size_t offset;
    } required[] = {
#define REQ_(f) {#f, offsetof(mixl_tp_ops_t, f)}
        REQ_(init), REQ_(start), REQ_(fini), REQ_(mem_register), REQ_(mem_deregister),
        REQ_(export_md), REQ_(peer_add), REQ_(peer_remove), REQ_(xfer_prepare),
        REQ_(xfer_post), REQ_(xfer_test), REQ_(xfer_release), REQ_(notif_send),
        REQ_(notif_poll), REQ_(path_report),
#undef REQ_
    };
    if (ops->size != sizeof(mixl_tp_ops_t))
        return mixl_errbuf_set(eb, MIXL_ERR_VERSION, "transport backend %s: ops table size %zu, expected %zu",
                               ops->name, ops->size, sizeof(mixl_tp_ops_t));
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        void *fn;
        memcpy(&fn, (const char *)ops + required[i].offset, sizeof(fn));
        if (fn == NULL)
            return mixl_errbuf_set(eb, MIXL_ERR_INVALID_PARAM,
                                   "transport backend %s: mandatory op %s is missing", ops->name,
                                   required[i].name);
    }
    return MIXL_OK;
}

mixl_status_t mixl_tp_notif_send_enosys(mixl_tp_t *tp, mixl_tp_peer_t *peer, const void *payload,
                                        size_t len)
{
    return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                           "transport %s: notifications to %s are not supported", tp->ops->name,
                           peer->name);
}
