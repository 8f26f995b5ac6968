"""docs/openapi.json is what the broker serves at /v1/openapi.json, and
every documented path and method answers good and bad requests with a
status the document lists for it."""

import json
import os
import re
import unittest

from jmhttp import Broker, EventStream, wait_for

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "openapi.json")


class HttpOpenApi(unittest.TestCase):
    def setUp(self):
        self.b = Broker()

    def tearDown(self):
        self.assertIn(self.b.stop(), (0, None), "the broker must stop cleanly on SIGTERM")

    def test_the_served_document_is_the_one_in_the_repo(self):
        with open(DOC) as f:
            repo = json.load(f)
        status, _, served = self.b.get("/v1/openapi.json")
        self.assertEqual(status, 200)
        self.assertEqual(served, repo)
        self.assertEqual(repo["openapi"], "3.1.0")

    def test_every_documented_path_answers_with_a_documented_status(self):
        with open(DOC) as f:
            doc = json.load(f)
        self.b.worker("q", ["t=cat", "dead=exit 100"])
        done = self.b.submit("q", {"type": "t", "payload": "x"})["id"]
        dead = self.b.submit("q", {"type": "dead"})["id"]
        # Dead letters the DELETEs of /v1/queues/{queue}/dead[/{id}] remove,
        # in queues of their own: q's stays for /v1/jobs/{id}/retry.
        self.b.worker("q2", ["dead=exit 100"])
        self.b.worker("q3", ["dead=exit 100"])
        dead2 = self.b.submit("q2", {"type": "dead"})["id"]
        dead3 = self.b.submit("q3", {"type": "dead"})["id"]
        wait_for(lambda: self.b.job(done)["state"] == "completed", 30, "a completed job")
        for job in (dead, dead2, dead3):
            wait_for(lambda: self.b.job(job)["state"] == "failed", 30, "a dead-lettered job")
        batch = self.b.post("/v1/batches", {"jobs": [{"queue": "idle", "type": "t"}]})[2]["id"]
        pending = self.b.submit("idle", {"type": "t"})["id"]
        schedule = {"every": "1h", "queue": "idle", "type": "t"}
        good = {"{queue}": "q", "{id}": done, "{name}": "hourly"}
        per_path_id = {"/v1/jobs/{id}/cancel": pending, "/v1/jobs/{id}/retry": dead,
                       "/v1/batches/{id}": batch, "/v1/queues/{queue}/dead/{id}": dead3}
        per_path_queue = {"/v1/queues/{queue}/dead": "q2", "/v1/queues/{queue}/dead/{id}": "q3"}
        bad_values = {"{queue}": "a%20b", "{id}": "0", "{name}": "a%20b"}
        checked = 0
        for path, methods in doc["paths"].items():
            for method, op in methods.items():
                documented = set(op["responses"])
                example = None
                if "requestBody" in op:
                    example = op["requestBody"]["content"]["application/json"]["example"]
                filled = path
                for k, v in good.items():
                    if k == "{id}":
                        v = per_path_id.get(path, v)
                    elif k == "{queue}":
                        v = per_path_queue.get(path, v)
                    filled = filled.replace(k, v)
                requests = [(method.upper(), filled, example, "good")]
                if "{" in path:
                    broken = path
                    for k, v in bad_values.items():
                        broken = broken.replace(k, v)
                    requests.append((method.upper(), broken, example, "bad path value"))
                if example is not None:
                    requests.append((method.upper(), filled, {"nope": 1}, "bad body"))
                requests.append(("DELETE", filled, None, "wrong method"))
                requests.append((method.upper(), filled + ("&" if "?" in filled else "?")
                                 + "bogus=1", example, "unknown parameter"))
                for m, p, body, what in requests:
                    if path == "/v1/schedules/{name}":  # a DELETE before may have removed it
                        self.b.request("PUT", "/v1/schedules/hourly", body=schedule)
                    with self.subTest(method=m, path=p, what=what):
                        if path == "/v1/events" and m == "GET" and what == "good":
                            stream = EventStream(self.b)
                            status = int(stream.status_line.split()[1])
                            stream.close()
                        else:
                            status = self.b.request(m, p, body=body)[0]
                        self.assertIn(str(status), documented,
                                      "%s %s (%s) answered %d, documented %s" %
                                      (m, p, what, status, sorted(documented)))
                        if what == "good":
                            self.assertTrue(status < 300, "%s %s answered %d" % (m, p, status))
                        checked += 1
        self.assertGreaterEqual(checked, 60)
        # And the document lists every route the server has.
        served = set(doc["paths"])
        for route in ["/v1/queues/{queue}/jobs", "/v1/jobs", "/v1/jobs/{id}",
                      "/v1/jobs/{id}/result", "/v1/jobs/{id}/cancel", "/v1/jobs/{id}/retry",
                      "/v1/batches", "/v1/batches/{id}", "/v1/queues", "/v1/queues/{queue}/dead",
                      "/v1/workers", "/v1/events", "/v1/openapi.json", "/metrics", "/healthz",
                      "/readyz", "/v1/schedules", "/v1/schedules/{name}"]:
            self.assertIn(route, served)


if __name__ == "__main__":
    unittest.main(verbosity=2)
