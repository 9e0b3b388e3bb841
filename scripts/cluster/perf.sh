#!/usr/bin/env bash
# Cross-node figures on an emulated cluster (cluster.sh up), written as JSON
# and text files into OUT_DIR for perf_report.py (table + charts).
#
#   perf.sh link STATE_DIR BUILD_DIR CONFIGS_DIR OUT_DIR [RATE...]
#       per link rate (tc rate such as 1gbit, or "none"; default: none 10gbit 4gbit 1gbit):
#       mixl-bench n1 -> n2 (MIXL over MPI and over TCP, the raw MPI_Put loop and the raw socket
#       loop in the same run, WRITE, 64 KiB..16 MiB), then mixl-run Llama-3-8B-shaped
#       (layer-wise push, router + prefill on n1, decode on n2) on the path auto chooses and
#       forced to mpi: MIXL_PERF_REQUESTS requests of 512 tokens (default 4: 256 MiB), all at once.
#   perf.sh conns STATE_DIR BUILD_DIR CONFIGS_DIR OUT_DIR [RATE...]
#       TCP connections per peer (data_plane.tcp.connections 1, 2, 4) across nodes, per link
#       rate (default: none 1gbit): mixl-bench n1 -> n2, MIXL TCP WRITE next to the raw socket
#       loop in the same run, 1 and 16 MiB; one line per run in OUT_DIR/conns.txt.
#   perf.sh startup STATE_DIR BUILD_DIR CONFIGS_DIR OUT_DIR [NP...]
#       mixl-run start-up (agent create + start + publish + import of every peer, slowest rank)
#       at NP ranks spread over head, n1, n2, n3 (default: 4 8 16 32).
# Links are shaped with tc tbf on both ends of every veth (what leaves a node and what the
# switch sends it). Every run records the load average next to its figures: on a shared
# machine they compare paths in the same minute, they are not link speeds.
set -uo pipefail
what=${1:?usage: perf.sh link|conns|startup STATE_DIR BUILD_DIR CONFIGS_DIR OUT_DIR [ARG...]}
state=${2:?} build=${3:?} configs=${4:?} out=${5:?}
shift 5
here=$(cd "$(dirname "$0")" && pwd)
state=$(cd "$state" && pwd) build=$(cd "$build" && pwd) configs=$(cd "$configs" && pwd)
mkdir -p "$out" && out=$(cd "$out" && pwd)
on() { bash "$here/cluster.sh" -s "$state" exec "$@"; }
# shellcheck disable=SC1091
. "$state/env"
bench=$build/apps/mixl-bench/mixl-bench run=$build/apps/mixl-run/mixl-run
mca="--mca pml ucx --mca osc ucx --mca opal_common_ucx_tls any --mca opal_common_ucx_devices any"
# shellcheck disable=SC2086
mpirun_head() { on head mpirun $MIXL_CLUSTER_MPIRUN_FLAGS $mca "$@"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

shape() {
  local rate=$1 n sw
  sw=$(cut -d' ' -f1 "$state/nodes/.switch.pid")
  for n in $MIXL_CLUSTER_NODES; do
    if [ "$rate" = none ]; then
      # Nothing to delete on an unshaped link: not an error.
      on "$n" tc qdisc del dev eth0 root 2>/dev/null || true
      nsenter -t "$sw" -n tc qdisc del dev "v-$n" root 2>/dev/null || true
    else
      on "$n" tc qdisc replace dev eth0 root tbf rate "$rate" burst 1mb latency 5ms || return 1
      nsenter -t "$sw" -n tc qdisc replace dev "v-$n" root tbf rate "$rate" burst 1mb latency 5ms || return 1
    fi
  done
}

link() {
  local rates=("$@") rate path
  [ ${#rates[@]} -gt 0 ] || rates=(none 10gbit 4gbit 1gbit)
  trap 'shape none' EXIT
  for rate in "${rates[@]}"; do
    shape "$rate" || { echo "perf: cannot shape the links at $rate" >&2; return 1; }
    echo "$rate bench start $(load) $(date -u +%FT%TZ)" >>"$out/load.txt"
    mpirun_head --host n1,n2 -np 2 "$bench" --modes mixl,mpi,socket --backends mpi,tcp --ops write \
      --sizes 65536,1048576,4194304,16777216 --iters 32 --warmup 2 --reps 3 --mpi-win allocate \
      --quiet --json "$out/bench-$rate.json" >"$out/bench-$rate.log" 2>&1 ||
      echo "perf: mixl-bench at $rate failed (see $out/bench-$rate.log)" >&2
    for path in auto mpi; do
      echo "$rate run-$path start $(load) $(date -u +%FT%TZ)" >>"$out/load.txt"
      # Saturating: every request arrives at once, no compute between layers; 4 x 512 tokens x
      # 128 KiB = 256 MiB by default, each request pushed layer by layer (32 layers) into the
      # decode rank. More requests weigh the start-up and the last request's drain less.
      mpirun_head --host n1:2,n2:1 -np 3 "$run" "$configs/llama3-8b.yaml" --set data_plane.path=$path \
        --set workload.requests="${MIXL_PERF_REQUESTS:-4}" --set workload.arrival=burst --set prefill.layer_compute_us=0 \
        --set workload.prompt.distribution=fixed --set workload.prompt.tokens=512 \
        --set run.progress=off --set run.output="$state/perf.h5" >"$out/run-$rate-$path.log" 2>&1 ||
        echo "perf: mixl-run $path at $rate failed (see $out/run-$rate-$path.log)" >&2
    done
    echo "$rate end $(load) $(date -u +%FT%TZ)" >>"$out/load.txt"
  done
}

conns() {
  local rates=("$@") rate n
  [ ${#rates[@]} -gt 0 ] || rates=(none 1gbit)
  trap 'shape none' EXIT
  for rate in "${rates[@]}"; do
    shape "$rate" || { echo "perf: cannot shape the links at $rate" >&2; return 1; }
    for rep in 1 2; do
      for n in 1 2 4; do
        local tag="conns-$rate-$n-$rep" before
        before=$(load)
        mpirun_head --host n1,n2 -np 2 "$bench" --modes mixl,socket --backends tcp --ops write \
          --sizes 1048576,16777216 --iters 16 --warmup 2 --reps 3 --tcp-connections "$n" \
          --quiet --json "$out/$tag.json" >"$out/$tag.log" 2>&1 ||
          echo "perf: mixl-bench $tag failed (see $out/$tag.log)" >&2
        python3 - "$out/$tag.json" "$rate" "$n" "$rep" "$before" "$(load)" >>"$out/conns.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = {(r["mode"], r["size"]): r for r in d["results"]}
cells = []
for size in (1 << 20, 16 << 20):
    m, s = rows.get(("mixl", size)), rows.get(("socket", size))
    ok = m and s and m["note"] == "" and s["note"] == ""
    cells.append("%d MiB: mixl %.3f socket %.3f GB/s ratio %.2f" % (size >> 20, m["gbps"], s["gbps"], m["gbps"] / s["gbps"])
                 if ok else "%d MiB: failed" % (size >> 20))
print("rate %s connections %s run %s (load %s / %s): %s" % (sys.argv[2], sys.argv[3], sys.argv[4],
      sys.argv[5], sys.argv[6], "; ".join(cells)))
PY
      done
    done
  done
  cat "$out/conns.txt"
}

startup() {
  local nps=("$@") np p d
  [ ${#nps[@]} -gt 0 ] || nps=(4 8 16 32)
  shape none
  for np in "${nps[@]}"; do
    # Router + P prefill + D decode instances (TP 1), a quarter of the workers prefill;
    # ranks dealt round-robin over the four nodes (rank 0 on head).
    p=$(( (np - 1) / 4 )); [ "$p" -ge 1 ] || p=1
    d=$(( np - 1 - p ))
    echo "startup $np start $(load) $(date -u +%FT%TZ)" >>"$out/load.txt"
    mpirun_head --host head:8,n1:8,n2:8,n3:8 --map-by node -np "$np" "$run" "$configs/default.yaml" \
      --set prefill.instances=$p --set decode.instances=$d --set decode.pool_blocks=64 \
      --set workload.requests=8 --set run.timeout_ms=300000 --set run.progress=off \
      --set run.output="$state/perf.h5" \
      >"$out/startup-$np.log" 2>&1 || echo "perf: mixl-run at $np ranks failed (see $out/startup-$np.log)" >&2
  done
  echo "startup end $(load) $(date -u +%FT%TZ)" >>"$out/load.txt"
}

case $what in
  link) link "$@" ;;
  startup) startup "$@" ;;
  conns) conns "$@" ;;
  *) echo "usage: perf.sh link|conns|startup STATE_DIR BUILD_DIR CONFIGS_DIR OUT_DIR [ARG...]" >&2; exit 2 ;;
esac
