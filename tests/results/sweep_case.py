#!/usr/bin/env python3
"""A 3-point sweep in one MPI job: three groups with their parameters.

  sweep_case.py MPIRUN_CMD MIXL_RUN BASE_CONFIG OUT.h5

The sweep comes from both places at once: a YAML `sweep:` section (mode zip,
workload.rate) and a --sweep argument (transfer.mode). Checks: one group per
point, /point_0../point_2, each with its parameters as attributes, the
parameters really applied (the group's transfer_mode and stored config), every
request of every point verified, the file finished.
"""
import os
import subprocess
import sys

RATES = ["200", "400", "800"]
MODES = ["push", "pull", "push"]
REQUESTS = 24


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


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
    if os.path.exists(out):
        os.remove(out)
    cmd = mpirun + ["-np", "4", mixl_run, cfg, "--sweep", "transfer.mode=" + ",".join(MODES),
                    "--set", f"workload.requests={REQUESTS}", "--set", "workload.arrival=fixed",
                    "--set", "run.progress=off", "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        fail(f"mixl-run exited with {r.returncode}")
    for i, (rate, mode) in enumerate(zip(RATES, MODES)):
        line = f"== sweep point {i + 1}/3: workload.rate={rate} transfer.mode={mode}"
        if line not in r.stdout:
            fail(f"missing line: {line}")
    with h5py.File(out, "r") as h:
        groups = sorted(k for k in h.keys() if k.startswith("point_"))
        if groups != ["point_0", "point_1", "point_2"]:
            fail(f"groups {groups}, expected point_0..point_2")
        if text(h.attrs["sweep_keys"]) != "workload.rate,transfer.mode":
            fail(f"sweep_keys {h.attrs['sweep_keys']}")
        if text(h.attrs["sweep_mode"]) != "zip" or int(h.attrs["sweep_points"]) != 3:
            fail("sweep_mode/sweep_points wrong")
        if int(h.attrs["finished"]) != 1:
            fail("the sweep file does not say finished")
        for i, (rate, mode) in enumerate(zip(RATES, MODES)):
            g = h[f"point_{i}"]
            a = g.attrs
            if text(a["workload.rate"]) != rate or text(a["transfer.mode"]) != mode:
                fail(f"point_{i}: parameters {dict(a)}")
            if int(a["sweep_point"]) != i or int(a["finished"]) != 1:
                fail(f"point_{i}: sweep_point/finished wrong")
            if text(a["transfer_mode"]) != mode:
                fail(f"point_{i}: ran in {text(a['transfer_mode'])} mode, not {mode}")
            conf = text(a["config"])
            want = f"rate: {float(rate):g}"
            if want not in conf and f"rate: {rate}" not in conf:
                fail(f"point_{i}: stored config does not have {want}")
            q = g["requests"]
            if len(q["id"]) != REQUESTS or sorted(q["id"][:].tolist()) != list(range(REQUESTS)):
                fail(f"point_{i}: request ids wrong")
            if (q["status"][:] != 0).any():
                fail(f"point_{i}: a request failed")
            s = g["summary"].attrs
            if int(s["requests"]) != REQUESTS or int(s["errors"]) != 0:
                fail(f"point_{i}: summary wrong")
    print("sweep case: OK")


if __name__ == "__main__":
    main()
