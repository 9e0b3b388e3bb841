#!/usr/bin/env bash
# One test on the emulated cluster brought up by cluster.up (scripts/cluster/cluster.sh).
#   cluster_case.sh fixture    nodes are isolated (host name, PID, /dev/shm, no IPv6, no address
#                              or route in the root namespace), TCP and mpirun work across nodes
#   cluster_case.sh netif      the TCP address choice (test_netif) inside n1
#   cluster_case.sh run-mpi    mixl-run, router + prefill on n1, decodes on n2 and n3, path forced to mpi
#   cluster_case.sh run-tcp    the same over MIXL's TCP data plane (path forced to tcp)
#   cluster_case.sh run-auto   the default configuration: auto must choose tcp between nodes
#   cluster_case.sh tp-merge   prefill TP 2 split over n1 and n2 merged into a TP 1 decode on n3
#   cluster_case.sh scale16    16 ranks over head, n1, n2, n3 (prefill 3 x TP 1, decode 6 x TP 2)
#   cluster_case.sh run-etcd   etcd on the head node as the registry, default path; then two programs
#                              started on their own on n1 and n2 (no mpirun) meet through that etcd
#                              and move verified data over MIXL's TCP data plane
#   cluster_case.sh bench-tcp  mixl-bench on n1 and n2: MIXL over MPI and over TCP next to the raw
#                              MPI loop and the raw socket loop, every row verified, TCP on n1's address
#   cluster_case.sh diag       mixl-diag on n1 and n2: two nodes counted, rank 0's host, the cross-node self-test
#   cluster_case.sh slurm-step|slurm-mpirun|slurm-hetjob
#                              the scripts in scripts/slurm/ submitted with sbatch on the head node
#                              (cluster brought up with --slurm): router + prefill on n1, decodes on
#                              n2 and n3; the hetjob puts prefill and decode on different node sets
# Every mixl-run case checks the exit status, that every block was verified
# (check_results on the HDF5 file) and which data path ran.
# Env: MIXL_CLUSTER_SH, MIXL_CLUSTER_STATE, MIXL_RUN, MIXL_CHECK, MIXL_CONFIGS,
#      MIXL_TEST_MPIRUN_FLAGS (the MCA selection of the other tests), MIXL_DIAG, MIXL_DIAG_CHECK.
set -uo pipefail
case_name=${1:?usage: $0 case}
: "${MIXL_CLUSTER_SH:?}" "${MIXL_CLUSTER_STATE:?}"
[ -f "$MIXL_CLUSTER_STATE/env" ] || { echo "FAIL: no cluster is up in $MIXL_CLUSTER_STATE" >&2; exit 1; }
SLURM_CONF=""
# shellcheck disable=SC1091
. "$MIXL_CLUSTER_STATE/env"
# Nodes have their own /tmp: results go to the state directory, which every node sees.
work=$(mktemp -d "$MIXL_CLUSTER_STATE/work.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
on() { bash "$MIXL_CLUSTER_SH" -s "$MIXL_CLUSTER_STATE" exec "$@"; }
# mpirun on the head node: the tests' MCA selection plus the cluster's launch flags.
# shellcheck disable=SC2086
mpirun_head() { on head mpirun $MIXL_TEST_MPIRUN_FLAGS $MIXL_CLUSTER_MPIRUN_FLAGS "$@"; }

# h5attr FILE NAME: a string attribute of the results file's root group.
h5attr() {
  h5dump -w 0 -a "/$2" "$1" | sed -n 's/^ *(0): "\(.*\)"$/\1/p'
}

# mixl_run REQUESTS HOSTS NP ARGS...: run, require exit 0 and every request verified.
mixl_run() {
  local requests=$1 hosts=$2 np=$3
  shift 3
  mpirun_head --host "$hosts" -np "$np" "$MIXL_RUN" --set run.output="$work/r.h5" \
    --set run.progress=plain --set workload.requests="$requests" "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  cat "$work/out"; cat "$work/err" >&2
  [ $rc -eq 0 ] || fail "mixl-run exited with $rc"
  grep -q "verified $requests, errors 0" "$work/out" || fail "not every request was verified"
  # The nodes are namespaces on one kernel: every rank reads the router's own clock.
  "$MIXL_CHECK" "$work/r.h5" "$requests" --clock-sync "the router's own clock on all" ||
    fail "results file check"
  # UCX's "error during flush: Endpoint timeout" / "disconnect failed" inside MPI_Finalize is
  # checked by expect_node_windows / expect_world_windows below (docs/performance.md, "The UCX
  # endpoint timeout").
  choice=$(grep '^data path choice: ' "$work/out" | sed 's/^data path choice: //')
  [ -n "$choice" ] || fail "no 'data path choice' line in the summary"
  [ "$(h5attr "$work/r.h5" data_path_choice)" = "$choice" ] ||
    fail "HDF5 attribute data_path_choice differs from the summary"
  echo "path choice: $choice"
}

# expect_node_windows: MPI carried nothing between nodes, so its windows stayed within each node
# and MPI_Finalize had no UCX endpoint to another node to close: none of UCX's end-of-run
# "Endpoint timeout" messages (before the windows were node-local, about half the runs printed them).
expect_node_windows() {
  grep -q "windows within this node" "$work/out" || fail "the MPI backend's windows span nodes"
  if grep -E "Endpoint timeout|disconnect failed" "$work/err"; then
    fail "UCX closed an endpoint to another node with an error at the end of the run"
  fi
}

# expect_world_windows: MPI carries transfers between nodes, its windows span every rank. Not
# checked here: the end-of-run "Endpoint timeout" that Open MPI 4.1 + UCX's tcp transport then
# print in some runs (docs/performance.md says why MIXL cannot prevent it on this path).
expect_world_windows() {
  grep -q "windows over every rank" "$work/out" || fail "the MPI backend's windows do not span nodes"
}

# expect_choice ERE: the run's data path choice must match.
expect_choice() {
  echo "$choice" | grep -Eq -- "$1" || fail "data path choice '$choice' does not match /$1/"
}

# etcd on the head node, in its private /tmp; stopped by its PID inside the head node at exit.
start_etcd() {
  command -v etcd >/dev/null || { echo "SKIP: etcd (etcd-server) is not installed"; exit 77; }
  on head sh -c 'etcd --name head --data-dir /tmp/etcd --listen-client-urls http://10.199.0.1:2379 \
    --advertise-client-urls http://10.199.0.1:2379 --listen-peer-urls http://10.199.0.1:2380 \
    --initial-advertise-peer-urls http://10.199.0.1:2380 --initial-cluster head=http://10.199.0.1:2380 \
    >/tmp/etcd.log 2>&1 & echo $! >/tmp/etcd.pid; wait' &
  epid=$!
  stop_etcd() { on head sh -c 'kill $(cat /tmp/etcd.pid)' 2>/dev/null; wait "$epid" 2>/dev/null; rm -rf "$work"; }
  trap stop_etcd EXIT
  local up=""
  for _ in $(seq 1 100); do
    on n1 bash -c "exec 3<>/dev/tcp/head/2379" 2>/dev/null && { up=1; break; }
    sleep 0.2
  done
  [ -n "$up" ] || fail "etcd on the head node did not answer"
}

# Two programs started on their own (no mpirun, no MPI) on n1 and n2 meet through etcd on the head
# node (start_etcd first) and move verified data over MIXL's TCP data plane.
etcd_pair() {
  : "${MIXL_ETCD_PAIR:?}"
  # The per-job secret both programs read (the state directory is visible on every node).
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret" && chmod 0600 "$work/secret"
  local ns=pair-$RANDOM$RANDOM nonce=$RANDOM$RANDOM ipid trc irc left
  pair_env=(env MIXL_TCP_SECRET_FILE="$work/secret" MIXL_PAIR_INTERFACE=eth0)
  # Started separately, the initiator first: the target publishes late and the store waits for it.
  on n2 "${pair_env[@]}" timeout 25 "$MIXL_ETCD_PAIR" initiator http://head:2379 "$ns" "$nonce" \
    >"$work/initiator" 2>&1 &
  ipid=$!
  sleep 0.5
  on n1 "${pair_env[@]}" timeout 25 "$MIXL_ETCD_PAIR" target http://head:2379 "$ns" "$nonce" >"$work/target" 2>&1
  trc=$?
  wait $ipid
  irc=$?
  cat "$work/target" "$work/initiator"
  [ $trc -eq 0 ] || fail "the target on n1 exited $trc"
  [ $irc -eq 0 ] || fail "the initiator on n2 exited $irc"
  grep -q "^initiator: target published tcp 10\.199\.0\.11:[0-9]* from host n1$" "$work/initiator" ||
    fail "the initiator did not find the target's n1 address in etcd"
  grep -q "^target: initiator published tcp 10\.199\.0\.12:[0-9]* from host n2$" "$work/target" ||
    fail "the target did not find the initiator's n2 address in etcd"
  grep -q "^target: 3 of 3 rounds verified$" "$work/target" || fail "the target did not verify every round"
  grep -q "^initiator: 3 of 3 rounds verified$" "$work/initiator" || fail "the initiator did not verify every round"
  left=$(on head env ETCDCTL_API=3 etcdctl --endpoints=http://10.199.0.1:2379 get --prefix "$ns" --keys-only | grep -c .)
  [ "$left" -eq 0 ] || fail "$left keys of namespace $ns left in etcd"
}

# Router + prefill on n1, one decode on n2 and one on n3 (ranks fill hosts in order).
hosts3=n1:2,n2:1,n3:1

case $case_name in
  fixture)
    for n in $MIXL_CLUSTER_NODES; do
      # One entry per node: host name, PID 1, IPv6 addresses, default routes, hosts entries.
      facts=$(on "$n" sh -c 'echo "$(hostname) $(cat /proc/1/comm) $(wc -l </proc/net/if_inet6)" \
        "$(ip route | grep -c default) $(grep -c " n[0-9]*$" /etc/hosts)"')
      [ "$facts" = "$n node-init 0 0 3" ] ||
        fail "node $n: expected '$n node-init 0 0 3' (host name, PID 1, IPv6 addresses, default routes, compute nodes in /etc/hosts), got '$facts'"
    done
    ip -4 addr | grep -q "10\.199\.0\." && fail "the root namespace has a cluster address"
    ip route | grep -q "10\.199\.0\." && fail "the root namespace has a route to the cluster"
    # Private /dev/shm and /tmp.
    on n1 sh -c "echo x >/dev/shm/mixl-iso && echo x >/tmp/mixl-iso" || fail "cannot write in n1"
    on n2 sh -c "test ! -e /dev/shm/mixl-iso && test ! -e /tmp/mixl-iso" || fail "n2 sees n1's /dev/shm or /tmp"
    [ ! -e /dev/shm/mixl-iso ] || fail "the root namespace sees n1's /dev/shm"
    # TCP across the bridge: a listener on n1, a client on n2, a token per run.
    token=$RANDOM$RANDOM
    on n1 timeout 20 python3 -c 'import socket, sys
s = socket.create_server(("10.199.0.11", 7001)); c, _ = s.accept(); print(c.recv(64).decode())' \
      >"$work/tcp" 2>&1 &
    lpid=$!
    ok=""
    for _ in $(seq 1 100); do
      on n2 bash -c "echo $token >/dev/tcp/n1/7001" 2>/dev/null && { ok=1; break; }
      sleep 0.1
    done
    wait $lpid
    [ -n "$ok" ] && [ "$(cat "$work/tcp")" = "$token" ] || fail "TCP from n2 to n1 failed: $(cat "$work/tcp")"
    # mpirun from the head node reaches every compute node through the launch agent.
    got=$(mpirun_head --host n1,n2,n3 -np 3 hostname | sort | tr '\n' ' ')
    [ "$got" = "n1 n2 n3 " ] || fail "mpirun across nodes printed '$got'"
    echo "fixture ok: $MIXL_CLUSTER_NODES isolated, TCP and mpirun across nodes"
    ;;
  netif)
    on n1 "${MIXL_TEST_NETIF:?}" || fail "TCP address choice in n1"
    ;;
  run-mpi)
    mixl_run 16 $hosts3 4 "$MIXL_CONFIGS/default.yaml" --set data_plane.path=mpi
    expect_choice '^mpi \(forced\); peers over mpi [1-9][0-9]*, over tcp 0$' 
    expect_world_windows
    ;;
  run-tcp)
    mixl_run 16 $hosts3 4 "$MIXL_CONFIGS/default.yaml" --set data_plane.path=tcp
    expect_choice '^tcp \(forced\); peers over mpi 0, over tcp [1-9][0-9]*$' 
    grep -q "tcp: 10\.199\.0\.11:" "$work/out" || fail "rank 0 does not publish its n1 address"
    expect_node_windows
    ;;
  run-auto)
    mixl_run 16 $hosts3 4 "$MIXL_CONFIGS/default.yaml"
    expect_choice '^auto: tcp between nodes \(one-sided MPI is emulated there: no RDMA device .*\), mpi within a node; peers over mpi [0-9]+, over tcp [1-9][0-9]*$' 
    expect_node_windows
    ;;
  tp-merge)
    # Prefill TP 2 with its halves on n1 and n2, decode TP 1 on n3: each block is merged from two nodes.
    mixl_run 6 $hosts3 4 "$MIXL_CONFIGS/tp-mismatch.yaml" --set workload.prompt.max=300 \
      --set decode.pool_blocks=64
    expect_choice '^auto: tcp between nodes .*; peers over mpi [0-9]+, over tcp [1-9][0-9]*$'
    expect_node_windows
    ;;
  scale16)
    # 16 ranks over all 4 nodes, 4 per node (oversubscribed): router + 3 prefill (TP 1) + 6 decode
    # instances of TP 2, so most transfers also split each block between two decode ranks.
    mixl_run 16 head:4,n1:4,n2:4,n3:4 16 "$MIXL_CONFIGS/default.yaml" --set prefill.instances=3 \
      --set decode.tp=2 --set decode.instances=6 --set decode.pool_blocks=64
    expect_choice '^auto: tcp between nodes .*; peers over mpi [0-9]+, over tcp [1-9][0-9]*$'
    expect_node_windows
    ;;
  run-etcd)
    start_etcd
    mixl_run 16 $hosts3 4 "$MIXL_CONFIGS/etcd.yaml" --set registry.endpoints=http://head:2379
    grep -q "^registry: etcd" "$work/out" || fail "the run did not use the etcd registry"
    expect_choice '^auto: tcp between nodes .* over tcp [1-9][0-9]*$' 
    expect_node_windows
    left=$(on head env ETCDCTL_API=3 etcdctl --endpoints=http://10.199.0.1:2379 get --prefix "" --keys-only | grep -c mixl)
    [ "$left" -eq 0 ] || fail "$left metadata keys left in etcd after the run"
    etcd_pair
    ;;
  bench-tcp)
    : "${MIXL_BENCH:?}"
    # Two sizes, both directions; each row's first and last iteration are verified with their own
    # pattern (a row whose data did not match carries a note and no figures).
    mpirun_head --host n1,n2 -np 2 "$MIXL_BENCH" --modes mixl,mpi,socket --backends mpi,tcp \
      --ops write,read --sizes 1M:2M --iters 8 --warmup 1 --reps 1 --mpi-win allocate --quiet \
      --json "$work/bench.json" >"$work/out" 2>"$work/err"
    rc=$?
    cat "$work/out"; cat "$work/err" >&2
    [ $rc -eq 0 ] || fail "mixl-bench exited $rc"
    python3 - "$work/bench.json" <<'PY' || fail "mixl-bench results across nodes"
