/*
 * track_explicit.c -- the explicit tracker: exactly the ranges declared
 * with lrvm_set_range are saved, logged and restored (classic RVM).
 *
 * Owns: a transaction's declared ranges (tx_ranges, in declaration order)
 * and their before-images end to end in tx_undo; commit's sorted copy
 * and the merge sort's room beside it (tx_sorted). The arrays stay with
 * the handle when it goes back to tx.c's pool, so a steady stream of
 * small transactions allocates nothing.
 * Never: touches a page's protection, or keeps anything past the end of a
 * transaction but the (bounded) arrays. It has no ambient epoch.
 *
 * capture may run without the store's lock, in the owner's fast path
 * (tx.c, "Biased ownership"): it touches only the transaction's arrays.
 * So may redo and committed, in a commit at the log's tail (log.c): they
 * touch the arrays and the residency of pages already counted.
 *
 * Invariants
 *   I1 tx_ranges holds every declared range in declaration order, and
 *      tx_undo the bytes each held when first declared; restoring newest
 *      first leaves the oldest before-image of every byte.
 *   I2 Commit logs each declared byte once: the ranges are sorted by
 *      segment and offset and overlapping ones merged.
 *   I3 Shared transactions declare disjoint bytes (lrvm.h C15): a range
 *      of one overlaps no range of another open transaction. The program
 *      promises it; the debug build checks it at each declaration, which
 *      there runs under the store's lock (tx.c), so the others' arrays
 *      hold still. A transaction whose commit waits for a group's sync is
 *      past changing its bytes (its records are made), so it counts no
 *      more: the heap's words that its commit declared go on changing
 *      in the heap's own transactions meanwhile (heap.c).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define UNDO_KEEP   (1u << 20)   /* larger before-images are freed when a tx ends, */
#define RANGES_KEEP 4096         /* and the ranges of more declarations than this */

static int ex_attach(lrvm_t *s, struct lrvm__seg *seg)
{
    (void)s;
    (void)seg;
    return 0;
}

static void ex_detach(lrvm_t *s, struct lrvm__seg *seg)
{
    (void)s;
    (void)seg;
}

static int ex_begin(lrvm_tx_t *tx)
{
    (void)tx;
    return 0;
}

#ifdef LRVM_DEBUG
/* Does [off, off+len) of SEG overlap a range that another open shared
 * transaction declared (I3)? Only shared transactions hold SEG if TX
 * does, and only theirs are read: an owner may be adding to the arrays
 * of a transaction begun alone, without the lock. */
static int overlaps_other(const lrvm_tx_t *tx, const struct lrvm__seg *seg, size_t off,
                          size_t len)
{
    LRVM__ASSERT_HELD(&tx->tx_store->mu);               /* L1 */
    for (const lrvm_tx_t *t = tx->tx_store->txs; t != NULL; t = t->tx_next) {
        if (t == tx || !t->tx_shared || t->tx_committing)
            continue;
        for (size_t i = 0; i < t->tx_nranges; i++) {
            const struct lrvm__range *r = &t->tx_ranges[i];
            if (r->rg_seg == seg && off < r->rg_off + r->rg_len && r->rg_off < off + len)
                return 1;
        }
    }
    return 0;
}
#endif

static int ex_capture(lrvm_tx_t *tx, struct lrvm__seg *seg, size_t off, size_t len)
{
#ifdef LRVM_DEBUG
    if (tx->tx_shared && overlaps_other(tx, seg, off, len))
        return LRVM_EEXIST;
#endif
    if (tx->tx_nranges > tx->tx_mark) {
        /* A loop that declares the same range again needs no new copy
         * (but a hook's range is kept apart from the program's, so that
         * a rollback to the mark puts back all the hook changed). */
        struct lrvm__range *last = &tx->tx_ranges[tx->tx_nranges - 1];
        if (last->rg_seg == seg && off >= last->rg_off &&
            off + len <= last->rg_off + last->rg_len)
            return 0;
    }
    struct lrvm__range *r = lrvm__room_for(tx->tx_ranges, tx->tx_nranges, &tx->tx_cap, sizeof *r);
    if (r == NULL)
        return LRVM_ENOMEM;
    tx->tx_ranges = r;
    size_t at = tx->tx_undo_len;
    unsigned char *u = lrvm__room_for(tx->tx_undo, at + len - 1, &tx->tx_undo_cap, 1);
    if (u == NULL)
        return LRVM_ENOMEM;
    tx->tx_undo = u;
    memcpy(tx->tx_undo + at, seg->sg_base + off, len);
    tx->tx_undo_len = at + len;
    tx->tx_ranges[tx->tx_nranges++] = (struct lrvm__range){ seg, off, len, at };   /* keeps I1 */
    return 0;
}

