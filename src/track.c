/*
 * track.c -- which tracker a store uses.
 *
 * Owns: the choice of tracker for a tracking mode, made once at
 * lrvm_open. The trackers themselves are in track_explicit.c and
 * track_mprotect.c, behind struct lrvm__tracker (internal.h); tx.c drives
 * them and nothing else calls them.
 */
#include "internal.h"

const struct lrvm__tracker *lrvm__track_choose(int mode)
{
    switch (mode) {
    case LRVM_TRACK_AUTO:     return &lrvm__track_mprotect;
    case LRVM_TRACK_EXPLICIT: return &lrvm__track_explicit;
    default:                  return NULL;
    }
}
