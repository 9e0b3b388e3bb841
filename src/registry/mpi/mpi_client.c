/*
 * The "mpi" registry backend: every rank is a client of a server thread on
 * the server rank (mpi_server.c), over a duplicate of the configured
 * communicator. The embedded default: no external service.
 *
 Several threads may have requests in flight on one handle (a store's
 * keep-alive while the application waits for a peer): each request takes a
 * slot, and the server answers on the tag REGMPI_TAG_RESP + slot, so each
 * caller probes only for its own answer. The sequence number weeds out late
 * answers to an earlier request on the same slot that timed out. Each
 * request is an MPI_Isend polled with MPI_Test while MPI_Improbe looks for
 * the answer, both against the operation's deadline; no call blocks in MPI.
 */
#include <stdlib.h>
#include <string.h>

#include "registry/mpi/mpi_reg.h"
#include "util/clock.h"
#include "util/coll.h"
#include "util/log.h"

typedef struct {
    MPI_Request req;
    void *buf;
} orphan_t;

typedef struct {
    MPI_Comm comm;
    int rank, nranks, server_rank;
    regmpi_server_t *server; /* on the server rank only */
    pthread_mutex_t lock;    /* guards slots, seq and orphans (never held while waiting) */
    uint8_t slot_busy[REGMPI_SLOTS];
    uint32_t seq;
    orphan_t *orphans;       /* sends of timed-out requests still owned by MPI */
    size_t orphan_count, orphan_cap;
} regmpi_client_t;

static void reap_orphans(regmpi_client_t *c)
{
    for (size_t i = c->orphan_count; i-- > 0;) {
        int flag = 0;
        MPI_Test(&c->orphans[i].req, &flag, MPI_STATUS_IGNORE);
        if (flag) {
            free(c->orphans[i].buf);
            c->orphans[i] = c->orphans[--c->orphan_count];
        }
    }
}

/* Keep a send MPI still owns; if even that fails, leak the buffer rather than free it under MPI. */
static void orphan(regmpi_client_t *c, MPI_Request req, void *buf)
{
    if (c->orphan_count == c->orphan_cap) {
        size_t cap = c->orphan_cap ? c->orphan_cap * 2 : 4;
        orphan_t *n = realloc(c->orphans, cap * sizeof(*n));
        if (n == NULL) {
            MPI_Request_free(&req);
            return;
        }
        c->orphans = n;
        c->orphan_cap = cap;
    }
    c->orphans[c->orphan_count].req = req;
    c->orphans[c->orphan_count++].buf = buf;
}

/*
 * One round trip. On MIXL_OK *resp_p and *resp_len_p hold the whole answer
 * (header first; free it). Errors of the exchange itself are recorded here;
 * the server's status is left to the caller.
 */
