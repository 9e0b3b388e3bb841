#!/usr/bin/env bash
# One Slurm launch test against the private cluster that slurm_cluster.sh
# started (its SLURM_CONF is in $MIXL_SLURM_STATE/env):
#   step    sbatch scripts/slurm/mixl-step.sbatch (srun --mpi=pmix, roles by rank
#           through --multi-prog) running the MPI probe (tests/slurm/slurm_probe.c, the
#           same command line as mixl-run), wait for the job, check its state and the
#           probe's HDF5 output (one row per rank: role, one-sided check, Slurm task)
#   mpirun  the same with scripts/slurm/mixl-mpirun.sbatch (mpirun inside the
#           allocation, MPMD roles)
#   run-step, run-mpirun
#           the same scripts running mixl-run on configs/default.yaml (4 ranks, roles
#           from the config); its HDF5 results must hold every request, verified
#   diag    sbatch scripts/slurm/mixl-diag.sbatch with 2 ranks: the table is in the job
#           log, the JSON report is validated (self-tests ran between the two Slurm
#           tasks, pml ucx selected as the script asks)
#   hetjob  sbatch --test-only scripts/slurm/mixl-hetjob.sbatch: a heterogeneous job
#           needs one node per component and never starts on this one-node
#           cluster, so only its parsing and its acceptance by the scheduler are checked
# Exit 77 when the cluster could not be started.
set -uo pipefail

case_name=${1:?usage: $0 step|mpirun|run-step|run-mpirun|diag|hetjob}
: "${MIXL_SOURCE_DIR:?}" "${MIXL_SLURM_STATE:?}" "${MIXL_TEST_WORKDIR:?}" "${MIXL_SLURM_PROBE:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }

[ -f "$MIXL_SLURM_STATE/env" ] || { echo "SKIP: no Slurm cluster running" >&2; exit 77; }
# shellcheck disable=SC1091
. "$MIXL_SLURM_STATE/env"
command -v h5dump >/dev/null || { echo "SKIP: h5dump (hdf5-tools) not installed" >&2; exit 77; }

work=$MIXL_TEST_WORKDIR/$case_name
rm -rf "$work" && mkdir -p "$work" || fail "cannot create $work"
scripts=$MIXL_SOURCE_DIR/scripts/slurm

ntasks=4
program=$MIXL_SLURM_PROBE
config=$work/probe.yaml
printf '# launch-path test: the probe records this path only\nexperiment: slurm-%s\n' \
  "$case_name" >"$config"
role_opts=(--prefill-tasks 1 --prefill-args "--role prefill" --decode-args "--role decode")

sbatch_opts=(--parsable --chdir "$work" --output "$work/mixl-%j.out" --time 5)

if [ "$case_name" = hetjob ]; then
  out=$(sbatch --test-only "$scripts/mixl-hetjob.sbatch" --program "$program" \
        --outdir "$work/results" "$config" 2>&1)
  rc=$?
  echo "$out"
  [ $rc -eq 0 ] || fail "sbatch --test-only rejected mixl-hetjob.sbatch (rc $rc)"
  echo "$out" | grep -q "to start at" || fail "no start estimate from sbatch --test-only"
  # The same script with a broken component must be refused, so the check
  # above means the scheduler really validated the components.
  out=$(sbatch --test-only --nodes=64 "$scripts/mixl-hetjob.sbatch" "$config" 2>&1)
  rc=$?
  echo "$out"
  [ $rc -ne 0 ] || fail "sbatch --test-only accepted a 64-node component on a 1-node cluster"
  echo "PASS: hetjob accepted by sbatch --test-only"
  exit 0
fi

# Submit, then wait (bounded) until the job has ended; sets jobid, state, info.
# slurmctld keeps finished jobs for MinJobAge (600 s), so scontrol still
# reports the final state; no accounting database is needed.
submit_and_wait() {
  jobid=$(sbatch "$@") || fail "sbatch refused the job ($*)"
  jobid=${jobid%%;*}
  echo "submitted job $jobid"
  state=""
  for _ in $(seq 1 360); do
    info=$(scontrol show job -o "$jobid" 2>/dev/null)
    state=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info")
    case $state in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;;
    esac
    sleep 0.5
  done
  echo "job $jobid: $info"
  joblog=$work/mixl-$jobid.out
  [ -f "$joblog" ] && { echo "--- job output"; cat "$joblog"; echo "---"; }
  case $state in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) ;;
    *) scancel "$jobid"; fail "job $jobid not finished after 180 s (state ${state:-unknown})" ;;
  esac
  [ "$state" = COMPLETED ] || fail "job $jobid ended $state"
  exitcode=$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<<"$info")
  [ "$exitcode" = "0:0" ] || fail "job $jobid exit code $exitcode"
}

