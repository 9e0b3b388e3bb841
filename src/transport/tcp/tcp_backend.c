/*
 * The TCP transport backend: the ops table the agent calls. It reaches any
 * agent with a TCP endpoint in its metadata, inside or outside our MPI world,
 * and moves bytes over the framed stream described in docs/tcp-protocol.md.
 */
#include <linux/futex.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "transport/tcp/tcp_internal.h"
#include "util/clock.h"
#include "util/log.h"

#define TCP_NOTIF_DEFAULT 256

/* ------------------------------------------------------------------------ */
/* Region table and notification ring (shared with the progress thread)     */

tcp_region_t *tcp_region_find(tcp_t *tcp, uint32_t id)
{
    for (tcp_region_t *r = tcp->regions; r != NULL; r = r->next)
        if (r->id == id) return r;
    return NULL;
}

int tcp_notif_push(tcp_t *tcp, const char *peer, const uint8_t *payload, size_t len)
{
    int ok = 0;

    pthread_mutex_lock(&tcp->notif_lock);
    if (tcp->notif_count < tcp->notif_cap) {
        mixl_notif_t *n = &tcp->notifs[(tcp->notif_head + tcp->notif_count) % tcp->notif_cap];
        snprintf(n->peer, sizeof(n->peer), "%s", peer);
        n->len = (uint32_t)len;
        memcpy(n->payload, payload, len);
        tcp->notif_count++;
        ok = 1;
    }
    pthread_mutex_unlock(&tcp->notif_lock);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */

/* Environment variable `name`, a decimal number within lo..hi: 1 and *out
 * when set, 0 when unset, -1 when malformed or out of range (the agent's
 * error then names the variable, its value and the range). */
static int env_number(mixl_tp_t *tp, const tcp_t *tcp, const char *name, unsigned long lo,
                      unsigned long hi, unsigned long *out)
{
    const char *env = getenv(name);
    char *end;

    if (env == NULL) return 0;
    errno = 0;
    *out = strtoul(env, &end, 10);
    if (*env == '\0' || *end != '\0' || errno != 0 || *out < lo || *out > hi) {
        mixl_errbuf_set(tp->eb, MIXL_ERR_CONFIG, "tcp agent %s: %s=%s outside %lu..%lu", tcp->name,
                        name, env, lo, hi);
        return -1;
    }
    return 1;
}

/* Contract: called once by the agent before anything else; starts the
 * listening socket and the progress thread. Errors go to tp->eb. */
static mixl_status_t tcp_init(mixl_tp_t *tp, const mixl_agent_params_t *params)
{
    tcp_t *tcp = tp->priv;
    const char *bind = params->tcp_bind != NULL && params->tcp_bind[0] ? params->tcp_bind
                                                                         : "127.0.0.1";
    const char *env;
    mixl_status_t st;

    tcp->tp = tp;
    tcp->listen_fd = tcp->epoll_fd = tcp->wake_fd = -1;
    snprintf(tcp->name, sizeof(tcp->name), "%s", tp->agent_name);
    if (strlen(bind) >= sizeof(tcp->bind_host))
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "tcp agent %s: bind address %s is too long", tcp->name, bind);
    snprintf(tcp->bind_host, sizeof(tcp->bind_host), "%s", bind);
    if (params->tcp_port < 0 || params->tcp_port > 65535)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM, "tcp agent %s: port %d is invalid",
                               tcp->name, params->tcp_port);
    tcp->port = params->tcp_port;
    tcp->timeout_ms = params->timeout_ms > 0 ? params->timeout_ms : 30000;
    tcp->max_frame = MIXL_TCP_FRAME_DEFAULT;
    tcp->rcvlowat_max = TCP_RCVLOWAT_DEFAULT;
    atomic_store(&tcp->keep_ns, TCP_TICK_MS * 1000000ull);
    tcp->caps = MIXL_TCP_CAP_CRC32C;
    env = getenv("MIXL_TCP_CRC");
    tcp->use_crc = env != NULL && strcmp(env, "1") == 0;
    unsigned long v;
    int got = env_number(tp, tcp, "MIXL_TCP_FRAME_BYTES", MIXL_TCP_FRAME_MIN, MIXL_TCP_FRAME_MAX, &v);
    if (got < 0) return MIXL_ERR_CONFIG;
    if (got) tcp->max_frame = (uint32_t)v;
    got = env_number(tp, tcp, "MIXL_TCP_RCVLOWAT", 0, MIXL_TCP_FRAME_MAX, &v);
    if (got < 0) return MIXL_ERR_CONFIG;
    if (got) tcp->rcvlowat_max = (int)v;
    got = env_number(tp, tcp, "MIXL_TCP_DIRECT", 0, 1, &v);
    if (got < 0) return MIXL_ERR_CONFIG;
    tcp->direct = got ? (int)v : 1;
    if (params->tcp_poll_us > TCP_POLL_US_MAX)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "tcp agent %s: tcp_poll_us %d is more than %d", tcp->name,
                               params->tcp_poll_us, TCP_POLL_US_MAX);
    tcp->poll_ns = params->tcp_poll_us > 0 ? (uint64_t)params->tcp_poll_us * 1000u : 0;
    if (params->tcp_poll_us == 0) {
        got = env_number(tp, tcp, "MIXL_TCP_POLL_US", 0, TCP_POLL_US_MAX, &v);
        if (got < 0) return MIXL_ERR_CONFIG;
        tcp->poll_ns = (got ? v : TCP_POLL_US_DEFAULT) * 1000ull;
    }
    tcp->conns_per_peer = params->tcp_connections;
    if (tcp->conns_per_peer == 0) {
        got = env_number(tp, tcp, "MIXL_TCP_CONNECTIONS", 1, TCP_CONNS_MAX, &v);
        if (got < 0) return MIXL_ERR_CONFIG;
        if (got) tcp->conns_per_peer = (unsigned)v;
    }
    if (tcp->conns_per_peer == 0) tcp->conns_per_peer = TCP_CONNS_DEFAULT;
    if (tcp->conns_per_peer > TCP_CONNS_MAX)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                               "tcp agent %s: %u connections per peer, at most %d", tcp->name,
                               tcp->conns_per_peer, TCP_CONNS_MAX);
    st = tcp_auth_init(tcp, params);
    if (st != MIXL_OK) return st;
    tcp->notif_cap = 16 * (params->notif_ring ? params->notif_ring : TCP_NOTIF_DEFAULT);
    tcp->notifs = calloc(tcp->notif_cap, sizeof(*tcp->notifs));
    if (tcp->notifs == NULL)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "tcp agent %s: notification ring",
                               tcp->name);
    pthread_mutex_init(&tcp->call_lock, NULL);
    pthread_cond_init(&tcp->call_cond, NULL);
    pthread_mutex_init(&tcp->regions_lock, NULL);
    pthread_mutex_init(&tcp->notif_lock, NULL);
    st = tcp_engine_start(tcp);
    if (st != MIXL_OK) goto err_engine;
    mixl_info("tcp agent %s: listening on %s:%d", tcp->name, tcp->bind_host, tcp->port);
    return MIXL_OK;

