/*
 * recover.c -- replay of the log into the segment files: recovery at open,
 * truncation of everything, and truncation beside the commits.
 *
 * Owns: the only writes to .seg files, and the truncation's thread and
 * job (struct lrvm__trunc_job). Never: writes a byte that a validated
 * record does not name, retires a log generation before every segment
 * file it wrote is synced, or takes the store lock in the thread.
 *
 * Order of a truncation of everything (and of recovery, which is the
 * same thing), lrvm__truncate:
 *
 *   wait for a truncation running beside the commits, and reap it
 *   flush the log buffer (write + fdatasync)
 *   scan the log: logfmt.c reads it with pread and checks every record (CRC,
 *           generation, sequence); every range of a valid record is
 *           checked against the segment it names (the file exists, the
 *           range lies inside) and, once its transaction is known
 *           complete, copied into the apply cache. A header naming two
 *           generations (logfmt.c) is two spans: the retiring one from
 *           its start, exactly its count of transactions (V8), then the
 *           current one from its start
 *   fdatasync the log, when recovery at open found records: a process
 *           that died before its commit's sync may have left them in the
 *           page cache only
 *   write the cache to the segment files; fdatasync every one written
 *   write the new generation's header slot (at 4096); fdatasync the log
 *
 * Order of a truncation beside the commits (lrvm__truncate_start, after a
 * commit, store lock held; then the thread, trunc_main, without it):
 *
 *   the switch (log.c): flush + fdatasync; the header naming both
 *           generations + fdatasync; the writer goes on in the next one
 *   the thread: scan the retiring generation, from its start to its
 *           known end and count, copying into the apply cache; write the
 *           cache to the segment files; fdatasync every one written;
 *           log.c writes the header of the next generation alone into
 *           the other slot + fdatasync; the job is marked done
 *   a store-locked call reaps it (lrvm__trunc_reap): joins the thread,
 *           takes the header slot as current, counts the truncation and
 *           the syncs; a failed job leaves both generations, and a later
 *           commit starts it again
 *
 * The cache is written out when it is full as well. If that happens
 * before the scan has reached the end of the log, the rest of the log is
 * checked first, from the transaction being copied on (check_rest), and
 * the log synced: a hostile record at the end must find nothing written.
 * So a log is read once whenever its changes fit the cache, instead of
 * a checking pass and an applying one.
 *
 * The apply cache holds 4 KiB blocks of the segment files in memory. A log
 * names the same bytes many times over, and a log of small transactions
 * names millions of ranges of a few bytes, far too many for a pwrite
 * each. A range is copied
 * into its blocks instead (a block it covers only in part is read from
 * the file first); the blocks go out in file order, consecutive ones in one
 * pwritev, when the cache is full (lrvm__apply_max blocks, 64 MiB) and at
 * the end. So each block is written once per 64 MiB of distinct blocks the
 * log names, however many ranges named it. A segment file's blocks are
 * found through a table indexed by block number (a hash for huge files).
 * Copies wait in a ring of COPY_AHEAD, their target line prefetched, and
 * are made in log order as the ring turns over: a small range's copy
 * misses the CPU cache, and this way 32 misses overlap instead of one
 * after the other. The copies' sources are in the scan's window,
 * so the ring is drained before the window is refilled (the scan's
 * release hook). A range that covers a whole block is not copied at all:
 * the block points at the range's bytes in the log, mapped, until a later
 * range changes part of it, and is written from there: a log of large
 * transactions goes from the log's pages to the file's in one copy. The
 * parts of a
 * transaction in several records are copied from the mapping too, when
 * its last part has been found valid.
 *
 * lrvmutl runs the same scan, read-only: lrvm__recover_check makes
 * recovery's checks, and lrvm__recover_ranges also hands over each range
 * that recovery would write, in the order it would write it (lrvmutl heap
 * and cat build a segment's image from them in memory).
 *
 * Invariants
 *   I1 Nothing is written to a segment file unless every record of the
 *      log up to the first invalid one passed its checks, so a damaged or
 *      hostile log writes nothing, and never out of bounds.
 *   I2 The log is reset only after the segment files are durable; a crash
 *      at any step leaves the old generation current, and replaying it
 *      again is harmless because redo is physical.
 *   I3 A cached block holds the file's bytes overlaid with every range
 *      copied into it since it was read, in log order, so writing it back
 *      writes exactly what replaying those ranges one by one would have.
 *      A block whose last whole-block range is later than any partial one
 *      holds that range's bytes, in the log (apply_key.src).
 *   I4 A segment file is written only from records that are durable in
 *      the log, so it is never ahead of what a power cut leaves there.
 *   I5 No copy is queued when cached blocks are written back or given to
 *      other blocks, or when the scan's window moves (apply_write and the
 *      release hook drain the ring first), so I3 holds for
 *      the bytes written.
 *   I6 One truncation at a time: the switch happens only with no job
 *      running, and lrvm__truncate and lrvm_close wait for the job first;
 *      so the apply cache (s->apply_mem) is the running one's alone.
 *   I7 The thread reads of the store only what stays constant while it
 *      is open (its directory, the log's descriptor, the resident limit)
 *      and the job, handed over under the store lock with tj_state;
 *      what it would count it leaves in the job (tj_fsyncs), folded into
 *      the store's stats by the reaping call.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct replay_seg {
    char     name[LRVM__NAME_MAX];      /* name_len bytes, no NUL */
    size_t   name_len;
    uint32_t index;         /* in replay.segs */
    int      fd;
    uint64_t size;
    uint64_t ranges, bytes; /* named by valid records (lrvmutl verify) */
    uint64_t part_blocks;   /* ranges' blocks covered in part */
    uint32_t *held;         /* recovery: cache index + 1 of each block, or 0;
                               NULL for a file too large (the hash finds those) */
    int      read_ahead;    /* the file is being read ahead */
    int      written;
};

