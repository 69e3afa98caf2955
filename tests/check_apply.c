/*
 * check_apply.c -- recovery's batch of ranges: the same history recovered
 * with batches of many sizes (one range, a few, more, the default) must
 * leave the same files, written no more often than the batch size allows;
 * a batch that fills in the middle of a multi-part record still applies
 * it whole; and a truncation after one that failed midway applies all.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "lrvm.h"
#include "recover_util.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
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

/* ------------------------------------------------------- the batch */

/* Segments whose sizes end mid-block, so their last blocks are short;
 * w spans three regions of 4 MiB (many more under a small resident
 * limit), and its ranges lie far enough apart that some writes join the
 * blocks between them and some do not. */
#define REGION (4u << 20)
static const struct { const char *name; size_t size; } cache_segs[] = {
    { "x", 5 * 4096 + 123 }, { "y", 1000 }, { "z", 70000 }, { "w", 3 * REGION + 777 },
};
#define NCACHE_SEGS 4
#define CACHE_TXS   400

/* A range's length: 1-9000 bytes, or one time in three 1-24, so that
 * ranges of a word or less, of two (added to the batch as two pieces),
 * and just over two all come often. */
static size_t cache_len(uint64_t *rng)
{
    return 1 + (size_t)(tu_rand(rng) % 3 == 0 ? tu_rand(rng) % 24 : tu_rand(rng) % 9000);
}

/* The history: transaction t writes 1-4 ranges into the images IMG; a
 * range is cache_len long (block-sized and block-aligned one time in
 * four), so ranges cover blocks in part, whole (the block is then
 * written from the log), and across their edges, in every order; in w,
 * one time in four, across the edge of a region of 4 MiB. When TX
 * is not NULL the same ranges are declared and written through BASES. */
static void cache_history(unsigned char **img, lrvm_tx_t *tx, void **bases, uint64_t t)
{
    uint64_t rng = tu_mix64(t) | 1;
    unsigned nranges = 1 + (unsigned)(tu_rand(&rng) % 4);
    for (unsigned k = 0; k < nranges; k++) {
        unsigned sg = (unsigned)(tu_rand(&rng) % NCACHE_SEGS);
        size_t size = cache_segs[sg].size, off, len;
        if (sg == 3 && tu_rand(&rng) % 4 == 0) {
            len = cache_len(&rng);
            off = REGION * (1 + (size_t)(tu_rand(&rng) % 3)) - 1 - (size_t)(tu_rand(&rng) % len);
            if (off + len > size)
                len = size - off;
        } else if (tu_rand(&rng) % 4 == 0 && size >= 4096) {
            len = 4096;
            off = 4096 * (size_t)(tu_rand(&rng) % (size / 4096));
        } else {
            len = cache_len(&rng);
            if (len > size)
                len = size;
            off = (size_t)(tu_rand(&rng) % (size - len + 1));
        }
        unsigned char *dst = tx != NULL ? (unsigned char *)bases[sg] : img[sg];
        if (tx != NULL)
            ck_assert_int_eq(lrvm_set_range(tx, dst + off, len), 0);
        for (size_t j = 0; j < len; j++)
            dst[off + j] = (unsigned char)tu_rand(&rng);
    }
}

static void cache_build_child(void *arg)
{
    const char *dir = arg;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = (size_t)1 << 30 };
    lrvm_t *s;
    void *bases[NCACHE_SEGS];
    lrvm_tx_t *tx;
    if (lrvm_open(dir, &o, &s) != 0)
        _exit(10);
    for (int i = 0; i < NCACHE_SEGS; i++)
        if (lrvm_map(s, cache_segs[i].name, cache_segs[i].size, &bases[i]) != 0)
            _exit(11);
    for (uint64_t t = 1; t <= CACHE_TXS; t++) {
        if (lrvm_begin(s, NCACHE_SEGS, bases, &tx) != 0)
            _exit(12);
        cache_history(NULL, tx, bases, t);
        if (lrvm_commit(tx, t % 16 == 0 ? 0 : LRVM_NO_FLUSH) != 0)
            _exit(13);
    }
    if (lrvm_flush(s) != 0)
        _exit(14);
    kill(getpid(), SIGKILL);                /* the log keeps every record */
}

/* Recover a copy of the store BUILT with a batch of SIZE ranges, under
 * resident limit LIMIT (0: the default; it sets the regions' size); check
 * every segment against the images IMG. Returns the writes recovery made. */
