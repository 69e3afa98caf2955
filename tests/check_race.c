/*
 * check_race.c -- every call of a store from many threads at once: begin,
 * set_range, commit (flushing and not), abort, shared transactions,
 * map, unmap, destroy, sync, flush, truncate and stats, in explicit and
 * in auto mode (tests/mprotect.sh runs this suite again on the mprotect
 * tracker), and then lrvm_close while each thread is still calling on a
 * transaction of its own. No call may fail but as documented, none may
 * hang or crash, and after the store is opened again every thread's
 * segment, and its words of the segment the threads share, hold exactly
 * what its commits that returned 0 left there (close flushes the rest).
 *
 * Each thread keeps its own image of what it committed; the store's
 * lock, the log and recovery are the only things that tie them together.
 */
#define _GNU_SOURCE
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS  6
#define WORDS    512                     /* of a thread's segment */
#define SEG_SIZE ((size_t)WORDS * 8)
#define SH_WORDS 64                      /* a thread's words of the shared one */
#define SH_SIZE  ((size_t)SH_WORDS * THREADS * 8)
#define SH(t, k) ((size_t)(k) * THREADS + (size_t)(t))   /* interleaved */

struct race {
    lrvm_t          *s;
    int              tracking;
    uint64_t        *sh;                 /* the shared segment (explicit mode) */
    uint64_t        *segs[THREADS];
    atomic_int       phase;              /* 0: every call; 1: no more store calls;
                                            2: lrvm_close is being called */
    atomic_int       ready;              /* threads that reached phase 1's transaction */
    atomic_int       failed_line;        /* the first failed check, or 0 */
    char             why[160];
};

struct racer {
    struct race *r;
    int          t;
    uint64_t     rng;
    uint64_t     img[WORDS];             /* what its commits left in its segment */
    uint64_t     sh_img[SH_WORDS];       /* and in its words of the shared one */
    uint64_t     commits, aborts, busy;
    int          closed_seen;            /* phase 1: a call found the handle gone */
};

/* Note the first failure, at LINE, as WHAT (every thread then stops). */
static void note_failure(struct racer *w, int line, const char *what)
{
    int zero = 0;
    if (atomic_compare_exchange_strong(&w->r->failed_line, &zero, line))
        snprintf(w->r->why, sizeof w->r->why, "thread %d: %s", w->t, what);
}

/* Say whether CALL returned one of the codes it may; else a failure. */
static int ok(struct racer *w, int line, const char *call, int rc, int allowed1, int allowed2)
{
    if (rc == 0 || rc == allowed1 || rc == allowed2)
        return 1;
    char what[128];
    snprintf(what, sizeof what, "%s: %s", call, lrvm_strerror(rc));
    note_failure(w, line, what);
    return 0;
}
#define OK(w, call, rc, a1, a2) ok((w), __LINE__, (call), (rc), (a1), (a2))

static int stopping(struct racer *w)
{
    return atomic_load(&w->r->failed_line) != 0;
}

/* One transaction on the thread's segment (and, one time in four in
 * explicit mode, a shared one that also takes its words of the shared
 * segment): counter at word 0, a value at word 1 + i % (WORDS - 1).
 * Committed with or without a flush, or aborted. */
static void tx_step(struct racer *w)
{
    struct race *r = w->r;
    uint64_t *seg = r->segs[w->t], x = tu_rand(&w->rng);
    int explicit = r->tracking == LRVM_TRACK_EXPLICIT, shared = explicit && x % 4 == 0;
    void *bases[2] = { seg, r->sh };
    lrvm_tx_t *tx;
    int rc = shared ? lrvm_begin_shared(r->s, 2, bases, &tx) : lrvm_begin(r->s, 1, bases, &tx);
    if (rc == LRVM_EEXIST) {                /* another thread tried our segment */
        w->busy++;
        return;
    }
    if (!OK(w, "lrvm_begin", rc, 0, 0))
        return;
    uint64_t i = w->commits + 1, v = tu_mix64(x) | 1;
    uint64_t *words[4] = { &seg[0], &seg[1 + i % (WORDS - 1)], NULL, NULL };
    if (shared) {
        words[2] = &r->sh[SH(w->t, 0)];
        words[3] = &r->sh[SH(w->t, 1 + i % (SH_WORDS - 1))];
    }
    for (int k = 0; k < 4 && words[k] != NULL; k++) {
        if (explicit && !OK(w, "lrvm_set_range", lrvm_set_range(tx, words[k], 8), 0, 0))
            return;
        *words[k] = k % 2 == 0 ? i : v;
    }
    if ((x >> 8) % 10 == 0) {
        if (OK(w, "lrvm_abort", lrvm_abort(tx), 0, 0))
            w->aborts++;
        /* The thread's words are back as it last committed them. */
        if (seg[0] != w->img[0] || seg[1 + i % (WORDS - 1)] != w->img[1 + i % (WORDS - 1)])
            note_failure(w, __LINE__, "the abort did not put its words back");
        return;
    }
    if (!OK(w, "lrvm_commit", lrvm_commit(tx, (x >> 16) % 3 == 0 ? LRVM_NO_FLUSH : 0), 0, 0))
        return;
    w->commits = i;
    w->img[0] = i;
    w->img[1 + i % (WORDS - 1)] = v;
    if (shared) {
        w->sh_img[0] = i;
        w->sh_img[1 + i % (SH_WORDS - 1)] = v;
    }
}

