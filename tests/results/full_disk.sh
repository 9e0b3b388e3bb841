#!/usr/bin/env bash
# The results file on a full file system: a 16 KiB tmpfs, mounted in a mount namespace of
# the test's own (unshare -m, so nothing outside sees it). The HDF5 writes fail part-way;
# mixl-run must say so naming the file, go on with the run, still print the summary, and
# exit non-zero. Without the right to make a mount namespace or mount a tmpfs (an
# unprivileged container) the test reports SKIP (77) with the reason.
#   full_disk.sh MPIRUN [FLAGS...] -np 3 MIXL_RUN CONFIG [ARGS...]
set -uo pipefail
requests=200
mnt=$(mktemp -d /tmp/mixl-full.XXXXXX)
trap 'rm -rf "$mnt"' EXIT
if ! unshare -m bash -c "mount -t tmpfs -o size=16k tmpfs '$mnt'" 2>"$mnt.err"; then
  echo "SKIP: cannot mount a tmpfs in a private mount namespace: $(cat "$mnt.err")"
  rm -f "$mnt.err"
  exit 77
fi
rm -f "$mnt.err"
out="$mnt/results.h5"
log=$(mktemp -d /tmp/mixl-full-log.XXXXXX)
trap 'rm -rf "$mnt" "$log"' EXIT
# The mount exists only inside the namespace; mpirun and every rank run there.
unshare -m bash -c 'mount -t tmpfs -o size=16k tmpfs "$1" && shift && exec "$@"' full_disk \
  "$mnt" "$@" --set run.output="$out" --set workload.requests=$requests \
  --set run.flush_requests=16 --set run.progress=off >"$log/stdout" 2>"$log/stderr"
rc=$?
cat "$log/stdout"
cat "$log/stderr" >&2
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
[ $rc -ne 0 ] || fail "mixl-run exited 0 although its results file could not be written"
grep -q "^requests: $requests, verified $requests, errors 0" "$log/stdout" ||
  fail "no summary line for the $requests requests"
n=$(grep -cF "results: $out: " "$log/stderr")
[ "$n" -ge 1 ] || fail "no error naming $out"
grep -F "results: $out: " "$log/stderr" | grep -q "file system full" ||
  fail "the error does not say the file system is full"
# Logged where detected, once, and once more at the end (the file is incomplete): not per flush.
[ "$n" -le 2 ] || fail "the write error was logged $n times"
[ ! -e "$out" ] || fail "the file is visible outside the test's mount namespace"
echo "full disk: mixl-run exited $rc, $n error line(s) naming $out"
[ $fails -eq 0 ] && echo "PASS: full file system reported, summary printed, exit status $rc"
exit $((fails > 0))
