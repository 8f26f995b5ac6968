"""The handler end of ``jobmesh-worker --serve TYPE=COMMAND``.

The worker starts COMMAND once per slot and writes one JSON object per line
on its stdin; this module reads them, calls the function registered for the
job's type and writes progress, result or error lines on stdout
(docs/serve-protocol.md). stdout belongs to the protocol: ``print`` is sent
to stderr while jobs run, so stray output cannot corrupt it.

    import jobmesh

    def parse(job):
        job.progress(1, 2, "parsing")
        return {"words": len(job.payload.split())}

    async def fetch(job):
        ...

    jobmesh.serve({"email.parse": parse, "page.fetch": fetch})
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import sys
import threading
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, TextIO, Union

from .errors import PermanentError

__all__ = ["Job", "serve"]


class Job:
    """One job handed to a handler."""

    __slots__ = ("id", "type", "queue", "attempt", "payload", "payload_bytes",
                 "deadline", "timeout_ms", "_emit", "_data", "_parsed")

    def __init__(self, msg: Mapping[str, Any], emit: Callable[[Dict[str, Any]], None]):
        self.id: str = str(msg["id"])
        self.type: str = msg.get("type", "")
        self.queue: str = msg.get("queue", "")
        self.attempt: int = int(msg.get("attempt", 1))
        if "payload_base64" in msg:
            self.payload_bytes: bytes = base64.b64decode(msg["payload_base64"])
            self.payload: str = self.payload_bytes.decode("utf-8", "replace")
        else:
            self.payload = msg.get("payload", "")
            self.payload_bytes = self.payload.encode("utf-8", "surrogatepass")
        #: Unix time in milliseconds when the run timeout passes, or None.
        self.deadline: Optional[int] = msg.get("deadline")
        self.timeout_ms: int = int(msg.get("timeout_ms") or 0)
        self._emit = emit
        self._parsed = False
        self._data: Any = None

    @property
    def data(self) -> Any:
        """The payload parsed as JSON, or None when it is not JSON."""
        if not self._parsed:
            self._parsed = True
            try:
                self._data = json.loads(self.payload)
            except ValueError:
                self._data = None
        return self._data

    def progress(self, done: Union[int, float], total: Union[int, float] = 1,
                 message: Optional[str] = None) -> None:
        """Reports done of total (whole numbers, total >= 1); a fraction
        progress(0.25) is sent as 2500 of 10000."""
        if isinstance(done, float) and total == 1 and not float(done).is_integer():
            done, total = round(done * 10000), 10000
        done, total = int(done), int(total)
        if total < 1 or done < 0 or done > total:
            raise ValueError(f"progress({done}, {total}): need 0 <= done <= total and total >= 1")
        line: Dict[str, Any] = {"op": "progress", "id": self.id, "done": done, "total": total}
        if message:
            line["message"] = message
        self._emit(line)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, type={self.type!r}, queue={self.queue!r}, attempt={self.attempt})"


Handler = Callable[[Job], Union[Any, Awaitable[Any]]]


def _result_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return json.dumps(value, separators=(",", ":"))


class _Server:
    def __init__(self, handlers: Mapping[str, Handler], out: TextIO):
        self.handlers = dict(handlers)
        self.out = out
        self.lock = threading.Lock()
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    def emit(self, line: Dict[str, Any]) -> None:
        text = json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self.lock:
            self.out.write(text)
            self.out.flush()

    def run_job(self, msg: Mapping[str, Any]) -> None:
        try:
            job = Job(msg, self.emit)
        except (KeyError, ValueError, TypeError) as e:
            print(f"jobmesh.serve: bad job line: {e}", file=sys.stderr)
            return
        fn = self.handlers.get(job.type)
        try:
            if fn is None:
                raise PermanentError(
                    f"no handler for type {job.type!r} (this process serves {sorted(self.handlers)})")
            value = fn(job)
            if inspect.isawaitable(value):
                if self.loop is None:
                    self.loop = asyncio.new_event_loop()
                value = self.loop.run_until_complete(value)
            self.emit({"op": "result", "id": job.id, "result": _result_text(value)})
        except PermanentError as e:
            self.emit({"op": "error", "id": job.id, "message": str(e) or type(e).__name__,
                       "permanent": True})
        except Exception as e:  # a handler's failure fails the attempt
            self.emit({"op": "error", "id": job.id,
                       "message": f"{type(e).__name__}: {e}", "permanent": False})


def serve(handlers: Mapping[str, Handler], *, stdin: Optional[TextIO] = None,
          stdout: Optional[TextIO] = None) -> None:
    """Serves jobs from ``jobmesh-worker --serve`` until it says stop or
    closes stdin. handlers maps a job type to a function taking a Job; it
    may be a plain or an async function. Its return value is the result (a
    str as it is, bytes as UTF-8, anything else as JSON); an exception fails
    the attempt (retried while attempts remain), a PermanentError fails it
    for good."""
    proto_in = stdin if stdin is not None else sys.stdin
    proto_out = stdout if stdout is not None else sys.stdout
    server = _Server(handlers, proto_out)
    saved_stdout = sys.stdout
    if stdout is None:
        sys.stdout = sys.stderr  # print() in a handler must not reach the protocol
    try:
        for raw in proto_in:
            raw = raw.strip()
            if not raw:
                continue
            try:
                msg = json.loads(raw)
            except ValueError:
                print(f"jobmesh.serve: ignoring a line that is not JSON: {raw[:80]!r}",
                      file=sys.stderr)
                continue
            op = msg.get("op")
            if op == "job":
                server.run_job(msg)
            elif op == "stop":
                break
            # "cancel" needs no answer: the worker kills this process next.
    finally:
        sys.stdout = saved_stdout
        if server.loop is not None:
            server.loop.close()

