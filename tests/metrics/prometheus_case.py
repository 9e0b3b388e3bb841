#!/usr/bin/env python3
"""A real Prometheus scrapes a running mixl-run every second; its stored values
must equal the run's HDF5 summary.

  prometheus_case.py MPIRUN_CMD MIXL_RUN CONFIG [--set key=value ...]

Starts Debian's `prometheus` on a free loopback port with its own data folder
(in its own process group, killed by that group at the end), runs mixl-run
with metrics.port on another free port, and checks:
  - `promtool check metrics` accepts the exposition served during the run;
  - Prometheus stored samples from during the run (mixl_run_finished 0) and
    the final ones (mixl_run_finished 1), and mixl-run saw the final scrape;
  - through Prometheus's HTTP API (curl): requests, bytes, errors and the
    latency histogram's count equal the HDF5 summary exactly, and mixl_info
    names the data path the summary reports.
Exit 77 (skip) only when prometheus, promtool, curl or h5py is missing.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) < 4:
        fail("usage: prometheus_case.py MPIRUN_CMD MIXL_RUN CONFIG [args...]")
    for tool in ("prometheus", "promtool", "curl"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is not installed (scripts/deps.sh installs it)")
            sys.exit(77)
    try:
        import h5py  # noqa: F401
    except ImportError:
        print("SKIP: python3-h5py is not installed (scripts/deps.sh installs it)")
        sys.exit(77)
    import h5py

    mpirun = sys.argv[1].split()
    mixl_run, config, extra = sys.argv[2], sys.argv[3], sys.argv[4:]
    work = tempfile.mkdtemp(prefix="mixl-prom-")
    prom = None
    try:
        mport, pport = free_port(), free_port()
        while pport == mport:
            pport = free_port()
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                "scrape_configs:\n  - job_name: mixl\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{mport}']\n"
            )
        plog = open(os.path.join(work, "prometheus.log"), "w")
        prom = subprocess.Popen(
            ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address=127.0.0.1:{pport}", "--storage.tsdb.retention.time=1h"],
            stdout=plog, stderr=subprocess.STDOUT, start_new_session=True)
        api = f"http://127.0.0.1:{pport}"

        def curl(path, *args):
            r = subprocess.run(["curl", "-sS", "--max-time", "5", *args, api + path],
                               capture_output=True, text=True)
            return r.returncode, r.stdout

        deadline = time.time() + 60
        while curl("/-/ready")[0] != 0:
            if prom.poll() is not None or time.time() > deadline:
                plog.flush()
                print(open(plog.name).read()[-3000:], file=sys.stderr)
                fail("prometheus did not become ready")
            time.sleep(0.2)

        # Prometheus hands new targets to its scrape loops some seconds after it
        # is ready (its discovery updates are throttled to one every 5 s): start
        # the 6 s run only once mixl-run's port is an active target, so that
        # scrapes land during the run and not only in the linger after it.
        deadline = time.time() + 30
        while True:
            rc, body = curl("/api/v1/targets")
            try:
                active = json.loads(body)["data"]["activeTargets"] if rc == 0 else []
            except (ValueError, KeyError, TypeError):
                active = []
            if any(f"127.0.0.1:{mport}" in t.get("scrapeUrl", "") for t in active):
                break
            if time.time() > deadline:
                fail(f"prometheus did not take up the target 127.0.0.1:{mport}: {body[-500:]}")
            time.sleep(0.2)

        out = os.path.join(work, "results.h5")
        cmd = mpirun + ["-np", "4", mixl_run, config, "--set", f"metrics.port={mport}",
                        "--set", "metrics.linger_s=30", "--set", "run.progress=off",
                        "-o", out] + extra
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Mid-run: the exposition is served and promtool accepts it.
        exposition = None
        deadline = time.time() + 60
        while run.poll() is None and time.time() < deadline:
            try:
                r = subprocess.run(["curl", "-sf", "--max-time", "2",
                                    f"http://127.0.0.1:{mport}/metrics"],
                                   capture_output=True, text=True)
            except OSError:
                r = None
            if r is not None and r.returncode == 0 and "mixl_run_finished 0" in r.stdout:
                exposition = r.stdout
                break
            time.sleep(0.1)
        try:
            stdout, stderr = run.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            run.kill()
            fail("mixl-run did not end within 120 s")
        sys.stdout.write(stdout)
        sys.stderr.write(stderr)
        if run.returncode != 0:
            fail(f"mixl-run exited with {run.returncode}")
        if exposition is None:
            fail("no exposition was served while the run went on")
        chk = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                             capture_output=True, text=True)
        if chk.returncode != 0:
            fail("promtool check metrics rejected the exposition:\n" + chk.stdout + chk.stderr)
        if "metrics: the final values were scraped" not in stdout:
            fail("mixl-run did not see the final values scraped")

        def query(expr):
            rc, body = curl("/api/v1/query", "--data-urlencode", f"query={expr}")
            if rc != 0:
                fail(f"query {expr}: curl failed")
            doc = json.loads(body)
            if doc.get("status") != "success":
                fail(f"query {expr}: {body}")
            return doc["data"]["result"]

        # Once mixl-run is gone its series are marked stale: read each one's last stored
        # value. The final scrape is in the TSDB once mixl_run_finished 1 is there.
        def last(metric):
            return f"last_over_time({metric}[10m])"

        deadline = time.time() + 20
        while True:
            res = query(last("mixl_run_finished"))
            if res and float(res[0]["value"][1]) == 1:
                break
            if time.time() > deadline:
                fail(f"Prometheus never stored mixl_run_finished 1: {res}")
            time.sleep(0.5)
        during = query("min_over_time(mixl_run_finished[10m])")
        if not during or float(during[0]["value"][1]) != 0:
            fail("Prometheus stored no sample from during the run; its scrapes (up, duration): "
                 f"{query('up[10m]')} {query('scrape_duration_seconds[10m]')}")
        scrapes = query("count_over_time(mixl_run_finished[10m])")
        print(f"prometheus stored {scrapes[0]['value'][1]} scrapes of mixl-run")

        def scalar(expr):
            res = query(expr)
            if len(res) != 1:
                fail(f"{expr}: expected one series, got {res}")
            return float(res[0]["value"][1])

        with h5py.File(out, "r") as h:
            s = h["summary"].attrs
            want = {
                "requests": int(s["requests"]),
                "errors": int(s["errors"]),
                "bytes": int(s["bytes"]),
                "latency_count": int(s["transfer_latency_us_count"]),
                "ttft_count": int(s["ttft_us_count"]),
            }
            data_path = h.attrs["data_path"]
            if isinstance(data_path, bytes):
                data_path = data_path.decode()
        got = {
            "requests": scalar(f"sum({last('mixl_requests_total')})"),
            "errors": scalar("sum(" + last('mixl_requests_total{status="failed"}') + ")"),
            "bytes": scalar(f"sum({last('mixl_transfer_bytes_total')})"),
            "latency_count": scalar(last("mixl_transfer_latency_seconds_count")),
            "ttft_count": scalar(last("mixl_ttft_seconds_count")),
        }
        errs = query(f"sum({last('mixl_transfer_errors_total')})")
        got_reasons = float(errs[0]["value"][1]) if errs else 0.0
        print("HDF5 summary:", want)
        print("Prometheus:  ", got, "errors by reason:", got_reasons)
        for k, v in want.items():
            if got[k] != v:
                fail(f"{k}: Prometheus has {got[k]}, the HDF5 summary {v}")
        if got_reasons != want["errors"]:
            fail(f"mixl_transfer_errors_total sums to {got_reasons}, summary errors {want['errors']}")
        if want["requests"] == 0 or want["bytes"] == 0:
            fail("the run moved nothing")
        # Registry operations of the 3 workers: each publishes once and fetches the other two.
        for op, want_ops in (("publish", 3), ("fetch", 6)):
            got_ops = scalar(last(f'mixl_registry_operation_seconds_count{{op="{op}"}}'))
            if got_ops != want_ops:
                fail(f"registry {op} operations: {got_ops}, expected {want_ops}")
        info = query(last("mixl_info"))
        if len(info) != 1 or info[0]["metric"].get("data_path") != data_path:
            fail(f"mixl_info does not name the run's data path: {info}")
        print("prometheus case: OK")
    finally:
        if prom is not None and prom.poll() is None:
            os.killpg(prom.pid, signal.SIGTERM)
            try:
                prom.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(prom.pid, signal.SIGKILL)
                prom.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
