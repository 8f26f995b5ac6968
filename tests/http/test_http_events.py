"""The HTTP event stream (SSE, GET /v1/events) through a real broker and
worker: order, filters, resume with Last-Event-ID, snapshots."""

import collections
import re
import socket
import threading
import unittest

from jmhttp import Broker, EventStream, wait_for

JOB_ORDER = ["pending", "active", "completed"]


class HttpEvents(unittest.TestCase):
    def setUp(self):
        self.b = Broker()

    def tearDown(self):
        self.assertIn(self.b.stop(), (0, None), "the broker must stop cleanly on SIGTERM")

    def read_until(self, stream, done, limit=20000):
        """Events until done(events) holds (bounded in count; the socket
        timeout bounds time)."""
        events = []
        for _ in range(limit):
            events.append(stream.next_event())
            if done(events):
                return events
        raise AssertionError("no end after %d events" % limit)

    def test_every_state_change_of_a_200_job_batch_is_seen_in_order(self):
        stream = EventStream(self.b, "topic=batch/")
        self.assertEqual(stream.status_line, "HTTP/1.1 200 OK")
        self.assertIn("Content-Type: text/event-stream", stream.headers)
        self.assertNotIn("Content-Length", stream.headers)
        _, _, batch = self.b.post("/v1/batches", {"jobs": [
            {"queue": "sse", "type": "echo", "payload": str(i)} for i in range(200)]})
        self.b.worker("sse", ["echo=cat"], concurrency=4)
        events = self.read_until(stream, lambda evs: any(
            e["event"] == "batch" and e["data"]["state"] == "completed" for e in evs))
        stream.close()
        ids = [int(e["id"]) for e in events]
        self.assertEqual(ids, sorted(set(ids)), "event ids must grow strictly")
        states = collections.defaultdict(list)
        for e in events:
            if e["event"] == "job_state":
                self.assertEqual(e["data"]["batch_id"], batch["id"])
                states[e["data"]["job_id"]].append(e["data"]["state"])
        self.assertEqual(sorted(states), sorted(batch["job_ids"]))
        for job_id, seen in states.items():
            self.assertEqual(seen, JOB_ORDER, "job %s" % job_id)
        last = [e for e in events if e["event"] == "batch"][-1]["data"]
        self.assertEqual((last["completed"], last["total"], last["failed"]), (200, 200, 0))

    def test_a_stream_resumed_with_last_event_id_after_a_drop_loses_nothing(self):
        stream = EventStream(self.b, "topic=queue/r&topic=worker/")
        ids = self.b.post("/v1/queues/r/jobs", [{"type": "echo"} for _ in range(100)])[2]["ids"]
        first = self.read_until(stream, lambda evs: len(evs) == 100)  # the pending ones
        stream.close()  # dropped while work goes on
        self.b.worker("r", ["echo=cat"], concurrency=4)
        wait_for(lambda: self.b.get("/v1/queues")[2]["queues"][0]["counts"]["completed"] == 100,
                 60, "the 100 jobs to complete")
        resumed = EventStream(self.b, "topic=queue/r&topic=worker/",
                              last_event_id=first[-1]["id"])
        completed = lambda evs: sum(e["event"] == "job_state" and
                                    e["data"]["state"] == "completed" for e in evs) == 100
        rest = self.read_until(resumed, completed)
        resumed.close()
        events = first + rest
        self.assertNotIn("snapshot", [e["event"] for e in events])
        seqs = [int(e["id"]) for e in events]
        self.assertEqual(seqs, sorted(set(seqs)), "a resume must repeat nothing")
        states = collections.defaultdict(list)
        for e in events:
            if e["event"] == "job_state":
                states[e["data"]["job_id"]].append(e["data"]["state"])
        self.assertEqual(sorted(states), sorted(ids))
        for job_id, seen in states.items():
            self.assertEqual(seen, JOB_ORDER, "job %s lost or repeated a change" % job_id)
        self.assertIn("worker_joined", [e["event"] for e in events])

    def test_with_no_client_watching_events_are_not_even_sequenced(self):
        self.b.submit("n", {"type": "t"})
        wait_for(lambda: self.b.get("/v1/queues")[2]["queues"][0]["counts"]["pending"] == 1,
                 10, "the job to be pending")
        self.assertIn("jobmesh_events_total 0\n", self.b.get("/metrics")[2])
        watching = EventStream(self.b, "topic=queue/n")
        self.b.submit("n", {"type": "t"})
        ev = watching.next_event()
        self.assertEqual(ev["event"], "job_state")
        self.assertEqual(ev["data"]["state"], "pending")
        watching.close()
        self.assertIn("jobmesh_events_total 1\n", self.b.get("/metrics")[2])

    def test_events_no_stream_wanted_are_kept_whole_for_a_resume_that_wants_them(self):
        # A client on another queue keeps the hub fed; the events of queue
        # "lz" are wanted by no stream when they happen (the hub keeps them
        # unformatted), then a resume from before them wants them all,
        # error texts included.
        other = EventStream(self.b, "topic=queue/other")
        self.b.submit("other", {"type": "t"})
        mark = other.next_event()
        self.assertEqual((mark["event"], mark["data"]["queue"]), ("job_state", "other"))
        ids = [self.b.submit("lz", {"type": "boom", "max_attempts": 1})["id"] for _ in range(3)]
        self.b.worker("lz", ["boom=false"])
        wait_for(lambda: all(self.b.job(i)["state"] == "failed" for i in ids), 30,
                 "the 3 jobs to fail")
        errors = {i: self.b.job(i)["last_error"] for i in ids}
        for i in ids:
            self.assertTrue(errors[i], "job %s has no error text" % i)
        resumed = EventStream(self.b, "topic=queue/lz", last_event_id=mark["id"])
        failed = lambda evs: sum(e["data"].get("state") == "failed" for e in evs) == 3
        events = self.read_until(resumed, failed, limit=20)
        resumed.close()
        other.close()
        self.assertNotIn("snapshot", [e["event"] for e in events])
        seqs = [int(e["id"]) for e in events]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertGreater(seqs[0], int(mark["id"]))
        states = collections.defaultdict(list)
        for e in events:
            self.assertEqual(e["data"]["queue"], "lz")
            states[e["data"]["job_id"]].append(e["data"]["state"])
            if e["data"]["state"] == "failed":
                self.assertEqual(e["data"]["error"], errors[e["data"]["job_id"]])
            else:
                self.assertIsNone(e["data"]["error"])
        self.assertEqual(dict(states), {i: ["pending", "active", "failed"] for i in ids})

    def test_a_resume_from_an_unknown_id_starts_with_a_snapshot(self):
        # Events are sequenced while a client watches (and a minute after).
        watching = EventStream(self.b, "topic=queue/s")
        self.b.submit("s", {"type": "t"})
        self.assertEqual(watching.next_event()["event"], "job_state")
        watching.close()
        stream = EventStream(self.b, last_event_id="12")
        ev = stream.next_event()
        self.assertEqual(ev["event"], "snapshot")
        self.assertEqual(ev["data"]["reason"], "resume_gap")
        self.assertEqual(ev["id"], ev["data"]["last_event_id"])
        self.b.submit("s", {"type": "t"})
        after = stream.next_event()
        self.assertEqual(after["event"], "job_state")
        self.assertEqual(int(after["id"]), int(ev["id"]) + 1)
        stream.close()

    def test_topic_filters_pick_one_job_and_bad_topics_are_refused(self):
        one = self.b.submit("f", {"type": "t"})
        other = self.b.submit("f", {"type": "t"})
        stream = EventStream(self.b, "topic=job/%s" % other["id"])
        self.b.post("/v1/jobs/%s/cancel" % one["id"])
        self.b.post("/v1/jobs/%s/cancel" % other["id"])
        # Its pending event may still be on its way (events follow the 202).
        events = self.read_until(stream, lambda evs: evs[-1]["data"]["state"] == "cancelled",
                                 limit=3)
        stream.close()
        self.assertEqual({e["data"]["job_id"] for e in events}, {other["id"]},
                         "a job/ID stream carries that job only")
        for query in ["topic=jobs/1", "topic=queue/a%20b", "topic=", "since=1"]:
            status, _, body = self.b.get("/v1/events?" + query)
            self.assertEqual(status, 400, query)
            self.assertIn(body["error"]["code"], ("topic_invalid", "unknown_parameter"))

    def test_a_kind_filter_takes_a_batchs_progress_without_its_jobs_events(self):
        progress = EventStream(self.b, "topic=batch/&kind=batch")
        both = EventStream(self.b, "topic=batch/&kind=batch&kind=job_state")
        _, _, batch = self.b.post("/v1/batches", {"jobs": [
            {"queue": "kb", "type": "echo", "payload": str(i)} for i in range(50)]})
        self.b.worker("kb", ["echo=cat"], concurrency=4)
        finished = lambda evs: any(e["event"] == "batch" and e["data"]["state"] == "completed"
                                   for e in evs)
        only = self.read_until(progress, finished, limit=1000)
        mixed = self.read_until(both, finished, limit=1000)
        progress.close()
        both.close()
        self.assertEqual({e["event"] for e in only}, {"batch"})
        self.assertEqual(only[-1]["data"]["completed"], 50)
        self.assertEqual({e["event"] for e in mixed}, {"batch", "job_state"})
        job_ids = {e["data"]["job_id"] for e in mixed if e["event"] == "job_state"}
        self.assertEqual(job_ids, set(batch["job_ids"]))
        # The batch events both streams saw are the same ones, by id.
        self.assertEqual([e["id"] for e in only],
                         [e["id"] for e in mixed if e["event"] == "batch"])
        for query in ["kind=jobs", "kind=", "kind=batch&kind=Batch"]:
            status, _, body = self.b.get("/v1/events?" + query)
            self.assertEqual(status, 400, query)
            self.assertEqual(body["error"]["code"], "kind_invalid", query)
            self.assertIn("job_state, job_progress, batch, worker_joined or worker_lost",
                          body["error"]["message"])

    def test_an_idle_stream_is_pinged_and_a_closed_one_is_dropped(self):
        stream = EventStream(self.b, "topic=job/1", timeout_s=25)
        gone = EventStream(self.b)
        wait_for(lambda: "jobmesh_event_subscribers 2\n" in self.b.get("/metrics")[2], 10,
                 "both streams to count")
        gone.close()
        self.assertEqual(stream.next_comment(), ": ping")  # within 15 s (socket timeout 25)

        def dropped():
            self.b.submit("tick", {"type": "t"})  # a write finds the closed one
            return "jobmesh_event_subscribers 1\n" in self.b.get("/metrics")[2]

        wait_for(dropped, 30, "the closed stream to be dropped", step_s=0.2)
        stream.close()

    def test_a_client_that_does_not_read_is_dropped_to_a_snapshot_without_slowing_others(self):
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(60)
        slow.connect((self.b.host, self.b.port))
        slow.sendall(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        other = EventStream(self.b, "topic=queue/other")
        for _ in range(4):  # ~10 MB of events: past kernel buffers and the 1 MiB cap
            status, _, _ = self.b.post("/v1/queues/bulk/jobs",
                                       [{"type": "t" * 60} for _ in range(10000)])
            self.assertEqual(status, 202)
        job = self.b.submit("other", {"type": "t"})
        ev = other.next_event()
        self.assertEqual((ev["event"], ev["data"]["job_id"]), ("job_state", job["id"]),
                         "a client that reads must get its events, whoever lags")
        wait_for(lambda: "jobmesh_events_dropped_total 0\n" not in self.b.get("/metrics")[2], 30,
                 "the slow client's events to be dropped")
        data = bytearray()
        at = -1
        for _ in range(100000):  # bounded: each pass reads or the stream ends
            at = data.find(b"event: snapshot")
            if at >= 0 and data.find(b"\n\n", at) >= 0:
                break
            chunk = slow.recv(1 << 20)
            self.assertTrue(chunk, "the stream closed before a snapshot event")
            data += chunk
        frame = bytes(data[at:data.find(b"\n\n", at)])
        self.assertIn(b'"reason":"lagged"', frame)
        slow.close()
        other.close()

    def test_clients_sharing_a_topic_read_the_same_bytes_every_event_once(self):
        # One feed for all (the same topic, spelled with a repeat for one).
        # 2,000 events are ~0.5 MB, under the 1 MiB cap: none may lag,
        # however slowly it is scheduled.
        streams = [EventStream(self.b, "topic=queue/shared", timeout_s=60),
                   EventStream(self.b, "topic=queue/shared&topic=queue/shared", timeout_s=60),
                   EventStream(self.b, "topic=queue/shared", timeout_s=60)]
        jobs = 2000
        for _ in range(jobs // 500):
            status, _, _ = self.b.post("/v1/queues/shared/jobs",
                                       [{"type": "t" * 60} for _ in range(500)])
            self.assertEqual(status, 202)
        got = []
        for stream in streams:
            data = bytearray(stream.buf)
            seen = data.count(b"\nevent: ")
            for _ in range(100000):  # bounded: each pass reads (60 s socket timeout)
                # Every event, the last one whole (a read can end inside it).
                if seen >= jobs and data.endswith(b"\n\n"):
                    break
                chunk = stream.sock.recv(1 << 20)
                self.assertTrue(chunk, "the stream closed early")
                scan_from = max(0, len(data) - 8)  # a marker cut between reads
                data += chunk
                seen += data.count(b"\nevent: ", scan_from)
            stream.close()
            got.append(bytes(data))
        for data in got:  # (assertTrue: a failure must not print the stream)
            self.assertTrue(b"event: snapshot" not in data)
            ids = [int(x) for x in re.findall(rb"^id: (\d+)$", data, re.M)]
            self.assertEqual(len(ids), jobs)
            self.assertTrue(ids == list(range(ids[0], ids[0] + jobs)),
                            "every event once, in order, none missing")
            self.assertTrue(data == got[0], "clients of one topic read the same bytes")

    def test_a_slow_client_is_skipped_ahead_while_one_sharing_its_topic_reads_on(self):
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(60)
        slow.connect((self.b.host, self.b.port))
        slow.sendall(b"GET /v1/events?topic=queue/shared HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = EventStream(self.b, "topic=queue/shared", timeout_s=60)
        done = threading.Event()
        received = bytearray(reader.buf)

        def read():
            while not done.is_set():
                try:
                    chunk = reader.sock.recv(1 << 20)
                except OSError:
                    return
                if not chunk:
                    return
                received.extend(chunk)

        thread = threading.Thread(target=read)
        thread.start()
        try:
            for _ in range(40):  # ~10 MB of events: past kernel buffers and the cap
                status, _, _ = self.b.post("/v1/queues/shared/jobs",
                                           [{"type": "t" * 60} for _ in range(1000)])
                self.assertEqual(status, 202)
            wait_for(lambda: "jobmesh_events_dropped_total 0\n" not in self.b.get("/metrics")[2],
                     30, "the slow client's events to be dropped")
            # The reader goes on getting the feed's events, lagged or not.
            last = self.b.submit("shared", {"type": "t"})
            marker = ('"job_id":"%s"' % last["id"]).encode()
            wait_for(lambda: marker in received, 60, "the reader to get the last job's event",
                     step_s=0.2)
        finally:
            done.set()
            reader.sock.shutdown(socket.SHUT_RDWR)
            thread.join(10)
            reader.close()
        data = bytearray()
        at = -1
        for _ in range(100000):  # bounded: each pass reads or the stream ends
            at = data.find(b"event: snapshot")
            if at >= 0 and data.find(b"\n\n", at) >= 0:
                break
            chunk = slow.recv(1 << 20)
            self.assertTrue(chunk, "the stream closed before a snapshot event")
            data += chunk
        self.assertIn(b'"reason":"lagged"', bytes(data[at:data.find(b"\n\n", at)]))
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), "the head is never dropped")
        slow.close()

if __name__ == "__main__":
    unittest.main(verbosity=2)
