/*
 * check_crash.c -- crash consistency of the whole store: a commit loop
 * killed at random moments and at every chosen write or sync call, and
 * recovery itself killed part way.
 *
 * Crash model: a child process opens the store and commits a
 * deterministic history of transactions (transaction i sets the counter
 * at offset 0 of segment "a" to i and writes bytes derived from i at
 * offsets derived from i in segments "a" and "b"). It dies of SIGKILL,
 * sent by the parent after a random delay or raised by the io fault
 * injector (LRVM__IO_KILL, optionally after writing half of the call:
 * LRVM__IO_TORN). The page cache outlives the process, so these are
 * process crashes: they check the order and the content of lrvm's writes.
 * The power-cut tests (LRVM__IO_POWERCUT) check the syncs as well: at the
 * armed call, every write not yet synced is kept, undone or torn before
 * the child dies, as a power failure may leave it (see io.c); a missing
 * fdatasync then loses an acknowledged commit. After each death the parent opens the store
 * (running recovery) and checks the prefix property: the segments hold
 * exactly transactions 1..c of the history, replayed in memory from
 * zeros, and c is at least every transaction whose flushing commit had
 * returned in the child (acknowledged on a pipe).
 *
 * Random choices derive from LRVM_TEST_SEED (a fixed default when unset);
 * every failure message names the seed so a run can be replayed.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "faultio.h"
#include "lrvm.h"
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
#include <time.h>
#include <unistd.h>

#define A_SIZE ((size_t)256 << 10)
#define B_SIZE ((size_t)16 << 10)
#define BIG_THRESHOLD ((size_t)1 << 30)

/* Exit codes of a child whose lrvm call failed (the parent expects death
 * by SIGKILL, so any of these fails the test and names the step). */
enum {
    CHILD_OPEN = 20, CHILD_MAP, CHILD_BEGIN, CHILD_RANGE, CHILD_COMMIT,
    CHILD_TRUNCATE, CHILD_FLUSH, CHILD_PIPE, CHILD_STATS, CHILD_RAN_OUT
};

/* ------------------------------------------------------- the history */

/* How big transaction i is: NWRITES ranges of MINLEN..MAXLEN bytes. */
struct shape {
    unsigned nwrites;
    size_t   minlen, maxlen;
};

static const struct shape SMALL = { 8, 1, 64 };         /* ~250 bytes */
static const struct shape LARGE = { 5, 3072, 5120 };    /* ~20 KiB */
static const struct shape XL    = { 6, 4096, 8192 };    /* ~36 KiB */

/* Called before every write of a transaction; nonzero stops it. */
typedef int (*declare_fn)(void *ctx, void *p, size_t len);

/* Transaction I of the history, applied to the images A and B. */
static int tx_apply(uint64_t i, const struct shape *sh, unsigned char *a,
                    unsigned char *b, declare_fn declare, void *ctx)
{
    int rc;
    if (declare != NULL && (rc = declare(ctx, a, 8)) != 0)
        return rc;
    memcpy(a, &i, 8);
    for (unsigned k = 0; k < sh->nwrites; k++) {
        uint64_t r = tu_mix64(i * 0x100000001b3ull + k);
        int inb = r % 3 == 0;
        unsigned char *base = inb ? b : a;
        size_t size = inb ? B_SIZE : A_SIZE, lo = inb ? 0 : 8;
        size_t len = sh->minlen + (size_t)((r >> 8) % (sh->maxlen - sh->minlen + 1));
        if (len > size - lo)
            len = size - lo;
        size_t off = lo + (size_t)((r >> 24) % (size - lo - len + 1));
        if (declare != NULL && (rc = declare(ctx, base + off, len)) != 0)
            return rc;
        uint64_t v = tu_mix64(r ^ i);
        for (size_t j = 0; j < len; j++)
            base[off + j] = (unsigned char)((v >> ((j & 7) * 8)) + (j >> 3));
    }
    return 0;
}

/* The injected-kill script's transactions have mixed sizes. */
static const struct shape *det_shape(uint64_t i)
{
    return i == 5 || i == 8 ? &LARGE : &SMALL;
}

/* The expected images after transactions 1..n. */
struct model {
    unsigned char      *a, *b;
    uint64_t            n;
    const struct shape *fixed;      /* NULL: det_shape */
};

static void model_init(struct model *m, const struct shape *fixed)
{
    m->a = calloc(1, A_SIZE);
    m->b = calloc(1, B_SIZE);
    ck_assert(m->a != NULL && m->b != NULL);
    m->n = 0;
    m->fixed = fixed;
}

static void model_free(struct model *m)
{
    free(m->a);
    free(m->b);
}

static void model_advance(struct model *m, uint64_t c)
{
    if (c < m->n) {
        memset(m->a, 0, A_SIZE);
        memset(m->b, 0, B_SIZE);
        m->n = 0;
    }
    while (m->n < c) {
        m->n++;
        tx_apply(m->n, m->fixed ? m->fixed : det_shape(m->n), m->a, m->b, NULL, NULL);
    }
}

/* The tracking mode of every store a test opens; each test runs in its
 * own process, so the auto-mode tests just set it first. */
static int tracking = LRVM_TRACK_EXPLICIT;

static size_t first_diff(const unsigned char *x, const unsigned char *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return i;
    return SIZE_MAX;
}

/*
 * Open DIR (recovery), check the prefix property against M with LOWER as
 * the least acceptable transaction count; return the count found. WHAT
 * says which run this is, seed included.
 */
