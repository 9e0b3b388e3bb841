#!/usr/bin/env bash
# Build the TCP fuzz targets with clang and libFuzzer (plus ASan and UBSan)
# and run each for a while over its corpus in tests/fuzz/corpus/.
#   scripts/fuzz.sh [--time SECONDS] [--out DIR] [codec] [server] [client]
# New interesting inputs go to DIR/corpus-<target>; crashes to DIR/crash-*.
# Exits 77 (skip) when clang or libFuzzer is not available.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=60
out="$here/build-fuzz"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) secs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    codec|server|client) targets+=("$1"); shift ;;
    *) echo "usage: $0 [--time SECONDS] [--out DIR] [codec] [server] [client]" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(codec server client)

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: clang not found, skipping" >&2
  exit 77
fi
mkdir -p "$out"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
  >"$out/probe.c"
if ! clang -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" >/dev/null 2>&1; then
  echo "fuzz: clang cannot link libFuzzer (-fsanitize=fuzzer), skipping" >&2
  exit 77
fi

read -r -a mpi_cflags <<<"$(mpicc --showme:compile)"
read -r -a mpi_libs <<<"$(mpicc --showme:link)"
cflags=(-g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
        -fno-sanitize-recover=undefined -I"$here/include" -I"$here/src" "${mpi_cflags[@]}")
tcp_src=()
for f in "$here"/src/transport/tcp/*.c; do
  case "$f" in *_cuda.c) ;; *) tcp_src+=("$f") ;; esac
done

for t in "${targets[@]}"; do
  case "$t" in
    codec) srcs=("$here/tests/fuzz/fuzz_tcp_codec.c" "$here/src/transport/tcp/tcp_proto.c") ;;
    server) srcs=("$here/tests/fuzz/fuzz_tcp_server.c" "${tcp_src[@]}" "$here"/src/util/*.c) ;;
    client) srcs=("$here/tests/fuzz/fuzz_tcp_client.c" "${tcp_src[@]}" "$here"/src/util/*.c) ;;
  esac
  seeds="$here/tests/fuzz/corpus/tcp"
  [ "$t" = client ] && seeds="$here/tests/fuzz/corpus/tcp_client"
  echo "fuzz: building fuzz_tcp_$t"
  clang "${cflags[@]}" "${srcs[@]}" -o "$out/fuzz_tcp_$t" -lpthread -lcrypto "${mpi_libs[@]}"
  mkdir -p "$out/corpus-$t"
  echo "fuzz: running fuzz_tcp_$t for ${secs}s"
  (cd "$out" && MIXL_LOG_LEVEL=error "./fuzz_tcp_$t" -max_total_time="$secs" -max_len=4096 \
     -print_final_stats=1 "corpus-$t" "$seeds")
done
echo "fuzz: no crash"
