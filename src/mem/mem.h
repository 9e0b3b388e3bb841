/*
 * The memory layer's internal half: pointer-type query and CUDA IPC
 * export/import for the backends. Allocation and copies are public
 * (include/mixl/mem.h). Without CUDA (built without the toolkit, or no
 * device at run time) every device operation returns a status saying so;
 * host memory always works.
 *
 * None of these functions is for the transfer hot path: they may allocate,
 * synchronize and log. Thread-safe as far as the CUDA runtime is.
 */
#ifndef MIXL_MEM_MEM_H
#define MIXL_MEM_MEM_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/export.h>
#include <mixl/mem.h>
#include <mixl/status.h>
#include <mixl/types.h>

#include "util/errbuf.h"

/* Bytes of a CUDA IPC memory handle (cudaIpcMemHandle_t). */
#define MIXL_IPC_HANDLE_BYTES 64

/*
 * What ptr is: MIXL_MEM_CUDA (device, or managed memory, with its device),
 * MIXL_MEM_PINNED (registered/page-locked host), or MIXL_MEM_HOST. Without
 * CUDA every pointer is MIXL_MEM_HOST. An error from the CUDA runtime is
 * returned as MIXL_ERR_BACKEND with its message in eb.
 */
mixl_status_t mixl_mem_query(const void *ptr, mixl_errbuf_t *eb, mixl_mem_type_t *type_p,
                             int *device_p);

/*
 * CUDA IPC: export the allocation that contains the device span [ptr,
 * ptr + len). Writes the handle and the allocation's base address (a peer
 * that opens the handle gets a mapping of that base, so offsets are taken
 * from it). MIXL_ERR_INVALID_PARAM when the span runs past the allocation.
 */
mixl_status_t mixl_mem_ipc_export(const void *ptr, size_t len, mixl_errbuf_t *eb,
                                  uint8_t handle[MIXL_IPC_HANDLE_BYTES], uint64_t *base_p,
                                  uint64_t *size_p);
/* Map a peer's exported allocation on device; *base_p is the local address. */
mixl_status_t mixl_mem_ipc_open(const uint8_t handle[MIXL_IPC_HANDLE_BYTES], int device,
                                mixl_errbuf_t *eb, void **base_p);
/* Unmap what mixl_mem_ipc_open() mapped. */
void mixl_mem_ipc_close(void *base);

#endif /* MIXL_MEM_MEM_H */
