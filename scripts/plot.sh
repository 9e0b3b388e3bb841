#!/usr/bin/env bash
# Turn mixl-bench CSV files into PNG charts with gnuplot (Debian gnuplot-nox):
#   scripts/plot.sh [-o outdir] results.csv [more.csv ...]   (outdir defaults to docs/img)
# Several files are read as one table; a point measured in more than one of
# them is taken from the first file that has it.
# Charts: bandwidth and latency against message size for WRITE and READ
# (batch 1, pairwise; MIXL for each memory kind next to memcpy, the raw MPI
# loops and ucx_perftest), and the model-shaped mode's GB/s per scheme.
set -euo pipefail
out=docs/img
if [ "${1:-}" = "-o" ]; then
  out=${2:?usage: scripts/plot.sh [-o outdir] results.csv [more.csv ...]}
  shift 2
fi
[ $# -ge 1 ] || { echo "usage: scripts/plot.sh [-o outdir] results.csv [more.csv ...]" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
for f in "$@"; do [ -r "$f" ] || { echo "plot.sh: cannot read $f" >&2; exit 1; }; done
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One table: the first file's header, then every file's rows.
csv="$tmp/all.csv"
head -1 "$1" > "$csv"
for f in "$@"; do tail -n +2 "$f"; done >> "$csv"

# series NAME MODE BACKEND OP MEM: size, GB/s, avg, p50, p99 latency (us) of matching rows.
series() {
  awk -F, -v mode="$2" -v be="$3" -v op="$4" -v mem="$5" '
    NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    $c["mode"] == mode && (be == "*" || $c["backend"] == be) && $c["op"] == op &&
    (mem == "*" || $c["mem"] == mem) && $c["pattern"] == "pairwise" && $c["batch"] == 1 &&
    $c["gbps"] > 0 && !seen[$c["size"]]++ {
      print $c["size"], $c["gbps"], $c["lat_avg_us"], $c["lat_p50_us"], $c["lat_p99_us"] }
  ' "$csv" > "$tmp/$1.dat"
}

plots_for() { # OP -> gnuplot "plot" arguments for column $2 (2 = GB/s, 3 = avg latency)
  local op=$1 col=$2 args=() f title
  for spec in "mixl_host:MIXL (host memory)" "mixl_host-mpi:MIXL (MPI_Win_allocate memory)" \
              "mixl_pinned:MIXL (pinned)" "mixl_cuda:MIXL (CUDA)" "mixl_tcp:MIXL TCP backend" \
              "memcpy:memcpy, same bytes" "mpi_alloc:raw MPI Put/Get+flush, MPI_Win_allocate" \
              "mpi_create:raw MPI Put/Get+flush, MPI_Win_create" "ucx:ucx_perftest ucp_put/ucp_get"; do
    f="$tmp/${spec%%:*}_$op.dat"; title=${spec#*:}
    [ -s "$f" ] && args+=("'$f' using 1:$col with linespoints title '$title'")
  done
  local IFS=,; echo "${args[*]}"
}

for op in WRITE READ; do
  series "mixl_host_$op" mixl mpi "$op" host
  series "mixl_host-mpi_$op" mixl mpi "$op" host-mpi
  series "mixl_pinned_$op" mixl mpi "$op" pinned
  series "mixl_cuda_$op" mixl mpi "$op" cuda
  series "mixl_tcp_$op" mixl tcp "$op" "*"
  series "memcpy_$op" memcpy cpu COPY host
  series "mpi_alloc_$op" mpi win-allocate "$op" host
  series "mpi_create_$op" mpi win-create "$op" host
  series "ucx_$op" ucx_perftest ucp "$op" host
  lower=$(echo "$op" | tr A-Z a-z)
  bw=$(plots_for "$op" 2)
  lat=$(plots_for "$op" 3)
  [ -n "$bw" ] || { echo "plot.sh: no $op rows in $csv" >&2; continue; }
  gnuplot <<GP
set terminal pngcairo size 1000,620 font ",11" noenhanced
set datafile separator " "
set logscale x 2
set format x "%.0b%B"
set xlabel "message size (bytes per descriptor)"
set key bottom right box opaque
set grid
set output "$out/bandwidth_$lower.png"
set title "$op bandwidth, 2 ranks on one node (batch 1)"
set ylabel "GB/s (1e9 B/s)"
set logscale y
plot $bw
set output "$out/latency_$lower.png"
set title "$op latency per request (post to completion), 2 ranks on one node"
set ylabel "average latency (us)"
set key top left box opaque
plot $lat
GP
  echo "plot.sh: wrote $out/bandwidth_$lower.png $out/latency_$lower.png"
done

# Model-shaped mode: GB/s per (model, tokens) group and (memory, scheme, block size) series,
# with memcpy of the same bytes as the first series.
awk -F, '
  NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  ($c["mode"] == "model-mixl" || $c["mode"] == "model-memcpy") && $c["gbps"] > 0 {
    g = $c["model"] " " ($c["tokens"] % 1024 ? $c["tokens"] : $c["tokens"] / 1024 "k")
    if ($c["mode"] == "model-memcpy") s = "memcpy " $c["mem"]
    else s = $c["mem"] ($c["backend"] == "tcp" ? " TCP" : "") " " $c["pattern"] \
             ($c["pattern"] == "contiguous" ? "" : " bs" $c["block_tokens"])
    if (!(g in gi)) { gi[g] = ++ng; gn[ng] = g }
    if (!(s in si)) { si[s] = ++ns; sn[ns] = s }
    if (!((gi[g], si[s]) in v)) v[gi[g], si[s]] = $c["gbps"]
  }
  END {
    if (ng == 0) exit
    printf "group"; for (j = 1; j <= ns; j++) printf "\t%s", sn[j]; printf "\n"
    for (i = 1; i <= ng; i++) {
      printf "%s", gn[i]
      for (j = 1; j <= ns; j++) printf "\t%s", ((i, j) in v) ? v[i, j] : "-"
      printf "\n"
    }
  }' "$csv" > "$tmp/model_table.dat"
if [ -s "$tmp/model_table.dat" ]; then
  ncols=$(head -1 "$tmp/model_table.dat" | awk -F'\t' '{ print NF }')
  gnuplot <<GP
set terminal pngcairo size 1100,620 font ",11" noenhanced
set output "$out/model.png"
set title "Model-shaped transfer: one request's KV into a paged pool"
set datafile separator "\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right top
set ylabel "GB/s (1e9 B/s)"
set yrange [0:*]
set grid ytics
plot for [i=2:$ncols] "$tmp/model_table.dat" using i:xtic(1) title columnhead(i)
GP
  echo "plot.sh: wrote $out/model.png"
fi