#define APPLY_BLOCK  4096u
#define APPLY_IOV    1024               /* IOV_MAX on Linux */

/* Blocks the apply cache holds at most: 64 MiB. Tests make it small to
 * crash recovery between its writes. */
uint32_t lrvm__apply_max = 16384;

/* Files of up to this many blocks (16 GiB) find their cached blocks in a
 * table indexed by block number: one look in a small array instead of a
 * probe into a large hash, a cache miss less per range. Larger files use
 * the hash. Tests lower it to reach the hash. */
uint32_t lrvm__apply_direct = 1u << 22;

struct apply_slot {
    uint64_t block;     /* block number in its segment file */
    uint32_t seg;       /* index in replay.segs + 1; 0: the slot is empty */
    uint32_t buf;       /* index of the block's bytes in apply.mem */
};

/* What cache entry buf holds, by buf index. A range that covers the whole
 * block is not copied: the entry points at its bytes in the mapped log
 * instead (src), and they are copied into mem only when a later range
 * covers part of the block, or written out from the log when none does.
 * A log of large transactions so goes from the log's pages to the file's
 * in one copy, by pwritev. */
struct apply_key {
    uint32_t seg;       /* index in replay.segs */
    uint64_t block;
    const unsigned char *src;   /* the block's bytes in the log, or NULL: in mem */
};

/* A copy into the cache, made COPY_AHEAD copies after it was queued
 * (apply_range). */
struct pending_copy {
    unsigned char       *dst;
    const unsigned char *src;
    size_t               len;
};

#define COPY_AHEAD 32

struct apply {
    struct pending_copy queued[COPY_AHEAD];  /* a ring */
    uint64_t           nqueued;             /* copies queued since the last drain */
    unsigned char     *mem;     /* max blocks; NULL until apply_init */
    struct apply_slot *slots;   /* hash table of 1 << bits, never over half full */
    struct apply_key  *keys;    /* which block each one held is, by buf index */
    uint64_t          *in_log;  /* bit buf: keys[buf].src is set. A small range
                                   looks here, in 2 KiB, not in keys (384 KiB) */
    uint32_t           nused, max;
    unsigned           bits;
    int                hashed;  /* some block held is in slots */
};

/* A generation of the log to apply: the retiring one, then the current
 * one (logfmt.c's layout). */
struct span {
    struct lrvm__log_header head;   /* its number, first transaction, start */
    uint64_t durable_end;   /* the scan's durable_end (logfmt.c V7) */
    uint64_t limit;         /* and its limit (records discarded on purpose) */
    uint64_t end_txno;      /* and its end_txno (V8) */
    uint64_t end;           /* 0, or where its records are known to end */
    uint64_t durable_to;    /* its records below this offset are synced */
};

struct replay {
    int                dirfd;
    int                rdonly;      /* lrvmutl verify: open segments read-only */
    int                apply;       /* copy ranges into the cache, not only check them */
    lrvm_t            *store;       /* recovery: */
    struct lrvm__log_state log;     /*   the log, once flushed */
    const unsigned char *img;       /*   the log, mapped whole */
    uint64_t           img_size;
    const unsigned char *payload;   /*   the record being walked: its payload, */
    uint64_t           payload_off; /*   and where that lies in the log */
    struct span        span[2];     /*   the generations to apply, in order */
    int                nspans, cur; /*   and the one being scanned */
    struct lrvm__log_pos tx;        /*   the transaction whose records come in */
    int                checked;     /*   the whole log passed its checks (I1) */
    int                durable;     /*   and is synced (I4) */
    uint64_t           fsyncs;      /*   segment files synced */
    struct replay_seg **segs;       /* each allocated alone: a check of the rest
                                       of the log (check_rest) may add some while
                                       a copy holds a pointer to one */
    size_t             nsegs, cap;
    struct replay_seg *last;        /* the segment of the last range */
    const char        *why;         /* what made a record fail its check */
    struct apply       cache;
};

/* The segment file named by the N bytes at NAME, opened on first use. */
static int replay_seg(struct replay *r, const char *name, size_t n, struct replay_seg **out)
{
    if (r->last != NULL && r->last->name_len == n && memcmp(r->last->name, name, n) == 0) {
        *out = r->last;
        return 0;
    }
    for (size_t i = 0; i < r->nsegs; i++) {
        if (r->segs[i]->name_len == n && memcmp(r->segs[i]->name, name, n) == 0) {
            *out = r->last = r->segs[i];
            return 0;
        }
    }
    struct replay_seg **t = lrvm__room_for(r->segs, r->nsegs, &r->cap, sizeof *t);
    if (t == NULL)
        return LRVM_ENOMEM;
    r->segs = t;
    int fd = lrvm__seg_open_file(r->dirfd, name, n, r->rdonly ? O_RDONLY : O_RDWR);
    if (fd == LRVM_ENOENT) {        /* a record names a segment that is gone */
        r->why = "it names a segment file that does not exist";
        return LRVM_ECORRUPT;
    }
    if (fd < 0)
        return fd;
    struct replay_seg *seg = malloc(sizeof *seg);
    if (seg == NULL) {
        lrvm__io_close(fd);
        return LRVM_ENOMEM;
    }
    int rc = lrvm__io_fstat_size(fd, &seg->size);
    if (rc < 0) {
        lrvm__io_close(fd);
        free(seg);
        return rc;
    }
    seg->index = (uint32_t)r->nsegs;
    r->segs[r->nsegs] = seg;
    memcpy(seg->name, name, n);
    seg->name_len = n;
    seg->fd = fd;
    seg->ranges = seg->bytes = seg->part_blocks = 0;
    seg->held = NULL;
    seg->read_ahead = seg->written = 0;
    r->nsegs++;
    /* A file small enough finds its cached blocks through a table. */
    uint64_t nblocks = (seg->size + APPLY_BLOCK - 1) / APPLY_BLOCK;
    if (r->store != NULL && nblocks <= lrvm__apply_direct &&
        (seg->held = calloc(nblocks ? nblocks : 1, sizeof *seg->held)) == NULL)
        return LRVM_ENOMEM;
    *out = r->last = seg;
    return 0;
}

