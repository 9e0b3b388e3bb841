/*
 * A peer's group of client connections (data_plane.tcp.connections): making
 * and releasing it, splitting each posted transfer into stripes (one request
 * per connection), counting the stripes' answers, and keeping notifications
 * in order across the connections.
 *
 * Order rule. NOTIF frames travel on the lead connection (index 0) only. A
 * transfer's NOTIF follows its data inline, as with one connection, when all
 * that data is on the lead connection and no earlier transfer waits in the
 * group's order queue. Any other transfer that has data off the lead
 * connection, or a notification that cannot go inline, joins the order
 * queue; the head of the queue leaves it once its data stripes are
 * answered, and only then is its NOTIF sent (a request of its own on the
 * lead connection). So a target application that sees a notification can
 * rely on the data of that transfer and of every transfer posted before it
 * to that peer, as with one connection. Transfers in the order queue also
 * complete in queue order.
 *
 * Connect and release run on the agent's thread; everything else on the
 * thread that holds the group's work lock: the progress thread, or the
 * posting thread in tcp_group_post_direct.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "transport/tcp/tcp_internal.h"
#include "util/clock.h"
#include "util/log.h"

/* ------------------------------------------------------------------------ */
/* Connect and release (agent thread)                                        */

static void group_free_call(tcp_t *tcp, void *arg)
{
    tcp_group_t *g = arg;
    mixl_tcp_frame_t f;
    uint8_t hdr[MIXL_TCP_HDR_LEN];
    char msg[TCP_ERR_LEN];

    /* Orderly close: nothing of ours is in flight (the agent checked). */
    memset(&f, 0, sizeof(f));
    f.type = MIXL_TCP_CLOSE;
    mixl_tcp_frame_encode(&f, hdr);
    for (unsigned i = 0; i < g->n; i++) {
        tcp_conn_t *c = g->conns[i];
        if (c != NULL && atomic_load(&c->state) == CONN_UP && !c->tx.active) {
            ssize_t w = send(c->fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
            (void)w;
        }
    }
    snprintf(msg, sizeof(msg), "connections to %s closed by agent %s",
             g->conns[0] != NULL ? g->conns[0]->peer_name : "?", tcp->name);
    tcp_group_abort(g, MIXL_OK, msg);
    for (unsigned i = 0; i < g->n; i++) {
        tcp_conn_t *c = g->conns[i];
        /* One attached after the group failed is still open. */
        if (c != NULL && atomic_load(&c->state) != CONN_DEAD)
            tcp_conn_fail_stripes(c, MIXL_ERR_DISCONNECTED, msg);
        tcp_conn_free(c);
    }
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->work);
    free(g);
}

void tcp_group_release(tcp_t *tcp, tcp_group_t *g)
{
    /* Only the progress thread may free connections it has served. */
    if (tcp_engine_call(tcp, group_free_call, g) != MIXL_OK)
        /* It did not answer: leak rather than free memory it may touch. */
        mixl_error("tcp agent %s: connections to a peer not released", tcp->name);
}

mixl_status_t tcp_group_connect(tcp_t *tcp, tcp_peer_t *peer, tcp_group_t **group_p)
{
    tcp_group_t *g = calloc(1, sizeof(*g));
    mixl_status_t st = MIXL_OK;

    if (g == NULL)
        return mixl_errbuf_set(tcp->tp->eb, MIXL_ERR_NO_MEMORY, "tcp agent %s: connections to %s",
                               tcp->name, peer->name);
    g->tcp = tcp;
    g->n = tcp->conns_per_peer;
    pthread_mutex_init(&g->work, NULL);
    pthread_mutex_init(&g->lock, NULL);
    atomic_init(&g->state, CONN_UP);
    for (unsigned i = 0; i < g->n && st == MIXL_OK; i++) {
        tcp_conn_t *c;
        st = tcp_client_connect(tcp, peer, g, i, &c);
    }
    /* A member that failed while the others were being made took the group down. */
    if (st == MIXL_OK && atomic_load(&g->state) != CONN_UP)
        st = mixl_errbuf_set(tcp->tp->eb, MIXL_ERR_DISCONNECTED,
                             "tcp agent %s: a connection to %s failed while connecting", tcp->name,
                             peer->name);
    if (st != MIXL_OK) {
        tcp_group_release(tcp, g);
        return st;
    }
    *group_p = g;
    return MIXL_OK;
}

/* ------------------------------------------------------------------------ */
/* Completion and order                                                      */

void tcp_xfer_fail(tcp_xfer_t *xf, mixl_status_t status, const char *msg)
{
    if (xf->first_err != MIXL_OK) return;
    xf->first_err = status;
    if (msg != NULL) snprintf(xf->err, sizeof(xf->err), "%s", msg);
}

