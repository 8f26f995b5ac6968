"""Test support for high availability: an etcd server (Debian's etcd-server)
started by the test on 127.0.0.1 with random free ports and a temp data
dir, stopped by PID on every path, and brokers started with --etcd.

Every wait polls a condition to a deadline (jmhttp.wait_for)."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from jmhttp import BIN_DIR, Broker, wait_for

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port():
    """A port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """One etcd member on 127.0.0.1; stop() by PID. Alone by default; a
    member of a cluster when given its name, its ports and initial_cluster
    (name=peer URL of every member): then wait=False starts it without
    waiting, since a member answers only once a quorum is up."""

    def __init__(self, tmp, name="t", client_port=None, peer_port=None, initial_cluster=None,
                 wait=True, host="127.0.0.1", wrap=()):
        """host: where it listens (default 127.0.0.1, on free ports unless
        given); wrap: a command it runs under (ip netns exec NS)."""
        self.tmp = tmp
        self.name = name
        self.client_port = client_port or free_port()
        peer_port = peer_port or free_port()
        self.url = "http://%s:%d" % (host, self.client_port)
        peer = "http://%s:%d" % (host, peer_port)
        alone = name == "t"
        self.args = list(wrap) + [
            ETCD, "--name", name,
            "--data-dir", os.path.join(tmp, "etcd-data" if alone else "etcd-" + name),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", initial_cluster or name + "=" + peer,
            "--initial-cluster-token", "jobmesh-test", "--log-level", "warn"]
        self.err = open(os.path.join(tmp, "etcd.err" if alone else "etcd-%s.err" % name), "ab")
        self.proc = None
        self.launch()
        if wait:
            self.wait_healthy(20)

    def launch(self):
        self.proc = subprocess.Popen(self.args, stdout=self.err, stderr=self.err,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp)

    def wait_healthy(self, timeout_s):
        wait_for(self.healthy, timeout_s, "etcd to answer on " + self.url, step_s=0.05)

    def post(self, path, body, timeout_s=2):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout_s) as res:
            return json.loads(res.read())

    def healthy(self):
        """True once a linearizable read answers here (so with a quorum)."""
        if self.proc.poll() is not None:
            raise AssertionError("etcd exited with %s" % self.proc.returncode)
        try:
            self.post("/v3/kv/range", {"key": "eA=="})
            return True
        except OSError:
            return False

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill9(self):
        """SIGKILL by PID, reaped: the time it died."""
        self.proc.kill()
        self.proc.wait()
        return time.monotonic()

    def restart(self):
        """Starts a killed member again on its data dir (it rejoins)."""
        assert self.proc.poll() is not None
        self.launch()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def etcd_cluster(tmp, size, started):
    """size members named e1, e2, ... on 127.0.0.1, each appended to
    started as soon as it runs (so the caller stops it on every path);
    returns once every member answers."""
    names = ["e%d" % (i + 1) for i in range(size)]
    ports = [(free_port(), free_port()) for _ in names]
    initial = ",".join("%s=http://127.0.0.1:%d" % (n, p[1]) for n, p in zip(names, ports))
    for n, (client, peer) in zip(names, ports):
        started.append(Etcd(tmp, n, client, peer, initial, wait=False))
    for m in started:
        m.wait_healthy(30)
    return started


