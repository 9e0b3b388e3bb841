#!/usr/bin/env bash
# Install what is missing, build, and run the main job on the embedded default.
#   scripts/run.sh [config.yaml]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
"$here/scripts/build.sh" "$here/build"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe --bind-to none --mca btl ^openib
        --mca opal_common_ucx_tls any --mca opal_common_ucx_devices any)
exec "${MPIRUN[@]}" -np 2 "$here/build/apps/mixl-demo/mixl-demo"
