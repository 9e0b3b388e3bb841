/*
 * State shared by the files of the TCP backend: the backend instance, its
 * region table, connections (client = we initiate transfers on it, server =
 * a peer initiates transfers into our memory), and the per-transfer state.
 *
 * Files: tcp_proto.c (wire codec), tcp_backend.c (the ops table), tcp_engine.c
 * (listener, epoll, progress thread), tcp_client.c (connect and handshake),
 * tcp_conn.c (what both roles share), tcp_server.c and tcp_client_io.c (each
 * role's frames), tcp_stage_cuda.c (device-memory staging, CUDA builds only).
 *
 * A peer is reached through a group of 1..TCP_CONNS_MAX client connections
 * (data_plane.tcp.connections); a transfer's bytes are split into stripes,
 * one per connection, each a request of its own on the wire. Notifications
 * keep their order through the group (tcp_group.c).
 *
 * Threads: the agent's thread calls the ops; one progress thread per backend
 * serves every socket after its handshake. They meet at five points only:
 *   - group->work: whoever holds it works the group's client connections
 *     (their send state, request slots, stripes and order queue). The
 *     progress thread takes it for every event on them; a post takes it
 *     only if it is free (trylock) and then writes the transfer's frames
 *     itself until the socket is full, so a request on an idle connection
 *     costs no hand-off to the progress thread (tcp_group_post_direct); a
 *     caller waiting in xfer_wait, or pausing between polls, reads the
 *     answers itself the same way and keeps them until it reads again
 *     (tcp_client_wait, TCP_READER_KEPT). Only the progress thread closes
 *     a connection or changes the connection list: an error found by the
 *     agent's thread marks the connection CONN_CLOSING and wakes it;
 *   - group->lock guards a peer group's post queue and state (taken after
 *     group->work when both are held);
 *   - tcp->regions_lock guards the region table and every access the
 *     progress thread makes to registered memory;
 *   - tcp->notif_lock guards the arrived-notification ring;
 *   - tcp_engine_call() runs a function on the progress thread and waits.
 * A transfer's status is an atomic written by the progress thread (release)
 * and read by xfer_test (acquire).
 */
#ifndef MIXL_TCP_INTERNAL_H
#define MIXL_TCP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport/tcp/tcp_proto.h"
#include "transport/transport.h"

#define TCP_SLOTS 1024      /* transfers awaiting an answer per client connection */
#define TCP_SRV_RING 256    /* queued answers per server connection */
#define TCP_TICK_MS 20      /* progress thread wake-up for deadlines */
#define TCP_WAIT_POLL_MS 1000 /* longest poll of a caller reading answers (tcp_client_wait) */
#define TCP_READ_BUDGET (16u << 20) /* bytes read from one socket per event, for fairness */
#define TCP_RCVLOWAT_DEFAULT (256 << 10) /* wake inside a payload for this much (rx_lowat) */
#define TCP_AHEAD 512 /* bytes read past a frame's end in the same recv (next headers) */
#define TCP_ERR_LEN 256
#define TCP_SECRET_MIN 16
#define TCP_SECRET_MAX 1024
#define TCP_TEST_PAUSE_NS 100000 /* longest pause of a caller polling xfer_test (test_pause) */
#define TCP_CONNS_MAX 16    /* connections per peer */
#define TCP_CONNS_DEFAULT 1 /* one stream fills loopback; docs/performance.md */
#define TCP_POLL_US_DEFAULT 0 /* watch after a completion: off; no gain measured on 2 cores, docs/performance.md */
#define TCP_POLL_US_MAX 10000
/* Smallest stripe: a transfer is spread over k connections only when each
 * gets at least this much, so small transfers ride the lead connection
 * alone (and keep their notification inline). */
#define TCP_STRIPE_MIN (256u << 10)
#define TCP_STRIPE_ALIGN 4096u /* stripe boundaries inside a transfer */

typedef struct tcp tcp_t;
typedef struct tcp_conn tcp_conn_t;
typedef struct tcp_group tcp_group_t;
typedef struct tcp_xfer tcp_xfer_t;

