#!/usr/bin/python3
"""Tables (Markdown, on stdout) and charts from the files perf.sh wrote.
  perf_report.py OUT_DIR IMG_DIR
Charts: IMG_DIR/cluster-link.png (mixl-bench across nodes per link rate) and
IMG_DIR/cluster-startup.png (mixl-run start-up against ranks), when their data exist."""
import glob
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out, img = sys.argv[1], sys.argv[2]
RATE_GBIT = {"none": None, "10gbit": 10.0, "4gbit": 4.0, "1gbit": 1.0}
ORDER = ["none", "10gbit", "4gbit", "1gbit"]

# Load average (1 min) at the start of each step, keyed "rate step".
loads = {}
for line in open(os.path.join(out, "load.txt")):
    f = line.split()
    if len(f) >= 5 and f[1] != "end":
        loads[(f[0], f[1])] = f[3]


def rate_key(r):
    return ORDER.index(r) if r in ORDER else len(ORDER)


def mib(n):
    return "%d MiB" % (n >> 20) if n >= 1 << 20 else "%d KiB" % (n >> 10)


# mixl-bench rows per rate: (mode, backend) -> size -> GB/s.
bench = {}
for path in glob.glob(os.path.join(out, "bench-*.json")):
    rate = os.path.basename(path)[6:-5]
    rows = {}
    for r in json.load(open(path))["results"]:
        if r["note"] == "" and r["op"] == "WRITE":
            rows.setdefault((r["mode"], r["backend"]), {})[r["size"]] = r["gbps"]
    bench[rate] = rows
SERIES = [("socket", "tcp", "raw socket loop"), ("mixl", "tcp", "MIXL TCP (auto's path)"),
          ("mpi", "win-allocate", "raw MPI_Put+flush"), ("mixl", "mpi", "MIXL MPI")]
if bench:
    print("| link | load | size | raw socket GB/s | MIXL TCP GB/s | TCP / socket | raw MPI GB/s | "
          "MIXL MPI GB/s | MIXL MPI / raw MPI |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in sorted(bench, key=rate_key):
        rows = bench[rate]
        for size in sorted(rows.get(("socket", "tcp"), {})):
            g = [rows.get((m, b), {}).get(size, 0.0) for m, b, _ in SERIES]
            print("| %s | %s | %s | %.3f | %.3f | %.2fx | %.3f | %.3f | %.2fx |" % (
                rate, loads.get((rate, "bench"), "-"), mib(size), g[0], g[1], g[1] / g[0] if g[0] else 0,
                g[2], g[3], g[3] / g[2] if g[2] else 0))
    print()

# mixl-run Llama-3-8B-shaped across nodes.
runs = []
for path in glob.glob(os.path.join(out, "run-*.log")):
    m = re.match(r"run-(.*)-(auto|mpi)\.log", os.path.basename(path))
    text = open(path).read()
    moved = re.search(r"moved .* in ([0-9.]+) s wall, ([0-9.]+) Gbps overall", text)
    ok = re.search(r"verified (\d+), errors 0", text)
    choice = re.search(r"^data path choice: (.*)$", text, re.M)
    bw = re.search(r"^bandwidth +Gbps +\d+ +([0-9.]+)", text, re.M)
    runs.append((m.group(1), m.group(2), moved, ok, choice, bw))
if runs:
    print("| link | path | load | verified | wall s | overall Gbit/s | x raw socket loop (16 MiB) | "
          "x shaped rate | mean per-request Gbit/s | choice |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rate, path, moved, ok, choice, bw in sorted(runs, key=lambda r: (rate_key(r[0]), r[1])):
        if moved is None:
            print("| %s | %s | %s | failed | - | - | - | - | - | - |" % (
                rate, path, loads.get((rate, "run-" + path), "-")))
            continue
        gbit = float(moved.group(2))
        sock = bench.get(rate, {}).get(("socket", "tcp"), {}).get(16 << 20, 0.0) * 8
        shaped = RATE_GBIT.get(rate)
        print("| %s | %s | %s | %s | %s | %.3f | %s | %s | %s | %s |" % (
            rate, path, loads.get((rate, "run-" + path), "-"), ok.group(1) if ok else "NO",
            moved.group(1), gbit, "%.2fx" % (gbit / sock) if sock else "-",
            "%.2fx" % (gbit / shaped) if shaped else "-", bw.group(1) if bw else "-",
            choice.group(1).split(";")[0][:60] if choice else "-"))
    print()

# Start-up against ranks.
starts = []
for path in glob.glob(os.path.join(out, "startup-*.log")):
    np_ = int(re.search(r"startup-(\d+)\.log", path).group(1))
    m = re.search(r"start-up: ([0-9.]+) ms on the slowest of (\d+) ranks \(agent create ([0-9.]+) ms, "
                  r"register \+ start ([0-9.]+) ms, metadata publish \+ import of every peer ([0-9.]+) ms",
                  open(path).read())
    if m:
        starts.append((np_, float(m.group(1)), loads.get(("startup", str(np_)), "-"),
                       [float(m.group(i)) for i in (3, 4, 5)]))
starts.sort()
PHASES = ["agent create", "register + start", "publish + imports"]
if starts:
    print("| ranks | start-up ms (slowest rank) | agent create | register + start | publish + imports | load |")
    print("|---|---|---|---|---|---|")
    for np_, ms, ld, ph in starts:
        print("| %d | %.0f | %.0f | %.0f | %.0f | %s |" % (np_, ms, ph[0], ph[1], ph[2], ld))
    print()

os.makedirs(img, exist_ok=True)
if bench:
    rates = sorted(bench, key=rate_key)
    sizes = [1 << 20, 4 << 20, 16 << 20]
    fig, axes = plt.subplots(1, len(rates), figsize=(3.2 * len(rates), 3.6), sharey=False)
    if len(rates) == 1:
        axes = [axes]
    for ax, rate in zip(axes, rates):
        width = 0.2
        for i, (m, b, label) in enumerate(SERIES):
            vals = [bench[rate].get((m, b), {}).get(s, 0.0) for s in sizes]
            ax.bar([x + (i - 1.5) * width for x in range(len(sizes))], vals, width, label=label)
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([mib(s) for s in sizes])
        ax.set_title("link %s (load %s)" % (rate, loads.get((rate, "bench"), "?")), fontsize=9)
        ax.set_ylabel("GB/s, WRITE n1 -> n2")
    axes[0].legend(fontsize=7)
    fig.suptitle("mixl-bench across emulated nodes (one 2-core machine; 1-minute load per link)", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "cluster-link.png"), dpi=110)
if starts:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot([s[0] for s in starts], [s[1] for s in starts], "o-", label="total")
    for i, name in enumerate(PHASES):
        ax.plot([s[0] for s in starts], [s[3][i] for s in starts], ".--", label=name)
    ax.legend(fontsize=7)
    for np_, ms, ld, _ in starts:
        ax.annotate("load %s" % ld, (np_, ms), fontsize=7, textcoords="offset points", xytext=(4, -10))
    ax.set_xscale("log", base=2)
    ax.set_xticks([s[0] for s in starts])
    ax.set_xticklabels([str(s[0]) for s in starts])
    ax.set_xlabel("ranks over head, n1, n2, n3")
    ax.set_ylabel("start-up ms (slowest rank)")
    ax.set_title("mixl-run start-up: create + start + publish + imports", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(img, "cluster-startup.png"), dpi=110)
