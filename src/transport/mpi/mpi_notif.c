/*
 * Notifications over MPI windows. MPI has no notified RMA, so each rank
 * exposes one host window of rings, one ring per source rank. A sender
 * writes a 64-byte slot (sequence number, length, CRC, payload) with one
 * MPI_Put after the data it announces was flushed, and flushes the slot; the
 * target polls its own memory. Flow control: the target publishes in its
 * window how many entries it consumed from each source; a sender reads that
 * counter (MPI_Get) only when the ring looks full.
 */
#include <stdlib.h>
#include <string.h>

#include "transport/mpi/mpi_cuda.h"
#include "transport/mpi/mpi_tp.h"
#include "util/clock.h"
#include "util/coll.h"
#include "util/crc32c.h"

static size_t notif_win_bytes(const mpi_tp_t *m)
{
    return (size_t)m->wnranks * sizeof(uint64_t) +
           (size_t)m->wnranks * m->ring_slots * sizeof(mpi_notif_entry_t);
}

static uint64_t *notif_consumed(mpi_tp_t *m)
{
    return (uint64_t *)m->notif_mem;
}

static MPI_Aint notif_slot_disp(const mpi_tp_t *m, int source, uint64_t seq)
{
    return (MPI_Aint)((size_t)m->wnranks * sizeof(uint64_t) +
                      ((size_t)source * m->ring_slots + (size_t)((seq - 1) % m->ring_slots)) *
                          sizeof(mpi_notif_entry_t));
}

static uint32_t notif_crc(const mpi_notif_entry_t *e)
{
    uint32_t crc = mixl_crc32c(0, &e->seq, sizeof(e->seq));
    crc = mixl_crc32c(crc, &e->len, sizeof(e->len));
    return mixl_crc32c(crc, e->payload, e->len <= MIXL_NOTIF_MAX ? e->len : MIXL_NOTIF_MAX);
}

/*
 * Collective part of mpi_init(): every rank makes the window, the barrier
 * and its epoch whatever failed locally (a rank without its arrays exposes
 * nothing); the caller agrees on the outcome and, on failure, every rank
 * calls mpi_notif_fini() alike.
 */
mixl_status_t mpi_notif_init(mixl_tp_t *tp, mpi_tp_t *m)
{
    size_t n = (size_t)m->wnranks;
    MPI_Aint bytes = (MPI_Aint)notif_win_bytes(m);
    mixl_status_t st = MIXL_OK;
    int rc;

    m->notif_win = MPI_WIN_NULL;
    m->sent = calloc(n, sizeof(uint64_t));
    m->consumed_seen = calloc(n, sizeof(uint64_t));
    m->fetch_buf = calloc(n, sizeof(uint64_t));
    m->recv_next = calloc(n, sizeof(uint64_t));
    m->bad_since = calloc(n, sizeof(uint64_t));
    if (m->sent == NULL || m->consumed_seen == NULL || m->fetch_buf == NULL || m->recv_next == NULL ||
        m->bad_since == NULL)
        st = mixl_errbuf_set(tp->eb, MIXL_ERR_NO_MEMORY, "agent %s: notification state for %d ranks",
                             tp->agent_name, m->wnranks);
    else
        for (size_t i = 0; i < n; i++) m->recv_next[i] = 1;

    rc = MPI_Win_allocate(st == MIXL_OK ? bytes : 0, 1, MPI_INFO_NULL, m->wcomm, &m->notif_mem,
                          &m->notif_win);
    if (!mixl_coll_check_created(m->wcomm, rc, m->notif_win != MPI_WIN_NULL,
                                 "MPI_Win_allocate of the notification window")) {
        m->notif_win = MPI_WIN_NULL;
        return mpi_tp_error(tp, rc, "MPI_Win_allocate of the %zu-byte notification window",
                            (size_t)bytes);
    }
    if (rc != MPI_SUCCESS)
        mixl_coll_keep(&st, mpi_tp_error(tp, rc, "MPI_Win_allocate of the %zu-byte notification "
                                         "window", (size_t)bytes));
    MPI_Win_set_errhandler(m->notif_win, MPI_ERRORS_RETURN);
    if (st == MIXL_OK) memset(m->notif_mem, 0, (size_t)bytes);
    /* Nobody may write a slot before its owner zeroed the window. */
    rc = MPI_Barrier(m->wcomm);
    if (rc != MPI_SUCCESS) mixl_coll_keep(&st, mpi_tp_error(tp, rc, "MPI_Barrier after zeroing the "
                                                           "notification window"));
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, m->notif_win);
    if (rc != MPI_SUCCESS)
        mixl_coll_keep(&st, mpi_tp_error(tp, rc, "MPI_Win_lock_all on the notification window"));
    return st;
}