typedef struct tcp_region {
    uint32_t id;
    uint8_t *addr;
    size_t len;
    mixl_mem_type_t mem_type;
    int device;
    struct tcp_region *next;
} tcp_region_t;

enum { CONN_HANDSHAKE = 0, CONN_UP = 1, CONN_CLOSING = 2, CONN_DEAD = 3 };
enum { ROLE_CLIENT = 0, ROLE_SERVER = 1 };

/* Receive-side payload destinations. */
enum { RX_HDR = 0, RX_DIRECT, RX_STAGE, RX_DRAIN, RX_SMALL };

/*
 * One connection's share of a transfer: a request of its own on the wire
 * (own id, own LAST frame, own ACK). Its bytes are a contiguous run of the
 * transfer's spans. Progress thread only.
 */
typedef struct tcp_stripe {
    tcp_xfer_t *xf;
    tcp_conn_t *conn;
    uint64_t req_id;
    uint32_t slot;
    uint8_t notif;            /* ends with the transfer's NOTIF frame */
    uint8_t notif_done;
    size_t tx_op;             /* next span to frame, offset in it, bytes left */
    uint64_t tx_off, tx_left;
    size_t rx_op;             /* READ: where the next response bytes go */
    uint64_t rx_off, rx_left;
    uint64_t asked;           /* READ: bytes requested minus bytes received */
    struct tcp_stripe *next;  /* conn's stripe queue */
} tcp_stripe_t;

/* A client-side transfer (xfer->tp_priv). */
struct tcp_xfer {
    mixl_tp_xfer_t *x;
    tcp_group_t *group;
    _Atomic int status;       /* MIXL_IN_PROGRESS, MIXL_OK or an error */
    int reported;             /* error copied to the agent's buffer (agent thread) */
    unsigned tests;           /* xfer_test calls that found it in flight (agent thread) */
    int notif_always;         /* send a NOTIF frame even when it is empty */
    int direct;               /* no device memory: the agent's thread may write its frames
                               * and read its answers (tcp_group_post_direct, tcp_client_wait) */
    int staged;               /* (work) counted in group->staged */
    uint64_t deadline_ns;
    struct tcp_xfer *next;    /* group post queue (group->lock) */
    /* progress-thread fields */
    unsigned data_left;       /* data stripes not yet answered */
    unsigned pending;         /* stripes not yet answered, the deferred NOTIF included */
    int notif_deferred;       /* NOTIF waits until this and every earlier transfer's data is in */
    int ordered;              /* linked in the group's order queue */
    mixl_status_t first_err;
    struct tcp_xfer *ord_next;
    char err[TCP_ERR_LEN];
    tcp_stripe_t stripes[];   /* group->n data stripes, then the deferred NOTIF */
};

/* An answer queued on a server connection. */
typedef struct {
    uint8_t kind;          /* MIXL_TCP_READ_RESP, MIXL_TCP_ACK, MIXL_TCP_ERROR */
    uint8_t crc;           /* READ_RESP: checksum the payload */
    uint8_t send_ack;      /* ACK: send a frame (0 = only deliver the notification) */
    uint8_t notif_len;
    uint8_t deliver;       /* ACK: push the notification when this answer is reached */
    uint64_t req_id;
    uint32_t region;
    uint64_t offset;       /* READ_RESP: next offset to send */
    uint64_t left;         /* READ_RESP: bytes still to send */
    int32_t status;        /* ERROR */
    uint8_t notif[MIXL_TCP_NOTIF_MAX];
    char msg[160];         /* ERROR */
} tcp_answer_t;

/* Frame being written: header plus payload, resumable after EAGAIN. */
typedef struct {
    uint8_t hdr[MIXL_TCP_HDR_LEN];
    size_t hdr_len, hdr_sent;
    const uint8_t *pay;
    uint64_t pay_len, pay_sent;
    int active;
    int region_mem;        /* payload points into a registered region (regions_lock) */
    uint32_t region_id;
    uint64_t region_gen;
} tcp_txframe_t;

