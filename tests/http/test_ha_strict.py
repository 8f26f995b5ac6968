"""High availability in strict mode (--ha-sync strict): real brokers
shipping their journal on ipc://, a real etcd on 127.0.0.1 (random ports,
temp dirs, every process stopped by PID), real workers and the CLI.

A strict leader never acknowledges a write that only its own copy holds:
while no standby is in sync, every write is refused with JM_ENOSTANDBY
(HTTP 503 "no_standby") and stores nothing, reads go on, and writes resume
once a standby has caught up. Since nothing is acknowledged alone, etcd
keeps naming the last standby in sync, so after the standby and then the
leader die, the standby may take over with every acknowledged job.
Leases: TTL 3 s, renewed every 0.5 s."""

import os
import signal
import threading
import time
import unittest

import test_ha_replication as replication
from jmetcd import Cluster, kill9
from jmhttp import wait_for

STRICT = ["--ha-sync", "strict"]
REFUSAL = "no standby in sync (--ha-sync strict)"


class HaStrict(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ttl_ms=3000, renew_ms=500)

    def tearDown(self):
        self.c.stop()

    def start(self, name):
        return self.c.start(name, STRICT, replicated=True)

    def start_pair(self):
        b1 = self.start("b1")
        self.c.wait_leader(b1, 10)
        self.start("b2")
        wait_for(lambda: self.c.in_sync("b1", "b2"), 20, "b2 in sync with b1", step_s=0.05)
        return b1

    def log(self, b):
        """b's whole log (stderr_tail is the last 2000 characters)."""
        with open(os.path.join(b.tmp, "broker.err"), "rb") as f:
            return f.read().decode(errors="replace")

    def writes(self, b):
        """What b's /readyz says of writes: "accepted", "no_standby" (a
        strict leader without a standby in sync, still ready for reads),
        or None when b does not lead."""
        try:
            status, _, body = b.get("/readyz")
        except OSError:
            return None
        return body.get("writes", "accepted") if status == 200 else None

    def wait_writes(self, b, state, what):
        wait_for(lambda: self.writes(b) == state, 30, what + "\n" + self.c.logs(),
                 step_s=0.02)

    def wait_leader(self, b, timeout_s):
        try:
            self.c.wait_leader(b, timeout_s)
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.c.logs())) from None

    def kill_in_sync(self, leader, standby, victim):
        """kill -9 of victim (leader or standby) once etcd names standby in
        sync and leader accepts writes: not amid a catch-up, after which
        the standby may not take over."""
        b = self.c.brokers[leader]
        wait_for(lambda: self.writes(b) == "accepted" and self.c.in_sync(leader, standby), 30,
                 "%s in sync with %s\n%s" % (standby, leader, self.c.logs()), step_s=0.02)
        return kill9(self.c.brokers[victim])

    def assert_refused(self, b, payload):
        status, _, body = b.post("/v1/queues/q/jobs", {"type": "t", "payload": payload})
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"]["code"], "no_standby", body)
        self.assertIn(REFUSAL, body["error"]["message"])

    def payloads(self, b):
        conn = b.connect()
        try:
            return sorted(b.get("/v1/jobs/%s" % j["id"], conn=conn)[2]["payload"]
                          for j in replication.all_jobs(b, conn))
        finally:
            conn.close()

    def test_a_strict_leader_refuses_writes_while_no_standby_is_in_sync(self):
        b1 = self.start("b1")
        self.c.wait_leader(b1, 10)
        # Alone: it leads and serves reads, but refuses every write.
        self.assert_refused(b1, "alone")
        rc, _, err = self.c.cli(b1, "submit", "--queue", "q", "--type", "t", "--payload", "x")
        self.assertNotEqual(rc, 0)
        self.assertIn(REFUSAL, err)
        self.assertEqual(self.payloads(b1), [])
        status, _, body = b1.get("/v1/queues")
        self.assertEqual(status, 200, body)
        # A standby catches up: writes are accepted.
        self.assertEqual(self.writes(b1), "no_standby")
        self.start("b2")
        # Writes resume as the standby counts in sync; etcd is told just
        # after.
        self.wait_writes(b1, "accepted", "b1 to accept writes with b2 in sync")
        wait_for(lambda: self.c.in_sync("b1", "b2"), 10, "etcd to name b2 in sync",
                 step_s=0.02)
        first = b1.submit("q", {"type": "t", "payload": "first"})["id"]
        # The standby dies: writes are refused again, reads go on, and
        # nothing refused is stored.
        kill9(self.c.brokers["b2"])
        self.wait_writes(b1, "no_standby", "b1 to refuse writes without b2")
        self.assertIn("standby b2 disconnected", self.log(b1))
        for i in range(3):
            self.assert_refused(b1, "refused-%d" % i)
        rc, _, err = self.c.cli(b1, "submit", "--queue", "q", "--type", "t", "--payload", "y")
        self.assertNotEqual(rc, 0)
        self.assertIn(REFUSAL, err)
        self.assertEqual(b1.job(first)["payload"], "first")
        self.assertEqual(self.payloads(b1), ["first"])
        # The standby returns and catches up: writes resume.
        # etcd still names b2 in sync: nothing was acknowledged without it.
        self.assertTrue(self.c.in_sync("b1", "b2"))
        self.start("b2")
        self.wait_writes(b1, "accepted", "b2 to catch up again")
        b1.submit("q", {"type": "t", "payload": "second"})
        self.assertEqual(self.payloads(b1), ["first", "second"])
        # And the standby holds what was acknowledged.
        self.kill_in_sync("b1", "b2", "b1")
        b2 = self.c.brokers["b2"]
        self.wait_leader(b2, 15)
        self.assertEqual(self.payloads(b2), ["first", "second"])

    def test_sigterm_of_a_strict_leader_waiting_for_a_standby_exits_promptly(self):
        b1 = self.start("b1")
        self.c.wait_leader(b1, 10)
        self.assert_refused(b1, "alone")
        start = time.monotonic()
        b1.proc.send_signal(signal.SIGTERM)
        status = b1.proc.wait(10)
        took = time.monotonic() - start
        self.assertEqual(status, 0, b1.stderr_tail())
        self.assertLess(took, 5, "SIGTERM took %.1f s" % took)

    def test_sigterm_of_a_strict_leader_whose_write_waits_for_the_standby_exits_promptly(self):
        b1 = self.start_pair()
        self.wait_writes(b1, "accepted", "b1 to accept writes")
        b2 = self.c.brokers["b2"]
        # The standby freezes with its connection open: the next write is
        # shipped and never answered, so it waits and is not acknowledged.
        b2.proc.send_signal(signal.SIGSTOP)
        try:
            result = {}

            def submit():
                try:
                    result["status"] = b1.post("/v1/queues/q/jobs",
                                               {"type": "t", "payload": "waits"})[0]
                except OSError as e:
                    result["status"] = e

            t = threading.Thread(target=submit, daemon=True)
            t.start()
            self.wait_writes(b1, "no_standby", "the write to time out on the standby")
            self.assertIn("standby b2 is out of sync", self.log(b1))
            self.assertTrue(t.is_alive(), "the write was answered: %s" % result)
            self.assert_refused(b1, "later")
            start = time.monotonic()
            b1.proc.send_signal(signal.SIGTERM)
            b1.proc.wait(15)
            took = time.monotonic() - start
            t.join(10)
        finally:
            b2.proc.send_signal(signal.SIGCONT)
        self.assertLess(took, 8, "SIGTERM took %.1f s\n%s" % (took, b1.stderr_tail()))
        self.assertNotEqual(result.get("status"), 202, "acknowledged without the standby")

    def test_no_acknowledged_job_is_lost_over_failovers_in_strict_mode(self):
        self.wait_writes(self.start_pair(), "accepted", "b1 to accept writes")
        names = ["b1", "b2"]
        self.c.worker([self.c.brokers[n] for n in names], "q", "t=cat", "w")
        load = replication.Load(self.c, names)
        completed = set()
        check = replication.HaReplication.check_every_acked_job_once
        try:
            # 1. kill -9 of the leader: b2 takes over, and accepts writes
            # only once b1, restarted, has caught up with it.
            wait_for(lambda: load.count() >= 50, 30, "submits acknowledged by b1")
            replication.HaReplication.completed_now(self, self.c.brokers["b1"], completed)
            self.kill_in_sync("b1", "b2", "b1")
            b2 = self.c.brokers["b2"]
            self.wait_leader(b2, 15)
            self.assertIn(REFUSAL, self.log(b2))
            with load.lock:
                acked = dict(load.acked)
            check(self, b2, acked, completed)
            self.start("b1")
            self.wait_writes(b2, "accepted", "b1 to catch up with b2")
            base = load.count()
            wait_for(lambda: load.count() >= base + 50, 30, "submits acknowledged by b2")
            # 2. kill -9 of the standby, then of the leader: the leader
            # acknowledged nothing alone, so etcd still names b1 in sync and
            # b1 takes over with every acknowledged job.
            replication.HaReplication.completed_now(self, b2, completed)
            self.kill_in_sync("b2", "b1", "b1")
            self.wait_writes(b2, "no_standby", "b2 to refuse writes without b1")
            kill9(b2)
            s = self.c.sync_state()
            self.assertEqual((s["leader"], s["standby"], s["in_sync"]), ("b2", "b1", True), s)
            b1 = self.start("b1")
            self.wait_leader(b1, 15)
            with load.lock:
                acked = dict(load.acked)
            check(self, b1, acked, completed)
            self.start("b2")
            self.wait_writes(b1, "accepted", "b2 to catch up with b1")
            base = load.count()
            wait_for(lambda: load.count() >= base + 20, 30, "submits acknowledged by b1")
        finally:
            load.stop()
        self.assertEqual(load.errors, [])
        check(self, self.c.brokers["b1"], dict(load.acked), completed)
        print("%d acknowledged jobs and %d completions checked over 2 failovers" %
              (len(load.acked), len(completed)))


if __name__ == "__main__":
    unittest.main()
