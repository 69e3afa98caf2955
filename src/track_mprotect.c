/*
 * track_mprotect.c -- the mprotect tracker: automatic capture by write
 * faults, through mprotect and a SIGSEGV handler (GNU libsigsegv).
 *
 * Owns: the before-images (each segment's shadow), the page-state tables,
 * the SIGSEGV handler and its table of tracked areas, the ambient runs
 * set aside by lrvm_begin: the fields of struct lrvm__seg after
 * sg_tx. Never: allocates, locks or prints inside the fault handler (it
 * runs async-signal-safe: atomics, memcpy, mprotect, write(2) only);
 * handles a fault that is not a store to a tracked page (those must crash
 * exactly as without lrvm); makes a page writable before its
 * before-image is copied.
 *
 * Segments are mapped PROT_READ. The first store to a page faults; the handler moves the page CLEAN -> CAPTURING with a
 * compare-and-swap (a thread that loses just retries its store), copies
 * the page into the segment's shadow (an anonymous mapping of the same
 * size, reserved at map time, so the handler never allocates), appends the
 * page to the segment's dirty list, makes it writable and marks it DIRTY.
 * The dirty pages of a segment belong to the transaction that holds the
 * segment, else to the store's ambient epoch. A fault just after a run of
 * DIRTY pages captures as many pages ahead as the run is long (at most
 * AHEAD_MAX), so a sequential writer faults about once per AHEAD_MAX
 * pages; a page captured ahead and never written diffs equal and logs
 * nothing.
 *
 *        store faults              commit writes its records    log synced
 *   CLEAN -------------> CAPTURING ---> DIRTY ---------------> SEALED -----> CLEAN
 *   (read-only)          (copying)      (writable)             (read-only)
 *                                         ^                      | sync failed,
 *                                         +------- KEPT <--------+
 *                                       store faults (no new copy)   tx still open
 *
 * Commit compares each dirty page with its before-image and logs only the
 * changed byte runs (lrvm__page_diff). A flushed commit seals its pages
 * while the disk writes the records, so the re-protect overlaps the wait
 * for the disk; a sync seals the ambient pages before it reads them,
 * because other threads may go on storing. A store to a SEALED page
 * waits for the commit to end. Abort
 * and lrvm_begin's set-aside go DIRTY -> SEALED -> CLEAN at once.
 *
 * Invariants
 *   I1 A page is writable only in state DIRTY. In DIRTY, SEALED and KEPT
 *      its before-image is in the shadow and its number in sg_dirty, once.
 *   I2 A DIRTY page is made read-only again before it becomes CLEAN, so no
 *      store to a CLEAN page goes uncaptured.
 *   I3 The handler reads only areas[] entries published with a release
 *      store, and a segment leaves areas[] (mp_detach) only after
 *      every handler that could have seen it has returned (inflight == 0).
 *   I4 Ambient runs set aside for a segment (sg_stash) hold, at every
 *      moment, bytes that are committed or belong to the ambient epoch,
 *      never bytes of an open transaction: they are refreshed from memory
 *      when the transaction that holds the segment commits.
 *   I5 While a segment is frozen (by the thread that commits, aborts,
 *      syncs or sets aside its pages, holding the store's lock) no capture
 *      runs on it: its dirty list and page states are that thread's alone.
 *   I6 A commit reads a dirty page, and an abort writes one, only while
 *      the page is still mapped (pages_mapped): a program that unmapped
 *      one gets an error, not a fault in lrvm that waits for itself.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sigsegv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_AREAS   1024
#define BLOCK_PAGES 64           /* capture unit when mappings run short */
#define AHEAD_MAX   16           /* pages a sequential writer is captured ahead */
#define RETRY_LIMIT 10000000L    /* consecutive faults on one DIRTY page */

/* ------------------------------------------------- the tracked areas */

struct area {
    _Atomic uintptr_t           start, end;
    _Atomic(struct lrvm__seg *) seg;
};

static struct area      areas[MAX_AREAS];
static _Atomic int      areas_used;          /* high-water mark of areas[] */
static _Atomic long     inflight;            /* handlers and wrappers inside */
static pthread_mutex_t  areas_mu = PTHREAD_MUTEX_INITIALIZER;
_Atomic int             lrvm__tracked_areas;

