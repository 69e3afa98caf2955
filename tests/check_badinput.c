/*
 * check_badinput.c -- every bad input gets its exact error code and loses
 * nothing: segment names and sizes, mapping twice, destroying, ranges,
 * transactions over bad or busy segments, finished or foreign transaction
 * handles, unmapping, bad store directories and options, a store already
 * open, the modes of the files lrvm creates, lrvm_strerror, and lrvm_sync
 * in explicit mode. Both the lrvm_* calls (return codes) and the classic
 * rvm_* calls (NULL, (trans_t)-1 and lrvm_last_error) are covered.
 */
#define _GNU_SOURCE
#include "lrvm.h"
#include "rvm.h"
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static int open_in(const char *d, lrvm_t **s)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    return lrvm_open(d, &o, s);
}

/* One transaction that writes LEN bytes of SRC at BASE+OFF; commit's code. */
static int put(lrvm_t *s, char *base, size_t off, const void *src, size_t len, int flags)
{
    lrvm_tx_t *tx;
    int rc = lrvm_begin(s, 1, (void *const *)&base, &tx);
    if (rc < 0)
        return rc;
    if ((rc = lrvm_set_range(tx, base + off, len)) < 0) {
        lrvm_abort(tx);
        return rc;
    }
    memcpy(base + off, src, len);
    if ((rc = lrvm_commit(tx, flags)) < 0)
        lrvm_abort(tx);
    return rc;
}

/* Index of the first byte of P[0..N) that is not C, or -1. */
static long first_diff(const char *p, int c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] != (unsigned char)c)
            return (long)i;
    return -1;
}

/* Entries of directory D, "." and ".." excluded; -1 if it cannot be read. */
static int count_entries(const char *d)
{
    DIR *dp = opendir(d);
    if (dp == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dp);
    return n;
}

static lrvm_stats_t stats(lrvm_t *s)
{
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    return st;
}

/* Make lrvm_last_error() something other than CODE, so that finding CODE
 * there after a call proves that this call recorded it. */
static void prime_last_error(int code)
{
    if (code == LRVM_ENOENT)
        (void)rvm_map(NULL, "", 1);         /* records LRVM_EINVAL */
    else
        rvm_abort_trans(-2);                /* records LRVM_ENOENT */
    ck_assert_int_ne(lrvm_last_error(), code);
}

