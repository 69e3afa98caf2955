/*
 * api.c -- the store: open, close, map, unmap, destroy, flush, truncate,
 * stats.
 *
 * Owns: struct lrvm, its lock and its directory (the lock file, the
 * directory descriptor); argument checking of the lrvm_* calls that are
 * not about one transaction.
 * Never: exits the process, or returns with lrvm.mu held.
 *
 * Invariants
 *   I1 While a struct lrvm exists, its process holds the flock on the
 *      store directory itself (and on DIR/lrvm.lock, which older versions
 *      lock), so no other process (or other lrvm_open in this one) writes
 *      the same store; removing a file of the store cannot undo it.
 *   I2 lrvm_open returns a store only after recovery succeeded: every
 *      complete log record is in the segment files and the log is empty.
 *   I3 A store's memory, and its lock, outlive lrvm_close: a closed store
 *      goes to a pool that lrvm_open takes from, and is never freed. A
 *      thread that reached the store through a transaction handle just
 *      as another closed it (tx.c) locks a live mutex, then finds the
 *      handle gone (LRVM_ENOENT) instead of touching freed memory.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_TRUNCATE_THRESHOLD     ((size_t)4096)
#define DEFAULT_RESIDENT_LIMIT     ((size_t)256 << 20)
#define MIN_RESIDENT_LIMIT         ((size_t)1 << 20)
#define DEFAULT_LOG_BUFFER         ((size_t)1 << 20)
#define MIN_LOG_BUFFER             ((size_t)4096)
#define MAX_LOG_BUFFER             ((size_t)1 << 30)
#define LOCK_NAME                  "lrvm.lock"

/* Closed stores, their memory kept for the next lrvm_open (I3). */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static lrvm_t         *pool;

/* A zeroed store with its lock ready: from the pool, or new. */
static lrvm_t *store_new(void)
{
    lrvm__lock(&pool_mu, LRVM__RANK_LEAF);
    lrvm_t *s = pool;
    if (s != NULL)
        pool = s->pool_next;
    lrvm__unlock(&pool_mu);
    if (s == NULL) {
        if ((s = malloc(sizeof *s)) == NULL)
            return NULL;
        /* Threads committing to one store each hold the lock briefly:
         * a waiter spins a while before it sleeps in the kernel, since a
         * sleep and its wake-up cost more than the holder's whole stay
         * (doc/architecture.md, "Concurrency"). */
        pthread_mutexattr_t ma;
        pthread_mutexattr_init(&ma);
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
        pthread_mutex_init(&s->mu, &ma);
        pthread_mutexattr_destroy(&ma);
    }
    /* Everything but the lock, which another thread may still take
     * (keeps I3): zero the rest. */
    memset((char *)s + sizeof s->mu, 0, sizeof *s - sizeof s->mu);
    return s;
}

static void store_free(lrvm_t *s)
{
    lrvm__trunc_fini(s);
    lrvm__heap_forget(s, NULL);
    while (s->nsegs > 0)
        lrvm__seg_unmap(s, s->segs[s->nsegs - 1]);
    free(s->segs);
    lrvm__log_close(&s->log);
    lrvm__recover_release(s);
    if (s->lockfd >= 0)
        lrvm__io_close(s->lockfd);
    if (s->dirfd >= 0)
        lrvm__io_close(s->dirfd);
    free(s->dir);
    s->segs = NULL;
    s->nsegs = 0;
    s->dir = NULL;
    lrvm__lock(&pool_mu, LRVM__RANK_LEAF);
    s->pool_next = pool;                                        /* keeps I3 */
    pool = s;
    lrvm__unlock(&pool_mu);
}

/* 256 MiB, or an eighth of the machine's memory when that is less
 * (lrvm.h). */
static size_t default_resident_limit(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return DEFAULT_RESIDENT_LIMIT;
    uint64_t eighth = (uint64_t)pages * (uint64_t)page / 8;
    size_t limit = eighth < DEFAULT_RESIDENT_LIMIT ? (size_t)eighth : DEFAULT_RESIDENT_LIMIT;
    return limit < MIN_RESIDENT_LIMIT ? MIN_RESIDENT_LIMIT : limit;
}

int lrvm_open(const char *dir, const lrvm_options_t *opts, lrvm_t **out)
{
    return lrvm__open_discarding(dir, opts, 0, out);
}

