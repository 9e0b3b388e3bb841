/*
 * Device memory over TCP: WRITE and READ between host and CUDA regions on
 * both ends, staged through pinned buffers. Exits 77 (SKIP) without a GPU.
 */
#include <cuda_runtime.h>

#include "tcp_harness.h"

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

int main(void)
{
    int ndev = 0, fails = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("SKIP: no CUDA device\n");
        return 77;
    }
    uint8_t *host = malloc(LEN), *back = malloc(LEN), *dsrc, *ddst;
    if (cudaMalloc((void **)&dsrc, LEN) != cudaSuccess || cudaMalloc((void **)&ddst, LEN) != cudaSuccess)
        return 1;
    for (size_t i = 0; i < LEN; i++) host[i] = (uint8_t)(i * 7 + 3);
    cudaMemcpy(dsrc, host, LEN, cudaMemcpyHostToDevice);
    cudaMemset(ddst, 0, LEN);

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
