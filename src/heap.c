/*
 * heap.c -- the persistent heap: an allocator whose whole state lives in
 * one segment mapped at a fixed address, so that raw pointers stored in
 * the heap stay valid from run to run.
 *
 * Owns: struct lrvm_heap, the layout of a heap segment, lrvm_heap_open,
 * lrvm_malloc and its kin. Never: changes the heap outside whatever owns
 * the heap segment's pages (its open transaction, else the ambient
 * epoch); writes a segment file, except to lay out a new heap in the
 * file lrvm__seg_create hands it.
 *
 * Layout (offsets from the base, native byte order like the pointers the
 * program keeps in the heap):
 *   0      the header, struct heap_hdr, alone in the first 4 KiB
 *   4104   the first block; blocks follow one another up to the
 *          epilogue, a used block header of size 0 in the 8 bytes before
 *          the heap's size rounded down to 16
 * A block is a header word (size | USED | PREV_USED | PENDING; the size a
 * multiple of 16, at least 32, header included) and its payload,
 * 16-aligned. A free block keeps the offsets of the next and previous
 * free blocks of its bin after its header, and its size again in its
 * last word, so that the block after it finds it (its PREV_USED bit is
 * clear).
 *
 * Bins (versions 2 and 3): the header holds the heads of NBINS free
 * lists, one for each size from 32 to 512 bytes and then one for each
 * power of two.
 * malloc takes the first block that fits from the bin of the size asked
 * for, else the first block of the next bin that holds any (every block
 * there fits), and splits off what is left when that can be a block; free
 * merges the block with its free neighbours. Version 1 kept every free
 * block in one list (free_head), which made malloc walk past every small
 * free block gathered at its head; lrvm_heap_open sorts such a heap into
 * bins, in one transaction, the first time it opens it.
 *
 * Version 3 leaves the back link of a bin's first block as it was when
 * the block became first: the bin's head word says it is first. So malloc,
 * which takes a bin's first block, no longer stores into the block after
 * it, on a page of its own most of the time (a page less to capture in
 * auto mode, fewer bytes to log in explicit mode). A version 2 heap,
 * whose back links are all exact, is a version 3 heap once its version
 * word says so; lrvm_heap_open sets it, in a transaction, the first time
 * it opens one. An older liblrvm refuses a version 3 heap with
 * LRVM_EVERSION instead of misreading it. Version 4 adds the PENDING bit
 * (below) and is otherwise version 3: lrvm_heap_open sets the version
 * word of a version 2 or 3 heap, and an older liblrvm refuses version 4.
 *
 * Changes: an operation first declares every range it will store to with
 * lrvm__tx_capture in the transaction that holds the heap segment
 * (explicit mode then logs exactly those; auto mode captures their pages
 * without faults), then stores. With no such transaction, auto mode's
 * ambient epoch captures the stores by faults, and explicit mode refuses
 * with LRVM_EMODE. Every call runs under the store's lock, but those of a
 * shared transaction's owner that its own cache serves (below).
 *
 * Shared transactions (lrvm_begin_shared, lrvm.h C15) declare disjoint
 * bytes, and every operation stores into the header's bins, so the heap's
 * own words cannot go with the caller's transaction: its abort would put
 * back words that other transactions changed since. A call on a heap
 * whose segment shared transactions hold acts for the caller's (the one
 * this thread began last that holds it; none: LRVM_EBUSY), so:
 *   - malloc hands the caller a block marked PENDING: taken, but not yet
 *     the caller's. The caller's commit clears the bit, in the caller's
 *     records; its abort gives the block back. A crash before the
 *     caller's commit leaves it PENDING, and lrvm_heap_open frees every
 *     PENDING block it finds (none can be any open transaction's then).
 *   - free is done at the caller's commit, in its records; its abort
 *     forgets it. A block freed in the transaction that took it goes back
 *     at once.
 *   - A block of up to 512 bytes comes from the transaction's own cache
 *     (I6), which a class of the heap's cache (I5) fills with up to 32
 *     when it runs dry: blocks of each exact bin's size that are USED and
 *     PENDING and no transaction's. A class of the heap's that runs dry
 *     takes 32 blocks, made PENDING, in one transaction of lrvm's own
 *     committed at once without a flush (logged before any commit of a
 *     caller that holds one); a small block that a commit frees is made PENDING in its
 *     records and goes to the transaction's own cache, and one given back
 *     goes there too; an own class that would pass 64 gives its older
 *     half to the heap's cache, whose class that would pass 128 gives half
 *     back to the bins in one transaction of the heap's own; a
 *     transaction's own cache goes to the heap's when its handle ends
 *     (not when it parks: tx.c); and a request the heap is too full for
 *     ends the parked shared transactions, gives the caller's own cache
 *     and the heap's back to the bins, and is tried again. So most
 *     operations change no word of the heap's but the header of the
 *     caller's own block: no transaction of the heap's own, no bin, no
 *     neighbour. A crash leaves the cache's blocks PENDING, freed at the
 *     next open like the rest.
 *     A larger block is taken in a transaction of the heap's own and
 *     freed into the bins, at the caller's commit or when given back.
 *   - calloc's zeros, realloc's copy and set_root's word are the
 *     caller's, declared in its transaction.
 * The caller's commit runs this under the store lock before its records
 * are made (tx.c's hook), so its records hold its blocks' headers and its
 * frees; a commit that fails puts them back. (A commit that waited for a
 * group's sync without the store lock fails only with the store (lrvm.h
 * C4): putting back then may undo heap words other calls changed
 * meanwhile, in memory only; nothing is logged after, and the next open
 * finds the heap the log left.)
 *
 * The owner's steady state takes no store lock. A shared transaction's
 * owner (tx.c, "Biased ownership") runs lrvm_malloc and lrvm_free
 * without it when its own cache serves them (a free is only noted), and
 * its no-flush commit goes to the log's tail (tx.c) when every block it
 * freed fits its own cache: then the commit changes no word of the heap's
 * but its own blocks' headers (PENDING). Calls under the store lock
 * change other bits of the same words (a neighbour's PREV_USED, logged in
 * their transactions), and a record carries whole words: were a tail
 * commit's record placed after such a call's but made before it, its
 * word would put the neighbour's old bit back at replay. So the tail
 * commit changes and logs its headers inside the hooks' gate (tx.c), and
 * heap_malloc and heap_free shut the gate first, which waits for those
 * inside; the gate opens again once their changes are logged, as the
 * store lock is let go (lrvm__tx_tail_open). A change of a
 * transaction's own blocks' headers under the lock (hook_commit's
 * PENDING bits) meets no tail commit's words and leaves the gate open:
 * shutting it there made two threads' commits alternate under the lock
 * for good, each finding the gate shut by the other's. Every header
 * word is stored whole (hdr_set), since the owners read theirs without
 * the lock.
 *
 * A program that writes over the heap's own words (a store after free, an
 * undeclared store in explicit mode that an abort then leaves behind)
 * breaks them. An operation checks each link it follows (free_block_ok),
 * each link it stores through (block_place_ok) and each range it declares
 * (decl_done) first, and fails with LRVM_ECORRUPT, storing nothing,
 * rather than store outside the heap or follow a link into a used block;
 * lrvm_heap_open's check then refuses the heap until it is repaired.
 *
 * Invariants (lrvm__heap_check verifies them, at lrvm_heap_open and in
 * the tests)
 *   I1 The blocks tile [ARENA, epilogue) exactly; no two free blocks are
 *      neighbours; each block's PREV_USED is its predecessor's USED (the
 *      first block's is set).
 *   I2 The bins hold exactly the free blocks, each in the bin of its size
 *      and linked to its neighbours there both ways, but for the back link
 *      of a bin's first block, which is 0 in version 2 and means nothing
 *      in version 3 (version 1: the one list holds them); a free block's
 *      footer is its size.
 *   I3 allocated is the sum of the sizes of the used blocks; root is 0 or
 *      the payload of a used block.
 *   I4 Only a used block is PENDING, and it is one that an open shared
 *      transaction took (in its struct heap_tx), one a cache holds, one
 *      a committed free made a cache's and its hook_end (or
 *      hook_tail_end) has not put there yet, or one a crash left (or
 *      whose giving back failed), freed at the next lrvm_heap_open.
 *   I5 A block in the cache is USED and PENDING, in no transaction's
 *      list, in the class of its size or of one less than MIN_BLOCK below
 *      it (a filling leaves a block too small to split whole); the totals
 *      count its blocks and their bytes (cache_check, debug builds, at
 *      each change). lrvm__heap_usage counts them free: the program's to
 *      take. With no shared transaction on the heap, freeing one is
 *      refused (LRVM_EINVAL).
 *   I6 A block in a transaction's own cache is as one in the heap's (I5),
 *      at most OWN_MAX a class, and counted in its totals (own_check,
 *      debug builds, where the transaction settles); only the
 *      transaction's owner, or a holder of the store's lock that claimed
 *      the transaction (tx.c I5), reads or changes that cache.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HEAP_MAGIC    "LRVMHEAP"            /* 8 bytes, no NUL */
#define HEAP_VERSION  4u
#define NBINS         88u
#define HEAP_HDR      4096u
#define ARENA         ((uint64_t)HEAP_HDR + 8)
#define USED          1u
#define PREV_USED     2u
#define PENDING       4u                    /* used, by an open shared transaction */
#define MIN_BLOCK     32u
#define HEAP_MIN_SIZE 8192u
#define MAX_DECL      16

