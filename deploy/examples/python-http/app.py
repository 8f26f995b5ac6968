"""A Python web backend in front of jobmesh, on the standard library's
http.server:

    POST /jobs             -> 202 {"id"}, Location: /jobs/ID (the job is durable)
    GET  /jobs/ID          -> the job's state, progress and result
    GET  /jobs/ID/events   -> its progress as Server-Sent Events, for the browser

JOBMESH_URL: the broker's HTTP API (default http://127.0.0.1:7480); PORT
(default 8000; 0 picks a free one). Prints "listening http://HOST:PORT".
Run the worker with: jobmesh-worker --queue reports --serve report.build='python3 handler.py'
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "client", "python"))
import jobmesh  # noqa: E402  (or: pip install client/python)

jm = jobmesh.Client(os.environ.get("JOBMESH_URL", "http://127.0.0.1:7480"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/jobs":
            return self.reply(404, {"error": "no such path"})
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            return self.reply(400, {"error": "body is not JSON"})
        if not isinstance(req, dict) or not isinstance(req.get("pages"), int):
            return self.reply(400, {"error": 'give "pages", a whole number'})
        try:
            job_id = jm.submit("reports", "report.build", {"pages": req["pages"]}, max_attempts=3)
        except jobmesh.ApiError as e:
            return self.reply(e.status if e.status < 500 else 502, {"error": e.message})
        self.reply(202, {"id": job_id}, {"Location": f"/jobs/{job_id}"})

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "jobs":
            return self.reply(404, {"error": "no such path"})
        job_id = parts[1]
        if len(parts) == 3 and parts[2] == "events":
            return self.events(job_id)
        try:
            job = jm.get(job_id)
        except jobmesh.NotFoundError as e:
            return self.reply(404, {"error": e.message})
        out = {"id": job["id"], "state": job["state"], "progress": job["progress"],
               "error": job["last_error"]}
        if job["state"] == "completed":
            out["result"] = json.loads(jm.result(job_id))
        self.reply(200, out)

    def events(self, job_id):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def send(event, data):
            self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        try:
            # Where the job is now (a page opened late, or reloaded, starts
            # here); wait() then relays what happens next.
            now = jm.get(job_id).get("progress") or {}
            if now.get("total"):
                send("progress", {"done": now["done"], "total": now["total"],
                                  "message": now.get("message") or ""})
            result = jm.wait(job_id, on_progress=lambda d, t, m: send(
                "progress", {"done": d, "total": t, "message": m}))
            send("done", {"state": "completed", "result": json.loads(result)})
        except (jobmesh.JobFailedError, jobmesh.JobCancelledError) as e:
            send("done", {"state": e.job.get("state"), "error": str(e)})
        except jobmesh.NotFoundError as e:
            send("done", {"state": "unknown", "error": e.message})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    def log_message(self, fmt, *args):
        sys.stderr.write("app: " + fmt % args + "\n")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler)
    print(f"listening http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
