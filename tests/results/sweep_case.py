#!/usr/bin/env python3
"""Sweeps in one MPI job: one group per point with its parameters, the set-up
reused where the point allows it and made afresh where it does not.

  sweep_case.py MPIRUN_CMD MIXL_RUN BASE_CONFIG OUT.h5

First job, 3 points: the sweep comes from both places at once, a YAML `sweep:`
section (mode zip, workload.rate) and --sweep arguments (transfer.mode, and
the longest prompt, which grows at point 1); no key shapes the set-up, so
points 1 and 2 run on the agents, windows and memory of point 0
(setup_reused = 1, agents_created stays at one per rank). Checks: one group per point, /point_0../point_2, each with its
parameters as attributes, the parameters really applied (the group's
transfer_mode and stored config), every request of every point delivered
with every block verified, the file finished.

Second job, 2 points over model.block_size (a layout key): the second point
sets up afresh (setup_reused = 0, setup_change names the key, agents_created
grows by one per rank), every block verified.
"""
import os
import subprocess
import sys

RATES = ["200", "400", "800"]
MODES = ["push", "pull", "push"]
PROMPT_MAX = ["256", "512", "384"]
BLOCKS = ["16", "8"]
REQUESTS = 24
LAYOUT_REQUESTS = 12
RANKS = 4


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def check_requests(g, where, requests=REQUESTS):
    q = g["requests"]
    if len(q["id"]) != requests or sorted(q["id"][:].tolist()) != list(range(requests)):
        fail(f"{where}: request ids wrong")
    if (q["status"][:] != 0).any():
        fail(f"{where}: a request failed")
    if (q["bad_blocks"][:] != 0).any() or (q["blocks"][:] == 0).any():
        fail(f"{where}: blocks missing or not verified")
    s = g["summary"].attrs
    if int(s["requests"]) != requests or int(s["errors"]) != 0:
        fail(f"{where}: summary wrong")
    conf = text(g.attrs["config"])
    if "verify: true" not in conf:
        fail(f"{where}: decode.verify is not on, blocks were not checked")
    # Every rank's resident memory, one row per rank.
    rss = g["rss"][:]
    if [int(x) for x in rss["rank"]] != list(range(RANKS)) or (rss["end_kib"] <= 0).any():
        fail(f"{where}: /rss rows {rss}")
    if [text(x) for x in rss["role"]] != ["router", "prefill", "decode", "decode"]:
        fail(f"{where}: /rss roles {rss['role']}")