static void replay_free(struct replay *r)
{
    for (size_t i = 0; i < r->nsegs; i++) {
        lrvm__io_close(r->segs[i]->fd);
        free(r->segs[i]->held);
        free(r->segs[i]);
    }
    free(r->segs);
}

/* ------------------------------------------------------------ the apply cache */

/*
 * The cache's memory stays with the store from one truncation to the
 * next, handed back with MADV_FREE, so that a store that truncates often
 * does not pay each time for the page faults of the blocks it fills and
 * for unmapping them (doc/architecture.md has the figures). The kernel takes
 * the pages back when it needs them; the cache never reads a block it
 * has not filled.
 */
static int apply_init(struct apply *c, lrvm_t *s)
{
    /* The cache stays with the store between truncations, so it counts
     * against the store's memory: a quarter of the resident limit at most. */
    size_t room = s->resident_limit / 4 / APPLY_BLOCK;
    c->max = lrvm__apply_max > 0 ? lrvm__apply_max : 1;
    if (room > 0 && room < c->max)
        c->max = (uint32_t)room;
    for (c->bits = 1; (1u << c->bits) < 2 * c->max; c->bits++)
        ;
    if (s->apply_mem != NULL && s->apply_blocks == c->max) {
        c->mem = s->apply_mem;
        s->apply_mem = NULL;
    } else {
        lrvm__recover_release(s);
        c->mem = mmap(NULL, (size_t)c->max * APPLY_BLOCK, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (c->mem == MAP_FAILED) {
            c->mem = NULL;
            return LRVM_ENOMEM;
        }
    }
    c->slots = calloc((size_t)1 << c->bits, sizeof *c->slots);
    c->keys = malloc(c->max * sizeof *c->keys);
    c->in_log = calloc((c->max + 63) / 64, sizeof *c->in_log);
    if (c->slots == NULL || c->keys == NULL || c->in_log == NULL)
        return LRVM_ENOMEM;
    c->nused = 0;
    c->hashed = 0;
    return 0;
}

static void apply_free(struct apply *c, lrvm_t *s)
{
    if (c->mem != NULL) {
        lrvm__recover_release(s);
        (void)madvise(c->mem, (size_t)c->max * APPLY_BLOCK, MADV_FREE);
        s->apply_mem = c->mem;
        s->apply_blocks = c->max;
    }
    free(c->slots);
    free(c->keys);
    free(c->in_log);
}

static size_t apply_hash(const struct apply *c, uint32_t seg, uint64_t block)
{
    return (size_t)((block * 0x9e3779b97f4a7c15ull + seg * 0xc2b2ae3d27d4eb4full) >>
                    (64 - c->bits));
}

struct held {
    uint32_t seg;
    uint64_t block;
    unsigned char *bytes;
    int in_log;         /* bytes point into the mapped log */
};

static int held_order(const void *a, const void *b)
{
    const struct held *x = a, *y = b;
    if (x->seg != y->seg)
        return x->seg < y->seg ? -1 : 1;
    return (x->block > y->block) - (x->block < y->block);
}

/* Bytes of block B that lie inside SEG: APPLY_BLOCK but in the last block. */
static size_t block_len(const struct replay_seg *seg, uint64_t b)
{
    uint64_t left = seg->size - b * APPLY_BLOCK;
    return left < APPLY_BLOCK ? (size_t)left : APPLY_BLOCK;
}

/* Write every block held, in file order, and empty the cache. */
/* Make the copies still queued, oldest first. */
static void apply_drain(struct apply *c)
{
    uint64_t n = c->nqueued < COPY_AHEAD ? c->nqueued : COPY_AHEAD;
    for (uint64_t k = c->nqueued - n; k < c->nqueued; k++) {
        const struct pending_copy *q = &c->queued[k % COPY_AHEAD];
        memcpy(q->dst, q->src, q->len);
    }
    c->nqueued = 0;
}

static int check_rest(struct replay *r);

static int apply_write(struct replay *r)
{
    struct apply *c = &r->cache;
    struct iovec iov[APPLY_IOV];
    struct held *h;
    int rc = 0;

    apply_drain(c);                 /* keeps I5 */

    if (c->nused == 0)
        return 0;
    if (!r->checked && (rc = check_rest(r)) < 0)    /* keeps I1 and I4 */
        return rc;
    if ((h = malloc(c->nused * sizeof *h)) == NULL)
        return LRVM_ENOMEM;
    for (uint32_t i = 0; i < c->nused; i++) {
        const struct apply_key *k = &c->keys[i];
        unsigned char *bytes = k->src != NULL ? (unsigned char *)k->src
                                              : c->mem + (size_t)i * APPLY_BLOCK;
        h[i] = (struct held){ k->seg, k->block, bytes, k->src != NULL };
        if (r->segs[k->seg]->held != NULL)
            r->segs[k->seg]->held[k->block] = 0;
    }
    qsort(h, c->nused, sizeof *h, held_order);
    for (uint32_t i = 0; i < c->nused && rc == 0;) {
        struct replay_seg *seg = r->segs[h[i].seg];
        uint32_t j = i;
        int n = 0;
        do {
            iov[n].iov_base = h[j].bytes;
            iov[n].iov_len = block_len(seg, h[j].block);
            n++;
            j++;
        } while (j < c->nused && n < APPLY_IOV && h[j].seg == h[i].seg &&
                 h[j].block == h[j - 1].block + 1);
        /* The log's pages the scan read with pread are cached but not
         * mapped: a pwritev that meets them unmapped takes a slow path
         * page by page, several times slower. Map each
         * run of them in one call first. */
        for (uint32_t k = i; k < j;) {
            uint32_t e = k + 1;
            if (h[k].in_log) {
                while (e < j && h[e].in_log && h[e].bytes == h[e - 1].bytes + APPLY_BLOCK)
                    e++;
                lrvm__io_map_populate(h[k].bytes, (size_t)(h[e - 1].bytes - h[k].bytes) +
                                                  block_len(seg, h[e - 1].block));
            }
            k = e;
        }
        rc = lrvm__io_pwritev_all(seg->fd, iov, n, h[i].block * APPLY_BLOCK);
        seg->written = 1;
        i = j;
    }
    free(h);
    if (c->hashed)
        memset(c->slots, 0, ((size_t)1 << c->bits) * sizeof *c->slots);
    memset(c->in_log, 0, (c->max + 63) / 64 * sizeof *c->in_log);
    c->nused = 0;
    c->hashed = 0;
    return rc;
}

/* Set *OUT to the cache entry of block B of SEG, made on first use.
 * WHOLE: the caller replaces all of the block's bytes, so a new entry need
 * not read them from the file first (keeps I3). */
static int apply_block(struct replay *r, struct replay_seg *seg, uint64_t b, int whole,
                       uint32_t *out)
{
    struct apply *c = &r->cache;
    uint32_t segno = seg->index + 1;
    size_t i = 0, mask = ((size_t)1 << c->bits) - 1;
    int rc;

    if (seg->held != NULL) {
        if (seg->held[b] != 0) {
            *out = seg->held[b] - 1;
            return 0;
        }
    } else {
        for (i = apply_hash(c, segno, b);; i = (i + 1) & mask) {
            struct apply_slot *sl = &c->slots[i];
            if (sl->seg == segno && sl->block == b) {
                *out = sl->buf;
                return 0;
            }
            if (sl->seg == 0)
                break;
        }
    }
    if (c->nused == c->max) {
        if ((rc = apply_write(r)) < 0)
            return rc;
        i = apply_hash(c, segno, b);    /* the table is empty now */
    }
    if (seg->held != NULL) {
        seg->held[b] = c->nused + 1;
    } else {
        c->slots[i] = (struct apply_slot){ b, segno, c->nused };
        c->hashed = 1;
    }
    c->keys[c->nused] = (struct apply_key){ segno - 1, b, NULL };
    if (!whole) {
        size_t len = block_len(seg, b);
        ssize_t got = lrvm__io_pread(seg->fd, c->mem + (size_t)c->nused * APPLY_BLOCK, len,
                                     b * APPLY_BLOCK);
        if (got < 0)
            return (int)got;
        if ((size_t)got < len)                  /* the file shrank under us */
            return LRVM_EIO;
    }
    *out = c->nused++;
    return 0;
}

/* Queue the copy of N bytes from SRC to DST. A small range lands in a
 * random block of the cache, most likely a cache miss. Its copy waits
 * while COPY_AHEAD later ones are queued, its line prefetched, so the
 * misses overlap. */
static void apply_copy(struct apply *c, unsigned char *dst, const unsigned char *src, size_t n)
{
    struct pending_copy *q = &c->queued[c->nqueued % COPY_AHEAD];
    if (c->nqueued >= COPY_AHEAD)
        memcpy(q->dst, q->src, q->len);
    __builtin_prefetch(dst, 1);
    *q = (struct pending_copy){ dst, src, n };
    c->nqueued++;
}

static int apply_range(struct replay *r, struct replay_seg *seg, uint64_t off,
                       const unsigned char *data, uint64_t n)
{
    struct apply *c = &r->cache;
    while (n > 0) {
        uint64_t b = off / APPLY_BLOCK;
        size_t in = (size_t)(off % APPLY_BLOCK), len = block_len(seg, b);
        size_t chunk = n < len - in ? (size_t)n : len - in;
        int whole = in == 0 && chunk == len;
        uint32_t buf = 0;
        int rc = apply_block(r, seg, b, whole, &buf);
        if (rc < 0)
            return rc;
        uint64_t bit = 1ull << (buf % 64), *word = &c->in_log[buf / 64];
        unsigned char *bytes = c->mem + (size_t)buf * APPLY_BLOCK;
        if (whole) {
            /* The bytes in the mapped log: the scan's window moves on.
             * Copies still queued into the block are overwritten by the
             * one below before they count, or never written out. */
            c->keys[buf].src = r->img + r->payload_off + (size_t)(data - r->payload);
            *word |= bit;
        } else {
            if (*word & bit) {          /* the block comes into mem, then changes */
                apply_copy(c, bytes, c->keys[buf].src, len);
                c->keys[buf].src = NULL;
                *word &= ~bit;
            }
            apply_copy(c, bytes + in, data, chunk);
        }
        off += chunk;
        data += chunk;
        n -= chunk;
    }
    return 0;
}

/* ------------------------------------------------------------ replay */

static int on_range(void *arg, const char *name, size_t name_len, uint64_t off,
                    const unsigned char *data, uint64_t n)
{
    struct replay *r = arg;
    struct replay_seg *seg = NULL;
    int rc = replay_seg(r, name, name_len, &seg);
    if (rc < 0)
        return rc;
    if (off > seg->size || n > seg->size - off) {                   /* keeps I1 */
        r->why = "it names bytes past the end of its segment file";
        return LRVM_ECORRUPT;
    }
    seg->part_blocks += (off % APPLY_BLOCK != 0) + ((off + n) % APPLY_BLOCK != 0);
    if (!r->apply) {
        seg->ranges++;
        seg->bytes += n;
        return 0;
    }
    /* Blocks a range covers in part are read before they are changed.
     * When a segment has many, one sequential read of the file (in the
     * background, while the walk goes on) beats as many random ones from
     * a cold disk. */
    if (!seg->read_ahead && seg->part_blocks * 16 * APPLY_BLOCK >= seg->size) {
        seg->read_ahead = 1;
        lrvm__io_will_read(seg->fd, seg->size);
    }
    return apply_range(r, seg, off, data, n);
}

/* Check the ranges of the record at OFF, and copy them into the cache in
 * apply mode. */
static int walk_record(struct replay *r, uint64_t off, const struct lrvm__rec_header *h,
                       const unsigned char *payload, int apply)
{
    /* check_rest walks records, checking only, in the middle of another's
     * walk: that walk's mode comes back after, and its payload, which
     * only copying uses, is left alone. */
    int was = r->apply;
    r->apply = apply;
    if (apply) {
        r->payload = payload;
        r->payload_off = off + h->rh_hsize;
    }
    int rc = lrvm__payload_walk(payload, h->rh_payload_len, on_range, r);
    r->apply = was;
    return rc;
}

static int on_part(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                   const unsigned char *payload)
{
    return walk_record(arg, off, h, payload, 1);
}

/* Recovery's scan: check every valid record, and copy those of complete
 * transactions into the cache, in log order. The parts of a transaction
 * in several are copied once its last part is found valid, from the
 * mapped log. */
static int on_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                     const unsigned char *payload)
{
    struct replay *r = arg;
    if (h->rh_part == 0)
        r->tx = (struct lrvm__log_pos){ off, h->rh_txno };
    if (!(h->rh_flags & LRVM__REC_COMMIT))
        return walk_record(r, off, h, payload, 0);
    if (h->rh_part == 0)
        return walk_record(r, off, h, payload, 1);
    struct lrvm__scan_cb parts = { .arg = r, .record = on_part };
    return lrvm__log_walk_valid(r->img, r->span[r->cur].head.lh_version, r->tx.lp_off,
                                off + lrvm__rec_size(h), &parts);
}

