#!/bin/sh
# The manual pages: written by hand from the headers and the tools' --help,
# so this checks that they have not drifted from them, and lints them.
#
# Drift (sed and awk alone, so it runs everywhere), each name list read by
# doc/mannames.sh, the reader whose function lists make install links to
# the pages too:
#   lrvm.3  every function, type and constant of lrvm.h in SYNOPSIS, and
#           no function there that the headers lack; the fields of
#           lrvm_options_t and lrvm_stats_t, both ways, in SYNOPSIS's
#           structs, and each in DESCRIPTION; every LRVM_E* code in ERRORS
#           as "CODE (VALUE) MESSAGE", the message lrvm_strerror gives;
#           every caveat tag (C1...) in CAVEATS, both ways; and no
#           lrvm_*, rvm_* or LRVM_* name anywhere that the headers lack.
#   rvm.3   every function and type of rvm.h in SYNOPSIS (both ways) and
#           in DESCRIPTION, any RVM_* constant, and no rvm_*, lrvm_* or
#           LRVM_E* name that the headers lack.
#   lrvmutl.1, lrvm-bench.1, lrvm-crashtest.1: every option of the tool's
#           --help in the page and no option in the page that the tool
#           lacks (--help and --version aside); lrvmutl's commands; an
#           EXIT STATUS section, and --help saying the exit status.
# Lint: every page through mandoc -T lint -W warning and, where groff is
# installed, groff -man -ww -z; any message fails. Without mandoc the
# drift check still runs, and the test is skipped (77) if it passes.
set -u
LC_ALL=C
export LC_ALL
srcdir=${srcdir:-.}
builddir=${abs_top_builddir:-.}
doc="$srcdir/doc"
names="$srcdir/doc/mannames.sh"
lrvm_h="$srcdir/include/lrvm.h"
rvm_h="$srcdir/include/rvm.h"
bad=0

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "manpages: $*"
    bad=1
}

# The text of a page with the troff markup taken out: macro names, font
# escapes, quotes; \- and \e made plain. A word written with a trailing
# "*" (LRVM_E*, rvm_*) is a pattern, not a name, and goes.
plain() {
    sed -e 's/^\.[A-Za-z][A-Za-z]* *//' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' \
        -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\(lq//g' -e 's/\\(rq//g' -e 's/\\(bu//g' \
        -e 's/\\e/\\/g' -e 's/"//g' "$@" |
        sed -E 's/[A-Za-z0-9_]+\*//g'
}

