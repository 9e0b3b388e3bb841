/*
 * Model-shaped mode: one request's whole KV (Llama-3 shapes) moved from the
 * prefill rank's buffer into blocks scattered over the decode rank's paged
 * pool, the way the disaggregated flow does it:
 *   layer-wise  one prepared request per layer (its K and V blocks, adjacent
 *               pool blocks merged), each with a per-layer notification;
 *   block-wise  one prepared request per KV block (every layer's K and V);
 *   contiguous  one descriptor of the same bytes (what the scatter costs);
 * all requests of an iteration in flight together, then a "request done"
 * notification. Compared with one memcpy of the same bytes. The decode side
 * counts the notifications and checks every block landed where it belongs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_layout.h"
#include "modes.h"
#include "session.h"
#include "util/clock.h"
#include "verify.h"

#define MODEL_WARMUP 1

typedef struct {
    bench_session_t *s;
    const char *peer;
    mixl_xfer_h *xfers;
    unsigned char *pending;
    size_t n;
    uint64_t timeout_ns;
    int notify;
    uint32_t iter;
} model_arg_t;

/* Hot path: post every request, poll them all to completion, then announce the request. */
static mixl_status_t model_iter(void *p)
{
    model_arg_t *a = p;
    size_t left = 0;
    uint64_t deadline = 0;
    mixl_status_t st;

    for (size_t i = 0; i < a->n; i++) {
        st = mixl_xfer_post(a->xfers[i]);
        if (st == MIXL_IN_PROGRESS) {
            a->pending[i] = 1;
            left++;
        } else if (st != MIXL_OK) {
            return st;
        }
    }
    for (unsigned polls = 1; left > 0; polls++) {
        for (size_t i = 0; i < a->n; i++) {
            if (!a->pending[i]) continue;
            st = mixl_xfer_test(a->xfers[i]);
            if (st == MIXL_OK) {
                a->pending[i] = 0;
                left--;
            } else if (st != MIXL_IN_PROGRESS) {
                return st;
            }
        }
        if ((polls & 1023) == 0) {
            if (deadline == 0) deadline = mixl_now_ns() + a->timeout_ns;
            else if (mixl_now_ns() > deadline) return MIXL_ERR_TIMED_OUT;
        }
    }
    a->iter++;
    if (a->notify) return mixl_notif_send(a->s->agent, a->peer, &a->iter, sizeof(a->iter));
    return MIXL_OK;
}

typedef struct {
    char *dst;
    const char *src;
    uint64_t bytes;
} copy_arg_t;

static mixl_status_t copy_iter(void *p)
{
    const copy_arg_t *a = p;
    memcpy(a->dst, a->src, a->bytes);
    return MIXL_OK;
}

/* Decode side: take the notifications each repetition brings. */
typedef struct {
    bench_session_t *s;
    uint64_t per_iter, warmup, iters;
    unsigned rep;
    uint64_t got;
    uint64_t timeout_ns;
} target_arg_t;

static mixl_status_t target_rep(void *p)
{
    target_arg_t *t = p;
    mixl_notif_t buf[64];
    uint64_t want = (t->warmup + t->iters * (t->rep + 1)) * t->per_iter;
    uint64_t deadline = mixl_now_ns() + t->timeout_ns;
    t->rep++;
    while (t->got < want) {
        size_t n = 0;
        mixl_status_t st = mixl_notif_poll(t->s->agent, buf, 64, &n);
        if (st != MIXL_OK) return st;
        t->got += n;
        if (n == 0 && mixl_now_ns() > deadline) return MIXL_ERR_TIMED_OUT;
    }
    return MIXL_OK;
}

static void model_row(bench_row_t *row, const char *mode, const bench_kv_layout_t *l, unsigned backend,
                      unsigned kind, const char *scheme)
{
    bench_row_init(row);
    snprintf(row->mode, sizeof(row->mode), "%s", mode);
    snprintf(row->backend, sizeof(row->backend), "%s", backend ? bench_backend_name(backend) : "cpu");
    snprintf(row->op, sizeof(row->op), "%s", backend ? "WRITE" : "COPY");
    snprintf(row->mem, sizeof(row->mem), "%s", bench_mem_name(kind));
    snprintf(row->pattern, sizeof(row->pattern), "%s", scheme);
    snprintf(row->model, sizeof(row->model), "%s", l->model->name);
    row->tokens = l->tokens;
    row->block_tokens = l->block_tokens;
    row->size = l->block_bytes;
    row->bytes = l->kv_bytes;
}

