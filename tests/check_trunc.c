/*
 * check_trunc.c -- truncation beside the commits: while a generation of
 * the log is applied to the segment files, commits go on in the next one
 * and never wait for a segment file: commits that outrun it are slowed a
 * little before the wall, and wait at the wall, and both are counted
 * (commit_waits); every state a crash leaves on the way
 * recovers (both generations in the log, the thread's header written or
 * torn), a retiring generation short of its count is damage, and a log
 * of format 2 from an older liblrvm still opens. lrvmutl info names both
 * generations of a log caught in the middle. The truncation's thread and
 * the log's syncer carry their names (lrvm-trunc, lrvm-sync).
 *
 * The fault layer's hold (lrvm__io_hold) stops the truncation's thread at
 * its first segment sync, so what commits do meanwhile is seen without
 * timing. Kills and power cuts at each call of a truncation beside
 * threads' commits are check_group's (the same harness as its other
 * kills); the resident limit's case is check_resident's.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEG        ((size_t)64 << 10)
#define THRESHOLD  ((size_t)64 << 10)
#define WORDS      500

static void setup(void)
{
    lrvm__io_hold(0);
    lrvm__io_inject(0, 0, 0, 0);
}

static void teardown(void)
{
    lrvm__io_hold(0);
}

/* Transaction I: word 0 of the segment is I, word 1 + I % WORDS a value
 * of I, and LEN bytes of I's pattern at 8 KiB (so that a transaction can
 * be made large). */
static uint64_t value(uint64_t i)
{
    return tu_mix64(i) | 1;
}

static int commit_i(lrvm_t *s, uint64_t *seg, uint64_t i, size_t len)
{
    lrvm_tx_t *tx;
    unsigned char *bulk = (unsigned char *)seg + 8192;
    int rc = lrvm_begin(s, 1, (void *const *)&seg, &tx);
    if (rc != 0)
        return rc;
    uint64_t *w = &seg[1 + i % WORDS];
    if ((rc = lrvm_set_range(tx, &seg[0], 8)) != 0 || (rc = lrvm_set_range(tx, w, 8)) != 0 ||
        (len > 0 && (rc = lrvm_set_range(tx, bulk, len)) != 0))
        return rc;
    seg[0] = i;
    *w = value(i);
    memset(bulk, (int)(i & 0xff), len);
    return lrvm_commit(tx, 0);
}

/* The segment after transactions 1..N holds what they wrote. */
static void expect_history(const uint64_t *seg, uint64_t n, const char *what)
{
    ck_assert_msg(seg[0] == n, "%s: %" PRIu64 " transactions, not %" PRIu64, what, seg[0], n);
    for (uint64_t i = n > WORDS ? n - WORDS + 1 : 1; i <= n; i++)
        ck_assert_msg(seg[1 + i % WORDS] == value(i), "%s: transaction %" PRIu64 " missing",
                      what, i);
}

static lrvm_t *open_explicit(const char *dir)
{
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = THRESHOLD };
    return tu_open(dir, &o);
}

/* Commit from *NEXT on until a truncation's thread waits in the hold;
 * *NEXT is then the next number. Once the log retires a generation (the
 * truncation has begun) no more commits are made while the thread goes
 * to the hold: the tests start from a log just past its threshold, not
 * from however much a slow machine let the commits write meanwhile,
 * which would make them paced before the test's own commits. (Read
 * without the store lock: only this thread's commits change it.) */
static void commit_until_held(lrvm_t *s, uint64_t *seg, uint64_t *next)
{
    for (int k = 0; lrvm__io_held() == 0; k++) {
        ck_assert_msg(k < 100000, "no truncation reached the hold");
        if (s->log.lg_retiring)
            usleep(1000);
        else
            ck_assert_int_eq(commit_i(s, seg, (*next)++, 0), 0);
    }
}

/* The store's count of commit waits, read while another thread may hold
 * the store lock (waiting at the wall): a relaxed atomic load. */
static uint64_t commit_waits_now(lrvm_t *s)
{
    return __atomic_load_n(&s->stats.commit_waits, __ATOMIC_RELAXED);
}

