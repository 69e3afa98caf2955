/*
 * check_io.c -- I/O failures, made with testutil's fault harness: EIO or
 * ENOSPC on the Nth io call of a commit, of a truncation and of lrvm_map. A failed commit returns the matching code
 * and leaves its transaction open (retry or abort), earlier commits stay
 * intact, the store stays usable, and nothing of the failed transaction is
 * found after a crash. "Crash" means a child process that dies of SIGKILL
 * without closing the store; it reports what it saw through a pipe.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "lrvm.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char cdir[4096];     /* the directory of the current case */
static int  tracking;       /* of the stores the test opens; setup resets it */

static void setup(void)
{
    snprintf(cdir, sizeof cdir, "%s/case", tu_dir);
    tracking = LRVM_TRACK_EXPLICIT;
}

static const int errs[2] = { EIO, ENOSPC };
static const int modes[2] = { LRVM__IO_ONCE, LRVM__IO_ONCE | LRVM__IO_TORN };

static int code_of(int err)
{
    return err == EIO ? LRVM_EIO : LRVM_ENOSPC;
}

static void disarm(void)
{
    tu_fault_disarm();
}

/* A plan over every io call that N counted: both errors, MODES. */
static struct tu_fault_plan plan_of(unsigned long n, const int *modes_of)
{
    return (struct tu_fault_plan){ .kinds = LRVM__IO_ALL, .calls = n, .errs = errs, .nerrs = 2,
                                   .modes = modes_of, .nmodes = 2 };
}

/* Index of the first byte of P[0..N) that is not C, or -1. */
static long first_diff(const char *p, int c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] != (unsigned char)c)
            return (long)i;
    return -1;
}

/* ------------------------------------------------------------ children */

static void die(void)
{
    kill(getpid(), SIGKILL);
    _exit(4);                       /* not reached */
}

/* ------------------------------------------------------------ scenarios */

/*
 * A scenario: a fresh store in cdir with log buffer BUF, segment "a" of
 * SEGSIZE bytes whose first LEN bytes hold the baseline (a flushed commit
 * of BASE), segment "b" of 4096 bytes with NOFLUSH no-flush commits after
 * the baseline (10 bytes of 'x', 'y', 'z' at 0, 100, 200). The transaction
 * under test writes NEW over a[0..LEN).
 */
#define BASE  'b'
#define NEW   'n'
#define THIRD 't'

struct scn {
    size_t buf, segsize, len;
    int    noflush;
};

static const struct scn small = { 0, 4096, 64, 0 };
static const struct scn large = { 4096, 65536, 65536, 0 };
static const struct scn pending = { 0, 4096, 64, 3 };

static int store_open(size_t buf, lrvm_t **s)
{
    lrvm_options_t o = { .tracking = tracking, .log_buffer_size = buf };
    return lrvm_open(cdir, &o, s);
}

/* Begin a transaction over BASEP that writes C over [off, off+len). */
static int begin_fill(lrvm_t *s, char *basep, size_t off, int c, size_t len, lrvm_tx_t **tx)
{
    int rc = lrvm_begin(s, 1, (void *const *)&basep, tx);
    if (rc < 0)
        return rc;
    if ((rc = lrvm_set_range(*tx, basep + off, len)) < 0) {
        lrvm_abort(*tx);
        return rc;
    }
    memset(basep + off, c, len);
    return 0;
}

/* A whole transaction; the commit's code. */
static int put(lrvm_t *s, char *basep, size_t off, int c, size_t len, int flags)
{
    lrvm_tx_t *tx;
    int rc = begin_fill(s, basep, off, c, len, &tx);
    if (rc < 0)
        return rc;
    if ((rc = lrvm_commit(tx, flags)) < 0)
        lrvm_abort(tx);
    return rc;
}

static const int nf_val[3] = { 'x', 'y', 'z' };

/* Build scenario SC in a fresh cdir; 0 or the first failing call's code. */
static int prepare(const struct scn *sc, lrvm_t **s, char **a, char **b)
{
    int rc;
    tu_rmrf(cdir);
    if ((rc = store_open(sc->buf, s)) < 0)
        return rc;
    if ((rc = lrvm_map(*s, "a", sc->segsize, (void **)a)) < 0 ||
        (rc = lrvm_map(*s, "b", 4096, (void **)b)) < 0 ||
        (rc = put(*s, *a, 0, BASE, sc->len, 0)) < 0)
        return rc;
    for (int i = 0; i < sc->noflush; i++)
        if ((rc = put(*s, *b, (size_t)i * 100, nf_val[i], 10, LRVM_NO_FLUSH)) < 0)
            return rc;
    return 0;
}

/* The io calls of the commit under test in scenario SC. */
static unsigned long measure_commit(const struct scn *sc)
{
    lrvm_t *s;
    char *a, *b;
    lrvm_tx_t *tx;
    ck_assert_int_eq(prepare(sc, &s, &a, &b), 0);
    ck_assert_int_eq(begin_fill(s, a, 0, NEW, sc->len, &tx), 0);
    struct tu_fault count = { .kinds = LRVM__IO_ALL };
    tu_fault_arm(&count);
    ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    unsigned long n = tu_fault_calls();
    disarm();
    ck_assert_int_eq(lrvm_close(s), 0);
    /* At least a write and a sync, or the commit cannot be durable. */
    ck_assert_uint_ge(n, 2);
    return n;
}