static size_t           page_size;
static long             map_budget;          /* unprotected runs before blocks */
static _Atomic long     unprotected_runs;    /* mprotect(RW) calls not yet undone */
static int              handler_ok;
static pthread_once_t   init_once = PTHREAD_ONCE_INIT;

/* This thread, as the value it leaves in sg_frozen while it holds a
 * segment frozen (never 0). */
static __thread char freezer_token __attribute__((tls_model("initial-exec")));

static uintptr_t freezer(void)
{
    return (uintptr_t)&freezer_token;
}

/* Per-thread guard against looping on a fault that is not ours. */
static __thread const void *last_dirty_fault __attribute__((tls_model("initial-exec")));
static __thread long        dirty_retries __attribute__((tls_model("initial-exec")));

static struct lrvm__seg *area_find(const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    int n = atomic_load(&areas_used);
    for (int i = 0; i < n; i++) {
        struct lrvm__seg *seg = atomic_load(&areas[i].seg);
        if (seg != NULL && a >= atomic_load(&areas[i].start) && a < atomic_load(&areas[i].end))
            return seg;
    }
    return NULL;
}

static void say(const char *msg)
{
    (void)!write(2, msg, strlen(msg));
}

/* ------------------------------------------------- capture */

/* Make pages [first, first+n) of SEG writable; the handler path. */
static int unprotect(struct lrvm__seg *seg, size_t first, size_t n)
{
    if (mprotect(seg->sg_base + first * page_size, n * page_size, PROT_READ | PROT_WRITE) != 0)
        return -1;
    atomic_fetch_add(&unprotected_runs, 1);
    atomic_fetch_add(&seg->sg_unprotected, 1);
    return 0;
}

/* Take page P of SEG from CLEAN to CAPTURING and save it; 1 if this call
 * won the page. */
static int claim(struct lrvm__seg *seg, size_t p)
{
    unsigned char clean = LRVM__PG_CLEAN;
    if (!atomic_compare_exchange_strong(&seg->sg_state[p], &clean, LRVM__PG_CAPTURING))
        return 0;
    memcpy(seg->sg_shadow + p * page_size, seg->sg_base + p * page_size, page_size);
    seg->sg_dirty[atomic_fetch_add(&seg->sg_ndirty, 1)] = (uint32_t)p;
    atomic_fetch_add(&seg->sg_store->captured, 1);
    return 1;
}

/* Take a KEPT page back to CAPTURING: its before-image and its place in
 * the dirty list are already there. 1 if this call won the page. */
static int reclaim(struct lrvm__seg *seg, size_t p)
{
    unsigned char kept = LRVM__PG_KEPT;
    return atomic_compare_exchange_strong(&seg->sg_state[p], &kept, LRVM__PG_CAPTURING);
}

/* Capture page P (or its whole block when mappings run short), the
 * segment not frozen. */
static int capture_page(struct lrvm__seg *seg, size_t p, int from_fault)
{
    unsigned char st = atomic_load(&seg->sg_state[p]);
    int won = st == LRVM__PG_CLEAN ? claim(seg, p) : st == LRVM__PG_KEPT ? reclaim(seg, p) : 0;
    if (!won)
        return 1;       /* lost the race, or SEALED (being committed): retry */
    if (from_fault)
        atomic_fetch_add(&seg->sg_store->faults, 1);

    if (atomic_load(&unprotected_runs) > map_budget) {
        /* Widen to the aligned block: claim its CLEAN pages too, then make
         * writable each run of pages that are ours or already DIRTY. */
        size_t b0 = p - p % BLOCK_PAGES, b1 = b0 + BLOCK_PAGES;
        if (b1 > seg->sg_npages)
            b1 = seg->sg_npages;
        unsigned char mine[BLOCK_PAGES] = { 0 };
        mine[p - b0] = 1;
        for (size_t q = b0; q < b1; q++)
            if (q != p && claim(seg, q))
                mine[q - b0] = 1;
        size_t run = b0;
        for (size_t q = b0; q <= b1; q++) {
            int ok = q < b1 && (mine[q - b0] || atomic_load(&seg->sg_state[q]) == LRVM__PG_DIRTY);
            if (ok)
                continue;
            if (q > run && unprotect(seg, run, q - run) != 0)
                goto fail;
            run = q + 1;
        }
        for (size_t q = b0; q < b1; q++)
            if (mine[q - b0])
                atomic_store(&seg->sg_state[q], LRVM__PG_DIRTY);      /* keeps I1 */
        return 1;
    }
    /* A first store right after a run of DIRTY pages is most likely a
     * sequential writer going on: take as many CLEAN pages after P as the
     * run is long (up to AHEAD_MAX) in the same mprotect. A fault costs
     * more than copying and diffing a page that then goes unwritten.
     * (lrvm_set_range and the read() wrappers name their pages exactly.) */
    size_t behind = 0, n = 1;
    while (from_fault && behind < AHEAD_MAX && p > behind &&
           atomic_load(&seg->sg_state[p - behind - 1]) == LRVM__PG_DIRTY)
        behind++;
    while (n <= behind && p + n < seg->sg_npages && claim(seg, p + n))
        n++;
    if (unprotect(seg, p, n) != 0)
        goto fail;
    for (size_t q = p; q < p + n; q++)
        atomic_store(&seg->sg_state[q], LRVM__PG_DIRTY);              /* keeps I1 */
    return 1;
fail:
    say("lrvm: mprotect failed while capturing a page (too many mappings? "
        "raise vm.max_map_count); the store cannot go on\n");
    return 0;
}

