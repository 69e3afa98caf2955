/*
 * bench-workloads.c -- the lrvm workloads: small-tx, pages-P and seq-64 in
 * both tracking modes with flushed and no-flush commits, the heap (and the
 * C library's allocator as its floor), group commit, small-tx from several
 * threads at once, and small-tx on libpmemobj through bench-pmem.c.
 *
 * Each run is a child on a store of its own, made new for it and removed
 * after it; a child reports only through its result, and the parent only
 * stores that result in struct bench. Nothing here summarises or prints
 * figures: that is bench-report.c's.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const struct workload bench_workloads[NWORK] = {
    { "small-tx",  W_SMALL, TX_WORDS,  200000, 1 },
    { "pages-1",   W_PAGES, 1,         200000, 0 },
    { "pages-16",  W_PAGES, 16,        40000,  2 },
    { "pages-256", W_PAGES, 256,       4000,   3 },
    { "seq-64",    W_SEQ,   SEQ_PAGES, 4000,   4 },
};
_Static_assert(NWORK == PART_HEAP, "every workload is a part of its own for --only");

const int bench_group_threads[NGROUP] = { 1, 2, 4, 8 };

/* ------------------------------------------------------------ small-tx, pages-P, seq-64 */

struct wl_arg {
    const struct workload *w;
    int                    mode, flush;
    char                   dir[PATH_LEN];
};

/* The distinct pages each of the first N small-tx transactions wrote, summed:
 * the timed loop's word choices again, from the same seed. */
static uint64_t small_tx_pages(long n, size_t nwords, size_t words_per_page)
{
    uint64_t seed = SEED, pages = 0;
    for (long t = 0; t < n; t++) {
        size_t pg[TX_WORDS];
        for (int i = 0; i < TX_WORDS; i++) {
            pg[i] = (size_t)(xorshift64(&seed) % nwords) / words_per_page;
            (void)xorshift64(&seed);            /* the value stored */
            int seen = 0;
            for (int j = 0; j < i; j++)
                seen |= pg[j] == pg[i];
            pages += !seen;
        }
    }
    return pages;
}