/*
 * Verified iterations (verify.h): the first and the last iteration of every
 * scheme run outside the timed loop with their own seed. Block b of layer's
 * K or V carries the pattern of (seed, 2 x layer + kv, b), every byte; the
 * decode side finds it where the allocator placed it (layer-wise,
 * block-wise) or at the source's offset (contiguous).
 */
static void fill_source(const bench_kv_layout_t *l, char *src, uint64_t seed)
{
    for (unsigned layer = 0; layer < l->model->layers; layer++)
        for (unsigned kv = 0; kv < 2; kv++)
            for (uint64_t b = 0; b < l->nblocks; b++)
                bench_verify_fill((uint8_t *)src + bench_kv_src_off(l, layer, kv, b), l->block_bytes, seed,
                                  2 * layer + kv, b);
}

/* Decode side: is every block where it belongs, with this iteration's content? 1 when so. */
static int verify_pool(const bench_kv_layout_t *l, const char *pool, int contiguous, uint64_t seed,
                       char *note, size_t note_len)
{
    uint8_t *want = malloc(l->block_bytes);
    if (want == NULL) {
        snprintf(note, note_len, "out of memory for verification");
        return 0;
    }
    for (unsigned layer = 0; layer < l->model->layers; layer++)
        for (unsigned kv = 0; kv < 2; kv++)
            for (uint64_t b = 0; b < l->nblocks; b++) {
                uint64_t off = contiguous ? bench_kv_src_off(l, layer, kv, b) : bench_kv_pool_off(l, layer, kv, b);
                bench_verify_fill(want, l->block_bytes, seed, 2 * layer + kv, b);
                if (memcmp(pool + off, want, l->block_bytes) != 0) {
                    snprintf(note, note_len, "layer %u %s block %llu did not land where it belongs", layer,
                             kv ? "V" : "K", (unsigned long long)b);
                    free(want);
                    return 0;
                }
            }
    free(want);
    return 1;
}

/* Decode side: take the notifications of exactly one iteration. */
static mixl_status_t take_notifs(bench_session_t *s, uint64_t n, uint64_t timeout_ns)
{
    mixl_notif_t buf[64];
    uint64_t got = 0, deadline = mixl_now_ns() + timeout_ns;
    while (got < n) {
        size_t k = 0;
        mixl_status_t st = mixl_notif_poll(s->agent, buf, n - got < 64 ? n - got : 64, &k);
        if (st != MIXL_OK) return st;
        got += k;
        if (k == 0 && mixl_now_ns() > deadline) return MIXL_ERR_TIMED_OUT;
    }
    return MIXL_OK;
}

/*
 * Collective. One verified iteration of a scheme (host memory): fill the
 * source, clear the pool, run it, take its notifications, check the pool.
 * Every rank gets the same status and note.
 */
static mixl_status_t model_verified(bench_ctx_t *ctx, bench_session_t *s, const bench_role_t *role,
                                    const bench_kv_layout_t *l, int contiguous, model_arg_t *a,
                                    uint64_t per_iter, const char *what, char *note, size_t note_len)
{
    uint64_t seed = ++ctx->verify_seq;
    char mine[96] = "";
    mixl_status_t st = MIXL_OK, bst;

    if (role->initiator) fill_source(l, s->bufs[0].ptr, seed);
    else if (role->sources) memset(s->bufs[1].ptr, 0, s->bufs[1].len); /* a block that never arrives shows */
    bst = bench_boot_barrier(ctx->boot);
    if (bst != MIXL_OK) st = bst;
    if (st == MIXL_OK && role->initiator) {
        st = model_iter(a);
        if (st != MIXL_OK)
            snprintf(mine, sizeof(mine), "%s iteration: %s", what, mixl_agent_last_error(s->agent));
    } else if (st == MIXL_OK && role->sources && per_iter) {
        st = take_notifs(s, per_iter, a->timeout_ns);
        if (st != MIXL_OK) snprintf(mine, sizeof(mine), "%s iteration: notifications: %s", what, mixl_status_str(st));
    }
    bst = bench_boot_barrier(ctx->boot);
    if (bst != MIXL_OK && st == MIXL_OK) st = bst;
    if (st == MIXL_OK && role->sources) {
        char where[80];
        if (!verify_pool(l, s->bufs[1].ptr, contiguous, seed, where, sizeof(where))) {
            st = MIXL_ERR_CHECKSUM;
            if (snprintf(mine, sizeof(mine), "%s iteration: %s", what, where) < 0) mine[0] = '\0';
        }
    }
    return bench_agree(ctx, st, mine, note, note_len);
}

