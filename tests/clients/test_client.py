"""jobmesh.Client and jobmesh.AsyncClient through a real broker's HTTP API
and a real jobmesh-worker (its handlers are jobmesh.serve, handler.py)."""

import asyncio
import hashlib
import json
import os
import tempfile
import unittest

from stack import HERE, Stack

import jobmesh

HANDLER = f"python3 {os.path.join(HERE, 'handler.py')}"
TYPES = ["echo", "sleep", "async.echo", "fail", "noop"]


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        args = []
        for t in TYPES:
            args += ["--serve", f"{t}={HANDLER}"]
        cls.stack.worker(*args, concurrency=2)
        cls.jm = jobmesh.Client(cls.stack.url, timeout=20)

    @classmethod
    def tearDownClass(cls):
        cls.jm.close()
        cls.stack.close()

    def test_submit_and_wait_return_the_result_and_report_progress(self):
        job_id = self.jm.submit("q", "sleep", {"ms": 300})
        self.assertTrue(job_id.isdigit())
        seen = []
        result = self.jm.wait(job_id, timeout=30, on_progress=lambda d, t, m: seen.append((d, t, m)))
        self.assertEqual(json.loads(result)["slept"], True)
        self.assertIn((2, 2, "slept"), seen, seen)
        self.assertEqual(self.jm.get(job_id)["state"], "completed")
        self.assertEqual(self.jm.result(job_id), result)

    def test_wait_on_a_finished_job_returns_at_once(self):
        job_id = self.jm.submit("q", "async.echo", "done")
        first = self.jm.wait(job_id, timeout=30)
        self.assertTrue(first.startswith("async done "))
        self.assertEqual(self.jm.wait(job_id, timeout=5), first)

    def test_result_long_polls_until_the_job_finishes(self):
        job_id = self.jm.submit("q", "sleep", {"ms": 200})
        self.assertEqual(json.loads(self.jm.result(job_id, wait=30))["slept"], True)

    def test_an_idempotency_key_gives_one_job_and_a_resend_after_a_lost_answer_too(self):
        first = self.jm.submit("keys", "noop", "", idempotency_key="order-17", delay_ms=60000)
        self.assertEqual(self.jm.submit("keys", "noop", "", idempotency_key="order-17"), first)
        # The first try reaches the broker but its answer is lost (the
        # connection dies before the response): the client resends the same
        # body, with the key it made, and gets the job the first try made.
        import http.client

        class LosesFirstAnswer(http.client.HTTPConnection):
            lost = 0

            def getresponse(self):
                resp = super().getresponse()
                if LosesFirstAnswer.lost == 0:
                    LosesFirstAnswer.lost += 1
                    resp.read()
                    raise ConnectionResetError("answer lost")
                return resp

        class Flaky(jobmesh.Client):
            def _connect(self, url, timeout):
                parts = jobmesh.client.urlsplit(url)
                return LosesFirstAnswer(parts.hostname, parts.port, timeout=timeout)

        flaky = Flaky([self.stack.url, self.stack.url], timeout=20)
        try:
            resent = flaky.submit("keys.resend", "noop", "", delay_ms=60000)
        finally:
            flaky.close()
        self.assertEqual(LosesFirstAnswer.lost, 1)
        listed = self.jm.jobs(queue="keys.resend")
        self.assertEqual([j["id"] for j in listed["jobs"]], [resent])
        later = self.jm.submit("keys", "noop", "", run_at="2030-01-02T03:04:05Z")
        self.assertEqual(self.jm.get(later)["run_at_us"], 1893553445000000)

    def test_submit_many_and_a_batch_watched_to_the_end(self):
        ids = self.jm.submit_many("q", [{"type": "echo", "payload": f"m{i}"} for i in range(3)])
        self.assertEqual(len(set(ids)), 3)
        batch = self.jm.submit_batch([{"queue": "q", "type": "sleep", "data": {"ms": 20}}
                                      for i in range(20)])
        self.assertEqual(len(batch["job_ids"]), 20)
        seen = []
        status = self.jm.wait_batch(batch["id"], timeout=60,
                                    on_progress=lambda b: seen.append(b["completed"]))
        self.assertEqual((status["state"], status["completed"]), ("completed", 20), status)
        self.assertEqual(seen, sorted(seen), "batch progress never goes back")
        for job_id in batch["job_ids"]:
            self.assertEqual(self.jm.get(job_id)["state"], "completed")

    def test_a_stream_asked_for_one_kind_carries_only_that_kind(self):
        queue = "kinds"
        self.stack_worker_for(queue)
        with self.jm.subscribe(batch="", kinds=["batch"]) as stream:
            batch = self.jm.submit_batch([{"queue": queue, "type": "echo", "payload": "k"}] * 5)
            kinds = []
            for _ in range(100):  # a few progress events, then the final one
                ev = stream.next(timeout=30)
                self.assertIsNotNone(ev, "the stream ended")
                kinds.append(ev.kind)
                if ev["batch_id"] == batch["id"] and ev["state"] == "completed":
                    break
        self.assertEqual(set(kinds), {"batch"}, "no job events on a batch-only stream")

    def test_events_resume_after_a_dropped_stream_without_a_gap(self):
        queue = "resume"
        self.stack_worker_for(queue)
        done = set()
        # Subscribed before submitting: every completion is on the stream.
        with self.jm.subscribe(queue=queue) as stream:
            first = self.jm.submit_many(queue, [{"type": "echo", "payload": "a"}] * 5)
            while len(done) < 2:
                ev = stream.next(timeout=30)  # socket.timeout fails the test, never a hang
                self.assertIsNotNone(ev, "the stream ended")
                if ev.kind == "job_state" and ev["state"] == "completed":
                    done.add(ev["job_id"])
            last_id = stream.last_id
        # Dropped. More happens while no one listens; resuming loses nothing.
        second = self.jm.submit_many(queue, [{"type": "echo", "payload": "b"}] * 5)
        want = set(first) | set(second)
        ids_seen = set()
        with self.jm.subscribe(queue=queue, last_event_id=last_id) as stream:
            while not done >= want:
                ev = stream.next(timeout=30)
                self.assertIsNotNone(ev, "the stream ended")
                self.assertNotEqual(ev.kind, "snapshot", "the broker still had the gap")
                self.assertNotIn(ev.id, ids_seen, "an event came twice")
                ids_seen.add(ev.id)
                if ev.kind == "job_state" and ev["state"] == "completed":
                    done.add(ev["job_id"])
        self.assertEqual(done, want)

    def stack_worker_for(self, queue):
        self.stack.worker("--serve", f"echo={HANDLER}", queue=queue, concurrency=1)

    def test_bad_queue_name_raises_invalid_name_error(self):
        with self.assertRaises(jobmesh.InvalidNameError) as cm:
            self.jm.submit("a!b", "echo", "x")
        self.assertEqual(cm.exception.status, 400)
        self.assertIn("a!b", cm.exception.message)

    def test_unknown_id_raises_not_found_error(self):
        with self.assertRaises(jobmesh.NotFoundError):
            self.jm.get("987654321")
        with self.assertRaises(jobmesh.NotFoundError):
            self.jm.wait("987654321", timeout=10)

    def test_wait_raises_job_failed_cancelled_and_timeout(self):
        failed = self.jm.submit("q", "fail", "", max_attempts=3)
        with self.assertRaises(jobmesh.JobFailedError) as cm:
            self.jm.wait(failed, timeout=30)
        self.assertIn("refused for good", str(cm.exception))
        with self.assertRaises(jobmesh.JobFailedError):
            self.jm.result(failed)
        parked = self.jm.submit("q", "echo", "later", delay_ms=60000)
        with self.assertRaises(TimeoutError):
            self.jm.wait(parked, timeout=0.5)
        self.jm.cancel(parked)
        with self.assertRaises(jobmesh.JobCancelledError):
            self.jm.wait(parked, timeout=30)

    def test_submit_and_wait_returns_the_result_in_one_request_and_raises_as_wait(self):
        result = json.loads(self.jm.submit_and_wait("q", "echo", "hi", timeout=30))
        self.assertEqual((result["payload"], result["attempt"]), ("hi", 1))
        with self.assertRaises(jobmesh.JobFailedError) as cm:
            self.jm.submit_and_wait("q", "fail", "", max_attempts=1, timeout=30)
        self.assertIn("refused for good", str(cm.exception))
        # Not finished in time: TimeoutError names the job, which stays queued.
        with self.assertRaises(TimeoutError) as cm:
            self.jm.submit_and_wait("q", "echo", "later", delay_ms=60000, timeout=1.5)
        job_id = str(cm.exception).split()[1]
        self.assertEqual(self.jm.get(job_id)["state"], "delayed")
        self.jm.cancel(job_id)

        async def main():
            async with jobmesh.AsyncClient(self.stack.url, timeout=20) as jm:
                got = json.loads(await jm.submit_and_wait("q", "echo", "async hi", timeout=30))
                self.assertEqual(got["payload"], "async hi")
                with self.assertRaises(jobmesh.JobFailedError):
                    await jm.submit_and_wait("q", "fail", "", max_attempts=1, timeout=30)
        asyncio.run(main())

    def test_a_list_of_urls_skips_one_that_does_not_answer(self):
        jm = jobmesh.Client(["http://127.0.0.1:9", self.stack.url], timeout=10)
        job_id = jm.submit("q", "echo", "failover")
        self.assertIn("failover", jm.wait(job_id, timeout=30))
        jm.close()

    def test_queues_and_workers_list_what_runs(self):
        self.jm.wait(self.jm.submit("q", "noop", ""), timeout=30)
        names = [q["name"] for q in self.jm.queues()]
        self.assertIn("q", names)
        self.assertTrue(any("q" in w["queues"] for w in self.jm.workers()))

    def test_pause_holds_a_queue_resume_releases_it_and_settings_read_back(self):
        self.stack.worker("--serve", f"echo={HANDLER}", queue="pflow,pflowb")
        self.assertTrue(self.jm.pause_queue("pflow")["paused"])
        held = self.jm.submit("pflow", "echo", "held", group="tenant-1")
        # The worker runs two jobs of its other queue meanwhile: the paused
        # one waits.
        for payload in ("free1", "free2"):
            self.jm.wait(self.jm.submit("pflowb", "echo", payload), timeout=30)
        waiting = self.jm.get(held)
        self.assertEqual(waiting["state"], "pending")
        self.assertEqual(waiting["group"], "tenant-1")
        self.assertFalse(self.jm.resume_queue("pflow")["paused"])
        self.assertIn("held", self.jm.wait(held, timeout=30))

        now = self.jm.set_queue_settings("pflow", max_active=3, rate=(10, 1000), group_limit=2,
                                         keep_failed=5, keep_completed_age_ms=60000)
        self.assertEqual(now["max_active"], 3)
        self.assertEqual(now["rate"], {"jobs": 10, "period_ms": 1000})
        self.assertEqual(now["group_limit"], 2)
        self.assertEqual(now["keep_failed"], 5)
        self.assertEqual(now["keep_completed_age_ms"], 60000)
        self.assertEqual(self.jm.queue_settings("pflow"), now)
        cleared = self.jm.set_queue_settings("pflow", rate=None, max_active=0, group_limit=0,
                                             keep_failed=None)
        self.assertIsNone(cleared["rate"])
        self.assertIsNone(cleared["keep_failed"])
        self.assertEqual((cleared["max_active"], cleared["group_limit"]), (0, 0))
        with self.assertRaises(TypeError):
            self.jm.set_queue_settings("pflow", speed=1)
        self.assertEqual(self.jm.queue_settings("pflow"), cleared)

    def test_remove_dead_removes_one_then_all_and_retry_dead_revives_them(self):
        self.stack.worker("--serve", f"fail={HANDLER}", queue="pdeadq")
        ids = self.jm.submit_many("pdeadq", [{"type": "fail", "payload": "x"}] * 3)
        for job_id in ids:
            with self.assertRaises(jobmesh.JobFailedError):
                self.jm.wait(job_id, timeout=30)
        one = self.jm.remove_dead("pdeadq", ids[0])
        self.assertEqual(one, {"queue": "pdeadq", "removed": 1, "ids": [ids[0]]})
        with self.assertRaises(jobmesh.NotFoundError):
            self.jm.get(ids[0])
        self.assertEqual(sorted(str(j["id"]) for j in self.jm.dead("pdeadq")), sorted(ids[1:]))
        with self.assertRaises(jobmesh.NotFoundError):
            self.jm.remove_dead("pdeadq", ids[0])

        revived = self.jm.retry_dead("pdeadq")
        self.assertEqual(revived["revived"], 2)
        self.assertEqual(sorted(str(i) for i in revived["ids"]), sorted(ids[1:]))
        for job_id in ids[1:]:
            with self.assertRaises(jobmesh.JobFailedError):
                self.jm.wait(job_id, timeout=30)

        async def remove_all():
            async with jobmesh.AsyncClient(self.stack.url, timeout=20) as jm:
                self.assertEqual(len(await jm.dead("pdeadq")), 2)
                return await jm.remove_dead("pdeadq")
        self.assertEqual(asyncio.run(remove_all())["removed"], 2)
        self.assertEqual(self.jm.dead("pdeadq"), [])
        for job_id in ids:
            with self.assertRaises(jobmesh.NotFoundError):
                self.jm.get(job_id)

    def test_async_client_changes_queue_settings(self):
        async def main():
            async with jobmesh.AsyncClient(self.stack.url, timeout=20) as jm:
                self.assertTrue((await jm.pause_queue("asettings"))["paused"])
                now = await jm.set_queue_settings("asettings", group_limit=4, rate={"jobs": 5,
                                                                                  "period_ms": 1000})
                self.assertEqual((now["group_limit"], now["rate"]),
                                 (4, {"jobs": 5, "period_ms": 1000}))
                self.assertEqual(await jm.queue_settings("asettings"), now)
                self.assertFalse((await jm.resume_queue("asettings"))["paused"])
        asyncio.run(main())

    def test_async_client_submits_waits_and_follows_events(self):
        async def main():
            async with jobmesh.AsyncClient(self.stack.url, timeout=20) as jm:
                seen = []
                job_id = await jm.submit("q", "sleep", {"ms": 200})
                result = await jm.wait(job_id, timeout=30,
                                       on_progress=lambda d, t, m: seen.append(d))
                self.assertEqual(json.loads(result)["slept"], True)
                self.assertIn(2, seen)
                with self.assertRaises(jobmesh.NotFoundError):
                    await jm.get("987654321")
                batch = await jm.submit_batch([{"queue": "q", "type": "echo", "payload": "x"}] * 3)
                status = await jm.wait_batch(batch["id"], timeout=30)
                self.assertEqual(status["completed"], 3)
                async def first_event():
                    async for ev in jm.events(batch=batch["id"], last_event_id="0"):
                        return ev  # a finished batch: at least the resume snapshot comes
                self.assertIsNotNone(await asyncio.wait_for(first_event(), 30))
        asyncio.run(main())


