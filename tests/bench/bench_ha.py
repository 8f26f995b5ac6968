"""W1 and W2 against a single broker and against an HA leader with a
synchronous standby (issue 15): the same peer_jobmesh workloads as
`scripts/bench peers`, each on fresh processes in a temp dir; etcd
(Debian's etcd-server) on random 127.0.0.1 ports; everything stopped by
PID. A benchmark, not a test: it prints one line per figure.

usage: JOBMESH_BIN_DIR=$PWD/build/test/bin python3 tests/bench/bench_ha.py [JOBS]"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))

from jmetcd import Cluster  # noqa: E402
from jmhttp import BIN_DIR, Broker, wait_for  # noqa: E402

JOBS = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def drive(url, workload, jobs):
    p = subprocess.run([os.path.join(BIN_DIR, "peer_jobmesh"), "--url", url, "--workload",
                        workload, "--jobs", str(jobs)], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise SystemExit("peer_jobmesh %s failed: %s" % (workload, p.stderr))
    return p.stdout.strip()


def run(mode, workload):
    jobs = JOBS // 10 if workload == "w1" else JOBS
    if mode == "single":
        b, c = Broker(["--fsync", "batch"]), None
    else:
        c = Cluster(ttl_ms=3000, renew_ms=500)
        b = c.start("b1", ["--fsync", "batch"], replicated=True)
        c.wait_leader(b, 10)
        c.start("b2", ["--fsync", "batch"], replicated=True)
        wait_for(lambda: c.in_sync("b1", "b2"), 20, "b2 in sync", step_s=0.05)
    try:
        if workload == "drain":
            drive(b.ipc, "fill", jobs)
        return drive(b.ipc, workload, jobs)
    finally:
        if c:
            c.stop()
        else:
            b.stop()


for workload in ("w1", "w1x32", "drain"):
    for mode in ("single", "ha-sync"):
        print("%-8s %-6s %s" % (mode, workload, run(mode, workload)), flush=True)
