/* Host KV memory and the dispatch to CUDA memory; see mem.h. */
#include "kv/mem.h"
#include "kv/fill.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Page-aligned and touched now, so registration and the first transfer do not fault pages in. */
static void *host_alloc(size_t len)
{
    size_t rounded = len < 4096 ? 4096 : (len + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(4096, rounded);
    if (p != NULL) memset(p, 0, rounded);
    return p;
}

/* Device memory through the library's allocator (zeroed, synchronised). */
static mixl_status_t device_alloc(mixl_kv_mem_t *mem, size_t len, int device, int local_rank,
                                  char *err, size_t err_len)
{
    int count = 0;
    void *p = NULL;
    mixl_status_t st = mixl_mem_device_count(&count);

    if (st == MIXL_ERR_NOT_SUPPORTED) {
        snprintf(err, err_len, "CUDA memory requested but MIXL was built without CUDA");
        return st;
    }
    if (st != MIXL_OK || count == 0) {
        snprintf(err, err_len, "CUDA memory requested but no CUDA device is usable: %s",
                 st != MIXL_OK ? mixl_status_str(st) : "0 devices");
        return MIXL_ERR_NOT_SUPPORTED;
    }
    if (device < 0) device = (local_rank < 0 ? 0 : local_rank) % count;
    if (device >= count) {
        snprintf(err, err_len, "CUDA device %d requested but only %d are visible", device, count);
        return MIXL_ERR_INVALID_PARAM;
    }
    st = mixl_mem_alloc(MIXL_MEM_CUDA, device, len ? len : 1, &p);
    if (st != MIXL_OK) {
        snprintf(err, err_len, "%s", mixl_last_error());
        return st;
    }
    mem->ptr = p;
    mem->len = len;
    mem->type = MIXL_MEM_CUDA;
    mem->device = device;
    return MIXL_OK;
}

mixl_status_t mixl_kv_mem_alloc(mixl_kv_mem_t *mem, size_t len, mixl_mem_type_t type, int device,
                                int local_rank, MPI_Comm comm, char *err, size_t err_len)
{
    memset(mem, 0, sizeof(*mem));
    if (comm != MPI_COMM_NULL) {
        mixl_status_t st = mixl_mem_alloc_mpi(comm, type == MIXL_MEM_CUDA ? 0 : len, &mem->mpi_ptr);
        if (st != MIXL_OK)
            mixl_warn("%s; host memory comes from malloc, which peers on this node reach only "
                      "through slower emulated RMA (data_plane.host_memory)", mixl_last_error());
    }
    if (type == MIXL_MEM_CUDA) return device_alloc(mem, len, device, local_rank, err, err_len);

    void *p = mem->mpi_ptr != NULL ? mem->mpi_ptr : host_alloc(len);
    if (p == NULL) {
        snprintf(err, err_len, "cannot allocate %zu bytes of host memory", len);
        return MIXL_ERR_NO_MEMORY;
    }
    mem->ptr = p;
    mem->len = len;
    mem->type = MIXL_MEM_HOST;
    mem->device = 0;
    return MIXL_OK;
}

void mixl_kv_mem_free(mixl_kv_mem_t *mem)
{
    if (mem->ptr != NULL && mem->type == MIXL_MEM_CUDA) {
        mixl_kv_cuda_work_free(mem);
        mixl_mem_free(MIXL_MEM_CUDA, mem->ptr);
    } else if (mem->ptr != NULL && mem->ptr != mem->mpi_ptr)
        free(mem->ptr);
    if (mem->mpi_ptr != NULL) mixl_mem_free_mpi(mem->mpi_ptr);
    mem->ptr = NULL;
    mem->mpi_ptr = NULL;
    mem->len = 0;
}

mixl_status_t mixl_kv_mem_to_host(const mixl_kv_mem_t *mem, size_t off, void *dst, size_t len)
{
    if (off > mem->len || len > mem->len - off) return MIXL_ERR_OUT_OF_RANGE;
    if (mem->type == MIXL_MEM_CUDA) return mixl_mem_copy(dst, (char *)mem->ptr + off, len);
    memcpy(dst, (char *)mem->ptr + off, len);
    return MIXL_OK;
}

mixl_status_t mixl_kv_mem_from_host(mixl_kv_mem_t *mem, size_t off, const void *src, size_t len)
{
    if (off > mem->len || len > mem->len - off) return MIXL_ERR_OUT_OF_RANGE;
    if (mem->type == MIXL_MEM_CUDA) return mixl_mem_copy((char *)mem->ptr + off, src, len);
    memcpy((char *)mem->ptr + off, src, len);
    return MIXL_OK;
}

mixl_status_t mixl_kv_mem_fill_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int region_layer,
                                     int model_layer, uint64_t req, uint64_t tokens)
{
    if (mem->type == MIXL_MEM_CUDA)
        return mixl_kv_cuda_fill_layer(mem, l, region_layer, model_layer, req, tokens);
    mixl_kv_fill_layer(l, mem->ptr, region_layer, model_layer, req, tokens);
    return MIXL_OK;
}

#ifndef MIXL_HAVE_CUDA
/* Built without CUDA: the kernels are an explicit "not supported" (device
 * memory itself is refused by the allocator). */
void mixl_kv_cuda_work_free(mixl_kv_mem_t *mem)
{
    (void)mem;
}

mixl_status_t mixl_kv_cuda_fill_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int region_layer,
                                      int model_layer, uint64_t req, uint64_t tokens)
{
    return MIXL_ERR_NOT_SUPPORTED;
}

mixl_status_t mixl_kv_cuda_check_layer(mixl_kv_mem_t *mem, const mixl_kv_layout_t *l, int layer,
                                       uint64_t req, uint64_t tokens, const mixl_kv_run_t *runs,
                                       size_t nruns, uint32_t *bad_p)
{
    return MIXL_ERR_NOT_SUPPORTED;
}
#endif
