/*
 * check_tx.c -- transaction handles across threads in explicit mode: the
 * thread that begins a transaction declares without the store's lock
 * (biased ownership, tx.c), and every other thread that reaches the
 * transaction -- to commit it, abort it, close the store, or allocate from
 * a heap inside it -- must first take that right away. These tests race
 * such a thread against an owner that is declaring, and check that a
 * commit holds exactly the declarations that returned 0. Also: handles
 * that go back to the pool with large arrays, and a forked child; and
 * shared transactions (lrvm_begin_shared): who may hold a segment with
 * whom, each commit and abort taking only its own bytes of shared pages,
 * and overlapping declarations refused by the debug build. (Shared
 * transactions of many threads, killed and cut off: check_group.)
 */
#define _GNU_SOURCE
#include "internal.h"
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORDS   8192                    /* 64 KiB segment of 8-byte words */
#define ROUNDS  150

static uint64_t mark(int round, long i)
{
    return tu_mix64(((uint64_t)round << 32) | (uint64_t)i) | 1;
}

/* The first of SEG's WORDS words that is not mark(ROUND, i) for i < N and
 * 0 after, or -1. (One assertion a test: Check writes out each one.) */
static long first_bad_word(const uint64_t *seg, int round, long n)
{
    for (long i = 0; i < WORDS; i++)
        if (seg[i] != (i < n ? mark(round, i) : 0))
            return i;
    return -1;
}

/* The first of the LEN bytes at P that is not WANT(i), or -1. */
static long first_bad_byte(const unsigned char *p, size_t len, unsigned char (*want)(size_t))
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != want(i))
            return (long)i;
    return -1;
}

static void pause_us(long us)
{
    struct timespec ts = { 0, us * 1000 };
    nanosleep(&ts, NULL);
}

/* The owner: begins a transaction on SEG and declares word after word
 * until a call fails. Before declaring word i it stores mark(i) there, so
 * a commit logs mark(i) for exactly the words whose declaration returned
 * 0 -- and nothing for the word whose declaration failed. */
struct owner {
    lrvm_t          *s;
    uint64_t        *seg;
    int              round;
    lrvm_tx_t       *tx;
    atomic_int       begun;
    atomic_long      declared;          /* calls that returned 0 */
    int              last_rc;           /* the call that failed */
};

static void *owner_run(void *arg)
{
    struct owner *o = arg;
    void *base = o->seg;
    if (lrvm_begin(o->s, 1, &base, &o->tx) != 0) {
        o->last_rc = 1;
        atomic_store(&o->begun, -1);
        return NULL;
    }
    atomic_store(&o->begun, 1);
    for (long i = 0;; i++) {
        int rc;
        if (i < WORDS) {
            o->seg[i] = mark(o->round, i);
            rc = lrvm_set_range(o->tx, &o->seg[i], 8);
        } else {
            /* All declared: go on calling until the transaction is gone. */
            rc = lrvm_set_range(o->tx, o->seg, 0);
            sched_yield();
        }
        if (rc != 0) {
            o->last_rc = rc;
            break;
        }
        if (i < WORDS)
            atomic_fetch_add(&o->declared, 1);
    }
    return NULL;
}

static void start_owner(struct owner *o, pthread_t *th)
{
    ck_assert_int_eq(pthread_create(th, NULL, owner_run, o), 0);
    while (atomic_load(&o->begun) == 0)
        sched_yield();
    ck_assert_int_eq(atomic_load(&o->begun), 1);
}

