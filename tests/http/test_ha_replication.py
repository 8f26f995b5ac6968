"""High availability with journal shipping: real brokers (--replication-
listen), a real etcd on 127.0.0.1 (random ports, temp dirs, every process
stopped by PID), real workers.

The leader ships each group commit to the standby and acknowledges only
once both copies are synced; so a kill -9 of the leader under submit load
loses no acknowledged job and no acknowledged completion, and worker
leases survive the failover. A standby that fell behind catches up before
it counts as in sync, and one that is not in sync never takes over.

JOBMESH_HA_FAILOVERS sets how many kill -9 failovers the load test runs
(default 3; the figure in README comes from 20:
`JOBMESH_HA_FAILOVERS=20 ctest -R test_ha_replication`).
Leases: TTL 3 s, renewed every 0.5 s."""

import os
import statistics
import unittest

from jmetcd import Cluster, kill9
from jmha import Load, all_jobs, completed_now, jobs_with_payloads, lost_or_doubled
from jmhttp import wait_for

FAILOVERS = int(os.environ.get("JOBMESH_HA_FAILOVERS", "3"))


class HaReplication(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(ttl_ms=3000, renew_ms=500)

    def tearDown(self):
        self.c.stop()

    def start_pair(self):
        b1 = self.c.start("b1", replicated=True)
        self.c.wait_leader(b1, 10)
        self.c.start("b2", replicated=True)
        wait_for(lambda: self.c.in_sync("b1", "b2"), 20, "b2 in sync with b1", step_s=0.05)

    def check_every_acked_job_once(self, leader, acked, completed):
        """Every acknowledged submit is on leader, under its id with its
        payload, and no other job carries an acknowledged payload; every
        completion read back before stays completed."""
        problems = lost_or_doubled(jobs_with_payloads(leader), acked, completed)
        self.assertEqual(problems, [], "\n" + self.c.logs())

    def completed_now(self, leader, known):
        completed_now(leader, known)

    def test_kill9_of_the_leader_under_load_loses_no_acknowledged_job_or_completion(self):
        self.start_pair()
        names = ["b1", "b2"]
        self.c.worker([self.c.brokers[n] for n in names], "q", "t=cat", "w")
        load = Load(self.c, names)
        completed, failovers = set(), []
        leader, standby = "b1", "b2"
        try:
            for round_no in range(FAILOVERS):
                wait_for(lambda: self.c.in_sync(leader, standby), 30,
                         "round %d: %s in sync with %s" % (round_no, standby, leader),
                         step_s=0.05)
                base = load.count()
                wait_for(lambda: load.count() >= base + 50, 30,
                         "round %d: submits acknowledged by %s" % (round_no, leader))
                self.completed_now(self.c.brokers[leader], completed)
                killed_at = kill9(self.c.brokers[leader])
                new = self.c.brokers[standby]
                wait_for(lambda: load.first_ack_after(killed_at, standby), 30,
                         "round %d: a submit acknowledged by %s" % (round_no, standby),
                         step_s=0.02)
                failovers.append(load.first_ack_after(killed_at, standby) - killed_at)
                with load.lock:
                    acked = dict(load.acked)
                self.check_every_acked_job_once(new, acked, completed)
                # The killed broker comes back as the standby and catches up.
                self.c.start(leader, replicated=True)
                leader, standby = standby, leader
        finally:
            load.stop()
        self.assertEqual(load.errors, [])
        wait_for(lambda: self.c.in_sync(leader, standby), 30, "the last standby in sync")
        # The worker goes on completing jobs on the last leader.
        final = self.c.brokers[leader]
        before = len(completed)
        wait_for(lambda: len([j for j in all_jobs(final) if j["state"] == "completed"]) >
                 before, 30, "a completion on the last leader\n" + self.c.logs(), step_s=0.2)
        self.check_every_acked_job_once(final, dict(load.acked), completed)
        print("%d failovers, %d acknowledged jobs, %d completions checked; kill -9 to the "
              "first acknowledged submit on the new leader: p50 %.2f s, max %.2f s" %
              (len(failovers), len(load.acked), len(completed),
               statistics.median(failovers), max(failovers)))

    def test_a_running_jobs_lease_survives_the_failover(self):
        self.start_pair()
        b1, b2 = self.c.brokers["b1"], self.c.brokers["b2"]
        # The handler runs until the test lets it finish, so the job is
        # running on the old leader's lease when that leader dies.
        gate = os.path.join(self.c.tmp, "go")
        self.c.worker([b1, b2], "q",
                      "slow=sh -c 'for i in $(seq 600); do [ -e %s ] && break; sleep 0.05; "
                      "done; cat'" % gate, "w")
        job = b1.submit("q", {"type": "slow", "payload": "long"})["id"]
        wait_for(lambda: b1.job(job)["state"] == "active", 20, "the job to run")
        kill9(b1)
        self.c.wait_leader(b2, 15)
        self.assertEqual(b2.job(job)["state"], "active", "the lease came with the journal")
        open(gate, "w").close()
        wait_for(lambda: b2.job(job)["state"] == "completed", 30,
                 "the settle accepted by b2\n" + self.c.logs())
        # The settle was accepted on the replayed lease: no second attempt.
        self.assertEqual(b2.job(job)["attempt"], 1, b2.job(job))

    def test_a_standby_behind_catches_up_and_one_out_of_sync_never_takes_over(self):
        self.start_pair()
        b1 = self.c.brokers["b1"]
        before = [b1.submit("q", {"type": "t", "payload": "a%d" % i})["id"] for i in range(20)]
        # The standby dies: the leader's next commit waits for it, records
        # in etcd that it is out of sync, and acknowledges alone.
        kill9(self.c.brokers["b2"])
        alone = [b1.submit("q", {"type": "t", "payload": "b%d" % i})["id"] for i in range(20)]
        s = self.c.sync_state()
        self.assertEqual((s["leader"], s["in_sync"]), ("b1", False), s)
        # The leader dies too: the standby, behind, must not take over.
        kill9(b1)
        b2 = self.c.start("b2", replicated=True)
        wait_for(lambda: "b2 does not campaign" in b2.stderr_tail(), 15,
                 "b2 to refuse to campaign", step_s=0.05)
        self.assertFalse(self.c.ready(b2))
        # The last leader comes back, leads, and the standby catches up.
        b1 = self.c.start("b1", replicated=True)
        self.c.wait_leader(b1, 15)
        wait_for(lambda: self.c.in_sync("b1", "b2"), 20, "b2 to catch up\n" + self.c.logs(),
                 step_s=0.05)
        self.assertIn("catching it up", b1.stderr_tail())
        later = [b1.submit("q", {"type": "t", "payload": "c%d" % i})["id"] for i in range(5)]
        # Now in sync, b2 takes over with everything.
        kill9(b1)
        self.c.wait_leader(b2, 15)
        for i, job in enumerate(before):
            self.assertEqual(b2.job(job)["payload"], "a%d" % i)
        for i, job in enumerate(alone):
            self.assertEqual(b2.job(job)["payload"], "b%d" % i)
        for i, job in enumerate(later):
            self.assertEqual(b2.job(job)["payload"], "c%d" % i)

    def test_a_standby_behind_a_compaction_gets_a_full_copy(self):
        extra = ["--compact-min-bytes", "4096"]
        b1 = self.c.start("b1", extra, replicated=True)
        self.c.wait_leader(b1, 10)
        b2 = self.c.start("b2", extra, replicated=True)
        wait_for(lambda: self.c.in_sync("b1", "b2"), 20, "b2 in sync", step_s=0.05)
        # Completed jobs are dropped at once, so the journal outgrows the
        # live state and b1 compacts: the segments b2 stopped in are gone.
        status, _, body = b1.request("PATCH", "/v1/queues/q/settings", {"keep_completed": 0})
        self.assertEqual(status, 200, body)
        kill9(b2)
        self.c.worker([b1], "q", "t=cat", "w")
        for i in range(300):
            b1.submit("q", {"type": "t", "payload": "p%d" % i})
        wait_for(lambda: any(f.startswith("snapshot-") for f in os.listdir(b1.data)), 30,
                 "b1 to compact\n" + self.c.logs(), step_s=0.05)
        kept = [b1.submit("k", {"type": "t", "payload": "k%d" % i})["id"] for i in range(5)]
        b2 = self.c.start("b2", extra, replicated=True)
        wait_for(lambda: self.c.in_sync("b1", "b2"), 20, "b2 in sync again\n" + self.c.logs(),
                 step_s=0.05)
        self.assertIn("replication: full copy to b2", b1.stderr_tail())
        self.assertTrue(any(f.startswith("snapshot-") for f in os.listdir(b2.data)))
        kill9(b1)
        self.c.wait_leader(b2, 15)
        for i, job in enumerate(kept):
            self.assertEqual(b2.job(job)["payload"], "k%d" % i)


if __name__ == "__main__":
    unittest.main()
