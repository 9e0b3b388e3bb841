#!/usr/bin/env bash
# Run mixl-diag one way and validate what it printed.
#   run_diag.sh <case> [MPIRUN...]
# cases:
#   single         singleton (no launcher), JSON validated, self-test skipped
#   ranks2         under MPIRUN with 2 ranks, the self-tests must run and pass (a failed
#                  agent self-test fails the case even when reported as a finding), Open MPI
#                  must report pml ucx selected and osc ucx loaded; the checker must reject
#                  the same report with an agent self-test turned into a failure
#   ranks2-system  with --system-mca, under an MPIRUN without MCA flags or OMPI_MCA_*
#                  variables: the MPI library's own component choice, self-tests must pass
#   ranks2-defaults under the same bare MPIRUN without --system-mca: MIXL's MCA defaults
#                  (mixl_mpi_defaults(), what mixl_mpi_init() sets) must select pml ucx
#   registry-down  --etcd on a closed loopback port: a finding, exit code 0
#   registry-up    --etcd on an etcd server started here on free ports (stopped by PID)
#   rdma           a sysfs tree with one device (port 1 ACTIVE, port 2 DOWN) read back
#   table          the readable table: every section and the findings, exit code 0
# The 2-rank cases give the embedded MPI registry 10 s (--registry-timeout) instead of 2 s:
# a sanitizer build on a loaded machine answers later than that, and reachability, not
# speed, is what they check.
# Env: MIXL_DIAG (the program), MIXL_DIAG_CHECK (diag_json_check).
set -uo pipefail
case_name=${1:?usage: $0 case [mpirun...]}
shift
: "${MIXL_DIAG:?}" "${MIXL_DIAG_CHECK:?}"
tmp=$(mktemp -d /tmp/mixl-diag-test.XXXXXX) || exit 1
etcd_pid=""
cleanup() {
  if [ -n "$etcd_pid" ] && kill -0 "$etcd_pid" 2>/dev/null; then
    kill -TERM "$etcd_pid"
    for _ in $(seq 1 50); do kill -0 "$etcd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$etcd_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A TCP port nothing listens on (checked with ss; the range avoids ephemeral ports).
closed_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 10000))
    [ -z "$(ss -Hltn "( sport = :$p )" 2>/dev/null)" ] && { echo "$p"; return 0; }
  done
  return 1
}

# run <check args...> -- <mixl-diag args...>: run, require exit 0, validate the JSON.
run() {
  local check=() args=()
  while [ "$1" != "--" ]; do check+=("$1"); shift; done
  shift
  args=("$@")
  "${launcher[@]}" "$MIXL_DIAG" --json "${args[@]}" >"$tmp/report.json" 2>"$tmp/stderr"
  local rc=$?
  cat "$tmp/stderr" >&2
  if [ $rc -ne 0 ]; then
    echo "FAIL: mixl-diag exited $rc" >&2; cat "$tmp/report.json" >&2; exit 1
  fi
  "$MIXL_DIAG_CHECK" "$tmp/report.json" "${check[@]}" || { cat "$tmp/report.json" >&2; exit 1; }
}

