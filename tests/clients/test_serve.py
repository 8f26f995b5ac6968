"""jobmesh-worker --serve with the Python and the Node handler libraries,
through a real broker and a real worker (jobs submitted and read with the
jobmesh CLI over NNG; the 1,000-job test uses the HTTP API)."""

import json
import os
import shlex
import signal
import shutil
import subprocess
import unittest

from stack import HERE, Stack, pid_alive, poll_until, stop_process

import jobmesh

HANDLERS = {
    "python": f"python3 {os.path.join(HERE, 'handler.py')}",
    "node": f"node {os.path.join(HERE, 'handler.mjs')}",
}
TYPES = ["echo", "sleep", "async.echo", "die", "fail", "noop", "hex", "die.once"]


def serve_args(lang, prefix=""):
    args = []
    for t in TYPES:
        args += ["--serve", f"{t}={prefix}{HANDLERS[lang]}"]
    return args


def worker_log(stack):
    with open(os.path.join(stack.dir, "worker.log"), errors="replace") as f:
        return f.read()  # whole: stack.log keeps only the tail


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

    def _talk(self, lines, env=None):
        """Runs the handler library's process alone, writes lines (then
        stop) on its stdin and returns its hello, the other lines it wrote
        (decoded) and its stderr."""
        proc = subprocess.Popen(shlex.split(HANDLERS[self.lang]), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, **(env or {})})
        self.addCleanup(stop_process, proc)
        text = "".join(json.dumps(line) + "\n" for line in lines + [{"op": "stop"}])
        out, err = proc.communicate(text.encode(), timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        got = [json.loads(line) for line in out.decode().splitlines()]
        return got[0], got[1:], err.decode(errors="replace")

    def test_serve_library_answers_a_jobs_line_with_one_results_line(self):
        job = {"op": "job", "id": "10", "type": "echo", "queue": "q", "attempt": 1,
               "payload": "first", "deadline": None, "timeout_ms": 0}
        items = [["11", "echo", "q", 1, "héllo", None, 0],
                 ["12", "noop", "q", 1, "", None, 0],
                 ["13", "hex", "q", 1, None, None, 0, "/wBBww=="],
                 ["14", "fail", "q", 2, "", 1764500000000, 30000],
                 ["15"],  # not a job: skipped with a word on stderr
                 ["16", "noop", "q", 1, "", None, 0],
                 # No such handler, though a JavaScript object inherits one.
                 ["17", "constructor", "q", 1, "", None, 0]]
        hello, lines, err = self._talk([job, {"op": "jobs", "jobs": items}])
        self.assertEqual(hello, {"op": "hello", "pipeline": 128, "batch": True})
        # A job line (an older worker, or one written before the hello was
        # read) gets a result line; the jobs of a jobs line one results line.
        self.assertEqual(lines[0]["op"], "result", lines)
        self.assertEqual((lines[0]["id"], json.loads(lines[0]["result"])["payload"]), ("10", "first"))
        results = [line for line in lines if line["op"] == "results"]
        self.assertEqual(len(results), 1, lines)
        self.assertEqual(results[0]["ids"], ["11", "12", "13", "16"])
        texts = results[0]["results"]
        self.assertEqual(json.loads(texts[0])["payload"], "héllo")
        self.assertEqual(texts[1:], ["", "ff0041c3", ""])
        errors = [line for line in lines if line["op"] == "error"]
        self.assertEqual([(e["id"], e["permanent"]) for e in errors], [("14", True), ("17", True)], lines)
        self.assertIn("refused for good", errors[0]["message"])
        self.assertIn('no handler for type "constructor"', errors[1]["message"].replace("'", '"'))
        self.assertEqual(len(lines), 4, lines)
        self.assertIn("bad job in a jobs line", err)

    def test_serve_library_told_not_to_batch_asks_for_job_lines(self):
        job = {"op": "job", "id": "10", "type": "noop", "queue": "q", "attempt": 1,
               "payload": "", "deadline": None, "timeout_ms": 0}
        hello, lines, _ = self._talk([job], env={"JOBMESH_TEST_SERVE_BATCH": "0"})
        self.assertEqual(hello, {"op": "hello", "pipeline": 128})
        self.assertEqual(lines, [{"op": "result", "id": "10", "result": ""}])

    def test_serve_batched_and_unbatched_handlers_drain_pipelined_jobs_through_the_worker(self):
        for prefix, batched in (("", True), ("JOBMESH_TEST_SERVE_BATCH=0 ", False)):
            with self.subTest(batched=batched):
                stack, jm, _ = self._pipeline_stack(prefix)
                self.assertEqual('in "jobs" lines' in worker_log(stack), batched)
                stack.cli("queue", "pause", "q")
                batch = jm.submit_batch(
                    [{"queue": "q", "type": "echo", "payload": f"n{i}"} for i in range(200)]
                    + [{"queue": "q", "type": "noop"} for _ in range(100)])
                stack.cli("queue", "resume", "q")
                status = jm.wait_batch(batch["id"], timeout=120)
                self.assertEqual((status["completed"], status["failed"]), (300, 0), status)
                echoes = [json.loads(jm.result(j)) for j in batch["job_ids"][:200]]
                self.assertEqual([(r["payload"], r["attempt"]) for r in echoes],
                                 [(f"n{i}", 1) for i in range(200)])
                self.assertEqual({jm.result(j) for j in batch["job_ids"][200:]}, {""})

    def _pipeline_stack(self, prefix=""):
        """A stack over HTTP (a batch's job ids) whose worker runs one
        process, warmed by a batch of echo jobs so the worker knows its
        answer times and pipelines the next jobs (its depth is 1 until it
        does). Returns the client and the process's pid. The queue budget
        is 5 s, not the default 10 ms: on a loaded machine an answer can
        take over 10 ms, and the depth would then stay at 1."""
        stack = Stack()
        self.addCleanup(stack.close)
        stack.worker(*serve_args(self.lang, prefix), "--serve-queue-ms", "5000", concurrency=1)
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
        self.assertRegex(worker_log(stack), rf"job {sibling} \(sleep\) handed back: serve .*: handed back: "
                              rf"handler process {pid}, which also ran job {sleeper}, was stopped")
        for j in echoes:
            done = jm.get(j)
            self.assertEqual((done["state"], done["attempt"]), ("completed", 1), done)

    def _run(self, type_, payload):
        job_id = self.submit(type_, payload)
        self.wait_state(job_id, {"completed"})
        return job_id


class WorkerBatchCases:
    """The worker's side of the batched form, against a handler written on
    the protocol itself (tests/clients/raw_handler.py): language-free, so
    run once, with the Python case."""

    def _raw_stack(self, mode=""):
        stack = Stack()
        self.addCleanup(stack.close)
        record = os.path.join(stack.dir, "handler-input.jsonl")
        command = f"python3 {os.path.join(HERE, 'raw_handler.py')} {record} {mode}"
        stack.worker("--serve", f"echo={command}", concurrency=1)
        # No job before the worker read the hello: it would go as a job line.
        poll_until("the handler's hello", lambda: 'in "jobs" lines' in worker_log(stack), 30)
        jm = jobmesh.Client(stack.url, timeout=30)
        self.addCleanup(jm.close)
        return stack, jm, record

    def test_worker_sends_a_batching_handler_several_jobs_a_line_and_reads_its_results_lines(self):
        stack, jm, record = self._raw_stack()
        stack.cli("queue", "pause", "q")
        batch = jm.submit_batch([{"queue": "q", "type": "echo", "payload": f"n{i}"}
                                 for i in range(100)])
        stack.cli("queue", "resume", "q")
        status = jm.wait_batch(batch["id"], timeout=120)
        self.assertEqual((status["completed"], status["failed"]), (100, 0), status)
        self.assertEqual([jm.result(j) for j in batch["job_ids"]], [f"rn{i}" for i in range(100)])
        with open(record) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual({line["op"] for line in lines}, {"jobs"}, lines[:3])
        items = [item for line in lines for item in line["jobs"]]
        self.assertEqual(sorted(item[0] for item in items), sorted(batch["job_ids"]))
        self.assertEqual({tuple(item[1:4]) for item in items}, {("echo", "q", 1)})
        self.assertGreater(max(len(line["jobs"]) for line in lines), 1,
                           "pipelined jobs should share lines")

    def test_worker_ignores_a_bad_results_line_with_a_warning_naming_what_is_wrong(self):
        stack, jm, _ = self._raw_stack("bad")
        job_id = jm.submit("q", "echo", payload="x", timeout_ms=1500, max_attempts=1)
        failed = poll_until("the unanswered job to time out",
                            lambda: (lambda j: j if j["state"] == "failed" else None)(jm.get(job_id)),
                            30)
        self.assertIn("timed out after 1500 ms", failed["last_error"])
        self.assertRegex(worker_log(stack), r"ignoring a line on stdout: results: ids\[1\] is not "
                                             r"a job id")
        # The process it restarted answers the next job.
        again = jm.submit("q", "echo", payload="y")
        self.assertEqual(jm.wait(again, timeout=30), "ry")


    def test_worker_reads_every_line_of_a_write_longer_than_it_decodes_at_once(self):
        # 301 lines a write: the last (the answer) waits in the worker's
        # buffer for the next wake-up, which must not wait for more input.
        stack, jm, _ = self._raw_stack("chatty")
        batch = jm.submit_batch([{"queue": "q", "type": "echo", "payload": f"n{i}", "timeout_ms": 120000}
                                 for i in range(5)])
        status = jm.wait_batch(batch["id"], timeout=60)
        self.assertEqual((status["completed"], status["failed"]), (5, 0), status)
        self.assertEqual([jm.result(j) for j in batch["job_ids"]], [f"rn{i}" for i in range(5)])


class PythonServeTest(ServeCase, WorkerBatchCases, unittest.TestCase):
    lang = "python"


class NodeServeTest(ServeCase, unittest.TestCase):
    lang = "node"


if __name__ == "__main__":
    unittest.main()
