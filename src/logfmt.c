/*
 * logfmt.c -- the format of DIR/lrvm.log and its reader: the codecs of
 * the header and the records, the payload walk, the header read and the
 * scan that finds the valid records. Recovery, lrvmutl and the fuzzer
 * read the log through this file; log.c writes it with these codecs.
 *
 * Owns: the byte layout below and what makes a record valid. Never:
 * writes a file, or takes a record for valid that fails a check.
 *
 * File layout (all integers little-endian)
 *
 *   offset  size  what
 *   0       512   header slot 0
 *   512     512   header slot 1
 *   1024    3072  zero
 *   4096    ...   records, each 8-byte aligned, then zeros or stale bytes
 *
 * The records of a generation lie end to end from its start. At most two
 * generations are in use: the one being written, and the one before it
 * while a truncation applies it beside the commits (recover.c). One of
 * them starts at 4096, the other where the first ended, rounded up to
 * 4096 (or past it), so they never overlap:
 *
 *   4096                S                           (log.c says how far
 *   | generation g+1 -> | generation g (retiring) |  g+1 may grow)
 *   | generation g      | ... | generation g+1 ->
 *
 * Header slot (version 3)
 *   0   8  magic "LRVMLOG\0"
 *   8   4  format version (3; versions 1 and 2 are still read)
 *   12  4  zero
 *   16  8  generation g
 *   24  8  number of the first transaction of g
 *   32  8  start: offset of g's first record
 *   40  8  next start: 0, or where generation g+1 begins
 *   48  8  next txno: the first transaction of g+1 (when next start is set)
 *   56  4  CRC32C of bytes 0..55
 * Versions 1 and 2 end at 24: CRC32C of bytes 0..31 at 32; their start is
 * 4096 and they name no next generation. A slot is whole when the CRC of
 * its version's layout matches (H1); a version 3 slot also has its starts
 * at or past 4096, 8-aligned, apart, and next txno >= its first (H3).
 * A next start says: g holds exactly next_txno - first_txno complete
 * transactions, all synced before this slot was written, and g+1's
 * records begin at next start with number next_txno. Both are to be
 * replayed, g first.
 *
 * Of the whole slots, the current one has the higher generation; of two
 * of one generation, the one naming a next generation (H2: a switch
 * writes its generation again, naming the next; the slot it does not
 * write still holds the generation alone). It must be of version 1 to 3,
 * or lrvm_open refuses the log with LRVM_EVERSION. lrvm writes version 3
 * only: the recovery at open starts a new generation in it. A header is
 * always written to the slot that is not current, so a torn header write
 * leaves the previous one current. The slots over time (log.c, recover.c):
 *
 *   current {g, start S}            other: older
 *   switch:   other := {g, S, next S', N'}     (current now: g and g+1)
 *   applied:  first := {g+1, S'}               (current now: g+1)
 *   truncation of all: other := {G, 4096}      (G > every generation used)
 *
 * A new generation's number is the current one plus 1, or, when a
 * truncation of everything starts it, plus 2 when the record the last
 * scan stopped at carries the plus-1 number, so that record stays
 * invalid (V3) even when damage or malice gave it the next number.
 *
 * Record (version 2; H = 40)
 *   0   4  magic "LRVR"
 *   4   4  CRC32C of bytes 8 .. H+payload_len
 *   8   4  payload_len
 *   12  2  part number within the transaction (0, 1, ...)
 *   14  2  flags: 1 = COMMIT, the transaction's last part
 *   16  8  generation
 *   24  8  transaction number
 *   32  8  durable mark: every byte of the log below this offset had been
 *          synced when the record was made
 *   H   .  payload, then zero padding to a multiple of 8
 * A version 1 record has no durable mark: H = 32.
 *
 * Payload: a sequence of entries, each a type byte then varints (LEB128):
 *   DEFINE (1)  namelen, name bytes     -- gives the next segment id, from 0
 *   RANGE  (2)  id, offset, length, bytes -- redo: write bytes at offset
 * Every record defines the segments it names, so each record decodes on
 * its own. At most LRVM__REC_MAX_SEGS definitions a record.
 *
 * A record at offset P is valid when (V1) its H header bytes lie inside
 * the file, (V2) its magic is right, (V3) its generation is the header's,
 * (V4) its padded length lies inside the file, (V5) its CRC matches, and
 * (V6) it continues the sequence: the first record has the header's first
 * transaction number and part 0; after a COMMIT record comes number+1 part
 * 0; after any other record the same number and the next part. The scan
 * stops at the first invalid record. A transaction counts only when its
 * COMMIT part is valid.
 *
 * Damage or a torn tail (V7)? The scan stops at the first invalid record,
 * at offset S. That is the log's end when S was never durable: a crash
 * tore the last batch of records, whose sync never returned. It is damage
 * when S was once durable: then lrvm_open must refuse the log rather than
 * drop the commits after S. A record proves it when it is intact (magic,
 * generation, length and CRC: V2-V5) and lies past S with a durable mark
 * above S, or carries a later generation than the header's (the current
 * header slot was damaged). The scan looks for such a record within
 * LOOKAHEAD bytes past S, and right after the record at S if that one's
 * header still gives its length (damage in a large record's payload).
 * What it cannot tell: damage in the last batch of records synced before
 * a crash, with no record written after it; damage spanning more than
 * LOOKAHEAD bytes; format 1 logs, which have no marks. Records of older
 * generations prove nothing: a generation that began at 4096 lies over
 * them, and one above them leaves them below or past it.
 *
 * A generation the header gives a count (V8): its scan stops before the
 * transaction that follows its last (scan_cb end_txno), and a stop
 * anywhere before that is damage: the header was written only after all
 * of it was synced. Records of g+1 past g's end are expected then, not
 * proof of anything; the scan of g+1 is an ordinary one, V7 with g+1 as
 * the header's generation.
 *
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define LOG_MAGIC        "LRVMLOG"          /* 8 bytes with its NUL */
#define LOOKAHEAD        ((uint64_t)4 << 20) /* how far past a stop V7 looks */
#define REC_MAGIC        0x5256524cu        /* "LRVR" little-endian */

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
 * varints for every few bytes it changes. */
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

