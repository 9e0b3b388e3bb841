#!/usr/bin/env bash
# mixl-bench on device or pinned memory, with what ran asserted.
#   bench_gpu.sh MEM[,MEM...] EXPECTED_PATH -- mpirun-prefix... mixl-bench args...
# Runs the command (which must write --csv "$BENCH_CSV"), expects exit 0, a
# "# path:" line containing EXPECTED_PATH, and rows of every memory MEM in
# the CSV, each with a measured rate (gbps > 0, no "not measured" note): a
# row whose data verification failed has none. With --mem cuda the MEMs
# cuda+pinned and cuda+host are the host<->device cudaMemcpy baselines.
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
for m in ${mem//,/ }; do
  awk -F, -v mem="$m" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["mem"] == mem {
      rows++
      if ($col["gbps"] + 0 <= 0 || $col["note"] ~ /not measured/) { print "not measured: " $0; bad++ }
    }
    END { if (rows == 0) { print "no " mem " rows"; exit 1 } if (bad) exit 1; print rows " " mem " rows measured" }
  ' "$BENCH_CSV" || exit 1
done
