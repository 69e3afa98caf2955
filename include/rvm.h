/*
 * rvm.h -- the classic LRVM interface, a thin layer over lrvm.h.
 *
 * Source compatible with programs written for the classic LRVM course
 * interface. Calls that fail return NULL or (trans_t) -1 where their
 * signature allows, and always record an LRVM_E* code that
 * lrvm_last_error() returns; no call exits the process.
 *
 * LRVM_VERBOSE=1 in the environment turns tracing on, as rvm_verbose(1).
 * LRVM_TRACKING=auto|explicit|uffd|mprotect (in any case) chooses the
 * tracking mode of stores opened by rvm_init; any other value makes
 * rvm_init fail with LRVM_EINVAL.
 */
#ifndef RVM_H
#define RVM_H

#include "lrvm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lrvm *rvm_t;
typedef int trans_t;   /* (trans_t) -1 means failure */

/* Open the store in DIRECTORY, creating it if missing; runs recovery. */
rvm_t   rvm_init(const char *directory);

/* Map SEGNAME, creating it or extending it to SIZE_TO_CREATE bytes. NULL
 * on error: mapped twice, bad name, size 0 or negative, I/O. */
void   *rvm_map(rvm_t rvm, const char *segname, int size_to_create);

/* Unmap the segment at SEGBASE. Fails (recorded) when it is in an open
 * transaction. */
void    rvm_unmap(rvm_t rvm, void *segbase);

/* Remove SEGNAME and its committed data. No effect on a mapped segment
 * (the error is recorded). */
void    rvm_destroy(rvm_t rvm, const char *segname);

/* Begin a transaction over NUMSEGS segments; (trans_t) -1 if a segment is
 * unknown or already in a transaction. */
trans_t rvm_begin_trans(rvm_t rvm, int numsegs, void **segbases);

/* Declare [segbase+offset, segbase+offset+size) about to change. */
void    rvm_about_to_modify(trans_t tid, void *segbase, int offset, int size);

/* Commit, durable on return. When the commit fails, the error is recorded
 * and the transaction is aborted (its changes are undone in memory). */
void    rvm_commit_trans(trans_t tid);

/* Undo every declared range and end the transaction. */
void    rvm_abort_trans(trans_t tid);

/* Apply the log to the segment files and empty it. */
void    rvm_truncate_log(rvm_t rvm);

/* Trace every rvm_* call on stderr when ENABLE_FLAG is non-zero. */
void    rvm_verbose(int enable_flag);

#ifdef __cplusplus
}
#endif

#endif /* RVM_H */
