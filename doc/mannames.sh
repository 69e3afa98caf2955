#!/bin/sh
# mannames.sh KIND HEADER -- the public names of HEADER (include/lrvm.h or
# include/rvm.h) that the manual pages must cover, one a line.
#
# The headers are the reference; the pages are written by hand from them.
# This is the one reader of the headers' names, so that what make install
# links (a page per function) and what make check compares with the pages
# (tests/manpages.sh) are the same lists. It reads the headers' layout as
# it is: one prototype a line, starting with its type at column 0; the
# errors as X(NAME, VALUE, "message") lines of LRVM_ERRNO_MAP; caveats as
# " *   Cn " at the start of a comment line.
#
# KIND:
#   functions   every function declared
#   types       every typedef name
#   tags        every struct and enum tag (lrvm_options, lrvm_errno, ...)
#   constants   enum members, object-like #defines and public function-like
#               macros (the include guard aside)
#   errors      every LRVM_E* code
#   errortexts  "LRVM_EINVAL (-1) invalid argument": code, value, message
#   fields STRUCT  the members of typedef struct STRUCT { ... }
#   caveats     the caveats' tags (C1, C2, ...)
set -u
kind=${1:?usage: mannames.sh KIND HEADER}
case $kind in
fields) struct=${2:?usage: mannames.sh fields STRUCT HEADER}; header=${3:?} ;;
*) header=${2:?usage: mannames.sh KIND HEADER} ;;
esac
[ -r "$header" ] || { echo "mannames.sh: cannot read $header" >&2; exit 2; }

case $kind in
functions)
    # A prototype: a type at column 0, then the name right before "(".
    # Names with "__" are internal.
    sed -n 's/^[A-Za-z][A-Za-z0-9_ ]*[ *]\([a-z][a-z0-9_]*\)(.*/\1/p' "$header" |
        grep -v '__' | sort -u ;;
types)
    sed -n -e 's/^typedef [^;{]*[ *]\([A-Za-z_][A-Za-z0-9_]*\);.*/\1/p' \
           -e 's/^} *\([A-Za-z_][A-Za-z0-9_]*\);.*/\1/p' "$header" | sort -u ;;
tags)
    # Declarations only: a comment may say "struct" too.
    grep -o -E '^(typedef )?(struct|enum) [a-z][a-z0-9_]*' "$header" | sed 's/.* //' |
        grep -v '__' | sort -u ;;
constants)
    {
        grep -o -E '[A-Z][A-Z0-9_]* = ' "$header" | sed 's/ = $//'
        sed -n -e 's/^#define \([A-Z][A-Z0-9_]*\) [^ ].*/\1/p' \
               -e 's/^#define \([A-Z][A-Z0-9_]*\)(.*/\1/p' "$header"
    } | grep -v '__' | sort -u ;;
errors)
    sed -n 's/^ *X(\(E[A-Z0-9]*\),.*/LRVM_\1/p' "$header" | sort -u ;;
errortexts)
    sed -n 's/^ *X(\(E[A-Z0-9]*\), *\(-[0-9]*\), *"\([^"]*\)").*/LRVM_\1 (\2) \3/p' "$header" ;;
fields)
    # The members between "typedef struct STRUCT {" and "}", comments
    # (which may span lines and hold ';') dropped first.
    awk -v s="$struct" '
        $0 ~ "^typedef struct " s " [{]" { on = 1; next }
        on && /^}/ { exit }
        !on { next }
        {
            line = $0
            out = ""
            while (line != "") {
                if (incomment) {
                    i = index(line, "*/")
                    if (i == 0) { line = ""; break }
                    line = substr(line, i + 2); incomment = 0
                } else {
                    i = index(line, "/*")
                    if (i == 0) { out = out line; line = ""; break }
                    out = out substr(line, 1, i - 1)
                    line = substr(line, i + 2); incomment = 1
                }
            }
            n = split(out, decls, ";")
            for (k = 1; k < n; k++) {
                d = decls[k]
                sub(/^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]+/, "", d)   # the type
                m = split(d, names, ",")
                for (j = 1; j <= m; j++) {
                    f = names[j]
                    gsub(/[ \t*]/, "", f)
                    sub(/\[.*/, "", f)
                    if (f != "") print f
                }
            }
        }' "$header" ;;
caveats)
    sed -n 's/^ \*   \(C[0-9][0-9]*\) .*/\1/p' "$header" ;;
*)
    echo "mannames.sh: unknown kind $kind" >&2
    exit 2 ;;
esac
