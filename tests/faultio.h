/*
 * faultio.h -- the test-only io layer that the suites put in front of
 * liblrvm's io seam: it fails the Nth call of chosen kinds, kills the
 * process there, or cuts the power there (faultio.c says how).
 *
 * It is not part of the installed library: the suites link it from the
 * tests' convenience library, and it installs itself in front of the
 * posix methods when it is loaded (lrvm__io_set_methods).
 */
#ifndef LRVM_FAULTIO_H
#define LRVM_FAULTIO_H

#include <stddef.h>
#include <stdint.h>

/* Kinds of call, for fault injection. */
enum {
    LRVM__IO_OPEN  = 1 << 0,   /* open and mkdir */
    LRVM__IO_READ  = 1 << 1,   /* pread, and mapping the log to read it */
    LRVM__IO_WRITE = 1 << 2,
    LRVM__IO_SYNC  = 1 << 3,   /* fsync and fdatasync */
    LRVM__IO_TRUNC = 1 << 4,   /* ftruncate, and reserving blocks */
    LRVM__IO_UNLINK = 1 << 5,
    LRVM__IO_RENAME = 1 << 6,
    LRVM__IO_WAIT  = 1 << 7,   /* waiting for writeback, which reports a
                                  failed writeback as a sync would */
    LRVM__IO_ALL   = 0xff
};
/* How an injected fault behaves. */
enum {
    LRVM__IO_ONCE   = 0,       /* the Nth call fails, later ones succeed */
    LRVM__IO_ALWAYS = 1,       /* the Nth call and every later one fail */
    LRVM__IO_TORN   = 2,       /* flag: a failing write lands its first half */
    LRVM__IO_KILL   = 4,       /* flag: instead of failing, the process dies of
                                  SIGKILL at that call (after the torn half) */
    LRVM__IO_POWERCUT = 8,     /* flag: from arming on, writes are remembered
                                  until synced; at the Nth call the power
                                  fails: each unsynced write is kept, lost or
                                  torn, and the process dies of SIGKILL */
    LRVM__IO_TRUNCATION = 16,  /* flag: only the calls of a truncation beside
                                  the commits count (its switch, in the
                                  committing thread, and its own thread) */
    LRVM__IO_SYNCER = 32       /* flag: only the calls of the log's syncer
                                  count; without it, none of them does (its
                                  pace is its own, so the other threads'
                                  calls are numbered the same in every run) */
};
/* Make the NTH (1-based) call of KINDS from now on fail with ERR (an
 * errno value); nth 0 only counts the calls. Process-wide. */
void     lrvm__io_inject(unsigned kinds, unsigned long nth, int err, int mode);
/* Seed of the power cut's choices (for replaying a failure). */
void     lrvm__io_powercut_seed(uint64_t seed);
/* Calls of the armed kinds made since the last lrvm__io_inject. */
unsigned long lrvm__io_calls(void);
/* Crash states (faultio.c says how they are made). PATH non-empty: the
 * next power cut writes every unsynced change to PATH and dies with all
 * of them on disk, choosing nothing; NULL or "": the cut chooses. */
void     lrvm__io_powercut_record(const char *path);
/* The states a record allows: load it (NULL if it cannot be read), count
 * them (UINT64_MAX when more), the changes it holds; make state INDEX on
 * the files, which must hold every change (as the cut left them): INDEX
 * in mixed radix over the units (page or change) when not SAMPLED, else a
 * seed of random choices. State 0 keeps every change. 0, or -1 when a
 * file could not be written. */
struct lrvm__crash_states;
struct lrvm__crash_states *lrvm__io_crash_states(const char *record);
uint64_t lrvm__io_crash_states_count(const struct lrvm__crash_states *cs);
size_t   lrvm__io_crash_states_changes(const struct lrvm__crash_states *cs);
int      lrvm__io_crash_state_make(const struct lrvm__crash_states *cs, uint64_t index,
                                   int sampled);
void     lrvm__io_crash_states_free(struct lrvm__crash_states *cs);
/* Microseconds every fdatasync/fsync waits first, so that a test can
 * have commits arrive while one is under way (group commit); 0 normally. */
extern _Atomic unsigned lrvm__io_sync_delay_us;
/* Hold the truncation: from now on, calls of KINDS (LRVM__IO_WRITE,
 * LRVM__IO_SYNC) on a segment file made by a truncation's thread wait
 * until KINDS no longer names them (lrvm__io_hold(0) lets all go). */
void     lrvm__io_hold(unsigned kinds);
/* Hold the log's syncer: from now on, its calls of KINDS (LRVM__IO_WRITE,
 * LRVM__IO_SYNC) wait until KINDS no longer names them
 * (lrvm__io_hold_syncer(0), or lrvm__io_hold(0), lets all go). */
void     lrvm__io_hold_syncer(unsigned kinds);
/* Calls waiting in a hold now. */
unsigned lrvm__io_held(void);

#endif
