#!/bin/sh
# Automatic capture on the userfaultfd tracker: the suites that capture
# automatically run again with LRVM_TEST_AUTO=uffd, which makes
# LRVM_TRACK_AUTO take the userfaultfd tracker (the mprotect tracker is
# AUTO's otherwise), so that both trackers pass the same tests. On a
# kernel that lacks it the runs are the mprotect tracker's again. Last,
# check_hostile runs as on such a kernel (LRVM_TEST_NO_UFFD=1).
set -u
builddir=${abs_top_builddir:-.}
# Six suites again, minutes long: not in the quick subset (testutil.h,
# tu_quick_skip).
case ${LRVM_QUICK_CHECK:-0} in
0) ;;
*) echo "uffd: skipped: LRVM_QUICK_CHECK=$LRVM_QUICK_CHECK asks for the quick subset"
   exit 77 ;;
esac
status=0
for suite in check_track check_crash check_heap check_hostile check_tx check_group; do
    log="$builddir/tests/uffd-$suite.log"
    if LRVM_TEST_AUTO=uffd "$builddir/tests/$suite" >"$log" 2>&1; then
        echo "uffd: $suite passed with LRVM_TEST_AUTO=uffd (AUTO on the userfaultfd tracker where the kernel offers it)"
    else
        echo "uffd: $suite FAILED with LRVM_TEST_AUTO=uffd ($log):"
        grep -E ':[FE]:' "$log" | head -20
        status=1
    fi
done
# A kernel without it: LRVM_TRACK_UFFD is refused with LRVM_EMODE and
# auto mode stays on the mprotect tracker (check_hostile's tracking tests).
log="$builddir/tests/uffd-none-check_hostile.log"
if LRVM_TEST_NO_UFFD=1 "$builddir/tests/check_hostile" >"$log" 2>&1; then
    echo "uffd: check_hostile passed with LRVM_TEST_NO_UFFD=1 (as on a kernel without it)"
else
    echo "uffd: check_hostile FAILED with LRVM_TEST_NO_UFFD=1 ($log):"
    grep -E ':[FE]:' "$log" | head -20
    status=1
fi
exit $status
