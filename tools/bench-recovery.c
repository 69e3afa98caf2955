/*
 * bench-recovery.c -- recovery: lrvm_open of a store whose log holds the
 * records of many no-flush commits, of two shapes of transaction, with the
 * page cache warm and dropped, each beside the read floor (bench-floors.c)
 * of the same log in the same state.
 *
 * Recovery consumes the log, so every step runs on a store made for it
 * (or a copy of one); nothing here may replay a log twice or time a step
 * whose log was not checked to be whole. It stores results in struct
 * bench and prints nothing but progress.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const bench_shape_names[NSHAPES] = { "64 KiB tx", "small tx" };
const char *const bench_state_names[NSTATES] = { "warm", "cold" };

struct rec_arg {
    char   dir[PATH_LEN];
    size_t bytes;
    int    shape;
    int    cold;       /* drop the store from the page cache first */
};

/* Fill the log with transactions of the shape a->shape until it holds
 * a->bytes, make them durable, and leave without lrvm_close (the child
 * _exits in bench_run_child). */
static void child_make_log(const struct bench *b, const void *argp, void *outp)
{
    const struct rec_arg *a = argp;
    struct mklog_result *r = outp;
    size_t threshold = (size_t)1 << 30;
    if (threshold < 2 * a->bytes)
        threshold = 2 * a->bytes;
    lrvm_options_t o = { .tracking = LRVM_TRACK_EXPLICIT, .truncate_threshold = threshold };
    lrvm_t *rvm;
    lrvm_tx_t *tx;
    void *base;
    lrvm_stats_t st;
    (void)b;
    CHECK(lrvm_open(a->dir, &o, &rvm));
    CHECK(lrvm_map(rvm, SEG_NAME, SEG_SIZE, &base));
    uint64_t *words = base;
    size_t nwords = SEG_SIZE / 8;
    /* lrvm_stats takes the store's lock: after every ~100-byte small
     * transaction it would cost about as much as the commit. */
    uint64_t check_every = a->shape == REC_SMALL ? 1024 : 1;
    uint64_t seed = SEED, n = 0;
    size_t off = 0;
    CHECK(lrvm_stats(rvm, &st));
    double t0 = now();
    do {
        CHECK(lrvm_begin(rvm, 1, &base, &tx));
        if (a->shape == REC_SMALL) {
            for (int i = 0; i < TX_WORDS; i++) {
                uint64_t *wp = words + xorshift64(&seed) % nwords;
                CHECK(lrvm_set_range(tx, wp, 8));
                *wp ^= xorshift64(&seed) | ALL_BYTES;
            }
        } else {
            uint64_t *wp = (uint64_t *)((char *)base + off);
            uint64_t v = xorshift64(&seed) | ALL_BYTES;
            CHECK(lrvm_set_range(tx, wp, REC_TX_BYTES));
            for (size_t i = 0; i < REC_TX_BYTES / 8; i++)
                wp[i] ^= v;
            off = (off + REC_TX_BYTES) % SEG_SIZE;
        }
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
        n++;
        if (n % check_every == 0)
            CHECK(lrvm_stats(rvm, &st));
    } while (st.log_size < a->bytes);
    CHECK(lrvm_flush(rvm));
    CHECK(lrvm_stats(rvm, &st));
    r->secs = now() - t0;
    if (st.truncations != 0)
        bench_child_fail("the recovery log was truncated while being made");
    r->log_size = st.log_size;
    r->commits = n;
    r->records = st.log_records;
}

static void child_recover(const struct bench *b, const void *argp, void *outp)
{
    const struct rec_arg *a = argp;
    struct recover_result *r = outp;
    lrvm_t *rvm;
    lrvm_stats_t st;
    if (a->cold)
        r->cached = bench_drop_cached(b, a->dir);
    double t0 = now();
    CHECK(lrvm_open(a->dir, NULL, &rvm));
    r->secs = now() - t0;
    CHECK(lrvm_stats(rvm, &st));
    r->log_size_after = st.log_size;
    CHECK(lrvm_close(rvm));
}

/* Parent: copy file FROM to TO (new) with read() and write(). Returns 0,
 * or -1 with the failure noted. */
