#!/usr/bin/env bash
# One command for a machine with a GPU: build with CUDA, run the gpu and
# gpu-emu test labels, mixl-bench on device memory (device<->device through
# CUDA IPC, through device windows when the MPI is CUDA-aware, and through
# pinned staging to host memory) next to the cudaMemcpy device-to-device
# baseline, and mixl-run configs/gpu.yaml; one report file at the end.
#
#   scripts/gpu-check.sh [--build DIR] [--report FILE] [--emulated]
#
# --emulated is the dry run CI uses (test gpu_emu.gpu_check.dry_run): no
# build, no test labels, the same bench and mixl-run steps on the emulated
# device of tests/cuda_emu, from an existing build folder. Its figures mean
# nothing; it proves the script works.
#
# Each step has its own time limit; the whole run stays under 8 minutes on a
# built tree (a first build adds its own time, bounded at 4 minutes). Safe
# to run twice: the build is incremental, results go to a fresh temporary
# folder, the report is replaced whole. Progress lines go to the terminal
# only (nothing when stdout is not a terminal); the report holds the rest.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build-gpu
report=
emulated=0
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --emulated) emulated=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$report" ] || report=$build/gpu-check-report.txt
build=$(mkdir -p "$build" && cd "$build" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
body=$work/report
failed=0
start=$(date +%s)

progress() { if [ -t 1 ]; then printf '[gpu-check %3ds] %s\n' $(($(date +%s) - start)) "$*"; fi; }
section() { printf '\n== %s\n' "$*" >>"$body"; }
# step NAME LIMIT_S cmd...: run with a time limit, output into the report.
step() {
  local name=$1 limit=$2 rc
  shift 2
  progress "$name"
  section "$name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" >>"$body" 2>&1
  rc=$?
  printf -- '-- %s: exit %d\n' "$name" "$rc" >>"$body"
  if [ $rc -ne 0 ]; then failed=$((failed + 1)); progress "$name FAILED (exit $rc)"; fi
  return $rc
}

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun_cmd=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
{
  echo "MIXL GPU check: $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
  echo "mode: $([ $emulated -eq 1 ] && echo 'EMULATED dry run (figures are not hardware figures)' || echo hardware)"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ $emulated -eq 0 ]; then nvidia-smi -L 2>&1 || echo "nvidia-smi: not found"; fi
} >"$body"

if [ $emulated -eq 1 ]; then
  emu=$build/tests/cuda_emu/lib
  [ -e "$emu/libcudart.so.13" ] || ls "$emu"/libcudart.so.* >/dev/null 2>&1 ||
    { echo "gpu-check: no emulated device in $build (build with CUDA first)" >&2; exit 1; }
  export LD_LIBRARY_PATH=$emu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} CUDA_EMU_DEVICES=1
  mpirun_cmd+=(--mca pml ucx --mca osc ucx --mca opal_common_ucx_tls any --mca opal_common_ucx_devices any)
  export OMPI_MCA_pml=ucx OMPI_MCA_osc=ucx OMPI_MCA_opal_common_ucx_tls=any OMPI_MCA_opal_common_ucx_devices=any
else
  step "build with CUDA" 240 "$here/scripts/build.sh" "$build" -DMIXL_WITH_CUDA=ON || {
    cp "$body" "$report.tmp" && mv "$report.tmp" "$report"; echo "gpu-check: build failed, see $report" >&2; exit 1; }
  step "ctest -L gpu" 150 ctest --test-dir "$build" -L '^gpu$' -j2 --output-on-failure --timeout 60
  step "ctest -L gpu-emu" 150 ctest --test-dir "$build" -L '^gpu-emu$' -j2 --output-on-failure --timeout 90
fi

bench=$build/apps/mixl-bench/mixl-bench
run=$build/apps/mixl-run/mixl-run
sizes=4K,1M,16M
[ $emulated -eq 1 ] && sizes=4K,1M
common=(--ops write,read --sizes "$sizes" --iters 20 --warmup 2 --reps 2 --timeout-ms 20000)
# Device<->device on one node: CUDA IPC (MPI declared not CUDA-aware), with
# the cudaMemcpy device-to-device row (mode memcpy) in the same run.
MIXL_MPI_CUDA_AWARE=0 step "mixl-bench --mem cuda, CUDA IPC + cudaMemcpy D2D" 90 \
  "${mpirun_cmd[@]}" -np 2 "$bench" --modes mixl,memcpy --mem cuda "${common[@]}"
# Device windows where the MPI really is CUDA-aware (auto: refused otherwise).
step "mixl-bench --mem cuda, auto path" 90 \
  "${mpirun_cmd[@]}" -np 2 "$bench" --modes mixl --mem cuda "${common[@]}"
# Pinned host memory (cudaMallocHost) and the host baseline.
step "mixl-bench --mem pinned,host" 90 \
  "${mpirun_cmd[@]}" -np 2 "$bench" --modes mixl,memcpy --mem pinned,host "${common[@]}"
step "mixl-run configs/gpu.yaml" 120 \
  "${mpirun_cmd[@]}" -np 4 "$run" "$here/configs/gpu.yaml" --set run.output="$work/gpu.h5" \
  --set run.progress=plain

{
  printf '\n== summary\n'
  grep -h "^# path:\|^data path:\|^requests:" "$body" | sort -u
  echo "steps failed: $failed; wall time $(($(date +%s) - start)) s"
} >>"$work/summary"
cat "$work/summary" >>"$body"
mkdir -p "$(dirname "$report")"
cp "$body" "$report.tmp" && mv "$report.tmp" "$report"
progress "report: $report ($failed failed)"
[ $failed -eq 0 ]
