/*
 * fuzz_recover.c -- a libFuzzer target for recovery: the log scan, the
 * payload decoder, recovery's checks (lrvm__recover_check, as lrvmutl
 * verify runs them) and the replay into segment files at lrvm_open.
 *
 * Not part of make check. Build and run (clang, from the top directory):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 -pthread \
 *       -Iinclude -Isrc src/[a-z]*.c tests/fuzz_recover.c -lsigsegv -o fuzz_recover
 *   ./fuzz_recover -max_total_time=300
 *
 * Random bytes almost never carry a valid CRC32C, so the input describes
 * records and this harness frames them: each chunk is a control byte, a
 * 16-bit payload length and the payload; the harness writes the record
 * header (magic, generation, the transaction number and part the sequence
 * wants, the durable mark, CRC) around it. Bits of the control byte set
 * the COMMIT flag, hold the durable mark back at the last commit's end
 * (a no-flush batch) instead of the record's own offset, and sometimes
 * break the sequence, the generation, the magic or the CRC on purpose, so
 * that damage followed by records whose marks prove it durable (V7) is
 * common. Inputs whose length is 5 modulo 8 make a format 1 log (32-byte
 * headers, no mark); 3 modulo 8, a log whose header names a second
 * generation (a truncation beside the commits was under way). An input whose first byte is 0xff is written raw
 * after the header instead, for the scan's own checks.
 *
 * Besides recovery, the harness runs lrvmutl's readers on the same log:
 * the count of intact records past the stop (verify), the walk of every
 * valid record's payload (dump), and the ranges recovery would write
 * (lrvm__recover_ranges, from which heap and cat make a segment's image).
 *
 * Oracles, beyond the sanitizers: lrvm_open fails exactly when the check
 * fails, with the same code; when it fails it has changed no segment file
 * (I1 of recover.c); when it succeeds, the segment files hold what the
 * ranges lrvm__recover_ranges handed over make of them, applied in turn
 * (what lrvmutl cat shows), and a second open finds nothing left to
 * replay. Inputs of odd length are recovered with a batch of one range,
 * so that recovery writes it out long before the end of the log, after
 * checking the rest (check_rest); the others with 64 ranges, and the
 * store gets the smallest log buffer: the defaults would cost more than
 * these logs do.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "lrvm.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define A_SIZE 8192
#define B_SIZE 4099              /* a last block shorter than the others */

static char dir[64];
static int  dirfd_ = -1;

static void put16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static void write_file(const char *name, const void *buf, size_t n)
{
    int fd = openat(dirfd_, name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (n > 0 && pwrite(fd, buf, n, 0) != (ssize_t)n))
        abort();
    close(fd);
}

static unsigned char *read_file(const char *name, size_t n)
{
    unsigned char *b = calloc(1, n + 1);
    int fd = openat(dirfd_, name, O_RDONLY);
    if (b == NULL || fd < 0 || pread(fd, b, n + 1, 0) != (ssize_t)n)
        abort();
    close(fd);
    return b;
}

/* The log image for INPUT: the header of generation 1, then the records. */
static unsigned char *build_log(const uint8_t *in, size_t n, size_t *len)
{
    size_t cap = LRVM__LOG_HEADER_SIZE + 2 * n + 64 * (n / 3 + 1) + 4096;
    unsigned char *log = calloc(1, cap);
    if (log == NULL)
        abort();
    uint32_t version = n % 8 == 5 ? 1 : LRVM__LOG_VERSION;
    size_t hsize = version == 1 ? LRVM__REC_HEADER_V1 : LRVM__REC_HEADER_SIZE;
    struct lrvm__log_header h = { version, 1, 1, LRVM__LOG_HEADER_SIZE, 0, 0 };
    lrvm__log_header_encode(log, &h);
    size_t pos = LRVM__LOG_HEADER_SIZE, committed = pos;
    if (n > 0 && in[0] == 0xff) {                   /* raw: the scan's checks */
        memcpy(log + pos, in + 1, n - 1);
        *len = pos + n - 1;
        return log;
    }
    uint64_t txno = 1, gen = 1;
    unsigned part = 0;
    size_t i = 0;
    /* Inputs whose length is 3 modulo 8 make a log in the middle of a
     * truncation beside the commits: the header names generation 2,
     * which begins past generation 1's end, at the first transaction
     * that begins in the second half of the input. */
    int two = version >= 2 && n % 8 == 3;
    while (i + 3 <= n) {
        if (two && gen == 1 && part == 0 && i >= n / 2) {
            h.lh_next_start = (pos + 4095) & ~(size_t)4095;
            h.lh_next_txno = txno;
            memset(log + pos, 0, h.lh_next_start - pos);
            pos = committed = h.lh_next_start;
            gen = 2;
            lrvm__log_header_encode(log, &h);
        }
        unsigned ctl = in[i];
        size_t plen = (size_t)in[i + 1] | (size_t)in[i + 2] << 8;
        i += 3;
        if (plen > n - i)
            plen = n - i;
        unsigned char *rec = log + pos;
        put32(rec, 0x5256524cu);                    /* "LRVR" */
        put32(rec + 8, (uint32_t)plen);
        put16(rec + 12, (ctl & 0x10) ? part + 1 : part);
        put16(rec + 14, ctl & 1 ? LRVM__REC_COMMIT : 0);
        put64(rec + 16, (ctl & 0x20) ? gen + 1 : gen);
        put64(rec + 24, (ctl & 0x40) ? txno + 1 : txno);
        if (version >= 2)
            put64(rec + 32, (ctl & 0x02) ? committed : pos);
        memcpy(rec + hsize, in + i, plen);
        put32(rec + 4, lrvm__crc32c(0, rec + 8, hsize - 8 + plen) ^
                           ((ctl & 0x80) && (ctl & 0x08) ? 1u : 0u));
        if ((ctl & 0x80) && (ctl & 0x04))
            rec[0] ^= 0x20;                         /* a bad magic */
        pos += (hsize + plen + 7) & ~(size_t)7;
        i += plen;
        if (ctl & 1) {
            txno++;
            part = 0;
            committed = pos;
        } else {
            part++;
        }
    }
    *len = pos;
    return log;
}

