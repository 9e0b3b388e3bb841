#!/usr/bin/env bash
# mixl-run on device memory, end to end, with the data path asserted.
#   run_gpu.sh NP REQUESTS EXPECTED_PATH -- mixl-run args...
# Runs the job, expects exit 0 and "errors 0", checks the results file with
# check_results, and requires EXPECTED_PATH (a fixed string) in the summary's
# "data path" line: a silent fallback to another path fails.
# Environment: MIXL_RUN, MIXL_CHECK, MIXL_MPIRUN (as tests/run/run_case.sh).
set -uo pipefail
np=$1 requests=$2 want=$3
shift 3
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/results.h5"
# shellcheck disable=SC2086
$MIXL_MPIRUN -np "$np" "$MIXL_RUN" --set run.output="$out" --set run.progress=plain "$@" \
  >"$work/stdout" 2>"$work/stderr"
rc=$?
cat "$work/stdout"
cat "$work/stderr" >&2
[ $rc -eq 0 ] || { echo "mixl-run exited with $rc" >&2; exit 1; }
grep -q "errors 0" "$work/stdout" || { echo "summary does not report 0 errors" >&2; exit 1; }
path=$(grep "^data path:" "$work/stdout")
[ -n "$path" ] || { echo "summary has no data path line" >&2; exit 1; }
grep -qF -- "$want" <<<"$path" || { echo "expected path '$want', got: $path" >&2; exit 1; }
"$MIXL_CHECK" "$out" "$requests" || exit 1
echo "path: $path"