/* Build the prepared requests of one scheme ("layer-wise", "block-wise", "contiguous"). */
static mixl_status_t build_requests(bench_session_t *s, const bench_kv_layout_t *l, const char *peer,
                                    uint64_t remote_pool, unsigned kind, const char *scheme, int notify,
                                    model_arg_t *a, uint64_t *descs_p, uint64_t *ops_p)
{
    const bench_model_t *m = l->model;
    mixl_mem_type_t mt = bench_mem_mixl_type(kind);
    uint64_t src = (uint64_t)(uintptr_t)s->bufs[0].ptr;
    int layerwise = strcmp(scheme, "layer-wise") == 0, blockwise = strcmp(scheme, "block-wise") == 0;
    size_t nreq = layerwise ? m->layers : blockwise ? l->nblocks : 1;
    size_t per = layerwise ? 2 * l->nblocks : blockwise ? 2u * m->layers : 1;
    mixl_desc_t *local = calloc(per, sizeof(*local)), *remote = calloc(per, sizeof(*remote));
    mixl_status_t st = MIXL_OK;

    a->xfers = calloc(nreq, sizeof(*a->xfers));
    a->pending = calloc(nreq, 1);
    if (local == NULL || remote == NULL || a->xfers == NULL || a->pending == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto out;
    }
    *descs_p = *ops_p = 0;
    for (size_t r = 0; r < nreq && st == MIXL_OK; r++) {
        size_t k = 0;
        uint32_t notif[2] = {(uint32_t)r, 0};
        if (layerwise) {
            for (unsigned kv = 0; kv < 2; kv++)
                for (uint64_t b = 0; b < l->nblocks; b++, k++) {
                    local[k] = (mixl_desc_t){src + bench_kv_src_off(l, (unsigned)r, kv, b), l->block_bytes, mt, 0};
                    remote[k] = (mixl_desc_t){remote_pool + bench_kv_pool_off(l, (unsigned)r, kv, b),
                                              l->block_bytes, mt, 0};
                }
        } else if (blockwise) {
            for (unsigned layer = 0; layer < m->layers; layer++)
                for (unsigned kv = 0; kv < 2; kv++, k++) {
                    local[k] = (mixl_desc_t){src + bench_kv_src_off(l, layer, kv, r), l->block_bytes, mt, 0};
                    remote[k] = (mixl_desc_t){remote_pool + bench_kv_pool_off(l, layer, kv, r),
                                              l->block_bytes, mt, 0};
                }
        } else {
            local[k] = (mixl_desc_t){src, l->kv_bytes, mt, 0};
            remote[k] = (mixl_desc_t){remote_pool, l->kv_bytes, mt, 0};
            k++;
        }
        /* A layer's notification tells the decode side that layer can be used. */
        mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = peer, .local = local,
                                 .remote = remote, .count = k,
                                 .notif = layerwise && notify ? notif : NULL,
                                 .notif_len = layerwise && notify ? sizeof(notif) : 0};
        st = mixl_xfer_create(s->agent, &xp, &a->xfers[r]);
        if (st == MIXL_OK) {
            a->n++;
            *descs_p += k;
            *ops_p += mixl_xfer_ops(a->xfers[r]);
        }
    }