START_TEST(test_tx_commit_from_another_thread_holds_each_declared_range)
{
    uint64_t seed = tu_test_seed();
    for (int round = 0; round < ROUNDS; round++) {
        lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
        char name[16];
        snprintf(name, sizeof name, "r%d", round);
        uint64_t *seg = tu_map(s, name, WORDS * 8);
        struct owner o = { .s = s, .seg = seg, .round = round };
        pthread_t th;
        start_owner(&o, &th);
        pause_us((long)(tu_rand(&seed) % 300));
        int rc;
        while ((rc = lrvm_commit(o.tx, LRVM_NO_FLUSH)) == LRVM_EBUSY)
            sched_yield();
        ck_assert_msg(rc == 0, "round %d: commit from another thread: %s", round,
                      lrvm_strerror(rc));
        pthread_join(th, NULL);
        ck_assert_int_eq(o.last_rc, LRVM_ENOENT);
        long n = atomic_load(&o.declared);
        ck_assert_int_eq(lrvm_close(s), 0);

        s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
        seg = tu_map(s, name, WORDS * 8);
        long bad = first_bad_word(seg, round, n);
        ck_assert_msg(bad < 0, "round %d: word %ld (%ld declared) holds %#llx", round, bad, n,
                      bad < 0 ? 0ull : (unsigned long long)seg[bad]);
        ck_assert_int_eq(lrvm_unmap(s, seg), 0);
        ck_assert_int_eq(lrvm_destroy(s, name), 0);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

START_TEST(test_tx_abort_from_another_thread_while_owner_declares)
{
    uint64_t seed = tu_test_seed();
    for (int round = 0; round < ROUNDS; round++) {
        lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
        uint64_t *seg = tu_map(s, "a", WORDS * 8);
        struct owner o = { .s = s, .seg = seg, .round = round };
        pthread_t th;
        start_owner(&o, &th);
        pause_us((long)(tu_rand(&seed) % 300));
        int rc;
        while ((rc = lrvm_abort(o.tx)) == LRVM_EBUSY)
            sched_yield();
        ck_assert_int_eq(rc, 0);
        pthread_join(th, NULL);
        ck_assert_int_eq(o.last_rc, LRVM_ENOENT);
        lrvm_stats_t st;
        ck_assert_int_eq(lrvm_stats(s, &st), 0);
        ck_assert_uint_eq(st.bytes_logged, 0);
        ck_assert_int_eq(lrvm_close(s), 0);
        s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
        seg = tu_map(s, "a", WORDS * 8);
        ck_assert_int_eq(first_bad_word(seg, round, 0), -1);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* The owner declared, and now waits; another thread closes the store. */
START_TEST(test_tx_close_aborts_a_transaction_of_another_thread)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8);
    struct owner o = { .s = s, .seg = seg };
    pthread_t th;
    start_owner(&o, &th);
    /* Every word declared: the owner no longer stores into the segment,
     * which the close unmaps; it only calls lrvm_set_range. */
    while (atomic_load(&o.declared) < WORDS)
        sched_yield();
    ck_assert_int_eq(lrvm_close(s), 0);
    /* The owner's next call meets a finished transaction: its memory is
     * pooled, never freed, and no longer in the registry. */
    pthread_join(th, NULL);
    ck_assert_int_eq(o.last_rc, LRVM_ENOENT);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    seg = tu_map(s, "a", WORDS * 8);
    ck_assert_int_eq(first_bad_word(seg, 0, 0), -1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A heap inside the owner's transaction: another thread allocates and
 * frees (the heap declares what it changes in that transaction, with no
 * lrvm_set_range of the thread's own) while the owner declares words;
 * then the owner fills the blocks and commits. */
#define BLOCKS 64

struct allocator {
    lrvm_heap_t *h;
    uint64_t    *blocks[BLOCKS];
    atomic_int   done;
    int          failed_at;          /* 0, or the step + 1 that failed */
};

static uint64_t block_word(int k, int j)
{
    return tu_mix64((uint64_t)k * 8 + (uint64_t)j) | 1;
}

static void *allocator_run(void *arg)
{
    struct allocator *a = arg;
    uint64_t seed = 7;
    for (int step = 0; step < 3000 && a->failed_at == 0; step++) {
        int k = (int)(tu_rand(&seed) % BLOCKS);
        lrvm_free(a->h, a->blocks[k]);
        a->blocks[k] = lrvm_malloc(a->h, 16 + 16 * (tu_rand(&seed) % 8));
        if (a->blocks[k] == NULL)
            a->failed_at = step + 1;
    }
    for (int k = 0; k < BLOCKS && a->failed_at == 0; k++)
        if (a->blocks[k] == NULL && (a->blocks[k] = lrvm_malloc(a->h, 16)) == NULL)
            a->failed_at = 3001 + k;
    atomic_store(&a->done, 1);
    return NULL;
}

/* One round: heap NAME-h and segment NAME-a. */
static void heap_round(int round)
{
    char hname[16], sname[16];
    snprintf(hname, sizeof hname, "h%d", round);
    snprintf(sname, sizeof sname, "a%d", round);
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_heap_open(s, hname, 1 << 20, &h), 0);
    uint64_t *seg = tu_map(s, sname, WORDS * 8);
    void *bases[2] = { lrvm_heap_base(h), seg };
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 2, bases, &tx), 0);

    struct allocator a = { .h = h };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, allocator_run, &a), 0);
    long n = 0, i = 0;
    int rc = 0;
    while (!atomic_load(&a.done) && rc == 0) {
        if (n < WORDS)
            seg[n] = mark(round, n);
        rc = lrvm_set_range(tx, &seg[i], 8);
        n += n < WORDS;
        i = (i + 1) % WORDS;
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(a.failed_at, 0);

    uint64_t *root = lrvm_malloc(h, BLOCKS * 8);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(lrvm_set_range(tx, root, BLOCKS * 8), 0);
    for (int k = 0; k < BLOCKS; k++) {
        ck_assert_int_eq(lrvm_set_range(tx, a.blocks[k], 16), 0);
        a.blocks[k][0] = block_word(k, 0);
        a.blocks[k][1] = block_word(k, 1);
        root[k] = (uint64_t)(uintptr_t)a.blocks[k];
    }
    ck_assert_int_eq(lrvm_heap_set_root(h, root), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    ck_assert_int_eq(lrvm_heap_open(s, hname, 1 << 20, &h), 0);
    seg = tu_map(s, sname, WORDS * 8);
    ck_assert_int_eq(first_bad_word(seg, round, n), -1);
    root = lrvm_heap_root(h);
    ck_assert_ptr_nonnull(root);
    int bad = -1;
    for (int k = 0; k < BLOCKS && bad < 0; k++) {
        uint64_t *b = (uint64_t *)(uintptr_t)root[k];
        if (b[0] != block_word(k, 0) || b[1] != block_word(k, 1))
            bad = k;
    }
    ck_assert_int_eq(bad, -1);
    /* Every block the other thread left live is still allocated: new
     * allocations overlap none of them. */
    void *hb = lrvm_heap_base(h);
    ck_assert_int_eq(lrvm_begin(s, 1, &hb, &tx), 0);
    for (int k = 0; k < BLOCKS && bad < 0; k++) {
        unsigned char *p = lrvm_malloc(h, 64);
        ck_assert_ptr_nonnull(p);
        for (int j = 0; j < BLOCKS; j++) {
            unsigned char *b = (unsigned char *)(uintptr_t)root[j];
            if (p < b + 16 && b < p + 64)
                bad = j;
        }
    }
    ck_assert_int_eq(bad, -1);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_tx_heap_allocates_inside_another_threads_transaction)
{
    for (int round = 0; round < 20; round++)
        heap_round(round);
}
END_TEST

/* Finished handles, on the thread that owned them, and NULL. */
START_TEST(test_tx_finished_and_null_handles)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8);
    void *base = seg;
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, seg, 8), 0);
    ck_assert_int_eq(lrvm_set_range(tx, seg, 0), 0);
    ck_assert_int_eq(lrvm_set_range(tx, seg + WORDS, 8), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, seg + WORDS - 1, 16), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_set_range(tx, seg, 8), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_set_range(tx, seg, 0), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_commit(tx, 0), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_abort(tx), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_set_range(NULL, seg, 8), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_commit(NULL, 0), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_abort(NULL), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Begin on BASE in a thread of its own and commit there: 0, or the code. */
