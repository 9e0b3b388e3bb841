#!/usr/bin/env bash
# One CTest test per backend and memory kind: every case of the transport
# conformance suite in turn, one MPI job per case (each starts from a fresh
# agent), so a case that fails or hangs is named and the others still run.
#   run_cases.sh <test_transport> <backend> <kind> "<case ...>" -- <mpirun command ...>
# Exit 0 when every case passed; 77 when the first case reported 77 (the
# memory kind needs a device that is absent: the reason is printed by the case);
# 1 when any case failed, timed out, or skipped while others ran.
set -u
exe=$1 backend=$2 kind=$3 cases=$4
shift 4
[ "${1:-}" = -- ] && shift
per_case=${MIXL_TRANSPORT_CASE_TIMEOUT:-60}
passed=0 skipped=0 failed=()
for c in $cases; do
  start=$SECONDS
  timeout -k 5 "$per_case" "$@" "$exe" "$backend" "$kind" "$c"
  rc=$?
  took=$((SECONDS - start))
  case $rc in
    0) passed=$((passed + 1)); echo "transport $backend/$kind $c: passed (${took} s)" ;;
    77)
      skipped=$((skipped + 1))
      echo "transport $backend/$kind $c: skipped (${took} s)"
      # The first case decides device presence alike for all: skip the rest.
      if [ "$passed" -eq 0 ] && [ ${#failed[@]} -eq 0 ]; then
        echo "transport $backend/$kind: every case skipped (first case: device absent)"
        exit 77
      fi ;;
    124|137) failed+=("$c (no end within ${per_case} s)") ;;
    *) failed+=("$c (exit $rc)") ;;
  esac
done
n=$(wc -w <<<"$cases")
if [ ${#failed[@]} -gt 0 ]; then
  echo "transport $backend/$kind: FAILED: ${failed[*]}" >&2
  exit 1
fi
if [ "$skipped" -eq "$n" ]; then
  echo "transport $backend/$kind: every case skipped"
  exit 77
fi
if [ "$skipped" -gt 0 ]; then
  echo "transport $backend/$kind: FAILED: $skipped of $n cases skipped while the others ran" >&2
  exit 1
fi
echo "transport $backend/$kind: $passed of $n cases passed"
