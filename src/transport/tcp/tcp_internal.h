/*
 * State shared by the files of the TCP backend: the backend instance, its
 * region table, connections (client = we initiate transfers on it, server =
 * a peer initiates transfers into our memory), and the per-transfer state.
 *
 * Files: tcp_proto.c (wire codec), tcp_backend.c (the ops table), tcp_engine.c
 * (listener, epoll, progress thread), tcp_client.c (connect and handshake),
 * tcp_conn.c (what both roles share), tcp_server.c and tcp_client_io.c (each
 * role's frames), tcp_cuda.c (device-memory staging, CUDA builds only).
 *
 * Threads: the agent's thread calls the ops; one progress thread per backend
 * owns every socket after its handshake. They meet at four points only:
 *   - conn->lock guards a client connection's post queue and state;
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
#define TCP_READ_BUDGET (16u << 20) /* bytes read from one socket per event, for fairness */
#define TCP_ERR_LEN 256
#define TCP_SECRET_MIN 16
#define TCP_SECRET_MAX 1024
#define TCP_TEST_PAUSE_NS 100000 /* longest pause of xfer_test with nothing completed */

typedef struct tcp tcp_t;
typedef struct tcp_conn tcp_conn_t;

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

/* A client-side transfer (xfer->tp_priv). */
typedef struct tcp_xfer {
    mixl_tp_xfer_t *x;
    tcp_conn_t *conn;
    _Atomic int status;       /* MIXL_IN_PROGRESS, MIXL_OK or an error */
    int reported;             /* error copied to the agent's buffer (agent thread) */
    int notif_always;         /* send a NOTIF frame even when it is empty */
    uint64_t deadline_ns;
    /* progress-thread fields */
    uint64_t req_id;
    uint32_t slot;
    mixl_status_t early;      /* failure noticed before the answer (CRC) */
    size_t tx_op;             /* next span to frame */
    uint64_t tx_off;
    int tx_notif_done;
    size_t rx_op;             /* READ: where the next response bytes go */
    uint64_t rx_off;
    struct tcp_xfer *next;    /* post queue (conn->lock) */
    char err[TCP_ERR_LEN];
} tcp_xfer_t;

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
    int refs;              /* client: peer + prepared transfers (agent thread) */
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
    uint8_t rx_hdr[MIXL_TCP_HDR_LEN];
    size_t rx_hdr_got;
    mixl_tcp_frame_t rx;
    uint64_t rx_got;
    uint8_t *rx_dst;        /* RX_DIRECT: into region memory or local memory */
    uint8_t rx_small[MIXL_TCP_ERROR_MAX];
    uint32_t rx_region_id;  /* server RX_DIRECT/STAGE: region being written */
    uint64_t rx_region_gen;
    uint64_t rx_region_off;
    tcp_xfer_t *rx_xfer;    /* client: transfer the payload belongs to */
    uint8_t *scratch;       /* drain buffer and zero fill, max_frame bytes */
    /* Pinned staging for device memory, max_frame bytes each: one for frames
     * being received, one for frames being sent. A send paused on EAGAIN
     * still reads stage_tx while the next frame is received into stage_rx. */
    uint8_t *stage_rx;
    uint8_t *stage_tx;
    uint8_t tx_small[MIXL_TCP_ERROR_MAX]; /* ERROR payload being sent */
    int peer_closed;        /* CLOSE received */
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

    /* client: posted transfers and those awaiting an answer */
    pthread_mutex_t lock;
    tcp_xfer_t *q_head, *q_tail; /* posted, not yet framed (lock) */
    tcp_xfer_t *tx_cur;          /* being framed (progress thread) */
    tcp_xfer_t **slots;          /* TCP_SLOTS, by req_id % TCP_SLOTS */
    uint32_t *slot_gen;
    uint32_t *free_slots;
    unsigned nfree;
    unsigned inflight;
    uint64_t next_deadline_check;
    mixl_status_t dead_status;
    char dead_msg[TCP_ERR_LEN];

    tcp_txframe_t tx;
};

