#!/usr/bin/env bash
# The installed library, used the way a user's project uses it:
#   install_test.sh <build-dir> <mpiexec> <mpirun flags...>
# 1. cmake --install into a temporary prefix;
# 2. build tests/install/consumer with CMake find_package(mixl) (CMAKE_PREFIX_PATH), and the
#    same source with `mpicc $(pkg-config --cflags --libs mixl)` (PKG_CONFIG_PATH);
# 3. both must link the installed libmixl.so (ldd), not the build tree's;
# 4. run each under the given mpirun with 2 ranks, without MCA flags or OMPI_MCA_* variables:
#    mixl_mpi_init()'s defaults must select osc ucx (the path report says so); a WRITE with a
#    notification and a READ, every byte checked, libmixl loaded from the prefix.
set -uo pipefail
build=${1:?usage: install_test.sh <build-dir> <mpiexec> [flags...]}
shift
mpirun=("$@")
src=$(cd "$(dirname "$0")/consumer" && pwd)
tmp=$(mktemp -d /tmp/mixl-install.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }
# mixl_mpi_init() must make the choice itself: no selection from the environment or the flags.
for v in OMPI_MCA_pml OMPI_MCA_osc OMPI_MCA_opal_common_ucx_tls OMPI_MCA_opal_common_ucx_devices; do
  [ -z "${!v+x}" ] || fail "$v is set; this test runs without an MCA selection"
done
for a in "${mpirun[@]}"; do [ "$a" != "--mca" ] || fail "MCA flags given: ${mpirun[*]}"; done

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install"; }
lib=$(find "$prefix" -name 'libmixl.so.*' -type f | head -n 1)
[ -n "$lib" ] || fail "no libmixl.so installed under $prefix"
pc=$(find "$prefix" -name mixl.pc | head -n 1)
[ -n "$pc" ] || fail "no mixl.pc installed"
echo "installed: $lib, $pc"

# find_package(mixl)
cmake -S "$src" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  >"$tmp/cmake.log" 2>&1 && cmake --build "$tmp/cmake-build" >>"$tmp/cmake.log" 2>&1 ||
  { cat "$tmp/cmake.log" >&2; fail "building the consumer with find_package(mixl)"; }
# pkg-config mixl
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs mixl) || fail "pkg-config --cflags --libs mixl"
echo "pkg-config --cflags --libs mixl: $flags"
# shellcheck disable=SC2086
mpicc -std=c11 -o "$tmp/consumer-pc" "$src/consumer.c" $flags -ldl >"$tmp/pc.log" 2>&1 ||
  { cat "$tmp/pc.log" >&2; fail "building the consumer with pkg-config mixl"; }

for exe in "$tmp/cmake-build/consumer" "$tmp/consumer-pc"; do
  echo "--- $exe"
  # Only the prefix may provide libmixl: the pkg-config build finds it through LD_LIBRARY_PATH.
  export LD_LIBRARY_PATH=$(dirname "$lib")
  so=$(ldd "$exe" | awk '$1 ~ /^libmixl\.so/ {print $3}')
  case $so in "$prefix"/*) echo "links $so" ;; *) fail "$exe links libmixl from '$so', not from $prefix" ;; esac
  "${mpirun[@]}" -np 2 "$exe" >"$tmp/out" 2>&1
  rc=$?
  cat "$tmp/out"
  [ $rc -eq 0 ] || fail "$exe exited $rc"
  grep -q "libmixl loaded from $prefix/" "$tmp/out" || fail "libmixl was not loaded from $prefix"
  # mixl_mpi_init's defaults chose the UCX one-sided component (Debian's Open MPI disables it).
  grep -q "consumer: mpi: one-sided.*osc=ucx" "$tmp/out" || fail "mixl_mpi_init did not select osc ucx"
  grep -q "3 rounds of WRITE+notification and READ of 1048589 bytes: every byte verified" "$tmp/out" ||
    fail "no verified transfers reported"
done
echo "PASS: installed MIXL found by CMake and pkg-config, 2-rank WRITE+READ verified"
