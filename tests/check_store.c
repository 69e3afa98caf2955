/*
 * check_store.c -- the store through the lrvm_* interface: commit, abort,
 * several segments, no-flush and flush, truncation, extension, remapping,
 * multi-part records, statistics, threads and declarations in any order.
 * "Crash" here means a child process that commits and dies of SIGKILL
 * without closing the store.
 */
#define _GNU_SOURCE
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static lrvm_t *open_store(size_t buf, size_t threshold)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .log_buffer_size = buf,
                         .truncate_threshold = threshold };
    return tu_open(NULL, &o);
}

/* One transaction that writes LEN bytes of SRC at BASE+OFF. */
static void put(lrvm_t *s, char *base, size_t off, const void *src, size_t len, int flags)
{
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&base, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, base + off, len), 0);
    memcpy(base + off, src, len);
    ck_assert_int_eq(lrvm_commit(tx, flags), 0);
}

static void die(void)
{
    kill(getpid(), SIGKILL);
}

static void child_commit_and_die(void *arg)
{
    (void)arg;
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    put(s, a, 100, "committed", 10, 0);
    die();
}

START_TEST(test_store_commit_survives_crash)
{
    int st = tu_in_child(child_commit_and_die, NULL);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* The record is only in the log: the segment file still has zeros. */
    char file[10];
    ck_assert_int_eq(tu_read(tu_path(tu_dir, "a.seg"), file, 10, 100), 0);
    ck_assert_mem_eq(file, "\0\0\0\0\0\0\0\0\0\0", 10);

    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a + 100, "committed");
    ck_assert_int_eq(lrvm_close(s), 0);
    /* Recovery folded the log into the file. */
    ck_assert_int_eq(tu_read(tu_path(tu_dir, "a.seg"), file, 10, 100), 0);
    ck_assert_str_eq(file, "committed");
}
END_TEST

