#!/usr/bin/python3
"""check_results refuses what it must refuse: synthetic results files (h5py) with one
defect each -- a request id twice, an id out of range, a prompt length that differs from
the lengths file, bytes that differ from the model's geometry, the wrong request failed,
a KV stream that does not span the requests' first and last bytes --
must each fail with the message naming it, and the clean file must pass.
  check_results_self.py <check_results>"""
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: python3-h5py/numpy not installed ({e})")
    sys.exit(77)

CHECK = sys.argv[1]
N, BPT = 4, 4096
LENGTHS = [64, 300, 17, 512]
U64 = ["id", "prompt_tokens", "output_tokens", "blocks", "block_runs", "bytes", "rma_ops",
       "transfers", "bad_blocks"]
F64 = ["arrival_us", "alloc_us", "prefill_start_us", "prefill_end_us", "first_byte_us",
       "last_byte_us", "notify_us", "first_token_us", "decode_end_us", "ttft_us", "queue_us",
       "transfer_latency_us", "transfer_span_us", "bandwidth_gbps", "hidden_share"]


def write(path, ids=None, prompt=None, status=None, bad=None, errors=0, stream_s=70e-6,
          first=(10.0, 20.0, 30.0, 40.0)):
    ids = list(range(N)) if ids is None else ids
    prompt = [LENGTHS[i] for i in ids] if prompt is None else prompt
    with h5py.File(path, "w") as f:
        for name in U64:
            f[f"requests/{name}"] = np.ones(N, dtype=np.uint64)
        for name in F64:
            f[f"requests/{name}"] = np.ones(N, dtype=np.float64)
        del f["requests/id"], f["requests/prompt_tokens"], f["requests/bytes"], f["requests/bad_blocks"]
        f["requests/id"] = np.array(ids, dtype=np.uint64)
        f["requests/prompt_tokens"] = np.array(prompt, dtype=np.uint64)
        f["requests/bytes"] = np.array([p * BPT for p in prompt], dtype=np.uint64)
        f["requests/bad_blocks"] = np.array(bad or [0] * N, dtype=np.uint64)
        f["requests/status"] = np.array(status or [0] * N, dtype=np.int32)
        del f["requests/first_byte_us"], f["requests/last_byte_us"]
        f["requests/first_byte_us"] = np.array(first)
        f["requests/last_byte_us"] = np.array([50.0, 60.0, 70.0, 80.0])
        f["histograms/ttft_us"] = np.zeros(4)
        f.attrs["kv_bytes_per_token"] = np.uint64(BPT)
        for a in ["mixl_version", "mpi_library_version", "hdf5_version", "model"]:
            f.attrs[a] = np.bytes_("x")
        f.attrs["transfer_mode"] = np.bytes_("push")
        f.attrs["clock_sync"] = np.bytes_("the router's own clock on all 3 other ranks (one kernel)")
        f.attrs["config"] = np.bytes_("workload:\n  requests: 4\n")
        s = f.create_group("summary")
        s.attrs["requests"] = np.uint64(N)
        s.attrs["errors"] = np.uint64(errors)
        s.attrs["wall_s"] = np.float64(1.0)
        s.attrs["stream_s"] = np.float64(stream_s)


def run(path, extra):
    p = subprocess.run([CHECK, path, str(N), "--lengths", lengths, "--bytes-per-token", str(BPT)]
                       + extra, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


failures = 0
with tempfile.TemporaryDirectory() as tmp:
    lengths = os.path.join(tmp, "lengths")
    with open(lengths, "w") as f:
        f.write("# test lengths\n" + "\n".join(map(str, LENGTHS)) + "\n")
    cases = [
        ("clean", {}, [], 0, "4 requests (ids 0..3 once each) verified"),
        ("duplicate id", {"ids": [0, 1, 1, 3]}, [], 1, "request id 1 appears more than once"),
        ("id out of range", {"ids": [0, 1, 2, 9], "prompt": LENGTHS}, [], 1,
         "row 3 has request id 9, outside 0..3"),
        ("prompt differs from the file", {"prompt": [64, 300, 18, 512]}, [], 1,
         "request 2 has 18 prompt tokens, the lengths file says 17"),
        ("wrong request failed", {"status": [0, -21, 0, 0], "bad": [0, 1, 0, 0], "errors": 1},
         ["--failed", "2"], 1, "request 2 should have failed its checksum"),
        ("failed as expected", {"status": [0, 0, -21, 0], "bad": [0, 0, 1, 0], "errors": 1},
         ["--failed", "2"], 0, "verified"),
        ("stream shorter than its requests", {"stream_s": 50e-6}, [], 1,
         "stream_s 0.000050 s: the requests' first and last bytes give 0.000070 s"),
        # A worker on another host may put a first byte before the router's start.
        ("first byte before the start", {"first": (-5.0, 20.0, 30.0, 40.0), "stream_s": 85e-6},
         [], 0, "verified"),
        ("stream without the early first byte", {"first": (-5.0, 20.0, 30.0, 40.0)}, [], 1,
         "stream_s 0.000070 s: the requests' first and last bytes give 0.000085 s"),
        ("clocks aligned otherwise", {}, ["--clock-sync", "round trips on 3"], 1,
         "clock_sync is \"the router's own clock on all 3 other ranks (one kernel)\", "
         "expected it to say \"round trips on 3\""),
    ]
    for i, (name, kw, extra, want_rc, want_msg) in enumerate(cases):
        path = os.path.join(tmp, f"case{i}.h5")
        write(path, **kw)
        rc, out = run(path, extra)
        ok = (rc == 0) == (want_rc == 0) and want_msg in out
        print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {rc}")
        if not ok:
            print(out)
            failures += 1
sys.exit(1 if failures else 0)
