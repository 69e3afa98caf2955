/*
 * check_damage.c -- damage in the log is never taken for a torn tail.
 *
 * A small log is made by a child: transactions of several sizes, flushed
 * and no-flush, across a truncation, the last ones written but cut off by
 * a kill at the sync that would have made them durable (the unsynced
 * tail). Then every byte of the log up to its records' end is damaged in
 * turn, each on the same store put back as it was: lrvm_open must either
 * refuse the log with LRVM_ECORRUPT, writing nothing, or open it to a
 * prefix of the history that holds every acknowledged commit; and it
 * must refuse whenever the damaged byte was durable and a later record
 * proves it (logfmt.c V7), accept whenever the byte lies in the unsynced
 * tail. lrvmutl verify's check agrees with lrvm_open on every byte.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEG      4096
#define ACKED    6          /* flushed commits after the truncation */

/* Transaction i writes its number into the 8 bytes at 64 * i and fills
 * I * 13 bytes after them with the byte I: records of several sizes. */
static void tx(lrvm_t *s, char *a, uint64_t i, int flags)
{
    lrvm_tx_t *t;
    size_t off = (size_t)(64 * i) % (SEG - 256), len = 8 + (size_t)(i * 13) % 120;
    if (lrvm_begin(s, 1, (void *const *)&a, &t) != 0 || lrvm_set_range(t, a + off, len) != 0)
        _exit(3);
    memcpy(a + off, &i, 8);
    memset(a + off + 8, (int)i, len - 8);
    if (lrvm_commit(t, flags) != 0)
        _exit(4);
}

/* Commits 1-3 then a truncation; commits 4..3+ACKED flushed (the acked
 * ones after it, reported on FD); then two no-flush commits and a
 * flushing one whose sync kills the child: the last three are written,
 * never synced. */
static void make_log(const char *dir, int fd)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = 1 << 20 };
    lrvm_t *s;
    char *a;
    if (lrvm_open(dir, &o, &s) != 0 || lrvm_map(s, "a", SEG, (void **)&a) != 0)
        _exit(2);
    uint64_t i = 1;
    for (; i <= 3; i++)
        tx(s, a, i, 0);
    if (lrvm_truncate(s) != 0)
        _exit(5);
    for (; i <= 3 + ACKED; i++) {
        tx(s, a, i, i % 2 ? LRVM_NO_FLUSH : 0);
        if (i % 2 == 0 && write(fd, &i, sizeof i) != (ssize_t)sizeof i)
            _exit(6);
    }
    if (lrvm_flush(s) != 0)
        _exit(7);
    uint64_t flushed = i - 1;
    if (write(fd, &flushed, sizeof flushed) != (ssize_t)sizeof flushed)
        _exit(6);
    tx(s, a, i++, LRVM_NO_FLUSH);
    tx(s, a, i++, LRVM_NO_FLUSH);
    lrvm__io_inject(LRVM__IO_SYNC, 1, EIO, LRVM__IO_KILL);
    tx(s, a, i, 0);
    _exit(8);                               /* the kill must come first */
}

struct image {
    unsigned char *log, *seg;
    size_t         log_len;
    uint64_t       acked;       /* commits acknowledged durable */
    uint64_t       durable;     /* end of the synced records */
    uint64_t       end;         /* end of every record in the file */
    uint64_t       slot;        /* the current header slot's offset */
};

static void read_whole(const char *path, unsigned char **buf, size_t *len)
{
    *buf = tu_read_whole(path, len);
    ck_assert_uint_gt(*len, 0);
}

/* Put the store in DIR back as IM holds it: the log's header area, the
 * byte that was damaged, the segment file. Recovery writes nothing else. */
static void restore(const char *dir, const struct image *im, uint64_t at)
{
    const char *log = tu_path(dir, LRVM__LOG_NAME);
    ck_assert_int_eq(tu_write(log, im->log, LRVM__LOG_HEADER_SIZE, 0), 0);
    ck_assert_int_eq(tu_write(log, im->log + at, 1, at), 0);
    ck_assert_int_eq(tu_write(tu_path(dir, "a.seg"), im->seg, SEG, 0), 0);
}

/* The transactions the segment shows: the highest i whose number is in
 * place, after checking that 1..i are there whole and nothing later. */
static uint64_t prefix_of(const char *dir, const char *what)
{
    unsigned char seg[SEG];
    ck_assert_int_eq(tu_read(tu_path(dir, "a.seg"), seg, SEG, 0), 0);
    unsigned char expect[SEG] = { 0 };
    uint64_t n = 0;
    for (uint64_t i = 1; i <= 3 + ACKED + 3; i++) {
        size_t off = (size_t)(64 * i) % (SEG - 256), len = 8 + (size_t)(i * 13) % 120;
        uint64_t v;
        memcpy(&v, seg + off, 8);
        if (v != i)
            break;
        memcpy(expect + off, &i, 8);
        memset(expect + off + 8, (int)i, len - 8);
        n = i;
    }
    ck_assert_msg(memcmp(seg, expect, SEG) == 0, "%s: the segment is not the state after "
                  "transaction %" PRIu64, what, n);
    return n;
}

