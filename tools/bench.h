/*
 * bench.h -- what the files of lrvm-bench share: the sizes and tables of
 * what is measured, struct bench (the settings, every run's results and
 * their summaries: the program's whole state), and the functions one file
 * calls in another.
 *
 * Declarations only, and constants: no state lives here. A function that
 * only its own file calls stays static there and is not declared here.
 */
#ifndef LRVM_BENCH_H
#define LRVM_BENCH_H

#include "lrvm.h"
#include "bench-pmem.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#define SEG_SIZE      ((size_t)64 << 20)
#define SEG_NAME      "bench"
#define MAX_RUNS      100
#define SEQ_PAGES     64                    /* pages a seq-64 rewrites */
#define REC_TX_BYTES  ((size_t)64 << 10)    /* transaction size of the recovery log */
#define WFLOOR_SIZE   ((size_t)16 << 20)    /* preallocated file of the write floor */
#define WFLOOR_OP     128                   /* bytes per write-floor overwrite */
#define CHUNK         ((size_t)1 << 20)     /* read() size of the read floor */
#define DFLOOR_SIZE   ((size_t)256 << 20)   /* written by the disk floor (bench_dfloor_size) */
#define DFLOOR_SYNC   ((size_t)16 << 20)    /* ... with an fdatasync after each this many */
#define LFLOOR_OPS    1000000u              /* the line floor's operations a thread */
#define LFLOOR_WORK   200                   /* ... and the steps of work of each */
#define GROUP_SEG     ((size_t)1 << 20)     /* each group-commit thread's segment */
#define THREAD_SEG    ((size_t)16 << 20)    /* each threads-workload thread's segment */
/* A truncation threshold that no threads-workload loop of a second
 * reaches: its commits alone, not paced to the truncation's disk work. */
#define HELD_OFF_THRESHOLD ((size_t)1 << 30)
/* Bytes of a cache line, or more: each thread's state of a threaded part
 * begins one (WORKER_LINE before its first field), so that no thread's
 * counting waits for a line another writes, which would be counted
 * against lrvm. */
#define CACHE_LINE    64
#define WORKER_LINE   _Alignas(CACHE_LINE)
#define HEAP_LIVE     65536u                /* blocks live in the heap workload */
#define PATH_LEN      4200
#define MAX_NOTES     64                    /* failed runs described at the end */
#define NOTE_LEN      240
#define LARGE_MAX     ((size_t)32 << 30)    /* large: segment size at most (full run) */
#define LARGE_QUICK   ((size_t)4 << 30)     /* large: segment size at most (--quick) */
#define LARGE_ROOM    ((size_t)1 << 30)     /* large: free space asked beyond the segment */
#define LARGE_LIMIT   ((size_t)64 << 20)    /* large: the resident_limit set by hand */
#define LARGE_SAMPLE  1000                  /* large: transactions between RssAnon samples */
#define LARGE_MODES   3                     /* large: explicit, auto, auto on the mprotect tracker */
#define STALL_SEG     ((size_t)256 << 20)   /* stall: the segment */
#define STALL_RANGES  64                    /* stall: ranges per transaction */
#define STALL_RANGE   64                    /* stall: bytes per range, and their alignment */

/* ------------------------------------------------------------ what is measured */

/* What --only can name: the workloads first, in the order of bench_workloads[].
 * large and stall run only when --only names them (DEFAULT_PARTS). */
enum {
    PART_SMALL_TX, PART_PAGES_1, PART_PAGES_16, PART_PAGES_256, PART_SEQ_64,
    PART_HEAP, PART_GROUP, PART_THREADS, PART_PMEMOBJ, PART_RECOVERY,
    PART_LARGE, PART_STALL, NPARTS
};
#define WORKLOAD_PARTS 0x1fu
#define DEFAULT_PARTS  ((1u << PART_LARGE) - 1)   /* a run without --only */