/* A segment of the thread's own for a moment: map, a transaction, unmap,
 * and now and then destroy. */
static void map_step(struct racer *w)
{
    struct race *r = w->r;
    char name[16];
    snprintf(name, sizeof name, "x%d", w->t);
    void *base;
    if (!OK(w, "lrvm_map", lrvm_map(r->s, name, 8192, &base), 0, 0))
        return;
    lrvm_tx_t *tx;
    if (!OK(w, "lrvm_begin (x)", lrvm_begin(r->s, 1, &base, &tx), 0, 0))
        return;
    if (r->tracking == LRVM_TRACK_EXPLICIT &&
        !OK(w, "lrvm_set_range (x)", lrvm_set_range(tx, base, 8), 0, 0))
        return;
    (*(uint64_t *)base)++;
    if (!OK(w, "lrvm_commit (x)", lrvm_commit(tx, LRVM_NO_FLUSH), 0, 0) ||
        !OK(w, "lrvm_unmap", lrvm_unmap(r->s, base), 0, 0))
        return;
    if (tu_rand(&w->rng) % 4 == 0)
        OK(w, "lrvm_destroy", lrvm_destroy(r->s, name), 0, 0);
}

/* Another thread's segment: begin and abort, or find it busy. Nothing is
 * stored into it. */
static void foreign_step(struct racer *w)
{
    struct race *r = w->r;
    int u = (w->t + 1 + (int)(tu_rand(&w->rng) % (THREADS - 1))) % THREADS;
    void *base = r->segs[u];
    lrvm_tx_t *tx;
    int rc = lrvm_begin(r->s, 1, &base, &tx);
    if (OK(w, "lrvm_begin (another's)", rc, LRVM_EEXIST, 0) && rc == 0)
        OK(w, "lrvm_abort (another's)", lrvm_abort(tx), 0, 0);
}

/* Phase 1: one transaction left open, on which the thread calls while
 * lrvm_close ends it: an even thread declares (words it does not change:
 * a store could land after the close unmapped the segment) until its
 * handle is gone, an odd one commits as the close begins. Each call
 * comes before the close (a commit that returns 0 is kept: close
 * flushes) or finds the handle gone. */
static void last_tx(struct racer *w)
{
    struct race *r = w->r;
    uint64_t *seg = r->segs[w->t];
    void *base = seg;
    lrvm_tx_t *tx;
    int rc;
    while ((rc = lrvm_begin(r->s, 1, &base, &tx)) == LRVM_EEXIST)
        ;                                   /* a foreign_step holds it a moment */
    if (!OK(w, "lrvm_begin (last)", rc, 0, 0))
        return;
    atomic_fetch_add(&r->ready, 1);
    for (uint64_t n = 0;; n++) {
        rc = lrvm_set_range(tx, &seg[n % WORDS], 8);
        if (rc == LRVM_ENOENT)
            break;
        if (!OK(w, "lrvm_set_range (last)", rc, 0, 0))
            return;
        if (w->t % 2 == 1 && atomic_load(&r->phase) == 2) {
            rc = lrvm_commit(tx, n % 2 ? LRVM_NO_FLUSH : 0);
            if (rc == LRVM_ENOENT)
                break;
            OK(w, "lrvm_commit (last)", rc, 0, 0);
            return;                         /* committed before the close */
        }
    }
    w->closed_seen = 1;
}

