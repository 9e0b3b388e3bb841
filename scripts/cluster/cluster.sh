#!/usr/bin/env bash
# An emulated cluster on one machine: a head node and N compute nodes, each a
# set of Linux namespaces (network, UTS, PID, IPC, mount) with a private tmpfs
# on /dev/shm and /tmp, its own /etc/hosts and a tiny PID 1 with a TTL.
#
#   cluster.sh [-s STATE_DIR] up [-n NODES] [-t TTL] [--slurm]
#                                                     tear down leftovers, bring the cluster up;
#                                                     --slurm: munged + slurmctld on head, one slurmd
#                                                     per compute node (SLURM_CONF in STATE_DIR/env)
#   cluster.sh [-s STATE_DIR] down                    stop every node and server (< 20 s)
#   cluster.sh [-s STATE_DIR] exec NODE CMD [ARG...]  run CMD inside NODE (from the root namespaces)
#   cluster.sh [-s STATE_DIR] status                  nodes, addresses, liveness
#   cluster.sh [-s STATE_DIR] check                   exit 0 when this machine can run it, else
#                                                     print why and exit 77
#
# STATE_DIR (default $MIXL_CLUSTER_STATE, else ./cluster-state) holds every
# file of one cluster; the marker that names its processes is derived from its
# real path, so two build trees never touch each other's cluster.
#
# Network (see docs/user-guide.md, "Several nodes"): a switch namespace holds a
# bridge; each node gets a veth created there with its peer moved straight into
# the node as eth0. Addresses live only inside node namespaces (10.199.0.0/24;
# head .1, nK .1K), no node has a default route, IPv6 is off everywhere and the
# root namespace gets no address or route. Everything goes away when the init
# processes exit: on `down`, on their TTL, or at the next `up`.
#
# Under CTest a guard (tests/fixture_guard.sh) started with the cluster brings it down when the
# CTest run is gone (CTest killed: no cleanup fixture runs); the TTL bounds it in any case.
#
# Open MPI from the head node: `cluster.sh exec head mpirun $MIXL_CLUSTER_MPIRUN_FLAGS ...`
# with the flags from STATE_DIR/env (launch agent, out-of-band subnet, --bind-to none).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guard=$here/../../tests/fixture_guard.sh
SKIP=77
SUBNET_PREFIX=10.199.0
SUBNET=$SUBNET_PREFIX.0/24

state=${MIXL_CLUSTER_STATE:-$PWD/cluster-state}
if [ "${1:-}" = "-s" ]; then state=$2; shift 2; fi
cmd=${1:-}
shift || true

log() { echo "cluster: $*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$state" 2>/dev/null || die "cannot create the state directory $state"
state=$(cd "$state" && pwd -P)
mark="mixlc-$(printf '%s' "$state" | sha1sum | cut -c1-10)"

# Why this machine cannot run the cluster, or nothing.
why_not() {
  [ "$(id -u)" -eq 0 ] || { echo "not root (namespaces, veth and bridges need root)"; return; }
  local t
  for t in unshare nsenter ip python3 cc sysctl; do
    command -v "$t" >/dev/null 2>&1 || { echo "$t is not installed"; return; }
  done
  unshare --net --uts --ipc --pid --mount --fork true 2>/dev/null ||
    { echo "cannot create namespaces here (unshare --net --uts --ipc --pid --mount failed)"; return; }
  unshare --net sh -c 'ip link add mixlc-probe type veth peer name mixlc-probe1 &&
    ip link add mixlc-br type bridge' 2>/dev/null ||
    { echo "cannot create veth pairs or bridges in a network namespace"; return; }
}

# PID of a process, when alive and not a zombie.
alive() {
  local s
  s=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]) .*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$s" != Z ] && [ "$s" != X ]
}

