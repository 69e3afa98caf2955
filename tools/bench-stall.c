/*
 * bench-stall.c -- the stall part: how long an lrvm_commit can take when
 * it is the one that truncates. Explicit mode on a 256 MiB segment,
 * transactions of 64 ranges of 64 bytes at random 64-byte-aligned
 * offsets, with flushed and with no-flush commits, until the log has
 * been truncated a number of times (or a cap): every lrvm_commit timed on
 * CLOCK_MONOTONIC, and the transactions a second sustained over the
 * whole loop, truncations included. Beside each flushed run, the write
 * floor timed one by one: as many overwrites + fdatasync of as many bytes
 * as its commits wrote, with no truncation beside them: the disk's own
 * tail, measured in the same run. Before either's clock starts, the disk
 * is left alone for a few seconds (bench_settle): on the development VM
 * the writeback of the store just set up, or of the one removed before
 * it, made syncs wait 40 to 70 ms for seconds after.
 *
 * Each run is a child on a store of its own. It stores results in struct
 * bench and prints nothing but progress.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct stall_arg {
    char dir[PATH_LEN];
    int  flush;              /* 1: flushed commits, 0: LRVM_NO_FLUSH */
};

static void child_stall(const struct bench *b, const void *argp, void *outp)
{
    const struct stall_arg *a = argp;
    struct stall_result *r = outp;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT,
                         .truncate_threshold = b->stall_threshold };
    int cflags = a->flush ? 0 : LRVM_NO_FLUSH;
    size_t page_size = b->page_size, seg_pages = STALL_SEG / page_size;
    size_t slots = STALL_SEG / STALL_RANGE;
    lrvm_t *rvm;
    lrvm_tx_t *tx;
    lrvm_stats_t s0, s1;
    void *base;

    /* Every latency, kept until the loop ends: no allocation inside it. */
    uint64_t *lat = malloc(b->stall_max_tx * sizeof *lat);
    if (lat == NULL)
        bench_child_fail("out of memory");
    memset(lat, 0, b->stall_max_tx * sizeof *lat);
    CHECK(lrvm_open(a->dir, &o, &rvm));
    CHECK(lrvm_map(rvm, SEG_NAME, STALL_SEG, &base));
    char *seg = base;

    /* Warm-up, untimed: change a word of every page, so every page is a
     * private copy, then fold that into the file: the loop starts with an
     * empty log. */
    for (size_t p = 0; p < seg_pages; p += WARM_BATCH) {
        CHECK(lrvm_begin(rvm, 1, &base, &tx));
        for (size_t q = p; q < p + WARM_BATCH && q < seg_pages; q++) {
            uint64_t *wp = (uint64_t *)(seg + q * page_size);
            CHECK(lrvm_set_range(tx, wp, 8));
            *wp ^= ALL_BYTES;
        }
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
    }
    CHECK(lrvm_flush(rvm));
    CHECK(lrvm_truncate(rvm));
    bench_settle(b->stall_settle);
    CHECK(lrvm_stats(rvm, &s0));

    uint64_t seed = SEED, n = 0, truncs = 0;
    double t0 = now(), deadline = t0 + b->stall_cap;
    while (n < b->stall_max_tx) {
        struct timespec c0, c1;
        CHECK(lrvm_begin(rvm, 1, &base, &tx));
        for (int i = 0; i < STALL_RANGES; i++) {
            uint64_t *wp = (uint64_t *)(seg + (xorshift64(&seed) % slots) * STALL_RANGE);
            uint64_t v = xorshift64(&seed) | ALL_BYTES;
            CHECK(lrvm_set_range(tx, wp, STALL_RANGE));
            for (size_t k = 0; k < STALL_RANGE / 8; k++)
                wp[k] ^= v;
        }
        clock_gettime(CLOCK_MONOTONIC, &c0);
        int rc = lrvm_commit(tx, cflags);
        clock_gettime(CLOCK_MONOTONIC, &c1);
        CHECK(rc);
        lat[n++] = bench_ns_between(&c0, &c1);
        CHECK(lrvm_stats(rvm, &s1));
        truncs = s1.truncations - s0.truncations;
        if (truncs >= (uint64_t)b->stall_truncs)
            break;
        if ((double)c1.tv_sec + (double)c1.tv_nsec * 1e-9 >= deadline)
            break;
    }
    if (!a->flush)
        CHECK(lrvm_flush(rvm));       /* the no-flush commits become durable */
    r->secs = now() - t0;

    bench_latencies(lat, n, &r->med_us, &r->p99_us, &r->max_us);
    r->tx = n;
    r->truncations = truncs;
    r->waits = s1.commit_waits - s0.commit_waits;
    r->bytes_per_tx = (double)(s1.bytes_logged - s0.bytes_logged) / (double)n;
    r->capped = truncs < (uint64_t)b->stall_truncs;
    free(lat);
    CHECK(lrvm_close(rvm));
}

void bench_stall_runs(struct bench *b)
{
    char path[PATH_LEN], what[160];
    if (!bench_part_runs(b, PART_STALL))
        return;
    bench_path_join(b, path, b->root, "stall");
    for (int i = 0; i < b->runs; i++)
        for (int f = 1; f >= 0; f--) {
            struct stall_arg a = { .flush = f };
            struct stall_result *r = &b->st_res[f][i];
            memcpy(a.dir, path, sizeof a.dir);
            snprintf(what, sizeof what, "stall %s", bench_flush_name(f));
            bench_progress("%s: run %d/%d, until %d truncations...", what, i + 1, b->runs,
                           b->stall_truncs);
            bench_rm_rf(path);
            if (bench_run_child(b, what, child_stall, &a, r, sizeof *r) == 0) {
                if (r->tx == 0)
                    bench_add_failure(b, "%s: nothing measured", what);
                else
                    bench_progress("%s: %" PRIu64 " transactions, %" PRIu64 " truncations, "
                                   "%.1f s%s", what, r->tx, r->truncations, r->secs,
                                   r->capped ? " (stopped by the cap)" : "");
            }
            bench_rm_rf(path);
            if (f == 1 && r->tx > 0) {
                /* The disk's own tail: as many syncs of as many bytes as
                 * the flushed commits made, with nothing beside them. */
                char floor_path[PATH_LEN];
                bench_path_join(b, floor_path, b->root, "stall-floor.dat");
                bench_progress("stall floor: run %d/%d, %" PRIu64 " overwrites of %.0f bytes, "
                               "each synced...", i + 1, b->runs, r->tx, r->bytes_per_tx);
                bench_write_floor_timed(b, "stall floor", floor_path, (size_t)r->bytes_per_tx,
                                        r->tx, &b->st_floor[i]);
            }
        }
}