static void child_workload(const struct bench *b, const void *argp, void *outp)
{
    const struct wl_arg *a = argp;
    const struct workload *w = a->w;
    struct wl_result *r = outp;
    int explicit = a->mode == BM_EXPLICIT;
    int cflags = a->flush ? 0 : LRVM_NO_FLUSH;
    lrvm_options_t o = { .tracking = bench_mode_tracking(a->mode) };
    size_t page_size = b->page_size, seg_pages = b->seg_pages;
    lrvm_t *rvm;
    lrvm_tx_t *tx;
    void *base;

    CHECK(lrvm_open(a->dir, &o, &rvm));
    CHECK(lrvm_map(rvm, SEG_NAME, SEG_SIZE, &base));
    uint64_t *words = base;
    size_t wpp = page_size / 8, nwords = SEG_SIZE / 8;

    /* Warm-up, untimed: change a word of every page, so every page is a
     * private copy (and, in auto mode, has a before-image slot in use). */
    for (size_t p = 0; p < seg_pages; p += WARM_BATCH) {
        CHECK(lrvm_begin(rvm, 1, &base, &tx));
        for (size_t q = p; q < p + WARM_BATCH && q < seg_pages; q++) {
            uint64_t *wp = words + q * wpp;
            if (explicit)
                CHECK(lrvm_set_range(tx, wp, 8));
            *wp ^= ALL_BYTES;
        }
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
    }
    CHECK(lrvm_flush(rvm));

    uint32_t *stamp = calloc(seg_pages, sizeof *stamp);
    if (stamp == NULL)
        bench_child_fail("out of memory");
    long max_tx = w->max_tx / b->tx_div;
    uint64_t seed = SEED, touched = 0;
    size_t seq_next = 0;
    lrvm_stats_t s0, s1;
    CHECK(lrvm_stats(rvm, &s0));

    double t0 = now(), deadline = t0 + b->cap;
    long n = 0;
    while (n < max_tx) {
        CHECK(lrvm_begin(rvm, 1, &base, &tx));
        switch (w->kind) {
        case W_SMALL:
            /* As bench-pmem.c's loop, nothing more: the pages are
             * counted after the clock stops (small_tx_pages). */
            for (int i = 0; i < TX_WORDS; i++) {
                uint64_t *wp = words + xorshift64(&seed) % nwords;
                if (explicit)
                    CHECK(lrvm_set_range(tx, wp, 8));
                *wp ^= xorshift64(&seed) | ALL_BYTES;
            }
            break;
        case W_PAGES:
            for (int i = 0; i < w->pages; i++) {
                uint64_t rnd;
                size_t p;
                do {
                    rnd = xorshift64(&seed);
                    p = rnd % seg_pages;
                } while (stamp[p] == (uint32_t)n + 1);
                stamp[p] = (uint32_t)n + 1;
                uint64_t *wp = words + p * wpp + (rnd >> 32) % wpp;
                if (explicit)
                    CHECK(lrvm_set_range(tx, wp, 8));
                *wp ^= xorshift64(&seed) | ALL_BYTES;
            }
            touched += (uint64_t)w->pages;
            break;
        case W_SEQ: {
            uint64_t *wp = words + seq_next * wpp;
            uint64_t v = xorshift64(&seed) | ALL_BYTES;
            size_t len = (size_t)SEQ_PAGES * page_size;
            if (explicit)
                CHECK(lrvm_set_range(tx, wp, len));
            for (size_t i = 0; i < len / 8; i++)
                wp[i] ^= v;
            seq_next = (seq_next + SEQ_PAGES) % seg_pages;
            touched += SEQ_PAGES;
            break;
        }
        }
        CHECK(lrvm_commit(tx, cflags));
        n++;
        if (now() >= deadline)
            break;
    }
    if (!a->flush)
        CHECK(lrvm_flush(rvm));       /* the no-flush commits become durable */
    r->secs = now() - t0;
    if (w->kind == W_SMALL)
        touched = small_tx_pages(n, nwords, wpp);
    CHECK(lrvm_stats(rvm, &s1));

    r->tx = (uint64_t)n;
    /* Pages the workload wrote, in both modes: auto mode also captures
     * pages ahead of a sequential writer, which it may then not write. */
    r->pages = touched;
    r->bytes = s1.bytes_logged - s0.bytes_logged;
    r->faults = s1.faults - s0.faults;
    r->fsyncs = s1.fsyncs - s0.fsyncs;
    r->truncations = s1.truncations - s0.truncations;
    free(stamp);
    CHECK(lrvm_close(rvm));
}

/* ------------------------------------------------------------ group commit */

struct group_arg {
    char dir[PATH_LEN];
    int  threads;
};

/* One thread of the group commit or threads part, on its own segment
 * (or its own part of one segment that the threads share). */
struct worker {
    WORKER_LINE lrvm_t *rvm;
    void    *base;            /* its words */
    void    *seg;             /* threads: the segment they are in */
    int      index;
    int      explicit;        /* threads: declare with lrvm_set_range */
    int      shared;          /* threads: lrvm_begin_shared */
    double   deadline;
    long     max_tx;          /* group commit: at most this many */
    uint64_t tx;              /* committed */
};

/* Run FN on each of the N workers W at once until the deadline, CAP
 * seconds from now; the time they started, and their commits in *TX. */
static double run_workers(struct worker *w, int n, void *(*fn)(void *), double cap,
                          uint64_t *tx)
{
    pthread_t th[8];
    double t0 = now();
    for (int t = 0; t < n; t++) {
        w[t].deadline = t0 + cap;
        if (pthread_create(&th[t], NULL, fn, &w[t]) != 0)
            bench_child_fail("pthread_create failed");
    }
    *tx = 0;
    for (int t = 0; t < n; t++) {
        pthread_join(th[t], NULL);
        *tx += w[t].tx;
    }
    return t0;
}

