/*
 * bench-pmem.h -- lrvm-bench's optional comparison with PMDK's libpmemobj:
 * the small-tx workload run as libpmemobj transactions on a pool whose
 * pmem flushing is forced off (see bench-pmem.c for how and why).
 */
#ifndef LRVM_BENCH_PMEM_H
#define LRVM_BENCH_PMEM_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The small-tx workload, as both sides run it: the same words, drawn by
 * the same generator from the same seed, changed the same way. */
#define SEED        42u
#define TX_WORDS    4                       /* words a transaction changes */
#define WARM_BATCH  256                     /* pages per warm-up transaction */
#define ALL_BYTES   0x0101010101010101ull   /* xor with a value that has this set
                                               changes all 8 bytes of a word */

static inline uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Seconds on CLOCK_MONOTONIC. */
static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct bench_pmem_result {
    uint64_t tx;      /* transactions committed in the timed loop */
    double   secs;    /* wall time of the timed loop (CLOCK_MONOTONIC) */
    int      pmem;    /* what pmem_is_pmem() said of the pool mapping: 1/0 */
};

/*
 * Run the small-tx workload on a libpmemobj pool made in DIR (a new
 * directory that exists; the pool file is made inside it and removed at
 * the end). Returns 0 and fills *res, or -1 with a message in err.
 *
 * Sets PMEM_IS_PMEM_FORCE=1 and PMEM_NO_FLUSH=1 in this process's
 * environment and loads libpmemobj, so call it in a child process made for
 * the purpose, as lrvm-bench does for every measurement.
 */
int bench_pmem_small_tx(const char *dir, size_t seg_size, long max_tx, double cap_secs,
                        struct bench_pmem_result *res, char *err, size_t errlen);

/* 1 when lrvm-bench was built with libpmemobj, else 0 (the function above
 * then returns -1, "lrvm-bench was built without libpmemobj"). */
int bench_pmem_available(void);

#endif /* LRVM_BENCH_PMEM_H */
