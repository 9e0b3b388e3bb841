/*
 * Built with -fsanitize=thread together with the registry's sources: one
 * thread records and clears errors on a registry while another reads
 * mixl_registry_last_error() and mixl_md_store_last_error(), as an
 * application thread does while the metadata store's refresh thread works.
 * ThreadSanitizer fails the run (exit 66) on a data race; each reader also
 * checks it sees whole messages, never a torn one.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <mixl/log.h>
#include <mixl/registry.h>

enum { ROUNDS = 20000 };

static mixl_registry_h reg;
static int torn;

/* The writer's refusals are expected: keep them off stderr. */
static void discard(mixl_log_level_t level, const char *msg, void *arg)
{
    (void)level, (void)msg, (void)arg;
}

static void *writer(void *arg)
{
    static char big[64];
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        /* Over max_value_bytes: refused, and recorded on the handle. */
        if (mixl_registry_put(reg, i % 2 ? "race/a" : "race/bb", big, sizeof(big), 0, NULL) !=
            MIXL_ERR_TOO_LARGE)
            torn++;
        mixl_registry_clear_error(reg);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        const char *e = mixl_registry_last_error(reg);
        /* Empty, or one whole message naming its key. */
        if (e[0] != '\0' && strstr(e, "exceeds max_value_bytes 16") == NULL) torn++;
    }
    return NULL;
}

int main(void)
{
    mixl_registry_params_t p;
    pthread_t w, r;

    mixl_log_set_handler(discard, NULL);
    mixl_registry_params_init(&p);
    p.backend = "local";
    p.max_value_bytes = 16;
    if (mixl_registry_create(&p, &reg) != MIXL_OK) {
        fprintf(stderr, "local registry could not be created\n");
        return 1;
    }
    pthread_create(&w, NULL, writer, NULL);
    pthread_create(&r, NULL, reader, NULL);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    mixl_registry_destroy(reg);
    printf("registry last_error under threads: %s (%d bad reads)\n", torn ? "FAILED" : "passed", torn);
    return torn ? 1 : 0;
}