/* Does X come before Y: by segment, then offset? */
static inline int range_before(const struct lrvm__range *x, const struct lrvm__range *y)
{
    if (x->rg_seg != y->rg_seg)
        return (uintptr_t)x->rg_seg < (uintptr_t)y->rg_seg;
    return x->rg_off < y->rg_off;
}

#define SORT_RUN 16     /* ranges a run is sorted by insertion */

/* Sort the N ranges at R by insertion: the fastest way for as few as a
 * run holds. */
static void insertion_sort(struct lrvm__range *r, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct lrvm__range x = r[i];
        size_t j = i;
        for (; j > 0 && range_before(&x, &r[j - 1]); j--)
            r[j] = r[j - 1];
        r[j] = x;
    }
}

/* Merge the sorted runs A[0, NA) and B[0, NB) into OUT. */
static void merge_runs(const struct lrvm__range *a, size_t na, const struct lrvm__range *b,
                       size_t nb, struct lrvm__range *out)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb)
        *out++ = range_before(&b[j], &a[i]) ? b[j++] : a[i++];
    memcpy(out, a + i, (na - i) * sizeof *a);
    memcpy(out + (na - i), b + j, (nb - j) * sizeof *b);
}

/* Sort the N ranges at R by segment and offset, with room for N more at
 * TMP; returns where the sorted ranges are, R or TMP. A merge sort from
 * the bottom, with the comparison inline: the heap's own transactions
 * declare over a hundred ranges, and qsort's calls through a pointer
 * made their sort two fifths of a take of blocks (doc/architecture.md,
 * "The sort of a take"). Runs already in order are copied, not merged. */
static struct lrvm__range *sort_ranges(struct lrvm__range *r, struct lrvm__range *tmp, size_t n)
{
    for (size_t i = 0; i < n; i += SORT_RUN)
        insertion_sort(r + i, n - i < SORT_RUN ? n - i : SORT_RUN);
    struct lrvm__range *from = r, *to = tmp;
    for (size_t w = SORT_RUN; w < n; w *= 2) {
        for (size_t i = 0; i < n; i += 2 * w) {
            size_t na = n - i < w ? n - i : w, nb = n - i - na < w ? n - i - na : w;
            if (nb == 0 || !range_before(&from[i + na], &from[i + na - 1]))
                memcpy(to + i, from + i, (na + nb) * sizeof *from);
            else
                merge_runs(from + i, na, from + i + na, nb, to + i);
        }
        struct lrvm__range *t = from;
        from = to;
        to = t;
    }
    return from;
}

static int ex_commit_start(lrvm_t *s, lrvm_tx_t *tx)
{
    (void)s;
    (void)tx;
    return 0;
}

/* The declared ranges, sorted and merged, once each (keeps I2). */
static int ex_redo(lrvm_t *s, lrvm_tx_t *tx, lrvm__emit_fn *emit, void *arg)
{
    (void)s;
    size_t n = tx->tx_nranges;
    if (n == 0)
        return 0;
    /* The copy to sort, and as much again for the merges. */
    struct lrvm__range *sorted = lrvm__room_for(tx->tx_sorted, 2 * n - 1, &tx->tx_sorted_cap,
                                                sizeof *sorted);
    if (sorted == NULL)
        return LRVM_ENOMEM;
    tx->tx_sorted = sorted;
    memcpy(sorted, tx->tx_ranges, n * sizeof *sorted);       /* keeps I1 */
    sorted = sort_ranges(sorted, sorted + n, n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        struct lrvm__seg *seg = sorted[i].rg_seg;
        size_t start = sorted[i].rg_off, end = start + sorted[i].rg_len;
        for (i++; i < n && sorted[i].rg_seg == seg && sorted[i].rg_off <= end; i++) {
            size_t e2 = sorted[i].rg_off + sorted[i].rg_len;
            if (e2 > end)
                end = e2;
        }
        rc = emit(arg, seg, start, seg->sg_base + start, end - start);
    }
    return rc;
}

static void ex_seal(lrvm_t *s, lrvm_tx_t *tx)
{
    (void)s;
    (void)tx;
}

/* Forget TX's declarations. The arrays stay for the handle's next life,
 * unless a large transaction made them too big to keep idle. */
static void release_declared(lrvm_tx_t *tx)
{
    tx->tx_nranges = 0;
    tx->tx_undo_len = 0;
    if (tx->tx_cap > RANGES_KEEP) {
        free(tx->tx_ranges);
        free(tx->tx_sorted);
        tx->tx_ranges = tx->tx_sorted = NULL;
        tx->tx_cap = tx->tx_sorted_cap = 0;
    }
    if (tx->tx_undo_cap > UNDO_KEEP) {
        free(tx->tx_undo);
        tx->tx_undo = NULL;
        tx->tx_undo_cap = 0;
    }
}

