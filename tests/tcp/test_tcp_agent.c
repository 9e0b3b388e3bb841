/*
 * End to end through the public agent API with the TCP backend: two agents
 * in one process, and two processes that share nothing but metadata blobs
 * passed through a pipe (no MPI world). Covers WRITE with a notification
 * seen after the data, READ, re-posting, and a target process killed while
 * transfers stream to it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <mixl/agent.h>
#include <mixl/metadata.h>

#include "util/clock.h"

static mixl_agent_h make_agent(const char *name, int timeout_ms)
{
    mixl_agent_params_t p;
    mixl_agent_h a = NULL;

    memset(&p, 0, sizeof(p));
    p.size = sizeof(p);
    p.name = name;
    p.comm = MPI_COMM_NULL;
    p.backends = MIXL_BACKEND_TCP;
    p.timeout_ms = timeout_ms;
    if (mixl_agent_create(&p, &a) != MIXL_OK) return NULL;
    return a;
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed;
    for (size_t i = 0; i < len; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* Wait politely: the progress threads need the CPU more than we do. */
static mixl_status_t wait_xfer(mixl_xfer_h x, int limit_ms)
{
    uint64_t end = mixl_deadline_ns(limit_ms);
    struct timespec pause = {0, 20000};
    mixl_status_t st;
    while ((st = mixl_xfer_test(x)) == MIXL_IN_PROGRESS && mixl_now_ns() < end)
        nanosleep(&pause, NULL);
    return st;
}

static size_t wait_notif(mixl_agent_h a, mixl_notif_t *n, int limit_ms)
{
    uint64_t end = mixl_deadline_ns(limit_ms);
    struct timespec pause = {0, 100000};
    size_t cnt = 0;
    do {
        if (mixl_notif_poll(a, n, 1, &cnt) != MIXL_OK) return 0;
        if (cnt > 0) return cnt;
        nanosleep(&pause, NULL);
    } while (mixl_now_ns() < end);
    return 0;
}

static void exchange(mixl_agent_h from, mixl_agent_h to)
{
    void *blob;
    size_t len;
    char name[MIXL_NAME_MAX];
    assert_int_equal(mixl_metadata_export(from, &blob, &len), MIXL_OK);
    assert_int_equal(mixl_metadata_import(to, blob, len, name), MIXL_OK);
    assert_string_equal(name, mixl_agent_name(from));
    mixl_free(blob);
}

static void test_two_agents_one_process(void **state)
{
    enum { LEN = 24u << 20 };
    uint8_t *pm = malloc(LEN), *dm = calloc(1, LEN);
    mixl_region_h pr, dr;
    mixl_xfer_h w, r;
    mixl_notif_t n;
    (void)state;

    mixl_agent_h prefill = make_agent("prefill-0", 10000), decode = make_agent("decode-0", 10000);
    assert_non_null(prefill);
    assert_non_null(decode);
    assert_int_equal(mixl_mem_register(prefill, pm, LEN, MIXL_MEM_HOST, 0, &pr), MIXL_OK);
    assert_int_equal(mixl_mem_register(decode, dm, LEN, MIXL_MEM_HOST, 0, &dr), MIXL_OK);
    assert_int_equal(mixl_agent_start(prefill), MIXL_OK);
    assert_int_equal(mixl_agent_start(decode), MIXL_OK);
    assert_non_null(strstr(mixl_agent_path_report(prefill), "tcp"));
    exchange(decode, prefill);
    exchange(prefill, decode);

    /* Prefill pushes "layers" (two blocks, merged by the agent) with a notification. */
    fill(pm, LEN, 11);
    mixl_desc_t loc[2] = {{(uint64_t)(uintptr_t)pm, LEN / 2, MIXL_MEM_HOST, 0},
                          {(uint64_t)(uintptr_t)pm + LEN / 2, LEN / 2, MIXL_MEM_HOST, 0}};
    mixl_desc_t rem[2] = {{(uint64_t)(uintptr_t)dm, LEN / 2, MIXL_MEM_HOST, 0},
                          {(uint64_t)(uintptr_t)dm + LEN / 2, LEN / 2, MIXL_MEM_HOST, 0}};
    mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = "decode-0",
                             .local = loc, .remote = rem, .count = 2,
                             .notif = "req-1", .notif_len = 5};
    assert_int_equal(mixl_xfer_create(prefill, &xp, &w), MIXL_OK);
    assert_int_equal(mixl_xfer_ops(w), 1);
    assert_int_equal(mixl_xfer_post(w), MIXL_IN_PROGRESS);
    assert_int_equal(wait_notif(decode, &n, 20000), 1);
    assert_string_equal(n.peer, "prefill-0");
    assert_memory_equal(n.payload, "req-1", 5);
    assert_memory_equal(dm, pm, LEN); /* all data in place when the notification shows */
    assert_int_equal(wait_xfer(w, 20000), MIXL_OK);

    /* Again with new contents and payload. */
    fill(pm, LEN, 12);
    assert_int_equal(mixl_xfer_set_notif(w, "req-2", 5), MIXL_OK);
    assert_int_equal(mixl_xfer_post(w), MIXL_IN_PROGRESS);
    assert_int_equal(wait_xfer(w, 20000), MIXL_OK);
    assert_int_equal(wait_notif(decode, &n, 20000), 1);
    assert_memory_equal(n.payload, "req-2", 5);
    assert_memory_equal(dm, pm, LEN);

    /* Decode pulls a slice back (READ). */
    memset(pm, 0, 4096);
    mixl_desc_t l1 = {(uint64_t)(uintptr_t)pm, 4096, MIXL_MEM_HOST, 0};
    mixl_desc_t r1 = {(uint64_t)(uintptr_t)dm + 12345, 4096, MIXL_MEM_HOST, 0};
    mixl_xfer_params_t rp = {.size = sizeof(rp), .op = MIXL_OP_READ, .peer = "decode-0",
                             .local = &l1, .remote = &r1, .count = 1};
    assert_int_equal(mixl_xfer_create(prefill, &rp, &r), MIXL_OK);
    assert_int_equal(mixl_xfer_post(r), MIXL_IN_PROGRESS);
    assert_int_equal(wait_xfer(r, 20000), MIXL_OK);
    assert_memory_equal(pm, dm + 12345, 4096);

    /* A data-less notification from decode to prefill. */
    assert_int_equal(mixl_notif_send(decode, "prefill-0", "done", 4), MIXL_OK);
    assert_int_equal(wait_notif(prefill, &n, 20000), 1);
    assert_string_equal(n.peer, "decode-0");

    assert_int_equal(mixl_xfer_release(w), MIXL_OK);
    assert_int_equal(mixl_xfer_release(r), MIXL_OK);
    mixl_agent_destroy(prefill);
    mixl_agent_destroy(decode);
    free(pm);
    free(dm);
}