static uint64_t verify_store(const char *dir, struct model *m, uint64_t lower, const char *what)
{
    lrvm_options_t o = { .tracking = tracking, .truncate_threshold = BIG_THRESHOLD };
    lrvm_t *s;
    void *a, *b;
    int rc = lrvm_open(dir, &o, &s);
    ck_assert_msg(rc == 0, "%s: lrvm_open after the crash: %s", what, lrvm_strerror(rc));
    rc = lrvm_map(s, "a", A_SIZE, &a);
    ck_assert_msg(rc == 0, "%s: lrvm_map a: %s", what, lrvm_strerror(rc));
    rc = lrvm_map(s, "b", B_SIZE, &b);
    ck_assert_msg(rc == 0, "%s: lrvm_map b: %s", what, lrvm_strerror(rc));

    uint64_t c;
    memcpy(&c, a, 8);
    ck_assert_msg(c >= lower, "%s: the store holds %" PRIu64 " transactions, but %" PRIu64
                  " were committed with a returned flushing commit", what, c, lower);
    model_advance(m, c);
    size_t d = first_diff(a, m->a, A_SIZE);
    ck_assert_msg(d == SIZE_MAX, "%s: segment a byte %zu is 0x%02x, transactions 1..%" PRIu64
                  " give 0x%02x (not a prefix of the history)", what, d,
                  d == SIZE_MAX ? 0 : ((unsigned char *)a)[d], c, d == SIZE_MAX ? 0 : m->a[d]);
    d = first_diff(b, m->b, B_SIZE);
    ck_assert_msg(d == SIZE_MAX, "%s: segment b byte %zu is 0x%02x, transactions 1..%" PRIu64
                  " give 0x%02x (not a prefix of the history)", what, d,
                  d == SIZE_MAX ? 0 : ((unsigned char *)b)[d], c, d == SIZE_MAX ? 0 : m->b[d]);
    rc = lrvm_close(s);
    ck_assert_msg(rc == 0, "%s: lrvm_close: %s", what, lrvm_strerror(rc));
    return c;
}

/* ------------------------------------------------------------ child */

/* What a child reports on its pipe: a transaction whose flushing commit
 * returned, and the truncations done so far. */
struct ack {
    uint64_t txno;
    uint64_t extra;
};

static void send_ack(int fd, uint64_t txno, uint64_t extra)
{
    struct ack a = { txno, extra };
    if (write(fd, &a, sizeof a) != (ssize_t)sizeof a)
        _exit(CHILD_PIPE);
}

