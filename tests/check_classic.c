/*
 * check_classic.c -- the classic rvm_* interface, as existing LRVM
 * programs use it: the course scenarios (commit then crash and remap in
 * another process, abort, multiple segments, truncation, extension),
 * error reporting through lrvm_last_error, the trans_t table, tracing.
 */
#define _GNU_SOURCE
#include "rvm.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_STRING "hello, world"
#define OFFSET2 1000

static void setup(void)
{
    setenv("LRVM_TRACKING", "explicit", 1);
    unsetenv("LRVM_VERBOSE");
}

static void proc1_commit(void *arg)
{
    (void)arg;
    rvm_t rvm = rvm_init(tu_dir);
    ck_assert_ptr_nonnull(rvm);
    rvm_destroy(rvm, "testseg");
    char *seg = rvm_map(rvm, "testseg", 10000);
    ck_assert_ptr_nonnull(seg);
    trans_t t = rvm_begin_trans(rvm, 1, (void **)&seg);
    ck_assert_int_ne(t, -1);
    rvm_about_to_modify(t, seg, 0, 100);
    sprintf(seg, TEST_STRING);
    rvm_about_to_modify(t, seg, OFFSET2, 100);
    sprintf(seg + OFFSET2, TEST_STRING);
    rvm_commit_trans(t);
    abort();                                /* a crash, no clean exit */
}

START_TEST(test_classic_basic_commit_then_remap_elsewhere)
{
    int st = tu_in_child(proc1_commit, NULL);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    rvm_t rvm = rvm_init(tu_dir);
    ck_assert_ptr_nonnull(rvm);
    char *seg = rvm_map(rvm, "testseg", 10000);
    ck_assert_ptr_nonnull(seg);
    ck_assert_str_eq(seg, TEST_STRING);
    ck_assert_str_eq(seg + OFFSET2, TEST_STRING);
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

START_TEST(test_classic_abort)
{
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "testseg", 10000);
    trans_t t = rvm_begin_trans(rvm, 1, (void **)&seg);
    rvm_about_to_modify(t, seg, 0, 100);
    sprintf(seg, TEST_STRING);
    rvm_commit_trans(t);

    t = rvm_begin_trans(rvm, 1, (void **)&seg);
    rvm_about_to_modify(t, seg, 0, 100);
    sprintf(seg, "overwritten");
    rvm_about_to_modify(t, seg, OFFSET2, 100);
    sprintf(seg + OFFSET2, "overwritten");
    rvm_abort_trans(t);
    ck_assert_str_eq(seg, TEST_STRING);
    ck_assert_int_eq(seg[OFFSET2], 0);
    ck_assert_int_eq(lrvm_last_error(), 0);
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

START_TEST(test_classic_multi_segment)
{
    rvm_t rvm = rvm_init(tu_dir);
    char *segs[2] = { rvm_map(rvm, "seg0", 1000), rvm_map(rvm, "seg1", 1000) };
    ck_assert_ptr_nonnull(segs[0]);
    ck_assert_ptr_nonnull(segs[1]);
    trans_t t = rvm_begin_trans(rvm, 2, (void **)segs);
    rvm_about_to_modify(t, segs[0], 0, 100);
    rvm_about_to_modify(t, segs[1], 0, 100);
    strcpy(segs[0], "zero");
    strcpy(segs[1], "one");
    rvm_commit_trans(t);
    rvm_unmap(rvm, segs[0]);
    rvm_unmap(rvm, segs[1]);
    segs[1] = rvm_map(rvm, "seg1", 1000);
    segs[0] = rvm_map(rvm, "seg0", 1000);
    ck_assert_str_eq(segs[0], "zero");
    ck_assert_str_eq(segs[1], "one");
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

START_TEST(test_classic_truncate)
{
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "testseg", 10000);
    for (int i = 0; i < 10; i++) {
        trans_t t = rvm_begin_trans(rvm, 1, (void **)&seg);
        rvm_about_to_modify(t, seg, i * 100, 20);
        sprintf(seg + i * 100, "entry %d", i);
        rvm_commit_trans(t);
    }
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(rvm, &st), 0);
    ck_assert_uint_gt(st.log_size, 4096);
    rvm_truncate_log(rvm);
    ck_assert_int_eq(lrvm_stats(rvm, &st), 0);
    ck_assert_uint_eq(st.log_size, 4096);
    char buf[20];
    ck_assert_int_eq(tu_read(tu_path(tu_dir, "testseg.seg"), buf, 20, 900), 0);
    ck_assert_str_eq(buf, "entry 9");
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

START_TEST(test_classic_extend)
{
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "testseg", 100);
    trans_t t = rvm_begin_trans(rvm, 1, (void **)&seg);
    rvm_about_to_modify(t, seg, 50, 10);
    strcpy(seg + 50, "kept");
    rvm_commit_trans(t);
    rvm_unmap(rvm, seg);
    seg = rvm_map(rvm, "testseg", 50000);
    ck_assert_ptr_nonnull(seg);
    ck_assert_str_eq(seg + 50, "kept");
    t = rvm_begin_trans(rvm, 1, (void **)&seg);
    rvm_about_to_modify(t, seg, 49000, 10);
    strcpy(seg + 49000, "far");
    rvm_commit_trans(t);
    ck_assert_int_eq(lrvm_last_error(), 0);
    ck_assert_int_eq(lrvm_close(rvm), 0);
    rvm = rvm_init(tu_dir);
    seg = rvm_map(rvm, "testseg", 100);
    ck_assert_str_eq(seg + 49000, "far");
    ck_assert_int_eq(tu_file_size(tu_path(tu_dir, "testseg.seg")), 50000);
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

START_TEST(test_classic_errors_and_ids)
{
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "testseg", 1000);
    ck_assert_ptr_null(rvm_map(rvm, "testseg", 1000));
    ck_assert_int_eq(lrvm_last_error(), LRVM_EEXIST);
    trans_t t1 = rvm_begin_trans(rvm, 1, (void **)&seg);
    ck_assert_int_ne(t1, -1);
    ck_assert_int_eq(rvm_begin_trans(rvm, 1, (void **)&seg), (trans_t)-1);
    ck_assert_int_eq(lrvm_last_error(), LRVM_EEXIST);
    rvm_commit_trans(t1);
    trans_t t2 = rvm_begin_trans(rvm, 1, (void **)&seg);
    ck_assert_int_ne(t2, t1);                   /* ids are not reused */
    rvm_abort_trans(t2);
    rvm_commit_trans(t1);
    ck_assert_int_eq(lrvm_last_error(), LRVM_ENOENT);
    rvm_about_to_modify(t2, seg, 0, 10);
    ck_assert_int_eq(lrvm_last_error(), LRVM_ENOENT);
    ck_assert_int_eq(lrvm_close(rvm), 0);
}
END_TEST