struct heap_hdr {
    char     magic[8];
    uint64_t version;
    uint64_t base;          /* the address the segment is mapped at */
    uint64_t size;          /* bytes of the heap */
    uint64_t free_head;     /* version 1: the one free list; 0 in version 2 */
    uint64_t root;          /* offset of the root object, 0: none */
    uint64_t allocated;     /* bytes of the used blocks, headers included */
    uint64_t bins[NBINS];   /* first free block of each bin, 0: none */
};

/* The cache (top of the file, I5). */
#define CACHE_CLASSES 31u                   /* bins 0 to 30 */
#define CACHE_LARGEST 512u
#define CACHE_FILL    32u
#define CACHE_MAX     128u
#define OWN_MAX       64u                   /* a transaction's own cache (I6): */
#define OWN_FILL      32u                   /*   a class's bound, and a filling */

struct heap_cache {
    uint64_t blk[CACHE_CLASSES][CACHE_MAX];
    unsigned n[CACHE_CLASSES];
    uint64_t blocks, bytes;                 /* all classes: for lrvm__heap_usage */
};

struct lrvm_heap {
    lrvm_t           *store;
    struct lrvm__seg *seg;
    unsigned char    *base;
    struct lrvm_heap *next;     /* the store's heaps */
    unsigned          calls;    /* debug builds: calls made, to sample checks */
    lrvm_tx_t        *in_tx;    /* store lock: where the declarations of a call
                                   on a shared heap go, while it runs */
    struct heap_cache cache;    /* store lock: small blocks kept for shared
                                   transactions (I5) */
};

/* A not-an-error result of a call that the owner of a shared transaction
 * makes without the store's lock: "take the lock and call again". */
#define NOT_HERE 1

static uint64_t *word(const lrvm_heap_t *h, uint64_t off)
{
    return (uint64_t *)(void *)(h->base + off);
}

/* Block B's header word. The owner of a shared transaction reads its
 * blocks' headers without the store's lock (I6) while calls under it
 * change the PREV_USED bit of the same words, so every header is read
 * there, and stored anywhere, whole. */
static uint64_t hdr_get(const lrvm_heap_t *h, uint64_t b)
{
    return __atomic_load_n(word(h, b), __ATOMIC_RELAXED);
}

static void hdr_set(const lrvm_heap_t *h, uint64_t b, uint64_t w)
{
    __atomic_store_n(word(h, b), w, __ATOMIC_RELAXED);
}

/* Set or clear the PENDING bit of block B's header, declared. */
static void set_pending(const lrvm_heap_t *h, uint64_t b, int pending)
{
    uint64_t w = hdr_get(h, b);
    hdr_set(h, b, pending ? w | PENDING : w & ~(uint64_t)PENDING);
}

static struct heap_hdr *header(const lrvm_heap_t *h)
{
    return (struct heap_hdr *)(void *)h->base;
}

static uint64_t epilogue_of(uint64_t size)
{
    return (size & ~(uint64_t)15) - 8;
}

/* The epilogue of open heap H, never past its segment, even when the
 * program wrote over the header's size: the words the operations follow
 * are checked against it. */
static uint64_t heap_epi(const lrvm_heap_t *h)
{
    uint64_t size = header(h)->size;
    return epilogue_of(size < h->seg->sg_size ? size : h->seg->sg_size);
}

static uint64_t bsize(uint64_t w)
{
    return w & ~(uint64_t)15;
}

/* The bin of a free block of SIZE bytes: 32, 48, ... 512 have one each
 * (0 to 30), then (512, 1024], (1024, 2048], ... one each (31 on). */
static unsigned bin_of(uint64_t size)
{
    if (size <= 512)
        return (unsigned)(size / 16) - 2;
    unsigned log2 = 63u - (unsigned)__builtin_clzll(size - 1);     /* >= 9 */
    unsigned bin = 31 + log2 - 9;
    return bin < NBINS ? bin : NBINS - 1;
}

/* The free-list links of free block B. */
static uint64_t *next_of(const lrvm_heap_t *h, uint64_t b) { return word(h, b + 8); }
static uint64_t *prev_of(const lrvm_heap_t *h, uint64_t b) { return word(h, b + 16); }

/* ------------------------------------------------------------ the check */

int lrvm__heap_check(const lrvm_heap_t *h)
{
    const struct heap_hdr *hd = header(h);
    uint64_t epi = epilogue_of(hd->size), used = 0, nfree = 0;
    uint64_t b = ARENA;
    int prev_used = 1, root_ok = hd->root == 0;

    while (b < epi) {                                               /* I1 */
        uint64_t w = *word(h, b), size = bsize(w);
        if (size < MIN_BLOCK || size > epi - b || ((w & PREV_USED) != 0) != prev_used)
            return LRVM_ECORRUPT;
        if (w & USED) {
            used += size;
            root_ok |= hd->root == b + 8;
        } else {
            if (!prev_used || *word(h, b + size - 8) != size || (w & PENDING))  /* I4 */
                return LRVM_ECORRUPT;
            nfree++;
        }
        prev_used = (w & USED) != 0;
        b += size;
    }
    if (b != epi || *word(h, epi) != (USED | (prev_used ? PREV_USED : 0)))
        return LRVM_ECORRUPT;
    if (used != hd->allocated || !root_ok)                          /* I3 */
        return LRVM_ECORRUPT;
    uint64_t seen = 0;                                              /* I2 */
    int v1 = hd->version == 1;
    for (unsigned k = 0; k < (v1 ? 1 : NBINS); k++) {
        uint64_t prev = 0;
        for (uint64_t f = v1 ? hd->free_head : hd->bins[k]; f != 0; f = *next_of(h, f)) {
            if (f < ARENA || f >= epi || (f - ARENA) % 16 != 0 || ++seen > nfree)
                return LRVM_ECORRUPT;
            uint64_t w = *word(h, f), size = bsize(w);
            /* A free block's header, footer and successor agree, so a
             * link into the middle of a block does not pass for one. */
            if ((w & USED) || size < MIN_BLOCK || size > epi - f ||
                ((prev != 0 || hd->version < 3) && *prev_of(h, f) != prev) ||
                *word(h, f + size - 8) != size || (*word(h, f + size) & PREV_USED) ||
                (!v1 && bin_of(size) != k))
                return LRVM_ECORRUPT;
            prev = f;
        }
    }
    if (!v1 && hd->free_head != 0)
        return LRVM_ECORRUPT;
    return seen == nfree ? 0 : LRVM_ECORRUPT;
}

/* B is a place where a block may start, below EPI, the epilogue. A link
 * about to be stored through is checked so (reading its header as well
 * would stall each operation on a cache miss its store hides). */
static int block_place_ok(uint64_t b, uint64_t epi)
{
    return b >= ARENA && b < epi && (b - ARENA) % 16 == 0;
}

/* B can be a free block: a block's place, and a header that says free
 * and a size that fits. A link is checked so before it is followed. */
static int free_block_ok(const lrvm_heap_t *h, uint64_t b, uint64_t epi)
{
    if (!block_place_ok(b, epi))
        return 0;
    uint64_t w = *word(h, b);
    return !(w & USED) && bsize(w) >= MIN_BLOCK && bsize(w) <= epi - b;
}

/* ------------------------------------------------------------ changes */

/* The ranges an operation will store to, declared before the first store. */
struct decl {
    lrvm_tx_t *tx;          /* NULL: the ambient epoch captures by faults */
    int        n;
    int        bad;         /* a link to be stored through is at no block */
    uint64_t   off[MAX_DECL], len[MAX_DECL];
};

/* Who owns the heap's pages now, for a change. The caller holds the
 * store's lock. */
static int decl_begin(const lrvm_heap_t *h, struct decl *d)
{
    LRVM__ASSERT_HELD(&h->store->mu);                   /* L1 */
    d->tx = h->in_tx;
    d->n = 0;
    d->bad = 0;
    if (h->in_tx != NULL)
        return 0;                           /* a call on a shared heap */
    if (h->seg->sg_shared > 0)
        return LRVM_EBUSY;                  /* no transaction of the caller's */
    if (h->seg->sg_tx != NULL && h->seg->sg_tx->tx_committing)
        return LRVM_EBUSY;                  /* its commit is under way */
    /* Its owner may be declaring; one its owner committed ends here. */
    d->tx = lrvm__seg_claim(h->store, h->seg);
    if (d->tx == NULL && !h->store->tracker->ambient)
        return LRVM_EMODE;                  /* explicit mode: no ambient epoch */
    return 0;
}

static void decl_add(struct decl *d, uint64_t off, uint64_t len)
{
    LRVM__ASSERT(d->n < MAX_DECL);
    d->off[d->n] = off;
    d->len[d->n] = len;
    d->n++;
}

/* Declare D's ranges in the transaction, if any. A link at no block's
 * place, or a range outside the segment, comes from a word of the heap
 * that the program wrote over: LRVM_ECORRUPT, before anything is declared
 * or stored, so an operation never stores outside the heap's blocks
 * through such a word. */