/* Flushed small transactions on one thread's segment until the deadline. */
static void *group_worker_run(void *p)
{
    struct worker *w = p;
    uint64_t *words = w->base, seed = SEED + (uint64_t)w->index;
    size_t nwords = GROUP_SEG / 8;
    while ((long)w->tx < w->max_tx && now() < w->deadline) {
        lrvm_tx_t *tx;
        CHECK(lrvm_begin(w->rvm, 1, &w->base, &tx));
        for (int i = 0; i < TX_WORDS; i++) {
            uint64_t *wp = words + xorshift64(&seed) % nwords;
            CHECK(lrvm_set_range(tx, wp, 8));
            *wp ^= xorshift64(&seed) | ALL_BYTES;
        }
        CHECK(lrvm_commit(tx, 0));
        w->tx++;
    }
    return NULL;
}

static void child_group(const struct bench *b, const void *argp, void *outp)
{
    const struct group_arg *a = argp;
    struct group_result *r = outp;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    struct worker w[8];
    lrvm_t *rvm;
    lrvm_stats_t s0, s1;

    CHECK(lrvm_open(a->dir, &o, &rvm));
    for (int t = 0; t < a->threads; t++) {
        char name[16];
        snprintf(name, sizeof name, "group%d", t);
        w[t] = (struct worker){ .rvm = rvm, .index = t, .max_tx = 20000 / b->tx_div };
        CHECK(lrvm_map(rvm, name, GROUP_SEG, &w[t].base));
        memset(w[t].base, 0, GROUP_SEG);     /* private copies before timing */
    }
    CHECK(lrvm_stats(rvm, &s0));
    double t0 = run_workers(w, a->threads, group_worker_run, b->cap, &r->tx);
    r->secs = now() - t0;
    CHECK(lrvm_stats(rvm, &s1));
    r->fsyncs = s1.fsyncs - s0.fsyncs;
    CHECK(lrvm_close(rvm));
}

/* ------------------------------------------------------------ threads */

struct threads_arg {
    char   dir[PATH_LEN];
    int    threads, mode;
    size_t threshold;       /* truncate_threshold; 0: lrvm's default */
    int    shared;          /* explicit: one segment, THREAD_SEG a thread, shared */
};

/* Begin W's transaction on its segment. */
static void threads_begin(struct worker *w, lrvm_tx_t **tx)
{
    CHECK((w->shared ? lrvm_begin_shared : lrvm_begin)(w->rvm, 1, &w->seg, tx));
}

/* No-flush small transactions on one thread's words until the deadline. */
static void *threads_worker_run(void *p)
{
    struct worker *w = p;
    uint64_t *words = w->base, seed = SEED + (uint64_t)w->index;
    size_t nwords = THREAD_SEG / 8;
    do {
        lrvm_tx_t *tx;
        threads_begin(w, &tx);
        for (int i = 0; i < TX_WORDS; i++) {
            uint64_t *wp = words + xorshift64(&seed) % nwords;
            if (w->explicit)
                CHECK(lrvm_set_range(tx, wp, 8));
            *wp ^= xorshift64(&seed) | ALL_BYTES;
        }
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
        w->tx++;
    } while (w->tx % 64 != 0 || now() < w->deadline);
    return NULL;
}

