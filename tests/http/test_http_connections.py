"""The broker's HTTP connections (docs/limits.md): a cap on connections
open at once (503 with Retry-After past it, the others served), a deadline
for a request head (a client that sends half of one, or trickles it, is
cut while others are served), 431 for an oversized head, 411 for a chunked
body, and keep-alive with pipelined requests. Real broker processes on
127.0.0.1; run by ctest with JOBMESH_BIN_DIR set."""

import json
import select
import socket
import time
import unittest

from jmhttp import Broker, wait_for


READERS = {}  # socket -> its buffered reader (read_response)


def read_response(sock, timeout_s=15):
    """(status, headers dict with lower-case names, body bytes) of the next
    response on sock (Content-Length framed, read through one buffered
    reader per socket, so pipelined responses are not lost); None when the
    broker closed the connection before a whole one came."""
    sock.settimeout(timeout_s)
    if sock not in READERS:
        READERS[sock] = sock.makefile("rb")
    f = READERS[sock]
    status_line = f.readline()
    if not status_line.endswith(b"\r\n"):
        return None
    status = int(status_line.split(b" ")[1])
    headers = {}
    while True:
        line = f.readline()
        if not line.endswith(b"\r\n"):
            return None
        if line == b"\r\n":
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = f.read(length)
    if len(body) < length:
        return None
    return status, headers, body


def closed_within(sock, timeout_s):
    """Seconds until the broker closed sock (reading and dropping what it
    sends), or None when it was still open after timeout_s."""
    started = time.monotonic()
    sock.settimeout(timeout_s)
    try:
        if sock in READERS:
            while READERS[sock].read1(65536):
                pass
            return time.monotonic() - started
        while sock.recv(65536):
            pass
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