/* Read one ack; 0 at end of file. */
static int read_ack(int fd, struct ack *a)
{
    size_t got = 0;
    while (got < sizeof *a) {
        ssize_t r = read(fd, (char *)a + got, sizeof *a - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

/* Explicit mode declares every range; auto mode declares none, so every
 * change reaches the log through a page fault. */
static int declare_range(void *ctx, void *p, size_t len)
{
    if (tracking == LRVM_TRACK_AUTO)
        return 0;
    return lrvm_set_range(ctx, p, len) == 0 ? 0 : CHILD_RANGE;
}

struct child_store {
    lrvm_t        *s;
    unsigned char *a, *b;
};

static void child_open(const char *dir, size_t buf, size_t threshold, struct child_store *cs)
{
    lrvm_options_t o = { .tracking = tracking, .log_buffer_size = buf,
                         .truncate_threshold = threshold };
    void *a, *b;
    if (lrvm_open(dir, &o, &cs->s) != 0)
        _exit(CHILD_OPEN);
    if (lrvm_map(cs->s, "a", A_SIZE, &a) != 0 || lrvm_map(cs->s, "b", B_SIZE, &b) != 0)
        _exit(CHILD_MAP);
    cs->a = a;
    cs->b = b;
}

/* Run transaction I of the history on the store and commit it. */
static void child_tx(struct child_store *cs, uint64_t i, const struct shape *sh, int flags)
{
    void *bases[2] = { cs->a, cs->b };
    lrvm_tx_t *tx;
    int rc;
    if (lrvm_begin(cs->s, 2, bases, &tx) != 0)
        _exit(CHILD_BEGIN);
    if ((rc = tx_apply(i, sh, cs->a, cs->b, declare_range, tx)) != 0)
        _exit(rc);
    if (lrvm_commit(tx, flags) != 0)
        _exit(CHILD_COMMIT);
}

static uint64_t child_truncations(struct child_store *cs)
{
    lrvm_stats_t st;
    if (lrvm_stats(cs->s, &st) != 0)
        _exit(CHILD_STATS);
    return st.truncations;
}

/* ------------------------------------------------------ random kills */

struct variant {
    const char         *name;
    size_t              log_buffer;      /* 0: default */
    size_t              threshold;       /* 0: default */
    unsigned            flush_every;     /* commit i flushes when i % flush_every == 0 */
    unsigned            truncate_every;  /* lrvm_truncate after these; 0: never */
    const struct shape *sh;
    int                 expect_truncations;
    size_t              follow;          /* 0, or the threshold left to lrvm (a
                                            small floor) and a segment of this
                                            size mapped and unmapped in turn */
};

/* The follow variant's third segment, mapped every other 16 commits: the
 * threshold lrvm chooses rises with it (after the full truncation a map
 * makes) and falls when it goes, in the middle of a generation, so that
 * switches give the log a room larger or smaller than the last. */
static void follow_toggle(struct child_store *cs, size_t size)
{
    static void *c;
    if (c != NULL) {
        if (lrvm_unmap(cs->s, c) != 0)
            _exit(CHILD_MAP);
        c = NULL;
    } else if (lrvm_map(cs->s, "c", size, &c) != 0) {
        _exit(CHILD_MAP);
    }
}

/* Commit the history from the store's counter on, forever; ack every
 * flushing commit. The first message (txno = the counter found) says the
 * store is open. */
static void random_child(const char *dir, const struct variant *v, int fd)
{
    struct child_store cs;
    alarm(60);                      /* never outlive a test that timed out */
    if (v->follow != 0) {
        lrvm__truncate_default = (size_t)64 << 10;
        lrvm__truncate_most = (size_t)1 << 20;
    }
    child_open(dir, v->log_buffer, v->threshold, &cs);
    uint64_t c0;
    memcpy(&c0, cs.a, 8);
    uint64_t t0 = child_truncations(&cs);
    send_ack(fd, c0, 0);
    for (uint64_t i = c0 + 1; i < c0 + 1000000; i++) {
        int flush = i % v->flush_every == 0;
        child_tx(&cs, i, v->sh, flush ? 0 : LRVM_NO_FLUSH);
        if (flush)
            send_ack(fd, i, child_truncations(&cs) - t0);
        if (v->truncate_every != 0 && i % v->truncate_every == 0 && lrvm_truncate(cs.s) != 0)
            _exit(CHILD_TRUNCATE);
        if (v->follow != 0 && i % 16 == 0)
            follow_toggle(&cs, v->follow);
    }
    _exit(CHILD_RAN_OUT);
}

static void sleep_us(unsigned us)
{
    struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void random_kills(const struct variant *v, unsigned vindex, int kills)
{
    uint64_t seed = tu_test_seed();
    uint64_t rng = tu_mix64(seed ^ (0x1000u + vindex)) | 1;
    char *dir = tu_tmpdir();
    struct model m;
    uint64_t durable = 0, truncations = 0, acked_kills = 0;
    char what[256];

    model_init(&m, v->sh);
    for (int it = 0; it < kills; it++) {
        unsigned delay = (unsigned)(tu_rand(&rng) % 40001);
        int after_ready = it & 1;   /* else the delay runs from fork: kills land in open too */
        int fd;
        pid_t pid = tu_fork_piped(&fd);
        if (pid == 0)
            random_child(dir, v, fd);

        struct ack ak;
        uint64_t acked = 0, truncs = 0;
        if (after_ready && read_ack(fd, &ak))
            acked = ak.txno;
        /* A slow build (sanitizers, valgrind) may not reach a truncation
         * within the random delays: the last kill of a variant that must
         * cross one then waits for the child to report one first. */
        while (v->expect_truncations && truncations == 0 && it == kills - 1 && truncs == 0 &&
               read_ack(fd, &ak)) {
            acked = ak.txno > acked ? ak.txno : acked;
            truncs = ak.extra;
        }
        sleep_us(delay);
        kill(pid, SIGKILL);
        int st = tu_wait(pid);
        while (read_ack(fd, &ak)) {
            if (ak.txno > acked)
                acked = ak.txno;
            truncs = ak.extra;
        }
        close(fd);

        snprintf(what, sizeof what, "variant %s, LRVM_TEST_SEED=%" PRIu64 ", kill %d after %u us%s",
                 v->name, seed, it, delay, after_ready ? " from open" : " from fork");
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "%s: the child did not die of the kill (status 0x%x; exit code %d)",
                      what, st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        if (acked > durable)
            acked_kills++;
        durable = verify_store(dir, &m, acked > durable ? acked : durable, what);
        truncations += truncs;
    }
    ck_assert_msg(acked_kills > 0 && durable > 0,
                  "variant %s, LRVM_TEST_SEED=%" PRIu64 ": no kill landed after a commit",
                  v->name, seed);
    if (v->expect_truncations)
        ck_assert_msg(truncations > 0, "variant %s, LRVM_TEST_SEED=%" PRIu64
                      ": no truncation happened before a kill", v->name, seed);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

#define KILLS 40

static const struct variant variants[] = {
    { "flush",    0,    0,                   1, 0,  &SMALL, 0, 0 },
    { "noflush",  0,    0,                   7, 0,  &SMALL, 0, 0 },
    { "smallbuf", 4096, 0,                   1, 0,  &LARGE, 0, 0 },
    { "threshold", 0,   (size_t)1 << 20,     1, 0,  &XL,    1, 0 },
    { "truncate", 0,    0,                   1, 10, &SMALL, 1, 0 },
    { "follow",   0,    0,                   1, 0,  &XL,    1, (size_t)512 << 10 },
};

START_TEST(test_crash_random_flushing_commits)
{
    random_kills(&variants[0], 0, KILLS);
}
END_TEST

START_TEST(test_crash_random_noflush_commits)
{
    random_kills(&variants[1], 1, KILLS);
}
END_TEST

START_TEST(test_crash_random_multipart_small_buffer)
{
    random_kills(&variants[2], 2, KILLS);
}
END_TEST

START_TEST(test_crash_random_tiny_truncate_threshold)
{
    random_kills(&variants[3], 3, KILLS);
}
END_TEST

START_TEST(test_crash_random_explicit_truncate)
{
    random_kills(&variants[4], 4, KILLS);
}
END_TEST

/* The threshold left to lrvm, rising and falling with a third segment
 * (follow_toggle): truncations beside the commits start at each, with
 * the log's room changed at their switches. */
START_TEST(test_crash_random_threshold_following)
{
    random_kills(&variants[5], 5, KILLS);
}
END_TEST

/* ---------------------------------------------------- injected kills */

/*
 * The script: transactions 1 and 2 before the injector is armed, then
 *   3 small, 4 small no-flush, 5 large (spills its parts once 4's records
 *   are written, for the log's syncer to sync), 6 small no-flush, 7 small,
 *   lrvm_truncate, 8 large, 9 small.
 * Log buffer 4096 bytes; no automatic truncation. Armed at the syncer's
 * calls (LRVM__IO_SYNCER), the injector is armed from the start, and the
 * syncer does each piece of work before the commit that asked for it
 * goes on, so its calls come in the same order in every run (here, the
 * sync of 4's records: the log never nears the end of its file).
 */
#define DET_PRE  2
#define DET_LAST 9

static int det_flags(uint64_t i)
{
    return i == 4 || i == 6 ? LRVM_NO_FLUSH : 0;
}

/* Run the script with fault F armed over its write and sync calls (nth
 * 0: count them, and send the count as a final ack with txno 0). */
static void det_child(const char *dir, const struct tu_fault *f, int fd)
{
    struct child_store cs;
    int syncer = f->mode & LRVM__IO_SYNCER;
    alarm(60);
    lrvm__log_syncer_lockstep = syncer;
    child_open(dir, 4096, BIG_THRESHOLD, &cs);
    if (syncer)
        tu_fault_arm(f);
    for (uint64_t i = 1; i <= DET_PRE; i++) {
        child_tx(&cs, i, det_shape(i), 0);
        send_ack(fd, i, 0);
    }
    if (!syncer)
        tu_fault_arm(f);
    for (uint64_t i = DET_PRE + 1; i <= DET_LAST; i++) {
        child_tx(&cs, i, det_shape(i), det_flags(i));
        if (det_flags(i) == 0)
            send_ack(fd, i, 0);
        if (i == 7 && lrvm_truncate(cs.s) != 0)
            _exit(CHILD_TRUNCATE);
    }
    unsigned long calls = tu_fault_calls();
    if (f->nth == 0)
        send_ack(fd, 0, calls);
    _exit(0);
}

/* Fork det_child; return its wait status, the highest acked txno and the
 * last extra value. */
static int det_run(const char *dir, const struct tu_fault *f, uint64_t *acked, uint64_t *extra)
{
    int fd;
    pid_t pid = tu_fork_piped(&fd);
    if (pid == 0)
        det_child(dir, f, fd);
    struct ack ak;
    *acked = *extra = 0;
    while (read_ack(fd, &ak)) {
        if (ak.txno > *acked)
            *acked = ak.txno;
        *extra = ak.extra;
    }
    close(fd);
    return tu_wait(pid);
}

/* One death of the script: the unarmed commits acked, the store a prefix
 * holding every acked commit. */
static void det_case(void *arg, const struct tu_fault *f)
{
    struct model *m = arg;
    char *dir = tu_tmpdir();
    uint64_t acked, extra;
    int st = det_run(dir, f, &acked, &extra);
    tu_fault_died(f, st);
    ck_assert_msg(acked >= DET_PRE || (f->mode & LRVM__IO_SYNCER),
                  "%s: the unarmed commits were not acked", f->what);
    uint64_t c = verify_store(dir, m, acked, f->what);
    ck_assert_msg(c <= DET_LAST, "%s: %" PRIu64 " transactions", f->what, c);
    tu_rmrf(dir);
    free(dir);
}

/* Arm each write or sync call of the script in turn, in MODE, ROUNDS
 * times (power cuts choose differently each round), and check the store. */
static void injected_kills(int mode, int rounds)
{
    struct model m;
    uint64_t acked, calls;
    model_init(&m, NULL);

    /* Dry run: count the write and sync calls of the script (the
     * syncer's alone, with LRVM__IO_SYNCER). */
    char *dir = tu_tmpdir();
    struct tu_fault dry = { .kinds = LRVM__IO_WRITE | LRVM__IO_SYNC,
                            .mode = mode & LRVM__IO_SYNCER };
    int st = det_run(dir, &dry, &acked, &calls);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dry run: status 0x%x", st);
    ck_assert_uint_eq(acked, DET_LAST);
    uint64_t c = verify_store(dir, &m, DET_LAST, "dry run");
    ck_assert_uint_eq(c, DET_LAST);
    tu_rmrf(dir);
    free(dir);
    /* Commits 3..9 each write and sync at least once; truncation more.
     * The syncer syncs 4's records. */
    ck_assert_uint_ge(calls, mode & LRVM__IO_SYNCER ? 1 : 20);

    struct tu_fault_plan plan = { .kinds = dry.kinds, .calls = calls, .modes = &mode,
                                  .nmodes = 1, .rounds = (unsigned)rounds };
    tu_fault_each_call(&plan, det_case, &m);
    model_free(&m);
}

START_TEST(test_crash_inject_kill_each_write_sync)
{
    injected_kills(LRVM__IO_KILL, 1);
}
END_TEST

/* The same histories with automatic capture: no range is declared. */
START_TEST(test_crash_auto_random_flushing_commits)
{
    tracking = LRVM_TRACK_AUTO;
    random_kills(&variants[0], 0, KILLS);
}
END_TEST

START_TEST(test_crash_auto_random_noflush_commits)
{
    tracking = LRVM_TRACK_AUTO;
    random_kills(&variants[1], 1, KILLS);
}
END_TEST

START_TEST(test_crash_auto_random_multipart_small_buffer)
{
    tracking = LRVM_TRACK_AUTO;
    random_kills(&variants[2], 2, KILLS);
}
END_TEST

START_TEST(test_crash_auto_random_tiny_truncate_threshold)
{
    tracking = LRVM_TRACK_AUTO;
    random_kills(&variants[3], 3, KILLS);
}
END_TEST

START_TEST(test_crash_auto_inject_torn_kill_each_write_sync)
{
    tracking = LRVM_TRACK_AUTO;
    injected_kills(LRVM__IO_KILL | LRVM__IO_TORN, 1);
}
END_TEST

START_TEST(test_crash_inject_powercut_each_write_sync)
{
    /* Writes not yet synced when the power fails may be lost or torn:
     * every acknowledged commit must survive all the same. */
    injected_kills(LRVM__IO_POWERCUT, 4);
}
END_TEST

START_TEST(test_crash_auto_inject_powercut_each_write_sync)
{
    tracking = LRVM_TRACK_AUTO;
    injected_kills(LRVM__IO_POWERCUT, 4);
}
END_TEST

START_TEST(test_crash_inject_powercut_each_syncer_call)
{
    /* The records a no-flush commit wrote are the syncer's to sync: a
     * power cut at any of its calls keeps every acknowledged commit. */
    injected_kills(LRVM__IO_POWERCUT | LRVM__IO_SYNCER, 8);
}
END_TEST

START_TEST(test_crash_inject_torn_kill_each_write_sync)
{
    injected_kills(LRVM__IO_KILL | LRVM__IO_TORN, 1);
}
END_TEST

/* A new store: the fault armed before lrvm_open, on every kind of call
 * (opens, reads, writes, syncs, ftruncate, unlink, rename), so the death
 * lands while the log and the segment files are being created. */
static void create_child(const char *dir, const struct tu_fault *f, int fd)
{
    struct child_store cs;
    alarm(60);
    tu_fault_arm(f);
    child_open(dir, 0, BIG_THRESHOLD, &cs);
    for (uint64_t i = 1; i <= 2; i++) {
        child_tx(&cs, i, &SMALL, 0);
        send_ack(fd, i, 0);
    }
    unsigned long calls = tu_fault_calls();
    if (f->nth == 0)
        send_ack(fd, 0, calls);
    _exit(0);
}

/* Run create_child under F in a new directory; check the store it left:
 * a prefix holding every acked commit. Returns the calls the child
 * counted (a dry run's). */
static unsigned long creation_case_run(struct model *m, const struct tu_fault *f)
{
    char *dir = tu_tmpdir();
    char *store;
    ck_assert_int_ge(asprintf(&store, "%s/store", dir), 0);
    int fd;
    pid_t pid = tu_fork_piped(&fd);
    if (pid == 0)
        create_child(store, f, fd);
    struct ack ak;
    uint64_t acked = 0, calls = 0;
    while (read_ack(fd, &ak)) {
        if (ak.txno > acked)
            acked = ak.txno;
        calls = ak.extra;
    }
    close(fd);
    int st = tu_wait(pid);
    if (f->nth == 0) {
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dry run: status 0x%x", st);
        ck_assert_uint_eq(acked, 2);
    } else {
        tu_fault_died(f, st);
    }
    uint64_t c = verify_store(store, m, acked, f->nth == 0 ? "dry run" : f->what);
    ck_assert_msg(c <= 2, "%s: %" PRIu64 " transactions", f->what, c);
    free(store);
    tu_rmrf(dir);
    free(dir);
    return (unsigned long)calls;
}

static void creation_case(void *arg, const struct tu_fault *f)
{
    (void)creation_case_run(arg, f);
}

/* Store creation (the directory, the lock, the log made under another
 * name and renamed, the segments) died at each call, by SIGKILL or by a
 * power cut that may also take back names not yet synced in their
 * directory (ROUNDS of choices): the store opens with a prefix holding
 * every acked commit. */
static void store_creation_deaths(int mode, unsigned rounds)
{
    struct model m;
    model_init(&m, &SMALL);
    struct tu_fault dry = { .kinds = LRVM__IO_ALL };
    unsigned long calls = creation_case_run(&m, &dry);
    /* open + mkdir log + segments + two commits: dozens of calls */
    ck_assert_uint_ge(calls, 10);
    struct tu_fault_plan plan = { .kinds = LRVM__IO_ALL, .calls = calls, .modes = &mode,
                                  .nmodes = 1, .rounds = rounds };
    tu_fault_each_call(&plan, creation_case, &m);
    model_free(&m);
}

START_TEST(test_crash_inject_kill_store_creation)
{
    store_creation_deaths(LRVM__IO_KILL, 1);
}
END_TEST

START_TEST(test_crash_inject_powercut_store_creation)
{
    /* Each cut keeps or takes back every unsynced name at random: three
     * rounds of choices per call. */
    store_creation_deaths(LRVM__IO_POWERCUT, 3);
}
END_TEST

/* ---------------------------------------------- destroy under a power cut */

/* Acks of destroy_child: what its calls had returned. */
enum { ACK_DESTROYED = 1, ACK_FRESH = 2 };

static void destroy_child(const char *dir, const struct tu_fault *f, int fd)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = BIG_THRESHOLD };
    lrvm_t *s;
    char *g;
    lrvm_tx_t *tx;
    alarm(60);
    if (lrvm_open(dir, &o, &s) != 0 || lrvm_map(s, "gone", 4096, (void **)&g) != 0)
        _exit(CHILD_OPEN);
    if (lrvm_begin(s, 1, (void **)&g, &tx) != 0 || lrvm_set_range(tx, g, 7) != 0)
        _exit(CHILD_BEGIN);
    memcpy(g, "secret", 7);
    if (lrvm_commit(tx, 0) != 0 || lrvm_unmap(s, g) != 0)
        _exit(CHILD_COMMIT);
    tu_fault_arm(f);
    if (lrvm_destroy(s, "gone") != 0)
        _exit(CHILD_TRUNCATE);
    send_ack(fd, ACK_DESTROYED, 0);
    if (lrvm_map(s, "gone", 4096, (void **)&g) != 0 || lrvm_begin(s, 1, (void **)&g, &tx) != 0 ||
        lrvm_set_range(tx, g + 100, 6) != 0)
        _exit(CHILD_MAP);
    memcpy(g + 100, "fresh", 6);
    if (lrvm_commit(tx, 0) != 0)
        _exit(CHILD_COMMIT);
    send_ack(fd, ACK_FRESH, tu_fault_calls());
    _exit(0);
}

/* Run destroy_child under F; check that a destroyed segment's data never
 * came back and that what was committed after it stayed. Returns the calls
 * the child counted (a dry run's). */
static unsigned long destroy_case_run(const struct tu_fault *f)
{
    char *dir = tu_tmpdir();
    int fd;
    pid_t pid = tu_fork_piped(&fd);
    if (pid == 0)
        destroy_child(dir, f, fd);
    struct ack ak;
    int destroyed = 0, fresh = 0;
    unsigned long calls = 0;
    while (read_ack(fd, &ak)) {
        destroyed |= ak.txno == ACK_DESTROYED;
        fresh |= ak.txno == ACK_FRESH;
        if (ak.txno == ACK_FRESH)
            calls = (unsigned long)ak.extra;
    }
    close(fd);
    int st = tu_wait(pid);
    const char *what = f->nth == 0 ? "dry run" : f->what;
    if (f->nth == 0)
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && fresh, "dry run: status 0x%x", st);
    else
        tu_fault_died(f, st);
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT };
    lrvm_t *s;
    char *g;
    ck_assert_int_eq(lrvm_open(dir, &o, &s), 0);
    ck_assert_int_eq(lrvm_map(s, "gone", 4096, (void **)&g), 0);
    ck_assert_msg(!destroyed || memcmp(g, "secret", 7) != 0,
                  "%s: the destroyed segment's data came back", what);
    ck_assert_msg(!fresh || strcmp(g + 100, "fresh") == 0,
                  "%s: the commit after the destroy is gone", what);
    ck_assert_msg(memcmp(g, "secret", 7) != 0 || g[100] == 0,
                  "%s: old and new data side by side", what);
    ck_assert_int_eq(lrvm_close(s), 0);
    tu_rmrf(dir);
    free(dir);
    return calls;
}

static void destroy_case(void *arg, const struct tu_fault *f)
{
    (void)arg;
    (void)destroy_case_run(f);
}

/* lrvm_destroy, then the segment made again and written, cut off by a
 * power cut at each call (three rounds of choices): a destroyed segment's
 * data never comes back, and what was committed after stays. */
START_TEST(test_crash_powercut_destroy)
{
    struct tu_fault dry = { .kinds = LRVM__IO_ALL };
    unsigned long calls = destroy_case_run(&dry);
    ck_assert_uint_ge(calls, 3);
    static const int cut = LRVM__IO_POWERCUT;
    struct tu_fault_plan plan = { .kinds = LRVM__IO_ALL, .calls = calls, .modes = &cut,
                                  .nmodes = 1, .rounds = 3 };
    tu_fault_each_call(&plan, destroy_case, NULL);
}
END_TEST

/* ---------------------------------------------- crash during recovery */

#define REC_TXS 2000u

static uint64_t log_txs(const char *dir)
{
    int fd = open(tu_path(dir, LRVM__LOG_NAME), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct lrvm__log_header h;
    struct lrvm__scan_result res;
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(fd, &h, &slot), 0);
    ck_assert_int_eq(lrvm__log_scan(fd, &h, NULL, &res), 0);
    close(fd);
    return res.sr_txs;
}

static void build_child(void *arg)
{
    struct child_store cs;
    alarm(60);
    child_open(arg, 0, BIG_THRESHOLD, &cs);
    for (uint64_t i = 1; i <= REC_TXS; i++)
        child_tx(&cs, i, &SMALL, i % 50 == 0 ? 0 : LRVM_NO_FLUSH);
    if (lrvm_flush(cs.s) != 0)
        _exit(CHILD_FLUSH);
    kill(getpid(), SIGKILL);
}

struct recover_arg {
    const char   *dir;
    unsigned long nth;
    int           mode;
    int           fd;
};

static void recover_child(void *arg)
{
    struct recover_arg *ra = arg;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = BIG_THRESHOLD };
    lrvm_t *s;
    alarm(60);
    /* Two ranges in recovery's batch: it writes every two ranges, so the
     * kills land between the writes of a half-applied log. */
    lrvm__apply_max = 2;
    lrvm__io_inject(LRVM__IO_WRITE | LRVM__IO_SYNC, ra->nth, EIO, ra->mode);
    if (lrvm_open(ra->dir, &o, &s) != 0)
        _exit(CHILD_OPEN);
    if (ra->fd >= 0)
        send_ack(ra->fd, 0, lrvm__io_calls());
    _exit(0);
}