static int on_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                     const unsigned char *payload)
{
    (void)payload;
    uint64_t *end = arg;
    *end = off + lrvm__rec_size(h);
    return 0;
}

/* Make the log in tu_dir (make_log in a child); the commits acked. */
static uint64_t made_log(void)
{
    int fd;
    uint64_t v, acked = 0;
    pid_t pid = tu_fork_piped(&fd);
    if (pid == 0)
        make_log(tu_dir, fd);
    while (read(fd, &v, sizeof v) == (ssize_t)sizeof v)
        acked = v;
    close(fd);
    int st = tu_wait(pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the log's maker: status 0x%x", st);
    ck_assert_uint_eq(acked, 3 + ACKED);
    return acked;
}

START_TEST(test_damage_every_byte_of_a_small_log)
{
    struct image im = { 0 };
    im.acked = made_log();

    /* Where the records end, and the synced ones: the scan of the whole
     * log sees the tail too (its records are intact); the durable end is
     * where the tail's first record begins, its own mark. */
    int lfd = open(tu_path(tu_dir, LRVM__LOG_NAME), O_RDONLY);
    ck_assert_int_ge(lfd, 0);
    struct lrvm__log_header h;
    struct lrvm__scan_result res;
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(lfd, &h, &slot), 0);
    struct lrvm__scan_cb cb = { .arg = &im.end, .record = on_record };
    ck_assert_int_eq(lrvm__log_scan(lfd, &h, &cb, &res), 0);
    close(lfd);
    ck_assert_uint_eq(res.sr_txs, ACKED + 3);       /* after the truncation: 4..12 */
    read_whole(tu_path(tu_dir, LRVM__LOG_NAME), &im.log, &im.log_len);
    read_whole(tu_path(tu_dir, "a.seg"), &im.seg, &(size_t){ 0 });
    struct lrvm__rec_header last;
    uint64_t off = LRVM__LOG_HEADER_SIZE;
    im.durable = 0;
    while (off < im.end) {
        lrvm__rec_header_decode(im.log + off, h.lh_version, &last);
        if (last.rh_txno > im.acked && im.durable == 0)
            im.durable = last.rh_durable;
        off += lrvm__rec_size(&last);
    }
    ck_assert_uint_gt(im.durable, LRVM__LOG_HEADER_SIZE);
    ck_assert_uint_lt(im.durable, im.end);
    im.slot = (uint64_t)slot * LRVM__LOG_SLOT_SIZE;

    uint64_t refused = 0, tails = 0;
    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0xda3a9e) | 1;
    for (uint64_t at = 0; at < im.end; at++) {
        if (at >= 1024 && at < LRVM__LOG_HEADER_SIZE && at % 64 != 0)
            continue;                       /* zeros between the slots and the records */
        unsigned char x = (unsigned char)(1 + tu_rand(&rng) % 255);
        char what[160];
        snprintf(what, sizeof what, "log byte %" PRIu64 " ^= 0x%02x (durable below %" PRIu64
                 ", records end at %" PRIu64 ", LRVM_TEST_SEED=%" PRIu64 ")", at, x,
                 im.durable, im.end, seed);
        unsigned char b = im.log[at] ^ x;
        ck_assert_int_eq(tu_write(tu_path(tu_dir, LRVM__LOG_NAME), &b, 1, at), 0);

        /* lrvmutl verify's check, which writes nothing. */
        int lfd2 = open(tu_path(tu_dir, LRVM__LOG_NAME), O_RDONLY);
        int dfd = open(tu_dir, O_RDONLY | O_DIRECTORY);
        ck_assert(lfd2 >= 0 && dfd >= 0);
        struct lrvm__log_header hh;
        struct lrvm__check chk = { 0 };
        int hs, vrc = lrvm__log_read_header(lfd2, &hh, &hs);
        if (vrc == 0)
            vrc = lrvm__recover_check(dfd, lfd2, &hh, NULL, NULL, &chk);
        free(chk.segs);
        close(lfd2);
        close(dfd);

        lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
        lrvm_t *s;
        int rc = lrvm_open(tu_dir, &o, &s);
        ck_assert_msg((rc == 0) == (vrc == 0), "%s: lrvm_open says %s, verify %s", what,
                      lrvm_strerror(rc), lrvm_strerror(vrc));
        if (rc == 0) {
            ck_assert_int_eq(lrvm_close(s), 0);
            uint64_t n = prefix_of(tu_dir, what);
            ck_assert_msg(n >= im.acked, "%s: opened with %" PRIu64 " transactions, %" PRIu64
                          " were acknowledged", what, n, im.acked);
            /* Durable bytes that count (a record's, the current header
             * slot's) are never taken for a torn tail. */
            int counts = (at >= LRVM__LOG_HEADER_SIZE && at < im.durable) ||
                         (at >= im.slot && at < im.slot + 36);
            ck_assert_msg(!counts || n == 3 + ACKED + 3,
                          "%s: damage before the durable end was taken for a torn tail", what);
            tails += at >= im.durable;
        } else {
            ck_assert_msg(rc == LRVM_ECORRUPT, "%s: lrvm_open: %s", what, lrvm_strerror(rc));
            ck_assert_msg(at < im.durable, "%s: damage in the unsynced tail was refused", what);
            unsigned char now[LRVM__LOG_HEADER_SIZE];
            ck_assert_int_eq(tu_read(tu_path(tu_dir, "a.seg"), now, SEG, 0), 0);
            ck_assert_msg(memcmp(now, im.seg, SEG) == 0, "%s: refused, but a.seg changed", what);
            ck_assert_int_eq(tu_read(tu_path(tu_dir, LRVM__LOG_NAME), now, sizeof now, 0), 0);
            now[at < sizeof now ? at : 0] ^= at < sizeof now ? x : 0;
            ck_assert_msg(memcmp(now, im.log, sizeof now) == 0, "%s: refused, but the log's "
                          "header changed", what);
            refused++;
        }
        restore(tu_dir, &im, at);
    }
    ck_assert_uint_gt(refused, 100);
    ck_assert_uint_gt(tails, 50);
    free(im.log);
    free(im.seg);
}
END_TEST

