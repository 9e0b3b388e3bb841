/* KV model presets and shape resolution; see model.h. */
#include "kv/model.h"

#include <stdio.h>
#include <string.h>

/* Shapes from the models' published configs (num_hidden_layers, num_key_value_heads, head_dim). */
static const mixl_kv_model_t presets[] = {
    {"tiny", 4, 4, 64, "fp16", 2, 16},
    {"llama-3-8b", 32, 8, 128, "fp16", 2, 16},
    {"llama-3-70b", 80, 8, 128, "fp16", 2, 16},
};

const mixl_kv_model_t *mixl_kv_preset(const char *name)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

int mixl_kv_dtype_bytes(const char *dtype)
{
    if (strcmp(dtype, "fp16") == 0 || strcmp(dtype, "bf16") == 0) return 2;
    if (strcmp(dtype, "fp32") == 0) return 4;
    if (strcmp(dtype, "fp8") == 0) return 1;
    return 0;
}

mixl_status_t mixl_kv_model_resolve(const char *preset, int layers, int kv_heads, int head_dim,
                                    const char *dtype, int block_size, mixl_kv_model_t *model_p,
                                    char *err, size_t err_len)
{
    mixl_kv_model_t m;
    const mixl_kv_model_t *p = mixl_kv_preset(preset);

    if (p != NULL) {
        m = *p;
    } else if (strcmp(preset, "custom") == 0) {
        memset(&m, 0, sizeof(m));
        snprintf(m.name, sizeof(m.name), "custom");
    } else {
        snprintf(err, err_len, "model.preset: unknown preset '%s'", preset);
        return MIXL_ERR_CONFIG;
    }
    if (layers > 0) m.layers = layers;
    if (kv_heads > 0) m.kv_heads = kv_heads;
    if (head_dim > 0) m.head_dim = head_dim;
    if (dtype != NULL && dtype[0] != '\0' && strcmp(dtype, "preset") != 0) {
        if (mixl_kv_dtype_bytes(dtype) == 0) {
            snprintf(err, err_len, "model.dtype: unknown dtype '%s'", dtype);
            return MIXL_ERR_CONFIG;
        }
        snprintf(m.dtype, sizeof(m.dtype), "%s", dtype);
    }
    if (block_size > 0) m.block_size = block_size;
    if (m.layers <= 0 || m.kv_heads <= 0 || m.head_dim <= 0 || m.dtype[0] == '\0') {
        snprintf(err, err_len,
                 "model: the custom preset needs model.layers, model.kv_heads, model.head_dim and "
                 "model.dtype (got layers=%d kv_heads=%d head_dim=%d dtype=%s)",
                 m.layers, m.kv_heads, m.head_dim, m.dtype[0] ? m.dtype : "preset");
        return MIXL_ERR_CONFIG;
    }
    if (m.block_size <= 0) {
        snprintf(err, err_len, "model.block_size: must be at least 1");
        return MIXL_ERR_CONFIG;
    }
    m.elem_bytes = mixl_kv_dtype_bytes(m.dtype);
    *model_p = m;
    return MIXL_OK;
}