struct other_begin {
    lrvm_t *s;
    void   *base;
    int     rc;
};

static void *other_begin_run(void *arg)
{
    struct other_begin *o = arg;
    lrvm_tx_t *tx;
    if ((o->rc = lrvm_begin(o->s, 1, &o->base, &tx)) == 0 &&
        (o->rc = lrvm_set_range(tx, o->base, 8)) == 0) {
        *(uint64_t *)o->base += 1;
        o->rc = lrvm_commit(tx, LRVM_NO_FLUSH);
    }
    return NULL;
}

/* lrvm_set_range, lrvm_commit and lrvm_abort of a finished handle from
 * another thread: each must give LRVM_ENOENT. */
struct other_finished {
    lrvm_tx_t *tx;
    void      *addr;
    int        rc[3];
};

static void *other_finished_run(void *arg)
{
    struct other_finished *o = arg;
    o->rc[0] = lrvm_set_range(o->tx, o->addr, 8);
    o->rc[1] = lrvm_commit(o->tx, LRVM_NO_FLUSH);
    o->rc[2] = lrvm_abort(o->tx);
    return NULL;
}

static void finished_in_other_thread(lrvm_tx_t *tx, void *addr)
{
    struct other_finished o = { tx, addr, { 0, 0, 0 } };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, other_finished_run, &o), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(o.rc[i], LRVM_ENOENT);
}