size_t lrvm__varint_len(uint64_t v)
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
    memset(slot, 0, LRVM__LOG_SLOT_SIZE);
    memcpy(slot, LOG_MAGIC, 8);
    put32(slot + 8, h->lh_version);
    put64(slot + 16, h->lh_generation);
    put64(slot + 24, h->lh_first_txno);
    if (h->lh_version < 3) {            /* the older layout: tests make such logs */
        put32(slot + 32, lrvm__crc32c(0, slot, 32));
        return;
    }
    put64(slot + 32, h->lh_start);
    put64(slot + 40, h->lh_next_start);
    put64(slot + 48, h->lh_next_txno);
    put32(slot + 56, lrvm__crc32c(0, slot, 56));
}

/* H3: the offsets of a version 3 slot are places records may begin. */
static int offsets_ok(const struct lrvm__log_header *h)
{
    return h->lh_start >= LRVM__LOG_HEADER_SIZE && h->lh_start % 8 == 0 &&
           (h->lh_next_start == 0 ||
            (h->lh_next_start >= LRVM__LOG_HEADER_SIZE && h->lh_next_start % 8 == 0 &&
             h->lh_next_start != h->lh_start && h->lh_next_txno >= h->lh_first_txno));
}

int lrvm__log_header_decode(const unsigned char *slot, struct lrvm__log_header *h)
{
    /* The CRC first: a damaged version field is damage, not a format. A
     * slot is whole when the CRC of its layout matches: at 56 for
     * version 3 and later, at 32 before. */
    if (memcmp(slot, LOG_MAGIC, 8) != 0)
        return LRVM_ECORRUPT;
    h->lh_version = get32(slot + 8);
    h->lh_generation = get64(slot + 16);
    h->lh_first_txno = get64(slot + 24);
    h->lh_start = LRVM__LOG_HEADER_SIZE;
    h->lh_next_start = h->lh_next_txno = 0;
    if (h->lh_version >= 3 && get32(slot + 56) == lrvm__crc32c(0, slot, 56)) {
        if (h->lh_version > LRVM__LOG_VERSION)
            return LRVM_EVERSION;
        h->lh_start = get64(slot + 32);
        h->lh_next_start = get64(slot + 40);
        h->lh_next_txno = get64(slot + 48);
        return offsets_ok(h) ? 0 : LRVM_ECORRUPT;
    }
    if (get32(slot + 32) != lrvm__crc32c(0, slot, 32))
        return LRVM_ECORRUPT;
    return h->lh_version >= LRVM__LOG_VERSION_MIN && h->lh_version <= 2 ? 0 : LRVM_EVERSION;
}