static void conn_enqueue(tcp_conn_t *c, tcp_stripe_t *st)
{
    st->conn = c;
    st->next = NULL;
    if (c->sq_tail != NULL)
        c->sq_tail->next = st;
    else
        c->sq_head = st;
    c->sq_tail = st;
    c->kick = 1;
}

/* Pop transfers off the order queue's head whose data is all answered:
 * their deferred NOTIF may go now; those without one are done. */
static void order_settle(tcp_group_t *g)
{
    tcp_xfer_t *xf;

    while ((xf = g->ord_head) != NULL && xf->data_left == 0) {
        g->ord_head = xf->ord_next;
        if (g->ord_head == NULL) g->ord_tail = NULL;
        xf->ordered = 0;
        if (xf->notif_deferred) {
            if (xf->first_err == MIXL_OK && atomic_load(&g->state) == CONN_UP) {
                tcp_stripe_t *st = &xf->stripes[g->n];
                st->notif = 1;
                st->notif_done = 0;
                st->tx_left = st->rx_left = st->asked = 0;
                conn_enqueue(g->conns[0], st);
                continue; /* done when the NOTIF's ACK arrives */
            }
            if (xf->first_err == MIXL_OK) tcp_xfer_fail(xf, g->dead_status, g->dead_msg);
            xf->pending--; /* not sent: the transfer failed */
        }
        if (xf->pending == 0) tcp_xfer_finish(xf, xf->first_err);
    }
}

void tcp_stripe_end(tcp_stripe_t *st, mixl_status_t status, const char *msg)
{
    tcp_xfer_t *xf = st->xf;
    tcp_group_t *g = xf->group;

    if (status != MIXL_OK) tcp_xfer_fail(xf, status, msg);
    xf->pending--;
    if (st != &xf->stripes[g->n] && --xf->data_left == 0 && xf->ordered) {
        order_settle(g); /* may finish xf: not touched after this */
        return;
    }
    if (xf->pending == 0 && !xf->ordered) tcp_xfer_finish(xf, xf->first_err);
}

/* ------------------------------------------------------------------------ */
/* Splitting transfers                                                       */

static void stripe_init(tcp_stripe_t *st, size_t op, uint64_t off, uint64_t len)
{
    st->tx_op = st->rx_op = op;
    st->tx_off = st->rx_off = off;
    st->tx_left = st->rx_left = len;
    st->asked = 0;
    st->notif = 0;
    st->notif_done = 0;
}

/*
 * Stripe k of a transfer of T bytes starts at byte (T / k) * s rounded down
 * to TCP_STRIPE_ALIGN: contiguous runs of the spans, in order, each of at
 * least TCP_STRIPE_MIN - TCP_STRIPE_ALIGN bytes. One pass over the spans.
 */
static void xfer_split(tcp_group_t *g, tcp_xfer_t *xf)
{
    const mixl_tp_xfer_t *x = xf->x;
    uint64_t total = 0, cum = 0;
    int has_notif = x->notif_len > 0 || xf->notif_always;
    unsigned k;
    size_t op = 0;

    for (size_t i = 0; i < x->nops; i++) total += x->ops[i].len;
    k = total == 0 ? 0 : 1;
    if (g->n > 1 && total >= 2 * (uint64_t)TCP_STRIPE_MIN) {
        uint64_t fit = total / TCP_STRIPE_MIN;
        k = fit < g->n ? (unsigned)fit : g->n;
    }
    xf->first_err = MIXL_OK;
    xf->err[0] = '\0';
    xf->ord_next = NULL;
    xf->ordered = 0;
    if (!xf->direct) {
        xf->staged = 1;
        g->staged++;
        tcp_client_unkeep(g); /* device frames are the progress thread's */
    }
    int inline_notif = has_notif && k <= 1 && g->ord_head == NULL;
    xf->notif_deferred = has_notif && !inline_notif;
    for (unsigned s = 0; s < k; s++) {
        uint64_t b = s == 0 ? 0 : ((total / k) * s) & ~(uint64_t)(TCP_STRIPE_ALIGN - 1);
        uint64_t e = s + 1 == k ? total : ((total / k) * (s + 1)) & ~(uint64_t)(TCP_STRIPE_ALIGN - 1);
        while (op < x->nops && cum + x->ops[op].len <= b) cum += x->ops[op++].len;
        stripe_init(&xf->stripes[s], op, b - cum, e - b);
    }
    if (k == 0 && inline_notif) {
        stripe_init(&xf->stripes[0], 0, 0, 0); /* the NOTIF alone */
        k = 1;
    }
    if (inline_notif) xf->stripes[0].notif = 1;
    xf->data_left = k;
    xf->pending = k + (xf->notif_deferred ? 1u : 0u);
    if (k > 1) atomic_fetch_add_explicit(&g->tcp->striped, 1, memory_order_relaxed);
    for (unsigned s = 0; s < k; s++) conn_enqueue(g->conns[s], &xf->stripes[s]);
    if (k > 1 || xf->notif_deferred) {
        xf->ordered = 1;
        if (g->ord_tail != NULL)
            g->ord_tail->ord_next = xf;
        else
            g->ord_head = xf;
        g->ord_tail = xf;
        if (xf->data_left == 0) order_settle(g); /* a data-less NOTIF */
    }
}

