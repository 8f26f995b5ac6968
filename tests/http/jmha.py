"""Test support for high availability under load, shared by the HA tests
and the chaos run: producer threads submitting over HTTP to whichever
broker leads, and the checks that every acknowledged job is on a broker
exactly once and every acknowledged completion is kept.

Every loop is bounded in count and time; nothing sleeps to wait for a
condition (the sleeps here pace the producers)."""

import collections
import http.client
import os
import re
import threading
import time

from jmnetns import enter_netns


class Load:
    """Producer threads submitting jobs with unique payloads over HTTP to
    whichever of names leads (a 503 not_leader or a dropped connection
    moves a thread to the next broker). acked: payload -> job id, for the
    submits answered 202; ack_times: (monotonic time, broker name) of
    each.

    netns: the threads run in that network namespace (a client on one
    side of a partition); tag: a payload prefix unique to this load."""

    def __init__(self, cluster, names, threads=3, netns=None, tag="p", pace_s=0.01,
                 max_s=3600):
        self.c, self.names = cluster, names
        self.netns, self.tag, self.pace_s, self.max_s = netns, tag, pace_s, max_s
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
        if self.netns:
            enter_netns(self.netns)
        n, which, conn = 0, index, None
        deadline = time.monotonic() + self.max_s  # bounded even if never stopped
        while not self.stopping and time.monotonic() < deadline:
            name = self.names[which % len(self.names)]
            b = self.c.brokers[name]
            payload = "%s-%d-%d" % (self.tag, index, n)
            n += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(b.host, b.port, timeout=5)
                status, _, body = b.post("/v1/queues/q/jobs",
                                         {"type": "t", "payload": payload}, conn=conn)
            except (OSError, http.client.HTTPException):
                status, body = None, None
            except Exception as e:  # noqa: BLE001 - recorded, not lost with the thread
                status, body = "exception", repr(e)
            if status == 202:
                with self.lock:
                    self.acked[payload] = body["id"]
                    self.ack_times.append((time.monotonic(), name))
                # At most ~100 submits/s a thread: enough to kill the
                # leader mid-commit, few enough to read every job back.
                time.sleep(self.pace_s)
                continue
            if status not in (None, 503):
                # Asserted empty by the tests: anything but an answer, a
                # refusal naming the leader or a dropped connection.
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
        """The first acknowledgement by broker (its name) after t, or None."""
        with self.lock:
            times = [at for at, name in self.ack_times if at > t and name == broker]
        return min(times) if times else None

    def last_ack(self, broker, before=None):
        """The last acknowledgement by broker (before a time), or None."""
        with self.lock:
            times = [at for at, name in self.ack_times
                     if name == broker and (before is None or at < before)]
        return max(times) if times else None

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(30)


def all_jobs(b, conn=None, queue="q"):
    """Every job of queue on b: a list of job objects, read page by page."""
    jobs, cursor = [], None
    for _ in range(10000):
        path = "/v1/jobs?queue=%s&limit=1000" % queue + ("&cursor=%s" % cursor if cursor else "")
        status, _, body = b.get(path, conn=conn)
        assert status == 200, (status, body)
        jobs += body["jobs"]
        cursor = body["next_cursor"]
        if cursor is None:
            return jobs
    raise AssertionError("more pages than expected")


def jobs_with_payloads(leader):
    """{id: full job object} of every job of queue q on leader (the list
    has no payloads: each job is read, on one connection)."""
    conn = leader.connect()
    try:
        out = {}
        for j in all_jobs(leader, conn):
            status, _, body = leader.get("/v1/jobs/%s" % j["id"], conn=conn)
            assert status == 200, (status, body)
            out[j["id"]] = body
        return out
    finally:
        conn.close()


def lost_or_doubled(jobs, acked, completed):
    """What breaks the guarantees in jobs (from jobs_with_payloads): a list
    of one-line problems, empty when every acknowledged submit (acked:
    payload -> id) is there under its id with its payload, no other job
    carries an acknowledged payload, and every acknowledged completion
    (completed: ids) is still completed."""
    problems = ["acknowledged job lost: %s (payload %s)" % (i, p)
                for p, i in acked.items() if i not in jobs]
    ids = set(acked.values())
    for job_id, job in jobs.items():
        if job_id in ids:
            if acked.get(job["payload"]) != job_id:
                problems.append("job %s carries payload %r, acknowledged as %s" %
                                (job_id, job["payload"], acked.get(job["payload"])))
        elif job["payload"] in acked:
            problems.append("acknowledged payload %r present twice (jobs %s and %s)" %
                            (job["payload"], acked[job["payload"]], job_id))
    problems += ["acknowledged completion lost: job %s is %s" % (i, jobs[i]["state"])
                 for i in completed if i in jobs and jobs[i]["state"] != "completed"]
    return problems


