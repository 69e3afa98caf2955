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

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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
        unsigned char b = __atomic_load_n(&seg->sg_res[p], __ATOMIC_RELAXED);
        /* The counts and the byte are written only when they change: a
         * commit at the log's tail marks pages already counted, without
         * the store lock, and two such commits of shared transactions may
         * mark one page at once (to the same byte: one generation while
         * the tail is open). A byte stored again, unchanged, would still
         * take its line from the other threads, which read it at each
         * commit (lrvm__res_counted). */
        if ((b & RES_TAG) == 0)
            s->res_private++;
        if (spare && !(b & RES_SPARE))
            s->res_spare++;
        unsigned char now = (unsigned char)(tag | (spare ? RES_SPARE : (b & RES_SPARE)));
        if (now != b)
            __atomic_store_n(&seg->sg_res[p], now, __ATOMIC_RELAXED);
    }
}

int lrvm__res_counted(const struct lrvm__seg *seg, size_t first, size_t n)
{
    for (size_t p = first; p < first + n && p < seg->sg_res_n; p++)
        if ((__atomic_load_n(&seg->sg_res[p], __ATOMIC_RELAXED) & RES_TAG) == 0)
            return 0;
    return 1;
}

int lrvm__res_spare(const struct lrvm__seg *seg, size_t p)
{
    return p < seg->sg_res_n && (seg->sg_res[p] & RES_SPARE);
}

size_t lrvm__res_pages(const lrvm_t *s)
{
    return s->res_private + s->res_spare;
}

/* Do the N residency bytes from RES keep nothing? */
static int none_kept(const unsigned char *res, size_t n)
{
    size_t i = 0;
    for (uint64_t word; i + sizeof word <= n; i += sizeof word) {
        memcpy(&word, res + i, sizeof word);
        if (word != 0)
            return 0;
    }
    for (; i < n; i++)
        if (res[i] != 0)
            return 0;
    return 1;
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
            if (p % 64 == 0 && p + 64 <= seg->sg_res_n && none_kept(seg->sg_res + p, 64)) {
                p += 63;                    /* most pages hold nothing */
                continue;
            }
            unsigned tag = seg->sg_res[p] & RES_TAG;
            n += (tag != 0 && (tag == keep[0] || tag == keep[1])) +
                 (tag != 0 && (tag == keep[0] || tag == keep[1]) &&
                  (seg->sg_res[p] & RES_SPARE));
        }
    }
    return n;
}

/* Runs to give back, gathered so that the kernel takes many in one call:
 * madvise run by run pays a TLB shootdown for each run, and random pages
 * make a run of each page; process_madvise on the process itself (Linux
 * 6.13 and later) pays one for a batch. Where it is refused, madvise
 * takes them one by one. One of each kind of copy per pass. */
#define GIVE_BATCH 256

struct give {
    lrvm_t *s;
    struct lrvm__seg *seg;
    const struct lrvm__res_pass *pass;
    unsigned what;                  /* one LRVM__RES_* bit */
    unsigned char *from;            /* its pages: sg_base or sg_shadow */
    int *pidfd;                     /* the pass's; -1 none yet, -2 refused */
    size_t n;                       /* runs in iov */
    struct iovec iov[GIVE_BATCH];
};

static atomic_int pm_refused;       /* process_madvise refused once: not asked again */
int lrvm__res_one_by_one;

/* Forget run IOV of G's pages here once it went (keeps I2); a page with
 * no copy kept (untouched) is no release. */
static void forget_run(struct give *g, const struct iovec *iov)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t first = (size_t)((unsigned char *)iov->iov_base - g->from) / page;
    size_t n = iov->iov_len / page;
    for (size_t p = first; p < first + n; p++) {
        unsigned char b = g->seg->sg_res[p];
        if (g->what == LRVM__RES_PRIVATE && (b & RES_TAG)) {
            g->s->res_private--;
            g->s->stats.pages_released++;
            b &= (unsigned char)~RES_TAG;
        }
        if (g->what == LRVM__RES_SPARE && (b & RES_SPARE)) {
            g->s->res_spare--;
            g->s->stats.pages_released++;
            b &= (unsigned char)~RES_SPARE;
        }
        g->seg->sg_res[p] = b;
    }
}

/* How many of the runs from I on the kernel gave back in one call, 0 if
 * it gave back none of them or the call is refused. */