/* Capture page P of SEG: returns 1 when the store that faulted may be
 * retried, 0 when the fault is not ours. Async-signal-safe. */
static int capture(struct lrvm__seg *seg, size_t p, int from_fault)
{
    /* The thread that froze the segment (a commit, abort or sync reading
     * its pages) waits for nothing a capture could bring: its fault means
     * the program unmapped or protected the page. Decline at once instead
     * of waiting for itself (keeps I6). */
    if (from_fault && atomic_load(&seg->sg_frozen) == freezer()) {
        say("lrvm: a page of a segment was unmapped or protected by the program "
            "while lrvm read it (lrvm.h C11)\n");
        return 0;
    }
    unsigned char st = atomic_load(&seg->sg_state[p]);
    if (st == LRVM__PG_DIRTY) {
        /* Either another thread finished the capture after our fault, or
         * the page is writable and the fault is a real error. */
        if (from_fault) {
            const void *a = seg->sg_base + p * page_size;
            if (a == last_dirty_fault && ++dirty_retries > RETRY_LIMIT)
                return 0;
            if (a != last_dirty_fault)
                dirty_retries = 0;
            last_dirty_fault = a;
            sched_yield();
        }
        return 1;
    }
    last_dirty_fault = NULL;
    /* Keeps I5: a capture starts only on a segment that is not frozen, and
     * the thread that freezes it waits for those under way. The first look
     * keeps waiting stores from holding the count up. */
    int handled = 1;
    if (!atomic_load(&seg->sg_frozen)) {
        atomic_fetch_add(&seg->sg_capturing, 1);
        if (!atomic_load(&seg->sg_frozen))
            handled = capture_page(seg, p, from_fault);
        atomic_fetch_sub(&seg->sg_capturing, 1);
    }
    if (handled && atomic_load(&seg->sg_state[p]) != LRVM__PG_DIRTY)
        sched_yield();                      /* frozen, sealed, or lost a race */
    return handled;
}

/* Capture page P of SEG outside a fault (lrvm_set_range, the read()
 * wrappers, abort) until it is DIRTY; 0 if it cannot be made writable. */
static int capture_now(struct lrvm__seg *seg, size_t p)
{
    while (atomic_load(&seg->sg_state[p]) != LRVM__PG_DIRTY)
        if (!capture(seg, p, 0))
            return 0;
    return 1;
}

static int on_fault(void *addr, int serious)
{
    (void)serious;
    atomic_fetch_add(&inflight, 1);
    int handled = 0;
    struct lrvm__seg *seg = area_find(addr);
    if (seg != NULL) {
        size_t p = (size_t)((unsigned char *)addr - seg->sg_base) / page_size;
        if (p < seg->sg_npages)
            handled = capture(seg, p, 1);
    }
    atomic_fetch_sub(&inflight, 1);
    return handled;
}