/* --- two processes ------------------------------------------------------- */

static int write_blob(int fd, const void *blob, size_t len)
{
    uint64_t n = len;
    return write(fd, &n, sizeof(n)) == (ssize_t)sizeof(n) && write(fd, blob, len) == (ssize_t)len
               ? 0
               : -1;
}

static void *read_blob(int fd, size_t *len_p)
{
    uint64_t n;
    if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n) || n > (1u << 20)) return NULL;
    uint8_t *b = malloc(n);
    size_t got = 0;
    while (b != NULL && got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r <= 0) {
            free(b);
            return NULL;
        }
        got += (size_t)r;
    }
    *len_p = n;
    return b;
}

/*
 * The decode process: registers its KV memory, publishes its blob on
 * out_fd, waits for `expect` notifications and checks each one's data
 * (every byte equals the notification's first payload byte), answering
 * each on out_fd once checked. With die_after > 0 it kills itself after
 * that many notifications.
 */
static int decode_process(int out_fd, size_t len, int expect, int die_after)
{
    uint8_t *mem = calloc(1, len);
    mixl_region_h r;
    void *blob;
    size_t blen;
    mixl_notif_t n;
    mixl_agent_h a = make_agent("decode-remote", 20000);

    if (a == NULL || mem == NULL) return 2;
    if (mixl_mem_register(a, mem, len, MIXL_MEM_HOST, 0, &r) != MIXL_OK) return 3;
    if (mixl_agent_start(a) != MIXL_OK) return 4;
    if (mixl_metadata_export(a, &blob, &blen) != MIXL_OK) return 5;
    if (write_blob(out_fd, blob, blen) != 0) return 6;
    mixl_free(blob);
    for (int i = 0; i < expect; i++) {
        if (wait_notif(a, &n, 30000) != 1 || n.len != 1) return 7;
        if (die_after > 0 && i + 1 == die_after) kill(getpid(), SIGKILL);
        for (size_t k = 0; k < len; k++)
            if (mem[k] != n.payload[0]) return 8;
        /* The blocks are consumed: the sender may reuse them. */
        if (write(out_fd, n.payload, 1) != 1) return 9;
    }
    mixl_agent_destroy(a);
    free(mem);
    return 0;
}

static pid_t spawn_decode(size_t len, int expect, int die_after, int *rd_p)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        _exit(decode_process(fds[1], len, expect, die_after));
    }
    close(fds[1]);
    *rd_p = fds[0];
    return pid;
}

