/*
 * Descriptor validation and merging, through the public API, with an agent
 * on MPI_COMM_SELF that imported its own metadata (loopback peer). Each bad
 * request must fail with its own status and a message naming the culprit,
 * issue nothing, and leave the agent usable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mixl/mixl.h>

#define BUF 65536

typedef struct {
    mixl_agent_h agent;
    uint8_t *src, *dst;
    mixl_region_h rsrc, rdst;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    mixl_agent_params_t p = {.size = sizeof(p), .name = "self", .comm = MPI_COMM_SELF};
    void *blob;
    size_t len;

    f->src = calloc(1, BUF);
    f->dst = calloc(1, BUF);
    assert_int_equal(mixl_agent_create(&p, &f->agent), MIXL_OK);
    assert_int_equal(mixl_mem_register(f->agent, f->src, BUF, MIXL_MEM_HOST, 0, &f->rsrc), MIXL_OK);
    assert_int_equal(mixl_mem_register(f->agent, f->dst, BUF, MIXL_MEM_HOST, 0, &f->rdst), MIXL_OK);
    assert_int_equal(mixl_agent_start(f->agent), MIXL_OK);
    assert_int_equal(mixl_metadata_export(f->agent, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_import(f->agent, blob, len, NULL), MIXL_OK);
    mixl_free(blob);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    mixl_agent_destroy(f->agent);
    free(f->src);
    free(f->dst);
    free(f);
    return 0;
}

static mixl_desc_t d(const void *p, uint64_t len)
{
    mixl_desc_t x = {(uint64_t)(uintptr_t)p, len, MIXL_MEM_HOST, 0};
    return x;
}

static mixl_status_t make(fixture_t *f, const mixl_desc_t *l, const mixl_desc_t *r, size_t n,
                          const char *peer, mixl_xfer_h *x)
{
    mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = peer,
                            .local = l, .remote = r, .count = n};
    mixl_agent_clear_error(f->agent);
    return mixl_xfer_create(f->agent, &p, x);
}

/* The agent still moves data correctly after whatever failed before. */
static void assert_agent_usable(fixture_t *f)
{
    mixl_desc_t l = d(f->src, 100), r = d(f->dst + 7, 100);
    mixl_xfer_h x;
    memset(f->src, 0x5a, 100);
    memset(f->dst, 0, BUF);
    assert_int_equal(make(f, &l, &r, 1, "self", &x), MIXL_OK);
    mixl_status_t st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 10000);
    assert_int_equal(st, MIXL_OK);
    assert_int_equal(mixl_xfer_release(x), MIXL_OK);
    assert_int_equal(f->dst[6], 0);
    assert_int_equal(f->dst[7], 0x5a);
    assert_int_equal(f->dst[106], 0x5a);
    assert_int_equal(f->dst[107], 0);
}

static void test_merge_contiguous(void **state)
{
    fixture_t *f = *state;
    mixl_desc_t l[64], r[64];
    mixl_xfer_h x;

    /* 64 adjacent 512-byte spans on both sides: one operation. */
    for (int i = 0; i < 64; i++) {
        l[i] = d(f->src + i * 512, 512);
        r[i] = d(f->dst + i * 512, 512);
    }
    assert_int_equal(make(f, l, r, 64, "self", &x), MIXL_OK);
    assert_int_equal(mixl_xfer_ops(x), 1);
    assert_true(mixl_xfer_bytes(x) == 64 * 512);
    assert_int_equal(mixl_xfer_release(x), MIXL_OK);

    /* A gap on the remote side every 8 descriptors: 8 operations. */
    for (int i = 0; i < 64; i++) r[i] = d(f->dst + i * 512 + (i / 8) * 16, 512);
    assert_int_equal(make(f, l, r, 64, "self", &x), MIXL_OK);
    assert_int_equal(mixl_xfer_ops(x), 8);
    assert_int_equal(mixl_xfer_release(x), MIXL_OK);

    /* Reversed order is not contiguous: nothing merges. */
    for (int i = 0; i < 64; i++) {
        l[i] = d(f->src + (63 - i) * 512, 512);
        r[i] = d(f->dst + (63 - i) * 512, 512);
    }
    assert_int_equal(make(f, l, r, 64, "self", &x), MIXL_OK);
    assert_int_equal(mixl_xfer_ops(x), 64);
    assert_int_equal(mixl_xfer_release(x), MIXL_OK);
}

static void test_remote_out_of_range(void **state)
{
    fixture_t *f = *state;
    mixl_desc_t l = d(f->src, 128), r = d(f->dst + BUF - 64, 128);
    mixl_xfer_h x = NULL;

    assert_int_equal(make(f, &l, &r, 1, "self", &x), MIXL_ERR_OUT_OF_RANGE);
    assert_null(x);
    assert_non_null(strstr(mixl_agent_last_error(f->agent), "remote descriptor 0"));
    assert_agent_usable(f);
}

