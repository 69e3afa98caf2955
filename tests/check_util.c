/*
 * check_util.c -- the tools, run as programs.
 *
 * lrvmutl on stores left by crashed children: what it reports, that info,
 * verify and dump write nothing, that a damaged log is named and left
 * alone, and that recover (killed or not) leaves a store that opens with
 * every committed transaction. lrvm-crashtest: short runs in each mode
 * pass, and its check catches a write the worker leaves undeclared.
 * lrvm-bench: a --quick run reports every workload, floor, section and
 * target, --plot leaves or draws its plot, and --only runs the parts
 * named and no other; the stall part runs when named, and a run without
 * --only leaves it and the large part out (its figures are not checked
 * against speeds: speed targets live in the benchmark, not in tests). The
 * kv example (legacy C on the heap) keeps its table whole through kills.
 *
 * The tools are found through $LRVMUTL, $LRVM_CRASHTEST, $LRVM_BENCH and
 * $LRVM_KV (make check sets them), else under tools/ or ../tools/.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEG_SIZE ((size_t)64 << 10)
#define NTX      20u

static const char *find_tool(const char *env_name, const char *here, const char *up)
{
    const char *env = getenv(env_name);
    if (env != NULL && env[0] != '\0')
        return env;
    return access(here, X_OK) == 0 ? here : up;
}

static const char *tool(void)
{
    return find_tool("LRVMUTL", "tools/lrvmutl", "../tools/lrvmutl");
}

static const char *crashtest(void)
{
    return find_tool("LRVM_CRASHTEST", "tools/lrvm-crashtest", "../tools/lrvm-crashtest");
}

static const char *bench(void)
{
    return find_tool("LRVM_BENCH", "tools/lrvm-bench", "../tools/lrvm-bench");
}

static const char *kv(void)
{
    return find_tool("LRVM_KV", "examples/kv", "../examples/kv");
}

/* What a run of the tool printed (stdout and stderr, interleaved) and its
 * exit status (-1: killed by a signal). */
struct run {
    int    status;
    char   out[1 << 16];
    size_t len;
};

/* Run ARGV (ARGV[0] the program, NULL-terminated), its standard output
 * into the new file STDOUT_PATH unless that is NULL. */
static void run_argv_to(struct run *r, const char *const *argv, const char *stdout_path)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int out = p[1];
        if (stdout_path != NULL &&
            (out = open(stdout_path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0)
            _exit(127);
        dup2(out, STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    r->len = 0;
    ssize_t n;
    while ((n = read(p[0], r->out + r->len, sizeof r->out - 1 - r->len)) > 0)
        r->len += (size_t)n;
    r->out[r->len] = '\0';
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    ck_assert_msg(!(WIFEXITED(st) && WEXITSTATUS(st) == 127), "cannot run %s", argv[0]);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void run_argv(struct run *r, const char *const *argv)
{
    run_argv_to(r, argv, NULL);
}

/* lrvmutl [CMD [DIR [EXTRA]]] */
static void run_tool(struct run *r, const char *cmd, const char *dir, const char *extra)
{
    const char *argv[] = { tool(), cmd, dir, extra, NULL };
    run_argv(r, argv);
}

#define ck_assert_output_has(r, text)                                                  \
    ck_assert_msg(strstr((r)->out, (text)) != NULL, "no \"%s\" in the output:\n%s", (text), \
                  (r)->out)

/* Child: commit NTX flushing transactions (transaction i writes i at the
 * word i*64 of segment "a"), then die as a crash does, without close. */
static void build_child(void *arg)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    void *base;
    lrvm_tx_t *tx;
    if (lrvm_open(arg, &o, &s) != 0 || lrvm_map(s, "a", SEG_SIZE, &base) != 0)
        _exit(2);
    uint64_t *words = base;
    for (uint64_t i = 1; i <= NTX; i++) {
        if (lrvm_begin(s, 1, &base, &tx) != 0 || lrvm_set_range(tx, &words[i * 64], 8) != 0)
            _exit(3);
        words[i * 64] = i;
        if (lrvm_commit(tx, 0) != 0)
            _exit(4);
    }
    kill(getpid(), SIGKILL);
}

static char *crashed_store(void)
{
    char *dir = tu_tmpdir();
    int st = tu_in_child(build_child, dir);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);
    return dir;
}

struct snapshot {
    unsigned char *log, *seg;
    size_t         log_len, seg_len;
};

static void snap(struct snapshot *s, const char *dir)
{
    s->log = tu_read_whole(tu_path(dir, LRVM__LOG_NAME), &s->log_len);
    s->seg = tu_read_whole(tu_path(dir, "a.seg"), &s->seg_len);
}

/* The store's files are byte for byte what they were at S. */
static void assert_unchanged(struct snapshot *s, const char *dir, const char *after)
{
    struct snapshot now;
    snap(&now, dir);
    ck_assert_msg(now.log_len == s->log_len && memcmp(now.log, s->log, s->log_len) == 0,
                  "lrvm.log changed after %s", after);
    ck_assert_msg(now.seg_len == s->seg_len && memcmp(now.seg, s->seg, s->seg_len) == 0,
                  "a.seg changed after %s", after);
    free(now.log);
    free(now.seg);
}

static void snap_free(struct snapshot *s)
{
    free(s->log);
    free(s->seg);
}

/* Open DIR with lrvm and check that it holds transactions 1..NTX. */
static void assert_all_committed(const char *dir)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    uint64_t *words = tu_map(s, "a", SEG_SIZE);
    for (uint64_t i = 1; i <= NTX; i++)
        ck_assert_uint_eq(words[i * 64], i);
    ck_assert_int_eq(lrvm_close(s), 0);
}

/* ------------------------------------------------------------ tests */

