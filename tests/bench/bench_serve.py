#!/usr/bin/env python3
"""bench_serve: W2 (drain queued no-op jobs with worker concurrency 4)
through jobmesh-worker, per handler kind, next to the C handler, and the
CPU time per job of each process (broker, jobmesh-worker, its handler
processes; from /proc, resume to last completion), less noisy than the
rate on a shared machine:

  C               bench_broker's W2 (the SDK's in-process handler), run first
                  with the same job count, so both figures share one load
  exec            --handler noop=true        (one /bin/sh -c per job)
  serve python    --serve noop='python3 tests/clients/handler.py'
  serve node      --serve noop='node tests/clients/handler.mjs'
  (--lines)       the same two with JOBMESH_TEST_SERVE_BATCH=0: the handler
                  asks for one job a line (the protocol before "jobs" lines)

For each jobmesh-worker kind: a fresh broker (--fsync batch, ipc://), the
queue paused, N jobs of 100 bytes queued in batches of up to 10,000, the
worker started; once every --serve process said hello (its interpreter is
warm, as it stays for the life of a worker) the queue is resumed, and the
figure is jobs / time from the resume to the last job completed, polled
every 10 ms over HTTP. "cold" is the same from the worker's start, with
the interpreters' start-up in it. A benchmark, not a test.

With --rounds N (the machine is shared and one 20,000-job drain lasts a
fraction of a second) the C handler and the two --serve kinds run N times,
interleaved, and the medians and the ratio of medians are printed last.

usage: tests/bench/bench_serve.py [--bin DIR] [--jobs N] [--exec-jobs N] [--rounds N] [--no-c]
                                  [--lines]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

import stack  # noqa: E402  (starts and stops processes by pid)
import jobmesh  # noqa: E402

SLOTS = 4


def ready_handlers(s):
    try:
        with open(os.path.join(s.dir, "worker.log"), errors="replace") as f:
            return f.read().count(": ready, takes ")
    except OSError:
        return 0


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def children(pid):
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


def descendants(pid):
    """Its children, theirs, ... (a handler run as `sh -c 'VAR=x cmd'` is
    the worker's grandchild)."""
    found, todo = [], children(pid)
    while todo:
        kid = todo.pop()
        found.append(kid)
        todo += children(kid)
    return found


def cpu_sample(broker, worker):
    """CPU ticks of the broker, the worker and its handler processes."""
    handlers = descendants(worker)
    return {"broker": cpu_ticks(broker), "worker": cpu_ticks(worker),
            "handlers": sum(cpu_ticks(h) for h in handlers)}


def drain(bin_dir, handler_args, jobs, serve, cpu=None):
    stack.BIN = bin_dir
    s = stack.Stack(http=True)
    jm = jobmesh.Client(s.url, timeout=30)
    try:
        s.cli("queue", "pause", "w2")
        payload = "x" * 100
        batches = []
        left = jobs
        while left > 0:
            n = min(left, 10000)
            lines = "".join(json.dumps({"queue": "w2", "type": "noop", "payload": payload}) + "\n"
                            for _ in range(n))
            batches.append(json.loads(s.cli("batch", "submit", "-", "--json", stdin=lines))["batch_id"])
            left -= n
        started = time.monotonic()
        worker = s.worker(*handler_args, queue="w2", concurrency=SLOTS, wait_registered=False)
        if serve:
            stack.poll_until("every --serve process to say hello",
                             lambda: ready_handlers(s) >= SLOTS, 60, 0.01)
        before = cpu_sample(s.broker.pid, worker.pid)
        resumed = time.monotonic()
        s.cli("queue", "resume", "w2")
        for b in batches:
            stack.poll_until(f"batch {b}", lambda: jm.batch(str(b))["state"] != "running", 600, 0.01)
        done_at = time.monotonic()
        if cpu is not None:
            after = cpu_sample(s.broker.pid, worker.pid)
            for k in after:
                cpu.setdefault(k, []).append((after[k] - before[k]) / os.sysconf("SC_CLK_TCK")
                                             * 1e6 / jobs)
        done = sum(jm.batch(str(b))["completed"] for b in batches)
        if done != jobs:
            raise SystemExit(f"only {done} of {jobs} jobs completed")
        return jobs / (done_at - resumed), jobs / (done_at - started)
    finally:
        jm.close()
        s.close()


def c_handler(bin_dir, jobs):
    out = subprocess.run([os.path.join(bin_dir, "bench_broker"), "--url", "ipc", "--jobs", str(jobs)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"W2 drain, worker concurrency 4:\s+(\d+) jobs/s", out)
    if m is None:
        raise SystemExit(f"no W2 line in bench_broker's output:\n{out}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "test", "bin"))
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--exec-jobs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-c", action="store_true", help="skip bench_broker's C handler")
    ap.add_argument("--lines", action="store_true",
                    help="also run both --serve kinds with one job a line (no batch)")
    a = ap.parse_args()
    handler_py = os.path.join(ROOT, "tests", "clients", "handler.py")
    handler_js = os.path.join(ROOT, "tests", "clients", "handler.mjs")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    kinds = [
        ("serve python (jobmesh.serve)", ["--serve", f"noop=python3 {handler_py}"], True),
        ("serve node (serve() from jobmesh)", ["--serve", f"noop=node {handler_js}"], True),
    ]
    if a.lines:
        off = "JOBMESH_TEST_SERVE_BATCH=0"
        kinds += [
            ("serve python, job lines", ["--serve", f"noop={off} python3 {handler_py}"], True),
            ("serve node, job lines", ["--serve", f"noop={off} node {handler_js}"], True),
        ]
    figures = {"C": []}
    cpus = {}  # kind -> process -> CPU microseconds per job, one per round
    for name, _, _ in kinds:
        figures[name] = []
    for r in range(a.rounds):
        c = None
        if not a.no_c:
            c = c_handler(a.bin, a.jobs)
            figures["C"].append(c)
            print(f"W2 drain, concurrency 4, {'C handler in the SDK (bench_broker)':36s} {c:9.0f} jobs/s "
                  f"({a.jobs} jobs)", flush=True)
        round_kinds = kinds
        if r == 0:
            round_kinds = [("exec (sh -c true per job)", ["--handler", "noop=true"], False)] + kinds
        for name, args, serve in round_kinds:
            jobs = a.jobs if serve else a.exec_jobs
            cpu = cpus.setdefault(name, {})
            warm, cold = drain(a.bin, args, jobs, serve, cpu)
            figures.setdefault(name, []).append(warm)
            ratio = f", {warm / c:.2f} x C" if c else ""
            print(f"W2 drain, concurrency 4, {name:36s} {warm:9.0f} jobs/s ({jobs} jobs{ratio}; "
                  f"cold, from the worker's start: {cold:.0f}; CPU us/job: "
                  + ", ".join(f"{k} {v[-1]:.1f}" for k, v in cpu.items()) + ")", flush=True)
    if a.rounds > 1:
        c_median = statistics.median(figures["C"]) if figures["C"] else None
        for name, values in figures.items():
            if not values or name.startswith("exec"):
                continue
            m = statistics.median(values)
            ratio = f", {m / c_median:.2f} x C's median" if c_median and name != "C" else ""
            cpu = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in cpus.get(name, {}).items())
            cpu = f"; CPU us/job: {cpu}" if cpu else ""
            print(f"median of {len(values)}: {name:36s} {m:9.0f} jobs/s{ratio}{cpu}", flush=True)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()
