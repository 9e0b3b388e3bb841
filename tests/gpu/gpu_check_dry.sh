#!/usr/bin/env bash
# The emulated dry run of scripts/gpu-check.sh: it must pass, and its report
# must hold every step, device-memory bench rows (MIXL, and cudaMemcpy device
# to device and host<->device from pinned and pageable memory), the CUDA IPC
# path and a verified mixl-run summary, and its progress (stdout is not a
# terminal here) one plain line per step. Run twice to show it is safe to
# repeat.
#   gpu_check_dry.sh SCRIPT BUILD_DIR
set -uo pipefail
script=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in 1 2; do
  bash "$script" --emulated --build "$build" --report "$work/report.txt" >"$work/progress" ||
    { echo "gpu-check --emulated failed (round $round)" >&2; cat "$work/report.txt" >&2; exit 1; }
done
r=$work/report.txt
fail=0
need() { grep -qF -- "$1" "$r" || { echo "report lacks: $1" >&2; fail=1; }; }
need "mode: EMULATED dry run"
need "-- mixl-bench --mem cuda, CUDA IPC + cudaMemcpy D2D/H2D/D2H: exit 0"
need "-- mixl-bench --mem cuda, auto path: exit 0"
need "-- mixl-bench --mem pinned,host: exit 0"
need "-- mixl-run configs/gpu.yaml: exit 0"
need "CUDA IPC for same-node peers"
need "errors 0"
need "steps failed: 0"
grep -qE "^mixl +mpi +WRITE +cuda" "$r" || { echo "report has no measured cuda WRITE row" >&2; fail=1; }
grep -qE "^memcpy +cpu +COPY +cuda " "$r" || { echo "report has no cudaMemcpy D2D row" >&2; fail=1; }
for row in "H2D +cuda\+pinned" "D2H +cuda\+pinned" "H2D +cuda\+host" "D2H +cuda\+host"; do
  grep -qE "^memcpy +cuda +$row +pairwise +[0-9]+[KM]? +1 +[0-9.]+ " "$r" ||
    { echo "report has no measured cudaMemcpy row $row" >&2; fail=1; }
done
# Not on a terminal: one plain progress line per step, no carriage returns.
for n in 1 2 3 4; do
  grep -q "^\[gpu-check *[0-9]*s\] \[$n/4\] " "$work/progress" || { echo "no progress line for step $n" >&2; fail=1; }
done
! grep -q $'\r' "$work/progress" || { echo "progress output has carriage returns off a terminal" >&2; fail=1; }
[ $fail -eq 0 ] && echo "gpu-check dry run: report complete"
exit $fail
