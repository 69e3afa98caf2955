/*
 * check_heap.c -- the persistent heap: allocation, free with merging,
 * realloc and calloc, the root, the fixed address across runs (and a taken
 * one), transactions that commit or abort, the ambient epoch, explicit
 * mode's need for a transaction, segments that are not heaps, a layout
 * cut short by a crash, creation and growth cut off at each call, and
 * processes killed in the middle of random
 * allocations or stopped by power cuts at a sync, after which the heap
 * must be consistent, hold exactly the committed allocations (every
 * acknowledged one) and leak nothing. Both tracking modes; and shared
 * transactions on one heap (explicit mode): what each call does at once
 * and at the caller's commit or abort, blocks a crash left taken freed at
 * open, the small blocks they keep for their next allocations (reused
 * without a transaction of the heap's, bounded, freed at open and after
 * a kill), and the kills and power cuts with four threads at once.
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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEAP_SIZE ((size_t)1 << 20)
/* The payload of the one free block of a new heap of HEAP_SIZE: the heap
 * less its 4 KiB header, the first block's offset, the epilogue and the
 * block header. */
#define WHOLE (HEAP_SIZE - 4096 - 8 - 8 - 8)

static int tracking;

/* The store of the test, in this test's mode, never truncated by a
 * commit. */
static lrvm_t *open_store(void)
{
    return tu_open_mode(tracking, (size_t)1 << 30);
}

static lrvm_heap_t *open_heap(lrvm_t *s)
{
    lrvm_heap_t *h;
    int rc = lrvm_heap_open(s, "heap", HEAP_SIZE, &h);
    ck_assert_msg(rc == 0, "lrvm_heap_open: %s", lrvm_strerror(rc));
    ck_assert_int_eq(lrvm__heap_check(h), 0);
    return h;
}

static lrvm_tx_t *begin_heap(lrvm_t *s, lrvm_heap_t *h)
{
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, &base, &tx), 0);
    return tx;
}

/* A store into the heap, declared in explicit mode. */
static void put(lrvm_tx_t *tx, void *p, const void *src, size_t n)
{
    if (tracking == LRVM_TRACK_EXPLICIT)
        ck_assert_int_eq(lrvm_set_range(tx, p, n), 0);
    memcpy(p, src, n);
}

static uint64_t free_bytes(lrvm_heap_t *h)
{
    uint64_t used, fr;
    ck_assert_int_eq(lrvm__heap_check(h), 0);
    lrvm__heap_usage(h, &used, &fr);
    return fr;
}

/* ------------------------------------------------------------ basics */

static void alloc_persists(void)
{
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    void *base = lrvm_heap_base(h);
    ck_assert_ptr_nonnull(base);
    ck_assert_ptr_null(lrvm_heap_root(h));

    lrvm_tx_t *tx = begin_heap(s, h);
    char *p = lrvm_malloc(h, 100);
    uint64_t *q = lrvm_calloc(h, 10, 8);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq((uintptr_t)p % 16, 0);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(q[i], 0);
    put(tx, p, "kept across runs", 17);
    put(tx, &q[3], &(uint64_t){ (uintptr_t)p }, 8);     /* a raw pointer, stored */
    ck_assert_int_eq(lrvm_heap_set_root(h, q), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_store();
    h = open_heap(s);
    ck_assert_ptr_eq(lrvm_heap_base(h), base);          /* the fixed address */
    uint64_t *root = lrvm_heap_root(h);
    ck_assert_ptr_eq(root, q);
    ck_assert_str_eq((char *)(uintptr_t)root[3], "kept across runs");
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_heap_alloc_persists_at_fixed_address)
{
    tracking = _i;
    alloc_persists();
}
END_TEST

/* Freed neighbours merge: after any order of frees the heap is one free
 * block again, as big as at the start. */
START_TEST(test_heap_free_merges_neighbours)
{
    tracking = _i;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);
    static const int orders[][3] = { { 1, 0, 2 }, { 0, 1, 2 }, { 2, 1, 0 }, { 0, 2, 1 } };
    for (size_t k = 0; k < sizeof orders / sizeof orders[0]; k++) {
        lrvm_tx_t *tx = begin_heap(s, h);
        void *p[3];
        for (int i = 0; i < 3; i++)
            ck_assert_ptr_nonnull(p[i] = lrvm_malloc(h, 1000 + 100 * (size_t)i));
        for (int i = 0; i < 3; i++) {
            lrvm_free(h, p[orders[k][i]]);
            ck_assert_int_eq(lrvm__heap_check(h), 0);
        }
        ck_assert_uint_eq(free_bytes(h), WHOLE + 8);
        ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    }
    lrvm_tx_t *tx = begin_heap(s, h);
    ck_assert_ptr_null(lrvm_malloc(h, WHOLE + 1));
    ck_assert_int_eq(lrvm_last_error(), LRVM_ENOMEM);
    void *all = lrvm_malloc(h, WHOLE);
    ck_assert_ptr_nonnull(all);
    ck_assert_ptr_null(lrvm_malloc(h, 1));
    lrvm_free(h, all);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_heap_realloc_calloc_and_bad_pointers)
{
    tracking = _i;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    lrvm_tx_t *tx = begin_heap(s, h);
    char *p = lrvm_realloc(h, NULL, 40);                /* realloc(NULL) is malloc */
    ck_assert_ptr_nonnull(p);
    put(tx, p, "0123456789abcdefghijklmnopqrstuvwxyzABC", 40);
    ck_assert_ptr_eq(lrvm_realloc(h, p, 20), p);        /* shrinks in place */
    char *r = lrvm_realloc(h, p, 5000);
    ck_assert_ptr_nonnull(r);
    ck_assert_mem_eq(r, "0123456789abcdefghijklmnopqrstuvwxyzABC", 40);
    ck_assert_ptr_null(lrvm_realloc(h, r, 0));          /* frees */
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);

    char *g = lrvm_malloc(h, 64);
    put(tx, g, "garbage garbage garbage garbage garbage garbage garbage garbage", 64);
    lrvm_free(h, g);
    unsigned char *z = lrvm_calloc(h, 8, 8);            /* the same block, zeroed */
    ck_assert_ptr_eq(z, g);
    for (int i = 0; i < 64; i++)
        ck_assert_uint_eq(z[i], 0);
    ck_assert_ptr_null(lrvm_calloc(h, SIZE_MAX / 2, 4));
    ck_assert_int_eq(lrvm_last_error(), LRVM_ENOMEM);

    /* A pointer that is no block: refused, and the heap unharmed. */
    lrvm_free(h, z + 8);
    ck_assert_int_eq(lrvm_last_error(), LRVM_EINVAL);
    int local;
    lrvm_free(h, &local);
    ck_assert_int_eq(lrvm_heap_set_root(h, &local), LRVM_EINVAL);
    ck_assert_ptr_null(lrvm_realloc(h, &local, 10));
    ck_assert_int_eq(lrvm__heap_check(h), 0);
    lrvm_free(h, z);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* An aborted transaction takes its allocations back with it. */