# Section SECTION of page PAGE, as plain text.
section() {
    awk -v want="$2" '
        /^\.SH / { s = $0; sub(/^\.SH +/, "", s); gsub(/"/, "", s); on = (s == want); next }
        on' "$1" | plain
}

# The identifiers of plain text on stdin, one a line.
words() {
    grep -o -E '[A-Za-z_][A-Za-z0-9_]*' | sort -u
}

# The lines of sorted file A (or - for stdin) that sorted file B lacks.
missing() {
    comm -23 "$1" "$2"
}

# Fail once for each line of file LIST, with FORMAT (printf, %s the line).
each() {
    while read -r n; do
        [ -n "$n" ] && fail "$(printf "$2" "$n")"
    done < "$1"
}

# Fail for each line of sorted file LIST missing from the identifiers of
# the plain text in file TEXT, with FORMAT.
need_words() {
    words < "$2" > "$tmp/w"
    missing "$1" "$tmp/w" > "$tmp/m"
    each "$tmp/m" "$3"
}

for f in "$names" "$lrvm_h" "$rvm_h" "$doc/lrvm.3" "$doc/rvm.3"; do
    [ -r "$f" ] || { echo "manpages: cannot read $f"; exit 1; }
done

# ---------------------------------------------------------------- lrvm.3
page="$doc/lrvm.3"
sh "$names" functions "$lrvm_h" > "$tmp/lrvm.functions"
sh "$names" functions "$rvm_h" > "$tmp/rvm.functions"
sh "$names" types "$lrvm_h" > "$tmp/lrvm.types"
sh "$names" tags "$lrvm_h" > "$tmp/lrvm.tags"
sh "$names" constants "$lrvm_h" > "$tmp/lrvm.constants"
sh "$names" errors "$lrvm_h" > "$tmp/lrvm.errors"
sh "$names" errortexts "$lrvm_h" > "$tmp/lrvm.errortexts"
sh "$names" caveats "$lrvm_h" | sort -u > "$tmp/lrvm.caveats"
# A header laid out otherwise would give empty lists, and nothing to miss.
if [ "$(wc -l < "$tmp/lrvm.functions")" -lt 20 ] || [ "$(wc -l < "$tmp/lrvm.errors")" -lt 10 ] ||
   [ "$(wc -l < "$tmp/lrvm.errortexts")" -lt 10 ] || [ ! -s "$tmp/lrvm.caveats" ] ||
   [ "$(wc -l < "$tmp/rvm.functions")" -lt 10 ]; then
    echo "manpages: doc/mannames.sh read too few names from the headers: has their layout changed?"
    exit 1
fi
sort -u "$tmp/lrvm.functions" "$tmp/rvm.functions" > "$tmp/all.functions"
sort -u "$tmp/all.functions" "$tmp/lrvm.types" "$tmp/lrvm.tags" > "$tmp/known"
echo rvm_t | sort -u -m - "$tmp/known" > "$tmp/known+" && mv "$tmp/known+" "$tmp/known"

section "$page" SYNOPSIS > "$tmp/syn"
section "$page" DESCRIPTION > "$tmp/desc"
grep -o -E '[a-z_][a-z0-9_]*\(' "$tmp/syn" | tr -d '(' | sort -u > "$tmp/syn.functions"
missing "$tmp/lrvm.functions" "$tmp/syn.functions" > "$tmp/m"
each "$tmp/m" "lrvm.3 lacks %s in SYNOPSIS (a function of include/lrvm.h)"
missing "$tmp/syn.functions" "$tmp/all.functions" > "$tmp/m"
each "$tmp/m" "lrvm.3 declares %s() in SYNOPSIS, which the headers do not"
need_words "$tmp/lrvm.types" "$tmp/syn" "lrvm.3 lacks type %s of include/lrvm.h in SYNOPSIS"
need_words "$tmp/lrvm.constants" "$tmp/syn" \
    "lrvm.3 lacks constant %s of include/lrvm.h in SYNOPSIS"

# The structs: SYNOPSIS writes them as the header does, so the same reader
# gives the page's fields.
for s in lrvm_options lrvm_stats; do
    sh "$names" fields "$s" "$lrvm_h" | sort -u > "$tmp/h.$s"
    sh "$names" fields "$s" "$tmp/syn" | sort -u > "$tmp/p.$s"
    [ -s "$tmp/h.$s" ] || fail "no fields of $s read from include/lrvm.h"
    missing "$tmp/h.$s" "$tmp/p.$s" > "$tmp/m"
    each "$tmp/m" "lrvm.3 lacks field %s of ${s}_t in SYNOPSIS"
    missing "$tmp/p.$s" "$tmp/h.$s" > "$tmp/m"
    each "$tmp/m" "lrvm.3 lists field %s of ${s}_t in SYNOPSIS, which include/lrvm.h does not"
    need_words "$tmp/h.$s" "$tmp/desc" "lrvm.3 does not describe field %s of ${s}_t"
done

# ERRORS: "CODE (VALUE) MESSAGE" for each code, in the section joined up.
section "$page" ERRORS | tr '\n' ' ' | tr -s ' ' > "$tmp/errors"
while IFS= read -r t; do
    grep -q -F -- "$t" "$tmp/errors" ||
        fail "lrvm.3 lacks \"$t\" in ERRORS (include/lrvm.h's code, value and message)"
done < "$tmp/lrvm.errortexts"

# CAVEATS: the header's tags, both ways (each a .TP label).
awk '/^\.SH / { on = ($0 == ".SH CAVEATS"); next }
     on && prev == ".TP" { s = $0; sub(/^\.B +/, "", s); print s }
     { prev = $0 }' "$page" | sort -u > "$tmp/p.caveats"
missing "$tmp/lrvm.caveats" "$tmp/p.caveats" > "$tmp/m"
each "$tmp/m" "lrvm.3 lacks caveat %s of include/lrvm.h in CAVEATS"
missing "$tmp/p.caveats" "$tmp/lrvm.caveats" > "$tmp/m"
each "$tmp/m" "lrvm.3 has a caveat %s that include/lrvm.h does not"

# Anywhere in the page: names of the interface that no longer exist.
plain "$page" | words > "$tmp/p.words"
{ cat "$lrvm_h" "$rvm_h" | words; cat "$tmp/lrvm.errors"; } | sort -u > "$tmp/h.words"
grep -E '^l?rvm_' "$tmp/p.words" | missing - "$tmp/known" > "$tmp/m"
each "$tmp/m" "lrvm.3 names %s, which the headers do not declare"
grep -E '^LRVM_' "$tmp/p.words" | missing - "$tmp/h.words" > "$tmp/m"
each "$tmp/m" "lrvm.3 names %s, which the headers do not mention"

# ---------------------------------------------------------------- rvm.3
page="$doc/rvm.3"
sh "$names" types "$rvm_h" > "$tmp/rvm.types"
sh "$names" constants "$rvm_h" > "$tmp/rvm.constants"
section "$page" SYNOPSIS > "$tmp/syn"
section "$page" DESCRIPTION > "$tmp/desc"
grep -o -E '[a-z_][a-z0-9_]*\(' "$tmp/syn" | tr -d '(' | sort -u > "$tmp/syn.functions"
missing "$tmp/rvm.functions" "$tmp/syn.functions" > "$tmp/m"
each "$tmp/m" "rvm.3 lacks %s in SYNOPSIS (a function of include/rvm.h)"
missing "$tmp/syn.functions" "$tmp/all.functions" > "$tmp/m"
each "$tmp/m" "rvm.3 declares %s() in SYNOPSIS, which the headers do not"
need_words "$tmp/rvm.functions" "$tmp/desc" "rvm.3 does not describe %s in DESCRIPTION"
need_words "$tmp/rvm.types" "$tmp/syn" "rvm.3 lacks type %s of include/rvm.h in SYNOPSIS"
need_words "$tmp/rvm.constants" "$tmp/syn" "rvm.3 lacks constant %s of include/rvm.h in SYNOPSIS"
plain "$page" | words > "$tmp/p.words"
grep -E '^l?rvm_' "$tmp/p.words" | missing - "$tmp/known" > "$tmp/m"
each "$tmp/m" "rvm.3 names %s, which the headers do not declare"
grep -E '^LRVM_E' "$tmp/p.words" | missing - "$tmp/lrvm.errors" > "$tmp/m"
each "$tmp/m" "rvm.3 names %s, which is no error code of include/lrvm.h"

# ---------------------------------------------------------------- the tools
# Options as written in a page (\-\- made plain) or printed by --help.
options() {
    grep -o -E -- '--[a-z][a-z-]*[a-z]' | sort -u
}

tool_check() {
    name=$1 prog=$2 page="$doc/$1.1"
    if [ ! -r "$page" ]; then
        fail "no page $page"
        return
    fi
    grep -q '^\.SH EXIT STATUS' "$page" || fail "$name.1 has no EXIT STATUS section"
    if [ ! -x "$prog" ]; then
        echo "manpages: $prog not built: $name.1 not compared with its --help"
        return
    fi
    "$prog" --help > "$tmp/help" 2>&1 || fail "$name --help failed"
    grep -q 'Exit status' "$tmp/help" || fail "$name --help does not say the exit status"
    options < "$tmp/help" > "$tmp/help.opts"
    plain "$page" | options > "$tmp/page.opts"
    printf '%s\n' --help --version | sort -u - "$tmp/help.opts" > "$tmp/help.opts+"
    missing "$tmp/help.opts" "$tmp/page.opts" > "$tmp/m"
    each "$tmp/m" "$name.1 lacks %s, which $name --help lists"
    missing "$tmp/page.opts" "$tmp/help.opts+" > "$tmp/m"
    each "$tmp/m" "$name.1 names %s, which $name --help does not"
}

lrvmutl=${LRVMUTL:-$builddir/tools/lrvmutl}
tool_check lrvmutl "$lrvmutl"
tool_check lrvm-bench "${LRVM_BENCH:-$builddir/tools/lrvm-bench}"
tool_check lrvm-crashtest "${LRVM_CRASHTEST:-$builddir/tools/lrvm-crashtest}"
# lrvmutl's commands: the words that open its usage lines ("  info DIR").
if [ -x "$lrvmutl" ]; then
    "$lrvmutl" --help 2>&1 | sed -n 's/^  \([a-z][a-z]*\) DIR.*/\1/p' | sort -u > "$tmp/cmds"
    [ -s "$tmp/cmds" ] || fail "no commands read from lrvmutl --help"
    while read -r c; do
        grep -q "^\.B $c\$" "$doc/lrvmutl.1" || fail "lrvmutl.1 lacks command $c"
    done < "$tmp/cmds"
fi

if [ "$bad" -ne 0 ]; then
    echo "manpages: the pages have drifted from the headers or the tools (above)"
    exit 1
fi
echo "manpages: lrvm.3, rvm.3 and the tools' pages name what the headers and --help do"

# ---------------------------------------------------------------- lint
if ! command -v mandoc >/dev/null 2>&1; then
    echo "manpages: mandoc not installed: pages not linted (.ci/deps installs it)"
    exit 77
fi
for p in "$doc"/*.[1-9]; do
    out=$(mandoc -T lint -W warning "$p" 2>&1) || [ -n "$out" ] || out="$p: mandoc failed"
    [ -z "$out" ] || fail "mandoc -T lint -W warning: $out"
    if command -v groff >/dev/null 2>&1; then
        out=$(groff -man -ww -z "$p" 2>&1) || [ -n "$out" ] || out="groff failed"
        [ -z "$out" ] || fail "groff -man -ww -z $p: $out"
    fi
done
[ "$bad" -eq 0 ] && echo "manpages: every page lints clean"
exit $bad