static unsigned long cache_recover(const char *built, unsigned char **img, uint32_t size,
                                   size_t limit)
{
    uint32_t saved_max = lrvm__apply_max;
    char *dir = tu_tmpdir();
    ck_assert_int_eq(tu_copy_dir(built, dir), 0);
    lrvm__apply_max = size;
    lrvm__io_inject(LRVM__IO_WRITE, 0, 0, 0);   /* count, never fail */
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .resident_limit = limit };
    lrvm_t *s;
    int rc = lrvm_open(dir, &o, &s);
    unsigned long calls = lrvm__io_calls();
    lrvm__io_inject(0, 0, 0, 0);
    lrvm__apply_max = saved_max;
    ck_assert_msg(rc == 0, "batch of %u ranges, limit %zu: lrvm_open: %s", size, limit,
                  lrvm_strerror(rc));
    ck_assert_int_eq(lrvm_close(s), 0);
    for (int i = 0; i < NCACHE_SEGS; i++) {
        char name[16];
        unsigned char *got = malloc(cache_segs[i].size);
        ck_assert_ptr_nonnull(got);
        snprintf(name, sizeof name, "%s.seg", cache_segs[i].name);
        ck_assert_int_eq(tu_file_size(tu_path(dir, name)), (int64_t)cache_segs[i].size);
        ck_assert_int_eq(tu_read(tu_path(dir, name), got, cache_segs[i].size, 0), 0);
        size_t j = 0;
        while (j < cache_segs[i].size && got[j] == img[i][j])
            j++;
        ck_assert_msg(j == cache_segs[i].size,
                      "batch of %u ranges, limit %zu: %s differs from the history at byte %zu",
                      size, limit, name, j);
        free(got);
    }
    tu_rmrf(dir);
    free(dir);
    return calls;
}

START_TEST(test_recover_apply_cache_sizes)
{
    /* Recovery's result does not depend on how many ranges its batch
     * holds: one (it writes after every range), a few, some tens, the
     * default (it writes once at the end, the history's 1,000 ranges or
     * so all in one batch). A smaller batch must write more often, or the
     * knob tests nothing. */
    static const uint32_t sizes[] = { 1, 3, 20, 16384 };
    unsigned char *img[NCACHE_SEGS];
    for (int i = 0; i < NCACHE_SEGS; i++)
        ck_assert_ptr_nonnull(img[i] = calloc(1, cache_segs[i].size));
    for (uint64_t t = 1; t <= CACHE_TXS; t++)
        cache_history(img, NULL, NULL, t);

    char *built = tu_tmpdir();
    int st = tu_in_child(cache_build_child, built);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);
    unsigned long writes[4];
    for (int k = 0; k < 4; k++)
        writes[k] = cache_recover(built, img, sizes[k], 0);
    ck_assert_msg(writes[0] > writes[1] && writes[1] > writes[2] && writes[2] > writes[3],
                  "writes by batch size 1, 3, 20, 16384: %lu, %lu, %lu, %lu", writes[0],
                  writes[1], writes[2], writes[3]);
    /* Under the smallest limit a region is 32 blocks: w's ranges cross
     * region edges all over, and more regions means more writes. */
    unsigned long small = cache_recover(built, img, 16384, (size_t)1 << 20);
    ck_assert_msg(small > writes[3], "writes with regions of 32 blocks: %lu, of 1024: %lu",
                  small, writes[3]);
    /* A batch of 512 ranges there takes a region's ranges two at a
     * time, and fills with the ranges of some hundred regions, in chains
     * of chunks: it writes more often than one of 16384, from the same
     * ranges. */
    unsigned long crowded = cache_recover(built, img, 512, (size_t)1 << 20);
    ck_assert_msg(crowded > small, "writes by a batch of 512 ranges: %lu, of 16384: %lu",
                  crowded, small);
    for (int i = 0; i < NCACHE_SEGS; i++)
        free(img[i]);
    tu_rmrf(built);
    free(built);
}
END_TEST

/* Three transactions: transaction t writes a range inside block 0 of "x",
 * then all of block t. The log keeps them. */
