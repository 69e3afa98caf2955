/*
 * error.c -- the one error space: the messages of the LRVM_E* codes and
 * each thread's last error.
 *
 * Owns: lrvm_strerror, lrvm_last_error and the thread-local code behind
 * it. Never: sees an errno value (io.c converts those once, at the seam).
 *
 * Invariants
 *   I1 Every call that fails where its signature cannot say so (a classic
 *      rvm_* call, a heap allocation returning NULL) sets the thread's
 *      last error; one that succeeds leaves it as it was, like errno.
 */
#include "internal.h"

static _Thread_local int last_error;

const char *lrvm_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define LRVM__ERRNO_CASE(name, value, text) case LRVM_##name: return text;
    LRVM_ERRNO_MAP(LRVM__ERRNO_CASE)
#undef LRVM__ERRNO_CASE
    default:
        return "unknown error";
    }
}

int lrvm_last_error(void)
{
    return last_error;
}

int lrvm__note_error(int rc)
{
    if (rc < 0)
        last_error = rc;                    /* keeps I1 */
    return rc;
}