static int decl_done(const lrvm_heap_t *h, struct decl *d)
{
    uint64_t limit = h->seg->sg_size;
    if (d->bad)
        return LRVM_ECORRUPT;
    for (int i = 0; i < d->n; i++)
        if (d->off[i] > limit || d->len[i] > limit - d->off[i])
            return LRVM_ECORRUPT;
    for (int i = 0; i < d->n && d->tx != NULL; i++) {
        int rc = lrvm__tx_capture(d->tx, h->seg, (size_t)d->off[i], (size_t)d->len[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The first free block in the bin of blocks of SIZE bytes, or 0. */
static uint64_t bin_head(const lrvm_heap_t *h, uint64_t size)
{
    return header(h)->bins[bin_of(size)];
}

/* Declare the head word of the bin of free blocks of SIZE bytes. */
static void decl_bin(struct decl *d, uint64_t size)
{
    decl_add(d, offsetof(struct heap_hdr, bins) + 8 * (uint64_t)bin_of(size), 8);
}

/* Is free block B the first of its bin? Then its back link means nothing
 * (I2, version 3). */
static int first_in_bin(const lrvm_heap_t *h, uint64_t b)
{
    return bin_head(h, bsize(*word(h, b))) == b;
}

/* Declare what taking free block B out of its bin stores to: the bin's
 * head word and no back link when B is first, else its neighbours' links. */
static void decl_unlink(const lrvm_heap_t *h, struct decl *d, uint64_t b)
{
    uint64_t q = *next_of(h, b), epi = heap_epi(h);
    decl_bin(d, bsize(*word(h, b)));
    if (first_in_bin(h, b)) {
        if (q != 0 && !block_place_ok(q, epi))
            d->bad = 1;
        return;
    }
    uint64_t p = *prev_of(h, b);
    if (!block_place_ok(p, epi) || (q != 0 && !block_place_ok(q, epi)))
        d->bad = 1;
    decl_add(d, p + 8, 8);
    if (q != 0)
        decl_add(d, q + 16, 8);
}

/* Declare what pushing a free block of SIZE bytes stores to, besides the
 * block itself: its bin's head word, and the back link of the block that
 * will be first then. The operation unlinks the NGONE blocks GONE first:
 * when the first block is one of them, the first then is its successor
 * (decl_unlink declares no back link for a first block, version 3). */
static void decl_push(const lrvm_heap_t *h, struct decl *d, uint64_t size, const uint64_t *gone,
                      int ngone)
{
    uint64_t head = bin_head(h, size), epi = heap_epi(h);
    for (int steps = 0; head != 0; steps++) {
        int unlinked = 0;
        for (int i = 0; i < ngone; i++)
            unlinked |= head == gone[i];
        if (!unlinked)
            break;
        if (steps == ngone || !block_place_ok(head, epi)) {
            d->bad = 1;                     /* a cycle, or a link at no block */
            return;
        }
        head = *next_of(h, head);
    }
    if (head != 0 && !block_place_ok(head, epi))
        d->bad = 1;
    decl_bin(d, size);
    if (head != 0)
        decl_add(d, head + 16, 8);
}

/* Take free block B out of its bin; its header still holds its size. The
 * block after a first block becomes first, its back link left as it is. */
static void unlink_free(const lrvm_heap_t *h, uint64_t b)
{
    uint64_t q = *next_of(h, b);
    if (first_in_bin(h, b)) {
        header(h)->bins[bin_of(bsize(*word(h, b)))] = q;
        return;
    }
    uint64_t p = *prev_of(h, b);
    *next_of(h, p) = q;
    if (q != 0)
        *prev_of(h, q) = p;
}

/* Put free block B, whose header holds its size, at the head of its bin. */
static void push_free(const lrvm_heap_t *h, uint64_t b)
{
    uint64_t *head = &header(h)->bins[bin_of(bsize(*word(h, b)))];
    *next_of(h, b) = *head;
    *prev_of(h, b) = 0;
    if (*head != 0)
        *prev_of(h, *head) = b;
    *head = b;
}

/* The block of payload P, or 0 if P cannot be one. */
static uint64_t block_of(const lrvm_heap_t *h, const void *p)
{
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)h->base;
    uint64_t epi = heap_epi(h);
    if (a < base + ARENA + 8 || a - base >= epi)
        return 0;
    uint64_t b = (uint64_t)(a - base) - 8;
    if ((b - ARENA) % 16 != 0)
        return 0;
    uint64_t w = hdr_get(h, b);
    if (!(w & USED) || bsize(w) < MIN_BLOCK || bsize(w) > epi - b)
        return 0;
    return b;
}

/* The size of the block that holds N bytes (N at most the heap's size). */
static uint64_t block_need(size_t n)
{
    uint64_t need = ((uint64_t)n + 8 + 15) & ~(uint64_t)15;
    return need < MIN_BLOCK ? MIN_BLOCK : need;
}

/* heap_malloc and heap_free change the headers of blocks other than the
 * one they hand out or take back (PREV_USED), which a commit at the log's
 * tail may change at the same time: so they shut the hooks' gate first
 * (top of the file). */
static void *heap_malloc(lrvm_heap_t *h, size_t n, int *err)
{
    struct heap_hdr *hd = header(h);
    struct decl d;
    if ((*err = decl_begin(h, &d)) < 0)
        return NULL;
    lrvm__tx_gate_shut(h->store);
    if (n > hd->size) {
        *err = LRVM_ENOMEM;
        return NULL;
    }
    uint64_t need = block_need(n);
    /* The first block that fits in NEED's own bin, else the head of the
     * next bin that has one. A bin longer than the heap can hold blocks
     * is a cycle: the program wrote over the heap's own words. */
    unsigned k = bin_of(need);
    uint64_t epi = heap_epi(h), b = hd->bins[k], steps = epi / MIN_BLOCK;
    for (;;) {
        if (b != 0 && !free_block_ok(h, b, epi)) {
            *err = LRVM_ECORRUPT;           /* a link that leads out of the blocks */
            return NULL;
        }
        if (b == 0 || bsize(*word(h, b)) >= need)
            break;
        if (steps-- == 0) {
            *err = LRVM_ECORRUPT;
            return NULL;
        }
        b = *next_of(h, b);
    }
    while (b == 0 && ++k < NBINS)
        b = hd->bins[k];
    if (b == 0) {
        *err = LRVM_ENOMEM;
        return NULL;
    }
    if (!free_block_ok(h, b, epi) || bsize(*word(h, b)) < need) {
        *err = LRVM_ECORRUPT;
        return NULL;
    }
    uint64_t w = *word(h, b), size = bsize(w), rest = size - need, after = b + size;
    decl_add(&d, offsetof(struct heap_hdr, allocated), 8);
    decl_add(&d, b, 24);
    decl_unlink(h, &d, b);
    if (rest >= MIN_BLOCK) {
        decl_add(&d, b + need, 24);         /* the rest: header, links */
        decl_add(&d, after - 8, 8);         /* and footer */
        decl_push(h, &d, rest, &b, 1);
    } else {
        decl_add(&d, after, 8);             /* the next block's PREV_USED */
    }
    if ((*err = decl_done(h, &d)) < 0)
        return NULL;

    unlink_free(h, b);
    if (rest >= MIN_BLOCK) {
        uint64_t r = b + need;
        hdr_set(h, b, need | USED | (w & PREV_USED));
        hdr_set(h, r, rest | PREV_USED);
        *word(h, after - 8) = rest;
        push_free(h, r);
    } else {
        need = size;
        hdr_set(h, b, size | USED | (w & PREV_USED));
        hdr_set(h, after, *word(h, after) | PREV_USED);
    }
    hd->allocated += need;
    return h->base + b + 8;
}

static int heap_free(lrvm_heap_t *h, void *p)
{
    struct heap_hdr *hd = header(h);
    struct decl d;
    int rc;
    if ((rc = decl_begin(h, &d)) < 0)
        return rc;
    lrvm__tx_gate_shut(h->store);
    uint64_t b = block_of(h, p);
    if (b == 0)
        return LRVM_EINVAL;
    uint64_t w = *word(h, b), size = bsize(w);
    uint64_t start = b, total = size, nb = b + size, nw = *word(h, nb), pb = 0;
    decl_add(&d, offsetof(struct heap_hdr, allocated), 8);
    if (!(nw & USED)) {
        decl_unlink(h, &d, nb);
        total += bsize(nw);
    }
    if (!(w & PREV_USED)) {
        uint64_t psize = *word(h, b - 8);
        if (psize < MIN_BLOCK || psize % 16 != 0 || psize > b - ARENA)
            return LRVM_ECORRUPT;
        pb = b - psize;
        decl_unlink(h, &d, pb);
        start = pb;
        total += b - pb;
    }
    decl_add(&d, start, 24);
    decl_add(&d, start + total - 8, 16);    /* footer, and the next block's header */
    uint64_t gone[2];
    int ngone = 0;
    if (!(nw & USED))
        gone[ngone++] = nb;
    if (pb != 0)
        gone[ngone++] = pb;
    decl_push(h, &d, total, gone, ngone);
    if ((rc = decl_done(h, &d)) < 0)
        return rc;

    if (!(nw & USED))
        unlink_free(h, nb);
    if (pb != 0)
        unlink_free(h, pb);
    hdr_set(h, start, total | PREV_USED);   /* a free block follows a used one (I1) */
    *word(h, start + total - 8) = total;
    hdr_set(h, start + total, *word(h, start + total) & ~(uint64_t)PREV_USED);
    push_free(h, start);
    hd->allocated -= size;
    return 0;
}

/* ------------------------------------------------------------ shared */

/* What a shared transaction did on one heap, to be settled when it ends
 * (the blocks it took, PENDING, and those it freed, done at its commit;
 * the first NCACHED of them go to its cache then: offsets of block
 * headers), and its own cache (I6), which stays with it while it is
 * parked. A transaction's list of them is its hook's argument (tx.c);
 * its owner changes them without the store's lock (tx.c I5), so the
 * totals are read whole. */
struct heap_tx {
    lrvm_heap_t     *h;
    uint64_t        *taken, *freed;
    size_t           ntaken, nfreed, ncached, cap_taken, cap_freed;
    struct heap_tx  *next;
    int              entered;               /* the first's: in the hooks' gate */
    unsigned char    nown[CACHE_CLASSES];
    uint64_t         own[CACHE_CLASSES][OWN_MAX];
    _Atomic uint64_t own_blocks, own_bytes; /* for lrvm__heap_usage */
};

static int hook_commit(lrvm_tx_t *tx, void *arg);
static void hook_end(lrvm_tx_t *tx, void *arg, int committed);
static int hook_tail(lrvm_tx_t *tx, void *arg);
static void hook_tail_end(lrvm_tx_t *tx, void *arg, int committed);
static void hook_drop(lrvm_tx_t *tx, void *arg);
static const struct lrvm__tx_hook heap_hook = {
    hook_commit, hook_end, hook_tail, hook_tail_end, hook_drop
};

/* Room for one more offset in *V (N of them, room for *CAP). */
static int offsets_room(uint64_t **v, size_t n, size_t *cap)
{
    uint64_t *r = lrvm__room_for(*v, n, cap, sizeof **v);
    if (r == NULL)
        return LRVM_ENOMEM;
    *v = r;
    return 0;
}

/* TX's record for heap H, or NULL. */
static struct heap_tx *heap_tx_find(const lrvm_heap_t *h, const lrvm_tx_t *tx)
{
    struct heap_tx *t = tx->tx_hook == &heap_hook ? tx->tx_hook_arg : NULL;
    while (t != NULL && t->h != h)
        t = t->next;
    return t;
}

/* TX's record for heap H, made (and the hook set) on its first call.
 * Store lock held. */
static struct heap_tx *heap_tx_of(lrvm_heap_t *h, lrvm_tx_t *tx)
{
    struct heap_tx *t = heap_tx_find(h, tx);
    if (t != NULL)
        return t;
    if ((t = calloc(1, sizeof *t)) == NULL)
        return NULL;
    t->h = h;
    t->next = tx->tx_hook == &heap_hook ? tx->tx_hook_arg : NULL;
    lrvm__tx_set_hook(tx, &heap_hook, t);
    return t;
}

/* Where in V (N offsets) B is, or N. */
static size_t offset_index(const uint64_t *v, size_t n, uint64_t b)
{
    size_t i = 0;
    while (i < n && v[i] != b)
        i++;
    return i;
}

/* Free the blocks B[0..N) in a transaction of the heap's own (an abort's
 * blocks, or one freed in the transaction that took it). */
static int free_own(lrvm_heap_t *h, const uint64_t *b, size_t n)
{
    lrvm_tx_t *own;
    int rc = lrvm__tx_begin_own(h->store, h->seg, &own);
    if (rc < 0)
        return rc;
    h->in_tx = own;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = heap_free(h, h->base + b[i] + 8);
    h->in_tx = NULL;
    int crc = lrvm__tx_end_own(own, rc == 0);
    return rc < 0 ? rc : crc;
}

/* Does block B (used) go to a cache when it is freed or given back? */
static int cacheable(const lrvm_heap_t *h, uint64_t b)
{
    return bsize(hdr_get(h, b)) <= CACHE_LARGEST;
}

#ifdef LRVM_DEBUG
/* A cached block: I5 and I6. */
static void cached_check(const lrvm_heap_t *h, unsigned k, uint64_t b, uint64_t epi)
{
    uint64_t w = hdr_get(h, b);
    LRVM__ASSERT(block_place_ok(b, epi) && (w & USED) && (w & PENDING));
    LRVM__ASSERT(bsize(w) >= (k + 2) * 16 && bsize(w) < (k + 2) * 16 + MIN_BLOCK);
}

/* I5, checked at each change of the cache: O(blocks it holds). */
static void cache_check(const lrvm_heap_t *h)
{
    const struct heap_cache *c = &h->cache;
    uint64_t blocks = 0, bytes = 0, epi = heap_epi(h);
    for (unsigned k = 0; k < CACHE_CLASSES; k++) {
        LRVM__ASSERT(c->n[k] <= CACHE_MAX);
        for (unsigned i = 0; i < c->n[k]; i++) {
            cached_check(h, k, c->blk[k][i], epi);
            blocks++;
            bytes += bsize(hdr_get(h, c->blk[k][i]));
        }
    }
    LRVM__ASSERT(blocks == c->blocks && bytes == c->bytes);
}

/* I6, checked where a transaction's own cache settles. */
static void own_check(const struct heap_tx *t)
{
    uint64_t blocks = 0, bytes = 0, epi = heap_epi(t->h);
    for (unsigned k = 0; k < CACHE_CLASSES; k++) {
        LRVM__ASSERT(t->nown[k] <= OWN_MAX);
        for (unsigned i = 0; i < t->nown[k]; i++) {
            cached_check(t->h, k, t->own[k][i], epi);
            blocks++;
            bytes += bsize(hdr_get(t->h, t->own[k][i]));
        }
    }
    LRVM__ASSERT(blocks == t->own_blocks && bytes == t->own_bytes);
}
#else
#define cache_check(h) ((void)0)
#define own_check(t)   ((void)0)
#endif

/* Give class K's blocks past the first KEEP back to the heap, in a
 * transaction of its own. */
static int cache_trim(lrvm_heap_t *h, unsigned k, unsigned keep)
{
    struct heap_cache *c = &h->cache;
    if (c->n[k] <= keep)
        return 0;
    uint64_t bytes = 0;
    for (unsigned i = keep; i < c->n[k]; i++)
        bytes += bsize(hdr_get(h, c->blk[k][i]));
    int rc = free_own(h, c->blk[k] + keep, c->n[k] - keep);
    if (rc == 0) {
        c->blocks -= c->n[k] - keep;
        c->bytes -= bytes;
        c->n[k] = keep;
    }
    return rc;
}

/* Give every block of the cache back to the heap: a heap too full for a
 * request may hold what it needs there. */
static int cache_empty(lrvm_heap_t *h)
{
    int rc = 0;
    for (unsigned k = 0; k < CACHE_CLASSES && rc == 0; k++)
        rc = cache_trim(h, k, 0);
    return rc;
}

/* Add block B of SIZE bytes to class K, which has room. */
static void cache_add(struct heap_cache *c, unsigned k, uint64_t b, uint64_t size)
{
    c->blk[k][c->n[k]++] = b;
    c->blocks++;
    c->bytes += size;
}

/* Put block B (USED and PENDING, no transaction's) in class K of the
 * cache: the class of its size, or the one it was taken for (a filling
 * leaves a block too small to split whole: I5). */
static int cache_put(lrvm_heap_t *h, unsigned k, uint64_t b)
{
    struct heap_cache *c = &h->cache;
    uint64_t size = bsize(hdr_get(h, b));
    int rc;
    LRVM__ASSERT(k < CACHE_CLASSES && size >= (k + 2) * 16 && size < (k + 2) * 16 + MIN_BLOCK);
    LRVM__ASSERT(hdr_get(h, b) & PENDING);
    if (c->n[k] == CACHE_MAX && (rc = cache_trim(h, k, CACHE_MAX / 2)) < 0)
        return rc;
    cache_add(c, k, b, size);
    cache_check(h);
    return 0;
}

/* Count block B in T's own cache's totals (IN 1) or out of them (-1):
 * stored whole, since lrvm__heap_usage reads them under the store lock
 * while the owner changes them without it. */
static void own_count(struct heap_tx *t, uint64_t b, int in)
{
    uint64_t size = bsize(hdr_get(t->h, b));
    uint64_t blocks = atomic_load_explicit(&t->own_blocks, memory_order_relaxed);
    uint64_t bytes = atomic_load_explicit(&t->own_bytes, memory_order_relaxed);
    atomic_store_explicit(&t->own_blocks, in > 0 ? blocks + 1 : blocks - 1, memory_order_relaxed);
    atomic_store_explicit(&t->own_bytes, in > 0 ? bytes + size : bytes - size,
                          memory_order_relaxed);
}

/* Add block B (USED and PENDING, cacheable) to class K of T's own cache,
 * which has room; only T's owner, or a holder of the store's lock that
 * claimed T's transaction. */
static void own_add(struct heap_tx *t, unsigned k, uint64_t b)
{
    t->own[k][t->nown[k]++] = b;
    own_count(t, b, 1);
}

/* Take the last block of class K of T's own cache, which holds one. */
static uint64_t own_remove(struct heap_tx *t, unsigned k)
{
    uint64_t b = t->own[k][--t->nown[k]];
    own_count(t, b, -1);
    return b;
}

/* Give class K of T's own cache to the heap's cache but for its KEEP
 * newest blocks, the oldest first, so that the newest of them go on top
 * there (the next to be taken: the most likely still in the CPU's cache).
 * Store lock held. */
static int own_spill(struct heap_tx *t, unsigned k, unsigned keep)
{
    unsigned n = t->nown[k], gone = 0;
    int rc = 0;
    for (; gone + keep < n && rc == 0; gone++) {
        if ((rc = cache_put(t->h, k, t->own[k][gone])) < 0)
            break;
        own_count(t, t->own[k][gone], -1);
    }
    memmove(t->own[k], t->own[k] + gone, (n - gone) * sizeof t->own[k][0]);
    t->nown[k] = (unsigned char)(n - gone);
    return rc;
}

/* Give T's own cache to the heap's cache (its transaction ends), or,
 * with TO_HEAP, everything to the heap (a heap too full for a request).
 * Store lock held. */
static int own_empty(struct heap_tx *t, int to_heap)
{
    int rc = 0;
    for (unsigned k = 0; k < CACHE_CLASSES && rc == 0; k++)
        rc = own_spill(t, k, 0);
    return rc == 0 && to_heap ? cache_empty(t->h) : rc;
}

/* Put block B (USED and PENDING, no longer wanted by T's transaction)
 * in T's own cache, the class of its size. Without the store's lock
 * (LOCKED 0) only a class with room serves (else NOT_HERE); with it, a
 * full class gives half to the heap's cache, and a block too large for
 * a cache is freed in the heap's own transaction. */
static int own_put(struct heap_tx *t, uint64_t b, int locked)
{
    if (!cacheable(t->h, b))
        return locked ? free_own(t->h, &b, 1) : NOT_HERE;
    unsigned k = bin_of(bsize(hdr_get(t->h, b)));
    int rc = 0;
    if (t->nown[k] == OWN_MAX && (!locked || (rc = own_spill(t, k, OWN_MAX / 2)) < 0))
        return locked ? rc : NOT_HERE;
    own_add(t, k, b);
    return 0;
}

/* Every parked shared transaction on H ends, their own caches go to the
 * heap's cache, and T's and the heap's go to the heap: what a request the
 * heap is too full for does before it is tried again. Store lock held. */
static int make_room(lrvm_heap_t *h, struct heap_tx *t)
{
    lrvm__seg_unpark(h->store, h->seg);
    return t != NULL ? own_empty(t, 1) : cache_empty(h);
}

/* Take up to WANT blocks for requests of N bytes (the last may be a
 * little larger: a block too small to split stays whole), made PENDING,
 * in one transaction of the heap's own: GOT[0..*TAKEN), at least one, or
 * the error (an abort put the words back). */
static int take_once(lrvm_heap_t *h, size_t n, unsigned want, uint64_t *got, unsigned *taken)
{
    lrvm_tx_t *own;
    int err = lrvm__tx_begin_own(h->store, h->seg, &own);
    *taken = 0;
    if (err < 0)
        return err;
    h->in_tx = own;
    for (; *taken < want; ++*taken) {
        unsigned char *p = heap_malloc(h, n, &err);
        if (p == NULL)
            break;
        got[*taken] = (uint64_t)(p - h->base) - 8;
        set_pending(h, got[*taken], 1);     /* its header: declared */
    }
    h->in_tx = NULL;
    int rc = lrvm__tx_end_own(own, *taken > 0);
    if (*taken == 0 || rc < 0)
        return rc < 0 ? rc : err;
    return 0;
}

/* take_once; a heap too full for the first block gives the caches back
 * (they may hold what the request needs: make_room, for T's transaction)
 * and is tried again. */
static int take_own(lrvm_heap_t *h, struct heap_tx *t, size_t n, unsigned want, uint64_t *got,
                    unsigned *taken)
{
    int rc = take_once(h, n, want, got, taken);
    if (rc == LRVM_ENOMEM && (rc = make_room(h, t)) == 0)
        rc = take_once(h, n, want, got, taken);
    return rc;
}

/* Fill class K of the heap's cache, empty, with up to CACHE_FILL blocks
 * of NEED bytes or a little more, taken in one transaction of the heap's
 * own, for T's transaction. */
static int cache_fill(lrvm_heap_t *h, struct heap_tx *t, unsigned k, uint64_t need)
{
    struct heap_cache *c = &h->cache;
    uint64_t got[CACHE_FILL];
    unsigned n;
    int rc = take_own(h, t, (size_t)need - 8, CACHE_FILL, got, &n);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < n; i++)
        cache_add(c, k, got[i], bsize(hdr_get(h, got[i])));
    cache_check(h);
    return 0;
}

/* Bring class K of T's own cache, empty, to up to OWN_FILL blocks of NEED
 * bytes (or a little more) from the heap's cache, which fills itself from
 * the heap only when it has none: at least one, or the error. The newest
 * of the heap's cache ends on top. Store lock held. */
static int own_fill(struct heap_tx *t, unsigned k, uint64_t need)
{
    lrvm_heap_t *h = t->h;
    struct heap_cache *c = &h->cache;
    uint64_t got[OWN_FILL];
    unsigned n = 0;
    int rc = 0;
    while (n < OWN_FILL) {
        if (c->n[k] == 0 && (n > 0 || (rc = cache_fill(h, t, k, need)) < 0))
            break;
        got[n] = c->blk[k][--c->n[k]];
        c->blocks--;
        c->bytes -= bsize(hdr_get(h, got[n++]));
    }
    while (n > 0)
        own_add(t, k, got[--n]);
    cache_check(h);
    return t->nown[k] > 0 ? 0 : rc;
}

/* lrvm_malloc for T's shared transaction (top of the file: the block is
 * PENDING until it ends; a small one comes from its own cache, a larger
 * one is taken in the heap's own transaction). Without the store's lock
 * (LOCKED 0: the owner, I6) only a class of its own cache that holds a
 * block serves; else *ERR is NOT_HERE. */
static void *shared_malloc(struct heap_tx *t, size_t n, int locked, int *err)
{
    lrvm_heap_t *h = t->h;
    uint64_t b;
    unsigned one;
    if (offsets_room(&t->taken, t->ntaken, &t->cap_taken) < 0) {
        *err = LRVM_ENOMEM;
        return NULL;
    }
    if (n <= CACHE_LARGEST - 8) {
        uint64_t need = block_need(n);
        unsigned k = bin_of(need);
        *err = t->nown[k] > 0 ? 0 : !locked ? NOT_HERE : own_fill(t, k, need);
        if (*err != 0)
            return NULL;
        b = own_remove(t, k);
    } else if (!locked) {
        *err = NOT_HERE;
        return NULL;
    } else if ((*err = take_own(h, t, n, 1, &b, &one)) < 0) {
        return NULL;
    }
    t->taken[t->ntaken++] = b;
    return h->base + b + 8;
}

/* lrvm_free for T's shared transaction: done at its commit, unless it
 * took the block itself. A block another open transaction took (or a
 * cache holds), or one it freed already, is no block of its to free
 * (LRVM_EINVAL). LOCKED as for shared_malloc. */
static int shared_free(struct heap_tx *t, void *p, int locked)
{
    uint64_t b = block_of(t->h, p);
    if (b == 0)
        return LRVM_EINVAL;
    if (hdr_get(t->h, b) & PENDING) {
        size_t i = offset_index(t->taken, t->ntaken, b);
        if (i == t->ntaken)
            return LRVM_EINVAL;             /* another's, not yet committed */
        int rc = own_put(t, b, locked);
        if (rc == 0)
            t->taken[i] = t->taken[--t->ntaken];
        return rc;
    }
    if (offset_index(t->freed, t->nfreed, b) < t->nfreed)
        return LRVM_EINVAL;                 /* freed twice */
    if (offsets_room(&t->freed, t->nfreed, &t->cap_freed) < 0)
        return LRVM_ENOMEM;
    t->freed[t->nfreed++] = b;
    return 0;
}

/* Declare header word B in the transaction the heap's changes go to, and
 * set or clear its PENDING bit. */
static int mark_pending(lrvm_heap_t *h, uint64_t b, int pending)
{
    struct decl d;
    (void)decl_begin(h, &d);
    decl_add(&d, b, 8);
    int rc = decl_done(h, &d);
    if (rc == 0)
        set_pending(h, b, pending);
    return rc;
}

/* TX commits: its blocks stop being PENDING and its frees are done, all
 * declared in TX (a failure of its commit puts them back: tx.c). A small
 * block it freed becomes PENDING instead, and goes to its own cache once
 * the commit is done (hook_end); the others are freed into the heap here.
 * Store lock held. */
static int hook_commit(lrvm_tx_t *tx, void *arg)
{
    int rc = 0;
    for (struct heap_tx *t = arg; t != NULL && rc == 0; t = t->next) {
        lrvm_heap_t *h = t->h;
        h->in_tx = tx;
        for (size_t i = 0; i < t->ntaken && rc == 0; i++)
            rc = mark_pending(h, t->taken[i], 0);
        t->ncached = 0;
        for (size_t i = 0; i < t->nfreed && rc == 0; i++) {
            uint64_t b = t->freed[i];
            if (cacheable(h, b)) {
                if ((rc = mark_pending(h, b, 1)) == 0) {
                    t->freed[i] = t->freed[t->ncached];
                    t->freed[t->ncached++] = b;
                }
            } else {
                rc = heap_free(h, h->base + b + 8);
            }
        }
        h->in_tx = NULL;
    }
    return rc;
}

/* TX ended. A commit's small frees go to its own cache; an abort puts
 * back the blocks it took. (A failure to give a block back leaves it
 * PENDING until the next lrvm_heap_open: lost room, no lost data.) Store
 * lock held. */
static void hook_end(lrvm_tx_t *tx, void *arg, int committed)
{
    (void)tx;
    for (struct heap_tx *t = arg; t != NULL; t = t->next) {
        for (size_t i = 0; committed && i < t->ncached; i++)
            (void)own_put(t, t->freed[i], 1);
        for (size_t i = 0; !committed && i < t->ntaken; i++)
            (void)own_put(t, t->taken[i], 1);
        t->ntaken = t->nfreed = t->ncached = 0;
        own_check(t);
    }
}

/* Declare header word B in TX, at the log's tail, and set or clear its
 * PENDING bit: the owner, inside the hooks' gate. */
static int tail_mark(struct heap_tx *t, lrvm_tx_t *tx, uint64_t b, int pending)
{
    int rc = lrvm__tx_capture(tx, t->h->seg, (size_t)b, 8);
    if (rc == 0)
        set_pending(t->h, b, pending);
    return rc;
}

/* hook_commit, by TX's owner at the log's tail (tx.c): when every block
 * it freed goes to a class of its own cache with room, so that nothing
 * but its blocks' header words changes, inside the hooks' gate. */
static int hook_tail(lrvm_tx_t *tx, void *arg)
{
    struct heap_tx *first = arg;
    int work = 0;
    for (struct heap_tx *t = first; t != NULL; t = t->next) {
        unsigned char n[CACHE_CLASSES];
        memcpy(n, t->nown, sizeof n);
        for (size_t i = 0; i < t->nfreed; i++) {
            uint64_t b = t->freed[i];
            if (!cacheable(t->h, b) || n[bin_of(bsize(hdr_get(t->h, b)))]++ == OWN_MAX)
                return 0;
        }
        work |= t->ntaken + t->nfreed > 0;
    }
    if (!work)
        return 1;
    if (!lrvm__tx_gate_enter(first->h->store))
        return 0;
    first->entered = 1;
    int rc = 0;
    for (struct heap_tx *t = first; t != NULL && rc == 0; t = t->next) {
        for (size_t i = 0; i < t->ntaken && rc == 0; i++)
            rc = tail_mark(t, tx, t->taken[i], 0);
        for (size_t i = 0; i < t->nfreed && rc == 0; i++)
            rc = tail_mark(t, tx, t->freed[i], 1);
    }
    return rc < 0 ? rc : 1;
}

/* hook_tail's commit went to the log's tail (COMMITTED), or its changes
 * were put back for the store-locked commit. */
static void hook_tail_end(lrvm_tx_t *tx, void *arg, int committed)
{
    (void)tx;
    struct heap_tx *first = arg;
    for (struct heap_tx *t = first; committed && t != NULL; t = t->next) {
        for (size_t i = 0; i < t->nfreed; i++)
            (void)own_put(t, t->freed[i], 0);       /* hook_tail found it room */
        t->ntaken = t->nfreed = 0;
    }
    if (first->entered) {
        first->entered = 0;
        lrvm__tx_gate_leave(first->h->store);
    }
}

/* TX's handle ends: its own caches go to the heaps' caches. Store lock
 * held. */
static void hook_drop(lrvm_tx_t *tx, void *arg)
{
    (void)tx;
    for (struct heap_tx *t = arg, *next; t != NULL; t = next) {
        next = t->next;
        LRVM__ASSERT(t->ntaken == 0 && t->nfreed == 0);    /* settled as it ended */
        (void)own_empty(t, 0);
        free(t->taken);
        free(t->freed);
        free(t);
    }
}

/* The caller's shared transaction when shared transactions hold H's
 * segment (*TX, NULL otherwise): LRVM_EBUSY if the caller began none. */
static int shared_caller(const lrvm_heap_t *h, lrvm_tx_t **tx)
{
    *tx = NULL;
    if (h->seg->sg_shared == 0)
        return 0;
    if ((*tx = lrvm__tx_shared_here(h->store, h->seg)) != NULL)
        return 0;
    lrvm__seg_unpark(h->store, h->seg);     /* those committed count no more */
    return h->seg->sg_shared == 0 ? 0 : LRVM_EBUSY;
}

void lrvm__heap_usage(const lrvm_heap_t *h, uint64_t *used_blocks, uint64_t *free_bytes)
{
    uint64_t epi = epilogue_of(header(h)->size);
    *used_blocks = *free_bytes = 0;
    for (uint64_t b = ARENA; b < epi; b += bsize(*word(h, b))) {
        if (*word(h, b) & USED)
            ++*used_blocks;
        else
            *free_bytes += bsize(*word(h, b));
    }
    /* The caches' blocks are the program's to take: free to it. */
    *used_blocks -= h->cache.blocks;
    *free_bytes += h->cache.bytes;
    for (const lrvm_tx_t *tx = h->store != NULL ? h->store->txs : NULL; tx != NULL;
         tx = tx->tx_next) {
        const struct heap_tx *t = heap_tx_find(h, tx);
        if (t != NULL) {
            *used_blocks -= atomic_load_explicit(&t->own_blocks, memory_order_relaxed);
            *free_bytes += atomic_load_explicit(&t->own_bytes, memory_order_relaxed);
        }
    }
}

/* ------------------------------------------------------------ open */

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) & ~(page - 1);
}