int lrvm__rec_magic_ok(const unsigned char *p)
{
    return get32(p) == REC_MAGIC;
}

void lrvm__rec_header_encode(unsigned char *rec, const struct lrvm__rec_header *h)
{
    put32(rec, REC_MAGIC);
    put32(rec + 8, h->rh_payload_len);
    rec[12] = (unsigned char)h->rh_part;
    rec[13] = (unsigned char)(h->rh_part >> 8);
    rec[14] = (unsigned char)h->rh_flags;
    rec[15] = (unsigned char)(h->rh_flags >> 8);
    put64(rec + 16, h->rh_generation);
    put64(rec + 24, h->rh_txno);
    put64(rec + 32, h->rh_durable);
    put32(rec + 4, lrvm__rec_crc(rec, h->rh_payload_len));
}

void lrvm__rec_header_decode(const unsigned char *p, uint32_t version,
                             struct lrvm__rec_header *h)
{
    h->rh_crc = get32(p + 4);
    h->rh_payload_len = get32(p + 8);
    h->rh_part = (uint16_t)(p[12] | p[13] << 8);
    h->rh_flags = (uint16_t)(p[14] | p[15] << 8);
    h->rh_generation = get64(p + 16);
    h->rh_txno = get64(p + 24);
    h->rh_hsize = version >= 2 ? LRVM__REC_HEADER_SIZE : LRVM__REC_HEADER_V1;
    h->rh_durable = version >= 2 ? get64(p + 32) : 0;
}

uint64_t lrvm__rec_size(const struct lrvm__rec_header *h)
{
    return ((uint64_t)h->rh_hsize + h->rh_payload_len + 7) & ~(uint64_t)7;
}

/* The CRC of the record at REC whose header H decoded. */
static uint32_t crc_of(const unsigned char *rec, const struct lrvm__rec_header *h)
{
    return lrvm__crc32c(0, rec + 8, h->rh_hsize - 8 + (size_t)h->rh_payload_len);
}

uint32_t lrvm__rec_crc(const unsigned char *rec, size_t payload_len)
{
    return lrvm__crc32c(0, rec + 8, LRVM__REC_HEADER_SIZE - 8 + payload_len);
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
    /* A new name is also printed by lrvmutl and in traces: no control
     * characters. (Names already in a log keep the older rule above, so
     * that such a log still recovers.) */
    size_t n = name != NULL ? strnlen(name, LRVM__NAME_MAX + 1) : 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return name != NULL && lrvm__name_ok_n(name, n);
}

int lrvm__log_read_header(int fd, struct lrvm__log_header *h, int *slot)
{
    unsigned char buf[2 * LRVM__LOG_SLOT_SIZE];
    ssize_t r = lrvm__io_pread(fd, buf, sizeof buf, 0);
    if (r < 0)
        return (int)r;
    if ((size_t)r < sizeof buf)
        return LRVM_ECORRUPT;
    /* The current slot is the intact one (magic and CRC) with the higher
     * generation (H2); it must be of a version this code reads. */
    struct lrvm__log_header s[2];
    int rc[2] = { lrvm__log_header_decode(buf, &s[0]),
                  lrvm__log_header_decode(buf + LRVM__LOG_SLOT_SIZE, &s[1]) };
    int ok0 = rc[0] != LRVM_ECORRUPT, ok1 = rc[1] != LRVM_ECORRUPT;
    if (!ok0 && !ok1)
        return LRVM_ECORRUPT;
    /* H2: a switch writes its generation again with the next one named,
     * so of two slots of one generation the one naming a next is newer. */
    int pick = !ok0 ? 1 : !ok1 ? 0
             : s[1].lh_generation != s[0].lh_generation
                   ? s[1].lh_generation > s[0].lh_generation
                   : s[1].lh_next_start != 0 && s[0].lh_next_start == 0;
    if (rc[pick] < 0)
        return rc[pick];
    *h = s[pick];
    *slot = pick;
    return 0;
}

/* --------------------------------------------------------------- scan */