struct committer {
    lrvm_t   *s;
    uint64_t *seg;
    uint64_t  first, n;
    size_t    len;
    int       rc;
};

static void *committer_run(void *arg)
{
    struct committer *c = arg;
    for (uint64_t i = c->first; i < c->first + c->n && c->rc == 0; i++)
        c->rc = commit_i(c->s, c->seg, i, c->len);
    return NULL;
}

/* ------------------------------------------------------------ tests */

/* The truncation's thread is stopped at its segment sync. Another
 * thread's commits complete meanwhile, none of them waiting; then a
 * thread whose commits pass the wall (the current generation may take a
 * threshold while the other is applied) waits there, is counted, and
 * goes on once the segment sync is let go; everything is there after a
 * reopen. */
START_TEST(test_trunc_commits_go_on_while_segment_sync_held)
{
    lrvm_t *s = open_explicit(NULL);
    uint64_t *seg = tu_map(s, "a", SEG), next = 1;
    lrvm__io_hold(LRVM__IO_SYNC);
    commit_until_held(s, seg, &next);

    struct committer c = { s, seg, next, 20, 0, 0 };
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, committer_run, &c), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(c.rc, 0);
    next += c.n;
    ck_assert_uint_eq(lrvm__io_held(), 1);          /* still stopped */
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_eq(st.commit_waits, 0);
    ck_assert_uint_eq(st.truncations, 0);

    /* 4 KiB a commit: 40 of them pass a 64 KiB wall. */
    c = (struct committer){ s, seg, next, 40, 4096, 0 };
    ck_assert_int_eq(pthread_create(&th, NULL, committer_run, &c), 0);
    for (int k = 0; commit_waits_now(s) == 0; k++) {
        ck_assert_msg(k < 30000, "no commit reached the wall");
        usleep(1000);
    }
    ck_assert_uint_eq(lrvm__io_held(), 1);          /* it waits for this one */
    lrvm__io_hold(0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(c.rc, 0);
    next += c.n;
    st = tu_wait_truncations(s, 1);
    ck_assert_uint_ge(st.commit_waits, 1);           /* more when C outruns the next one too */
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_explicit(NULL);
    seg = tu_map(s, "a", SEG);
    expect_history(seg, next - 1, "after the reopen");
    ck_assert_int_eq(((unsigned char *)seg)[8192 + 4095], (next - 1) & 0xff);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* How many threads of this process are named NAME. */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], comm[32] = "";
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;                       /* it ended meanwhile */
        if (fgets(comm, sizeof comm, f) != NULL)
            comm[strcspn(comm, "\n")] = 0;
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

/* Wait until no thread is named NAME: a joined thread leaves the
 * kernel's list of the process's threads a moment after its join. */
static void wait_unnamed(const char *name)
{
    for (int k = 0; threads_named(name) > 0; k++) {
        ck_assert_msg(k < 10000, "a thread named %s 10 s after its store closed", name);
        usleep(1000);
    }
}

/* lrvm's own threads carry names that top -H, ps and perf show: the
 * truncation's, held at its segment sync, and the log's syncer. */
START_TEST(test_trunc_threads_are_named)
{
    lrvm_t *s = open_explicit(NULL);
    uint64_t *seg = tu_map(s, "a", SEG), next = 1;
    ck_assert_int_eq(threads_named("lrvm-trunc"), 0);
    lrvm__io_hold(LRVM__IO_SYNC);
    commit_until_held(s, seg, &next);
    ck_assert_int_eq(threads_named("lrvm-trunc"), 1);
    lrvm__io_hold(0);
    ck_assert_int_eq(lrvm_close(s), 0);
    wait_unnamed("lrvm-trunc");
    wait_unnamed("lrvm-sync");              /* the first store's, if it ran */

    /* The syncer starts when no-flush records fill the log's buffer, in
     * a generation too large to be switched meanwhile. */
    s = tu_open_mode(LRVM_TRACK_EXPLICIT, (size_t)1 << 30);
    seg = tu_map(s, "a", SEG);
    unsigned char *bulk = (unsigned char *)seg + 8192;
    for (int k = 0; threads_named("lrvm-sync") == 0; k++) {
        lrvm_tx_t *tx;
        ck_assert_msg(k < 10000, "no syncer after %d no-flush commits of 4 KiB", k);
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&seg, &tx), 0);
        ck_assert_int_eq(lrvm_set_range(tx, bulk, 4096), 0);
        memset(bulk, k & 0xff, 4096);
        ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    }
    ck_assert_int_eq(threads_named("lrvm-sync"), 1);
    ck_assert_int_eq(lrvm_close(s), 0);
    wait_unnamed("lrvm-sync");
}
END_TEST

