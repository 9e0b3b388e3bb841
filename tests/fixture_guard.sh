#!/usr/bin/env bash
# Ends a test fixture's daemons when the test run that started them is gone.
#
# A fixture's daemons (etcd, munged + slurmctld + slurmd) run in their own
# sessions so that a test's timeout does not take them down with it; the
# CTest cleanup fixture stops them. When CTest itself is killed (a CI job
# cancelled, a terminal closed, `kill` on the run) no cleanup fixture runs,
# and they would stay up for good. The guard, started with the daemons,
# watches the run and calls the fixture's own stop when the run is gone, or
# after a time-to-live at the latest.
#
#   fixture_guard.sh arm <dir> <ttl-s> <stop command...>
#       start the guard for the fixture whose state is in <dir> (its pid goes
#       to <dir>/guard.pid); the run watched is the nearest ancestor named
#       ctest (none for a fixture started by hand: then the time to live
#       only); FIXTURE_GUARD_WATCH=<pid> names another (the guard's own
#       test), FIXTURE_GUARD_TTL=<s> overrides <ttl-s>. Returns at once.
#   fixture_guard.sh disarm <dir>
#       stop the guard (the fixture's stop calls this first); nothing when
#       there is none or it is firing.
#
# The guard ends on its own as soon as <dir>/guard.pid is gone, so a stop
# that removes <dir> also ends it.
set -uo pipefail

cmd=${1:-}
dir=${2:+$(realpath -m -- "$2")}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 arm <dir> <ttl-s> <stop...> | disarm <dir>" >&2; exit 2; }

# Parent of pid $1 (field 4 of /proc/PID/stat; comm, field 2, may hold spaces and ')').
parent_of() {
  awk '{ sub(/^.*\) /, ""); print $2 }' "/proc/$1/stat" 2>/dev/null
}

# The run to watch: the nearest ancestor named ctest; 0 when there is none
# (a fixture started by hand: the time to live only).
watched() {
  local p
  p=$(parent_of $$)
  while [[ $p =~ ^[0-9]+$ ]] && [ "$p" -gt 1 ]; do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = ctest ] && { echo "$p"; return; }
    p=$(parent_of "$p")
  done
  echo 0
}

# True when pid $1 is a guard of <dir> (not a recycled pid).
is_guard() {
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -F -- "fixture_guard.sh watch $dir " >/dev/null
}

case $cmd in
arm)
  ttl=${FIXTURE_GUARD_TTL:-${3:?ttl}}
  shift 3
  [ $# -gt 0 ] || { echo "fixture_guard: no stop command" >&2; exit 2; }
  "$0" disarm "$dir"
  watch=${FIXTURE_GUARD_WATCH:-$(watched)}
  [[ $watch =~ ^[0-9]+$ ]] || watch=0
  mkdir -p "$dir"
  # Own session, no terminal, no inherited output: CTest waits for a test's
  # output pipes to close, and the guard outlives the test that armed it.
  setsid "$0" watch "$dir" "$watch" "$ttl" "$@" </dev/null >>"$dir/guard.log" 2>&1 &
  echo $! >"$dir/guard.pid"
  ;;
watch)
  watch=$3 ttl=$4
  shift 4
  # Nothing inherited beyond stdio: a lock the arming script held (cluster.sh
  # holds its state lock while it starts) would block the very stop run here.
  for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ] && eval "exec $fd>&-" 2>/dev/null
  done
  end=$((SECONDS + ttl))
  alive() { [ "$watch" = 0 ] || kill -0 "$watch" 2>/dev/null; }
  while [ -f "$dir/guard.pid" ] && alive && [ "$SECONDS" -lt "$end" ]; do
    sleep 1
  done
  [ -f "$dir/guard.pid" ] || exit 0
  # Firing: the stop's own disarm must not end this process.
  rm -f "$dir/guard.pid"
  if alive; then
    echo "fixture_guard: $dir up for ${ttl} s, past its time to live: stopping it"
  else
    echo "fixture_guard: the run that started $dir (pid $watch) is gone: stopping it"
  fi
  timeout 120 "$@"
  ;;
disarm)
  [ -f "$dir/guard.pid" ] || exit 0
  pid=$(cat "$dir/guard.pid")
  rm -f "$dir/guard.pid"
  [[ $pid =~ ^[0-9]+$ ]] && is_guard "$pid" && kill -TERM "$pid" 2>/dev/null
  exit 0
  ;;
*)
  echo "usage: $0 arm <dir> <ttl-s> <stop...> | disarm <dir>" >&2
  exit 2
  ;;
esac