err_engine:
    tcp_engine_stop(tcp);
    pthread_mutex_destroy(&tcp->notif_lock);
    pthread_mutex_destroy(&tcp->regions_lock);
    pthread_cond_destroy(&tcp->call_cond);
    pthread_mutex_destroy(&tcp->call_lock);
    free(tcp->notifs);
    tcp->notifs = NULL;
    return st;
}

/* Contract: nothing to do collectively; the server listens since init. */
static mixl_status_t tcp_start(mixl_tp_t *tp, mixl_tp_region_t *const *regions, size_t count)
{
    return MIXL_OK;
}

/* Contract: no transfer is in flight; closes every connection in order
 * (CLOSE frame), stops the progress thread, frees everything. */
static void tcp_fini(mixl_tp_t *tp)
{
    tcp_t *tcp = tp->priv;

    if (tcp->notifs == NULL) return; /* init failed */
    tcp_engine_stop(tcp);
    while (tcp->regions != NULL) {
        tcp_region_t *r = tcp->regions;
        tcp->regions = r->next;
        free(r);
    }
    free(tcp->notifs);
    tcp->notifs = NULL;
    pthread_mutex_destroy(&tcp->call_lock);
    pthread_cond_destroy(&tcp->call_cond);
    pthread_mutex_destroy(&tcp->regions_lock);
    pthread_mutex_destroy(&tcp->notif_lock);
}