static void test_local_unregistered(void **state)
{
    fixture_t *f = *state;
    uint8_t stack[256];
    mixl_desc_t l[2] = {d(f->src, 64), d(stack, 64)}, r[2] = {d(f->dst, 64), d(f->dst + 64, 64)};
    mixl_xfer_h x = NULL;

    assert_int_equal(make(f, l, r, 2, "self", &x), MIXL_ERR_NOT_REGISTERED);
    assert_null(x);
    assert_non_null(strstr(mixl_agent_last_error(f->agent), "local descriptor 1"));
    assert_agent_usable(f);
}

static void test_length_mismatch(void **state)
{
    fixture_t *f = *state;
    mixl_desc_t l = d(f->src, 128), r = d(f->dst, 127);
    mixl_xfer_h x = NULL;

    assert_int_equal(make(f, &l, &r, 1, "self", &x), MIXL_ERR_MISMATCH);
    assert_non_null(strstr(mixl_agent_last_error(f->agent), "descriptor 0"));
    assert_agent_usable(f);
}

static void test_unknown_peer(void **state)
{
    fixture_t *f = *state;
    mixl_desc_t l = d(f->src, 128), r = d(f->dst, 128);
    mixl_xfer_h x = NULL;

    assert_int_equal(make(f, &l, &r, 1, "decode-9", &x), MIXL_ERR_UNKNOWN_PEER);
    assert_non_null(strstr(mixl_agent_last_error(f->agent), "decode-9"));
    assert_int_equal(mixl_notif_send(f->agent, "decode-9", "x", 1), MIXL_ERR_UNKNOWN_PEER);
    assert_int_equal(mixl_peer_check(f->agent, "decode-9"), MIXL_ERR_UNKNOWN_PEER);
    assert_int_equal(mixl_peer_check(f->agent, "self"), MIXL_OK);
    assert_agent_usable(f);
}

static void test_released_request_reused(void **state)
{
    fixture_t *f = *state;
    mixl_desc_t l = d(f->src, 128), r = d(f->dst, 128);
    mixl_xfer_h x;

    assert_int_equal(make(f, &l, &r, 1, "self", &x), MIXL_OK);
    assert_int_equal(mixl_xfer_release(x), MIXL_OK);
    mixl_agent_clear_error(f->agent);
    assert_int_equal(mixl_xfer_post(x), MIXL_ERR_BAD_STATE);
    assert_non_null(strstr(mixl_agent_last_error(f->agent), "released"));
    assert_int_equal(mixl_xfer_test(x), MIXL_ERR_BAD_STATE);
    assert_int_equal(mixl_xfer_release(x), MIXL_ERR_BAD_STATE);
    assert_agent_usable(f);
}

static void test_bad_params(void **state)
{
    fixture_t *f = *state;
    mixl_desc_t l = d(f->src, 128), r = d(f->dst, 128);
    uint8_t big[MIXL_NOTIF_MAX + 1] = {0};
    mixl_xfer_params_t p = {.size = sizeof(p), .op = MIXL_OP_WRITE, .peer = "self",
                            .local = &l, .remote = &r, .count = 1};
    mixl_xfer_h x;

    p.notif = big;
    p.notif_len = sizeof(big);
    assert_int_equal(mixl_xfer_create(f->agent, &p, &x), MIXL_ERR_TOO_LARGE);
    p.notif_len = 0;
    p.count = 0;
    assert_int_equal(mixl_xfer_create(f->agent, &p, &x), MIXL_ERR_INVALID_PARAM);
    p.count = 1;
    p.op = (mixl_op_t)7;
    assert_int_equal(mixl_xfer_create(f->agent, &p, &x), MIXL_ERR_INVALID_PARAM);
    p.op = MIXL_OP_READ;
    l.mem_type = MIXL_MEM_PINNED; /* region is host memory */
    assert_int_equal(mixl_xfer_create(f->agent, &p, &x), MIXL_ERR_INVALID_PARAM);
    assert_agent_usable(f);
}