/* Where a new heap goes: a free range the kernel picks near a hint drawn
 * from the name, far above the usual heap and libraries, so that the next
 * run of the program most likely finds it free again: 1 GiB apart from
 * 16 TiB on. Under ThreadSanitizer that lies in its shadow, which a
 * program cannot map: there the hints lie from 64 GiB on, in the part of
 * the address space it leaves to the program below 512 GiB (a heap made
 * so may be opened by any build; one made at 16 TiB not by that one). */
#if LRVM__TSAN
#define HEAP_HINT_BASE  ((uintptr_t)1 << 36)
#define HEAP_HINT_SLOTS 256
#else
#define HEAP_HINT_BASE  ((uintptr_t)1 << 44)
#define HEAP_HINT_SLOTS 16384
#endif

static uint64_t pick_address(const char *name, size_t maplen)
{
    uint64_t x = 0xcbf29ce484222325ull;
    for (const char *c = name; *c != '\0'; c++)
        x = (x ^ (unsigned char)*c) * 0x100000001b3ull;
    uintptr_t hint = HEAP_HINT_BASE + (uintptr_t)(x % HEAP_HINT_SLOTS) * ((uintptr_t)1 << 30);
    void *m = mmap((void *)hint, maplen, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return 0;
    munmap(m, maplen);
    return (uint64_t)(uintptr_t)m;
}

struct layout {
    const char *name;
    uint64_t    size;
};

/* Lay out a new heap of L->size bytes in the empty file FD (a
 * lrvm__seg_create layout; it makes the file durable). */
static int heap_layout(void *arg, int fd)
{
    const struct layout *l = arg;
    struct heap_hdr hd = { .version = HEAP_VERSION, .size = l->size };
    uint64_t epi = epilogue_of(l->size), first = epi - ARENA;
    uint64_t w[2];
    int rc;

    if ((hd.base = pick_address(l->name, page_round((size_t)l->size))) == 0)
        return LRVM_ENOMEM;
    memcpy(hd.magic, HEAP_MAGIC, 8);
    hd.bins[bin_of(first)] = ARENA;
    if ((rc = lrvm__io_ftruncate(fd, l->size)) < 0 ||
        (rc = lrvm__io_pwrite_all(fd, &hd, sizeof hd, 0)) < 0)
        return rc;
    w[0] = first | PREV_USED;                           /* one free block */
    if ((rc = lrvm__io_pwrite_all(fd, w, 8, ARENA)) < 0)
        return rc;
    w[0] = first;                                       /* its footer */
    w[1] = USED;                                        /* the epilogue */
    return lrvm__io_pwrite_all(fd, w, 16, epi - 8);
}

/*
 * Read the header of heap NAME, making the heap first if its file does
 * not exist (whole or not at all: lrvm__seg_create). A NAME.seg that is
 * not a heap is refused, never laid out over (it holds some segment's
 * data).
 */
static int heap_prepare(lrvm_t *s, const char *name, uint64_t size,
                        struct lrvm__heap_info *hi)
{
    int fd = lrvm__seg_open_file(s->dirfd, name, strlen(name), O_RDWR);
    int rc = 0;
    if (fd == LRVM_ENOENT) {
        if (size < HEAP_MIN_SIZE || size > SIZE_MAX / 2)
            return LRVM_EINVAL;
        struct layout l = { name, size };
        fd = lrvm__seg_create(s, name, heap_layout, &l);
    }
    if (fd < 0)
        return fd;
    uint64_t cur = 0;
    if ((rc = lrvm__io_fstat_size(fd, &cur)) == 0 && (rc = lrvm__heap_describe(fd, hi)) >= 0) {
        if (rc == 0)
            rc = LRVM_EINVAL;               /* a segment that is not a heap */
        else if (hi->version < 1 || hi->version > HEAP_VERSION)
            rc = LRVM_EVERSION;             /* older versions are upgraded at open */
        else if (hi->size < HEAP_MIN_SIZE || hi->size > cur || hi->base == 0 ||
                 hi->base % (uint64_t)sysconf(_SC_PAGESIZE) != 0)
            rc = LRVM_ECORRUPT;
        else
            rc = 0;
    }
    lrvm__io_close(fd);
    return rc;
}

/* Is [ADDR, ADDR+LEN) free in the address space? (Probed with a mapping
 * that may not replace anything, then dropped.) */
static int range_free(uint64_t addr, size_t len)
{
    void *m = mmap((void *)(uintptr_t)addr, len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED)
        return 0;
    munmap(m, len);
    return m == (void *)(uintptr_t)addr;
}

/*
 * Grow the heap H, mapped and checked, to SIZE bytes: the space past the
 * old epilogue joins the last block if that is free, else becomes a free
 * block, and the epilogue moves to the new end. One transaction, through
 * the public calls (the heap is not handed out yet, and they take the
 * store's lock): a crash before its commit leaves the old heap in a
 * longer file, which is harmless.
 */
static int heap_grow(lrvm_heap_t *h, uint64_t size)
{
    struct heap_hdr *hd = header(h);
    uint64_t old_epi = epilogue_of(hd->size), new_epi = epilogue_of(size);
    int last_free = !(*word(h, old_epi) & PREV_USED);
    uint64_t start = last_free ? old_epi - *word(h, old_epi - 8) : old_epi;
    uint64_t total = new_epi - start;
    void *base = h->base;
    lrvm_tx_t *tx;
    int rc = lrvm_begin(h->store, 1, &base, &tx);
    if (rc < 0)
        return rc;
    /* The grown last block moves to the bin of its new size. */
    uint64_t prev = last_free && !first_in_bin(h, start) ? *prev_of(h, start) : 0;
    uint64_t next = last_free ? *next_of(h, start) : 0;
    uint64_t head = bin_head(h, total);
    if ((rc = lrvm_set_range(tx, hd, sizeof *hd)) < 0 ||
        (rc = lrvm_set_range(tx, word(h, start), 24)) < 0 ||
        (rc = lrvm_set_range(tx, word(h, new_epi - 8), 16)) < 0 ||
        (prev != 0 && (rc = lrvm_set_range(tx, next_of(h, prev), 8)) < 0) ||
        (next != 0 && (rc = lrvm_set_range(tx, prev_of(h, next), 8)) < 0) ||
        (head != 0 && (rc = lrvm_set_range(tx, prev_of(h, head), 8)) < 0)) {
        (void)lrvm_abort(tx);
        return rc;
    }
    if (last_free)
        unlink_free(h, start);
    *word(h, start) = total | PREV_USED;
    *word(h, new_epi - 8) = total;
    *word(h, new_epi) = USED;
    push_free(h, start);
    hd->size = size;
    if ((rc = lrvm_commit(tx, 0)) < 0)
        (void)lrvm_abort(tx);
    return rc;
}

/* Bring H, a checked heap of an older version, to HEAP_VERSION in one
 * transaction, as heap_grow: version 1's free blocks are sorted into bins,
 * version 2 needs only its version word (its back links are all exact). A
 * crash before the commit leaves the old version, upgraded at the next
 * open. */
static int heap_upgrade(lrvm_heap_t *h)
{
    struct heap_hdr *hd = header(h);
    uint64_t epi = epilogue_of(hd->size);
    void *base = h->base;
    lrvm_tx_t *tx;
    int rc = lrvm_begin(h->store, 1, &base, &tx);
    if (rc < 0)
        return rc;
    rc = lrvm_set_range(tx, hd, sizeof *hd);
    if (rc == 0 && hd->version >= 2) {
        hd->version = HEAP_VERSION;
        rc = lrvm_commit(tx, 0);
        if (rc < 0)
            (void)lrvm_abort(tx);
        return rc;
    }
    for (uint64_t b = ARENA; b < epi && rc == 0; b += bsize(*word(h, b)))
        if (!(*word(h, b) & USED))
            rc = lrvm_set_range(tx, next_of(h, b), 16);
    if (rc == 0) {
        hd->free_head = 0;
        memset(hd->bins, 0, sizeof hd->bins);
        for (uint64_t b = ARENA; b < epi; b += bsize(*word(h, b)))
            if (!(*word(h, b) & USED))
                push_free(h, b);
        hd->version = HEAP_VERSION;
        rc = lrvm_commit(tx, 0);
    }
    if (rc < 0)
        (void)lrvm_abort(tx);
    return rc;
}

/* Free the blocks a crash left PENDING (I4): their transactions never
 * committed. In one transaction; a crash in it leaves them to the next
 * open. */
static int heap_reclaim(lrvm_heap_t *h)
{
    uint64_t epi = epilogue_of(header(h)->size), *b = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (uint64_t o = ARENA; o < epi && rc == 0; o += bsize(*word(h, o)))
        if ((*word(h, o) & PENDING) && (rc = offsets_room(&b, n, &cap)) == 0)
            b[n++] = o;
    if (rc == 0 && n > 0) {
        void *base = h->base;
        lrvm_tx_t *tx;
        if ((rc = lrvm_begin(h->store, 1, &base, &tx)) == 0) {
            lrvm__lock(&h->store->mu, LRVM__RANK_STORE);
            for (size_t i = 0; i < n && rc == 0; i++)
                rc = heap_free(h, h->base + b[i] + 8);
            lrvm__unlock(&h->store->mu);
            if (rc == 0)
                rc = lrvm_commit(tx, 0);
            if (rc < 0)
                (void)lrvm_abort(tx);
        }
    }
    free(b);
    return rc;
}

int lrvm_heap_open(lrvm_t *s, const char *name, size_t size, lrvm_heap_t **out)
{
    struct lrvm__heap_info hi;
    struct lrvm__seg *seg;
    int rc;

    if (s == NULL || out == NULL || !lrvm__name_ok(name))
        return LRVM_EINVAL;
    lrvm_heap_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return LRVM_ENOMEM;
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    if (lrvm__seg_by_name(s, name) != NULL) {
        rc = LRVM_EEXIST;
        goto fail;
    }
    /* The header must be read from a file that holds every commit
     * (segment.c I4), as lrvm_map would see it. */
    if ((rc = lrvm__truncate_if_any(s)) < 0)
        goto fail;
    if ((rc = heap_prepare(s, name, size, &hi)) < 0)
        goto fail;
    /* A larger size grows the heap, if the addresses after it are free
     * (it never moves); a growth too small to hold a block is none. */
    uint64_t want = hi.size;
    if (size > hi.size && size <= SIZE_MAX / 2 &&
        epilogue_of(size) - epilogue_of(hi.size) >= MIN_BLOCK) {
        if (!range_free(hi.base, page_round(size))) {
            rc = LRVM_EADDR;
            goto fail;
        }
        want = size;
    }
    if ((rc = lrvm__seg_map(s, name, want, (void *)(uintptr_t)hi.base, &seg)) < 0)
        goto fail;
    *h = (lrvm_heap_t){ .store = s, .seg = seg, .base = seg->sg_base, .next = s->heaps };
    if ((rc = lrvm__heap_check(h)) < 0) {
        lrvm__seg_unmap(s, seg);
        goto fail;
    }
    s->heaps = h;
    lrvm__unlock(&s->mu);
    if ((hi.version < HEAP_VERSION && (rc = heap_upgrade(h)) < 0) ||
        (rc = heap_reclaim(h)) < 0 || (want > hi.size && (rc = heap_grow(h, want)) < 0)) {
        lrvm__lock(&s->mu, LRVM__RANK_STORE);
        lrvm__heap_forget(s, seg);          /* frees h */
        lrvm__seg_unmap(s, seg);
        lrvm__unlock(&s->mu);
        return rc;
    }
    *out = h;
    return 0;
fail:
    lrvm__unlock(&s->mu);
    free(h);
    return rc;
}

void lrvm__heap_forget(lrvm_t *s, const struct lrvm__seg *seg)
{
    lrvm_heap_t **p = &s->heaps;
    while (*p != NULL) {
        if (seg == NULL || (*p)->seg == seg) {
            lrvm_heap_t *h = *p;
            *p = h->next;
            free(h);
        } else {
            p = &(*p)->next;
        }
    }
}

int lrvm__heap_describe(int fd, struct lrvm__heap_info *out)
{
    struct heap_hdr hd;
    ssize_t got = lrvm__io_pread(fd, &hd, sizeof hd, 0);
    if (got < 0)
        return (int)got;
    if ((size_t)got != sizeof hd || memcmp(hd.magic, HEAP_MAGIC, 8) != 0)
        return 0;
    out->version = hd.version;
    out->base = hd.base;
    out->size = hd.size;
    out->allocated = hd.allocated;
    out->root = hd.root;
    return 1;
}

int lrvm__heap_check_image(const void *image, uint64_t len, uint64_t *used_blocks,
                           uint64_t *free_bytes)
{
    lrvm_heap_t h = { .base = (unsigned char *)(uintptr_t)image };
    const struct heap_hdr *hd = header(&h);
    if (len < HEAP_MIN_SIZE || memcmp(hd->magic, HEAP_MAGIC, 8) != 0 ||
        hd->size < HEAP_MIN_SIZE || hd->size > len)
        return LRVM_ECORRUPT;
    int rc = lrvm__heap_check(&h);
    if (rc == 0)
        lrvm__heap_usage(&h, used_blocks, free_bytes);
    return rc;
}

/* The smallest and the largest size of a block in bin K (bin_of's
 * inverse): K < 31 holds one size; K >= 31 the multiples of 16 in
 * (2^(K-22), 2^(K-21)], the last bin bin_of gives (85) up to 2^64 - 16.
 * No size maps to the bins after it: they are given 85's sizes. */
static void bin_sizes(unsigned k, uint64_t *lo, uint64_t *hi)
{
    if (k < 31) {
        *lo = *hi = 16 * ((uint64_t)k + 2);
        return;
    }
    unsigned log2 = k - 22 < 63 ? k - 22 : 63;
    *lo = ((uint64_t)1 << log2) + 16;
    *hi = log2 < 63 ? (uint64_t)1 << (log2 + 1) : ~(uint64_t)15;
}

int lrvm__heap_walk_image(const void *image, uint64_t len, struct lrvm__heap_walk *w)
{
    lrvm_heap_t h = { .base = (unsigned char *)(uintptr_t)image };
    const struct heap_hdr *hd = header(&h);
    int rc;

    w->blocks_stop = w->list_stop = 0;
    w->blocks_why = w->list_why = NULL;
    w->list_stop_bin = 0;
    if (len < sizeof *hd || memcmp(hd->magic, HEAP_MAGIC, 8) != 0)
        return 0;
    w->info = (struct lrvm__heap_info){ hd->version, hd->base, hd->size, hd->allocated,
                                        hd->root };
    /* Every word read lies below the epilogue, which lies in the image
     * whatever the header says. */
    uint64_t size = hd->size < len ? hd->size : len;
    if (size < HEAP_MIN_SIZE) {
        w->blocks_stop = ARENA;
        w->blocks_why = "the heap's size (in its header, or of the image) leaves no room "
                        "for blocks";
        return 1;
    }
    uint64_t epi = epilogue_of(size), b = ARENA;
    while (b < epi) {
        uint64_t word0 = *word(&h, b), bs = bsize(word0);
        if (bs < MIN_BLOCK || bs > epi - b) {
            w->blocks_stop = b;
            w->blocks_why = bs < MIN_BLOCK ? "a block header whose size is below the "
                                             "smallest block"
                                           : "a block header whose size runs past the "
                                             "epilogue";
            break;
        }
        if (w->block != NULL && (rc = w->block(w->arg, b, bs, (word0 & USED) != 0)) < 0)
            return rc;
        b += bs;
    }
    /* The lists: each link is checked as lrvm_malloc checks it before it
     * follows one, and no walk takes more steps than the heap has room
     * for blocks, so a loop of links ends it. */
    int v1 = hd->version == 1;
    uint64_t steps = 0, most = (epi - ARENA) / MIN_BLOCK;
    for (unsigned k = 0; k < (v1 ? 1 : NBINS) && w->list_why == NULL; k++) {
        uint64_t f = v1 ? hd->free_head : hd->bins[k], lo, hi;
        if (f == 0)
            continue;
        if (v1) {
            lo = MIN_BLOCK;
            hi = epi - ARENA;
        } else {
            bin_sizes(k, &lo, &hi);
        }
        if (w->bin != NULL && (rc = w->bin(w->arg, k, lo, hi)) < 0)
            return rc;
        for (; f != 0; f = *next_of(&h, f)) {
            if (!free_block_ok(&h, f, epi) || ++steps > most) {
                w->list_stop = f;
                w->list_stop_bin = k;
                w->list_why = steps > most ? "a list longer than the heap has room for "
                                             "(its links loop)"
                                           : "a link to no free block";
                break;
            }
            if (w->free_block != NULL &&
                (rc = w->free_block(w->arg, k, f, bsize(*word(&h, f)))) < 0)
                return rc;
        }
    }
    return 1;
}

/* ------------------------------------------------------------ the calls */

#ifdef LRVM_DEBUG
/* Every call that succeeds keeps I1-I3 on a heap that held them when it
 * began (a heap the program wrote over may fail them already; the call
 * must then fail, not make it worse). The walk is O(blocks): every 16th
 * call of a heap is checked. Store lock held. */
static int debug_before(lrvm_heap_t *h)
{
    return ++h->calls % 16 == 0 && lrvm__heap_check(h) == 0;
}

static void debug_after(const lrvm_heap_t *h, int held, int ok)
{
    if (held && ok)
        LRVM__ASSERT(lrvm__heap_check(h) == 0);
}
#else
#define debug_before(h)         0
#define debug_after(h, held, ok) ((void)(held), (void)(ok))
#endif

/* The end of a call under the store's lock: whatever it changed of the
 * heap's words is logged (the heap's own transactions), or in a
 * transaction that holds the heap alone, which no commit at the log's
 * tail can meet (calloc's zeros and realloc's copy are the program's
 * bytes, which no hook changes); so the tail and the hooks' gate open
 * again (tx.c). */
static void unlock_call(lrvm_heap_t *h)
{
    lrvm__tx_tail_open(h->store);
    lrvm__unlock(&h->store->mu);
}

/* heap_malloc, or shared_malloc for the caller's shared transaction. */
static void *any_malloc(lrvm_heap_t *h, size_t n, int *err)
{
    lrvm_tx_t *tx;
    struct heap_tx *t;
    if ((*err = shared_caller(h, &tx)) < 0)
        return NULL;
    if (tx == NULL)
        return heap_malloc(h, n, err);
    if ((t = heap_tx_of(h, tx)) == NULL) {
        *err = LRVM_ENOMEM;
        return NULL;
    }
    return shared_malloc(t, n, 1, err);
}

/* heap_free, or shared_free for the caller's shared transaction. With
 * no shared transaction on the heap, a PENDING block is the cache's (or
 * one whose giving back failed): no block of the program's (I5). */
static int any_free(lrvm_heap_t *h, void *p)
{
    lrvm_tx_t *tx;
    int rc = shared_caller(h, &tx);
    if (rc < 0)
        return rc;
    if (tx != NULL) {
        struct heap_tx *t = heap_tx_of(h, tx);
        return t != NULL ? shared_free(t, p, 1) : LRVM_ENOMEM;
    }
    uint64_t b = block_of(h, p);
    return b != 0 && (*word(h, b) & PENDING) ? LRVM_EINVAL : heap_free(h, p);
}

/* Declare the LEN bytes at P in whatever the heap's changes go to now
 * (the caller's transaction, when shared ones hold the heap). */
static int decl_bytes(lrvm_heap_t *h, const void *p, size_t len)
{
    lrvm_tx_t *tx;
    struct decl d;
    int rc = shared_caller(h, &tx);
    if (rc < 0)
        return rc;
    h->in_tx = tx;
    if ((rc = decl_begin(h, &d)) == 0) {
        decl_add(&d, (uint64_t)((const unsigned char *)p - h->base), len);
        rc = decl_done(h, &d);
    }
    h->in_tx = NULL;
    return rc;
}

void *lrvm_heap_base(lrvm_heap_t *h)
{
    return h != NULL ? h->base : NULL;
}

/* The owner of the shared transaction that holds H runs lrvm_malloc
 * (GONE NULL) or lrvm_free (of GONE) without the store's lock, when its
 * own cache serves (I6): 1 when done, *P the block. */
static int owner_call(lrvm_heap_t *h, size_t n, void *gone, void **p)
{
    lrvm_tx_t *tx = lrvm__tx_owned_enter(h->store);
    if (tx == NULL)
        return 0;
    struct heap_tx *t = heap_tx_find(h, tx);
    int err = NOT_HERE;
    if (t != NULL && gone != NULL)
        err = shared_free(t, gone, 0);
    else if (t != NULL)
        *p = shared_malloc(t, n, 0, &err);
    lrvm__tx_owned_leave();
    return err == 0;
}

void *lrvm_malloc(lrvm_heap_t *h, size_t n)
{
    if (h == NULL) {
        lrvm__note_error(LRVM_EINVAL);
        return NULL;
    }
    int err = 0;
    void *p;
    if (n <= CACHE_LARGEST - 8 && owner_call(h, n, NULL, &p))
        return p;
    lrvm__lock(&h->store->mu, LRVM__RANK_STORE);
    int held = debug_before(h);
    p = any_malloc(h, n, &err);
    debug_after(h, held, p != NULL);
    unlock_call(h);
    if (p == NULL)
        lrvm__note_error(err);
    return p;
}

void *lrvm_calloc(lrvm_heap_t *h, size_t n, size_t size)
{
    if (h == NULL || (size != 0 && n > SIZE_MAX / size)) {
        lrvm__note_error(h == NULL ? LRVM_EINVAL : LRVM_ENOMEM);
        return NULL;
    }
    int err = 0;
    lrvm__lock(&h->store->mu, LRVM__RANK_STORE);
    int held = debug_before(h);
    void *p = any_malloc(h, n * size, &err);
    if (p != NULL && (err = decl_bytes(h, p, n * size)) == 0)
        memset(p, 0, n * size);
    if (p != NULL && err < 0) {
        (void)any_free(h, p);
        p = NULL;
    }
    debug_after(h, held, p != NULL);
    unlock_call(h);
    if (p == NULL)
        lrvm__note_error(err);
    return p;
}

void *lrvm_realloc(lrvm_heap_t *h, void *p, size_t n)
{
    if (p == NULL)
        return lrvm_malloc(h, n);
    if (h == NULL) {
        lrvm__note_error(LRVM_EINVAL);
        return NULL;
    }
    if (n == 0) {
        lrvm_free(h, p);
        return NULL;
    }
    int err = 0;
    void *q = NULL;
    lrvm__lock(&h->store->mu, LRVM__RANK_STORE);
    int held = debug_before(h);
    uint64_t b = block_of(h, p);
    if (b == 0) {
        err = LRVM_EINVAL;
    } else if (n <= bsize(*word(h, b)) - 8) {
        q = p;                              /* it fits where it is */
    } else if ((q = any_malloc(h, n, &err)) != NULL) {
        size_t keep = (size_t)bsize(*word(h, b)) - 8;
        if ((err = decl_bytes(h, q, keep)) == 0) {
            memcpy(q, p, keep);
            err = any_free(h, p);
        }
        if (err < 0) {
            (void)any_free(h, q);
            q = NULL;
        }
    }
    debug_after(h, held, q != NULL);
    unlock_call(h);
    if (q == NULL)
        lrvm__note_error(err);
    return q;
}

void lrvm_free(lrvm_heap_t *h, void *p)
{
    if (h == NULL || p == NULL || owner_call(h, 0, p, NULL))
        return;
    lrvm__lock(&h->store->mu, LRVM__RANK_STORE);
    int held = debug_before(h);
    int rc = any_free(h, p);
    debug_after(h, held, rc == 0);
    unlock_call(h);
    if (rc < 0)
        lrvm__note_error(rc);
}

void *lrvm_heap_root(lrvm_heap_t *h)
{
    if (h == NULL)
        return NULL;
    lrvm__lock(&h->store->mu, LRVM__RANK_STORE);
    uint64_t root = header(h)->root;
    lrvm__unlock(&h->store->mu);
    return root != 0 ? h->base + root : NULL;
}

int lrvm_heap_set_root(lrvm_heap_t *h, void *p)
{
    if (h == NULL)
        return LRVM_EINVAL;
    lrvm__lock(&h->store->mu, LRVM__RANK_STORE);
    uint64_t b = p != NULL ? block_of(h, p) : 0;
    int rc = p != NULL && b == 0 ? LRVM_EINVAL : decl_bytes(h, &header(h)->root, 8);
    if (rc == 0)
        header(h)->root = p != NULL ? b + 8 : 0;
    lrvm__unlock(&h->store->mu);
    return rc;
}