static void child_threads(const struct bench *b, const void *argp, void *outp)
{
    const struct threads_arg *a = argp;
    struct threads_result *r = outp;
    lrvm_options_t o = { .tracking = bench_mode_tracking(a->mode),
                         .truncate_threshold = a->threshold };
    size_t page_size = b->page_size, wpp = page_size / 8;
    struct worker w[8];
    lrvm_t *rvm;
    lrvm_stats_t s0, s1;

    CHECK(lrvm_open(a->dir, &o, &rvm));
    void *one = NULL;
    if (a->shared)
        CHECK(lrvm_map(rvm, "shared", THREAD_SEG * (size_t)a->threads, &one));
    for (int t = 0; t < a->threads; t++) {
        char name[24];                  /* "thread" and any int */
        snprintf(name, sizeof name, "thread%d", t);
        w[t] = (struct worker){ .rvm = rvm, .index = t, .explicit = a->mode == BM_EXPLICIT,
                                .shared = a->shared };
        if (a->shared)
            w[t].base = (char *)one + THREAD_SEG * (size_t)t;
        else
            CHECK(lrvm_map(rvm, name, THREAD_SEG, &w[t].base));
        w[t].seg = a->shared ? one : w[t].base;
        /* Every page a private copy before timing, as in small-tx. */
        lrvm_tx_t *tx;
        uint64_t *words = w[t].base;
        threads_begin(&w[t], &tx);
        for (size_t p = 0; p < THREAD_SEG / page_size; p++) {
            if (w[t].explicit)
                CHECK(lrvm_set_range(tx, words + p * wpp, 8));
            words[p * wpp] ^= ALL_BYTES;
        }
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
    }
    CHECK(lrvm_flush(rvm));
    CHECK(lrvm_stats(rvm, &s0));
    double c0 = bench_cpu_seconds(), d0 = bench_write_bytes();
    double t0 = run_workers(w, a->threads, threads_worker_run, b->cap, &r->tx);
    CHECK(lrvm_flush(rvm));           /* the no-flush commits become durable */
    r->secs = now() - t0;
    r->cpu = bench_cpu_seconds() - c0;
    double d1 = bench_write_bytes();
    r->disk = d0 < 0 || d1 < 0 ? -1 : d1 - d0;
    CHECK(lrvm_stats(rvm, &s1));
    r->pages = s1.pages_captured - s0.pages_captured;
    CHECK(lrvm_close(rvm));
}

/* One run of the threads workload in a fresh store at PATH: G's count of
 * threads, mode M, truncate_threshold THRESHOLD (0: lrvm's default), on
 * one segment in shared transactions when SHARED, into R; round I. */
static void threads_round(struct bench *b, const char *path, int g, int m, size_t threshold,
                          int shared, struct threads_result *r, int i)
{
    char what[160];
    struct threads_arg a = { .threads = bench_group_threads[g], .mode = m,
                             .threshold = threshold, .shared = shared };
    memcpy(a.dir, path, sizeof a.dir);
    snprintf(what, sizeof what, "threads %s%s%s, %d thread%s", bench_mode_name(m),
             threshold ? ", truncation held off" : "", shared ? ", one shared segment" : "",
             a.threads, a.threads == 1 ? "" : "s");
    bench_progress("%s: run %d/%d...", what, i + 1, b->runs);
    bench_rm_rf(path);
    if (bench_run_child(b, what, child_threads, &a, r, sizeof *r) == 0 && r->tx == 0)
        bench_add_failure(b, "%s: nothing measured", what);
    bench_rm_rf(path);
}

/* ------------------------------------------------------------ the heap */

#define HEAP_BYTES ((size_t)256 << 20)

struct heap_arg {
    char dir[PATH_LEN];
    int  mode;              /* LRVM_TRACK_*, or -1: the C library's malloc */
};

static size_t heap_size(uint64_t *seed)
{
    return 16 + (size_t)(xorshift64(seed) % 241);
}

/* The store DIR opened with O, its heap made and filled with HEAP_LIVE
 * blocks (SLOT), every other one freed, in one transaction. */
static void heap_fill(const char *dir, const lrvm_options_t *o, void **slot, uint64_t *seed,
                      lrvm_t **rvm, lrvm_heap_t **h)
{
    lrvm_tx_t *tx;
    CHECK(lrvm_open(dir, o, rvm));
    CHECK(lrvm_heap_open(*rvm, "heap", HEAP_BYTES, h));
    void *base = lrvm_heap_base(*h);
    CHECK(lrvm_begin(*rvm, 1, &base, &tx));
    for (unsigned i = 0; i < HEAP_LIVE; i++)
        if ((slot[i] = lrvm_malloc(*h, heap_size(seed))) == NULL)
            bench_child_fail("lrvm_malloc: %s", lrvm_strerror(lrvm_last_error()));
    for (unsigned i = 0; i < HEAP_LIVE; i += 2) {
        lrvm_free(*h, slot[i]);
        slot[i] = NULL;
    }
    CHECK(lrvm_commit(tx, 0));
}