/* ------------------------------------------------------------------------ */
/* Memory                                                                    */

/* Contract: the same before and after start. Device memory is served
 * through pinned staging buffers when CUDA is compiled in. */
static mixl_status_t tcp_mem_register(mixl_tp_t *tp, mixl_tp_region_t *region)
{
    tcp_t *tcp = tp->priv;
    tcp_region_t *r;

#ifndef MIXL_HAVE_CUDA
    if (region->mem_type == MIXL_MEM_CUDA)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                               "tcp agent %s: region %u is device memory, but MIXL was built "
                               "without CUDA",
                               tcp->name, region->id);
#endif
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "tcp agent %s: region %u", tcp->name,
                               region->id);
    r->id = region->id;
    r->addr = region->addr;
    r->len = region->len;
    r->mem_type = region->mem_type;
    r->device = region->device;
    pthread_mutex_lock(&tcp->regions_lock);
    r->next = tcp->regions;
    tcp->regions = r;
    pthread_mutex_unlock(&tcp->regions_lock);
    region->tp_priv[MIXL_TP_TCP] = r;
    return MIXL_OK;
}

#ifdef MIXL_HAVE_CUDA
/* Progress thread: let every staging copy started so far end. */
static void stage_drain_call(tcp_t *tcp, void *arg)
{
    (void)arg;
    for (tcp_conn_t *c = tcp->conns; c != NULL; c = c->next) tcp_stage_drain(c);
}
#endif

/* Contract: after this returns, no peer frame touches the region's memory:
 * the progress thread accesses registered memory only under regions_lock
 * and re-checks the table when regions_gen moved; copies it started into or
 * out of device memory, which run on after the lock, are waited for. */
static mixl_status_t tcp_mem_deregister(mixl_tp_t *tp, mixl_tp_region_t *region)
{
    tcp_t *tcp = tp->priv;
    tcp_region_t *r = region->tp_priv[MIXL_TP_TCP];

    if (r == NULL) return MIXL_OK;
    pthread_mutex_lock(&tcp->regions_lock);
    for (tcp_region_t **pp = &tcp->regions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    tcp->regions_gen++;
    pthread_mutex_unlock(&tcp->regions_lock);
#ifdef MIXL_HAVE_CUDA
    if (r->mem_type == MIXL_MEM_CUDA && tcp_engine_call(tcp, stage_drain_call, NULL) != MIXL_OK)
        mixl_warn("tcp agent %s: region %u: the progress thread did not confirm within %d ms that "
                  "its device copies ended", tcp->name, r->id, tcp->timeout_ms);
#endif
    free(r);
    region->tp_priv[MIXL_TP_TCP] = NULL;
    return MIXL_OK;
}

/* ------------------------------------------------------------------------ */
/* Peers                                                                     */

/* Contract: fills md->tcp, the endpoint peers connect to; no per-region fields. */
static mixl_status_t tcp_export_md(mixl_tp_t *tp, mixl_tp_region_t *const *regions, size_t count,
                                   mixl_metadata_t *md)
{
    tcp_t *tcp = tp->priv;
    const char *host = tcp->bind_host;
    char hn[MIXL_NAME_MAX];

    /* A wildcard address is no use to a peer: advertise our host name. */
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
        if (gethostname(hn, sizeof(hn)) != 0) hn[0] = '\0';
        hn[sizeof(hn) - 1] = '\0';
        host = hn[0] ? hn : "127.0.0.1";
    }
    snprintf(md->tcp.host, sizeof(md->tcp.host), "%s", host);
    md->tcp.port = tcp->port;
    return MIXL_OK;
}

