#!/bin/bash
# Soak: a long mixl-run on the tiny model. Every request id 0..n-1 is in the
# results exactly once, done + failed = submitted with failed = 0, every
# block was verified, and no rank's resident memory at the end exceeds its
# resident memory at request 1,000 by more than 10 % (the results file's
# /rss table, one row per rank).
#   soak.sh REQUESTS NP -- MPIRUN [FLAGS...] MIXL_RUN [ARGS...]
set -uo pipefail
n=$1 np=$2
shift 2
[ "$1" = "--" ] && shift
work=$(mktemp -d /tmp/mixl-soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
runner=("${@:1:$#-1}")
mixl_run=${!#}
t0=$(date +%s)
"${runner[@]}" -np "$np" "$mixl_run" "$SOAK_CONFIG" --set run.output="$work/soak.h5" \
    --set run.progress=plain --set run.progress_interval_ms=10000 \
    --set workload.requests="$n" >"$work/stdout" 2>"$work/stderr"
rc=$?
dt=$(($(date +%s) - t0))
grep -v '^\[' "$work/stdout"
cat "$work/stderr" >&2
echo "soak: $n requests in ${dt} s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
[ $rc -eq 0 ] || { echo "FAIL: mixl-run exited with $rc"; exit 1; }
py=
for cand in /usr/bin/python3 python3; do
    if "$cand" -c "import h5py, numpy" 2>/dev/null; then py=$cand; break; fi
done
[ -n "$py" ] || { echo "SKIP: no python3 with h5py and numpy (python3-h5py)"; exit 77; }
"$py" - "$work/soak.h5" "$n" "$np" "$work/stdout" <<'PY'
import sys
import h5py
import numpy as np

path, n, np_ranks, stdout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bad = []
with h5py.File(path, "r") as f:
    req = f["requests"]
    ids = np.sort(req["id"][:])
    if len(ids) != n or not np.array_equal(ids, np.arange(n)):
        bad.append(f"request ids are not 0..{n-1} exactly once ({len(ids)} entries)")
    status = req["status"][:]
    failed = int(np.count_nonzero(status))
    done = int(len(status)) - failed
    if done + failed != n or failed != 0:
        bad.append(f"done {done} + failed {failed} != submitted {n}, or failed != 0")
    if int(np.sum(req["bad_blocks"][:])) != 0:
        bad.append("some blocks failed verification")
    bpt = int(f.attrs["kv_bytes_per_token"])
    if not np.array_equal(req["bytes"][:], req["prompt_tokens"][:] * bpt):
        bad.append("some request did not move all of its KV")
    if int(f["summary"].attrs["requests"]) != n or int(f["summary"].attrs["errors"]) != 0:
        bad.append("summary attributes disagree")
    rss = [{k: (v.decode() if isinstance(v, bytes) else int(v)) for k, v in zip(row.dtype.names, row)}
           for row in f["rss"][:]] if "rss" in f else []
if len(rss) != np_ranks:
    bad.append(f"{len(rss)} rss rows for {np_ranks} ranks")
for r in rss:
    mark, end = int(r["mark_kib"]), int(r["end_kib"])
    print(f"rss: rank {r['rank']} ({r['role']}): {mark} KiB at request {r['mark_requests']}, "
          f"{end} KiB at the end of {r['requests']}")
    if mark <= 0 or end <= 0:
        bad.append(f"rank {r['rank']} has no RSS sample at request 1000")
    elif end > mark * 1.10:
        bad.append(f"rank {r['rank']} ({r['role']}) grew from {mark} to {end} KiB")
for b in bad:
    print("FAIL:", b)
if not bad:
    print(f"PASS: {n} requests, ids 0..{n-1} once each, all verified, RSS flat on {np_ranks} ranks")
sys.exit(1 if bad else 0)
PY