struct tcp_conn {
    tcp_t *tcp;
    int fd;
    int role;
    _Atomic int state;
    char peer_name[MIXL_NAME_MAX];
    char where[96];        /* "host:port" for messages */
    uint32_t max_frame;
    uint32_t caps;         /* negotiated */
    uint32_t ev;           /* epoll mask now set */
    int in_engine;         /* linked into tcp->conns (progress thread) */
    tcp_group_t *group;    /* client: the peer group it belongs to */
    unsigned index;        /* client: place in the group (0 = lead) */
    int kick;              /* client: stripes queued since its last write turn */
    struct tcp_conn *next;
    struct tcp_conn *next_dead; /* server connections waiting to be freed */
    uint64_t hs_deadline_ns;
    uint8_t hs_buf[MIXL_TCP_HELLO_MAX];
    size_t hs_got;
    size_t hs_out_len, hs_out_sent; /* server reply being written */
    int hs_refused;
    int hs_stage;          /* server: 0 hello, 1 waiting for the client's AUTH frame */
    uint8_t hs_nonce_c[MIXL_TCP_NONCE_LEN], hs_nonce_s[MIXL_TCP_NONCE_LEN];

    /* receive state (progress thread) */
    int rx_mode;
    uint8_t rx_ahead[TCP_AHEAD]; /* bytes received past the current frame, not yet used */
    uint32_t ahead_off, ahead_len;
    int rx_drained;         /* the last recv came back short: the socket is empty */
    int rcvlowat;           /* SO_RCVLOWAT now set (0: the kernel's default, 1) */
    uint8_t rx_hdr[MIXL_TCP_HDR_LEN];
    size_t rx_hdr_got;
    mixl_tcp_frame_t rx;
    uint64_t rx_got;
    uint8_t *rx_dst;        /* RX_DIRECT: into region memory or local memory */
    uint8_t rx_small[MIXL_TCP_ERROR_MAX];
    uint32_t rx_region_id;  /* server RX_DIRECT/STAGE: region being written */
    uint64_t rx_region_gen;
    uint64_t rx_region_off;
    int rx_device;          /* server RX_STAGE: the region's device */
    tcp_stripe_t *rx_stripe; /* client: stripe the payload belongs to */
    uint8_t *scratch;       /* drain buffer and zero fill, max_frame bytes */
    /* Device payloads: a copy engine with two pinned slots per direction,
     * made on first use (tcp_stage_cuda.c). Receive and send slots are apart:
     * a send paused on EAGAIN still reads its slot while frames arrive. */
    struct mixl_ce *ce;
    mixl_errbuf_t stage_eb;   /* the last staging failure */
    uint8_t *rx_stage;        /* RX_STAGE: the slot this frame is received into */
    unsigned rx_slot;         /* receive slot of the next device frame (0 or 1) */
    int rx_pending;           /* copies into device memory not yet waited for */
    unsigned tx_slot;         /* send slot of the frame on the wire */
    const void *pf_src;       /* the next frame, copied ahead into pf_slot */
    size_t pf_len;            /* 0: no copy ahead */
    int pf_dev;
    unsigned pf_slot;
    uint64_t stage_rx_async;  /* device frames received with the copy left running */
    uint64_t stage_prefetched; /* device frames sent from a slot filled ahead */
    uint8_t tx_small[MIXL_TCP_ERROR_MAX]; /* ERROR payload being sent */
    int peer_closed;        /* CLOSE received */
    mixl_status_t abort_status; /* client, CONN_CLOSING: why the agent's thread gave it up; */
    char abort_why[TCP_ERR_LEN];  /* the progress thread closes it (tcp_conn_abort) */
    uint64_t stale_frames;  /* answers for unknown request ids, drained */

    /* server: failed request being drained, and the queued answers */
    uint64_t rx_failed_req;
    int rx_failed;
    int32_t rx_failed_status;
    char rx_failed_msg[160];
    uint64_t tx_failed_req;
    int tx_failed;
    int32_t tx_failed_status;
    char tx_failed_msg[160];
    tcp_answer_t *ring;
    unsigned ring_head, ring_count;

