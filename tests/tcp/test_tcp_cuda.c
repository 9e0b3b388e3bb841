/*
 * Device memory over TCP: WRITE and READ between host and CUDA regions on
 * both ends, staged through pinned buffers. Exits 77 (SKIP) without a GPU.
 * "concurrent": a device->device WRITE and a device<-device READ in flight
 * together on one connection, rounds with different patterns (run with
 * MIXL_TCP_CRC=1): each end receives device payload while it sends device
 * payload, so a staging buffer shared by both directions corrupts data;
 * and each end overlapped its device copies with the socket (two slots per
 * direction: the connections' counters say how many frames did).
 */
#include <cuda_runtime.h>

#include <mixl/status.h>

#include "mem/mem.h"
#include "tcp_harness.h"
#include "transport/tcp/tcp_internal.h"

#define LEN ((size_t)5 << 20) /* five frames and a bit */

static int check(int cond, const char *what)
{
    if (!cond) fprintf(stderr, "test_tcp_cuda: %s\n", what);
    return cond ? 0 : 1;
}

static mixl_tp_region_t *reg_cuda(h_agent_t *a, void *addr, size_t len)
{
    mixl_tp_region_t *r = &a->regions[a->nregions];
    memset(r, 0, sizeof(*r));
    r->id = (uint32_t)(100 + a->nregions);
    r->addr = addr;
    r->len = len;
    r->mem_type = MIXL_MEM_CUDA;
    r->device = 0;
    if (mixl_tp_tcp_ops.mem_register(&a->tp, r) != MIXL_OK) return NULL;
    a->nregions++;
    return r;
}

#define CLEN ((size_t)24 << 20)
#define ROUNDS 3

typedef struct {
    uint64_t rx_async, prefetched;
    size_t max_frame;
} stage_counts_t;

/* Progress thread: the staging counters of every connection of an agent. */
static void count_call(tcp_t *tcp, void *arg)
{
    stage_counts_t *n = arg;
    for (tcp_conn_t *c = tcp->conns; c != NULL; c = c->next) {
        n->rx_async += c->stage_rx_async;
        n->prefetched += c->stage_prefetched;
        if (c->max_frame > n->max_frame) n->max_frame = c->max_frame;
    }
}

static stage_counts_t stage_counts(h_agent_t *a)
{
    stage_counts_t n = {0};
    tcp_engine_call(a->tp.priv, count_call, &n);
    return n;
}