/* lrvmutl dump: every valid record's payload walked. */
static int walk_range(void *arg, const char *name, size_t name_len, uint64_t off,
                      const unsigned char *data, uint64_t n)
{
    (void)arg, (void)off;
    if (name_len == 0 || !lrvm__name_ok_n(name, name_len) || (n > 0 && data == NULL))
        abort();                                    /* the walk let a bad entry through */
    return 0;
}

static int walk_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                       const unsigned char *payload)
{
    (void)arg, (void)off;
    (void)lrvm__payload_walk(payload, h->rh_payload_len, walk_range, NULL);
    return 0;
}

/* lrvmutl heap and cat: the segments as recovery leaves them, made from
 * the ranges it would write, each over the one before. */
struct images {
    const unsigned char *log;       /* the log as written */
    size_t               log_len;
    unsigned char        a[A_SIZE], b[B_SIZE];
};

static int image_range(void *arg, const char *name, size_t name_len, uint64_t off,
                       const unsigned char *data, uint64_t n, uint64_t log_off)
{
    struct images *im = arg;
    unsigned char *seg = name_len == 1 && name[0] == 'a' ? im->a
                       : name_len == 1 && name[0] == 'b' ? im->b : NULL;
    uint64_t size = seg == im->a ? A_SIZE : B_SIZE;
    /* Recovery's checks come first: no other segment exists, and a range
     * past a file's end fails them. The bytes are the log's, where it
     * says. */
    if (seg == NULL || off > size || n > size - off || log_off > im->log_len ||
        n > im->log_len - log_off || memcmp(im->log + log_off, data, (size_t)n) != 0)
        abort();
    memcpy(seg + off, data, (size_t)n);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dirfd_ < 0) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/lrvm-fuzz-%d", base, (int)getpid());
        mkdir(dir, 0700);
        if ((dirfd_ = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
            abort();
    }
    static unsigned char zeros[A_SIZE];
    size_t len;
    unsigned char *log = build_log(data, size, &len);
    write_file(LRVM__LOG_NAME, log, len);
    write_file("a.seg", zeros, A_SIZE);
    write_file("b.seg", zeros, B_SIZE);
    unlinkat(dirfd_, "c.seg", 0);                   /* a segment that is gone */
    static struct images im;
    memset(im.a, 0, A_SIZE);
    memset(im.b, 0, B_SIZE);
    im.log = log;
    im.log_len = len;

    /* The check, as lrvmutl verify runs it. */
    int logfd = openat(dirfd_, LRVM__LOG_NAME, O_RDONLY);
    struct lrvm__log_header h;
    struct lrvm__check c = { 0 };
    int slot;
    if (logfd < 0 || lrvm__log_read_header(logfd, &h, &slot) != 0)
        abort();
    int check_rc = lrvm__recover_check(dirfd_, logfd, &h, NULL, NULL, &c);
    if (c.scan.sr_damage != 0) {                    /* lrvmutl verify's count */
        uint64_t records, commits, first;
        if (lrvm__log_count_intact(logfd, &h, c.scan.sr_damage, &records, &commits,
                                   &first) < 0)
            abort();
    }
    struct lrvm__scan_cb cb = { .record = walk_record };
    struct lrvm__scan_result r;
    if (lrvm__log_scan(logfd, &h, &cb, &r) < 0 && check_rc == 0)
        abort();                                    /* dump fails where open succeeds */
    free(c.segs);
    struct lrvm__check c2 = { 0 };
    if (lrvm__recover_ranges(dirfd_, logfd, &h, NULL, NULL, image_range, &im, &c2) != check_rc)
        abort();                                    /* the two readers disagree */
    free(c2.segs);
    free(log);
    close(logfd);

    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .log_buffer_size = 4096 };
    lrvm_t *s;
    lrvm__apply_max = size % 2 ? 1 : 64;
    int rc = lrvm_open(dir, &o, &s);
    if (rc != check_rc) {
        fprintf(stderr, "lrvm_open: %d, the check: %d\n", rc, check_rc);
        abort();
    }
    if (rc != 0) {
        unsigned char *a = read_file("a.seg", A_SIZE), *b = read_file("b.seg", B_SIZE);
        if (memcmp(a, zeros, A_SIZE) != 0 || memcmp(b, zeros, B_SIZE) != 0) {
            fprintf(stderr, "lrvm_open failed (%d) but changed a segment file\n", rc);
            abort();
        }
        free(a);
        free(b);
        return 0;
    }
    if (lrvm_close(s) != 0)
        abort();
    unsigned char *a = read_file("a.seg", A_SIZE), *b = read_file("b.seg", B_SIZE);
    if (memcmp(a, im.a, A_SIZE) != 0 || memcmp(b, im.b, B_SIZE) != 0) {
        fprintf(stderr, "recovery left other bytes than lrvm__recover_ranges names\n");
        abort();
    }
    free(a);
    free(b);
    /* Recovery emptied the log: a second open replays nothing. */
    if (lrvm_open(dir, &o, &s) != 0)
        abort();
    lrvm_stats_t st;
    if (lrvm_stats(s, &st) != 0 || st.log_size != LRVM__LOG_HEADER_SIZE)
        abort();
    lrvm_close(s);
    return 0;
}
