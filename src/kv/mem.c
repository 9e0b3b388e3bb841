/* Host KV memory and the dispatch to CUDA memory; see mem.h. */
#include "kv/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mixl_status_t mixl_kv_mem_alloc(mixl_kv_mem_t *mem, size_t len, mixl_mem_type_t type, int device,
                                int local_rank, char *err, size_t err_len)
{
    if (type == MIXL_MEM_CUDA)
        return mixl_kv_cuda_alloc(mem, len, device, local_rank, err, err_len);

    /* Page-aligned and touched now, so registration and the first transfer do not fault pages in. */
    size_t rounded = (len + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(4096, rounded ? rounded : 4096);
    if (p == NULL) {
        snprintf(err, err_len, "cannot allocate %zu bytes of host memory", len);
        return MIXL_ERR_NO_MEMORY;
    }
    memset(p, 0, rounded ? rounded : 4096);
    mem->ptr = p;
    mem->len = len;
    mem->type = MIXL_MEM_HOST;
    mem->device = 0;
    return MIXL_OK;
}

void mixl_kv_mem_free(mixl_kv_mem_t *mem)
{
    if (mem->ptr == NULL) return;
    if (mem->type == MIXL_MEM_CUDA)
        mixl_kv_cuda_free(mem);
    else
        free(mem->ptr);
    mem->ptr = NULL;
    mem->len = 0;
}

mixl_status_t mixl_kv_mem_to_host(const mixl_kv_mem_t *mem, size_t off, void *dst, size_t len)
{
    if (off > mem->len || len > mem->len - off) return MIXL_ERR_OUT_OF_RANGE;
    if (mem->type == MIXL_MEM_CUDA) return mixl_kv_cuda_copy(dst, (char *)mem->ptr + off, len, 0);
    memcpy(dst, (char *)mem->ptr + off, len);
    return MIXL_OK;
}

mixl_status_t mixl_kv_mem_from_host(mixl_kv_mem_t *mem, size_t off, const void *src, size_t len)
{
    if (off > mem->len || len > mem->len - off) return MIXL_ERR_OUT_OF_RANGE;
    if (mem->type == MIXL_MEM_CUDA) return mixl_kv_cuda_copy((char *)mem->ptr + off, src, len, 1);
    memcpy((char *)mem->ptr + off, src, len);
    return MIXL_OK;
}

#ifndef MIXL_HAVE_CUDA
/* Built without CUDA: device memory is an explicit "not supported". */
mixl_status_t mixl_kv_cuda_alloc(mixl_kv_mem_t *mem, size_t len, int device, int local_rank,
                                 char *err, size_t err_len)
{
    snprintf(err, err_len, "CUDA memory requested but MIXL was built without CUDA");
    return MIXL_ERR_NOT_SUPPORTED;
}

void mixl_kv_cuda_free(mixl_kv_mem_t *mem)
{
}

mixl_status_t mixl_kv_cuda_copy(void *dst, const void *src, size_t len, int to_device)
{
    return MIXL_ERR_NOT_SUPPORTED;
}
#endif