START_TEST(test_heap_abort_takes_allocations_back)
{
    tracking = _i;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    lrvm_tx_t *tx = begin_heap(s, h);
    void *keep = lrvm_malloc(h, 300);
    ck_assert_int_eq(lrvm_heap_set_root(h, keep), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    uint64_t before = free_bytes(h);

    tx = begin_heap(s, h);
    for (int i = 0; i < 50; i++)
        ck_assert_ptr_nonnull(lrvm_malloc(h, 10 + 37 * (size_t)i));
    lrvm_free(h, keep);
    ck_assert_int_eq(lrvm_heap_set_root(h, NULL), 0);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_uint_eq(free_bytes(h), before);
    ck_assert_ptr_eq(lrvm_heap_root(h), keep);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store();
    h = open_heap(s);
    ck_assert_uint_eq(free_bytes(h), before);
    ck_assert_ptr_eq(lrvm_heap_root(h), keep);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------------------ shared */

/* A heap call made from another thread: which, on what, and its error. */
struct other_call {
    lrvm_t      *s;
    lrvm_heap_t *h;
    void        *p;             /* free: the block; malloc: NULL */
    int          in_tx;         /* make it inside a shared transaction of its own */
    int          err;
};

static void *other_call_run(void *arg)
{
    struct other_call *c = arg;
    void *base = lrvm_heap_base(c->h);
    lrvm_tx_t *tx = NULL;
    if (c->in_tx && lrvm_begin_shared(c->s, 1, &base, &tx) != 0)
        return NULL;
    if (c->p != NULL) {
        lrvm_free(c->h, c->p);
    } else if (lrvm_malloc(c->h, 48) == NULL) {
        c->err = lrvm_last_error();
        return NULL;
    }
    c->err = c->p != NULL ? lrvm_last_error() : 0;
    if (tx != NULL)
        (void)lrvm_abort(tx);
    return NULL;
}

static int other_thread_call(lrvm_t *s, lrvm_heap_t *h, void *p, int in_tx)
{
    struct other_call c = { s, h, p, in_tx, 1 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, other_call_run, &c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    return c.err;
}

static uint64_t used_blocks(lrvm_heap_t *h)
{
    uint64_t used, fr;
    ck_assert_int_eq(lrvm__heap_check(h), 0);
    lrvm__heap_usage(h, &used, &fr);
    return used;
}

static int pending(const void *p)
{
    return (((const uint64_t *)p)[-1] & 4) != 0;
}

/* In shared transactions: malloc takes a block at once, PENDING until the
 * caller ends (its commit keeps it, its abort frees it); free waits for
 * the commit (its abort forgets it), but for a block the transaction took
 * itself; a thread with no shared transaction of its own on the heap gets
 * LRVM_EBUSY, and another's PENDING block is no block of its to free. */
START_TEST(test_heap_shared_transactions)
{
    tracking = LRVM_TRACK_EXPLICIT;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    lrvm_last_error();                      /* cleared */

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    char *p = lrvm_malloc(h, 64);
    ck_assert_ptr_nonnull(p);
    ck_assert(pending(p));
    ck_assert_uint_eq(used_blocks(h), 1);
    put(tx, p, "the caller's", 13);
    char *q = lrvm_malloc(h, 32);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_eq(used_blocks(h), 2);
    lrvm_free(h, q);                        /* its own: freed at once */
    ck_assert_int_eq(lrvm_last_error(), 0);
    ck_assert_uint_eq(used_blocks(h), 1);
    ck_assert_int_eq(other_thread_call(s, h, NULL, 0), LRVM_EBUSY);
    ck_assert_int_eq(other_thread_call(s, h, NULL, 1), 0);     /* its own, aborted */
    ck_assert_int_eq(other_thread_call(s, h, p, 1), LRVM_EINVAL);
    ck_assert_uint_eq(used_blocks(h), 1);
    ck_assert_int_eq(lrvm_heap_set_root(h, p), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert(!pending(p));
    ck_assert_uint_eq(used_blocks(h), 1);

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    lrvm_free(h, p);                        /* at the commit */
    ck_assert_int_eq(lrvm_last_error(), 0);
    ck_assert_str_eq(p, "the caller's");
    lrvm_free(h, p);
    ck_assert_int_eq(lrvm_last_error(), LRVM_EINVAL);
    ck_assert_ptr_nonnull(lrvm_calloc(h, 10, 10));
    ck_assert_ptr_nonnull(lrvm_realloc(h, lrvm_malloc(h, 20), 2000));
    ck_assert_int_eq(lrvm_heap_set_root(h, NULL), 0);
    ck_assert_uint_eq(used_blocks(h), 3);
    ck_assert_int_eq(lrvm_abort(tx), 0);    /* takes back both kinds */
    ck_assert_uint_eq(used_blocks(h), 1);
    ck_assert_ptr_eq(lrvm_heap_root(h), p);
    ck_assert_str_eq(p, "the caller's");

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    lrvm_free(h, p);
    ck_assert_int_eq(lrvm_heap_set_root(h, NULL), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(used_blocks(h), 0);
    /* Committed, it is over, though it keeps the segment for this thread's
     * next lrvm_begin_shared (tx.c): a call outside a transaction is one
     * (explicit mode: LRVM_EMODE). */
    ck_assert_ptr_null(lrvm_malloc(h, 16));
    ck_assert_int_eq(lrvm_last_error(), LRVM_EMODE);
    ck_assert_uint_eq(used_blocks(h), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store();
    h = open_heap(s);
    ck_assert_uint_eq(used_blocks(h), 0);
    ck_assert_ptr_null(lrvm_heap_root(h));
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A heap too full for a shared transaction's request gives the cache's
 * blocks back first, for a small request and a large one. */
START_TEST(test_heap_shared_cache_emptied_when_full)
{
    tracking = LRVM_TRACK_EXPLICIT;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    const size_t whole = WHOLE + 8, small = 32 * 48;    /* block bytes */

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    ck_assert_ptr_nonnull(lrvm_malloc(h, 40));          /* takes 32 blocks of 48 */
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    void *q = lrvm_malloc(h, whole - small - 8);        /* the rest, exactly */
    ck_assert_ptr_nonnull(q);
    void *r = lrvm_malloc(h, 100);                      /* only the cached bytes are left */
    ck_assert_msg(r != NULL, "lrvm_malloc(100): %s", lrvm_strerror(lrvm_last_error()));
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(used_blocks(h), 2);

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    lrvm_free(h, q);
    lrvm_free(h, r);                                    /* to the cache */
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    void *big = lrvm_malloc(h, whole - 8 - 224);        /* more than is free outside it */
    ck_assert_msg(big != NULL, "lrvm_malloc(big): %s", lrvm_strerror(lrvm_last_error()));
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(used_blocks(h), 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Run WORK(s, h) in a child on the test's store and heap (it _exits 1
 * when a call fails), then kill it; the heap's free bytes before. */
static uint64_t heap_killed_after(void (*work)(lrvm_t *s, lrvm_heap_t *h))
{
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    uint64_t whole = free_bytes(h);
    ck_assert_int_eq(lrvm_close(s), 0);
    pid_t pid = fork();
    if (pid == 0) {
        s = open_store();
        work(s, open_heap(s));
        raise(SIGKILL);
    }
    int st = tu_wait(pid);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    return whole;
}

static void take_two_and_flush(lrvm_t *s, lrvm_heap_t *h)
{
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    if (lrvm_begin_shared(s, 1, &base, &tx) != 0 || lrvm_malloc(h, 500) == NULL ||
        lrvm_malloc(h, 70) == NULL || lrvm_flush(s) != 0)
        _exit(1);
}

/* A block a crash left PENDING (its transaction never committed, the
 * heap's own transaction that took it did) is freed by lrvm_heap_open. */
START_TEST(test_heap_shared_pending_freed_at_open)
{
    tracking = LRVM_TRACK_EXPLICIT;
    uint64_t whole = heap_killed_after(take_two_and_flush);
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    ck_assert_uint_eq(used_blocks(h), 0);
    ck_assert_uint_eq(free_bytes(h), whole);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The records the log holds so far. */
static uint64_t log_records(lrvm_t *s)
{
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    return st.log_records;
}

static unsigned count_pending(void *const *p, unsigned n)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++)
        k += pending(p[i]);
    return k;
}

/* Small blocks that shared transactions free, or take and abort, stay
 * USED and PENDING in a cache (the transaction's own, then the heap's),
 * and the next lrvm_malloc of their size takes one back with no
 * transaction of the heap's own; the usage counts them free. A class past
 * its bound in both gives half back to the heap. With no shared
 * transaction, a cached block is no block of the program's to free
 * (LRVM_EINVAL), and the next open frees them all. */
START_TEST(test_heap_shared_cache)
{
    tracking = LRVM_TRACK_EXPLICIT;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    char *p = lrvm_malloc(h, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    lrvm_free(h, p);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert(pending(p));                  /* the commit made it the cache's */
    ck_assert_uint_eq(used_blocks(h), 0);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);

    uint64_t r0 = log_records(s);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    ck_assert_ptr_eq(lrvm_malloc(h, 100), p);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(log_records(s), r0 + 1);  /* the caller's record alone */
    ck_assert(!pending(p));
    ck_assert_uint_eq(used_blocks(h), 1);

    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    char *q = lrvm_malloc(h, 100);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(lrvm_abort(tx), 0);    /* back to the cache */
    ck_assert(pending(q));
    ck_assert_uint_eq(used_blocks(h), 1);
    r0 = log_records(s);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    ck_assert_ptr_eq(lrvm_malloc(h, 100), q);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_uint_eq(log_records(s), r0);

    enum { MANY = 256 };             /* past a class of its own cache and of the heap's */
    void *b[MANY];
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    for (unsigned i = 0; i < MANY; i++)
        ck_assert_ptr_nonnull(b[i] = lrvm_malloc(h, 40));
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(count_pending(b, MANY), 0);
    ck_assert_int_eq(lrvm_begin_shared(s, 1, &base, &tx), 0);
    for (unsigned i = 0; i < MANY; i++)
        lrvm_free(h, b[i]);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    unsigned kept = count_pending(b, MANY);
    ck_assert_msg(kept > 0 && kept < MANY, "%u of %u freed blocks kept", kept, MANY);
    ck_assert_uint_eq(used_blocks(h), 1);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8 - 112);

    tx = begin_heap(s, h);
    lrvm_free(h, q);
    ck_assert_int_eq(lrvm_last_error(), LRVM_EINVAL);
    ck_assert(pending(q));
    lrvm_free(h, p);                        /* the program's: freed */
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(used_blocks(h), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_store();
    h = open_heap(s);
    ck_assert_uint_eq(used_blocks(h), 0);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The owner's steady state on a shared heap takes no store lock: with
 * the lock held by the test, a thread whose shared transaction is parked
 * begins it again, frees its last block, takes another from its own
 * cache, declares and stores into it, and commits without a flush, over
 * and over; each commit's records hold its blocks' headers (after a
 * reopen the last block alone is used). Once the test shuts the hooks'
 * gate, as a call that changes the heap's words does, the next such
 * commit cannot go to the log's tail: it waits for the lock. Not in the
 * debug build, which gives shared transactions no owner. */
#ifndef LRVM_DEBUG
struct heap_lockless {
    lrvm_t          *s;
    lrvm_heap_t     *h;
    struct tu_steady st;
    int              done_shut;
};

static void *heap_lockless_run(void *arg)
{
    struct heap_lockless *l = arg;
    void *base = lrvm_heap_base(l->h);
    uint64_t *p = NULL;
    for (int i = 0; i <= 101; i++) {
        lrvm_tx_t *tx;
        int rc = lrvm_begin_shared(l->s, 1, &base, &tx);
        if (rc == 0) {
            lrvm_free(l->h, p);
            rc = lrvm_last_error();
        }
        if (rc == 0 && (p = lrvm_malloc(l->h, 64)) == NULL)
            rc = lrvm_last_error();
        if (rc == 0 && (rc = lrvm_set_range(tx, p, 8)) == 0) {
            *p = (uint64_t)i;
            rc = lrvm_commit(tx, LRVM_NO_FLUSH);
        }
        if (rc != 0) {
            atomic_store(&l->st.rc, rc);
            break;
        }
        if (i == 0)                         /* the first calls take the lock */
            atomic_store(&l->st.ready, 1);
        else
            atomic_fetch_add(&l->st.done, 1);
        while ((i == 0 && atomic_load(&l->st.go) < 1) || (i == 100 && atomic_load(&l->st.go) < 2))
            sched_yield();
    }
    return NULL;
}

/* With the lock still held: shut the gate, let the thread make its last
 * round, and count what it did meanwhile. */
static void shut_and_wait(void *arg)
{
    struct heap_lockless *l = arg;
    lrvm__tx_gate_shut(l->s);
    atomic_store(&l->st.go, 2);
    lrvm__pause_us(200000);
    l->done_shut = atomic_load(&l->st.done);
}

START_TEST(test_heap_owner_takes_no_lock)
{
    tracking = LRVM_TRACK_EXPLICIT;
    struct heap_lockless l = { .s = open_store() };
    l.h = open_heap(l.s);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, heap_lockless_run, &l), 0);
    int done = tu_steady_under_lock(l.s, &l.st, 100, shut_and_wait, &l);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(atomic_load(&l.st.rc), 0);
    ck_assert_int_eq(done, 100);            /* all of them while the lock was held */
    ck_assert_int_eq(l.done_shut, 100);     /* not the one after the gate shut */
    ck_assert_int_eq(atomic_load(&l.st.done), 101);
    ck_assert_int_eq(lrvm_close(l.s), 0);

    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    ck_assert_uint_eq(used_blocks(h), 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST
#endif

/* Blocks taken eight at a time, freed back into the cache by a commit,
 * some taken from it again by the next: KEEP, the root, names those. */
static void cache_then_taken(lrvm_t *s, lrvm_heap_t *h)
{
    void *base = lrvm_heap_base(h), *b[20];
    lrvm_tx_t *tx;
    char **keep;
    if (lrvm_begin_shared(s, 1, &base, &tx) != 0 ||
        (keep = lrvm_malloc(h, 3 * sizeof *keep)) == NULL ||
        lrvm_heap_set_root(h, keep) != 0 || lrvm_commit(tx, 0) != 0)
        _exit(1);
    if (lrvm_begin_shared(s, 1, &base, &tx) != 0)
        _exit(1);
    for (int i = 0; i < 20; i++)
        if ((b[i] = lrvm_malloc(h, 64)) == NULL)
            _exit(1);
    if (lrvm_commit(tx, 0) != 0 || lrvm_begin_shared(s, 1, &base, &tx) != 0)
        _exit(1);
    for (int i = 0; i < 20; i++)
        lrvm_free(h, b[i]);
    if (lrvm_last_error() != 0 || lrvm_commit(tx, 0) != 0 ||
        lrvm_begin_shared(s, 1, &base, &tx) != 0 ||
        lrvm_set_range(tx, keep, 3 * sizeof *keep) != 0)
        _exit(1);
    for (int i = 0; i < 3; i++) {
        if ((keep[i] = lrvm_malloc(h, 64)) == NULL || lrvm_set_range(tx, keep[i], 6) != 0)
            _exit(1);
        memcpy(keep[i], "kept", 5);
        keep[i][4] = (char)('0' + i);
    }
    if (lrvm_commit(tx, 0) != 0)
        _exit(1);
}

/* A process killed with blocks in the cache: the next open leaves exactly
 * the committed blocks, with their bytes. */
START_TEST(test_heap_shared_cache_killed)
{
    tracking = LRVM_TRACK_EXPLICIT;
    uint64_t whole = heap_killed_after(cache_then_taken);
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    ck_assert_uint_eq(used_blocks(h), 4);
    ck_assert_uint_eq(free_bytes(h), whole - 32 - 3 * 80);
    char **keep = lrvm_heap_root(h);
    ck_assert_ptr_nonnull(keep);
    for (int i = 0; i < 3; i++) {
        char want[6] = { 'k', 'e', 'p', 't', (char)('0' + i), 0 };
        ck_assert(!pending(keep[i]));
        ck_assert_str_eq(keep[i], want);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Explicit mode has no ambient epoch: a heap call needs a transaction
 * that holds the heap segment. */
/* A program that writes over a free block's links (a store after free)
 * gets LRVM_ECORRUPT from the calls that would follow or store through
 * them, not a crash inside lrvm, and those calls change nothing: put the
 * link back and the heap checks whole. Links out of the segment, inside
 * it but at no block, and in the middle of a bin's search. BIG, when not
 * 0, is a malloc whose search must follow the broken link. */
static void expect_corrupt_then_whole(lrvm_heap_t *h, uint64_t *link, uint64_t bad,
                                      char *left, char *right, size_t big)
{
    uint64_t good = *link;
    *link = bad;                            /* the program's stray store */
    if (big != 0) {
        ck_assert_ptr_null(lrvm_malloc(h, big));
        ck_assert_int_eq(lrvm_last_error(), LRVM_ECORRUPT);
    }
    lrvm_free(h, left);                     /* merges with the free block */
    ck_assert_int_eq(lrvm_last_error(), LRVM_ECORRUPT);
    lrvm_free(h, right);
    ck_assert_int_eq(lrvm_last_error(), LRVM_ECORRUPT);
    *link = good;
    ck_assert_int_eq(lrvm__heap_check(h), 0);
}

START_TEST(test_heap_overwritten_links_give_ecorrupt)
{
    tracking = _i;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    lrvm_tx_t *tx = begin_heap(s, h);
    /* Blocks of 608 bytes: a bin of their own (513-1024), where a request
     * for 900 walks past both free ones, first FIRST, then MID, whose
     * links are broken. */
    char *left = lrvm_malloc(h, 600), *mid = lrvm_malloc(h, 600), *right = lrvm_malloc(h, 600);
    char *sep = lrvm_malloc(h, 100), *first = lrvm_malloc(h, 600), *tail = lrvm_malloc(h, 100);
    ck_assert_ptr_nonnull(left);
    ck_assert_ptr_nonnull(mid);
    ck_assert_ptr_nonnull(right);
    ck_assert_ptr_nonnull(sep);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(tail);
    lrvm_free(h, mid);
    lrvm_free(h, first);                    /* first in the bin, MID after it */
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);

    unsigned char *base = lrvm_heap_base(h);
    uint64_t *next = (uint64_t *)(void *)mid, *prev = next + 1;
    uint64_t in_heap_no_block = (uint64_t)(mid - (char *)base) + 3 * 16;
    tx = begin_heap(s, h);
    expect_corrupt_then_whole(h, next, 0x4141414141414141ull, left, right, 900);
    expect_corrupt_then_whole(h, next, in_heap_no_block, left, right, 900);
    expect_corrupt_then_whole(h, prev, 0x4141414141414141ull, left, right, 0);
    expect_corrupt_then_whole(h, prev, in_heap_no_block, left, right, 0);
    /* Nothing was taken or given back: four blocks are in use, and the
     * same frees now succeed. */
    uint64_t used, fr;
    lrvm__heap_usage(h, &used, &fr);
    ck_assert_uint_eq(used, 4);
    lrvm_free(h, left);
    lrvm_free(h, right);
    ck_assert_int_eq(lrvm__heap_check(h), 0);
    lrvm__heap_usage(h, &used, &fr);
    ck_assert_uint_eq(used, 2);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_heap_explicit_needs_transaction)
{
    tracking = LRVM_TRACK_EXPLICIT;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    ck_assert_ptr_null(lrvm_malloc(h, 10));
    ck_assert_int_eq(lrvm_last_error(), LRVM_EMODE);
    ck_assert_int_eq(lrvm_heap_set_root(h, NULL), LRVM_EMODE);
    /* A transaction on another segment does not do. */
    void *other = tu_map(s, "other", 4096);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, &other, &tx), 0);
    ck_assert_ptr_null(lrvm_malloc(h, 10));
    ck_assert_int_eq(lrvm_last_error(), LRVM_EMODE);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Auto mode: heap calls outside a transaction belong to the ambient
 * epoch, durable at lrvm_sync and gone at a crash before it. */
static void ambient_child(void *arg)
{
    int sync = *(int *)arg;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    char *p = lrvm_malloc(h, 32);
    if (p == NULL)
        _exit(2);
    strcpy(p, sync ? "synced" : "not synced");
    if (lrvm_heap_set_root(h, p) != 0 || (sync && lrvm_sync(s) != 0))
        _exit(3);
    kill(getpid(), SIGKILL);
}

START_TEST(test_heap_ambient_epoch)
{
    tracking = LRVM_TRACK_AUTO;
    int sync = 1;
    int st = tu_in_child(ambient_child, &sync);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status 0x%x", st);
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    ck_assert_str_eq(lrvm_heap_root(h), "synced");
    uint64_t before = free_bytes(h);
    ck_assert_int_eq(lrvm_close(s), 0);

    sync = 0;
    st = tu_in_child(ambient_child, &sync);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status 0x%x", st);
    s = open_store();
    h = open_heap(s);
    ck_assert_str_eq(lrvm_heap_root(h), "synced");
    ck_assert_uint_eq(free_bytes(h), before);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The heap's address is taken by another mapping: LRVM_EADDR, never a
 * heap moved elsewhere. */
static void taken_child(void *arg)
{
    void *at = arg;
    if (mmap(at, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != at)
        _exit(2);
    lrvm_t *s;
    lrvm_options_t o = { .tracking = tracking };
    lrvm_heap_t *h;
    if (lrvm_open(tu_dir, &o, &s) != 0)
        _exit(3);
    _exit(lrvm_heap_open(s, "heap", HEAP_SIZE, &h) == LRVM_EADDR ? 0 : 4);
}

START_TEST(test_heap_address_taken)
{
    tracking = LRVM_TRACK_AUTO;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    void *base = lrvm_heap_base(h);
    ck_assert_int_eq(lrvm_close(s), 0);
    int st = tu_in_child(taken_child, (char *)base + 8192);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
    s = open_store();
    h = open_heap(s);
    ck_assert_ptr_eq(lrvm_heap_base(h), base);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* A segment with data in it is no heap, and is left alone; a heap's
 * layout that a crash cut short (NAME.seg.new) is dropped and made again. */
START_TEST(test_heap_refuses_plain_segment_and_drops_half_layout)
{
    tracking = LRVM_TRACK_EXPLICIT;
    lrvm_t *s = open_store();
    char *plain = tu_map(s, "plain", 8192);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void **)&plain, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, plain + 100, 5), 0);
    memcpy(plain + 100, "data", 5);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_unmap(s, plain), 0);
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_heap_open(s, "plain", HEAP_SIZE, &h), LRVM_EINVAL);
    plain = tu_map(s, "plain", 8192);
    ck_assert_str_eq(plain + 100, "data");
    ck_assert_int_eq(lrvm_heap_open(s, "tiny", 4096, &h), LRVM_EINVAL);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "tiny.seg")), -1);
    ck_assert_int_eq(lrvm_close(s), 0);

    /* What a crash in the middle of a layout leaves: a .new file. */
    int fd = open(tu_path(tu_dir, "heap.seg.new"), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "LRVMHEAP garbage", 16), 16);
    close(fd);
    s = open_store();
    h = open_heap(s);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "heap.seg.new")), -1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------------------ growth */

#define SMALL_HEAP ((size_t)16 << 10)

/* Fill a new 16 KiB heap with 1000-byte blocks; how many fit. */
static int fill_small_heap(lrvm_t *s, lrvm_heap_t **hp)
{
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_heap_open(s, "heap", SMALL_HEAP, &h), 0);
    *hp = h;
    lrvm_tx_t *tx = begin_heap(s, h);
    int n = 0;
    unsigned char *p;
    while ((p = lrvm_malloc(h, 1000)) != NULL) {
        if (tracking == LRVM_TRACK_EXPLICIT)
            ck_assert_int_eq(lrvm_set_range(tx, p, 1000), 0);
        memset(p, n + 1, 1000);
        if (n == 0)
            ck_assert_int_eq(lrvm_heap_set_root(h, p), 0);
        n++;
    }
    ck_assert_int_eq(lrvm_last_error(), LRVM_ENOMEM);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    return n;
}