import json, sys
d = json.load(open(sys.argv[1]))
path = d["meta"]["path"]
print("path:", path)
# The TCP agent and the socket loop listen on n1's cluster address, found without --tcp-bind.
assert "tcp listen: 10.199.0.11 (" in path, "no cross-node TCP listen address in the path report"
assert "tcp: 10.199.0.11:" in path, "the TCP agent did not publish n1's address"
assert "mpi: one-sided" in path, "no MPI agent in the path report"
rows = {(r["mode"], r["backend"], r["op"], r["size"]): r for r in d["results"]}
for mode, backend in (("mixl", "mpi"), ("mixl", "tcp"), ("mpi", "win-allocate"), ("socket", "tcp")):
    for op in ("WRITE", "READ"):
        for size in (1 << 20, 2 << 20):
            r = rows.get((mode, backend, op, size))
            assert r is not None, "no row for %s %s %s %d" % (mode, backend, op, size)
            assert r["note"] == "" and r["gbps"] > 0, "%s %s %s %d: %r" % (mode, backend, op, size, r["note"])
print("%d rows across n1 and n2, all verified" % len(rows))
PY
    ;;
  diag)
    : "${MIXL_DIAG:?}" "${MIXL_DIAG_CHECK:?}"
    mpirun_head --host n1,n2 -np 2 "$MIXL_DIAG" --json --selftest-seconds 0.2 >"$work/report.json" 2>"$work/err"
    rc=$?
    cat "$work/err" >&2
    [ $rc -eq 0 ] || { cat "$work/report.json" >&2; fail "mixl-diag exited $rc"; }
    "$MIXL_DIAG_CHECK" "$work/report.json" --ranks 2 || { cat "$work/report.json" >&2; fail "report check"; }
    python3 - "$work/report.json" <<'PY' || fail "the report does not describe two nodes"
