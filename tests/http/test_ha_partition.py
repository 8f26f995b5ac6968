"""High availability under a network partition: etcd, two replicated
brokers and workers each in a network namespace the test makes (jmnetns:
two bridges, veth pairs, 10.77.0.0/24 and 10.78.0.0/24), torn down on
every exit path.

Under steady submits (clients beside the leader and on the data network)
and two workers (one beside the leader, one on the data network), the
leader is cut off from etcd, the standby and the other clients at once,
or from etcd alone (then it goes on serving until its own deadline, TTL -
renew after its last renewal, closes its gate: a deadline before etcd's
expiry is what keeps the two leaders apart there). It must stop
acknowledging before the standby's lease-based takeover serves its first
write (timestamps of the last acknowledgement by the old leader, through a
client still beside it, and the first by the new one); afterwards every
acknowledged job is on the new leader exactly once, every acknowledged
completion is kept, and no job is completed twice: each completed job's
result names one handler run, and every other run of it had its outcome
refused (delivery is at least once, completion exactly once). Healed,
the old leader comes back as the standby and catches up.

Needs root and iproute2 (network namespaces); skips with exit code 77
(ctest SKIP_RETURN_CODE) and the reason otherwise. Leases: TTL 3 s,
renewed every 0.5 s, so the leader stops at most 2.5 s after its last
renewal and the lease expires 3 s after it."""

import os
import sys
import time
import unittest

from jmha import (Load, add_results, completed_now, completed_twice, executions, handler,
                  jobs_with_payloads, lost_or_doubled, run_logger)
from jmhttp import wait_for
from jmnetns import NetCluster, fail_on_sigterm, netns_unavailable

SKIP = 77


