"""deploy/examples/express and deploy/examples/python-http, each started
against a real broker and a real worker: POST -> 202 + id, progress over
SSE, GET status."""

import json
import os
import shutil
import signal
import subprocess
import unittest
import urllib.error
import urllib.request

from stack import ROOT, Stack, _die_with_parent, _live, stop_process

EXAMPLES = os.path.join(ROOT, "deploy", "examples")


class ExampleCase:
    app: list
    handler: str
    queue: str
    type_: str
    body: dict

    def setUp(self):
        self.stack = Stack()
        self.addCleanup(self.stack.close)
        self.stack.worker("--serve", f"{self.type_}={self.handler}", queue=self.queue,
                          concurrency=2)
        env = dict(os.environ, JOBMESH_URL=self.stack.url, PORT="0", EXAMPLE_STEP_MS="30")
        self.app_proc = subprocess.Popen(self.app, cwd=self.cwd, env=env, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        _live.append(self.app_proc)
        self.addCleanup(self.app_proc.stdout.close)
        self.addCleanup(stop_process, self.app_proc, signal.SIGTERM)
        line = self.app_proc.stdout.readline().decode()
        self.assertTrue(line.startswith("listening "), f"example did not start: {line!r}")
        self.url = line.split()[1]

    def post(self, body):
        req = urllib.request.Request(self.url + "/jobs", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, dict(r.headers), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read())

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=20) as r:
            return json.loads(r.read())

    def test_post_returns_202_and_progress_reaches_the_browser_over_sse(self):
        status, headers, body = self.post(self.body)
        self.assertEqual(status, 202, body)
        job_id = body["id"]
        self.assertEqual(headers.get("Location"), f"/jobs/{job_id}")
        events, kind = [], None
        with urllib.request.urlopen(self.url + f"/jobs/{job_id}/events", timeout=60) as r:
            self.assertTrue(r.headers["Content-Type"].startswith("text/event-stream"))
            for raw in r:  # bounded: the app ends the stream after "done"
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
        kinds = [k for k, _ in events]
        self.assertIn("progress", kinds)
        self.assertEqual(events[-1][0], "done")
        self.assertEqual(events[-1][1]["state"], "completed", events[-1])
        done = [d for k, d in events if k == "progress"]
        self.assertEqual([d["done"] for d in done], sorted(d["done"] for d in done))
        job = self.get(f"/jobs/{job_id}")
        self.assertEqual(job["state"], "completed")
        self.assertEqual(job["result"], events[-1][1]["result"])

    def test_bad_input_is_refused_with_400(self):
        status, _, body = self.post({})
        self.assertEqual(status, 400, body)


class ExpressExampleTest(ExampleCase, unittest.TestCase):
    cwd = os.path.join(EXAMPLES, "express")
    app = ["node", "server.mjs"]
    handler = f"node {os.path.join(EXAMPLES, 'express', 'handler.mjs')}"
    queue, type_ = "emails", "email.send"
    body = {"to": "someone@example.com", "subject": "hi"}

    def setUp(self):
        if not os.path.isdir(os.path.join(self.cwd, "node_modules", "express")):
            self.fail("deploy/examples/express has no node_modules: run scripts/install-deps "
                      "(it runs npm ci there)")
        if shutil.which("node") is None:
            self.fail("node is not installed")
        super().setUp()


class PythonHttpExampleTest(ExampleCase, unittest.TestCase):
    cwd = os.path.join(EXAMPLES, "python-http")
    app = ["python3", "app.py"]
    handler = f"python3 {os.path.join(EXAMPLES, 'python-http', 'handler.py')}"
    queue, type_ = "reports", "report.build"
    body = {"pages": 4}


if __name__ == "__main__":
    unittest.main()