import json, sys
r = json.load(open(sys.argv[1]))
text = json.dumps(r)
assert r["nodes"] == 2, "mixl-diag counted %s nodes, not 2" % r["nodes"]
assert r["host"] == "n1", "rank 0 reports host %s, not n1" % r["host"]
assert '"same_node": false' in text, "self-test did not run between nodes"
PY
    ;;
  slurm-step|slurm-mpirun|slurm-hetjob)
    [ -n "${SLURM_CONF:-}" ] || fail "the cluster was brought up without --slurm"
    scripts=$(cd "$(dirname "$MIXL_CLUSTER_SH")/../slurm" && pwd)
    opts=(--parsable --wait --chdir "$work" --output "$work/mixl-%j.out" --time 5)
    case $case_name in
      slurm-step) job=(--nodes 3 --ntasks 4 --ntasks-per-node 2 "$scripts/mixl-step.sbatch") ;;
      slurm-mpirun) job=(--nodes 3 --ntasks 4 --ntasks-per-node 2 "$scripts/mixl-mpirun.sbatch") ;;
      # Component 0 (router + prefill) on one node, component 1 (two decodes) on two others.
      slurm-hetjob) job=(--nodes 1 --ntasks 2 --ntasks-per-node 2 : --nodes 2 --ntasks 2
                         --ntasks-per-node 1 "$scripts/mixl-hetjob.sbatch") ;;
    esac
    jobid=$(on head env SLURM_CONF="$SLURM_CONF" timeout 150 sbatch "${opts[@]}" "${job[@]}" \
            --program "$MIXL_RUN" --outdir "$work/results" "$MIXL_CONFIGS/default.yaml" \
            -- --set workload.requests=16 --set run.progress=off)
    rc=$?
    jobid=${jobid%%;*}
    cat "$work"/mixl-*.out
    [ $rc -eq 0 ] || fail "the job failed (sbatch --wait exited $rc)"
    grep -q "verified 16, errors 0" "$work/mixl-$jobid.out" || fail "not every request was verified"
    "$MIXL_CHECK" "$work/results/mixl-$jobid.h5" 16 || fail "results file check"
    # Where the ranks ran, from Slurm's own record.
    nodes=$(on head env SLURM_CONF="$SLURM_CONF" sacct -n -X -j "$jobid" -o NodeList 2>/dev/null | tr -d ' ')
    used=$(on head env SLURM_CONF="$SLURM_CONF" scontrol show job "$jobid" | grep -o " NodeList=[^ ]*" | tr '\n' ' ')
    echo "job $jobid ran on: ${used:-$nodes}"
    case $case_name in
      slurm-hetjob)
        echo "$used" | grep -q "NodeList=n1 " || fail "component 0 is not on n1: $used"
        echo "$used" | grep -q "NodeList=n\[2-3\]" || fail "component 1 is not on n2,n3: $used" ;;
      *) echo "$used" | grep -q "NodeList=n\[1-3\]" || fail "the job did not span n1-n3: $used" ;;
    esac
    grep -q "^data path choice: auto: tcp between nodes" "$work/mixl-$jobid.out" ||
      fail "auto did not choose tcp between nodes under Slurm"
    ;;
  *) fail "unknown case $case_name" ;;
esac
