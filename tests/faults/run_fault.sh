#!/usr/bin/env bash
# One mixl-run with an injected fault (the `faults:` section); checks the exit status, the
# messages and, with check_faults.py, the results file and the summary.
#   run_fault.sh KIND NP 'CHECK ARGS' -- CONFIG [--set key=value ...]
# KIND:
#   died    a rank is killed (faults.kill.*): run under mpirun --enable-recovery, each rank's
#           exit status recorded; the router must exit 4 after the summary and the results,
#           with the line naming the dead role, its rank and host, and "leaving without the
#           collective teardown"
#   failed  the run must finish with exit status 1 (some requests failed)
# Every KIND expects the "fault injection:" line of the injected fault on stderr.
# Optional, before --: --expect 'TEXT' (a line that must appear on stdout or stderr, may repeat).
# Environment: MIXL_RUN, MIXL_MPIRUN (mpirun with its flags), MIXL_CHECK_FAULTS (check_faults.py).
set -uo pipefail
kind=$1 np=$2 check=$3
shift 3
expect=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  [ "$1" = --expect ] && { expect+=("$2"); shift 2; continue; }
  echo "run_fault.sh: unknown option $1" >&2; exit 2
done
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/results.h5"
n=$("$MIXL_RUN" --print-config "$@" | awk '/^workload:/ {w=1} w && /^  requests:/ {print $2; exit}')
[ -n "$n" ] || { echo "cannot read workload.requests from the configuration" >&2; exit 1; }
t0=$(date +%s)
# shellcheck disable=SC2086
if [ "$kind" = died ]; then
  # A killed rank never unlinks its shared-memory segments (Open MPI's vader, UCX's posix
  # transport): they go in the work directory, removed whatever the outcome.
  OMPI_MCA_btl_vader_backing_directory=$work UCX_POSIX_DIR=$work \
  $MIXL_MPIRUN --enable-recovery -np "$np" sh -c '"$0" "$@"; echo $? >"'"$work"'/rc.$OMPI_COMM_WORLD_RANK"' \
    "$MIXL_RUN" "$@" --set run.output="$out" --set run.progress=off >"$work/stdout" 2>"$work/stderr"
  rc=$(cat "$work/rc.0" 2>/dev/null || echo none)
else
  $MIXL_MPIRUN -np "$np" "$MIXL_RUN" "$@" --set run.output="$out" --set run.progress=off \
    >"$work/stdout" 2>"$work/stderr"
  rc=$?
fi
echo "run took $(($(date +%s) - t0)) s"
cat "$work/stdout"
cat "$work/stderr" >&2
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -q "fault injection: " "$work/stderr" || fail "no 'fault injection:' line: the fault was not injected"
case $kind in
died)
  [ "$rc" = 4 ] || fail "the router exited with $rc, expected 4 (a rank died)"
  host=$(hostname)
  grep -Eq "router: [a-z]+-[0-9]+\.[0-9]+ died: (prefill|decode) instance [0-9]+ \(rank [0-9]+, host $host\)" "$work/stderr" ||
    fail "no line naming the dead role, its rank and host $host"
  grep -q "leaving without the collective teardown" "$work/stdout" || fail "no word of leaving without the teardown"
  for f in "$work"/rc.*; do
    r=$(cat "$f")
    [ "$r" = 4 ] || [ "$r" = 137 ] || fail "rank ${f##*.} exited with $r (expected 4, or 137 for the killed one)"
  done
  [ "$(grep -lx 137 "$work"/rc.* | wc -l)" = 1 ] || fail "expected exactly one rank killed (137)"
  ;;
failed) [ "$rc" = 1 ] || fail "mixl-run exited with $rc, expected 1 (some requests failed)" ;;
*) fail "unknown kind $kind" ;;
esac
for e in "${expect[@]}"; do
  grep -qF -- "$e" "$work/stdout" "$work/stderr" || fail "missing: $e"
done
[ -f "$out" ] || fail "no results file"
# shellcheck disable=SC2086
"$MIXL_CHECK_FAULTS" "$out" "$work/stdout" "$n" $check
