/*
 * The small vocabulary every MIXL layer shares: memory types, name limits
 * and the opaque handle types. Lower layers (memory, metadata codec,
 * registry) include this instead of agent.h, so none of them depends on the
 * agent's API.
 */
#ifndef MIXL_TYPES_H
#define MIXL_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

/* Longest agent or engine name, including the terminating NUL. */
#define MIXL_NAME_MAX 64
/* Largest notification payload in bytes (request id, layer, flags fit easily). */
#define MIXL_NOTIF_MAX 48

typedef enum {
    MIXL_MEM_HOST = 0,   /* pageable host memory */
    MIXL_MEM_PINNED = 1, /* page-locked host memory (cudaMallocHost / cudaHostRegister) */
    MIXL_MEM_CUDA = 2,   /* CUDA device memory */
} mixl_mem_type_t;

typedef enum {
    MIXL_OP_READ = 0,  /* remote -> local: the initiator pulls */
    MIXL_OP_WRITE = 1, /* local -> remote: the initiator pushes */
} mixl_op_t;

/* Opaque handles (identical typedefs may repeat in C11). */
typedef struct mixl_agent *mixl_agent_h;
typedef struct mixl_region *mixl_region_h;
typedef struct mixl_xfer *mixl_xfer_h;
typedef struct mixl_registry *mixl_registry_h;
typedef struct mixl_md_store *mixl_md_store_h;

#ifdef __cplusplus
}
#endif
#endif /* MIXL_TYPES_H */
