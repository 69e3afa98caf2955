/*
 * testutil.h -- helpers shared by the Check suites: scratch directories,
 * file peeking and poking, and child processes.
 */
#ifndef LRVM_TESTUTIL_H
#define LRVM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lrvm.h"

/* A new empty directory under $TMPDIR (or /tmp); free() the result. */
char *tu_tmpdir(void);
/* Copy the regular files of directory SRC into the existing directory
 * DST; 0 on success, -1 on failure. */
int tu_copy_dir(const char *src, const char *dst);
/* Check fixtures (unchecked: they run in the runner process): every
 * tu_tmpdir() of the suite lands in one base directory, removed at the
 * end even when a failing test could not run its own teardown. */
void tu_base_setup(void);
void tu_base_teardown(void);
/* The scratch directory of the running test of a tu_tcase: new and empty
 * when the test starts, removed with everything in it when it ends. */
extern char *tu_dir;
/* A Check test case with the fixtures every suite wants: the base
 * directory above (unchecked) and tu_dir (checked), and a timeout of
 * TIMEOUT seconds. A suite's own checked fixture, added after, runs with
 * tu_dir made. */
struct TCase;
struct TCase *tu_tcase(const char *name, int timeout);
/* Remove DIR and everything in it. */
void tu_rmrf(const char *dir);
/* DIR/NAME in a static buffer (one of 4, rotating). */
const char *tu_path(const char *dir, const char *name);
/* Size of a file, or -1. */
int64_t tu_file_size(const char *path);
/* pread/pwrite the whole range; 0 on success, -1 on failure. */
int tu_read(const char *path, void *buf, size_t n, uint64_t off);
int tu_write(const char *path, const void *buf, size_t n, uint64_t off);
/* The whole of a file, malloc'ed, with a NUL after it; its size in *N
 * (when N is not NULL). A file that cannot be read fails the test. */
void *tu_read_whole(const char *path, size_t *n);
/* Permission bits of a file, or -1. */
int tu_mode(const char *path);
/* Run FN(ARG) in a child process; return its wait status. */
int tu_in_child(void (*fn)(void *arg), void *arg);
/* Fork with a pipe from the child to the parent: in the parent, the
 * child's pid, and *FD the read end; in the child, 0, and *FD the write
 * end. Fails the test when the pipe or the fork fails. */
pid_t tu_fork_piped(int *fd);
/* Wait for child PID; its wait status. */
int tu_wait(pid_t pid);
/* Children that report: tu_run_child runs FN(ARG) in a child process
 * whose tu_report(v) calls send ints to the parent; up to MAX of them land
 * in VALS, their number in *NVALS; returns the wait status. A failed
 * TU_CHILD_CHECK reports -1000 - line and ends the child with status 2. */
int  tu_run_child(void (*fn)(const void *), const void *arg, int *vals, int max, int *nvals);
void tu_report(int v);
/* The line of a failed TU_CHILD_CHECK among VALS, or 0. */
int  tu_child_failed_line(const int *vals, int n);
#define TU_CHILD_CHECK(cond)                                                  \
    do {                                                                      \
        if (!(cond)) {                                                        \
            tu_report(-1000 - __LINE__);                                      \
            _exit(2);                                                         \
        }                                                                     \
    } while (0)

/* Run every test of suite S (Check); the exit status of a suite's main:
 * 0 when all passed, else 1. */
struct Suite;
int tu_run_suite(struct Suite *s);

/* LRVM_QUICK_CHECK set (and not "0") asks for the quick subset of the
 * tests: make distcheck in CI (.ci/run), after two full runs. A suite
 * that takes minutes calls this first and, when it returns 1, exits 77
 * (skipped); it says so on stdout, naming SUITE. */
int tu_quick_skip(const char *suite);

/* lrvm_open of DIR (NULL: tu_dir) with O (NULL: every default), failing
 * the test (Check) when the open fails. */
lrvm_t *tu_open(const char *dir, const lrvm_options_t *o);
/* tu_open of tu_dir in mode TRACKING, truncating at THRESHOLD bytes of
 * log (0: the default). */
lrvm_t *tu_open_mode(int tracking, size_t threshold);

/* The tracker LRVM_TRACK_AUTO gets in this process (asked of a scratch
 * store once): LRVM_TRACK_UFFD on a kernel that offers it, unless the
 * suite runs with LRVM_TEST_AUTO=mprotect (tests/mprotect.sh);
 * LRVM_TRACK_MPROTECT otherwise. */
int tu_auto_tracker(void);
/* Does lrvm_open grant LRVM_TRACK_UFFD here? (LRVM_TEST_NO_UFFD=1 in the
 * environment makes it refuse.) */