/* CALL must record CODE. */
#define EXPECT_RECORDED(code, call)                                           \
    do {                                                                      \
        prime_last_error(code);                                               \
        call;                                                                 \
        ck_assert_msg(lrvm_last_error() == (code), "%s: recorded %d (%s), expected %s", \
                      #call, lrvm_last_error(), lrvm_strerror(lrvm_last_error()), #code); \
    } while (0)

static void check_child_values(const int *vals, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(vals[i] > -1000, "child check at line %d failed", -1000 - vals[i]);
}

/* ------------------------------------------------------------- segments */

START_TEST(test_badinput_segment_names)
{
    char long201[202], long200[201];
    memset(long201, 'n', 201);
    long201[201] = '\0';
    memset(long200, 'm', 200);
    long200[200] = '\0';
    const char *bad[] = { "a/b", "..", "a..b", "", long201 };

    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *keep = tu_map(s, "keep", 4096);
    ck_assert_int_eq(put(s, keep, 0, "kept", 5, 0), 0);
    int entries = count_entries(tu_dir);           /* log, lock, keep.seg */
    void *p;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (void *)1;
        int rc = lrvm_map(s, bad[i], 4096, &p);
        ck_assert_msg(rc == LRVM_EINVAL, "lrvm_map(\"%.20s\") returned %d", bad[i], rc);
        ck_assert_ptr_eq(p, (void *)1);
        rc = lrvm_destroy(s, bad[i]);
        ck_assert_msg(rc == LRVM_EINVAL, "lrvm_destroy(\"%.20s\") returned %d", bad[i], rc);
        EXPECT_RECORDED(LRVM_EINVAL, ck_assert_ptr_null(rvm_map(s, bad[i], 4096)));
        EXPECT_RECORDED(LRVM_EINVAL, rvm_destroy(s, bad[i]));
    }
    ck_assert_int_eq(lrvm_map(s, NULL, 4096, &p), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_destroy(s, NULL), LRVM_EINVAL);
    EXPECT_RECORDED(LRVM_EINVAL, ck_assert_ptr_null(rvm_map(s, NULL, 4096)));
    EXPECT_RECORDED(LRVM_EINVAL, rvm_destroy(s, NULL));
    /* No file was created anywhere for the bad names. */
    ck_assert_int_eq(count_entries(tu_dir), entries);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "...seg")), -1);

    /* 200 bytes is the longest name. */
    char *m = tu_map(s, long200, 4096);
    ck_assert_int_eq(put(s, m, 10, "long name", 10, 0), 0);
    char file[sizeof long200 + 8];
    snprintf(file, sizeof file, "%s.seg", long200);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, file)), 4096);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    m = tu_map(s, long200, 4096);
    ck_assert_str_eq(m + 10, "long name");
    keep = tu_map(s, "keep", 4096);
    ck_assert_str_eq(keep, "kept");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_map_size_zero)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    void *p;
    ck_assert_int_eq(lrvm_map(s, "z", 0, &p), LRVM_EINVAL);
    EXPECT_RECORDED(LRVM_EINVAL, ck_assert_ptr_null(rvm_map(s, "z", 0)));
    EXPECT_RECORDED(LRVM_EINVAL, ck_assert_ptr_null(rvm_map(s, "z", -5)));
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "z.seg")), -1);
    /* The name is still free. */
    char *z = tu_map(s, "z", 100);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "z.seg")), 100);
    ck_assert_int_eq(lrvm_unmap(s, z), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_map_smaller_size_maps_whole)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 8192);
    ck_assert_int_eq(put(s, a, 8000, "tail", 5, 0), 0);
    ck_assert_int_eq(put(s, a, 0, "head", 5, 0), 0);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);

    a = tu_map(s, "a", 100);
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "a.seg")), 8192);
    ck_assert_str_eq(a, "head");
    ck_assert_str_eq(a + 8000, "tail");
    /* The mapping is 8192 bytes: a range ending at 8192 is inside, one
     * crossing it is not. */
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a + 8190, 3), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, a + 8188, 4), 0);
    memcpy(a + 8188, "end", 4);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 1);
    ck_assert_str_eq(a, "head");
    ck_assert_str_eq(a + 8000, "tail");
    ck_assert_str_eq(a + 8188, "end");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_map_twice)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    void *p = (void *)1;
    ck_assert_int_eq(lrvm_map(s, "a", 4096, &p), LRVM_EEXIST);
    ck_assert_ptr_eq(p, (void *)1);
    ck_assert_int_eq(lrvm_map(s, "a", 8192, &p), LRVM_EEXIST);
    EXPECT_RECORDED(LRVM_EEXIST, ck_assert_ptr_null(rvm_map(s, "a", 4096)));
    /* The first mapping is untouched and still works. */
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "a.seg")), 4096);
    ck_assert_int_eq(put(s, a, 0, "still", 6, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "still");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_destroy_mapped)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(put(s, a, 0, "precious", 9, 0), 0);
    ck_assert_int_eq(lrvm_destroy(s, "a"), LRVM_EBUSY);
    EXPECT_RECORDED(LRVM_EBUSY, rvm_destroy(s, "a"));
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "a.seg")), 4096);
    ck_assert_str_eq(a, "precious");
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "precious");
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "precious");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_destroy_missing)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(put(s, a, 0, "other", 6, 0), 0);
    ck_assert_int_eq(lrvm_destroy(s, "missing"), LRVM_ENOENT);
    EXPECT_RECORDED(LRVM_ENOENT, rvm_destroy(s, "missing"));
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "other");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Destroy, then create under the same name: zeros, also after reopen.
 * 3 cases: the destroyed segment's commits truncated into its file,
 * flushed but only in the log, no-flush (only in the log buffer). Another
 * segment's commits survive. */
