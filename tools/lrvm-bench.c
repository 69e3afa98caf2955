/*
 * lrvm-bench -- what lrvm's transactions cost, next to what the machine
 * allows without lrvm.
 *
 * Workloads, each in auto and explicit tracking mode, with flushing and
 * with LRVM_NO_FLUSH commits, on a 64 MiB segment. Before timing, every
 * page of the segment is written once in transactions, so the pages are
 * private copies (the steady state of a long-running program):
 *   small-tx   4 random 8-byte words changed per transaction
 *   pages-P    8 bytes changed on each of P distinct random pages, P = 1, 16, 256
 *   seq-64     64 contiguous pages rewritten whole per transaction, moving on
 *   recovery   lrvm_open of a store whose log holds 256 MiB of records, made
 *              in explicit mode with no-flush commits and one lrvm_flush,
 *              of two shapes: "64 KiB tx" (64 KiB contiguous ranges, moving
 *              on) and "small tx" (4 random 8-byte words, as small-tx);
 *              each with the page cache warm (as after a process crash)
 *              and dropped (as after a machine crash: every file of the
 *              store fdatasync'ed, POSIX_FADV_DONTNEED, and checked with
 *              mincore() to be out of the cache before the clock starts)
 * Floors, measured in the same run without lrvm:
 *   fault      write faults on a PROT_READ MAP_PRIVATE file mapping whose
 *              SIGSEGV handler only mprotects the page writable; after each
 *              batch of P pages one mprotect(PROT_READ) over the batch's
 *              span, as lrvm's commit does. Pages "copied" (written before)
 *              and "fresh" (first write since mapping: copy on write).
 *   write      128-byte in-place pwrite + fdatasync in a preallocated file
 *   read       sequential read() of the recovery log in 1 MiB chunks, in
 *              the same page cache state as the recovery it is set against
 *   threads    the fault and uffd floors' loop, 4 random pages a batch, from
 *              T threads at once (T = 1, 2, 4, 8), each on a 16 MiB slice of
 *              its own: pages/s, set against the threads part
 *   disk       256 MiB in 1 MiB pwrites to a new file, synced every 16 MiB
 *   line       two threads pinned to two CPUs, each doing 200 dependent
 *              steps of work and one compare-and-swap an operation (the
 *              next steps need its result), of one shared word, then of
 *              words on lines of their own: what taking a cache line from
 *              the other CPU adds to an operation, as the log's one order
 *              does to each of two threads' commits
 * Group commit:
 *   threads T  flushed small-tx in explicit mode from T threads at once
 *              (T = 1, 2, 4, 8), each on its own 1 MiB segment: tx/s
 *              and commits per fdatasync, against the write floor
 *   threads    (the part) no-flush small-tx from T threads, each on its own
 *              16 MiB segment, in each mode: tx/s, captured pages/s, and the
 *              process's CPU time per transaction and cores busy; explicit
 *              mode again with the truncation held off, and on one segment
 *              the threads share (lrvm_begin_shared), 16 MiB of it each
 * The heap:
 *   heap       per no-flush transaction, one lrvm_free and one lrvm_malloc
 *              (16-256 bytes) among 64K live blocks, and an 8-byte store
 *              into the new block; both modes, against the same loop on
 *              the C library's malloc and free (the heap floor); and from
 *              1 and 2 threads on one heap in shared transactions
 *              (explicit mode): ops/s
 * Memory and truncation, run only when --only names them (issue 18):
 *   large      a segment of twice the physical memory or 32 GiB, the smaller
 *              (--quick: 4 GiB), 1,000,000 no-flush transactions (--quick:
 *              100,000) each storing one 8-byte word at a random page, in
 *              explicit and auto mode, each with the default resident_limit
 *              and with 64 MiB: tx/s and the process's RssAnon (before
 *              lrvm_open, its peak, at the end) with lrvm_stats' resident
 *              page counters; skipped when the file system lacks the room
 *   stall      explicit mode, a 256 MiB segment, transactions of 64 ranges of
 *              64 bytes, flushed and no-flush, until the 5th truncation (3rd
 *              with --quick, whose threshold is 8 MiB): each lrvm_commit's
 *              latency (median, p99, worst) and tx/s over the whole loop;
 *              beside each flushed run, the write floor timed one by one
 * Comparison, when built with PMDK's libpmemobj (bench-pmem.c):
 *   pmemobj    small-tx as libpmemobj transactions, pmem forced and CPU
 *              cache flushes off (PMEM_IS_PMEM_FORCE=1, PMEM_NO_FLUSH=1)
 * ns per page is the whole time of a run (stores, faults, commits, the
 * final flush) over the pages the workload wrote, in both modes (auto
 * mode may capture more: pages ahead of a sequential writer); it is given
 * for no-flush runs only.
 *
 * Every measurement runs in its own forked process, which sends its
 * numbers back through a pipe: libsigsegv allows one SIGSEGV handler per
 * process, the floors install theirs with sigaction, and runs must not
 * disturb each other. Each is repeated R times (--runs) and reported as
 * median and min-max; floors and workloads run in R rounds of one run
 * each, so that drift during the run moves them alike. A run whose child fails (an lrvm error, a crash) is
 * left out of the figures and listed at the end; the exit status is then 1.
 * Bad usage, and a failure of the harness itself (a system call, the
 * plot), exit 2, as the other tools do.
 * Time: CLOCK_MONOTONIC. Random: xorshift64, seed 42.
 *
 *   usage: lrvm-bench [--runs N] [--quick] [--only LIST] [--dir DIR] [--csv]
 *                     [--plot FILE.png]
 *
 * The files: this one is the harness (the command line, the directory of
 * the run, the child processes, the failures, the rounds and main);
 * bench-floors.c, bench-workloads.c, bench-recovery.c, bench-large.c and
 * bench-stall.c measure;
 * bench-report.c and bench-plot.c show; bench.h is what they share, with
 * the program's whole state in one struct bench that main owns. The
 * harness measures nothing and prints no figure itself.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* What --only can name, in the order of the PART_ constants. */
