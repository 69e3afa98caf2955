/*
 * log.c -- the shared redo log DIR/lrvm.log: its format, the record
 * encoder, the write buffer, commit and flush, and the scan.
 *
 * Owns: every byte of lrvm.log. Never: applies records to segment files
 * (recover.c does), or reports a commit durable before its fdatasync
 * returned.
 *
 * File layout (all integers little-endian)
 *
 *   offset  size  what
 *   0       512   header slot 0
 *   512     512   header slot 1
 *   1024    3072  zero
 *   4096    ...   records, each 8-byte aligned, then zeros or stale bytes
 *
 * Header slot
 *   0   8  magic "LRVMLOG\0"
 *   8   4  format version (1)
 *   12  4  zero
 *   16  8  generation
 *   24  8  number of the first transaction of this generation
 *   32  4  CRC32C of bytes 0..31
 * Of the slots with the magic and a valid CRC, the one with the higher
 * generation is current; it must be of version 1, or lrvm_open refuses
 * the log with LRVM_EVERSION. A new generation is written to the other
 * slot, so a torn header write leaves the previous generation current.
 * Its number is the current one plus 1, or plus 2 when the record the
 * last scan stopped at carries the plus-1 number, so that record stays
 * invalid (V3) even when damage or malice gave it the next number.
 *
 * Record
 *   0   4  magic "LRVR"
 *   4   4  CRC32C of bytes 8 .. 32+payload_len
 *   8   4  payload_len
 *   12  2  part number within the transaction (0, 1, ...)
 *   14  2  flags: 1 = COMMIT, the transaction's last part
 *   16  8  generation
 *   24  8  transaction number
 *   32  .  payload, then zero padding to a multiple of 8
 *
 * Payload: a sequence of entries, each a type byte then varints (LEB128):
 *   DEFINE (1)  namelen, name bytes     -- gives the next segment id, from 0
 *   RANGE  (2)  id, offset, length, bytes -- redo: write bytes at offset
 * Every record defines the segments it names, so each record decodes on
 * its own. At most LRVM__REC_MAX_SEGS definitions a record.
 *
 * A record at offset P is valid when (V1) its 32 header bytes lie inside
 * the file, (V2) its magic is right, (V3) its generation is the header's,
 * (V4) its padded length lies inside the file, (V5) its CRC matches, and
 * (V6) it continues the sequence: the first record has the header's first
 * transaction number and part 0; after a COMMIT record comes number+1 part
 * 0; after any other record the same number and the next part. The scan
 * stops at the first invalid record. A transaction counts only when its
 * COMMIT part is valid.
 *
 * Commit (flushing), in order:
 *   encode the records into the buffer (spilling parts with pwrite when
 *     the buffer is full, after first syncing the records of earlier
 *     no-flush commits that precede them);
 *   pwrite the buffer at the end of the log; fdatasync;
 *   only then is the commit reported.
 * A transaction's commit does the last two steps as a group (group_flush):
 * while one fdatasync runs without the store lock, later commits encode
 * and wait, and the next sync covers them all.
 * A failed commit overwrites every byte its records may have reached with
 * zeros and syncs, so no crash can make it look committed (C4 in lrvm.h).
 *
 * Invariants
 *   I1 Records in [header, lg_durable) are synced; the buffer holds only
 *      whole records of committed transactions and of commits waiting for
 *      their group's sync (and, during a commit, the committing one's
 *      parts) and is written at lg_written.
 *   I2 lg_written == lg_durable except while a multi-part commit spills
 *      or a group leader's sync is under way. Bytes leave the buffer only
 *      once synced because Linux may drop dirty pages after a failed
 *      writeback and report it to one fdatasync only: bytes still
 *      buffered can be written again, bytes already let go could not, and
 *      the hole would end the log before later commits. So a no-flush
 *      commit that overflows the buffer syncs (seq-64 in lrvm-bench: a
 *      262 KB transaction in a 1 MiB buffer, about one sync every two).
 *   I3 The bytes after the last valid record are zero, stale (another
 *      generation), or out of sequence (V6) -- never a valid record.
 *   I4 The log file is preallocated with written zeros ahead of its end,
 *      so the fdatasync of a commit is that of an in-place overwrite.
 *   I5 One fdatasync of the log at a time: each holds lg_sync_mu.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAGIC        "LRVMLOG"          /* 8 bytes with its NUL */
#define LOG_VERSION      1u
#define LOG_SLOT_SIZE    512u
#define REC_MAGIC        0x5256524cu        /* "LRVR" little-endian */
#define REC_MAX_PAYLOAD  (1u << 30)
#define LOG_GROW_CHUNK   (1u << 20)
#define LOG_NEW_NAME     "lrvm.log.new"

/* ------------------------------------------------------------ codecs */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

size_t lrvm__varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Inline in the payload walk: a log of small transactions holds three
 * varints for every few bytes it changes (recovering a 256 MiB log of
 * 4-word transactions: 0.40 s as a call, 0.38 s inline). */
