/*
 * The MPI registry server: a thread on the server rank that owns the
 * database, answers requests from every rank (itself included), expires
 * leases that are not renewed, and parks wait-for-key requests until the
 * key appears or their deadline passes.
 *
 * It never blocks: requests are found with MPI_Improbe and received with
 * MPI_Mrecv (matched probes are safe with several threads on the rank),
 * answers go out with MPI_Isend and are tested on later iterations.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry/mpi/mpi_reg.h"
#include "util/clock.h"
#include "util/log.h"

typedef struct {
    MPI_Request req;
    void *buf;
} out_msg_t;

typedef struct {
    int src, slot;
    uint32_t seq;
    char *key;
    uint64_t deadline_ns;
} parked_t;

struct regmpi_server {
    MPI_Comm comm;
    int nranks;
    mixl_kvdb_t *db;
    pthread_t thread;
    pthread_mutex_t lock; /* guards done/stop between the thread and regmpi_server_stop */
    int done;             /* ranks that sent DONE */
    int stop;
    int finished;         /* the thread left its loop */
    out_msg_t *out;
    size_t out_count, out_cap;
    parked_t *parked;
    size_t parked_count, parked_cap;
};

/* Send a response (header + pairs) without blocking; the buffer lives until the send completes. */
static void respond(regmpi_server_t *s, int dst, int slot, uint32_t seq, mixl_status_t status,
                    int64_t value, const mixl_registry_kv_t *kvs, size_t count)
{
    regmpi_resp_t h = {.magic = REGMPI_MAGIC, .status = status, .seq = seq, .value = value};
    size_t size = sizeof(h);
    uint8_t *buf;

    for (size_t i = 0; i < count; i++) size += regmpi_kv_wire_size(&kvs[i]);
    if (size > INT32_MAX) {
        count = 0;
        size = sizeof(h);
        h.status = MIXL_ERR_TOO_LARGE;
    }
    buf = malloc(size);
    if (buf == NULL && count > 0) { /* answer with the error rather than not at all */
        count = 0;
        size = sizeof(h);
        h.status = MIXL_ERR_NO_MEMORY;
        buf = malloc(size);
    }
    if (buf == NULL) {
        mixl_error("registry mpi server: out of memory answering rank %d", dst);
        return;
    }
    h.count = (uint32_t)count;
    memcpy(buf, &h, sizeof(h));
    regmpi_kvs_pack(buf + sizeof(h), kvs, count);
    if (s->out_count == s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap * 2 : 16;
        out_msg_t *n = realloc(s->out, cap * sizeof(*n));
        if (n == NULL) {
            free(buf);
            mixl_error("registry mpi server: out of memory answering rank %d", dst);
            return;
        }
        s->out = n;
        s->out_cap = cap;
    }
    if (MPI_Isend(buf, (int)size, MPI_BYTE, dst, REGMPI_TAG_RESP + slot, s->comm,
                  &s->out[s->out_count].req) != MPI_SUCCESS) {
        free(buf);
        mixl_error("registry mpi server: MPI_Isend of the answer to rank %d failed", dst);
        return;
    }
    s->out[s->out_count++].buf = buf;
}

/* Complete finished sends. */
static void reap_sends(regmpi_server_t *s)
{
    for (size_t i = s->out_count; i-- > 0;) {
        int flag = 0;
        MPI_Test(&s->out[i].req, &flag, MPI_STATUS_IGNORE);
        if (flag) {
            free(s->out[i].buf);
            s->out[i] = s->out[--s->out_count];
        }
    }
}

static void park(regmpi_server_t *s, int src, int slot, uint32_t seq, const char *key,
                 int64_t timeout_ms)
{
    parked_t *p;

    if (s->parked_count == s->parked_cap) {
        size_t cap = s->parked_cap ? s->parked_cap * 2 : 16;
        parked_t *n = realloc(s->parked, cap * sizeof(*n));
        if (n == NULL) goto err_nomem;
        s->parked = n;
        s->parked_cap = cap;
    }
    p = &s->parked[s->parked_count];
    p->key = strdup(key);
    if (p->key == NULL) goto err_nomem;
    p->src = src;
    p->slot = slot;
    p->seq = seq;
    p->deadline_ns = mixl_now_ns() + (uint64_t)timeout_ms * 1000000ull;
    s->parked_count++;
    return;

err_nomem:
    respond(s, src, slot, seq, MIXL_ERR_NO_MEMORY, 0, NULL, 0);
}