/* Contract: records the peer's endpoint; the connection is made when the
 * peer is first used (xfer_prepare or notif_send), like NIXL's loadRemoteMD. */
static mixl_status_t tcp_peer_add(mixl_tp_t *tp, mixl_tp_peer_t *peer)
{
    tcp_t *tcp = tp->priv;
    const mixl_metadata_t *md = peer->md;
    tcp_peer_t *p;

    if (md == NULL || md->tcp.host[0] == '\0' || md->tcp.port <= 0 || md->tcp.port > 65535)
        return mixl_errbuf_set_quiet(tp->eb, MIXL_ERR_UNREACHABLE,
                                     "tcp agent %s: peer %s published no TCP endpoint", tcp->name,
                                     peer->name);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "tcp agent %s: peer %s", tcp->name,
                               peer->name);
    snprintf(p->name, sizeof(p->name), "%s", peer->name);
    snprintf(p->host, sizeof(p->host), "%s", md->tcp.host);
    p->port = md->tcp.port;
    peer->tp_priv[MIXL_TP_TCP] = p;
    return MIXL_OK;
}

static void group_put(tcp_t *tcp, tcp_group_t *g)
{
    if (g == NULL || --g->refs > 0) return;
    tcp_group_release(tcp, g);
}

/* Contract: no prepared transfer to the peer remains (the agent checks). */
static void tcp_peer_remove(mixl_tp_t *tp, mixl_tp_peer_t *peer)
{
    tcp_t *tcp = tp->priv;
    tcp_peer_t *p = peer->tp_priv[MIXL_TP_TCP];

    if (p == NULL) return;
    group_put(tcp, p->group);
    free(p);
    peer->tp_priv[MIXL_TP_TCP] = NULL;
}

/* The peer's live connections, made (or remade after a failure) on demand. */
static mixl_status_t peer_group(tcp_t *tcp, tcp_peer_t *p, tcp_group_t **group_p)
{
    mixl_status_t st;
    tcp_group_t *g;

    if (p->group != NULL && atomic_load(&p->group->state) == CONN_UP) {
        *group_p = p->group;
        return MIXL_OK;
    }
    st = tcp_group_connect(tcp, p, &g);
    if (st != MIXL_OK) return st;
    g->refs = 1;
    group_put(tcp, p->group);
    p->group = g;
    *group_p = g;
    return MIXL_OK;
}

/* ------------------------------------------------------------------------ */
/* Transfers                                                                 */

/* Contract: connects to the peer if needed; allocates the transfer state. */
static mixl_status_t tcp_xfer_prepare(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    tcp_t *tcp = tp->priv;
    tcp_peer_t *p = xfer->peer->tp_priv[MIXL_TP_TCP];
    tcp_group_t *g;
    tcp_xfer_t *xf;
    mixl_status_t st;

    if (p == NULL)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_UNREACHABLE,
                               "tcp agent %s: peer %s has no TCP endpoint", tcp->name,
                               xfer->peer->name);
    for (size_t i = 0; i < xfer->nops; i++) {
#ifndef MIXL_HAVE_CUDA
        if (xfer->ops[i].local_region->mem_type == MIXL_MEM_CUDA)
            return mixl_errbuf_set(tp->eb, MIXL_ERR_NOT_SUPPORTED,
                                   "tcp agent %s: span %zu is device memory, MIXL was built "
                                   "without CUDA",
                                   tcp->name, i);
#endif
        if (xfer->ops[i].remote_region == NULL)
            return mixl_errbuf_set(tp->eb, MIXL_ERR_INVALID_PARAM,
                                   "tcp agent %s: span %zu to %s has no remote region", tcp->name,
                                   i, xfer->peer->name);
    }
    st = peer_group(tcp, p, &g);
    if (st != MIXL_OK) return st;
    /* A stripe per connection and one for a deferred notification: the
     * post path never allocates. */
    xf = calloc(1, sizeof(*xf) + (g->n + 1) * sizeof(tcp_stripe_t));
    if (xf == NULL)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "tcp agent %s: transfer to %s",
                               tcp->name, p->name);
    xf->x = xfer;
    xf->group = g;
    /* Device memory is staged by the progress thread's copy engine. */
    xf->direct = tcp->direct;
    for (size_t i = 0; i < xfer->nops; i++)
        if (xfer->ops[i].local_region->mem_type == MIXL_MEM_CUDA) xf->direct = 0;
    for (unsigned i = 0; i <= g->n; i++) xf->stripes[i].xf = xf;
    atomic_init(&xf->status, MIXL_OK);
    g->refs++;
    xfer->tp_priv = xf;
    return MIXL_OK;
}