START_TEST(test_util_usage)
{
    struct run r;
    run_tool(&r, NULL, NULL, NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "usage: lrvmutl");
    run_tool(&r, "--help", NULL, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_output_has(&r, "verify DIR");
    run_tool(&r, "frobnicate", "/tmp", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "unknown command: frobnicate");
    run_tool(&r, "info", "/tmp", "--data");
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "unexpected argument: --data");
}
END_TEST

/* A directory that is no store is said to be one, and recover does not
 * make one of it (lrvm_open would). */
START_TEST(test_util_not_a_store)
{
    static const char *const cmds[] = { "info", "verify", "dump", "recover", "truncate" };
    char *dir = tu_tmpdir();
    struct run r;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        run_tool(&r, cmds[i], dir, NULL);
        ck_assert_msg(r.status == 2, "%s: status %d", cmds[i], r.status);
        ck_assert_output_has(&r, "not an lrvm store");
        ck_assert_int_eq(tu_file_size(tu_path(dir, LRVM__LOG_NAME)), -1);
    }
    run_tool(&r, "info", tu_path(dir, "missing"), NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "No such file or directory");
    tu_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_util_info_verify_dump_after_crash_write_nothing)
{
    char *dir = crashed_store();
    struct snapshot before;
    struct run r;
    snap(&before, dir);

    run_tool(&r, "info", dir, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_output_has(&r, "format 3, generation 1");
    ck_assert_output_has(&r, "20 complete transactions (numbers 1 to 20)");
    ck_assert_output_has(&r, "the scan stopped at offset");
    /* Segment a: the file's size, 20 ranges of 8 bytes named by the log. */
    char line[128];
    snprintf(line, sizeof line, "\n  %-24s %16zu %12u %16u\n", "a", SEG_SIZE, NTX, 8 * NTX);
    ck_assert_output_has(&r, line);
    assert_unchanged(&before, dir, "info");

    run_tool(&r, "verify", dir, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_output_has(&r, "ok: 20 complete transactions");
    assert_unchanged(&before, dir, "verify");

    run_tool(&r, "dump", dir, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_output_has(&r, "record at 4096: transaction 1 part 0 (commit)");
    ck_assert_output_has(&r, "    a off 512 len 8\n");
    ck_assert_output_has(&r, "    a off 10240 len 8\n");           /* transaction 20 */
    ck_assert_output_has(&r, "20 records, 20 ranges, 20 complete transactions");
    run_tool(&r, "dump", dir, "--data");
    ck_assert_int_eq(r.status, 0);
    ck_assert_output_has(&r, "    a off 1024 len 8  0200000000000000\n");
    assert_unchanged(&before, dir, "dump");

    snap_free(&before);
    assert_all_committed(dir);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

START_TEST(test_util_recover_and_truncate)
{
    static const char *const cmds[] = { "recover", "truncate" };
    for (size_t i = 0; i < 2; i++) {
        char *dir = crashed_store();
        struct run r;
        run_tool(&r, cmds[i], dir, NULL);
        ck_assert_msg(r.status == 0, "%s: status %d:\n%s", cmds[i], r.status, r.out);
        ck_assert_output_has(&r, "20 transactions replayed");
        /* Applied to the segment file itself, and the log emptied. */
        uint64_t w;
        ck_assert_int_eq(tu_read(tu_path(dir, "a.seg"), &w, 8, 20 * 64 * 8), 0);
        ck_assert_uint_eq(w, 20);
        run_tool(&r, "info", dir, NULL);
        ck_assert_int_eq(r.status, 0);
        ck_assert_output_has(&r, "first transaction number 21");
        ck_assert_output_has(&r, "0 complete transactions");
        assert_all_committed(dir);
        tu_rmrf(dir);
        free(dir);
    }
}
END_TEST

/* A record with a valid checksum that names bytes past its segment, or a
 * segment that is gone: verify names the record and fails; recover
 * refuses, and neither changes a byte. */
START_TEST(test_util_damaged_log_is_named_and_left_alone)
{
    char *dir = crashed_store();
    struct run r;
    /* Transaction 8 is the first to write past 4 KiB (its word is bytes
     * 4096..4103): shrink the segment under it, and find its record. */
    run_tool(&r, "dump", dir, NULL);
    const char *at = strstr(r.out, ": transaction 8 part 0");
    ck_assert_ptr_nonnull(at);
    while (at > r.out && at[-1] != ' ')
        at--;
    char named[64];
    snprintf(named, sizeof named, "record at offset %" PRIu64 " ", (uint64_t)strtoull(at, NULL, 10));
    ck_assert_int_eq(truncate(tu_path(dir, "a.seg"), 4096), 0);
    struct snapshot before;
    snap(&before, dir);
    run_tool(&r, "verify", dir, NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_output_has(&r, named);
    ck_assert_output_has(&r, "past the end of its segment file");
    ck_assert_output_has(&r, "LRVM_ECORRUPT");
    run_tool(&r, "info", dir, NULL);
    ck_assert_int_eq(r.status, 1);
    run_tool(&r, "recover", dir, NULL);
    ck_assert_int_eq(r.status, 1);
    assert_unchanged(&before, dir, "verify, info and recover of a damaged log");
    snap_free(&before);

    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    ck_assert_int_eq(lrvm_open(dir, &o, &s), LRVM_ECORRUPT);

    ck_assert_int_eq(unlink(tu_path(dir, "a.seg")), 0);
    run_tool(&r, "verify", dir, NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_output_has(&r, "a segment file that does not exist");
    tu_rmrf(dir);
    free(dir);
}
END_TEST

/* While a process has the store open, info reads it and says so; recover
 * fails with the busy error instead of waiting or replaying under it. */
START_TEST(test_util_store_open_elsewhere)
{
    char *dir = crashed_store();
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    struct run r;
    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    run_tool(&r, "info", dir, NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_output_has(&r, "open in another process");
    run_tool(&r, "recover", dir, NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_output_has(&r, lrvm_strerror(LRVM_EBUSY));
    ck_assert_int_eq(lrvm_close(s), 0);
    assert_all_committed(dir);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

/* A store whose log takes recovery a tenth of a second or so: BIG_TXS
 * no-flush transactions, each writing 4 words of segment "b" picked by
 * xorshift64 from a fixed seed (the word gets the transaction's number). */
#define BIG_TXS   200000u
#define BIG_WORDS ((size_t)1 << 17)         /* a 1 MiB segment */

static void big_history(uint64_t *words)
{
    uint64_t x = 42;
    for (uint64_t i = 1; i <= BIG_TXS; i++)
        for (int k = 0; k < 4; k++)
            words[tu_rand(&x) % BIG_WORDS] = i;
}

static void build_big_child(void *arg)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = (size_t)1 << 30 };
    lrvm_t *s;
    void *base;
    lrvm_tx_t *tx;
    if (lrvm_open(arg, &o, &s) != 0 || lrvm_map(s, "b", BIG_WORDS * 8, &base) != 0)
        _exit(2);
    uint64_t *words = base, x = 42;
    for (uint64_t i = 1; i <= BIG_TXS; i++) {
        if (lrvm_begin(s, 1, &base, &tx) != 0)
            _exit(3);
        for (int k = 0; k < 4; k++) {
            uint64_t *w = &words[tu_rand(&x) % BIG_WORDS];
            if (lrvm_set_range(tx, w, 8) != 0)
                _exit(3);
            *w = i;
        }
        if (lrvm_commit(tx, LRVM_NO_FLUSH) != 0)
            _exit(4);
    }
    if (lrvm_flush(s) != 0)
        _exit(5);
    kill(getpid(), SIGKILL);
}

static void assert_big_committed(const char *dir, const char *what)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    uint64_t *want = calloc(BIG_WORDS, 8);
    ck_assert_ptr_nonnull(want);
    big_history(want);
    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    const uint64_t *got = tu_map(s, "b", BIG_WORDS * 8);
    for (size_t k = 0; k < BIG_WORDS; k++)
        ck_assert_msg(got[k] == want[k], "%s: word %zu is %" PRIu64 ", transaction %" PRIu64
                      " wrote it last", what, k, got[k], want[k]);
    ck_assert_int_eq(lrvm_close(s), 0);
    free(want);
}

/* Start lrvmutl recover on DIR, kill it after DELAY_US (never, if 0);
 * return its wait status. */
static int recover_killed_after(const char *dir, long delay_us)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        execl(tool(), tool(), "recover", dir, (char *)NULL);
        _exit(127);
    }
    if (delay_us > 0) {
        struct timespec ts = { delay_us / 1000000, delay_us % 1000000 * 1000 };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* recover killed at moments spread over a whole run of it: every death
 * leaves a store that verifies and, at last, opens with all of its
 * transactions. */
START_TEST(test_util_recover_killed)
{
    char *dir = tu_tmpdir(), *copy = tu_tmpdir();
    int st = tu_in_child(build_big_child, dir);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);

    /* How long a whole recover takes, to spread the kills over it. */
    ck_assert_int_eq(tu_copy_dir(dir, copy), 0);
    double t0 = seconds();
    st = recover_killed_after(copy, 0);
    long whole_us = (long)((seconds() - t0) * 1e6);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dry run: status 0x%x", st);
    assert_big_committed(copy, "dry run");

    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0x757469u) | 1;
    int killed = 0;
    for (int round = 0; round < 12; round++) {
        char what[96];
        snprintf(what, sizeof what, "round %d (LRVM_TEST_SEED=%" PRIu64 ")", round, seed);
        /* Early in the run first (a later dry run may be quicker), then
         * anywhere in it. */
        long delay = round < 4 ? whole_us * (round + 1) / 16
                               : 1 + (long)(tu_rand(&rng) % (uint64_t)whole_us);
        st = recover_killed_after(dir, delay);
        ck_assert_msg(WIFSIGNALED(st) || WEXITSTATUS(st) == 0, "%s: recover exited with %d",
                      what, WEXITSTATUS(st));
        killed += WIFSIGNALED(st);
        struct run r;
        run_tool(&r, "verify", dir, NULL);
        ck_assert_msg(r.status == 0, "%s: verify:\n%s", what, r.out);
        if (WIFEXITED(st))
            break;                  /* recovered: nothing left to interrupt */
    }
    ck_assert_int_ge(killed, 1);
    assert_big_committed(dir, "after the killed recovers");
    tu_rmrf(copy);
    tu_rmrf(dir);
    free(copy);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------ lrvm-crashtest */

START_TEST(test_crashtest_each_mode_passes)
{
    static const char *const modes[] = { "explicit", "auto", "ambient", "mixed" };
    char *base = tu_tmpdir(), seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, tu_test_seed());
    for (size_t i = 0; i < 4; i++) {
        const char *argv[] = { crashtest(), "--rounds", "4", "--max-delay-ms", "40", "--mode",
                               modes[i], "--seed", seed, "--dir", base, NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 0, "%s: status %d:\n%s", modes[i], r.status, r.out);
        ck_assert_output_has(&r, "4 rounds passed");
        ck_assert_output_has(&r, "steps of the history verified");
    }
    /* Several histories at once, one a thread: their commits meet in
     * group commits. */
    for (size_t i = 0; i < 2; i++) {
        const char *argv[] = { crashtest(), "--rounds", "4", "--max-delay-ms", "40", "--mode",
                               modes[i], "--threads", "3", "--seed", seed, "--dir", base, NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 0, "%s, 3 threads: status %d:\n%s", modes[i], r.status,
                      r.out);
        ck_assert_output_has(&r, "3 histories at once");
        ck_assert_output_has(&r, "4 rounds passed");
    }
    /* Threads that share a segment in shared transactions. */
    {
        const char *argv[] = { crashtest(), "--rounds", "4", "--max-delay-ms", "40", "--mode",
                               "explicit", "--threads", "4", "--shared", "--seed", seed,
                               "--dir", base, NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 0, "shared: status %d:\n%s", r.status, r.out);
        ck_assert_output_has(&r, "4 histories at once sharing segment b");
        ck_assert_output_has(&r, "4 rounds passed");
    }
    /* Threads that share one heap, each in shared transactions: the
     * heap's words and caches pass between them. */
    {
        const char *argv[] = { crashtest(), "--rounds", "4", "--max-delay-ms", "40", "--mode",
                               "explicit", "--threads", "4", "--shared", "--heap", "--seed",
                               seed, "--dir", base, NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 0, "shared heap: status %d:\n%s", r.status, r.out);
        ck_assert_output_has(&r, "4 histories at once sharing heap h");
        ck_assert_output_has(&r, "4 rounds passed");
    }
    /* Histories on persistent heaps: lrvm_malloc and lrvm_free in every
     * step, in each mode, and two heaps at once. */
    for (size_t i = 0; i < 5; i++) {
        const char *argv[] = { crashtest(), "--heap", "--rounds", "4", "--max-delay-ms", "40",
                               "--mode", modes[i % 4], "--threads", i == 4 ? "2" : "1",
                               "--seed", seed, "--dir", base, NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 0, "%s, heap: status %d:\n%s", modes[i % 4], r.status, r.out);
        ck_assert_output_has(&r, "on persistent heaps");
        ck_assert_output_has(&r, "4 rounds passed");
    }
    /* The automatic modes on the mprotect tracker too (the default is
     * the userfaultfd tracker where the kernel offers it). */
    for (size_t i = 1; i < 4; i++) {
        const char *argv[] = { crashtest(), "--rounds", "4", "--max-delay-ms", "40", "--mode",
                               modes[i], "--tracker", "mprotect", "--seed", seed, "--dir", base,
                               NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 0, "%s, mprotect: status %d:\n%s", modes[i], r.status, r.out);
        ck_assert_output_has(&r, "(mprotect tracker)");
        ck_assert_output_has(&r, "4 rounds passed");
    }
    /* Pages given back every few steps (resident_limit 1 MiB), in each
     * mode, on both automatic trackers, and with threads. */
    static const struct {
        const char *mode, *tracker, *threads;
    } limited[] = {
        { "explicit", "auto", "1" }, { "auto", "auto", "1" }, { "ambient", "auto", "1" },
        { "mixed", "auto", "1" }, { "auto", "mprotect", "1" }, { "ambient", "mprotect", "1" },
        { "mixed", "mprotect", "1" }, { "explicit", "auto", "3" }, { "auto", "auto", "3" },
    };
    for (size_t i = 0; i < sizeof limited / sizeof limited[0]; i++) {
        const char *mode = limited[i].mode;
        const char *argv[] = { crashtest(), "--rounds", "4", "--max-delay-ms", "60",
                               "--resident-limit", "1048576", "--mode", mode, "--tracker",
                               limited[i].tracker, "--threads", limited[i].threads, "--seed",
                               seed, "--dir", base, NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 0, "%s, %s tracker, %s threads, resident limit: status %d:\n%s",
                      mode, limited[i].tracker, limited[i].threads, r.status, r.out);
        ck_assert_output_has(&r, "resident_limit 1048576");
        ck_assert_output_has(&r, "4 rounds passed");
    }
    /* A clean run removes its store. */
    ck_assert_int_eq(rmdir(base), 0);
    free(base);
}
END_TEST

/* The check is not blind: a worker that leaves a range of every 7th step
 * undeclared (explicit mode) loses writes at the kill, and the run fails
 * naming the byte and keeping the store. */
START_TEST(test_crashtest_catches_an_undeclared_write)
{
    /* On segments, on a heap (the new block's bytes undeclared), on a
     * segment that three threads share, and on a heap they share. */
    static const char *const variant[4][5] = {
        { NULL }, { "--heap", NULL }, { "--threads", "3", "--shared", NULL },
        { "--threads", "3", "--shared", "--heap", NULL },
    };
    for (int v = 0; v < 4; v++) {
        char *base = tu_tmpdir();
        const char *argv[] = { crashtest(), "--rounds", "20", "--max-delay-ms", "100", "--mode",
                               "explicit", "--undeclared", "--seed", "7", "--dir", base,
                               variant[v][0], variant[v][1], variant[v][2], variant[v][3],
                               NULL };
        struct run r;
        run_argv(&r, argv);
        ck_assert_msg(r.status == 1, "variant %d: status %d:\n%s", v, r.status, r.out);
        ck_assert_output_has(&r, "not a prefix of the history");
        ck_assert_output_has(&r, "the store is kept in");
        tu_rmrf(base);
        free(base);
    }
}
END_TEST

START_TEST(test_crashtest_usage)
{
    const char *bad_mode[] = { crashtest(), "--mode", "sometimes", NULL };
    const char *undeclared_auto[] = { crashtest(), "--undeclared", NULL };
    const char *no_rounds[] = { crashtest(), "--rounds", "0", NULL };
    const char *threads_ambient[] = { crashtest(), "--threads", "2", "--mode", "ambient", NULL };
    const char *too_many[] = { crashtest(), "--threads", "17", NULL };
    const char *bad_tracker[] = { crashtest(), "--tracker", "signals", NULL };
    const char *shared_auto[] = { crashtest(), "--threads", "2", "--shared", NULL };
    struct run r;
    run_argv(&r, bad_mode);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "explicit, auto, ambient or mixed");
    run_argv(&r, undeclared_auto);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "--undeclared needs --mode explicit");
    run_argv(&r, no_rounds);
    ck_assert_int_eq(r.status, 2);
    run_argv(&r, threads_ambient);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "--threads needs --mode explicit or auto");
    run_argv(&r, too_many);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "--threads: 1 to 16");
    run_argv(&r, bad_tracker);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "auto, uffd or mprotect");
    run_argv(&r, shared_auto);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "--shared needs --mode explicit");
}
END_TEST