static mixl_status_t call(struct mixl_registry *reg, regmpi_op_t op, const char *key,
                          const void *value, size_t len, int64_t lease, int64_t arg,
                          unsigned flags, int timeout_ms, uint8_t **resp_p, size_t *resp_len_p)
{
    regmpi_client_t *c = reg->priv;
    size_t key_len = key ? strlen(key) : 0, size = sizeof(regmpi_req_t) + key_len + len;
    regmpi_req_t h = {.magic = REGMPI_MAGIC, .op = (uint16_t)op, .flags = (uint16_t)flags,
                      .key_len = (uint32_t)key_len, .val_len = len, .lease = lease, .arg = arg};
    uint64_t deadline = mixl_deadline_ns(timeout_ms);
    MPI_Request sreq = MPI_REQUEST_NULL;
    mixl_status_t status = MIXL_ERR_TIMED_OUT;
    unsigned idle = 0;
    int sent = 0, slot;
    uint8_t *buf;

    if (size > INT32_MAX) {
        return mixl_reg_error(reg, 0, MIXL_ERR_TOO_LARGE, "registry mpi: request for %s of %zu "
                              "bytes exceeds one MPI message", key ? key : "", size);
    }
    buf = malloc(size);
    if (buf == NULL) return mixl_reg_error(reg, 0, MIXL_ERR_NO_MEMORY, "registry mpi: request buffer");

    /* Take a free slot; all busy means as many threads in flight: wait for one. */
    for (;;) {
        pthread_mutex_lock(&c->lock);
        reap_orphans(c);
        for (slot = 0; slot < REGMPI_SLOTS && c->slot_busy[slot]; slot++) continue;
        if (slot < REGMPI_SLOTS) break;
        pthread_mutex_unlock(&c->lock);
        if (mixl_now_ns() >= deadline) {
            free(buf);
            return mixl_reg_error(reg, 0, MIXL_ERR_BUSY, "registry mpi: %d requests in flight on "
                                  "one handle", REGMPI_SLOTS);
        }
        regmpi_backoff(&idle);
    }
    c->slot_busy[slot] = 1;
    h.seq = ++c->seq;
    h.slot = (uint16_t)slot;
    pthread_mutex_unlock(&c->lock);
    idle = 0;

    memcpy(buf, &h, sizeof(h));
    if (key_len > 0) memcpy(buf + sizeof(h), key, key_len);
    if (len > 0) memcpy(buf + sizeof(h) + key_len, value, len);
    if (MPI_Isend(buf, (int)size, MPI_BYTE, c->server_rank, REGMPI_TAG_REQ, c->comm, &sreq) !=
        MPI_SUCCESS) {
        pthread_mutex_lock(&c->lock);
        c->slot_busy[slot] = 0;
        pthread_mutex_unlock(&c->lock);
        free(buf);
        return mixl_reg_error(reg, 0, MIXL_ERR_BACKEND, "registry mpi: MPI_Isend to server rank %d "
                              "failed", c->server_rank);
    }
    while (mixl_now_ns() < deadline) {
        MPI_Message m;
        MPI_Status st;
        int flag = 0, count = 0;
        uint8_t *resp;
        regmpi_resp_t rh;

        if (!sent) MPI_Test(&sreq, &sent, MPI_STATUS_IGNORE);
        MPI_Improbe(c->server_rank, REGMPI_TAG_RESP + slot, c->comm, &flag, &m, &st);
        if (!flag) {
            regmpi_backoff(&idle);
            continue;
        }
        MPI_Get_count(&st, MPI_BYTE, &count);
        resp = malloc(count > 0 ? (size_t)count : 1);
        if (resp == NULL) {
            uint8_t dummy;
            MPI_Mrecv(&dummy, 0, MPI_BYTE, &m, MPI_STATUS_IGNORE);
            status = MIXL_ERR_NO_MEMORY;
            break;
        }
        MPI_Mrecv(resp, count, MPI_BYTE, &m, MPI_STATUS_IGNORE);
        if ((size_t)count < sizeof(rh)) {
            free(resp);
            continue;
        }
        memcpy(&rh, resp, sizeof(rh));
        if (rh.magic != REGMPI_MAGIC || rh.seq != h.seq) { /* a late answer to an earlier request */
            free(resp);
            continue;
        }
        *resp_p = resp;
        *resp_len_p = (size_t)count;
        status = MIXL_OK;
        break;
    }
    if (!sent) MPI_Test(&sreq, &sent, MPI_STATUS_IGNORE);
    pthread_mutex_lock(&c->lock);
    c->slot_busy[slot] = 0;
    if (sent) free(buf);
    else orphan(c, sreq, buf);
    pthread_mutex_unlock(&c->lock);

    if (status == MIXL_ERR_TIMED_OUT) {
        static const char *const names[] = {"?", "put", "get", "list", "delete", "wait",
                                            "lease grant", "keepalive", "revoke", "done"};
        return mixl_reg_error(reg, 0, MIXL_ERR_UNREACHABLE, "registry mpi: no answer from server "
                              "rank %d within %d ms (%s%s%s)", c->server_rank, timeout_ms,
                              names[op <= REGMPI_DONE ? op : 0], key ? " " : "", key ? key : "");
    }
    if (status != MIXL_OK) return mixl_reg_error(reg, 0, status, "registry mpi: receiving answer");
    return MIXL_OK;
}

