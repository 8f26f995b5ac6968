"""A real jobmesh stack for the client tests: a broker (NNG on an ipc://
path under a temp dir, HTTP on 127.0.0.1) and workers, each stopped by its
pid on every exit path (addCleanup, atexit).

JOBMESH_BIN names the directory of jobmesh-broker, jobmesh-worker and
jobmesh (ctest sets it)."""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("JOBMESH_BIN", os.path.join(ROOT, "build", "test", "bin"))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))

_live: List[subprocess.Popen] = []
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies, even
    by SIGKILL (ctest's timeout), so no broker or worker outlives it."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # runs the cleanups and atexit


signal.signal(signal.SIGTERM, _exit_on_signal)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> Optional[int]:
    """Stops one process we started, by its pid: sig, then SIGKILL."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    if proc in _live:
        _live.remove(proc)
    return proc.returncode


@atexit.register
def _stop_all() -> None:
    for proc in list(_live):
        stop_process(proc, signal.SIGKILL)


def poll_until(what: str, cond: Callable[[], Any], timeout_s: float = 20.0,
               interval_s: float = 0.02) -> Any:
    """cond() until it is truthy, up to timeout_s; fails naming what."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Stack:
    """A broker and the workers of one test."""

    def __init__(self, http: bool = True, broker_args: Optional[List[str]] = None):
        self.tmp = tempfile.TemporaryDirectory(prefix="jobmesh-clients-")
        self.dir = self.tmp.name
        self.nng = f"ipc://{self.dir}/broker.sock"
        self.http_port = 0
        self.broker: Optional[subprocess.Popen] = None
        self.workers: List[subprocess.Popen] = []
        self._start_broker(http, broker_args or [])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _start_broker(self, http: bool, extra: List[str]) -> None:
        # Port 0: the broker picks a free port and prints "http <url>" first.
        args = [os.path.join(BIN, "jobmesh-broker"), "--listen", self.nng, "--data",
                os.path.join(self.dir, "data")] + extra
        args += ["--http", "127.0.0.1:0" if http else "off"]
        log = open(os.path.join(self.dir, "broker.log"), "ab")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log,
                                preexec_fn=_die_with_parent)
        log.close()  # the child has its own copy
        _live.append(proc)
        for _ in range(2):
            line = proc.stdout.readline().decode()
            if line.startswith("http "):
                self.http_port = int(line.split()[1].rsplit(":", 1)[1].strip("/"))
            elif line.startswith("listening"):
                self.broker = proc  # its stdout stays open (closed in close())
                return
        stop_process(proc, signal.SIGKILL)
        proc.stdout.close()
        why = self.log("broker")
        self.tmp.cleanup()
        raise AssertionError(f"broker did not start: {why}")

    def log(self, name: str) -> str:
        try:
            with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def worker(self, *args: str, queue: str = "q", concurrency: int = 1,
               wait_registered: bool = True) -> subprocess.Popen:
        log = open(os.path.join(self.dir, "worker.log"), "ab")
        argv = [os.path.join(BIN, "jobmesh-worker"), "--broker", self.nng, "--queue", queue,
                "--concurrency", str(concurrency), "--heartbeat-ms", "100",
                "--kill-grace-ms", "500"] + list(args)
        proc = subprocess.Popen(argv, stdout=log, stderr=log, preexec_fn=_die_with_parent)
        log.close()
        _live.append(proc)
        self.workers.append(proc)
        if wait_registered:
            poll_until("the worker to register", lambda: self._worker_seen(proc.pid), 15)
        return proc

    def _worker_seen(self, pid: int) -> bool:
        out = self.cli("workers", "--json", check=False)
        return f'"pid": {pid}' in out or f'"pid":{pid}' in out

    def cli(self, *args: str, check: bool = True, stdin: Optional[str] = None) -> str:
        r = subprocess.run([os.path.join(BIN, "jobmesh"), "--broker", self.nng] + list(args),
                           input=stdin, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"jobmesh {' '.join(args)}: exit {r.returncode}: {r.stderr}")
        return r.stdout

    def cli_json(self, *args: str) -> Dict[str, Any]:
        return json.loads(self.cli(*args, "--json"))

    def close(self) -> None:
        for w in self.workers:
            stop_process(w, signal.SIGKILL)
        code = 0
        if self.broker is not None:
            code = stop_process(self.broker, signal.SIGTERM)
            self.broker.stdout.close()
        why = self.log("broker") if code != 0 else ""
        self.tmp.cleanup()
        # A sanitizer report, or a broker that would not stop, shows here.
        if code != 0:
            raise AssertionError(f"the broker exited with {code} on SIGTERM: {why}")