out:
    free(local);
    free(remote);
    return st;
}

static void release_requests(model_arg_t *a)
{
    for (size_t i = 0; i < a->n; i++) mixl_xfer_release(a->xfers[i]);
    free(a->xfers);
    free(a->pending);
    a->xfers = NULL;
    a->pending = NULL;
    a->n = 0;
}

static mixl_status_t model_scheme(bench_ctx_t *ctx, bench_session_t *s, const bench_role_t *role,
                                  const bench_kv_layout_t *l, unsigned kind, const char *scheme)
{
    const bench_opts_t *o = ctx->opts;
    int layerwise = strcmp(scheme, "layer-wise") == 0;
    unsigned iters = o->model_iters;
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    model_arg_t a = {.s = s, .timeout_ns = (uint64_t)o->timeout_ms * 1000000ull, .notify = o->notify};
    target_arg_t t = {.s = s, .per_iter = o->notify ? (layerwise ? l->model->layers : 0) + 1 : 0,
                      .warmup = MODEL_WARMUP, .iters = iters,
                      .timeout_ns = (uint64_t)o->timeout_ms * 1000000ull};
    uint64_t descs = 0, ops = 0, counts[2] = {0, 0};
    char note[96] = "";
    mixl_status_t st = MIXL_OK;
    bench_row_t row;

    model_row(&row, "model-mixl", l, s->backend, kind, scheme);
    if (role->initiator) {
        a.peer = s->names[role->peer];
        lat = calloc((size_t)o->reps * iters, sizeof(*lat));
        st = lat ? build_requests(s, l, a.peer, s->exposed[role->peer], kind, scheme, o->notify, &a,
                                  &descs, &ops)
                 : MIXL_ERR_NO_MEMORY;
        if (st != MIXL_OK) snprintf(note, sizeof(note), "%s", mixl_agent_last_error(s->agent));
    }
    st = bench_agree(ctx, st, note, note, sizeof(note));
    if (st != MIXL_OK) {
        bench_skip_row(ctx, &row, note);
        goto out;
    }
    /* Device memory is not verified here (the GPU tests check device transfers). */
    int verify = kind != BENCH_MEM_CUDA, contiguous = strcmp(scheme, "contiguous") == 0;
    if (verify)
        st = model_verified(ctx, s, role, l, contiguous, &a, t.per_iter, "first", note, sizeof(note));
    if (st == MIXL_OK) {
        ctx->target_idle = s->backend == BENCH_BACKEND_TCP;
        st = bench_time_loop(ctx, role->initiator, MODEL_WARMUP, iters, model_iter, &a, lat, rep_ns,
                             role->sources && t.per_iter ? target_rep : NULL, &t);
        ctx->target_idle = 0;
        if (st != MIXL_OK)
            snprintf(note, sizeof(note), "%s: %s", role->initiator ? "transfer" : "notifications",
                     s->agent ? mixl_agent_last_error(s->agent) : mixl_status_str(st));
        st = bench_agree(ctx, st, note, note, sizeof(note));
    }
    if (st == MIXL_OK && verify)
        st = model_verified(ctx, s, role, l, contiguous, &a, t.per_iter, "last", note, sizeof(note));
    if (st != MIXL_OK) {
        bench_skip_row(ctx, &row, note);
        st = MIXL_OK;
        goto out;
    }
    /* Rank 0 may be the decode side: take the prefill side's request shape. */
    uint64_t mine[2] = {descs, ops};
    uint64_t *all = calloc((size_t)ctx->size * 2, sizeof(uint64_t));
    if (all != NULL && bench_boot_exchange(ctx->boot, mine, sizeof(mine), all) == MIXL_OK)
        for (int r = 0; r < ctx->size; r++)
            if (all[2 * r] > counts[0]) {
                counts[0] = all[2 * r];
                counts[1] = all[2 * r + 1];
            }
    free(all);
    row.batch = counts[0];
    row.xfer_ops = counts[1];
    row.requests = layerwise ? l->model->layers : strcmp(scheme, "block-wise") == 0 ? (uint32_t)l->nblocks : 1;
    snprintf(row.note, sizeof(row.note), "%s%s", kind == BENCH_MEM_CUDA ? "" : "placement verified, first and last iteration",
             o->notify ? (layerwise ? "; per-layer + done notifications" : "; done notification") : "");
    st = bench_collect(ctx, &row, role->initiator, lat, rep_ns, iters, l->kv_bytes, counts[0]);
out:
    release_requests(&a);
    free(lat);
    return st;
}