static void pause_build_child(void *arg)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    void *x;
    lrvm_tx_t *tx;
    if (lrvm_open(arg, &o, &s) != 0 || lrvm_map(s, "x", 4 * 4096, &x) != 0)
        _exit(10);
    for (int t = 1; t <= 3; t++) {
        unsigned char *b = x;
        if (lrvm_begin(s, 1, &x, &tx) != 0 || lrvm_set_range(tx, b + 100 + t, 10) != 0 ||
            lrvm_set_range(tx, b + 4096 * t, 4096) != 0)
            _exit(11);
        memset(b + 100 + t, t, 10);
        memset(b + 4096 * t, 0x40 + t, 4096);
        if (lrvm_commit(tx, 0) != 0)
            _exit(12);
    }
    kill(getpid(), SIGKILL);
}

START_TEST(test_recover_cache_full_mid_record)
{
    /* With a batch of one range, the first record's whole-block range finds
     * the batch full: the rest of the log is checked (check_rest) in the
     * middle of that record's walk, and the range must still be taken
     * from its own bytes in the log (no later record writes its block). */
    char *built = tu_tmpdir(), *dir = tu_tmpdir();
    int st = tu_in_child(pause_build_child, built);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);
    ck_assert_int_eq(tu_copy_dir(built, dir), 0);
    uint32_t saved = lrvm__apply_max;
    lrvm__apply_max = 1;
    int rc = open_close(dir);
    lrvm__apply_max = saved;
    ck_assert_msg(rc == 0, "lrvm_open: %s", lrvm_strerror(rc));
    unsigned char got[4 * 4096], want[4 * 4096] = { 0 };
    for (int t = 1; t <= 3; t++) {
        memset(want + 100 + t, t, 10);
        memset(want + 4096 * t, 0x40 + t, 4096);
    }
    ck_assert_int_eq(tu_read(tu_path(dir, "x.seg"), got, sizeof got, 0), 0);
    for (size_t i = 0; i < sizeof got; i++)
        ck_assert_msg(got[i] == want[i], "x.seg byte %zu is 0x%02x, not 0x%02x", i, got[i],
                      want[i]);
    tu_rmrf(built);
    tu_rmrf(dir);
    free(built);
    free(dir);
}
END_TEST

/* A truncation that fails in the middle of its scan leaves ranges in
 * the batch, whose memory the store keeps for the next truncation: that
 * one must find the batch empty (recover.c I9), or the ranges it adds
 * to a region the failed one held go to a bucket it never writes, and
 * the log they came from is let go. The third read of the log fails:
 * the scan's second window or third (the log is some 6 MiB, read 1 MiB
 * at a time), after the first's ranges were added. */
START_TEST(test_recover_truncation_after_a_failed_one)
{
    enum { SEG = 4 << 20, TXS = 60000 };
    char *dir = tu_tmpdir();
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = (size_t)1 << 30 };
    lrvm_t *s = tu_open(dir, &o);
    uint64_t *w = tu_map(s, "w", SEG), rng = 7;
    uint64_t *img = calloc(SEG / 8, 8), *got = malloc(SEG);
    ck_assert_ptr_nonnull(img);
    ck_assert_ptr_nonnull(got);
    for (int t = 0; t < TXS; t++) {
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&w, &tx), 0);
        for (int k = 0; k < 4; k++) {
            size_t j = (size_t)(tu_rand(&rng) % (SEG / 8));
            ck_assert_int_eq(lrvm_set_range(tx, &w[j], 8), 0);
            w[j] = img[j] = tu_rand(&rng);
        }
        ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    }
    lrvm__io_inject(LRVM__IO_READ, 3, EIO, LRVM__IO_ONCE);
    int rc = lrvm_truncate(s);
    lrvm__io_inject(0, 0, 0, 0);
    ck_assert_msg(rc == LRVM_EIO, "lrvm_truncate with a failing read: %s", lrvm_strerror(rc));
    ck_assert_int_eq(lrvm_truncate(s), 0);
    ck_assert_int_eq(tu_read(tu_path(dir, "w.seg"), got, SEG, 0), 0);
    for (size_t j = 0; j < SEG / 8; j++)
        ck_assert_msg(got[j] == img[j], "w.seg word %zu is %" PRIx64 ", not %" PRIx64, j, got[j],
                      img[j]);
    ck_assert_int_eq(lrvm_close(s), 0);
    free(img);
    free(got);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("apply");
    TCase *tc = tcase_create("apply");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recover_apply_cache_sizes);
    tcase_add_test(tc, test_recover_cache_full_mid_record);
    tcase_add_test(tc, test_recover_truncation_after_a_failed_one);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
