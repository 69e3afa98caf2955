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
 *           complete, added to the batch. A header naming two
 *           generations (logfmt.c) is two spans: the retiring one from
 *           its start, exactly its count of transactions (V8), then the
 *           current one from its start
 *   fdatasync the log, when recovery at open found records: a process
 *           that died before its commit's sync may have left them in the
 *           page cache only
 *   write the batch to the segment files; fdatasync every one written
 *   write the new generation's header slot (at 4096); fdatasync the log
 *
 * Order of a truncation beside the commits (lrvm__truncate_start, after a
 * commit, store lock held; then the thread, trunc_main, without it):
 *
 *   the switch (log.c): flush + fdatasync; the header naming both
 *           generations + fdatasync; the writer goes on in the next one
 *   the thread: scan the retiring generation, from its start to its
 *           known end and count, adding to the batch; write the
 *           batch to the segment files, at most a quarter of the room
 *           ahead of the commits (keep_pace); fdatasync every one written;
 *           log.c writes the header of the next generation alone into
 *           the other slot + fdatasync; the job is marked done
 *   a store-locked call reaps it (lrvm__trunc_reap): joins the thread,
 *           takes the header slot as current, counts the truncation and
 *           the syncs; a failed job leaves both generations, and a later
 *           commit starts it again
 *
 * The batch is written out when it is full as well. If that happens
 * before the scan has reached the end of the log, the rest of the log is
 * checked first, from the transaction being added on (check_rest), and
 * the log synced: a hostile record at the end must find nothing written.
 * So a log is read once whenever its changes fit the batch, instead of
 * a checking pass and an applying one.
 *
 * The batch. A log names the same bytes many times over, and a log of
 * small transactions names millions of ranges of a few bytes, scattered:
 * far too many for a pwrite each, when one write call costs as much as
 * writing some twenty blocks in a larger one (doc/architecture.md has
 * the figures). So the ranges of complete transactions are gathered,
 * each clipped to a region of its segment file (REGION_MAX blocks at
 * most) and added to that region's bucket, in log order; a small range
 * carries its bytes, a larger one points at them in the mapped log. When
 * the batch is full, and at the end, each region is written in turn, in
 * file order (write_region): the blocks its ranges change are read from the
 * file first, in one pread a run, when the first range on them covers
 * them only in part; the ranges are copied into the region's buffer in
 * log order; a block that a range covers whole is not copied but written
 * from the log, unless a later range changes part of it (a log of large
 * transactions goes from the log's pages to the file's in one copy); the
 * changed blocks, with the gaps of at most APPLY_GAP unchanged blocks
 * between them (I8), go out in one pwritev a run. So each block is read
 * and written at most once a batch, however many ranges named it. The
 * parts of a transaction in several records are gathered from the
 * mapping, when its last part has been found valid.
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
 *   I3 A block a region writes holds the file's bytes (when the first
 *      range of the batch on it covers it only in part) overlaid with
 *      every range of the batch on it, in log order, so writing it writes
 *      exactly what replaying those ranges one by one would have. A block
 *      whose last whole-block range is later than any partial one is
 *      written from that range's bytes, in the log (apply.whole).
 *   I4 A segment file is written only from records that are durable in
 *      the log, so it is never ahead of what a power cut leaves there.
 *   I5 A range is clipped to its region and added at the end of that
 *      region's bucket, so a region's ranges reach write_region whole
 *      and in log order (I3).
 *   I6 One truncation at a time: the switch happens only with no job
 *      running, and lrvm__truncate and lrvm_close wait for the job first;
 *      so the batch's memory (s->apply_mem) is the running one's alone.
 *   I7 The thread reads of the store only what stays constant while it
 *      is open (its directory, the log's descriptor, the resident limit)
 *      and the job, handed over under the store lock with tj_state;
 *      what it would count it leaves in the job (tj_fsyncs), folded into
 *      the store's stats by the reaping call; its progress it stores in
 *      the job's atomic tj_progress, which commits read, and theirs it
 *      reads in the atomics they store (tj_fill, tj_commits) and in
 *      tj_hurry, which a waiting call sets.
 *   I8 A block a write spans that no range of the batch changes is
 *      written with the bytes read from its file just before, by the one
 *      thread that writes segment files (I6), so it does not change there.
 *   I9 The batch's hash table is empty but while a batch fills: writing
 *      the batch empties it, and so does handing the memory back to the
 *      store, so the next truncation finds it empty without clearing it.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct replay_seg {
    char     name[LRVM__NAME_MAX];      /* name_len bytes, no NUL */
    size_t   name_len;
    uint32_t index;         /* in replay.segs */
    int      fd;
    uint64_t size;
    uint64_t ranges, bytes; /* named by valid records (lrvmutl verify) */
    uint64_t part_blocks;   /* ranges' blocks covered in part */
    int      read_ahead;    /* the file is being read ahead */
    int      written;
};

#define APPLY_BLOCK  4096u
#define APPLY_IOV    1024               /* IOV_MAX on Linux */
#define APPLY_GAP    8                  /* blocks not changed that a write may span */
#define REGION_MAX   256u               /* blocks of a region: 1 MiB at most */
#define REGION_MIN   16u
#define PREFETCH     16
#define CHUNK_FIRST  16u                /* ranges of a region's first chunk, */
#define CHUNK_MAX    4096u              /*   doubling up to this */

/* Ranges a batch holds at most, before the memory bound lowers it: more
 * than a quarter of the default resident limit has room for, so that
 * beside the commits the memory alone bounds the batch (a generation of
 * 4-word transactions up to 64 MiB of log, so that each block is read and
 * written once a generation); recovery at open, which may take all of
 * the limit, stops here. Tests make it small to crash recovery between
 * its writes. */
uint32_t lrvm__apply_max = 1u << 22;

/* A range to write, clipped to one region. A word or less carries its
 * bytes: the buckets take ranges out of log order, and reading them back
 * from all over the log would cost a cache miss each. A larger one's
 * bytes stay in the mapped log until its region is written, and are
 * prefetched with its target. A word, not more: a batch of a quarter of
 * the default resident limit then holds a generation of 4-word
 * transactions (doc/architecture.md, "The batch"). A range of up to
 * two words goes in as two, each carrying its bytes (SPLIT_MAX): a
 * block's header word and the program's first word after it, which a
 * shared heap's commit logs as one, are half of that log's ranges, and
 * their bytes fetched from the log were its truncation's largest cost. */
#define INLINE_MAX 8
#define SPLIT_MAX  (2 * INLINE_MAX)
struct apply_range {
    union {
        const unsigned char *src;
        unsigned char        bytes[INLINE_MAX];     /* len <= INLINE_MAX */
    } u;
    uint32_t off;           /* in its bucket's region: 16 bytes a range */
    uint32_t len;
};
_Static_assert((uint64_t)REGION_MAX * APPLY_BLOCK <= UINT32_MAX,
               "a range's offset in its region fits its 32 bits");

/* What a region's write does with each of its blocks. */
enum { BLK_UNTOUCHED, BLK_READ, BLK_WHOLE };

/* A run of the batch's ranges that belong to one region. */
struct apply_chunk {
    uint32_t at, len;       /* in apply.ranges */
    uint32_t next;          /* the region's next chunk */
};

/* The ranges of the batch in one region, in log order: a chain of
 * chunks, each twice as long as the one before, up to chunk_max. */
struct apply_bucket {
    uint64_t region;        /* in its file: the range's offset >> rshift */
    uint32_t seg;           /* index in replay.segs */
    uint32_t slot;          /* in apply.table */
    uint32_t head, tail;    /* its first and last chunk */
    uint32_t tail_n;        /* ranges in the last */
    uint32_t n;             /* ranges in all */
};

struct apply {
    unsigned char      *buf;    /* one region's bytes */
    struct apply_range *ranges; /* the batch: max, in chunks */
    struct apply_bucket *buckets; /* the regions the batch holds, in the
                                     order first named: nbuckets of chunk_cap */
    struct apply_chunk *chunks; /* the chunks taken: nchunks of chunk_cap */
    uint32_t           *table;  /* a region's bucket, found by hash: 1 + its
                                   index, 0 for none (I9); 1 << tbits slots */
    unsigned            tbits;
    unsigned char      *mem;    /* the mapping these five lie in, in this order */
    size_t              size;   /*   and its length */
    const unsigned char **whole; /* per block of the region: its bytes in the
                                    log, when the last range on it covers it */
    unsigned char      *state;  /* per block of the region: BLK_* */
    uint32_t            n, max; /* ranges in the batch, and room for */
    uint32_t            used;   /* ranges taken by chunks */
    uint32_t            nchunks, nbuckets, chunk_cap;
    uint32_t            chunk_first, chunk_max; /* a chunk's ranges */
    uint32_t            rblocks; /* blocks of a region, a power of two: */
    unsigned            rshift;  /*   a region is 1 << rshift bytes */
    int                 keep;   /* the memory stays with the store after */
    int                 wb_fd;  /* the file being written beside the commits, */
    uint64_t            wb_from, wb_bytes;  /*   where its writeback is not waited
                                               for yet, and the bytes written since */
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
    int                apply;       /* add ranges to the batch, not only check them */
    lrvm_t            *store;       /* recovery: */
    struct lrvm__log_state log;     /*   the log, once flushed */
    const unsigned char *img;       /*   the log, mapped whole */
    uint64_t           img_size;
    const unsigned char *payload;   /*   the record being walked: its payload, */
    uint64_t           payload_off; /*   and where that lies in the log */
    struct span        span[2];     /*   the generations to apply, in order */
    int                nspans, cur; /*   and the one being scanned */
    struct lrvm__log_pos tx;        /*   the transaction whose records come in */
    size_t             room;        /*   bytes its batch may take */
    _Atomic uint32_t  *progress;    /*   the thread's: where it publishes */
    struct lrvm__trunc_job *job;    /*   the thread's: the commits' pace */
    uint64_t           added, written;  /* ranges into the batch, and out */
    int                checked;     /*   the whole log passed its checks (I1) */
    int                durable;     /*   and is synced (I4) */
    uint64_t           fsyncs;      /*   segment files synced */
    struct replay_seg **segs;       /* each allocated alone: a check of the rest
                                       of the log (check_rest) may add some while
                                       a copy holds a pointer to one */
    size_t             nsegs, cap;
    struct replay_seg *last;        /* the segment of the last range */
    const char        *rec_name;    /* a name of the record being walked, */
    struct replay_seg *rec_seg;     /*   and its segment: a record names each
                                       of its segments once (logfmt.c), so its
                                       ranges need not compare names again */
    const char        *why;         /* what made a record fail its check */
    struct apply       batch;
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
    if (fd == LRVM_ENOENT && r->store != NULL && !r->store->recovering) {
        /* This process wrote or checked the record: the file was removed
         * while the store is open. LRVM_EIO with errno ENOENT, as io.c's
         * syncs of a removed file. */
        LRVM__TRACE("segment file %.*s was removed while the store is open: truncation "
                    "refused", (int)n, name);
        return LRVM_EIO;
    }
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
    seg->read_ahead = seg->written = 0;
    r->nsegs++;
    *out = r->last = seg;
    return 0;
}

static void replay_free(struct replay *r)
{
    for (size_t i = 0; i < r->nsegs; i++) {
        lrvm__io_close(r->segs[i]->fd);
        free(r->segs[i]);
    }
    free(r->segs);
}

/* ------------------------------------------------------------ the batch */

/*
 * The batch's memory stays with the store from one truncation to the
 * next, as it is: a store that truncates often would otherwise pay each
 * time for the page faults of the memory it fills. It counts within the
 * resident limit (a quarter of it at most), so it is not handed to the
 * kernel in between: on a virtual machine a page handed back with
 * MADV_FREE cost half a first touch to write again (doc/architecture.md,
 * "Measurements behind the code"). The batch never reads what it has not
 * written.
 */
static int apply_init(struct apply *c, lrvm_t *s, size_t room)
{
    /* ROOM: half for a region's bytes, the rest for the ranges. */
    size_t rblocks = room / 2 / APPLY_BLOCK;
    rblocks = rblocks > REGION_MAX ? REGION_MAX : rblocks < REGION_MIN ? REGION_MIN : rblocks;
    /* A power of two: a range's region is a shift away, where a division
     * for each range, in the adding and the writing, was a measurable share
     * of a truncation of small transactions. */
    while ((rblocks & (rblocks - 1)) != 0)
        rblocks &= rblocks - 1;
    size_t rbytes = rblocks * APPLY_BLOCK;
    /* A range takes its own bytes and its share of the chunks, the buckets
     * and the table: a chunk, a bucket and up to four slots for every
     * CHUNK_FIRST ranges (a smaller first chunk comes only with a batch
     * smaller than lrvm__apply_max makes it). */
    size_t per = sizeof(struct apply_range) +
                 (sizeof(struct apply_chunk) + sizeof(struct apply_bucket) + 4 * sizeof(uint32_t) +
                  CHUNK_FIRST - 1) / CHUNK_FIRST;
    size_t max = room > rbytes ? (room - rbytes) / per : 0;
    max = max > lrvm__apply_max ? lrvm__apply_max : max > 0 ? max : 1;
    /* A region's chunks grow from a few ranges: a batch holds as many
     * regions as it has room for first chunks, and a region's chunks
     * leave unused at most about as much room as its ranges take (a
     * chunk_max once they stop growing). A batch of few ranges takes
     * them one at a time, so that it holds as many regions as ranges. */
    size_t most = max / 256;
    most = most > CHUNK_MAX ? CHUNK_MAX : most > 0 ? most : 1;
    c->chunk_max = (uint32_t)most;
    c->chunk_first = most < CHUNK_FIRST ? (uint32_t)most : CHUNK_FIRST;
    c->chunk_cap = (uint32_t)(max / c->chunk_first + 1);   /* one short, when the room ends */
    c->tbits = 1;
    while (((size_t)1 << c->tbits) < 2 * (size_t)c->chunk_cap)     /* half empty at most */
        c->tbits++;
    c->rblocks = (uint32_t)rblocks;
    c->rshift = 0;
    while (((size_t)1 << c->rshift) < rbytes)
        c->rshift++;
    c->max = (uint32_t)max;
    /* One mapping, kept with the store as a whole: buf, ranges, buckets
     * (8-byte aligned, after 16-byte ranges), chunks, table. */
    size_t tsize = (size_t)1 << c->tbits;
    c->size = rbytes + max * sizeof(struct apply_range) +
              c->chunk_cap * (sizeof(struct apply_bucket) + sizeof(struct apply_chunk)) +
              tsize * sizeof(uint32_t);
    c->keep = room == s->resident_limit / 4;
    if (s->apply_mem != NULL && s->apply_size == c->size) {
        c->mem = s->apply_mem;
        s->apply_mem = NULL;
    } else {
        lrvm__recover_release(s);
        c->mem = mmap(NULL, c->size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (c->mem == MAP_FAILED) {
            c->mem = NULL;
            return LRVM_ENOMEM;
        }
    }
    c->buf = c->mem;
    c->ranges = (struct apply_range *)(void *)(c->mem + rbytes);
    c->buckets = (struct apply_bucket *)(void *)(c->ranges + max);
    c->chunks = (struct apply_chunk *)(void *)(c->buckets + c->chunk_cap);
    c->table = (uint32_t *)(void *)(c->chunks + c->chunk_cap);
#ifdef LRVM_DEBUG
    for (size_t i = 0; i < tsize; i++)
        LRVM__ASSERT(c->table[i] == 0);                                 /* I9 */
#endif
    c->whole = malloc(rblocks * sizeof *c->whole);
    c->state = malloc(rblocks);
    c->n = c->used = c->nchunks = c->nbuckets = 0;
    c->wb_fd = -1;
    return c->whole == NULL || c->state == NULL ? LRVM_ENOMEM : 0;
}

/* Empty the table of the buckets the batch holds (keeps I9). */
static void apply_clear(struct apply *c)
{
    for (uint32_t i = 0; i < c->nbuckets; i++)
        c->table[c->buckets[i].slot] = 0;
}

static void apply_free(struct apply *c, lrvm_t *s)
{
    if (c->mem != NULL && !c->keep) {
        munmap(c->mem, c->size);            /* recovery's, sized by all of the limit */
    } else if (c->mem != NULL) {
        apply_clear(c);                     /* a failed truncation's batch */
        lrvm__recover_release(s);
        s->apply_mem = c->mem;
        s->apply_size = c->size;
    }
    free(c->whole);
    free(c->state);
}

/* Bytes of block B of SEG that lie inside it: APPLY_BLOCK but in the last. */
static size_t block_len(const struct replay_seg *seg, uint64_t b)
{
    uint64_t left = seg->size - b * APPLY_BLOCK;
    return left < APPLY_BLOCK ? (size_t)left : APPLY_BLOCK;
}

/* A walk over a bucket's ranges, in log order. */
struct bucket_walk {
    const struct apply        *c;
    const struct apply_bucket *b;
    uint32_t                   ch, k, m;    /* the chunk, the next in it, its ranges */
};

static void walk_start(struct bucket_walk *w, const struct apply *c, const struct apply_bucket *b)
{
    w->c = c;
    w->b = b;
    w->ch = b->head;
    w->k = 0;
    w->m = b->head == b->tail ? b->tail_n : c->chunks[b->head].len;
}

/* The walk's next range, or NULL after the last. */
static inline const struct apply_range *walk_next(struct bucket_walk *w)
{
    if (w->k == w->m) {
        if (w->ch == w->b->tail)
            return NULL;
        w->ch = w->c->chunks[w->ch].next;
        w->k = 0;
        w->m = w->ch == w->b->tail ? w->b->tail_n : w->c->chunks[w->ch].len;
    }
    /* The ranges were written long before, and the sequence of their
     * lines breaks at each chunk: fetched well ahead, or each is a miss. */
    const struct apply_range *e = &w->c->ranges[w->c->chunks[w->ch].at + w->k++];
    __builtin_prefetch((const void *)((uintptr_t)e + 64 * sizeof *e));
    return e;
}

/* Copy range E (offsets LO to HI of the region at BASE) into the region:
 * the blocks it covers whole are written from the log (c->whole), the
 * others get its bytes in c->buf, over what earlier ranges left there. */
static void region_copy(struct apply *c, const struct replay_seg *seg, uint64_t base,
                        const struct apply_range *e)
{
    uint64_t lo = e->off, hi = lo + e->len;
    const unsigned char *src = e->len <= INLINE_MAX ? e->u.bytes : e->u.src;
    for (uint64_t b = lo / APPLY_BLOCK; b * APPLY_BLOCK < hi; b++) {
        uint64_t bs = b * APPLY_BLOCK, be = bs + block_len(seg, base / APPLY_BLOCK + b);
        uint64_t s0 = lo > bs ? lo : bs, s1 = hi < be ? hi : be;
        if (s0 == bs && s1 == be) {
            c->whole[b] = src + (bs - lo);
            continue;
        }
        if (c->whole[b] != NULL) {      /* the block comes from the log, then changes */
            memcpy(c->buf + bs, c->whole[b], (size_t)(be - bs));
            c->whole[b] = NULL;
        }
        if (s1 - s0 == 8)               /* a word: no call */
            memcpy(c->buf + s0, src + (s0 - lo), 8);
        else
            memcpy(c->buf + s0, src + (s0 - lo), (size_t)(s1 - s0));
    }
}

/* Write the ranges of bucket B, all in one region of SEG, in log order:
 * the blocks they change and the gaps of at most APPLY_GAP blocks between
 * them go out in runs of one pwritev each (keeps I3 and I8). */
static int write_region(struct replay *r, struct replay_seg *seg, const struct apply_bucket *b)
{
    struct apply *c = &r->batch;
    struct iovec iov[APPLY_IOV];
    struct bucket_walk w, ahead;
    const struct apply_range *e;
    uint64_t rbytes = (uint64_t)c->rblocks * APPLY_BLOCK, base = (uint64_t)b->region << c->rshift;
    uint64_t left = (seg->size - base + APPLY_BLOCK - 1) / APPLY_BLOCK;
    uint32_t nb = left < c->rblocks ? (uint32_t)left : c->rblocks;
    unsigned char *st = c->state;

    /* The first range on a block says whether it must be read first. */
    memset(st, BLK_UNTOUCHED, nb);
    memset(c->whole, 0, nb * sizeof *c->whole);
    for (walk_start(&w, c, b); (e = walk_next(&w)) != NULL;) {
        uint64_t lo = e->off, hi = lo + e->len;
        LRVM__ASSERT(hi <= rbytes);                                     /* I5 */
        for (uint64_t b = lo / APPLY_BLOCK; b * APPLY_BLOCK < hi; b++) {
            uint64_t bs = b * APPLY_BLOCK, be = bs + block_len(seg, base / APPLY_BLOCK + b);
            if (st[b] == BLK_UNTOUCHED)
                st[b] = lo <= bs && hi >= be ? BLK_WHOLE : BLK_READ;
        }
    }
    /* Short gaps join the runs around them; their bytes come from the file. */
    for (uint32_t b = 0, last = UINT32_MAX; b < nb; b++) {
        if (st[b] == BLK_UNTOUCHED)
            continue;
        if (last != UINT32_MAX && b - last - 1 <= APPLY_GAP)
            memset(st + last + 1, BLK_READ, b - last - 1);
        last = b;
    }
    /* Each run's blocks to be read, in one pread from its first to its last. */
    for (uint32_t a = 0; a < nb;) {
        uint32_t z = a, fr = UINT32_MAX, lr = 0;
        if (st[a] == BLK_UNTOUCHED) {
            a++;
            continue;
        }
        for (; z < nb && st[z] != BLK_UNTOUCHED; z++)
            if (st[z] == BLK_READ) {
                fr = fr == UINT32_MAX ? z : fr;
                lr = z;
            }
        if (fr != UINT32_MAX) {
            size_t len = (size_t)(lr - fr) * APPLY_BLOCK + block_len(seg, base / APPLY_BLOCK + lr);
            ssize_t got = lrvm__io_pread(seg->fd, c->buf + (size_t)fr * APPLY_BLOCK, len,
                                         base + (uint64_t)fr * APPLY_BLOCK);
            if (got < 0)
                return (int)got;
            if ((size_t)got < len)              /* the file shrank under us */
                return LRVM_EIO;
        }
        a = z;
    }
    /* Small ranges land all over the region: each copy's line, and the
     * source of one not carried, is fetched PREFETCH copies ahead, so the
     * misses overlap. */
    walk_start(&ahead, c, b);
    for (int k = 0; k < PREFETCH && walk_next(&ahead) != NULL; k++)
        ;
    for (walk_start(&w, c, b); (e = walk_next(&w)) != NULL;) {
        const struct apply_range *next = walk_next(&ahead);
        if (next != NULL) {
            __builtin_prefetch(c->buf + next->off, 1);
            if (next->len > INLINE_MAX)
                __builtin_prefetch(next->u.src);
        }
        region_copy(c, seg, base, e);
    }
    /* Each run in one pwritev: from c->buf, or from the log. */
    uint64_t written = 0;
    for (uint32_t a = 0; a < nb;) {
        if (st[a] == BLK_UNTOUCHED) {
            a++;
            continue;
        }
        int n = 0;
        uint32_t z = a;
        for (; z < nb && st[z] != BLK_UNTOUCHED; z++) {
            unsigned char *p = c->whole[z] != NULL ? (unsigned char *)c->whole[z]
                                                   : c->buf + (size_t)z * APPLY_BLOCK;
            size_t len = block_len(seg, base / APPLY_BLOCK + z);
            if (n > 0 && (unsigned char *)iov[n - 1].iov_base + iov[n - 1].iov_len == p) {
                iov[n - 1].iov_len += len;
            } else {
                iov[n].iov_base = p;
                iov[n].iov_len = len;
                n++;
            }
        }
        /* The log's pages the scan read with pread are cached but not
         * mapped: a pwritev that meets them unmapped takes a slow path
         * page by page, several times slower. Map them in one call first. */
        for (int i = 0; i < n; i++) {
            unsigned char *p = iov[i].iov_base;
            if (p < c->buf || p >= c->buf + rbytes)
                lrvm__io_map_populate(p, iov[i].iov_len);
        }
        int rc = lrvm__io_pwritev_all(seg->fd, iov, n, base + (uint64_t)a * APPLY_BLOCK);
        seg->written = 1;
        if (rc < 0)
            return rc;
        written += (uint64_t)(z - a) * APPLY_BLOCK;
        a = z;
    }
    /* Beside the commits, the disk starts on the region now, and once a
     * region's worth has been written since the last wait, what was
     * written before this region must have reached it: at most about two
     * regions' writes are in flight. A commit's sync of the log then
     * waits behind those alone, not behind all of a truncation's writes,
     * and the fdatasync at the end finds little left (doc/architecture.md
     * has the figures). Regions come in file order, so the wait is for the
     * file below this region; a sparse truncation waits seldom. With no
     * commit to make room for, the writes go out as fast as the kernel
     * takes them. */
    if (r->progress == NULL)
        return 0;
    lrvm__io_start_writeback(seg->fd, base, (uint64_t)nb * APPLY_BLOCK);
    if (c->wb_fd != seg->fd) {
        c->wb_fd = seg->fd;
        c->wb_from = 0;
        c->wb_bytes = 0;
    }
    if (c->wb_bytes >= rbytes / 2 && base > c->wb_from) {
        /* Its failure is the segment's sync failing (io.c says why). */
        int rc = lrvm__io_wait_writeback(seg->fd, c->wb_from, base - c->wb_from);
        if (rc < 0)
            return rc;
        c->wb_from = base;
        c->wb_bytes = 0;
    }
    c->wb_bytes += written;
    return 0;
}

static int check_rest(struct replay *r);

/* The truncation thread's progress, for the commits that pace
 * themselves on it (lrvm__truncate_pace): a fifth for the scan of its
 * generation, three quarters for the writes, by ranges, a twentieth for
 * the syncs at the end. The one thing the thread writes of the store's
 * (I7), an atomic. */
static void publish(struct replay *r)
{
    if (r->progress == NULL)
        return;
    const struct span *sp = &r->span[r->cur];
    uint64_t len = sp->end > sp->head.lh_start ? sp->end - sp->head.lh_start : 1;
    uint64_t at = r->payload_off > sp->head.lh_start ? r->payload_off - sp->head.lh_start : 0;
    double scanned = r->checked ? 1.0 : at >= len ? 1.0 : (double)at / (double)len;
    double out = r->added > 0 ? (double)r->written / (double)r->added : 0.0;
    double done = 0.2 * scanned + 0.75 * scanned * out;
    atomic_store_explicit(r->progress, (uint32_t)(done * 65536.0), memory_order_relaxed);
}

/* The truncation beside the commits keeps at most TRUNC_AHEAD of its
 * work ahead of theirs (its progress against how far the generation
 * after it is into its room), when its generation passed the threshold:
 * one started for the memory's sake (the resident limit, the tracker's
 * crowding) would wait for commits whose log does not measure its need.
 * At the disk's full speed its writes would sit in front of each
 * commit's sync (doc/architecture.md, "Recovery and truncation", has
 * the figures and what else was tried). It naps TRUNC_NAP_US at a time,
 * and goes on as fast as it can once a caller waits for it; and a region
 * goes out after a nap in which no commit came (they stopped, or a
 * caller holds the store lock to wait for it, or the commits wait for a
 * sync; those at the log's tail, which take no lock, do not count): one
 * nap a region at most then. */
#define TRUNC_AHEAD   16384u                /* a quarter of the room */
#define TRUNC_NAP_US  1000

static void keep_pace(struct replay *r)
{
    struct lrvm__trunc_job *j = r->job;
    if (j == NULL || !j->tj_paced)
        return;
    while (!atomic_load(&j->tj_hurry) &&
           atomic_load_explicit(r->progress, memory_order_relaxed) >
               atomic_load_explicit(&j->tj_fill, memory_order_relaxed) + TRUNC_AHEAD) {
        uint32_t seen = atomic_load(&j->tj_commits);
        lrvm__pause_us(TRUNC_NAP_US);
        if (atomic_load(&j->tj_commits) == seen)
            return;
    }
}

static int bucket_cmp(const void *a, const void *b)
{
    const struct apply_bucket *x = a, *y = b;
    if (x->seg != y->seg)
        return x->seg < y->seg ? -1 : 1;
    return x->region < y->region ? -1 : x->region > y->region;
}

/* Write the batch, region by region in file order (write_region's waits
 * for writeback count on it), and empty it. */
static int apply_write(struct replay *r)
{
    struct apply *c = &r->batch;
    int rc = 0;
    if (c->n == 0)
        return 0;
    if (!r->checked && (rc = check_rest(r)) < 0)    /* keeps I1 and I4 */
        return rc;
    apply_clear(c);
    qsort(c->buckets, c->nbuckets, sizeof *c->buckets, bucket_cmp);
    for (uint32_t i = 0; i < c->nbuckets && rc == 0; i++) {
        keep_pace(r);
        rc = write_region(r, r->segs[c->buckets[i].seg], &c->buckets[i]);
        r->written += c->buckets[i].n;
        publish(r);
    }
    c->n = c->used = c->nchunks = c->nbuckets = 0;
    return rc;
}

/* The slot of C's table that holds the bucket of region REGION of segment
 * SEG, or the empty one where it would go. */
static uint32_t *table_slot(const struct apply *c, uint32_t seg, uint64_t region)
{
    uint64_t h = (region ^ (uint64_t)seg << 44) * 0x9e3779b97f4a7c15ull;
    uint32_t mask = (1u << c->tbits) - 1, i = (uint32_t)(h >> (64 - c->tbits));
    for (;; i = (i + 1) & mask) {
        uint32_t t = c->table[i];
        if (t == 0 || (c->buckets[t - 1].region == region && c->buckets[t - 1].seg == seg))
            return &c->table[i];
    }
}

/* *OUT: room in the batch for one range of region REGION of SEG, at the
 * end of its bucket (keeps I5); a batch with no room left for it is
 * written first. */
static int apply_slot(struct replay *r, struct replay_seg *seg, uint64_t region,
                      struct apply_range **out)
{
    struct apply *c = &r->batch;
    uint32_t *slot = table_slot(c, seg->index, region);
    struct apply_bucket *b = *slot != 0 ? &c->buckets[*slot - 1] : NULL;
    if (b == NULL || b->tail_n == c->chunks[b->tail].len) {
        int rc;
        if (c->used == c->max) {
            if ((rc = apply_write(r)) < 0)
                return rc;
            b = NULL;                   /* every bucket went with it */
            slot = table_slot(c, seg->index, region);
        }
        /* Every chunk but the one the room ends in has chunk_first ranges
         * or more, so the room runs out before chunk_cap does. */
        LRVM__ASSERT(c->nchunks < c->chunk_cap);
        uint32_t want = b == NULL ? c->chunk_first : 2 * c->chunks[b->tail].len;
        want = want < c->chunk_max ? want : c->chunk_max;
        uint32_t ch = c->nchunks++;
        c->chunks[ch].at = c->used;
        c->chunks[ch].len = want < c->max - c->used ? want : c->max - c->used;
        c->used += c->chunks[ch].len;
        if (b == NULL) {
            b = &c->buckets[c->nbuckets++];
            *b = (struct apply_bucket){ .region = region, .seg = seg->index,
                                        .slot = (uint32_t)(slot - c->table), .head = ch };
            *slot = c->nbuckets;
        } else {
            c->chunks[b->tail].next = ch;
        }
        b->tail = ch;
        b->tail_n = 0;
    }
    b->n++;
    c->n++;
    *out = &c->ranges[c->chunks[b->tail].at + b->tail_n++];
    return 0;
}

/* Add the N bytes DATA of the record being walked, at OFF of SEG, to the
 * batch, a piece per region (and two for a range of up to SPLIT_MAX);
 * a full batch is written first. */
static int apply_add(struct replay *r, struct replay_seg *seg, uint64_t off,
                     const unsigned char *data, uint64_t n)
{
    struct apply *c = &r->batch;
    uint64_t rbytes = (uint64_t)c->rblocks * APPLY_BLOCK;
    while (n > 0) {
        uint64_t room = rbytes - (off & (rbytes - 1));
        uint32_t len = (uint32_t)(n < room ? n : room);
        if (n <= SPLIT_MAX && len > INLINE_MAX)
            len = INLINE_MAX;
        struct apply_range *e;
        int rc = apply_slot(r, seg, off >> c->rshift, &e);
        if (rc < 0)
            return rc;
        e->off = (uint32_t)(off & (rbytes - 1));
        e->len = len;
        if (len == 8)
            memcpy(e->u.bytes, data, 8);
        else if (len <= INLINE_MAX)
            memcpy(e->u.bytes, data, len);
        else            /* in the mapped log: the scan's window moves on */
            e->u.src = r->img + r->payload_off + (size_t)(data - r->payload);
        off += len;
        data += len;
        n -= len;
        if (++r->added % 4096 == 0)
            publish(r);
    }
    return 0;
}

/* ------------------------------------------------------------ replay */

static int on_range(void *arg, const char *name, size_t name_len, uint64_t off,
                    const unsigned char *data, uint64_t n)
{
    struct replay *r = arg;
    struct replay_seg *seg = r->rec_seg;
    if (name != r->rec_name) {
        int rc = replay_seg(r, name, name_len, &seg);
        if (rc < 0)
            return rc;
        r->rec_name = name;
        r->rec_seg = seg;
    }
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
    return apply_add(r, seg, off, data, n);
}

/* Hand each range of a record's PAYLOAD to on_range. A walk may run in
 * the middle of another's (check_rest), so the record's names are
 * forgotten before and the outer one's come back after: a name's address
 * is the record's, and another record may come to lie at it. */
static int walk_ranges(struct replay *r, const unsigned char *payload, size_t len)
{
    const char *was_name = r->rec_name;
    struct replay_seg *was_seg = r->rec_seg;
    r->rec_name = NULL;
    int rc = lrvm__payload_walk(payload, len, on_range, r);
    r->rec_name = was_name;
    r->rec_seg = was_seg;
    return rc;
}

/* Check the ranges of the record at OFF, and add them to the batch in
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
    int rc = walk_ranges(r, payload, h->rh_payload_len);
    r->apply = was;
    return rc;
}

static int on_part(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                   const unsigned char *payload)
{
    return walk_record(arg, off, h, payload, 1);
}

/* Recovery's scan: check every valid record, and add those of complete
 * transactions to the batch, in log order. The parts of a transaction
 * in several are added once its last part is found valid, from the
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

/* The batch is full before the scan has reached the end of the log: check
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

/* Scan every span of R, applying as it goes, and write what the batch
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
    if ((rc = apply_init(&r->batch, r->store, r->room)) < 0)
        return rc;
    struct lrvm__scan_result res[2];
    for (r->cur = 0; r->cur < r->nspans; r->cur++) {
        const struct span *sp = &r->span[r->cur];
        struct lrvm__scan_cb cb;
        span_cb(r, sp, &cb, on_record);
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
    apply_free(&r->batch, r->store);
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
    /* The batch counts against the store's memory: a quarter of the
     * resident limit (the memory of truncations, which the limit's
     * checks leave room for), or all of it while no segment is mapped
     * (recovery at open), when no page is kept. */
    struct replay r = { .dirfd = s->dirfd, .apply = 1, .store = s,
                        .room = s->nsegs == 0 ? s->resident_limit : s->resident_limit / 4 };
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
 * resident limit), or handed to it with the job (the batch's memory: only
 * one truncation runs at a time, and lrvm__truncate waits for this one). */
static void *trunc_main(void *arg)                                  /* keeps I7 */
{
    lrvm_t *s = arg;
    struct lrvm__trunc_job *j = &s->trunc;
    (void)pthread_setname_np(pthread_self(), "lrvm-trunc");    /* top -H, perf */
    lrvm__lock_own_thread();
    struct replay r = { .dirfd = s->dirfd, .apply = 1, .store = s, .durable = 1,
                        .room = s->resident_limit / 4, .progress = &j->tj_progress, .job = j };
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
    lrvm__lock(&j->tj_mu, LRVM__RANK_TRUNC_JOB);
    j->tj_rc = rc;
    j->tj_fsyncs = r.fsyncs;
    j->tj_state = JOB_DONE;
    pthread_cond_broadcast(&j->tj_cond);
    lrvm__unlock(&j->tj_mu);
    lrvm__io_thread_ends();
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

/* Start the thread on the log's retiring generation; PACED when the
 * generation passed its threshold, so that the commits filling the next
 * one set the thread's pace (keep_pace). Store lock held. */
static int job_start(lrvm_t *s, int paced)
{
    struct lrvm__trunc_job *j = &s->trunc;
    LRVM__ASSERT(j->tj_state == JOB_IDLE && s->log.lg_retiring);
    j->tj_ret = s->log.lg_ret;
    j->tj_fd = s->log.lg_fd;
    j->tj_rc = 0;
    j->tj_fsyncs = 0;
    atomic_store(&j->tj_progress, 0);
    atomic_store(&j->tj_fill, 0);
    atomic_store(&j->tj_hurry, 0);
    j->tj_paced = paced;
    j->tj_state = JOB_RUNNING;
    if (lrvm__io_thread_start(&j->tj_thread, trunc_main, s) < 0) {
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
    lrvm__lock(&j->tj_mu, LRVM__RANK_TRUNC_JOB);
    int done = j->tj_state == JOB_DONE, rc = j->tj_rc;
    lrvm__unlock(&j->tj_mu);
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
    atomic_store(&j->tj_hurry, 1);                      /* keep_pace */
    lrvm__lock(&j->tj_mu, LRVM__RANK_TRUNC_JOB);
    while (j->tj_state == JOB_RUNNING)
        pthread_cond_wait(&j->tj_cond, &j->tj_mu);
    lrvm__unlock(&j->tj_mu);
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
        rc = job_start(s, 0);               /* a failed one, tried again */
    if (rc == 0)
        rc = trunc_wait(s);
    return rc < 0 ? rc : s->log.lg_retiring ? LRVM_EIO : 0;
}

/* Commits that outrun the truncation would fill the room before the wall
 * (the log's, or the memory's past the resident limit) and then one of
 * them would wait there for all the rest of it. Instead a commit that
 * has taken more of either room than the thread has done of its work
 * sleeps a little, and the commits slow to the truncation's pace,
 * each by a fraction of a millisecond. They may run PACE_SLACK ahead of
 * the thread at its start, and must stay as far short of the wall when
 * its work is done, so that its syncs at the end have room left. */
#define PACE_SLACK 6554u                    /* a tenth of the room */

unsigned lrvm__truncate_pace(lrvm_t *s, int mem_fill)
{
    if (atomic_load(&s->trunc.tj_state) != JOB_RUNNING)
        return 0;
    int fill = lrvm__log_wall_fill(&s->log);
    if (mem_fill > fill)
        fill = mem_fill;
    atomic_store_explicit(&s->trunc.tj_fill, fill < 0 ? 0 : (uint32_t)fill,
                          memory_order_relaxed);
    atomic_fetch_add(&s->trunc.tj_commits, 1);         /* the thread's keep_pace */
    if (fill < 0)
        return 0;
    uint64_t done = atomic_load_explicit(&s->trunc.tj_progress, memory_order_relaxed);
    uint64_t allowed = PACE_SLACK + done * (65536 - 2 * PACE_SLACK) / 65536;
    if ((uint64_t)fill <= allowed)
        return 0;
    __atomic_fetch_add(&s->stats.commit_waits, 1, __ATOMIC_RELAXED);   /* as wall_wait */
    return LRVM__PACE_US;
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
    LRVM__ASSERT_HELD(&s->mu);                          /* L1 */
    (void)reap(s);
    if (s->trunc.tj_state != JOB_IDLE)
        return;                             /* one runs (keeps I6) */
    /* A failure loses nothing: the log keeps the records and a later
     * commit tries again. */
    int paced = !s->log.lg_retiring && lrvm__truncate_due(s);
    lrvm__in_truncation = 1;
    int rc = s->log.lg_retiring ? 0 : lrvm__log_switch(&s->log, lrvm__truncate_threshold(s),
                                                        wall_wait, s, &ret);
    lrvm__in_truncation = 0;
    if (rc == 0)
        (void)job_start(s, paced);
}

/* By default a generation grows to the bytes of the segments mapped,
 * from 32 to 64 MiB: each generation the truncation writes every block
 * its ranges touch, up to all of every segment, so a log as large as
 * the segments keeps those writes within the log's own (doc/architecture.md,
 * "The threshold follows the segments", has the figures). The ceiling
 * bounds the log's file (two generations and a half) and recovery's
 * work, and a quarter of the resident limit is the truncation's batch,
 * which holds a 64 MiB generation of small transactions at the default
 * limit: past it a generation is written in several batches, each
 * rewriting the blocks. */
size_t lrvm__truncate_default = (size_t)32 << 20;
size_t lrvm__truncate_most = (size_t)64 << 20;

size_t lrvm__truncate_threshold(const lrvm_t *s)
{
    if (s->truncate_threshold != 0)
        return s->truncate_threshold;           /* options are honoured */
    size_t most = s->resident_limit / 4 < lrvm__truncate_most ? s->resident_limit / 4
                                                                : lrvm__truncate_most;
    size_t t = s->seg_bytes < most ? s->seg_bytes : most;
    return t > lrvm__truncate_default ? t : lrvm__truncate_default;
}

int lrvm__truncate_due(const lrvm_t *s)
{
    return s->log.lg_retiring || lrvm__log_gen_size(&s->log) >= lrvm__truncate_threshold(s);
}

void lrvm__recover_release(lrvm_t *s)
{
    if (s->apply_mem != NULL)
        munmap(s->apply_mem, s->apply_size);
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
    return walk_ranges(a->r, payload, h->rh_payload_len);
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