static const char *const part_names[NPARTS] = {
    "small-tx", "pages-1", "pages-16", "pages-256", "seq-64",
    "heap", "group", "threads", "pmemobj", "recovery", "large", "stall",
};

/* ------------------------------------------------------------ helpers */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT)
        fprintf(stderr, "lrvm-bench: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

void bench_rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void bench_settle(unsigned secs)
{
    sync();
    for (unsigned left = secs; left > 0;)
        left = sleep(left);
}

uint64_t bench_ns_between(const struct timespec *a, const struct timespec *b)
{
    return (uint64_t)((b->tv_sec - a->tv_sec) * 1000000000LL + (b->tv_nsec - a->tv_nsec));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void bench_latencies(uint64_t *lat, uint64_t n, double *med_us, double *p99_us, double *max_us)
{
    if (n == 0) {
        *med_us = *p99_us = *max_us = 0;
        return;
    }
    qsort(lat, n, sizeof *lat, cmp_u64);
    uint64_t p99 = (n * 99 + 99) / 100;     /* ceil(0.99 n), 1-based */
    *med_us = (n % 2 ? (double)lat[n / 2] : ((double)lat[n / 2 - 1] + (double)lat[n / 2]) / 2)
              / 1e3;
    *p99_us = (double)lat[p99 - 1] / 1e3;
    *max_us = (double)lat[n - 1] / 1e3;
}

void bench_die(const struct bench *b, const char *fmt, ...)
{
    va_list ap;
    fputs("lrvm-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (b->root_made)
        bench_rm_rf(b->root);
    exit(2);
}

void bench_child_fail(const char *fmt, ...)
{
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lrvm-bench: %s\n", buf);
    _exit(3);
}

void bench_check(int rc, const char *call)
{
    if (rc < 0)
        bench_child_fail("%s failed: %s (%d)", call, lrvm_strerror(rc), rc);
}

void bench_path_join(const struct bench *b, char *out, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, PATH_LEN, "%s/%s", dir, name) >= PATH_LEN)
        bench_die(b, "path too long: %s/%s", dir, name);
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_child_fail("write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

void bench_add_failure(struct bench *b, const char *fmt, ...)
{
    va_list ap;
    char buf[NOTE_LEN];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "lrvm-bench: FAILED: %s\n", buf);
    if (b->nnotes < MAX_NOTES)
        memcpy(b->notes[b->nnotes++], buf, sizeof buf);
    b->nfailures++;
}

/*
 * Run fn(b, arg, out) in a forked child; the child sends *out (size bytes)
 * back through a pipe and exits. Returns 0, or -1 when the child failed
 * (noted, and reported at the end).
 */
int bench_run_child(struct bench *b, const char *what, bench_child_fn *fn, const void *arg,
                    void *out, size_t size)
{
    int fds[2];
    if (pipe(fds) != 0)
        bench_die(b, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        bench_die(b, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        memset(out, 0, size);
        fn(b, arg, out);
        write_all(fds[1], out, size);
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fds[0], (char *)out + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            bench_die(b, "waitpid: %s", strerror(errno));
    if (WIFSIGNALED(st))
        bench_add_failure(b, "%s: child killed by signal %d (%s)", what, WTERMSIG(st),
                          strsignal(WTERMSIG(st)));
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_add_failure(b, "%s: child failed (exit status %d; its message is above in "
                          "stderr)", what, WEXITSTATUS(st));
    else if (got != size)
        bench_add_failure(b, "%s: child sent %zu of %zu bytes of results", what, got, size);
    else
        return 0;
    memset(out, 0, size);                   /* a failed run counts as not measured */
    return -1;
}

void bench_progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------ the command line */

static void usage(FILE *o)
{
    fprintf(o, "usage: lrvm-bench [--runs N] [--quick] [--only LIST] [--dir DIR] [--csv]\n"
               "                  [--plot FILE.png]\n"
               "  --runs N     repeat every measurement N times (default 5; 3 with --quick)\n"
               "  --quick      fewer transactions, 1 recovery run per log shape and page cache\n"
               "               state, with 32 MiB logs (< 1 min); shrinks large and stall\n"
               "  --only LIST  run only these parts, comma-separated: small-tx, pages-1,\n"
               "               pages-16, pages-256, seq-64, heap, group, threads,\n"
               "               pmemobj, recovery, large, stall\n"
               "               (the floors they are set against run with them);\n"
               "               large and stall run only when named here: large maps a\n"
               "               segment of twice physical memory or 32 GiB (4 GiB with\n"
               "               --quick), needs that much free space and 1 GiB more,\n"
               "               and takes minutes per run; stall times each commit\n"
               "               across truncations\n"
               "  --dir DIR    make the stores in a new directory under DIR (default $TMPDIR or /tmp)\n"
               "  --csv        print the workload rows as CSV (other sections go to stderr)\n"
               "  --plot FILE  draw ns/page against P with gnuplot into FILE (PNG)\n"
               "Exit status: 0 every run measured; 1 a run failed (listed at the end, left\n"
               "out of the figures); 2 bad usage or a system error.\n");
}

/* --only's LIST into a set of parts; -1 with a message for a bad name. */
static int parse_parts(const char *list, unsigned *parts)
{
    *parts = 0;
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < NPARTS; i++)
            if (strlen(part_names[i]) == n && strncmp(p, part_names[i], n) == 0)
                found = i;
        if (found < 0) {
            fprintf(stderr, "lrvm-bench: --only: no part named \"%.*s\" (parts: ", (int)n, p);
            for (int i = 0; i < NPARTS; i++)
                fprintf(stderr, "%s%s", part_names[i], i + 1 < NPARTS ? ", " : ")\n");
            return -1;
        }
        *parts |= 1u << found;
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

/* The settings that follow from --quick (or its absence) and --runs. */
static void set_sizes(struct bench *b, int runs)
{
    if (b->quick) {
        b->runs = runs ? runs : 3;
        b->rec_runs = 1;
        b->rec_bytes = (size_t)32 << 20;
        b->cap = 0.15;
        b->tx_div = 10;
        b->copied_pages = 32768;
        b->fresh_passes = 1;
        b->large_tx = 100000;
        b->large_cap = 120;
        b->stall_truncs = 3;
        b->stall_threshold = (size_t)8 << 20;
        b->stall_max_tx = 50000;
        b->stall_cap = 60;
        b->stall_settle = 2;
    } else {
        b->runs = runs ? runs : 5;
        b->rec_runs = b->runs;
        b->rec_bytes = (size_t)256 << 20;
        b->cap = 1.0;
        b->tx_div = 1;
        b->copied_pages = 262144;
        b->fresh_passes = 4;
        b->large_tx = 1000000;
        b->large_cap = 600;
        b->stall_truncs = 5;
        b->stall_threshold = 0;             /* lrvm's default */
        b->stall_max_tx = 200000;
        b->stall_cap = 300;
        b->stall_settle = 5;
    }
}

/* The command line into B. Returns -1 when the run is to go on, else the
 * status to exit with: 0 after --help or --version, 2 for a bad command
 * line. */
static int parse_args(struct bench *b, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "runs",  required_argument, NULL, 'r' },
        { "quick", no_argument,       NULL, 'q' },
        { "dir",   required_argument, NULL, 'd' },
        { "csv",   no_argument,       NULL, 'c' },
        { "plot",  required_argument, NULL, 'p' },
        { "only",  required_argument, NULL, 'o' },
        { "help",  no_argument,       NULL, 'h' },
        { "version", no_argument,     NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int runs = 0, c;
    b->parts = DEFAULT_PARTS;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > MAX_RUNS) {
                fprintf(stderr, "lrvm-bench: --runs wants 1 to %d\n", MAX_RUNS);
                return 2;
            }
            runs = (int)v;
            break;
        }
        case 'q': b->quick = 1; break;
        case 'd': b->dir = optarg; break;
        case 'c': b->csv = 1; break;
        case 'p': b->plot = optarg; break;
        case 'o':
            if (parse_parts(optarg, &b->parts) != 0)
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("lrvm-bench (lrvm) %s\n", lrvm_version()); return 0;
        default:  usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    set_sizes(b, runs);
    return -1;
}

/* ------------------------------------------------------------ the run */

static const char *fs_name(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) != 0)
        return "unknown";
    switch ((unsigned long)sf.f_type) {
    case 0xEF53UL:     return "ext2/3/4";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x01021994UL: return "tmpfs (fdatasync does nothing)";
    case 0x794C7630UL: return "overlayfs";
    case 0x2FC12FC1UL: return "zfs";
    case 0xF2F52010UL: return "f2fs";
    case 0x6969UL:     return "nfs";
    default:           return "other";
    }
}