static int begin_in_other_thread(lrvm_t *s, void *base)
{
    struct other_begin o = { s, base, -1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, other_begin_run, &o), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    return o.rc;
}

/* The owner's begins of both kinds: the loop tests' _i. */
typedef int begin_fn(lrvm_t *, int, void *const *, lrvm_tx_t **);
static begin_fn *const begin_kind[2] = { lrvm_begin, lrvm_begin_shared };

/* A transaction its owner committed keeps its segment for the owner's next
 * begin of the same kind (parked, tx.c) and, without a flush, may be
 * committed at the log's tail without the store lock (log.c): for the
 * program it is over all the same. Its handle gets LRVM_ENOENT from every
 * thread; another thread's begin, an unmap and a close find the segment
 * free; the commits are all counted and all kept. Loop: begun alone (0),
 * shared (1). */
START_TEST(test_tx_committed_by_owner_is_over)
{
    begin_fn *begin = begin_kind[_i];
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8), *seg2 = tu_map(s, "b", WORDS * 8);
    void *base = seg, *bases[2] = { seg2, seg };
    lrvm_stats_t st0, st1;
    ck_assert_int_eq(lrvm_stats(s, &st0), 0);
    for (long i = 0; i < WORDS; i++) {          /* the first makes the pages private */
        lrvm_tx_t *tx;
        ck_assert_int_eq(begin(s, 1, &base, &tx), 0);
        ck_assert_int_eq(lrvm_set_range(tx, &seg[i], 8), 0);
        seg[i] = mark(1, i);
        ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
        if (i % 1000 == 7) {
            ck_assert_int_eq(lrvm_set_range(tx, seg, 8), LRVM_ENOENT);
            ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), LRVM_ENOENT);
            ck_assert_int_eq(lrvm_abort(tx), LRVM_ENOENT);
            finished_in_other_thread(tx, seg);
        }
    }
    ck_assert_int_eq(lrvm_stats(s, &st1), 0);
    ck_assert_uint_eq(st1.commits - st0.commits, WORDS);
    ck_assert_uint_eq(st1.log_records - st0.log_records, WORDS);

    /* Another thread takes the segment the owner's last commit kept. */
    ck_assert_int_eq(begin_in_other_thread(s, seg), 0);
    ck_assert_uint_eq(seg[0], mark(1, 0) + 1);
    /* The owner again, on two segments, then on the first alone. */
    lrvm_tx_t *tx;
    ck_assert_int_eq(begin(s, 2, bases, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, seg2, 8), 0);
    seg2[0] = 5;
    ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    ck_assert_int_eq(begin_in_other_thread(s, seg), 0);
    ck_assert_int_eq(begin(s, 1, &base, &tx), 0);
    ck_assert_int_eq(begin_in_other_thread(s, seg), LRVM_EEXIST);     /* open: held */
    ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    ck_assert_int_eq(lrvm_unmap(s, seg2), 0);
    ck_assert_int_eq(lrvm_unmap(s, seg), 0);
    seg = tu_map(s, "a", WORDS * 8);
    ck_assert_int_eq(begin(s, 1, (void *[]){ seg }, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, &seg[1], 8), 0);
    seg[1] = 9;
    ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    ck_assert_int_eq(lrvm_close(s), 0);                 /* flushes them */

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    seg = tu_map(s, "a", WORDS * 8);
    seg2 = tu_map(s, "b", WORDS * 8);
    ck_assert_uint_eq(seg[0], mark(1, 0) + 2);
    ck_assert_uint_eq(seg[1], 9);
    seg[0] -= 2;
    seg[1] = mark(1, 1);
    ck_assert_int_eq(first_bad_word(seg, 1, WORDS), -1);
    ck_assert_uint_eq(seg2[0], 5);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Word I of SEG (the segment "a" of S) made I + 1 in a transaction of
 * BEGIN's kind, committed without a flush. */
static int commit_word(lrvm_t *s, begin_fn *begin, uint64_t *seg, int i)
{
    void *base = seg;
    lrvm_tx_t *tx;
    int rc = begin(s, 1, &base, &tx);
    if (rc == 0 && (rc = lrvm_set_range(tx, &seg[i], 8)) == 0) {
        seg[i] = (uint64_t)i + 1;
        rc = lrvm_commit(tx, LRVM_NO_FLUSH);
    }
    return rc;
}

/* After a reopen, words 0 to N - 1 of segment "a" hold 1 to N. */
static void check_words(int n)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8);
    for (int i = 0; i < n; i++)
        ck_assert_uint_eq(seg[i], (uint64_t)i + 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}