/* Opening a heap with a larger size grows it in place; a smaller size
 * changes nothing. */
START_TEST(test_heap_grows_in_place)
{
    tracking = _i;
    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    int n = fill_small_heap(s, &h);
    ck_assert_int_ge(n, 10);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_store();
    h = open_heap(s);                                   /* HEAP_SIZE: 1 MiB */
    unsigned char *first = lrvm_heap_root(h);
    ck_assert_uint_eq(first[999], 1);
    uint64_t grown = free_bytes(h);
    ck_assert_uint_gt(grown, HEAP_SIZE - SMALL_HEAP);
    lrvm_tx_t *tx = begin_heap(s, h);
    ck_assert_ptr_nonnull(lrvm_malloc(h, 500000));
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_store();
    ck_assert_int_eq(lrvm_heap_open(s, "heap", SMALL_HEAP, &h), 0);
    ck_assert_uint_eq(free_bytes(h), grown);            /* still 1 MiB */
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* What a child armed with a fault is given: the fault, and where to
 * report the calls it made (its ack). */
struct armed {
    const struct tu_fault *f;
    int                    fd;
};

/* Child: report the calls counted, and leave. */
static void report_calls(int fd)
{
    unsigned long calls = tu_fault_calls();
    if (write(fd, &calls, sizeof calls) != (ssize_t)sizeof calls)
        _exit(5);
    _exit(0);
}

/* Run CHILD armed with F; its wait status. *REPORTED is what it reported,
 * and *GOT whether it did. */
static int run_armed(void (*child)(void *), const struct tu_fault *f, unsigned long *reported,
                     int *got)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct armed a = { f, p[1] };
    int st = tu_in_child(child, &a);
    close(p[1]);
    *got = read(p[0], reported, sizeof *reported) == (ssize_t)sizeof *reported;
    close(p[0]);
    return st;
}