static void test_two_processes(void **state)
{
    enum { LEN = 16u << 20, ROUNDS = 3 };
    uint8_t *mem = malloc(LEN);
    mixl_region_h lr;
    mixl_xfer_h x;
    char peer[MIXL_NAME_MAX];
    size_t blen;
    int rd, status;
    (void)state;

    pid_t pid = spawn_decode(LEN, ROUNDS, 0, &rd);
    mixl_agent_h a = make_agent("prefill-remote", 20000);
    assert_non_null(a);
    assert_int_equal(mixl_mem_register(a, mem, LEN, MIXL_MEM_HOST, 0, &lr), MIXL_OK);
    assert_int_equal(mixl_agent_start(a), MIXL_OK);
    void *blob = read_blob(rd, &blen);
    assert_non_null(blob);
    assert_int_equal(mixl_metadata_import(a, blob, blen, peer), MIXL_OK);
    assert_string_equal(peer, "decode-remote");
    mixl_metadata_t *md;
    char err[128];
    assert_int_equal(mixl_metadata_decode(blob, blen, &md, err, sizeof(err)), MIXL_OK);
    assert_true(md->tcp_port > 0);
    mixl_desc_t l = {(uint64_t)(uintptr_t)mem, LEN, MIXL_MEM_HOST, 0};
    mixl_desc_t r = {md->regions[0].addr, LEN, MIXL_MEM_HOST, 0};
    mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = peer,
                             .local = &l, .remote = &r, .count = 1};
    assert_int_equal(mixl_xfer_create(a, &xp, &x), MIXL_OK);
    for (int i = 0; i < ROUNDS; i++) {
        uint8_t v = (uint8_t)(0x10 + i);
        memset(mem, v, LEN);
        assert_int_equal(mixl_xfer_set_notif(x, &v, 1), MIXL_OK);
        assert_int_equal(mixl_xfer_post(x), MIXL_IN_PROGRESS);
        assert_int_equal(wait_xfer(x, 30000), MIXL_OK);
        uint8_t seen = 0;
        assert_int_equal(read(rd, &seen, 1), 1);
        assert_int_equal(seen, v);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    mixl_xfer_release(x);
    mixl_metadata_free(md);
    free(blob);
    close(rd);
    mixl_agent_destroy(a);
    free(mem);
}

static void test_remote_process_killed(void **state)
{
    enum { LEN = 16u << 20, MAX_ROUNDS = 1000 };
    uint8_t *mem = malloc(LEN);
    mixl_region_h lr;
    mixl_xfer_h x;
    char peer[MIXL_NAME_MAX];
    size_t blen;
    int rd, status;
    (void)state;

    pid_t pid = spawn_decode(LEN, MAX_ROUNDS, 1, &rd);
    mixl_agent_h a = make_agent("prefill-victim", 20000);
    assert_non_null(a);
    assert_int_equal(mixl_mem_register(a, mem, LEN, MIXL_MEM_HOST, 0, &lr), MIXL_OK);
    assert_int_equal(mixl_agent_start(a), MIXL_OK);
    void *blob = read_blob(rd, &blen);
    assert_non_null(blob);
    assert_int_equal(mixl_metadata_import(a, blob, blen, peer), MIXL_OK);
    mixl_metadata_t *md;
    char err[128];
    assert_int_equal(mixl_metadata_decode(blob, blen, &md, err, sizeof(err)), MIXL_OK);
    mixl_desc_t l = {(uint64_t)(uintptr_t)mem, LEN, MIXL_MEM_HOST, 0};
    mixl_desc_t r = {md->regions[0].addr, LEN, MIXL_MEM_HOST, 0};
    mixl_xfer_params_t xp = {.size = sizeof(xp), .op = MIXL_OP_WRITE, .peer = peer,
                             .local = &l, .remote = &r, .count = 1};
    assert_int_equal(mixl_xfer_create(a, &xp, &x), MIXL_OK);
    memset(mem, 0x33, LEN);
    uint8_t v = 0x33;
    assert_int_equal(mixl_xfer_set_notif(x, &v, 1), MIXL_OK);
    /* The target dies after the first notification; a later transfer must
     * end with DISCONNECTED, none may hang or report success wrongly. */
    mixl_status_t st = MIXL_OK;
    int rounds = 0; /* bounded: the target dies after its first notification */
    while (st == MIXL_OK && rounds < MAX_ROUNDS) {
        st = mixl_xfer_post(x);
        if (st == MIXL_IN_PROGRESS) st = wait_xfer(x, 30000);
        rounds++;
    }
    assert_int_equal(st, MIXL_ERR_DISCONNECTED);
    assert_non_null(strstr(mixl_agent_last_error(a), "decode-remote"));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    mixl_xfer_release(x);
    mixl_metadata_free(md);
    free(blob);
    close(rd);
    mixl_agent_destroy(a);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_agents_one_process),
        cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_remote_process_killed),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