/* Commits that outrun a truncation are slowed before they reach the
 * wall. The thread is stopped at its first segment write, its scan done
 * and nothing written (a fifth of its work): the commits may take a
 * tenth of the room beyond what the thread has done, so small ones go on
 * unslowed, and 4 KiB ones, still far from the wall, are each slowed a
 * little and counted, while the thread stays where it is. */
START_TEST(test_trunc_commits_paced_before_the_wall)
{
    lrvm_t *s = open_explicit(NULL);
    uint64_t *seg = tu_map(s, "a", SEG), next = 1;
    lrvm__io_hold(LRVM__IO_WRITE);
    commit_until_held(s, seg, &next);
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(commit_i(s, seg, next++, 0), 0);
    ck_assert_uint_eq(commit_waits_now(s), 0);
    for (int k = 0; k < 8; k++)                     /* 32 KiB of a 64 KiB room */
        ck_assert_int_eq(commit_i(s, seg, next++, 4096), 0);
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_ge(st.commit_waits, 1);
    ck_assert_uint_eq(st.truncations, 0);
    ck_assert_uint_eq(lrvm__io_held(), 1);          /* none of them waited for it */
    lrvm__io_hold(0);
    st = tu_wait_truncations(s, 1);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = open_explicit(NULL);
    seg = tu_map(s, "a", SEG);
    expect_history(seg, next - 1, "after the reopen");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/*
 * The thread's wait for its writeback reports a failed writeback of the
 * segment file, which the file's next fdatasync would not report again:
 * it must fail the truncation as a failed sync does. With every wait
 * failing, no truncation beside the commits completes, the commits go on
 * (64 KiB ones, a 2 MiB threshold: each truncation writes two regions
 * and waits; 3 MiB in all, short of the wall, where a commit would get
 * the truncation's error), and lrvm_truncate, once the waits succeed,
 * puts everything in the file. Reading the wait's error as success would let the log go
 * while the file may lack its blocks.
 */
START_TEST(test_trunc_failed_writeback_wait_fails_the_truncation)
{
    enum { BIG = 4 << 20, CHUNK = 64 << 10, N = 48 };   /* 3 MiB: short of the wall */
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = (size_t)2 << 20 };
    lrvm_t *s = tu_open(NULL, &o);
    unsigned char *big = tu_map(s, "big", BIG);
    lrvm__io_inject(LRVM__IO_WAIT, 1, EIO, LRVM__IO_ALWAYS | LRVM__IO_TRUNCATION);
    for (int i = 0; i < N; i++) {
        unsigned char *p = big + (size_t)i * CHUNK;
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&big, &tx), 0);
        ck_assert_int_eq(lrvm_set_range(tx, p, CHUNK), 0);
        memset(p, 1 + i, CHUNK);
        ck_assert_int_eq(lrvm_commit(tx, 0), 0);
    }
    /* The thread may not have reached its first wait yet (under a
     * sanitizer it is slow): give it ten seconds. */
    for (int ms = 0; lrvm__io_calls() == 0 && ms < 10000; ms++)
        usleep(1000);
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    unsigned long waits = lrvm__io_calls();
    lrvm__io_inject(0, 0, 0, 0);
    ck_assert_msg(waits >= 1, "no truncation waited for its writeback");
    ck_assert_msg(st.truncations == 0, "%" PRIu64 " truncations completed with every wait failing",
                  (uint64_t)st.truncations);
    ck_assert_int_eq(lrvm_truncate(s), 0);
    unsigned char *file = malloc(BIG);
    ck_assert_ptr_nonnull(file);
    ck_assert_int_eq(tu_read(tu_path(tu_dir, "big.seg"), file, BIG, 0), 0);
    for (int c = 0; c < BIG / CHUNK; c++) {
        int want = c < N ? 1 + c : 0;
        ck_assert_msg(file[(size_t)c * CHUNK] == want && file[(size_t)c * CHUNK + CHUNK - 1] == want,
                      "chunk %d of the file is not transaction %d's", c, c);
    }
    free(file);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* lrvm_truncate while a truncation runs beside the commits waits for it,
 * then applies the rest: when it returns, the files hold every commit
 * and the log is the header alone. */
