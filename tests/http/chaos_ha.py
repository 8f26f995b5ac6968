"""Chaos run for high availability (scripts/chaos; not part of ctest).

Two replicated brokers, etcd and two workers, each in a network namespace
of its own (jmnetns), under steady HTTP submits from the hub. For the
given minutes, one fault at a time at random: kill -9, SIGSTOP (for 1-6
s) or a network cut (from everything, or from etcd alone; for 1-8 s) of
the leader, the standby or a worker. What exits is started again, as a
supervisor would (a killed process after 0.5-3 s, a broker that stepped
down at once). Then every fault is healed, the cluster must have a leader
with its standby in sync, and the final check runs: every acknowledged
job is on the leader exactly once, every completion read back during the
run is still completed, and no job was completed twice (jmha). Prints a
summary (faults, failovers, their times, jobs checked) and exits 0 only
if nothing was lost or doubled.

Needs root and iproute2. Every wait is bounded; every process is stopped
by PID and every namespace deleted on every exit path."""

import argparse
import collections
import http.client
import os
import random
import signal
import statistics
import sys
import time

from jmha import (Load, add_results, completed_twice, executions, handler, jobs_with_payloads,
                  lost_or_doubled, run_logger, runs_cut_short)
from jmhttp import wait_for
from jmnetns import NetCluster, fail_on_sigterm, netns_unavailable

BROKERS = ("b1", "b2")
WORKERS = ("w1", "w2")


def quick_get(b, path, timeout_s=1.0):
    """(status, JSON body) of a GET on b, or (None, None) when it does
    not answer within timeout_s (a broker cut off or stopped)."""
    conn = http.client.HTTPConnection(b.host, b.port, timeout=timeout_s)
    try:
        return b.get(path, conn=conn)[0::2]
    except (OSError, http.client.HTTPException, ValueError):
        return None, None
    finally:
        conn.close()


def group_pids(pgid):
    """The pids of process group pgid (a worker and its handlers)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                out.append(int(entry))
    return out


class Chaos:
    def __init__(self, c, rng, say):
        self.c, self.rng, self.say = c, rng, say
        self.faults = collections.Counter()
        self.leader_faults = []  # (time, leader name, fault)
        self.kills = []  # (pids of a killed worker, wall-clock time)
        self.restart_at = {}  # broker or worker name -> monotonic time
        self.workers = {}
        self.script = run_logger(c.tmp, os.path.join(c.tmp, "runs.log"))
        self.stepped_down = 0

    # -- processes ---------------------------------------------------------

    def start_worker(self, name):
        brokers = [self.c.brokers[b] for b in BROKERS]
        self.workers[name] = self.c.worker(brokers, "q", handler(self.script, name), name,
                                           node=name)

    def leader(self):
        for name in BROKERS:
            b = self.c.brokers[name]
            if b.proc.poll() is None and quick_get(b, "/readyz", 0.5)[0] == 200:
                return name
        return None

    def supervise(self):
        """Starts again what exited: a killed process once its restart time
        came, a broker that stepped down (exit 4, or 1 when it could not
        write its last records) at once."""
        now = time.monotonic()
        for name in BROKERS:
            b = self.c.brokers[name]
            if b.proc.poll() is None:
                continue
            if name not in self.restart_at:
                self.stepped_down += 1
                self.say("%s exited %s: starting it again" % (name, b.proc.returncode))
            elif now < self.restart_at[name]:
                continue
            self.restart_at.pop(name, None)
            self.c.start(name, replicated=True)
        for name in WORKERS:
            p = self.workers[name]
            if p.poll() is not None and now >= self.restart_at.get(name, 0):
                self.restart_at.pop(name, None)
                self.start_worker(name)

    def hold(self, seconds):
        """Supervises for seconds (polling every 0.1 s)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.supervise()
            time.sleep(0.1)

    # -- faults --------------------------------------------------------------

    def inject(self):
        leader = self.leader()
        role = self.rng.choice(("leader", "leader", "standby", "worker"))
        if role == "worker":
            target = self.rng.choice(WORKERS)
        elif leader is None:
            target, role = self.rng.choice(BROKERS), "broker (no leader)"
        else:
            target = leader if role == "leader" else [b for b in BROKERS if b != leader][0]
        kinds = ["kill9", "stop", "cut"] + (["cut-etcd"] if target in BROKERS else [])
        kind = self.rng.choice(kinds)
        self.faults[kind + " " + role.split()[0]] += 1
        at = time.monotonic()
        if role == "leader":
            self.leader_faults.append((at, target, kind))
        if kind == "kill9":
            self.say("kill -9 %s (%s)" % (target, role))
            if target in BROKERS:
                self.c.brokers[target].proc.kill()
                self.c.brokers[target].proc.wait()
            elif self.workers[target].poll() is None:
                p = self.workers[target]
                pids = group_pids(p.pid)
                os.killpg(p.pid, signal.SIGKILL)
                self.kills.append((pids, time.time()))
                p.wait()
            self.restart_at[target] = at + self.rng.uniform(0.5, 3)
            self.hold(self.rng.uniform(1, 4))
        elif kind == "stop":
            d = self.rng.uniform(1, 6)
            self.say("SIGSTOP %s (%s) for %.1f s" % (target, role, d))
            if target in BROKERS:
                b = self.c.brokers[target]
                b.proc.send_signal(signal.SIGSTOP)
                try:
                    self.hold(d)
                finally:
                    b.proc.send_signal(signal.SIGCONT)
            elif self.workers[target].poll() is None:
                pgid = self.workers[target].pid
                os.killpg(pgid, signal.SIGSTOP)
                try:
                    self.hold(d)
                finally:
                    os.killpg(pgid, signal.SIGCONT)
        else:
            nets = ("etcd",) if kind == "cut-etcd" else ("data", "etcd")
            d = self.rng.uniform(1, 8)
            self.say("cut %s (%s) off %s for %.1f s" % (target, role, "+".join(nets), d))
            self.c.net.cut(target, nets)
            try:
                self.hold(d)
            finally:
                self.c.net.heal(target, nets)
        self.hold(self.rng.uniform(1, 4))

    def recover(self, timeout_s):
        """Everything healed and started: a leader with its standby in
        sync. Returns the leader's name."""
        for name in BROKERS:
            if self.c.brokers[name].proc.poll() is not None:
                self.restart_at[name] = 0
        for name in WORKERS:
            self.restart_at.pop(name, None)
        deadline = time.monotonic() + timeout_s
        leader = None
        while time.monotonic() < deadline:
            self.supervise()
            leader = self.leader()
            if leader and self.c.in_sync(leader, [b for b in BROKERS if b != leader][0]):
                return leader
            time.sleep(0.2)
        raise AssertionError("no leader with its standby in sync within %d s (leader %s)\n%s" %
                             (timeout_s, leader, self.c.logs()))


