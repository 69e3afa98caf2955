#!/bin/sh
# The layers of liblrvm point one way: no object of a lower part refers to
# a symbol that a higher part defines. The floors and the few edges allowed
# besides are the table in doc/architecture.md ("Layers"), read from there
# so the document and the check cannot drift apart. Each object's
# references come from nm: a U symbol that another object of the library
# defines is an edge.
set -u
srcdir=${srcdir:-.}
builddir=${abs_top_builddir:-.}
doc="$srcdir/doc/architecture.md"
objdir="$builddir/src"
[ -d "$objdir/.libs" ] && ls "$objdir"/.libs/*.o >/dev/null 2>&1 && objdir="$objdir/.libs"

table=$(sed -n '/^<!-- layers begin -->$/,/^<!-- layers end -->$/p' "$doc")
if [ -z "$table" ]; then
    echo "layers: no layer table in $doc" >&2
    exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
for o in "$objdir"/*.o; do
    part=$(basename "$o" .o)
    part=${part#liblrvm_core_la-}
    nm "$o" | awk -v p="$part" '
        $1 ~ /^[0-9a-f]+$/ && $2 ~ /^[TDBRC]$/ { print "D", p, $3 }
        $1 == "U" { print "U", p, $2 }'
done > "$tmp/syms"
if [ ! -s "$tmp/syms" ]; then
    echo "layers: no objects in $objdir" >&2
    exit 1
fi

echo "$table" | awk -v syms="$tmp/syms" '
    /^ *floor [0-9]+:/ {
        f = $2; sub(":", "", f)
        for (i = 3; i <= NF; i++) floor[$i] = f + 0
    }
    /^ *allowed:/ { allowed[$2 " -> " $4] = 1 }
    END {
        while ((getline line < syms) > 0) {
            split(line, w, " ")
            if (w[1] == "D") def[w[3]] = w[2]
            else { n++; uf[n] = w[2]; us[n] = w[3] }
            parts[w[2]] = 1
        }
        bad = 0
        for (p in parts)
            if (!(p in floor)) { print "layers: " p ".o is on no floor of the table"; bad = 1 }
        for (i = 1; i <= n; i++) {
            a = uf[i]; s = us[i]
            if (!(s in def)) continue
            b = def[s]
            if (a == b || !(a in floor) || !(b in floor)) continue
            if (floor[a] > floor[b] || ((a " -> " b) in allowed)) continue
            print "layers: " a " (floor " floor[a] ") refers to " s " of " b " (floor " floor[b] ")"
            bad = 1
        }
        if (!bad) print "layers: every reference points down or along an allowed edge"
        exit bad
    }'