/* The pages range R lies on: *FIRST, and how many. */
static size_t range_pages(const struct lrvm__range *r, size_t *first)
{
    unsigned shift = r->rg_seg->sg_page_shift;
    *first = r->rg_off >> shift;
    return ((r->rg_off + r->rg_len - 1) >> shift) + 1 - *first;
}

/* The pages of TX's ranges are private copies now, which the store keeps
 * until they may go (resident.c). */
static void mark_declared(lrvm_t *s, lrvm_tx_t *tx)
{
    for (size_t i = 0; i < tx->tx_nranges; i++) {
        size_t first, n = range_pages(&tx->tx_ranges[i], &first);
        lrvm__res_mark(s, tx->tx_ranges[i].rg_seg, first, n, 0);
    }
}

/* A commit at the log's tail marks pages without the store lock: each
 * must be counted already, so that no count changes (resident.c). */
static int ex_tail_ok(lrvm_t *s, const lrvm_tx_t *tx)
{
    (void)s;
    for (size_t i = 0; i < tx->tx_nranges; i++) {
        size_t first, n = range_pages(&tx->tx_ranges[i], &first);
        if (!lrvm__res_counted(tx->tx_ranges[i].rg_seg, first, n))
            return 0;
    }
    return 1;
}

static void ex_committed(lrvm_t *s, lrvm_tx_t *tx)
{
    mark_declared(s, tx);
    release_declared(tx);
}

static void ex_commit_failed(lrvm_t *s, lrvm_tx_t *tx)
{
    (void)s;
    (void)tx;                   /* the declarations stay, for a retry or an abort */
}

static void ex_abort(lrvm_tx_t *tx)
{
    for (size_t i = tx->tx_nranges; i-- > 0;) {                     /* keeps I1 */
        struct lrvm__range *r = &tx->tx_ranges[i];
        memcpy(r->rg_seg->sg_base + r->rg_off, tx->tx_undo + r->rg_undo, r->rg_len);
    }
    mark_declared(tx->tx_store, tx);
    release_declared(tx);
}

static void ex_rollback(lrvm_tx_t *tx, size_t mark)
{
    LRVM__ASSERT(mark <= tx->tx_nranges);
    if (mark == tx->tx_nranges)
        return;
    for (size_t i = tx->tx_nranges; i-- > mark;) {                  /* keeps I1 */
        struct lrvm__range *r = &tx->tx_ranges[i];
        memcpy(r->rg_seg->sg_base + r->rg_off, tx->tx_undo + r->rg_undo, r->rg_len);
    }
    tx->tx_undo_len = tx->tx_ranges[mark].rg_undo;
    tx->tx_nranges = mark;
}

/* Only a transaction stores into a segment in explicit mode, and it holds
 * the segment: a segment no transaction holds gives back every page the
 * file holds. (A store outside a transaction is the program's error; it
 * was never to be kept, and it is lost from memory too: lrvm.h C14.) */
static int ex_release(lrvm_t *s, struct lrvm__seg *seg)
{
    if (lrvm__seg_held(seg))
        return 0;
    static const struct lrvm__res_pass every_page = { .may = NULL };
    return lrvm__res_release(s, seg, &every_page);
}

#ifdef LRVM_DEBUG
/* Every declared range lies in a segment of TX and its before-image in
 * tx_undo (I1). */
static void ex_check(lrvm_t *s, lrvm_tx_t *tx)
{
    (void)s;
    if (tx == NULL)
        return;
    size_t undo = 0;
    for (size_t i = 0; i < tx->tx_nranges; i++) {
        const struct lrvm__range *r = &tx->tx_ranges[i];
        int in_tx = 0;
        for (int k = 0; k < tx->tx_nsegs; k++)
            in_tx |= tx->tx_segs[k] == r->rg_seg;
        LRVM__ASSERT(in_tx);
        LRVM__ASSERT(r->rg_off + r->rg_len <= r->rg_seg->sg_size);
        LRVM__ASSERT(r->rg_undo == undo);
        LRVM__ASSERT(!tx->tx_shared || !overlaps_other(tx, r->rg_seg, r->rg_off, r->rg_len));
        undo += r->rg_len;
    }
    LRVM__ASSERT(undo == tx->tx_undo_len);
}
#endif

const struct lrvm__tracker lrvm__track_explicit = {
    .name = "explicit",
    .mode = LRVM_TRACK_EXPLICIT,
    .ambient = 0,
    .owner_fast = 1,
    .shared = 1,
    .attach = ex_attach,
    .detach = ex_detach,
    .begin = ex_begin,
    .capture = ex_capture,
    .commit_start = ex_commit_start,
    .redo = ex_redo,
    .seal = ex_seal,
    .committed = ex_committed,
    .commit_failed = ex_commit_failed,
    .abort = ex_abort,
    .rollback = ex_rollback,
    .release = ex_release,
    .tail_ok = ex_tail_ok,
#ifdef LRVM_DEBUG
    .check = ex_check,
#endif
};
