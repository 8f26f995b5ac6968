#!/usr/bin/env python3
"""bench_serve: W2 (drain queued no-op jobs with worker concurrency 4)
through jobmesh-worker, per handler kind:

  exec            --handler noop=true        (one /bin/sh -c per job)
  serve python    --serve noop='python3 tests/clients/handler.py'
  serve node      --serve noop='node tests/clients/handler.mjs'

For each: a fresh broker (--fsync batch), N jobs of 100 bytes queued in
batches of up to 10,000, then a worker started; the figure is jobs / time
from the worker's start to the last job completed (as bench_broker's W2,
whose C handler runs in-process on the SDK). A benchmark, not a test.

usage: tests/bench/bench_serve.py [--bin DIR] [--jobs N] [--exec-jobs N]
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))

import stack  # noqa: E402  (starts and stops processes by pid)


def drain(bin_dir, handler_args, jobs):
    stack.BIN = bin_dir
    s = stack.Stack(http=False)
    try:
        payload = "x" * 100
        batches = []
        left = jobs
        while left > 0:
            n = min(left, 10000)
            lines = "".join(json.dumps({"queue": "w2", "type": "noop", "payload": payload}) + "\n"
                            for _ in range(n))
            batches.append(json.loads(s.cli("batch", "submit", "-", "--json", stdin=lines))["batch_id"])
            left -= n
        t0 = time.monotonic()
        s.worker(*handler_args, queue="w2", concurrency=4, wait_registered=False)
        for b in batches:
            stack.poll_until(f"batch {b}", lambda: s.cli_json("batch", "status", str(b))["state"] != "running",
                             600, 0.01)
        elapsed = time.monotonic() - t0
        done = sum(s.cli_json("batch", "status", str(b))["completed"] for b in batches)
        if done != jobs:
            raise SystemExit(f"only {done} of {jobs} jobs completed")
        return jobs / elapsed
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "test", "bin"))
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--exec-jobs", type=int, default=2000)
    a = ap.parse_args()
    handler_py = os.path.join(ROOT, "tests", "clients", "handler.py")
    handler_js = os.path.join(ROOT, "tests", "clients", "handler.mjs")
    kinds = [
        ("exec (sh -c true per job)", ["--handler", "noop=true"], a.exec_jobs),
        ("serve python (jobmesh.serve)", ["--serve", f"noop=python3 {handler_py}"], a.jobs),
        ("serve node (serve() from jobmesh)", ["--serve", f"noop=node {handler_js}"], a.jobs),
    ]
    for name, args, jobs in kinds:
        print(f"W2 drain, concurrency 4, {name:34s} {drain(a.bin, args, jobs):9.0f} jobs/s ({jobs} jobs)",
              flush=True)


if __name__ == "__main__":
    main()
