/*
 * Data verification of the micro modes. The first and the last iteration of
 * every point are run outside the timed loop with their own pattern (a new
 * seed each, so data left by an earlier iteration or point cannot pass):
 * the rank holding the source fills it, the rank holding the destination
 * first overwrites it with a different pattern, the initiator runs the
 * iteration, and the destination is then checked byte for byte, every
 * descriptor of the batch. Timed iterations are not checked (a checksum of
 * each would be slower than the transfer).
 */
#ifndef MIXL_BENCH_VERIFY_H
#define MIXL_BENCH_VERIFY_H

#include <stdint.h>

#include "run.h"

/*
 * One side (source or destination) of a point's batch in this rank's memory.
 * Descriptor j of the initiator in slot s lies at
 *   base + (s - first_slot) * stride + (permuted ? bench_slot(j, batch, contig) : j) * size.
 * base NULL: this rank holds no such side.
 */
typedef struct {
    char *base;
    uint64_t stride;
    unsigned first_slot, nslots;
    int permuted;
    unsigned kind; /* BENCH_MEM_* of this side; 0: the point's kind (bench_verify_t) */
} bench_side_t;

typedef struct {
    unsigned kind; /* BENCH_MEM_* of a side without its own (device memory is copied through the host) */
    uint64_t size, batch;
    int contig;
    bench_side_t src, dst;
} bench_verify_t;

/*
 * The sides of a directed transfer (mixl and mpi modes): the initiator's
 * local buffer at local (descriptors in order), the target's exposed buffer
 * at exposed (each initiator's slot bytes apart, descriptors permuted);
 * WRITE moves local to exposed, READ the other way.
 */
void bench_verify_directed(bench_verify_t *v, const bench_role_t *role, int write, unsigned kind,
                           char *local, char *exposed, uint64_t size, uint64_t batch, int contig);

/*
 * Collective. One verified iteration: fill, poison, barrier, fn(arg) on the
 * initiator, barrier, check. Every rank gets the same status: MIXL_OK, the
 * iteration's error, or MIXL_ERR_CHECKSUM with the first wrong byte named in
 * note (which iteration: what).
 */
mixl_status_t bench_verify_iter(bench_ctx_t *ctx, const bench_verify_t *v, int initiator,
                                bench_iter_fn fn, void *arg, const char *what, char *note,
                                size_t note_len);

/* The pattern byte k of descriptor j of the initiator in slot s for seed (exposed for tests). */
uint8_t bench_verify_byte(uint64_t seed, unsigned slot, uint64_t j, uint64_t k);

/* Fill size bytes at p with the pattern of descriptor j of slot for seed (host memory). */
void bench_verify_fill(uint8_t *p, uint64_t size, uint64_t seed, unsigned slot, uint64_t j);

#endif /* MIXL_BENCH_VERIFY_H */
