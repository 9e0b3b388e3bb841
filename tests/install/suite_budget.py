#!/usr/bin/python3
"""The suite's worst case under `ctest -j2`, from `ctest --show-only=json-v1`:
every test running into its TIMEOUT on two slots (a test declaring 2 or more
PROCESSORS holds both) must end within 60 minutes;
every test has a TIMEOUT; a test whose command starts `mpirun ... -np N` declares
at least N PROCESSORS (so -j2 never runs two multi-rank jobs at once).
  suite_budget.py <build-dir> [timeout-scale]
With a timeout scale (MIXL_TEST_TIMEOUT_SCALE, 3 in the sanitizer build) the limit is 60
minutes times the scale."""
import collections
import json
import subprocess
import sys

build = sys.argv[1]
limit_min = 60.0 * (float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
out = subprocess.run(["ctest", "--show-only=json-v1"], cwd=build, capture_output=True, text=True,
                     check=True).stdout
tests = json.loads(out)["tests"]
total, by_area, problems = 0.0, collections.Counter(), []
for t in tests:
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    name, cmd = t["name"], t.get("command", [])
    if "TIMEOUT" not in props:
        problems.append(f"{name}: no TIMEOUT")
        continue
    # Slot-seconds: a multi-rank test keeps both slots of -j2 busy.
    cost = float(props["TIMEOUT"]) * min(int(props.get("PROCESSORS", 1)), 2)
    total += cost
    by_area[name.split(".")[0]] += cost
    if "-np" in cmd:
        np = int(cmd[cmd.index("-np") + 1])
        if int(props.get("PROCESSORS", 1)) < np:
            problems.append(f"{name}: runs {np} ranks but declares PROCESSORS {props.get('PROCESSORS', 1)}")
worst_min = total / 2 / 60
print(f"{len(tests)} tests, timeouts add up to {total:.0f} slot-seconds: worst case under -j2 {worst_min:.1f} min "
      f"(limit {limit_min:.0f})")
for area, s in by_area.most_common():
    print(f"  {area:10s} {s:6.0f} s")
if worst_min >= limit_min:
    problems.append(f"worst case {worst_min:.1f} min is not under {limit_min:.0f} min")
for p in problems:
    print("FAIL:", p)
sys.exit(1 if problems else 0)