static inline int varint_get(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    const unsigned char *p = *pp;
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end)
            return -1;
        unsigned char b = *p++;
        if (shift == 63 && b > 1)
            return -1;                      /* over 64 bits */
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *v = x;
            return 0;
        }
    }
    return -1;
}

int lrvm__varint_get(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    return varint_get(pp, end, v);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void lrvm__log_header_encode(unsigned char *slot, const struct lrvm__log_header *h)
{
    memset(slot, 0, LOG_SLOT_SIZE);
    memcpy(slot, LOG_MAGIC, 8);
    put32(slot + 8, h->lh_version);
    put64(slot + 16, h->lh_generation);
    put64(slot + 24, h->lh_first_txno);
    put32(slot + 32, lrvm__crc32c(0, slot, 32));
}

int lrvm__log_header_decode(const unsigned char *slot, struct lrvm__log_header *h)
{
    /* The CRC first: a damaged version field is damage, not a format. */
    if (memcmp(slot, LOG_MAGIC, 8) != 0 || get32(slot + 32) != lrvm__crc32c(0, slot, 32))
        return LRVM_ECORRUPT;
    h->lh_version = get32(slot + 8);
    h->lh_generation = get64(slot + 16);
    h->lh_first_txno = get64(slot + 24);
    return h->lh_version == LOG_VERSION ? 0 : LRVM_EVERSION;
}

int lrvm__rec_magic_ok(const unsigned char *p)
{
    return get32(p) == REC_MAGIC;
}

void lrvm__rec_header_decode(const unsigned char *p, struct lrvm__rec_header *h)
{
    h->rh_crc = get32(p + 4);
    h->rh_payload_len = get32(p + 8);
    h->rh_part = (uint16_t)(p[12] | p[13] << 8);
    h->rh_flags = (uint16_t)(p[14] | p[15] << 8);
    h->rh_generation = get64(p + 16);
    h->rh_txno = get64(p + 24);
}

uint64_t lrvm__rec_size(const struct lrvm__rec_header *h)
{
    return (LRVM__REC_HEADER_SIZE + (uint64_t)h->rh_payload_len + 7) & ~(uint64_t)7;
}

uint32_t lrvm__rec_crc(const unsigned char *rec, size_t payload_len)
{
    return lrvm__crc32c(0, rec + 8, LRVM__REC_HEADER_SIZE - 8 + payload_len);
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

int lrvm__payload_walk(const unsigned char *p, size_t len,
                       int (*range)(void *arg, const char *name, size_t name_len,
                                    uint64_t off, const unsigned char *data, uint64_t n),
                       void *arg)
{
    const unsigned char *end = p + len;
    struct { const char *name; size_t len; } defined[LRVM__REC_MAX_SEGS];
    unsigned ndefined = 0;

    while (p < end) {
        unsigned char type = *p++;
        uint64_t a, off, n;
        if (type == LRVM__ENT_DEFINE) {
            if (varint_get(&p, end, &n) < 0 || n > (uint64_t)(end - p) ||
                ndefined == LRVM__REC_MAX_SEGS || !lrvm__name_ok_n((const char *)p, n))
                return LRVM_ECORRUPT;
            defined[ndefined].name = (const char *)p;
            defined[ndefined].len = n;
            ndefined++;
            p += n;
        } else if (type == LRVM__ENT_RANGE) {
            if (varint_get(&p, end, &a) < 0 || a >= ndefined ||
                varint_get(&p, end, &off) < 0 ||
                varint_get(&p, end, &n) < 0 || n == 0 ||
                n > (uint64_t)(end - p) || off > UINT64_MAX - n)
                return LRVM_ECORRUPT;
            if (range != NULL) {
                int rc = range(arg, defined[a].name, defined[a].len, off, p, n);
                if (rc < 0)
                    return rc;
            }
            p += n;
        } else {
            return LRVM_ECORRUPT;
        }
    }
    return 0;
}

int lrvm__name_ok_n(const char *name, size_t n)
{
    /* One pass, no library calls: recovery checks a name per record. A
     * name is a file's name in the store too (segment.c), so it has no
     * slash and no "..". */
    if (n == 0 || n > LRVM__NAME_MAX || (n == 1 && name[0] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '\0' || name[i] == '/' ||
            (name[i] == '.' && i + 1 < n && name[i + 1] == '.'))
            return 0;
    }
    return 1;
}

int lrvm__name_ok(const char *name)
{
    return name != NULL && lrvm__name_ok_n(name, strnlen(name, LRVM__NAME_MAX + 1));
}

/* ------------------------------------------------------------ the file */

static int write_slot(int fd, int slot, const struct lrvm__log_header *h)
{
    unsigned char buf[LOG_SLOT_SIZE];
    lrvm__log_header_encode(buf, h);
    return lrvm__io_pwrite_all(fd, buf, sizeof buf, (uint64_t)slot * LOG_SLOT_SIZE);
}

int lrvm__log_read_header(int fd, struct lrvm__log_header *h, int *slot)
{
    unsigned char buf[2 * LOG_SLOT_SIZE];
    ssize_t r = lrvm__io_pread(fd, buf, sizeof buf, 0);
    if (r < 0)
        return (int)r;
    if ((size_t)r < sizeof buf)
        return LRVM_ECORRUPT;
    /* The current slot is the intact one (magic and CRC) with the higher
     * generation; it must be of our version. */
    struct lrvm__log_header s[2];
    int rc[2] = { lrvm__log_header_decode(buf, &s[0]),
                  lrvm__log_header_decode(buf + LOG_SLOT_SIZE, &s[1]) };
    int ok0 = rc[0] != LRVM_ECORRUPT, ok1 = rc[1] != LRVM_ECORRUPT;
    if (!ok0 && !ok1)
        return LRVM_ECORRUPT;
    int pick = !ok0 ? 1 : !ok1 ? 0 : s[1].lh_generation > s[0].lh_generation;
    if (rc[pick] < 0)
        return rc[pick];
    *h = s[pick];
    *slot = pick;
    return 0;
}

/* A new log is built aside and renamed into place, so lrvm.log is either
 * absent or has a valid header. */
static int create_log(lrvm_t *s)
{
    struct lrvm__log_header h = { LOG_VERSION, 1, 1 };
    int rc, fd = lrvm__io_open(s->dirfd, LOG_NEW_NAME, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return fd;
    if ((rc = lrvm__io_pwrite_zeros(fd, 0, LRVM__LOG_HEADER_SIZE + LOG_GROW_CHUNK)) < 0 ||
        (rc = write_slot(fd, 0, &h)) < 0 ||
        (rc = lrvm__io_fdatasync(fd)) < 0)
        goto fail;
    if ((rc = lrvm__io_rename(s->dirfd, LOG_NEW_NAME, LRVM__LOG_NAME)) < 0 ||
        (rc = lrvm__io_fsync(s->dirfd)) < 0)
        goto fail;
    s->stats.fsyncs += 2;
    return fd;
fail:
    lrvm__io_close(fd);
    lrvm__io_unlink(s->dirfd, LOG_NEW_NAME);
    return rc;
}

int lrvm__log_open(lrvm_t *s, size_t buf_cap)
{
    struct lrvm__log *lg = &s->log;
    struct lrvm__log_header h;
    int rc;

    memset(lg, 0, sizeof *lg);
    lg->lg_fd = -1;
    lg->lg_buf_cap = buf_cap & ~(size_t)7;
    pthread_mutex_init(&lg->lg_sync_mu, NULL);
    pthread_cond_init(&lg->lg_synced, NULL);
    lg->lg_buf = malloc(lg->lg_buf_cap);
    lg->lg_spare = malloc(lg->lg_buf_cap);
    if (lg->lg_buf == NULL || lg->lg_spare == NULL)
        return LRVM_ENOMEM;

    int fd = lrvm__io_open(s->dirfd, LRVM__LOG_NAME, O_RDWR, 0);
    if (fd == LRVM_ENOENT) {
        (void)lrvm__io_unlink(s->dirfd, LOG_NEW_NAME);   /* left by a crash */
        fd = create_log(s);
        if (fd < 0)
            return fd;                      /* already an LRVM code */
        lg->lg_clean = 1;
    } else if (fd < 0) {
        return fd;
    }
    lg->lg_fd = fd;
    if ((rc = lrvm__log_read_header(fd, &h, &lg->lg_slot)) < 0)
        return rc;
    if ((rc = lrvm__io_fstat_size(fd, &lg->lg_file_size)) < 0)
        return rc;
    lg->lg_generation = h.lh_generation;
    lg->lg_first_txno = h.lh_first_txno;
    lg->lg_next_txno = h.lh_first_txno;
    lg->lg_durable = lg->lg_written = LRVM__LOG_HEADER_SIZE;
    return 0;
}

void lrvm__log_close(lrvm_t *s)
{
    if (s->log.lg_fd >= 0)
        lrvm__io_close(s->log.lg_fd);
    s->log.lg_fd = -1;
    free(s->log.lg_buf);
    free(s->log.lg_spare);
    s->log.lg_buf = s->log.lg_spare = NULL;
    if (s->log.lg_buf_cap != 0) {               /* lrvm__log_open ran */
        pthread_cond_destroy(&s->log.lg_synced);
        pthread_mutex_destroy(&s->log.lg_sync_mu);
        s->log.lg_buf_cap = 0;
    }
}

uint64_t lrvm__log_size(const lrvm_t *s)
{
    return s->log.lg_written + s->log.lg_buf_used;
}

int lrvm__log_new_generation(lrvm_t *s, uint64_t avoid)
{
    struct lrvm__log *lg = &s->log;
    /* Only the next number needs skipping: a record of any other is
     * invalid in the new generation anyway, and a jump as far as a
     * hostile record asks would bring the numbers near their end. */
    uint64_t gen = lg->lg_generation + 1;
    if (avoid == gen)
        gen++;
    struct lrvm__log_header h = { LOG_VERSION, gen, lg->lg_next_txno };
    int slot = !lg->lg_slot, rc;

    LRVM__ASSERT(lg->lg_buf_used == 0);
    if ((rc = write_slot(lg->lg_fd, slot, &h)) < 0 ||
        (rc = lrvm__log_sync(s)) < 0) {
        /* The new slot may have reached the disk, whole or torn; the store
         * goes on in the old generation, so the new slot must not win at
         * the next open. Wipe it; if even that fails, stop (C4). */
        static const unsigned char zeros[LOG_SLOT_SIZE];
        if (lrvm__io_pwrite_all(lg->lg_fd, zeros, sizeof zeros,
                                (uint64_t)slot * LOG_SLOT_SIZE) < 0 ||
            lrvm__log_sync(s) < 0)
            lg->lg_failed = 1;
        return rc;
    }
    s->stats.fsyncs++;
    lg->lg_slot = slot;
    lg->lg_clean = 1;
    lg->lg_generation = h.lh_generation;
    lg->lg_first_txno = h.lh_first_txno;
    lg->lg_durable = lg->lg_written = LRVM__LOG_HEADER_SIZE;
    return 0;
}

/* Keeps I4: grow the file with written zeros so END fits. */
static int reserve(lrvm_t *s, uint64_t end)
{
    struct lrvm__log *lg = &s->log;
    if (end <= lg->lg_file_size)
        return 0;
    uint64_t grow = lg->lg_file_size / 4;
    if (grow < LOG_GROW_CHUNK)
        grow = LOG_GROW_CHUNK;
    uint64_t size = (end + grow + LOG_GROW_CHUNK - 1) & ~(uint64_t)(LOG_GROW_CHUNK - 1);
    int rc = lrvm__io_pwrite_zeros(lg->lg_fd, lg->lg_file_size, size - lg->lg_file_size);
    if (rc == 0)
        rc = lrvm__log_sync(s);
    if (rc < 0)
        return rc;
    s->stats.fsyncs++;
    lg->lg_file_size = size;
    return 0;
}

#ifdef LRVM_DEBUG
void lrvm__log_check(const lrvm_t *s)
{
    const struct lrvm__log *lg = &s->log;
    LRVM__ASSERT(lg->lg_durable >= LRVM__LOG_HEADER_SIZE);               /* I1 */
    LRVM__ASSERT(lg->lg_durable <= lg->lg_written);
    LRVM__ASSERT(lg->lg_written == lg->lg_durable || lg->lg_syncing);   /* I2 */
    LRVM__ASSERT(lg->lg_buf_used <= lg->lg_buf_cap);
    LRVM__ASSERT(lg->lg_written % 8 == 0 && lg->lg_buf_used % 8 == 0);
    LRVM__ASSERT(lg->lg_written <= lg->lg_file_size);                   /* I4 */
    LRVM__ASSERT(lg->lg_next_txno >= lg->lg_first_txno);
}
#endif

/* ------------------------------------------------------------ syncs */

/*
 * Every fdatasync of the log holds lg_sync_mu, so two never overlap: after
 * a failed writeback Linux reports the error to one fdatasync of the file
 * only, and an overlapping one could return success for pages that were
 * lost. A caller holding the store lock waits here for a group leader's
 * sync (which runs without the store lock) without letting the store lock
 * go: it may be halfway through encoding a transaction into the buffer.
 * After a group's sync failed, every sync fails with its error.
 */
int lrvm__log_sync(lrvm_t *s)
{
    struct lrvm__log *lg = &s->log;
    pthread_mutex_lock(&lg->lg_sync_mu);
    int rc = lg->lg_group_rc != 0 ? lg->lg_group_rc : lrvm__io_fdatasync(lg->lg_fd);
    pthread_mutex_unlock(&lg->lg_sync_mu);
    return rc;
}

void lrvm__log_quiesce(lrvm_t *s)
{
    while (s->log.lg_syncing || s->log.lg_waiters > 0)
        pthread_cond_wait(&s->log.lg_synced, &s->mu);
}

/* A shared sync failed where a lone commit's failure could not be undone
 * (see group_flush): fail the store, zero everything that is not known
 * durable so no crash brings back a failed commit, wake the waiters. */
static int group_fail(lrvm_t *s, int rc)
{
    struct lrvm__log *lg = &s->log;
    uint64_t end = lg->lg_written + lg->lg_buf_used;
    lg->lg_failed = 1;
    if (lg->lg_group_rc == 0)
        lg->lg_group_rc = rc;
    if (end > lg->lg_durable &&
        lrvm__io_pwrite_zeros(lg->lg_fd, lg->lg_durable, end - lg->lg_durable) == 0) {
        pthread_mutex_lock(&lg->lg_sync_mu);
        (void)lrvm__io_fdatasync(lg->lg_fd);
        pthread_mutex_unlock(&lg->lg_sync_mu);
    }
    lg->lg_written = lg->lg_durable;
    lg->lg_buf_used = 0;
    pthread_cond_broadcast(&lg->lg_synced);
    return rc;
}

/*
 * Group commit: make the buffered records up to the end of the committing
 * transaction's durable, sharing one fdatasync with the commits that come
 * meanwhile. The first committer to find no sync under way leads: it
 * writes the whole buffer, swaps in the spare one and syncs without the
 * store lock. Commits arriving meanwhile encode into the fresh buffer and
 * wait; when the sync ends, one of them leads the next, for all of them.
 * A commit whose records some sync made durable (a leader's, a flush's, a
 * truncation's) returns without one of its own. IN_FLIGHT(ARG) runs once,
 * before the wait or while the disk writes.
 *
 * A failed sync that touched only the leader's commit (nobody waiting,
 * nothing encoded or written meanwhile, its records last in the batch) is
 * undone: the batch goes back to the buffer and the caller invalidates its
 * records as a lone commit's failure. Any other failure may involve
 * several commits and no-flush ones already reported: group_fail.
 */
static int group_flush(lrvm_t *s, void (*in_flight)(void *), void *arg)
{
    struct lrvm__log *lg = &s->log;
    uint64_t gen = lg->lg_generation, end = lg->lg_written + lg->lg_buf_used;
    int rc;

    while (lg->lg_syncing) {
        if (in_flight != NULL) {
            in_flight(arg);
            in_flight = NULL;
        }
        lg->lg_waiters++;
        pthread_cond_wait(&lg->lg_synced, &s->mu);
        if (--lg->lg_waiters == 0)
            pthread_cond_broadcast(&lg->lg_synced);     /* lrvm__log_quiesce */
        if (lg->lg_generation != gen || lg->lg_durable >= end)
            return 0;
        if (lg->lg_failed)
            return lg->lg_group_rc != 0 ? lg->lg_group_rc : LRVM_EFAILED;
    }

    uint64_t start = lg->lg_written;
    size_t n = lg->lg_buf_used;
    int alone = lg->lg_waiters == 0 && end == start + n;
    if ((rc = reserve(s, start + n)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, n, start)) < 0)
        return alone ? rc : group_fail(s, rc);
    lrvm__io_start_writeback(lg->lg_fd, start, n);
    if (in_flight != NULL)
        in_flight(arg);
    unsigned char *batch = lg->lg_buf;
    lg->lg_buf = lg->lg_spare;
    lg->lg_spare = batch;
    lg->lg_written = start + n;
    lg->lg_buf_used = 0;

    lg->lg_syncing = 1;
    pthread_mutex_lock(&lg->lg_sync_mu);
    pthread_mutex_unlock(&s->mu);
    rc = lrvm__io_fdatasync(lg->lg_fd);
    if (rc < 0)
        lg->lg_group_rc = rc;
    pthread_mutex_unlock(&lg->lg_sync_mu);
    pthread_mutex_lock(&s->mu);
    lg->lg_syncing = 0;
    pthread_cond_broadcast(&lg->lg_synced);

    if (rc == 0) {
        s->stats.fsyncs++;
        if (lg->lg_generation == gen && lg->lg_durable < start + n)
            lg->lg_durable = start + n;
        return 0;
    }
    if (alone && !lg->lg_failed && lg->lg_waiters == 0 && lg->lg_generation == gen &&
        lg->lg_written == start + n && lg->lg_buf_used == 0) {
        lg->lg_spare = lg->lg_buf;          /* as if the batch was never written */
        lg->lg_buf = batch;
        lg->lg_buf_used = n;
        lg->lg_written = start;
        lg->lg_group_rc = 0;
        return rc;
    }
    return group_fail(s, rc);
}

/* Write the first N buffered bytes at lg_written and sync them; on success
 * they leave the buffer. On failure nothing changes (the bytes stay
 * buffered, to be written again: a failed fsync may have dropped them).
 * IN_FLIGHT(ARG), when given, runs while the disk writes them: the
 * writeback is started first, so its work hides in the sync's wait. */
static int flush_prefix(lrvm_t *s, size_t n, void (*in_flight)(void *), void *arg)
{
    struct lrvm__log *lg = &s->log;
    int rc;
    if (n == 0)
        return 0;
    if ((rc = reserve(s, lg->lg_written + n)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, n, lg->lg_written)) < 0)
        return rc;
    if (in_flight != NULL) {
        lrvm__io_start_writeback(lg->lg_fd, lg->lg_written, n);
        in_flight(arg);
    }
    if ((rc = lrvm__log_sync(s)) < 0)
        return rc;
    s->stats.fsyncs++;
    lg->lg_written += n;
    lg->lg_durable = lg->lg_written;
    memmove(lg->lg_buf, lg->lg_buf + n, lg->lg_buf_used - n);
    lg->lg_buf_used -= n;
    return 0;
}

int lrvm__log_flush(lrvm_t *s)
{
    if (s->log.lg_failed)
        return LRVM_EFAILED;
    return flush_prefix(s, s->log.lg_buf_used, NULL, NULL);
}

/* ------------------------------------------------------------ encoder */

/* Room a part keeps free for its padding. */
#define PAD_RESERVE 7u
/* The largest DEFINE plus RANGE header, and one byte of data. */
#define ENTRY_MAX (1u + 2u + LRVM__NAME_MAX + 1u + 10u + 10u + 10u + 1u)

static void part_open(struct lrvm__enc *e)
{
    struct lrvm__log *lg = &e->en_store->log;
    e->en_rec_start = lg->lg_buf_used;
    lg->lg_buf_used += LRVM__REC_HEADER_SIZE;
    e->en_ndefined = 0;
    e->en_open = 1;
}

static void part_close(struct lrvm__enc *e, int final)
{
    struct lrvm__log *lg = &e->en_store->log;
    unsigned char *rec = lg->lg_buf + e->en_rec_start;
    size_t payload = lg->lg_buf_used - e->en_rec_start - LRVM__REC_HEADER_SIZE;
    size_t total = align8(LRVM__REC_HEADER_SIZE + payload);

    memset(rec + LRVM__REC_HEADER_SIZE + payload, 0, total - LRVM__REC_HEADER_SIZE - payload);
    put32(rec, REC_MAGIC);
    put32(rec + 8, (uint32_t)payload);
    rec[12] = (unsigned char)e->en_part;
    rec[13] = (unsigned char)(e->en_part >> 8);
    rec[14] = final ? LRVM__REC_COMMIT : 0;
    rec[15] = 0;
    put64(rec + 16, lg->lg_generation);
    put64(rec + 24, e->en_txno);
    put32(rec + 4, lrvm__rec_crc(rec, payload));
    lg->lg_buf_used = e->en_rec_start + total;
    e->en_bytes += total;
    e->en_records++;
    e->en_part++;
    e->en_open = 0;
}

/* Empty the buffer for the next part: records of earlier no-flush commits
 * ahead of this transaction are synced first, then this transaction's
 * closed parts are written (keeps I1, I2). */
static int make_room(struct lrvm__enc *e)
{
    lrvm_t *s = e->en_store;
    struct lrvm__log *lg = &s->log;
    int rc;

    if (!e->en_spilled && e->en_mark > 0) {
        if ((rc = flush_prefix(s, e->en_mark, NULL, NULL)) < 0)
            return rc;
        e->en_mark = 0;
        e->en_tx_start = lg->lg_written;
    }
    if (lg->lg_buf_used == 0)
        return 0;                           /* nothing of this transaction yet */
    e->en_spilled = 1;
    if ((rc = reserve(s, lg->lg_written + lg->lg_buf_used)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, lg->lg_buf_used, lg->lg_written)) < 0)
        return rc;
    lg->lg_written += lg->lg_buf_used;
    lg->lg_buf_used = 0;
    return 0;
}