START_TEST(test_badinput_destroy_then_recreate_is_zero)
{
    static const char *how[3] = { "in the file", "only in the log", "only in the buffer" };
    char zeros[32] = { 0 }, file[32];
    for (int h = 0; h < 3; h++) {
        tu_rmrf(tu_dir);
        lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
        char *a = tu_map(s, "a", 4096), *b = tu_map(s, "b", 4096);
        ck_assert_int_eq(put(s, b, 0, "b survives", 11, 0), 0);
        ck_assert_int_eq(put(s, a, 0, "destroy me, destroy me, destroy", 32,
                             h == 2 ? LRVM_NO_FLUSH : 0), 0);
        if (h == 0)
            ck_assert_int_eq(lrvm_truncate(s), 0);
        ck_assert_int_eq(tu_read(tu_path(tu_dir, "a.seg"), file, 32, 0), 0);
        if (h == 0) {
            ck_assert_mem_eq(file, "destroy me", 10);
        } else {
            /* The case is what it says: the data is not in the file yet. */
            ck_assert_mem_eq(file, zeros, 32);
            ck_assert_uint_gt(stats(s).log_size, 4096);
        }
        ck_assert_int_eq(lrvm_unmap(s, a), 0);
        ck_assert_msg(lrvm_destroy(s, "a") == 0, "%s: destroy failed", how[h]);
        ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "a.seg")), -1);
        a = tu_map(s, "a", 4096);
        ck_assert_msg(first_diff(a, 0, 4096) < 0, "%s: the new segment is not zero", how[h]);
        ck_assert_int_eq(lrvm_close(s), 0);

        s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
        a = tu_map(s, "a", 4096);
        ck_assert_msg(first_diff(a, 0, 4096) < 0, "%s: not zero after reopen", how[h]);
        b = tu_map(s, "b", 4096);
        ck_assert_str_eq(b, "b survives");
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* The destroying process dies without closing: a commit of another
 * segment after the destroy is kept, the destroyed data is not replayed. */
static void child_destroy_and_die(const void *arg)
{
    (void)arg;
    lrvm_t *s;
    char *a, *b;
    TU_CHILD_CHECK(open_in(tu_dir, &s) == 0);
    TU_CHILD_CHECK(lrvm_map(s, "a", 4096, (void **)&a) == 0);
    TU_CHILD_CHECK(lrvm_map(s, "b", 4096, (void **)&b) == 0);
    TU_CHILD_CHECK(put(s, a, 0, "destroyed", 10, 0) == 0);
    TU_CHILD_CHECK(lrvm_unmap(s, a) == 0);
    TU_CHILD_CHECK(lrvm_destroy(s, "a") == 0);
    TU_CHILD_CHECK(lrvm_map(s, "a", 4096, (void **)&a) == 0);
    tu_report(first_diff(a, 0, 4096) < 0);
    TU_CHILD_CHECK(put(s, b, 0, "after", 6, 0) == 0);
    kill(getpid(), SIGKILL);
}

START_TEST(test_badinput_destroy_then_recreate_after_crash)
{
    int vals[1], nv;
    int st = tu_run_child(child_destroy_and_die, NULL, vals, 1, &nv);
    check_child_values(vals, nv);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    ck_assert_int_eq(nv, 1);
    ck_assert_msg(vals[0] == 1, "the recreated segment was not zero in the child");
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096), *b = tu_map(s, "b", 4096);
    ck_assert_msg(first_diff(a, 0, 4096) < 0, "destroyed data came back after the crash");
    ck_assert_str_eq(b, "after");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ----------------------------------------------------------- ranges */

START_TEST(test_badinput_set_range)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    /* b is mapped but not in the transaction: its bytes must not count. */
    char *a = tu_map(s, "a", 4096), *b = tu_map(s, "b", 4096);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a - 1, 1), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, a - 1, 2), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, a + 4096, 1), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, a + 4090, 10), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, a, 4097), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, b, 1), LRVM_EINVAL);       /* not in tx */
    ck_assert_int_eq(lrvm_set_range(tx, b + 100, 10), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_set_range(tx, a + 10, 0), 0);
    /* The transaction goes on: a good range is saved and logged. */
    ck_assert_int_eq(lrvm_set_range(tx, a + 4090, 6), 0);
    memcpy(a + 4090, "last!", 6);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(stats(s).commits, 1);

    /* Classic: the range is given as offset and size in one segment. */
    trans_t tid = rvm_begin_trans(s, 1, (void **)&a);
    ck_assert_int_ge(tid, 0);
    EXPECT_RECORDED(LRVM_EINVAL, rvm_about_to_modify(tid, a, -1, 4));
    EXPECT_RECORDED(LRVM_EINVAL, rvm_about_to_modify(tid, a, 0, -1));
    EXPECT_RECORDED(LRVM_EINVAL, rvm_about_to_modify(tid, a, 4090, 10));
    EXPECT_RECORDED(LRVM_EINVAL, rvm_about_to_modify(tid, a, 4096, 1));
    EXPECT_RECORDED(LRVM_EINVAL, rvm_about_to_modify(tid, b, 0, 4));
    rvm_about_to_modify(tid, a, 0, 6);
    memcpy(a, "first", 6);
    prime_last_error(0);
    int before = lrvm_last_error();
    rvm_commit_trans(tid);
    ck_assert_int_eq(lrvm_last_error(), before);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    b = tu_map(s, "b", 4096);
    ck_assert_str_eq(a, "first");
    ck_assert_str_eq(a + 4090, "last!");
    ck_assert_int_eq(first_diff(b, 0, 4096), -1);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ----------------------------------------------------------- begin */

