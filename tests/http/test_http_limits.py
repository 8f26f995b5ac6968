"""The broker's limits over HTTP (docs/limits.md): a submit over a limit
is refused whole with 429, a Retry-After header and a message naming the
limit, and nothing of it is stored; a request whose body stalls is cut
after --idle-timeout-ms. Run by ctest with JOBMESH_BIN_DIR set."""

import socket
import time
import unittest

from jmhttp import Broker


class HttpLimits(unittest.TestCase):
    def tearDown(self):
        status = self.b.stop()
        self.assertIn(status, (0, None), "the broker must stop cleanly on SIGTERM")

    def stats_pending(self, queue):
        _, _, body = self.b.get("/v1/queues")
        for q in body.get("queues", []):
            if q["name"] == queue:
                return q["counts"]["pending"]
        return 0

    def test_a_submit_over_the_jobs_per_queue_limit_is_429_with_retry_after(self):
        self.b = Broker(["--max-queue-jobs", "3"])
        status, headers, body = self.b.post("/v1/queues/q/jobs", [{"type": "t"}] * 4)
        self.assertEqual(status, 429, body)
        self.assertEqual(headers.get("retry-after"), "1")
        self.assertIn("--max-queue-jobs", str(body))
        self.assertIn("limit of 3", str(body))
        self.assertEqual(self.stats_pending("q"), 0)
        self.assertEqual(self.b.post("/v1/queues/q/jobs", [{"type": "t"}] * 3)[0], 202)
        self.assertEqual(self.b.post("/v1/queues/q/jobs", {"type": "t"})[0], 429)
        self.assertEqual(self.stats_pending("q"), 3)

    def test_a_submit_over_the_payload_memory_limit_is_429_and_stores_nothing(self):
        self.b = Broker(["--max-payload-memory", "64K"])
        big = {"type": "t", "payload": "x" * 30000}
        status, headers, body = self.b.post("/v1/queues/m/jobs", [big, big, big])
        self.assertEqual(status, 429, body)
        self.assertEqual(headers.get("retry-after"), "1")
        self.assertIn("--max-payload-memory", str(body))
        self.assertEqual(self.stats_pending("m"), 0)

    def test_a_delay_that_overflows_the_clock_is_refused(self):
        self.b = Broker()
        status, _, body = self.b.post("/v1/queues/d/jobs", {"type": "t",
                                                            "delay_ms": 18446744073709551})
        self.assertEqual(status, 400, body)
        self.assertIn("delay_ms", str(body))  # the spec check (proto/job_spec.c) or the clock check
        self.assertEqual(self.stats_pending("d"), 0)

    def test_a_body_that_stalls_is_cut_after_the_idle_timeout(self):
        self.b = Broker(["--idle-timeout-ms", "1000"])
        s = socket.create_connection((self.b.host, self.b.port), timeout=15)
        started = time.monotonic()
        s.sendall(b"POST /v1/queues/s/jobs HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                  b'{"type": "t", "payload": "')
        # Served meanwhile: the stalled connection holds nothing else up.
        self.assertEqual(self.b.post("/v1/queues/other/jobs", {"type": "t"})[0], 202)
        closed = s.recv(4096)  # blocks until the broker closes it (or 15 s)
        waited = time.monotonic() - started
        s.close()
        self.assertEqual(closed, b"", "the broker answered a body it never received whole")
        self.assertGreaterEqual(waited, 0.9)
        self.assertLess(waited, 10)
        self.assertEqual(self.stats_pending("s"), 0)
        self.assertEqual(self.stats_pending("other"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
