#!/usr/bin/env bash
# scripts/plot.sh draws the model-shaped chart from the shipped mixl-bench CSV files:
# the PNG decodes, has content, and uses one colour per memory kind (3 kinds here).
#   plot_case.sh REPO_ROOT PYTHON3
set -uo pipefail
root=$1 py=$2
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot is not installed (scripts/deps.sh installs gnuplot-nox)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
img=$root/docs/img
bash "$root/scripts/plot.sh" -o "$work" "$img/perf-model-host-mpi.csv" "$img/perf-model-host.csv" \
  "$img/perf-model-tcp.csv" || { echo "plot.sh failed" >&2; exit 1; }
[ -s "$work/model.png" ] || { echo "model.png was not written" >&2; exit 1; }
"$py" - "$work/model.png" <<'PY' || exit 1
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.image as mpimg
import numpy as np
img = mpimg.imread(sys.argv[1])
rgb = (img[:, :, :3] * 255).round().astype(int)
# The three series colours of plot.sh's palette (host, host-mpi, host-mpi over TCP).
want = {(0x1b, 0x6c, 0xa8), (0xe0, 0x7b, 0x00), (0x2a, 0x9d, 0x3a)}
present = {tuple(c) for c in np.unique(rgb.reshape(-1, 3), axis=0)}
missing = want - present
if img.shape[0] < 400 or missing:
    sys.exit(f"model.png: shape {img.shape}, colours missing {missing}")
# No fourth palette colour: one colour per memory kind, not per series.
if (0xc0, 0x39, 0x2b) in present:
    sys.exit("model.png uses more colours than memory kinds")
print("plot case: OK")
PY