START_TEST(test_store_abort_restores)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    put(s, a, 0, "first", 6, 0);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a, 6), 0);
    memcpy(a, "XXXXX", 6);
    /* A second, overlapping declaration after the change must not win:
     * abort restores the oldest before-image. */
    ck_assert_int_eq(lrvm_set_range(tx, a + 2, 10), 0);
    memcpy(a + 2, "YYYYYYYYY", 10);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_str_eq(a, "first");
    ck_assert_int_eq(a[6], 0);
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_eq(st.aborts, 1);
    ck_assert_uint_eq(st.commits, 1);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "first");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_two_segments_one_tx)
{
    lrvm_t *s = open_store(0, 0);
    char *bases[2] = { tu_map(s, "one", 4096), tu_map(s, "two", 8192) };
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 2, (void *const *)bases, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, bases[0] + 1, 3), 0);
    ck_assert_int_eq(lrvm_set_range(tx, bases[1] + 8000, 3), 0);
    memcpy(bases[0] + 1, "uno", 3);
    memcpy(bases[1] + 8000, "dos", 3);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    /* Both segments are free again. */
    ck_assert_int_eq(lrvm_begin(s, 2, (void *const *)bases, &tx), 0);
    ck_assert_int_eq(lrvm_abort(tx), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_store(0, 0);
    char *one = tu_map(s, "one", 4096), *two = tu_map(s, "two", 8192);
    ck_assert_mem_eq(one + 1, "uno", 3);
    ck_assert_mem_eq(two + 8000, "dos", 3);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_truncate_empties_log)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 65536);
    for (int i = 0; i < 50; i++)
        put(s, a, (size_t)i * 1000, "0123456789", 10, 0);
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_gt(st.log_size, 4096);
    ck_assert_uint_eq(st.log_records, 50);
    ck_assert_uint_eq(st.truncations, 0);

    ck_assert_int_eq(lrvm_truncate(s), 0);
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_eq(st.log_size, 4096);               /* the header alone */
    ck_assert_uint_eq(st.truncations, 1);
    for (int i = 0; i < 50; i++) {
        char buf[10];
        ck_assert_int_eq(tu_read(tu_path(tu_dir, "a.seg"), buf, 10, (uint64_t)i * 1000), 0);
        ck_assert_mem_eq(buf, "0123456789", 10);
    }
    /* The store goes on after truncation. */
    put(s, a, 5, "after", 5, 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    a = tu_map(s, "a", 65536);
    ck_assert_mem_eq(a + 5, "after", 5);
    ck_assert_mem_eq(a + 49000, "0123456789", 10);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_auto_truncation)
{
    lrvm_t *s = open_store(0, 1 << 20);
    char *a = tu_map(s, "a", 1 << 20);
    static char chunk[16384];
    uint64_t most = 0;
    for (int i = 0; i < 200; i++) {
        memset(chunk, 'a' + i % 26, sizeof chunk);
        put(s, a, (size_t)(i % 64) * sizeof chunk, chunk, sizeof chunk, 0);
        lrvm_stats_t st;
        ck_assert_int_eq(lrvm_stats(s, &st), 0);
        most = st.log_size > most ? st.log_size : most;
    }
    /* The truncations run beside the commits: the log stays within its
     * hard limit (log.c, lrvm__log_switch: 2.5 thresholds, two commits
     * and 8 KiB), and each one ends. */
    (void)tu_wait_truncations(s, 2);
    ck_assert_uint_le(most, 5 * (1 << 20) / 2 + 2 * sizeof chunk + 256 + 8192);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    a = tu_map(s, "a", 1 << 20);
    for (int i = 136; i < 200; i++)
        ck_assert_int_eq(a[(size_t)(i % 64) * sizeof chunk], 'a' + i % 26);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Options are honoured or refused, never changed: a 64 KiB threshold
 * truncates whenever the log passes 64 KiB (it used to be raised to
 * 1 MiB), 4 KiB is the smallest taken, 4095 bytes is refused. */
START_TEST(test_store_small_threshold_honoured)
{
    lrvm_t *s;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = 4095 };
    ck_assert_int_eq(lrvm_open(tu_dir, &o, &s), LRVM_EINVAL);
    for (size_t threshold = 4096; threshold <= 65536; threshold *= 16) {
        s = open_store(0, threshold);
        char *a = tu_map(s, "a", 1 << 20);
        static char chunk[1024];
        uint64_t most = 0;
        for (int i = 0; i < 400; i++) {
            memset(chunk, 'a' + i % 26, sizeof chunk);
            put(s, a, (size_t)(i % 64) * sizeof chunk, chunk, sizeof chunk, 0);
            lrvm_stats_t st;
            ck_assert_int_eq(lrvm_stats(s, &st), 0);
            most = st.log_size > most ? st.log_size : most;
        }
        /* Each commit adds about 1.1 KiB; a truncation starts as soon as
         * the generation reaches the threshold, and runs beside the
         * commits, which may take a threshold more meanwhile (the wall,
         * log.c I7), but no more. */
        (void)tu_wait_truncations(s, 400 * 1024 / threshold / 2);
        ck_assert_msg(most <= 5 * threshold / 2 + 2 * 1200 + 8192, "the log reached %" PRIu64
                      " bytes", most);
        ck_assert_int_eq(lrvm_close(s), 0);
        s = open_store(0, 0);
        a = tu_map(s, "a", 1 << 20);
        for (int i = 336; i < 400; i++)
            ck_assert_int_eq(a[(size_t)(i % 64) * sizeof chunk], 'a' + i % 26);
        ck_assert_int_eq(lrvm_close(s), 0);
        tu_rmrf(tu_dir);
        ck_assert_int_eq(mkdir(tu_dir, 0700), 0);
    }
}
END_TEST

START_TEST(test_store_extension)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "grow", 100);
    put(s, a, 90, "tail", 5, 0);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "grow.seg")), 100);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    a = tu_map(s, "grow", 10000);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "grow.seg")), 10000);
    ck_assert_mem_eq(a + 90, "tail", 5);
    for (int i = 100; i < 10000; i++)
        ck_assert_int_eq(a[i], 0);
    put(s, a, 9990, "end", 4, 0);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    /* A smaller size maps the whole segment. */
    a = tu_map(s, "grow", 10);
    ck_assert_mem_eq(a + 9990, "end", 4);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "grow.seg")), 10000);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_remap_shows_log_only_commits)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    put(s, a, 0, "in the log", 11, 0);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "in the log");
    /* Also for a no-flush commit that sits in the buffer. */
    put(s, a, 20, "buffered", 9, LRVM_NO_FLUSH);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a + 20, "buffered");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

static void child_noflush(void *arg)
{
    (void)arg;
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    put(s, a, 0, "A", 1, LRVM_NO_FLUSH);
    put(s, a, 1, "B", 1, LRVM_NO_FLUSH);
    ck_assert_int_eq(lrvm_flush(s), 0);
    put(s, a, 2, "C", 1, LRVM_NO_FLUSH);
    put(s, a, 3, "D", 1, 0);                    /* flushes C too, in order */
    put(s, a, 4, "E", 1, LRVM_NO_FLUSH);        /* may be lost */
    die();
}

START_TEST(test_store_noflush_then_flush)
{
    int st = tu_in_child(child_noflush, NULL);
    ck_assert(WIFSIGNALED(st));
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_mem_eq(a, "ABCD", 4);
    ck_assert(a[4] == 0 || a[4] == 'E');
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_close_flushes_noflush)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    put(s, a, 0, "kept", 5, LRVM_NO_FLUSH);
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_gt(st.log_size, 4096);       /* buffered records count */
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "kept");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