/* A scan reads the log through a window filled with pread: a cold log
 * comes in faster so than through the page faults of a mapping, and a
 * warm one too where mapping a large file is slow. */
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
    if (want > r->fsize - off)
        want = (size_t)(r->fsize - off);    /* a small log gets a small window */
    if (want > r->cap) {
        unsigned char *b = realloc(r->buf, want);
        if (b == NULL)
            return LRVM_ENOMEM;
        r->buf = b;
        r->cap = want;
    }
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

/* Is the record at Q intact (V2-V5 but the generation) and does it prove
 * that the bytes at STOP were durable (V7)? 1 if so, 0 if not, <0 on a
 * read error. */
static int proves(struct reader *r, const struct lrvm__log_header *h, uint64_t q, uint64_t stop)
{
    const unsigned char *p;
    struct lrvm__rec_header rh;
    int rc = rd_get(r, q, LRVM__REC_HEADER_SIZE, &p);
    if (rc != 0 || !lrvm__rec_magic_ok(p))
        return rc < 0 ? rc : 0;
    lrvm__rec_header_decode(p, LRVM__LOG_VERSION, &rh);
    if (rh.rh_generation < h->lh_generation ||
        (rh.rh_generation == h->lh_generation && rh.rh_durable <= stop) ||
        rh.rh_payload_len > LRVM__REC_MAX_PAYLOAD ||
        (rc = rd_get(r, q, (size_t)lrvm__rec_size(&rh), &p)) != 0)
        return rc < 0 ? rc : 0;
    return rh.rh_crc == crc_of(p, &rh);
}

/* V7: look past STOP for a record that proves it damage; fill in
 * sr_damage and sr_proof when one does. */
static int find_proof(struct reader *r, const struct lrvm__log_header *h, uint64_t stop,
                      struct lrvm__scan_result *res)
{
    const unsigned char *p;
    struct lrvm__rec_header rh;
    uint64_t after = 0;
    int rc;
    if (rd_get(r, stop, LRVM__REC_HEADER_SIZE, &p) == 0 && lrvm__rec_magic_ok(p)) {
        lrvm__rec_header_decode(p, h->lh_version, &rh);
        if (rh.rh_generation == h->lh_generation && rh.rh_payload_len <= LRVM__REC_MAX_PAYLOAD)
            after = stop + lrvm__rec_size(&rh);     /* the record after a damaged payload */
    }
    if (after > stop + LOOKAHEAD && after < r->fsize && (rc = proves(r, h, after, stop)) != 0) {
        if (rc < 0)
            return rc;
        res->sr_damage = stop;
        res->sr_proof = after;
        return 0;
    }
    uint64_t end = r->fsize - stop > LOOKAHEAD ? stop + LOOKAHEAD : r->fsize;
    /* Most of the way is zeros or stale records: look for the magic a
     * window at a time, and check the records it may begin only. */
    uint64_t q = stop;
    while (q + LRVM__REC_HEADER_SIZE <= end) {
        size_t n = end - q > WINDOW ? WINDOW : (size_t)(end - q);
        if ((rc = rd_get(r, q, n, &p)) != 0)
            return rc < 0 ? rc : 0;
        uint64_t base = q;
        for (size_t i = 0; i + 4 <= n; i += 8) {
            if (get32(p + i) != REC_MAGIC)
                continue;
            if ((rc = proves(r, h, base + i, stop)) != 0) {
                if (rc < 0)
                    return rc;
                res->sr_damage = stop;
                res->sr_proof = base + i;
                return 0;
            }
            if ((rc = rd_get(r, base, n, &p)) != 0)     /* proves may move the window */
                return rc < 0 ? rc : 0;
        }
        q = base + n;
    }
    return 0;
}

static int scan(struct reader *r, const struct lrvm__log_header *h,
                const struct lrvm__log_pos *from, const struct lrvm__scan_cb *cb,
                struct lrvm__scan_result *res)
{
    uint64_t pos = h->lh_start, expect = h->lh_first_txno;
    unsigned next_part = 0;
    int in_tx = 0, rc;