enum { W_SMALL, W_PAGES, W_SEQ };

struct workload {
    const char *name;
    int         kind;
    int         pages;   /* pages per transaction (small-tx: words) */
    long        max_tx;  /* transactions per run at most (full run) */
    int         floor;   /* the fault floor with the same batch */
};

struct floor_spec {
    const char *name;
    int         pages;       /* pages per batch */
    int         contiguous;  /* batch is a run of pages moving through the file */
};

#define NWORK   5
#define NFLOORS 5
#define NGROUP  4

extern const struct workload   bench_workloads[NWORK];     /* bench-workloads.c */
extern const int               bench_group_threads[NGROUP];   /* and the threads part's */
extern const struct floor_spec bench_floors[NFLOORS];      /* bench-floors.c */
#define FLOOR_P4 1               /* bench_floors' "random P=4": a small-tx's pages */

/* The fault floors' states: pages written before (private copies) or
 * fresh (the first store copies the file's page), and the userfaultfd
 * floor on pages written before (where the kernel offers it). */
enum { FL_COPIED, FL_FRESH, FL_UFFD, NFLSTATES };

enum { REC_BIG, REC_SMALL, NSHAPES };      /* recovery log shapes */
enum { WARM, COLD, NSTATES };              /* page cache states */

extern const char *const bench_shape_names[NSHAPES];       /* bench-recovery.c */
extern const char *const bench_state_names[NSTATES];

/* ------------------------------------------------------------ results */

/* What one run's child sends back through the pipe: zero when the run
 * failed or did not run. */

struct wl_result {
    uint64_t tx;          /* transactions committed in the timed loop */
    uint64_t pages;       /* pages the workload wrote */
    uint64_t bytes;       /* bytes_logged delta */
    uint64_t faults, fsyncs, truncations;
    double   secs;
};

struct floor_result {
    uint64_t pages;
    double   secs;
};

/* The threads floor: T threads each storing into and protecting again
 * pages of a slice of its own, without lrvm. */
struct tfloor_result {
    uint64_t pages;
    double   secs;
    double   cpu;         /* user + system seconds of the process over secs */
};
enum { TF_MPROTECT, TF_UFFD, NTFLOORS };    /* the fault floor's handler, the uffd floor's scan */

/* The disk floor: sequential writes to a new file, synced in steps. */
struct dfloor_result {
    uint64_t bytes;
    double   secs;
};

/* The line floor: two threads on two CPUs, each doing LFLOOR_WORK steps
 * of work of its own and then one compare-and-swap an operation, whose
 * result the next steps need, of one word on a shared cache line, then
 * of words on lines of their own. */
struct lfloor_result {
    uint64_t ops;                 /* each thread's, in each half (0: not run) */
    double   shared_ns, own_ns;   /* an operation, the two threads' mean */
};

struct wfloor_result {
    uint64_t ops;
    double   secs;
    double   med_us, p99_us, max_us;   /* per overwrite + fdatasync, when timed one by one */
};

struct group_result {
    uint64_t tx, fsyncs;
    double   secs;
};

struct threads_result {
    uint64_t tx;          /* transactions committed, all threads */
    uint64_t pages;       /* pages_captured delta (automatic modes) */
    double   secs;
    double   cpu;         /* user + system seconds of the process over secs */
    double   disk;        /* bytes it had written toward storage meanwhile, -1 unknown */
};

struct heap_result {
    uint64_t ops;
    double   secs;
    double   cpu;               /* shared heap: the process's CPU seconds meanwhile */
    uint64_t cold_ops;          /* shared heap: the first window, from cold caches */
    double   cold_secs;
};

struct mklog_result {
    uint64_t log_size, commits, records;
    double   secs;
};

struct recover_result {
    double   secs;
    double   cached;          /* cold: largest fraction of a file left cached */
    uint64_t log_size_after;
};

struct rfloor_result {
    uint64_t bytes;
    double   secs;
    double   cached;          /* cold: largest fraction of a file left cached */
};

