#!/usr/bin/env bash
# A rank that stops answering: the job must end with a clear error and a
# non-zero status instead of hanging. Starts mixl-run, freezes the last rank
# (a decode rank) with SIGSTOP once requests are flowing, and expects the
# router to give up ("no progress ...") and abort the job.
#   stall_case.sh NP -- mixl-run args...     (env: MIXL_RUN, MIXL_MPIRUN)
set -uo pipefail
np=$1
shift 2
work=$(mktemp -d)
mpipid=
cleanup() {
  # Only our own processes, by id: the job's ranks (children of our mpirun) and mpirun.
  if [ -n "$mpipid" ]; then
    for p in $(pgrep -P "$mpipid" 2>/dev/null); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    kill -KILL "$mpipid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
# shellcheck disable=SC2086
$MIXL_MPIRUN -np "$np" "$MIXL_RUN" --set run.output= --set run.progress=plain "$@" \
  >"$work/stdout" 2>"$work/stderr" &
mpipid=$!
# Wait until the job reports progress, then freeze the highest rank.
for _ in $(seq 1 300); do
  grep -q "^\[[1-9][0-9]*/" "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
ranks=$(pgrep -P "$mpipid" | sort -n)
victim=$(echo "$ranks" | tail -1)
[ -n "$victim" ] || { echo "no rank found under mpirun $mpipid" >&2; cat "$work/stderr" >&2; exit 1; }
kill -STOP "$victim"
wait "$mpipid"
rc=$?
mpipid_done=$mpipid
mpipid=
for p in $ranks; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
cat "$work/stdout"
cat "$work/stderr" >&2
[ "$rc" -ne 0 ] || { echo "the job exited 0 although a rank was frozen" >&2; exit 1; }
grep -q "no progress for" "$work/stderr" || { echo "no 'no progress' error from the router" >&2; exit 1; }
echo "mpirun $mpipid_done ended with status $rc after rank $victim froze"