START_TEST(test_badinput_begin)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096), *b = tu_map(s, "b", 4096);
    int local;
    lrvm_tx_t *tx, *t2;
    void *bases[2];

    bases[0] = a;
    ck_assert_int_eq(lrvm_begin(s, 0, bases, &tx), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_begin(s, -1, bases, &tx), LRVM_EINVAL);
    bases[0] = &local;
    ck_assert_int_eq(lrvm_begin(s, 1, bases, &tx), LRVM_ENOENT);
    bases[0] = a + 1;
    ck_assert_int_eq(lrvm_begin(s, 1, bases, &tx), LRVM_ENOENT);
    bases[0] = a, bases[1] = &local;
    ck_assert_int_eq(lrvm_begin(s, 2, bases, &tx), LRVM_ENOENT);
    bases[0] = b, bases[1] = b;
    ck_assert_int_eq(lrvm_begin(s, 2, bases, &tx), LRVM_EINVAL);

    /* a in an open transaction */
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &t2), LRVM_EEXIST);
    bases[0] = b, bases[1] = a;
    ck_assert_int_eq(lrvm_begin(s, 2, bases, &t2), LRVM_EEXIST);

    /* Classic */
    EXPECT_RECORDED(LRVM_EINVAL, ck_assert_int_eq(rvm_begin_trans(s, 0, bases), -1));
    bases[0] = &local;
    EXPECT_RECORDED(LRVM_ENOENT, ck_assert_int_eq(rvm_begin_trans(s, 1, bases), -1));
    bases[0] = a;
    EXPECT_RECORDED(LRVM_EEXIST, ck_assert_int_eq(rvm_begin_trans(s, 1, bases), -1));
    bases[0] = b, bases[1] = b;
    EXPECT_RECORDED(LRVM_EINVAL, ck_assert_int_eq(rvm_begin_trans(s, 2, bases), -1));

    /* None of the failed calls left b claimed, and the open one on a is
     * intact. */
    ck_assert_int_eq(put(s, b, 0, "bee", 4, 0), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a, 4), 0);
    memcpy(a, "aye", 4);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    b = tu_map(s, "b", 4096);
    ck_assert_str_eq(a, "aye");
    ck_assert_str_eq(b, "bee");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------- finished handles */

