/*
 * resident.c -- what the store keeps of its segments in memory after their
 * commits, and which of it may be given back.
 *
 * Owns: each segment's residency bytes (sg_res, one per page) and the
 * store's counts of them (res_private, res_spare), and giving pages back.
 * Never: decides that one may go: only the tracker knows who may store
 * into a page at this moment, so it calls lrvm__res_release with its own
 * rules, and holds off stores while the runs go (doc/architecture.md,
 * "Bounded memory").
 *
 * A page a commit (or abort) changed is a private copy of the file's
 * page in the process, and the automatic trackers keep a second copy of
 * it: the mprotect tracker a before-image in its shadow, which is dead
 * once the epoch ends, the userfaultfd tracker the page's image, which
 * holds the committed bytes. A private copy (or an image) may go only
 * when the segment file holds those committed bytes: after a truncation
 * has applied the generation of the log whose records hold them. Each
 * page remembers that generation, folded into 7 bits (its tag); pages of
 * the generation the log is writing are kept. Two generations 127 apart
 * share a tag, so a page committed long ago and never given back since
 * may be kept once more than it needs: kept, never given back early.
 *
 * Invariants
 *   I1 A page's byte is 0, or its tag (RES_TAG bits) is 1 + the number of
 *      a generation, modulo 127, no older than that of the last commit or
 *      abort that changed the page; RES_SPARE marks a second copy kept.
 *   I2 res_private and res_spare count exactly the pages of the store's
 *      mapped segments with a tag, and with RES_SPARE.
 *   I3 A page is given back only when the file holds its committed bytes:
 *      its tag is not that of a generation the log still holds, the one
 *      being retired beside the commits included.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RES_TAG   0x7fu
#define RES_SPARE 0x80u

static unsigned tag_of(uint64_t generation)
{
    return 1u + (unsigned)(generation % RES_TAG);
}

int lrvm__res_attach(struct lrvm__seg *seg)
{
    seg->sg_res_n = seg->sg_maplen / (size_t)sysconf(_SC_PAGESIZE);
    seg->sg_res = calloc(seg->sg_res_n ? seg->sg_res_n : 1, 1);
    return seg->sg_res != NULL ? 0 : LRVM_ENOMEM;
}

void lrvm__res_detach(lrvm_t *s, struct lrvm__seg *seg)
{
    if (seg->sg_res == NULL)
        return;
    for (size_t p = 0; p < seg->sg_res_n; p++) {                    /* keeps I2 */
        s->res_private -= (seg->sg_res[p] & RES_TAG) != 0;
        s->res_spare -= (seg->sg_res[p] & RES_SPARE) != 0;
    }
    free(seg->sg_res);
    seg->sg_res = NULL;
}

void lrvm__res_mark(lrvm_t *s, struct lrvm__seg *seg, size_t first, size_t n, int spare)
{
    unsigned tag = tag_of(s->log.lg_generation);                    /* keeps I1 */
    for (size_t p = first; p < first + n && p < seg->sg_res_n; p++) {
        unsigned char b = seg->sg_res[p];
        s->res_private += (b & RES_TAG) == 0;
        s->res_spare += spare && !(b & RES_SPARE);
        seg->sg_res[p] = (unsigned char)(tag | (spare ? RES_SPARE : (b & RES_SPARE)));
    }
}

size_t lrvm__res_pages(const lrvm_t *s)
{
    return s->res_private + s->res_spare;
}

/* The tags whose pages the files may not hold yet, or 0: the generation
 * being retired, whose truncation runs beside the commits, and the one
 * the log is writing, unless the log holds no record. While one retires
 * the current one's tag is kept even with no record in it: a commit that
 * waited for its group's sync while the log switched wrote into the
 * retiring generation and tagged its pages with the next. */
static void tags_unapplied(lrvm_t *s, unsigned keep[2])
{
    const struct lrvm__log *lg = &s->log;
    keep[0] = lg->lg_retiring ? tag_of(lg->lg_ret.lr_generation) : 0;
    keep[1] = lrvm__log_holds_records(lg) ? tag_of(lg->lg_generation) : 0;
}