/* large: one configuration's run. */
struct large_result {
    uint64_t tx;              /* transactions committed (0: the run failed) */
    double   secs;            /* the loop, the final lrvm_flush included */
    int      capped;          /* the time cap stopped it before all its transactions */
    int      tracking;        /* lrvm_stats' tracking */
    uint64_t rss_base, rss_peak, rss_final;   /* RssAnon, kB: before lrvm_open, the
                                                 largest sample, after the final flush */
    uint64_t pages_private, pages_shadow, pages_released, truncations;  /* lrvm_stats, at
                                                                           the end */
};

/* stall: one run. */
struct stall_result {
    uint64_t tx;              /* transactions committed (0: the run failed) */
    uint64_t truncations;     /* during the loop */
    uint64_t waits;           /* commits that waited for a truncation (commit_waits) */
    double   bytes_per_tx;    /* of the log, records' headers included */
    double   secs;            /* wall time of the loop, truncations included */
    double   med_us, p99_us, max_us;   /* lrvm_commit latency */
    int      capped;          /* stopped by the cap before its truncations */
};

/* The runs of one measurement: median, min, max of the n that completed. */
struct summary {
    double med, min, max;
    int    n;
};

struct row {
    const struct workload *w;
    int            mode, flush;
    int            ok;           /* runs that completed */
    struct summary txs, nsp;     /* tx/s; ns per page (no-flush rows) */
    double         pages_per_tx, bytes_per_tx, fsyncs_per_tx, truncations;
    double         floor_ns, ratio;  /* auto no-flush rows */
};

struct large_row {
    int            ok;             /* runs that completed (all their transactions or not) */
    int            full;           /* runs that committed all their transactions */
    struct summary txs;            /* tx/s */
    double         tx;             /* medians of the runs that completed: */
    double         base_mib, peak_mib, final_mib;
    double         pages_private, pages_shadow, pages_released, truncations;
    int            tracking;       /* of the last run that completed; -1 none */
};

struct stall_row {
    int            ok;
    struct summary txs;            /* sustained tx/s */
    struct summary med_us, p99_us, max_us;
    double         tx, truncations, waits;   /* medians */
    int            capped;         /* runs stopped by the cap */
};

struct rec_row {
    int            ok;              /* recoveries that completed */
    struct summary secs, mbs;       /* recovery: seconds, log MB/s */
    struct summary floor;           /* read floor MB/s, same log and state */
    double         ratio;           /* recovery MB/s / read floor MB/s, medians */
};

/* ------------------------------------------------------------ the state */

/* The tracking modes a workload runs in, the rows of its table: the two
 * automatic trackers side by side, and explicit declarations. */
enum { BM_MPROTECT, BM_EXPLICIT, BM_UFFD, NMODES };

struct bench {
    /* Settings, from the command line. */
    int         runs;          /* repetitions of every measurement */
    int         rec_runs;      /* repetitions of recovery (and read floor) */
    size_t      rec_bytes;     /* log size recovery replays */
    double      cap;           /* seconds at most per timed loop */
    long        tx_div;        /* divides the transaction counts (--quick) */
    uint64_t    copied_pages;  /* fault floor, copied: pages per run at most */
    int         fresh_passes;  /* fault floor, fresh: passes over the mapping */
    int         quick, csv;
    int         uffd;          /* the kernel offers the userfaultfd tracker */
    int         auto_tracker;  /* LRVM_TRACK_* that LRVM_TRACK_AUTO takes here */
    const char *plot, *dir;
    unsigned    parts;         /* bit p: part p runs (--only) */
    uint64_t    large_tx;      /* large: transactions per run */
    double      large_cap;     /* large: seconds at most per run */
    int         stall_truncs;  /* stall: truncations a run stops at */
    size_t      stall_threshold;  /* stall: truncate_threshold (0: the default) */
    uint64_t    stall_max_tx;  /* stall: transactions at most per run */
    double      stall_cap;     /* stall: seconds at most per run */
    unsigned    stall_settle;  /* stall: seconds the disk is left alone before a timed loop */