static int cmp_ulong(const void *x, const void *y)
{
    unsigned long a = *(const unsigned long *)x, b = *(const unsigned long *)y;
    return a < b ? -1 : a > b;
}

START_TEST(test_crash_during_recovery)
{
    char *dir = tu_tmpdir();
    struct model m;
    model_init(&m, &SMALL);

    int st = tu_in_child(build_child, dir);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "build: status 0x%x", st);
    ck_assert_uint_eq(log_txs(dir), REC_TXS);

    /* Dry run on a copy: the write and sync calls of a whole recovery. */
    char *copy = tu_tmpdir();
    ck_assert_int_eq(tu_copy_dir(dir, copy), 0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    struct recover_arg ra = { copy, 0, 0, p[1] };
    st = tu_in_child(recover_child, &ra);
    close(p[1]);
    struct ack ak;
    ck_assert(read_ack(p[0], &ak));
    close(p[0]);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "dry run: status 0x%x", st);
    unsigned long total = (unsigned long)ak.extra;
    ck_assert_uint_eq(log_txs(copy), 0);
    tu_rmrf(copy);
    free(copy);
    /* About one write a transaction (a batch of two ranges), then the syncs
     * and the header. */
    ck_assert_uint_gt(total, REC_TXS + 3);

    /* The first calls, the last ones (segment syncs, the new header, its
     * sync), and some picked at random between. */
    unsigned long ns[64];
    size_t nn = 0;
    for (unsigned long n = 1; n <= 8; n++)
        ns[nn++] = n;
    uint64_t seed = tu_test_seed(), rng = tu_mix64(seed ^ 0x2000u) | 1;
    for (unsigned long k = 1; k < 16; k++)
        ns[nn++] = 1 + (unsigned long)(tu_rand(&rng) % total);
    for (unsigned long n = total - 8; n <= total; n++)
        ns[nn++] = n;
    qsort(ns, nn, sizeof ns[0], cmp_ulong);

    unsigned long prev = 0;
    for (size_t i = 0; i < nn; i++) {
        if (ns[i] == prev)
            continue;
        prev = ns[i];
        int mode = i & 1 ? LRVM__IO_KILL | LRVM__IO_TORN : LRVM__IO_KILL;
        uint64_t before = log_txs(dir);
        struct recover_arg rk = { dir, ns[i], mode, -1 };
        st = tu_in_child(recover_child, &rk);
        if (before == REC_TXS) {
            ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                          "recovery armed at call %lu of %lu (%s, LRVM_TEST_SEED=%" PRIu64
                          "): status 0x%x", ns[i], total,
                          mode & LRVM__IO_TORN ? "torn" : "kill", seed, st);
        } else {
            /* Only a death after the new header was written can have
             * finished recovery. */
            ck_assert_msg(before == 0 && ns[i] >= total - 1,
                          "log holds %" PRIu64 " transactions before the open armed at call %lu"
                          " of %lu (LRVM_TEST_SEED=%" PRIu64 ")", before, ns[i], total, seed);
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
        }
    }
    char what[128];
    snprintf(what, sizeof what, "after the killed recoveries (LRVM_TEST_SEED=%" PRIu64 ")", seed);
    uint64_t c = verify_store(dir, &m, REC_TXS, what);
    ck_assert_uint_eq(c, REC_TXS);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

