/*
 * The emulated device keeps the promises the gpu-emu tests rely on: device
 * pointers are told from host ones, stream copies are asynchronous until
 * synchronised, a pageable host-to-device cudaMemcpy lands after it
 * returns, IPC handles are refused off an allocation's base, open in
 * another process (a forked child) onto the same bytes, and injected
 * failures happen on the call asked for. Runs only on the emulation.
 *
 * With the argument "kernels": MIXL's KV kernels (src/kv/kernels_cuda.cu) through their host
 * versions: a layer filled on the device holds exactly the host fill's
 * bytes (odd, unaligned rows; a partial last block), without any
 * host-to-device copy; the check kernel finds no fault in it, one flipped
 * byte in exactly its block, and follows scattered block ids.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "kv/fill.h"
#include "kv/mem.h"

#define LEN (8u << 20)

static int failures;

#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                             \
            fputc('\n', stderr);                                      \
            failures++;                                               \
        }                                                             \
    } while (0)

/* The KV kernels on device 1; see the header comment. */
static void kv_kernels(long (*counter)(const char *))
{
    /* Rows of 7 bytes: every word but the first of a row is unaligned, the last cut short. */
    const mixl_kv_layout_t l = {.layers = 2, .blocks = 6, .heads = 3, .head0 = 2, .block_size = 5,
                                .head_dim = 7, .elem_bytes = 1};
    const uint64_t req = 77, tokens = 23, nb = 5, bb = mixl_kv_block_bytes(&l);
    size_t len = mixl_kv_region_bytes(&l);
    mixl_kv_mem_t mem, pool;
    uint32_t bad[2 * 5];
    char err[256];
    uint8_t *ref = calloc(1, len);

    memset(&mem, 0, sizeof(mem));
    memset(&pool, 0, sizeof(pool));
    CHECK(mixl_kv_mem_alloc(&mem, len, MIXL_MEM_CUDA, 1, 0, MPI_COMM_NULL, err, sizeof(err)) == MIXL_OK &&
              mixl_kv_mem_alloc(&pool, len, MIXL_MEM_CUDA, 1, 0, MPI_COMM_NULL, err, sizeof(err)) == MIXL_OK,
          "KV device memory: %s", err);
    if (mem.ptr == NULL || pool.ptr == NULL || ref == NULL) return;

    long kernels = counter("kernels"), h2d = counter("h2d");
    CHECK(mixl_kv_mem_fill_layer(&mem, &l, 1, 1, req, tokens) == MIXL_OK, "fill kernel");
    CHECK(counter("kernels") == kernels + 1, "the fill ran no kernel");
    CHECK(counter("h2d") == h2d, "the fill copied from the host");
    mixl_kv_fill_layer(&l, ref, 1, 1, req, tokens);
    CHECK(memcmp(mem.ptr, ref, len) == 0, "device fill differs from the host fill");

    /* Identity block ids: clean, then one flipped byte in V block 3. */
    mixl_kv_run_t ident = {0, nb};
    CHECK(mixl_kv_cuda_check_layer(&mem, &l, 1, req, tokens, &ident, 1, bad) == MIXL_OK, "check");
    for (uint64_t i = 0; i < 2 * nb; i++) CHECK(bad[i] == 0, "clean block %llu reported bad", (unsigned long long)i);
    uint8_t *p = (uint8_t *)mem.ptr + mixl_kv_offset(&l, 1, 1, 3, 2, 4) + 6;
    *p ^= 0x01;
    CHECK(mixl_kv_cuda_check_layer(&mem, &l, 1, req, tokens, &ident, 1, bad) == MIXL_OK, "check");
    for (uint64_t i = 0; i < 2 * nb; i++)
        CHECK(bad[i] == (i == nb + 3 ? 1u : 0u), "flipped byte: block slot %llu has %u bad words",
              (unsigned long long)i, bad[i]);
    CHECK(mixl_kv_cuda_check_layer(&mem, &l, 1, req + 1, tokens, &ident, 1, bad) == MIXL_OK, "check");
    for (uint64_t i = 0; i < 2 * nb; i++) CHECK(bad[i] > 0, "another request's block %llu passed", (unsigned long long)i);
    CHECK(counter("kernels") == kernels + 4, "checks ran %ld kernels, not 3", counter("kernels") - kernels - 1);
    *p ^= 0x01;

    /* Request block i at pool block ids[i] (runs 4-5, 0, 2-3 of the 6). */
    const uint64_t ids[5] = {4, 5, 0, 2, 3};
    const mixl_kv_run_t runs[3] = {{4, 2}, {0, 1}, {2, 2}};
    for (int kv = 0; kv < 2; kv++)
        for (uint64_t i = 0; i < nb; i++)
            CHECK(cudaMemcpy((uint8_t *)pool.ptr + mixl_kv_offset(&l, 1, kv, ids[i], 0, 0),
                             (uint8_t *)mem.ptr + mixl_kv_offset(&l, 1, kv, i, 0, 0), bb,
                             cudaMemcpyDeviceToDevice) == cudaSuccess, "scatter");
    CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
    CHECK(mixl_kv_cuda_check_layer(&pool, &l, 1, req, tokens, runs, 3, bad) == MIXL_OK, "check");
    for (uint64_t i = 0; i < 2 * nb; i++) CHECK(bad[i] == 0, "scattered block %llu reported bad", (unsigned long long)i);
    CHECK(mixl_kv_cuda_check_layer(&pool, &l, 1, req, tokens, &ident, 1, bad) == MIXL_OK, "check");
    CHECK(bad[0] > 0 && bad[nb] > 0, "blocks checked at the wrong ids passed");

    mixl_kv_mem_free(&mem);
    mixl_kv_mem_free(&pool);
    free(ref);
}

