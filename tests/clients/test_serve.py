"""jobmesh-worker --serve with the Python and the Node handler libraries,
through a real broker and a real worker (jobs submitted and read with the
jobmesh CLI over NNG; the 1,000-job test uses the HTTP API)."""

import json
import os
import signal
import shutil
import unittest

from stack import HERE, Stack, pid_alive, poll_until, stop_process

import jobmesh

HANDLERS = {
    "python": f"python3 {os.path.join(HERE, 'handler.py')}",
    "node": f"node {os.path.join(HERE, 'handler.mjs')}",
}
TYPES = ["echo", "sleep", "async.echo", "die", "fail", "noop", "hex", "die.once"]


def serve_args(lang):
    args = []
    for t in TYPES:
        args += ["--serve", f"{t}={HANDLERS[lang]}"]
    return args


class ServeCase:
    lang = "python"

    def setUp(self):
        if self.lang == "node" and shutil.which("node") is None:
            self.fail("node is not installed (scripts/install-deps installs nodejs)")
        self.stack = Stack(http=False)
        self.addCleanup(self.stack.close)

    def submit(self, type_, payload="", *flags):
        return self.stack.cli("submit", "--queue", "q", "--type", type_, "--payload", payload,
                              *flags).strip()

    def job(self, job_id):
        return self.stack.cli_json("status", job_id)

    def wait_state(self, job_id, states, timeout_s=30):
        return poll_until(f"job {job_id} to reach {states}",
                          lambda: (lambda j: j if j["state"] in states else None)(self.job(job_id)),
                          timeout_s)

    def result_json(self, job_id):
        return json.loads(self.stack.cli("result", job_id))

    def test_serve_handles_1000_jobs_with_at_most_one_process_per_slot(self):
        slots = 4
        stack = Stack()  # this one over HTTP: a batch's job ids, results in one connection
        self.addCleanup(stack.close)
        stack.worker(*serve_args(self.lang), concurrency=slots)
        jm = jobmesh.Client(stack.url, timeout=30)
        self.addCleanup(jm.close)
        batch = jm.submit_batch([{"queue": "q", "type": "echo", "payload": f"n{i}"}
                                 for i in range(1000)])
        status = jm.wait_batch(batch["id"], timeout=240)
        self.assertEqual((status["completed"], status["failed"]), (1000, 0), status)
        results = [json.loads(jm.result(job_id)) for job_id in batch["job_ids"]]
        self.assertEqual([r["payload"] for r in results], [f"n{i}" for i in range(1000)])
        pids = {r["pid"] for r in results}
        self.assertLessEqual(len(pids), slots, f"more processes than slots: {pids}")
        for pid in pids:
            self.assertTrue(pid_alive(pid), f"handler process {pid} should still be serving")

    def test_serve_handler_is_killed_on_job_timeout_and_restarted(self):
        self.stack.worker(*serve_args(self.lang), concurrency=1)
        # One slot, one process for every type: a finished job names it (and
        # it is warm, so the timeout below measures the job, not start-up).
        pid = self.result_json(self._run("echo", "before"))["pid"]
        job_id = self.submit("sleep", '{"ms": 60000}', "--timeout-ms", "1000", "--max-attempts", "1")
        failed = self.wait_state(job_id, {"failed"})
        self.assertIn("timed out after 1000 ms", failed["last_error"])
        self.assertIn(f"handler process {pid} ", failed["last_error"])
        poll_until(f"handler process {pid} to be gone", lambda: not pid_alive(pid), 10)
        again = self.result_json(self._run("echo", "after"))
        self.assertNotEqual(again["pid"], pid)
        self.assertTrue(pid_alive(again["pid"]))

    def test_serve_handler_running_a_cancelled_job_is_killed_and_restarted(self):
        self.stack.worker(*serve_args(self.lang), concurrency=1)
        job_id = self.submit("sleep", '{"ms": 60000}')
        active = poll_until("the sleep job to start",
                            lambda: (lambda j: j if (j.get("progress") or {}).get("message", "").startswith("pid ") else None)(self.job(job_id)),
                            30)
        pid = int(active["progress"]["message"].split()[1])
        self.stack.cli("cancel", job_id)
        self.assertEqual(self.wait_state(job_id, {"cancelled"})["state"], "cancelled")
        # The worker hears of it with its next heartbeat and kills the process.
        poll_until(f"handler process {pid} to be killed", lambda: not pid_alive(pid), 20)
        again = self.result_json(self._run("echo", "after"))
        self.assertNotEqual(again["pid"], pid)

    def test_serve_handler_that_dies_fails_the_attempt_and_is_restarted(self):
        self.stack.worker(*serve_args(self.lang), concurrency=1)
        first = self.result_json(self._run("echo", "one"))
        died = self.submit("die", "", "--max-attempts", "1")
        failed = self.wait_state(died, {"failed"})
        self.assertIn("exited with code 3", failed["last_error"])
        second = self.result_json(self._run("echo", "two"))
        self.assertNotEqual(first["pid"], second["pid"])

    def test_serve_errors_results_and_async_handlers(self):
        self.stack.worker(*serve_args(self.lang), concurrency=2)
        perm = self.submit("fail", "", "--max-attempts", "3")
        failed = self.wait_state(perm, {"failed"})
        self.assertEqual(failed["attempt"], 1, "a PermanentError must not be retried")
        self.assertIn("refused for good", failed["last_error"])
        job_id = self._run("async.echo", "héllo")
        self.assertTrue(self.stack.cli("result", job_id).startswith("async héllo "))

    def test_serve_payloads_reach_the_handler_byte_for_byte(self):
        self.stack.worker(*serve_args(self.lang), concurrency=1)
        raw = bytes([0xFF, 0x00, 0x41, 0xC3]) + "é\n\"{}".encode()  # not UTF-8, with NUL
        path = os.path.join(self.stack.dir, "payload.bin")
        with open(path, "wb") as f:
            f.write(raw)
        binary = self.stack.cli("submit", "--queue", "q", "--type", "hex", "--payload-file", path).strip()
        text = self.submit("hex", "héllo \"quoted\"\n")
        for job_id in (binary, text):
            self.wait_state(job_id, {"completed"})
        self.assertEqual(self.stack.cli("result", binary), raw.hex())
        self.assertEqual(self.stack.cli("result", text), "héllo \"quoted\"\n".encode().hex())

    def test_serve_processes_die_with_a_worker_killed_by_sigkill(self):
        worker = self.stack.worker(*serve_args(self.lang), concurrency=1)
        # Busy in a 60 s job, the handler does not see its stdin close: only
        # the guardian's signal ends it in time.
        job_id = self.submit("sleep", '{"ms": 60000}')
        active = poll_until("the sleep job to start",
                            lambda: (lambda j: j if (j.get("progress") or {}).get("message", "").startswith("pid ") else None)(self.job(job_id)),
                            30)
        pid = int(active["progress"]["message"].split()[1])
        os.kill(worker.pid, signal.SIGKILL)  # no drain, no cleanup: the guardian's job
        stop_process(worker)
        poll_until(f"handler process {pid} to be stopped by the guardian",
                   lambda: not pid_alive(pid), 20)

    def test_serve_finishes_its_job_on_sigterm_drain(self):
        worker = self.stack.worker(*serve_args(self.lang), concurrency=1)
        job_id = self.submit("sleep", '{"ms": 1500}')
        active = poll_until("the sleep job to start",
                            lambda: (lambda j: j if (j.get("progress") or {}).get("message", "").startswith("pid ") else None)(self.job(job_id)),
                            30)
        pid = int(active["progress"]["message"].split()[1])
        os.kill(worker.pid, signal.SIGTERM)
        code = poll_until("the worker to exit", lambda: worker.poll() is not None, 30) and worker.returncode
        self.assertEqual(code, 0, self.stack.log("worker"))
        stop_process(worker)
        done = self.job(job_id)
        self.assertEqual(done["state"], "completed", done)
        self.assertEqual(self.result_json(job_id), {"pid": pid, "slept": True})
        poll_until(f"handler process {pid} to exit after stop", lambda: not pid_alive(pid), 10)

    def _pipeline_stack(self):
        """A stack over HTTP (a batch's job ids) whose worker runs one
        process, warmed by a batch of echo jobs so the worker knows its
        answer times and pipelines the next jobs (its depth is 1 until it
        does). Returns the client and the process's pid."""
        stack = Stack()
        self.addCleanup(stack.close)
        stack.worker(*serve_args(self.lang), concurrency=1)
        jm = jobmesh.Client(stack.url, timeout=30)
        self.addCleanup(jm.close)
        warm = jm.submit_batch([{"queue": "q", "type": "echo", "payload": f"warm{i}"}
                                for i in range(50)])
        jm.wait_batch(warm["id"], timeout=60)
        pids = {json.loads(jm.result(j))["pid"] for j in warm["job_ids"]}
        self.assertEqual(len(pids), 1, pids)
        return stack, jm, pids.pop()

    def _pipelined_behind(self, stack, jm, first, count, **echo_opts):
        """Queues the jobs of first (a list) and count echo jobs on the
        paused queue and resumes it, so the one process gets the echoes
        pipelined behind first."""
        stack.cli("queue", "pause", "q")
        batch = jm.submit_batch(first + [{"queue": "q", "type": "echo", "payload": f"n{i}", **echo_opts}
                                         for i in range(count)])
        stack.cli("queue", "resume", "q")
        jm.wait_batch(batch["id"], timeout=120)
        return batch["job_ids"][:len(first)], batch["job_ids"][len(first):]

    def test_serve_pipelined_jobs_survive_a_crash_mid_pipeline_without_loss_or_double_completion(self):
        stack, jm, pid = self._pipeline_stack()
        # die.once exits 0.5 s into its first attempt; the 2 s sleeper is in
        # flight then (beside it in Node, behind it in Python), and so are
        # the echoes behind them in Python (Node answers those at once).
        (die, sleeper), echoes = self._pipelined_behind(stack, jm, [
            {"queue": "q", "type": "die.once"},
            {"queue": "q", "type": "sleep", "data": {"ms": 2000}},
        ], 100)
        finals = {j: jm.get(j) for j in [die, sleeper] + echoes}
        self.assertEqual({f["state"] for f in finals.values()}, {"completed"}, finals)
        for j in (die, sleeper):
            # Any job in flight in a process that died may have killed it:
            # each failed that attempt and completed on the next one.
            self.assertEqual(finals[j]["attempt"], 2, finals[j])
            self.assertIn(f"handler process {pid} exited with code 3", finals[j]["last_error"])
        self.assertNotEqual(json.loads(jm.result(sleeper))["pid"], pid)
        results = [json.loads(jm.result(j)) for j in echoes]
        self.assertEqual([r["payload"] for r in results], [f"n{i}" for i in range(100)])
        self.assertEqual([r["attempt"] for r in results], [finals[j]["attempt"] for j in echoes])
        # Each job completed once: the queue counts every one exactly once.
        queue = {q["name"]: q for q in jm.queues()}["q"]["counts"]
        self.assertEqual((queue["completed"], queue["failed"]), (152, 0), queue)

    def test_serve_jobs_pipelined_behind_a_timed_out_job_are_handed_back_without_an_attempt(self):
        stack, jm, pid = self._pipeline_stack()
        # Every job here has one attempt: one that failed instead of being
        # handed back would be dead-lettered.
        (sleeper, sibling), echoes = self._pipelined_behind(stack, jm, [
            {"queue": "q", "type": "sleep", "data": {"ms": 60000}, "timeout_ms": 1000, "max_attempts": 1},
            {"queue": "q", "type": "sleep", "data": {"ms": 2500}, "max_attempts": 1},
        ], 20, max_attempts=1)
        failed = jm.get(sleeper)
        self.assertEqual(failed["state"], "failed", failed)
        self.assertIn("timed out after 1000 ms", failed["last_error"])
        self.assertIn(f"handler process {pid} ", failed["last_error"])
        # The sibling was running (Node) or waiting behind the sleeper (Python)
        # when the process was killed: handed back, it ran again elsewhere.
        done = jm.get(sibling)
        self.assertEqual((done["state"], done["attempt"]), ("completed", 1), done)
        self.assertNotEqual(json.loads(jm.result(sibling))["pid"], pid)
        with open(os.path.join(stack.dir, "worker.log"), errors="replace") as f:
            log = f.read()  # whole: stack.log keeps only the tail
        self.assertRegex(log, rf"job {sibling} \(sleep\) handed back: serve .*: handed back: "
                              rf"handler process {pid}, which also ran job {sleeper}, was stopped")
        for j in echoes:
            done = jm.get(j)
            self.assertEqual((done["state"], done["attempt"]), ("completed", 1), done)

    def _run(self, type_, payload):
        job_id = self.submit(type_, payload)
        self.wait_state(job_id, {"completed"})
        return job_id


class PythonServeTest(ServeCase, unittest.TestCase):
    lang = "python"


class NodeServeTest(ServeCase, unittest.TestCase):
    lang = "node"


if __name__ == "__main__":
    unittest.main()