    size_t page_size, seg_pages;
    uint64_t phys_bytes;       /* physical memory */
    size_t large_seg;          /* large: the segment, from phys_bytes */
    size_t default_limit;      /* resident_limit 0 means this here */
    int    large_skipped;      /* large: too little free space; not run */
    uint64_t large_need, large_free;   /* bytes, when skipped */
    char   root[PATH_LEN];     /* made by this run, removed at exit */
    int    root_made;

    /* Failures of single runs: reported after the results, exit status 1. */
    char notes[MAX_NOTES][NOTE_LEN];
    int  nnotes, nfailures;

    /* Every run's results, as its child sent them. */
    struct wl_result         wl_res[NWORK][NMODES][2][MAX_RUNS];  /* [w][mode][flush][run] */
    struct floor_result      fl_res[NFLOORS][NFLSTATES][MAX_RUNS];   /* [floor][state][run] */
    struct wfloor_result     wf_res[MAX_RUNS];
    struct dfloor_result     df_res[MAX_RUNS];
    struct lfloor_result     lf_res[MAX_RUNS];
    struct group_result      gr_res[NGROUP][MAX_RUNS];       /* [threads][run] */
    struct threads_result    th_res[NGROUP][NMODES][MAX_RUNS];   /* [threads][mode][run] */
    struct threads_result    th_held[NGROUP][MAX_RUNS];  /* explicit, truncation held off */
    struct threads_result    th_shared[NGROUP][MAX_RUNS];    /* explicit, one shared segment */
    struct tfloor_result     tf_res[NGROUP][NTFLOORS][MAX_RUNS]; /* [threads][kind][run] */
    struct heap_result       hp_res[3][MAX_RUNS];  /* [auto, explicit, C library][run] */
    struct heap_result       hs_res[2][MAX_RUNS];  /* shared heap: [1, 2 threads][run] */
    struct bench_pmem_result pm_res[MAX_RUNS];
    struct mklog_result      mk_res[NSHAPES][MAX_RUNS];           /* [shape][run] */
    struct recover_result    rc_res[NSHAPES][NSTATES][MAX_RUNS];  /* [shape][state][run] */
    struct rfloor_result     rf_res[NSHAPES][NSTATES][MAX_RUNS];  /* [shape][state][run] */
    struct large_result      lg_res[LARGE_MODES][2][MAX_RUNS];  /* [mode][default, 64 MiB][run] */
    struct stall_result      st_res[2][MAX_RUNS];     /* [no-flush, flush][run] */
    struct wfloor_result     st_floor[MAX_RUNS];      /* beside each flushed run */