static int on_check_only(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                         const unsigned char *payload)
{
    return walk_record(arg, off, h, payload, 0);
}

/* The scan's window is about to be refilled or freed: copies queued from
 * it first. */
static void on_release(void *arg)
{
    struct replay *r = arg;
    apply_drain(&r->cache);
}

/* The scan found its stop proven damaged (logfmt.c V7): refuse the log,
 * saying where, rather than drop the commits after the damage. */
static int damaged(const struct lrvm__scan_result *res)
{
    if (res->sr_proof != 0)
        LRVM__TRACE("lrvm.log is damaged at offset %" PRIu64 ": the intact record at %" PRIu64
                    " was written after those bytes were durable, so the commits after them "
                    "would be lost: refused (lrvmutl verify names them; lrvmutl recover "
                    "--discard-after %" PRIu64 " keeps the commits before)", res->sr_damage,
                    res->sr_proof, res->sr_damage);
    else
        LRVM__TRACE("lrvm.log changed under this process: its records end at %" PRIu64
                    " before what it made durable: truncation refused", res->sr_damage);
    return LRVM_ECORRUPT;
}

/* Sync the log up to END of span SP unless it is durable there: a
 * process that died between a commit's write and its fdatasync left
 * records that look committed but may not be on the disk. Once a segment
 * file holds their bytes, a power cut that loses them would leave the
 * segment ahead of the log, and a replay of the log's shorter prefix over
 * it would mix two states (keeps I4). */
