#!/usr/bin/env bash
# A private single-node Slurm (munge + slurmctld + slurmd) for the tests
# labelled "slurm". It never touches /etc/slurm or the system munged: every
# daemon gets its own socket, ports, state and log files under a scratch
# directory, and the client commands find them through SLURM_CONF.
#
#   slurm_cluster.sh start <state-dir>   find Slurm and munge (SKIP when absent), write the
#                                        config, start munged -> slurmctld -> slurmd, wait for
#                                        the node to be idle; writes <state-dir>/env
#   slurm_cluster.sh stop <state-dir>    stop exactly the processes recorded by start (and the
#                                        job processes they spawned), by PID and by the process
#                                        group each daemon leads; remove the scratch. As the
#                                        fixture's cleanup it also ends what a test that CTest
#                                        killed (SIGKILL, no trap) left running
# A guard (tests/fixture_guard.sh) started with the daemons runs stop when the CTest run is
# gone (CTest killed: no cleanup fixture runs), or after an hour at the latest.
#
# Exit 77 (CTest SKIP) when Slurm cannot run here: not root, or the packages
# are absent. Start order and config follow the
# single-node configuration measured on Debian 12 / Slurm 22.05.
set -uo pipefail

SKIP=77
self=$(realpath -- "$0")
guard=$(dirname "$self")/../fixture_guard.sh
cmd=${1:-}
state=${2:-}
[ -n "$cmd" ] && [ -n "$state" ] || { echo "usage: $0 start|stop <state-dir>" >&2; exit 2; }

log() { echo "slurm-cluster: $*" >&2; }

# PIDs of every descendant of the given PIDs: one pass over /proc (a process per
# /proc entry would take minutes on a busy machine, longer than the stop fixture's timeout).
descendants() {
  local roots="$*"
  # Field 4 of /proc/PID/stat is the parent PID; comm (field 2) may hold spaces and ')'.
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$roots" '
    { i = 0; for (k = length($0); k > 0; k--) if (substr($0, k, 1) == ")") { i = k; break }
      if (i == 0) next
      split(substr($0, i + 2), f, " "); kids[f[2]] = kids[f[2]] " " $1 }
    END { n = split(roots, q, " "); out = ""
      for (h = 1; h <= n; h++) { m = split(kids[q[h]], c, " ")
        for (j = 1; j <= m; j++) if (!(c[j] in seen)) { seen[c[j]] = 1; q[++n] = c[j]; out = out " " c[j] } }
      print out }'
}

# True when PID is alive and its command line mentions MARK, i.e. it is the
# process this script started and not a recycled PID.
is_ours() {
  local pid=$1 mark=$2
  # grep without -q reads all its input: no SIGPIPE to fail the pipeline.
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -F -- "$mark" >/dev/null
}

