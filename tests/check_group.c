/*
 * check_group.c -- group commit: flushing commits of several threads share
 * fdatasyncs; a failed shared sync fails every commit that waited on it and
 * the store, and none of them comes back; a lone failure still leaves the
 * store usable; threads committing concurrently, killed at random moments
 * or stopped by a power cut at a sync, leave each thread's history a
 * prefix that holds every acknowledged commit, in both tracking modes;
 * eight threads whose shared transactions move money between their own
 * segments and their interleaved words of one segment they all hold, and
 * each take a block of one heap they share and free the one before,
 * aborting some, killed and cut the same way, leave every thread's words
 * of both as its acknowledged history left them, and the heap whole,
 * holding each thread's last block and no other; and four threads that
 * commit without a flush beside one that flushes, killed and cut, keep
 * every commit that returned before a flush that returned.
 *
 * lrvm__io_sync_delay_us makes every sync slow, so that commits arrive
 * while one is under way whatever the disk.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEG_SIZE ((size_t)64 << 10)

static void setup(void)
{
    atomic_store(&lrvm__io_sync_delay_us, 0);
    lrvm__io_inject(0, 0, 0, 0);
}

static void teardown(void)
{
    atomic_store(&lrvm__io_sync_delay_us, 0);
    lrvm__io_inject(0, 0, 0, 0);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Transaction I of thread T on its segment: the counter at word 0 is I,
 * and the word 1 + I % 500 gets a value derived from T and I. */
static uint64_t value(int t, uint64_t i)
{
    return tu_mix64((uint64_t)t << 40 ^ i) | 1;
}

static int commit_step(lrvm_t *s, int t, uint64_t *seg, uint64_t i, int flags, int explicit)
{
    lrvm_tx_t *tx;
    int rc = lrvm_begin(s, 1, (void *const *)&seg, &tx);
    if (rc != 0)
        return rc;
    uint64_t *w = &seg[1 + i % 500];
    if (explicit && ((rc = lrvm_set_range(tx, &seg[0], 8)) != 0 ||
                     (rc = lrvm_set_range(tx, w, 8)) != 0))
        return rc;
    seg[0] = i;
    *w = value(t, i);
    return lrvm_commit(tx, flags);
}

/* Thread T's segment after its transactions 1..C, from zeros. */
static void model(int t, uint64_t c, uint64_t *img)
{
    memset(img, 0, SEG_SIZE);
    img[0] = c;
    for (uint64_t i = 1; i <= c; i++)
        img[1 + i % 500] = value(t, i);
}

/* Shared transactions. Up to SHARE_THREADS threads hold one segment,
 * SHARED_NAME, in lrvm_begin_shared transactions; thread T's words of it
 * are T, T + SHARE_THREADS, ...: every page is every thread's, and no byte
 * is two threads'. Transaction I of thread T does commit_step's work on
 * its own segment and the same in its words of the shared one (count,
 * value), and moves an amount from its own segment's account (word
 * ACCOUNT) to its account in the shared one: the two sum to 0. */
#define SHARE_THREADS 8
#define SHARED_NAME "shared"
#define ACCOUNT 501
#define SHARED_WORD(t, k) ((size_t)(k) * SHARE_THREADS + (size_t)(t))

static uint64_t amount(int t, uint64_t i)
{
    return value(t, i) % 1000;
}

/* And the heap they share: each thread's transaction I but every fourth
 * takes a block of it holding {T, I} and frees the one its last such
 * transaction took; the thread's word BLOCK of the shared segment holds
 * the block's offset. (A transaction with no heap call may commit at the
 * log's tail, without the store lock, when it needs no flush: tx.c.) */
#define HEAP_NAME "heap"
#define HEAP_SIZE ((size_t)1 << 20)
#define BLOCK 502

static int heap_step(uint64_t i)
{
    return i % 4 != 3;
}

/* The last of transactions 1..C that took a block, or 0. */
static uint64_t last_heap_step(uint64_t c)
{
    while (c > 0 && !heap_step(c))
        c--;
    return c;
}

static int declare_all(lrvm_tx_t *tx, uint64_t *const *words, size_t n)
{
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++)
        rc = lrvm_set_range(tx, words[k], 8);
    return rc;
}

