/*
 * track.c -- which tracker a store uses.
 *
 * Owns: the choice of tracker for a tracking mode, made once at
 * lrvm_open. The trackers themselves are in track_explicit.c,
 * track_mprotect.c and track_uffd.c, behind struct lrvm__tracker
 * (internal.h); tx.c drives them and nothing else calls them.
 */
#include "internal.h"

int lrvm__track_auto_mprotect;

int lrvm__track_choose(int mode, const struct lrvm__tracker **out)
{
    switch (mode) {
    case LRVM_TRACK_AUTO:
        /* The userfaultfd tracker where the kernel offers it: it owns no
         * signal, sees kernel writes and costs less on most workloads
         * (doc/architecture.md, "The userfaultfd tracker"); the suites
         * run AUTO on both (lrvm__track_auto_mprotect). */
        *out = !lrvm__track_auto_mprotect && lrvm__uffd_usable() ? &lrvm__track_uffd
                                                                 : &lrvm__track_mprotect;
        return 0;
    case LRVM_TRACK_MPROTECT: *out = &lrvm__track_mprotect; return 0;
    case LRVM_TRACK_EXPLICIT: *out = &lrvm__track_explicit; return 0;
    case LRVM_TRACK_UFFD:
        if (lrvm__uffd_usable()) {
            *out = &lrvm__track_uffd;
            return 0;
        }
        LRVM__TRACE("LRVM_TRACK_UFFD: this kernel or process offers no userfaultfd "
                    "write-protection in async mode with PAGEMAP_SCAN (Linux 6.7+): refused");
        return LRVM_EMODE;
    default:
        return LRVM_EINVAL;
    }
}