START_TEST(test_trunc_lrvm_truncate_waits_for_the_running_one)
{
    lrvm_t *s = open_explicit(NULL);
    uint64_t *seg = tu_map(s, "a", SEG), next = 1;
    lrvm__io_hold(LRVM__IO_SYNC);
    commit_until_held(s, seg, &next);
    for (int k = 0; k < 5; k++)
        ck_assert_int_eq(commit_i(s, seg, next++, 0), 0);
    lrvm__io_hold(0);
    ck_assert_int_eq(lrvm_truncate(s), 0);
    lrvm_stats_t st;
    ck_assert_int_eq(lrvm_stats(s, &st), 0);
    ck_assert_uint_eq(st.log_size, LRVM__LOG_HEADER_SIZE);
    ck_assert_uint_eq(st.truncations, 2);
    /* The file, read past the process's pages. */
    uint64_t file[WORDS + 1];
    ck_assert_int_eq(tu_read(tu_path(tu_dir, "a.seg"), file, sizeof file, 0), 0);
    expect_history(file, next - 1, "the segment file");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* The truncation's thread keeps pace with the commits, at most a quarter
 * of the room ahead of them; when they stop it must not wait for them.
 * Here the generation's 64 KiB commits lie in four regions of the
 * segment, so after the first the thread is ahead of commits that made
 * none since the switch: it must still reach its segment sync (held
 * there), then everything is in the file. */
START_TEST(test_trunc_thread_ends_when_the_commits_stop)
{
    const size_t chunk = 64 << 10, seg_size = 4 << 20;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = 1 << 20 };
    lrvm_t *s = tu_open(NULL, &o);
    unsigned char *seg = tu_map(s, "a", seg_size);
    lrvm__io_hold(LRVM__IO_SYNC);
    int i = 0;
    for (; !s->log.lg_retiring; i++) {      /* only this thread commits */
        ck_assert_int_lt(i, 64);
        unsigned char *p = seg + (size_t)(i * 4 % 64) * chunk;
        lrvm_tx_t *tx;
        ck_assert_int_eq(lrvm_begin(s, 1, (void *const *)&seg, &tx), 0);
        ck_assert_int_eq(lrvm_set_range(tx, p, chunk), 0);
        memset(p, 'A' + i % 26, chunk);
        ck_assert_int_eq(lrvm_commit(tx, LRVM_NO_FLUSH), 0);
    }
    for (int k = 0; lrvm__io_held() == 0; k++) {
        ck_assert_msg(k < 10000, "the truncation waits for commits that stopped");
        usleep(1000);
    }
    lrvm__io_hold(0);
    ck_assert_int_eq(lrvm_truncate(s), 0);
    unsigned char *file = malloc(seg_size);
    ck_assert_ptr_nonnull(file);
    ck_assert_int_eq(tu_read(tu_path(tu_dir, "a.seg"), file, seg_size, 0), 0);
    ck_assert_int_eq(memcmp(file, seg, seg_size), 0);
    free(file);
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

/* ------------------------------------------------ crash states by hand */

/* A child that commits until the truncation's thread is held at its
 * segment sync, then N more in the next generation, and dies there:
 * the log names both generations. Returns the last transaction. */
struct two_gen {
    char     dir[4096];
    uint64_t last;
};

static void two_gen_child(const void *arg)
{
    const struct two_gen *t = arg;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = THRESHOLD };
    lrvm_t *s;
    void *base;
    void *b;                            /* a second file for snap_take */
    TU_CHILD_CHECK(lrvm_open(t->dir, &o, &s) == 0 && lrvm_map(s, "a", SEG, &base) == 0 &&
                   lrvm_map(s, "b", 4096, &b) == 0);
    uint64_t *seg = base, next = 1;
    lrvm__io_hold(LRVM__IO_SYNC);
    while (lrvm__io_held() == 0)
        TU_CHILD_CHECK(commit_i(s, seg, next++, 0) == 0);
    for (int k = 0; k < 10; k++)
        TU_CHILD_CHECK(commit_i(s, seg, next++, 0) == 0);
    tu_report((int)(next - 1));
    _exit(0);                           /* the thread still held */
}