# SIGTERM to every PID given, wait up to 10 s for all of them together,
# then SIGKILL the ones still alive.
stop_pids() {
  local name=$1 pid alive
  shift
  [ $# -gt 0 ] || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in $(seq 1 100); do
    alive=()
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    [ ${#alive[@]} -eq 0 ] && return 0
    sleep 0.1
  done
  log "$name (pid ${alive[*]}) still alive 10 s after SIGTERM, sending SIGKILL"
  for pid in "${alive[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  return 0
}

# slurmstepd processes of this cluster. slurmd double-forks them, so they are
# children of init, not of slurmd; each keeps our slurmd log open, which
# tells ours apart from those of any other Slurm on the host.
our_stepds() {
  local p fd
  for p in $(pgrep -x slurmstepd 2>/dev/null); do
    for fd in "/proc/$p/fd"/*; do
      case $(readlink "$fd" 2>/dev/null) in
        "$MIXL_SLURM_DIR"/*) echo "$p"; break ;;
      esac
    done
  done
}

do_stop() {
  "$guard" disarm "$state"
  [ -f "$state/env" ] || { log "nothing to stop in $state"; return 0; }
  # shellcheck disable=SC1091
  . "$state/env"
  local tree=() roots=() name pid
  # Jobs still queued or running are cancelled through Slurm first, so their
  # steps end the normal way (bounded wait).
  if [ -f "$state/slurmctld.pid" ] && is_ours "$(cat "$state/slurmctld.pid")" "$MIXL_SLURM_DIR"; then
    local jobs
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs still in the queue: $jobs"
      # shellcheck disable=SC2086
      timeout 10 scancel $jobs 2>/dev/null
      for _ in $(seq 1 100); do
        [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
  fi
  # Whatever is left of the jobs (step daemons and their tasks) is ours to end too.
  read -r -a roots <<<"$(our_stepds)"
  if [ -f "$state/slurmd.pid" ] && is_ours "$(cat "$state/slurmd.pid")" "$MIXL_SLURM_DIR"; then
    roots+=("$(cat "$state/slurmd.pid")")
  fi
  if [ ${#roots[@]} -gt 0 ]; then
    read -r -a tree <<<"$(descendants "${roots[@]}") $(our_stepds)"
  fi
  # slurmd before slurmctld before munged: each needs the next one to shut down cleanly.
  for name in slurmd slurmctld munged; do
    [ -f "$state/$name.pid" ] || continue
    pid=$(cat "$state/$name.pid")
    if is_ours "$pid" "$MIXL_SLURM_DIR"; then
      stop_pids "$name" "$pid"
      # spawn made it a session and group leader: whatever is left in its group goes too.
      kill -KILL -- "-$pid" 2>/dev/null
    fi
    rm -f "$state/$name.pid"
  done
  stop_pids "job processes" "${tree[@]}"
  if [ -n "${MIXL_SLURM_DIR:-}" ] && [ -d "$MIXL_SLURM_DIR" ]; then
    # Keep the daemon logs next to the test results for post-mortems.
    mkdir -p "$state/log" && cp -r "$MIXL_SLURM_DIR/log/." "$state/log/" 2>/dev/null
    rm -rf "$MIXL_SLURM_DIR"
  fi
  rm -f "$state/env"
  log "stopped"
  return 0
}

# A free loopback/any TCP port in 20000-40000 not in TIME_WAIT or LISTEN.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && { echo "$p"; return 0; }
  done
  return 1
}

# The packages come from scripts/deps.sh; the fixture installs nothing itself (an install
# would not fit the fixture's timeout), it reports SKIP with what is missing.
need_packages() {
  local missing=() b
  for b in munged slurmctld slurmd sbatch sinfo scontrol; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "missing ${missing[*]} (scripts/deps.sh installs slurm-wlm and munge)"
  return 1
}

# Start CMD... in its own session with no terminal and its output in a log;
# setsid execs in place (the background job is not a group leader), so $!
# is the daemon's own PID.
spawn() {
  local name=$1; shift
  setsid "$@" </dev/null >"$MIXL_SLURM_DIR/log/$name.stdout" 2>&1 &
  echo $! >"$state/$name.pid"
}

fail_start() {
  log "$*"
  for f in "$MIXL_SLURM_DIR"/log/*; do
    [ -s "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  do_stop
  exit 1
}

do_start() {
  mkdir -p "$state"
  if [ -f "$state/env" ]; then
    log "a cluster recorded in $state is still up; stopping it first"
    do_stop
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "SKIP: starting slurmd and munged needs root"; exit $SKIP
  fi
  need_packages || { log "SKIP: Slurm/munge not available"; exit $SKIP; }
  id munge >/dev/null 2>&1 || { log "SKIP: no munge user"; exit $SKIP; }

  "$guard" arm "$state" 3600 "$self" stop "$state"
  # Short path: the munge socket path must fit in sun_path (108 bytes).
  MIXL_SLURM_DIR=$(mktemp -d /tmp/mixl-slurm.XXXXXX) || { log "mktemp failed"; exit 1; }
  chmod 0755 "$MIXL_SLURM_DIR"
  # Recorded first, so that stop finds and removes everything from here on.
  cat >"$state/env" <<EOF
export MIXL_SLURM_DIR=$MIXL_SLURM_DIR
export SLURM_CONF=$MIXL_SLURM_DIR/slurm.conf
EOF
  local d=$MIXL_SLURM_DIR host cpus mem ctld_port slurmd_port
  # munged wants its key, log and seed in a private directory and its
  # socket in one every client can traverse.
  mkdir -p "$d/state" "$d/spool" "$d/log" "$d/munge" "$d/munge-sock" "$d/tmp"
  chown munge:munge "$d/munge" "$d/munge-sock"
  chmod 0700 "$d/munge"
  chmod 0755 "$d/munge-sock"

  # munge key: our own random one, 0600 and owned by munge as munged demands.
  dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chown munge:munge "$d/munge/munge.key"
  chmod 0600 "$d/munge/munge.key"

  host=$(hostname -s)
  # MIXL's jobs run 4 ranks (prefill, decode, router); on smaller machines the
  # node claims 4 CPUs and config_overrides keeps slurmd from draining it for
  # having fewer. Nothing here is timed, so oversubscribed cores are fine.
  cpus=$(nproc)
  [ "$cpus" -ge 4 ] || cpus=4
  mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  [ -n "$mem" ] || mem=1024
  # Stay below what slurmd detects or the node is drained ("Low RealMemory").
  mem=$((mem * 9 / 10))
  local first_job=$(( (RANDOM % 30000 + 1) * 1000 ))
  ctld_port=$(free_port) && slurmd_port=$(free_port) || fail_start "no free TCP port"
  [ "$ctld_port" != "$slurmd_port" ] || slurmd_port=$((ctld_port + 1))

  cat >"$d/slurm.conf" <<EOF
# Written by tests/slurm/slurm_cluster.sh for one test run.
ClusterName=mixltest
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$d/munge-sock/munge.sock
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
SlurmUser=root
MpiDefault=pmix
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
SlurmdParameters=config_overrides
MinJobAge=600
# Another private cluster may run on this host at the same time (a second
# test run): job ids and scratch paths must differ, as PMIx and slurmstepd
# name their sockets and directories after the job id.
FirstJobId=$first_job
TmpFS=$d/tmp
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
  export SLURM_CONF=$d/slurm.conf

  # munged first: slurmctld and slurmd authenticate through it at start-up.
  # It refuses to run as root, hence setpriv to the munge user (no fork).
  spawn munged setpriv --reuid=munge --regid=munge --init-groups \
    munged -F --socket="$d/munge-sock/munge.sock" --key-file="$d/munge/munge.key" \
    --log-file="$d/munge/munged.log" --pid-file="$d/munge/munged.pid" \
    --seed-file="$d/munge/munged.seed"
  for _ in $(seq 1 100); do
    [ -S "$d/munge-sock/munge.sock" ] && break
    kill -0 "$(cat "$state/munged.pid")" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -S "$d/munge-sock/munge.sock" ]; then
    cp "$d/munge/munged.log" "$d/log/munged.log" 2>/dev/null
    fail_start "munged did not create its socket"
  fi

  spawn slurmctld slurmctld -D -f "$d/slurm.conf"
  sleep 1
  kill -0 "$(cat "$state/slurmctld.pid")" 2>/dev/null || fail_start "slurmctld exited"
  spawn slurmd slurmd -D -f "$d/slurm.conf"

  # Bounded wait for the node to register and become schedulable.
  local st=""
  for _ in $(seq 1 60); do
    st=$(sinfo -h -o %T 2>/dev/null | head -n 1)
    [ "$st" = "idle" ] && break
    kill -0 "$(cat "$state/slurmd.pid")" 2>/dev/null || fail_start "slurmd exited"
    kill -0 "$(cat "$state/slurmctld.pid")" 2>/dev/null || fail_start "slurmctld exited"
    sleep 0.5
  done
  [ "$st" = "idle" ] || fail_start "node not idle after 30 s (state: '${st:-none}')"
  log "up: $host, $cpus CPUs, ports $ctld_port/$slurmd_port, dir $d"
}

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
  *) echo "usage: $0 start|stop <state-dir>" >&2; exit 2 ;;
esac