void lrvm__track_prepare_kernel_write(void *addr, size_t len)
{
    if (len == 0)
        return;
    atomic_fetch_add(&inflight, 1);
    uintptr_t a = (uintptr_t)addr & ~(uintptr_t)(page_size - 1);
    uintptr_t end = (uintptr_t)addr + len;
    for (; a < end; a += page_size) {
        struct lrvm__seg *seg = area_find((void *)a);
        if (seg == NULL)
            continue;
        size_t p = (size_t)((unsigned char *)a - seg->sg_base) / page_size;
        if (p < seg->sg_npages)
            (void)capture_now(seg, p);
    }
    atomic_fetch_sub(&inflight, 1);
}

static void track_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    long max_maps = 65530;
    char buf[32];
    if (lrvm__io_read_small("/proc/sys/vm/max_map_count", buf, sizeof buf) > 0 && atol(buf) > 0)
        max_maps = atol(buf);
    /* An isolated writable page costs two mappings; leave the program
     * two thirds of its budget. */
    map_budget = max_maps / 6;
    handler_ok = sigsegv_install_handler(on_fault) == 0 && lrvm__wrappers;
}

/* ------------------------------------------------- segment life */

static void mp_detach(lrvm_t *s, struct lrvm__seg *seg);

/* Can this thread take the fault of its first store? A thread that
 * blocks SIGSEGV would die of it instead (the kernel forces the default
 * action on a blocked synchronous fault). */
static int sigsegv_deliverable(void)
{
    sigset_t blocked;
    return pthread_sigmask(SIG_BLOCK, NULL, &blocked) == 0 && !sigismember(&blocked, SIGSEGV);
}

