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

import http.client
import os
import signal
import statistics
import threading
import time
import unittest

from jmetcd import Cluster, kill9
from jmhttp import wait_for

FAILOVERS = int(os.environ.get("JOBMESH_HA_FAILOVERS", "3"))


class Load:
    """Producer threads submitting jobs with unique payloads over HTTP to
    whichever broker leads (a 503 not_leader or a dropped connection moves
    a thread to the next broker). acked: payload -> job id, for the
    submits answered 202."""

    def __init__(self, cluster, names, threads=3):
        self.c, self.names = cluster, names
        self.lock = threading.Lock()
        self.acked = {}
        self.ack_times = []
        self.stopping = False
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, index):
        n, which, conn = 0, index, None
        deadline = time.monotonic() + 600  # bounded even if never stopped
        while not self.stopping and time.monotonic() < deadline:
            b = self.c.brokers[self.names[which % len(self.names)]]
            payload = "p-%d-%d" % (index, n)
            n += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(b.host, b.port, timeout=5)
                status, _, body = b.post("/v1/queues/q/jobs",
                                         {"type": "t", "payload": payload}, conn=conn)
            except (OSError, http.client.HTTPException):
                status, body = None, None
            if status == 202:
                with self.lock:
                    self.acked[payload] = body["id"]
                    self.ack_times.append((time.monotonic(), b.tmp))
                # At most ~100 submits/s a thread: enough to kill the
                # leader mid-commit, few enough to read every job back.
                time.sleep(0.01)
                continue
            if status not in (None, 503):
                self.errors.append((status, body))
            if conn is not None:
                conn.close()
                conn = None
            which += 1
            time.sleep(0.01)  # pacing while no broker leads
        if conn is not None:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.acked)

    def first_ack_after(self, t, broker):
        with self.lock:
            times = [at for at, tmp in self.ack_times if at > t and tmp == broker.tmp]
        return min(times) if times else None

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(30)


def all_jobs(b, conn=None):
    """Every job of queue q on b: a list of job objects, read page by page."""
    jobs, cursor = [], None
    for _ in range(10000):
        path = "/v1/jobs?queue=q&limit=1000" + ("&cursor=%s" % cursor if cursor else "")
        status, _, body = b.get(path, conn=conn)
        assert status == 200, (status, body)
        jobs += body["jobs"]
        cursor = body["next_cursor"]
        if cursor is None:
            return jobs
    raise AssertionError("more pages than expected")


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
        payload, and no other job carries an acknowledged payload (the
        list has no payloads: each job is read); every completion read back
        before stays completed."""
        conn = leader.connect()  # one connection for thousands of reads
        try:
            jobs = {j["id"]: j for j in all_jobs(leader, conn)}
            payloads = {}
            for job_id in jobs:
                status, _, body = leader.get("/v1/jobs/%s" % job_id, conn=conn)
                self.assertEqual(status, 200, body)
                payloads[job_id] = body["payload"]
        finally:
            conn.close()
        missing = [p for p, i in acked.items() if i not in jobs]
        self.assertEqual(missing, [], "acknowledged jobs lost\n" + self.c.logs())
        ids = set(acked.values())
        for job_id, payload in payloads.items():
            if job_id in ids:
                self.assertEqual(acked.get(payload), job_id, "job %s" % job_id)
            else:
                self.assertNotIn(payload, acked, "an acknowledged job present twice")
        lost = [i for i in completed if jobs[i]["state"] != "completed"]
        self.assertEqual(lost, [], "acknowledged completions lost\n" + self.c.logs())

    def completed_now(self, leader, known):
        """Adds to known the jobs whose completion leader acknowledges: a
        job read (GET /v1/jobs/ID) answers only once what it reports is
        durable on both copies, unlike the list."""
        conn = leader.connect()
        try:
            for j in all_jobs(leader, conn):
                if j["state"] == "completed" and j["id"] not in known:
                    status, _, body = leader.get("/v1/jobs/%s" % j["id"], conn=conn)
                    if status == 200 and body["state"] == "completed":
                        known.add(j["id"])
        finally:
            conn.close()

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
                wait_for(lambda: load.first_ack_after(killed_at, new), 30,
                         "round %d: a submit acknowledged by %s" % (round_no, standby),
                         step_s=0.02)
                failovers.append(load.first_ack_after(killed_at, new) - killed_at)
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