if [ "$case_name" = diag ]; then
  : "${MIXL_DIAG:?}" "${MIXL_DIAG_CHECK:?}"
  # Both ranks on the one node (the script's default is one rank on each of two nodes).
  submit_and_wait "${sbatch_opts[@]}" --nodes 1 --ntasks 2 --ntasks-per-node 2 \
    "$scripts/mixl-diag.sbatch" --program "$MIXL_DIAG" --outdir "$work/results" \
    -- --selftest-seconds 0.2
  report=$work/results/mixl-diag-$jobid.json
  [ -s "$report" ] || fail "no report $report"
  # The table went to the job log, the JSON to the report; the UCX selection
  # the script exports must be what Open MPI used.
  grep -q '^Findings' "$work/mixl-$jobid.out" || fail "no table in the job log"
  "$MIXL_DIAG_CHECK" "$report" --ranks 2 --expect-pml ucx || { cat "$report"; fail "bad report"; }
  echo "PASS: diag job $jobid"
  exit 0
fi

case $case_name in
  step | run-step) script=$scripts/mixl-step.sbatch ;;
  mpirun | run-mpirun) script=$scripts/mixl-mpirun.sbatch ;;
  *) fail "unknown case $case_name" ;;
esac

# One attribute (-a PATH) or dataset (-d PATH) as a comma-separated list.
# Datasets go through h5dump -o (the values only, without the dataset's own
# attributes); attributes are read from the DATA block of their dump.
h5values() {
  if [ "$1" = -d ]; then
    h5dump -y -w 0 -d "$2" -o "$work/h5values.txt" "$results" >/dev/null &&
      tr -d ' \n"' <"$work/h5values.txt"
  else
    h5dump -w 0 "$@" "$results" | sed -n '/DATA {/,/}/p' |
      sed -e '/DATA {/d' -e '/}/d' -e 's/^ *([0-9]*): *//' | tr -d ' \n"'
  fi
}

echo "script $script"
if [ "${case_name#run-}" != "$case_name" ]; then
  : "${MIXL_RUN:?}"
  # mixl-run places router, prefill and decode by rank from the config itself;
  # fewer requests than the default keep the test short on a small machine.
  requests=16
  submit_and_wait "${sbatch_opts[@]}" --ntasks "$ntasks" --nodes 1 "$script" --program "$MIXL_RUN" \
    --outdir "$work/results" "$MIXL_SOURCE_DIR/configs/default.yaml" \
    -- --set "workload.requests=$requests"
  results=$work/results/mixl-$jobid.h5
  [ -s "$results" ] || fail "no results file $results"
  world=$(h5values -a /world_size)
  status=$(h5values -d /requests/status)
  echo "results: world_size=$world requests/status=[$status]"
  [ "$world" = "$ntasks" ] || fail "world_size $world, expected $ntasks"
  rows=$(tr ',' '\n' <<<"$status" | grep -c .)
  [ "$rows" = "$requests" ] || fail "$rows requests recorded, $requests submitted"
  # Every request delivered and verified: status 0 (MIXL_OK) on every row.
  [ -z "$(tr ',' '\n' <<<"$status" | grep -vx 0)" ] || fail "requests not verified: [$status]"
  echo "PASS: $case_name job $jobid"
  exit 0
fi

submit_and_wait "${sbatch_opts[@]}" --ntasks "$ntasks" --nodes 1 "$script" --program "$program" \
  --outdir "$work/results" "${role_opts[@]}" "$config"

results=$work/results/mixl-$jobid.h5
[ -s "$results" ] || fail "no results file $results"
world=$(h5values -a /world_size)
roles=$(h5values -d /role)
rma=$(h5values -d /rma_ok)
procids=$(h5values -d /slurm_procid)
job_attr=$(h5values -a /slurm_job_id)
echo "results: world_size=$world role=[$roles] rma_ok=[$rma] slurm_procid=[$procids] job=$job_attr"
[ "$world" = "$ntasks" ] || fail "world_size $world, expected $ntasks"
[ "$roles" = "0,1,1,1" ] || fail "roles [$roles], expected prefill on rank 0 and decode on 1-3"
[ "$rma" = "1,1,1,1" ] || fail "one-sided check failed on some rank: [$rma]"
[ "$job_attr" = "$jobid" ] || fail "results written by job '$job_attr', expected $jobid"
if [ "$case_name" = step ]; then
  # Direct launch: MPI rank i is Slurm task i.
  [ "$procids" = "0,1,2,3" ] || fail "slurm_procid [$procids], expected 0,1,2,3"
fi
echo "PASS: $case_name job $jobid"