/* Header of an answer. */
static regmpi_resp_t resp_hdr(const uint8_t *resp)
{
    regmpi_resp_t rh;
    memcpy(&rh, resp, sizeof(rh));
    return rh;
}

static mixl_status_t server_error(struct mixl_registry *reg, mixl_status_t status, const char *what,
                                  const char *key, int64_t lease)
{
    switch (status) {
    case MIXL_ERR_NOT_FOUND:
        if (lease != 0) {
            return mixl_reg_error(reg, 1, status, "registry mpi: %s %s: lease %llx not found "
                                  "(expired or revoked)", what, key, (unsigned long long)lease);
        }
        return mixl_reg_error(reg, 1, status, "registry mpi: %s: key %s not found", what, key);
    case MIXL_ERR_TIMED_OUT:
        return mixl_reg_error(reg, 1, status, "registry mpi: key %s did not appear in time", key);
    default:
        return mixl_reg_error(reg, 0, status, "registry mpi: server refused %s %s", what, key);
    }
}

static mixl_status_t mpi_put(struct mixl_registry *reg, const char *key, const void *value,
                             size_t len, int64_t lease, int64_t *rev_p)
{
    uint8_t *resp;
    size_t rlen;
    regmpi_resp_t rh;
    mixl_status_t status;

    status = call(reg, REGMPI_PUT, key, value, len, lease, 0, 0, reg->params.op_timeout_ms, &resp,
                  &rlen);
    if (status != MIXL_OK) return status;
    rh = resp_hdr(resp);
    free(resp);
    if (rh.status != MIXL_OK) return server_error(reg, rh.status, "put", key, lease);
    *rev_p = rh.value;
    return MIXL_OK;
}

/* GET, LIST and WAIT answers: the status, then pairs. */
static mixl_status_t fetch(struct mixl_registry *reg, regmpi_op_t op, const char *what,
                           const char *key, unsigned flags, int64_t arg, int timeout_ms,
                           mixl_registry_kv_t **kvs_p, size_t *count_p)
{
    uint8_t *resp;
    size_t rlen;
    regmpi_resp_t rh;
    mixl_status_t status;

    status = call(reg, op, key, NULL, 0, 0, arg, flags, timeout_ms, &resp, &rlen);
    if (status != MIXL_OK) return status;
    rh = resp_hdr(resp);
    if (rh.status != MIXL_OK) {
        free(resp);
        return server_error(reg, rh.status, what, key, 0);
    }
    status = regmpi_kvs_unpack(resp + sizeof(rh), rlen - sizeof(rh), rh.count, kvs_p);
    free(resp);
    if (status != MIXL_OK) {
        return mixl_reg_error(reg, 0, status, "registry mpi: malformed answer to %s %s", what, key);
    }
    *count_p = rh.count;
    return MIXL_OK;
}

static mixl_status_t mpi_get(struct mixl_registry *reg, const char *key, mixl_registry_kv_t **kv_p)
{
    size_t n = 0;
    mixl_registry_kv_t *kvs = NULL;
    mixl_status_t status = fetch(reg, REGMPI_GET, "get", key, 0, 0, reg->params.op_timeout_ms,
                                 &kvs, &n);

    if (status != MIXL_OK) return status;
    if (n != 1) {
        mixl_registry_kvs_free(kvs, n);
        return mixl_reg_error(reg, 0, MIXL_ERR_PROTOCOL, "registry mpi: get %s: %zu pairs", key, n);
    }
    *kv_p = kvs;
    return MIXL_OK;
}

static mixl_status_t mpi_list(struct mixl_registry *reg, const char *prefix, unsigned flags,
                              mixl_registry_kv_t **kvs_p, size_t *count_p)
{
    return fetch(reg, REGMPI_LIST, "list", prefix, flags & MIXL_REGISTRY_KEYS_ONLY, 0,
                 reg->params.op_timeout_ms, kvs_p, count_p);
}

