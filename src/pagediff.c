/*
 * pagediff.c -- what the automatic trackers share: the changed runs of a
 * page against its image, and the ambient runs that lrvm_begin sets aside.
 *
 * Owns: the rule that joins changed bytes into runs (MERGE_GAP), which
 * segments an epoch covers, and a segment's set-aside runs (sg_stash). Never: reads or writes a file, or
 * calls a part above it; the trackers (track_mprotect.c, track_uffd.c)
 * decide which pages to compare and when.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MERGE_GAP 8              /* equal bytes that still join two changed runs */

int lrvm__page_diff(struct lrvm__seg *seg, size_t off, const unsigned char *now,
                    const unsigned char *was, size_t len, lrvm__run_fn *fn, void *arg)
{
    size_t i = 0;
    while (i < len) {
        if (i + 64 <= len && memcmp(now + i, was + i, 64) == 0) {
            i += 64;
            continue;
        }
        if (now[i] == was[i]) {
            i++;
            continue;
        }
        size_t start = i, last = i;
        for (size_t j = i + 1; j < len && j - last <= MERGE_GAP; j++)
            if (now[j] != was[j])
                last = j;
        int rc = fn(arg, seg, off + start, last + 1 - start);
        if (rc < 0)
            return rc;
        i = last + 1;
    }
    return 0;
}

struct lrvm__seg *lrvm__epoch_seg(lrvm_t *s, lrvm_tx_t *tx, size_t i)
{
    if (tx != NULL)
        return tx->tx_segs[i];
    return lrvm__seg_held(s->segs[i]) ? NULL : s->segs[i];
}

int lrvm__stash_add(void *arg, struct lrvm__seg *seg, size_t off, size_t len)
{
    (void)arg;
    struct lrvm__stash_run *r = lrvm__room_for(seg->sg_stash, seg->sg_nstash,
                                                &seg->sg_stash_cap, sizeof *r);
    if (r == NULL)
        return LRVM_ENOMEM;
    seg->sg_stash = r;
    unsigned char *data = malloc(len);
    if (data == NULL)
        return LRVM_ENOMEM;
    memcpy(data, seg->sg_base + off, len);
    seg->sg_stash[seg->sg_nstash++] = (struct lrvm__stash_run){ off, len, data };
    return 0;
}

void lrvm__stash_drop(struct lrvm__seg *seg, size_t keep)
{
    while (seg->sg_nstash > keep)
        free(seg->sg_stash[--seg->sg_nstash].sr_data);
}

void lrvm__stash_free(struct lrvm__seg *seg)
{
    lrvm__stash_drop(seg, 0);
    free(seg->sg_stash);
    seg->sg_stash = NULL;
    seg->sg_stash_cap = 0;
}

int lrvm__stash_emit(lrvm_t *s, lrvm__emit_fn *emit, void *arg)
{
    for (size_t i = 0; i < s->nsegs; i++) {
        struct lrvm__seg *seg = s->segs[i];
        for (size_t k = 0; k < seg->sg_nstash; k++) {
            struct lrvm__stash_run *r = &seg->sg_stash[k];
            int rc = emit(arg, seg, r->sr_off, r->sr_data, r->sr_len);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

void lrvm__stash_refresh(struct lrvm__seg *seg)
{
    for (size_t k = 0; k < seg->sg_nstash; k++) {
        struct lrvm__stash_run *r = &seg->sg_stash[k];
        memcpy(r->sr_data, seg->sg_base + r->sr_off, r->sr_len);
    }
}