    /* Their summaries, made by bench_compute. */
    struct row     rows[NWORK][NMODES][2];
    struct summary floor_sum[NFLOORS][NFLSTATES];
    struct summary wfloor_sum, pmem_sum;   /* ops/s; libpmemobj tx/s */
    struct summary group_sum[NGROUP];      /* tx/s */
    double         group_per_sync[NGROUP]; /* commits per fdatasync, all runs */
    struct summary threads_txs[NGROUP][NMODES], threads_pgs[NGROUP][NMODES];  /* per second */
    struct summary threads_cpu[NGROUP][NMODES];     /* CPU microseconds per transaction */
    struct summary threads_cores[NGROUP][NMODES];   /* CPU seconds per second */
    struct summary threads_disk[NGROUP][NMODES];    /* bytes written toward storage per tx */
    struct summary dfloor_sum;                      /* MB/s */
    struct summary lfloor_shared, lfloor_own;       /* ns an operation */
    struct summary lfloor_sum;                      /* ... the difference: a line's */
    struct summary held_txs[NGROUP], held_cpu[NGROUP], held_cores[NGROUP];   /* th_held's */
    struct summary shared_txs[NGROUP], shared_cpu[NGROUP], shared_cores[NGROUP];  /* th_shared's */
    struct summary tfloor_pgs[NGROUP][NTFLOORS], tfloor_cores[NGROUP][NTFLOORS];
    struct summary heap_sum[3];            /* ns per op: auto, explicit, C library */
    struct summary heap_shared_sum[2];     /* ops/s of 1 and 2 threads, shared heap */
    struct summary heap_shared_cpu[2];     /* ... CPU us/op */
    struct summary heap_shared_cores[2];   /* ... cores busy */
    struct summary heap_shared_cold[2];    /* ... ops/s of the first window, cold */
    struct rec_row rec_rows[NSHAPES][NSTATES];
    double         rec_log_mb[NSHAPES], rec_commits[NSHAPES];  /* means of the logs made */
    double         rec_cached;  /* cold runs: largest fraction of a file left cached,
                                   NAN when none was measured */
    struct large_row lg_rows[LARGE_MODES][2];
    struct stall_row st_rows[2];
    struct stall_row st_floor_row;   /* the timed write floor beside the flushed runs */
};

static inline int bench_part_runs(const struct bench *b, int part)
{
    return (b->parts >> part) & 1u;
}

/* The floors run with the parts set against them: the fault floors with
 * the workloads, the write floor with the workloads and group commit. */
static inline int bench_workloads_run(const struct bench *b)
{
    return (b->parts & WORKLOAD_PARTS) != 0;
}

static inline int bench_write_floor_runs(const struct bench *b)
{
    return bench_workloads_run(b) || bench_part_runs(b, PART_GROUP);
}

static inline const char *bench_mode_name(int mode)
{
    return mode == BM_MPROTECT ? "mprotect" : mode == BM_UFFD ? "uffd" : "explicit";
}

static inline int bench_mode_tracking(int mode)
{
    return mode == BM_MPROTECT ? LRVM_TRACK_MPROTECT
         : mode == BM_UFFD     ? LRVM_TRACK_UFFD : LRVM_TRACK_EXPLICIT;
}

/* Does mode M run here? The userfaultfd tracker only where the kernel
 * offers it (b->uffd). */
static inline int bench_mode_runs(const struct bench *b, int mode)
{
    return mode != BM_UFFD || b->uffd;
}

/* The automatic mode whose figures the targets read: the tracker that
 * LRVM_TRACK_AUTO takes here. */
static inline int bench_auto_mode(const struct bench *b)
{
    return b->auto_tracker == LRVM_TRACK_UFFD ? BM_UFFD : BM_MPROTECT;
}

/* The bytes the disk floor writes: a quarter of DFLOOR_SIZE with --quick. */
static inline size_t bench_dfloor_size(const struct bench *b)
{
    return DFLOOR_SIZE / (b->tx_div > 1 ? 4 : 1);
}

static inline const char *bench_flush_name(int flush)
{
    return flush ? "flush" : "no-flush";
}

/* The CPU time of the whole process, every thread included (lrvm's own
 * too): what threads cost beside what they achieve. In a child. */
static inline double bench_cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The bytes the process has caused to be written toward storage
 * (write_bytes of /proc/self/io: counted as pages are dirtied, the
 * zeros ahead of a growing log and the truncation's blocks included), or
 * -1 where the kernel does not count them. In a child. */
static inline double bench_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    unsigned long long v;
    double got = -1;
    if (f == NULL)
        return -1;
    while (got < 0 && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "write_bytes: %llu", &v) == 1)
            got = (double)v;
    fclose(f);
    return got;
}

/* ------------------------------------------------------------ lrvm-bench.c: the harness */