    /* client: stripes to frame and those awaiting an answer (progress thread) */
    tcp_stripe_t *sq_head, *sq_tail; /* queued, not yet framed */
    tcp_stripe_t *tx_cur;        /* being framed */
    tcp_stripe_t **slots;        /* TCP_SLOTS, by req_id % TCP_SLOTS */
    uint32_t *slot_gen;
    uint32_t *free_slots;
    unsigned nfree;
    unsigned inflight;

    tcp_txframe_t tx;
};

/*
 * Who reads a group's answers. The progress thread (NONE, EPOLLIN armed),
 * or the agent's thread: while it reads them in xfer_wait or in a polling
 * caller's pause (WAITING), and from then until it reads again (KEPT): a
 * caller that posts and waits (or polls) in a loop keeps the answers to
 * itself, with no EPOLLIN and no epoll_ctl per request, and no window after
 * a post in which the answer wakes the progress thread instead. They go
 * back (tcp_client_unkeep) on a second test of a transfer to the peer that
 * is not the one the caller's pauses read, a device transfer, an error or
 * hang-up event, a deadline passed, or TCP_TICK_MS without a post.
 */
enum { TCP_READER_NONE = 0, TCP_READER_WAITING = 1, TCP_READER_KEPT = 2 };

/*
 * The connections to one peer. The agent's thread posts whole transfers to
 * the group's queue; the progress thread splits them into stripes and keeps
 * the notification order (tcp_group.c). One connection failing fails the
 * group: every connection is closed and every transfer on it fails.
 */
struct tcp_group {
    tcp_t *tcp;
    unsigned n;                  /* connections */
    tcp_conn_t *conns[TCP_CONNS_MAX];
    int refs;                    /* peer + prepared transfers (agent thread) */
    pthread_mutex_t work;        /* held by the thread working the connections (above) */
    int by_agent;                /* (work) held by the agent's thread: aborts are deferred */
    _Atomic int reader;          /* (work to write) TCP_READER_*: who reads the answers */
    uint64_t kept_ns;            /* (work) last read or post while TCP_READER_KEPT */
    unsigned staged;             /* (work) transfers in flight that are not `direct` */
    pthread_mutex_t lock;
    _Atomic int state;           /* CONN_UP or CONN_DEAD */
    _Atomic int posted;          /* the post queue is not empty */
    tcp_xfer_t *q_head, *q_tail; /* posted, not yet split (lock) */
    mixl_status_t dead_status;   /* (lock) */
    char dead_msg[TCP_ERR_LEN];  /* (lock) */
    /* progress thread */
    tcp_xfer_t *ord_head, *ord_tail; /* transfers whose data a later NOTIF must follow */
    int busy;                    /* inside dispatch or kicks: no re-entry */
    uint64_t next_deadline_check;
};

typedef struct {
    char name[MIXL_NAME_MAX];
    char host[MIXL_NAME_MAX];
    int port;
    tcp_group_t *group; /* current connections, NULL until first use */
} tcp_peer_t;

typedef void (*tcp_call_fn)(tcp_t *tcp, void *arg);

struct tcp {
    mixl_tp_t *tp;
    char name[MIXL_NAME_MAX];
    char bind_host[MIXL_NAME_MAX];
    int port;
    int timeout_ms;
    uint32_t max_frame;
    unsigned conns_per_peer; /* data_plane.tcp.connections */
    uint32_t caps;          /* what we offer */
    int use_crc;            /* checksum what we send (MIXL_TCP_CRC=1) */
    int direct;             /* the agent's thread writes frames and reads answers when it
                             * can (MIXL_TCP_DIRECT, default 1) */
    uint8_t secret[TCP_SECRET_MAX]; /* per-job secret; secret_len 0 = none */
    size_t secret_len;
    _Atomic uint64_t auth_rejected; /* incoming peers refused by authentication */
    _Atomic uint64_t accepted;      /* incoming connections that completed the handshake */
    _Atomic uint64_t striped;       /* transfers spread over more than one connection */
    _Atomic uint64_t rx_reads;      /* recv calls on data connections (rx_lowat keeps them few) */

