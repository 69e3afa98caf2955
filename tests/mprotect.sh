#!/bin/sh
# Automatic capture on the mprotect tracker: the suites that capture
# automatically run again with LRVM_TEST_AUTO=mprotect, which makes
# LRVM_TRACK_AUTO take the mprotect tracker (the userfaultfd tracker is
# AUTO's where the kernel offers it), so that both trackers pass the same
# tests. On a kernel that lacks it the runs are the mprotect tracker's
# again. Last, check_hostile runs as on such a kernel
# (LRVM_TEST_NO_UFFD=1).
set -u
builddir=${abs_top_builddir:-.}
# Six suites again, minutes long: not in the quick subset (testutil.h,
# tu_quick_skip).
case ${LRVM_QUICK_CHECK:-0} in
0) ;;
*) echo "mprotect: skipped: LRVM_QUICK_CHECK=$LRVM_QUICK_CHECK asks for the quick subset"
   exit 77 ;;
esac
status=0
for suite in check_track check_crash check_heap check_hostile check_tx check_group check_race; do
    log="$builddir/tests/mprotect-$suite.log"
    if LRVM_TEST_AUTO=mprotect "$builddir/tests/$suite" >"$log" 2>&1; then
        echo "mprotect: $suite passed with LRVM_TEST_AUTO=mprotect (AUTO on the mprotect tracker)"
    else
        echo "mprotect: $suite FAILED with LRVM_TEST_AUTO=mprotect ($log):"
        grep -E ':[FE]:' "$log" | head -20
        status=1
    fi
done
# A kernel without it: LRVM_TRACK_UFFD is refused with LRVM_EMODE and
# auto mode stays on the mprotect tracker (check_hostile's tracking tests).
log="$builddir/tests/mprotect-nouffd-check_hostile.log"
if LRVM_TEST_NO_UFFD=1 "$builddir/tests/check_hostile" >"$log" 2>&1; then
    echo "mprotect: check_hostile passed with LRVM_TEST_NO_UFFD=1 (as on a kernel without it)"
else
    echo "mprotect: check_hostile FAILED with LRVM_TEST_NO_UFFD=1 ($log):"
    grep -E ':[FE]:' "$log" | head -20
    status=1
fi
exit $status