# Our processes: command lines that carry this cluster's marker (node inits,
# the switch init, the launch server), plus those recorded in pids/.
our_pids() {
  local f p
  for f in $(grep -l -s -a -F -- "$mark" /proc/[0-9]*/cmdline); do
    p=${f#/proc/}; p=${p%/cmdline}
    [ "$p" != $$ ] && [ "$p" != "$BASHPID" ] && echo "$p"
  done
}

# Root-namespace PID of a node's init (the child of its unshare).
init_pid() {
  local f="$state/nodes/$1.pid"
  [ -f "$f" ] || return 1
  local p
  p=$(cut -d' ' -f1 "$f")
  alive "$p" || return 1
  echo "$p"
}

down() {
  local pids p alive_left
  [ -x "$guard" ] && "$guard" disarm "$state"
  pids=$(our_pids)
  for p in $pids; do kill -TERM "$p" 2>/dev/null; done
  # Inits exit at once; their PID namespaces die with them. Zombies count as gone.
  for _ in $(seq 1 100); do
    alive_left=()
    for p in $pids; do alive "$p" && alive_left+=("$p"); done
    [ ${#alive_left[@]} -eq 0 ] && break
    sleep 0.1
  done
  for p in "${alive_left[@]}"; do
    log "process $p still alive 10 s after SIGTERM, sending SIGKILL"
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$state/nodes" "$state/launch.sock" "$state/env"
  return 0
}

# Start one set of namespaces (unshare options, then the command that ends as
# node-init); prints the root-namespace PID of its PID 1. The unshare parent
# stays and kills its child if it dies itself (--kill-child).
start_ns() {
  local name=$1
  shift
  setsid unshare --fork --kill-child "$@" \
    >>"$state/log/$name.log" 2>&1 </dev/null 9>&- &
  local up=$! child=""
  for _ in $(seq 1 100); do
    child=$(cat "/proc/$up/task/$up/children" 2>/dev/null | awk '{print $1}')
    [ -n "$child" ] && break
    sleep 0.05
  done
  [ -n "$child" ] || return 1
  echo "$child"
}

up() {
  local nodes=3 ttl=1800 reason slurm=""
  while [ $# -gt 0 ]; do
    case $1 in
      --slurm) slurm=1; shift ;;
      -n) nodes=$2; shift 2 ;;
      -t) ttl=$2; shift 2 ;;
      *) die "up: unknown option $1" ;;
    esac
  done
  reason=$(why_not)
  [ -z "$reason" ] || { log "SKIP: $reason"; exit $SKIP; }
  case $state/ in
    /dev/shm/*) die "the state directory $state must not be under /dev/shm (each node has its own)" ;;
  esac
  down
  mkdir -p "$state/nodes" "$state/log" || die "cannot write to $state"
  [ -x "$guard" ] && "$guard" arm "$state" "$ttl" bash "$here/cluster.sh" -s "$state" down
  # Traversable (munged runs as the munge user), not listable; the launch socket itself is 0700.
  chmod 0711 "$state"
  cp "$here/launch.py" "$state/launch.py"
  if [ ! -x "$state/node-init" ] || [ "$here/node_init.c" -nt "$state/node-init" ]; then
    cc -O2 -o "$state/node-init" "$here/node_init.c" || die "cannot compile node_init.c"
  fi
  local names=(head) i
  for i in $(seq 1 "$nodes"); do names+=("n$i"); done
  {
    echo "127.0.0.1 localhost"
    echo "$SUBNET_PREFIX.1 head"
    for i in $(seq 1 "$nodes"); do echo "$SUBNET_PREFIX.$((10 + i)) n$i"; done
  } >"$state/hosts"

  # The switch: a bridge in its own network namespace, nothing else.
  local sw
  sw=$(start_ns switch --net --pid "$state/node-init" "$ttl" " $mark") || { down; die "the switch namespace did not start"; }
  echo "$sw" >"$state/nodes/.switch.pid"
  nsenter -t "$sw" -n sh -c "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 &&
    ip link add br0 type bridge && ip link set br0 up && ip link set lo up" ||
    { down; die "cannot create the bridge in the switch namespace"; }

  local n pid addr
  for n in "${names[@]}"; do
    pid=$(start_ns "$n" --net --uts --ipc --pid --mount --mount-proc --propagation private \
          bash "$here/node_setup.sh" "$n" "$state" "$mark" "$ttl") || { down; die "node $n did not start"; }
    echo "$pid" >"$state/nodes/$n.pid.tmp"
  done
  for n in "${names[@]}"; do
    # node_setup.sh writes .ready just before it becomes node-init.
    for _ in $(seq 1 100); do [ -f "$state/nodes/$n.ready" ] && break; sleep 0.05; done
    [ -f "$state/nodes/$n.ready" ] || { down; die "node $n did not finish its set-up (see $state/log/$n.log)"; }
    pid=$(cat "$state/nodes/$n.pid.tmp")
    if [ "$n" = head ]; then addr=$SUBNET_PREFIX.1; else addr=$SUBNET_PREFIX.$((10 + ${n#n})); fi
    nsenter -t "$sw" -n sh -c "ip link add v-$n type veth peer name eth0 netns $pid &&
      ip link set v-$n master br0 && ip link set v-$n up" ||
      { down; die "cannot create the link of node $n"; }
    nsenter -t "$pid" -n sh -c "ip link set lo up && ip addr add $addr/24 dev eth0 && ip link set eth0 up" ||
      { down; die "cannot configure eth0 of node $n"; }
    echo "$pid $addr" >"$state/nodes/$n.pid"
    rm -f "$state/nodes/$n.pid.tmp"
  done

  setsid python3 "$state/launch.py" serve "$state/launch.sock" "$state" "$ttl" " $mark" \
    >>"$state/log/launch.log" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 100); do [ -S "$state/launch.sock" ] && break; sleep 0.05; done
  [ -S "$state/launch.sock" ] || { down; die "the launch server did not start (see $state/log/launch.log)"; }

  sed "s|^state=.*|state=\${MIXL_CLUSTER_STATE:-$state}|" "$here/rsh-agent.sh" >"$state/rsh-agent"
  chmod 0700 "$state/rsh-agent"
  cat >"$state/env" <<ENV
MIXL_CLUSTER_STATE=$state
MIXL_CLUSTER_NODES="${names[*]}"
MIXL_CLUSTER_SUBNET=$SUBNET
MIXL_CLUSTER_AGENT=$state/rsh-agent
MIXL_CLUSTER_MPIRUN_FLAGS="--allow-run-as-root --oversubscribe --bind-to none --mca plm_rsh_agent $state/rsh-agent --mca plm_rsh_no_tree_spawn 1 --mca oob_tcp_if_include $SUBNET --mca btl_tcp_if_include $SUBNET"
ENV
  if [ -n "$slurm" ]; then
    slurm_up "$nodes" || { down; die "Slurm did not start (logs in $state/slurm/log)"; }
  fi
  log "up: ${names[*]} on $SUBNET (state $state, TTL ${ttl}s${slurm:+, Slurm})"
}

# Slurm across the nodes: munged and slurmctld on head, slurmd -N nK on each
# compute node. One munged serves every node through its socket in the
# state directory (a path every node sees); the daemons die with their nodes.
slurm_up() {
  local nodes=$1 d=$state/slurm i
  for t in munged slurmctld slurmd sinfo srun sbatch setpriv; do
    command -v "$t" >/dev/null 2>&1 || { log "$t is not installed"; return 1; }
  done
  id munge >/dev/null 2>&1 || { log "no munge user"; return 1; }
  rm -rf "$d"
  mkdir -p "$d/state" "$d/log" "$d/munge" "$d/munge-sock"
  chown munge:munge "$d/munge" "$d/munge-sock"
  chmod 0700 "$d/munge"
  chmod 0755 "$d" "$d/munge-sock"
  dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chown munge:munge "$d/munge/munge.key"
  chmod 0600 "$d/munge/munge.key"
  {
    echo "ClusterName=mixlcluster"
    echo "SlurmctldHost=head($SUBNET_PREFIX.1)"
    echo "SlurmctldPort=6817"
    echo "SlurmdPort=6818"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$d/munge-sock/munge.sock"
    echo "CredType=cred/munge"
    echo "ProctrackType=proctrack/pgid"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "SchedulerType=sched/backfill"
    # Heterogeneous jobs are placed only by the backfill pass: run it every second.
    echo "SchedulerParameters=bf_interval=1"
    echo "StateSaveLocation=$d/state"
    echo "SlurmdSpoolDir=/tmp/slurmd-%n"
    echo "SlurmctldPidFile=/tmp/slurmctld.pid"
    echo "SlurmdPidFile=/tmp/slurmd.pid"
    echo "SlurmctldLogFile=$d/log/slurmctld.log"
    echo "SlurmdLogFile=$d/log/slurmd-%n.log"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "SlurmdParameters=config_overrides"
    echo "PlugStackConfig=$d/plugstack.conf"
    echo "MinJobAge=600"
    for i in $(seq 1 "$nodes"); do
      echo "NodeName=n$i NodeAddr=$SUBNET_PREFIX.$((10 + i)) CPUs=4 RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=n[1-$nodes] Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
  } >"$d/slurm.conf"
  : >"$d/plugstack.conf"
  local run=(bash "$here/cluster.sh" -s "$state" exec)
  setsid "${run[@]}" head setpriv --reuid=munge --regid=munge --init-groups \
    munged -F --force --socket="$d/munge-sock/munge.sock" --key-file="$d/munge/munge.key" \
    --log-file="$d/log/munged.log" --pid-file="$d/munge/munged.pid" --seed-file="$d/munge/munged.seed" \
    </dev/null >>"$d/log/munged.out" 2>&1 9>&- &
  for _ in $(seq 1 100); do [ -S "$d/munge-sock/munge.sock" ] && break; sleep 0.1; done
  [ -S "$d/munge-sock/munge.sock" ] || { log "munged did not create its socket"; return 1; }
  setsid "${run[@]}" head slurmctld -D -i -f "$d/slurm.conf" </dev/null >>"$d/log/slurmctld.out" 2>&1 9>&- &
  for i in $(seq 1 "$nodes"); do
    setsid "${run[@]}" "n$i" slurmd -D -N "n$i" -f "$d/slurm.conf" \
      </dev/null >>"$d/log/slurmd-n$i.out" 2>&1 9>&- &
  done
  echo "SLURM_CONF=$d/slurm.conf" >>"$state/env"
  local idle=""
  for _ in $(seq 1 120); do
    idle=$(SLURM_CONF=$d/slurm.conf "${run[@]}" head sinfo -h -o "%T %D" 2>/dev/null | awk '$1 == "idle" {print $2}')
    [ "$idle" = "$nodes" ] && return 0
    sleep 0.5
  done
  log "Slurm nodes not idle after 60 s: $(SLURM_CONF=$d/slurm.conf "${run[@]}" head sinfo -h 2>&1 | tr '\n' ' ')"
  return 1
}

exec_in() {
  local n=$1 pid
  shift
  pid=$(init_pid "$n") || die "node $n is not up (state $state)"
  exec nsenter -t "$pid" -n -u -i -p -m --wd="$PWD" -- "$@"
}

status() {
  local f n pid rc=0
  [ -d "$state/nodes" ] || { echo "no cluster in $state"; return 1; }
  for f in "$state"/nodes/*.pid; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .pid)
    read -r pid addr <"$f"
    if alive "$pid"; then echo "$n up pid $pid ${addr:-}"; else echo "$n down"; rc=1; fi
  done
  [ -S "$state/launch.sock" ] && echo "launch server $state/launch.sock" || { echo "no launch server"; rc=1; }
  return $rc
}

case $cmd in
  up) exec 9>"$state.lock"; flock 9; up "$@" ;;
  down) exec 9>"$state.lock"; flock 9; down; log "down ($state)" ;;
  exec) [ $# -ge 2 ] || die "usage: cluster.sh exec NODE CMD [ARG...]"; exec_in "$@" ;;
  status) status ;;
  check) reason=$(why_not); [ -z "$reason" ] || { echo "SKIP: $reason"; exit $SKIP; }; echo "ok" ;;
  *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