/* The calls of KINDS that CHILD makes when nothing is armed. */
static unsigned long dry_run_calls(void (*child)(void *), unsigned kinds)
{
    struct tu_fault dry = { .kinds = kinds };
    unsigned long calls = 0;
    int got, st = run_armed(child, &dry, &calls, &got);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got, "dry run: status 0x%x", st);
    return calls;
}

/* Put the store directory back as CLEAN holds it. */
static void restore_dir(const char *clean)
{
    tu_rmrf(tu_dir);
    ck_assert_int_eq(mkdir(tu_dir, 0700), 0);
    ck_assert_int_eq(tu_copy_dir(clean, tu_dir), 0);
}

#define REOPEN_KINDS (LRVM__IO_WRITE | LRVM__IO_TRUNC | LRVM__IO_SYNC)

/* Open the heap at HEAP_SIZE (which grows a smaller one, and sorts a
 * version 1 heap into bins) with the fault armed, then commit once more,
 * so that deaths also land after the open's own commit. */
static void reopen_child(void *argp)
{
    const struct armed *a = argp;
    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    tu_fault_arm(a->f);
    if (lrvm_heap_open(s, "heap", HEAP_SIZE, &h) != 0)
        _exit(2);
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    if (lrvm_begin(s, 1, &base, &tx) != 0 || lrvm_heap_set_root(h, lrvm_heap_root(h)) != 0 ||
        lrvm_commit(tx, 0) != 0)
        _exit(4);
    report_calls(a->fd);
}