int lrvm__open_discarding(const char *dir, const lrvm_options_t *opts, uint64_t discard_after,
                          lrvm_t **out)
{
    lrvm_options_t o = { 0 };
    int rc;

    if (dir == NULL || dir[0] == '\0' || out == NULL)
        return LRVM_EINVAL;
    if (opts != NULL)
        o = *opts;
    const struct lrvm__tracker *tracker;
    rc = lrvm__track_choose(o.tracking, &tracker);
    if (rc < 0)
        return rc;
    /* Options are honoured or refused, never changed. */
    if (o.log_buffer_size != 0 &&
        (o.log_buffer_size < MIN_LOG_BUFFER || o.log_buffer_size > MAX_LOG_BUFFER))
        return LRVM_EINVAL;
    if (o.truncate_threshold != 0 && o.truncate_threshold < MIN_TRUNCATE_THRESHOLD)
        return LRVM_EINVAL;
    if (o.resident_limit != 0 && o.resident_limit < MIN_RESIDENT_LIMIT)
        return LRVM_EINVAL;

    lrvm_t *s = store_new();
    if (s == NULL)
        return LRVM_ENOMEM;
    s->dirfd = s->lockfd = -1;
    lrvm__trunc_init(s);
    s->tracker = tracker;
    s->truncate_threshold = o.truncate_threshold;
    s->resident_limit = o.resident_limit ? o.resident_limit : default_resident_limit();
    if ((s->dir = strdup(dir)) == NULL) {
        rc = LRVM_ENOMEM;
        goto fail;
    }

    rc = lrvm__io_mkdir(dir, 0700);
    if (rc < 0 && rc != LRVM_EEXIST)
        goto fail;
    /* A new store's name must be durable before anything in it counts. */
    if (rc == 0 && (rc = lrvm__io_sync_parent(dir)) < 0)
        goto fail;
    if ((s->dirfd = lrvm__io_open_dir(dir)) < 0) {
        rc = s->dirfd;
        goto fail;
    }
    if ((rc = lrvm__io_dir_check(s->dirfd, dir, o.shared)) < 0 ||
        (rc = lrvm__io_flock(s->dirfd)) < 0)                /* keeps I1 */
        goto fail;
    /* The lock file is kept for processes of older versions, which lock
     * it instead of the directory. */
    if ((s->lockfd = lrvm__io_open(s->dirfd, LOCK_NAME, O_RDWR | O_CREAT, 0600)) < 0) {
        rc = s->lockfd;
        goto fail;
    }
    if ((rc = lrvm__io_flock(s->lockfd)) < 0)
        goto fail;
    if ((rc = lrvm__log_open(&s->log, s->dirfd, &s->mu, &s->stats,
                             o.log_buffer_size ? o.log_buffer_size : DEFAULT_LOG_BUFFER,
                             lrvm__truncate_threshold(s))) < 0)
        goto fail;
    s->discard_after = discard_after;
    s->recovering = 1;
    if ((rc = lrvm__truncate(s)) < 0)                       /* keeps I2 */
        goto fail;
    s->recovering = 0;
    s->discard_after = 0;
    *out = s;
    return 0;
fail:
    store_free(s);
    return rc;
}

int lrvm_close(lrvm_t *s)
{
    if (s == NULL)
        return LRVM_EINVAL;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    lrvm__log_quiesce(&s->log);
    lrvm__trunc_stop(s);        /* one that failed leaves both generations to recovery */
    lrvm__tx_abort_all(s);
    int rc = lrvm__log_flush(&s->log);
    lrvm__unlock(&s->mu);
    store_free(s);
    return rc;
}

int lrvm_map(lrvm_t *s, const char *name, size_t size, void **base)
{
    struct lrvm__seg *seg;
    int rc;

    if (s == NULL || base == NULL || !lrvm__name_ok(name) || size == 0)
        return LRVM_EINVAL;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    if (lrvm__seg_by_name(s, name) != NULL) {
        rc = LRVM_EEXIST;
        goto out;
    }
    /* Keeps segment.c I4: a segment mapped again after an unmap must show
     * the commits that are still only in the log. */
    if ((rc = lrvm__truncate_if_any(s)) < 0)
        goto out;
    if ((rc = lrvm__seg_map(s, name, size, NULL, &seg)) == 0)
        *base = seg->sg_base;
out:
    lrvm__unlock(&s->mu);
    return rc;
}

int lrvm_unmap(lrvm_t *s, void *base)
{
    if (s == NULL)
        return LRVM_EINVAL;
    int rc = 0;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    struct lrvm__seg *seg = lrvm__seg_by_base(s, base);
    if (seg == NULL) {
        rc = LRVM_ENOENT;
    } else if ((lrvm__seg_unpark(s, seg), lrvm__seg_held(seg))) {
        rc = LRVM_EBUSY;                /* (the transactions their owners committed end) */
    } else {
        lrvm__heap_forget(s, seg);      /* a heap's handle goes with its segment */
        lrvm__seg_unmap(s, seg);
    }
    lrvm__unlock(&s->mu);
    return rc;
}

int lrvm_destroy(lrvm_t *s, const char *name)
{
    if (s == NULL || !lrvm__name_ok(name))
        return LRVM_EINVAL;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    /* The log may still hold records for NAME; replaying them into a new
     * segment of the same name after a crash would resurrect the data.
     * Fold the log into the files first (segment.c I6). */
    int rc = lrvm__seg_by_name(s, name) != NULL ? LRVM_EBUSY : lrvm__truncate_if_any(s);
    if (rc == 0)
        rc = lrvm__seg_destroy(s, name);
    lrvm__unlock(&s->mu);
    return rc;
}

int lrvm_flush(lrvm_t *s)
{
    if (s == NULL)
        return LRVM_EINVAL;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    int rc = lrvm__log_flush(&s->log);
    lrvm__unlock(&s->mu);
    return rc;
}

int lrvm_truncate(lrvm_t *s)
{
    if (s == NULL)
        return LRVM_EINVAL;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    int rc = lrvm__truncate(s);
    lrvm__unlock(&s->mu);
    return rc;
}

int lrvm_stats(lrvm_t *s, lrvm_stats_t *out)
{
    if (s == NULL || out == NULL)
        return LRVM_EINVAL;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    lrvm__log_tail_shut(&s->log);       /* its commits are counted there */
    (void)lrvm__trunc_reap(s);          /* so truncations counts one that just ended */
    *out = s->stats;
    out->log_size = lrvm__log_size(&s->log);
    out->faults = atomic_load(&s->faults);
    out->pages_captured = atomic_load(&s->captured);
    out->tracking = s->tracker->mode;
    out->pages_private = s->res_private;
    out->pages_shadow = s->res_spare;
    lrvm__unlock(&s->mu);
    return 0;
}