START_TEST(test_badinput_classic_finished_tid)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);

    trans_t t1 = rvm_begin_trans(s, 1, (void **)&a);
    ck_assert_int_ge(t1, 0);
    rvm_about_to_modify(t1, a, 0, 8);
    memcpy(a, "one", 4);
    rvm_commit_trans(t1);
    trans_t t2 = rvm_begin_trans(s, 1, (void **)&a);
    ck_assert_int_ge(t2, 0);
    ck_assert_int_ne(t2, t1);
    rvm_about_to_modify(t2, a, 0, 8);
    memcpy(a, "two", 4);
    rvm_abort_trans(t2);
    ck_assert_str_eq(a, "one");

    lrvm_stats_t st0 = stats(s);
    EXPECT_RECORDED(LRVM_ENOENT, rvm_commit_trans(t1));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_abort_trans(t1));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_commit_trans(t2));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_abort_trans(t2));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_commit_trans(12345));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_abort_trans(12345));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_about_to_modify(t1, a, 0, 4));

    /* With another transaction open on the segment, the stale ids must
     * not reach it. */
    trans_t t3 = rvm_begin_trans(s, 1, (void **)&a);
    ck_assert_int_ge(t3, 0);
    ck_assert(t3 != t1 && t3 != t2);
    rvm_about_to_modify(t3, a, 0, 8);
    memcpy(a, "three", 6);
    EXPECT_RECORDED(LRVM_ENOENT, rvm_abort_trans(t1));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_commit_trans(t2));
    EXPECT_RECORDED(LRVM_ENOENT, rvm_abort_trans(12345));
    ck_assert_str_eq(a, "three");
    lrvm_stats_t st1 = stats(s);
    ck_assert_uint_eq(st1.commits, st0.commits);
    ck_assert_uint_eq(st1.aborts, st0.aborts);
    ck_assert_uint_eq(st1.log_size, st0.log_size);
    ck_assert_uint_eq(st1.log_records, st0.log_records);

    rvm_commit_trans(t3);
    ck_assert_uint_eq(stats(s).commits, st0.commits + 1);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "three");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_foreign_tx_handle)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    long some_local = 0;
    lrvm_tx_t *fake = (lrvm_tx_t *)&some_local;
    lrvm_tx_t *tx;

    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a, 4), 0);
    memcpy(a, "real", 4);
    lrvm_stats_t st0 = stats(s);
    ck_assert_int_eq(lrvm_commit(fake, 0), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_commit(fake, LRVM_NO_FLUSH), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_abort(fake), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_set_range(fake, a, 4), LRVM_ENOENT);
    ck_assert_int_eq(some_local, 0);
    lrvm_stats_t st1 = stats(s);
    ck_assert_uint_eq(st1.commits, st0.commits);
    ck_assert_uint_eq(st1.aborts, st0.aborts);
    ck_assert_uint_eq(st1.log_size, st0.log_size);
    ck_assert_mem_eq(a, "real", 4);

    /* The real transaction is untouched. */
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_mem_eq(a, "real", 4);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_commit_bad_flags)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_set_range(tx, a, 6), 0);
    memcpy(a, "flags", 6);
    ck_assert_int_eq(lrvm_commit(tx, 0x80), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_commit(tx, 0x80 | LRVM_NO_FLUSH), LRVM_EINVAL);
    ck_assert_uint_eq(stats(s).commits, 0);
    ck_assert_uint_eq(stats(s).log_size, 4096);
    /* Still open: more ranges, then a good commit. */
    ck_assert_int_eq(lrvm_set_range(tx, a + 100, 3), 0);
    memcpy(a + 100, "ok", 3);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_uint_eq(stats(s).commits, 1);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "flags");
    ck_assert_str_eq(a + 100, "ok");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------------------ unmap */

START_TEST(test_badinput_unmap)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    int local;
    lrvm_tx_t *tx;
    ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&a, &tx), 0);
    ck_assert_int_eq(lrvm_unmap(s, a), LRVM_EBUSY);
    EXPECT_RECORDED(LRVM_EBUSY, rvm_unmap(s, a));
    ck_assert_int_eq(lrvm_unmap(s, a + 1), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_unmap(s, &local), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_unmap(s, NULL), LRVM_ENOENT);
    EXPECT_RECORDED(LRVM_ENOENT, rvm_unmap(s, a + 1));
    /* Still mapped and usable. */
    ck_assert_int_eq(lrvm_set_range(tx, a, 7), 0);
    memcpy(a, "mapped", 7);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    ck_assert_int_eq(lrvm_unmap(s, a), LRVM_ENOENT);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "mapped");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------------------- open */