static int mp_attach(lrvm_t *s, struct lrvm__seg *seg)
{
    pthread_once(&init_once, track_init);
    if (!handler_ok)
        return LRVM_EMODE;
    if (!sigsegv_deliverable()) {
        LRVM__TRACE("%s: this thread blocks SIGSEGV, so the mprotect tracker cannot "
                    "capture its stores: refused (lrvm.h C1)", seg->sg_name);
        return LRVM_EMODE;
    }
    seg->sg_npages = seg->sg_maplen / page_size;
    if (seg->sg_npages > UINT32_MAX)
        return LRVM_EINVAL;
    seg->sg_state = calloc(seg->sg_npages, 1);
    seg->sg_dirty = malloc(seg->sg_npages * sizeof *seg->sg_dirty);
    seg->sg_shadow = mmap(NULL, seg->sg_maplen, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (seg->sg_shadow == MAP_FAILED)
        seg->sg_shadow = NULL;
    int rc = LRVM_ENOMEM;
    if (seg->sg_state == NULL || seg->sg_dirty == NULL || seg->sg_shadow == NULL)
        goto fail;
    if (mprotect(seg->sg_base, seg->sg_maplen, PROT_READ) != 0)
        goto fail;
    lrvm__lock(&areas_mu, LRVM__RANK_LEAF);
    int slot = -1, used = atomic_load(&areas_used);
    for (int i = 0; i < used && slot < 0; i++)
        if (atomic_load(&areas[i].seg) == NULL)
            slot = i;
    if (slot < 0 && used < MAX_AREAS)
        slot = used;
    if (slot >= 0) {
        atomic_store(&areas[slot].start, (uintptr_t)seg->sg_base);
        atomic_store(&areas[slot].end, (uintptr_t)seg->sg_base + seg->sg_maplen);
        atomic_store(&areas[slot].seg, seg);                           /* keeps I3 */
        if (slot == used)
            atomic_store(&areas_used, used + 1);
        atomic_fetch_add(&lrvm__tracked_areas, 1);
    }
    lrvm__unlock(&areas_mu);
    if (slot < 0)
        goto fail;
    return 0;
fail:
    mp_detach(s, seg);
    return rc;
}

static void mp_detach(lrvm_t *s, struct lrvm__seg *seg)
{
    (void)s;
    lrvm__lock(&areas_mu, LRVM__RANK_LEAF);
    int used = atomic_load(&areas_used);
    for (int i = 0; i < used; i++) {
        if (atomic_load(&areas[i].seg) == seg) {
            atomic_store(&areas[i].seg, NULL);
            atomic_fetch_sub(&lrvm__tracked_areas, 1);
        }
    }
    lrvm__unlock(&areas_mu);
    while (atomic_load(&inflight) != 0)                                /* keeps I3 */
        sched_yield();
    if (seg->sg_shadow != NULL)
        munmap(seg->sg_shadow, seg->sg_maplen);
    free(seg->sg_state);
    free(seg->sg_dirty);
    lrvm__stash_free(seg);
    seg->sg_shadow = NULL;
    seg->sg_state = NULL;
    seg->sg_dirty = NULL;
    seg->sg_stash = NULL;
}

/* ------------------------------------------------- diff and re-protect */

/* Feed the changed runs of dirty page P of SEG to FN. */
static int diff_page(struct lrvm__seg *seg, size_t p, lrvm__run_fn *fn, void *arg)
{
    size_t len = seg->sg_size - p * page_size;
    return lrvm__page_diff(seg, p * page_size, seg->sg_base + p * page_size,
                           seg->sg_shadow + p * page_size, len > page_size ? page_size : len,
                           fn, arg);
}

struct emit_to {
    lrvm__emit_fn *emit;
    void          *arg;
};

static int emit_live(void *arg, struct lrvm__seg *seg, size_t off, size_t len)
{
    const struct emit_to *to = arg;
    return to->emit(to->arg, seg, off, seg->sg_base + off, len);
}

static int emit_dirty_pages(struct lrvm__seg *seg, struct emit_to *to)
{
    size_t n = atomic_load(&seg->sg_ndirty);
    for (size_t i = 0; i < n; i++) {
        int rc = diff_page(seg, seg->sg_dirty[i], emit_live, to);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Are pages [first, first+n) of SEG still mapped? (A program may have
 * unmapped one: lrvm.h C11.) msync checks it without touching them. */
static int mapped(const struct lrvm__seg *seg, size_t first, size_t n)
{
    return msync(seg->sg_base + first * page_size, n * page_size, MS_ASYNC) == 0;
}

/* Are all the dirty pages of frozen SEG still mapped? One call over the
 * span they cover (keeps I6). */
static int pages_mapped(const struct lrvm__seg *seg)
{
    size_t n = atomic_load(&seg->sg_ndirty), lo = SIZE_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        size_t p = seg->sg_dirty[i];
        lo = p < lo ? p : lo;
        hi = p > hi ? p : hi;
    }
    return n == 0 || mapped(seg, lo, hi + 1 - lo);
}

/* Stop captures on SEG and wait for those under way (keeps I5): its dirty
 * list and page states then change only by the caller, who holds the
 * store's lock, until thaw(). A store that faults meanwhile waits. */
static void freeze(struct lrvm__seg *seg)
{
    atomic_store(&seg->sg_frozen, freezer());
    while (atomic_load(&seg->sg_capturing) != 0)
        sched_yield();
}

static void thaw(struct lrvm__seg *seg)
{
    atomic_store(&seg->sg_frozen, 0);
}

/* Make the dirty pages of frozen SEG read-only again and SEALED. */
static void seal(struct lrvm__seg *seg)
{
    size_t n = atomic_load(&seg->sg_ndirty);
    size_t lo = SIZE_MAX, hi = 0;
    int writable = 0;
    for (size_t i = 0; i < n; i++) {
        size_t p = seg->sg_dirty[i];
        lo = p < lo ? p : lo;
        hi = p > hi ? p : hi;
        writable |= atomic_load(&seg->sg_state[p]) == LRVM__PG_DIRTY;
    }
    /* One call over the span: the pages in between are read-only already,
     * and the kernel merges the span back into one mapping. */
    if (writable &&
        mprotect(seg->sg_base + lo * page_size, (hi + 1 - lo) * page_size, PROT_READ) != 0) {
        /* The program unmapped a page of the span (C11): protect the
         * pages that are left one by one. */
        for (size_t i = 0; i < n; i++) {
            size_t p = seg->sg_dirty[i];
            if (mapped(seg, p, 1) &&
                mprotect(seg->sg_base + p * page_size, page_size, PROT_READ) != 0)
                say("lrvm: mprotect failed while protecting committed pages\n");
        }
    }
    atomic_fetch_sub(&unprotected_runs, atomic_exchange(&seg->sg_unprotected, 0));
    for (size_t i = 0; i < n; i++)
        atomic_store(&seg->sg_state[seg->sg_dirty[i]], LRVM__PG_SEALED);
}

/* The dirty pages of frozen SEG are committed or restored: seal them if
 * that is not done yet, then CLEAN (keeps I2), and let captures go on. */
static void settle(struct lrvm__seg *seg)
{
    seal(seg);
    size_t n = atomic_load(&seg->sg_ndirty);
    for (size_t i = 0; i < n; i++) {
        atomic_store(&seg->sg_state[seg->sg_dirty[i]], LRVM__PG_CLEAN);
        /* A private copy now, and a before-image in the shadow. */
        lrvm__res_mark(seg->sg_store, seg, seg->sg_dirty[i], 1, 1);
    }
    atomic_store(&seg->sg_ndirty, 0);
    thaw(seg);
}

/* Committing the sealed pages of frozen SEG failed: they stay dirty, and
 * the next store to one makes it writable again without a new copy. */
static void unseal(struct lrvm__seg *seg)
{
    size_t n = atomic_load(&seg->sg_ndirty);
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&seg->sg_state[seg->sg_dirty[i]]) == LRVM__PG_SEALED)
            atomic_store(&seg->sg_state[seg->sg_dirty[i]], LRVM__PG_KEPT);
    thaw(seg);
}

