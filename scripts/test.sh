#!/usr/bin/env bash
# Install what is missing, build, and run the whole CTest suite.
#   scripts/test.sh            normal build, warnings as errors
#   scripts/test.sh --asan     AddressSanitizer + UBSan build (build-asan/)
#   scripts/test.sh -L unit    extra arguments go to ctest
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"

build="$here/build"
cmake_args=(-DMIXL_WERROR=ON)
if [ "${1:-}" = "--asan" ]; then
  shift
  build="$here/build-asan"
  cmake_args+=(-DMIXL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  # MPI and UCX keep allocations for the life of the process; tests/lsan.supp
  # names them. Their plugins must stay loaded (no dlclose) and stacks must be
  # unwound the slow way through frame-pointer-less system libraries, or the
  # leak reports show "<unknown module>" and cannot be matched. A process that
  # loads the CUDA runtime and UCX's modules ends with a dynamic-TLS block of
  # bogus bounds that crashes LeakSanitizer's scan at exit
  # ("Tracer caught signal 11"): intercept_tls_get_addr=0 leaves DTLS out.
  export OMPI_MCA_mca_base_component_disable_dlclose=1
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0:intercept_tls_get_addr=0}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0}
fi
"$here/scripts/build.sh" "$build" "${cmake_args[@]}"

# Open MPI refuses to run as root without these (CI runs as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$build"
ctest --output-on-failure --timeout 600 -j2 "$@"
