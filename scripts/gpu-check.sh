#!/usr/bin/env bash
# One command for a machine with a GPU: build with CUDA, run the gpu and
# gpu-emu test labels, mixl-bench on device memory (device<->device through
# CUDA IPC, through device windows when the MPI is CUDA-aware, and through
# pinned staging to host memory) next to the cudaMemcpy baselines of the
# same run (device to device; host to device and back, from pinned and from
# pageable memory), and mixl-run configs/gpu.yaml; one report file at the end.
#
#   scripts/gpu-check.sh [--build DIR] [--report FILE] [--emulated]
#
# --emulated is the dry run CI uses (test gpu_emu.gpu_check.dry_run): no
# build, no test labels, the same bench and mixl-run steps on the emulated
# device of tests/cuda_emu, from an existing build folder. Its figures mean
# nothing; it proves the script works.
#
# Each step has its own time limit, cut to what is left of an 8-minute
# budget for the whole run (build included; a step that would start with
# less than 15 s left is skipped and counted failed), so the script ends
# within 8 minutes. Safe to run twice: the build is incremental, results go
# to a fresh temporary folder, the report is replaced whole. Progress: on a
# terminal a line per step that counts the seconds while it runs; otherwise
# one plain line per step as it starts (and one for a failure). The report
# holds the output.
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
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
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
deadline=$((start + 470)) # 8 minutes, less the time to write the report
stepno=0
nsteps=$([ $emulated -eq 1 ] && echo 4 || echo 7)

say() { printf '[gpu-check %3ds] %s\n' $(($(date +%s) - start)) "$*"; }
section() { printf '\n== %s\n' "$*" >>"$body"; }
# step NAME LIMIT_S cmd...: run with a time limit (cut to the budget left),
# output into the report.
step() {
  local name=$1 limit=$2 rc t0 left pid
  shift 2
  stepno=$((stepno + 1))
  left=$((deadline - $(date +%s)))
  if [ $left -lt 15 ]; then
    section "$name: skipped, the 8-minute budget is spent"
    printf -- '-- %s: skipped\n' "$name" >>"$body"
    failed=$((failed + 1))
    say "[$stepno/$nsteps] $name: SKIPPED (the 8-minute budget is spent)"
    return 1
  fi
  [ "$limit" -gt $left ] && limit=$left
  section "$name (limit ${limit}s): $*"
  t0=$(date +%s)
  if [ -t 1 ]; then
    timeout --kill-after=10 "$limit" "$@" >>"$body" 2>&1 </dev/null &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      printf '\r[gpu-check %3ds] [%d/%d] %s: %ds ' $(($(date +%s) - start)) "$stepno" "$nsteps" "$name" \
        $(($(date +%s) - t0))
      sleep 1
    done
    wait "$pid"
    rc=$?
    printf '\r\033[K'
    say "[$stepno/$nsteps] $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $(($(date +%s) - t0)) s"
  else
    say "[$stepno/$nsteps] $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >>"$body" 2>&1 </dev/null
    rc=$?
    [ $rc -eq 0 ] || say "[$stepno/$nsteps] $name: FAILED (exit $rc)"
  fi
  printf -- '-- %s: exit %d\n' "$name" "$rc" >>"$body"
  [ $rc -eq 0 ] || failed=$((failed + 1))
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
  # Kernels for this machine's GPU; a later run reuses the configured value.
  arch=()
  grep -q '^CMAKE_CUDA_ARCHITECTURES:' "$build/CMakeCache.txt" 2>/dev/null || arch=(-DCMAKE_CUDA_ARCHITECTURES=native)
  step "build with CUDA" 240 "$here/scripts/build.sh" "$build" -DMIXL_WITH_CUDA=ON "${arch[@]}" || {
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
# the cudaMemcpy rows (mode memcpy) in the same run: device to device (mem
# cuda), host to device and back from pinned (cuda+pinned) and pageable
# (cuda+host) memory.
MIXL_MPI_CUDA_AWARE=0 step "mixl-bench --mem cuda, CUDA IPC + cudaMemcpy D2D/H2D/D2H" 90 \
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
say "report: $report ($failed steps failed)"
[ $failed -eq 0 ]