/* ------------------------------------------------------------ lrvm-bench */

#define ck_assert_output_lacks(r, text)                                               \
    ck_assert_msg(strstr((r)->out, (text)) == NULL, "\"%s\" in the output:\n%s", (text), \
                  (r)->out)

/* The line floor runs on two CPUs: may this process use two? */
static int two_cpus(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 2;
}

/* The line floor's line and the bound it puts under a thread target, or
 * the word that it was not measured. */
static void assert_line_floor(const struct run *r)
{
    if (two_cpus()) {
        ck_assert_output_has(r, "  line floor (no lrvm): two threads on two CPUs, each doing "
                                "200 dependent steps");
        ck_assert_output_has(r, ": a line taken from the other CPU adds ");
        ck_assert_output_has(r, "    (one order in the log: while two threads' commits "
                                "alternate, each takes its place from the other's CPU; at "
                                "one thread's CPU ");
    } else {
        ck_assert_output_has(r, "  line floor (no lrvm): not measured");
    }
}

START_TEST(test_bench_only_runs_the_parts_named)
{
    char *base = tu_tmpdir();
    const char *heap_only[] = { bench(), "--quick", "--runs", "1", "--only", "heap",
                                "--dir", base, NULL };
    struct run r;
    run_argv(&r, heap_only);
    ck_assert_msg(r.status == 0, "status %d:\n%s", r.status, r.out);
    ck_assert_output_has(&r, "heap: per no-flush transaction");
    ck_assert_output_has(&r, "heap, C library: run 1/1");
    ck_assert_output_has(&r, "heap, shared, 2 threads: run 1/1");
    ck_assert_output_has(&r, "  shared heap: the same from T threads at once on one heap");
    ck_assert_output_has(&r, "  cold: the first window, from the heap as lrvm_heap_open leaves");
    ck_assert_output_has(&r, "heap shared explicit ops/s, 2 threads / 1 thread");
    assert_line_floor(&r);
    ck_assert_output_lacks(&r, "fault floor");
    ck_assert_output_lacks(&r, "write floor");
    ck_assert_output_lacks(&r, "small-tx");
    ck_assert_output_lacks(&r, "group commit");
    ck_assert_output_lacks(&r, "recovery");
    ck_assert_output_lacks(&r, "threads explicit tx/s");
    ck_assert_output_lacks(&r, "FAILED");
    ck_assert_int_eq(rmdir(base), 0);       /* the bench left nothing behind */
    free(base);

    const char *unknown[] = { bench(), "--only", "heap,nope", NULL };
    run_argv(&r, unknown);
    ck_assert_int_eq(r.status, 2);
    ck_assert_output_has(&r, "--only: no part named \"nope\"");
    const char *empty[] = { bench(), "--only", "", NULL };
    run_argv(&r, empty);
    ck_assert_int_eq(r.status, 2);
}
END_TEST

