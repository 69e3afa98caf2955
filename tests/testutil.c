/*
 * testutil.c -- helpers shared by the Check suites.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "faultio.h"
#include "internal.h"

#include <check.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path;
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if (asprintf(&path, "%s/lrvm-test-XXXXXX", base) < 0)
        abort();
    if (mkdtemp(path) == NULL)
        abort();
    return path;
}

void tu_rmrf(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p;
            if (asprintf(&p, "%s/%s", dir, e->d_name) < 0)
                abort();
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                chmod(p, 0700);
                tu_rmrf(p);
            } else {
                unlink(p);
            }
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* tu_copy_dir; with DOTFILES, names that begin with a dot too. */
static int copy_dir(const char *src, const char *dst, int dotfiles)
{
    DIR *d = opendir(src);
    if (d == NULL)
        return -1;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!dotfiles || e->d_type == DT_DIR))
            continue;
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char buf[65536];
        ssize_t n = -1;
        if (in >= 0 && out >= 0)
            while ((n = read(in, buf, sizeof buf)) > 0)
                if (write(out, buf, (size_t)n) != n) {
                    n = -1;
                    break;
                }
        if (n != 0)
            rc = -1;
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
    }
    closedir(d);
    return rc;
}

int tu_copy_dir(const char *src, const char *dst)
{
    return copy_dir(src, dst, 0);
}

static char *base_dir;
static char *saved_tmpdir;

void tu_base_setup(void)
{
    const char *t = getenv("TMPDIR");
    saved_tmpdir = t != NULL ? strdup(t) : NULL;
    base_dir = tu_tmpdir();
    setenv("TMPDIR", base_dir, 1);
}

void tu_base_teardown(void)
{
    if (saved_tmpdir != NULL)
        setenv("TMPDIR", saved_tmpdir, 1);
    else
        unsetenv("TMPDIR");
    free(saved_tmpdir);
    tu_rmrf(base_dir);
    free(base_dir);
}

char *tu_dir;

static void dir_setup(void)
{
    tu_dir = tu_tmpdir();
}

static void dir_teardown(void)
{
    tu_rmrf(tu_dir);
    free(tu_dir);
    tu_dir = NULL;
}

TCase *tu_tcase(const char *name, int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, timeout);
    return tc;
}

const char *tu_path(const char *dir, const char *name)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ & 3];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

int64_t tu_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

int tu_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

int tu_read(const char *path, void *buf, size_t n, uint64_t off)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t r = pread(fd, buf, n, (off_t)off);
    close(fd);
    return r == (ssize_t)n ? 0 : -1;
}

void *tu_read_whole(const char *path, size_t *n)
{
    int64_t size = tu_file_size(path);
    ck_assert_int_ge(size, 0);
    char *b = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(tu_read(path, b, (size_t)size, 0), 0);
    b[size] = '\0';
    if (n != NULL)
        *n = (size_t)size;
    return b;
}

int tu_write(const char *path, const void *buf, size_t n, uint64_t off)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t r = pwrite(fd, buf, n, (off_t)off);
    close(fd);
    return r == (ssize_t)n ? 0 : -1;
}

int tu_in_child(void (*fn)(void *arg), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    return status;
}

static int report_fd = -1;

void tu_report(int v)
{
    if (write(report_fd, &v, sizeof v) != (ssize_t)sizeof v)
        _exit(3);
}

int tu_run_child(void (*fn)(const void *), const void *arg, int *vals, int max, int *nvals)
{
    int p[2];
    if (pipe(p) != 0)
        abort();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        close(p[0]);
        report_fd = p[1];
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    int n = 0, v;
    while (read(p[0], &v, sizeof v) == (ssize_t)sizeof v)
        if (n < max)
            vals[n++] = v;
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    *nvals = n;
    return st;
}

