/* Every status has a distinct, non-empty message and name; unknown values are handled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mixl/mixl.h>

static const int codes[] = {
#define CODE_(name, value, msg) value,
    MIXL_STATUS_MAP(CODE_)
#undef CODE_
};

static void test_every_status_has_a_message(void **state)
{
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        const char *msg = mixl_status_str((mixl_status_t)codes[i]);
        assert_non_null(msg);
        assert_true(strlen(msg) > 0);
        assert_string_not_equal(msg, "unknown status");
        assert_true(strncmp(mixl_status_name((mixl_status_t)codes[i]), "MIXL_", 5) == 0);
        for (size_t j = i + 1; j < n; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(msg, mixl_status_str((mixl_status_t)codes[j]));
        }
    }
}

static void test_conventions(void **state)
{
    assert_int_equal(MIXL_OK, 0);
    assert_int_equal(MIXL_IN_PROGRESS, 1);
    for (size_t i = 2; i < sizeof(codes) / sizeof(codes[0]); i++) assert_true(codes[i] < 0);
    assert_string_equal(mixl_status_str((mixl_status_t)-9999), "unknown status");
    assert_string_equal(mixl_status_name(MIXL_ERR_TIMED_OUT), "MIXL_ERR_TIMED_OUT");
}

/* Host memory through the public allocator and copy works in every build,
 * with or without CUDA and with or without a device. */
static void test_host_memory(void **state)
{
    char src[64] = "kv block 7", dst[64] = {0};
    uint8_t *p = NULL;
    (void)state;
    assert_int_equal(mixl_mem_copy(dst, src, sizeof(src)), MIXL_OK);
    assert_string_equal(dst, "kv block 7");
    assert_int_equal(mixl_mem_alloc(MIXL_MEM_HOST, 0, 8192, (void **)&p), MIXL_OK);
    for (size_t i = 0; i < 8192; i++) assert_int_equal(p[i], 0);
    assert_int_equal(mixl_mem_copy(p + 100, src, 11), MIXL_OK);
    assert_string_equal((char *)p + 100, "kv block 7");
    mixl_mem_free(MIXL_MEM_HOST, p);
    assert_int_equal(mixl_mem_alloc(MIXL_MEM_HOST, 0, 0, (void **)&p), MIXL_ERR_INVALID_PARAM);
    assert_non_null(strstr(mixl_last_error(), "0 bytes"));
}

static void test_version(void **state)
{
    assert_true(MIXL_VERSION_AT_LEAST(0, 1, 0));
    assert_false(MIXL_VERSION_AT_LEAST(MIXL_VERSION_MAJOR + 1, 0, 0));
    assert_true(strlen(MIXL_VERSION_STRING) >= 5);
    /* The loaded library reports the version these headers describe. */
    assert_int_equal(mixl_version(), MIXL_VERSION);
    assert_string_equal(mixl_version_string(), MIXL_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_has_a_message),
        cmocka_unit_test(test_conventions),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_host_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