/* The stall part, which only --only runs: its section, both kinds of
 * commit with its truncations (3 with --quick), the floor beside the
 * flushed run (as many syncs as it made commits), and its target lines.
 * Nothing is checked against a speed or a latency. */
START_TEST(test_bench_stall_runs_when_named)
{
    char *base = tu_tmpdir();
    const char *stall_only[] = { bench(), "--quick", "--runs", "1", "--only", "stall",
                                 "--dir", base, NULL };
    struct run r;
    run_argv(&r, stall_only);
    ck_assert_msg(r.status == 0, "status %d:\n%s", r.status, r.out);
    ck_assert_output_has(&r, "stall: explicit mode, a 256 MiB segment, transactions of 64 "
                             "ranges of 64 bytes");
    ck_assert_output_has(&r, "truncate_threshold 8 MiB (--quick");
    ck_assert_output_has(&r, "stall flush: run 1/1");
    ck_assert_output_has(&r, "stall no-flush: run 1/1");
    char flushed_tx[32] = "";
    for (int f = 0; f < 3; f++) {
        static const char *const name[] = { "no-flush", "flush", "floor" };
        const char *row = strstr(r.out, f == 2 ? "\n  floor    1/1 " :
                                        f ? "\n  flush    1/1 " : "\n  no-flush 1/1 ");
        ck_assert_msg(row != NULL, "no %s row:\n%s", name[f], r.out);
        /* The row ends "tx trunc waits": the truncations are the
         * second field from the end; the waits depend on the disk. */
        char line[512];
        size_t len = strcspn(row + 1, "\n");
        ck_assert(len < sizeof line);
        memcpy(line, row + 1, len);
        line[len] = '\0';
        const char *field[32];
        int nf = 0;
        for (char *t = strtok(line, " "); t != NULL && nf < 32; t = strtok(NULL, " "))
            field[nf++] = t;
        if (f == 2) {
            /* The floor made as many syncs as the flushed run commits. */
            ck_assert_msg(strcmp(field[nf - 1], flushed_tx) == 0,
                          "the floor's %s syncs, the flushed run's %s commits",
                          field[nf - 1], flushed_tx);
            continue;
        }
        ck_assert_msg(nf >= 3 && strcmp(field[nf - 2], "3") == 0,
                      "not 3 truncations: %.*s", (int)len, row + 1);
        if (f == 1)
            snprintf(flushed_tx, sizeof flushed_tx, "%s", field[nf - 3]);
    }
    ck_assert_output_has(&r, "(the floor's worst overwrite + fdatasync in the same runs: ");
    ck_assert_output_has(&r, "stall worst lrvm_commit latency, flush (worst of 1 run)");
    ck_assert_output_has(&r, "stall worst lrvm_commit latency, no-flush (worst of 1 run)");
    ck_assert_output_has(&r, "stall sustained no-flush tx/s: ");
    ck_assert_output_lacks(&r, "large: a ");
    ck_assert_output_lacks(&r, "small-tx");
    ck_assert_output_lacks(&r, "FAILED");
    ck_assert_int_eq(rmdir(base), 0);       /* the bench left nothing behind */
    free(base);
}
END_TEST