static int make_durable(struct replay *r, const struct span *sp, uint64_t end)
{
    lrvm_t *s = r->store;
    if (r->durable || end <= sp->durable_to || end <= sp->head.lh_start)
        return 0;
    int rc = lrvm__log_sync(&s->log);
    if (rc < 0)
        return rc;
    s->stats.fsyncs++;
    r->durable = 1;
    return 0;
}

/* How the scan of SP ended (RES): damage (V7, V8) or an end other than
 * the one this process knows refuses the log. */
static int span_ended(const struct span *sp, const struct lrvm__scan_result *res)
{
    if (res->sr_damage != 0)
        return damaged(res);
    if (sp->end != 0 && res->sr_end != sp->end) {
        LRVM__TRACE("lrvm.log changed under this process: generation %" PRIu64 " ends at %"
                    PRIu64 ", not at %" PRIu64 ": truncation refused",
                    sp->head.lh_generation, res->sr_end, sp->end);
        return LRVM_ECORRUPT;
    }
    return 0;
}

static void span_cb(struct replay *r, const struct span *sp, struct lrvm__scan_cb *cb,
                    int (*record)(void *, uint64_t, const struct lrvm__rec_header *,
                                  const unsigned char *))
{
    *cb = (struct lrvm__scan_cb){ .arg = r, .record = record, .durable_end = sp->durable_end,
                                  .limit = sp->limit, .end_txno = sp->end_txno };
}

/* The cache is full before the scan has reached the end of the log: check
 * the rest of it, from the transaction being copied on, and the spans
 * after, before anything is written. */
static int check_rest(struct replay *r)
{
    for (int k = r->cur; k < r->nspans; k++) {
        const struct span *sp = &r->span[k];
        struct lrvm__scan_cb cb;
        struct lrvm__scan_result res;
        span_cb(r, sp, &cb, on_check_only);
        int rc = lrvm__log_scan_from(r->log.ls_fd, &sp->head, k == r->cur ? &r->tx : NULL,
                                     &cb, &res);
        if (rc < 0 || (rc = span_ended(sp, &res)) < 0 ||
            (rc = make_durable(r, sp, res.sr_end)) < 0)
            return rc;
    }
    r->checked = 1;
    return 0;
}

/* Scan every span of R, applying as it goes, and write what the cache
 * still holds; sync the segment files written. *LAST: the last span's
 * scan; *EMPTY: no span held a record. */