/* ------------------------------------------------- ambient set-aside */

static int mp_begin(lrvm_tx_t *tx)
{
    for (int i = 0; i < tx->tx_nsegs; i++) {
        struct lrvm__seg *seg = tx->tx_segs[i];
        size_t had = seg->sg_nstash;
        freeze(seg);
        seal(seg);
        size_t n = atomic_load(&seg->sg_ndirty);
        for (size_t k = 0; k < n; k++) {
            int rc = diff_page(seg, seg->sg_dirty[k], lrvm__stash_add, NULL);
            if (rc < 0) {
                /* The pages stay ambient and dirty: drop the runs set
                 * aside from them (keeps I4). */
                lrvm__stash_drop(seg, had);
                unseal(seg);
                return rc;
            }
        }
        settle(seg);
    }
    return 0;
}

/* ------------------------------------------------- commit, abort, sync */

/* lrvm_set_range: capture the range's pages now, without faults. */
static int mp_capture(lrvm_tx_t *tx, struct lrvm__seg *seg, size_t off, size_t len)
{
    (void)tx;
    size_t first = off / page_size, last = (off + len - 1) / page_size;
    for (size_t p = first; p <= last; p++)
        if (!capture_now(seg, p))
            return LRVM_ENOMEM;
    return 0;
}

/* A commit starts: the epoch's dirty lists stop growing. A sync also
 * seals the ambient pages before it reads them, because other threads
 * may go on storing. */
static int mp_commit_start(lrvm_t *s, lrvm_tx_t *tx)
{
    struct lrvm__seg *seg;
    int rc = 0;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        freeze(seg);
        if (!pages_mapped(seg))                                     /* keeps I6 */
            rc = LRVM_EFAULT;
    }
    if (rc == 0 && tx == NULL)
        LRVM__EPOCH_FOR_EACH(s, tx, i, seg)
            seal(seg);
    return rc;
}

/* The epoch's changed runs; the ambient epoch's begin with the runs set
 * aside by transactions that took its segments. */
static int mp_redo(lrvm_t *s, lrvm_tx_t *tx, lrvm__emit_fn *emit, void *arg)
{
    struct emit_to to = { emit, arg };
    int rc = tx == NULL ? lrvm__stash_emit(s, emit, arg) : 0;
    if (rc < 0)
        return rc;
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        int rc = emit_dirty_pages(seg, &to);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A transaction's records are on their way to disk: protect its pages
 * again meanwhile. */
static void mp_seal(lrvm_t *s, lrvm_tx_t *tx)
{
    struct lrvm__seg *seg;
    if (tx != NULL)
        LRVM__EPOCH_FOR_EACH(s, tx, i, seg)
            seal(seg);
}

static void mp_committed(lrvm_t *s, lrvm_tx_t *tx)
{
    if (tx == NULL) {
        for (size_t i = 0; i < s->nsegs; i++)
            lrvm__stash_drop(s->segs[i], 0);
    }
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        if (tx != NULL)
            lrvm__stash_refresh(seg);                                   /* keeps I4 */
        settle(seg);
    }
}