/*
 * Contract (hot path): when no other thread works the peer's connections,
 * split the transfer over them and write its frames until the sockets are
 * full (the progress thread sends the rest and reads the answers);
 * otherwise queue it on the group and wake the progress thread. Takes the
 * group's locks only (one by trylock); no allocation, no logging. A send
 * error is left to the progress thread to report. MIXL_IN_PROGRESS, or
 * MIXL_ERR_DISCONNECTED when the connections have failed (prepare the
 * transfer again to reconnect).
 */
static mixl_status_t tcp_xfer_post(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    tcp_t *tcp = tp->priv;
    tcp_xfer_t *xf = xfer->tp_priv;
    tcp_group_t *g = xf->group;

    xf->reported = 0;
    xf->tests = 0;
    xf->err[0] = '\0';
    xf->next = NULL;
    if (xfer->nops == 0 && xfer->notif_len == 0 && !xf->notif_always) {
        atomic_store(&xf->status, MIXL_OK);
        return MIXL_OK;
    }
    xf->deadline_ns = mixl_deadline_ns(tcp->timeout_ms);
    atomic_store_explicit(&xf->status, MIXL_IN_PROGRESS, memory_order_relaxed);
    /* The connections are idle or between events: write the frames here
     * rather than wake the progress thread to write them. */
    if (xf->direct && pthread_mutex_trylock(&g->work) == 0) {
        if (atomic_load(&g->state) == CONN_UP && !atomic_load(&g->posted)) {
            tcp_group_post_direct(g, xf);
            tcp_group_unlock(g);
            return MIXL_IN_PROGRESS;
        }
        tcp_group_unlock(g);
    }
    pthread_mutex_lock(&g->lock);
    if (atomic_load(&g->state) != CONN_UP) {
        snprintf(xf->err, sizeof(xf->err), "%s", g->dead_msg);
        pthread_mutex_unlock(&g->lock);
        atomic_store(&xf->status, MIXL_ERR_DISCONNECTED);
        xf->reported = 1;
        return mixl_errbuf_set_quiet(tp->eb, MIXL_ERR_DISCONNECTED, "%s", xf->err);
    }
    if (g->q_tail != NULL)
        g->q_tail->next = xf;
    else
        g->q_head = xf;
    g->q_tail = xf;
    atomic_store_explicit(&g->posted, 1, memory_order_release);
    pthread_mutex_unlock(&g->lock);
    tcp_engine_wake(tcp);
    return MIXL_IN_PROGRESS;
}

/* Sleep on the completion counter while it still reads `seen` and xf is in
 * flight, at most ns nanoseconds; any completion wakes the sleeper. */
static void completion_sleep(tcp_t *tcp, tcp_xfer_t *xf, uint32_t seen, uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};

    atomic_fetch_add(&tcp->waiters, 1);
    if (atomic_load(&xf->status) == MIXL_IN_PROGRESS)
        syscall(SYS_futex, &tcp->completions, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
    atomic_fetch_sub(&tcp->waiters, 1);
}