    int listen_fd, epoll_fd, wake_fd;
    pthread_t thread;
    int thread_started;
    _Atomic int stop;
    _Atomic int wake_pending;
    /* `awake`: the progress thread is not sleeping in epoll, so a poster's
     * store to wake_pending is seen without an eventfd write
     * (tcp_engine_wake, engine_sleep). After a turn that completed a
     * transfer the thread may also watch wake_pending for poll_ns before it
     * sleeps: an application that posts its next transfer at once (the
     * completion woke it) then needs no wake-up of this thread either. */
    uint64_t poll_ns;
    int rcvlowat_max;       /* largest SO_RCVLOWAT inside a payload; 0 = left at 1 (rx_lowat) */
    _Atomic int awake;
    _Atomic uint64_t polled_posts; /* posts caught by the watch, without a wake-up */
    _Atomic uint64_t direct_posts; /* posts whose frames the posting thread wrote */
    _Atomic uint64_t agent_reads;  /* waits in which the agent's thread read answers */
    _Atomic uint64_t unkept;       /* kept answers given back to the progress thread */
    _Atomic uint64_t keep_ns;      /* kept answers go back after this long without a post
                                    * (TCP_TICK_MS; tests lengthen it) */
    tcp_conn_t *conns;      /* every connection the progress thread serves */
    tcp_conn_t *dead;       /* server connections closed in this loop turn */

    pthread_mutex_t call_lock;
    pthread_cond_t call_cond;
    tcp_call_fn call_fn;
    void *call_arg;
    int call_done;

    pthread_mutex_t regions_lock;
    tcp_region_t *regions;
    uint64_t regions_gen;   /* bumped when a region goes away */

    /* Completion signal: the thread that ends a transfer bumps `completions`
     * and, once it has let go of the work lock, wakes the futex waiters
     * (tcp_completions_wake); xfer_test and xfer_wait sleep on it. */
    _Atomic uint32_t completions;
    _Atomic int waiters;
    _Atomic int wake_owed;  /* a completion since the last tcp_completions_wake */
    /* Agent thread: what a polling caller last saw (test_pause). */
    uint32_t test_seen;     /* completions at the last in-progress answer */
    const tcp_xfer_t *test_anchor; /* first in-progress answer since the last pause */
    const tcp_group_t *test_group; /* the anchor's group (compared, never followed) */

    pthread_mutex_t notif_lock;
    mixl_notif_t *notifs;
    size_t notif_cap, notif_head, notif_count;
    _Atomic int notif_blocked;
};

/* tcp_engine.c */
mixl_status_t tcp_engine_start(tcp_t *tcp);
void tcp_engine_stop(tcp_t *tcp);
void tcp_engine_wake(tcp_t *tcp);
mixl_status_t tcp_engine_call(tcp_t *tcp, tcp_call_fn fn, void *arg);
/* Progress thread: add an established connection / drop one. */
void tcp_engine_attach(tcp_t *tcp, tcp_conn_t *conn);
void tcp_engine_detach(tcp_t *tcp, tcp_conn_t *conn);
void tcp_conn_set_events(tcp_conn_t *conn, uint32_t ev);

/* tcp_conn.c: what both roles share (progress thread unless said otherwise) */
tcp_conn_t *tcp_conn_new(tcp_t *tcp, int fd, int role);
void tcp_conn_free(tcp_conn_t *conn);
/* Buffers sized by the negotiated frame size; 0 when out of memory. */
int tcp_conn_buffers(tcp_conn_t *conn);
void tcp_conn_readable(tcp_conn_t *conn);

