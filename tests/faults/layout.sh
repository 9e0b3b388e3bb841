#!/bin/bash
# Ranks that disagree on a shared-memory layout parameter: every rank must
# refuse at create, and the message must name the parameter, both ranks and
# both values.   layout.sh CASE EXPECTED_MESSAGE -- MPIRUN [FLAGS...] PROG
set -u
case=$1 expect=$2
shift 2
[ "$1" = "--" ] && shift
out=$(timeout -k 5 60 "$@" "layout-$case" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: exit $rc (not every rank refused, or a hang)"; exit 1; }
n=$(grep -cF "$expect" <<<"$out")
[ "$n" -ge 2 ] || { echo "FAIL: expected the message on every rank: '$expect' ($n found)"; exit 1; }
echo "PASS: every rank refused with: $expect"
