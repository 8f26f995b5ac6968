"""The HTTP JSON API through a real broker (and a real jobmesh-worker):
every endpoint with good and bad input. Run by ctest (tests/CMakeLists.txt)
with JOBMESH_BIN_DIR set."""

import json
import os
import socket
import threading
import time
import unittest

from jmhttp import Broker, wait_for


class HttpApi(unittest.TestCase):
    def setUp(self):
        self.b = Broker()

    def tearDown(self):
        status = self.b.stop()
        self.assertIn(status, (0, None), "the broker must stop cleanly on SIGTERM")

    # -- submit -------------------------------------------------------------

    def test_submit_one_job_answers_202_with_its_id_state_and_location(self):
        status, headers, body = self.b.post("/v1/queues/mail/jobs",
                                            {"type": "send", "payload": "hi"})
        self.assertEqual(status, 202)
        self.assertEqual(body["state"], "pending")
        self.assertTrue(body["id"].isdigit())
        self.assertEqual(headers["location"], "/v1/jobs/" + body["id"])
        job = self.b.job(body["id"])
        self.assertEqual((job["queue"], job["type"], job["state"]), ("mail", "send", "pending"))

    def test_submit_an_array_answers_all_ids_and_a_delayed_job_is_delayed(self):
        status, _, body = self.b.post("/v1/queues/q/jobs", [
            {"type": "a"}, {"type": "b", "priority": 5, "max_attempts": 2, "timeout_ms": 1000},
            {"type": "c", "delay_ms": 60000}])
        self.assertEqual(status, 202)
        self.assertEqual(len(body["ids"]), 3)
        jobs = [self.b.job(i) for i in body["ids"]]
        self.assertEqual([j["type"] for j in jobs], ["a", "b", "c"])
        self.assertEqual((jobs[1]["priority"], jobs[1]["max_attempts"]), (5, 2))
        self.assertEqual(jobs[2]["state"], "delayed")
        self.assertIsNotNone(jobs[2]["run_at_us"])
        _, _, one = self.b.post("/v1/queues/q/jobs", {"type": "d", "delay_ms": 60000})
        self.assertEqual(one["state"], "delayed")

    def test_an_idempotency_key_answers_a_repeat_with_the_first_job_and_200(self):
        status, _, first = self.b.post("/v1/queues/pay/jobs", {"type": "charge"},
                                       headers={"Idempotency-Key": "order-17"})
        self.assertEqual(status, 202)
        status, headers, again = self.b.post("/v1/queues/pay/jobs", {"type": "charge"},
                                             headers={"Idempotency-Key": "order-17"})
        self.assertEqual(status, 200, again)
        self.assertEqual(again, {"id": first["id"], "existing": True})
        self.assertEqual(headers["location"], "/v1/jobs/" + first["id"])
        # The body field is the same key; an array mixes a repeat and a new job.
        status, _, body = self.b.post("/v1/queues/pay/jobs", [
            {"type": "charge", "idempotency_key": "order-17"},
            {"type": "charge", "idempotency_key": "order-18"}])
        self.assertEqual(status, 202)
        self.assertEqual(body["ids"][0], first["id"])
        self.assertNotEqual(body["ids"][1], first["id"])
        _, _, jobs = self.b.get("/v1/jobs?queue=pay")
        self.assertEqual(len(jobs["jobs"]), 2)
        # run_at: an RFC 3339 time makes a delayed job due then.
        _, _, later = self.b.post("/v1/queues/pay/jobs",
                                  {"type": "charge", "run_at": "2030-01-02T03:04:05Z"})
        self.assertEqual(later["state"], "delayed")
        self.assertEqual(self.b.job(later["id"])["run_at_us"], 1893553445000000)
        for headers, body, code, text in [
                ({"Idempotency-Key": "k" * 129}, {"type": "t"}, "key_invalid",
                 "use 1-128 printable ASCII"),
                ({}, {"type": "t", "idempotency_key": "tab\there"}, "key_invalid",
                 "printable ASCII"),
                ({"Idempotency-Key": "k"}, [{"type": "t"}], "key_conflict", "one-job body"),
                ({}, {"type": "t", "idempotency_key": "x" * 129}, "key_invalid", "1-128"),
                ({}, {"type": "t", "run_at": "soon"}, "field_range", "RFC 3339"),
                ({}, {"type": "t", "run_at": "2030-01-02T03:04:05Z", "delay_ms": 5},
                 "field_conflict", "not both")]:
            with self.subTest(headers=headers, body=body):
                status, _, got = self.b.post("/v1/queues/pay/jobs", body, headers=headers)
                self.assertEqual((status, got["error"]["code"]), (400, code), got)
                self.assertIn(text, got["error"]["message"])
        _, _, jobs = self.b.get("/v1/jobs?queue=pay")
        self.assertEqual(len(jobs["jobs"]), 3)

    def test_groups_group_limit_and_unroutable_jobs_show_over_http(self):
        # A job's group goes in with it and reads back; a bad one is refused.
        job = self.b.submit("fair", {"type": "nobody", "payload": "x", "group": "tenant-42"})
        status, _, got = self.b.get("/v1/jobs/%s" % job["id"])
        self.assertEqual((status, got["group"]), (200, "tenant-42"))
        status, _, bad = self.b.post("/v1/queues/fair/jobs", {"type": "t", "group": "a b"})
        self.assertEqual((status, bad["error"]["code"]), (400, "group_name_invalid"), bad)
        status, _, got = self.b.request("PATCH", "/v1/queues/fair/settings", {"group_limit": 3})
        self.assertEqual((status, got["group_limit"]), (200, 3), got)
        # A worker of the queue with no handler for "nobody": the job waits,
        # and the queue says how many wait for a handler and of which type.
        self.b.worker("fair", ["other=cat"])
        wait_for(lambda: self.b.get("/v1/queues")[2]["queues"][0]
                 .get("unroutable", {}).get("jobs") == 1, 20, "one unroutable job")
        queue = self.b.get("/v1/queues")[2]["queues"][0]
        self.assertEqual(queue["unroutable"], {"jobs": 1, "types": ["nobody"]})
        self.assertEqual(self.b.get("/v1/jobs/%s" % job["id"])[2]["state"], "pending")

    def test_retention_per_state_and_removing_dead_letters_over_http(self):
        status, _, got = self.b.get("/v1/queues/ret/settings")
        self.assertEqual(status, 200, got)
        # Dead letters are kept with no limit by default; the others 100,000.
        self.assertEqual((got["keep_failed"], got["keep_failed_age_ms"], got["keep_completed"],
                          got["keep_cancelled"]), (None, 0, 100000, 100000))
        status, _, got = self.b.request("PATCH", "/v1/queues/ret/settings",
                                        {"keep_completed": 2, "keep_cancelled_age_ms": 60000,
                                         "group_limit": 5})
        self.assertEqual(status, 200, got)
        self.assertEqual((got["keep_completed"], got["keep_finished"], got["keep_cancelled_age_ms"],
                          got["keep_failed"]), (2, 2, 60000, None))
        queue = [q for q in self.b.get("/v1/queues")[2]["queues"] if q["name"] == "ret"][0]
        self.assertEqual((queue["keep_completed"], queue["keep_failed"], queue["group_limit"]),
                         (2, None, 5))
        self.assertEqual(sorted(queue["own_settings"]),
                         ["group_limit", "keep_cancelled_age_ms", "keep_completed"])
        # keep_finished sets all three; null is no limit.
        status, _, got = self.b.request("PATCH", "/v1/queues/ret/settings",
                                        {"keep_finished": 7, "keep_failed": None})
        self.assertEqual((got["keep_completed"], got["keep_cancelled"], got["keep_failed"]),
                         (7, 7, None))
        for body, text in [({"keep_failed": -1}, "keep_failed must be"),
                           ({"keep_completed": "all"}, "keep_completed must be"),
                           ({"keep_cancelled_age_ms": -5}, "keep_cancelled_age_ms must be")]:
            with self.subTest(body=body):
                status, _, got = self.b.request("PATCH", "/v1/queues/ret/settings", body)
                self.assertEqual((status, got["error"]["code"]), (400, "field_range"), got)
                self.assertIn(text, got["error"]["message"])
        self.assertEqual(self.b.get("/v1/queues/ret/settings")[2]["keep_completed"], 7)
        # Dead letters removed: one by id, then the rest; a completed job's
        # id is refused and stays.
        self.b.worker("ret", ["ok=cat", "bad=exit 100"])
        done = self.b.submit("ret", {"type": "ok"})["id"]
        dead = [self.b.submit("ret", {"type": "bad"})["id"] for _ in range(3)]
        for job in dead:
            wait_for(lambda: self.b.job(job)["state"] == "failed", 30, "a dead-lettered job")
        wait_for(lambda: self.b.job(done)["state"] == "completed", 30, "a completed job")
        status, _, got = self.b.request("DELETE", "/v1/queues/ret/dead/%s" % done)
        self.assertEqual(status, 409, got)
        status, _, got = self.b.request("DELETE", "/v1/queues/ret/dead/%s" % dead[0])
        self.assertEqual((status, got["removed"], got["ids"]), (200, 1, [dead[0]]), got)
        self.assertEqual(self.b.get("/v1/jobs/%s" % dead[0])[0], 404)
        status, _, got = self.b.request("DELETE", "/v1/queues/ret/dead/%s" % dead[0])
        self.assertEqual(status, 404, got)
        status, _, got = self.b.request("DELETE", "/v1/queues/ret/dead")
        self.assertEqual((status, sorted(got["ids"])), (200, sorted(dead[1:])), got)
        self.assertEqual(self.b.get("/v1/queues/ret/dead")[2]["jobs"], [])
        self.assertEqual(self.b.job(done)["state"], "completed")

    def test_queue_settings_pause_resume_and_patch(self):
        status, _, got = self.b.get("/v1/queues/pay/settings")
        self.assertEqual(status, 200, got)
        self.assertEqual((got["queue"], got["paused"], got["rate"]), ("pay", False, None))
        status, _, got = self.b.post("/v1/queues/pay/pause")
        self.assertEqual((status, got["paused"]), (200, True))
        status, _, got = self.b.request("PATCH", "/v1/queues/pay/settings",
                                        {"rate": {"jobs": 10, "period_ms": 1000},
                                         "max_active": 4, "max_attempts": 6})
        self.assertEqual(status, 200, got)
        self.assertEqual((got["paused"], got["rate"], got["max_active"], got["max_attempts"]),
                         (True, {"jobs": 10, "period_ms": 1000}, 4, 6))
        _, _, queues = self.b.get("/v1/queues")
        pay = [q for q in queues["queues"] if q["name"] == "pay"][0]
        self.assertEqual((pay["paused"], pay["rate"], pay["max_active"]),
                         (True, {"jobs": 10, "period_ms": 1000}, 4))
        # Every setting, and which are the queue's own (the rest: flags).
        self.assertEqual((pay["max_attempts"], sorted(pay["own_settings"])),
                         (6, ["max_active", "max_attempts", "paused", "rate"]))
        for name in ("keep_finished", "keep_finished_age_ms", "key_window_ms"):
            self.assertIsInstance(pay[name], int, name)
        self.assertGreater(pay["key_window_ms"], 0)
        status, _, got = self.b.post("/v1/queues/pay/resume")
        self.assertEqual((status, got["paused"], got["max_active"]), (200, False, 4))
        status, _, got = self.b.request("PATCH", "/v1/queues/pay/settings", {"rate": None})
        self.assertEqual((status, got["rate"]), (200, None))
        for body, code, text in [
                ({"speed": 1}, "unknown_field", "speed"),
                ({"paused": 1}, "field_type", "paused must be true or false"),
                ({"rate": {"jobs": 0, "period_ms": 1000}}, "field_range", "jobs must be"),
                ({"rate": 5}, "field_type", "rate must be"),
                ({"max_attempts": 0}, "field_range", "max_attempts must be")]:
            with self.subTest(body=body):
                status, _, got = self.b.request("PATCH", "/v1/queues/pay/settings", body)
                self.assertEqual((status, got["error"]["code"]), (400, code), got)
                self.assertIn(text, got["error"]["message"])
        status, _, got = self.b.request("DELETE", "/v1/queues/pay/settings")
        self.assertEqual(status, 405)

    def test_bad_submits_are_refused_naming_the_field_and_store_nothing(self):
        big = "x" * ((1 << 20) + 1)
        cases = [
            ("/v1/queues/q/jobs", {"type": "t", "bogus": 1}, 400, "unknown_field", "bogus"),
            ("/v1/queues/q/jobs", {"payload": "x"}, 400, "field_missing", "type"),
            ("/v1/queues/q/jobs", {"type": 5}, 400, "field_type", "type"),
            ("/v1/queues/q/jobs", {"type": "a b"}, 400, "type_name_invalid", "use 1-64"),
            ("/v1/queues/q/jobs", {"type": "t", "priority": 5000}, 400, "field_range",
             "priority 5000 is out of range: use -1000..1000"),
            ("/v1/queues/q/jobs", {"type": "t", "priority": "high"}, 400, "field_type",
             "priority"),
            ("/v1/queues/q/jobs", {"type": "t", "delay_ms": -1}, 400, "field_range",
             "delay_ms"),
            ("/v1/queues/q/jobs", {"type": "t", "max_attempts": 1.5}, 400, "field_type",
             "max_attempts"),
            ("/v1/queues/q/jobs", {"type": "t", "payload": 7}, 400, "field_type", "payload"),
            ("/v1/queues/q/jobs", {"type": "t", "payload": "x", "data": {}}, 400,
             "payload_conflict", "not both"),
            ("/v1/queues/q/jobs", [], 400, "no_jobs", "1..10000"),
            ("/v1/queues/q/jobs", [{"type": "ok"}, {"type": "t", "x": 1}], 400,
             "unknown_field", "job 1"),
            ("/v1/queues/q/jobs", "text", 400, "malformed_json", "expected"),
            ("/v1/queues/a%20b/jobs", {"type": "t"}, 400, "queue_name_invalid",
             'queue name "a b" is invalid: use 1-64 of A-Z a-z 0-9 . _ -'),
            ("/v1/queues/q/jobs", {"type": "t", "payload": big}, 413, "too_big",
             "payload is 1048577 bytes"),
            ("/v1/batches", {"jobs": [{"type": "t"}]}, 400, "field_missing", "queue"),
            ("/v1/batches", {"jobs": "x"}, 400, "field_type", "jobs"),
            ("/v1/batches", {"jobs": [], "x": 1}, 400, "unknown_field", "x"),
        ]
        for path, body, want_status, want_code, want_text in cases:
            with self.subTest(path=path, body=str(body)[:60]):
                status, _, got = self.b.post(path, body)
                self.assertEqual(status, want_status, got)
                self.assertEqual(got["error"]["code"], want_code, got)
                self.assertIn(want_text, got["error"]["message"])
        for raw, ctype, want_status, want_code in [
                (b'{"type": "t",', "application/json", 400, "malformed_json"),
                (b'{"type": "t", "type": "u"}', "application/json", 400, "malformed_json"),
                (b'\xff\xfe', "application/json", 400, "malformed_json"),
                (b'{"type": "t"}', "text/plain", 415, "unsupported_media_type"),
                (b'{"type": "t"}', None, 415, "unsupported_media_type")]:
            with self.subTest(raw=raw, ctype=ctype):
                headers = {"Content-Type": ctype} if ctype else {}
                status, _, got = self.b.request("POST", "/v1/queues/q/jobs", raw=raw,
                                                headers=headers)
                self.assertEqual((status, got["error"]["code"]), (want_status, want_code))
        _, _, jobs = self.b.get("/v1/jobs")
        self.assertEqual(jobs["jobs"], [], "a refused submit stored a job")
        _, _, queues = self.b.get("/v1/queues")
        self.assertEqual(queues["queues"], [], "a refused submit created a queue")

    def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(self):
        s = socket.create_connection((self.b.host, self.b.port), timeout=10)
        s.sendall(b"POST /v1/queues/q/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: 999999999\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.endswith(b"}}"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply)
        self.assertIn(b'"body_too_big"', reply)
        self.assertIn(b"at most 16777216", reply)

    def test_chunked_bodies_are_refused_with_411(self):
        s = socket.create_connection((self.b.host, self.b.port), timeout=10)
        s.sendall(b"POST /v1/queues/q/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                  b"chunked\r\n\r\n0\r\n\r\n")
        reply = s.recv(4096)
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 411"), reply)

    # -- reading jobs, ?wait, results ----------------------------------------

    def test_a_job_submitted_over_http_runs_on_a_worker_and_its_result_reads_back(self):
        self.b.worker("work", ["echo=cat"])
        job = self.b.submit("work", {"type": "echo", "data": {"n": [1, 2, 3], "s": "é"}})
        status, _, res = self.b.get("/v1/jobs/%s/result?wait=30" % job["id"])
        self.assertEqual(status, 200, res)
        self.assertEqual(res["state"], "completed")
        self.assertEqual(res["data"], {"n": [1, 2, 3], "s": "é"})
        self.assertEqual(json.loads(res["result"]), res["data"])
        self.assertEqual(res["attempt"], 1)
        # The job reads back with its payload (the JSON text it was given),
        # also when ?wait answered it; the result read does not repeat it.
        for path in ["/v1/jobs/%s", "/v1/jobs/%s?wait=5"]:
            status, _, got = self.b.get(path % job["id"])
            self.assertEqual(status, 200, got)
            self.assertEqual(json.loads(got["payload"]), {"n": [1, 2, 3], "s": "é"})
        self.assertNotIn("payload", res)
        _, _, workers = self.b.get("/v1/workers")
        self.assertEqual([w["id"] for w in workers["workers"]], ["worker-0"])
        self.assertEqual(workers["workers"][0]["queues"], ["work"])

    def test_wait_answers_at_once_for_a_finished_job_and_on_completion_for_a_running_one(self):
        fifo = os.path.join(self.b.tmp, "go")
        os.mkfifo(fifo)
        self.b.worker("w", ["gate=cat %s >/dev/null; echo done" % fifo, "quick=cat"])
        quick = self.b.submit("w", {"type": "quick", "payload": "q"})
        self.assertEqual(self.b.get("/v1/jobs/%s/result?wait=30" % quick["id"])[0], 200)
        t0 = time.monotonic()
        status, _, res = self.b.get("/v1/jobs/%s/result?wait=30" % quick["id"])
        self.assertEqual((status, res["result"]), (200, "q"))
        self.assertLess(time.monotonic() - t0, 2.0, "?wait on a finished job must not wait")

        gated = self.b.submit("w", {"type": "gate"})
        wait_for(lambda: self.b.job(gated["id"])["state"] == "active", 20, "the job to run")
        status, _, res = self.b.get("/v1/jobs/%s/result" % gated["id"])
        self.assertEqual((status, res["state"]), (202, "active"))
        answer = {}

        def long_poll():
            t = time.monotonic()
            answer["reply"] = self.b.get("/v1/jobs/%s?wait=30" % gated["id"])
            answer["at"] = time.monotonic()
            answer["took"] = answer["at"] - t

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.3)  # let the long-poll park; what is asserted is below
        self.assertNotIn("reply", answer, "?wait answered before the job finished")
        released = time.monotonic()
        with open(fifo, "w") as f:
            f.write("go\n")
        poller.join(35)
        self.assertIn("reply", answer, "?wait did not answer")
        status, _, body = answer["reply"]
        self.assertEqual((status, body["state"]), (200, "completed"))
        self.assertNotIn("result", body, "GET /v1/jobs/{id} carries no result")
        self.assertLess(answer["at"] - released, 5.0, "?wait answered late")

    def test_wait_on_an_unfinished_job_returns_its_state_when_the_time_is_up(self):
        job = self.b.submit("idle", {"type": "t"})
        t0 = time.monotonic()
        status, _, body = self.b.get("/v1/jobs/%s/result?wait=1" % job["id"])
        took = time.monotonic() - t0
        self.assertEqual((status, body["state"]), (202, "pending"))
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 10)

    def test_submit_with_wait_answers_with_the_finished_job_or_its_state_when_the_time_is_up(self):
        self.b.worker("sw", ["echo=printf 'done:'; cat"])
        status, headers, body = self.b.post("/v1/queues/sw/jobs?wait=30",
                                            {"type": "echo", "payload": "hi"})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["state"], body["result"]), ("completed", "done:hi"))
        self.assertEqual(self.b.job(body["id"])["state"], "completed")
        # An idempotency key waits for the job it matched: one run only.
        first = self.b.post("/v1/queues/sw/jobs?wait=30", {"type": "echo", "payload": "once"},
                            headers={"Idempotency-Key": "k-1"})[2]
        again = self.b.post("/v1/queues/sw/jobs?wait=30", {"type": "echo", "payload": "twice"},
                            headers={"Idempotency-Key": "k-1"})[2]
        self.assertEqual((again["id"], again["result"]), (first["id"], "done:once"))
        # Nobody serves "idle": the job's state when the time is up, kept.
        t0 = time.monotonic()
        status, _, body = self.b.post("/v1/queues/idle/jobs?wait=1", {"type": "t"})
        self.assertEqual((status, body["state"]), (202, "pending"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertEqual(self.b.job(body["id"])["state"], "pending")
        for query, body, code in [("?wait=61", {"type": "t"}, "parameter_invalid"),
                                  ("?wait=x", {"type": "t"}, "parameter_invalid"),
                                  ("?wait=5", [{"type": "t"}], "wait_one_job"),
                                  ("?timeout=5", {"type": "t"}, "unknown_parameter")]:
            with self.subTest(query=query):
                status, _, got = self.b.post("/v1/queues/idle/jobs" + query, body)
                self.assertEqual((status, got["error"]["code"]), (400, code), got)
        idle = [q for q in self.b.get("/v1/queues")[2]["queues"] if q["name"] == "idle"][0]
        self.assertEqual(idle["counts"]["pending"], 1, "a refused request must store nothing")

    def test_job_reads_refuse_bad_ids_unknown_jobs_and_bad_waits(self):
        for path, status, code in [
                ("/v1/jobs/0", 400, "id_invalid"), ("/v1/jobs/abc", 400, "id_invalid"),
                ("/v1/jobs/99999999999999999999999", 400, "id_invalid"),
                ("/v1/jobs/424242", 404, "not_found"),
                ("/v1/jobs/424242/result", 404, "not_found"),
                ("/v1/jobs/1?wait=61", 400, "parameter_invalid"),
                ("/v1/jobs/1?wait=-1", 400, "parameter_invalid"),
                ("/v1/jobs/1?timeout=1", 400, "unknown_parameter")]:
            with self.subTest(path=path):
                got_status, _, body = self.b.get(path)
                self.assertEqual((got_status, body["error"]["code"]), (status, code), body)
        _, _, body = self.b.get("/v1/jobs/424242")
        self.assertEqual(body["error"]["message"],
                         "status: job 424242 not found: no such id, or its retention ran out")

    # -- listing -----------------------------------------------------------------

    def test_jobs_list_filters_and_pages_newest_first_with_a_cursor(self):
        ids = self.b.post("/v1/queues/a/jobs", [{"type": "t"} for _ in range(25)])[2]["ids"]
        self.b.post("/v1/queues/b/jobs", [{"type": "t"} for _ in range(5)])
        _, _, batch = self.b.post("/v1/batches", {"jobs": [{"queue": "a", "type": "x"}] * 3})
        self.b.post("/v1/jobs/%s/cancel" % ids[0])
        seen, cursor = [], None
        for _ in range(10):
            path = "/v1/jobs?queue=a&limit=7" + ("&cursor=" + cursor if cursor else "")
            status, _, page = self.b.get(path)
            self.assertEqual(status, 200, page)
            seen += [j["id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        want = sorted(ids + batch["job_ids"], key=int, reverse=True)
        self.assertEqual(seen, want, "pages must cover queue a newest first, each job once")
        _, _, cancelled = self.b.get("/v1/jobs?state=cancelled")
        self.assertEqual([j["id"] for j in cancelled["jobs"]], [ids[0]])
        _, _, in_batch = self.b.get("/v1/jobs?batch=" + batch["id"])
        self.assertEqual(sorted(j["id"] for j in in_batch["jobs"]), sorted(batch["job_ids"]))
        _, _, none = self.b.get("/v1/jobs?queue=nosuch")
        self.assertEqual(none, {"jobs": [], "next_cursor": None})
        for path, code in [("/v1/jobs?state=done", "state_invalid"),
                           ("/v1/jobs?limit=0", "parameter_invalid"),
                           ("/v1/jobs?limit=1001", "parameter_invalid"),
                           ("/v1/jobs?cursor=x", "cursor_invalid"),
                           ("/v1/jobs?queue=a%20b", "queue_name_invalid"),
                           ("/v1/jobs?batch=-3", "id_invalid"),
                           ("/v1/jobs?sort=asc", "unknown_parameter")]:
            with self.subTest(path=path):
                status, _, body = self.b.get(path)
                self.assertEqual((status, body["error"]["code"]), (400, code), body)

    def test_queues_show_counts_oldest_pending_age_and_active_limit(self):
        b = self.b
        b.stop()
        self.b = Broker(["--queue-limit", "lim=2"])
        self.b.post("/v1/queues/lim/jobs", [{"type": "t"}, {"type": "t", "delay_ms": 60000}])
        status, _, body = self.b.get("/v1/queues")
        self.assertEqual(status, 200)
        q = body["queues"][0]
        self.assertEqual(q["name"], "lim")
        self.assertEqual(q["counts"]["pending"], 1)
        self.assertEqual(q["counts"]["delayed"], 1)
        self.assertEqual(q["max_active"], 2)
        wait_for(lambda: self.b.get("/v1/queues")[2]["queues"][0]["oldest_pending_age_seconds"]
                 > 0.05, 10, "the oldest pending age to grow")

    # -- cancel, retry, dead-letter ------------------------------------------------

    def test_cancel_answers_the_cancelled_job_then_409_and_404(self):
        job = self.b.submit("q", {"type": "t"})
        status, _, body = self.b.post("/v1/jobs/%s/cancel" % job["id"])
        self.assertEqual((status, body["state"]), (200, "cancelled"))
        status, _, body = self.b.post("/v1/jobs/%s/cancel" % job["id"])
        self.assertEqual((status, body["error"]["code"]), (409, "state_conflict"))
        self.assertIn("is already cancelled", body["error"]["message"])
        status, _, body = self.b.post("/v1/jobs/777777/cancel")
        self.assertEqual(status, 404)

    def test_a_dead_lettered_job_is_listed_with_its_error_and_retry_makes_it_pending(self):
        self.b.worker("d", ["boom=echo broken >&2; exit 100"])
        job = self.b.submit("d", {"type": "boom", "payload": "p"})
        wait_for(lambda: self.b.job(job["id"])["state"] == "failed", 20, "the dead-letter")
        status, _, dead = self.b.get("/v1/queues/d/dead")
        self.assertEqual(status, 200)
        self.assertEqual([j["id"] for j in dead["jobs"]], [job["id"]])
        self.assertIn("broken", dead["jobs"][0]["last_error"])
        self.assertEqual(dead["jobs"][0]["payload"], "p")
        status, _, res = self.b.get("/v1/jobs/%s/result" % job["id"])
        self.assertEqual((status, res["state"]), (200, "failed"))
        for p in self.b.workers:
            p.terminate()
            p.wait(10)
        status, _, body = self.b.post("/v1/jobs/%s/retry" % job["id"])
        self.assertEqual((status, body), (200, {"id": job["id"], "state": "pending"}))
        self.assertEqual(self.b.job(job["id"])["state"], "pending")
        status, _, body = self.b.post("/v1/jobs/%s/retry" % job["id"])
        self.assertEqual((status, body["error"]["code"]), (409, "state_conflict"))
        self.assertEqual(self.b.post("/v1/jobs/8888888/retry")[0], 404)
        for path, code in [("/v1/queues/a%20b/dead", "queue_name_invalid"),
                           ("/v1/queues/d/dead?limit=0", "parameter_invalid")]:
            status, _, body = self.b.get(path)
            self.assertEqual((status, body["error"]["code"]), (400, code))
        self.assertEqual(self.b.get("/v1/queues/nosuch/dead")[2]["jobs"], [])

    def test_retry_all_revives_every_dead_lettered_job_of_the_queue_and_says_how_many(self):
        self.b.worker("bulk", ["boom=echo broken >&2; exit 100"])
        ids = [self.b.submit("bulk", {"type": "boom", "payload": str(i)})["id"] for i in range(5)]
        other = self.b.submit("other", {"type": "t"})["id"]
        wait_for(lambda: all(self.b.job(i)["state"] == "failed" for i in ids), 20,
                 "the 5 jobs to be dead-lettered")
        for p in self.b.workers:
            p.terminate()
            p.wait(10)
        status, _, body = self.b.post("/v1/queues/bulk/dead/retry")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["queue"], body["revived"]), ("bulk", 5))
        self.assertEqual(sorted(body["ids"], key=int), ids)
        self.assertEqual({self.b.job(i)["state"] for i in ids}, {"pending"})
        self.assertEqual(self.b.job(other)["state"], "pending")
        self.assertEqual(self.b.get("/v1/queues/bulk/dead")[2]["jobs"], [])
        # Nothing left: 200 with none revived; a bad name is 400; GET is 405.
        self.assertEqual(self.b.post("/v1/queues/bulk/dead/retry")[2],
                         {"queue": "bulk", "revived": 0, "ids": []})
        status, _, body = self.b.post("/v1/queues/a%20b/dead/retry")
        self.assertEqual((status, body["error"]["code"]), (400, "queue_name_invalid"))
        status, headers, _ = self.b.request("GET", "/v1/queues/bulk/dead/retry")
        self.assertEqual((status, headers["allow"]), (405, "POST"))

    # -- batches -------------------------------------------------------------------

    def test_a_batch_submits_answers_its_ids_and_reads_back(self):
        status, headers, body = self.b.post("/v1/batches", {"jobs": [
            {"queue": "x", "type": "a", "payload": "1"}, {"queue": "y", "type": "b",
                                                          "data": [1]}]})
        self.assertEqual(status, 202, body)
        self.assertEqual(len(body["job_ids"]), 2)
        self.assertEqual(headers["location"], "/v1/batches/" + body["id"])
        status, _, batch = self.b.get("/v1/batches/" + body["id"])
        self.assertEqual(status, 200)
        self.assertEqual((batch["state"], batch["total"], batch["completed"]), ("running", 2, 0))
        _, _, running = self.b.get("/v1/batches")
        self.assertEqual([x["id"] for x in running["batches"]], [body["id"]])
        self.assertEqual(self.b.job(body["job_ids"][1])["batch_id"], body["id"])
        self.assertEqual(self.b.get("/v1/batches/5555555")[0], 404)
        self.assertEqual(self.b.get("/v1/batches/zz")[0], 400)

    def test_batches_lists_running_and_recently_finished_batches_with_final_counts(self):
        self.b.worker("fin", ["t=cat", "boom=echo broken >&2; exit 100"])
        _, _, done = self.b.post("/v1/batches", {"jobs": [
            {"queue": "fin", "type": "t", "payload": "1"},
            {"queue": "fin", "type": "boom", "payload": "2"}]})
        _, _, idle = self.b.post("/v1/batches", {"jobs": [{"queue": "noworker", "type": "t"}]})
        wait_for(lambda: self.b.get("/v1/batches/" + done["id"])[2]["state"] != "running", 20,
                 "the batch to finish")
        status, _, body = self.b.get("/v1/batches")
        self.assertEqual(status, 200, body)
        listed = {b["id"]: b for b in body["batches"]}
        self.assertEqual(sorted(listed, key=int), sorted([done["id"], idle["id"]], key=int))
        fin = listed[done["id"]]
        self.assertEqual((fin["state"], fin["total"], fin["completed"], fin["failed"]),
                         ("failed", 2, 1, 1))
        self.assertIsNotNone(fin["finished_us"])
        self.assertIn("broken", fin["errors"][0]["error"])
        self.assertEqual(listed[idle["id"]]["state"], "running")

    # -- routing -------------------------------------------------------------------

    def test_unknown_paths_are_404_and_wrong_methods_405_naming_the_allowed_ones(self):
        status, _, body = self.b.get("/v1/nothing")
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"))
        status, headers, body = self.b.request("DELETE", "/v1/jobs/1")
        self.assertEqual((status, body["error"]["code"]), (405, "method_not_allowed"))
        self.assertEqual(headers["allow"], "GET")
        status, headers, _ = self.b.request("PUT", "/v1/batches")
        self.assertEqual((status, headers["allow"]), (405, "GET, POST"))
        self.assertEqual(self.b.get("/v1/queues/q/jobs")[0], 405)

    def test_one_keep_alive_connection_serves_many_requests_good_and_bad(self):
        conn = self.b.connect()
        for i in range(50):
            status, _, _ = self.b.post("/v1/queues/ka/jobs", {"type": "t"}, conn=conn)
            self.assertEqual(status, 202)
            status, _, _ = self.b.post("/v1/queues/ka/jobs", {"type": 1}, conn=conn)
            self.assertEqual(status, 400)
            self.assertEqual(self.b.get("/v1/nope", conn=conn)[0], 404)
        conn.close()
        self.assertEqual(len(self.b.get("/v1/jobs?queue=ka&limit=1000")[2]["jobs"]), 50)


if __name__ == "__main__":
    unittest.main(verbosity=2)