/* The buffer is full: close the open part and write it out. */
static int spill(struct lrvm__enc *e)
{
    if (e->en_part == 0xffff)
        return LRVM_ENOMEM;                 /* over 65535 parts: too large */
    part_close(e, 0);
    return make_room(e);
}

static int defined_id(struct lrvm__enc *e, const void *seg)
{
    for (size_t i = 0; i < e->en_ndefined; i++)
        if (e->en_defined[i] == seg)
            return (int)i;
    return -1;
}

int lrvm__enc_range(struct lrvm__enc *e, const void *seg, const char *name, size_t off,
                    const void *src, size_t len)
{
    struct lrvm__log *lg = &e->en_store->log;
    const unsigned char *from = src;
    int rc;

    while (len > 0) {
        if (!e->en_open) {
            /* A part needs room for its header, its padding and at least
             * one whole entry header and byte. */
            if (lg->lg_buf_cap - lg->lg_buf_used < LRVM__REC_HEADER_SIZE + PAD_RESERVE + ENTRY_MAX &&
                (rc = make_room(e)) < 0)
                return rc;
            part_open(e);
        }
        int id = defined_id(e, seg);
        size_t namelen = id < 0 ? strlen(name) : 0;
        size_t need_def = id < 0 ? 1 + varint_len(namelen) + namelen : 0;
        size_t need_hdr = 1 + varint_len(e->en_ndefined) + varint_len(off) + 10;
        size_t room = lg->lg_buf_cap - PAD_RESERVE - lg->lg_buf_used;
        if ((id < 0 && e->en_ndefined == LRVM__REC_MAX_SEGS) ||
            room < need_def + need_hdr + 1 ||
            lg->lg_buf_used - e->en_rec_start >= REC_MAX_PAYLOAD) {
            if ((rc = spill(e)) < 0)
                return rc;
            continue;
        }
        unsigned char *p = lg->lg_buf + lg->lg_buf_used;
        if (id < 0) {
            if (e->en_ndefined == e->en_defined_cap) {
                /* Past the few segments a transaction usually names. */
                size_t cap = e->en_defined_cap * 2;
                int inline_now = e->en_defined == e->en_defined_few;
                const void **d = realloc(inline_now ? NULL : e->en_defined, cap * sizeof *d);
                if (d == NULL)
                    return LRVM_ENOMEM;
                if (inline_now)
                    memcpy(d, e->en_defined_few, sizeof e->en_defined_few);
                e->en_defined = d;
                e->en_defined_cap = cap;
            }
            id = (int)e->en_ndefined;
            e->en_defined[e->en_ndefined++] = seg;
            *p++ = LRVM__ENT_DEFINE;
            p += lrvm__varint_put(p, namelen);
            memcpy(p, name, namelen);
            p += namelen;
        }
        size_t chunk = room - need_def - need_hdr;
        if (chunk > len)
            chunk = len;
        *p++ = LRVM__ENT_RANGE;
        p += lrvm__varint_put(p, (uint64_t)id);
        p += lrvm__varint_put(p, off);
        p += lrvm__varint_put(p, chunk);
        memcpy(p, from, chunk);
        p += chunk;
        lg->lg_buf_used = (size_t)(p - lg->lg_buf);
        from += chunk;
        off += chunk;
        len -= chunk;
    }
    return 0;
}

