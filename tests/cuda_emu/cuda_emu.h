/*
 * Test-side interface of the emulated CUDA device (cuda_emu.c). Programs
 * under test never link the emulation: they reach these with
 * dlsym(RTLD_DEFAULT, ...), and a NULL answer means a real CUDA runtime.
 */
#ifndef MIXL_TESTS_CUDA_EMU_H
#define MIXL_TESTS_CUDA_EMU_H

/*
 * A counter of this process: "flush" (cuFlushGPUDirectRDMAWrites calls),
 * "kernels" (launches), "h2d" (host-to-device copies, cudaMemcpy and
 * cudaMemcpyAsync), "pageable_h2d" (those from pageable memory),
 * "pinned_copies" (copies between device and pinned host memory: staging), "ipc_opens", "async_ops", "ctx0"/"ctx1" (1 once a
 * context exists on that device), "devices". -1 for an unknown name.
 */
long cuda_emu_counter(const char *name);

/* Run fn on the host when the kernel whose host stub is stub is launched. */
void cuda_emu_register_host_kernel(const void *stub,
                                   void (*fn)(void **args, unsigned grid, unsigned block));

#endif /* MIXL_TESTS_CUDA_EMU_H */