static mixl_status_t mpi_wait(struct mixl_registry *reg, const char *key, int timeout_ms,
                              mixl_registry_kv_t **kv_p)
{
    size_t n = 0;
    mixl_registry_kv_t *kvs = NULL;
    /* The server answers at the deadline; the client allows one op timeout more for the trip. */
    mixl_status_t status = fetch(reg, REGMPI_WAIT, "wait", key, 0, timeout_ms,
                                 timeout_ms + reg->params.op_timeout_ms, &kvs, &n);

    if (status != MIXL_OK) return status;
    if (n != 1) {
        mixl_registry_kvs_free(kvs, n);
        return mixl_reg_error(reg, 0, MIXL_ERR_PROTOCOL, "registry mpi: wait %s: %zu pairs", key, n);
    }
    *kv_p = kvs;
    return MIXL_OK;
}

/* Operations whose answer is a status and maybe one number. */
static mixl_status_t simple(struct mixl_registry *reg, regmpi_op_t op, const char *what,
                            const char *key, int64_t lease, int64_t arg, int64_t *value_p)
{
    uint8_t *resp;
    size_t rlen;
    regmpi_resp_t rh;
    mixl_status_t status;

    status = call(reg, op, key, NULL, 0, lease, arg, 0, reg->params.op_timeout_ms, &resp, &rlen);
    if (status != MIXL_OK) return status;
    rh = resp_hdr(resp);
    free(resp);
    if (rh.status != MIXL_OK) return server_error(reg, rh.status, what, key ? key : "", lease);
    if (value_p != NULL) *value_p = rh.value;
    return MIXL_OK;
}

static mixl_status_t mpi_del(struct mixl_registry *reg, const char *key)
{
    return simple(reg, REGMPI_DEL, "delete", key, 0, 0, NULL);
}

static mixl_status_t mpi_lease_grant(struct mixl_registry *reg, int ttl_s, int64_t *lease_p)
{
    return simple(reg, REGMPI_GRANT, "lease grant", NULL, 0, ttl_s, lease_p);
}

static mixl_status_t mpi_lease_keepalive(struct mixl_registry *reg, int64_t lease)
{
    return simple(reg, REGMPI_KEEPALIVE, "keepalive", NULL, lease, 0, NULL);
}

static mixl_status_t mpi_lease_revoke(struct mixl_registry *reg, int64_t lease)
{
    return simple(reg, REGMPI_REVOKE, "revoke", NULL, lease, 0, NULL);
}