/* A commit failed after its records may have reached the file: put the
 * earlier no-flush records back on disk, zero every byte this transaction
 * may have written, sync. If that fails too, the store is failed (C4). */
static void invalidate(struct lrvm__enc *e)
{
    lrvm_t *s = e->en_store;
    struct lrvm__log *lg = &s->log;
    uint64_t end = lg->lg_written + lg->lg_buf_used;
    size_t keep = e->en_tx_start > lg->lg_written ? (size_t)(e->en_tx_start - lg->lg_written) : 0;
    int rc;

    if (lg->lg_failed)
        return;                             /* group_fail cleaned up */
    lg->lg_buf_used = keep;
    if (lg->lg_written > e->en_tx_start)
        lg->lg_written = e->en_tx_start;   /* spilled parts: pending were synced (I2) */
    if ((rc = reserve(s, end)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, keep, lg->lg_written)) < 0 ||
        (rc = lrvm__io_pwrite_zeros(lg->lg_fd, e->en_tx_start, end - e->en_tx_start)) < 0 ||
        (rc = lrvm__log_sync(s)) < 0) {
        lg->lg_failed = 1;
        return;
    }
    s->stats.fsyncs++;
    lg->lg_written = e->en_tx_start;
    lg->lg_durable = lg->lg_written;
    lg->lg_buf_used = 0;
}

