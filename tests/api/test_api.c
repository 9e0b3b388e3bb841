/*
 * The public API's cross-cutting rules: a failed create is reportable by
 * the caller (mixl_last_error), handle-less calls report on the calling
 * thread, log lines can be routed by the embedding program, and the
 * loaded library says which backends it has.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <mixl/mixl.h>

static int failures;

#define CHECK(cond, ...)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                              \
            fprintf(stderr, "\n");                                     \
            failures++;                                                \
        }                                                              \
    } while (0)

static struct {
    int calls;
    mixl_log_level_t level;
    char msg[512];
} seen;

static void capture(mixl_log_level_t level, const char *msg, void *arg)
{
    CHECK(arg == &seen, "handler got the wrong argument");
    seen.calls++;
    seen.level = level;
    snprintf(seen.msg, sizeof(seen.msg), "%s", msg);
}

/* A create that fails leaves its reason with the caller, and routes its log line. */
static void failed_create(void)
{
    mixl_agent_params_t p = {.size = sizeof(p), .name = "has space", .comm = MPI_COMM_NULL,
                             .backends = MIXL_BACKEND_TCP};
    mixl_agent_h a = (mixl_agent_h)&seen;

    mixl_log_set_handler(capture, &seen);
    mixl_status_t st = mixl_agent_create(&p, &a);
    mixl_log_set_handler(NULL, NULL);
    CHECK(st == MIXL_ERR_INVALID_PARAM, "bad name: %s", mixl_status_name(st));
    CHECK(a == (mixl_agent_h)&seen, "failed create wrote *agent_p");
    CHECK(strstr(mixl_last_error(), "has space") != NULL, "mixl_last_error: '%s'", mixl_last_error());
    CHECK(seen.calls == 1 && seen.level == MIXL_LOG_ERROR && strstr(seen.msg, "has space") != NULL &&
              strncmp(seen.msg, "mixl", 4) != 0,
          "handler saw %d lines, last '%s'", seen.calls, seen.msg);

    /* A create that succeeds clears the thread's error. */
    p.name = "api-ok";
    st = mixl_agent_create(&p, &a);
    CHECK(st == MIXL_OK && mixl_last_error()[0] == '\0', "good create: %s, error '%s'",
          mixl_status_name(st), mixl_last_error());
    if (st == MIXL_OK) {
        void *blob;
        size_t len;
        mixl_metadata_t *md = NULL;
        CHECK(mixl_metadata_export(a, &blob, &len) == MIXL_OK, "export");
        CHECK(mixl_metadata_decode(blob, len - 1, &md) == MIXL_ERR_BAD_METADATA && md == NULL,
              "truncated blob decoded");
        CHECK(strstr(mixl_last_error(), "truncated") != NULL, "decode reason: '%s'", mixl_last_error());
        CHECK(mixl_metadata_decode(blob, len, &md) == MIXL_OK && mixl_last_error()[0] == '\0',
              "good decode left '%s'", mixl_last_error());
        CHECK(md != NULL && strcmp(md->name, "api-ok") == 0, "decoded name");
        mixl_metadata_free(md);
        mixl_free(blob);
        mixl_agent_destroy(a);
    }
}

static void *other_thread(void *arg)
{
    (void)arg;
    mixl_metadata_t *md = NULL;
    /* This thread's failure is its own. */
    if (mixl_metadata_decode("xx", 2, &md) != MIXL_ERR_BAD_METADATA) return (void *)1;
    return strstr(mixl_last_error(), "not a MIXL metadata blob") != NULL ? NULL : (void *)2;
}

static void per_thread(void)
{
    mixl_metadata_t *md = NULL;
    pthread_t t;
    void *ret = (void *)3;
    CHECK(mixl_metadata_decode("", 0, &md) == MIXL_ERR_BAD_METADATA, "empty blob");
    CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0 && pthread_join(t, &ret) == 0 && ret == NULL,
          "other thread's error (%p)", ret);
    CHECK(strstr(mixl_last_error(), "empty") != NULL, "this thread's error became '%s'", mixl_last_error());
}

