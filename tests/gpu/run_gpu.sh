#!/usr/bin/env bash
# mixl-run on device memory, end to end, with the data path asserted.
#   run_gpu.sh NP REQUESTS EXPECTED_PATH -- mixl-run args...
# Runs the job, expects exit 0 and "errors 0", checks the results file with
# check_results, and requires EXPECTED_PATH (a fixed string) in the summary's
# "data path" line: a silent fallback to another path fails.
# On the emulated device (tests/cuda_emu) it also requires, from each
# process's device counters, that prefill filled every layer with a CUDA
# kernel and copied nothing more from the host to the device than the
# router did, and that decode checked every layer with a kernel (one
# launch per request, layer and TP rank on each side).
# Environment: MIXL_RUN, MIXL_CHECK, MIXL_MPIRUN (as tests/run/run_case.sh).
set -uo pipefail
np=$1 requests=$2 want=$3
shift 3
[ "${1:-}" = "--" ] && shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/results.h5"
mkdir "$work/counters"
export CUDA_EMU_COUNTERS="$work/counters"
# shellcheck disable=SC2086
$MIXL_MPIRUN -np "$np" "$MIXL_RUN" --set run.output="$out" --set run.progress=plain "$@" \
  >"$work/stdout" 2>"$work/stderr"
rc=$?
cat "$work/stdout"
cat "$work/stderr" >&2
[ $rc -eq 0 ] || { echo "mixl-run exited with $rc" >&2; exit 1; }
grep -q "errors 0" "$work/stdout" || { echo "summary does not report 0 errors" >&2; exit 1; }
path=$(grep "^data path:" "$work/stdout")
[ -n "$path" ] || { echo "summary has no data path line" >&2; exit 1; }
grep -qF -- "$want" <<<"$path" || { echo "expected path '$want', got: $path" >&2; exit 1; }
"$MIXL_CHECK" "$out" "$requests" || exit 1
echo "path: $path"

counters=("$work"/counters/*.counters)
if [ ! -e "${counters[0]}" ]; then
  echo "device counters: none (not the emulated device)"
  exit 0
fi
layers=$(sed -n 's/^mixl-run .*(\([0-9]*\) layers.*/\1/p' "$work/stdout")
ptp=$(sed -n 's/^roles: .* prefill x TP \([0-9]*\) .*/\1/p' "$work/stdout")
dtp=$(sed -n 's/^roles: .* decode x TP \([0-9]*\).*/\1/p' "$work/stdout")
[ -n "$layers" ] && [ -n "$ptp" ] && [ -n "$dtp" ] ||
  { echo "cannot read layers and TP sizes from the summary" >&2; exit 1; }
# role of each rank, from the summary's rss line ("rank 1 prefill-0 a/b, ...");
# counters per role. The
# router holds no KV: its host-to-device copies (the device-window
# self-test at agent start, which every rank runs) are the baseline a
# prefill rank may not exceed.
declare -A role
while read -r _ r ro; do role[$r]=${ro%%-*}; done < <(sed -n 's/^rss ([^)]*): //p' "$work/stdout" | grep -o 'rank [0-9]* [a-z0-9-]*')
[ ${#role[@]} -gt 0 ] || { echo "no rss line with the role of each rank in the summary" >&2; exit 1; }
declare -A kernels=([prefill]=0 [decode]=0)
declare -A h2d
fail=0 base=0
for f in "${counters[@]}"; do
  rank=$(awk '$1 == "rank" {print $2}' "$f")
  ro=${role[$rank]:-}
  [ -n "$ro" ] || { echo "counters of rank $rank, which has no role in the summary" >&2; fail=1; continue; }
  kernels[$ro]=$(( ${kernels[$ro]:-0} + $(awk '$1 == "kernels" {print $2}' "$f") ))
  h2d[$rank]=$(awk '$1 == "h2d" {print $2}' "$f")
  [ "$ro" = router ] && base=${h2d[$rank]}
done
for rank in "${!h2d[@]}"; do
  [ "${role[$rank]}" = prefill ] || continue
  [ "${h2d[$rank]}" -eq "$base" ] || { echo "prefill rank $rank copied from the host to the device" \
    "${h2d[$rank]} times (the router $base): the KV was not made on the device" >&2; fail=1; }
done
want_fill=$((requests * layers * ptp)) want_check=$((requests * layers * dtp))
echo "device counters: prefill ${kernels[prefill]} kernels, decode ${kernels[decode]} kernels;" \
  "host-to-device copies per rank (router baseline $base): $(for r in "${!h2d[@]}"; do printf '%s=%s ' "$r" "${h2d[$r]}"; done)"
[ "${kernels[prefill]}" -eq "$want_fill" ] ||
  { echo "prefill launched ${kernels[prefill]} kernels, expected $want_fill fills (requests x layers x TP)" >&2; fail=1; }
[ "${kernels[decode]}" -eq "$want_check" ] ||
  { echo "decode launched ${kernels[decode]} kernels, expected $want_check checks (requests x layers x TP)" >&2; fail=1; }
exit $fail