static int replay_spans(struct replay *r, struct lrvm__scan_result *last, int *empty)
{
    int rc;
    *empty = 1;
    if ((rc = lrvm__io_fstat_size(r->log.ls_fd, &r->img_size)) < 0)
        return rc;
    if ((rc = lrvm__io_map_read(r->log.ls_fd, r->img_size, &r->img)) < 0) {
        r->img = NULL;
        return rc;
    }
    if ((rc = apply_init(&r->cache, r->store)) < 0)
        return rc;
    struct lrvm__scan_result res[2];
    for (r->cur = 0; r->cur < r->nspans; r->cur++) {
        const struct span *sp = &r->span[r->cur];
        struct lrvm__scan_cb cb;
        span_cb(r, sp, &cb, on_record);
        cb.release = on_release;
        if ((rc = lrvm__log_scan_from(r->log.ls_fd, &sp->head, NULL, &cb, &res[r->cur])) < 0 ||
            (rc = span_ended(sp, &res[r->cur])) < 0)                /* keeps I1 */
            return rc;
        *empty &= res[r->cur].sr_scan_end == sp->head.lh_start;
    }
    r->cur = r->nspans - 1;
    *last = res[r->cur];
    r->checked = 1;
    for (int k = 0; k < r->nspans; k++)
        if ((rc = make_durable(r, &r->span[k], res[k].sr_end)) < 0)
            return rc;
    if ((rc = apply_write(r)) < 0)
        return rc;
    for (size_t i = 0; i < r->nsegs; i++) {
        if (!r->segs[i]->written)
            continue;
        if ((rc = lrvm__io_fdatasync(r->segs[i]->fd)) < 0)
            return rc;
        r->fsyncs++;
    }
    return 0;
}

static void replay_end(struct replay *r)
{
    apply_free(&r->cache, r->store);
    if (r->img != NULL)
        lrvm__io_unmap(r->img, r->img_size);
    replay_free(r);
}

/* The span of the generation RET, which retires. */
static struct span retiring_span(const struct lrvm__log_retiring *ret)
{
    return (struct span){
        .head = { LRVM__LOG_VERSION, ret->lr_generation, ret->lr_first_txno, ret->lr_start, 0, 0 },
        .end_txno = ret->lr_next_txno,
        .end = ret->lr_end,
        .durable_to = ret->lr_end,      /* known only in the process that switched (I6) */
    };
}

static int trunc_wait(lrvm_t *s);

int lrvm__truncate(lrvm_t *s)
{
    struct replay r = { .dirfd = s->dirfd, .apply = 1, .store = s };
    struct lrvm__scan_result res;
    int rc, empty;

    /* A truncation beside the commits finishes first; if it failed, its
     * generation is applied here with the rest. */
    (void)trunc_wait(s);
    lrvm__log_check(&s->log);
    if ((rc = lrvm__log_flush(&s->log)) < 0)
        return rc;
    lrvm__log_state(&s->log, &r.log);
    uint64_t discard = s->discard_after;
    int cut_in_ret = 0;
    if (r.log.ls_retiring) {
        r.span[r.nspans] = retiring_span(&r.log.ls_ret);
        /* lrvmutl recover --discard-after inside the retiring generation
         * drops the rest of it and all of the next. */
        const struct lrvm__log_retiring *ret = &r.log.ls_ret;
        cut_in_ret = discard != 0 && (ret->lr_next_start > ret->lr_start
                                          ? discard < ret->lr_next_start
                                          : discard >= ret->lr_start);
        if (cut_in_ret) {
            r.span[r.nspans].limit = discard;
            r.span[r.nspans].end_txno = 0;
        }
        r.nspans++;
    }
    if (!cut_in_ret) {
        /* This process wrote every record of a clean generation and knows
         * where they end; at open, the scan looks past its stop (V7). */
        r.span[r.nspans++] = (struct span){
            .head = { r.log.ls_version, r.log.ls_generation, r.log.ls_first_txno,
                      r.log.ls_start, 0, 0 },
            .durable_end = r.log.ls_clean ? r.log.ls_durable : 0,
            .limit = discard,
            .durable_to = r.log.ls_durable,
        };
    }
    if ((rc = replay_spans(&r, &res, &empty)) < 0)
        goto out;
    s->stats.fsyncs += r.fsyncs;
    /* An empty log needs no new generation, unless a crash may have left
     * a torn first record with intact later ones behind it: new records
     * of the same generation written over it could end just where one of
     * those begins, and make it look like their successor (keeps log.c
     * I3). One that does not begin at 4096 gets one too, so that the log
     * in use after lrvm_truncate is the header alone. */
    if (empty && r.log.ls_clean && r.nspans == 1 && r.log.ls_start == LRVM__LOG_HEADER_SIZE)
        goto out;                   /* nothing to apply, nothing to reset */
    /* The record where the scan stopped must stay invalid in the new
     * generation: a damaged or hostile one may carry the next number. */
    rc = lrvm__log_new_generation(&s->log, res.sr_stop_generation,
                                  cut_in_ret ? 0 : res.sr_txs);       /* keeps I2 */
    if (rc < 0)
        goto out;
    s->stats.truncations++;
out:
    replay_end(&r);
    return rc;
}

int lrvm__truncate_if_any(lrvm_t *s)
{
    return lrvm__log_holds_records(&s->log) ? lrvm__truncate(s) : 0;
}

/* ------------------------------------------------------------ beside the commits */

/* Set in the truncation's thread, and in a committing thread during its
 * switch: the tests' fault layer counts or holds these calls alone. */
_Thread_local int lrvm__in_truncation;

enum { JOB_IDLE, JOB_RUNNING, JOB_DONE };

/* The truncation thread: apply the retiring generation the job names,
 * sync the files written, have log.c write the header that retires it.
 * It never takes the store lock: what it reads of the store is constant
 * while the store is open (its directory, the log's descriptor, the
 * resident limit), or handed to it with the job (the apply cache: only
 * one truncation runs at a time, and lrvm__truncate waits for this one). */