/* The page size, what the machine's memory makes of the large part's
 * sizes, and the run's own directory under --dir, $TMPDIR or /tmp. */
static void make_root(struct bench *b)
{
    b->page_size = (size_t)sysconf(_SC_PAGESIZE);
    b->seg_pages = SEG_SIZE / b->page_size;
    long phys = sysconf(_SC_PHYS_PAGES);
    if (phys <= 0)
        bench_die(b, "sysconf(_SC_PHYS_PAGES) failed");
    b->phys_bytes = (uint64_t)phys * b->page_size;
    /* resident_limit 0, as lrvm.h says: 256 MiB, or an eighth of the
     * machine's memory when that is less. */
    b->default_limit = (size_t)256 << 20;
    if (b->phys_bytes / 8 < b->default_limit)
        b->default_limit = (size_t)(b->phys_bytes / 8);
    b->large_seg = b->quick ? LARGE_QUICK : LARGE_MAX;
    if (2 * b->phys_bytes < b->large_seg)
        b->large_seg = (size_t)(2 * b->phys_bytes);
    const char *parent = b->dir;
    if (parent == NULL) {
        parent = getenv("TMPDIR");
        if (parent == NULL || *parent == '\0')
            parent = "/tmp";
    }
    if (b->dir != NULL && mkdir(b->dir, 0700) != 0 && errno != EEXIST)
        bench_die(b, "%s: %s", b->dir, strerror(errno));
    if ((size_t)snprintf(b->root, sizeof b->root, "%s/lrvm-bench.XXXXXX", parent) >=
        sizeof b->root - 64)
        bench_die(b, "directory name too long: %s", parent);
    if (mkdtemp(b->root) == NULL)
        bench_die(b, "cannot make a directory under %s: %s", parent, strerror(errno));
    b->root_made = 1;
}