/* What a role adds to the shared receive state machine (tcp_conn_rx). */
typedef struct {
    /* Decide where the payload of conn->rx goes (conn->rx_mode); RX_HDR
     * when it has none. May abort the connection. */
    void (*frame_begin)(tcp_conn_t *conn);
    /* The frame is complete (payload received, drained, or none). */
    void (*frame_end)(tcp_conn_t *conn);
    /* Optional: 0 stops reading before the next header (answers must drain). */
    int (*header_room)(tcp_conn_t *conn);
    /* Optional: before receiving into conn->rx_dst, make sure it may still be
     * written and hold that (1), or switch to RX_DRAIN (0). */
    int (*direct_guard)(tcp_conn_t *conn);
    void (*direct_unguard)(tcp_conn_t *conn);
    int eof_between_frames_ok; /* EOF at a frame boundary is an orderly close */
} tcp_rx_role_t;
void tcp_conn_rx(tcp_conn_t *conn, const tcp_rx_role_t *role);
void tcp_conn_writable(tcp_conn_t *conn);
/* Fail everything on the connection and close its socket; a client
 * connection takes the rest of its group with it (tcp_group_abort). */
void tcp_conn_abort(tcp_conn_t *conn, mixl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Part of a group abort: fail the connection's stripes and close it. */
void tcp_conn_fail_stripes(tcp_conn_t *conn, mixl_status_t status, const char *msg);
/* Abort after a failed recv/send (n = its result; errno set when n < 0). */
void tcp_conn_io_error(tcp_conn_t *conn, const char *where, ssize_t n);
/* Start writing a frame; tcp_send_frame() then returns 1 sent, 0 socket full, -1 error. */
void tcp_frame_start(tcp_conn_t *conn, const mixl_tcp_frame_t *f, const uint8_t *pay);
int tcp_send_frame(tcp_conn_t *conn);
/* Publish a transfer's end (release store read by xfer_test); its waiters
 * are woken by the next tcp_completions_wake. */
void tcp_xfer_finish(tcp_xfer_t *xf, mixl_status_t st);
/* Wake the threads sleeping on completions if one came since the last call. */
void tcp_completions_wake(tcp_t *tcp);
/* Let go of g->work, then wake completion waiters (never while holding it). */
void tcp_group_unlock(tcp_group_t *g);
void tcp_slot_release(tcp_conn_t *conn, tcp_stripe_t *st);

/* tcp_group.c (progress thread unless said otherwise) */
/* Agent thread: connect every connection of a new group to the peer. */
mixl_status_t tcp_group_connect(tcp_t *tcp, tcp_peer_t *peer, tcp_group_t **group_p);
/* Agent thread: drop the group's connections (CLOSE) and free it. */
void tcp_group_release(tcp_t *tcp, tcp_group_t *g);
/* The functions below until tcp_group_abort are called with g->work held. */
/* Split the posted transfers into stripes on the connections' queues. */
void tcp_group_dispatch(tcp_group_t *g);
/* Write on every connection that got stripes queued (no re-entry). */
void tcp_group_kicks(tcp_group_t *g);
/* Posting thread, the post queue empty (earlier posts go first): split xf
 * and write its frames until the sockets are full; the progress thread
 * carries on from there (EPOLLOUT). */
void tcp_group_post_direct(tcp_group_t *g, tcp_xfer_t *xf);
/* A stripe was answered (ACK: MIXL_OK) or failed: count it against its
 * transfer, send deferred notifications whose turn came, finish transfers. */
void tcp_stripe_end(tcp_stripe_t *st, mixl_status_t status, const char *msg);
/* Record a transfer's failure; the first one wins (its status and message). */
void tcp_xfer_fail(tcp_xfer_t *xf, mixl_status_t status, const char *msg);
/* Fail every transfer of the group and close all its connections. */
void tcp_group_abort(tcp_group_t *g, mixl_status_t status, const char *msg);

/* tcp_server.c */
void tcp_server_handshake(tcp_conn_t *conn);
void tcp_server_readable(tcp_conn_t *conn);
void tcp_server_writable(tcp_conn_t *conn);

/* tcp_client_io.c: the progress thread's events (each takes group->work). */
void tcp_client_readable(tcp_conn_t *conn);
void tcp_client_writable(tcp_conn_t *conn);
void tcp_conn_check_deadlines(tcp_conn_t *conn, uint64_t now);
/* Write what the connection has queued, until the socket is full; the
 * caller holds group->work (either thread). */
void tcp_client_send(tcp_conn_t *conn);
/* Agent thread, waiting for xf until deadline_ns: read the group's answers
 * on this thread (no progress-thread hand-off per answer) while xf is in
 * flight. 1 when xf ended or the thread waited on the sockets; 0 when it
 * could not (another thread works the group, a post waits in its queue, a
 * transfer with device memory is in flight on it, or the connections are
 * failing): the caller sleeps on completions then. Having read, it leaves
 * the answers kept (TCP_READER_KEPT) for its next wait or pause. */
int tcp_client_wait(tcp_group_t *g, tcp_xfer_t *xf, uint64_t deadline_ns);
/* g->work held: the progress thread reads g's answers again (TCP_READER_KEPT
 * ends). */
void tcp_client_unkeep(tcp_group_t *g);

/* tcp_engine.c: options every MIXL socket gets (no Nagle, keepalive probes
 * so a half-open connection to a vanished host is found). */
void tcp_socket_options(int fd);

/* tcp_client.c: connect and handshake on the agent's thread; the
 * connection is handed to the progress thread as member `index` of g. */
mixl_status_t tcp_client_connect(tcp_t *tcp, tcp_peer_t *peer, tcp_group_t *g, unsigned index,
                                 tcp_conn_t **conn_p);

/* tcp_regions.c */
tcp_region_t *tcp_region_find(tcp_t *tcp, uint32_t id);
int tcp_notif_push(tcp_t *tcp, const char *peer, const uint8_t *payload, size_t len);

/* tcp_auth.c: the per-job secret and the HMAC-SHA256 challenge-response. */
mixl_status_t tcp_auth_init(tcp_t *tcp, const mixl_agent_params_t *params);
int tcp_auth_nonce(uint8_t nonce[MIXL_TCP_NONCE_LEN]); /* 1 ok */
/* MAC a side sends: role_server 1 for the server's proof, 0 for the client's. */
void tcp_auth_mac(const tcp_t *tcp, int role_server, const uint8_t nonce_c[MIXL_TCP_NONCE_LEN],
                  const uint8_t nonce_s[MIXL_TCP_NONCE_LEN], const char *server,
                  const char *client, uint8_t mac[MIXL_TCP_MAC_LEN]);
int tcp_auth_equal(const uint8_t *a, const uint8_t *b); /* constant time, MAC length */
/* Count and log a peer refused by authentication (progress thread). */
void tcp_auth_reject(tcp_conn_t *conn, const char *why);

/* tcp_stage_cuda.c (only when CUDA is compiled in; progress thread). On
 * failure the message is tcp_stage_error(conn). */
#ifdef MIXL_HAVE_CUDA
typedef struct {
    const void *src; /* device memory */
    size_t len;
    int device;
} tcp_stage_piece_t;
/* The slot the next device frame is received into (waits for the copy that
 * last left it); NULL on failure. */
uint8_t *tcp_stage_rx_buf(tcp_conn_t *conn, int device);
/* The frame is in the slot: start its copy to dst and move to the other slot. */
mixl_status_t tcp_stage_rx_commit(tcp_conn_t *conn, void *dst, size_t len, int device);
/* Wait for every copy into device memory started so far. */
mixl_status_t tcp_stage_rx_drain(tcp_conn_t *conn);
/* Host bytes of device piece now, ready to send; starts copying next (the
 * request's following frame, or NULL) into the other slot. NULL on failure. */
const uint8_t *tcp_stage_tx(tcp_conn_t *conn, const tcp_stage_piece_t *now,
                            const tcp_stage_piece_t *next);
/* Wait for every copy of the connection (teardown, deregistration). */
void tcp_stage_drain(tcp_conn_t *conn);
const char *tcp_stage_error(const tcp_conn_t *conn);
void tcp_stage_free(tcp_conn_t *conn);
#endif

#endif /* MIXL_TCP_INTERNAL_H */