static void *racer_run(void *arg)
{
    struct racer *w = arg;
    struct race *r = w->r;
    while (atomic_load(&r->phase) == 0 && !stopping(w)) {
        unsigned x = (unsigned)(tu_rand(&w->rng) % 100);
        if (x < 60)
            tx_step(w);
        else if (x < 68)
            map_step(w);
        else if (x < 76)
            foreign_step(w);
        else if (x < 80)
            OK(w, "lrvm_truncate", lrvm_truncate(r->s), 0, 0);
        else if (x < 86)
            OK(w, "lrvm_flush", lrvm_flush(r->s), 0, 0);
        else if (x < 92)
            OK(w, "lrvm_sync", lrvm_sync(r->s),
               r->tracking == LRVM_TRACK_EXPLICIT ? LRVM_EMODE : 0, 0);
        else {
            lrvm_stats_t st;
            OK(w, "lrvm_stats", lrvm_stats(r->s, &st), 0, 0);
        }
    }
    if (!stopping(w))
        last_tx(w);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
    nanosleep(&ts, NULL);
}

static void race(int tracking, uint64_t seed)
{
    static struct race r;
    static struct racer w[THREADS];
    memset(&r, 0, sizeof r);
    memset(w, 0, sizeof w);
    r.tracking = tracking;
    lrvm_options_t o = { .tracking = tracking, .truncate_threshold = (size_t)64 << 10 };
    r.s = tu_open(NULL, &o);
    r.sh = tu_map(r.s, "sh", SH_SIZE);
    for (int t = 0; t < THREADS; t++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", t);
        r.segs[t] = tu_map(r.s, name, SEG_SIZE);
    }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t].r = &r;
        w[t].t = t;
        w[t].rng = tu_mix64(seed ^ (uint64_t)(t + 1)) | 1;
        ck_assert_int_eq(pthread_create(&th[t], NULL, racer_run, &w[t]), 0);
    }
    sleep_ms(1500);
    atomic_store(&r.phase, 1);
    while (atomic_load(&r.ready) < THREADS && atomic_load(&r.failed_line) == 0)
        sleep_ms(1);
    sleep_ms(2);
    atomic_store(&r.phase, 2);
    int rc = lrvm_close(r.s);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    ck_assert_msg(atomic_load(&r.failed_line) == 0, "line %d (LRVM_TEST_SEED=%" PRIu64 "): %s",
                  atomic_load(&r.failed_line), seed, r.why);
    ck_assert_msg(rc == 0, "lrvm_close: %s", lrvm_strerror(rc));

    uint64_t commits = 0, aborts = 0;
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    const uint64_t *sh = tu_map(s, "sh", SH_SIZE);
    for (int t = 0; t < THREADS; t++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", t);
        const uint64_t *seg = tu_map(s, name, SEG_SIZE);
        for (size_t k = 0; k < WORDS; k++)
            ck_assert_msg(seg[k] == w[t].img[k],
                          "thread %d, word %zu (LRVM_TEST_SEED=%" PRIu64 "): %" PRIu64
                          ", its commits left %" PRIu64, t, k, seed, seg[k], w[t].img[k]);
        for (size_t k = 0; k < SH_WORDS; k++)
            ck_assert_msg(sh[SH(t, k)] == w[t].sh_img[k],
                          "thread %d, shared word %zu (LRVM_TEST_SEED=%" PRIu64 "): %" PRIu64
                          ", its commits left %" PRIu64, t, k, seed, sh[SH(t, k)],
                          w[t].sh_img[k]);
        commits += w[t].commits;
        aborts += w[t].aborts;
        /* An even thread declares until the close takes its handle. */
        ck_assert_msg(t % 2 == 1 || w[t].closed_seen, "thread %d never saw the close", t);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_uint_gt(commits, THREADS * 10);          /* the race ran */
    ck_assert_uint_gt(aborts, 0);
}

START_TEST(test_race_every_call_explicit)
{
    race(LRVM_TRACK_EXPLICIT, tu_test_seed());
}
END_TEST

START_TEST(test_race_every_call_auto)
{
    race(LRVM_TRACK_AUTO, tu_test_seed() ^ 0xa070);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("race");
    TCase *tc = tu_tcase("race", 120);
    tcase_add_test(tc, test_race_every_call_explicit);
    tcase_add_test(tc, test_race_every_call_auto);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
