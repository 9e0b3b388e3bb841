/* PID 1 of one emulated cluster node (scripts/cluster/cluster.sh).
 *
 *   node-init TTL_SECONDS MARK
 *
 * Reaps every child it inherits and exits on SIGTERM, SIGINT or when the TTL
 * alarm fires. When the init of a PID namespace exits the kernel kills every
 * other process in it, so ending this one process tears the whole node down,
 * and a node whose test run was killed still goes away after its TTL. MARK is
 * unused here: it only appears in the command line so the fixture can tell its
 * own nodes apart from those of another build. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    sigset_t set;
    char *end;
    long ttl;

    if (argc != 3) {
        fprintf(stderr, "usage: %s TTL_SECONDS MARK\n", argv[0]);
        return 2;
    }
    ttl = strtol(argv[1], &end, 10);
    if (*end != '\0' || ttl < 1 || ttl > 86400) {
        fprintf(stderr, "node-init: TTL '%s' is not 1..86400 seconds\n", argv[1]);
        return 2;
    }
    /* Handle signals synchronously: PID 1 ignores any signal without a
     * handler, so blocking them and waiting for them is the only way in. */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGALRM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    alarm((unsigned)ttl);
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);

        if (sig < 0) {
            if (errno == EINTR)
                continue;
            perror("node-init: sigwaitinfo");
            return 1;
        }
        if (sig == SIGCHLD) {
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
            continue;
        }
        if (sig == SIGALRM)
            fprintf(stderr, "node-init: TTL of %ld s reached, node going down\n", ttl);
        return 0;
    }
}
