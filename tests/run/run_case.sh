#!/usr/bin/env bash
# One mixl-run end-to-end case.
#   run_case.sh ok   NP REQUESTS CHECK_ARGS -- mixl-run args...
#       runs the job, expects exit 0, then checks the results file with check_results.
#       CHECK_ARGS may hold --write-lengths MIN MAX: the test writes REQUESTS random prompt
#       lengths in [MIN, MAX] to a file of its own, the workload reads them from it
#       (workload.prompt.distribution=file), and check_results compares every request's
#       prompt tokens and bytes with that file (--lengths)
#   run_case.sh errors NP REQUESTS IDS -- mixl-run args...
#       expects exit 1 (exactly the requests IDS, e.g. 3,7, failed verification), then
#       checks the results file
#   run_case.sh fail NP 'EXPECTED MESSAGE' -- mixl-run args...
#   run_case.sh setupfail NP 'EXPECTED MESSAGE' -- mixl-run args...
#       as fail, but the message may come from several ranks (each found the fault itself)
#       expects a non-zero exit and the message on stderr (and no hang: CTest's timeout)
# Environment: MIXL_RUN (the mixl-run binary), MIXL_CHECK (check_results),
# MIXL_MPIRUN (mpirun with its flags). With MIXL_ETCD_DIR (an etcd fixture folder) the job
# uses that etcd server (SKIP when the fixture could not start one), and afterwards no
# metadata may be left in it (the lease is revoked at the end of the run).
set -uo pipefail
kind=$1 np=$2 arg=$3
shift 3
extra=()
lengths_range=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  if [ "$1" = --write-lengths ]; then lengths_range=("$2" "$3"); shift 3; continue; fi
  extra+=("$1"); shift
done
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/results.h5"
lengths_args=()
if [ ${#lengths_range[@]} -eq 2 ]; then
  lo=${lengths_range[0]} hi=${lengths_range[1]}
  echo "# prompt lengths written by run_case.sh" >"$work/lengths"
  for _ in $(seq 1 "$arg"); do echo $((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1))); done >>"$work/lengths"
  lengths_args=(--set workload.prompt.distribution=file --set "workload.prompt.file=$work/lengths")
  extra+=(--lengths "$work/lengths")
fi
etcd_args=()
if [ -n "${MIXL_ETCD_DIR:-}" ]; then
  [ -f "$MIXL_ETCD_DIR/endpoint" ] || { echo "SKIP: no etcd server (etcd not installed?)"; exit 77; }
  endpoint=$(cat "$MIXL_ETCD_DIR/endpoint")
  etcd_args=(--set "registry.endpoints=$endpoint")
fi
# shellcheck disable=SC2086
$MIXL_MPIRUN -np "$np" "$MIXL_RUN" --set run.output="$out" --set run.progress=plain "$@" "${etcd_args[@]}" "${lengths_args[@]}" \
  >"$work/stdout" 2>"$work/stderr"
rc=$?
cat "$work/stdout"
cat "$work/stderr" >&2
if [ "$kind" = ok ]; then
  [ $rc -eq 0 ] || { echo "mixl-run exited with $rc" >&2; exit 1; }
  grep -q "errors 0" "$work/stdout" || { echo "summary does not report 0 errors" >&2; exit 1; }
  "$MIXL_CHECK" "$out" "$arg" "${extra[@]}" || exit 1
  if [ -n "${MIXL_ETCD_DIR:-}" ]; then
    # A missing or failing etcdctl must not read as "no keys left".
    command -v etcdctl >/dev/null || { echo "etcdctl (etcd-client) not installed: cannot check etcd" >&2; exit 1; }
    ETCDCTL_API=3 etcdctl --endpoints="$endpoint" get --prefix "" --keys-only >"$work/keys" 2>"$work/etcdctl.err" ||
      { echo "etcdctl get failed:" >&2; cat "$work/etcdctl.err" >&2; exit 1; }
    left=$(grep -c mixl_metadata "$work/keys")
    [ "$left" -eq 0 ] || { echo "$left metadata keys left in etcd after the run" >&2; exit 1; }
  fi
elif [ "$kind" = errors ]; then
  ids=${extra[0]}
  k=$(tr ',' '\n' <<<"$ids" | grep -c .)
  [ $rc -ne 0 ] || { echo "mixl-run exited 0 although requests failed" >&2; exit 1; }
  grep -q "errors $k " "$work/stdout" || { echo "summary does not report $k errors" >&2; exit 1; }
  "$MIXL_CHECK" "$out" "$arg" --failed "$ids" "${extra[@]:1}"
else
  [ $rc -ne 0 ] || { echo "mixl-run accepted a bad configuration" >&2; exit 1; }
  grep -qF -- "$arg" "$work/stderr" || { echo "expected message not found: $arg" >&2; exit 1; }
  if [ "$kind" = fail ]; then
    [ "$(grep -cF -- "$arg" "$work/stderr")" -eq 1 ] || { echo "message printed more than once" >&2; exit 1; }
  fi
  [ ! -e "$out" ] || { echo "a results file was written for a bad configuration" >&2; exit 1; }
fi