int tu_child_failed_line(const int *vals, int n)
{
    for (int i = 0; i < n; i++)
        if (vals[i] <= -1000)
            return -1000 - vals[i];
    return 0;
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

uint64_t tu_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t tu_test_seed(void)
{
    const char *s = getenv("LRVM_TEST_SEED");
    if (s != NULL && s[0] != '\0')
        return strtoull(s, NULL, 0);
    return 20240611;
}

lrvm_t *tu_open(const char *dir, const lrvm_options_t *o)
{
    lrvm_t *s;
    int rc = lrvm_open(dir != NULL ? dir : tu_dir, o, &s);
    ck_assert_msg(rc == 0, "lrvm_open: %s", lrvm_strerror(rc));
    return s;
}

lrvm_t *tu_open_mode(int tracking, size_t threshold)
{
    lrvm_options_t o = { .tracking = tracking, .truncate_threshold = threshold };
    return tu_open(NULL, &o);
}

lrvm_stats_t tu_wait_truncations(lrvm_t *s, uint64_t n)
{
    lrvm_stats_t st;
    for (int i = 0;; i++) {
        ck_assert_int_eq(lrvm_stats(s, &st), 0);
        if (st.truncations >= n)
            return st;
        ck_assert_msg(i < 30000, "%" PRIu64 " truncations after 30 s, not %" PRIu64,
                      st.truncations, n);
        usleep(1000);
    }
}

int tu_steady_under_lock(lrvm_t *s, struct tu_steady *st, int n,
                         void (*while_held)(void *arg), void *arg)
{
    while (!atomic_load(&st->ready) && atomic_load(&st->rc) == 0)
        sched_yield();
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    atomic_store(&st->go, 1);
    for (int ms = 0; ms < 10000 && atomic_load(&st->done) < n && atomic_load(&st->rc) == 0; ms++)
        lrvm__pause_us(1000);
    int done = atomic_load(&st->done);
    if (while_held != NULL)
        while_held(arg);
    lrvm__unlock(&s->mu);
    return done;
}

void *tu_map(lrvm_t *s, const char *name, size_t size)
{
    void *base;
    int rc = lrvm_map(s, name, size, &base);
    ck_assert_msg(rc == 0, "lrvm_map %s: %s", name, lrvm_strerror(rc));
    return base;
}

int tu_run_suite(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? 0 : 1;
}

int tu_quick_skip(const char *suite)
{
    const char *e = getenv("LRVM_QUICK_CHECK");
    if (e == NULL || e[0] == '\0' || strcmp(e, "0") == 0)
        return 0;
    printf("%s: skipped: LRVM_QUICK_CHECK=%s asks for the quick subset\n", suite, e);
    return 1;
}

pid_t tu_fork_piped(int *fd)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    close(pid == 0 ? p[0] : p[1]);
    *fd = pid == 0 ? p[1] : p[0];
    return pid;
}

int tu_wait(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* ------------------------------------------------------ the fault harness */

static const char *fault_name(int mode)
{
    if (mode & LRVM__IO_POWERCUT)
        return "power cut";
    if (mode & LRVM__IO_KILL)
        return mode & LRVM__IO_TORN ? "torn write and kill" : "kill";
    if (mode & LRVM__IO_ALWAYS)
        return mode & LRVM__IO_TORN ? "torn write, then every call fails" : "every call fails";
    return mode & LRVM__IO_TORN ? "torn write fails" : "failure";
}

void tu_fault_each_call(const struct tu_fault_plan *plan,
                        void (*run)(void *arg, const struct tu_fault *f), void *arg)
{
    static const int eio[] = { EIO }, kill_mode[] = { LRVM__IO_KILL };
    const int *errs = plan->errs != NULL ? plan->errs : eio;
    const int *modes = plan->modes != NULL ? plan->modes : kill_mode;
    int nerrs = plan->errs != NULL ? plan->nerrs : 1;
    int nmodes = plan->modes != NULL ? plan->nmodes : 1;
    unsigned rounds = plan->rounds > 0 ? plan->rounds : 1;
    uint64_t seed = tu_test_seed();
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned long n = 1; n <= plan->calls; n++)
            for (int e = 0; e < nerrs; e++)
                for (int m = 0; m < nmodes; m++) {
                    struct tu_fault f = {
                        .kinds = plan->kinds, .nth = n, .calls = plan->calls,
                        .err = errs[e], .mode = modes[m], .round = r,
                        .seed = tu_mix64(seed ^ plan->salt ^ (n * 0x100000001b3ull) ^
                                         ((uint64_t)r << 48) ^ ((uint64_t)(e * 8 + m) << 40)),
                    };
                    snprintf(f.what, sizeof f.what,
                             "%s (%s) at call %lu of %lu (round %u, LRVM_TEST_SEED=%" PRIu64 ")",
                             fault_name(f.mode), strerror(f.err), n, plan->calls, r, seed);
                    run(arg, &f);
                }
}

void tu_fault_arm(const struct tu_fault *f)
{
    lrvm__io_powercut_seed(f->seed);
    /* A count (nth 0) keeps only the flag that says whose calls count. */
    lrvm__io_inject(f->kinds, f->nth, f->err, f->nth == 0 ? f->mode & LRVM__IO_SYNCER : f->mode);
}

unsigned long tu_fault_calls(void)
{
    return lrvm__io_calls();
}

void tu_fault_disarm(void)
{
    lrvm__io_inject(0, 0, 0, 0);
}