typedef struct {
    char name[MIXL_NAME_MAX];
    char host[MIXL_NAME_MAX];
    int port;
    tcp_conn_t *conn; /* current connection, NULL until first use */
} tcp_peer_t;

typedef void (*tcp_call_fn)(tcp_t *tcp, void *arg);

struct tcp {
    mixl_tp_t *tp;
    char name[MIXL_NAME_MAX];
    char bind_host[MIXL_NAME_MAX];
    int port;
    int timeout_ms;
    uint32_t max_frame;
    uint32_t caps;          /* what we offer */
    int use_crc;            /* checksum what we send (MIXL_TCP_CRC=1) */
    uint8_t secret[TCP_SECRET_MAX]; /* per-job secret; secret_len 0 = none */
    size_t secret_len;
    _Atomic uint64_t auth_rejected; /* incoming peers refused by authentication */

    int listen_fd, epoll_fd, wake_fd;
    pthread_t thread;
    int thread_started;
    _Atomic int stop;
    _Atomic int wake_pending;
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

    /* Completion signal: the progress thread bumps `completions` after each
     * transfer ends and wakes a futex waiter; xfer_test sleeps on it. */
    _Atomic uint32_t completions;
    _Atomic int waiters;
    uint32_t test_seen;     /* agent thread: completions at the last in-progress answer */

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
#ifdef MIXL_HAVE_CUDA
/* Pinned staging buffers for received and sent device payloads, made on first use. */
uint8_t *tcp_conn_stage_rx(tcp_conn_t *conn);
uint8_t *tcp_conn_stage_tx(tcp_conn_t *conn);
#endif
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
/* Fail everything on the connection and close its socket. */
void tcp_conn_abort(tcp_conn_t *conn, mixl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Abort after a failed recv/send (n = its result; errno set when n < 0). */
void tcp_conn_io_error(tcp_conn_t *conn, const char *where, ssize_t n);
/* Start writing a frame; tcp_send_frame() then returns 1 sent, 0 socket full, -1 error. */
void tcp_frame_start(tcp_conn_t *conn, const mixl_tcp_frame_t *f, const uint8_t *pay);
int tcp_send_frame(tcp_conn_t *conn);
/* Publish a transfer's end (release store read by xfer_test). */
void tcp_xfer_finish(tcp_xfer_t *xf, mixl_status_t st);
void tcp_slot_release(tcp_conn_t *conn, tcp_xfer_t *xf);

/* tcp_server.c */
void tcp_server_handshake(tcp_conn_t *conn);
void tcp_server_readable(tcp_conn_t *conn);
void tcp_server_writable(tcp_conn_t *conn);

/* tcp_client_io.c */
void tcp_client_readable(tcp_conn_t *conn);
void tcp_client_writable(tcp_conn_t *conn);
void tcp_conn_check_deadlines(tcp_conn_t *conn, uint64_t now);

/* tcp_engine.c: options every MIXL socket gets (no Nagle, keepalive probes
 * so a half-open connection to a vanished host is found). */
void tcp_socket_options(int fd);

/* tcp_client.c: connect and handshake on the agent's thread. */
mixl_status_t tcp_client_connect(tcp_t *tcp, tcp_peer_t *peer, tcp_conn_t **conn_p);

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

/* tcp_cuda.c (only when CUDA is compiled in) */
#ifdef MIXL_HAVE_CUDA
mixl_status_t tcp_cuda_to_host(void *dst, const void *src, size_t len, int device);
mixl_status_t tcp_cuda_from_host(void *dst, const void *src, size_t len, int device);
void *tcp_cuda_host_alloc(size_t len);
void tcp_cuda_host_free(void *p);
#endif

#endif /* MIXL_TCP_INTERNAL_H */