START_TEST(test_badinput_open_bad_dir_and_options)
{
    lrvm_t *s = (lrvm_t *)1;
    ck_assert_int_eq(lrvm_open(NULL, NULL, &s), LRVM_EINVAL);
    ck_assert_int_eq(lrvm_open("", NULL, &s), LRVM_EINVAL);
    ck_assert_ptr_eq(s, (lrvm_t *)1);

    const char *file = tu_path(tu_dir, "plain");
    ck_assert_int_eq(tu_write(file, "x", 1, 0), -1);       /* not there yet */
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("content", f);
    fclose(f);
    ck_assert_int_eq(lrvm_open(file, NULL, &s), LRVM_ENOTDIR);
    ck_assert_int_eq(tu_file_size(file), 7);

    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no/such/store", tu_dir);
    ck_assert_int_eq(lrvm_open(missing, NULL, &s), LRVM_ENOENT);
    ck_assert_int_eq(tu_mode(tu_path(tu_dir, "no")), -1);

    const char *fresh = tu_path(tu_dir, "fresh");
    lrvm_options_t o = { .tracking = 7 };
    ck_assert_int_eq(lrvm_open(fresh, &o, &s), LRVM_EINVAL);
    o = (lrvm_options_t){ .tracking = LRVM_TRACK_EXPLICIT, .log_buffer_size = 100 };
    ck_assert_int_eq(lrvm_open(fresh, &o, &s), LRVM_EINVAL);
    ck_assert_ptr_eq(s, (lrvm_t *)1);
    ck_assert_int_eq(tu_mode(fresh), -1);                     /* nothing created */

    /* Classic */
    EXPECT_RECORDED(LRVM_ENOTDIR, ck_assert_ptr_null(rvm_init(file)));
    EXPECT_RECORDED(LRVM_EINVAL, ck_assert_ptr_null(rvm_init("")));
}
END_TEST

/* The child tries to open D as uid/gid 65534; exits with -code, 0 on
 * success, 100 if it could not drop its privileges, 101 if D is not
 * readable-but-not-writable for it. */
static void child_open_unprivileged(const void *arg)
{
    const char *d = arg;
    if (geteuid() == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0 ||
            geteuid() != 65534 || setuid(0) == 0)
            _exit(100);
    }
    /* The directory must be reachable and readable, only not writable, or
     * LRVM_EACCES would come for another reason. */
    if (access(d, R_OK | X_OK) != 0 || access(d, W_OK) == 0)
        _exit(101);
    lrvm_t *s;
    int rc = lrvm_open(d, NULL, &s);
    if (rc == 0)
        lrvm_close(s);
    _exit(-rc);
}

START_TEST(test_badinput_open_unwritable_dir)
{
    /* Let uid 65534 reach the store directory, which it may read but not
     * write. */
    ck_assert_int_eq(chmod(getenv("TMPDIR"), 0755), 0);      /* the base directory */
    ck_assert_int_eq(chmod(tu_dir, 0755), 0);
    const char *ro = tu_path(tu_dir, "ro");
    ck_assert_int_eq(mkdir(ro, 0755), 0);
    ck_assert_int_eq(chmod(ro, geteuid() == 0 ? 0755 : 0555), 0);
    int vals[1], nv;
    int st = tu_run_child(child_open_unprivileged, ro, vals, 1, &nv);
    ck_assert_msg(WIFEXITED(st), "child status %#x", st);
    if (WEXITSTATUS(st) == 100) {
        printf("test_badinput_open_unwritable_dir: SKIPPED, the child could not drop "
               "root privileges; LRVM_EACCES not tested\n");
        return;
    }
    ck_assert_msg(WEXITSTATUS(st) != 101, "the child cannot read %s, or can write it", ro);
    ck_assert_msg(-WEXITSTATUS(st) == LRVM_EACCES, "lrvm_open returned %d (%s)",
                  -WEXITSTATUS(st), lrvm_strerror(-WEXITSTATUS(st)));
    ck_assert_int_eq(count_entries(ro), 0);
}
END_TEST

START_TEST(test_badinput_open_twice_same_process)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0), *s2 = (lrvm_t *)1;
    ck_assert_int_eq(open_in(tu_dir, &s2), LRVM_EBUSY);
    ck_assert_ptr_eq(s2, (lrvm_t *)1);
    EXPECT_RECORDED(LRVM_EBUSY, ck_assert_ptr_null(rvm_init(tu_dir)));
    /* The first handle still holds the store and works. */
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(put(s, a, 0, "first", 6, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "first");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* Exits with -code of lrvm_open of the store, 0 when it opened. */
static void child_open_store(const void *arg)
{
    (void)arg;
    lrvm_t *s;
    int rc = open_in(tu_dir, &s);
    if (rc == 0)
        rc = lrvm_close(s);
    _exit(-rc);
}

START_TEST(test_badinput_open_held_by_other_process)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(put(s, a, 0, "parent", 7, 0), 0);
    int vals[1], nv;
    int st = tu_run_child(child_open_store, NULL, vals, 1, &nv);
    ck_assert_msg(WIFEXITED(st), "child status %#x", st);
    ck_assert_msg(-WEXITSTATUS(st) == LRVM_EBUSY, "child's lrvm_open returned %d",
                  -WEXITSTATUS(st));
    /* The parent's store is unharmed. */
    ck_assert_int_eq(put(s, a, 10, "still", 6, 0), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    st = tu_run_child(child_open_store, NULL, vals, 1, &nv);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "after the parent closed, the child's lrvm_open returned %d", -WEXITSTATUS(st));
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "parent");
    ck_assert_str_eq(a + 10, "still");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