def completed_since(b, known, timeout_s=2.0):
    """Adds to known the jobs b reads back as completed (a job read answers
    once what it reports is acknowledged); stops quietly when b does not
    answer (a fault)."""
    conn = http.client.HTTPConnection(b.host, b.port, timeout=timeout_s)
    try:
        cursor = None
        for _ in range(1000):
            path = "/v1/jobs?queue=q&state=completed&limit=1000" + (
                "&cursor=%s" % cursor if cursor else "")
            status, _, body = b.get(path, conn=conn)
            if status != 200:
                return
            for j in body["jobs"]:
                if j["state"] == "completed" and j["id"] not in known:
                    s, _, one = b.get("/v1/jobs/%s" % j["id"], conn=conn)
                    if s == 200 and one["state"] == "completed":
                        known.add(j["id"])
            cursor = body["next_cursor"]
            if cursor is None:
                return
    except (OSError, http.client.HTTPException, ValueError):
        return
    finally:
        conn.close()


def summary(chaos, load, seed, jobs, completed, runs, cut_short, problems, t0):
    acks = sorted(load.ack_times)
    failovers, times, outages = 0, [], []
    for prev, cur in zip(acks, acks[1:]):
        if prev[1] != cur[1]:
            failovers += 1
    for at, old, kind in chaos.leader_faults:
        nxt = [t for t, name in acks if t > at and name != old]
        same = [t for t, name in acks if t > at]
        if nxt and (not same or nxt[0] <= same[0]):
            times.append(nxt[0] - at)
        if same:
            outages.append((same[0] - at, kind))
    lines = ["== chaos: %.1f minutes, seed %d" % ((time.monotonic() - t0) / 60, seed),
             "faults injected: %d (%s)" % (sum(chaos.faults.values()), ", ".join(
                 "%s %d" % kv for kv in sorted(chaos.faults.items()))),
             "brokers that stepped down on their own and were started again: %d" %
             chaos.stepped_down,
             "failovers (the acknowledging broker changed): %d" % failovers]
    if times:
        lines.append("leader fault to the first write acknowledged by the other broker: "
                     "p50 %.2f s, max %.2f s (%d)" % (statistics.median(times), max(times),
                                                      len(times)))
    if outages:
        ts = [o for o, _ in outages]
        lines.append("leader fault to the next acknowledged write (any broker): p50 %.2f s, "
                     "max %.2f s" % (statistics.median(ts), max(ts)))
    again = [r for r in runs if r[0] in jobs and jobs[r[0]]["state"] == "completed" and
             jobs[r[0]].get("result") != " ".join(r)]
    lines.append("jobs checked: %d acknowledged submits, %d completions read back (%d during "
                 "the faults), %d jobs completed at the end, %d handler runs; %d runs of a job "
                 "another run completed (each refused, or cut short by a worker's kill -9: %d)" %
                 (len(load.acked), len(completed), chaos.completed_during_faults,
                  sum(1 for j in jobs.values() if j["state"] == "completed"), len(runs),
                  len(again), len([r for r in again if r in cut_short])))
    by_kind = collections.defaultdict(list)
    for at, old, kind in chaos.leader_faults:
        nxt = [t for t, name in acks if t > at]
        if nxt:
            by_kind[kind].append(nxt[0] - at)
    lines.append("leader fault to the next acknowledged write, by fault: " + "; ".join(
        "%s %d: p50 %.2f s, max %.2f s" % (k, len(v), statistics.median(v), max(v))
        for k, v in sorted(by_kind.items())))
    lines.append("problems: %d%s" % (len(problems), "".join("\n  " + p for p in problems[:30])))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    why = netns_unavailable()
    if why:
        print("chaos: cannot run: " + why, file=sys.stderr)
        return 2
    fail_on_sigterm()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    t0 = time.monotonic()

    def say(text):
        print("%7.1f s  %s" % (time.monotonic() - t0, text), flush=True)

    c = NetCluster(ttl_ms=3000, renew_ms=500)
    say("logs in %s (kept with JOBMESH_KEEP_TMP=1)" % c.tmp)
    load = None
    try:
        chaos = Chaos(c, rng, say)
        b1 = c.start("b1", replicated=True)
        c.wait_leader(b1, 15)
        c.start("b2", replicated=True)
        wait_for(lambda: c.in_sync("b1", "b2"), 30, "b2 in sync with b1", step_s=0.05)
        for w in WORKERS:
            chaos.start_worker(w)
        load = Load(c, list(BROKERS), threads=2, tag="c", pace_s=0.03,
                    max_s=args.minutes * 60 + 600)
        completed = set()
        say("seed %d: faults for %.1f minutes" % (seed, args.minutes))
        end = t0 + args.minutes * 60
        while time.monotonic() < end:
            chaos.inject()
            leader = chaos.leader()
            if leader:
                completed_since(c.brokers[leader], completed)
        chaos.completed_during_faults = len(completed)
        say("healing everything")
        leader = chaos.recover(90)
        say("%s leads with its standby in sync" % leader)
        base = load.count()
        wait_for(lambda: load.count() >= base + 50, 60, "submits acknowledged at the end")
        load.stop()
        completed_since(c.brokers[leader], completed, timeout_s=30)
        for p in c.workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in c.workers:
            try:
                p.wait(40)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        say("final check on %s" % leader)
        final = c.brokers[leader]
        jobs = jobs_with_payloads(final)
        add_results(final, jobs)
        runs = executions(os.path.join(c.tmp, "runs.log"))
        logs = {}
        for w in WORKERS:
            with open(os.path.join(c.tmp, w + ".err")) as f:
                logs[w] = f.read()
        problems = lost_or_doubled(jobs, load.acked, completed)
        cut_short = runs_cut_short(runs, chaos.kills)
        problems += completed_twice(jobs, runs, logs, cut_short)
        problems += ["HTTP %s: %s" % e for e in load.errors]
        print(summary(chaos, load, seed, jobs, completed, runs, cut_short, problems, t0))
        if problems and os.environ.get("JOBMESH_KEEP_TMP") is None:
            print("(JOBMESH_KEEP_TMP=1 keeps the logs in %s)" % c.tmp)
        return 1 if problems else 0
    finally:
        if load is not None:
            load.stop()
        for name in BROKERS:
            b = c.brokers.get(name)
            if b is not None and b.proc.poll() is None:
                b.proc.send_signal(signal.SIGCONT)
        for p in c.workers:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                except OSError:
                    pass
        try:
            c.stop()
        except AssertionError as e:
            print("chaos: at stop: %s" % str(e)[:2000], file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