int tu_uffd_offered(void);

/* A truncation that a commit started runs beside the commits: wait
 * until S counts N truncations (30 s at most, else the test fails);
 * its stats then. */
lrvm_stats_t tu_wait_truncations(lrvm_t *s, uint64_t n);

/* lrvm_map that fails the test (Check) when the map fails. */
void *tu_map(lrvm_t *s, const char *name, size_t size);

/* The lock-free steady state, checked: a thread of the test makes its
 * first round (which may take the store lock), sets READY and waits for
 * GO; tu_steady_under_lock then takes S's lock, sets GO to 1 and waits
 * (10 s at most) until the thread counted N more rounds in DONE or put
 * an error in RC, runs WHILE_HELD(ARG) (when not NULL) still holding the
 * lock, lets it go, and returns the rounds done before WHILE_HELD. */
struct tu_steady {
    _Atomic int ready, go, done, rc;
};
int tu_steady_under_lock(lrvm_t *s, struct tu_steady *st, int n,
                         void (*while_held)(void *arg), void *arg);

/* ------------------------------------------------ the fault harness
 *
 * One way to die at each call: a test counts the io calls of the kinds it
 * names that its operation makes (a dry run with the fault armed at call
 * 0, which only counts), then tu_fault_each_call runs the operation once
 * for every call n = 1..calls, every error and mode of its plan, ROUNDS
 * times (a power cut chooses what survives differently each round), and
 * the test checks the store after each. Every message names the case and
 * the seed that replays it (LRVM_TEST_SEED). */
struct tu_fault {
    unsigned      kinds;      /* LRVM__IO_* kinds of call counted and failed */
    unsigned long nth;        /* the call that fails; 0: only count */
    unsigned long calls;      /* how many the dry run counted */
    int           err;        /* the errno it fails with */
    int           mode;       /* LRVM__IO_ONCE, _ALWAYS, _TORN, _KILL, _POWERCUT */
    unsigned      round;
    uint64_t      seed;       /* of this case's power cut */
    char          what[240];  /* "<mode> at call n of N (round r, LRVM_TEST_SEED=s)" */
};
struct tu_fault_plan {
    unsigned      kinds;
    unsigned long calls;      /* from the dry run */
    const int    *errs;       /* NULL: EIO alone */
    int           nerrs;
    const int    *modes;      /* NULL: KILL alone */
    int           nmodes;
    unsigned      rounds;     /* 0: 1 */
    uint64_t      salt;       /* keeps two plans of a test from sharing seeds */
};
/* Call RUN(ARG, F) for each case of PLAN, F filled in as above. */
void tu_fault_each_call(const struct tu_fault_plan *plan,
                        void (*run)(void *arg, const struct tu_fault *f), void *arg);
/* Arm F in this process (the code under test runs next): its power-cut
 * seed, then the fault (nth 0: count only). */
void tu_fault_arm(const struct tu_fault *f);
/* The calls counted since the last arming. */
unsigned long tu_fault_calls(void);
/* Disarm: count nothing, fail nothing. */
void tu_fault_disarm(void);
/* A case that must die at its armed call (KILL, POWERCUT): fails the test,
 * naming F, unless STATUS is a death by SIGKILL. */
void tu_fault_died(const struct tu_fault *f, int status);

/* ------------------------------------------------ the crash states
 *
 * Every disk state a power cut may leave, not a sample (as ALICE and
 * CrashMonkey do for file systems): OP(ARG) runs in a child whose power
 * fails at its NTH sync call, recording the unsynced changes; then, for
 * each state they allow (each page of a file holding any of its unsynced
 * versions, each other change made or not: all of them up to MAX, else
 * MAX drawn at random), DIR is made to hold that state and CHECK(ARG,
 * WHAT) runs, WHAT naming the case and how to replay it. Returns the
 * states checked, or 0 when OP made fewer than NTH sync calls; *COUNT_OUT
 * (when not NULL) gets how many states the cut allows. DIR is left as
 * the cut left it, every change kept. */
unsigned long tu_crash_states(const char *dir, unsigned long nth, unsigned long max,
                              void (*op)(void *arg),
                              void (*check)(void *arg, const char *what), void *arg,
                              uint64_t *count_out);

/* xorshift64 */
uint64_t tu_rand(uint64_t *state);
/* splitmix64's finalizer: a well-spread value derived from X. */
uint64_t tu_mix64(uint64_t x);
/* The seed of randomized tests: LRVM_TEST_SEED, else a fixed default. */
uint64_t tu_test_seed(void);

#endif
