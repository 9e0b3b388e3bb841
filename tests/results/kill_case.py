#!/usr/bin/env python3
"""SIGKILL of a whole mixl-run job mid-run leaves a readable, partial results file.

  kill_case.py MPIRUN_CMD MIXL_RUN CONFIG [mixl-run args...]

Runs a 4-rank job that writes its results incrementally (flushed every
200 ms), waits until the progress line reports a few hundred requests done,
then SIGKILLs mpirun and every process under it (by PID). Checks that no
process of the job survives, that `h5dump` reads the file and shows
finished = 0, and that the rows present are completed requests: unique ids,
status 0, no failure reason, the bytes their prompt implies, at least as many
as were done well before the kill, fewer than the run's total.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOTAL = 4000


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def descendants(pid):
    """Every process under pid, from /proc (children first found, then theirs)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def main():
    try:
        import h5py
    except ImportError:
        print("SKIP: python3-h5py is not installed (scripts/deps.sh installs it)")
        sys.exit(77)
    mpirun = sys.argv[1].split()
    mixl_run, config, extra = sys.argv[2], sys.argv[3], sys.argv[4:]
    work = tempfile.mkdtemp(prefix="mixl-kill-")
    atexit.register(shutil.rmtree, work, True)
    # Killed ranks never unlink their shared-memory segments (Open MPI's vader, UCX's posix
    # transport): put them in the work directory, which goes whatever the outcome.
    env = dict(os.environ, OMPI_MCA_btl_vader_backing_directory=work, UCX_POSIX_DIR=work)
    out = os.path.join(work, "partial.h5")
    cmd = mpirun + ["-np", "4", mixl_run, config, "-o", out,
                    "--set", f"workload.requests={TOTAL}", "--set", "workload.arrival=fixed",
                    "--set", "workload.rate=400", "--set", "run.flush_interval_ms=200",
                    "--set", "run.flush_requests=100000", "--set", "run.progress=plain",
                    "--set", "run.progress_interval_ms=100"] + extra
    job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True, env=env)
    done = [0]
    log = []

    def reader():
        for line in job.stdout:
            log.append(line)
            m = re.search(r"\[(\d+)/(\d+)\] done", line)
            if m:
                done[0] = int(m.group(1))

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.time() + 90
    while done[0] < 300:
        if job.poll() is not None:
            sys.stdout.write("".join(log))
            fail(f"mixl-run ended (status {job.returncode}) before it could be killed")
        if time.time() > deadline:
            job.kill()
            fail("fewer than 300 requests done after 90 s")
        time.sleep(0.05)
    # Requests done by now were flushed long before the kill (interval 200 ms).
    flushed_by = done[0]
    time.sleep(0.8)
    pids = [job.pid] + descendants(job.pid)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    job.wait()
    t.join(timeout=5)
    time.sleep(0.3)
    alive = [p for p in pids if os.path.exists(f"/proc/{p}") and
             open(f"/proc/{p}/stat").read().split()[2] != "Z"]
    if alive:
        fail(f"processes of the job survived SIGKILL: {alive}")
    print(f"killed the job ({len(pids)} processes) with {done[0]} of {TOTAL} requests done, "
          f"{flushed_by} of them at least 0.8 s earlier")

    if not os.path.exists(out):
        fail("no results file after the kill")
    r = subprocess.run(["h5dump", "-a", "/finished", out], capture_output=True, text=True)
    if r.returncode != 0:
        fail("h5dump cannot read the partial file:\n" + r.stdout + r.stderr)
    m = re.search(r"DATA\s*\{\s*\(0\):\s*(\d+)", r.stdout)
    if m is None or int(m.group(1)) != 0:
        fail("attribute finished is not 0:\n" + r.stdout)
    r = subprocess.run(["h5dump", "-d", "/requests/id", "-H", out], capture_output=True, text=True)
    m = re.search(r"DATASPACE\s+SIMPLE\s*\{\s*\(\s*(\d+)\s*\)", r.stdout)
    if r.returncode != 0 or m is None:
        fail("h5dump cannot read /requests/id:\n" + r.stdout + r.stderr)
    rows = int(m.group(1))

    with h5py.File(out, "r") as h:
        q = h["requests"]
        ids = q["id"][:]
        status = q["status"][:]
        reason = q["failure_reason"][:]
        prompt = q["prompt_tokens"][:]
        nbytes = q["bytes"][:]
        bpt = int(h.attrs["kv_bytes_per_token"])
        written = int(h.attrs["requests_written"])
        has_summary = "summary" in h
    print(f"partial file: {rows} rows, requests_written {written}")
    if rows != written or len(ids) != rows:
        fail(f"rows {rows} != requests_written {written}")
    if rows < flushed_by:
        fail(f"only {rows} rows, but {flushed_by} requests were done 0.8 s before the kill")
    if rows >= TOTAL:
        fail("the file holds every request: the job was not killed mid-run")
    if len(set(ids.tolist())) != rows or ids.max() >= TOTAL:
        fail("request ids are not unique or out of range")
    if (status != 0).any() or any(x not in (b"", "") for x in reason):
        fail("a row of a completed request shows a failure")
    if ((prompt * bpt) != nbytes).any():
        fail("a row's bytes differ from prompt_tokens x kv_bytes_per_token")
    if has_summary:
        fail("a killed run has a /summary group")
    print("kill case: OK")


if __name__ == "__main__":
    main()
