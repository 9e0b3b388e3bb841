/* KV layouts and per-layer transfer spans with TP head split/merge; see layout.h. */
#include "kv/layout.h"

mixl_kv_layout_t mixl_kv_layout(const mixl_kv_model_t *m, int tp, int tp_rank, int layers,
                                uint64_t blocks)
{
    mixl_kv_layout_t l;
    l.layers = layers;
    l.blocks = blocks;
    l.heads = m->kv_heads / tp;
    l.head0 = tp_rank * l.heads;
    l.block_size = m->block_size;
    l.head_dim = m->head_dim;
    l.elem_bytes = m->elem_bytes;
    return l;
}

int mixl_kv_head_overlap(const mixl_kv_layout_t *a, const mixl_kv_layout_t *b, int *h0_p, int *h1_p)
{
    int h0 = a->head0 > b->head0 ? a->head0 : b->head0;
    int ea = a->head0 + a->heads, eb = b->head0 + b->heads;
    int h1 = ea < eb ? ea : eb;
    if (h0 >= h1) return 0;
    *h0_p = h0;
    *h1_p = h1;
    return 1;
}

size_t mixl_kv_spans_max(const mixl_kv_layout_t *src, const mixl_kv_layout_t *dst, uint64_t tokens)
{
    uint64_t nb = mixl_kv_blocks_for(tokens, dst->block_size);
    int heads = src->heads < dst->heads ? src->heads : dst->heads;
    return (size_t)(2 * (nb + (uint64_t)heads));
}

/* Append a span, merging it into the previous one when both sides continue it. */
static size_t spans_push(mixl_kv_span_t *out, size_t n, uint64_t src, uint64_t dst, uint64_t len)
{
    if (n > 0 && out[n - 1].src_off + out[n - 1].len == src &&
        out[n - 1].dst_off + out[n - 1].len == dst) {
        out[n - 1].len += len;
        return n;
    }
    out[n].src_off = src;
    out[n].dst_off = dst;
    out[n].len = len;
    return n + 1;
}

size_t mixl_kv_layer_spans(const mixl_kv_layout_t *src, int src_layer, const mixl_kv_layout_t *dst,
                           int dst_layer, const mixl_kv_run_t *runs, size_t nruns, uint64_t tokens,
                           mixl_kv_span_t *out)
{
    int h0, h1;
    size_t n = 0;
    uint64_t row = mixl_kv_row_bytes(dst);
    uint64_t nb = mixl_kv_blocks_for(tokens, dst->block_size);

    if (tokens == 0 || !mixl_kv_head_overlap(src, dst, &h0, &h1)) return 0;
    uint64_t last_tokens = tokens - (nb - 1) * (uint64_t)dst->block_size;
    uint64_t heads_len = (uint64_t)(h1 - h0) * (uint64_t)dst->block_size * row;

    for (int kv = 0; kv < 2; kv++) {
        uint64_t i = 0; /* request block index */
        for (size_t r = 0; r < nruns && i < nb; r++) {
            for (uint64_t k = 0; k < runs[r].count && i < nb; k++, i++) {
                uint64_t db = runs[r].start + k;
                if (i + 1 < nb || last_tokens == (uint64_t)dst->block_size) {
                    /* A full block: the overlapping heads are one contiguous stretch. */
                    n = spans_push(
                        out, n, mixl_kv_offset(src, src_layer, kv, i, h0 - src->head0, 0),
                        mixl_kv_offset(dst, dst_layer, kv, db, h0 - dst->head0, 0), heads_len);
                } else {
                    /* The partial last block: each head's filled tokens. */
                    for (int h = h0; h < h1; h++)
                        n = spans_push(out, n,
                                       mixl_kv_offset(src, src_layer, kv, i, h - src->head0, 0),
                                       mixl_kv_offset(dst, dst_layer, kv, db, h - dst->head0, 0),
                                       last_tokens * row);
                }
            }
        }
    }
    return n;
}

uint64_t mixl_kv_spans_bytes(const mixl_kv_span_t *spans, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += spans[i].len;
    return total;
}