void tu_fault_died(const struct tu_fault *f, int status)
{
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "%s: the process did not die there (status 0x%x, exit code %d)", f->what,
                  status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ------------------------------------------------------ the crash states */

/* Make DIR hold exactly the files of SNAP (DIR made when missing). */
static void restore_dir(const char *dir, const char *snap)
{
    tu_rmrf(dir);
    ck_assert_msg(mkdir(dir, 0700) == 0 && copy_dir(snap, dir, 1) == 0,
                  "cannot restore %s", dir);
}

unsigned long tu_crash_states(const char *dir, unsigned long nth, unsigned long max,
                              void (*op)(void *arg),
                              void (*check)(void *arg, const char *what), void *arg,
                              uint64_t *count_out)
{
    char *scratch = tu_tmpdir(), record[4200], snap[4200];
    snprintf(record, sizeof record, "%s/record", scratch);
    snprintf(snap, sizeof snap, "%s/snap", scratch);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        lrvm__io_powercut_record(record);
        lrvm__io_inject(LRVM__IO_SYNC, nth, EIO, LRVM__IO_POWERCUT);
        op(arg);
        _exit(0);                               /* fewer than NTH syncs */
    }
    int st = tu_wait(pid);
    unsigned long checked = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        tu_rmrf(scratch);
        free(scratch);
        return 0;
    }
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "the operation failed before the power cut at sync call %lu (status %#x)",
                  nth, st);
    struct lrvm__crash_states *cs = lrvm__io_crash_states(record);
    ck_assert_msg(cs != NULL, "no record of the power cut at sync call %lu", nth);
    struct stat sb;
    int had_dir = stat(dir, &sb) == 0;
    ck_assert(mkdir(snap, 0700) == 0 && (!had_dir || copy_dir(dir, snap, 1) == 0));
    uint64_t count = lrvm__io_crash_states_count(cs);
    if (count_out != NULL)
        *count_out = count;
    int sampled = count > max;
    uint64_t n = sampled ? max : count, seed = tu_test_seed();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t index = sampled ? tu_mix64(seed ^ (nth << 32) ^ i) : i;
        if (had_dir)
            restore_dir(dir, snap);
        else
            tu_rmrf(dir);
        ck_assert_msg(lrvm__io_crash_state_make(cs, index, sampled) == 0,
                      "cannot make crash state %" PRIu64, index);
        char what[200];
        snprintf(what, sizeof what, "power cut at sync call %lu, crash state %" PRIu64
                 " of %" PRIu64 "%s (%zu unsynced changes), LRVM_TEST_SEED=%" PRIu64,
                 nth, index, count, sampled ? " (sampled)" : "",
                 lrvm__io_crash_states_changes(cs), seed);
        check(arg, what);
        checked++;
    }
    if (had_dir)
        restore_dir(dir, snap);
    lrvm__io_crash_states_free(cs);
    tu_rmrf(scratch);
    free(scratch);
    return checked;
}

/* ------------------------------------------------------ the trackers */

/* LRVM_TEST_AUTO=mprotect: LRVM_TRACK_AUTO takes the mprotect tracker
 * where the kernel offers the userfaultfd one too, so that the suites run
 * on both (tests/mprotect.sh); LRVM_TEST_NO_UFFD=1: every suite runs as
 * on a kernel without it (LRVM_TRACK_UFFD refused). */
__attribute__((constructor)) static void tu_tracker_env(void)
{
    const char *e = getenv("LRVM_TEST_NO_UFFD");
    if (e != NULL && strcmp(e, "1") == 0)
        lrvm__uffd_disabled = 1;
    e = getenv("LRVM_TEST_AUTO");
    if (e != NULL && strcmp(e, "mprotect") == 0)
        lrvm__track_auto_mprotect = 1;
}

int tu_uffd_offered(void)
{
    static int offered = -1;
    if (offered < 0) {
        char *dir = tu_tmpdir();
        lrvm_options_t o = { .tracking = LRVM_TRACK_UFFD };
        lrvm_t *s;
        offered = lrvm_open(dir, &o, &s) == 0;
        if (offered && lrvm_close(s) != 0)
            abort();
        tu_rmrf(dir);
        free(dir);
    }
    return offered;
}

int tu_auto_tracker(void)
{
    static int tracker;
    if (tracker == 0) {
        char *dir = tu_tmpdir();
        lrvm_t *s;
        lrvm_stats_t st;
        if (lrvm_open(dir, NULL, &s) != 0 || lrvm_stats(s, &st) != 0 || lrvm_close(s) != 0)
            abort();
        tu_rmrf(dir);
        free(dir);
        tracker = st.tracking;
    }
    return tracker;
}
