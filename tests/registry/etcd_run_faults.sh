#!/usr/bin/env bash
# etcd lost during a mixl-run with `registry: etcd` (metadata already exchanged): once the
# first requests are done, etcd stops answering without closing its connections (SIGSTOP);
# once a worker has reported that, etcd dies (SIGKILL) for the rest of the run. The run must
# end on its own (no hang: a 25 s guard fails the test), every request verified (the data
# path does not need etcd), the results file complete, and the outage reported once per
# worker, naming etcd's endpoint, the lease it could not keep and the timeout.
#   etcd_run_faults.sh <etcd_fixture.sh> <private-dir> <bytes-per-token> -- MPIRUN [FLAGS...] \
#       -np 3 MIXL_RUN CONFIG
# Environment: MIXL_CHECK (check_results). Without etcd installed: SKIP (77).
set -uo pipefail
fixture=$1 dir=$2 bpt=$3
shift 3
[ "$1" = "--" ] && shift
work=$(mktemp -d /tmp/mixl-etcd-run.XXXXXX)
cleanup() {
  [ -f "$dir/pid" ] && kill -CONT "$(cat "$dir/pid")" 2>/dev/null
  bash "$fixture" stop "$dir" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
bash "$fixture" start "$dir"
rc=$?
[ $rc -eq 0 ] || exit $rc # 77: etcd not installed
endpoint=$(cat "$dir/endpoint")
requests=80
fails=0

# Fixed arrivals over about 4 s; the registry times out after 1 s and its lease lives 2 s.
timeout -k 3 25 "$@" --set "registry.endpoints=$endpoint" --set registry.lease_ttl_s=2 \
  --set registry.timeout_ms=1000 --set workload.arrival=fixed --set workload.rate=20 \
  --set workload.requests=$requests --set run.output="$work/run.h5" --set run.progress=plain \
  --set run.progress_interval_ms=100 >"$work/stdout" 2>"$work/stderr" &
pid=$!
etcd_pid=$(cat "$dir/pid")
t_stop="" t_kill=""
# The first progress line with a request done: set-up (and the metadata exchange) is over.
while kill -0 $pid 2>/dev/null; do
  if [ -z "$t_stop" ] && grep -qE '^\[[1-9][0-9]*/' "$work/stdout"; then
    kill -STOP "$etcd_pid"
    t_stop=$SECONDS
  fi
  # Once a worker has reported the stalled server, it dies.
  if [ -n "$t_stop" ] && grep -q "keeping lease" "$work/stderr"; then
    kill -KILL "$etcd_pid"
    t_kill=$SECONDS
    break
  fi
  sleep 0.05
done
wait $pid
rc=$?
t_end=$SECONDS
grep -v '^\[' "$work/stdout"
cat "$work/stderr" >&2
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
[ -n "$t_stop" ] || fail "the run ended (exit $rc) before any request was done: etcd was never stopped"
[ -n "$t_kill" ] || fail "no worker reported the stopped etcd before the run ended (exit $rc)"
echo "etcd stopped $((t_end - ${t_stop:-t_end})) s and killed $((t_end - ${t_kill:-t_end})) s before the run ended (exit $rc)"
[ $rc -ne 124 ] && [ $rc -ne 137 ] || fail "mixl-run hung (killed after 25 s)"
[ $rc -eq 0 ] || fail "mixl-run exited with $rc"
grep -q "errors 0" "$work/stdout" || fail "summary does not report 0 errors"
"$MIXL_CHECK" "$work/run.h5" $requests --bytes-per-token "$bpt" || fails=$((fails + 1))
# A warning from each worker naming the lease, etcd's endpoint and the timeout;
# the outage is not logged again on every retry.
warn=$(grep -F "keeping lease" "$work/stderr" | grep -F "$endpoint" | grep -c "timed out")
[ "$warn" -ge 1 ] || fail "no warning naming the lease, $endpoint and the timeout"
lines=$(grep -cF "$endpoint" "$work/stderr")
[ "$lines" -le 6 ] || fail "the outage was logged $lines times (at most twice per rank)"
[ $fails -eq 0 ] && echo "PASS: etcd stopped, then killed mid-run: the run ended with every request verified"
exit $((fails > 0))