/* The tracker of stores opened in MODE here (lrvm_stats says, of a store
 * under B's root), or -1 when lrvm_open refuses the mode. */
static int tracker_of(const struct bench *b, int mode)
{
    char dir[PATH_LEN];
    lrvm_options_t o = { .tracking = mode };
    lrvm_t *s;
    lrvm_stats_t st = { 0 };
    bench_path_join(b, dir, b->root, "tracker");
    if (lrvm_open(dir, &o, &s) != 0)
        return -1;
    int rc = lrvm_stats(s, &st);
    lrvm_close(s);
    bench_rm_rf(dir);
    return rc == 0 ? st.tracking : -1;
}

/* Which trackers run here; sets b->uffd and b->auto_tracker. */
static const char *trackers(struct bench *b)
{
    b->uffd = tracker_of(b, LRVM_TRACK_UFFD) == LRVM_TRACK_UFFD;
    b->auto_tracker = tracker_of(b, LRVM_TRACK_AUTO);
    if (b->auto_tracker == LRVM_TRACK_UFFD)
        return "uffd; the mprotect tracker runs beside it";
    return b->uffd ? "mprotect; the uffd tracker runs beside it"
                   : "mprotect; this kernel offers no uffd tracker";
}

/* What is run, and where: to stdout, or with --csv to stderr. */
static void print_header(struct bench *b)
{
    FILE *info = b->csv ? stderr : stdout;
    char recs[40] = "";
    if (bench_part_runs(b, PART_RECOVERY))
        snprintf(recs, sizeof recs, ", %d of recovery", b->rec_runs);
    fprintf(info, "lrvm-bench%s: %d run%s per measurement (median, min-max)%s; "
                  "segment %zu MiB, page %zu B; timed loops capped at %.2f s; %ld CPUs\n",
            b->quick ? " --quick" : "", b->runs, b->runs == 1 ? "" : "s", recs,
            SEG_SIZE >> 20, b->page_size, b->cap, sysconf(_SC_NPROCESSORS_ONLN));
    if (b->parts != DEFAULT_PARTS) {
        fprintf(info, "only:");
        for (int p = 0; p < NPARTS; p++)
            if (bench_part_runs(b, p))
                fprintf(info, " %s", part_names[p]);
        fprintf(info, "\n");
    }
    fprintf(info, "stores in %s (%s); auto mode's tracker: %s\n\n", b->root,
            fs_name(b->root), trackers(b));
    fflush(info);
    bench_progress("lrvm-bench: working in %s", b->root);
}

