#!/usr/bin/env bash
# Checks a run's files in DIR: learn1 and learn2 are identical, and hold every
# value of prop1 and prop2 exactly once (as many times as it was submitted)
# and nothing else. Exits 0 if so, 1 otherwise.
# Usage: check.sh DIR
set -euo pipefail
if [[ $# -ne 1 || ! -d $1 ]]; then
    echo "usage: $0 DIR   (a directory holding prop1, prop2, learn1, learn2)" >&2
    exit 2
fi
cd "$1"
status=0
if cmp -s learn1 learn2; then
    echo "ok: learn1 and learn2 are identical ($(wc -l <learn1) lines)"
else
    echo "FAIL: learn1 ($(wc -l <learn1) lines) and learn2 ($(wc -l <learn2) lines) differ"
    status=1
fi
sort prop1 prop2 >submitted.sorted
for f in learn1 learn2; do
    sort "$f" >"$f.sorted"
    if cmp -s submitted.sorted "$f.sorted"; then
        echo "ok: $f holds every submitted value exactly once, and nothing else"
    else
        missing=$(comm -23 submitted.sorted "$f.sorted" | wc -l)
        extra=$(comm -13 submitted.sorted "$f.sorted" | wc -l)
        echo "FAIL: $f misses $missing submitted value(s) and has $extra it should not"
        status=1
    fi
    rm -f "$f.sorted"
done
rm -f submitted.sorted
exit $status
