/*
 * bench-large.c -- the large part: a segment larger than the store may
 * keep in memory (twice the machine's physical memory, at most 32 GiB;
 * 4 GiB with --quick), written by small no-flush transactions that each
 * store one 8-byte word at a random page (the program says so with
 * MADV_RANDOM, as README advises), in explicit and auto mode,
 * each with the default resident limit and with 64 MiB: transactions a
 * second, and the process's RssAnon (its anonymous memory resident: the
 * private copies of segment pages and the trackers' second copies) set
 * against the limit.
 *
 * Each configuration runs in a child of its own (bench_run_child), so
 * that its RssAnon holds nothing of earlier runs; the child reads a
 * baseline before lrvm_open. The segment's blocks are reserved at
 * lrvm_map, so the part first asks the file system for the room, and is
 * skipped (not failed) without it. It stores results in struct bench and
 * prints nothing but progress.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

struct large_arg {
    char dir[PATH_LEN];
    char what[120];          /* for progress lines */
    int  mode;               /* index of bench_large_mode_names */
    int  small_limit;        /* 1: resident_limit LARGE_LIMIT, 0: the default */
};

/* Child: RssAnon of this process, in kB, from /proc/self/status. */
static uint64_t rss_anon_kb(void)
{
    char buf[8192];
    size_t got = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        bench_child_fail("/proc/self/status: %s", strerror(errno));
    while (got < sizeof buf - 1) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_child_fail("reading /proc/self/status: %s", strerror(errno));
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    const char *line = strstr(buf, "\nRssAnon:");
    if (line == NULL)
        bench_child_fail("/proc/self/status has no RssAnon line");
    return strtoull(line + strlen("\nRssAnon:"), NULL, 10);
}

/* Child: the first line of /proc/sys/vm/overcommit_memory, or "unknown". */
static const char *overcommit_mode(void)
{
    static char mode[16];
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "re");
    if (f == NULL || fgets(mode, sizeof mode, f) == NULL)
        snprintf(mode, sizeof mode, "unknown");
    if (f != NULL)
        fclose(f);
    mode[strcspn(mode, "\n")] = '\0';
    return mode;
}

/* Child: RAM and swap, in GiB (sysinfo). */
static double commit_room_gib(void)
{
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return NAN;
    return ((double)si.totalram + (double)si.totalswap) * si.mem_unit / (double)(1u << 30);
}

/* Child: does heuristic overcommit (mode 0) refuse a private writable
 * mapping of the segment's size here? */
static int overcommit_refuses(const struct bench *b)
{
    return strcmp(overcommit_mode(), "0") == 0 &&
           (double)b->large_seg / (1u << 30) > commit_room_gib();
}