/* Reopen cdir and check what scenario SC must show after the failed
 * transaction: a[0..len) is C, b holds the no-flush commits. */
static void check_store(const struct scn *sc, int c, const char *what)
{
    lrvm_t *s;
    char *a, *b;
    int rc = store_open(sc->buf, &s);
    ck_assert_msg(rc == 0, "%s: reopen: %s", what, lrvm_strerror(rc));
    ck_assert_int_eq(lrvm_map(s, "a", sc->segsize, (void **)&a), 0);
    ck_assert_int_eq(lrvm_map(s, "b", 4096, (void **)&b), 0);
    long d = first_diff(a, c, sc->len);
    ck_assert_msg(d < 0, "%s: a[%ld] is '%c', expected '%c'", what, d, d < 0 ? 0 : a[d], c);
    for (int i = 0; i < sc->noflush; i++) {
        d = first_diff(b + i * 100, nf_val[i], 10);
        ck_assert_msg(d < 0, "%s: no-flush commit %d lost", what, i + 1);
    }
    ck_assert_int_eq(lrvm_close(s), 0);
}

/* ---------------------------------------------------- failing commits */

/*
 * N (measured, 2 here: the log write and its fdatasync) x {EIO, ENOSPC} x
 * {ONCE, ONCE|TORN} x {retry, abort}: 8N cases, each on a fresh store.
 */
static void commit_fails_case(void *arg, const struct tu_fault *f)
{
    (void)arg;
    for (int retry = 0; retry < 2; retry++) {
        char what[300];
        snprintf(what, sizeof what, "%s, then %s", f->what, retry ? "retry" : "abort");
        lrvm_t *s;
        char *a, *b;
        lrvm_tx_t *tx;
        ck_assert_int_eq(prepare(&small, &s, &a, &b), 0);
        ck_assert_int_eq(begin_fill(s, a, 0, NEW, small.len, &tx), 0);
        tu_fault_arm(f);
        int rc = lrvm_commit(tx, 0);
        disarm();
        ck_assert_msg(rc == code_of(f->err), "%s: commit returned %d (%s)", what, rc,
                      lrvm_strerror(rc));
        if (retry) {
            rc = lrvm_commit(tx, 0);
            ck_assert_msg(rc == 0, "%s: the retried commit returned %s", what, lrvm_strerror(rc));
            ck_assert_msg(first_diff(a, NEW, small.len) < 0, "%s: memory lost the new value", what);
            ck_assert_int_eq(lrvm_close(s), 0);
            check_store(&small, NEW, what);
        } else {
            rc = lrvm_abort(tx);
            ck_assert_msg(rc == 0, "%s: abort after the failed commit: %s", what, lrvm_strerror(rc));
            ck_assert_msg(first_diff(a, BASE, small.len) < 0,
                          "%s: abort did not restore the baseline", what);
            rc = put(s, a, 0, THIRD, small.len, 0);
            ck_assert_msg(rc == 0, "%s: the next commit returned %s", what, lrvm_strerror(rc));
            ck_assert_int_eq(lrvm_close(s), 0);
            check_store(&small, THIRD, what);
        }
    }
}

static void commit_fails_nth_call(void)
{
    struct tu_fault_plan plan = plan_of(measure_commit(&small), modes);
    tu_fault_each_call(&plan, commit_fails_case, NULL);
}

START_TEST(test_io_commit_fails_nth_call)
{
    commit_fails_nth_call();
}
END_TEST

/* The same in auto mode: the failed commit's pages were protected again
 * while its records went to disk; the retry, the abort and the stores
 * after it must still find them dirty, with their first before-images. */
START_TEST(test_io_auto_commit_fails_nth_call)
{
    tracking = LRVM_TRACK_AUTO;
    commit_fails_nth_call();
}
END_TEST

struct crash_case {
    const struct scn      *sc;
    const struct tu_fault *f;
    int                    abort;
};

/* Scenario, failing commit, optionally abort, then SIGKILL. Reports the
 * commit's code, and with abort: abort's code and whether memory shows
 * the baseline again (1). */
static void child_fail_commit(const void *arg)
{
    const struct crash_case *c = arg;
    lrvm_t *s;
    char *a, *b;
    lrvm_tx_t *tx;
    TU_CHILD_CHECK(prepare(c->sc, &s, &a, &b) == 0);
    TU_CHILD_CHECK(begin_fill(s, a, 0, NEW, c->sc->len, &tx) == 0);
    tu_fault_arm(c->f);
    tu_report(lrvm_commit(tx, 0));
    if (c->abort) {
        tu_report(lrvm_abort(tx));
        tu_report(first_diff(a, BASE, c->sc->len) < 0);
    }
    die();
}

struct crash_plan {
    const struct scn *sc;
    int               abort_from, abort_to;
};