int lrvm__log_commit(lrvm_t *s, int (*redo)(void *arg, struct lrvm__enc *e),
                     void (*in_flight)(void *arg), void *arg, int flags)
{
    struct lrvm__log *lg = &s->log;
    int rc;

    if (lg->lg_failed)
        return LRVM_EFAILED;
    /* Every field but en_defined_few, which fills as segments are
     * defined: zeroing the whole encoder took a rep stos that cost a
     * small commit 3% of its time. */
    struct lrvm__enc e;
    e.en_store = s;
    e.en_txno = lg->lg_next_txno;
    e.en_part = 0;
    e.en_open = 0;
    e.en_rec_start = 0;
    e.en_spilled = 0;
    e.en_tx_start = lg->lg_written + lg->lg_buf_used;
    e.en_mark = lg->lg_buf_used;
    e.en_defined = e.en_defined_few;
    e.en_ndefined = 0;
    e.en_defined_cap = sizeof e.en_defined_few / sizeof e.en_defined_few[0];
    e.en_bytes = 0;
    e.en_records = 0;

    rc = redo(arg, &e);
    if (rc == 0 && e.en_open)
        part_close(&e, 1);
    if (rc == 0 && e.en_records == 0)
        goto out;                           /* nothing changed: nothing logged */
    if (rc == 0) {
        /* Taken now: in a group commit others encode while this one waits. */
        lg->lg_next_txno++;
        if (!(flags & LRVM_NO_FLUSH) || e.en_spilled)
            rc = flags & LRVM__COMMIT_GROUP ? group_flush(s, in_flight, arg)
                                            : flush_prefix(s, lg->lg_buf_used, in_flight, arg);
        if (rc < 0)
            lg->lg_next_txno--;             /* its records are wiped (or the store failed) */
    }
    if (rc < 0) {
        invalidate(&e);
        goto out;
    }
    s->stats.bytes_logged += e.en_bytes;
    s->stats.log_records += e.en_records;
out:
    if (e.en_defined != e.en_defined_few)
        free(e.en_defined);
    return rc;
}