/* Answer parked waits whose key now exists, or whose deadline passed. */
static void serve_parked(regmpi_server_t *s, const char *changed_key, uint64_t now)
{
    for (size_t i = s->parked_count; i-- > 0;) {
        parked_t *p = &s->parked[i];
        mixl_registry_kv_t *kv = NULL;
        int answered = 0;

        if (changed_key != NULL && strcmp(changed_key, p->key) == 0 &&
            mixl_kvdb_get(s->db, p->key, &kv) == MIXL_OK) {
            respond(s, p->src, p->slot, p->seq, MIXL_OK, 0, kv, 1);
            mixl_registry_kv_free(kv);
            answered = 1;
        } else if (changed_key == NULL && now >= p->deadline_ns) {
            respond(s, p->src, p->slot, p->seq, MIXL_ERR_TIMED_OUT, 0, NULL, 0);
            answered = 1;
        }
        if (answered) {
            free(p->key);
            s->parked[i] = s->parked[--s->parked_count];
        }
    }
}

static void handle(regmpi_server_t *s, int src, const uint8_t *msg, size_t len)
{
    regmpi_req_t r;
    char *key = NULL;
    const uint8_t *value;
    mixl_registry_kv_t *kvs = NULL;
    size_t count = 0;
    int64_t out = 0;
    mixl_status_t status;
    uint64_t now = mixl_now_ns();

    status = regmpi_req_decode(msg, len, &r, &key, &value);
    if (status == MIXL_ERR_NO_MEMORY) {
        respond(s, src, r.slot, r.seq, MIXL_ERR_NO_MEMORY, 0, NULL, 0);
        return;
    }
    if (status != MIXL_OK) goto err_proto;

    switch ((regmpi_op_t)r.op) {
    case REGMPI_PUT:
        status = mixl_kvdb_put(s->db, key, value, (size_t)r.val_len, r.lease, &out);
        respond(s, src, r.slot, r.seq, status, out, NULL, 0);
        if (status == MIXL_OK) serve_parked(s, key, now);
        break;
    case REGMPI_GET:
        status = mixl_kvdb_get(s->db, key, &kvs);
        respond(s, src, r.slot, r.seq, status, 0, kvs, status == MIXL_OK ? 1 : 0);
        mixl_registry_kvs_free(kvs, status == MIXL_OK ? 1 : 0);
        break;
    case REGMPI_LIST:
        status = mixl_kvdb_list(s->db, key, r.flags, &kvs, &count);
        respond(s, src, r.slot, r.seq, status, 0, kvs, count);
        mixl_registry_kvs_free(kvs, count);
        break;
    case REGMPI_DEL:
        respond(s, src, r.slot, r.seq, mixl_kvdb_del(s->db, key), 0, NULL, 0);
        break;
    case REGMPI_WAIT:
        status = mixl_kvdb_get(s->db, key, &kvs);
        if (status == MIXL_ERR_NOT_FOUND && r.arg > 0) {
            park(s, src, r.slot, r.seq, key, r.arg);
        } else {
            respond(s, src, r.slot, r.seq, status == MIXL_ERR_NOT_FOUND ? MIXL_ERR_TIMED_OUT : status, 0,
                    kvs, status == MIXL_OK ? 1 : 0);
            mixl_registry_kvs_free(kvs, status == MIXL_OK ? 1 : 0);
        }
        break;
    case REGMPI_GRANT:
        if (r.arg < 1 || r.arg > 1000000) {
            respond(s, src, r.slot, r.seq, MIXL_ERR_INVALID_PARAM, 0, NULL, 0);
            break;
        }
        status = mixl_kvdb_lease_grant(s->db, (int)r.arg, now, &out);
        respond(s, src, r.slot, r.seq, status, out, NULL, 0);
        break;
    case REGMPI_KEEPALIVE:
        respond(s, src, r.slot, r.seq, mixl_kvdb_lease_keepalive(s->db, r.lease, now), 0, NULL, 0);
        break;
    case REGMPI_REVOKE:
        respond(s, src, r.slot, r.seq, mixl_kvdb_lease_revoke(s->db, r.lease), 0, NULL, 0);
        break;
    case REGMPI_DONE:
        pthread_mutex_lock(&s->lock);
        s->done++;
        pthread_mutex_unlock(&s->lock);
        respond(s, src, r.slot, r.seq, MIXL_OK, 0, NULL, 0);
        break;
    default:
        free(key);
        goto err_proto;
    }
    free(key);
    return;

err_proto:
    mixl_error("registry mpi server: malformed request of %zu bytes from rank %d dropped", len, src);
}