/* Until another thread sets FLAG. */
static void wait_for(_Atomic int *flag)
{
    while (!atomic_load(flag))
        sched_yield();
}

/* The owner's steady state takes no store lock: with the lock held by
 * the test, a thread whose transaction is parked begins it again,
 * declares, stores and commits without a flush, over and over. Loop:
 * begun alone (0), shared (1: the debug build gives shared transactions
 * no owner, track_explicit.c I3). */
struct lockless {
    lrvm_t          *s;
    uint64_t        *seg;
    begin_fn        *begin;
    struct tu_steady st;
};

static void *lockless_run(void *arg)
{
    struct lockless *l = arg;
    for (int i = 0; i <= 100; i++) {
        int rc = commit_word(l->s, l->begin, l->seg, i);
        if (rc != 0) {
            atomic_store(&l->st.rc, rc);
            break;
        }
        if (i == 0) {                       /* the first commit takes the lock */
            atomic_store(&l->st.ready, 1);
            wait_for(&l->st.go);
        }
        if (i > 0)
            atomic_fetch_add(&l->st.done, 1);
    }
    return NULL;
}

START_TEST(test_tx_owner_takes_no_lock)
{
    struct lockless l = { .s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0), .begin = begin_kind[_i] };
    l.seg = tu_map(l.s, "a", WORDS * 8);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, lockless_run, &l), 0);
    int done = tu_steady_under_lock(l.s, &l.st, 100, NULL, NULL);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(atomic_load(&l.st.rc), 0);
    ck_assert_int_eq(done, 100);                    /* all of them while the lock was held */
    ck_assert_int_eq(lrvm_close(l.s), 0);
    check_words(101);
}
END_TEST

/* A commit that found the log's tail shut, and so waited for the store
 * lock, tries the tail again once it holds the lock (tx.c, "Commits at
 * the log's tail"). The test holds the lock with the tail shut while a
 * thread commits without a flush, waits until that thread sleeps on the
 * lock, opens the tail and lets the lock go. A commit made under the lock
 * would shut the tail and move the buffer's taken part past its record;
 * one placed at the tail leaves it where it was. Loop: begun alone (0),
 * shared (1: release build only, as above). */
struct waiter {
    lrvm_t     *s;
    uint64_t   *seg;
    begin_fn   *begin;
    _Atomic int ready, go, rc, done;
};

static void *waiter_run(void *arg)
{
    struct waiter *w = arg;
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = commit_word(w->s, w->begin, w->seg, i);
        if (i == 0 && rc == 0) {            /* parked: the next begin is its owner's */
            atomic_store(&w->ready, 1);
            wait_for(&w->go);
        }
    }
    atomic_store(&w->rc, rc);
    atomic_store(&w->done, 1);
    return NULL;
}

/* Does a thread sleep on M? glibc marks a mutex that a thread waits on
 * with 2 before the thread sleeps. Elsewhere, give the thread a while. */
static void wait_for_sleeper(pthread_mutex_t *m, _Atomic int *done)
{
#ifdef __GLIBC__
    for (int ms = 0; ms < 10000 && !atomic_load(done); ms++) {
        if (__atomic_load_n(&m->__data.__lock, __ATOMIC_ACQUIRE) == 2)
            return;
        lrvm__pause_us(1000);
    }
#else
    (void)m;
    (void)done;
    lrvm__pause_us(200000);
#endif
}

START_TEST(test_tx_waiter_commits_at_tail)
{
    struct waiter w = { .s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0), .begin = begin_kind[_i] };
    w.seg = tu_map(w.s, "a", WORDS * 8);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, waiter_run, &w), 0);
    while (!atomic_load(&w.ready) && !atomic_load(&w.done))
        sched_yield();
    lrvm__lock(&w.s->mu, LRVM__RANK_STORE);
    lrvm__log_tail_shut(&w.s->log);
    size_t taken = w.s->log.lg_buf_used;
    atomic_store(&w.go, 1);
    wait_for_sleeper(&w.s->mu, &w.done);
    ck_assert_msg(!atomic_load(&w.done), "the commit did not wait for the lock");
    lrvm__tx_tail_open(w.s);
    lrvm__unlock(&w.s->mu);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(atomic_load(&w.rc), 0);
    lrvm__lock(&w.s->mu, LRVM__RANK_STORE);
    size_t now = w.s->log.lg_buf_used;
    lrvm__unlock(&w.s->mu);
    ck_assert_uint_eq(now, taken);          /* its record lies at the tail */
    ck_assert_int_eq(lrvm_close(w.s), 0);
    check_words(2);
}
END_TEST

