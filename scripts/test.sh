#!/usr/bin/env bash
# Install what is missing, build, and run the CTest suite.
#   scripts/test.sh            normal build, warnings as errors
#   scripts/test.sh --asan     AddressSanitizer + UBSan + LeakSanitizer build (build-asan/)
#   scripts/test.sh -L unit    extra arguments go to ctest
# Ends with the list of skipped tests (exit 77, with the reason each printed). A skipped
# test not covered by tests/skip-allowlist.txt fails the run, as does any failed test.
# Open MPI's run-as-root permission and the MCA selection reach the tests through
# cmake/MixlHelpers.cmake (each test's environment), not from here.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"

build="$here/build"
cmake_args=(-DMIXL_WERROR=ON)
if [ "${1:-}" = "--asan" ]; then
  shift
  build="$here/build-asan"
  cmake_args+=(-DMIXL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DMIXL_TEST_TIMEOUT_SCALE=3)
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
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
"$here/scripts/build.sh" "$build" "${cmake_args[@]}"

cd "$build"
junit="$build/ctest-junit.xml"
rm -f "$junit"
rc=0
ctest --output-on-failure -j2 --output-junit "$junit" "$@" || rc=$?

# Tests the allow-list lets skip: by label (ctest -N -L) or by name.
allowed=$(mktemp)
trap 'rm -f "$allowed"' EXIT
while IFS= read -r line; do
  entry=${line%% -- *}
  entry=${entry%"${entry##*[![:space:]]}"}
  case $entry in
    label:*) ctest -N -L "^${entry#label:}\$" | sed -n 's/^ *Test *#[0-9]*: //p' >>"$allowed" ;;
    name:*) ctest -N | sed -n 's/^ *Test *#[0-9]*: //p' | grep -E -- "${entry#name:}" >>"$allowed" || true ;;
    ''|'#'*) ;;
    *) echo "tests/skip-allowlist.txt: cannot read entry '$line'" >&2; rc=1 ;;
  esac
done <"$here/tests/skip-allowlist.txt"

# The skipped tests and the reason each gave (its last line mentioning SKIP).
[ -f "$junit" ] || { echo "mixl: ctest wrote no $junit" >&2; exit 1; }
skips=$(/usr/bin/python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if case.find("skipped") is None and case.get("status") != "notrun":
        continue
    out = (case.findtext("system-out") or "").splitlines()
    why = [l.strip() for l in out if "SKIP" in l.upper()] or ["(no reason printed)"]
    print(f"{case.get('name')}\t{why[-1]}")
PY
)
unexpected=0
if [ -n "$skips" ]; then
  echo
  echo "Skipped tests:"
  while IFS=$'\t' read -r name why; do
    if grep -qxF -- "$name" "$allowed"; then
      echo "  $name: $why (allowed)"
    else
      echo "  $name: $why  <- NOT in tests/skip-allowlist.txt"
      unexpected=$((unexpected + 1))
    fi
  done <<<"$skips"
else
  echo "No test skipped."
fi
if [ "$unexpected" -gt 0 ]; then
  echo "mixl: $unexpected test(s) skipped outside tests/skip-allowlist.txt" >&2
  rc=1
fi
exit $rc