/* Thread T's block for its transaction I, in TX, in place of the one *AT
 * names: 0, or an lrvm error. */
static int swap_block(lrvm_heap_t *heap, lrvm_tx_t *tx, int t, uint64_t i, uint64_t *at)
{
    unsigned char *base = lrvm_heap_base(heap);
    uint64_t *b = lrvm_malloc(heap, 2 * sizeof(uint64_t));
    int rc;
    if (b == NULL)
        return lrvm_last_error();
    if ((rc = lrvm_set_range(tx, b, 2 * sizeof *b)) != 0)
        return rc;
    b[0] = (uint64_t)t;
    b[1] = i;
    lrvm_free(heap, *at != 0 ? base + *at : NULL);  /* a failure leaks: the check finds it */
    *at = (uint64_t)((unsigned char *)b - base);
    return 0;
}

static int shared_step(lrvm_t *s, lrvm_heap_t *heap, int t, uint64_t *seg, uint64_t *sh,
                       uint64_t i, int flags)
{
    void *bases[3] = { seg, sh, lrvm_heap_base(heap) };
    lrvm_tx_t *tx;
    int rc = lrvm_begin_shared(s, 3, bases, &tx);
    if (rc != 0)
        return rc;
    uint64_t *w = &seg[1 + i % 500], *count = &sh[SHARED_WORD(t, 0)],
             *sw = &sh[SHARED_WORD(t, 1 + i % 500)], *acct = &sh[SHARED_WORD(t, ACCOUNT)],
             *block = &sh[SHARED_WORD(t, BLOCK)];
    uint64_t *const words[] = { &seg[0], w, &seg[ACCOUNT], count, sw, acct, block };
    size_t n = sizeof words / sizeof words[0];
    if ((rc = declare_all(tx, words, n)) != 0)
        return rc;
    if (i % 5 == 0) {
        /* First a change that is aborted. It stays in memory a while, so
         * that the other threads commit their bytes of the same pages
         * meanwhile: they must log none of it, and keep theirs; and the
         * abort takes back its block and its free. */
        uint64_t old = *block;
        if ((rc = swap_block(heap, tx, t, i, block)) != 0)
            return rc;
        for (size_t k = 0; k + 1 < n; k++)
            *words[k] = ~value(t, i);
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
        if ((rc = lrvm_abort(tx)) != 0)
            return rc;
        if (*block != old)
            return LRVM_ECORRUPT;           /* the abort put the word back */
        if ((rc = lrvm_begin_shared(s, 3, bases, &tx)) != 0 ||
            (rc = declare_all(tx, words, n)) != 0)
            return rc;
    }
    if (heap_step(i) && (rc = swap_block(heap, tx, t, i, block)) != 0)
        return rc;
    seg[0] = *count = i;
    *w = *sw = value(t, i);
    seg[ACCOUNT] -= amount(t, i);
    *acct += amount(t, i);
    return lrvm_commit(tx, flags);
}

/* Thread T's own segment after its shared transactions 1..C into IMG;
 * then 0 if its words of the shared segment SH are what those left, else
 * the first that is not (its index, plus 1). */
static size_t shared_mismatch(int t, uint64_t c, const uint64_t *sh, uint64_t *img)
{
    model(t, c, img);
    uint64_t moved = 0;
    for (uint64_t i = 1; i <= c; i++)
        moved += amount(t, i);
    img[ACCOUNT] = -moved;
    for (size_t k = 0; k < SEG_SIZE / 8 / SHARE_THREADS; k++) {
        if (k == BLOCK)
            continue;                       /* the heap's check reads it */
        uint64_t want = k == ACCOUNT ? moved : img[k];
        if (sh[SHARED_WORD(t, k)] != want)
            return SHARED_WORD(t, k) + 1;
    }
    return 0;
}

static const char *seg_name(int t)
{
    static char names[8][8];
    snprintf(names[t], sizeof names[t], "t%d", t);
    return names[t];
}

/* ------------------------------------------------ syncs are shared */

#define THREADS 8
#define PER_THREAD 20

