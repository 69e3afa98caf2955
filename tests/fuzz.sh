#!/bin/sh
# fuzz.sh -- build lrvm's libFuzzer targets with clang and run each for a
# number of executions, starting from the seed corpus in tests/fuzz/.
# Not part of make check: a long run is a tool, not a test.
#
#   tests/fuzz.sh [--runs N] [--merge] [TARGET...]
#
# TARGET is recover (the log reader, recovery, lrvmutl verify, dump and
# heap's and cat's ranges), heap (a changed heap file opened and used),
# heapcheck (lrvmutl's heap readers alone, in memory); default: all three.
# --runs N executions each (default 10000000). The corpus grows in
# $FUZZ_DIR (default /tmp/lrvm-fuzz); --merge then folds what it found
# back into the seed corpus, minimized. Findings (crash-*, leak-*) land in
# $FUZZ_DIR; the script exits 1 when a target found one.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
runs=10000000
merge=0
targets=
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    recover|heap|heapcheck) targets="$targets $1"; shift ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$targets" ] || targets="recover heap heapcheck"
work=${FUZZ_DIR:-/tmp/lrvm-fuzz}
mkdir -p "$work"
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -pthread -Wall -Wextra"
status=0
for t in $targets; do
    case $t in
    recover)   src=fuzz_recover.c; def= ;;
    heap)      src=fuzz_heap.c; def= ;;
    heapcheck) src=fuzz_heap.c; def=-DFUZZ_HEAP_CHECK_ONLY ;;
    esac
    seeds=$top/tests/fuzz/$t
    corpus=$work/corpus-$t
    mkdir -p "$corpus" "$seeds"
    echo "== $t: building"
    clang $cflags $def -I"$top/include" -I"$top/src" "$top"/src/[a-z]*.c \
        "$top/tests/$src" -lsigsegv -o "$work/fuzz_$t"
    echo "== $t: $runs executions from $(ls "$seeds" | wc -l) seeds"
    start=$(date +%s)
    if (cd "$work" && "./fuzz_$t" -runs="$runs" -print_final_stats=1 \
            -artifact_prefix="$work/$t-" "$corpus" "$seeds" >"$work/$t.log" 2>&1); then
        result="no finding"
    else
        result="FINDING (see $work/$t.log)"
        status=1
    fi
    grep -E '^stat::number_of_executed_units|^Done' "$work/$t.log" || true
    echo "== $t: $result in $(($(date +%s) - start)) s; corpus $(ls "$corpus" | wc -l) files"
    if [ $merge = 1 ]; then
        (cd "$work" && "./fuzz_$t" -merge=1 "$seeds" "$corpus" >/dev/null 2>&1)
        echo "== $t: seed corpus now $(ls "$seeds" | wc -l) files"
    fi
done
exit $status