def run(mpirun, mixl_run, cfg, out, extra, requests=REQUESTS):
    if os.path.exists(out):
        os.remove(out)
    cmd = mpirun + ["-np", str(RANKS), mixl_run, cfg] + extra + [
        "--set", f"workload.requests={requests}", "--set", "workload.arrival=fixed", "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        fail(f"mixl-run exited with {r.returncode}")
    # run.progress auto: stdout is a pipe here (though each rank writes into mpirun's pty),
    # so no progress line at all.
    # (text mode turns the carriage return of an in-place line into a newline)
    if "\x1b[K" in r.stdout or any(line.startswith("[") for line in r.stdout.splitlines()):
        fail("a progress line although stdout is not a terminal")
    # Resident memory: one summary line per point, no line per rank.
    if r.stdout.count("\nrss (KiB after 1000 requests / at the end): rank 0 router") != \
            r.stdout.count("== sweep point") or "\nrss: rank=" in r.stdout:
        fail("not one rss summary line per point")
    return r


def check_layout_sweep(h5py, mpirun, mixl_run, base, out):
    """A layout key: every point sets up afresh."""
    r = run(mpirun, mixl_run, base, out, ["--sweep", "model.block_size=" + ",".join(BLOCKS)],
            LAYOUT_REQUESTS)
    for i, b in enumerate(BLOCKS[1:], 1):
        line = f"set-up: new: model.block_size changed (agents created in the job: {RANKS * (i + 1)})"
        if line not in r.stdout:
            fail(f"missing line: {line}")
    with h5py.File(out, "r") as h:
        for i, b in enumerate(BLOCKS):
            g = h[f"point_{i}"]
            a = g.attrs
            if int(a["block_size"]) != int(b):
                fail(f"layout point_{i}: block size {a['block_size']}, not {b}")
            if int(a["setup_reused"]) != 0:
                fail(f"layout point_{i}: reused a set-up made for another block size")
            want_change = "" if i == 0 else "model.block_size"
            if text(a["setup_change"]) != want_change:
                fail(f"layout point_{i}: setup_change {text(a['setup_change'])!r}")
            if int(a["agents_created"]) != RANKS * (i + 1):
                fail(f"layout point_{i}: {int(a['agents_created'])} agents created, "
                     f"expected {RANKS * (i + 1)}")
            check_requests(g, f"layout point_{i}", LAYOUT_REQUESTS)


def main():
    try:
        import h5py
    except ImportError:
        print("SKIP: python3-h5py is not installed (scripts/deps.sh installs it)")
        sys.exit(77)
    mpirun = sys.argv[1].split()
    mixl_run, base, out = sys.argv[2], sys.argv[3], sys.argv[4]
    cfg = out + ".yaml"
    with open(base) as f:
        body = f.read()
    with open(cfg, "w") as f:
        f.write(body + "\nsweep:\n  mode: zip\n  workload.rate: [" + ", ".join(RATES) + "]\n")
    r = run(mpirun, mixl_run, cfg, out, ["--sweep", "transfer.mode=" + ",".join(MODES),
                                         "--sweep", "workload.prompt.max=" + ",".join(PROMPT_MAX)])
    for i, (rate, mode, pmax) in enumerate(zip(RATES, MODES, PROMPT_MAX)):
        line = (f"== sweep point {i + 1}/3: workload.rate={rate} transfer.mode={mode} "
                f"workload.prompt.max={pmax}")
        if line not in r.stdout:
            fail(f"missing line: {line}")
    with h5py.File(out, "r") as h:
        groups = sorted(k for k in h.keys() if k.startswith("point_"))
        if groups != ["point_0", "point_1", "point_2"]:
            fail(f"groups {groups}, expected point_0..point_2")
        if text(h.attrs["sweep_keys"]) != "workload.rate,transfer.mode,workload.prompt.max":
            fail(f"sweep_keys {h.attrs['sweep_keys']}")
        if text(h.attrs["sweep_mode"]) != "zip" or int(h.attrs["sweep_points"]) != 3:
            fail("sweep_mode/sweep_points wrong")
        if int(h.attrs["finished"]) != 1:
            fail("the sweep file does not say finished")
        for i, (rate, mode, pmax) in enumerate(zip(RATES, MODES, PROMPT_MAX)):
            g = h[f"point_{i}"]
            a = g.attrs
            if (text(a["workload.rate"]) != rate or text(a["transfer.mode"]) != mode
                    or text(a["workload.prompt.max"]) != pmax):
                fail(f"point_{i}: parameters {dict(a)}")
            if int(a["sweep_point"]) != i or int(a["finished"]) != 1:
                fail(f"point_{i}: sweep_point/finished wrong")
            if text(a["transfer_mode"]) != mode:
                fail(f"point_{i}: ran in {text(a['transfer_mode'])} mode, not {mode}")
            conf = text(a["config"])
            want = f"rate: {float(rate):g}"
            if want not in conf and f"rate: {rate}" not in conf:
                fail(f"point_{i}: stored config does not have {want}")
            if int(g["requests"]["prompt_tokens"][:].max()) > int(pmax):
                fail(f"point_{i}: a prompt longer than workload.prompt.max={pmax}")
            # Rate, push/pull and prompt lengths shape no set-up: one agent per rank for the job.
            if int(a["setup_reused"]) != (i > 0) or text(a["setup_change"]) != "":
                fail(f"point_{i}: setup_reused {int(a['setup_reused'])}, "
                     f"setup_change {text(a['setup_change'])!r}")
            if int(a["agents_created"]) != RANKS:
                fail(f"point_{i}: {int(a['agents_created'])} agents created, expected {RANKS}")
            check_requests(g, f"point_{i}")
    if r.stdout.count("set-up: reused from the previous point (agents created in the job: 4)") != 2:
        fail("the summary does not say twice that the set-up was reused")
    check_layout_sweep(h5py, mpirun, mixl_run, base, out + ".layout.h5")
    print("sweep case: OK")


if __name__ == "__main__":
    main()