void tcp_group_dispatch(tcp_group_t *g)
{
    tcp_xfer_t *q;

    pthread_mutex_lock(&g->lock);
    q = g->q_head;
    g->q_head = g->q_tail = NULL;
    atomic_store_explicit(&g->posted, 0, memory_order_relaxed);
    pthread_mutex_unlock(&g->lock);
    while (q != NULL) {
        tcp_xfer_t *next = q->next;
        xfer_split(g, q);
        q = next;
    }
}

void tcp_group_post_direct(tcp_group_t *g, tcp_xfer_t *xf)
{
    g->by_agent = 1;
    if (atomic_load_explicit(&g->reader, memory_order_relaxed) == TCP_READER_KEPT)
        g->kept_ns = mixl_now_ns();
    xfer_split(g, xf);
    atomic_fetch_add_explicit(&g->tcp->direct_posts, 1, memory_order_relaxed);
    tcp_group_kicks(g);
    g->by_agent = 0;
}

void tcp_group_kicks(tcp_group_t *g)
{
    int again = 1;

    if (g->busy) return; /* the outer call loops until nothing is left */
    g->busy = 1;
    while (again && atomic_load(&g->state) == CONN_UP) {
        again = 0;
        for (unsigned i = 0; i < g->n; i++) {
            tcp_conn_t *c = g->conns[i];
            if (c == NULL || !c->kick || atomic_load(&c->state) != CONN_UP) continue;
            tcp_client_send(c);
            again = 1;
        }
    }
    g->busy = 0;
}

/* ------------------------------------------------------------------------ */
/* Failure                                                                   */

void tcp_group_abort(tcp_group_t *g, mixl_status_t status, const char *msg)
{
    mixl_status_t st = status == MIXL_OK ? MIXL_ERR_DISCONNECTED : status;
    uint64_t now = mixl_now_ns();
    int affected = g->ord_head != NULL;
    tcp_xfer_t *q;

    if (atomic_load(&g->state) == CONN_DEAD) return;
    for (unsigned i = 0; i < g->n; i++) {
        tcp_conn_t *c = g->conns[i];
        if (c != NULL && (c->inflight > 0 || c->sq_head != NULL)) affected = 1;
    }
    pthread_mutex_lock(&g->lock);
    affected |= g->q_head != NULL;
    atomic_store(&g->state, CONN_DEAD);
    g->dead_status = st;
    snprintf(g->dead_msg, sizeof(g->dead_msg), "%s", msg);
    q = g->q_head;
    g->q_head = g->q_tail = NULL;
    atomic_store(&g->posted, 0);
    pthread_mutex_unlock(&g->lock);
    /* An error only where it costs a transfer; an idle connection whose
     * peer went away is news, not an error. */
    if (status == MIXL_OK)
        mixl_debug("%s", msg);
    else if (affected)
        mixl_error("%s (%s)", msg, mixl_status_str(status));
    else
        mixl_info("%s (%s)", msg, mixl_status_str(status));

    /* A transfer past its deadline reports that, whatever broke. */
    for (unsigned i = 0; i < g->n; i++) {
        tcp_conn_t *c = g->conns[i];
        if (c == NULL) continue;
        for (tcp_stripe_t *s = c->sq_head; s != NULL; s = s->next)
            if (now >= s->xf->deadline_ns) tcp_xfer_fail(s->xf, MIXL_ERR_TIMED_OUT, msg);
        for (unsigned j = 0; c->inflight > 0 && j < TCP_SLOTS; j++)
            if (c->slots[j] != NULL && now >= c->slots[j]->xf->deadline_ns)
                tcp_xfer_fail(c->slots[j]->xf, MIXL_ERR_TIMED_OUT, msg);
    }
    for (unsigned i = 0; i < g->n; i++)
        if (g->conns[i] != NULL) tcp_conn_fail_stripes(g->conns[i], st, msg);
    order_settle(g); /* what waited only on the order finishes now */
    while (q != NULL) {
        tcp_xfer_t *next = q->next;
        q->first_err = now >= q->deadline_ns ? MIXL_ERR_TIMED_OUT : st;
        snprintf(q->err, sizeof(q->err), "%s", msg);
        tcp_xfer_finish(q, q->first_err);
        q = next;
    }
}