static void *trunc_main(void *arg)                                  /* keeps I7 */
{
    lrvm_t *s = arg;
    struct lrvm__trunc_job *j = &s->trunc;
    struct replay r = { .dirfd = s->dirfd, .apply = 1, .store = s, .durable = 1 };
    struct lrvm__scan_result res;
    int empty;

    lrvm__in_truncation = 1;
    atomic_store(&j->tj_tid, (long)gettid());
    r.log.ls_fd = j->tj_fd;
    r.span[0] = retiring_span(&j->tj_ret);
    r.nspans = 1;
    int rc = replay_spans(&r, &res, &empty);
    replay_end(&r);
    if (rc == 0 && (rc = lrvm__log_retire_header(&s->log, &j->tj_ret)) == 0)    /* keeps I2 */
        r.fsyncs++;
    pthread_mutex_lock(&j->tj_mu);
    j->tj_rc = rc;
    j->tj_fsyncs = r.fsyncs;
    j->tj_state = JOB_DONE;
    pthread_cond_broadcast(&j->tj_cond);
    pthread_mutex_unlock(&j->tj_mu);
    return NULL;
}

void lrvm__trunc_init(lrvm_t *s)
{
    pthread_mutex_init(&s->trunc.tj_mu, NULL);
    pthread_cond_init(&s->trunc.tj_cond, NULL);
    s->trunc.tj_state = JOB_IDLE;
}

void lrvm__trunc_fini(lrvm_t *s)
{
    pthread_cond_destroy(&s->trunc.tj_cond);
    pthread_mutex_destroy(&s->trunc.tj_mu);
}

/* Start the thread on the log's retiring generation. Store lock held. */
static int job_start(lrvm_t *s)
{
    struct lrvm__trunc_job *j = &s->trunc;
    LRVM__ASSERT(j->tj_state == JOB_IDLE && s->log.lg_retiring);
    j->tj_ret = s->log.lg_ret;
    j->tj_fd = s->log.lg_fd;
    j->tj_rc = 0;
    j->tj_fsyncs = 0;
    j->tj_state = JOB_RUNNING;
    /* No signal for the thread: a program's handlers expect its own. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&j->tj_thread, NULL, trunc_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        j->tj_state = JOB_IDLE;
        return LRVM_ENOMEM;                 /* no thread to be had: a later commit tries */
    }
    return 0;
}

/* Fold a finished job into the store: 1 when it retired its generation,
 * 0 when none had finished, or the error it failed with (the log keeps
 * both generations; a later commit tries again). Store lock held. */
static int reap(lrvm_t *s)
{
    struct lrvm__trunc_job *j = &s->trunc;
    pthread_mutex_lock(&j->tj_mu);
    int done = j->tj_state == JOB_DONE, rc = j->tj_rc;
    pthread_mutex_unlock(&j->tj_mu);
    if (!done)
        return 0;
    pthread_join(j->tj_thread, NULL);
    /* The join returns once the thread let its stack go, a moment before
     * the kernel stops counting it among the process's threads; the
     * userfaultfd tracker gives private copies back only while it counts
     * one (lrvm.h C14), so the pages about to go would wait a round. */
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", atomic_load(&j->tj_tid));
    for (int i = 0; i < 10000 && lrvm__io_read_small(path, buf, sizeof buf) > 0; i++)
        sched_yield();
    j->tj_state = JOB_IDLE;
    s->stats.fsyncs += j->tj_fsyncs;
    if (rc < 0)
        return rc;
    lrvm__log_retired(&s->log);
    s->stats.truncations++;
    j->tj_reaped = 1;
    return 1;
}

int lrvm__trunc_reap(lrvm_t *s)
{
    return reap(s);
}

/* Wait for a running job and reap it (store lock held: the thread never
 * takes it). */
static int trunc_wait(lrvm_t *s)
{
    struct lrvm__trunc_job *j = &s->trunc;
    pthread_mutex_lock(&j->tj_mu);
    while (j->tj_state == JOB_RUNNING)
        pthread_cond_wait(&j->tj_cond, &j->tj_mu);
    pthread_mutex_unlock(&j->tj_mu);
    return reap(s);
}

void lrvm__trunc_stop(lrvm_t *s)
{
    (void)trunc_wait(s);        /* a failure leaves both generations to recovery */
}

/* A commit reached the wall (log.c I7): the retiring generation must be
 * applied before it writes on. Counted in commit_waits. */
static int wall_wait(void *arg)
{
    lrvm_t *s = arg;
    /* Atomic: a test reads it to see a commit wait here, while the
     * waiting commit holds the store lock. */
    __atomic_fetch_add(&s->stats.commit_waits, 1, __ATOMIC_RELAXED);
    int rc = 0;
    if (s->trunc.tj_state == JOB_IDLE)
        rc = job_start(s);                  /* a failed one, tried again */
    if (rc == 0)
        rc = trunc_wait(s);
    return rc < 0 ? rc : s->log.lg_retiring ? LRVM_EIO : 0;
}

void lrvm__truncate_wait(lrvm_t *s)
{
    lrvm__truncate_start(s);
    if (s->trunc.tj_state == JOB_RUNNING) {
        s->stats.commit_waits++;
        (void)trunc_wait(s);
    }
}

void lrvm__truncate_start(lrvm_t *s)
{
    struct lrvm__log_retiring ret;
    (void)reap(s);
    if (s->trunc.tj_state != JOB_IDLE)
        return;                             /* one runs (keeps I6) */
    /* A failure loses nothing: the log keeps the records and a later
     * commit tries again. */
    lrvm__in_truncation = 1;
    int rc = s->log.lg_retiring ? 0 : lrvm__log_switch(&s->log, s->truncate_threshold,
                                                       wall_wait, s, &ret);
    lrvm__in_truncation = 0;
    if (rc == 0)
        (void)job_start(s);
}

int lrvm__truncate_due(const lrvm_t *s)
{
    return s->log.lg_retiring || lrvm__log_gen_size(&s->log) >= s->truncate_threshold;
}

void lrvm__recover_release(lrvm_t *s)
{
    if (s->apply_mem != NULL)
        munmap(s->apply_mem, (size_t)s->apply_blocks * APPLY_BLOCK);
    s->apply_mem = NULL;
}