/*
 * One contiguous memcpy of the same bytes on the prefill rank, measured
 * right before the scheme it is compared with (the machine is shared, so
 * the baseline is taken seconds, not minutes, from the figure it divides).
 */
static mixl_status_t model_memcpy(bench_ctx_t *ctx, const bench_role_t *role, const bench_kv_layout_t *l,
                                  unsigned kind, const char *scheme, const char *src, char *dst)
{
    const bench_opts_t *o = ctx->opts;
    double *lat = NULL, rep_ns[BENCH_LIST_MAX] = {0};
    mixl_status_t st = MIXL_OK;
    bench_row_t row;

    model_row(&row, "model-memcpy", l, 0, kind, scheme);
    row.size = l->kv_bytes;
    row.batch = row.xfer_ops = 1;
    snprintf(row.note, sizeof(row.note), "one memcpy of the same bytes, taken before the %s row", scheme);
    if (role->initiator && (lat = calloc((size_t)o->reps * o->model_iters, sizeof(*lat))) == NULL)
        st = MIXL_ERR_NO_MEMORY;
    st = bench_agree(ctx, st, "out of memory", NULL, 0);
    if (st != MIXL_OK) return st;
    copy_arg_t c = {.dst = dst, .src = src, .bytes = l->kv_bytes};
    /* First and last copy verified, each with its own pattern (host memory). */
    bench_verify_t v = {.kind = kind, .size = l->kv_bytes, .batch = 1, .contig = 1};
    if (role->initiator && kind != BENCH_MEM_CUDA) {
        v.src = (bench_side_t){.base = (char *)src, .nslots = 1};
        v.dst = (bench_side_t){.base = dst, .nslots = 1};
    }
    char note[96] = "";
    st = bench_verify_iter(ctx, &v, role->initiator, copy_iter, &c, "first", note, sizeof(note));
    if (st == MIXL_OK)
        st = bench_time_loop(ctx, role->initiator, MODEL_WARMUP, o->model_iters, copy_iter, &c, lat, rep_ns,
                             NULL, NULL);
    if (st == MIXL_OK) st = bench_verify_iter(ctx, &v, role->initiator, copy_iter, &c, "last", note, sizeof(note));
    if (st == MIXL_ERR_CHECKSUM) {
        bench_skip_row(ctx, &row, note);
        free(lat);
        return MIXL_OK; /* bench_check fails the run on this row */
    }
    if (st == MIXL_OK) st = bench_collect(ctx, &row, role->initiator, lat, rep_ns, o->model_iters, l->kv_bytes, 1);
    free(lat);
    return st;
}