/* ------------------------------- power cut while recovering an unsynced tail */

/* The log holds TAIL_TXS transactions; those after TAIL_SYNCED come back
 * as writes the disk may not have, as a process leaves them when it dies
 * between a commit's write and its fdatasync. */
#define TAIL_TXS    6u
#define TAIL_SYNCED 3u

struct tail_arg {
    const char          *dir;
    const unsigned char *tail;      /* the records after TAIL_SYNCED */
    size_t               len;
    uint64_t             off;
    unsigned long        nth;       /* the sync call the power fails at */
    uint64_t             seed;
    uint32_t             cache;     /* ranges in recovery's batch; 0: the default */
};

static void tail_build_child(void *arg)
{
    struct child_store cs;
    alarm(60);
    child_open(arg, 0, BIG_THRESHOLD, &cs);
    for (uint64_t i = 1; i <= TAIL_TXS; i++)
        child_tx(&cs, i, &SMALL, 0);
    _exit(0);
}

static void tail_recover_child(void *arg)
{
    const struct tail_arg *ta = arg;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = BIG_THRESHOLD };
    lrvm_t *s;
    alarm(60);
    if (ta->cache != 0)
        lrvm__apply_max = ta->cache;
    lrvm__io_powercut_seed(ta->seed);
    lrvm__io_inject(LRVM__IO_SYNC, ta->nth, EIO, LRVM__IO_POWERCUT);
    int fd = open(tu_path(ta->dir, LRVM__LOG_NAME), O_RDWR);
    if (fd < 0 || lrvm__io_pwrite_all(fd, ta->tail, ta->len, ta->off) < 0)
        _exit(CHILD_PIPE);
    if (lrvm_open(ta->dir, &o, &s) != 0)
        _exit(CHILD_OPEN);
    _exit(0);
}