static void make_two_gen(struct two_gen *t, const char *root)
{
    snprintf(t->dir, sizeof t->dir, "%s/base", root);
    int vals[4], n = 0;
    int st = tu_run_child(two_gen_child, t, vals, 4, &n);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && n == 1 && vals[0] > 0,
                  "child failed (line %d)", tu_child_failed_line(vals, n));
    t->last = (uint64_t)vals[0];
}

static const char *copy_of(const char *root, const struct two_gen *t, const char *name)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ck_assert_int_eq(tu_copy_dir(t->dir, dir), 0);
    return dir;
}

static void read_header(const char *dir, struct lrvm__log_header *h, int *slot)
{
    int fd = open(tu_path(dir, LRVM__LOG_NAME), O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(lrvm__log_read_header(fd, h, slot), 0);
    close(fd);
}

/* What lrvmutl verify says of DIR's log (recovery's checks, read-only). */
static int check_log(const char *dir, struct lrvm__check *c)
{
    int lfd = open(tu_path(dir, LRVM__LOG_NAME), O_RDONLY), dfd = open(dir, O_RDONLY);
    struct lrvm__log_header h;
    int slot;
    ck_assert_int_eq(lrvm__log_read_header(lfd, &h, &slot), 0);
    int rc = lrvm__recover_check(dfd, lfd, &h, NULL, NULL, c);
    free(c->segs);
    close(lfd);
    close(dfd);
    return rc;
}

/* lrvmutl's output of COMMAND on DIR ($LRVMUTL, which make check sets;
 * NULL without it), malloc'ed. */
static char *lrvmutl(const char *command, const char *dir)
{
    const char *tool = getenv("LRVMUTL");
    if (tool == NULL)
        return NULL;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s '%s' 2>&1", tool, command, dir);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    while (n + 1 < cap && (n += fread(out + n, 1, cap - 1 - n, f)) > 0 && !feof(f))
        ;
    out[n] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    return out;
}

/* lrvmutl info names both generations of DIR (header H), in text and in
 * JSON, and verify takes the log. */
static void expect_info_names_both(const char *dir, const struct lrvm__log_header *h)
{
    char want[512], *out = lrvmutl("info", dir);
    if (out == NULL)
        return;
    snprintf(want, sizeof want, "then generation %" PRIu64 ", records from offset %" PRIu64
             ", first transaction number %" PRIu64, h->lh_generation + 1, h->lh_next_start,
             h->lh_next_txno);
    ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
    free(out);
    out = lrvmutl("info --json", dir);
    snprintf(want, sizeof want, "\"next\": {\"generation\": %" PRIu64 ", \"start\": %" PRIu64
             ", \"first_txno\": %" PRIu64 "}", h->lh_generation + 1, h->lh_next_start,
             h->lh_next_txno);
    ck_assert_msg(strstr(out, want) != NULL, "no '%s' in:\n%s", want, out);
    free(out);
    free(lrvmutl("verify", dir));
}

static void expect_opens_with(const char *dir, uint64_t n, const char *what)
{
    lrvm_t *s = open_explicit(dir);
    uint64_t *seg = tu_map(s, "a", SEG);
    expect_history(seg, n, what);
    ck_assert_int_eq(lrvm_close(s), 0);
    struct lrvm__log_header h;
    int slot;
    read_header(dir, &h, &slot);
    ck_assert_msg(h.lh_version == LRVM__LOG_VERSION && h.lh_next_start == 0 &&
                  h.lh_start == LRVM__LOG_HEADER_SIZE, "%s: not one generation at 4096", what);
}

/* The states a crash leaves around a truncation beside the commits:
 * after the switch's header (both generations in the log: both are
 * replayed, the retiring one first, and lrvmutl's check agrees); after
 * the thread's header (the next generation alone: the files hold the
 * retiring one); that header torn (the switch's stays current); and the
 * retiring generation short of the count its header gives, which is
 * damage: refused, nothing written. */
START_TEST(test_trunc_crash_states_recover)
{
    char *root = tu_tmpdir();
    struct two_gen t;
    make_two_gen(&t, root);
    struct lrvm__log_header h;
    int slot;
    read_header(t.dir, &h, &slot);
    ck_assert_uint_ne(h.lh_next_start, 0);
    ck_assert_uint_gt(h.lh_next_txno, h.lh_first_txno);
    ck_assert_uint_lt(h.lh_next_txno, t.last);      /* some in the next generation */
    struct lrvm__check c;

    /* After the switch's header. */
    const char *d = copy_of(root, &t, "switched");
    ck_assert_int_eq(check_log(d, &c), 0);
    expect_info_names_both(d, &h);
    ck_assert_uint_eq(c.scan.sr_txs, t.last - h.lh_first_txno + 1);
    expect_opens_with(d, t.last, "both generations");

    /* After the thread's header: {g+1, next start} in the other slot. */
    struct lrvm__log_header retired = { LRVM__LOG_VERSION, h.lh_generation + 1, h.lh_next_txno,
                                        h.lh_next_start, 0, 0 };
    unsigned char buf[LRVM__LOG_SLOT_SIZE];
    lrvm__log_header_encode(buf, &retired);
    d = copy_of(root, &t, "retired");
    ck_assert_int_eq(tu_write(tu_path(d, LRVM__LOG_NAME), buf, sizeof buf,
                              (uint64_t)!slot * LRVM__LOG_SLOT_SIZE), 0);
    struct lrvm__log_header now;
    int now_slot;
    read_header(d, &now, &now_slot);
    ck_assert_int_eq(now_slot, !slot);
    ck_assert_uint_eq(now.lh_generation, h.lh_generation + 1);
    ck_assert_int_eq(check_log(d, &c), 0);
    expect_opens_with(d, t.last, "the next generation alone");

    /* That header torn: its first sector only. */
    d = copy_of(root, &t, "torn");
    unsigned char half[256];
    memcpy(half, buf, sizeof half);
    ck_assert_int_eq(tu_write(tu_path(d, LRVM__LOG_NAME), half, 40,
                              (uint64_t)!slot * LRVM__LOG_SLOT_SIZE), 0);
    read_header(d, &now, &now_slot);
    ck_assert_int_eq(now_slot, slot);
    expect_opens_with(d, t.last, "the thread's header torn");

    /* The retiring generation's last record gone: damage (V8). */
    d = copy_of(root, &t, "short");
    int fd = open(tu_path(d, LRVM__LOG_NAME), O_RDONLY);
    struct lrvm__scan_cb cb = { .end_txno = h.lh_next_txno - 1 };
    struct lrvm__scan_result res;
    struct lrvm__log_pos from = { h.lh_start, h.lh_first_txno };
    ck_assert_int_eq(lrvm__log_scan_from(fd, &h, &from, &cb, &res), 0);
    close(fd);
    ck_assert_uint_eq(res.sr_txs, h.lh_next_txno - 1 - h.lh_first_txno);
    static const unsigned char zeros[64];
    ck_assert_int_eq(tu_write(tu_path(d, LRVM__LOG_NAME), zeros, sizeof zeros, res.sr_end), 0);
    struct snapshot snap;
    snap_take(d, &snap);
    ck_assert_int_eq(check_log(d, &c), LRVM_ECORRUPT);
    ck_assert_int_eq(open_close(d), LRVM_ECORRUPT);
    snap_same(d, &snap, "a retiring generation short of its count");

    tu_rmrf(root);
    free(root);
}
END_TEST

/* A log of format 2 (header CRC at 32, no starts) from an older liblrvm
 * opens: its records are replayed and the next generation is written in
 * format 3. */
START_TEST(test_trunc_format2_log_opens)
{
    struct hostile hs;
    hostile_setup(&hs);
    struct lrvm__log_header v2 = { 2, hs.h.lh_generation + 3, 77, 0, 0, 0 };
    unsigned char slot[LRVM__LOG_SLOT_SIZE] = { 0 }, none[LRVM__LOG_SLOT_SIZE] = { 0 };
    lrvm__log_header_encode(slot, &v2);
    ck_assert_int_eq(tu_write(hs.log, slot, sizeof slot, 0), 0);
    ck_assert_int_eq(tu_write(hs.log, none, sizeof none, LRVM__LOG_SLOT_SIZE), 0);
    struct pl p = { .n = 0 };
    pl_define(&p, "a");
    pl_byte(&p, LRVM__ENT_RANGE);
    pl_varint(&p, 0);
    pl_varint(&p, 100);
    pl_varint(&p, 5);
    memcpy(p.b + p.n, "older", 5);
    p.n += 5;
    uint64_t end = put_record(hs.log, LRVM__LOG_HEADER_SIZE, v2.lh_generation, 77, 0,
                              LRVM__REC_COMMIT, &p);
    ck_assert_int_eq(tu_write(hs.log, (unsigned char[64]){ 0 }, 64, end), 0);

    struct lrvm__log_header h;
    int at;
    read_header(hs.store, &h, &at);
    ck_assert_uint_eq(h.lh_version, 2);
    ck_assert_uint_eq(h.lh_start, LRVM__LOG_HEADER_SIZE);
    ck_assert_int_eq(open_close(hs.store), 0);
    char got[5];
    ck_assert_int_eq(tu_read(tu_path(hs.store, "a.seg"), got, 5, 100), 0);
    ck_assert_mem_eq(got, "older", 5);
    read_header(hs.store, &h, &at);
    ck_assert_uint_eq(h.lh_version, LRVM__LOG_VERSION);
    ck_assert_uint_gt(h.lh_generation, v2.lh_generation);
    ck_assert_uint_eq(h.lh_first_txno, 78);
    hostile_free(&hs);
}
END_TEST

/* The threshold left to lrvm follows the bytes of the segments mapped,
 * from 32 MiB up to 64 MiB or a quarter of the resident limit, the less;
 * an option is kept as given. */
static size_t threshold_of(lrvm_t *s)
{
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    size_t t = lrvm__truncate_threshold(s);
    lrvm__unlock(&s->mu);
    return t;
}

static uint64_t room_of(lrvm_t *s)
{
    lrvm__lock(&s->mu, LRVM__RANK_STORE);
    uint64_t r = s->log.lg_room;
    lrvm__unlock(&s->mu);
    return r;
}

START_TEST(test_trunc_threshold_follows_segments)
{
    /* The default resident limit is less on a machine of less than 2 GiB:
     * 256 MiB here, whose quarter is the ceiling's 64 MiB. */
    const size_t MiB = (size_t)1 << 20;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .resident_limit = 256 * MiB };
    lrvm_t *s = tu_open(NULL, &o);
    ck_assert_uint_eq(threshold_of(s), 32 * MiB);
    (void)tu_map(s, "a", 16 * MiB);
    ck_assert_uint_eq(threshold_of(s), 32 * MiB);
    void *b = tu_map(s, "b", 40 * MiB);
    ck_assert_uint_eq(threshold_of(s), 56 * MiB);
    (void)tu_map(s, "c", 16 * MiB);
    ck_assert_uint_eq(threshold_of(s), 64 * MiB);
    ck_assert_int_eq(lrvm_unmap(s, b), 0);
    ck_assert_uint_eq(threshold_of(s), 32 * MiB);
    ck_assert_int_eq(lrvm_close(s), 0);

    const struct { size_t limit, threshold, want; } cases[] = {
        { 200 * MiB, 0, 50 * MiB },     /* a quarter of the limit */
        { 64 * MiB, 0, 32 * MiB },      /* a quarter below the floor: the floor */
        { 256 * MiB, MiB, MiB },        /* the option, as given */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        o.resident_limit = cases[i].limit;
        o.truncate_threshold = cases[i].threshold;
        s = tu_open(NULL, &o);
        (void)tu_map(s, "b", 100 * MiB);
        ck_assert_uint_eq(threshold_of(s), cases[i].want);
        ck_assert_int_eq(lrvm_close(s), 0);
    }
}
END_TEST

