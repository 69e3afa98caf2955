#!/bin/sh
# Automatic capture on a kernel without userfaultfd write-protection: the
# suites that capture automatically run again with LRVM_TEST_NO_UFFD=1,
# which makes LRVM_TRACK_AUTO fall back to the mprotect tracker (and
# LRVM_TRACK_UFFD refuse), so that both trackers pass the same tests.
set -u
builddir=${abs_top_builddir:-.}
status=0
for suite in check_track check_crash check_heap check_hostile check_tx check_group; do
    if LRVM_TEST_NO_UFFD=1 "$builddir/tests/$suite" >"$builddir/tests/fallback-$suite.log" 2>&1; then
        echo "fallback: $suite passed with the mprotect tracker"
    else
        echo "fallback: $suite FAILED with the mprotect tracker (tests/fallback-$suite.log):"
        grep -E ':[FE]:' "$builddir/tests/fallback-$suite.log" | head -20
        status=1
    fi
done
exit $status