/* The .size rule: any size from the first released one to the current one; nothing else. */
static void size_rule(void)
{
    struct {
        mixl_agent_params_t p;
        char newer[16];
    } big;
    mixl_agent_h a = NULL;
    mixl_agent_params_t p = {.size = offsetof(mixl_agent_params_t, gpu_path), .name = "api-old",
                             .comm = MPI_COMM_NULL, .backends = MIXL_BACKEND_TCP};
    mixl_status_t st = mixl_agent_create(&p, &a);
    CHECK(st == MIXL_OK, "agent params of the first released size: %s", mixl_status_name(st));
    if (st == MIXL_OK) mixl_agent_destroy(a);
    memset(&big, 0, sizeof(big));
    big.p = p;
    big.p.size = sizeof(big);
    CHECK(mixl_agent_create(&big.p, &a) == MIXL_ERR_VERSION, "agent params from a newer header accepted");
    CHECK(strstr(mixl_last_error(), "params.size") != NULL, "message: '%s'", mixl_last_error());
    p.size = 0;
    CHECK(mixl_agent_create(&p, &a) == MIXL_ERR_VERSION, ".size 0 accepted");

    mixl_registry_params_t rp;
    mixl_registry_h reg = NULL;
    mixl_registry_params_init(&rp);
    rp.backend = "local";
    rp.size = offsetof(mixl_registry_params_t, comm);
    st = mixl_registry_create(&rp, &reg);
    CHECK(st == MIXL_OK, "registry params of the first released size: %s", mixl_status_name(st));
    if (st == MIXL_OK) mixl_registry_destroy(reg);
    rp.size = sizeof(rp) + 8;
    CHECK(mixl_registry_create(&rp, &reg) == MIXL_ERR_VERSION, "registry params from a newer header");

    p.size = sizeof(p);
    p.name = "api-xfer";
    if (mixl_agent_create(&p, &a) == MIXL_OK) {
        mixl_xfer_params_t xp = {.size = sizeof(xp) - 1, .op = MIXL_OP_WRITE};
        mixl_xfer_h x;
        CHECK(mixl_xfer_create(a, &xp, &x) == MIXL_ERR_VERSION, "short xfer params accepted");
        CHECK(strstr(mixl_agent_last_error(a), ".size") != NULL, "xfer message: '%s'",
              mixl_agent_last_error(a));
        mixl_agent_destroy(a);
    } else {
        CHECK(0, "agent for the xfer size check");
    }
}

static void backends(void)
{
    unsigned have = mixl_backends_available();
    CHECK(have == (MIXL_BACKEND_MPI | MIXL_BACKEND_TCP), "backends 0x%x", have);
    CHECK(strcmp(mixl_backend_name(MIXL_BACKEND_TCP), "tcp") == 0, "tcp name");
    CHECK(strcmp(mixl_backend_name((mixl_backend_t)(1u << 9)), "unknown") == 0, "unknown name");
    CHECK(mixl_backend_caps((mixl_backend_t)(1u << 9)) == 0, "caps of a backend that does not exist");
    CHECK((mixl_backend_caps(MIXL_BACKEND_TCP) & (MIXL_CAP_HOST | MIXL_CAP_PEER_FAILURE)) ==
              (MIXL_CAP_HOST | MIXL_CAP_PEER_FAILURE),
          "tcp caps 0x%x", mixl_backend_caps(MIXL_BACKEND_TCP));
    CHECK(!(mixl_backend_caps(MIXL_BACKEND_MPI) & MIXL_CAP_CROSS_WORLD), "mpi claims other worlds");
}

int main(void)
{
    failed_create();
    per_thread();
    backends();
    size_rule();
    printf("api: %s (%d failures)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
