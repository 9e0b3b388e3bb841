#!/usr/bin/env bash
# Install what is missing, build, and run the main job on the embedded default.
#   scripts/run.sh [config.yaml]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/deps.sh"
"$here/scripts/build.sh" "$here/build"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# pml/osc ucx: MIXL's one-sided data plane runs over UCX (Debian disables it
# by default); "any" lets UCX use shared memory and TCP without a Mellanox NIC.
MPIRUN=(mpirun --oversubscribe --bind-to none
        --mca pml ucx --mca osc ucx --mca opal_common_ucx_tls any --mca opal_common_ucx_devices any)
exec "${MPIRUN[@]}" -np 2 "$here/build/apps/mixl-demo/mixl-demo"