static void child_large(const struct bench *b, const void *argp, void *outp)
{
    const struct large_arg *a = argp;
    struct large_result *r = outp;
    static const int tracking[LARGE_MODES] = { LRVM_TRACK_EXPLICIT, LRVM_TRACK_AUTO,
                                               LRVM_TRACK_MPROTECT };
    int explicit = a->mode == 0;
    lrvm_options_t o = { .tracking = tracking[a->mode],
                         .resident_limit = a->small_limit ? LARGE_LIMIT : 0 };
    lrvm_t *rvm;
    lrvm_tx_t *tx;
    lrvm_stats_t st;
    void *base;

    r->rss_base = rss_anon_kb();
    CHECK(lrvm_open(a->dir, &o, &rvm));
    int rc = lrvm_map(rvm, SEG_NAME, b->large_seg, &base);
    if (rc == LRVM_ENOMEM)
        bench_child_fail("lrvm_map of the %.1f GiB segment failed: %s (%d); vm.overcommit_memory "
                         "is %s, and the machine has %.1f GiB of RAM and swap%s",
                         (double)b->large_seg / (1u << 30), lrvm_strerror(rc), rc,
                         overcommit_mode(), commit_room_gib(),
                         overcommit_refuses(b) ? ": under heuristic overcommit the kernel "
                         "refuses a private writable mapping larger than that, unless it is "
                         "made with MAP_NORESERVE" : "");
    CHECK(rc);
    /* The program reads and writes its pages at random, and says so:
     * without it each first touch of a page reads the device's whole
     * readahead window around it into the page cache. */
    if (madvise(base, b->large_seg, MADV_RANDOM) != 0)
        bench_child_fail("madvise MADV_RANDOM: %s", strerror(errno));
    uint64_t *words = base;
    size_t npages = b->large_seg / b->page_size, wpp = b->page_size / 8;
    uint64_t seed = SEED, n = 0, peak = rss_anon_kb();
    uint64_t step = b->large_tx / 10 ? b->large_tx / 10 : 1, next = step;

    double t0 = now(), deadline = t0 + b->large_cap, shown = t0;
    while (n < b->large_tx) {
        size_t p = (size_t)(xorshift64(&seed) % npages);
        uint64_t *wp = words + p * wpp + xorshift64(&seed) % wpp;
        uint64_t v = xorshift64(&seed) | ALL_BYTES;
        CHECK(lrvm_begin(rvm, 1, &base, &tx));
        if (explicit)
            CHECK(lrvm_set_range(tx, wp, 8));
        *wp ^= v;
        CHECK(lrvm_commit(tx, LRVM_NO_FLUSH));
        n++;
        /* RssAnon every LARGE_SAMPLE transactions and at the end; the
         * clock every 64 transactions too, for the cap. */
        int sample = n % LARGE_SAMPLE == 0 || n == b->large_tx;
        if (!sample && n % 64 != 0)
            continue;
        double t = now();
        int over = t >= deadline && n < b->large_tx;
        if (!sample && !over)
            continue;
        uint64_t rss = rss_anon_kb();
        if (rss > peak)
            peak = rss;
        /* A line every tenth of the transactions, or of the time cap. */
        if (n >= next || t - shown >= b->large_cap / 10) {
            bench_progress("%s: %" PRIu64 " of %" PRIu64 " transactions, %.0f s, RssAnon "
                           "%.0f MiB (peak %.0f MiB)", a->what, n, b->large_tx, t - t0,
                           (double)rss / 1024, (double)peak / 1024);
            shown = t;
            while (next <= n)
                next += step;
        }
        if (over) {
            bench_progress("%s: stopped by the time cap (%.0f s) after %" PRIu64 " of %" PRIu64
                           " transactions", a->what, b->large_cap, n, b->large_tx);
            r->capped = 1;
            break;
        }
    }
    CHECK(lrvm_flush(rvm));           /* the no-flush commits become durable */
    r->secs = now() - t0;
    r->rss_final = rss_anon_kb();
    r->rss_peak = r->rss_final > peak ? r->rss_final : peak;
    CHECK(lrvm_stats(rvm, &st));
    r->tx = n;
    r->tracking = st.tracking;
    r->pages_private = st.pages_private;
    r->pages_shadow = st.pages_shadow;
    r->pages_released = st.pages_released;
    r->truncations = st.truncations;
    CHECK(lrvm_close(rvm));
}

/* Auto mode takes the userfaultfd tracker where the kernel offers it; its
 * scans walk every page table of the segment, which random pages of a
 * large segment fill, so the mprotect tracker runs too, side by side. */
const char *const bench_large_mode_names[LARGE_MODES] = { "explicit", "auto", "mprotect" };

/* The free space where the stores are: the segment and LARGE_ROOM, or the
 * part is skipped (noted in struct bench for the report). */
static int large_room(struct bench *b)
{
    struct statvfs sv;
    if (statvfs(b->root, &sv) != 0)
        bench_die(b, "statvfs %s: %s", b->root, strerror(errno));
    b->large_need = (uint64_t)b->large_seg + LARGE_ROOM;
    b->large_free = (uint64_t)sv.f_bavail * sv.f_frsize;
    if (b->large_free >= b->large_need)
        return 1;
    b->large_skipped = 1;
    bench_progress("large: skipped: the %.1f GiB segment needs %.1f GiB free on %s (with "
                   "1 GiB for the log and truncation), %.1f GiB free",
                   (double)b->large_seg / (1u << 30), (double)b->large_need / (1u << 30),
                   b->root, (double)b->large_free / (1u << 30));
    return 0;
}

void bench_large_runs(struct bench *b)
{
    char path[PATH_LEN];
    if (!bench_part_runs(b, PART_LARGE) || !large_room(b))
        return;
    bench_path_join(b, path, b->root, "large");
    for (int i = 0; i < b->runs; i++)
        for (int m = 0; m < LARGE_MODES; m++)
            for (int l = 0; l < 2; l++) {
                struct large_arg a = { .mode = m, .small_limit = l };
                struct large_result *r = &b->lg_res[m][l][i];
                memcpy(a.dir, path, sizeof a.dir);
                snprintf(a.what, sizeof a.what, "large %s, resident limit %s, run %d/%d",
                         bench_large_mode_names[m], l ? "64 MiB" : "default", i + 1, b->runs);
                bench_progress("%s: %.1f GiB segment, %" PRIu64 " transactions...", a.what,
                               (double)b->large_seg / (1u << 30), b->large_tx);
                bench_rm_rf(path);
                if (bench_run_child(b, a.what, child_large, &a, r, sizeof *r) == 0 &&
                    r->tx == 0)
                    bench_add_failure(b, "%s: nothing measured", a.what);
                bench_rm_rf(path);           /* the segment is large */
            }
}
