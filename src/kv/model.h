/*
 * KV model shapes: presets for real models and the bytes they move per
 * token. One token's KV is 2 (K and V) x layers x kv_heads x head_dim x
 * element size; Llama-3-70B in fp16 comes to 320 KiB.
 */
#ifndef MIXL_KV_MODEL_H
#define MIXL_KV_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <mixl/status.h>

typedef struct {
    char name[32];
    int layers;
    int kv_heads;
    int head_dim;
    char dtype[8]; /* "fp16", "bf16", "fp32", "fp8" */
    int elem_bytes;
    int block_size; /* tokens per block */
} mixl_kv_model_t;

/* Presets by name: "tiny", "llama-3-8b", "llama-3-70b". NULL when unknown. */
const mixl_kv_model_t *mixl_kv_preset(const char *name);

/* Element size of a dtype name; 0 when unknown. */
int mixl_kv_dtype_bytes(const char *dtype);

/*
 * Build a model from a preset name ("custom" = none) with overrides: 0 or
 * NULL/"" keeps the preset's value. Custom models need every field; err
 * names what is missing.
 */
mixl_status_t mixl_kv_model_resolve(const char *preset, int layers, int kv_heads, int head_dim,
                                    const char *dtype, int block_size, mixl_kv_model_t *model_p,
                                    char *err, size_t err_len);

/* KV bytes per token over the whole model (all heads, all layers, K and V). */
static inline uint64_t mixl_kv_bytes_per_token(const mixl_kv_model_t *m)
{
    return 2ull * (uint64_t)m->layers * (uint64_t)m->kv_heads * (uint64_t)m->head_dim *
           (uint64_t)m->elem_bytes;
}

#endif /* MIXL_KV_MODEL_H */
