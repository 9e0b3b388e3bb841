#!/usr/bin/python3
"""Check the results file and the summary of a mixl-run with an injected fault.
  check_faults.py RESULTS.h5 STDOUT N [--reasons R1,R2] [--at-least R:COUNT]...
                  [--request ID:REASON]... [--dead ROLE:INST]
Always: the file is finished, holds N rows with ids 0..N-1 once each, the summary's
verified + errors = N with errors equal to the failed rows (done + failed = submitted).
--reasons: every failed row has one of these reasons (- for none but the --request ones).  --at-least: at least COUNT rows
failed with R.  --request: request ID failed with REASON (and, when every --request names
all the expected failures, --reasons - forbids any other).  --dead ROLE:INST: every row
on that prefill/decode instance that was not delivered failed, and no row on another
instance failed."""
import re
import sys

try:
    import h5py
except ImportError:
    print("SKIP: python3-h5py is not installed (scripts/deps.sh installs it)")
    sys.exit(77)

path, stdout, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
args = sys.argv[4:]
reasons, at_least, requests, dead = None, [], {}, None
while args:
    opt, val = args[0], args[1]
    args = args[2:]
    if opt == "--reasons":
        reasons = set(val.split(",")) if val != "-" else set()
    elif opt == "--at-least":
        r, c = val.split(":")
        at_least.append((r, int(c)))
    elif opt == "--request":
        i, r = val.split(":")
        requests[int(i)] = r
    elif opt == "--dead":
        role, inst = val.split(":")
        dead = (role, int(inst))
    else:
        sys.exit(f"unknown option {opt}")

bad = []
with h5py.File(path, "r") as f:
    if int(f.attrs.get("finished", 0)) != 1:
        bad.append("the file's finished attribute is not 1")
    q = f["requests"]
    ids = [int(x) for x in q["id"][:]]
    why = [x.decode() if isinstance(x, bytes) else str(x) for x in q["failure_reason"][:]]
    status = [int(x) for x in q["status"][:]]
    inst = {"prefill": [int(x) for x in q["prefill_instance"][:]],
            "decode": [int(x) for x in q["decode_instance"][:]]}
if sorted(ids) != list(range(n)):
    bad.append(f"ids are not 0..{n - 1} once each ({len(ids)} rows)")
row = {i: k for k, i in enumerate(ids)}
failed = [k for k in range(len(ids)) if why[k] != ""]
for k in range(len(ids)):
    if (why[k] == "") != (status[k] == 0):
        bad.append(f"request {ids[k]}: status {status[k]} but failure_reason '{why[k]}'")
if reasons is not None:
    allowed = reasons | set(requests.values())
    for k in failed:
        if why[k] not in allowed:
            bad.append(f"request {ids[k]} failed with '{why[k]}', expected one of {sorted(allowed)}")
for r, c in at_least:
    got = sum(1 for k in failed if why[k] == r)
    if got < c:
        bad.append(f"{got} requests failed with '{r}', expected at least {c}")
for i, r in requests.items():
    if i in row and why[row[i]] != r:
        bad.append(f"request {i} ended with '{why[row[i]]}', expected '{r}'")
if dead is not None:
    role, d = dead
    for k in range(len(ids)):
        if inst[role][k] != d and inst[role][k] >= 0 and why[k] != "":
            bad.append(f"request {ids[k]} on {role} instance {inst[role][k]} (alive) failed: {why[k]}")
        if why[k] == "disconnected" and inst[role][k] != d:
            bad.append(f"request {ids[k]} failed as disconnected but ran on {role} instance {inst[role][k]}")
text = open(stdout).read()
m = re.search(r"requests: (\d+), verified (\d+), errors (\d+)", text)
if not m:
    bad.append("no summary line 'requests: N, verified V, errors E'")
else:
    sub, ok, err = map(int, m.groups())
    if sub != n or ok + err != n or err != len(failed):
        bad.append(f"summary says {sub} submitted, {ok} verified, {err} errors; the file has "
                   f"{n - len(failed)} delivered and {len(failed)} failed of {n}")
for b in bad:
    print("FAIL:", b)
print(f"{len(ids)} requests, {len(failed)} failed:",
      ", ".join(f"{r} {sum(1 for k in failed if why[k] == r)}" for r in sorted({why[k] for k in failed})))
sys.exit(1 if bad else 0)