/* The hooks' gate (tx.c): a shutter waits for the thread inside to
 * leave, and while it is shut no one gets in; the tail's opening opens
 * it again. The thread inside is the test's own, in the gate as a hook's
 * tail_commit would be, with the slot its transaction gave it. */
struct gated {
    lrvm_t     *s;
    uint64_t   *seg;
    _Atomic int inside, left, shut, tried, opened;
    int         in_shut, in_open, rc;
};

static void *gated_run(void *arg)
{
    struct gated *g = arg;
    void *base = g->seg;
    lrvm_tx_t *tx;
    int rc = lrvm_begin(g->s, 1, &base, &tx);      /* the thread's slot */
    int in = rc == 0 && lrvm__tx_gate_enter(g->s);
    atomic_store(&g->inside, 1);
    if (in) {
        lrvm__pause_us(50000);                      /* the shutter waits meanwhile */
        atomic_store(&g->left, 1);
        lrvm__tx_gate_leave(g->s);
    }
    wait_for(&g->shut);
    if ((g->in_shut = in && lrvm__tx_gate_enter(g->s)))
        lrvm__tx_gate_leave(g->s);
    atomic_store(&g->tried, 1);
    wait_for(&g->opened);
    if ((g->in_open = in && lrvm__tx_gate_enter(g->s)))
        lrvm__tx_gate_leave(g->s);
    g->rc = rc == 0 ? lrvm_commit(tx, 0) : rc;
    return NULL;
}

START_TEST(test_tx_gate_shut_waits_for_those_inside)
{
    struct gated g = { .s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0) };
    g.seg = tu_map(g.s, "a", WORDS * 8);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, gated_run, &g), 0);
    wait_for(&g.inside);
    lrvm__lock(&g.s->mu, LRVM__RANK_STORE);
    lrvm__tx_gate_shut(g.s);
    int left = atomic_load(&g.left);
    atomic_store(&g.shut, 1);
    wait_for(&g.tried);
    lrvm__tx_tail_open(g.s);
    lrvm__unlock(&g.s->mu);
    atomic_store(&g.opened, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(g.rc, 0);
    ck_assert_int_eq(left, 1);                      /* the shut waited for it */
    ck_assert_int_eq(g.in_shut, 0);                 /* shut, it let no one in */
    ck_assert_int_eq(g.in_open, 1);
    ck_assert_int_eq(lrvm_close(g.s), 0);
}
END_TEST

/* Pointers that never were handles: into a segment, and into a live
 * handle but not at its start. They are not read as handles, and the
 * live one is left as it was. */
START_TEST(test_tx_pointers_that_are_not_handles)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8);
    void *base = seg;
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    for (size_t k = 0; k < 16; k++)
        seg[k] = ~(uint64_t)0;                  /* a handle's look: no NULL in it */
    lrvm_tx_t *fakes[] = { (lrvm_tx_t *)(void *)seg, (lrvm_tx_t *)(void *)((char *)tx + 8),
                           (lrvm_tx_t *)(void *)((char *)tx + 1) };
    for (size_t i = 0; i < sizeof fakes / sizeof fakes[0]; i++) {
        ck_assert_int_eq(lrvm_set_range(fakes[i], seg, 8), LRVM_ENOENT);
        ck_assert_int_eq(lrvm_commit(fakes[i], 0), LRVM_ENOENT);
        ck_assert_int_eq(lrvm_abort(fakes[i]), LRVM_ENOENT);
    }
    ck_assert_int_eq(lrvm_set_range(tx, &seg[20], 8), 0);
    seg[20] = 20;
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    seg = tu_map(s, "a", WORDS * 8);
    ck_assert_uint_eq(seg[20], 20);
    ck_assert_uint_eq(seg[0], 0);               /* never declared */
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ shared transactions */