/* Split LINE (changed in place) at commas into at most MAX fields;
 * returns how many. */
static int csv_split(char *line, char **field, int max)
{
    int n = 0;
    for (;;) {
        ck_assert_int_lt(n, max);
        field[n++] = line;
        char *comma = strchr(line, ',');
        if (comma == NULL)
            return n;
        *comma = '\0';
        line = comma + 1;
    }
}

/* A whole --quick run, one run of each measurement (about 10 s): every
 * workload of both modes and both kinds of commit has its CSV row, with
 * the pages it says it changes and an auto/floor ratio made from the
 * figures beside it; every other section and every target is printed;
 * and --plot leaves its data and script when gnuplot is missing (and
 * the script draws a PNG when gnuplot is there). Nothing is checked
 * against a speed. */
START_TEST(test_bench_quick_run_reports_every_part)
{
    const char *base = tu_dir;
    char csv_path[4200], png_path[4200];
    snprintf(csv_path, sizeof csv_path, "%s/rows.csv", base);
    snprintf(png_path, sizeof png_path, "%s/ns-per-page.png", base);
    const char *argv[] = { bench(), "--quick", "--runs", "1", "--csv", "--plot", png_path,
                           "--dir", base, NULL };
    /* Without gnuplot on its PATH, and with its plot files kept in BASE. */
    char *path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    char *tmpdir = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    setenv("TMPDIR", base, 1);
    struct run r;
    run_argv_to(&r, argv, csv_path);
    setenv("PATH", path, 1);
    if (tmpdir != NULL)
        setenv("TMPDIR", tmpdir, 1);
    else
        unsetenv("TMPDIR");

    /* Only the cold steps may fail, where the store's file system keeps
     * files in memory whatever it is told (tmpfs). */
    if (r.status != 0) {
        ck_assert_msg(r.status == 1 && strstr(r.out, "no cold figure can be measured here"),
                      "status %d:\n%s", r.status, r.out);
        const char *f = strstr(r.out, "\nFAILED runs");
        ck_assert_ptr_nonnull(f);
        for (f = strchr(f + 1, '\n'); f != NULL && strncmp(f, "\n  ", 3) == 0;
             f = strchr(f + 1, '\n')) {
            char *one = strndup(f + 1, strcspn(f + 1, "\n"));
            ck_assert_msg(strstr(one, ", cold: child failed") != NULL,
                          "a failure other than a cold step's: %s", one);
            free(one);
        }
    }

    static char csv[1 << 16];
    int fd = open(csv_path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t got = read(fd, csv, sizeof csv - 1);
    close(fd);
    ck_assert_int_gt(got, 0);
    csv[got] = '\0';
    const char *header = "workload,mode,commit,runs,runs_ok,tx_per_s_median,tx_per_s_min,"
                         "tx_per_s_max,ns_per_page_median,ns_per_page_min,ns_per_page_max,"
                         "pages_per_tx,log_bytes_per_tx,fsyncs_per_tx,truncations_per_run,"
                         "fault_floor,fault_floor_ns_per_page,ratio_to_fault_floor\n";
    ck_assert_msg(strncmp(csv, header, strlen(header)) == 0, "CSV header:\n%s", csv);
    static const struct { const char *name; double pages; } wl[] = {
        { "small-tx", 4 }, { "pages-1", 1 }, { "pages-16", 16 }, { "pages-256", 256 },
        { "seq-64", 64 },
    };
    /* Every workload in each mode: the two automatic trackers (uffd where
     * the kernel offers it) and explicit declarations. */
    static const char *const modes[] = { "mprotect", "explicit", "uffd" };
    int nmodes = tu_uffd_offered() ? 3 : 2;
    int rows = 0;
    for (const char *l = csv + strlen(header); *l; l = strchr(l, '\n') + 1)
        rows++;
    ck_assert_int_eq(rows, 5 * nmodes * 2);
    for (size_t w = 0; w < sizeof wl / sizeof wl[0]; w++)
        for (int m = 0; m < nmodes; m++)
            for (int c = 0; c < 2; c++) {
                char key[64], line[512], *f[32];
                snprintf(key, sizeof key, "\n%s,%s,%s,", wl[w].name, modes[m],
                         c ? "no-flush" : "flush");
                const char *at = strstr(csv, key);
                ck_assert_msg(at != NULL, "no CSV row %s", key + 1);
                size_t len = strcspn(at + 1, "\n");
                ck_assert_uint_lt(len, sizeof line);
                memcpy(line, at + 1, len);
                line[len] = '\0';
                ck_assert_int_eq(csv_split(line, f, 32), 18);
                ck_assert_str_eq(f[3], "1");                    /* runs */
                ck_assert_str_eq(f[4], "1");                    /* completed */
                ck_assert_msg(atof(f[5]) > 0, "%s: tx/s %s", key + 1, f[5]);
                ck_assert_msg(fabs(atof(f[11]) - wl[w].pages) < 0.01, "%s: pages/tx %s",
                              key + 1, f[11]);
                ck_assert_msg(atof(f[12]) > 0, "%s: log bytes/tx %s", key + 1, f[12]);
                /* A flushed commit syncs; a no-flush one only when its
                 * records overflow the log buffer (seq-64's 262 KB
                 * records fill the 1 MiB buffer every fourth commit). */
                if (c == 0)
                    ck_assert_msg(atof(f[13]) >= 1, "%s: fsyncs/tx %s", key + 1, f[13]);
                else
                    ck_assert_msg(atof(f[13]) < 1, "%s: fsyncs/tx %s", key + 1, f[13]);
                if (c == 1 && m != 1) {     /* a tracker, no-flush: against its floor */
                    double ns = atof(f[8]), floor_ns = atof(f[16]), ratio = atof(f[17]);
                    ck_assert_msg(ns > 0 && floor_ns > 0 && f[15][0] != '\0',
                                  "%s: ns/page %s, floor %s %s", key + 1, f[8], f[15], f[16]);
                    ck_assert_msg(fabs(ratio - ns / floor_ns) <= 0.002 * ratio + 0.001,
                                  "%s: ratio %s of %s / %s", key + 1, f[17], f[8], f[16]);
                } else {
                    ck_assert_str_eq(f[17], "");
                }
            }

    const char *sections[] = {
        "fault floor, ns/page median (min-max)", "random P=256", "contiguous P=64",
        "write floor: 128-byte in-place pwrite + fdatasync", "read floor: read()",
        "group commit: flushed small-tx", "heap: per no-flush transaction",
        "threads: no-flush small-tx", "threads explicit tx/s, 2 threads / 1 thread",
        "threads auto (", "CPU us/tx  cores", "threads floor (no lrvm): T threads at once",
        "explicit with the truncation held off (truncate_threshold 1024 MiB",
        "(one thread keeps ", "the CPU a transaction; at one thread's CPU a transaction, the ",
        "the CPU an operation; at one thread's CPU an operation, the ",
        "disk B/tx", "  disk floor (no lrvm): ", "(two threads wrote ",
        "threads    ops/s median (min-max)       / 1 thread CPU us/op  cores",
        "(with the truncation held off: 2 threads / 1 thread ",
        "(its floor's own here, pages/s, 2 threads / 1 thread: ",
        "recovery: lrvm_open of a store", "  64 KiB tx  warm   ", "  64 KiB tx  cold   ",
        "  small tx   warm   ", "  small tx   cold   ", "targets (from the medians",
        "mprotect ns/page, pages-256 no-flush / fault floor (copied, random P=256)",
        "flushed small-tx explicit tx/s / write floor ops/s",
        "flushed small-tx auto (",
        "(the most its floors allow here, per transaction a write floor op and 4 pages",
        "small-tx explicit log bytes/tx (no-flush run)",
        "small-tx auto (",
        "auto mode's tracker: ",
        "recovery MB/s / read floor MB/s, 64 KiB tx log, warm cache",
        "recovery MB/s / read floor MB/s, small tx log, cold cache",
    };
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        ck_assert_output_has(&r, sections[i]);
    assert_line_floor(&r);
    /* large and stall run only when --only names them. */
    ck_assert_output_lacks(&r, "large: a ");
    ck_assert_output_lacks(&r, "stall: explicit mode");
    ck_assert_output_lacks(&r, "large explicit");
    if (nmodes == 3) {
        ck_assert_output_has(&r, "uffd ns/page / mprotect ns/page, pages-16 no-flush");
        ck_assert_output_has(&r, "uffd floor: the copied batches");
        ck_assert_output_has(&r, "threads uffd captured pages/s, 2 threads / 1 thread");
        ck_assert_output_has(&r, "(the uffd floor's own here, 2 threads / 1 thread: ");
    }
    /* The threads floor: a row of pages/s measured for each count of
     * threads and each tracker that runs here, mprotect's first. */
    const char *fl = strstr(r.out, "  threads  floor     pages/s median (min-max)");
    ck_assert_msg(fl != NULL, "no threads floor table:\n%s", r.out);
    static const int counts[] = { 1, 2, 4, 8 };
    for (int k = 0; k < (nmodes == 3 ? 8 : 4); k++) {
        fl = strchr(fl, '\n') + 1;
        int threads;
        char kind[16];
        double pages;
        ck_assert_msg(sscanf(fl, "%d %15s %lf", &threads, kind, &pages) == 3 &&
                          threads == counts[k % 4] && pages > 0 &&
                          strcmp(kind, k < 4 ? "mprotect" : "uffd") == 0,
                      "threads floor row %d: %.80s", k, fl);
    }
    /* Explicit mode with the truncation held off: a row of tx/s for each
     * count of threads. */
    const char *held = strstr(r.out, "explicit with the truncation held off");
    ck_assert_msg(held != NULL, "no held-off table:\n%s", r.out);
    held = strchr(strchr(held, '\n') + 1, '\n') + 1;      /* past its header */
    for (int k = 0; k < 4; k++, held = strchr(held, '\n') + 1) {
        int threads;
        char mode[16];
        double txs;
        ck_assert_msg(sscanf(held, "%d %15s %lf", &threads, mode, &txs) == 3 &&
                          threads == counts[k] && txs > 0 && strcmp(mode, "explicit") == 0,
                      "held-off row %d: %.80s", k, held);
    }
    ck_assert_msg(strstr(r.out, "small-tx explicit no-flush tx/s / libpmemobj tx/s") ||
                      strstr(r.out, "libpmemobj small-tx: not measured"),
                  "neither a libpmemobj target nor why there is none:\n%s", r.out);

    /* The plot: its data has the three P of the pages workloads, every
     * figure measured, and its script draws into the file asked for. */
    const char *left = strstr(r.out, "no plot drawn (script and data left in ");
    ck_assert_msg(left != NULL, "%s", r.out);
    char dir[4200], data[4400], script[4400], cmd[9000];
    left += strlen("no plot drawn (script and data left in ");
    size_t dlen = strcspn(left, ")");
    ck_assert_uint_lt(dlen, sizeof dir);
    memcpy(dir, left, dlen);
    dir[dlen] = '\0';
    ck_assert_int_eq(strncmp(dir, base, strlen(base)), 0);
    snprintf(data, sizeof data, "%s/ns-per-page.dat", dir);
    snprintf(script, sizeof script, "%s/ns-per-page.gp", dir);
    FILE *df = fopen(data, "r");
    ck_assert_ptr_nonnull(df);
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof line, df));        /* the comment */
    for (int i = 0; i < 3; i++) {
        int p;
        double y[5];
        char uffd_col[32];
        ck_assert_ptr_nonnull(fgets(line, sizeof line, df));
        ck_assert_msg(sscanf(line, "%d %lf %31s %lf %lf %lf", &p, &y[0], uffd_col, &y[2], &y[3],
                             &y[4]) == 6, "plot data: %s", line);
        y[1] = nmodes == 3 ? atof(uffd_col) : 1;    /* '?' where uffd did not run */
        ck_assert_int_eq(p, i == 0 ? 1 : i == 1 ? 16 : 256);
        for (int k = 0; k < 5; k++)
            ck_assert(y[k] > 0);
    }
    fclose(df);
    snprintf(cmd, sizeof cmd, "gnuplot '%s' 2>&1", script);
    if (system("command -v gnuplot >/dev/null") == 0) {
        ck_assert_int_eq(system(cmd), 0);
        unsigned char magic[8];
        ck_assert_int_eq(tu_read(png_path, magic, 8, 0), 0);
        ck_assert_int_eq(memcmp(magic, "\x89PNG\r\n\x1a\n", 8), 0);
    }
    free(path);
    free(tmpdir);
}
END_TEST