static mixl_status_t mpi_init(struct mixl_registry *reg)
{
    regmpi_client_t *c = reg->priv;
    mixl_errbuf_t eb = {0};
    int initialized = 0, finalized = 0, provided = 0, all_ok = 0;
    mixl_status_t status = MIXL_OK;

    MPI_Initialized(&initialized);
    if (initialized) MPI_Finalized(&finalized);
    if (!initialized || finalized) {
        return mixl_reg_error(reg, 0, MIXL_ERR_BAD_STATE,
                              "registry mpi: MPI is not initialised (call MPI_Init_thread first)");
    }
    /* Checked before any collective so every rank fails alike instead of some hanging. */
    MPI_Query_thread(&provided);
    if (provided != MPI_THREAD_MULTIPLE) {
        return mixl_reg_error(reg, 0, MIXL_ERR_NOT_SUPPORTED,
                              "registry mpi: needs MPI_THREAD_MULTIPLE (the server and keep-alive "
                              "threads call MPI), but MPI provides thread level %d; initialise with "
                              "MPI_Init_thread(..., MPI_THREAD_MULTIPLE, &provided)", provided);
    }
    c->comm = MPI_COMM_NULL;
    int rc = MPI_Comm_dup(reg->params.comm, &c->comm);
    if (!mixl_coll_check_created(reg->params.comm, rc, c->comm != MPI_COMM_NULL,
                                 "MPI_Comm_dup of the registry"))
        return mixl_reg_error(reg, 0, MIXL_ERR_BACKEND, "registry mpi: MPI_Comm_dup failed");
    /* Made everywhere but refused here: this rank fails, after the same collectives as the rest. */
    if (rc != MPI_SUCCESS)
        status = mixl_reg_error(reg, 0, MIXL_ERR_BACKEND, "registry mpi: MPI_Comm_dup failed");
    /* Errors come back as return codes (and become statuses) instead of aborting the job. */
    MPI_Comm_set_errhandler(c->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->nranks);
    c->server_rank = reg->params.server_rank;
    pthread_mutex_init(&c->lock, NULL);
    {
        /* Every rank must name the same server; a mismatch would leave requests unanswered. */
        int mine[2] = {c->server_rank, -c->server_rank}, agreed[2];
        rc = MPI_Allreduce(mine, agreed, 2, MPI_INT, MPI_MIN, c->comm);
        if (rc != MPI_SUCCESS) mixl_coll_lost(c->comm, rc, "MPI_Allreduce of the registry's server_rank");
        if (agreed[0] != -agreed[1]) {
            status = mixl_reg_error(reg, 0, MIXL_ERR_CONFIG, "registry mpi: ranks disagree on "
                                    "server_rank (from %d to %d; this rank: %d)", agreed[0],
                                    -agreed[1], c->server_rank);
            goto err_comm;
        }
    }
    if (status != MIXL_OK) {
        /* Comm_dup refused above: no server from this rank. */
    } else if (c->server_rank >= c->nranks) {
        status = mixl_reg_error(reg, 0, MIXL_ERR_CONFIG, "registry mpi: server_rank %d but the "
                                "communicator has %d ranks", c->server_rank, c->nranks);
    } else if (c->rank == c->server_rank) {
        status = regmpi_server_start(c->comm, c->nranks, &eb, &c->server);
        if (status != MIXL_OK) mixl_reg_error(reg, 1, status, "%s", mixl_errbuf_get(&eb));
    }
    /* Fail together: a rank whose server did not start must not leave others waiting on it. */
    all_ok = mixl_coll_agree(c->comm, status, NULL) == MIXL_OK;
    if (!all_ok) {
        if (status == MIXL_OK) {
            status = mixl_reg_error(reg, 0, MIXL_ERR_REGISTRY, "registry mpi: another rank failed "
                                    "to set up the registry");
        }
        if (c->server != NULL) {
            regmpi_server_stop(c->server, 0);
            c->server = NULL;
        }
        goto err_comm;
    }
    mixl_debug("registry mpi: rank %d of %d, server rank %d, namespace %s", c->rank, c->nranks,
               c->server_rank, reg->ns);
    return MIXL_OK;

err_comm:
    pthread_mutex_destroy(&c->lock);
    MPI_Comm_free(&c->comm);
    return status;
}

static void mpi_fini(struct mixl_registry *reg)
{
    regmpi_client_t *c = reg->priv;
    uint8_t *resp = NULL;
    size_t rlen;

    if (call(reg, REGMPI_DONE, NULL, NULL, 0, 0, 0, 0, reg->params.op_timeout_ms, &resp, &rlen) ==
        MIXL_OK) {
        free(resp);
    }
    if (c->server != NULL) regmpi_server_stop(c->server, reg->params.op_timeout_ms);
    for (size_t i = 0; i < c->orphan_count; i++) {
        int flag = 0;
        MPI_Cancel(&c->orphans[i].req);
        MPI_Test(&c->orphans[i].req, &flag, MPI_STATUS_IGNORE);
        if (flag) free(c->orphans[i].buf);
        else MPI_Request_free(&c->orphans[i].req);
    }
    free(c->orphans);
    pthread_mutex_destroy(&c->lock);
    MPI_Comm_free(&c->comm);
}

const mixl_reg_ops_t mixl_reg_mpi_ops = {
    .size = sizeof(mixl_reg_ops_t),
    .name = "mpi",
    .priv_size = sizeof(regmpi_client_t),
    .init = mpi_init,
    .fini = mpi_fini,
    .put = mpi_put,
    .get = mpi_get,
    .list = mpi_list,
    .del = mpi_del,
    .wait = mpi_wait,
    .lease_grant = mpi_lease_grant,
    .lease_keepalive = mpi_lease_keepalive,
    .lease_revoke = mpi_lease_revoke,
};