/* --------------------------------------------------------------- scan */

/* A scan reads the log through a window filled with pread: a cold log
 * came in faster so than through the page faults of a mapping, and a warm
 * one too on a machine where mapping 256 MiB costs 30 ms. */
#define WINDOW (1u << 20)

struct reader {
    int                  fd;
    uint64_t             fsize;
    const struct lrvm__scan_cb *cb;     /* for its release hook */
    unsigned char       *buf;
    size_t               cap;
    uint64_t             boff;
    size_t               blen;
};

/* Point *P at N bytes of the log at OFF. Returns 1 when they lie past the
 * end of the file, 0 when *P is set, <0 on an error. */
static int rd_get(struct reader *r, uint64_t off, size_t n, const unsigned char **p)
{
    if (off > r->fsize || n > r->fsize - off)
        return 1;
    if (off >= r->boff && off - r->boff + n <= r->blen) {
        *p = r->buf + (off - r->boff);
        return 0;
    }
    if (r->cb != NULL && r->cb->release != NULL)
        r->cb->release(r->cb->arg);
    size_t want = n > WINDOW ? n : WINDOW;
    if (want > r->cap) {
        unsigned char *b = realloc(r->buf, want);
        if (b == NULL)
            return LRVM_ENOMEM;
        r->buf = b;
        r->cap = want;
    }
    if (want > r->fsize - off)
        want = (size_t)(r->fsize - off);
    ssize_t got = lrvm__io_pread(r->fd, r->buf, want, off);
    if (got < 0)
        return (int)got;
    r->boff = off;
    r->blen = (size_t)got;
    if ((size_t)got < n)
        return 1;
    *p = r->buf;
    return 0;
}