/*
 * A caller polling xfer_test in a loop sleeps instead of taking a core from
 * the progress threads that move the bytes (on two cores a spinning caller
 * cost a third of the bandwidth), once per round of its polling, not on
 * every transfer it tests: the first transfer answered "in progress" since
 * the last completion is the anchor, and the caller pauses, at most
 * TCP_TEST_PAUSE_NS, when it is back at it. The pause reads the anchor's
 * peer's answers on this thread as a wait does (tcp_client_wait), so an
 * answer wakes the caller itself, not the progress thread which then wakes
 * the caller: one hand-off per request where there were two, which is what
 * a polling caller lost when both ends share a CPU. Where the caller
 * cannot read them (device transfers, another thread at work on the group)
 * it sleeps on completions, which any completion ends.
 * The pause stays short because the caller may be waiting for things the
 * backend does not signal (its own timers, MPI messages): mixl-run's prefill
 * loop, paused until a completion, shipped its next layer only then and left
 * the link idle (docs/performance.md). A caller with nothing else to wait for
 * calls mixl_xfer_wait, which sleeps until the end (tcp_xfer_wait).
 */
static void test_pause(tcp_t *tcp, tcp_xfer_t *xf)
{
    uint32_t seen = atomic_load(&tcp->completions);

    if (seen != tcp->test_seen || tcp->test_anchor == NULL) {
        /* something completed: a new round */
        tcp->test_seen = seen;
        tcp->test_anchor = xf;
        tcp->test_group = xf->group;
        return;
    }
    if (tcp->test_anchor != xf) return;
    if (xf->direct && tcp_client_wait(xf->group, xf, mixl_now_ns() + TCP_TEST_PAUSE_NS)) return;
    completion_sleep(tcp, xf, seen, TCP_TEST_PAUSE_NS);
}

/* A transfer tested a second time is polled; if its group is not the one
 * the caller's pauses read (the anchor's), nobody reads its answers: give
 * them back if it kept them (again on its next test if the group is being
 * worked now). mixl_xfer_wait tests once before it waits. */
static void test_unkeep(tcp_t *tcp, tcp_xfer_t *xf)
{
    tcp_group_t *g = xf->group;

    if (++xf->tests < 2 || g == tcp->test_group ||
        atomic_load_explicit(&g->reader, memory_order_relaxed) != TCP_READER_KEPT)
        return;
    if (pthread_mutex_trylock(&g->work) != 0) return;
    tcp_client_unkeep(g);
    tcp_group_unlock(g);
}

/* Contract (hot path): an atomic load; while in progress, at most once per
 * round of the caller's polling a pause of at most TCP_TEST_PAUSE_NS that any
 * completion ends (test_pause). The progress
 * thread does the work and enforces the deadline. An error's message is
 * copied to the agent's buffer once, without logging (the progress thread
 * logged it). */
static mixl_status_t tcp_xfer_test(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    tcp_xfer_t *xf = xfer->tp_priv;
    int st = atomic_load_explicit(&xf->status, memory_order_acquire);

    if (st == MIXL_IN_PROGRESS) {
        test_unkeep(tp->priv, xf);
        test_pause(tp->priv, xf);
        st = atomic_load_explicit(&xf->status, memory_order_acquire);
        if (st == MIXL_IN_PROGRESS) return MIXL_IN_PROGRESS;
    }
    if (st < 0 && !xf->reported) {
        xf->reported = 1;
        mixl_errbuf_set_quiet(tp->eb, (mixl_status_t)st, "tcp transfer to %s: %s",
                              xfer->peer->name, xf->err[0] ? xf->err : mixl_status_str(st));
    }
    return (mixl_status_t)st;
}

/* Contract: reads the peer's answers on this thread until xf ends or the
 * deadline, when no other thread works the peer's connections and no
 * device transfer is in flight on them (tcp_client_wait); otherwise sleeps
 * on the completion counter, woken by completions only. The progress
 * thread enforces the transfer's own deadline, so this returns by then at
 * the latest. */