def completed_now(leader, known):
    """Adds to known the jobs whose completion leader acknowledges: a job
    read (GET /v1/jobs/ID) answers only once what it reports is durable on
    both copies, unlike the list."""
    conn = leader.connect()
    try:
        for j in all_jobs(leader, conn):
            if j["state"] == "completed" and j["id"] not in known:
                status, _, body = leader.get("/v1/jobs/%s" % j["id"], conn=conn)
                if status == 200 and body["state"] == "completed":
                    known.add(j["id"])
    finally:
        conn.close()


def add_results(leader, jobs):
    """Sets "result" on each completed job of jobs (from
    jobs_with_payloads), read from leader on one connection."""
    conn = leader.connect()
    try:
        for job_id, job in jobs.items():
            if job["state"] == "completed":
                status, _, body = leader.get("/v1/jobs/%s/result" % job_id, conn=conn)
                assert status == 200, (status, body)
                job["result"] = body.get("result")
    finally:
        conn.close()


def run_logger(tmp, log):
    """Writes tmp/run.sh, a handler that logs its run to log (job id,
    attempt, worker name, worker pid, its own pid, wall-clock seconds) and
    returns the same line as the job's result, so the result names the
    run that completed the job. Plain words, so the worker execs it
    directly ($PPID is the worker)."""
    path = os.path.join(tmp, "run.sh")
    with open(path, "w") as f:
        f.write('#!/bin/sh\ncat >/dev/null\n'
                'r="$JOBMESH_JOB_ID $JOBMESH_ATTEMPT $1 $PPID $$ $(date +%%s.%%N)"\n'
                'echo "$r" >> %s\nprintf %%s "$r"\n' % log)
    os.chmod(path, 0o755)
    return path


def handler(script, worker):
    """The --handler of job type t for worker (a name) running script."""
    return "t=%s %s" % (script, worker)


def executions(path):
    """(job id, attempt, worker, worker pid, run pid, wall-clock time) of
    every run logged to path by run_logger's script, as strings."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = tuple(line.split())
                if len(parts) == 6:
                    out.append(parts)
    return out


def runs_cut_short(runs, kills, window_s=20.0, after_s=5.0):
    """The runs whose outcome may never have reached a broker: those in a
    worker process killed (kills: (worker pids, wall-clock time of the
    kill)) that started less than window_s before its kill. A worker
    retries a settle until a broker answers, and a fault here lasts far
    less than window_s, so an older run's outcome was answered. A handler
    runs in a process group of its own, so one the worker had started
    outlives the kill and may log its run just after it (after_s)."""
    out = set()
    for pids, at in kills:
        pids = {str(p) for p in pids}
        out.update(r for r in runs
                   if r[3] in pids and at - window_s <= float(r[5]) <= at + after_s)
    return out


DROPPED = re.compile(r"job (\d+) lease \d+: (?:result refused|the broker asked us to abandon|"
                     r"the job was cancelled)|giving up the settle of \d+ job\(s\) \(first: "
                     r"job (\d+)")


def completed_twice(jobs, runs, worker_logs, cut_short=()):
    """What a completion acknowledged by two leaders would leave: one-line
    problems, empty when every completed job's result (jobs: id -> job on
    the last leader, with add_results) is one run's, and every other run
    of a completed job is one whose outcome its worker logged as refused
    (or abandoned), or is in cut_short (runs_cut_short: its outcome may
    never have been sent). Delivery is at least once (a lease record not
    yet synced when the leader is lost is handed out again, with the same
    attempt); completion exactly once. worker_logs: worker name -> its
    log text."""
    problems = []
    dropped = collections.Counter()
    for worker, text in worker_logs.items():
        for m in DROPPED.finditer(text):
            dropped[(worker, m.group(1) or m.group(2))] += 1
    others = collections.Counter()
    for run in runs:
        # A job unknown to the leader is not a problem: a job is delivered
        # before its submit is synced, so one the old leader never
        # acknowledged can run and be gone after a failover (its id is
        # then given to the next submit on the new leader, and the run's
        # settle is refused: "not found", or stale).
        job = jobs.get(run[0])
        if job is not None and job["state"] == "completed" and \
                job["result"] != " ".join(run) and run not in cut_short:
            others[(run[2], run[0])] += 1
    known = {" ".join(r) for r in runs}
    problems += ["job %s completed with %r, which no run produced" % (i, j["result"])
                 for i, j in jobs.items()
                 if j["state"] == "completed" and j["result"] not in known]
    problems += ["job %s: %d run(s) on %s not refused, yet the leader kept another outcome" %
                 (job, n - dropped[(w, job)], w)
                 for (w, job), n in others.items() if n > dropped[(w, job)]]
    return problems
