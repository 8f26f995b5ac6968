"""High availability on an etcd cluster: a real 3-member etcd (started by
the test on 127.0.0.1, random ports, temp dirs, every member stopped by
PID) and two real brokers given all three members (--etcd URL1,URL2,URL3).
The leader renews its lease through whichever member answers: losing any
one member costs it nothing (no failover, same epoch, submits still
acknowledged); losing two (no quorum) makes it stop serving before its
lease could expire.

Leases here: TTL 5 s, renewed every 0.5 s, so a leader steps down 4.5 s
after its last renewal. The TTL is longer than in test_ha_election.py
because killing the member that is etcd's own raft leader leaves the
others without a leader for about one election timeout (1 s by default),
more on a loaded machine, and the broker must renew across that."""

import base64
import json
import os
import subprocess
import threading
import time
import unittest

from jmetcd import Cluster
from jmhttp import BIN_DIR, wait_for

TTL_S = 5.0
LEADER_KEY = base64.b64encode(b"/jobmesh/t/leader").decode()


def log(b):
    """b's whole log (stderr_tail has only its end)."""
    with open(os.path.join(b.tmp, "broker.err"), "rb") as f:
        return f.read().decode(errors="replace")


class HaEtcdMembers(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ttl_ms=int(TTL_S * 1000), renew_ms=500, etcd_members=3)

    def tearDown(self):
        self.c.stop()

    def leader_key(self):
        """(create revision, leader name) of the leader key, read through
        the first member that answers; None while none does."""
        for m in self.c.etcds:
            if m.proc.poll() is not None:
                continue
            try:
                kvs = m.post("/v3/kv/range", {"key": LEADER_KEY}).get("kvs")
            except OSError:
                continue
            if not kvs:
                return (0, "")
            value = json.loads(base64.b64decode(kvs[0]["value"]))
            return (int(kvs[0]["create_revision"]), value["name"])
        return None

    def raft_leader(self):
        """The member that is etcd's raft leader now."""
        for m in self.c.etcds:
            status = m.post("/v3/maintenance/status", {})
            if status["header"]["member_id"] == status["leader"]:
                return m
        raise AssertionError("no etcd member says it is the raft leader")

    def keep_submitting(self, b, seconds):
        """Submits to b for `seconds`, every one acknowledged with an id,
        and b answering /readyz 200 throughout: how many were submitted."""
        done = 0
        pace = threading.Event()  # never set: paces the load, waits for nothing
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            job = b.submit("q", {"type": "t", "payload": "n%d" % done})
            self.assertIn("id", job, self.c.logs())
            self.assertEqual(b.get("/readyz")[0], 200, self.c.logs())
            done += 1
            pace.wait(0.02)
        return done

    def test_the_leader_keeps_leading_through_the_loss_of_each_etcd_member_in_turn(self):
        b1 = self.c.start("b1")
        self.c.wait_leader(b1, 15)
        b2 = self.c.start("b2")
        wait_for(lambda: "b1 at" in str(b2.get("/readyz")[2]), 15, "b2 to name b1")
        epoch, name = self.leader_key()
        self.assertEqual(name, "b1")
        # b1 starts at the first member and moves on only when one fails,
        # so killing them in order kills, each time, the member b1 talks to.
        for m in self.c.etcds:
            m.kill9()
            # Longer than a whole lease: had b1 renewed only through the
            # dead member, it would have stepped down within TTL - renew.
            submitted = self.keep_submitting(b1, TTL_S + 1.0)
            self.assertGreater(submitted, 0)
            # b1's call to the dead member failed, and it moved on.
            self.assertIn("etcd %s/v3/" % m.url, log(b1), "b1 talked to the dead member")
            self.assertEqual(self.leader_key(), (epoch, "b1"), self.c.logs())
            self.assertEqual(b2.get("/readyz")[0], 503)
            m.restart()
            m.wait_healthy(30)
        self.assertIsNone(b1.proc.poll(), b1.stderr_tail())
        self.assertNotIn("no longer leads", log(b1))
        self.assertEqual(log(b1).count("leads at epoch"), 1)
        self.assertNotIn("leads at epoch", log(b2))

    def test_a_leader_that_loses_the_etcd_quorum_stops_serving_within_its_lease(self):
        b1 = self.c.start("b1")
        self.c.wait_leader(b1, 15)
        b1.submit("q", {"type": "t"})
        # etcd's raft leader and one other member. Not the follower pair:
        # a raft leader left alone renews leases by itself (etcd 3.4 does
        # not propose renewals) until it notices the lost quorum, about an
        # election timeout later, so the broker's lease would rightly run
        # from that last renewal instead of from the kill. A lone follower
        # has no leader to forward a renewal to: none succeeds after this.
        raft_leader = self.raft_leader()
        other = next(m for m in self.c.etcds if m is not raft_leader)
        other.kill9()
        killed_at = raft_leader.kill9()
        wait_for(lambda: not self.c.ready(b1), 2 * TTL_S, "b1 to stop serving", step_s=0.02)
        refused_at = time.monotonic()
        wait_for(lambda: b1.proc.poll() is not None, 15, "b1 to exit", step_s=0.02)
        # The one member left answers nothing without a quorum: b1's last
        # renewal was before the second kill, and it refused requests
        # before that lease could expire, then exited 4 (stepped down).
        self.assertLess(refused_at - killed_at, TTL_S, b1.stderr_tail())
        self.assertEqual(b1.proc.returncode, 4, b1.stderr_tail())
        self.assertIn("stepping down before the lease can expire", b1.stderr_tail())

    def test_bad_etcd_member_lists_are_refused_with_what_is_allowed(self):
        broker = os.path.join(BIN_DIR, "jobmesh-broker")
        good = self.c.etcds[0].url
        cases = [
            (good + ",", "member 2 is empty"),
            (good + ",,http://127.0.0.1:2", "member 2 is empty"),
            (good + ",https://127.0.0.1:2", "member 2 \"https://127.0.0.1:2\" is not "
             "http://HOST:PORT"),
            (good + ",http://127.0.0.1", "member 2 \"http://127.0.0.1\" is not"),
            (good + ", http://127.0.0.1:2", "is not http://HOST:PORT"),
            (good + "," + good, "is listed twice"),
            (",".join("http://127.0.0.1:%d" % (2000 + i) for i in range(10)),
             "list at most 9"),
        ]
        for etcd, text in cases:
            data = os.path.join(self.c.tmp, "bad")
            args = [broker, "--etcd", etcd, "--ha-unreplicated", "--listen",
                    "ipc://" + os.path.join(self.c.tmp, "bad.ipc"), "--http", "off",
                    "--data", data]
            p = subprocess.run(args, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, (etcd, p.stderr))
            self.assertIn(text, p.stderr, etcd)
            self.assertIn("--etcd \"%s\"" % etcd, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
            self.assertFalse(os.path.exists(data), "nothing is written before the refusal")


if __name__ == "__main__":
    unittest.main()
