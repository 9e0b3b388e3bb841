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

# Model-shaped mode: GB/s per (model, tokens) group. One colour per memory kind (TCP counts
# as its own kind), one fill pattern per scheme; series ordered by kind then scheme, so the
# legend reads as one group per memory kind, each under a header line.
awk -F, '
  function scheme_rank(s) {
    return s == "memcpy" ? 1 : s == "contiguous" ? 2 : s == "layer-wise bs16" ? 3 : \
           s == "block-wise bs16" ? 4 : s == "layer-wise bs64" ? 5 : s == "block-wise bs64" ? 6 : 7
  }
  NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
  ($c["mode"] == "model-mixl" || $c["mode"] == "model-memcpy") && $c["gbps"] > 0 {
    g = $c["model"] " " ($c["tokens"] % 1024 ? $c["tokens"] : $c["tokens"] / 1024 "k")
    kind = $c["mem"] ($c["backend"] == "tcp" ? " over TCP" : "")
    if ($c["mode"] == "model-memcpy") sch = "memcpy"
    else sch = $c["pattern"] ($c["pattern"] == "contiguous" ? "" : " bs" $c["block_tokens"])
    s = kind "|" sch
    if (!(g in gi)) { gi[g] = ++ng; gn[ng] = g }
    if (!(kind in ki)) { ki[kind] = ++nk; kn[nk] = kind }
    if (!(s in si)) { si[s] = ++ns; sn[ns] = s; sk[ns] = ki[kind]; ss[ns] = scheme_rank(sch) }
    if (!((gi[g], si[s]) in v)) v[gi[g], si[s]] = $c["gbps"]
  }
  END {
    if (ng == 0) exit
    for (j = 1; j <= ns; j++) ord[j] = j
    for (a = 2; a <= ns; a++)   # insertion sort by (kind, scheme)
      for (b = a; b > 1 && (sk[ord[b-1]] * 100 + ss[ord[b-1]] > sk[ord[b]] * 100 + ss[ord[b]]); b--) {
        t = ord[b]; ord[b] = ord[b-1]; ord[b-1] = t
      }
    printf "group"; for (j = 1; j <= ns; j++) printf "\t%s", sn[ord[j]]; printf "\n"
    for (i = 1; i <= ng; i++) {
      printf "%s", gn[i]
      for (j = 1; j <= ns; j++) printf "\t%s", ((i, ord[j]) in v) ? v[i, ord[j]] : "-"
      printf "\n"
    }
  }' "$csv" > "$tmp/model_table.dat"
if [ -s "$tmp/model_table.dat" ]; then
  colours=("#1b6ca8" "#e07b00" "#2a9d3a" "#c0392b" "#7d3c98" "#5d6d7e")
  # Scheme -> fill pattern of pngcairo (3 = solid).
  pattern_of() {
    case $1 in
      memcpy) echo 3 ;; contiguous) echo 1 ;; "layer-wise bs16") echo 4 ;;
      "block-wise bs16") echo 5 ;; "layer-wise bs64") echo 6 ;; "block-wise bs64") echo 7 ;;
      *) echo 2 ;;
    esac
  }
  plot=() kinds=() col=1 last_kind=""
  IFS=$'\t' read -r -a header < <(head -1 "$tmp/model_table.dat")
  for name in "${header[@]:1}"; do
    col=$((col + 1))
    kind=${name%%|*} scheme=${name#*|}
    if [ "$kind" != "$last_kind" ]; then
      kinds+=("$kind")
      plot+=("keyentry with boxes fs empty lc rgb 'white' title '$kind:'")
      last_kind=$kind
    fi
    c=${colours[$(( (${#kinds[@]} - 1) % ${#colours[@]} ))]}
    plot+=("'$tmp/model_table.dat' using $col:xtic(1) fs pattern $(pattern_of "$scheme") border lc rgb '$c' lc rgb '$c' title '  $scheme'")
  done
  plot_cmd=$(IFS=,; echo "${plot[*]}")
  gnuplot <<GP
set terminal pngcairo size 1150,620 font ",11" noenhanced
set output "$out/model.png"
set title "Model-shaped transfer: one request's KV into a paged pool (colour: memory, pattern: scheme)"
set datafile separator "\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set key outside right top Left reverse samplen 2.5
set ylabel "GB/s (1e9 B/s)"
set yrange [0:*]
set grid ytics
plot $plot_cmd
GP
  echo "plot.sh: wrote $out/model.png"
fi