START_TEST(test_badinput_file_modes)
{
    umask(0);
    const char *d = tu_path(tu_dir, "store");
    lrvm_t *s;
    ck_assert_int_eq(open_in(d, &s), 0);
    void *x;
    ck_assert_int_eq(lrvm_map(s, "x", 4096, &x), 0);
    ck_assert_int_eq(tu_mode(d), 0700);
    char path[4096];
    static const char *files[] = { "lrvm.log", "lrvm.lock", "x.seg" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", d, files[i]);
        ck_assert_msg(tu_mode(path) == 0600, "%s has mode %o", files[i], tu_mode(path));
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------------ messages, sync */

START_TEST(test_badinput_strerror)
{
    static const int codes[] = {
#define CODE(name, value, text) LRVM_##name,
        LRVM_ERRNO_MAP(CODE)
#undef CODE
    };
    const size_t n = sizeof codes / sizeof codes[0];
    ck_assert_uint_eq(n, 16);
    const char *unknown = lrvm_strerror(-999);
    ck_assert_ptr_nonnull(unknown);
    ck_assert_str_eq(unknown, "unknown error");
    ck_assert_str_eq(lrvm_strerror(1), "unknown error");
    for (size_t i = 0; i < n; i++) {
        const char *m = lrvm_strerror(codes[i]);
        ck_assert_ptr_nonnull(m);
        ck_assert_msg(m[0] != '\0', "code %d has an empty message", codes[i]);
        ck_assert_msg(strcmp(m, unknown) != 0, "code %d is unknown", codes[i]);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(m, lrvm_strerror(codes[j])) != 0,
                          "codes %d and %d share the message \"%s\"", codes[i], codes[j], m);
    }
}
END_TEST

START_TEST(test_badinput_sync_explicit_mode)
{
    lrvm_t *s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    char *a = tu_map(s, "a", 4096);
    ck_assert_int_eq(put(s, a, 0, "x", 2, LRVM_NO_FLUSH), 0);
    ck_assert_int_eq(lrvm_sync(s), LRVM_EMODE);
    ck_assert_uint_eq(stats(s).syncs, 0);
    ck_assert_int_eq(lrvm_close(s), 0);
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, 0);
    a = tu_map(s, "a", 4096);
    ck_assert_str_eq(a, "x");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("badinput");
    TCase *tc = tu_tcase("badinput", 60);
    tcase_add_test(tc, test_badinput_segment_names);
    tcase_add_test(tc, test_badinput_map_size_zero);
    tcase_add_test(tc, test_badinput_map_smaller_size_maps_whole);
    tcase_add_test(tc, test_badinput_map_twice);
    tcase_add_test(tc, test_badinput_destroy_mapped);
    tcase_add_test(tc, test_badinput_destroy_missing);
    tcase_add_test(tc, test_badinput_destroy_then_recreate_is_zero);
    tcase_add_test(tc, test_badinput_destroy_then_recreate_after_crash);
    tcase_add_test(tc, test_badinput_set_range);
    tcase_add_test(tc, test_badinput_begin);
    tcase_add_test(tc, test_badinput_classic_finished_tid);
    tcase_add_test(tc, test_badinput_foreign_tx_handle);
    tcase_add_test(tc, test_badinput_commit_bad_flags);
    tcase_add_test(tc, test_badinput_unmap);
    tcase_add_test(tc, test_badinput_open_bad_dir_and_options);
    tcase_add_test(tc, test_badinput_open_unwritable_dir);
    tcase_add_test(tc, test_badinput_open_twice_same_process);
    tcase_add_test(tc, test_badinput_open_held_by_other_process);
    tcase_add_test(tc, test_badinput_file_modes);
    tcase_add_test(tc, test_badinput_strerror);
    tcase_add_test(tc, test_badinput_sync_explicit_mode);
    suite_add_tcase(su, tc);
    return tu_run_suite(su);
}