class HaPartition(unittest.TestCase):
    def setUp(self):
        self.c = NetCluster(ttl_ms=3000, renew_ms=500)
        print("tmp %s" % self.c.tmp)

    def cut_the_leader(self, nets):
        """Two brokers under load; leader b1 is cut off nets; checks that
        it stops acknowledging before b2 serves, that b2 has every
        acknowledged job once and every acknowledged completion, that no job
        was completed twice, and that b1, healed, comes back as the standby
        and catches up. Returns (last acknowledgement by b1, first by b2),
        in seconds from the cut."""
        c = self.c
        b1 = c.start("b1", replicated=True)
        c.wait_leader(b1, 15)
        b2 = c.start("b2", replicated=True)
        wait_for(lambda: c.in_sync("b1", "b2"), 20, "b2 in sync with b1", step_s=0.05)
        log = os.path.join(c.tmp, "runs.log")
        script = run_logger(c.tmp, log)
        # One worker beside the leader (it reaches b1 only), one on the
        # data network given both brokers.
        c.worker([b1], "q", handler(script, "side"), "w-side", node="b1")
        c.worker([b1, b2], "q", handler(script, "far"), "w-far", node="w")
        far = Load(c, ["b1", "b2"], threads=2, tag="far")
        side = Load(c, ["b1"], threads=1, netns=c.net.ns("b1"), tag="side")
        # Submits to b2 alone (refused while it stands by): its first
        # acknowledgement, not delayed by a connection hung on b1.
        probe = Load(c, ["b2"], threads=1, tag="probe")
        loads = (far, side, probe)
        completed = set()
        try:
            wait_for(lambda: far.count() >= 60 and side.count() >= 30, 30,
                     "submits acknowledged by b1 on both sides")
            wait_for(lambda: len(executions(log)) >= 20, 30, "jobs run\n" + c.logs(),
                     step_s=0.05)
            completed_now(b1, completed)
            # The standby takes over only if etcd says it is in sync (it
            # may not be for a moment: a shipped chunk that waited too
            # long under load makes the leader record it out of sync).
            wait_for(lambda: c.in_sync("b1", "b2"), 20, "b2 in sync before the cut",
                     step_s=0.01)
            cut_at = time.monotonic()
            c.net.cut("b1", nets)
            print("sync key after the cut: %s" % c.sync_state())
            # b2 takes over once b1's lease expires (the far clients
            # move to it); b1 steps down on its own.
            wait_for(lambda: probe.first_ack_after(cut_at, "b2"), 30,
                     "a submit acknowledged by b2\n" + c.logs(), step_s=0.02)
            wait_for(lambda: b1.proc.poll() is not None, 15, "b1 to step down", step_s=0.02)
            # 4: stepped down; 1 when, cut off from its standby too, it
            # could not write its last (unacknowledged) records at stop.
            self.assertIn(b1.proc.returncode, (1, 4), b1.stderr_tail())
            self.assertIn("stepping down before the lease can expire", b1.stderr_tail())
            first_new = min(t for t in (far.first_ack_after(cut_at, "b2"),
                                        probe.first_ack_after(cut_at, "b2")) if t)
            self.assertEqual(probe.last_ack("b2", before=cut_at), None, "b2 served too early")
            last_old = max(t for t in (far.last_ack("b1"), side.last_ack("b1")) if t)
            print("cut off %s at 0: last write acknowledged by the old leader at %+.2f s, "
                  "first by the new leader at %+.2f s" %
                  ("+".join(nets), last_old - cut_at, first_new - cut_at))
            self.assertLess(last_old, first_new,
                            "two leaders acknowledged writes at once\n" + c.logs())
            # Writes go on at b2; then the cut heals and b1 comes back (as
            # its supervisor would start it) as the standby.
            base = far.count()
            wait_for(lambda: far.count() >= base + 50, 30, "submits acknowledged by b2")
            c.net.heal("b1", nets)
            b1 = c.start("b1", replicated=True)
            wait_for(lambda: c.in_sync("b2", "b1"), 30,
                     "b1 to catch up as the standby\n" + c.logs(), step_s=0.05)
            status, _, body = b1.get("/readyz")
            self.assertEqual((status, body["error"]["code"]), (503, "not_leader"), body)
            self.assertTrue(body["error"]["message"].endswith("the leader is b2 at " + b2.ipc),
                            body)
            base = far.count()
            wait_for(lambda: far.count() >= base + 20, 30, "submits acknowledged by b2 again")
        finally:
            for load in loads:
                load.stop()
        for load in loads:
            self.assertEqual(load.errors, [])
        acked = dict(far.acked)
        acked.update(side.acked)
        acked.update(probe.acked)
        self.assertEqual(lost_or_doubled(jobs_with_payloads(b2), acked, completed), [],
                         c.logs())
        # Stop the workers before reading their runs: no run half logged.
        for p in c.workers:
            p.terminate()
        for p in c.workers:
            p.wait(15)
        jobs = jobs_with_payloads(b2)
        add_results(b2, jobs)
        runs = executions(log)
        logs = {}
        for w in ("w-side", "w-far"):
            with open(os.path.join(c.tmp, w + ".err")) as f:
                logs[w.split("-")[1]] = f.read()
        self.assertEqual(completed_twice(jobs, runs, logs), [], c.logs())
        done = sum(1 for j in jobs.values() if j["state"] == "completed")
        self.assertGreater(done, len(completed))
        print("%d acknowledged jobs (%d from beside the old leader), %d runs, %d completed, "
              "%d completions acknowledged before the cut: none lost, none twice" %
              (len(acked), len(side.acked), len(runs), done, len(completed)))
        return last_old - cut_at, first_new - cut_at

    def run(self, result=None):
        """Prints every process's log as it is at a failure (the messages
        of the waits hold them as they were when the wait began)."""
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before:
            print("logs at the failure (tmp %s):\n%s" % (self.logs_dir, self.logs_at_failure),
                  file=sys.stderr)
        return out

    def tearDown(self):
        self.logs_dir = self.c.tmp
        try:
            self.logs_at_failure = self.c.logs()
        except OSError as e:
            self.logs_at_failure = "(cannot read: %s)" % e
        self.c.stop()

    def test_a_leader_cut_off_from_everything_stops_before_the_standby_serves(self):
        self.cut_the_leader(("data", "etcd"))

    def test_a_leader_cut_off_from_etcd_alone_stops_at_its_lease_before_the_standby_serves(
            self):
        # b1 still reaches its standby and its clients: it acknowledges
        # writes after the cut, until its lease deadline closes its gate.
        last_old, first_new = self.cut_the_leader(("etcd",))
        self.assertGreater(last_old, 0, "b1 acknowledged nothing after the cut")


if __name__ == "__main__":
    why = netns_unavailable()
    if why:
        print("SKIP: " + why)
        sys.exit(SKIP)
    fail_on_sigterm()
    unittest.main()