static size_t give_many(struct give *g, size_t i)
{
#if defined(SYS_process_madvise) && defined(SYS_pidfd_open)
    if (*g->pidfd == -1)
        *g->pidfd = atomic_load_explicit(&pm_refused, memory_order_relaxed) ||
                            lrvm__res_one_by_one
                        ? -2 : (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (*g->pidfd < 0) {
        *g->pidfd = -2;
        return 0;
    }
    long r = syscall(SYS_process_madvise, *g->pidfd, g->iov + i, g->n - i, MADV_DONTNEED, 0);
    if (r < 0 && errno != ENOMEM) {             /* ENOMEM: the first run is not mapped */
        atomic_store_explicit(&pm_refused, 1, memory_order_relaxed);
        close(*g->pidfd);
        *g->pidfd = -2;
    }
    size_t done = 0;
    for (; r > 0 && i + done < g->n && (size_t)r >= g->iov[i + done].iov_len; done++)
        r -= (long)g->iov[i + done].iov_len;
    return done;
#else
    (void)g;
    (void)i;
    return 0;
#endif
}

/* Give back G's runs; 0 or an LRVM_E* code for a run that could not go
 * (the program unmapped part of it: lrvm.h C11), which stays counted while
 * the others go. */
static int give_flush(struct give *g)
{
    int rc = 0;
    for (size_t i = 0; i < g->n;) {
        size_t done = give_many(g, i);
        if (done == 0) {                        /* the next run alone */
            if (madvise(g->iov[i].iov_base, g->iov[i].iov_len, MADV_DONTNEED) != 0) {
                rc = LRVM_EFAULT;
                i++;
                continue;
            }
            done = 1;
        }
        for (size_t k = i; k < i + done; k++)
            forget_run(g, &g->iov[k]);
        i += done;
    }
    g->n = 0;
    return rc;
}

/* Add run [first, first+n) of pages to G, giving the batch back when
 * full; 0 or an LRVM_E* code (give_flush). */
static int give_run(struct give *g, size_t first, size_t n)
{
    if (n == 0)
        return 0;
    if (g->what == LRVM__RES_PRIVATE && g->pass->giving != NULL)
        g->pass->giving(g->pass->arg, g->seg, first, n);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    g->iov[g->n++] = (struct iovec){ g->from + first * page, n * page };
    return g->n == GIVE_BATCH ? give_flush(g) : 0;
}

int lrvm__res_release(lrvm_t *s, struct lrvm__seg *seg, const struct lrvm__res_pass *pass)
{
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    unsigned keep[2];
    tags_unapplied(s, keep);
    /* Runs of the private copies and of the spare ones are gathered apart:
     * a page may give back one and keep the other. */
    int pidfd = -1;
    struct give give[2] = {
        { s, seg, pass, LRVM__RES_PRIVATE, seg->sg_base, &pidfd, 0, { { 0 } } },
        { s, seg, pass, LRVM__RES_SPARE, seg->sg_shadow, &pidfd, 0, { { 0 } } },
    };
    size_t run[2] = { 0, 0 }, len[2] = { 0, 0 };
    size_t span = pass->span, page = (size_t)sysconf(_SC_PAGESIZE);
    size_t lead = span ? ((uintptr_t)seg->sg_base / page) % span : 0;
    int rc = 0;
    for (size_t p = 0; p <= seg->sg_res_n; p++) {
        if (span && p < seg->sg_res_n && (p == 0 || (p + lead) % span == 0)) {
            size_t end = p + span - (p + lead) % span;
            if (end > seg->sg_res_n)
                end = seg->sg_res_n;
            if (none_kept(seg->sg_res + p, end - p)) {      /* nothing to free here */
                for (int k = 0; k < 2; k++) {
                    int r = give_run(&give[k], run[k], len[k]);
                    rc = rc < 0 ? rc : r;
                    len[k] = 0;
                }
                p = end - 1;
                continue;
            }
        }
        if (!span && len[0] == 0 && len[1] == 0 && p + 8 <= seg->sg_res_n) {
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
        int none = span && p < seg->sg_res_n;
        int may[2] = {
            (in_file || (none && tag == 0)) &&
                (pass->may == NULL || pass->may(pass->arg, seg, p, LRVM__RES_PRIVATE)),
            ((b & RES_SPARE) ? in_file || !pass->spare_in_file : none) &&
                (pass->may == NULL || pass->may(pass->arg, seg, p, LRVM__RES_SPARE)),
        };
        for (int k = 0; k < 2; k++) {
            if (may[k]) {
                if (len[k]++ == 0)
                    run[k] = p;
                continue;
            }
            int r = give_run(&give[k], run[k], len[k]);
            rc = rc < 0 ? rc : r;
            len[k] = 0;
        }
    }
    for (int k = 0; k < 2; k++) {
        int r = give_flush(&give[k]);
        rc = rc < 0 ? rc : r;
    }
    if (pidfd >= 0)
        close(pidfd);
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