class TokenTest(unittest.TestCase):
    """A broker with --auth: the client sends its token as a Bearer; a
    wrong one, none, or one for another tenant's queue raise
    UnauthorizedError, and nothing is stored."""

    @classmethod
    def setUpClass(cls):
        cls.auth_dir = tempfile.TemporaryDirectory(prefix="jm-client-auth-")
        path = os.path.join(cls.auth_dir.name, "auth.yaml")
        with open(path, "w") as f:
            f.write("tokens:\n")
            for name, secret, role, queues in [("shop", "shop-secret", "producer", '["shop.*"]'),
                                               ("ops", "ops-secret", "admin", "[]")]:
                digest = hashlib.sha256(secret.encode()).hexdigest()
                f.write(f"  - {{name: {name}, sha256: {digest}, role: {role}, queues: {queues}}}\n")
        cls.stack = Stack(broker_args=["--auth", path])

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()
        cls.auth_dir.cleanup()

    def queued(self):
        with jobmesh.Client(self.stack.url, token="ops-secret", timeout=20) as admin:
            return {q["name"]: q["counts"]["pending"] for q in admin.queues()}

    def test_the_right_token_submits_and_reads_back(self):
        with jobmesh.Client(self.stack.url, token="shop-secret", timeout=20) as jm:
            job_id = jm.submit("shop.orders", "t", "hello")
            self.assertEqual(jm.get(job_id)["state"], "pending")

    def test_a_wrong_or_missing_token_raises_unauthorized_and_stores_nothing(self):
        before = self.queued()
        for token in ["not-a-secret", None]:
            with jobmesh.Client(self.stack.url, token=token, timeout=20) as jm:
                with self.assertRaises(jobmesh.UnauthorizedError) as caught:
                    jm.submit("shop.orders", "t", "x")
                self.assertEqual(caught.exception.status, 401)
                self.assertEqual(caught.exception.code, "unauthorized")
        self.assertEqual(self.queued(), before)

    def test_another_tenants_queue_raises_unauthorized_forbidden(self):
        before = self.queued()
        with jobmesh.Client(self.stack.url, token="shop-secret", timeout=20) as jm:
            with self.assertRaises(jobmesh.UnauthorizedError) as caught:
                jm.submit("billing.invoices", "t", "x")
            self.assertEqual(caught.exception.status, 403)
            self.assertEqual(caught.exception.code, "forbidden")
        self.assertEqual(self.queued(), before)


if __name__ == "__main__":
    unittest.main()
