/*
 * check_version.c -- one version everywhere: lrvm.h's macros, lrvm_version(),
 * configure's package version, the library's soname, and what every tool
 * answers to --version; every tool answers --help with status 0 and a bad
 * option with status 2.
 */
#define _GNU_SOURCE
#include "config.h"
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

START_TEST(test_version_library_header_and_package_agree)
{
    const char *header = STR(LRVM_VERSION_MAJOR) "." STR(LRVM_VERSION_MINOR) "."
                         STR(LRVM_VERSION_PATCH);
    ck_assert_str_eq(lrvm_version(), header);
    ck_assert_str_eq(lrvm_version(), PACKAGE_VERSION);
}
END_TEST

START_TEST(test_version_soname_follows_the_major)
{
    const char *top = getenv("abs_top_builddir");
    char path[4200];
    snprintf(path, sizeof path, "%s/.libs/liblrvm.so.%d", top ? top : ".", LRVM_VERSION_MAJOR);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "%s: %s", path, dlerror());
    const char *(*version)(void) = (const char *(*)(void))dlsym(h, "lrvm_version");
    ck_assert_ptr_nonnull(version);
    ck_assert_str_eq(version(), PACKAGE_VERSION);
    dlclose(h);
}
END_TEST

/* Run TOOL with ARG; its exit status, its first line of output in LINE. */
static int run(const char *tool, const char *arg, char *line, size_t n)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", tool, arg);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    line[0] = '\0';
    if (fgets(line, (int)n, p) != NULL)
        line[strcspn(line, "\n")] = '\0';
    char rest[4096];
    while (fread(rest, 1, sizeof rest, p) > 0)
        ;
    int st = pclose(p);
    ck_assert_msg(WIFEXITED(st), "%s %s did not exit", tool, arg);
    return WEXITSTATUS(st);
}

static const char *const tools[][2] = {
    { "LRVMUTL", "lrvmutl" },
    { "LRVM_CRASHTEST", "lrvm-crashtest" },
    { "LRVM_BENCH", "lrvm-bench" },
    { "LRVM_DEMO", "lrvm-demo" },
};

START_TEST(test_version_every_tool_answers)
{
    const char *path = getenv(tools[_i][0]);
    ck_assert_msg(path != NULL, "$%s is not set (make check sets it)", tools[_i][0]);
    char line[512], want[512];
    snprintf(want, sizeof want, "%s (lrvm) %s", tools[_i][1], PACKAGE_VERSION);
    ck_assert_int_eq(run(path, "--version", line, sizeof line), 0);
    ck_assert_str_eq(line, want);
    ck_assert_int_eq(run(path, "--help", line, sizeof line), 0);
    ck_assert_msg(strstr(line, "usage") != NULL, "%s --help: %s", tools[_i][1], line);
    ck_assert_int_eq(run(path, "--no-such-option", line, sizeof line), 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("version");
    TCase *tc = tu_tcase("version", 30);
    tcase_add_test(tc, test_version_library_header_and_package_agree);
    tcase_add_test(tc, test_version_soname_follows_the_major);
    tcase_add_loop_test(tc, test_version_every_tool_answers, 0, 4);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
