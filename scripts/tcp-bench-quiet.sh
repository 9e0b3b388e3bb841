#!/usr/bin/env bash
# The MIXL TCP WRITE vs plain send/recv table at 1, 16 and 64 MiB per request
# (docs/tcp-protocol.md, docs/performance.md): 5 interleaved pairs each, both
# wait modes, medians and the CPU time per GiB, with date, kernel, cores and
# the load average before and after. Run on a quiet machine; about 2 minutes.
# On a shared machine use more pairs: the ratio of interleaved pairs is what
# holds. A third argument gives MIXL's TCP connections per peer.
# PIN=A,B pins both paths' initiator to CPU A and target to CPU B
# (mixl-tcp-bench --pin): the same placement every run, no 2x swings
# from which threads share a core.
#   [PIN=A,B] scripts/tcp-bench-quiet.sh [build-dir] [pairs] [connections]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
pairs=${2:-5}
conns=${3:-}
bench=$build/tests/tcp/mixl-tcp-bench
[ -x "$bench" ] || { echo "tcp-bench-quiet: $bench not built (cmake --build $build --target mixl-tcp-bench)" >&2; exit 1; }
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) cores, $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')"
pin=${PIN:-}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)${conns:+, $conns connections per peer}${pin:+, pinned initiator,target to CPUs $pin}"
echo
echo "| command | plain loop | MIXL TCP WRITE | ratio | CPU s/GiB plain / MIXL |"
echo "|---|---:|---:|---:|---:|"
run() {
  local out
  out=$("$bench" "$@" --pairs "$pairs" ${conns:+--connections "$conns"} ${pin:+--pin "$pin"} 2>/dev/null)
  echo "$out" | awk -v cmd="$*" '
    /^median:/ { gsub(",", ""); p=$3; m=$6; r=$NF }
    /^cpu/     { gsub(",", ""); cp=$6; cm=$8 }
    END { printf "| `%s --pairs '"$pairs"'` | %s GB/s | %s GB/s | %s | %s / %s |\n", cmd, p, m, r, cp, cm }'
}
run --size 1 --iters 200
run --size 16 --iters 20
run --size 64 --iters 8
run --size 1 --iters 200 --spin
run --size 16 --iters 20 --spin
run --size 64 --iters 8 --spin
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
