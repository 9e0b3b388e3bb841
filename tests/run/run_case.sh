#!/usr/bin/env bash
# One mixl-run end-to-end case.
#   run_case.sh ok   NP REQUESTS CHECK_ARGS -- mixl-run args...
#       runs the job, expects exit 0, then checks the results file with check_results
#   run_case.sh errors NP REQUESTS K -- mixl-run args...
#       expects exit 1 (K requests failed verification), then checks the results file
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
while [ $# -gt 0 ] && [ "$1" != "--" ]; do extra+=("$1"); shift; done
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/results.h5"
etcd_args=()
if [ -n "${MIXL_ETCD_DIR:-}" ]; then
  [ -f "$MIXL_ETCD_DIR/endpoint" ] || { echo "SKIP: no etcd server (etcd not installed?)"; exit 77; }
  endpoint=$(cat "$MIXL_ETCD_DIR/endpoint")
  etcd_args=(--set "registry.endpoints=$endpoint")
fi
# shellcheck disable=SC2086
$MIXL_MPIRUN -np "$np" "$MIXL_RUN" --set run.output="$out" --set run.progress=plain "$@" "${etcd_args[@]}" \
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
  [ $rc -ne 0 ] || { echo "mixl-run exited 0 although requests failed" >&2; exit 1; }
  grep -q "errors ${extra[0]} " "$work/stdout" || { echo "summary does not report ${extra[0]} errors" >&2; exit 1; }
  "$MIXL_CHECK" "$out" "$arg" --errors "${extra[0]}"
else
  [ $rc -ne 0 ] || { echo "mixl-run accepted a bad configuration" >&2; exit 1; }
  grep -qF -- "$arg" "$work/stderr" || { echo "expected message not found: $arg" >&2; exit 1; }
  if [ "$kind" = fail ]; then
    [ "$(grep -cF -- "$arg" "$work/stderr")" -eq 1 ] || { echo "message printed more than once" >&2; exit 1; }
  fi
  [ ! -e "$out" ] || { echo "a results file was written for a bad configuration" >&2; exit 1; }
fi