struct reopen_deaths {
    const char *clean;      /* the store as it was before */
    void      (*check)(const struct tu_fault *f, void *arg);
    void       *arg;
};

static void reopen_case(void *arg, const struct tu_fault *f)
{
    const struct reopen_deaths *d = arg;
    unsigned long reported;
    int got;
    restore_dir(d->clean);
    tu_fault_died(f, run_armed(reopen_child, f, &reported, &got));
    d->check(f, d->arg);
}

/* Arm MODE (a kill or a power cut) at each of the calls reopen_child makes
 * on a copy of the store as it is now, at least MIN_CALLS of them; after
 * each death, CHECK(F, ARG) looks at the store. Returns the calls. */
static unsigned long die_at_each_reopen_call(int mode, unsigned long min_calls,
                                             void (*check)(const struct tu_fault *f, void *arg),
                                             void *arg)
{
    char *clean = tu_tmpdir();
    ck_assert_int_eq(tu_copy_dir(tu_dir, clean), 0);
    unsigned long calls = dry_run_calls(reopen_child, REOPEN_KINDS);
    ck_assert_uint_ge(calls, min_calls);
    struct reopen_deaths d = { clean, check, arg };
    struct tu_fault_plan plan = { .kinds = REOPEN_KINDS, .calls = calls, .modes = &mode,
                                  .nmodes = 1 };
    tu_fault_each_call(&plan, reopen_case, &d);
    tu_rmrf(clean);
    free(clean);
    return calls;
}

struct growth_check {
    uint64_t small_free;        /* free bytes before the growth */
    int      grew;              /* deaths after which the heap had grown */
};

static void check_growth(const struct tu_fault *f, void *arg)
{
    struct growth_check *g = arg;
    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_heap_open(s, "heap", SMALL_HEAP, &h), 0);
    uint64_t fr = free_bytes(h);
    ck_assert_msg(fr == g->small_free || fr > HEAP_SIZE - SMALL_HEAP,
                  "%s: %" PRIu64 " bytes free", f->what, fr);
    g->grew += fr != g->small_free;
    unsigned char *first = lrvm_heap_root(h);
    ck_assert_uint_eq(first[0], 1);
    ck_assert_uint_eq(first[999], 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}

/* Killed, or cut off by a power cut, at each write, size change and sync
 * of a growth, the heap opens whole: the old size or the new, its blocks
 * intact. */
static void growth_deaths(int mode)
{
    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    int n = fill_small_heap(s, &h);
    struct growth_check g = { free_bytes(h), 0 };
    ck_assert_int_eq(lrvm_close(s), 0);
    unsigned long calls = die_at_each_reopen_call(mode, 3, check_growth, &g);
    ck_assert_int_ge(n, 10);
    ck_assert_int_lt(g.grew, (int)calls);       /* the early deaths kept the old size */
}

START_TEST(test_heap_growth_killed_at_each_call)
{
    tracking = _i;
    growth_deaths(LRVM__IO_KILL);
}
END_TEST

START_TEST(test_heap_growth_power_cut_at_each_call)
{
    tracking = _i;
    growth_deaths(LRVM__IO_POWERCUT);
}
END_TEST

/* A new heap's creation, then a first allocation committed: cut off at
 * each call, the heap opens whole, with the allocation if it was acked. */
static void create_child(void *argp)
{
    const struct armed *a = argp;
    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    tu_fault_arm(a->f);
    if (lrvm_heap_open(s, "heap", HEAP_SIZE, &h) != 0)
        _exit(2);
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    char *p;
    if (lrvm_begin(s, 1, &base, &tx) != 0 || (p = lrvm_malloc(h, 16)) == NULL)
        _exit(3);
    if (tracking == LRVM_TRACK_EXPLICIT && lrvm_set_range(tx, p, 16) != 0)
        _exit(3);
    strcpy(p, "first");
    if (lrvm_heap_set_root(h, p) != 0 || lrvm_commit(tx, 0) != 0)
        _exit(4);
    report_calls(a->fd);                        /* the ack */
}

