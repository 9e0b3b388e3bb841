#!/usr/bin/env python3
"""mixl-report draws every chart for a run and a sweep, side by side.

  report_case.py MPIRUN_CMD MIXL_RUN CONFIG MIXL_REPORT SWEEP.h5

Runs one plain job (32 requests), then mixl-report over the sweep file of
results.sweep and the plain file. Each chart must exist and decode as a PNG
with content, and the data file it was drawn from (<chart>.csv) must hold
the expected series: one per run and sweep point (4), with one CDF point per
delivered request, the sweep metric at each swept value; summary.md must list
every run and link every chart.
"""
import csv
import os
import subprocess
import sys
import tempfile

PLAIN = 32


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.image as mpimg
        import numpy as np
    except ImportError:
        print("SKIP: python3-matplotlib is not installed (scripts/deps.sh installs it)")
        sys.exit(77)
    mpirun = sys.argv[1].split()
    mixl_run, config, report, sweep = sys.argv[2:6]
    if not os.path.exists(sweep):
        fail(f"{sweep} is missing (results.sweep makes it)")
    work = tempfile.mkdtemp(prefix="mixl-report-")
    plain = os.path.join(work, "plain.h5")
    r = subprocess.run(mpirun + ["-np", "4", mixl_run, config, "-o", plain,
                                 "--set", f"workload.requests={PLAIN}", "--set", "run.progress=off"],
                       capture_output=True, text=True, timeout=200)
    if r.returncode != 0:
        sys.stdout.write(r.stdout + r.stderr)
        fail(f"mixl-run exited with {r.returncode}")
    out = os.path.join(work, "report")
    r = subprocess.run([sys.executable, report, sweep, plain, "-o", out], capture_output=True,
                       text=True, timeout=120)
    sys.stdout.write(r.stdout + r.stderr)
    if r.returncode != 0:
        fail(f"mixl-report exited with {r.returncode}")

    labels = {"sweep rate=200, mode=push, max=256", "sweep rate=400, mode=pull, max=512",
              "sweep rate=800, mode=push, max=384", "plain"}
    charts = ["ttft_cdf", "latency_cdf", "hidden_cdf", "bandwidth", "timeline",
              "sweep_ttft", "sweep_latency", "sweep_bandwidth"]
    for c in charts:
        png = os.path.join(out, c + ".png")
        if not os.path.exists(png):
            fail(f"{c}.png was not written")
        img = mpimg.imread(png)
        if img.ndim != 3 or img.shape[0] < 200 or img.shape[1] < 300:
            fail(f"{c}.png has shape {img.shape}")
        colours = len(np.unique(img.reshape(-1, img.shape[2]), axis=0))
        if colours < 10:
            fail(f"{c}.png is nearly blank ({colours} colours)")
        with open(os.path.join(out, c + ".csv")) as f:
            rows = list(csv.DictReader(f))
        series = {}
        for row in rows:
            series.setdefault(row["series"], []).append(row)
        if c.endswith("_cdf"):
            if set(series) != labels:
                fail(f"{c}: series {sorted(series)}")
            for s, pts in series.items():
                want = PLAIN if s == "plain" else 24
                if len(pts) != want:
                    fail(f"{c}: series {s} has {len(pts)} points, expected {want}")
                ys = [float(p["y"]) for p in pts]
                if ys != sorted(ys) or abs(ys[-1] - 1.0) > 1e-9:
                    fail(f"{c}: series {s} is not a CDF ending at 1")
        elif c == "bandwidth":
            if set(series) != labels or any(len(p) < 5 for p in series.values()):
                fail(f"{c}: series {sorted(series)}")
        elif c == "timeline":
            phases = {s.split("/")[-1] for s in series}
            runs = {s.rsplit("/", 1)[0] for s in series}
            if runs != labels or not {"queue", "prefill", "transfer", "first_token"} <= phases:
                fail(f"{c}: runs {sorted(runs)}, phases {sorted(phases)}")
        else:  # a sweep chart: one line per value of the other swept key
            xs = sorted(float(p["x"]) for pts in series.values() for p in pts)
            if xs != [200.0, 400.0, 800.0]:
                fail(f"{c}: x values {xs}, expected the swept rates")
            if any(p["y"] in ("nan", "") for pts in series.values() for p in pts):
                fail(f"{c}: a point has no value")
    md = open(os.path.join(out, "summary.md")).read()
    for lab in labels:
        if f"| {lab} |" not in md:
            fail(f"summary.md has no row for {lab}")
    for c in charts:
        if f"]({c}.png)" not in md:
            fail(f"summary.md does not link {c}.png")
    print(f"report case: OK ({len(charts)} charts)")
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