static int scan(struct reader *r, const struct lrvm__log_header *h,
                const struct lrvm__log_pos *from, const struct lrvm__scan_cb *cb,
                struct lrvm__scan_result *res)
{
    uint64_t pos = LRVM__LOG_HEADER_SIZE, expect = h->lh_first_txno;
    unsigned next_part = 0;
    int in_tx = 0, rc;

    if (from != NULL) {
        pos = from->lp_off;
        expect = from->lp_txno;
    }
    memset(res, 0, sizeof *res);
    res->sr_end = pos;
    for (;;) {
        const unsigned char *p;
        struct lrvm__rec_header rh;
        if ((rc = rd_get(r, pos, LRVM__REC_HEADER_SIZE, &p)) != 0) {    /* V1 */
            res->sr_stop = "end of file";
            break;
        }
        if (!lrvm__rec_magic_ok(p)) {                                   /* V2 */
            res->sr_stop = "no record";
            break;
        }
        lrvm__rec_header_decode(p, &rh);
        res->sr_stop_generation = rh.rh_generation;     /* kept if V3-V6 fail */
        if (rh.rh_generation != h->lh_generation) {                     /* V3 */
            res->sr_stop = "record of another generation";
            break;
        }
        size_t total = (size_t)lrvm__rec_size(&rh);
        if (rh.rh_payload_len > REC_MAX_PAYLOAD ||
            (rc = rd_get(r, pos, total, &p)) != 0) {                    /* V4 */
            res->sr_stop = "record past the end of the file";
            break;
        }
        if (rh.rh_crc != lrvm__rec_crc(p, rh.rh_payload_len)) {         /* V5 */
            res->sr_stop = "checksum mismatch";
            break;
        }
        if (in_tx ? rh.rh_txno != expect || rh.rh_part != next_part     /* V6 */
                  : rh.rh_txno != expect || rh.rh_part != 0) {
            res->sr_stop = "record out of sequence";
            break;
        }
        if (cb != NULL && cb->record != NULL &&
            (rc = cb->record(cb->arg, pos, &rh, p + LRVM__REC_HEADER_SIZE)) < 0)
            break;
        pos += total;
        res->sr_records++;
        res->sr_stop_generation = 0;
        if (rh.rh_flags & LRVM__REC_COMMIT) {
            in_tx = 0;
            expect++;
            res->sr_txs++;
            res->sr_end = pos;
        } else {
            in_tx = 1;
            next_part = rh.rh_part + 1u;
        }
    }
    res->sr_scan_end = pos;
    return rc < 0 ? rc : 0;
}