static int tail_record(void *arg, uint64_t off, const struct lrvm__rec_header *h,
                       const unsigned char *payload)
{
    uint64_t *first = arg;
    (void)payload;
    if (h->rh_txno == TAIL_SYNCED + 1 && h->rh_part == 0)   /* numbers start at 1 */
        *first = off;
    return 0;
}

/* Recovery must not write a segment from records that a power cut can
 * still take out of the log: the segment would be ahead of the log, and
 * the replay of the shorter log over it would mix two states. */
START_TEST(test_crash_powercut_recovering_unsynced_tail)
{
    char *dir = tu_tmpdir();
    struct model m;
    model_init(&m, &SMALL);
    int st = tu_in_child(tail_build_child, dir);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "build: status 0x%x", st);

    int fd = open(tu_path(dir, LRVM__LOG_NAME), O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct lrvm__log_header h;
    struct lrvm__scan_result res;
    int slot;
    uint64_t off = 0;
    struct lrvm__scan_cb cb = { .arg = &off, .record = tail_record };
    ck_assert_int_eq(lrvm__log_read_header(fd, &h, &slot), 0);
    ck_assert_uint_eq(h.lh_first_txno, 1);
    ck_assert_int_eq(lrvm__log_scan(fd, &h, &cb, &res), 0);
    ck_assert_uint_eq(res.sr_txs, TAIL_TXS);
    ck_assert_uint_gt(off, 0);
    size_t len = (size_t)(res.sr_end - off);
    unsigned char *tail = malloc(len), *zeros = calloc(1, len);
    ck_assert(tail != NULL && zeros != NULL);
    ck_assert_int_eq(pread(fd, tail, len, (off_t)off), (ssize_t)len);
    ck_assert_int_eq(pwrite(fd, zeros, len, (off_t)off), (ssize_t)len);
    close(fd);
    ck_assert_uint_eq(log_txs(dir), TAIL_SYNCED);

    /* Each sync of the recovery (the log's, each segment's, the new
     * header's), under many power cuts; with the default batch, and with
     * one of two ranges, full long before the end of the log: its first
     * write must come after the log's sync as well. */
    uint64_t seed = tu_test_seed();
    unsigned cuts = 0;
    for (unsigned long nth = 1; nth <= 4; nth++) {
        for (unsigned k = 0; k < 48; k++) {
            char *copy = tu_tmpdir(), what[160];
            ck_assert_int_eq(tu_copy_dir(dir, copy), 0);
            struct tail_arg ta = { copy, tail, len, off, nth,
                                   tu_mix64(seed + nth * 1000003u + k), k < 32 ? 0 : 2 };
            st = tu_in_child(tail_recover_child, &ta);
            snprintf(what, sizeof what, "power cut at sync %lu of recovery, cut %u, cache %u "
                     "(LRVM_TEST_SEED=%" PRIu64 ")", nth, k, ta.cache, seed);
            ck_assert_msg((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) ||
                          (WIFEXITED(st) && WEXITSTATUS(st) == 0),
                          "%s: status 0x%x", what, st);
            cuts += WIFSIGNALED(st);
            uint64_t c = verify_store(copy, &m, TAIL_SYNCED, what);
            ck_assert_msg(c <= TAIL_TXS, "%s: %" PRIu64 " transactions", what, c);
            tu_rmrf(copy);
            free(copy);
        }
    }
    ck_assert_uint_ge(cuts, 3 * 48);
    free(tail);
    free(zeros);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    if (tu_quick_skip("crash"))   /* long: not in the quick subset */
        return 77;
    Suite *s = suite_create("crash");

    TCase *tc = tcase_create("random_kills");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_crash_random_flushing_commits);
    tcase_add_test(tc, test_crash_random_noflush_commits);
    tcase_add_test(tc, test_crash_random_multipart_small_buffer);
    tcase_add_test(tc, test_crash_random_tiny_truncate_threshold);
    tcase_add_test(tc, test_crash_random_threshold_following);
    tcase_add_test(tc, test_crash_random_explicit_truncate);
    tcase_add_test(tc, test_crash_auto_random_flushing_commits);
    tcase_add_test(tc, test_crash_auto_random_noflush_commits);
    tcase_add_test(tc, test_crash_auto_random_multipart_small_buffer);
    tcase_add_test(tc, test_crash_auto_random_tiny_truncate_threshold);
    suite_add_tcase(s, tc);

    tc = tcase_create("injected_kills");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_crash_inject_kill_each_write_sync);
    tcase_add_test(tc, test_crash_auto_inject_torn_kill_each_write_sync);
    tcase_add_test(tc, test_crash_inject_torn_kill_each_write_sync);
    tcase_add_test(tc, test_crash_inject_powercut_each_write_sync);
    tcase_add_test(tc, test_crash_inject_powercut_each_syncer_call);
    tcase_add_test(tc, test_crash_auto_inject_powercut_each_write_sync);
    tcase_add_test(tc, test_crash_inject_kill_store_creation);
    tcase_add_test(tc, test_crash_inject_powercut_store_creation);
    tcase_add_test(tc, test_crash_powercut_destroy);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery_kills");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_crash_during_recovery);
    tcase_add_test(tc, test_crash_powercut_recovering_unsynced_tail);
    suite_add_tcase(s, tc);

    return tu_run_suite(s);
}