static void creation_case(void *clean, const struct tu_fault *f)
{
    unsigned long acked;
    int got_ack;
    restore_dir(clean);
    tu_fault_died(f, run_armed(create_child, f, &acked, &got_ack));
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    char *root = lrvm_heap_root(h);
    ck_assert_msg(!got_ack || (root != NULL && strcmp(root, "first") == 0),
                  "%s: the acked allocation is gone", f->what);
    ck_assert_msg(root == NULL || strcmp(root, "first") == 0, "%s: root %p", f->what,
                  (void *)root);
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_heap_creation_power_cut_at_each_call)
{
    tracking = _i;
    lrvm_t *s = open_store();                   /* the store exists; the heap not */
    ck_assert_int_eq(lrvm_close(s), 0);
    char *clean = tu_tmpdir();
    ck_assert_int_eq(tu_copy_dir(tu_dir, clean), 0);
    static const int cut = LRVM__IO_POWERCUT;
    struct tu_fault_plan plan = { .kinds = LRVM__IO_ALL,
                                  .calls = dry_run_calls(create_child, LRVM__IO_ALL),
                                  .modes = &cut, .nmodes = 1 };
    tu_fault_each_call(&plan, creation_case, clean);
    tu_rmrf(clean);
    free(clean);
}
END_TEST

/* ------------------------------------------------------------ old versions */

/* A heap of version 1 kept every free block in one list; lrvm_heap_open
 * sorts it into bins. One of version 2 kept the back link of each bin's
 * first block at 0; lrvm_heap_open only sets its version word. Offsets
 * into the heap header, and the first block. */
#define HDR_VERSION   8
#define HDR_FREE_HEAD 32
#define HDR_BINS      56
#define HDR_NBINS     88
#define FIRST_BLOCK   4104
#define OLD_BLOCKS    300

static uint64_t old_block_len(int i)
{
    return 16 + (uint64_t)(i * 37 % 700);
}

/* A heap with OLD_BLOCKS blocks, every third freed again, the others
 * filled with their number; the root holds their addresses. The log is
 * then emptied into the heap file, and the store closed. */
