#!/usr/bin/env bash
# mixl-bench on device or pinned memory, with what ran asserted.
#   bench_gpu.sh MEM EXPECTED_PATH -- mpirun-prefix... mixl-bench args...
# Runs the command (which must write --csv "$BENCH_CSV"), expects exit 0, a
# "# path:" line containing EXPECTED_PATH, and for every mode/op row of
# memory MEM in the CSV a measured rate (gbps > 0, no "not measured" note).
set -uo pipefail
mem=$1 want=$2
shift 2
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BENCH_CSV="$work/bench.csv"
"$@" --csv "$BENCH_CSV" >"$work/stdout" 2>"$work/stderr"
rc=$?
cat "$work/stdout"
cat "$work/stderr" >&2
[ $rc -eq 0 ] || { echo "mixl-bench exited with $rc" >&2; exit 1; }
grep -q "^# path:.*$want" "$work/stdout" || { echo "path line lacks '$want'" >&2; exit 1; }
awk -F, -v mem="$mem" '
  NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  $col["mem"] == mem {
    rows++
    if ($col["gbps"] + 0 <= 0 || $col["note"] ~ /not measured/) { print "not measured: " $0; bad++ }
  }
  END { if (rows == 0) { print "no " mem " rows"; exit 1 } if (bad) exit 1; print rows " " mem " rows measured" }
' "$BENCH_CSV" || exit 1