/* A segment is held by one lrvm_begin transaction, or by shared ones. */
START_TEST(test_tx_shared_holders)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    void *a = tu_map(s, "a", WORDS * 8), *b = tu_map(s, "b", WORDS * 8);
    void *ab[2] = { a, b }, *aa[2] = { a, a };
    lrvm_tx_t *t1, *t2, *t3, *t4;
    ck_assert_int_eq(lrvm_begin_shared(NULL, 1, &a, &t1), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_begin_shared(s, 0, &a, &t1), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_begin_shared(s, 2, aa, &t1), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, (void *[]){ (char *)a + 8 }, &t1), LRVM_ENOENT);

    ck_assert_int_eq(lrvm_begin(s, 1, &a, &t1), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 2, ab, &t2), LRVM_EEXIST);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &b, &t2), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, &b, &t3), LRVM_EEXIST);
    ck_assert_int_eq(lrvm_commit(t1, 0), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 2, ab, &t1), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &a, &t3), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, &a, &t4), LRVM_EEXIST);
    ck_assert_int_eq(lrvm_unmap(s, a), LRVM_EBUSY);
    ck_assert_int_eq(lrvm_commit(t1, 0), 0);
    ck_assert_int_eq(lrvm_abort(t3), 0);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);          /* the last holder of a ended */
    ck_assert_int_eq(lrvm_unmap(s, b), LRVM_EBUSY); /* t2 holds b still */
    ck_assert_int_eq(lrvm_abort(t2), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, &b, &t3), 0);
    ck_assert_int_eq(lrvm_commit(t3, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    /* The automatic trackers serve no shared transaction yet. */
    s = tu_open_mode(LRVM_TRACK_AUTO, 0);
    a = tu_map(s, "a", WORDS * 8);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &a, &t1), LRVM_EMODE);
    ck_assert_int_eq(lrvm_begin(s, 1, &a, &t1), 0);
    ck_assert_int_eq(lrvm_commit(t1, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Two shared transactions change words of the same page: an abort puts
 * back only its own, a commit logs only its own. Overlapping declarations
 * fail in the debug build (lrvm.h C15); the release build does not look. */
START_TEST(test_tx_shared_own_bytes)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8);
    void *base = seg;
    lrvm_tx_t *t1, *t2;
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &t1), 0);
    ck_assert_int_eq(lrvm_set_range(t1, &seg[0], 16), 0);
    seg[0] = seg[1] = 1;
    ck_assert_int_eq(lrvm_commit(t1, 0), 0);

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &t1), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &t2), 0);
    ck_assert_int_eq(lrvm_set_range(t1, &seg[0], 8), 0);
    ck_assert_int_eq(lrvm_set_range(t2, &seg[1], 8), 0);
    seg[0] = 10;
    seg[1] = 20;
    ck_assert_int_eq(lrvm_set_range(t2, &seg[2], 8), 0);
    seg[2] = 30;
#ifdef LRVM_DEBUG
    ck_assert_int_eq(lrvm_set_range(t1, &seg[1], 1), LRVM_EEXIST);
    ck_assert_int_eq(lrvm_set_range(t2, (char *)&seg[0] + 7, 2), LRVM_EEXIST);
#else
    ck_assert_int_eq(lrvm_set_range(t1, &seg[3], 1), 0);
#endif
    ck_assert_int_eq(lrvm_abort(t1), 0);
    ck_assert_uint_eq(seg[0], 1);                   /* t1's own word back */
    ck_assert_uint_eq(seg[1], 20);                  /* t2's stays */
    seg[0] = 99;                                    /* declared by no one: not logged */
    ck_assert_int_eq(lrvm_commit(t2, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    seg = tu_map(s, "a", WORDS * 8);
    ck_assert_uint_eq(seg[0], 1);
    ck_assert_uint_eq(seg[1], 20);
    ck_assert_uint_eq(seg[2], 30);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A heap's segment goes from shared transactions, which allocate for
 * themselves (check_heap has the rest), to an lrvm_begin one and back;
 * while it is held by one kind, the other cannot begin on it. */
START_TEST(test_tx_shared_heap_then_exclusive)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_heap_open(s, "heap", (size_t)1 << 20, &h), 0);
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx, *other;
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    ck_assert_ptr_nonnull(lrvm_malloc(h, 64));
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &other), LRVM_EEXIST);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    void *p = lrvm_malloc(h, 64);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Handles go back to a pool with their arrays; a transaction that
 * declared many ranges and many bytes leaves them too big to keep. The
 * next transactions on that memory must start empty. */
static unsigned char zero_byte(size_t i)
{
    (void)i;
    return 0;
}

/* What the committed transaction below leaves: 10,000 declared words. */
static unsigned char committed_byte(size_t i)
{
    return i < 160000 && i % 16 < 8 ? 0xa5 : 0;
}