/* The same, in the commits: with the floor at 64 KiB, a 512 KiB segment
 * lets the log grow to 512 KiB before a truncation starts, and the file
 * stays within two and a half of that room; once a 16 KiB segment is all
 * that is mapped, truncations come every 64 KiB again. Every commit is
 * there after a reopen. */
START_TEST(test_trunc_threshold_follows_segments_in_commits)
{
    const size_t floor = (size_t)64 << 10, big = (size_t)512 << 10, chunk = (size_t)16 << 10;
    lrvm__truncate_default = floor;
    lrvm__truncate_most = (size_t)1 << 20;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .resident_limit = (size_t)64 << 20 };
    lrvm_t *s = tu_open(NULL, &o);
    uint64_t *a = tu_map(s, "a", big), *b = tu_map(s, "b", chunk);
    ck_assert_uint_eq(threshold_of(s), big + chunk);
    uint64_t i = 1, most = 0;
    lrvm_stats_t st;
    /* 24 commits of 16 KiB: some 400 KiB of log, past the floor six times */
    for (; i <= 24; i++) {
        ck_assert_int_eq(commit_i(s, a, i, chunk), 0);
        ck_assert_int_eq(lrvm_stats(s, &st), 0);
        ck_assert_msg(st.truncations == 0, "a truncation after %" PRIu64 " KiB of log",
                      st.log_size >> 10);
    }
    for (; i <= 120; i++) {
        ck_assert_int_eq(commit_i(s, a, i, chunk), 0);
        ck_assert_int_eq(lrvm_stats(s, &st), 0);
        most = st.log_size > most ? st.log_size : most;
    }
    st = tu_wait_truncations(s, 2);
    ck_assert_uint_le(most, 5 * (big + chunk) / 2 + 2 * (chunk + 512) + 8192);
    ck_assert_uint_eq(room_of(s), big + chunk);     /* the switches gave the log its room */
    /* B alone: the floor again */
    ck_assert_int_eq(lrvm_unmap(s, a), 0);
    ck_assert_uint_eq(threshold_of(s), floor);
    uint64_t before = st.truncations;
    for (uint64_t j = 1; j <= 40; j++)
        ck_assert_int_eq(commit_i(s, b, j, 4096), 0);
    st = tu_wait_truncations(s, before + 2);
    ck_assert_uint_eq(room_of(s), floor);
    ck_assert_int_eq(lrvm_close(s), 0);

    s = tu_open(NULL, &o);
    a = tu_map(s, "a", big);
    b = tu_map(s, "b", chunk);
    expect_history(a, i - 1, "segment a after a reopen");
    expect_history(b, 40, "segment b after a reopen");
    ck_assert_int_eq(lrvm_close(s), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trunc");
    TCase *tc = tu_tcase("trunc", 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_trunc_commits_go_on_while_segment_sync_held);
    tcase_add_test(tc, test_trunc_threads_are_named);
    tcase_add_test(tc, test_trunc_commits_paced_before_the_wall);
    tcase_add_test(tc, test_trunc_failed_writeback_wait_fails_the_truncation);
    tcase_add_test(tc, test_trunc_lrvm_truncate_waits_for_the_running_one);
    tcase_add_test(tc, test_trunc_thread_ends_when_the_commits_stop);
    tcase_add_test(tc, test_trunc_crash_states_recover);
    tcase_add_test(tc, test_trunc_format2_log_opens);
    tcase_add_test(tc, test_trunc_threshold_follows_segments);
    tcase_add_test(tc, test_trunc_threshold_follows_segments_in_commits);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