size_t lrvm__res_unapplied(lrvm_t *s)
{
    unsigned keep[2];
    size_t n = 0;
    tags_unapplied(s, keep);
    for (size_t i = 0; i < s->nsegs; i++) {
        const struct lrvm__seg *seg = s->segs[i];
        for (size_t p = 0; p < seg->sg_res_n; p++) {
            unsigned tag = seg->sg_res[p] & RES_TAG;
            n += (tag != 0 && (tag == keep[0] || tag == keep[1])) +
                 (tag != 0 && (tag == keep[0] || tag == keep[1]) &&
                  (seg->sg_res[p] & RES_SPARE));
        }
    }
    return n;
}

/* Give back run [first, first+n) of WHAT, the private copies (the
 * mapping falls back to the file's pages) or the second copies in
 * sg_shadow, and forget it here; 0 or an LRVM_E* code (then it stays). */
static int give_run(lrvm_t *s, struct lrvm__seg *seg, size_t first, size_t n, unsigned what)
{
    if (n == 0)
        return 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *from = what == LRVM__RES_PRIVATE ? seg->sg_base : seg->sg_shadow;
    if (madvise(from + first * page, n * page, MADV_DONTNEED) != 0)
        return LRVM_EFAULT;
    for (size_t p = first; p < first + n; p++) {
        unsigned char b = seg->sg_res[p];
        if ((what & LRVM__RES_PRIVATE) && (b & RES_TAG)) {
            s->res_private--;
            b &= (unsigned char)~RES_TAG;
        }
        if ((what & LRVM__RES_SPARE) && (b & RES_SPARE)) {
            s->res_spare--;
            b &= (unsigned char)~RES_SPARE;
        }
        seg->sg_res[p] = b;
    }
    s->stats.pages_released += n * (((what & LRVM__RES_PRIVATE) != 0) + ((what & LRVM__RES_SPARE) != 0));
    return 0;
}

int lrvm__res_release(lrvm_t *s, struct lrvm__seg *seg, const struct lrvm__res_pass *pass)
{
    unsigned keep[2];
    tags_unapplied(s, keep);
    /* Runs of the private copies and of the spare ones are gathered apart:
     * a page may give back one and keep the other. */
    size_t run[2] = { 0, 0 }, len[2] = { 0, 0 };
    const unsigned what[2] = { LRVM__RES_PRIVATE, LRVM__RES_SPARE };
    int rc = 0;
    for (size_t p = 0; p <= seg->sg_res_n; p++) {
        if (len[0] == 0 && len[1] == 0 && p + 8 <= seg->sg_res_n) {
            uint64_t word;                  /* most pages hold nothing */
            memcpy(&word, seg->sg_res + p, sizeof word);
            if (word == 0) {
                p += 7;
                continue;
            }
        }
        unsigned char b = p < seg->sg_res_n ? seg->sg_res[p] : 0;
        unsigned tag = b & RES_TAG;
        /* Keeps I3: a private copy, or an image, only once its committed
         * bytes are in the file; a before-image whenever its epoch ended. */
        int in_file = tag != 0 && tag != keep[0] && tag != keep[1];
        int may[2] = {
            in_file && (pass->may == NULL || pass->may(pass->arg, seg, p, LRVM__RES_PRIVATE)),
            (b & RES_SPARE) && (in_file || !pass->spare_in_file) &&
                (pass->may == NULL || pass->may(pass->arg, seg, p, LRVM__RES_SPARE)),
        };
        for (int k = 0; k < 2; k++) {
            if (may[k]) {
                if (len[k]++ == 0)
                    run[k] = p;
                continue;
            }
            /* A run that could not go (the program unmapped part of it:
             * lrvm.h C11) stays counted; the others still go. */
            int r = give_run(s, seg, run[k], len[k], what[k]);
            rc = rc < 0 ? rc : r;
            len[k] = 0;
        }
    }
    return rc;
}

#ifdef LRVM_DEBUG
/* I2 over the store's segments; under its lock. */
void lrvm__res_check(const lrvm_t *s)
{
    uint64_t priv = 0, spare = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        const struct lrvm__seg *seg = s->segs[i];
        for (size_t p = 0; p < seg->sg_res_n; p++) {
            priv += (seg->sg_res[p] & RES_TAG) != 0;
            spare += (seg->sg_res[p] & RES_SPARE) != 0;
        }
    }
    LRVM__ASSERT(priv == s->res_private && spare == s->res_spare);
}
#endif