class HttpConnections(unittest.TestCase):
    def tearDown(self):
        for s in getattr(self, "socks", []):
            s.close()
        if not hasattr(self, "b"):
            return  # the broker did not start: the test says why
        status = self.b.stop()
        self.assertIn(status, (0, None), "the broker must stop cleanly on SIGTERM")

    def raw(self):
        s = socket.create_connection((self.b.host, self.b.port), timeout=15)
        self.socks.append(s)
        return s

    def metric(self, name, conn=None):
        status, _, text = self.b.get("/metrics", conn=conn)
        self.assertEqual(status, 200, text)
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split(" ")[1])
        self.fail("no %s in /metrics" % name)

    def test_connections_past_the_cap_get_503_with_retry_after_and_the_open_ones_are_served(self):
        self.socks = []
        self.b = Broker(["--http-max-connections", "4"])
        # Four kept-alive connections, each served once: all four are open.
        held = [self.b.connect() for _ in range(4)]
        for conn in held:
            self.assertEqual(self.b.get("/healthz", conn=conn)[0], 200)
        # A fifth is answered 503 with Retry-After and closed.
        for _ in range(3):
            s = self.raw()
            s.sendall(b"GET /v1/queues HTTP/1.1\r\nHost: x\r\n\r\n")
            res = read_response(s)
            self.assertIsNotNone(res, "the broker closed a refused connection unanswered")
            status, headers, body = res
            self.assertEqual(status, 503, body)
            self.assertEqual(headers.get("retry-after"), "1")
            err = json.loads(body)["error"]
            self.assertEqual(err["code"], "too_many_connections")
            self.assertIn("--http-max-connections", err["message"])
            self.assertIn("at most 4", err["message"])
            self.assertIsNotNone(closed_within(s, 10), "a refused connection stayed open")
        # The open ones are served meanwhile, on the same connections.
        self.assertEqual(self.b.post("/v1/queues/q/jobs", {"type": "t"}, conn=held[0])[0], 202)
        self.assertEqual(self.b.get("/v1/queues", conn=held[1])[0], 200)
        self.assertGreaterEqual(
            self.metric("jobmesh_http_connections_refused_total", conn=held[2]), 3)
        self.assertEqual(self.metric("jobmesh_http_connections", conn=held[2]), 4)
        # Once two close, new connections are served again.
        held[0].close()
        held[1].close()

        def served():
            try:
                return self.b.get("/healthz")[0] == 200
            except (ConnectionError, OSError):
                return False

        wait_for(served, 10, "a new connection served after two closed")
        for conn in held[2:]:
            conn.close()

    def test_a_head_sent_half_is_cut_after_the_header_timeout_while_others_are_served(self):
        self.socks = []
        self.b = Broker(["--http-header-timeout-ms", "1000"])
        half = self.raw()
        started = time.monotonic()
        half.sendall(b"GET /v1/queues HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        silent = self.raw()  # connects and sends nothing at all
        # Served meanwhile, on connections of their own.
        for _ in range(5):
            self.assertEqual(self.b.get("/healthz")[0], 200)
        self.assertEqual(self.b.post("/v1/queues/other/jobs", {"type": "t"})[0], 202)
        for s in (half, silent):
            waited = closed_within(s, 15)
            self.assertIsNotNone(waited, "a stalled head held its connection past 15 s")
        total = time.monotonic() - started
        self.assertGreaterEqual(total, 0.9)
        self.assertLess(total, 10)
        self.assertGreaterEqual(self.metric("jobmesh_http_timeouts_total"), 2)

    def test_a_head_trickled_a_byte_at_a_time_is_cut_at_the_same_deadline(self):
        self.socks = []
        self.b = Broker(["--http-header-timeout-ms", "1000"])
        s = self.raw()
        started = time.monotonic()
        head = b"GET /v1/queues HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        closed = False
        # One byte every 100 ms (the attack's pace): each would restart a
        # per-read timeout; the deadline is for the whole head. select()
        # both paces the bytes and notices the close.
        for i in range(len(head)):
            if time.monotonic() - started > 10:
                break
            try:
                s.sendall(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            readable, _, _ = select.select([s], [], [], 0.1)
            if readable:
                try:
                    closed = s.recv(4096) == b""
                except ConnectionResetError:
                    closed = True
                if closed:
                    break
        waited = time.monotonic() - started
        self.assertTrue(closed, "a trickled head was not cut within 10 s")
        self.assertGreaterEqual(waited, 0.9)
        self.assertLess(waited, 5)
        self.assertEqual(self.b.get("/healthz")[0], 200)

    def test_an_oversized_head_gets_431_and_a_head_under_it_is_served(self):
        self.socks = []
        self.b = Broker(["--http-max-header-bytes", "4096"])
        s = self.raw()
        s.sendall(b"GET /v1/queues HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        status, _, body = read_response(s)
        self.assertEqual(status, 431, body)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "headers_too_large")
        self.assertIn("4096", err["message"])
        self.assertIsNotNone(closed_within(s, 10), "the connection stayed open after a 431")
        self.assertEqual(self.b.get("/v1/queues", headers={"X-Big": "a" * 3000})[0], 200)

    def test_a_chunked_body_is_refused_with_411_and_nothing_is_stored(self):
        self.socks = []
        self.b = Broker()
        s = self.raw()
        s.sendall(b"POST /v1/queues/c/jobs HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"e\r\n{\"type\": \"t\"}\r\n0\r\n\r\n")
        status, headers, body = read_response(s)
        self.assertEqual(status, 411, body)
        self.assertIn("Content-Length", json.loads(body)["error"]["message"])
        self.assertEqual(headers.get("connection"), "close")
        _, _, queues = self.b.get("/v1/queues")
        self.assertNotIn("c", [q["name"] for q in queues.get("queues", [])])

    def test_a_body_sent_after_100_continue_is_accepted(self):
        self.socks = []
        self.b = Broker()
        s = self.raw()
        body = b'{"type": "t", "payload": "%s"}' % (b"x" * 2000)
        s.sendall(b"POST /v1/queues/e/jobs HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        interim = read_response(s)
        self.assertIsNotNone(interim, "the broker closed instead of answering 100-continue")
        self.assertEqual(interim[0], 100)
        s.sendall(body)
        status, _, answer = read_response(s)
        self.assertEqual(status, 202, answer)
        self.assertEqual(json.loads(answer)["state"], "pending")

    def test_pipelined_requests_on_one_kept_alive_connection_are_answered_in_order(self):
        self.socks = []
        self.b = Broker()
        s = self.raw()
        body = b'{"type": "t"}'
        s.sendall(b"POST /v1/queues/p/jobs HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n" % (len(body), body))
        answers = [read_response(s) for _ in range(3)]
        self.assertEqual([a[0] if a else None for a in answers], [202, 200, 404], answers)
        self.assertEqual(json.loads(answers[2][2])["error"]["code"], "not_found")
        # Still open for one more.
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_response(s)[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
