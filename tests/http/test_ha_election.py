"""High availability, leader election: two real brokers and a real etcd
(started by the test on 127.0.0.1, random ports, temp dirs, stopped by
PID). One broker leads; the other refuses requests naming the leader and
answers /readyz 503; the standby leads after the leader is killed, after
it stops cleanly, and a leader cut off from etcd stops serving before its
lease could expire.

Leases here: TTL 3 s, renewed every 0.5 s, so a leader steps down 2.5 s
after its last renewal."""

import os
import subprocess
import time
import unittest

from jmetcd import Cluster, kill9
from jmhttp import BIN_DIR, wait_for


def result(broker, job_id):
    """(status, result) once the job finished, waiting up to 30 s."""
    status, _, body = broker.get("/v1/jobs/%s/result?wait=30" % job_id)
    return status, body.get("result") if isinstance(body, dict) else body


class HaElection(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ttl_ms=3000, renew_ms=500)

    def tearDown(self):
        self.c.stop()

    def two_brokers(self):
        b1 = self.c.start("b1")
        self.c.wait_leader(b1, 10)
        b2 = self.c.start("b2")
        # b2 has read the key once it names b1 in its refusal.
        wait_for(lambda: "b1 at" in str(b2.get("/readyz")[2]), 10, "b2 to name b1")
        return b1, b2

    def test_one_of_two_brokers_leads_and_the_standby_names_it(self):
        b1, b2 = self.two_brokers()
        self.assertEqual(b1.get("/readyz")[0], 200)
        status, _, body = b2.get("/readyz")
        self.assertEqual(status, 503)
        self.assertEqual(body["error"]["code"], "not_leader")
        self.assertTrue(body["error"]["message"].endswith("the leader is b1 at " + b1.ipc),
                        body)
        # The API refuses too, with the same text; the leader takes the job.
        status, _, body = b2.post("/v1/queues/q/jobs", {"type": "t"})
        self.assertEqual((status, body["error"]["code"]), (503, "not_leader"), body)
        b1.submit("q", {"type": "t"})
        # An NNG client given only the standby follows its refusal: the
        # job is on b1.
        code, out, err = self.c.cli(b2, "submit", "--queue", "q", "--type", "t",
                                    "--payload", "via-b2")
        self.assertEqual(code, 0, err)
        self.assertEqual(b1.job(out.strip())["payload"], "via-b2")

    def test_the_standby_leads_once_the_killed_leaders_lease_expires(self):
        b1, b2 = self.two_brokers()
        b1.submit("q", {"type": "t"})
        killed_at = kill9(b1)
        wait_for(lambda: self.c.ready(b2), 15, "b2 to lead after b1 was killed", step_s=0.02)
        led_at = time.monotonic()
        job = b2.submit("q", {"type": "t"})
        acked_at = time.monotonic()
        self.assertIn("id", job)
        # Not before b1's lease could expire (TTL 3 s from its last
        # renewal, at most 0.5 s before the kill), and not long after.
        self.assertGreater(led_at - killed_at, 3.0 - 0.5 - 0.2, self.c.logs())
        print("failover (kill -9 to the first acknowledged submit): %.2f s" %
              (acked_at - killed_at))

    def test_a_clean_stop_hands_over_without_waiting_for_the_lease(self):
        b1, b2 = self.two_brokers()
        stopped_at = time.monotonic()
        self.assertEqual(b1.stop(), 0)
        wait_for(lambda: self.c.ready(b2), 10, "b2 to lead after b1 stopped", step_s=0.02)
        # The revoked lease freed the key: b2 needed one poll, not a TTL.
        self.assertLess(time.monotonic() - stopped_at, 3.0, self.c.logs())

    def test_a_leader_cut_off_from_etcd_stops_serving_before_its_lease_expires(self):
        b1 = self.c.start("b1")
        self.c.wait_leader(b1, 10)
        self.c.etcd.pause()
        paused_at = time.monotonic()
        try:
            wait_for(lambda: not self.c.ready(b1), 10, "b1 to stop serving", step_s=0.02)
            refused_at = time.monotonic()
            wait_for(lambda: b1.proc.poll() is not None, 10, "b1 to exit", step_s=0.02)
        finally:
            self.c.etcd.resume()
        # Its lease runs 3 s from its last renewal, which was before the
        # pause: it refused requests before then, and exited 4 (stepped
        # down).
        self.assertLess(refused_at - paused_at, 3.0, b1.stderr_tail())
        self.assertEqual(b1.proc.returncode, 4, b1.stderr_tail())
        self.assertIn("stepping down before the lease can expire", b1.stderr_tail())

    def test_clients_given_a_list_find_the_leader_before_and_after_a_failover(self):
        b1, b2 = self.two_brokers()
        # The standby first: its refusal names b1, which the CLI follows.
        code, out, err = self.c.cli_list([b2, b1], "submit", "--queue", "q", "--type", "t")
        self.assertEqual(code, 0, err)
        # A worker on the list runs jobs before and after b1 dies.
        self.c.worker([b2, b1], "q", "t=cat", "w")
        first = b1.submit("q", {"type": "t", "payload": "one"})["id"]
        self.assertEqual(result(b1, first), (200, "one"))
        kill9(b1)
        self.c.wait_leader(b2, 15)
        second = b2.submit("q", {"type": "t", "payload": "two"})["id"]
        self.assertEqual(result(b2, second), (200, "two"), self.c.logs())
        # JOBMESH_BROKER takes the list too; the dead leader comes first.
        code, out, err = self.c.cli_list([b1, b2], "submit", "--queue", "q", "--type", "t",
                                         "--payload", "three", env=True)
        self.assertEqual(code, 0, err)
        third = out.strip()
        self.assertEqual(result(b2, third), (200, "three"), self.c.logs())

    def test_bad_ha_settings_are_refused_with_what_is_allowed(self):
        broker = os.path.join(BIN_DIR, "jobmesh-broker")
        cases = [
            (["--ha-renew-ms", "2000", "--ha-lease-ttl-ms", "3000"], "up to a third of"),
            (["--ha-lease-ttl-ms", "2500"], "whole seconds"),
            (["--node-name", "a b"], "--node-name \"a b\""),
            (["--etcd", "https://127.0.0.1:1"], "is not http://HOST:PORT"),
        ]
        for extra, text in cases:
            args = [broker, "--etcd", self.c.etcd.url, "--ha-unreplicated", "--listen",
                    "ipc://" + os.path.join(self.c.tmp, "bad.ipc"), "--http", "off",
                    "--data", os.path.join(self.c.tmp, "bad")] + extra
            p = subprocess.run(args, capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, (extra, p.stderr))
            self.assertIn(text, p.stderr, extra)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_a_replication_socket_off_loopback_needs_a_secret_or_insecure_listen(self):
        # Without the cluster secret nothing listens beyond loopback
        # unless the operator says so.
        broker = os.path.join(BIN_DIR, "jobmesh-broker")
        data = os.path.join(self.c.tmp, "exposed")
        args = [broker, "--etcd", self.c.etcd.url, "--replication-listen", "tcp://0.0.0.0:7402",
                "--listen", "ipc://" + os.path.join(self.c.tmp, "exposed.ipc"), "--http", "off",
                "--data", data]
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--replication-listen tcp://0.0.0.0:7402", p.stderr)
        self.assertIn("needs --replication-token-file FILE", p.stderr)
        self.assertIn("or --insecure-listen", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertFalse(os.path.exists(data), "nothing is written before the refusal")

    def test_etcd_without_accepting_unreplicated_failover_is_refused(self):
        # Without --replication-listen a failover loses what the old leader
        # acknowledged: --etcd alone must not start a broker.
        broker = os.path.join(BIN_DIR, "jobmesh-broker")
        data = os.path.join(self.c.tmp, "unaccepted")
        args = [broker, "--etcd", self.c.etcd.url, "--listen",
                "ipc://" + os.path.join(self.c.tmp, "unaccepted.ipc"), "--http", "off",
                "--data", data]
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("add --ha-unreplicated", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertFalse(os.path.exists(data), "nothing is written before the refusal")


if __name__ == "__main__":
    unittest.main()