static void crash_case(void *arg, const struct tu_fault *f)
{
    const struct crash_plan *p = arg;
    const struct scn *sc = p->sc;
    for (int ab = p->abort_from; ab <= p->abort_to; ab++) {
        char what[300];
        snprintf(what, sizeof what, "%s, %s", f->what, ab ? "abort, crash" : "crash");
        struct crash_case c = { sc, f, ab };
        int vals[3], nv;
        int st = tu_run_child(child_fail_commit, &c, vals, 3, &nv);
        int line = tu_child_failed_line(vals, nv);
        ck_assert_msg(line == 0, "%s: child check at line %d failed", what, line);
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "%s: child did not die of SIGKILL (status %#x)", what, st);
        ck_assert_msg(nv == (ab ? 3 : 1), "%s: child reported %d values", what, nv);
        ck_assert_msg(vals[0] == code_of(f->err), "%s: commit returned %d (%s)", what,
                      vals[0], lrvm_strerror(vals[0]));
        if (ab) {
            ck_assert_msg(vals[1] == 0, "%s: abort returned %s", what, lrvm_strerror(vals[1]));
            ck_assert_msg(vals[2] == 1, "%s: abort did not restore the baseline", what);
        }
        check_store(sc, BASE, what);
    }
}

/* Run the failing commit of scenario SC in a child that crashes after it,
 * for every n up to the measured number of calls, both errors, both
 * modes, and the given abort choices; then reopen: the baseline, never
 * the failed value. */
static void crash_cases(const struct scn *sc, int abort_from, int abort_to)
{
    struct crash_plan p = { sc, abort_from, abort_to };
    struct tu_fault_plan plan = plan_of(measure_commit(sc), modes);
    tu_fault_each_call(&plan, crash_case, &p);
}

/* N (measured, 2) x {EIO, ENOSPC} x {ONCE, ONCE|TORN} x {abort, no abort}
 * before the crash: 8N cases. */
START_TEST(test_io_commit_fails_nth_call_then_crash)
{
    crash_cases(&small, 0, 1);
}
END_TEST

/* A 64 KiB transaction through a 4 KiB log buffer, written in parts: N
 * (measured, 18 here: 16 spilled parts, the last write and the sync) x
 * {EIO, ENOSPC} x {ONCE, ONCE|TORN}: 4N cases; after the crash the
 * segment is entirely the baseline. */
START_TEST(test_io_large_tx_fails_nth_call_then_crash)
{
    crash_cases(&large, 0, 0);
}
END_TEST

/* The same in auto mode, with and without abort before the crash. */
START_TEST(test_io_auto_large_tx_fails_nth_call_then_crash)
{
    tracking = LRVM_TRACK_AUTO;
    crash_cases(&large, 0, 1);
}
END_TEST

/* Three no-flush commits, then a flushing commit that fails on its Nth
 * call: N (measured, 2 here: one write of all four, one sync) x {EIO,
 * ENOSPC} x {ONCE, ONCE|TORN}: 4N cases; after the crash the three are
 * there, the failed one is not. */
START_TEST(test_io_noflush_then_failed_commit_crash)
{
    crash_cases(&pending, 0, 0);
}
END_TEST

/*
 * Every call fails from the Nth on (the invalidation of the failed record
 * fails too, caveat C4): N (measured, 2) x {EIO, ENOSPC} x {ALWAYS,
 * ALWAYS|TORN}: 4N cases. The commit fails with the matching code, a
 * retry fails, lrvm_close returns and releases the store; after disarm
 * and reopen the earlier flushed commits are intact and the failed
 * transaction is all or nothing (its outcome is unknown by C4).
 */
static void always_failing_case(void *arg, const struct tu_fault *f)
{
    (void)arg;
    const char *what = f->what;
    lrvm_t *s;
    char *a, *b;
    lrvm_tx_t *tx;
    ck_assert_int_eq(prepare(&small, &s, &a, &b), 0);
    ck_assert_int_eq(put(s, b, 0, 'e', 10, 0), 0);     /* an earlier commit */
    ck_assert_int_eq(begin_fill(s, a, 0, NEW, small.len, &tx), 0);
    tu_fault_arm(f);
    int rc = lrvm_commit(tx, 0);
    ck_assert_msg(rc == code_of(f->err), "%s: commit returned %d (%s)", what, rc,
                  lrvm_strerror(rc));
    rc = lrvm_commit(tx, 0);
    ck_assert_msg(rc < 0, "%s: a retry succeeded while every call fails", what);
    (void)lrvm_close(s);          /* its code may be any of the I/O errors */
    disarm();

    rc = store_open(0, &s);
    ck_assert_msg(rc == 0, "%s: reopen: %s", what, lrvm_strerror(rc));
    ck_assert_int_eq(lrvm_map(s, "a", small.segsize, (void **)&a), 0);
    ck_assert_int_eq(lrvm_map(s, "b", 4096, (void **)&b), 0);
    ck_assert_msg(first_diff(b, 'e', 10) < 0, "%s: the earlier commit is lost", what);
    ck_assert_msg(first_diff(a, BASE, small.len) < 0 || first_diff(a, NEW, small.len) < 0,
                  "%s: the failed transaction is partly applied", what);
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_io_always_failing_commit)
{
    static const int always[2] = { LRVM__IO_ALWAYS, LRVM__IO_ALWAYS | LRVM__IO_TORN };
    struct tu_fault_plan plan = plan_of(measure_commit(&small), always);
    tu_fault_each_call(&plan, always_failing_case, NULL);
}
END_TEST