class Cluster:
    """etcd plus brokers named b1, b2, ... each in its own dir under one
    temp dir, all in one election (--ha-cluster t)."""

    def __init__(self, ttl_ms=3000, renew_ms=500, etcd_members=1):
        """etcd_members: 1, one etcd alone (self.etcd); more, an etcd
        cluster of that many members (self.etcds, self.etcd the first),
        every broker given all of them (--etcd URL1,URL2,...)."""
        self.tmp = tempfile.mkdtemp(prefix="jobmesh-ha-")
        self.ttl_ms, self.renew_ms = ttl_ms, renew_ms
        self.brokers = {}
        self.workers = []
        self.etcds = []
        self.etcd = None
        try:
            if etcd_members == 1:
                # Listed before the wait, so stop() ends it if it never answers.
                self.etcds.append(self.make_etcd())
                self.etcds[0].wait_healthy(20)
            else:
                etcd_cluster(self.tmp, etcd_members, self.etcds)
            self.etcd = self.etcds[0]
        except BaseException:
            self.stop()
            raise

    def make_etcd(self):
        """The lone etcd member, started without waiting for it."""
        return Etcd(self.tmp, wait=False)

    def placement(self, name, d):
        """Where broker name runs: Broker keyword arguments (listen,
        http_addr, wrap) and its replication address. Here: ipc:// paths
        in its dir d and HTTP on 127.0.0.1 (jmnetns places brokers in
        network namespaces instead)."""
        return {}, "ipc://" + os.path.join(d, "repl.ipc")

    def etcd_urls(self):
        return ",".join(m.url for m in self.etcds)

    def start(self, name, extra=(), replicated=False):
        """Starts (or, after a kill, restarts in the same dir) broker name;
        replicated: it ships its journal while it leads, on an address of
        its own (--replication-listen), instead of --ha-unreplicated."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        old = self.brokers.get(name)
        if old is not None and old.proc.poll() is not None and not old.err.closed:
            old.err.close()  # a broker that died or stepped down, restarted
        where, repl = self.placement(name, d)
        mode = ["--replication-listen", repl] if replicated else ["--ha-unreplicated"]
        b = Broker(["--etcd", self.etcd_urls()] + mode + ["--node-name", name,
                    "--ha-cluster", "t",
                    "--ha-lease-ttl-ms", str(self.ttl_ms), "--ha-renew-ms", str(self.renew_ms),
                    "--log-level", "info"] + list(extra), tmp=d, **where)
        self.brokers[name] = b
        return b

    def sync_state(self):
        """The leader's record of its standby (/jobmesh/t/sync), or None."""
        key = base64.b64encode(b"/jobmesh/t/sync").decode()
        try:
            kvs = self.etcd.post("/v3/kv/range", {"key": key}).get("kvs")
        except OSError:
            return None
        return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None

    def in_sync(self, leader, standby):
        s = self.sync_state()
        return bool(s and s["leader"] == leader and s["standby"] == standby and s["in_sync"])

    def ready(self, b):
        try:
            return b.get("/readyz")[0] == 200
        except OSError:
            return False

    def wait_leader(self, b, timeout_s):
        wait_for(lambda: self.ready(b), timeout_s, "%s to lead" % b.tmp, step_s=0.02)

    def cli(self, b, *args):
        """Runs the CLI against b's NNG address: (exit code, stdout, stderr)."""
        p = subprocess.run([os.path.join(BIN_DIR, "jobmesh"), "--broker", b.ipc] + list(args),
                           capture_output=True, text=True, timeout=30, cwd=self.tmp)
        return p.returncode, p.stdout, p.stderr

    def cli_list(self, brokers, *args, env=False):
        """The CLI given every broker's address, in this order: with
        --broker, or with JOBMESH_BROKER when env."""
        urls = ",".join(b.ipc for b in brokers)
        cmd = [os.path.join(BIN_DIR, "jobmesh")]
        environ = dict(os.environ)
        if env:
            environ["JOBMESH_BROKER"] = urls
        else:
            cmd += ["--broker", urls]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                           cwd=self.tmp, env=environ)
        return p.returncode, p.stdout, p.stderr

    def worker(self, brokers, queue, handler, name, wrap=(), extra=()):
        """jobmesh-worker given every broker's address (run under wrap, e.g.
        ip netns exec NS); stopped by stop()."""
        args = list(wrap) + [os.path.join(BIN_DIR, "jobmesh-worker"), "--broker",
                ",".join(b.ipc for b in brokers), "--queue", queue, "--worker-id", name,
                "--handler", handler, "--log-level", "info"] + list(extra)
        err = open(os.path.join(self.tmp, name + ".err"), "ab")
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=self.tmp,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        err.close()
        self.workers.append(p)
        return p

    def stop(self):
        for p in self.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        bad = []
        for name, b in self.brokers.items():
            try:
                status = b.stop()
            except AssertionError as e:
                status = str(e)
            # None: killed by the test; 4: stepped down. A sanitizer's
            # report (a leak at exit) makes it 1.
            if status not in (None, 0, 4):
                bad.append("%s exited %s:\n%s" % (name, status, b.stderr_tail()))
        for m in self.etcds:
            m.stop()
        if not os.environ.get("JOBMESH_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        if bad:
            raise AssertionError("\n".join(bad))

    def logs(self):
        out = []
        for name, b in self.brokers.items():
            out.append("--- %s\n%s" % (name, b.stderr_tail()))
        for f in sorted(os.listdir(self.tmp)):
            if f.endswith(".err") and not f.startswith("etcd"):
                with open(os.path.join(self.tmp, f), "rb") as fh:
                    out.append("--- %s\n%s" % (f, fh.read()[-3000:].decode(errors="replace")))
        return "\n".join(out)


def kill9(b):
    """SIGKILL to a broker by PID, reaped."""
    b.proc.kill()
    b.proc.wait()
    return time.monotonic()
