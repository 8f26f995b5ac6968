"""The HA replication socket's cluster secret (--replication-token-file):
real brokers on a real etcd (127.0.0.1, random ports, temp dirs, every
process stopped by PID).

The leader asks each standby that connects to prove it holds the secret
(an HMAC of a fresh nonce) before it sends it anything: a standby with no
secret or a wrong one gets no journal byte, never counts as in sync, and
the leader says why in one line; one with the secret catches up and can
take over. Leases: TTL 3 s, renewed every 0.5 s."""

import os
import subprocess
import unittest

from jmetcd import Cluster, kill9
from jmhttp import BIN_DIR, wait_for

MARK = b"payload-behind-the-secret"


class HaReplicationAuth(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ttl_ms=3000, renew_ms=500)
        self.right = self.secret_file("right", "the cluster's own secret, 32 bytes\n")
        self.wrong = self.secret_file("wrong", "somebody else's secret of 32 bytes\n")

    def tearDown(self):
        self.c.stop()

    def secret_file(self, name, text):
        path = os.path.join(self.c.tmp, name + ".secret")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def start(self, name, secret):
        extra = ["--replication-token-file", secret] if secret else []
        return self.c.start(name, extra, replicated=True)

    def log(self, b):
        with open(os.path.join(b.tmp, "broker.err"), "rb") as f:
            return f.read().decode(errors="replace")

    def holds_journal_bytes(self, b):
        """Does any file in b's data directory contain a submitted payload?"""
        for name in os.listdir(b.data):
            path = os.path.join(b.data, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    if MARK in f.read():
                        return True
        return False

    def assert_kept_out(self, b1, b2, why):
        """b2 was refused (the leader's line names why), holds no journal
        byte and was never recorded in sync."""
        wait_for(lambda: why in self.log(b1), 15, "b1 to refuse b2 (%s)\n%s" %
                 (why, self.c.logs()), step_s=0.05)
        self.assertIn("closed its connection, it gets nothing", self.log(b1))
        self.assertNotIn("standby b2 is in sync", self.log(b1))
        self.assertNotIn("catching it up", self.log(b1))
        self.assertFalse(self.c.in_sync("b1", "b2"), self.c.sync_state())
        self.assertFalse(self.holds_journal_bytes(b2), "b2 received journal bytes")

    def test_a_standby_without_the_secret_gets_nothing_and_one_with_it_catches_up(self):
        b1 = self.start("b1", self.right)
        self.c.wait_leader(b1, 10)
        ids = [b1.submit("q", {"type": "t", "payload": "%s-%d" % (MARK.decode(), i)})["id"]
               for i in range(5)]
        # No secret: the standby says why it cannot answer, the leader
        # closes its connection.
        b2 = self.start("b2", None)
        self.assert_kept_out(b1, b2, "asks for the cluster secret")
        self.assertIn("give this broker the leader's --replication-token-file", self.log(b2))
        b2.stop()
        # A wrong secret: its proof does not match.
        b2 = self.start("b2", self.wrong)
        self.assert_kept_out(b1, b2, "refused standby b2 at a local peer: its cluster secret "
                             "is wrong")
        # Submits while it is connected do not reach it either.
        ids += [b1.submit("q", {"type": "t", "payload": "%s-late" % MARK.decode()})["id"]]
        self.assertFalse(self.holds_journal_bytes(b2), "b2 received journal bytes")
        self.assertFalse(self.c.in_sync("b1", "b2"), self.c.sync_state())
        b2.stop()
        # The right secret: it catches up, counts in sync and takes over
        # with every job.
        b2 = self.start("b2", self.right)
        wait_for(lambda: self.c.in_sync("b1", "b2"), 20, "b2 in sync\n" + self.c.logs(),
                 step_s=0.05)
        self.assertTrue(self.holds_journal_bytes(b2))
        kill9(b1)
        self.c.wait_leader(b2, 15)
        for i, job in enumerate(ids):
            want = "%s-%d" % (MARK.decode(), i) if i < 5 else "%s-late" % MARK.decode()
            self.assertEqual(b2.job(job)["payload"], want)

    def run_broker(self, *args):
        broker = os.path.join(BIN_DIR, "jobmesh-broker")
        data = os.path.join(self.c.tmp, "refused")
        p = subprocess.run([broker, "--etcd", self.c.etcd.url, "--listen",
                            "ipc://" + os.path.join(self.c.tmp, "refused.ipc"), "--http", "off",
                            "--data", data] + list(args),
                           capture_output=True, text=True, timeout=30)
        self.assertFalse(os.path.exists(data), "nothing is written before the refusal")
        return p

    def test_bad_secret_settings_are_refused_with_one_line(self):
        short = self.secret_file("short", "too short\n")
        cases = [
            (["--replication-listen", "tcp://127.0.0.1:7405", "--replication-token-file", short],
             "--replication-token-file %s: the secret must be 16-1024 bytes" % short),
            (["--replication-listen", "tcp://127.0.0.1:7405", "--replication-token-file",
              os.path.join(self.c.tmp, "missing")], "No such file or directory"),
            (["--ha-unreplicated", "--replication-token-file", self.right],
             "--replication-token-file needs --replication-listen"),
            (["--replication-listen", "tcp://0.0.0.0:7405"],
             "needs --replication-token-file FILE"),
        ]
        for args, want in cases:
            p = self.run_broker(*args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(want, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_a_replication_address_on_the_events_port_is_refused_at_start(self):
        # --listen on P derives the events address on P + 1: a replication
        # address there used to fail only once this broker was elected.
        p = self.run_broker("--listen", "tcp://127.0.0.1:17410",
                            "--replication-listen", "tcp://127.0.0.1:17411")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--events (derived from --listen) tcp://127.0.0.1:17411 and "
                      "--replication-listen tcp://127.0.0.1:17411 both listen on port 17411: "
                      "give each its own port", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_a_secret_lets_the_replication_socket_off_loopback(self):
        # Another broker leads, so this one stands by and never binds its
        # replication address: the start-up check alone is under test.
        b1 = self.start("b1", self.right)
        self.c.wait_leader(b1, 10)
        b2 = self.c.start("b2", ["--replication-token-file", self.right,
                                 "--replication-listen", "tcp://0.0.0.0:7406"],
                          replicated=True)
        wait_for(lambda: "the leader is b1" in self.log(b2), 10, "b2 to stand by")
        self.assertEqual(b2.proc.poll(), None)
        # Stopped before b1, so that it never leads and binds 0.0.0.0.
        self.assertEqual(b2.stop(), 0)


if __name__ == "__main__":
    unittest.main()