/* Collective when the window exists (every rank holds it alike). */
void mpi_notif_fini(mpi_tp_t *m)
{
    if (m->notif_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(m->notif_win);
        MPI_Win_free(&m->notif_win);
    }
    free(m->sent);
    free(m->consumed_seen);
    free(m->fetch_buf);
    free(m->recv_next);
    free(m->bad_since);
    m->sent = m->consumed_seen = m->fetch_buf = m->recv_next = m->bad_since = NULL;
}

/* Hot path when the ring has room: one put and one flush. target is a rank of wcomm. */
mixl_status_t mpi_notif_put(mixl_tp_t *tp, mpi_tp_t *m, int target, mpi_notif_entry_t *entry,
                            const void *payload, uint32_t len)
{
    uint64_t seq = m->sent[target] + 1;
    int rc;

    if (seq - m->consumed_seen[target] > m->ring_slots) {
        /* Looks full: refresh our view of what the target consumed. */
        rc = MPI_Get(&m->fetch_buf[target], 1, MPI_UINT64_T, target,
                     (MPI_Aint)((size_t)m->wrank * sizeof(uint64_t)), 1, MPI_UINT64_T, m->notif_win);
        if (rc == MPI_SUCCESS) rc = MPI_Win_flush(target, m->notif_win);
        if (rc != MPI_SUCCESS)
            return mpi_tp_error(tp, rc, "reading the notification ring state of rank %d",
                                m->rank_of[target]);
        m->consumed_seen[target] = m->fetch_buf[target];
        if (seq - m->consumed_seen[target] > m->ring_slots) return MIXL_IN_PROGRESS;
    }
    memset(entry, 0, sizeof(*entry));
    entry->seq = seq;
    entry->len = len;
    memcpy(entry->payload, payload, len);
    entry->crc = notif_crc(entry);
    rc = MPI_Put(entry, sizeof(*entry), MPI_BYTE, target, notif_slot_disp(m, m->wrank, seq),
                 sizeof(*entry), MPI_BYTE, m->notif_win);
    if (rc == MPI_SUCCESS) rc = MPI_Win_flush(target, m->notif_win);
    if (rc != MPI_SUCCESS)
        return mpi_tp_error(tp, rc, "notification to rank %d (%s)", m->rank_of[target],
                            tp->rank_names[m->rank_of[target]]);
    m->sent[target] = seq;
    return MIXL_OK;
}