START_TEST(test_classic_bad_tracking_env)
{
    setenv("LRVM_TRACKING", "sometimes", 1);
    ck_assert_ptr_null(rvm_init(tu_dir));
    ck_assert_int_eq(lrvm_last_error(), LRVM_EINVAL);
}
END_TEST

static void traced_calls(void *arg)
{
    const char *out = arg;
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    rvm_verbose(1);
    rvm_t rvm = rvm_init(tu_dir);
    char *seg = rvm_map(rvm, "traced", 64);
    trans_t t = rvm_begin_trans(rvm, 1, (void **)&seg);
    rvm_about_to_modify(t, seg, 0, 8);
    rvm_commit_trans(t);
    rvm_verbose(0);
    rvm_truncate_log(rvm);                      /* not traced */
    _exit(0);
}

START_TEST(test_classic_verbose_traces_calls)
{
    char out[4200];
    snprintf(out, sizeof out, "%s/trace.txt", tu_dir);
    int st = tu_in_child(traced_calls, out);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char text[4096] = { 0 };
    int fd = open(out, O_RDONLY);
    ck_assert_int_gt(read(fd, text, sizeof text - 1), 0);
    close(fd);
    ck_assert_ptr_nonnull(strstr(text, "rvm_init(\""));
    ck_assert_ptr_nonnull(strstr(text, "rvm_map("));
    ck_assert_ptr_nonnull(strstr(text, "\"traced\", 64)"));
    ck_assert_ptr_nonnull(strstr(text, "rvm_begin_trans("));
    ck_assert_ptr_nonnull(strstr(text, "rvm_about_to_modify("));
    ck_assert_ptr_nonnull(strstr(text, "rvm_commit_trans("));
    ck_assert_ptr_null(strstr(text, "rvm_truncate_log"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("classic");
    TCase *tc = tu_tcase("classic", 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_classic_basic_commit_then_remap_elsewhere);
    tcase_add_test(tc, test_classic_abort);
    tcase_add_test(tc, test_classic_multi_segment);
    tcase_add_test(tc, test_classic_truncate);
    tcase_add_test(tc, test_classic_extend);
    tcase_add_test(tc, test_classic_errors_and_ids);
    tcase_add_test(tc, test_classic_bad_tracking_env);
    tcase_add_test(tc, test_classic_verbose_traces_calls);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