static void child_heap(const struct bench *b, const void *argp, void *outp)
{
    const struct heap_arg *a = argp;
    struct heap_result *r = outp;
    void **slot = calloc(HEAP_LIVE, sizeof *slot);
    uint64_t seed = SEED;
    long max_ops = 200000 / b->tx_div;
    if (slot == NULL)
        bench_child_fail("out of memory");
    if (a->mode < 0) {                      /* the floor */
        for (unsigned i = 0; i < HEAP_LIVE; i++)
            slot[i] = malloc(heap_size(&seed));
        for (unsigned i = 0; i < HEAP_LIVE; i += 2) {
            free(slot[i]);
            slot[i] = NULL;
        }
        double t0 = now(), deadline = t0 + b->cap;
        long n = 0;
        while (n < max_ops && (n % 1024 != 0 || now() < deadline)) {
            uint64_t j = xorshift64(&seed) % HEAP_LIVE;
            free(slot[j]);
            if ((slot[j] = malloc(heap_size(&seed))) == NULL)
                bench_child_fail("malloc failed");
            memcpy(slot[j], &seed, 8);
            n++;
        }
        r->secs = now() - t0;
        r->ops = (uint64_t)n;
        return;
    }
    lrvm_options_t o = { .tracking = a->mode };
    lrvm_t *rvm;
    lrvm_heap_t *h;
    lrvm_tx_t *tx;
    heap_fill(a->dir, &o, slot, &seed, &rvm, &h);
    void *base = lrvm_heap_base(h);
    double t0 = now(), deadline = t0 + b->cap;
    long n = 0;
    while (n < max_ops && (n % 1024 != 0 || now() < deadline)) {
        uint64_t j = xorshift64(&seed) % HEAP_LIVE;
        CHECK(lrvm_begin(rvm, 1, &base, &tx));
        lrvm_free(h, slot[j]);
        if ((slot[j] = lrvm_malloc(h, heap_size(&seed))) == NULL)
            bench_child_fail("lrvm_malloc: %s", lrvm_strerror(lrvm_last_error()));
        if (a->mode == LRVM_TRACK_EXPLICIT)
            CHECK(lrvm_set_range(tx, slot[j], 8));
        memcpy(slot[j], &seed, 8);
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
        n++;
    }
    CHECK(lrvm_flush(rvm));
    r->secs = now() - t0;
    r->ops = (uint64_t)n;
    CHECK(lrvm_close(rvm));
}

/* The heap workload from T threads at once on one heap, explicit mode,
 * each in shared transactions of its own over its share of the slots. */
struct heap_shared_arg {
    char dir[PATH_LEN];
    int  threads;
};

struct heap_worker {
    WORKER_LINE lrvm_t *rvm;
    lrvm_heap_t *h;
    void       **slot;          /* its share of the slots */
    unsigned     nslots;
    uint64_t     seed;
    double       deadline;
    long         max_ops, ops;
};

static void *heap_worker_run(void *p)
{
    struct heap_worker *w = p;
    void *base = lrvm_heap_base(w->h);
    while (w->ops < w->max_ops && (w->ops % 1024 != 0 || now() < w->deadline)) {
        uint64_t j = xorshift64(&w->seed) % w->nslots;
        lrvm_tx_t *tx;
        CHECK(lrvm_begin_shared(w->rvm, 1, &base, &tx));
        lrvm_free(w->h, w->slot[j]);
        if ((w->slot[j] = lrvm_malloc(w->h, heap_size(&w->seed))) == NULL)
            bench_child_fail("lrvm_malloc: %s", lrvm_strerror(lrvm_last_error()));
        CHECK(lrvm_set_range(tx, w->slot[j], 8));
        memcpy(w->slot[j], &w->seed, 8);
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
        w->ops++;
    }
    return NULL;
}