/* Run lrvmutl (from $LRVMUTL) with ARGS; its exit status, and its
 * standard error in ERR. */
static int lrvmutl(const char *args, char *err, size_t n)
{
    const char *tool = getenv("LRVMUTL");
    char cmd[8400], errpath[4200];
    snprintf(errpath, sizeof errpath, "%s.err", tu_dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", tool ? tool : "tools/lrvmutl",
             args, errpath);
    int st = system(cmd);
    ck_assert(WIFEXITED(st));
    memset(err, 0, n);
    int fd = open(errpath, O_RDONLY);
    if (fd >= 0) {
        (void)!read(fd, err, n - 1);
        close(fd);
    }
    unlink(errpath);
    return WEXITSTATUS(st);
}

/* lrvmutl verify names the damage and what it would lose; recover refuses
 * the log as lrvm_open does; recover --discard-after keeps the prefix on
 * purpose, saying what it drops. */
START_TEST(test_damage_lrvmutl_names_it_and_discards_on_purpose)
{
    (void)made_log();
    /* Damage the payload of the second record of the generation. */
    int lfd = open(tu_path(tu_dir, LRVM__LOG_NAME), O_RDWR);
    ck_assert_int_ge(lfd, 0);
    struct lrvm__log_header h;
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(lfd, &h, &slot), 0);
    unsigned char hdr[LRVM__REC_HEADER_SIZE];
    ck_assert_int_eq(pread(lfd, hdr, sizeof hdr, LRVM__LOG_HEADER_SIZE), (ssize_t)sizeof hdr);
    struct lrvm__rec_header rh;
    lrvm__rec_header_decode(hdr, h.lh_version, &rh);
    uint64_t second = LRVM__LOG_HEADER_SIZE + lrvm__rec_size(&rh);
    unsigned char b;
    ck_assert_int_eq(pread(lfd, &b, 1, (off_t)second + LRVM__REC_HEADER_SIZE), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(lfd, &b, 1, (off_t)second + LRVM__REC_HEADER_SIZE), 1);
    close(lfd);

    char err[4096], args[4400], at[32];
    snprintf(at, sizeof at, "%" PRIu64, second);
    snprintf(args, sizeof args, "verify '%s'", tu_dir);
    ck_assert_int_eq(lrvmutl(args, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "damaged at offset") != NULL && strstr(err, at) != NULL, "%s", err);
    ck_assert_msg(strstr(err, "1 complete transactions come before") != NULL, "%s", err);
    snprintf(args, sizeof args, "recover '%s'", tu_dir);
    ck_assert_int_eq(lrvmutl(args, err, sizeof err), 1);
    snprintf(args, sizeof args, "recover '%s' --discard-after %s", tu_dir, at);
    ck_assert_msg(lrvmutl(args, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(strstr(err, "dropping the log from offset") != NULL, "%s", err);
    ck_assert_int_eq(prefix_of(tu_dir, "after --discard-after"), 4);    /* 1-3, then 4 */
    lrvm_t *s;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

int main(void)
{
    if (tu_quick_skip("damage"))   /* long: not in the quick subset */
        return 77;
    Suite *s = suite_create("damage");
    TCase *tc = tu_tcase("damage", 300);
    tcase_add_test(tc, test_damage_every_byte_of_a_small_log);
    tcase_add_test(tc, test_damage_lrvmutl_names_it_and_discards_on_purpose);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