static void *server_thread(void *arg)
{
    regmpi_server_t *s = arg;
    unsigned idle = 0;

    for (;;) {
        MPI_Message m;
        MPI_Status st;
        int flag = 0, count = 0, stop;
        uint64_t now = mixl_now_ns();

        pthread_mutex_lock(&s->lock);
        stop = s->stop || s->done >= s->nranks;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;

        mixl_kvdb_expire(s->db, now);
        serve_parked(s, NULL, now);
        reap_sends(s);
        MPI_Improbe(MPI_ANY_SOURCE, REGMPI_TAG_REQ, s->comm, &flag, &m, &st);
        if (!flag) {
            regmpi_backoff(&idle);
            continue;
        }
        idle = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        {
            uint8_t *buf = malloc(count > 0 ? (size_t)count : 1);
            if (buf == NULL) {
                /* Still take the message off the queue so it cannot clog it. */
                uint8_t dummy;
                MPI_Mrecv(&dummy, 0, MPI_BYTE, &m, MPI_STATUS_IGNORE);
                mixl_error("registry mpi server: out of memory receiving %d bytes from rank %d",
                           count, st.MPI_SOURCE);
                continue;
            }
            MPI_Mrecv(buf, count, MPI_BYTE, &m, MPI_STATUS_IGNORE);
            handle(s, st.MPI_SOURCE, buf, (size_t)count);
            free(buf);
        }
    }

    /* Let the last answers (the DONE acknowledgements) leave, boundedly. */
    {
        uint64_t deadline = mixl_deadline_ns(1000);
        unsigned spin = 0;
        while (s->out_count > 0 && mixl_now_ns() < deadline) {
            reap_sends(s);
            regmpi_backoff(&spin);
        }
    }
    pthread_mutex_lock(&s->lock);
    s->finished = 1;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

mixl_status_t regmpi_server_start(MPI_Comm comm, int nranks, mixl_errbuf_t *eb,
                                  regmpi_server_t **server_p)
{
    regmpi_server_t *s = calloc(1, sizeof(*s));

    if (s == NULL) return mixl_errbuf_set(eb, MIXL_ERR_NO_MEMORY, "registry mpi server: allocation");
    s->comm = comm;
    s->nranks = nranks;
    s->db = mixl_kvdb_new();
    if (s->db == NULL) {
        free(s);
        return mixl_errbuf_set(eb, MIXL_ERR_NO_MEMORY, "registry mpi server: allocation");
    }
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->thread, NULL, server_thread, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        mixl_kvdb_free(s->db);
        free(s);
        return mixl_errbuf_set(eb, MIXL_ERR_NO_RESOURCE, "registry mpi server: cannot start thread");
    }
    *server_p = s;
    return MIXL_OK;
}

void regmpi_server_stop(regmpi_server_t *s, int timeout_ms)
{
    uint64_t deadline = mixl_deadline_ns(timeout_ms);
    int finished = 0;

    while (mixl_now_ns() < deadline) {
        struct timespec ts = {0, 1000000};
        pthread_mutex_lock(&s->lock);
        finished = s->finished;
        pthread_mutex_unlock(&s->lock);
        if (finished) break;
        nanosleep(&ts, NULL);
    }
    if (!finished) {
        pthread_mutex_lock(&s->lock);
        mixl_warn("registry mpi server: %d of %d ranks said done within %d ms; stopping anyway",
                  s->done, s->nranks, timeout_ms);
        s->stop = 1;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_join(s->thread, NULL);
    /* Answers nobody took: cancel them so their buffers can go. */
    for (size_t i = 0; i < s->out_count; i++) {
        int flag = 0;
        MPI_Cancel(&s->out[i].req);
        MPI_Test(&s->out[i].req, &flag, MPI_STATUS_IGNORE);
        if (flag) free(s->out[i].buf);
        else MPI_Request_free(&s->out[i].req); /* buffer leaks rather than risk MPI writing freed memory */
    }
    free(s->out);
    for (size_t i = 0; i < s->parked_count; i++) free(s->parked[i].key);
    free(s->parked);
    mixl_kvdb_free(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