static mixl_status_t tcp_xfer_wait(mixl_tp_t *tp, mixl_tp_xfer_t *xfer, uint64_t deadline_ns)
{
    tcp_t *tcp = tp->priv;
    tcp_xfer_t *xf = xfer->tp_priv;

    for (;;) {
        uint32_t seen = atomic_load(&tcp->completions);
        if (atomic_load_explicit(&xf->status, memory_order_acquire) != MIXL_IN_PROGRESS)
            break;
        uint64_t now = mixl_now_ns();
        if (now >= deadline_ns) return MIXL_IN_PROGRESS;
        if (xf->direct && tcp_client_wait(xf->group, xf, deadline_ns)) continue;
        uint64_t ns = deadline_ns - now;
        /* Another thread holds the group (answers we keep are nobody else's
         * to read until the tick gives them back), or a post waits in its
         * queue for a moment: try again soon rather than sleep until a
         * completion. */
        if (xf->direct && ns > TCP_TEST_PAUSE_NS &&
            (atomic_load(&xf->group->reader) == TCP_READER_KEPT ||
             atomic_load(&xf->group->posted)))
            ns = TCP_TEST_PAUSE_NS;
        completion_sleep(tcp, xf, seen, ns);
    }
    /* A wait ends the caller's round of polling: mixl_xfer_wait tests
     * first, and a test of the anchor of a round with no completion since
     * pauses (test_pause) - every wait on a reused request then began with
     * a sleep of up to TCP_TEST_PAUSE_NS that only the progress thread's
     * completion ended, and the caller never read its own answer. */
    tcp->test_seen = atomic_load(&tcp->completions);
    tcp->test_anchor = NULL;
    tcp->test_group = NULL;
    return tcp_xfer_test(tp, xfer);
}

static void cancel_call(tcp_t *tcp, void *arg)
{
    tcp_xfer_t *xf = arg;

    /* Frames of it may be half sent: the streams cannot carry on. */
    if (atomic_load(&xf->status) == MIXL_IN_PROGRESS)
        tcp_conn_abort(xf->group->conns[0], MIXL_ERR_CANCELED,
                       "a transfer was released while still in flight");
}

/* Contract: normally the transfer is not in flight. One that is (its wait
 * gave up before our deadline did) is cancelled by dropping its connection,
 * so the progress thread holds no reference to it when this returns. */
static void tcp_xfer_release(mixl_tp_t *tp, mixl_tp_xfer_t *xfer)
{
    tcp_xfer_t *xf = xfer->tp_priv;

    if (xf == NULL) return;
    if (atomic_load(&xf->status) == MIXL_IN_PROGRESS &&
        tcp_engine_call(tp->priv, cancel_call, xf) != MIXL_OK) {
        mixl_error("tcp agent %s: in-flight transfer to %s could not be cancelled; leaking it",
                   ((tcp_t *)tp->priv)->name, xfer->peer->name);
        xfer->tp_priv = NULL;
        return;
    }
    group_put(tp->priv, xf->group);
    free(xf);
    xfer->tp_priv = NULL;
}

/* ------------------------------------------------------------------------ */
/* Notifications                                                             */

/*
 * Contract: a data-less notification on the peer's connection, so it is
 * served after every transfer posted to that peer before it. Blocks until
 * the peer acknowledged it, at most the agent's timeout.
 */