struct worker {
    lrvm_t   *s;
    int       t;
    uint64_t *seg;
    int       rc;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (uint64_t i = 1; i <= PER_THREAD && w->rc == 0; i++)
        w->rc = commit_step(w->s, w->t, w->seg, i, 0, 1);
    return NULL;
}

START_TEST(test_group_commits_share_syncs)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    struct worker w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        w[t] = (struct worker){ s, t, tu_map(s, seg_name(t), SEG_SIZE), 0 };
    lrvm_stats_t st0, st1;
    ck_assert_int_eq(lrvm_stats(s, &st0), 0);
    atomic_store(&lrvm__io_sync_delay_us, 5000);
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    atomic_store(&lrvm__io_sync_delay_us, 0);
    ck_assert_int_eq(lrvm_stats(s, &st1), 0);
    for (int t = 0; t < THREADS; t++)
        ck_assert_msg(w[t].rc == 0, "thread %d: %s", t, lrvm_strerror(w[t].rc));
    uint64_t commits = st1.commits - st0.commits, syncs = st1.fsyncs - st0.fsyncs;
    ck_assert_uint_eq(commits, THREADS * PER_THREAD);
    /* While one 5 ms sync runs, the other threads' commits queue up for
     * the next: far fewer syncs than commits. */
    ck_assert_msg(syncs * 2 <= commits, "%" PRIu64 " syncs for %" PRIu64 " flushing commits",
                  syncs, commits);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    uint64_t *img = malloc(SEG_SIZE);
    model(0, 0, img);
    for (int t = 0; t < THREADS; t++) {
        model(t, PER_THREAD, img);
        ck_assert_mem_eq(tu_map(s, seg_name(t), SEG_SIZE), img, SEG_SIZE);
    }
    free(img);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ a shared sync fails */

struct committer {
    lrvm_t   *s;
    uint64_t *seg;
    int       t;
    int       flags;
    int       rc;
};

static void *committer_run(void *arg)
{
    struct committer *c = arg;
    c->rc = commit_step(c->s, c->t, c->seg, 2, c->flags, 1);
    return NULL;
}

/* Thread A leads a sync that takes 100 ms and fails; thread B's flushing
 * commit waits on it, and a no-flush commit returns meanwhile. A and B
 * fail, the store refuses further commits, and after a reopen the three
 * segments hold what they held before: nothing of the group came back. */