/* ------------------------------------------------------------ examples */

/* examples/kv loads keys k0, k1, ... one transaction each and is killed
 * part way, again and again: the table always checks, and holds exactly
 * the keys up to the last one committed. */
START_TEST(test_example_kv_survives_kills)
{
    char *base = tu_tmpdir(), store[4200];
    snprintf(store, sizeof store, "%s/store", base);
    struct run r;
    const char *set[] = { kv(), store, "set", "name", "lrvm", NULL };
    const char *get[] = { kv(), store, "get", "name", NULL };
    const char *chk[] = { kv(), store, "check", NULL };
    run_argv(&r, set);
    ck_assert_int_eq(r.status, 0);
    run_argv(&r, get);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "lrvm\n");

    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0x6b76u) | 1;
    long most = 0;
    /* Kills land 30 ms to 30 + WINDOW ms in; a round in which the loader
     * got no further (a slow start: a loaded machine, a sanitizer build)
     * doubles the window. */
    long window = 150;
    for (int round = 0; round < 6; round++) {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
            execl(kv(), kv(), store, "load", "1000000", (char *)NULL);
            _exit(127);
        }
        long ms = 30 + (long)(tu_rand(&rng) % (uint64_t)window);
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        ck_assert_msg(WIFSIGNALED(st), "round %d: kv load ended with status 0x%x", round, st);

        run_argv(&r, chk);
        ck_assert_msg(r.status == 0, "round %d (LRVM_TEST_SEED=%" PRIu64 "): %s", round, seed,
                      r.out);
        long keys = strtol(r.out + 4, NULL, 10) - 1;    /* "ok: N keys", less "name" */
        ck_assert_int_ge(keys, most);                   /* loads start over at k0 */
        if (keys == most && window < 4000)
            window *= 2;
        most = keys;
        if (keys == 0)
            continue;
        char last[32], next[32], want[64];
        snprintf(last, sizeof last, "k%ld", keys - 1);
        snprintf(next, sizeof next, "k%ld", keys);
        snprintf(want, sizeof want, "value of k%ld\n", keys - 1);
        const char *get_last[] = { kv(), store, "get", last, NULL };
        const char *get_next[] = { kv(), store, "get", next, NULL };
        run_argv(&r, get_last);
        ck_assert_int_eq(r.status, 0);
        ck_assert_str_eq(r.out, want);
        run_argv(&r, get_next);
        ck_assert_int_eq(r.status, 1);
    }
    ck_assert_int_gt(most, 0);
    run_argv(&r, get);
    ck_assert_str_eq(r.out, "lrvm\n");
    run_tool(&r, "info", store, NULL);                  /* lrvmutl knows a heap */
    ck_assert_int_eq(r.status, 0);
    ck_assert_output_has(&r, "a heap (format 4) mapped at 0x");
    ck_assert_output_has(&r, "its blocks check: ");
    run_tool(&r, "verify", store, NULL);
    ck_assert_int_eq(r.status, 0);
    /* A heap block's header overwritten in the file: verify says so. */
    uint64_t garbage = 0x123456789abcdef1ull;
    ck_assert_int_eq(tu_write(tu_path(store, "kv.seg"), &garbage, 8, 4104), 0);
    run_tool(&r, "verify", store, NULL);
    ck_assert_int_eq(r.status, 1);
    ck_assert_output_has(&r, "the heap in kv.seg fails its checks");
    run_tool(&r, "info", store, NULL);
    ck_assert_output_has(&r, "its blocks FAIL their checks");
    tu_rmrf(store);
    tu_rmrf(base);
    free(base);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tu_tcase("lrvmutl", 60);
    tcase_add_test(tc, test_util_usage);
    tcase_add_test(tc, test_util_not_a_store);
    tcase_add_test(tc, test_util_info_verify_dump_after_crash_write_nothing);
    tcase_add_test(tc, test_util_recover_and_truncate);
    tcase_add_test(tc, test_util_damaged_log_is_named_and_left_alone);
    tcase_add_test(tc, test_util_store_open_elsewhere);
    tcase_add_test(tc, test_util_recover_killed);
    suite_add_tcase(s, tc);

    tc = tu_tcase("crashtest", 60);
    tcase_add_test(tc, test_crashtest_each_mode_passes);
    tcase_add_test(tc, test_crashtest_catches_an_undeclared_write);
    tcase_add_test(tc, test_crashtest_usage);
    suite_add_tcase(s, tc);

    /* A quick run of every part takes 80 s in the sanitizer build on a
     * busy 2-core machine. */
    tc = tu_tcase("bench", 300);
    tcase_add_test(tc, test_bench_only_runs_the_parts_named);
    tcase_add_test(tc, test_bench_stall_runs_when_named);
    tcase_add_test(tc, test_bench_quick_run_reports_every_part);
    suite_add_tcase(s, tc);

    tc = tu_tcase("examples", 60);
    tcase_add_test(tc, test_example_kv_survives_kills);
    suite_add_tcase(s, tc);

    return tu_run_suite(s);
}