static mixl_status_t tcp_notif_send(mixl_tp_t *tp, mixl_tp_peer_t *peer, const void *payload,
                                    size_t len)
{
    tcp_t *tcp = tp->priv;
    mixl_tp_xfer_t x;
    mixl_status_t st;

    if (len > MIXL_TCP_NOTIF_MAX)
        return mixl_errbuf_set(tp->eb, MIXL_ERR_TOO_LARGE,
                               "tcp agent %s: notification of %zu bytes to %s exceeds %d",
                               tcp->name, len, peer->name, MIXL_TCP_NOTIF_MAX);
    memset(&x, 0, sizeof(x));
    x.op = MIXL_OP_WRITE;
    x.peer = peer;
    x.notif_len = (uint32_t)len;
    if (len > 0) memcpy(x.notif, payload, len);
    st = tcp_xfer_prepare(tp, &x);
    if (st != MIXL_OK) return st;
    tcp_xfer_t *xf = x.tp_priv;
    xf->notif_always = 1; /* an empty notification still travels */
    st = tcp_xfer_post(tp, &x);
    uint64_t deadline = xf->deadline_ns + 1000000000ull; /* progress thread fails it first */
    struct timespec pause = {0, 20000};
    while (st == MIXL_IN_PROGRESS) {
        st = tcp_xfer_test(tp, &x);
        if (st != MIXL_IN_PROGRESS) break;
        if (mixl_now_ns() > deadline) {
            st = mixl_errbuf_set(tp->eb, MIXL_ERR_TIMED_OUT,
                                 "tcp agent %s: notification to %s not acknowledged", tcp->name,
                                 peer->name);
            break;
        }
        nanosleep(&pause, NULL);
    }
    tcp_xfer_release(tp, &x); /* cancels it if still in flight */
    return st;
}

/* Contract: takes arrived notifications, oldest first; frees room so that a
 * connection paused on a full queue resumes. Never blocks on the network. */
static mixl_status_t tcp_notif_poll(mixl_tp_t *tp, mixl_notif_t *out, size_t max,
                                    size_t *count_p)
{
    tcp_t *tcp = tp->priv;
    size_t n = 0;

    pthread_mutex_lock(&tcp->notif_lock);
    while (n < max && tcp->notif_count > 0) {
        out[n++] = tcp->notifs[tcp->notif_head];
        tcp->notif_head = (tcp->notif_head + 1) % tcp->notif_cap;
        tcp->notif_count--;
    }
    pthread_mutex_unlock(&tcp->notif_lock);
    if (n > 0 && atomic_exchange(&tcp->notif_blocked, 0)) tcp_engine_wake(tcp);
    *count_p = n;
    return MIXL_OK;
}

/* Contract: one line naming the endpoint, frame size, checksums and the
 * device-memory path, so nobody benchmarks TCP without knowing it. */
static void tcp_path_report(mixl_tp_t *tp, char *buf, size_t len)
{
    tcp_t *tcp = tp->priv;

    snprintf(buf, len,
             "tcp: %s:%d, %u connection%s per peer, frames <= %u bytes, crc32c %s, peers %s, "
             "cuda %s",
             tcp->bind_host, tcp->port, tcp->conns_per_peer, tcp->conns_per_peer == 1 ? "" : "s",
             tcp->max_frame, tcp->use_crc ? "on" : "off",
             tcp->secret_len ? "authenticated (HMAC-SHA256)" : "NOT authenticated",
#ifdef MIXL_HAVE_CUDA
             "staged through pinned host buffers"
#else
             "not built"
#endif
    );
}

const mixl_tp_ops_t mixl_tp_tcp_ops = {
    .size = sizeof(mixl_tp_ops_t),
    .name = "tcp",
    .caps = MIXL_TP_CAP_HOST | MIXL_TP_CAP_NOTIF | MIXL_TP_CAP_CROSS_WORLD | MIXL_TP_CAP_PEER_FAILURE
#ifdef MIXL_HAVE_CUDA
            | MIXL_TP_CAP_CUDA
#endif
    ,
    .priv_size = sizeof(tcp_t),
    .init = tcp_init,
    .start = tcp_start,
    .fini = tcp_fini,
    .mem_register = tcp_mem_register,
    .mem_deregister = tcp_mem_deregister,
    .export_md = tcp_export_md,
    .peer_add = tcp_peer_add,
    .peer_remove = tcp_peer_remove,
    .xfer_prepare = tcp_xfer_prepare,
    .xfer_post = tcp_xfer_post,
    .xfer_test = tcp_xfer_test,
    .xfer_wait = tcp_xfer_wait,
    .xfer_release = tcp_xfer_release,
    .notif_send = tcp_notif_send,
    .notif_poll = tcp_notif_poll,
    .path_report = tcp_path_report,
};