/* Parent: report, remove what this run made, exit 2 (a system error). */
void bench_die(const struct bench *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Child: report and leave at once (no atexit, no stdio flush). */
void bench_child_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Child: an lrvm call that returned an error fails the run. */
void bench_check(int rc, const char *call);
#define CHECK(call) bench_check((call), #call)

/* Parent: note a failed run (reported at the end; the exit status is 1). */
void bench_add_failure(struct bench *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A measurement, run in a child: fills *out from *arg. B is the child's copy. */
typedef void bench_child_fn(const struct bench *b, const void *arg, void *out);

/* Run fn in a forked child and take back *out (size bytes). Returns 0, or
 * -1 when the child failed (noted, and *out zeroed). */
int bench_run_child(struct bench *b, const char *what, bench_child_fn *fn, const void *arg,
                    void *out, size_t size);

/* OUT = DIR/NAME; a name too long for PATH_LEN is fatal. */
void bench_path_join(const struct bench *b, char *out, const char *dir, const char *name);
void bench_rm_rf(const char *path);
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------ the parts */

/* bench-floors.c: run I of every fault floor and of the write floor, for
 * the parts that are set against them. */
void bench_floors_round(struct bench *b, int i);

/* bench-floors.c: one run of the write floor timed op by op: OPS
 * overwrites of OP bytes, one after another through a preallocated file
 * at PATH, each followed by fdatasync, the disk first left alone for
 * stall_settle seconds, as stall's runs do. Returns as bench_run_child. */
int bench_write_floor_timed(struct bench *b, const char *what, const char *path, size_t op,
                            uint64_t ops, struct wfloor_result *r);

/* lrvm-bench.c: sync every file system, then leave the disk alone for
 * SECS seconds, so that what a run's set-up (or the store removed before
 * it) left for the disk is done before its clock starts. */
void bench_settle(unsigned secs);

/* lrvm-bench.c: nanoseconds from A to B (CLOCK_MONOTONIC readings). */
uint64_t bench_ns_between(const struct timespec *a, const struct timespec *b);

/* lrvm-bench.c: the median, p99 and largest of N latencies in ns (sorted
 * in place), in us. */
void bench_latencies(uint64_t *lat, uint64_t n, double *med_us, double *p99_us, double *max_us);

/* bench-floors.c, in a child before its clock starts: drop every file of
 * the store DIR from the page cache, as after a machine crash. Returns the
 * largest fraction of a file left cached. */
double bench_drop_cached(const struct bench *b, const char *dir);

/* bench-floors.c: one run of the read floor over the log of store DIR,
 * BYTES long, in the page cache state COLD says. Returns as
 * bench_run_child. */
int bench_read_floor(struct bench *b, const char *what, const char *dir, size_t bytes,
                     int cold, struct rfloor_result *r);

/* bench-workloads.c: run I of every lrvm workload, of the heap and of
 * group commit, for the parts that run. */
void bench_workloads_round(struct bench *b, int i);

/* bench-workloads.c: every run of small-tx on libpmemobj, when it is a
 * part that runs and lrvm-bench was built with libpmemobj. */
void bench_pmemobj_runs(struct bench *b);

/* bench-recovery.c: every run of recovery and of its read floors. */
void bench_recovery_runs(struct bench *b);

extern const char *const bench_large_mode_names[LARGE_MODES];   /* bench-large.c */

/* bench-large.c: every run of the large part (a segment of twice physical
 * memory, at most 32 GiB; skipped when the file system lacks the room). */
void bench_large_runs(struct bench *b);

/* bench-stall.c: every run of the stall part (commit latency across
 * truncations). */
void bench_stall_runs(struct bench *b);

/* bench-report.c: the summaries from the results, then the printed report
 * (to stdout; with --csv, the CSV rows to stdout and the rest to stderr). */
void bench_compute(struct bench *b);
void bench_report(const struct bench *b);

/* bench-plot.c: --plot. Returns 0, or 1 when gnuplot ran and failed. */
int bench_plot(const struct bench *b, const char *out);

#endif /* LRVM_BENCH_H */