int main(int argc, char **argv)
{
    long (*counter)(const char *) = (long (*)(const char *))dlsym(RTLD_DEFAULT, "cuda_emu_counter");
    struct cudaPointerAttributes a;
    cudaIpcMemHandle_t h;
    cudaStream_t s;
    cudaEvent_t ev;
    uint8_t *d = NULL, *pinned = NULL, *host = malloc(LEN);
    int n = 0;

    if (counter == NULL) {
        fprintf(stderr, "not running on the emulated device (LD_LIBRARY_PATH?)\n");
        free(host);
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "kernels") == 0) {
        /* Its own run: without the long minimum delay the promises above need. */
        kv_kernels(counter);
        free(host);
        printf("cuda_emu kernels: %s (%d failures)\n", failures ? "FAILED" : "passed", failures);
        return failures ? 1 : 0;
    }
    CHECK(cudaGetDeviceCount(&n) == cudaSuccess && n == 2, "device count %d, CUDA_EMU_DEVICES=2", n);
    CHECK(cudaSetDevice(1) == cudaSuccess, "cudaSetDevice(1)");
    CHECK(cudaMalloc((void **)&d, LEN) == cudaSuccess, "cudaMalloc");
    CHECK(cudaMallocHost((void **)&pinned, LEN) == cudaSuccess, "cudaMallocHost");
    if (d == NULL || pinned == NULL || host == NULL) return 1;
    CHECK(counter("ctx0") == 0 && counter("ctx1") == 1, "context on device 0 without a call there");

    CHECK(cudaPointerGetAttributes(&a, d + 5) == cudaSuccess && a.type == cudaMemoryTypeDevice &&
              a.device == 1, "device pointer not reported as device 1 memory");
    CHECK(cudaPointerGetAttributes(&a, pinned) == cudaSuccess && a.type == cudaMemoryTypeHost,
          "pinned pointer not reported as host memory");
    CHECK(cudaPointerGetAttributes(&a, host) == cudaSuccess && a.type == cudaMemoryTypeUnregistered,
          "malloc'd pointer not reported as unregistered");

    /* A stream copy has not happened when cudaMemcpyAsync returns. */
    memset(pinned, 0x11, LEN);
    memset(host, 0, LEN);
    CHECK(cudaMemcpy(d, host, LEN, cudaMemcpyHostToDevice) == cudaSuccess, "zero the device");
    CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess, "stream");
    CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) == cudaSuccess, "event");
    CHECK(cudaMemcpyAsync(d, pinned, LEN, cudaMemcpyHostToDevice, s) == cudaSuccess, "async copy");
    CHECK(cudaEventRecord(ev, s) == cudaSuccess, "record");
    int early = d[LEN - 1] == 0x11 && cudaEventQuery(ev) == cudaSuccess;
    CHECK(cudaEventSynchronize(ev) == cudaSuccess && d[0] == 0x11 && d[LEN - 1] == 0x11,
          "bytes missing after the event");
    CHECK(!early, "async copy complete when cudaMemcpyAsync returned");

    /* Pageable host to device: cudaMemcpy returns before the bytes land. */
    memset(host, 0x22, LEN);
    CHECK(cudaMemcpy(d, host, LEN, cudaMemcpyHostToDevice) == cudaSuccess, "pageable copy");
    memset(host, 0x33, LEN); /* the source may be reused at once: it was staged */
    CHECK(d[LEN - 1] != 0x22, "pageable copy landed before cudaMemcpy returned");
    CHECK(cudaStreamSynchronize(cudaStreamLegacy) == cudaSuccess && d[LEN - 1] == 0x22,
          "pageable copy wrong after synchronising");

    /* IPC: base only; the child maps the same bytes. */
    CHECK(cudaIpcGetMemHandle(&h, d + 64) == cudaErrorInvalidValue, "handle off the base accepted");
    (void)cudaGetLastError();
    CHECK(cudaIpcGetMemHandle(&h, d) == cudaSuccess, "handle at the base");
    void *self = NULL;
    CHECK(cudaIpcOpenMemHandle(&self, h, cudaIpcMemLazyEnablePeerAccess) != cudaSuccess,
          "a process opened its own handle");
    pid_t pid = fork();
    if (pid == 0) {
        uint8_t *m = NULL;
        int ok = cudaIpcOpenMemHandle((void **)&m, h, cudaIpcMemLazyEnablePeerAccess) == cudaSuccess &&
                 m[0] == 0x22 && m[LEN - 1] == 0x22;
        if (ok) m[7] = 0x44;
        ok = ok && cudaIpcCloseMemHandle(m) == cudaSuccess;
        _exit(ok ? 0 : 1);
    }
    int status = 1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not map the handle");
    CHECK(d[7] == 0x44, "the child's write is not in our allocation");

    /* Injected failures: CUDA_EMU_FAIL=cudaMalloc:2 fails the second cudaMalloc. */
    void *p2 = NULL;
    CHECK(cudaMalloc(&p2, 4096) == cudaErrorMemoryAllocation, "second cudaMalloc did not fail");
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation && cudaGetLastError() == cudaSuccess,
          "last error not kept once");
    CHECK(cudaMalloc(&p2, 4096) == cudaSuccess, "third cudaMalloc failed");

    cudaEventDestroy(ev);
    cudaStreamDestroy(s);
    cudaFree(p2);
    cudaFree(d);
    cudaFreeHost(pinned);
    free(host);
    printf("cuda_emu: %s (%d failures)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
