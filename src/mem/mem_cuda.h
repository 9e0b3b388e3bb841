/*
 * The CUDA half of src/mem (mem_cuda.c, copy_engine_cuda.c): declared only
 * when the library is built with the CUDA toolkit. Callers go through
 * mem/mem.h and mem/copy_engine.h, which say what happens without CUDA.
 */
#ifndef MIXL_MEM_MEM_CUDA_H
#define MIXL_MEM_MEM_CUDA_H

#ifdef MIXL_HAVE_CUDA
#include "mem/mem.h"

mixl_status_t mixl_cuda_device_count(int *count_p);
mixl_status_t mixl_cuda_alloc(mixl_mem_type_t type, int device, size_t len, mixl_errbuf_t *eb,
                              void **ptr_p);
void mixl_cuda_free(mixl_mem_type_t type, void *ptr);
mixl_status_t mixl_cuda_query(const void *ptr, mixl_errbuf_t *eb, mixl_mem_type_t *type_p,
                              int *device_p);
mixl_status_t mixl_cuda_copy(void *dst, const void *src, size_t len, mixl_errbuf_t *eb);
mixl_status_t mixl_cuda_ipc_export(const void *ptr, size_t len, mixl_errbuf_t *eb,
                                   uint8_t handle[MIXL_IPC_HANDLE_BYTES], uint64_t *base_p,
                                   uint64_t *size_p);
mixl_status_t mixl_cuda_ipc_open(const uint8_t handle[MIXL_IPC_HANDLE_BYTES], int device,
                                 mixl_errbuf_t *eb, void **base_p);
void mixl_cuda_ipc_close(void *base);
/* Whether the calling thread has a current CUDA context (it chose a device). */
int mixl_cuda_has_context(void);
/* Make device current; *prev_p is what to restore, -1 for nothing (the
 * thread had no context, or was already on device). */
mixl_status_t mixl_cuda_device_push(int device, int *prev_p);
void mixl_cuda_device_pop(int prev);
#endif

#endif /* MIXL_MEM_MEM_CUDA_H */
