#!/usr/bin/env bash
# Configure and build MIXL into a build directory (default: build).
#   scripts/build.sh [build-dir] [extra cmake args...]
# Quiet on success: compiler output is shown only when the build fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
shift || true
log="$build.log"
mkdir -p "$build"
if ! { cmake -S "$here" -B "$build" "$@" && cmake --build "$build" -j2; } >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "mixl: build failed, full log in $log" >&2
  exit 1
fi