static void child_multipart(void *arg)
{
    (void)arg;
    lrvm_t *s = open_store(4096, 0);
    char *a = tu_map(s, "big", 1 << 16);
    put(s, a, 0, "small first", 12, LRVM_NO_FLUSH);
    static char img[1 << 16];
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (char)(i * 7 + 3);
    put(s, a, 0, img, sizeof img, LRVM_NO_FLUSH);   /* parts: durable anyway */
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    if (st.log_records < 17)                        /* 64 KiB in 4 KiB parts */
        _exit(3);
    die();
}

START_TEST(test_store_multipart_transaction)
{
    int st = tu_in_child(child_multipart, NULL);
    ck_assert_msg(WIFSIGNALED(st), "child status %d", st);
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "big", 1 << 16);
    for (size_t i = 0; i < (1 << 16); i++)
        ck_assert_int_eq(a[i], (char)(i * 7 + 3));
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* No-flush commits of every record size through a small buffer, so that
 * some commit starts with fewer free bytes than a record header needs. */
START_TEST(test_store_noflush_fills_buffer_exactly)
{
    lrvm_t *s = open_store(4096, 0);
    char *a = tu_map(s, "fill", 1 << 16);
    uint64_t seed = 5;
    static char expect[1 << 16];
    for (int t = 0; t < 3000; t++) {
        size_t len = 1 + (size_t)t % 97, off = (size_t)(tu_rand(&seed) % ((1 << 16) - 100));
        char bytes[100];
        for (size_t i = 0; i < len; i++)
            bytes[i] = (char)(t + (int)i);
        put(s, a, off, bytes, len, LRVM_NO_FLUSH);
        memcpy(expect + off, bytes, len);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    a = tu_map(s, "fill", 1 << 16);
    ck_assert_mem_eq(a, expect, sizeof expect);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_small_tx_log_bytes)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "bench", 1 << 20);
    lrvm_stats_t st0, st1;
    ck_assert_int_eq(lrvm_stats(s, &st0), 0);
    uint64_t seed = 42;
    for (int t = 0; t < 100; t++) {
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
        for (int w = 0; w < 4; w++) {
            size_t off = (size_t)(tu_rand(&seed) % ((1 << 20) / 8)) * 8;
            ck_assert_int_eq(lrvm_set_range(tx, a + off, 8), 0);
            memcpy(a + off, &seed, 8);
        }
        ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    }
    ck_assert_int_eq(lrvm_stats(s, &st1), 0);
    /* Four 8-byte words a transaction: at most 128 log bytes each. */
    ck_assert_uint_le((st1.bytes_logged - st0.bytes_logged) / 100, 128);
    ck_assert_uint_eq(st1.log_records - st0.log_records, 100);
    /* A transaction with no declared range logs nothing. */
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_stats(s, &st0), 0);
    ck_assert_uint_eq(st0.bytes_logged, st1.bytes_logged);
    ck_assert_uint_eq(st0.commits, st1.commits + 1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_destroy_removes_data)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "gone", 4096);
    put(s, a, 0, "secret", 7, 0);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    ck_assert_int_eq(lrvm_destroy(s, "gone"), 0);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "gone.seg")), -1);
    a = tu_map(s, "gone", 4096);
    ck_assert_int_eq(a[0], 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    a = tu_map(s, "gone", 4096);
    ck_assert_int_eq(a[0], 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_store_close_aborts_open_tx)
{
    lrvm_t *s = open_store(0, 0);
    char *a = tu_map(s, "a", 4096);
    put(s, a, 0, "old", 4, 0);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a, 4), 0);
    memcpy(a, "new", 4);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "old");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

struct worker {
    lrvm_t *s;
    int     id;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "t%d", w->id);
    uint64_t *seg;
    if (lrvm_map(w->s, name, 8 * 64, (void **)&seg) != 0)
        return (void *)1;
    for (uint64_t i = 1; i <= 300; i++) {
        lrvm_tx_t *tx;
        if (lrvm_begin(w->s, 1, (void *const *)&seg, &tx) != 0 ||
            lrvm_set_range(tx, &seg[0], 8) != 0 ||
            lrvm_set_range(tx, &seg[i % 63 + 1], 8) != 0)
            return (void *)2;
        seg[0] = i;
        seg[i % 63 + 1] = i;
        if (lrvm_commit(tx, i % 3 ? LRVM_NO_FLUSH : 0) != 0)
            return (void *)3;
    }
    return NULL;
}

