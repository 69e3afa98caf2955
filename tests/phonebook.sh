#!/bin/sh
# examples/phonebook under kill -9: its uthash table, on an lrvm heap and
# saved with lrvm_sync, must come back whole and exactly as last saved.
# Each round starts `phonebook DIR torture` on the same book, kills it
# with SIGKILL after a random 0 to 600 ms (in its recovery, its changes,
# its saves or a truncation), and runs `phonebook DIR check`: uthash's
# HASH_FSCK, every person found by name, and the people of the last save
# that returned (phonebook.c says how it knows). lrvmutl verify checks the
# heap's blocks too. Both automatic trackers take their turn, uffd where
# the kernel offers it. Last, each of check's findings is provoked on
# purpose (torture --selftest), and check must report it.
# Skipped (77) when configure found no uthash.h.
set -u
if [ "${LRVM_HAVE_UTHASH:-no}" != yes ]; then
    echo "phonebook: skipped: configure found no uthash.h (Debian: uthash-dev)"
    exit 77
fi
pb=${LRVM_PHONEBOOK:-./examples/phonebook}
lrvmutl=${LRVMUTL:-./tools/lrvmutl}
rounds=${PHONEBOOK_ROUNDS:-20}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/phonebook.XXXXXX") || exit 99
status=0

fail() {
    echo "phonebook: FAILED: $*"
    status=1
}

# The answers every tool of lrvm gives (check_version holds the others
# to them; phonebook is built only with uthash).
version=$("$pb" --version)
case $version in
"phonebook (lrvm) $("$lrvmutl" --version | sed 's/.* //')") ;;
*) fail "phonebook --version: $version" ;;
esac
"$pb" --help | grep -q '^usage: phonebook' || fail "phonebook --help"
"$pb" --no-such-option 2>/dev/null
[ $? -eq 2 ] || fail "phonebook --no-such-option: not status 2"

# 0..599, from /dev/urandom: POSIX sh has no $RANDOM.
random_ms() {
    od -An -N2 -tu2 /dev/urandom | awk '{ print $1 % 600 }'
}

# tortures TRACKER ROUNDS: the kill rounds on the TRACKER's own book.
tortures() {
    tracker=$1
    dir="$tmp/$tracker"
    round=1
    while [ "$round" -le "$2" ]; do
        ms=$(random_ms)
        LRVM_TRACKING=$tracker "$pb" "$dir" torture >"$tmp/torture.out" 2>&1 &
        pid=$!
        sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        rc=$?
        if [ "$rc" -ne 137 ]; then
            fail "$tracker round $round: torture ended with status $rc before the kill"
            cat "$tmp/torture.out"
            return
        fi
        LRVM_TRACKING=$tracker "$pb" "$dir" check >"$tmp/check.out" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
            fail "$tracker round $round (killed after $ms ms): check exit $rc"
            cat "$tmp/check.out"
            return
        fi
        if ! grep -q "^check: tracker: $tracker\$" "$tmp/check.out"; then
            fail "$tracker round $round: check did not run on the $tracker tracker"
            cat "$tmp/check.out"
            return
        fi
        if ! "$lrvmutl" verify "$dir" >"$tmp/verify.out" 2>&1; then
            fail "$tracker round $round (killed after $ms ms): lrvmutl verify"
            cat "$tmp/verify.out"
            return
        fi
        round=$((round + 1))
    done
    # A torture that never got to save would pass every check above.
    saves=$(sed -n 's/^check: the book holds save \([0-9]*\).*/\1/p' "$tmp/check.out")
    if [ "${saves:-0}" -lt "$2" ]; then
        fail "$tracker: $2 rounds made only ${saves:-0} saves"
        return
    fi
    echo "phonebook: $tracker tracker: $2 kills, every restart whole, $saves saves"
    tail -n 3 "$tmp/check.out"
}

tortures mprotect "$rounds"

# The kernel refuses LRVM_TRACK_UFFD with LRVM_EMODE where it lacks it.
if LRVM_TRACKING=uffd "$pb" "$tmp/uffd-probe" check >"$tmp/probe.out" 2>&1; then
    tortures uffd "$rounds"
elif grep -q "not possible in this tracking mode" "$tmp/probe.out"; then
    echo "phonebook: uffd tracker: skipped, this kernel does not offer it"
else
    fail "LRVM_TRACKING=uffd phonebook check on a new book:"
    cat "$tmp/probe.out"
fi

# selftest NAME EXPECTED: the book saved with NAME's flaw must fail check
# with status 1, saying EXPECTED; the same run without the flaw passes.
selftest() {
    dir="$tmp/selftest-$1"
    if ! "$pb" "$dir" torture 200 --selftest="$1" >"$tmp/selftest.out" 2>&1; then
        fail "torture --selftest=$1:"
        cat "$tmp/selftest.out"
        return
    fi
    "$pb" "$dir" check >"$tmp/selftest.out" 2>&1
    rc=$?
    if [ "$rc" -ne 1 ] || ! grep -q "$2" "$tmp/selftest.out"; then
        fail "check (exit $rc) did not report the flaw of --selftest=$1 ($2):"
        cat "$tmp/selftest.out"
        return
    fi
    echo "phonebook: --selftest=$1: check caught it: $(grep "$2" "$tmp/selftest.out" | head -n 1)"
}
if ! { "$pb" "$tmp/control" torture 200 && "$pb" "$tmp/control" check; } >"$tmp/control.out" 2>&1; then
    fail "torture 200 and check, without a flaw:"
    cat "$tmp/control.out"
fi
selftest lose "^check: LOST: the book holds save 200, but save 201 had returned"
selftest half "^check: WRONG: "
selftest fsck "^check: the table fails uthash's HASH_FSCK"

if [ "$status" -eq 0 ]; then
    rm -rf "$tmp"
else
    echo "phonebook: the stores are kept in $tmp"
fi
exit $status
