#!/usr/bin/env bash
# Cross-node figures on an emulated cluster (cluster.sh up), per link rate:
# a raw TCP socket loop n1 -> n2, and mixl-run (router + prefill on n1,
# decodes on n2 and n3) on the MPI path and on the path auto chooses.
#   perf.sh STATE_DIR MIXL_RUN CONFIGS_DIR [RATE...]   (RATE: tc rate such as 1gbit, or "none")
# Prints one Markdown table row per rate and path. Links are shaped with tc tbf
# on both ends of every veth (what leaves a node and what the switch sends it).
set -uo pipefail
state=$1 run=$2 configs=$3
shift 3
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(none 10gbit 4gbit 1gbit)
here=$(cd "$(dirname "$0")" && pwd)
on() { bash "$here/cluster.sh" -s "$state" exec "$@"; }
# shellcheck disable=SC1091
. "$state/env"
nodes="n1 n2 n3"
mca="--mca pml ucx --mca osc ucx --mca opal_common_ucx_tls any --mca opal_common_ucx_devices any"

shape() {
  local rate=$1 n sw
  sw=$(cut -d' ' -f1 "$state/nodes/.switch.pid")
  for n in $nodes head; do
    if [ "$rate" = none ]; then
      on "$n" tc qdisc del dev eth0 root 2>/dev/null
      nsenter -t "$sw" -n tc qdisc del dev "v-$n" root 2>/dev/null
    else
      on "$n" tc qdisc replace dev eth0 root tbf rate "$rate" burst 1mb latency 5ms
      nsenter -t "$sw" -n tc qdisc replace dev "v-$n" root tbf rate "$rate" burst 1mb latency 5ms
    fi
  done
}

# Raw socket loop: 256 MiB in 1 MiB writes from n1 to n2; the receiver times first to last byte.
raw_tcp() {
  on n2 timeout 60 python3 -c '
import socket, time
s = socket.create_server(("10.199.0.12", 7002)); c, _ = s.accept()
n = 0; t0 = None
while True:
    b = c.recv(1 << 20)
    if not b: break
    if t0 is None: t0 = time.perf_counter()
    n += len(b)
print("%.0f" % (n / (time.perf_counter() - t0) / 1e6))' >"$state/raw.out" 2>&1 &
  local p=$!
  sleep 1
  on n1 python3 -c '
import socket
c = socket.create_connection(("10.199.0.12", 7002)); buf = b"x" * (1 << 20)
for _ in range(256): c.sendall(buf)
c.close()'
  wait $p
  cat "$state/raw.out"
}

# mixl-run: prints "wall_s gbps mean_latency_us" from the summary.
mixl() {
  # shellcheck disable=SC2086
  on head mpirun $MIXL_CLUSTER_MPIRUN_FLAGS $mca --host n1:2,n2:1,n3:1 -np 4 "$run" "$@" \
    --set run.progress=off --set run.output="$state/perf.h5" >"$state/perf.out" 2>&1 ||
    { echo "mixl-run failed" >&2; tail -5 "$state/perf.out" >&2; echo "- - -"; return; }
  awk '/ s wall,/ {for (i = 1; i <= NF; i++) {if ($i == "wall,") w = $(i-2); if ($i == "Gbps") g = $(i-1)}}
       $1 == "transfer_latency" {l = $4}
       END {printf "%s %s %.0f\n", w, g, l}' "$state/perf.out"
}

echo "| link | raw TCP n1->n2 MB/s | config | path | wall s | overall Gbit/s | mean transfer latency us |"
echo "|---|---|---|---|---|---|---|"
for rate in "${rates[@]}"; do
  shape "$rate"
  raw=$(raw_tcp)
  for cfg in default llama3-8b; do
    args=("$configs/$cfg.yaml")
    [ "$cfg" = llama3-8b ] && args+=(--set decode.instances=2 --set workload.requests=4 --set workload.prompt.min=256
                                     --set workload.prompt.max=512 --set decode.pool_blocks=512)
    for path in mpi auto; do
      read -r wall gbps lat <<<"$(mixl "${args[@]}" --set data_plane.path=$path)"
      echo "| $rate | $raw | $cfg | $path | $wall | $gbps | $lat |"
    done
  done
done
shape none
