#!/usr/bin/env bash
# Install what is missing, build, and run the main job on the embedded default.
#   scripts/run.sh [config.yaml]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
"$here/scripts/build.sh" "$here/build"

config=${1:-$here/configs/default.yaml}
mkdir -p "$here/results"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# mixl-run selects pml/osc ucx itself (mixl_mpi_init); --oversubscribe lets the
# default 4-rank job run on a 2-core machine.
MPIRUN=(mpirun --oversubscribe --bind-to none)
# Rank count from the config: router + prefill instances x TP + decode instances x TP.
np=$("$here/build/apps/mixl-run/mixl-run" --ranks "$config")
out="$here/results/$(basename "$config" .yaml).h5"
rc=0
"${MPIRUN[@]}" -np "$np" "$here/build/apps/mixl-run/mixl-run" "$config" -o "$out" || rc=$?
if [ -f "$out" ]; then
  echo
  echo "Charts and a summary of this run (TTFT and latency CDFs, timeline, bandwidth):"
  echo "  $here/apps/mixl-report/mixl-report $out -o ${out%.h5}-report"
  echo "(several files side by side: mixl-report a.h5 b.h5 ...)"
fi
exit $rc