launcher=()
case $case_name in
  single) run --ranks 1 -- ;;
  ranks2)
    [ $# -gt 0 ] || { echo "ranks2 needs the mpirun command" >&2; exit 2; }
    launcher=("$@" -np 2)
    run --ranks 2 --expect-pml ucx --selftest-ok -- --selftest-seconds 0.2 --registry-timeout 10000
    # The checker itself: a report whose TCP agent self-test failed (and says so in a
    # finding) must be refused.
    python3 - "$tmp/report.json" "$tmp/failed.json" <<'PY' || { echo "FAIL: cannot edit the report" >&2; exit 1; }
import json, sys
r = json.load(open(sys.argv[1]))
ag = r["selftest"][3]
ag.update(status="failed", data_ok=False, error="injected failure")
r["findings"].append({"severity": "error", "code": "selftest_failed", "message": "injected"})
json.dump(r, open(sys.argv[2], "w"))
PY
    if "$MIXL_DIAG_CHECK" "$tmp/failed.json" --ranks 2 --selftest-ok 2>"$tmp/check.err"; then
      echo "FAIL: diag_json_check accepted a failed agent self-test" >&2; exit 1
    fi
    grep -q "mixl-agent tcp self-test status failed" "$tmp/check.err" ||
      { echo "FAIL: the checker did not name the failed self-test" >&2; cat "$tmp/check.err" >&2; exit 1; }
    ;;
  ranks2-system|ranks2-defaults)
    [ $# -gt 0 ] || { echo "$case_name needs the mpirun command" >&2; exit 2; }
    for v in $(env | grep -o '^OMPI_MCA_[a-z_]*' || true); do
      case $v in OMPI_MCA_pml|OMPI_MCA_osc|OMPI_MCA_opal_common_ucx_*)
        echo "FAIL: $v is set; this case must run without an MCA selection" >&2; exit 1 ;;
      esac
    done
    for a in "$@"; do
      [ "$a" != "--mca" ] || { echo "FAIL: MCA flags given to $case_name: $*" >&2; exit 1; }
    done
    launcher=("$@" -np 2)
    if [ "$case_name" = ranks2-system ]; then
      run --ranks 2 --selftest-ok -- --selftest-seconds 0.2 --system-mca --registry-timeout 10000
      grep -q '"mixl_mca_defaults": false' "$tmp/report.json" ||
        { echo "FAIL: report does not say MIXL's MCA defaults were left out" >&2; exit 1; }
    else
      run --ranks 2 --expect-pml ucx --selftest-ok -- --selftest-seconds 0.2 --registry-timeout 10000
    fi
    ;;
  registry-down)
    port=$(closed_port) || { echo "no closed port found" >&2; exit 1; }
    run --ranks 1 --registry down -- --etcd "http://127.0.0.1:$port" --registry-timeout 1000
    ;;
  registry-up)
    command -v etcd >/dev/null || { echo "SKIP: etcd (etcd-server) not installed" >&2; exit 77; }
    cport=$(closed_port) && pport=$(closed_port) || exit 1
    [ "$cport" != "$pport" ] || pport=$((cport + 1))
    etcd --name diag --data-dir "$tmp/etcd" \
      --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
      --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
      --initial-cluster "diag=http://127.0.0.1:$pport" </dev/null >"$tmp/etcd.log" 2>&1 &
    etcd_pid=$!
    up=""
    for _ in $(seq 1 100); do
      [ -n "$(ss -Hltn "( sport = :$cport )" 2>/dev/null)" ] && { up=1; break; }
      kill -0 "$etcd_pid" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$up" ] || { echo "FAIL: etcd did not start" >&2; tail -n 20 "$tmp/etcd.log" >&2; exit 1; }
    # Listening precedes the first leader election; /health is false until then.
    sleep 1
    run --ranks 1 --registry up -- --etcd "http://127.0.0.1:$cport"
    ;;
  rdma)
    ib=$tmp/sys/class/infiniband
    mkdir -p "$ib/mlx5_0/ports/1" "$ib/mlx5_0/ports/2"
    echo "MT4123" >"$ib/mlx5_0/hca_type"
    echo "20.31.1014" >"$ib/mlx5_0/fw_ver"
    printf '4: ACTIVE\n' >"$ib/mlx5_0/ports/1/state"
    printf '5: LinkUp\n' >"$ib/mlx5_0/ports/1/phys_state"
    printf '200 Gb/sec (4X HDR)\n' >"$ib/mlx5_0/ports/1/rate"
    printf 'InfiniBand\n' >"$ib/mlx5_0/ports/1/link_layer"
    printf '1: DOWN\n' >"$ib/mlx5_0/ports/2/state"
    printf '3: Disabled\n' >"$ib/mlx5_0/ports/2/phys_state"
    printf '10 Gb/sec (4X SDR)\n' >"$ib/mlx5_0/ports/2/rate"
    printf 'InfiniBand\n' >"$ib/mlx5_0/ports/2/link_layer"
    MIXL_DIAG_SYSFS_IB=$ib run --ranks 1 --rdma-fixture --
    ;;
  table)
    port=$(closed_port) || exit 1
    "$MIXL_DIAG" --etcd "http://127.0.0.1:$port" >"$tmp/table.txt" 2>&1
    rc=$?
    cat "$tmp/table.txt"
    [ $rc -eq 0 ] || { echo "FAIL: mixl-diag exited $rc" >&2; exit 1; }
    for section in '[mpi]' '[ucx]' '[gpu]' '[rdma]' '[registry]' '[selftest]' 'Findings'; do
      grep -qF "$section" "$tmp/table.txt" || { echo "FAIL: no $section in the table" >&2; exit 1; }
    done
    grep -q "unreachable" "$tmp/table.txt" || { echo "FAIL: unreachable registry not in findings" >&2; exit 1; }
    # --strict turns the error finding into exit code 1.
    "$MIXL_DIAG" --strict --etcd "http://127.0.0.1:$port" >/dev/null 2>&1
    [ $? -eq 1 ] || { echo "FAIL: --strict did not exit 1 on an error finding" >&2; exit 1; }
    ;;
  *) echo "unknown case $case_name" >&2; exit 2 ;;
esac
echo "PASS: $case_name"