    if (from != NULL) {
        pos = from->lp_off;
        expect = from->lp_txno;
    }
    memset(res, 0, sizeof *res);
    res->sr_end = pos;
    size_t hsize = h->lh_version >= 2 ? LRVM__REC_HEADER_SIZE : LRVM__REC_HEADER_V1;
    for (;;) {
        const unsigned char *p;
        struct lrvm__rec_header rh;
        if (cb != NULL && cb->limit != 0 && pos >= cb->limit) {
            res->sr_stop = "the end asked for (records after it discarded)";
            break;
        }
        if (cb != NULL && cb->end_txno != 0 && !in_tx && expect == cb->end_txno) {
            res->sr_stop = "the last transaction the header gives the generation";
            break;
        }
        if ((rc = rd_get(r, pos, hsize, &p)) != 0) {                   /* V1 */
            res->sr_stop = "end of file";
            break;
        }
        if (!lrvm__rec_magic_ok(p)) {                                   /* V2 */
            res->sr_stop = "no record";
            break;
        }
        lrvm__rec_header_decode(p, h->lh_version, &rh);
        res->sr_stop_generation = rh.rh_generation;     /* kept if V3-V6 fail */
        if (rh.rh_generation != h->lh_generation) {                     /* V3 */
            res->sr_stop = "record of another generation";
            break;
        }
        size_t total = (size_t)lrvm__rec_size(&rh);
        if (rh.rh_payload_len > LRVM__REC_MAX_PAYLOAD ||
            (rc = rd_get(r, pos, total, &p)) != 0) {                    /* V4 */
            res->sr_stop = "record past the end of the file";
            break;
        }
        if (rh.rh_crc != crc_of(p, &rh)) {                              /* V5 */
            res->sr_stop = "checksum mismatch";
            break;
        }
        if (in_tx ? rh.rh_txno != expect || rh.rh_part != next_part     /* V6 */
                  : rh.rh_txno != expect || rh.rh_part != 0) {
            res->sr_stop = "record out of sequence";
            break;
        }
        if (cb != NULL && cb->record != NULL &&
            (rc = cb->record(cb->arg, pos, &rh, p + rh.rh_hsize)) < 0)
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
    if (rc < 0)
        return rc;
    if (cb != NULL && cb->limit != 0 && pos >= cb->limit)
        return 0;                                   /* an end chosen on purpose */
    if (cb != NULL && cb->end_txno != 0) {
        /* V8: the header gave the generation its number of transactions,
         * all durable before the header was written: fewer is damage. */
        if (expect != cb->end_txno)
            res->sr_damage = pos;
        return 0;
    }
    if (cb != NULL && cb->durable_end != 0) {
        if (pos < cb->durable_end)
            res->sr_damage = pos;
        return 0;
    }
    return h->lh_version >= 2 ? find_proof(r, h, pos, res) : 0;
}

int lrvm__log_count_intact(int fd, const struct lrvm__log_header *h, uint64_t from,
                           uint64_t *records, uint64_t *commits, uint64_t *first_txno)
{
    struct reader r = { .fd = fd };
    int rc = lrvm__io_fstat_size(fd, &r.fsize);
    *records = *commits = *first_txno = 0;
    uint64_t q = from;
    while (rc >= 0 && q + LRVM__REC_HEADER_SIZE <= r.fsize) {
        const unsigned char *p;
        struct lrvm__rec_header rh;
        int ok = rd_get(&r, q, LRVM__REC_HEADER_SIZE, &p) == 0 && lrvm__rec_magic_ok(p);
        if (ok) {
            lrvm__rec_header_decode(p, h->lh_version, &rh);
            ok = rh.rh_generation == h->lh_generation &&
                 rh.rh_payload_len <= LRVM__REC_MAX_PAYLOAD &&
                 (rc = rd_get(&r, q, (size_t)lrvm__rec_size(&rh), &p)) == 0 &&
                 rh.rh_crc == crc_of(p, &rh);
        }
        if (!ok) {
            q += 8;
            continue;
        }
        if (*records == 0)
            *first_txno = rh.rh_txno;
        ++*records;
        *commits += (rh.rh_flags & LRVM__REC_COMMIT) != 0;
        q += lrvm__rec_size(&rh);
    }
    free(r.buf);
    return rc < 0 ? rc : 0;
}

int lrvm__log_walk_valid(const unsigned char *img, uint32_t version, uint64_t start,
                         uint64_t end, const struct lrvm__scan_cb *cb)
{
    uint64_t pos = start;
    while (pos < end) {
        struct lrvm__rec_header rh;
        lrvm__rec_header_decode(img + pos, version, &rh);
        int rc = cb->record(cb->arg, pos, &rh, img + pos + rh.rh_hsize);
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