/* The commit failed: the epoch stays open with its pages dirty. */
static void mp_commit_failed(lrvm_t *s, lrvm_tx_t *tx)
{
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg)
        unseal(seg);
}

/* Put back every before-image, protect again. */
static void mp_abort(lrvm_tx_t *tx)
{
    for (int i = 0; i < tx->tx_nsegs; i++) {
        struct lrvm__seg *seg = tx->tx_segs[i];
        /* Pages of a failed commit are read-only: writable first. A page
         * the program unmapped has nothing to restore (keeps I6). */
        int whole = pages_mapped(seg);
        size_t n = atomic_load(&seg->sg_ndirty);
        for (size_t k = 0; k < n; k++)
            if (whole || mapped(seg, seg->sg_dirty[k], 1))
                (void)capture_now(seg, seg->sg_dirty[k]);
        freeze(seg);
        n = atomic_load(&seg->sg_ndirty);
        for (size_t k = 0; k < n; k++) {
            size_t p = seg->sg_dirty[k];
            if (whole || mapped(seg, p, 1))
                memcpy(seg->sg_base + p * page_size, seg->sg_shadow + p * page_size, page_size);
        }
        settle(seg);
    }
}

/* ------------------------------------------------- giving pages back */

/* Only a CLEAN page goes: a DIRTY or KEPT one belongs to an open epoch,
 * which writes its private copy and needs its before-image. The segment
 * is frozen, so no page leaves CLEAN meanwhile, and a store waits. A
 * segment with runs set aside keeps its private copies: their CLEAN
 * pages hold ambient bytes the file does not. */
static int mp_may(void *arg, struct lrvm__seg *seg, size_t p, unsigned what)
{
    (void)arg;
    if (what == LRVM__RES_PRIVATE && seg->sg_nstash > 0)
        return 0;
    return atomic_load(&seg->sg_state[p]) == LRVM__PG_CLEAN;
}

/* A private copy given back reads the file again, still read-only, so
 * the next store to it is captured as a first one; a before-image given
 * back is a page of zeros until the next capture copies over it. */
static int mp_release(lrvm_t *s, struct lrvm__seg *seg)
{
    struct lrvm__res_pass pass = { .spare_in_file = 0, .may = mp_may };
    freeze(seg);
    int rc = lrvm__res_release(s, seg, &pass);
    thaw(seg);
    return rc;
}

#ifdef LRVM_DEBUG
/* I1 and I5 for the epoch's segments, which the caller has frozen or
 * holds the store's lock over: each page on the dirty list once, in a
 * state that has a before-image; no page off the list in such a state. */
static void mp_check(lrvm_t *s, lrvm_tx_t *tx)
{
    struct lrvm__seg *seg;
    LRVM__EPOCH_FOR_EACH(s, tx, i, seg) {
        size_t n = atomic_load(&seg->sg_ndirty);
        LRVM__ASSERT(n <= seg->sg_npages);
        size_t listed = 0;
        for (size_t p = 0; p < seg->sg_npages; p++) {
            unsigned char st = atomic_load(&seg->sg_state[p]);
            if (st == LRVM__PG_DIRTY || st == LRVM__PG_SEALED || st == LRVM__PG_KEPT)
                listed++;
        }
        /* A page still CAPTURING is on the list already (claim appends
         * it before it turns DIRTY). */
        LRVM__ASSERT(listed <= n);
        for (size_t k = 0; k < n; k++)
            LRVM__ASSERT(seg->sg_dirty[k] < seg->sg_npages);
    }
}
#endif

const struct lrvm__tracker lrvm__track_mprotect = {
    .name = "mprotect",
    .mode = LRVM_TRACK_MPROTECT,
    .ambient = 1,
    .owner_fast = 0,
    .shared = 0,
    .attach = mp_attach,
    .detach = mp_detach,
    .begin = mp_begin,
    .capture = mp_capture,
    .commit_start = mp_commit_start,
    .redo = mp_redo,
    .seal = mp_seal,
    .committed = mp_committed,
    .commit_failed = mp_commit_failed,
    .abort = mp_abort,
    .release = mp_release,
#ifdef LRVM_DEBUG
    .check = mp_check,
#endif
};
