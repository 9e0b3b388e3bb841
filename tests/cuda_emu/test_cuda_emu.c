/*
 * The emulated device keeps the promises the gpu-emu tests rely on: device
 * pointers are told from host ones, stream copies are asynchronous until
 * synchronised, a pageable host-to-device cudaMemcpy lands after it
 * returns, IPC handles are refused off an allocation's base, open in
 * another process (a forked child) onto the same bytes, and injected
 * failures happen on the call asked for. Runs only on the emulation.
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

int main(void)
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
        return 1;
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
