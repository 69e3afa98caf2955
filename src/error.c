/*
 * error.c -- the one error space: the messages of the LRVM_E* codes and
 * each thread's last error.
 *
 * Owns: lrvm_strerror, lrvm_version, lrvm_last_error and the thread-local
 * code behind it; the trace (LRVM_VERBOSE, rvm_verbose) on stderr. Never: sees an
 * errno value (io.c converts those once, at the seam), or prints while
 * tracing is off.
 *
 * Invariants
 *   I1 Every call that fails where its signature cannot say so (a classic
 *      rvm_* call, a heap allocation returning NULL) sets the thread's
 *      last error; one that succeeds leaves it as it was, like errno.
 */
#include "internal.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local int last_error;

#define STR_(x) #x
#define STR(x)  STR_(x)

const char *lrvm_version(void)
{
    return STR(LRVM_VERSION_MAJOR) "." STR(LRVM_VERSION_MINOR) "." STR(LRVM_VERSION_PATCH);
}

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

/* Tracing is on when LRVM_VERBOSE is set (and not "0") in the environment
 * when it is first asked, or when rvm_verbose turned it on. */
static _Atomic int     tracing = -1;         /* -1: not read yet */

int lrvm__tracing(void)
{
    int t = atomic_load_explicit(&tracing, memory_order_relaxed);
    if (t < 0) {
        const char *v = getenv("LRVM_VERBOSE");
        int want = v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
        int unread = -1;
        atomic_compare_exchange_strong(&tracing, &unread, want);
        t = atomic_load(&tracing);
    }
    return t;
}

void lrvm__set_tracing(int on)
{
    atomic_store(&tracing, on != 0);
}

void lrvm__trace(const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", who);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