static int concurrent(void)
{
    uint8_t *host = malloc(CLEN), *back = malloc(CLEN), *a_w, *a_r, *b_w, *b_r;
    h_agent_t a, b;
    h_peer_t pb;
    int fails = 0;

    if (host == NULL || back == NULL || cudaMalloc((void **)&a_w, CLEN) != cudaSuccess ||
        cudaMalloc((void **)&a_r, CLEN) != cudaSuccess || cudaMalloc((void **)&b_w, CLEN) != cudaSuccess ||
        cudaMalloc((void **)&b_r, CLEN) != cudaSuccess)
        return 1;
    if (h_agent_init(&a, "gpu-a", 10000) != MIXL_OK || h_agent_init(&b, "gpu-b", 10000) != MIXL_OK)
        return 1;
    mixl_tp_region_t *ra_w = reg_cuda(&a, a_w, CLEN), *ra_r = reg_cuda(&a, a_r, CLEN);
    if (ra_w == NULL || ra_r == NULL || reg_cuda(&b, b_w, CLEN) == NULL || reg_cuda(&b, b_r, CLEN) == NULL ||
        h_peer_add(&a, &b, &pb) != MIXL_OK)
        return 1;
    pb.regions[0].mem_type = MIXL_MEM_CUDA;
    pb.regions[1].mem_type = MIXL_MEM_CUDA;
    {
        char rep[256];
        mixl_tp_tcp_ops.path_report(&a.tp, rep, sizeof(rep));
        printf("path: %s\n", rep);
        fails += check(strstr(rep, "crc32c on") != NULL, "CRC32C is not on (set MIXL_TCP_CRC=1)");
    }
    for (int round = 0; round < ROUNDS && fails == 0; round++) {
        h_xfer_t w, r;
        /* a WRITEs a_w -> b_w while READing b_r -> a_r. */
        for (size_t i = 0; i < CLEN; i++) host[i] = (uint8_t)(i * 13 + (size_t)round * 101 + 1);
        cudaMemcpy(a_w, host, CLEN, cudaMemcpyHostToDevice);
        for (size_t i = 0; i < CLEN; i++) host[i] = (uint8_t)(i * 29 + (size_t)round * 57 + 5);
        cudaMemcpy(b_r, host, CLEN, cudaMemcpyHostToDevice);
        cudaMemset(a_r, 0, CLEN);
        cudaMemset(b_w, 0, CLEN);
        cudaDeviceSynchronize();
        h_xfer_init(&w, MIXL_OP_WRITE, &pb);
        h_xfer_span(&w, ra_w, a_w, &pb.regions[0], pb.regions[0].addr, CLEN);
        h_xfer_init(&r, MIXL_OP_READ, &pb);
        h_xfer_span(&r, ra_r, a_r, &pb.regions[1], pb.regions[1].addr, CLEN);
        fails += check(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &w.x) == MIXL_OK, "prepare write");
        fails += check(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &r.x) == MIXL_OK, "prepare read");
        /* The READ goes first: its responses stream back while the WRITE's
         * frames go out, so both ends send and receive device payload at once. */
        mixl_status_t sr = mixl_tp_tcp_ops.xfer_post(&a.tp, &r.x);
        mixl_status_t sw = mixl_tp_tcp_ops.xfer_post(&a.tp, &w.x);
        if (sw == MIXL_IN_PROGRESS) sw = h_wait(&a, &w, 20000);
        if (sr == MIXL_IN_PROGRESS) sr = h_wait(&a, &r, 20000);
        fails += check(sw == MIXL_OK, "concurrent device write");
        fails += check(sr == MIXL_OK, "concurrent device read");
        cudaMemcpy(back, b_r, CLEN, cudaMemcpyDeviceToHost); /* the READ's expected bytes */
        cudaMemcpy(host, a_r, CLEN, cudaMemcpyDeviceToHost);
        size_t bad_r = 0, bad_w = 0;
        for (size_t i = 0; i < CLEN; i++) bad_r += host[i] != back[i];
        cudaMemcpy(back, b_w, CLEN, cudaMemcpyDeviceToHost);
        for (size_t i = 0; i < CLEN; i++) bad_w += back[i] != (uint8_t)(i * 13 + (size_t)round * 101 + 1);
        if (bad_r || bad_w)
            fprintf(stderr, "test_tcp_cuda: round %d: %zu bytes of the READ and %zu of the WRITE "
                    "landed wrong\n", round, bad_r, bad_w);
        fails += bad_r != 0 || bad_w != 0;
        mixl_tp_tcp_ops.xfer_release(&a.tp, &w.x);
        mixl_tp_tcp_ops.xfer_release(&a.tp, &r.x);
    }
    /* Both directions overlapped copies with the socket, on both ends: each
     * received device frame left its copy running, and every sent device
     * frame but a request's first came from a slot filled ahead. */
    stage_counts_t na = stage_counts(&a), nb = stage_counts(&b);
    uint64_t frames = na.max_frame ? (CLEN + na.max_frame - 1) / na.max_frame : 0;
    printf("staging: a received %llu device frames asynchronously and sent %llu copied ahead; "
           "b %llu and %llu; %llu frames of %zu bytes per request\n",
           (unsigned long long)na.rx_async, (unsigned long long)na.prefetched,
           (unsigned long long)nb.rx_async, (unsigned long long)nb.prefetched,
           (unsigned long long)frames, na.max_frame);
    if (fails == 0) {
        fails += check(frames > 1, "a request of one frame cannot show overlap");
        fails += check(na.rx_async == ROUNDS * frames && nb.rx_async == ROUNDS * frames,
                       "device frames received with a synchronous copy");
        fails += check(na.prefetched == ROUNDS * (frames - 1) && nb.prefetched == ROUNDS * (frames - 1),
                       "device frames sent without being copied ahead");
    }
    mixl_tp_tcp_ops.peer_remove(&a.tp, &pb.peer);
    h_agent_fini(&a);
    h_agent_fini(&b);
    cudaFree(a_w);
    cudaFree(a_r);
    cudaFree(b_w);
    cudaFree(b_r);
    free(host);
    free(back);
    printf("test_tcp_cuda concurrent: %s\n", fails ? "FAILED" : "passed");
    return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
    int ndev = 0, fails = 0;
    mixl_status_t st = mixl_mem_device_count(&ndev);
    if (st != MIXL_OK) {
        /* A CUDA error other than "no device" (driver/runtime mismatch, ...) fails. */
        printf("FAIL: cannot count CUDA devices: %s\n", mixl_status_str(st));
        return 1;
    }
    if (ndev == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    if (argc > 1 && strcmp(argv[1], "concurrent") == 0) return concurrent();
    uint8_t *host = malloc(LEN), *back = malloc(LEN), *dsrc, *ddst;
    if (cudaMalloc((void **)&dsrc, LEN) != cudaSuccess || cudaMalloc((void **)&ddst, LEN) != cudaSuccess)
        return 1;
    for (size_t i = 0; i < LEN; i++) host[i] = (uint8_t)(i * 7 + 3);
    cudaMemcpy(dsrc, host, LEN, cudaMemcpyHostToDevice);
    cudaMemset(ddst, 0, LEN);
    cudaDeviceSynchronize();

    h_agent_t a, b;
    h_peer_t pb;
    h_xfer_t w, r;
    if (h_agent_init(&a, "gpu-a", 10000) != MIXL_OK || h_agent_init(&b, "gpu-b", 10000) != MIXL_OK)
        return 1;
    mixl_tp_region_t *asrc = reg_cuda(&a, dsrc, LEN), *ahost = h_register(&a, back, LEN);
    reg_cuda(&b, ddst, LEN);
    if (asrc == NULL || ahost == NULL || h_peer_add(&a, &b, &pb) != MIXL_OK) return 1;
    pb.regions[0].mem_type = MIXL_MEM_CUDA;

    /* device -> device WRITE */
    h_xfer_init(&w, MIXL_OP_WRITE, &pb);
    h_xfer_span(&w, asrc, dsrc, &pb.regions[0], pb.regions[0].addr, LEN);
    h_xfer_notif(&w, "gpu");
    fails += check(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &w.x) == MIXL_OK, "prepare write");
    fails += check(h_run(&a, &w, 30000) == MIXL_OK, "device to device write");
    memset(back, 0, LEN);
    cudaMemcpy(back, ddst, LEN, cudaMemcpyDeviceToHost);
    cudaDeviceSynchronize();
    fails += check(memcmp(back, host, LEN) == 0, "device data after write");

    /* device (remote) -> host (local) READ */
    memset(back, 0, LEN);
    h_xfer_init(&r, MIXL_OP_READ, &pb);
    h_xfer_span(&r, ahost, back, &pb.regions[0], pb.regions[0].addr, LEN);
    fails += check(mixl_tp_tcp_ops.xfer_prepare(&a.tp, &r.x) == MIXL_OK, "prepare read");
    fails += check(h_run(&a, &r, 30000) == MIXL_OK, "device to host read");
    fails += check(memcmp(back, host, LEN) == 0, "host data after read");

    mixl_tp_tcp_ops.xfer_release(&a.tp, &w.x);
    mixl_tp_tcp_ops.xfer_release(&a.tp, &r.x);
    mixl_tp_tcp_ops.peer_remove(&a.tp, &pb.peer);
    h_agent_fini(&a);
    h_agent_fini(&b);
    cudaFree(dsrc);
    cudaFree(ddst);
    free(host);
    free(back);
    printf("test_tcp_cuda: %s\n", fails ? "FAILED" : "passed");
    return fails ? 1 : 0;
}