static void fill_old_heap(void)
{
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    lrvm_tx_t *tx = begin_heap(s, h);
    uint64_t *root = lrvm_calloc(h, OLD_BLOCKS, 8);
    ck_assert_ptr_nonnull(root);
    if (tracking == LRVM_TRACK_EXPLICIT)
        ck_assert_int_eq(lrvm_set_range(tx, root, OLD_BLOCKS * 8), 0);
    unsigned char *b[OLD_BLOCKS];
    for (int i = 0; i < OLD_BLOCKS; i++) {
        b[i] = lrvm_malloc(h, old_block_len(i));
        ck_assert_ptr_nonnull(b[i]);
    }
    for (int i = 0; i < OLD_BLOCKS; i++) {
        if (i % 3 == 0) {
            lrvm_free(h, b[i]);                 /* a hole between used blocks */
            continue;
        }
        unsigned char fill[720];                /* old_block_len is at most 715 */
        memset(fill, i, sizeof fill);
        put(tx, b[i], fill, old_block_len(i));
        root[i] = (uint64_t)(uintptr_t)b[i];
    }
    ck_assert_int_eq(lrvm_heap_set_root(h, root), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_truncate(s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}

/* Rewrite the heap file as VERSION kept it: version 1, its free blocks in
 * one list, in address order, and no bins; version 2, the back link of
 * each bin's first block 0; version 3, as it is but for its version word. */
static void make_old_version(uint64_t version)
{
    const char *path = tu_path(tu_dir, "heap.seg");
    int64_t len = tu_file_size(path);
    ck_assert_int_ge(len, (int64_t)HEAP_SIZE);
    uint64_t *img = malloc((size_t)len);
    ck_assert_ptr_nonnull(img);
    ck_assert_int_eq(tu_read(path, img, (size_t)len, 0), 0);
    if (version >= 2) {
        for (int k = 0; k < HDR_NBINS && version == 2; k++)
            if (img[HDR_BINS / 8 + k] != 0)
                img[img[HDR_BINS / 8 + k] / 8 + 2] = 0;
        img[HDR_VERSION / 8] = version;
        ck_assert_int_eq(tu_write(path, img, (size_t)len, 0), 0);
        free(img);
        return;
    }
    uint64_t size = img[3], epi = (size & ~(uint64_t)15) - 8, first = 0, prev = 0, nfree = 0;
    for (uint64_t b = FIRST_BLOCK; b < epi; b += img[b / 8] & ~(uint64_t)15) {
        if (img[b / 8] & 1)
            continue;                                   /* used */
        img[b / 8 + 1] = 0;                             /* next */
        img[b / 8 + 2] = prev;
        if (prev != 0)
            img[prev / 8 + 1] = b;
        else
            first = b;
        prev = b;
        nfree++;
    }
    ck_assert_uint_gt(nfree, OLD_BLOCKS / 3);           /* the holes, and the rest */
    img[HDR_VERSION / 8] = 1;
    img[HDR_FREE_HEAD / 8] = first;
    memset(&img[HDR_BINS / 8], 0, HDR_NBINS * 8);
    ck_assert_int_eq(tu_write(path, img, (size_t)len, 0), 0);
    free(img);
}

/* The heap holds what fill_old_heap left, at version 4; freeing every
 * block gives back the whole heap as one free block. */
static void check_old_heap(lrvm_t *s, lrvm_heap_t *h)
{
    const uint64_t *hdr = lrvm_heap_base(h);
    ck_assert_uint_eq(hdr[HDR_VERSION / 8], 4);
    ck_assert_uint_eq(hdr[HDR_FREE_HEAD / 8], 0);
    uint64_t *root = lrvm_heap_root(h);
    ck_assert_ptr_nonnull(root);
    int bad = -1;
    for (int i = 0; i < OLD_BLOCKS && bad < 0; i++) {
        const unsigned char *b = (const unsigned char *)(uintptr_t)root[i];
        if ((i % 3 == 0) != (b == NULL) ||
            (b != NULL && (b[0] != (unsigned char)i || b[old_block_len(i) - 1] != (unsigned char)i)))
            bad = i;
    }
    ck_assert_int_eq(bad, -1);
    lrvm_tx_t *tx = begin_heap(s, h);
    for (int i = 0; i < OLD_BLOCKS; i++)
        lrvm_free(h, (void *)(uintptr_t)root[i]);
    ck_assert_int_eq(lrvm_heap_set_root(h, NULL), 0);
    lrvm_free(h, root);
    ck_assert_uint_eq(free_bytes(h), WHOLE + 8);        /* one block, header and all */
    ck_assert_int_eq(lrvm_abort(tx), 0);
}

/* A heap of a version newer than this library's is refused, untouched. */
START_TEST(test_heap_newer_version_refused)
{
    tracking = LRVM_TRACK_AUTO;
    lrvm_t *s = open_store();
    (void)open_heap(s);
    ck_assert_int_eq(lrvm_close(s), 0);
    const char *path = tu_path(tu_dir, "heap.seg");
    uint64_t v = 5;
    ck_assert_int_eq(tu_write(path, &v, 8, HDR_VERSION), 0);
    s = open_store();
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_heap_open(s, "heap", HEAP_SIZE, &h), LRVM_EVERSION);
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_int_eq(tu_read(path, &v, 8, HDR_VERSION), 0);
    ck_assert_uint_eq(v, 5);
}
END_TEST

/* The old heap of loop test I: the tracking mode (bit 0) and the old
 * version (1, 2 or 3), filled and rewritten as that version kept it. */
static void make_old_heap(int i)
{
    tracking = i % 2;
    fill_old_heap();
    make_old_version(1 + (uint64_t)i / 2);
}

START_TEST(test_heap_old_version_is_upgraded)
{
    make_old_heap(_i);
    lrvm_t *s = open_store();
    lrvm_heap_t *h;
    ck_assert_int_eq(lrvm_heap_open(s, "heap", HEAP_SIZE, &h), 0);
    ck_assert_int_eq(lrvm__heap_check(h), 0);
    check_old_heap(s, h);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store();                                   /* the sorting was committed */
    h = open_heap(s);
    check_old_heap(s, h);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

static void check_upgraded(const struct tu_fault *f, void *arg)
{
    (void)f;
    (void)arg;
    lrvm_t *s = open_store();
    lrvm_heap_t *h = open_heap(s);
    check_old_heap(s, h);
    ck_assert_int_eq(lrvm_close(s), 0);
}

/* Cut off at each call of the open that upgrades a heap of version 1
 * (sorted into bins), 2 or 3, the heap opens whole, upgraded then or now,
 * with every block. */
START_TEST(test_heap_old_version_upgrade_power_cut_at_each_call)
{
    make_old_heap(_i);
    die_at_each_reopen_call(LRVM__IO_POWERCUT, 2, check_upgraded, NULL);
}
END_TEST

/* ------------------------------------------------------------ kills */

#define SLOTS 64

/* A table of blocks, and the last step committed to it. The root object
 * is one table; with shared, an array of SHARED_THREADS tables, one a
 * thread, each changed in shared transactions (explicit mode). */
struct table {
    uint64_t step;
    unsigned char *slot[SLOTS];
    uint64_t len[SLOTS];
};

#define SHARED_THREADS 4
static int shared;

/* Step I: slot I % SLOTS gets a new block of a size drawn from I, filled
 * with the byte I; its old block is freed. Every 5th step also frees the
 * slot after it. */
static void step_plan(uint64_t i, unsigned *k, size_t *len, int *clear_next)
{
    uint64_t r = tu_mix64(i * 0x9e3779b97f4a7c15ull);
    *k = (unsigned)(r % SLOTS);
    *len = 1 + (size_t)((r >> 8) % 3000);
    *clear_next = i % 5 == 0;
}

/* Step I's changes, in TX. */
static int step_body(lrvm_heap_t *h, lrvm_tx_t *tx, struct table *t, uint64_t i)
{
    unsigned k;
    size_t len;
    int clear_next;
    step_plan(i, &k, &len, &clear_next);
    int explicit = tracking == LRVM_TRACK_EXPLICIT;
    if (explicit && lrvm_set_range(tx, t, sizeof *t) != 0)
        return 3;
    lrvm_free(h, t->slot[k]);
    unsigned char *p = lrvm_malloc(h, len);
    if (p == NULL)
        return 4;
    if (explicit && lrvm_set_range(tx, p, len) != 0)
        return 3;
    memset(p, (int)(i & 0xff), len);
    t->slot[k] = p;
    t->len[k] = len;
    if (clear_next) {
        unsigned n = (k + 1) % SLOTS;
        lrvm_free(h, t->slot[n]);
        t->slot[n] = NULL;
        t->len[n] = 0;
    }
    t->step = i;
    return 0;
}

/* Step I in a transaction of its own. Shared, every 7th is done once and
 * aborted first, which must take back its blocks and its frees. */
static int kill_step(lrvm_t *s, lrvm_heap_t *h, struct table *t, uint64_t i)
{
    void *base = lrvm_heap_base(h);
    lrvm_tx_t *tx;
    int rc;
    if (shared && i % 7 == 3) {
        if (lrvm_begin_shared(s, 1, &base, &tx) != 0)
            return 2;
        if ((rc = step_body(h, tx, t, i)) != 0)
            return rc;
        if (lrvm_abort(tx) != 0)
            return 6;
    }
    if ((shared ? lrvm_begin_shared(s, 1, &base, &tx) : lrvm_begin(s, 1, &base, &tx)) != 0)
        return 2;
    if ((rc = step_body(h, tx, t, i)) != 0)
        return rc;
    return lrvm_commit(tx, i % 4 == 0 ? LRVM_NO_FLUSH : 0) == 0 ? 0 : 5;
}

/* A thread of the child: table T (the J-th) from its next step on, each
 * flushed step acknowledged on FD as J << 56 | step. */
struct kill_thread {
    lrvm_t       *s;
    lrvm_heap_t  *h;
    struct table *t;
    int           fd, j;
};

static void *kill_thread_run(void *arg)
{
    struct kill_thread *a = arg;
    for (uint64_t i = a->t->step + 1;; i++) {
        int rc = kill_step(a->s, a->h, a->t, i);
        if (rc != 0)
            _exit(10 + rc);
        uint64_t ack = (uint64_t)a->j << 56 | i;
        if (i % 4 != 0 && write(a->fd, &ack, sizeof ack) != (ssize_t)sizeof ack)
            _exit(4);
    }
    return NULL;
}

struct kill_arg {
    int           fd;
    unsigned long powercut_at;  /* the sync call the power fails at; 0: none */
    uint64_t      seed;
};

static void kill_child(const struct kill_arg *k)
{
    int fd = k->fd;
    alarm(60);
    lrvm_options_t o = { .tracking = tracking, .truncate_threshold = (size_t)1 << 20 };
    lrvm_t *s;
    lrvm_heap_t *h;
    if (lrvm_open(tu_dir, &o, &s) != 0 || lrvm_heap_open(s, "heap", HEAP_SIZE, &h) != 0)
        _exit(2);
    if (k->powercut_at != 0) {
        lrvm__io_powercut_seed(k->seed);
        lrvm__io_inject(LRVM__IO_SYNC, k->powercut_at, EIO, LRVM__IO_POWERCUT);
    }
    int ntables = shared ? SHARED_THREADS : 1;
    struct table **tables = lrvm_heap_root(h), *one = (struct table *)tables;
    if (tables == NULL) {
        void *base = lrvm_heap_base(h);
        lrvm_tx_t *tx;
        if (lrvm_begin(s, 1, &base, &tx) != 0)
            _exit(3);
        if (shared) {
            if ((tables = lrvm_calloc(h, SHARED_THREADS, sizeof *tables)) == NULL)
                _exit(3);
            for (int j = 0; j < SHARED_THREADS; j++)
                if ((tables[j] = lrvm_calloc(h, 1, sizeof **tables)) == NULL)
                    _exit(3);
        } else if ((tables = (void *)(one = lrvm_calloc(h, 1, sizeof *one))) == NULL) {
            _exit(3);
        }
        if (lrvm_heap_set_root(h, tables) != 0 || lrvm_commit(tx, 0) != 0)
            _exit(3);
    }
    struct kill_thread a[SHARED_THREADS];
    pthread_t th[SHARED_THREADS];
    for (int j = 0; j < ntables; j++) {
        a[j] = (struct kill_thread){ s, h, shared ? tables[j] : one, fd, j };
        if (!shared)
            kill_thread_run(&a[0]);
        if (pthread_create(&th[j], NULL, kill_thread_run, &a[j]) != 0)
            _exit(5);
    }
    for (int j = 0; j < ntables; j++)
        pthread_join(th[j], NULL);
    _exit(6);
}

/* The table after steps 1..C: which step wrote each slot last, and how
 * long its block is. */
static void model(uint64_t c, uint64_t *writer, size_t *len)
{
    memset(writer, 0, SLOTS * sizeof *writer);
    memset(len, 0, SLOTS * sizeof *len);
    for (uint64_t i = 1; i <= c; i++) {
        unsigned k;
        size_t n;
        int clear_next;
        step_plan(i, &k, &n, &clear_next);
        writer[k] = i;
        len[k] = n;
        if (clear_next) {
            writer[(k + 1) % SLOTS] = 0;
            len[(k + 1) % SLOTS] = 0;
        }
    }
}

/* ROUNDS deaths in the middle of random allocations: SIGKILL after a
 * random delay, or (POWERCUT) a power cut at a sync call drawn at random.
 * With shared, SHARED_THREADS threads allocate and free at once, each in
 * shared transactions on the one heap, and each table must hold its own
 * last step (every acknowledged one) and nothing may leak: a block taken
 * by a transaction that never committed is freed by lrvm_heap_open. */
static void kills(int powercut)
{
    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0x68656170u) | 1;
    uint64_t floor[SHARED_THREADS] = { 0 };
    for (int round = 0; round < 10; round++) {
        int fd;
        pid_t pid = tu_fork_piped(&fd);
        if (pid == 0) {
            struct kill_arg k = { fd, 0, 0 };
            if (powercut) {
                k.powercut_at = 2 + (unsigned long)(tu_rand(&rng) % 60);
                k.seed = tu_rand(&rng);
            }
            kill_child(&k);
        }
        uint64_t acked[SHARED_THREADS] = { 0 }, a;
        if (powercut) {
            tu_rand(&rng);                  /* the child's draws, in step */
            tu_rand(&rng);
        } else {
            /* Four threads share the time (and the sanitizers' cost):
             * each must get a step in over the rounds. Every other
             * round the delay starts at the child's first acknowledged
             * step, however long its start took (ThreadSanitizer's
             * build took longer than every delay to get there), so
             * that some rounds are killed in the middle of the steps;
             * the others may kill it anywhere from its start. */
            long ms = shared ? 20 + (long)(tu_rand(&rng) % 120) : 5 + (long)(tu_rand(&rng) % 60);
            if (round % 2 == 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ck_assert_msg(poll(&p, 1, 60000) == 1 && read(fd, &a, sizeof a) == sizeof a,
                              "round %d (LRVM_TEST_SEED=%" PRIu64 "): no step acknowledged",
                              round, seed);
                acked[a >> 56] = a & ((1ull << 56) - 1);
            }
            struct timespec ts = { 0, ms * 1000000 };
            nanosleep(&ts, NULL);
            kill(pid, SIGKILL);
        }
        while (read(fd, &a, sizeof a) == (ssize_t)sizeof a) {
            uint64_t *j = &acked[a >> 56], i = a & ((1ull << 56) - 1);
            *j = i > *j ? i : *j;
        }
        close(fd);
        int st = tu_wait(pid);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "round %d (LRVM_TEST_SEED=%" PRIu64 "): child status 0x%x", round, seed, st);

        lrvm_t *s = open_store();
        lrvm_heap_t *h;
        int rc = lrvm_heap_open(s, "heap", HEAP_SIZE, &h);
        ck_assert_msg(rc == 0, "round %d (LRVM_TEST_SEED=%" PRIu64 "): lrvm_heap_open: %s",
                      round, seed, lrvm_strerror(rc));
        struct table **tables = lrvm_heap_root(h);
        if (tables == NULL) {           /* killed before the tables were made */
            for (int j = 0; j < SHARED_THREADS; j++)
                ck_assert_uint_eq(acked[j], 0);
            ck_assert_int_eq(lrvm_close(s), 0);
            continue;
        }
        int ntables = shared ? SHARED_THREADS : 1;
        uint64_t used_blocks, fr, live = shared ? 1 + SHARED_THREADS : 1;  /* the tables */
        for (int j = 0; j < ntables; j++) {
            struct table *t = shared ? tables[j] : (struct table *)tables;
            ck_assert_msg(t->step >= acked[j] && t->step >= floor[j], "round %d "
                          "(LRVM_TEST_SEED=%" PRIu64 "): table %d holds step %" PRIu64 ", %"
                          PRIu64 " was acked, %" PRIu64 " seen before", round, seed, j,
                          t->step, acked[j], floor[j]);
            floor[j] = t->step;
            uint64_t writer[SLOTS];
            size_t len[SLOTS];
            model(t->step, writer, len);
            for (unsigned k = 0; k < SLOTS; k++) {
                ck_assert_msg((t->slot[k] != NULL) == (writer[k] != 0) && t->len[k] == len[k],
                              "round %d (LRVM_TEST_SEED=%" PRIu64 "): table %d slot %u",
                              round, seed, j, k);
                if (t->slot[k] == NULL)
                    continue;
                live++;
                for (size_t b = 0; b < len[k]; b++)
                    ck_assert_msg(t->slot[k][b] == (unsigned char)writer[k],
                                  "round %d (LRVM_TEST_SEED=%" PRIu64 "): table %d slot %u "
                                  "byte %zu", round, seed, j, k, b);
            }
        }
        ck_assert_int_eq(lrvm__heap_check(h), 0);
        lrvm__heap_usage(h, &used_blocks, &fr);
        ck_assert_msg(used_blocks == live, "round %d (LRVM_TEST_SEED=%" PRIu64 "): %" PRIu64
                      " blocks used, %" PRIu64 " reachable: a leak", round, seed, used_blocks,
                      live);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
    for (int j = 0; j < (shared ? SHARED_THREADS : 1); j++)
        ck_assert_uint_gt(floor[j], 0);
}

START_TEST(test_heap_random_allocations_killed)
{
    tracking = _i;
    kills(0);
}
END_TEST

START_TEST(test_heap_random_allocations_power_cut)
{
    tracking = _i;
    kills(1);
}
END_TEST

/* _i: 0 SIGKILL, 1 power cut. */
START_TEST(test_heap_shared_threads_killed)
{
    tracking = LRVM_TRACK_EXPLICIT;
    shared = 1;
    kills(_i);
    shared = 0;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("heap");
    TCase *tc = tu_tcase("heap", 60);
    /* _i: the tracking mode, LRVM_TRACK_AUTO (0) and LRVM_TRACK_EXPLICIT (1). */
    tcase_add_loop_test(tc, test_heap_alloc_persists_at_fixed_address, 0, 2);
    tcase_add_loop_test(tc, test_heap_free_merges_neighbours, 0, 2);
    tcase_add_loop_test(tc, test_heap_realloc_calloc_and_bad_pointers, 0, 2);
    tcase_add_loop_test(tc, test_heap_abort_takes_allocations_back, 0, 2);
    tcase_add_loop_test(tc, test_heap_overwritten_links_give_ecorrupt, 0, 2);
    tcase_add_test(tc, test_heap_explicit_needs_transaction);
    tcase_add_test(tc, test_heap_ambient_epoch);
    tcase_add_test(tc, test_heap_address_taken);
    tcase_add_test(tc, test_heap_refuses_plain_segment_and_drops_half_layout);
    tcase_add_loop_test(tc, test_heap_grows_in_place, 0, 2);
    tcase_add_loop_test(tc, test_heap_growth_killed_at_each_call, 0, 2);
    tcase_add_loop_test(tc, test_heap_growth_power_cut_at_each_call, 0, 2);
    tcase_add_loop_test(tc, test_heap_creation_power_cut_at_each_call, 0, 2);
    tcase_add_test(tc, test_heap_newer_version_refused);
    tcase_add_loop_test(tc, test_heap_old_version_is_upgraded, 0, 6);
    tcase_add_loop_test(tc, test_heap_old_version_upgrade_power_cut_at_each_call, 0, 6);
    tcase_add_loop_test(tc, test_heap_random_allocations_killed, 0, 2);
    tcase_add_loop_test(tc, test_heap_shared_threads_killed, 0, 2);
    tcase_add_test(tc, test_heap_shared_transactions);
    tcase_add_test(tc, test_heap_shared_pending_freed_at_open);
    tcase_add_test(tc, test_heap_shared_cache);
    tcase_add_test(tc, test_heap_shared_cache_killed);
    tcase_add_test(tc, test_heap_shared_cache_emptied_when_full);
#ifndef LRVM_DEBUG
    /* The debug build gives shared transactions no owner (track_explicit.c I3). */
    tcase_add_test(tc, test_heap_owner_takes_no_lock);
#endif
    tcase_add_loop_test(tc, test_heap_random_allocations_power_cut, 0, 2);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