/* Every measurement. Floors and workloads run in rounds, one run of each
 * per round, so that a disk or machine that drifts during the minutes of
 * a run moves the floors and the workloads alike and leaves their ratios. */
static void run_all(struct bench *b)
{
    for (int i = 0; i < b->runs; i++) {
        bench_floors_round(b, i);
        bench_workloads_round(b, i);
    }
    bench_pmemobj_runs(b);
    bench_recovery_runs(b);
    bench_stall_runs(b);
    bench_large_runs(b);
}

int main(int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);   /* zeroed: a result never filled is "not measured" */
    if (b == NULL) {
        fputs("lrvm-bench: out of memory\n", stderr);
        return 2;
    }
    int rc = parse_args(b, argc, argv);
    if (rc >= 0) {
        free(b);
        return rc;
    }
    make_root(b);
    double start = now();
    print_header(b);
    run_all(b);
    bench_compute(b);
    bench_report(b);
    fflush(stdout);
    bench_rm_rf(b->root);
    b->root_made = 0;
    bench_progress("lrvm-bench: done in %.1f s", now() - start);

    /* A failed run says more than a failed plot: 1 wins over 2. */
    rc = b->nfailures ? 1 : 0;
    if (b->plot != NULL && bench_plot(b, b->plot) != 0 && rc == 0)
        rc = 2;
    free(b);
    return rc;
}