static void test_registration_rules(void **state)
{
    fixture_t *f = *state;
    mixl_region_h r;

    /* Overlapping an existing region. */
    assert_int_equal(mixl_mem_register(f->agent, f->src + 100, 10, MIXL_MEM_HOST, 0, &r),
                     MIXL_ERR_EXISTS);
    assert_int_equal(mixl_mem_register(f->agent, NULL, 10, MIXL_MEM_HOST, 0, &r),
                     MIXL_ERR_INVALID_PARAM);
    /* A region in use by a prepared request cannot go. */
    mixl_desc_t l = d(f->src, 128), rd = d(f->dst, 128);
    mixl_xfer_h x;
    assert_int_equal(make(f, &l, &rd, 1, "self", &x), MIXL_OK);
    assert_int_equal(mixl_mem_deregister(f->agent, f->rsrc), MIXL_ERR_BUSY);
    assert_int_equal(mixl_peer_forget(f->agent, "self"), MIXL_ERR_BUSY);
    assert_int_equal(mixl_xfer_release(x), MIXL_OK);
    assert_agent_usable(f);
}

static void test_late_registration(void **state)
{
    fixture_t *f = *state;
    uint8_t *late = calloc(1, 4096);
    mixl_region_h r;
    void *blob;
    size_t len;
    mixl_xfer_h x;

    /* After start: dynamic window; peers see it after re-importing the metadata. */
    assert_int_equal(mixl_mem_register(f->agent, late, 4096, MIXL_MEM_HOST, 0, &r), MIXL_OK);
    assert_int_equal(mixl_metadata_export(f->agent, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_import(f->agent, blob, len, NULL), MIXL_OK);
    mixl_free(blob);
    memset(f->src, 0x77, 4096);
    mixl_desc_t l = d(f->src, 4096), rd = d(late, 4096);
    assert_int_equal(make(f, &l, &rd, 1, "self", &x), MIXL_OK);
    mixl_status_t st = mixl_xfer_post(x);
    if (st == MIXL_IN_PROGRESS) st = mixl_xfer_wait(x, 10000);
    assert_int_equal(st, MIXL_OK);
    assert_int_equal(late[0], 0x77);
    assert_int_equal(late[4095], 0x77);
    assert_int_equal(mixl_xfer_release(x), MIXL_OK);
    assert_int_equal(mixl_mem_deregister(f->agent, r), MIXL_OK);
    free(late);
}

static void test_agent_params(void **state)
{
    mixl_agent_h a = NULL;
    mixl_agent_params_t p = {.size = sizeof(p), .name = "has space", .comm = MPI_COMM_SELF};
    assert_int_equal(mixl_agent_create(&p, &a), MIXL_ERR_INVALID_PARAM);
    p.name = "";
    assert_int_equal(mixl_agent_create(&p, &a), MIXL_ERR_INVALID_PARAM);
    p.name = "ok";
    p.staging_slots = 65; /* one past MIXL_STAGE_MAX_SLOTS */
    assert_int_equal(mixl_agent_create(&p, &a), MIXL_ERR_INVALID_PARAM);
    assert_null(a);
    p.staging_slots = 1; /* one slot is allowed: it serialises copies and network */
    assert_int_equal(mixl_agent_create(&p, &a), MIXL_OK);
    mixl_agent_destroy(a);
    a = NULL;
    assert_int_equal(mixl_agent_create(NULL, &a), MIXL_ERR_INVALID_PARAM);
}

/* Windows that cannot be used (device windows demanded, MPI not CUDA-aware):
 * start fails without TCP, and falls back to TCP when TCP is enabled. */
static void test_fallback_to_tcp(void **state)
{
    mixl_agent_h a;
    uint8_t buf[4096];
    mixl_region_h r;
    mixl_agent_params_t p = {.size = sizeof(p), .name = "fallback", .comm = MPI_COMM_SELF,
                             .backends = MIXL_BACKEND_MPI, .gpu_path = MIXL_GPU_PATH_DEVICE_WIN};

    assert_int_equal(mixl_agent_create(&p, &a), MIXL_OK);
    assert_int_equal(mixl_agent_start(a), MIXL_ERR_NOT_SUPPORTED);
    assert_non_null(strstr(mixl_agent_last_error(a), "CUDA-aware"));
    mixl_agent_destroy(a);

    p.backends = MIXL_BACKEND_MPI | MIXL_BACKEND_TCP;
    assert_int_equal(mixl_agent_create(&p, &a), MIXL_OK);
    assert_int_equal(mixl_mem_register(a, buf, sizeof(buf), MIXL_MEM_HOST, 0, &r), MIXL_OK);
    assert_int_equal(mixl_agent_start(a), MIXL_OK);
    assert_int_equal(mixl_agent_backends(a), MIXL_BACKEND_TCP);
    assert_non_null(strstr(mixl_agent_path_report(a), "tcp"));
    mixl_agent_destroy(a);
}

int main(int argc, char **argv)
{
    int provided, rc;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_contiguous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_unregistered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_released_request_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registration_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_registration, setup, teardown),
        cmocka_unit_test(test_agent_params),
        cmocka_unit_test(test_fallback_to_tcp),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