/* One window of the shared heap's loop: W's N threads from now on, each
 * to its max_ops (or the cap), then a flush; its ops into *OPS, and its
 * seconds returned. */
static double heap_window(const struct bench *b, struct heap_worker *w, int n, uint64_t *ops)
{
    pthread_t th[2];
    double t0 = now();
    for (int t = 0; t < n; t++) {
        w[t].deadline = t0 + b->cap;
        w[t].ops = 0;
        if (pthread_create(&th[t], NULL, heap_worker_run, &w[t]) != 0)
            bench_child_fail("pthread_create failed");
    }
    *ops = 0;
    for (int t = 0; t < n; t++) {
        pthread_join(th[t], NULL);
        *ops += (uint64_t)w[t].ops;
    }
    CHECK(lrvm_flush(w[0].rvm));
    return now() - t0;
}

/* Two windows of the same operations: the first from the heap as
 * lrvm_heap_open leaves it, every cache of shared transactions empty, so
 * that its classes are filled from the bins, under the store lock, as
 * the threads go; the second, timed for the table and the target, from
 * the state the first left, as a program that has run a while has it. */
static void child_heap_shared(const struct bench *b, const void *argp, void *outp)
{
    const struct heap_shared_arg *a = argp;
    struct heap_result *r = outp;
    void **slot = calloc(HEAP_LIVE, sizeof *slot);
    uint64_t seed = SEED;
    if (slot == NULL)
        bench_child_fail("out of memory");
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *rvm;
    lrvm_heap_t *h;
    heap_fill(a->dir, &o, slot, &seed, &rvm, &h);
    struct heap_worker w[2];
    unsigned share = HEAP_LIVE / (unsigned)a->threads;
    for (int t = 0; t < a->threads; t++)
        w[t] = (struct heap_worker){ rvm, h, slot + (size_t)t * share, share,
                                     SEED + 1 + (uint64_t)t, 0,
                                     200000 / b->tx_div / a->threads, 0 };
    r->cold_secs = heap_window(b, w, a->threads, &r->cold_ops);
    double c0 = bench_cpu_seconds();
    r->secs = heap_window(b, w, a->threads, &r->ops);
    r->cpu = bench_cpu_seconds() - c0;
    CHECK(lrvm_close(rvm));
}

/* ------------------------------------------------------------ one round */

