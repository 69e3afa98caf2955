/*
 * track.c -- what a transaction saves before a change and logs at commit.
 *
 * Owns: the before-images of a transaction and the list of its redo
 * ranges. This release has the explicit tracker only: exactly the ranges
 * declared with lrvm_set_range are saved, restored by abort and logged by
 * commit. The automatic tracker (write-protected pages and a SIGSEGV
 * handler) plugs in here behind the same four calls: set_range, redo,
 * restore, release.
 * Never: logs a byte outside a declared range, or frees a before-image
 * while its transaction is open.
 *
 * Invariants
 *   I1 tx_ranges holds every declared range in declaration order, each
 *      with the bytes it held when it was first declared; restoring them
 *      newest first therefore leaves the oldest before-image of every byte.
 *   I2 Redo ranges are emitted sorted by segment and offset, overlapping
 *      and touching ranges merged, so every declared byte is logged once.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int lrvm__track_set_range(lrvm_tx_t *tx, struct lrvm__seg *seg, size_t off, size_t len)
{
    if (tx->tx_nranges > 0) {
        /* A loop that declares the same range again needs no new copy. */
        struct lrvm__range *last = &tx->tx_ranges[tx->tx_nranges - 1];
        if (last->rg_seg == seg && off >= last->rg_off &&
            off + len <= last->rg_off + last->rg_len)
            return 0;
    }
    if (tx->tx_nranges == tx->tx_cap) {
        size_t cap = tx->tx_cap ? tx->tx_cap * 2 : 8;
        struct lrvm__range *r = realloc(tx->tx_ranges, cap * sizeof *r);
        if (r == NULL)
            return LRVM_ENOMEM;
        tx->tx_ranges = r;
        tx->tx_cap = cap;
    }
    unsigned char *before = malloc(len);
    if (before == NULL)
        return LRVM_ENOMEM;
    memcpy(before, seg->sg_base + off, len);
    tx->tx_ranges[tx->tx_nranges++] = (struct lrvm__range){ seg, off, len, before };
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct lrvm__range *x = a, *y = b;
    if (x->rg_seg != y->rg_seg)
        return (uintptr_t)x->rg_seg < (uintptr_t)y->rg_seg ? -1 : 1;
    if (x->rg_off != y->rg_off)
        return x->rg_off < y->rg_off ? -1 : 1;
    return 0;
}

int lrvm__track_redo(lrvm_tx_t *tx, struct lrvm__enc *e)
{
    size_t n = tx->tx_nranges;
    if (n == 0)
        return 0;
    /* Sort a copy: the declaration order is needed by restore (I1). */
    struct lrvm__range *sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL)
        return LRVM_ENOMEM;
    memcpy(sorted, tx->tx_ranges, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, range_cmp);

    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        struct lrvm__seg *seg = sorted[i].rg_seg;
        size_t start = sorted[i].rg_off, end = start + sorted[i].rg_len;
        for (i++; i < n && sorted[i].rg_seg == seg && sorted[i].rg_off <= end; i++) {
            size_t e2 = sorted[i].rg_off + sorted[i].rg_len;
            if (e2 > end)
                end = e2;
        }
        rc = lrvm__enc_range(e, seg, start, seg->sg_base + start, end - start);   /* I2 */
    }
    free(sorted);
    return rc;
}

void lrvm__track_restore(lrvm_tx_t *tx)
{
    for (size_t i = tx->tx_nranges; i-- > 0;) {                 /* I1 */
        struct lrvm__range *r = &tx->tx_ranges[i];
        memcpy(r->rg_seg->sg_base + r->rg_off, r->rg_before, r->rg_len);
    }
}

void lrvm__track_release(lrvm_tx_t *tx)
{
    for (size_t i = 0; i < tx->tx_nranges; i++)
        free(tx->tx_ranges[i].rg_before);
    free(tx->tx_ranges);
    tx->tx_ranges = NULL;
    tx->tx_nranges = tx->tx_cap = 0;
}
