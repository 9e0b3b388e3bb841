#!/usr/bin/env bash
# The emulated dry run of scripts/gpu-check.sh: it must pass, and its report
# must hold every step, a device-memory bench row, the CUDA IPC path and a
# verified mixl-run summary. Run twice to show it is safe to repeat.
#   gpu_check_dry.sh SCRIPT BUILD_DIR
set -uo pipefail
script=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in 1 2; do
  bash "$script" --emulated --build "$build" --report "$work/report.txt" ||
    { echo "gpu-check --emulated failed (round $round)" >&2; cat "$work/report.txt" >&2; exit 1; }
done
r=$work/report.txt
fail=0
need() { grep -qF -- "$1" "$r" || { echo "report lacks: $1" >&2; fail=1; }; }
need "mode: EMULATED dry run"
need "-- mixl-bench --mem cuda, CUDA IPC + cudaMemcpy D2D: exit 0"
need "-- mixl-bench --mem cuda, auto path: exit 0"
need "-- mixl-bench --mem pinned,host: exit 0"
need "-- mixl-run configs/gpu.yaml: exit 0"
need "CUDA IPC for same-node peers"
need "errors 0"
need "steps failed: 0"
grep -qE "^mixl +mpi +WRITE +cuda" "$r" || { echo "report has no measured cuda WRITE row" >&2; fail=1; }
grep -qE "^memcpy +cpu +COPY +cuda" "$r" || { echo "report has no cudaMemcpy D2D row" >&2; fail=1; }
[ $fail -eq 0 ] && echo "gpu-check dry run: report complete"
exit $fail