mixl_status_t mpi_notif_poll(mixl_tp_t *tp, mixl_notif_t *out, size_t max, size_t *count_p)
{
    mpi_tp_t *m = tp->priv;
    uint64_t *consumed = notif_consumed(m);
    size_t count = 0;

    /* Drive the MPI progress engine: transports that emulate RMA with active
     * messages (UCX over TCP, for one) deliver puts only while the target
     * progresses, and a target that just polls memory would starve them. */
    int flag;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, m->comm, &flag, MPI_STATUS_IGNORE);
    /* Unified memory model: make remote puts visible to our loads. */
    MPI_Win_sync(m->notif_win);
    for (int i = 0; i < m->wnranks && count < max; i++) {
        int src = (m->poll_from + i) % m->wnranks; /* a rank of wcomm */
        while (count < max) {
            uint64_t want = m->recv_next[src];
            const mpi_notif_entry_t *slot =
                (const mpi_notif_entry_t *)(m->notif_mem + notif_slot_disp(m, src, want));
            mpi_notif_entry_t e;

            if (__atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE) != want) break;
            memcpy(&e, slot, sizeof(e));
            if (e.seq != want || e.len > MIXL_NOTIF_MAX || e.crc != notif_crc(&e)) {
                /* A slot still landing fails its CRC for a moment: leave it for the next poll.
                 * One that keeps failing was torn by a writer that died mid-put, or damaged:
                 * after timeout_ms report it once and move past it, so the source is not
                 * stalled for ever. The clock is read only while a slot fails. */
                uint64_t now = mixl_now_ns();
                if (m->bad_since[src] == 0) {
                    m->bad_since[src] = now;
                } else if (count == 0 && now - m->bad_since[src] > (uint64_t)m->timeout_ms * 1000000ull) {
                    m->bad_since[src] = 0;
                    m->recv_next[src] = want + 1;
                    __atomic_store_n(&consumed[src], want, __ATOMIC_RELEASE);
                    *count_p = 0;
                    return mixl_errbuf_set(tp->eb, MIXL_ERR_CHECKSUM,
                                           "agent %s: notification %llu from rank %d (%s) failed its "
                                           "CRC for %d ms (its writer died mid-put, or the slot was "
                                           "damaged); skipped", tp->agent_name,
                                           (unsigned long long)want, m->rank_of[src],
                                           tp->rank_names[m->rank_of[src]],
                                           m->timeout_ms);
                }
                break;
            }
            m->bad_since[src] = 0;
            memcpy(out[count].peer, tp->rank_names[m->rank_of[src]], MIXL_NAME_MAX);
            out[count].len = e.len;
            memcpy(out[count].payload, e.payload, e.len);
            count++;
            m->recv_next[src] = want + 1;
            __atomic_store_n(&consumed[src], want, __ATOMIC_RELEASE);
        }
    }
    if (count > 0) {
        /* Device windows: what the NIC wrote into GPU memory before these
         * notifications must be visible to kernels the consumer launches. */
        (void)mpi_cuda_gdr_flush(tp, m); /* a failure is recorded and logged there */
        MPI_Win_sync(m->notif_win);
        m->poll_from = (m->poll_from + 1) % m->wnranks;
    }
    *count_p = count;
    return MIXL_OK;
}

mixl_status_t mpi_notif_send(mixl_tp_t *tp, mixl_tp_peer_t *peer, const void *payload, size_t len)
{
    mpi_tp_t *m = tp->priv;
    mpi_notif_entry_t entry;
    int target = m->wrank_of[peer->comm_rank];
    mixl_status_t st;
    uint64_t deadline;
    int rc;

    /* Order after every operation already issued to the peer. */
    for (int j = 0; j < m->nwins; j++) {
        rc = MPI_Win_flush(target, m->wins[j]);
        if (rc != MPI_SUCCESS)
            return mpi_tp_error(tp, rc, "MPI_Win_flush to rank %d", peer->comm_rank);
    }
    if (m->dyn_win != MPI_WIN_NULL) MPI_Win_flush(target, m->dyn_win);
    deadline = mixl_deadline_ns(m->timeout_ms);
    while ((st = mpi_notif_put(tp, m, target, &entry, payload, (uint32_t)len)) == MIXL_IN_PROGRESS) {
        if (mixl_now_ns() > deadline)
            return mixl_errbuf_set(tp->eb, MIXL_ERR_TIMED_OUT,
                                   "agent %s: notification ring of %s stayed full for %d ms",
                                   tp->agent_name, peer->name, m->timeout_ms);
    }
    return st;
}