int lrvm__log_walk_valid(const unsigned char *img, uint64_t start, uint64_t end,
                         const struct lrvm__scan_cb *cb)
{
    uint64_t pos = start;
    while (pos < end) {
        struct lrvm__rec_header rh;
        lrvm__rec_header_decode(img + pos, &rh);
        int rc = cb->record(cb->arg, pos, &rh, img + pos + LRVM__REC_HEADER_SIZE);
        if (rc < 0)
            return rc;
        pos += lrvm__rec_size(&rh);
    }
    return 0;
}

int lrvm__log_scan_from(int fd, const struct lrvm__log_header *h, const struct lrvm__log_pos *from,
                        const struct lrvm__scan_cb *cb, struct lrvm__scan_result *res)
{
    struct reader r = { .fd = fd, .cb = cb };
    int rc = lrvm__io_fstat_size(fd, &r.fsize);
    if (rc < 0)
        return rc;
    rc = scan(&r, h, from, cb, res);
    if (cb != NULL && cb->release != NULL)
        cb->release(cb->arg);
    free(r.buf);
    return rc;
}

int lrvm__log_scan(int fd, const struct lrvm__log_header *h,
                   const struct lrvm__scan_cb *cb, struct lrvm__scan_result *res)
{
    return lrvm__log_scan_from(fd, h, NULL, cb, res);
}
