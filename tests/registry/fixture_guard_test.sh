#!/usr/bin/env bash
# tests/fixture_guard.sh against a real etcd from etcd_fixture.sh:
#   1. the run that started the fixture goes away (a stand-in process killed, as
#      CTest killed by a cancelled job would be): etcd, its directory and the
#      guard are gone within seconds;
#   2. the fixture's own stop ends the guard as well as etcd;
#   3. past its time to live the guard stops the fixture while the run goes on.
#   fixture_guard_test.sh <etcd_fixture.sh> <scratch-dir>
# Exit 77 (SKIP) without etcd, as the fixture itself.
set -uo pipefail

fixture=${1:?etcd_fixture.sh}
scratch=$(realpath -m -- "${2:?scratch directory}")
rm -rf "$scratch"
mkdir -p "$scratch"
stand_in=""
trap '[ -n "$stand_in" ] && kill "$stand_in" 2>/dev/null; bash "$fixture" stop "$scratch"/e1 "$scratch"/e2 "$scratch"/e3 >/dev/null 2>&1' EXIT

fail() { echo "FAIL: $*"; exit 1; }

alive() { kill -0 "$1" 2>/dev/null; }

# Wait up to $2 seconds for pid $1 to end.
gone_within() {
  local i
  for i in $(seq 1 $(($2 * 10))); do alive "$1" || return 0; sleep 0.1; done
  return 1
}

# Start etcd in $1; sets etcd and guard to their pids.
start() {
  local out rc
  out=$(bash "$fixture" start "$1" 2>&1)
  rc=$?
  [ $rc -eq 77 ] && { echo "$out" >&2; exit 77; }
  [ $rc -eq 0 ] || fail "etcd_fixture.sh start $1 exited $rc: $out"
  [ -f "$1/guard.pid" ] || fail "no guard recorded in $1"
  etcd=$(cat "$1/pid") guard=$(cat "$1/guard.pid")
  alive "$etcd" || fail "etcd $etcd of $1 not running"
  alive "$guard" || fail "guard $guard of $1 not running"
  tr '\0' ' ' <"/proc/$guard/cmdline" | grep -F -- "fixture_guard.sh watch $1 " >/dev/null ||
    fail "pid $guard is not the guard of $1"
}

# 1. The run goes away.
sleep 600 &
stand_in=$!
FIXTURE_GUARD_WATCH=$stand_in start "$scratch/e1"
kill "$stand_in"
gone_within "$etcd" 10 || fail "etcd $etcd still running 10 s after the run that started it ended"
gone_within "$guard" 5 || fail "guard $guard still running after it stopped the fixture"
[ ! -e "$scratch/e1" ] || fail "$scratch/e1 left behind by the guard's stop"
echo "run gone: etcd and guard ended, directory removed"

# 2. The fixture's own stop.
sleep 600 &
stand_in=$!
FIXTURE_GUARD_WATCH=$stand_in start "$scratch/e2"
bash "$fixture" stop "$scratch/e2" || fail "etcd_fixture.sh stop exited $?"
gone_within "$etcd" 5 || fail "etcd $etcd still running after stop"
gone_within "$guard" 2 || fail "guard $guard still running after the fixture's stop"
alive "$stand_in" || fail "the stand-in run ended early"
echo "stop: etcd and guard ended"

# 3. Past the time to live, the run still going.
FIXTURE_GUARD_WATCH=$stand_in FIXTURE_GUARD_TTL=2 start "$scratch/e3"
alive "$etcd" || fail "etcd $etcd ended before its time to live"
gone_within "$etcd" 12 || fail "etcd $etcd still running 12 s into a 2 s time to live"
gone_within "$guard" 5 || fail "guard $guard still running after its time to live"
echo "time to live: etcd and guard ended with the run still going"
echo "PASS"