static int copy_file(struct bench *b, const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    char *buf = malloc(CHUNK);
    if (buf == NULL) {
        bench_add_failure(b, "copying %s: out of memory", from);
        goto done;
    }
    if (in < 0 || (out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        bench_add_failure(b, "copying %s to %s: %s", from, to, strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t n = read(in, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            bench_add_failure(b, "reading %s: %s", from, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        for (ssize_t w = 0; w < n;) {
            ssize_t m = write(out, buf + w, (size_t)(n - w));
            if (m < 0 && errno == EINTR)
                continue;
            if (m <= 0) {
                bench_add_failure(b, "writing %s: %s", to, strerror(errno));
                goto done;
            }
            w += m;
        }
    }
    rc = 0;
done:
    if (out >= 0)
        close(out);
    if (in >= 0)
        close(in);
    free(buf);
    return rc;
}

/*
 * Parent: copy the regular files of store SRC into a new directory DST.
 * A plain copy is dense where SRC is sparse (its segment file was made
 * with ftruncate), so a cold recovery of DST reads the segment blocks it
 * updates from the disk, as in a store whose segments were written
 * before. Returns 0, or -1 with the failure noted.
 */
static int copy_store(struct bench *b, const char *src, const char *dst)
{
    if (mkdir(dst, 0700) != 0) {
        bench_add_failure(b, "%s: %s", dst, strerror(errno));
        return -1;
    }
    DIR *d = opendir(src);
    if (d == NULL) {
        bench_add_failure(b, "%s: %s", src, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        char from[PATH_LEN], to[PATH_LEN];
        struct stat sb;
        bench_path_join(b, from, src, e->d_name);
        bench_path_join(b, to, dst, e->d_name);
        if (lstat(from, &sb) != 0) {
            bench_add_failure(b, "%s: %s", from, strerror(errno));
            rc = -1;
        } else if (S_ISREG(sb.st_mode)) {
            rc = copy_file(b, from, to);
        }
    }
    if (rc == 0 && errno != 0) {
        bench_add_failure(b, "readdir %s: %s", src, strerror(errno));
        rc = -1;
    }
    closedir(d);
    return rc;
}

/* Parent: write back whatever is dirty on the file system of DIR, so that
 * writeback does not run under a later clock. */
static void sync_fs_of(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        syncfs(dfd);
        close(dfd);
    }
}

/* The read floor and the recovery of one log in one page cache state:
 * store A (warm) or its copy B (cold). */
static void recovery_step(struct bench *b, int sh, int st, int i, const struct rec_arg *a,
                          const char *path_b)
{
    const struct mklog_result *mk = &b->mk_res[sh][i];
    struct rfloor_result *rf = &b->rf_res[sh][st][i];
    struct recover_result *rc = &b->rc_res[sh][st][i];
    struct rec_arg c = *a;
    char what[160];
    c.cold = st == COLD;
    if (c.cold)
        memcpy(c.dir, path_b, sizeof c.dir);
    snprintf(what, sizeof what, "read floor, %s log, %s", bench_shape_names[sh],
             bench_state_names[st]);
    bench_progress("%s: run %d/%d...", what, i + 1, b->rec_runs);
    if (bench_read_floor(b, what, c.dir, c.bytes, c.cold, rf) == 0 && rf->bytes != c.bytes) {
        bench_add_failure(b, "%s: read %" PRIu64 " of %zu bytes", what, rf->bytes, c.bytes);
        rf->bytes = 0;
    }
    snprintf(what, sizeof what, "recovery, %s log, %s", bench_shape_names[sh],
             bench_state_names[st]);
    bench_progress("%s: lrvm_open, run %d/%d...", what, i + 1, b->rec_runs);
    if (bench_run_child(b, what, child_recover, &c, rc, sizeof *rc) == 0 &&
        rc->log_size_after >= mk->log_size) {
        bench_add_failure(b, "%s: the log was not emptied by lrvm_open (%" PRIu64
                          " bytes left)", what, rc->log_size_after);
        rc->secs = 0;
    }
}

/* Recovery, and the read floor over the same log. Recovery consumes the
 * log, so each log made in store A is copied to store B: the warm steps
 * run on A, the cold ones on B, each read floor before the recovery of
 * its store. */
void bench_recovery_runs(struct bench *b)
{
    char path[PATH_LEN], path_b[PATH_LEN], what[160];
    bench_path_join(b, path, b->root, "recovery-a");
    bench_path_join(b, path_b, b->root, "recovery-b");
    for (int sh = 0; sh < (bench_part_runs(b, PART_RECOVERY) ? NSHAPES : 0); sh++)
        for (int i = 0; i < b->rec_runs; i++) {
            const struct mklog_result *mk = &b->mk_res[sh][i];
            struct rec_arg a = { .bytes = b->rec_bytes, .shape = sh };
            memcpy(a.dir, path, sizeof a.dir);
            bench_rm_rf(path);
            bench_rm_rf(path_b);
            snprintf(what, sizeof what, "making the %s recovery log", bench_shape_names[sh]);
            bench_progress("recovery, %s log: making %zu MiB, run %d/%d...",
                           bench_shape_names[sh], b->rec_bytes >> 20, i + 1, b->rec_runs);
            if (bench_run_child(b, what, child_make_log, &a, &b->mk_res[sh][i],
                                sizeof *mk) != 0) {
                bench_rm_rf(path);
                continue;
            }
            bench_progress("recovery, %s log: %" PRIu64 " bytes of %" PRIu64 " transactions "
                           "made in %.1f s; copying the store for the cold steps...",
                           bench_shape_names[sh], mk->log_size, mk->commits, mk->secs);
            int copied = copy_store(b, path, path_b) == 0;
            /* Write back whatever is still dirty (A is not dropped from the
             * page cache), so that writeback does not run during a step. */
            sync_fs_of(b->root);
            a.bytes = mk->log_size;
            for (int st = 0; st < NSTATES && (st == WARM || copied); st++)
                recovery_step(b, sh, st, i, &a, path_b);
            bench_rm_rf(path);
            bench_rm_rf(path_b);
        }
}