static mixl_status_t model_point(bench_ctx_t *ctx, unsigned backend, unsigned kind,
                                 const bench_model_t *m, uint64_t tokens)
{
    const bench_opts_t *o = ctx->opts;
    bench_role_t role = bench_role(ctx, BENCH_PATTERN_PAIRWISE);
    bench_kv_layout_t l;
    uint64_t pool = 0, src = 0;
    char note[96] = "";
    bench_session_t s;
    mixl_status_t st;

    /* Both buffers are sized for the largest layout: a partly filled last block still counts whole. */
    for (size_t b = 0; b < o->nblock_sizes; b++) {
        if (bench_kv_layout_init(&l, m, tokens, (unsigned)o->block_sizes[b], 1) != MIXL_OK)
            return MIXL_ERR_NO_MEMORY;
        if (l.pool_bytes > pool) pool = l.pool_bytes;
        if (l.kv_bytes > src) src = l.kv_bytes;
        bench_kv_layout_free(&l);
    }
    if (bench_kv_layout_init(&l, m, tokens, (unsigned)o->block_sizes[0], 1) != MIXL_OK)
        return MIXL_ERR_NO_MEMORY;
    if (src > o->model_max_bytes) {
        bench_row_t row;
        model_row(&row, "model-mixl", &l, backend, kind, "-");
        snprintf(note, sizeof(note), "KV of %llu MiB above --model-max-bytes",
                 (unsigned long long)(src >> 20));
        bench_skip_row(ctx, &row, note);
        bench_kv_layout_free(&l);
        return MIXL_OK;
    }
    size_t len[BENCH_SESSION_BUFS] = {role.initiator ? src : 0, role.sources ? pool : 0};
    bench_kv_layout_free(&l);
    st = bench_session_open(ctx, backend, kind, len, &s, note, sizeof(note));
    if (st != MIXL_OK) {
        bench_row_t row;
        bench_kv_layout_init(&l, m, tokens, (unsigned)o->block_sizes[0], 1);
        model_row(&row, "model-mixl", &l, backend, kind, "-");
        bench_kv_layout_free(&l);
        bench_skip_row(ctx, &row, note);
        return st == MIXL_ERR_TIMED_OUT ? st : MIXL_OK;
    }
    /* The memcpy baseline's destination, on the prefill rank, allocated once for every scheme. */
    bench_buf_t dst = {0};
    if (role.initiator)
        st = bench_buf_alloc(kind == BENCH_MEM_HOST_MPI ? BENCH_MEM_HOST : kind, src, 5, &dst, note, sizeof(note));
    st = bench_agree(ctx, st, note, note, sizeof(note));
    if (st != MIXL_OK) {
        bench_row_t row;
        bench_kv_layout_init(&l, m, tokens, (unsigned)o->block_sizes[0], 1);
        model_row(&row, "model-memcpy", &l, 0, kind, "-");
        bench_kv_layout_free(&l);
        bench_skip_row(ctx, &row, note);
    }
    static const struct {
        unsigned bit;
        const char *name;
    } schemes[] = {{0, "contiguous"}, {BENCH_MODEL_LAYERWISE, "layer-wise"}, {BENCH_MODEL_BLOCKWISE, "block-wise"}};
    for (size_t b = 0; b < o->nblock_sizes && st == MIXL_OK; b++) {
        st = bench_kv_layout_init(&l, m, tokens, (unsigned)o->block_sizes[b], 1 + tokens + b);
        if (st != MIXL_OK) break;
        for (size_t k = 0; k < sizeof(schemes) / sizeof(schemes[0]) && st == MIXL_OK; k++) {
            /* The contiguous transfer does not depend on the block size: measured once. */
            if (schemes[k].bit == 0 ? b != 0 : !(o->schemes & schemes[k].bit)) continue;
            /* memcpy has no backend: measured with the first backend only. */
            if ((o->backends & (backend - 1)) == 0)
                st = model_memcpy(ctx, &role, &l, kind, schemes[k].name, s.bufs[0].ptr, dst.ptr);
            if (st == MIXL_OK) st = model_scheme(ctx, &s, &role, &l, kind, schemes[k].name);
        }
        bench_kv_layout_free(&l);
    }
    bench_buf_free(&dst);
    bench_session_close(ctx, &s);
    return st;
}

mixl_status_t bench_run_model(bench_ctx_t *ctx)
{
    const bench_opts_t *o = ctx->opts;
    mixl_status_t st = MIXL_OK;

    if (ctx->size < 2) return MIXL_OK;
    for (unsigned be = BENCH_BACKEND_MPI; be <= BENCH_BACKEND_TCP && st == MIXL_OK; be <<= 1) {
        if (!(o->backends & be)) continue;
        for (unsigned kind = BENCH_MEM_HOST; kind <= BENCH_MEM_LAST && st == MIXL_OK; kind <<= 1) {
            if (!(o->mems & kind)) continue;
            for (size_t m = 0; m < o->nmodels && st == MIXL_OK; m++)
                for (size_t t = 0; t < o->ntokens && st == MIXL_OK; t++)
                    st = model_point(ctx, be, kind, o->models[m], o->tokens[t]);
        }
    }
    return st;
}
