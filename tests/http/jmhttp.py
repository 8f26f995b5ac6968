"""Test support for the broker's HTTP API: a real jobmesh-broker (and
jobmesh-worker) process in a fresh temp dir, HTTP on 127.0.0.1 port 0 read
back from the broker's "http <url>" line, a small JSON client on
http.client, and an SSE reader on a plain socket.

Every wait polls a condition to a deadline and says what it waited for;
nothing sleeps to wait. Processes are stopped by PID."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

BIN_DIR = os.environ.get("JOBMESH_BIN_DIR", "")


def wait_for(cond, timeout_s, what, step_s=0.01):
    """Calls cond() until it returns a true value (returned) or timeout_s
    passes (AssertionError naming what)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout_s, what))
        time.sleep(step_s)


class Broker:
    """One broker process; stop() by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, extra_args=(), data_dir=None, tmp=None, listen=None,
                 http_addr="127.0.0.1:0", wrap=()):
        """listen: the NNG address (default an ipc:// path in tmp);
        wrap: a command the broker runs under (e.g. ip netns exec NS)."""
        self.tmp = tmp or tempfile.mkdtemp(prefix="jobmesh-http-")
        self.owns_tmp = tmp is None
        self.data = data_dir or os.path.join(self.tmp, "data")
        # The NNG address clients dial (an ipc:// path unless listen).
        self.ipc = listen or "ipc://" + os.path.join(self.tmp, "broker.ipc")
        self.workers = []
        self.out_path = os.path.join(self.tmp, "broker.out")
        self.err = open(os.path.join(self.tmp, "broker.err"), "ab")
        out = open(self.out_path, "wb")
        args = list(wrap) + [os.path.join(BIN_DIR, "jobmesh-broker"), "--listen", self.ipc,
                             "--data", self.data, "--http", http_addr, "--log-level",
                             "warn"] + list(extra_args)
        self.proc = subprocess.Popen(args, stdout=out, stderr=self.err, cwd=self.tmp,
                                     stdin=subprocess.DEVNULL)
        out.close()
        lines = wait_for(self._ready_lines, 10, "the broker's listening line")
        self.url = [l for l in lines if l.startswith("http ")][0].split(" ", 1)[1]
        parsed = urllib.parse.urlparse(self.url)
        self.host, self.port = parsed.hostname, parsed.port

    def _ready_lines(self):
        if self.proc.poll() is not None:
            raise AssertionError("broker exited with %s: %s" % (self.proc.returncode,
                                                                 self.stderr_tail()))
        with open(self.out_path) as f:
            lines = f.read().splitlines()
        return lines if any(l.startswith("listening ") for l in lines) else None

    def stderr_tail(self):
        with open(os.path.join(self.tmp, "broker.err"), "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def worker(self, queue, handlers, concurrency=1, name=None):
        name = name or "worker-%d" % len(self.workers)
        args = [os.path.join(BIN_DIR, "jobmesh-worker"), "--broker", self.ipc, "--queue", queue,
                "--concurrency", str(concurrency), "--worker-id", name, "--log-level", "warn"]
        for h in handlers:
            args += ["--handler", h]
        err = open(os.path.join(self.tmp, name + ".err"), "ab")
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=self.tmp,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        err.close()
        self.workers.append(p)
        return p

    def stop(self, keep_tmp=False):
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.workers = []
        status = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                status = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("broker did not stop within 15 s of SIGTERM")
        self.err.close()
        if self.owns_tmp and not keep_tmp and not os.environ.get("JOBMESH_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return status

    # -- HTTP ---------------------------------------------------------------

    def connect(self, timeout_s=30):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)

    def request(self, method, path, body=None, headers=None, conn=None, raw=None):
        """(status, headers dict (lower-case names), decoded JSON or text)."""
        own = conn is None
        conn = conn or self.connect()
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            res = conn.getresponse()
            text = res.read()
            rh = {k.lower(): v for k, v in res.getheaders()}
        finally:
            if own:
                conn.close()
        ctype = rh.get("content-type", "")
        if ctype.startswith("application/json"):
            return res.status, rh, json.loads(text)
        return res.status, rh, text.decode(errors="replace")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def submit(self, queue, job):
        status, headers, body = self.post("/v1/queues/%s/jobs" % queue, job)
        assert status == 202, (status, body)
        return body

    def job(self, job_id):
        status, _, body = self.get("/v1/jobs/%s" % job_id)
        assert status == 200, (status, body)
        return body


class EventStream:
    """An SSE connection read with a plain socket: events as dicts
    {"id", "event", "data"} (data decoded JSON)."""

    def __init__(self, broker, query="", last_event_id=None, timeout_s=30):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=timeout_s)
        extra = "Last-Event-ID: %s\r\n" % last_event_id if last_event_id is not None else ""
        req = "GET /v1/events%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n%s\r\n" % (
            ("?" + query) if query else "", broker.host, broker.port, extra)
        self.sock.sendall(req.encode())
        self.buf = bytearray()
        head = self._read_until(b"\r\n\r\n")
        self.status_line = head.split(b"\r\n", 1)[0].decode()
        self.headers = head.decode()
        self.comments = 0

    def _read_until(self, marker):
        """Bytes up to marker (consumed with it). Scans only new bytes, so
        reading many events stays linear."""
        scan_from = 0
        while True:
            at = self.buf.find(marker, scan_from)
            if at >= 0:
                head = bytes(self.buf[:at])
                del self.buf[:at + len(marker)]
                return head
            scan_from = max(0, len(self.buf) - len(marker))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("event stream closed")
            self.buf += chunk

    def next_event(self):
        """The next event (comments and retry lines skipped)."""
        while True:
            block = self._read_until(b"\n\n").decode()
            ev = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments += 1
                    continue
                key, _, value = line.partition(": ")
                if key in ("id", "event", "data"):
                    ev[key] = value
            if "data" in ev:
                ev["data"] = json.loads(ev["data"])
                return ev

    def next_comment(self):
        """Reads until a comment line (": ping") arrives; returns it."""
        while True:
            block = self._read_until(b"\n\n").decode()
            for line in block.split("\n"):
                if line.startswith(":"):
                    return line

    def close(self):
        self.sock.close()