void bench_workloads_round(struct bench *b, int i)
{
    char path[PATH_LEN], what[160];
    bench_path_join(b, path, b->root, "store");

    /* lrvm workloads, each run on a new store. */
    for (int w = 0; w < NWORK; w++)
        for (int m = 0; m < NMODES && bench_part_runs(b, w); m++)
            for (int f = 1; f >= 0 && bench_mode_runs(b, m); f--) {
                struct wl_arg a = { .w = &bench_workloads[w], .mode = m, .flush = f };
                memcpy(a.dir, path, sizeof a.dir);
                snprintf(what, sizeof what, "%s %s %s", bench_workloads[w].name,
                         bench_mode_name(m), bench_flush_name(f));
                bench_progress("%s: run %d/%d...", what, i + 1, b->runs);
                bench_rm_rf(path);
                struct wl_result *r = &b->wl_res[w][m][f][i];
                if (bench_run_child(b, what, child_workload, &a, r, sizeof *r) == 0 &&
                    (r->tx == 0 || r->pages == 0))
                    bench_add_failure(b, "%s: nothing measured", what);
                bench_rm_rf(path);
            }

    /* The heap, in both modes, and the C library's allocator. */
    for (int k = 0; k < (bench_part_runs(b, PART_HEAP) ? 3 : 0); k++) {
        static const char *const heap_names[] = { "auto", "explicit", "C library" };
        struct heap_arg a = { .mode = k < 2 ? k : -1 };
        memcpy(a.dir, path, sizeof a.dir);
        snprintf(what, sizeof what, "heap, %s", heap_names[k]);
        bench_progress("%s: run %d/%d...", what, i + 1, b->runs);
        bench_rm_rf(path);
        struct heap_result *r = &b->hp_res[k][i];
        if (bench_run_child(b, what, child_heap, &a, r, sizeof *r) == 0 && r->ops == 0)
            bench_add_failure(b, "%s: nothing measured", what);
        bench_rm_rf(path);
    }
    for (int t = 1; t <= (bench_part_runs(b, PART_HEAP) ? 2 : 0); t++) {
        struct heap_shared_arg a = { .threads = t };
        memcpy(a.dir, path, sizeof a.dir);
        snprintf(what, sizeof what, "heap, shared, %d thread%s", t, t == 1 ? "" : "s");
        bench_progress("%s: run %d/%d...", what, i + 1, b->runs);
        bench_rm_rf(path);
        struct heap_result *r = &b->hs_res[t - 1][i];
        if (bench_run_child(b, what, child_heap_shared, &a, r, sizeof *r) == 0 && r->ops == 0)
            bench_add_failure(b, "%s: nothing measured", what);
        bench_rm_rf(path);
    }

    /* Group commit: the flushed small transactions of 1..8 threads. */
    for (int g = 0; g < (bench_part_runs(b, PART_GROUP) ? NGROUP : 0); g++) {
        struct group_arg a = { .threads = bench_group_threads[g] };
        memcpy(a.dir, path, sizeof a.dir);
        snprintf(what, sizeof what, "group commit, %d thread%s", a.threads,
                 a.threads == 1 ? "" : "s");
        bench_progress("%s: run %d/%d...", what, i + 1, b->runs);
        bench_rm_rf(path);
        struct group_result *r = &b->gr_res[g][i];
        if (bench_run_child(b, what, child_group, &a, r, sizeof *r) == 0 && r->tx == 0)
            bench_add_failure(b, "%s: nothing measured", what);
        bench_rm_rf(path);
    }

    /* Threads: no-flush small transactions of 1..8 threads, each mode,
     * and explicit mode once more with the truncation held off. */
    for (int g = 0; g < (bench_part_runs(b, PART_THREADS) ? NGROUP : 0); g++) {
        for (int m = 0; m < NMODES; m++)
            if (bench_mode_runs(b, m))
                threads_round(b, path, g, m, 0, 0, &b->th_res[g][m][i], i);
        threads_round(b, path, g, BM_EXPLICIT, HELD_OFF_THRESHOLD, 0, &b->th_held[g][i], i);
        threads_round(b, path, g, BM_EXPLICIT, 0, 1, &b->th_shared[g][i], i);
    }
}

/* ------------------------------------------------------------ PMDK comparison */

static void child_pmem(const struct bench *b, const void *argp, void *outp)
{
    const char *dir = argp;
    struct bench_pmem_result *r = outp;
    char err[300];
    if (mkdir(dir, 0700) != 0)
        bench_child_fail("%s: %s", dir, strerror(errno));
    if (bench_pmem_small_tx(dir, SEG_SIZE, bench_workloads[0].max_tx / b->tx_div, b->cap, r,
                            err, sizeof err) != 0)
        bench_child_fail("libpmemobj small-tx: %s", err);
    if (!r->pmem)
        bench_child_fail("libpmemobj small-tx: pmem_is_pmem() said 0, so libpmem synced with "
                         "msync; not the configuration meant");
}

/* The same small transactions on libpmemobj, when built with it. */
void bench_pmemobj_runs(struct bench *b)
{
    char path[PATH_LEN];
    if (!bench_part_runs(b, PART_PMEMOBJ) || !bench_pmem_available())
        return;
    bench_path_join(b, path, b->root, "pmemobj");
    for (int i = 0; i < b->runs; i++) {
        bench_progress("libpmemobj small-tx: run %d/%d...", i + 1, b->runs);
        bench_rm_rf(path);
        bench_run_child(b, "libpmemobj small-tx", child_pmem, path, &b->pm_res[i],
                        sizeof b->pm_res[0]);
        bench_rm_rf(path);
    }
}