/* ---------------------------------------------------------- the syncer */

/*
 * No-flush commits of 1000 bytes fill a 4096-byte buffer: each that does
 * hands the records before it to the log's syncer, which writes and syncs
 * them. With that write or sync failing (EIO, ENOSPC), the records it
 * covered may be lost and cannot be written again, so the store fails
 * (lrvm.h C4): some later call reports the error, every call after it
 * LRVM_EFAILED, and a reopened store holds the flushed commit before and
 * a prefix of the no-flush ones. The syncer works in lockstep with the
 * commits, so its first write or sync after the baseline is the one that
 * fails.
 */
START_TEST(test_io_syncer_fails_the_store)
{
    static const struct {
        unsigned kind;
        int      err;
    } cases[] = {
        { LRVM__IO_SYNC, EIO }, { LRVM__IO_SYNC, ENOSPC },
        { LRVM__IO_WRITE, EIO }, { LRVM__IO_WRITE, ENOSPC },
    };
    for (size_t e = 0; e < sizeof cases / sizeof cases[0]; e++) {
        char what[100];
        snprintf(what, sizeof what, "the syncer's %s fails (%s)",
                 cases[e].kind == LRVM__IO_SYNC ? "sync" : "write", strerror(cases[e].err));
        lrvm_t *s;
        char *a, *b;
        lrvm__log_syncer_lockstep = 1;
        tu_rmrf(cdir);
        ck_assert_int_eq(store_open(4096, &s), 0);
        ck_assert_int_eq(lrvm_map(s, "a", 4096, (void **)&a), 0);
        ck_assert_int_eq(lrvm_map(s, "b", 16384, (void **)&b), 0);
        ck_assert_int_eq(put(s, a, 0, BASE, 64, 0), 0);
        struct tu_fault f = { .kinds = cases[e].kind, .nth = 1, .err = cases[e].err,
                              .mode = LRVM__IO_ONCE | LRVM__IO_SYNCER };
        tu_fault_arm(&f);
        int rc = 0, i, failed_at = -1;
        for (i = 0; i < 12 && rc == 0; i++)
            rc = put(s, b, (size_t)i * 1000, 'A' + i, 1000, LRVM_NO_FLUSH);
        failed_at = i - 1;
        if (rc == 0)
            rc = lrvm_flush(s);
        unsigned long calls = tu_fault_calls();
        disarm();
        ck_assert_msg(calls >= 1, "%s: the syncer made no such call", what);
        ck_assert_msg(rc == code_of(cases[e].err) || rc == LRVM_EFAILED,
                      "%s: the store went on (%s, commit %d)", what, lrvm_strerror(rc), failed_at);
        rc = put(s, a, 0, NEW, 64, 0);
        ck_assert_msg(rc == LRVM_EFAILED, "%s: a commit after it returned %s", what,
                      lrvm_strerror(rc));
        ck_assert_int_eq(lrvm_flush(s), LRVM_EFAILED);
        (void)lrvm_close(s);
        lrvm__log_syncer_lockstep = 0;

        ck_assert_msg((rc = store_open(4096, &s)) == 0, "%s: reopen: %s", what, lrvm_strerror(rc));
        ck_assert_int_eq(lrvm_map(s, "a", 4096, (void **)&a), 0);
        ck_assert_int_eq(lrvm_map(s, "b", 16384, (void **)&b), 0);
        ck_assert_msg(first_diff(a, BASE, 64) < 0, "%s: the flushed commit is lost", what);
        int k = 0;
        while (k < 12 && first_diff(b + k * 1000, 'A' + k, 1000) < 0)
            k++;
        for (int j = k; j < 12; j++)
            ck_assert_msg(first_diff(b + j * 1000, 0, 1000) < 0,
                          "%s: no-flush commit %d is there after %d is not", what, j, k);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/*
 * The syncer grows the log file ahead of the writer (zeros written and
 * their writeback waited for a step at a time, then synced). Flushed
 * commits of 64 KiB bring the writer near the end of a new log's first
 * megabyte, and past it; a fault hits the first step or a later one. A
 * failed write of the zeros (the disk full for a moment) costs nothing:
 * the writer asks again when it needs the room, and every commit
 * succeeds. A failed wait or sync may have been a commit's pages' failure
 * (io.c): the store fails, and keeps every commit that returned 0.
 */
START_TEST(test_io_syncer_growth_fails)
{
    static const struct {
        unsigned kind;
        int      err, fails_store;
        unsigned long nth;      /* 3: a later step of a growth (LOG_GROW_PACE) */
    } cases[] = {
        { LRVM__IO_WRITE, ENOSPC, 0, 1 },
        { LRVM__IO_WAIT, EIO, 1, 1 },
        { LRVM__IO_SYNC, EIO, 1, 1 },
        { LRVM__IO_WRITE, ENOSPC, 0, 3 },
        { LRVM__IO_WAIT, EIO, 1, 3 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char what[100];
        snprintf(what, sizeof what, "the syncer's growth: %s %lu fails (%s)",
                 cases[k].kind == LRVM__IO_WRITE ? "write" :
                 cases[k].kind == LRVM__IO_WAIT ? "wait" : "sync", cases[k].nth,
                 strerror(cases[k].err));
        lrvm_t *s;
        char *a;
        lrvm__log_syncer_lockstep = 1;
        tu_rmrf(cdir);
        ck_assert_int_eq(store_open(0, &s), 0);
        ck_assert_int_eq(lrvm_map(s, "a", 2 << 20, (void **)&a), 0);
        struct tu_fault f = { .kinds = cases[k].kind, .nth = cases[k].nth,
                              .err = cases[k].err, .mode = LRVM__IO_ONCE | LRVM__IO_SYNCER };
        tu_fault_arm(&f);
        int i, rc = 0, acked = 0;
        for (i = 0; i < 24 && rc == 0; i++)
            if ((rc = put(s, a, (size_t)i * 65536, 'A' + i, 65536, 0)) == 0)
                acked = i + 1;
        unsigned long calls = tu_fault_calls();
        disarm();
        ck_assert_msg(calls >= cases[k].nth, "%s: the syncer made %lu such calls", what, calls);
        if (cases[k].fails_store) {
            ck_assert_msg(rc == code_of(cases[k].err) || rc == LRVM_EFAILED,
                          "%s: the store went on (%s)", what, lrvm_strerror(rc));
            ck_assert_int_eq(put(s, a, 0, NEW, 16, 0), LRVM_EFAILED);
        } else {
            ck_assert_msg(rc == 0, "%s: commit %d returned %s", what, i, lrvm_strerror(rc));
        }
        (void)lrvm_close(s);
        lrvm__log_syncer_lockstep = 0;

        ck_assert_msg((rc = store_open(0, &s)) == 0, "%s: reopen: %s", what, lrvm_strerror(rc));
        ck_assert_int_eq(lrvm_map(s, "a", 2 << 20, (void **)&a), 0);
        for (int j = 0; j < acked; j++)
            ck_assert_msg(first_diff(a + (size_t)j * 65536, 'A' + j, 65536) < 0,
                          "%s: commit %d, which returned 0, is lost", what, j);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* No-flush commits of 1000 bytes each, from a thread of their own. */
struct nf_run {
    lrvm_t     *s;
    char       *b;
    int         n;
    _Atomic int rc, done;       /* read while the thread runs */
};

static void *nf_commits(void *arg)
{
    struct nf_run *r = arg;
    for (int i = 0; i < r->n && atomic_load(&r->rc) == 0; i++) {
        int rc = put(r->s, r->b, (size_t)i * 1000, 'A' + i % 26, 1000, LRVM_NO_FLUSH);
        atomic_store(&r->rc, rc);
        if (rc == 0)
            atomic_store(&r->done, i + 1);
    }
    return NULL;
}

/*
 * The syncer behind: its syncs held, no-flush commits of 1000 bytes into
 * a 4096-byte buffer go on, each full buffer left for it to sync. Past
 * four buffers owed they are slowed a little and counted (commit_waits),
 * and go on; at sixteen, about 60 commits, one waits for the syncer,
 * however long the disk takes. Let go, every commit is there after a
 * flush and a reopen.
 */
START_TEST(test_io_syncer_behind_slows_commits_then_waits)
{
    lrvm_t *s;
    char *b;
    tu_rmrf(cdir);
    ck_assert_int_eq(store_open(4096, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "b", 102400, (void **)&b), 0);
    lrvm__io_hold_syncer(LRVM__IO_SYNC);
    struct nf_run r = { .s = s, .b = b, .n = 100 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, nf_commits, &r), 0);
    for (int k = 0; atomic_load(&r.done) < 40 && atomic_load(&r.rc) == 0; k++) {
        ck_assert_msg(k < 30000, "the commits stopped at %d of 100 with the syncer held "
                      "(its first sync %s)", atomic_load(&r.done),
                      lrvm__io_held() ? "waits" : "not reached");
        usleep(1000);
    }
    /* They stop short of 100: wait until they have for a while. */
    for (int last = -1; last != atomic_load(&r.done);) {
        last = atomic_load(&r.done);
        usleep(300000);
    }
    int done = atomic_load(&r.done);
    ck_assert_msg(done < 100, "all 100 commits went on with the syncer held");
    ck_assert_uint_eq(lrvm__io_held(), 1);
    ck_assert_uint_ge(__atomic_load_n(&s->stats.commit_waits, __ATOMIC_RELAXED), 1);
    lrvm__io_hold_syncer(0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(atomic_load(&r.rc), 0);
    ck_assert_int_eq(lrvm_flush(s), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    ck_assert_int_eq(store_open(4096, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "b", 102400, (void **)&b), 0);
    for (int i = 0; i < 100; i++)
        ck_assert_msg(first_diff(b + i * 1000, 'A' + i % 26, 1000) < 0,
                      "no-flush commit %d is lost (%d went on while the syncer was held)", i, done);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

struct flush_run {
    lrvm_t     *s;
    _Atomic int rc, done;       /* read while the thread runs */
};

static void *flush_thread(void *arg)
{
    struct flush_run *r = arg;
    atomic_store(&r->rc, lrvm_flush(r->s));
    atomic_store(&r->done, 1);
    return NULL;
}

/*
 * The syncer writes the records a no-flush commit hands it when the
 * buffer fills, while the commits go on. A flush made meanwhile syncs the
 * log only once that write is in the file, or it would call durable
 * records that are not there yet: with the syncer's writes held, five
 * no-flush commits of 1000 bytes fill a 4096-byte buffer, and a flush
 * from another thread does not return while the write waits. Let go, it
 * returns 0, and a reopened store holds every commit.
 */
START_TEST(test_io_flush_waits_for_the_syncers_write)
{
    lrvm_t *s;
    char *b;
    tu_rmrf(cdir);
    ck_assert_int_eq(store_open(4096, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "b", 16384, (void **)&b), 0);
    lrvm__io_hold_syncer(LRVM__IO_WRITE);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(put(s, b, (size_t)i * 1000, 'A' + i, 1000, LRVM_NO_FLUSH), 0);
    for (int k = 0; lrvm__io_held() == 0; k++) {
        ck_assert_msg(k < 10000, "the syncer never came to write the full buffer");
        usleep(1000);
    }
    struct flush_run r = { .s = s };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, flush_thread, &r), 0);
    usleep(200000);
    int early = atomic_load(&r.done);
    lrvm__io_hold_syncer(0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(!early, "the flush returned (%s) while the syncer's write of the records "
                  "before it waited", lrvm_strerror(atomic_load(&r.rc)));
    ck_assert_int_eq(atomic_load(&r.rc), 0);
    ck_assert_int_eq(lrvm_close(s), 0);

    ck_assert_int_eq(store_open(4096, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "b", 16384, (void **)&b), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(first_diff(b + i * 1000, 'A' + i, 1000) < 0, "no-flush commit %d is lost", i);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

static uint64_t log_file_size(void)
{
    struct stat st;
    ck_assert_int_eq(stat(tu_path(cdir, "lrvm.log"), &st), 0);
    return (uint64_t)st.st_size;
}

/* A new store whose threshold is ROOM (and log buffer BUF, 0: the
 * default), its segment "a" as large, with the syncer in step with the
 * commits: each growth is done before the commit that asked goes on. */
static void growth_store(size_t room, size_t buf, lrvm_t **s, char **a)
{
    lrvm_options_t o = { .tracking = tracking, .truncate_threshold = room,
                         .log_buffer_size = buf };
    lrvm__log_syncer_lockstep = 1;
    tu_rmrf(cdir);
    ck_assert_int_eq(lrvm_open(cdir, &o, s), 0);
    ck_assert_int_eq(lrvm_map(*s, "a", room, (void **)a), 0);
}

/*
 * The log grows ahead toward what two generations take once the first
 * has taken half its room (a 1 MiB threshold here): then no truncation
 * writes beside the growth. Before that it grows only near its end, so a
 * store that writes little keeps a small log.
 */
START_TEST(test_io_log_grows_toward_two_generations)
{
    const size_t room = 1 << 20;
    lrvm_t *s;
    char *a;
    growth_store(room, 0, &s, &a);
    uint64_t first = log_file_size();
    int i = 0;
    for (; (i + 1) * 65536 < (int)room / 2 - 16384; i++)
        ck_assert_int_eq(put(s, a, (size_t)i * 65536, 'A' + i, 65536, 0), 0);
    ck_assert_uint_eq(log_file_size(), first);
    for (int k = 0; k < 2; k++, i++)
        ck_assert_int_eq(put(s, a, (size_t)i * 65536, 'A' + i, 65536, 0), 0);
    ck_assert_msg(log_file_size() >= LRVM__LOG_HEADER_SIZE + 2 * room,
                  "the log is %llu bytes after half a generation (%llu at first)",
                  (unsigned long long)log_file_size(), (unsigned long long)first);
    ck_assert_int_eq(lrvm_close(s), 0);
    lrvm__log_syncer_lockstep = 0;
}
END_TEST

/*
 * A generation placed past another, because a truncation began, grows
 * the file at once toward what it takes when the one before it left that
 * undone. Here the syncer grows the file one 4 MiB step at each full
 * 2 MiB buffer, so the first generation passes its 16 MiB threshold
 * before its growth is done; the next must go on with it at its first
 * buffers, not wait until it has taken half its room (or come near the
 * file's end): that growth would run beside the truncation, where its
 * syncs wait behind the truncation's writes and a commit at the file's
 * end waits for them.
 */
START_TEST(test_io_log_growth_goes_on_in_the_next_generation)
{
    const size_t room = 16 << 20, chunk = 256 << 10;
    lrvm_t *s;
    char *a;
    growth_store(room, 2 << 20, &s, &a);
    uint64_t gen = s->log.lg_generation;
    int i = 0;
    for (; s->log.lg_generation == gen; i++) {
        ck_assert_int_lt(i, 200);
        ck_assert_int_eq(put(s, a, (size_t)(i % 64) * chunk, 'A' + i % 26, chunk, LRVM_NO_FLUSH), 0);
    }
    uint64_t at_switch = log_file_size();
    ck_assert_msg(at_switch < LRVM__LOG_HEADER_SIZE + 2 * room + (4 << 20),
                  "the first generation's growth is done (%llu bytes): nothing to go on with",
                  (unsigned long long)at_switch);
    for (int k = 0; k < 16; k++, i++)       /* two buffers */
        ck_assert_int_eq(put(s, a, (size_t)(i % 64) * chunk, 'A' + i % 26, chunk, LRVM_NO_FLUSH), 0);
    ck_assert_msg(log_file_size() > at_switch,
                  "the log stayed %llu bytes in the generation after the switch",
                  (unsigned long long)at_switch);
    ck_assert_int_eq(lrvm_close(s), 0);
    lrvm__log_syncer_lockstep = 0;
}
END_TEST

/* ---------------------------------------------------------- truncation */

/* Three commits (two flushed, one no-flush) waiting in the log. */
static int prepare_truncate(lrvm_t **s, char **a)
{
    int rc;
    tu_rmrf(cdir);
    if ((rc = store_open(0, s)) < 0 ||
        (rc = lrvm_map(*s, "a", 4096, (void **)a)) < 0 ||
        (rc = put(*s, *a, 0, '1', 16, 0)) < 0 ||
        (rc = put(*s, *a, 100, '2', 16, 0)) < 0 ||
        (rc = put(*s, *a, 200, '3', 16, LRVM_NO_FLUSH)) < 0)
        return rc;
    return 0;
}

struct trunc_case {
    const struct tu_fault *f;
    int                    crash;
};

/* Failing truncation, disarm, one more commit, then close or crash.
 * Reports the truncation's code, the next commit's code and, without
 * crash, close's code. */
static void child_fail_truncate(const void *arg)
{
    const struct trunc_case *c = arg;
    lrvm_t *s;
    char *a;
    TU_CHILD_CHECK(prepare_truncate(&s, &a) == 0);
    tu_fault_arm(c->f);
    tu_report(lrvm_truncate(s));
    disarm();
    tu_report(put(s, a, 300, '4', 16, 0));
    if (c->crash)
        die();
    tu_report(lrvm_close(s));
}

static void truncate_case(void *arg, const struct tu_fault *f)
{
    (void)arg;
    for (int crash = 0; crash < 2; crash++) {
        char what[300];
        snprintf(what, sizeof what, "%s, then %s", f->what, crash ? "crash" : "close");
        struct trunc_case c = { f, crash };
        int vals[3], nv;
        int st = tu_run_child(child_fail_truncate, &c, vals, 3, &nv);
        int line = tu_child_failed_line(vals, nv);
        ck_assert_msg(line == 0, "%s: child check at line %d failed", what, line);
        ck_assert_msg(nv == (crash ? 2 : 3), "%s: child reported %d values (status %#x)",
                      what, nv, st);
        if (crash)
            ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: status %#x", what, st);
        else
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %#x", what, st);
        ck_assert_msg(vals[0] == code_of(f->err), "%s: truncate returned %d (%s)", what,
                      vals[0], lrvm_strerror(vals[0]));
        ck_assert_msg(vals[1] == 0, "%s: the commit after it returned %s", what,
                      lrvm_strerror(vals[1]));
        if (!crash)
            ck_assert_msg(vals[2] == 0, "%s: close returned %s", what, lrvm_strerror(vals[2]));

        lrvm_t *s;
        char *a;
        int rc = store_open(0, &s);
        ck_assert_msg(rc == 0, "%s: reopen: %s", what, lrvm_strerror(rc));
        ck_assert_int_eq(lrvm_map(s, "a", 4096, (void **)&a), 0);
        static const int vals_at[4] = { '1', '2', '3', '4' };
        for (int i = 0; i < 4; i++)
            ck_assert_msg(first_diff(a + i * 100, vals_at[i], 16) < 0,
                          "%s: commit %d ('%c' at %d) lost after reopen", what, i + 1,
                          vals_at[i], i * 100);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}

/* N (measured, 11 here: the flush's write and sync, two scans' reads,
 * opening the segment, three range writes and its sync, the new header
 * and its sync) x {EIO, ENOSPC} x {ONCE, ONCE|TORN} x {close, crash}: 8N
 * cases. After the failed truncation one more commit is made; all four
 * commits are there after reopen. */
START_TEST(test_io_truncate_fails_nth_call)
{
    lrvm_t *s;
    char *a;
    ck_assert_int_eq(prepare_truncate(&s, &a), 0);
    struct tu_fault count = { .kinds = LRVM__IO_ALL };
    tu_fault_arm(&count);
    ck_assert_int_eq(lrvm_truncate(s), 0);
    unsigned long ncalls = tu_fault_calls();
    disarm();
    ck_assert_int_eq(lrvm_close(s), 0);
    ck_assert_uint_ge(ncalls, 4);
    struct tu_fault_plan plan = plan_of(ncalls, modes);
    tu_fault_each_call(&plan, truncate_case, NULL);
}
END_TEST

/* ---------------------------------------------------------------- map */

/* Segment "seg" missing (create) or 4096 bytes with 'o' in its first 16
 * (extend to 8192); the log is empty, so lrvm_map does no truncation. */
static void prepare_map(int extend, lrvm_t **s)
{
    char *p;
    tu_rmrf(cdir);
    ck_assert_int_eq(store_open(0, s), 0);
    if (extend) {
        ck_assert_int_eq(lrvm_map(*s, "seg", 4096, (void **)&p), 0);
        ck_assert_int_eq(put(*s, p, 0, 'o', 16, 0), 0);
        ck_assert_int_eq(lrvm_truncate(*s), 0);
        ck_assert_int_eq(lrvm_unmap(*s, p), 0);
    }
}

/* {create, extend} x N (measured per variant, 5 and 3 here: the opens,
 * the ftruncate, its fsync and, on create, the directory's fsync) x {EIO,
 * ENOSPC}: 2N cases each. The failed map returns the matching code,
 * a second try maps the segment whole, and a commit through it is there
 * after reopen, next to the old data. */
static void map_case(void *arg, const struct tu_fault *f)
{
    int extend = *(const int *)arg;
    char what[300];
    snprintf(what, sizeof what, "%s: %s", extend ? "extend" : "create", f->what);
    lrvm_t *s;
    char *p;
    prepare_map(extend, &s);
    tu_fault_arm(f);
    int rc = lrvm_map(s, "seg", 8192, (void **)&p);
    disarm();
    ck_assert_msg(rc == code_of(f->err), "%s: map returned %d (%s)", what, rc, lrvm_strerror(rc));
    rc = lrvm_map(s, "seg", 8192, (void **)&p);
    ck_assert_msg(rc == 0, "%s: second map returned %s", what, lrvm_strerror(rc));
    if (extend)
        ck_assert_msg(first_diff(p, 'o', 16) < 0, "%s: old data lost", what);
    rc = put(s, p, 8000, 'm', 16, 0);
    ck_assert_msg(rc == 0, "%s: commit at 8000 returned %s", what, lrvm_strerror(rc));
    ck_assert_int_eq(lrvm_close(s), 0);

    ck_assert_int_eq(store_open(0, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "seg", 1, (void **)&p), 0);
    ck_assert_msg(tu_file_size(tu_path(cdir, "seg.seg")) == 8192,
                  "%s: seg.seg is not 8192 bytes", what);
    ck_assert_msg(first_diff(p + 8000, 'm', 16) < 0, "%s: commit at 8000 lost", what);
    if (extend)
        ck_assert_msg(first_diff(p, 'o', 16) < 0, "%s: old data lost after reopen", what);
    ck_assert_int_eq(lrvm_close(s), 0);
}

START_TEST(test_io_map_fails_nth_call)
{
    for (int extend = 0; extend < 2; extend++) {
        lrvm_t *s;
        char *p;
        prepare_map(extend, &s);
        struct tu_fault count = { .kinds = LRVM__IO_ALL };
        tu_fault_arm(&count);
        ck_assert_int_eq(lrvm_map(s, "seg", 8192, (void **)&p), 0);
        unsigned long ncalls = tu_fault_calls();
        disarm();
        ck_assert_int_eq(lrvm_close(s), 0);
        ck_assert_uint_ge(ncalls, 3);
        static const int once[1] = { LRVM__IO_ONCE };
        struct tu_fault_plan plan = { .kinds = LRVM__IO_ALL, .calls = ncalls, .errs = errs,
                                      .nerrs = 2, .modes = once, .nmodes = 1 };
        tu_fault_each_call(&plan, map_case, &extend);
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("io");
    TCase *tc = tu_tcase("io", 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_io_commit_fails_nth_call);
    tcase_add_test(tc, test_io_auto_commit_fails_nth_call);
    tcase_add_test(tc, test_io_commit_fails_nth_call_then_crash);
    tcase_add_test(tc, test_io_large_tx_fails_nth_call_then_crash);
    tcase_add_test(tc, test_io_auto_large_tx_fails_nth_call_then_crash);
    tcase_add_test(tc, test_io_noflush_then_failed_commit_crash);
    tcase_add_test(tc, test_io_syncer_fails_the_store);
    tcase_add_test(tc, test_io_syncer_growth_fails);
    tcase_add_test(tc, test_io_syncer_behind_slows_commits_then_waits);
    tcase_add_test(tc, test_io_flush_waits_for_the_syncers_write);
    tcase_add_test(tc, test_io_log_grows_toward_two_generations);
    tcase_add_test(tc, test_io_log_growth_goes_on_in_the_next_generation);
    tcase_add_test(tc, test_io_always_failing_commit);
    tcase_add_test(tc, test_io_truncate_fails_nth_call);
    tcase_add_test(tc, test_io_map_fails_nth_call);
    suite_add_tcase(su, tc);
    return tu_run_suite(su);
}