/* ------------------------------------------------------------ lrvmutl verify, heap, cat */

struct check_arg {
    struct replay *r;
    uint64_t       at;          /* offset of the record being checked */
    void         (*progress)(void *arg, uint64_t off);
    void          *progress_arg;
};

static int on_check_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                           const unsigned char *payload)
{
    struct check_arg *a = arg;
    a->at = off;
    if (a->progress != NULL)
        a->progress(a->progress_arg, off);
    return lrvm__payload_walk(payload, h->rh_payload_len, on_range, a->r);
}

/* The ranges recovery would write, handed to the caller instead of
 * copied: each complete transaction's, in log order, when its COMMIT
 * part is found valid, as on_record copies them. */
struct ranges_arg {
    struct check_arg              *check;
    lrvm__range_fn                *fn;
    void                          *arg;
    int                            logfd;
    const struct lrvm__log_header *h;
    struct lrvm__log_pos           tx;          /* the transaction whose parts come in */
    const unsigned char           *payload;     /* the record being reported: its payload, */
    uint64_t                       payload_off; /*   and where that lies in the log */
};

static int report_range(void *arg, const char *name, size_t name_len, uint64_t off,
                        const unsigned char *data, uint64_t n)
{
    struct ranges_arg *a = arg;
    return a->fn(a->arg, name, name_len, off, data, n,
                 a->payload_off + (uint64_t)(data - a->payload));
}

static int report_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                         const unsigned char *payload)
{
    struct ranges_arg *a = arg;
    a->payload = payload;
    a->payload_off = off + h->rh_hsize;
    return lrvm__payload_walk(payload, h->rh_payload_len, report_range, a);
}

static int on_ranges_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                            const unsigned char *payload)
{
    struct ranges_arg *a = arg;
    int rc = on_check_record(a->check, off, h, payload);
    if (rc < 0)
        return rc;
    if (h->rh_part == 0)
        a->tx = (struct lrvm__log_pos){ off, h->rh_txno };
    if (!(h->rh_flags & LRVM__REC_COMMIT))
        return 0;
    if (h->rh_part == 0)
        return report_record(a, off, h, payload);
    /* The earlier parts may have left the scan's window: read them again,
     * up to this one. They passed their checks a moment ago; a scan that
     * now ends elsewhere read a log that changed under it. */
    uint64_t end = off + lrvm__rec_size(h);
    struct lrvm__scan_cb parts = { .arg = a, .record = report_record, .limit = end };
    struct lrvm__scan_result res;
    rc = lrvm__log_scan_from(a->logfd, a->h, &a->tx, &parts, &res);
    return rc == 0 && res.sr_scan_end != end ? LRVM_EIO : rc;
}

int lrvm__recover_check(int dirfd, int logfd, const struct lrvm__log_header *h,
                        void (*progress)(void *arg, uint64_t off), void *progress_arg,
                        struct lrvm__check *out)
{
    return lrvm__recover_ranges(dirfd, logfd, h, progress, progress_arg, NULL, NULL, out);
}

int lrvm__recover_ranges(int dirfd, int logfd, const struct lrvm__log_header *h,
                         void (*progress)(void *arg, uint64_t off), void *progress_arg,
                         lrvm__range_fn *fn, void *fn_arg, struct lrvm__check *out)
{
    struct replay r = { .dirfd = dirfd, .rdonly = 1 };
    struct check_arg a = { &r, 0, progress, progress_arg };
    struct ranges_arg ra = { .check = &a, .fn = fn, .arg = fn_arg, .logfd = logfd, .h = h };
    struct lrvm__scan_cb cb = { .arg = &a, .record = on_check_record };
    if (fn != NULL)
        cb = (struct lrvm__scan_cb){ .arg = &ra, .record = on_ranges_record };
    /* A header that names a next generation: its own first, as many
     * transactions as it says (V8), then the next from its start. */
    struct lrvm__log_header next = { h->lh_version, h->lh_generation + 1, h->lh_next_txno,
                                     h->lh_next_start, 0, 0 };
    cb.end_txno = h->lh_next_start != 0 ? h->lh_next_txno : 0;
    out->head = *h;
    int rc = lrvm__log_scan(logfd, h, &cb, &out->scan);
    out->replay_bytes = out->scan.sr_end - h->lh_start;
    if (rc == 0 && h->lh_next_start != 0 && out->scan.sr_damage == 0) {
        struct lrvm__scan_result first = out->scan;
        cb.end_txno = 0;
        out->head = next;
        ra.h = &out->head;
        rc = lrvm__log_scan(logfd, &next, &cb, &out->scan);
        out->scan.sr_txs += first.sr_txs;
        out->scan.sr_records += first.sr_records;
        out->replay_bytes += out->scan.sr_end - next.lh_start;
    }

    out->at = a.at;
    out->why = rc == LRVM_ECORRUPT ? (r.why ? r.why : "its payload is malformed") : NULL;
    if (rc == 0 && out->scan.sr_damage != 0) {
        rc = LRVM_ECORRUPT;
        out->at = out->scan.sr_damage;
        out->why = "the log is damaged there: an intact record written after it proves "
                   "those bytes were durable";
    }
    out->segs = NULL;
    out->nsegs = 0;
    if (rc == 0 && r.nsegs > 0) {
        if ((out->segs = calloc(r.nsegs, sizeof *out->segs)) == NULL) {
            rc = LRVM_ENOMEM;
        } else {
            for (size_t i = 0; i < r.nsegs; i++) {
                struct lrvm__seg_usage *u = &out->segs[i];
                const struct replay_seg *seg = r.segs[i];
                memcpy(u->name, seg->name, seg->name_len);
                u->name[seg->name_len] = '\0';
                u->size = seg->size;
                u->ranges = seg->ranges;
                u->bytes = seg->bytes;
            }
            out->nsegs = r.nsegs;
        }
    }
    replay_free(&r);
    return rc;
}