START_TEST(test_tx_pooled_handle_after_a_large_transaction)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    size_t size = 4u << 20;
    unsigned char *a = tu_map(s, "a", size);
    void *base = a;
    lrvm_tx_t *tx;

    /* 10,000 small ranges and one 3 MiB range, aborted. */
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    for (size_t i = 0; i < 10000; i++) {
        ck_assert_int_eq(lrvm_set_range(tx, a + i * 16, 8), 0);
        memset(a + i * 16, 0xa5, 8);
    }
    ck_assert_int_eq(lrvm_set_range(tx, a + (1u << 20), 3u << 20), 0);
    memset(a + (1u << 20), 0x5a, 3u << 20);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(first_bad_byte(a, size, zero_byte), -1);

    /* The same again, committed; then a small transaction that aborts
     * must restore only its own range, from its own before-image. */
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    for (size_t i = 0; i < 10000; i++) {
        ck_assert_int_eq(lrvm_set_range(tx, a + i * 16, 8), 0);
        memset(a + i * 16, 0xa5, 8);
    }
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a + 16, 8), 0);
    memset(a + 16, 0x11, 8);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);            /* nothing declared */
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", size);
    ck_assert_int_eq(first_bad_byte(a, size, committed_byte), -1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A child of fork whose transaction, begun before the fork by the thread
 * that forked, is committed by a thread the child started: the claim's
 * membarrier must work in the child too. */
struct fork_arg {
    lrvm_tx_t *tx;
    int        rc;
};

static void *commit_run(void *arg)
{
    struct fork_arg *f = arg;
    f->rc = lrvm_commit(f->tx, 0);
    return NULL;
}

static void child_forks_and_commits(void *arg)
{
    (void)arg;
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8);
    void *base = seg;
    lrvm_tx_t *tx;
    if (lrvm_begin(s, 1, &base, &tx) != 0 || lrvm_set_range(tx, seg, 8) != 0)
        _exit(2);
    seg[0] = 42;
    pid_t pid = fork();
    if (pid == 0) {
        if (lrvm_set_range(tx, &seg[1], 8) != 0)      /* still its owner */
            _exit(3);
        seg[1] = 43;
        struct fork_arg f = { tx, -1 };
        pthread_t th;
        if (pthread_create(&th, NULL, commit_run, &f) != 0)
            _exit(4);
        pthread_join(th, NULL);
        _exit(f.rc == 0 && lrvm_set_range(tx, &seg[2], 8) == LRVM_ENOENT ? 0 : 5);
    }
    _exit(pid > 0 && tu_wait(pid) == 0 ? 0 : 6);
}

START_TEST(test_tx_forked_child_commits_from_a_new_thread)
{
    ck_assert_int_eq(tu_in_child(child_forks_and_commits, NULL), 0);
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    uint64_t *seg = tu_map(s, "a", WORDS * 8);
    ck_assert_uint_eq(seg[0], 42);
    ck_assert_uint_eq(seg[1], 43);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tx");
    TCase *tc = tu_tcase("tx", 120);
    tcase_add_test(tc, test_tx_commit_from_another_thread_holds_each_declared_range);
    tcase_add_test(tc, test_tx_abort_from_another_thread_while_owner_declares);
    tcase_add_test(tc, test_tx_close_aborts_a_transaction_of_another_thread);
    tcase_add_test(tc, test_tx_heap_allocates_inside_another_threads_transaction);
    tcase_add_test(tc, test_tx_finished_and_null_handles);
    tcase_add_loop_test(tc, test_tx_committed_by_owner_is_over, 0, 2);
#ifdef LRVM_DEBUG
    tcase_add_loop_test(tc, test_tx_owner_takes_no_lock, 0, 1);
    tcase_add_loop_test(tc, test_tx_waiter_commits_at_tail, 0, 1);
#else
    tcase_add_loop_test(tc, test_tx_owner_takes_no_lock, 0, 2);
    tcase_add_loop_test(tc, test_tx_waiter_commits_at_tail, 0, 2);
#endif
    tcase_add_test(tc, test_tx_gate_shut_waits_for_those_inside);
    tcase_add_test(tc, test_tx_pointers_that_are_not_handles);
    tcase_add_test(tc, test_tx_pooled_handle_after_a_large_transaction);
    tcase_add_test(tc, test_tx_forked_child_commits_from_a_new_thread);
    tcase_add_test(tc, test_tx_shared_holders);
    tcase_add_test(tc, test_tx_shared_own_bytes);
    tcase_add_test(tc, test_tx_shared_heap_then_exclusive);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