START_TEST(test_group_failed_shared_sync_fails_every_waiter)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    uint64_t *seg[3];
    for (int t = 0; t < 3; t++) {
        seg[t] = tu_map(s, seg_name(t), SEG_SIZE);
        ck_assert_int_eq(commit_step(s, t, seg[t], 1, 0, 1), 0);
    }
    atomic_store(&lrvm__io_sync_delay_us, 100000);
    lrvm__io_inject(LRVM__IO_SYNC, 1, EIO, LRVM__IO_ONCE);
    struct committer a = { s, seg[0], 0, 0, 0 }, b = { s, seg[1], 1, 0, 0 };
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, committer_run, &a), 0);
    sleep_ms(30);
    ck_assert_int_eq(pthread_create(&tb, NULL, committer_run, &b), 0);
    sleep_ms(20);
    ck_assert_int_eq(commit_step(s, 2, seg[2], 2, LRVM_NO_FLUSH, 1), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    atomic_store(&lrvm__io_sync_delay_us, 0);
    /* A's sync and the cleanup's: B made none of its own. */
    ck_assert_int_eq(lrvm__io_calls(), 2);
    lrvm__io_inject(0, 0, 0, 0);
    ck_assert_int_eq(a.rc, LRVM_EIO);
    ck_assert_int_eq(b.rc, LRVM_EIO);
    ck_assert_int_eq(commit_step(s, 2, seg[2], 3, 0, 1), LRVM_EFAILED);
    ck_assert_int_eq(lrvm_close(s), LRVM_EFAILED);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    uint64_t *img = malloc(SEG_SIZE);
    for (int t = 0; t < 3; t++) {
        seg[t] = tu_map(s, seg_name(t), SEG_SIZE);
        model(t, 1, img);
        ck_assert_mem_eq(seg[t], img, SEG_SIZE);
    }
    /* The reopened store commits again. */
    ck_assert_int_eq(commit_step(s, 0, seg[0], 2, 0, 1), 0);
    free(img);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The same slow failing sync with nobody else committing is a lone
 * failure: that commit fails, the store goes on. */
START_TEST(test_group_lone_failed_sync_keeps_store)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    uint64_t *seg = tu_map(s, seg_name(0), SEG_SIZE);
    ck_assert_int_eq(commit_step(s, 0, seg, 1, 0, 1), 0);
    ck_assert_int_eq(commit_step(s, 0, seg, 2, LRVM_NO_FLUSH, 1), 0);
    atomic_store(&lrvm__io_sync_delay_us, 20000);
    lrvm__io_inject(LRVM__IO_SYNC, 1, EIO, LRVM__IO_ONCE);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&seg, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, &seg[499], 8), 0);
    seg[499] = 12345;
    ck_assert_int_eq(lrvm_commit(tx, 0), LRVM_EIO);
    atomic_store(&lrvm__io_sync_delay_us, 0);
    lrvm__io_inject(0, 0, 0, 0);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(commit_step(s, 0, seg, 3, 0, 1), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    uint64_t *img = malloc(SEG_SIZE);
    model(0, 3, img);                   /* the no-flush commit 2 kept its place */
    ck_assert_mem_eq(tu_map(s, seg_name(0), SEG_SIZE), img, SEG_SIZE);
    free(img);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Another thread's call on a handle that is committing gets LRVM_EBUSY,
 * not a use of a transaction that is about to be freed. */
struct tx_commit {
    lrvm_tx_t *tx;
    int        rc;
};

static void *tx_commit_run(void *arg)
{
    struct tx_commit *c = arg;
    c->rc = lrvm_commit(c->tx, 0);
    return NULL;
}

START_TEST(test_group_handle_busy_while_committing)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    uint64_t *seg = tu_map(s, seg_name(0), SEG_SIZE);
    struct tx_commit c = { NULL, 0 };
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&seg, &c.tx), 0);
    ck_assert_int_eq(lrvm_set_range(c.tx, seg, 8), 0);
    seg[0] = 7;
    atomic_store(&lrvm__io_sync_delay_us, 100000);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, tx_commit_run, &c), 0);
    sleep_ms(30);                       /* the commit waits for its slow sync */
    ck_assert_int_eq(lrvm_abort(c.tx), LRVM_EBUSY);
    ck_assert_int_eq(lrvm_set_range(c.tx, seg, 8), LRVM_EBUSY);
    pthread_join(th, NULL);
    atomic_store(&lrvm__io_sync_delay_us, 0);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(lrvm_abort(c.tx), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    ck_assert_uint_eq(((uint64_t *)tu_map(s, seg_name(0), SEG_SIZE))[0], 7);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* lrvm_close while two commits wait on a slow sync: it waits for both to
 * end, and both are durable. (A waiter that leaves last wakes lrvm_close
 * up; this test passes without that too when the waiter happens to take
 * the lock before lrvm_close does, which is the common order.) */
START_TEST(test_group_close_waits_for_commits)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    uint64_t *seg[2];
    for (int t = 0; t < 2; t++)
        seg[t] = tu_map(s, seg_name(t), SEG_SIZE);
    atomic_store(&lrvm__io_sync_delay_us, 100000);
    struct committer a = { s, seg[0], 0, 0, 0 }, b = { s, seg[1], 1, 0, 0 };
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, committer_run, &a), 0);
    sleep_ms(20);
    ck_assert_int_eq(pthread_create(&tb, NULL, committer_run, &b), 0);
    sleep_ms(20);
    ck_assert_int_eq(lrvm_close(s), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    atomic_store(&lrvm__io_sync_delay_us, 0);
    ck_assert_int_eq(a.rc, 0);
    ck_assert_int_eq(b.rc, 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    for (int t = 0; t < 2; t++) {
        const uint64_t *w = tu_map(s, seg_name(t), SEG_SIZE);
        ck_assert_uint_eq(w[0], 2);
        ck_assert_uint_eq(w[1 + 2 % 500], value(t, 2));
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ kills */

#define KILL_THREADS 4          /* and SHARE_THREADS in shared transactions */

struct kill_worker {
    lrvm_t   *s;
    int       t;
    uint64_t *seg;
    uint64_t *sh;               /* the shared segment, or NULL: none */
    lrvm_heap_t *heap;          /* with it, the shared heap */
    int       explicit;
    int       fd;
    _Atomic uint64_t *returned; /* or: every commit without a flush, the
                                   last whose call returned published here */
};

struct ack {
    uint32_t t;                 /* the thread, or READY: the threads run */
    uint32_t pad;
    uint64_t i;
};
#define READY UINT32_MAX

static void *kill_worker_run(void *arg)
{
    struct kill_worker *w = arg;
    for (uint64_t i = w->seg[0] + 1;; i++) {
        int flags = i % 3 == 0 || w->returned != NULL ? LRVM_NO_FLUSH : 0;
        int rc = w->sh ? shared_step(w->s, w->heap, w->t, w->seg, w->sh, i, flags)
                       : commit_step(w->s, w->t, w->seg, i, flags, w->explicit);
        if (rc != 0)
            _exit(3);
        if (w->returned != NULL) {
            atomic_store(w->returned, i);
        } else if (flags == 0) {
            struct ack a = { (uint32_t)w->t, 0, i };
            if (write(w->fd, &a, sizeof a) != (ssize_t)sizeof a)
                _exit(4);
        }
    }
    return NULL;
}

struct kill_child {
    int           tracking;
    int           fd;
    unsigned long powercut_at;  /* the sync call the power fails at; 0: none */
    unsigned long trunc_call;   /* or the write or sync of a truncation beside
                                   the commits that it dies at; 0: none */
    int           powercut;     /* there: the power fails (else SIGKILL) */
    uint64_t      seed;         /* of the power cut's choices */
    int           kind;         /* KILL_OWN, KILL_SHARED: SHARE_THREADS threads
                                   in shared transactions, KILL_FLUSHER */
};

/* The threads' commits: flushed but every third (each on its own segment,
 * or in shared transactions), or none flushed, and a thread of the test's
 * own that flushes the store over and over: each commit whose call had
 * returned when a flush began is acknowledged once that flush returns. */
#define KILL_OWN     0
#define KILL_SHARED  1
#define KILL_FLUSHER 2
#define KILL_FOLLOW  3          /* KILL_OWN, the threshold left to lrvm */

struct flusher {
    lrvm_t           *s;
    int               fd;
    _Atomic uint64_t *returned;         /* KILL_THREADS of them */
};

static void *flusher_run(void *arg)
{
    struct flusher *f = arg;
    for (;;) {
        uint64_t before[KILL_THREADS];
        for (int t = 0; t < KILL_THREADS; t++)
            before[t] = atomic_load(&f->returned[t]);
        if (lrvm_flush(f->s) != 0)
            _exit(5);
        for (int t = 0; t < KILL_THREADS; t++) {
            struct ack a = { (uint32_t)t, 0, before[t] };
            if (write(f->fd, &a, sizeof a) != (ssize_t)sizeof a)
                _exit(4);
        }
    }
    return NULL;
}

/* The truncation threshold of the kills at a truncation's calls: small,
 * so that the threads' commits start one every few hundred. */
#define TRUNC_THRESHOLD ((size_t)16 << 10)

static void kill_child_run(void *arg)
{
    struct kill_child *k = arg;
    alarm(60);
    lrvm_options_t o = { .tracking = k->tracking,
                         .truncate_threshold = k->trunc_call ? TRUNC_THRESHOLD : (size_t)1 << 20 };
    if (k->kind == KILL_FOLLOW) {
        /* The default's floor the same, its ceiling twice that: the
         * threads' segments take the log's room from its floor, at open,
         * to the ceiling at the first switch. */
        lrvm__truncate_default = TRUNC_THRESHOLD;
        lrvm__truncate_most = 2 * TRUNC_THRESHOLD;
        o.truncate_threshold = 0;
    }
    lrvm_t *s;
    if (lrvm_open(tu_dir, &o, &s) != 0)
        _exit(2);
    if (k->trunc_call != 0) {
        lrvm__io_powercut_seed(k->seed);
        lrvm__io_inject(LRVM__IO_WRITE | LRVM__IO_SYNC, k->trunc_call, EIO,
                        (k->powercut ? LRVM__IO_POWERCUT : LRVM__IO_KILL) | LRVM__IO_TRUNCATION);
    }
    int threads = k->kind == KILL_SHARED ? SHARE_THREADS : KILL_THREADS;
    struct kill_worker w[SHARE_THREADS];
    pthread_t th[SHARE_THREADS + 1];
    static _Atomic uint64_t returned[KILL_THREADS];
    void *sh = NULL;
    lrvm_heap_t *heap = NULL;
    if (k->kind == KILL_SHARED && (lrvm_map(s, SHARED_NAME, SEG_SIZE, &sh) != 0 ||
                                   lrvm_heap_open(s, HEAP_NAME, HEAP_SIZE, &heap) != 0))
        _exit(2);
    for (int t = 0; t < threads; t++) {
        void *base;
        if (lrvm_map(s, seg_name(t), SEG_SIZE, &base) != 0)
            _exit(2);
        w[t] = (struct kill_worker){ s, t, base, sh, heap, k->tracking == LRVM_TRACK_EXPLICIT,
                                     k->fd, k->kind == KILL_FLUSHER ? &returned[t] : NULL };
        if (k->kind == KILL_FLUSHER)
            atomic_store(&returned[t], ((uint64_t *)base)[0]);
    }
    /* The power cut counts the threads' syncs alone, and the kill's delay
     * starts once they run: on a slow machine (ThreadSanitizer) the
     * set-up above took all of it, and some thread never committed. */
    if (k->powercut_at != 0) {
        lrvm__io_powercut_seed(k->seed);
        lrvm__io_inject(LRVM__IO_SYNC, k->powercut_at, EIO, LRVM__IO_POWERCUT);
    }
    for (int t = 0; t < threads; t++)
        if (pthread_create(&th[t], NULL, kill_worker_run, &w[t]) != 0)
            _exit(2);
    struct flusher f = { s, k->fd, returned };
    if (k->kind == KILL_FLUSHER && pthread_create(&th[threads], NULL, flusher_run, &f) != 0)
        _exit(2);
    struct ack ready = { READY, 0, 0 };
    if (write(k->fd, &ready, sizeof ready) != (ssize_t)sizeof ready)
        _exit(4);
    for (;;)
        pause();
}

/* Kill the threads' process 12 times, with SIGKILL a random delay after
 * its threads started or, when POWERCUT, by a power cut at one of their
 * sync calls drawn at random (every
 * write not synced then is kept, undone or torn); or, when TRUNC_CALLS,
 * once at each of the first TRUNC_CALLS writes and syncs of truncations
 * beside the commits (their switches and their threads': the segment
 * files and the header slots), by SIGKILL or by a power cut as POWERCUT
 * says. Each time check every thread's history (KIND: which commits,
 * above): with KILL_SHARED, of its own segment and its words of the
 * shared one. */
static void kills(int tracking, int powercut, unsigned long trunc_calls, int kind)
{
    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0x67726f7570u) | 1;
    int shared = kind == KILL_SHARED, threads = shared ? SHARE_THREADS : KILL_THREADS;
    uint64_t floor[SHARE_THREADS] = { 0 };
    uint64_t *img = malloc(SEG_SIZE);
    ck_assert_ptr_nonnull(img);
    int two_generations = 0;
    int rounds = trunc_calls ? (int)trunc_calls : 12;
    for (int round = 0; round < rounds; round++) {
        int fd;
        pid_t pid = tu_fork_piped(&fd);
        if (pid == 0) {
            struct kill_child k = { tracking, fd, 0, 0, powercut, 0, kind };
            if (trunc_calls) {
                k.trunc_call = (unsigned long)round + 1;
                k.seed = tu_rand(&rng);
            } else if (powercut) {
                k.powercut_at = 2 + (unsigned long)(tu_rand(&rng) % 40);
                k.seed = tu_rand(&rng);
            }
            kill_child_run(&k);
        }
        uint64_t acked[SHARE_THREADS] = { 0 };
        struct ack a = { 0, 0, 0 };
        if (trunc_calls) {
            tu_rand(&rng);                  /* the child's draw, in step */
        } else if (!powercut) {
            while (a.t != READY && read(fd, &a, sizeof a) == (ssize_t)sizeof a)
                if (a.t < (uint32_t)threads && a.i > acked[a.t])
                    acked[a.t] = a.i;
            sleep_ms(20 + (unsigned)(tu_rand(&rng) % 60));
            kill(pid, SIGKILL);
        } else {
            tu_rand(&rng);                  /* the child's draws, in step */
            tu_rand(&rng);
        }
        while (read(fd, &a, sizeof a) == (ssize_t)sizeof a)
            if (a.t < (uint32_t)threads && a.i > acked[a.t])
                acked[a.t] = a.i;
        close(fd);
        int st = tu_wait(pid);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "round %d (LRVM_TEST_SEED=%" PRIu64 "): child status 0x%x", round, seed, st);
        if (trunc_calls) {
            /* The log as the cut left it, both generations in it or not:
             * lrvmutl's check must take what recovery takes. */
            char logpath[4096];
            snprintf(logpath, sizeof logpath, "%s/lrvm.log", tu_dir);
            int lfd = open(logpath, O_RDONLY), dfd = open(tu_dir, O_RDONLY | O_DIRECTORY);
            struct lrvm__log_header h;
            int slot;
            struct lrvm__check c;
            ck_assert_int_eq(lrvm__log_read_header(lfd, &h, &slot), 0);
            ck_assert_msg(lrvm__recover_check(dfd, lfd, &h, NULL, NULL, &c) == 0,
                          "round %d (LRVM_TEST_SEED=%" PRIu64 "): the check refuses the log at "
                          "%" PRIu64 ": %s", round, seed, c.at, c.why ? c.why : "");
            free(c.segs);
            close(lfd);
            close(dfd);
            two_generations += h.lh_next_start != 0;
        }

        lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
        const uint64_t *sh = shared ? tu_map(s, SHARED_NAME, SEG_SIZE) : NULL;
        for (int t = 0; t < threads; t++) {
            uint64_t *seg = tu_map(s, seg_name(t), SEG_SIZE);
            uint64_t c = seg[0];
            ck_assert_msg(c >= acked[t] && c >= floor[t],
                          "round %d, thread %d (LRVM_TEST_SEED=%" PRIu64 "): the store holds "
                          "%" PRIu64 " transactions, %" PRIu64 " were acknowledged, %" PRIu64
                          " found before", round, t, seed, c, acked[t], floor[t]);
            size_t bad = sh ? shared_mismatch(t, c, sh, img) : (model(t, c, img), 0);
            ck_assert_msg(bad == 0,
                          "round %d, thread %d (LRVM_TEST_SEED=%" PRIu64 "): word %zu of the "
                          "shared segment is not as its transactions 1..%" PRIu64 " left it",
                          round, t, seed, bad - 1, c);
            ck_assert_msg(memcmp(seg, img, SEG_SIZE) == 0,
                          "round %d, thread %d (LRVM_TEST_SEED=%" PRIu64 "): not the state "
                          "after its transactions 1..%" PRIu64, round, t, seed, c);
            floor[t] = c;
        }
        if (shared) {
            /* The heap: each thread's block is its last transaction's
             * that took one, and no other block is used (opening it freed
             * the blocks of transactions the kill left open). */
            lrvm_heap_t *h;
            ck_assert_int_eq(lrvm_heap_open(s, HEAP_NAME, HEAP_SIZE, &h), 0);
            const unsigned char *hb = lrvm_heap_base(h);
            uint64_t live = 0, used, free_bytes;
            for (int t = 0; t < threads; t++) {
                uint64_t at = sh[SHARED_WORD(t, BLOCK)];
                const uint64_t *b = (const uint64_t *)(hb + at);
                uint64_t want = last_heap_step(floor[t]);
                ck_assert_msg(at == 0 ? want == 0
                                      : at < HEAP_SIZE && b[0] == (uint64_t)t && b[1] == want,
                              "round %d, thread %d (LRVM_TEST_SEED=%" PRIu64 "): its block at "
                              "%" PRIu64 " is not its transaction %" PRIu64 "'s", round, t,
                              seed, at, want);
                live += at != 0;
            }
            ck_assert_int_eq(lrvm__heap_check(h), 0);
            lrvm__heap_usage(h, &used, &free_bytes);
            ck_assert_msg(used == live, "round %d (LRVM_TEST_SEED=%" PRIu64 "): %" PRIu64
                          " blocks used, %" PRIu64 " the threads': a leak", round, seed, used,
                          live);
        }
        ck_assert_int_eq(lrvm_close(s), 0);
    }
    for (int t = 0; t < threads; t++)
        ck_assert_uint_gt(floor[t], 0);
    /* Some cuts fell while a generation retired: recovery met both. */
    ck_assert(!trunc_calls || two_generations > 0);
    free(img);
}

START_TEST(test_group_threads_killed_explicit)
{
    kills(LRVM_TRACK_EXPLICIT, 0, 0, KILL_OWN);
}
END_TEST

START_TEST(test_group_threads_killed_auto)
{
    kills(LRVM_TRACK_AUTO, 0, 0, KILL_OWN);
}
END_TEST

/* The power fails at a sync while threads commit: a commit acknowledged
 * means its group's sync had returned, so it must be there. */
START_TEST(test_group_threads_power_cut)
{
    kills(_i, 1, 0, KILL_OWN);
}
END_TEST

/* Eight threads in shared transactions on one segment and one heap,
 * killed (_i 0) or cut off by a power failure at a sync (_i 1). */
START_TEST(test_group_shared_threads_killed)
{
    kills(LRVM_TRACK_EXPLICIT, _i, 0, KILL_SHARED);
}
END_TEST

/* Four threads commit without a flush (in explicit mode, mostly at the
 * log's tail, without the store lock) and a fifth flushes the store over
 * and over; killed (_i 0) or cut off by a power failure at a sync (_i 1):
 * every commit whose call had returned when a flush began is there once
 * that flush returned. */
START_TEST(test_group_flusher_threads_killed)
{
    kills(LRVM_TRACK_EXPLICIT, _i, 0, KILL_FLUSHER);
}
END_TEST

/* A kill, then a power cut, at each write and sync of the first two
 * truncations that run beside the threads' commits (a switch makes 4,
 * the thread 2 a segment file and 2 for the header), in explicit and in
 * auto mode: every acknowledged commit is there after recovery, each
 * thread's history a prefix. */
#define TRUNC_CALLS 28
START_TEST(test_group_truncation_killed_at_each_call)
{
    kills(_i / 2 ? LRVM_TRACK_AUTO : LRVM_TRACK_EXPLICIT, _i % 2, TRUNC_CALLS, KILL_OWN);
}
END_TEST

/* The same with the threshold left to lrvm, which the segments mapped
 * raise from its floor at open: the first switch gives the log a larger
 * room than the one it was opened with. */
START_TEST(test_group_truncation_following_killed_at_each_call)
{
    kills(LRVM_TRACK_EXPLICIT, _i, TRUNC_CALLS, KILL_FOLLOW);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("group");
    TCase *tc = tu_tcase("group", 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_group_commits_share_syncs);
    tcase_add_test(tc, test_group_failed_shared_sync_fails_every_waiter);
    tcase_add_test(tc, test_group_lone_failed_sync_keeps_store);
    tcase_add_test(tc, test_group_handle_busy_while_committing);
    tcase_add_test(tc, test_group_close_waits_for_commits);
    tcase_add_test(tc, test_group_threads_killed_explicit);
    tcase_add_test(tc, test_group_threads_killed_auto);
    tcase_add_loop_test(tc, test_group_threads_power_cut, 0, 2);
    tcase_add_loop_test(tc, test_group_shared_threads_killed, 0, 2);
    tcase_add_loop_test(tc, test_group_flusher_threads_killed, 0, 2);
    suite_add_tcase(s, tc);
    TCase *tr = tu_tcase("truncation", 240);
    tcase_add_checked_fixture(tr, setup, teardown);
    tcase_add_loop_test(tr, test_group_truncation_killed_at_each_call, 0, 4);
    tcase_add_loop_test(tr, test_group_truncation_following_killed_at_each_call, 0, 2);
    suite_add_tcase(s, tr);
    return tu_run_suite(s);
}