START_TEST(test_store_threads)
{
    lrvm_t *s = open_store(0, 0);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ s, i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        ck_assert_ptr_null(ret);
    }
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_eq(st.commits, 1200);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = open_store(0, 0);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        uint64_t *seg = tu_map(s, name, 8 * 64);
        ck_assert_uint_eq(seg[0], 300);
        for (uint64_t k = 238; k <= 300; k++)
            ck_assert_uint_eq(seg[k % 63 + 1], k);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Declarations in any order: commit sorts and merges them (the explicit
 * tracker's I2), from one range to several runs of the merge sort, with
 * ranges repeated, overlapping and adjacent. A commit that lost or
 * misplaced any declared byte shows after the crash, when recovery
 * rebuilds the segments from the log alone. The ranges crowd the first
 * ANY_DENSE bytes, so that a range sorted after one above it would fall
 * inside that one's merge and lose its start; an even count declares
 * them on one segment, where that is so of every pair, an odd one on
 * two. */
#define ANY_SEG   65536
#define ANY_DENSE 16384
static const int any_counts[] = { 1, 2, 16, 17, 31, 32, 33, 34, 100, 101, 1000, 4099 };

/* The changes of the transaction of N ranges into BASE, declared in TX
 * first unless TX is NULL. */
static void any_order(lrvm_tx_t *tx, char *base[2], int n)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(n + 1);
    size_t off = 0, len = 1;
    int seg = 0;
    for (int i = 0; i < n; i++) {
        tu_rand(&x);
        if (i == 0 || i % 7 != 3) {         /* else the last range again */
            seg = n % 2 == 0 ? 0 : (int)(x & 1);
            len = 1 + (size_t)(x >> 1) % 48;
            off = (size_t)(x >> 8) % (ANY_DENSE - len);
        }
        if (tx != NULL)
            ck_assert_int_eq(lrvm_set_range(tx, base[seg] + off, len), 0);
        for (size_t k = 0; k < len; k++)
            base[seg][off + k] = (char)(x >> (k % 8 * 8));
    }
}

static void any_names(int i, char names[2][16])
{
    snprintf(names[0], sizeof names[0], "a%d", any_counts[i]);
    snprintf(names[1], sizeof names[1], "b%d", any_counts[i]);
}

static void child_any_order(void *arg)
{
    (void)arg;
    lrvm_t *s = open_store(0, 0);
    for (size_t i = 0; i < sizeof any_counts / sizeof any_counts[0]; i++) {
        char names[2][16], *base[2];
        any_names((int)i, names);
        base[0] = tu_map(s, names[0], ANY_SEG);
        base[1] = tu_map(s, names[1], ANY_SEG);
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 2, (void *const *)base, &tx), 0);
        any_order(tx, base, any_counts[i]);
        ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    }
    die();
}

START_TEST(test_store_declarations_in_any_order)
{
    int st = tu_in_child(child_any_order, NULL);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    lrvm_t *s = open_store(0, 0);
    char *want[2] = { calloc(1, ANY_SEG), calloc(1, ANY_SEG) };
    ck_assert(want[0] != NULL && want[1] != NULL);
    for (size_t i = 0; i < sizeof any_counts / sizeof any_counts[0]; i++) {
        char names[2][16];
        any_names((int)i, names);
        memset(want[0], 0, ANY_SEG);
        memset(want[1], 0, ANY_SEG);
        any_order(NULL, want, any_counts[i]);
        for (int k = 0; k < 2; k++) {
            char *got = tu_map(s, names[k], ANY_SEG);
            ck_assert_msg(memcmp(got, want[k], ANY_SEG) == 0,
                          "%s: the recovered segment differs from the %d ranges committed",
                          names[k], any_counts[i]);
        }
    }
    free(want[0]);
    free(want[1]);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tu_tcase("store", 60);
    tcase_add_test(tc, test_store_commit_survives_crash);
    tcase_add_test(tc, test_store_abort_restores);
    tcase_add_test(tc, test_store_two_segments_one_tx);
    tcase_add_test(tc, test_store_truncate_empties_log);
    tcase_add_test(tc, test_store_auto_truncation);
    tcase_add_test(tc, test_store_small_threshold_honoured);
    tcase_add_test(tc, test_store_extension);
    tcase_add_test(tc, test_store_remap_shows_log_only_commits);
    tcase_add_test(tc, test_store_noflush_then_flush);
    tcase_add_test(tc, test_store_close_flushes_noflush);
    tcase_add_test(tc, test_store_multipart_transaction);
    tcase_add_test(tc, test_store_small_tx_log_bytes);
    tcase_add_test(tc, test_store_noflush_fills_buffer_exactly);
    tcase_add_test(tc, test_store_destroy_removes_data);
    tcase_add_test(tc, test_store_close_aborts_open_tx);
    tcase_add_test(tc, test_store_threads);
    tcase_add_test(tc, test_store_declarations_in_any_order);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
