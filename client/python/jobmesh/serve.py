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
import io
import json
import os
import sys
import threading
import time
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, TextIO, Union

from .errors import PermanentError

__all__ = ["Job", "serve", "DEFAULT_PIPELINE"]


class Job:
    """One job handed to a handler."""

    __slots__ = ("id", "type", "queue", "attempt", "payload", "_payload_bytes",
                 "deadline", "timeout_ms", "_emit", "_data", "_parsed")

    @classmethod
    def _from_item(cls, item: Any, emit: Callable[[Dict[str, Any]], None]) -> "Job":
        """A job of a "jobs" line: [id, type, queue, attempt, payload,
        deadline, timeout_ms] (+ payload_base64 when payload is null)."""
        job = cls.__new__(cls)
        job_id = item[0]
        job.id = job_id if type(job_id) is str else str(job_id)
        job.type = item[1]
        job.queue = item[2]
        attempt = item[3]
        job.attempt = attempt if type(attempt) is int else int(attempt)
        if len(item) > 7:
            job._payload_bytes = base64.b64decode(item[7])
            job.payload = job._payload_bytes.decode("utf-8", "replace")
        else:
            payload = item[4]
            if type(payload) is not str:
                raise TypeError(f"payload must be a string, not {type(payload).__name__}")
            job.payload = payload
            job._payload_bytes = None
        job.deadline = item[5]
        job.timeout_ms = int(item[6] or 0)
        job._emit = emit
        job._parsed = False
        job._data = None
        return job

    def __init__(self, msg: Mapping[str, Any], emit: Callable[[Dict[str, Any]], None]):
        job_id = msg["id"]
        self.id: str = job_id if type(job_id) is str else str(job_id)
        self.type: str = msg.get("type", "")
        self.queue: str = msg.get("queue", "")
        attempt = msg.get("attempt", 1)
        self.attempt: int = attempt if type(attempt) is int else int(attempt)
        if "payload_base64" in msg:
            self._payload_bytes: Optional[bytes] = base64.b64decode(msg["payload_base64"])
            self.payload: str = self._payload_bytes.decode("utf-8", "replace")
        else:
            self.payload = msg.get("payload", "")
            self._payload_bytes = None  # encoded when asked for
        #: Unix time in milliseconds when the run timeout passes, or None.
        self.deadline: Optional[int] = msg.get("deadline")
        self.timeout_ms: int = int(msg.get("timeout_ms") or 0)
        self._emit = emit
        self._parsed = False
        self._data: Any = None

    @property
    def payload_bytes(self) -> bytes:
        """The payload's bytes, exactly."""
        if self._payload_bytes is None:
            self._payload_bytes = self.payload.encode("utf-8", "surrogatepass")
        return self._payload_bytes

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


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_raw_decode = json.JSONDecoder().raw_decode
_PLAIN = (str, dict, list, int, float, bool, bytes)

#: Jobs a process asks to hold at once (its hello line); the worker's
#: --serve-pipeline caps it, and gives fewer while jobs are slow.
DEFAULT_PIPELINE = 128
#: A sync handler's answers are written in batches, but never held longer.
_FLUSH_AFTER_S = 0.002


class _Server:
    def __init__(self, handlers: Mapping[str, Handler], write: Callable[[str], None]):
        self.handlers = dict(handlers)
        self._write = write
        self.lock = threading.Lock()
        self.pending: list = []  # answer lines not written yet
        # Once the worker sent a "jobs" line it reads "results" lines too:
        # results are then gathered into one (ids, and their texts).
        self.batched = False
        self.done_ids: list = []
        self.done_texts: list = []
        self.done_any_text = False
        self.last_flush = time.monotonic()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.tasks: set = set()
        self.flush_soon = False

    def flush(self) -> None:
        with self.lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self.flush_soon = False
        self.last_flush = time.monotonic()
        if self.done_ids:
            if self.done_any_text:
                line = ('{"op":"results","ids":' + _dumps(self.done_ids) + ',"results":'
                        + _dumps(self.done_texts) + "}\n")
            elif all(map(str.isdigit, self.done_ids)):
                line = '{"op":"results","ids":["' + '","'.join(self.done_ids) + '"]}\n'
            else:
                line = '{"op":"results","ids":' + _dumps(self.done_ids) + "}\n"
            self.done_ids = []
            self.done_texts = []
            self.done_any_text = False
            self.pending.append(line)
        if self.pending:
            data = "".join(self.pending)
            self.pending.clear()
            self._write(data)

    def emit(self, line: Dict[str, Any]) -> None:
        """Progress: written at once (after the answers before it)."""
        text = _dumps(line) + "\n"
        with self.lock:
            self.pending.append(text)
            self._flush_locked()

    def answer(self, job_id: str, value: Any = None, error: Optional[BaseException] = None) -> None:
        if error is None and self.batched:
            text = "" if value is None else value if type(value) is str else _result_text(value)
            with self.lock:
                self.done_ids.append(job_id)
                self.done_texts.append(text)
                if text:
                    self.done_any_text = True
            return
        if error is None:
            if value is None or value == "":
                result = '""'
            else:
                result = _dumps(value if type(value) is str else _result_text(value))
            if job_id.isdigit():
                text = '{"op":"result","id":"' + job_id + '","result":' + result + "}\n"
            else:
                text = '{"op":"result","id":' + _dumps(job_id) + ',"result":' + result + "}\n"
        elif isinstance(error, PermanentError):
            text = _dumps({"op": "error", "id": job_id, "message": str(error) or type(error).__name__,
                           "permanent": True}) + "\n"
        else:
            text = _dumps({"op": "error", "id": job_id, "message": f"{type(error).__name__}: {error}",
                           "permanent": False}) + "\n"
        with self.lock:
            self.pending.append(text)

    def run_job(self, msg: Mapping[str, Any]) -> None:
        try:
            job = Job(msg, self.emit)
        except (KeyError, ValueError, TypeError) as e:
            print(f"jobmesh.serve: bad job line: {e}", file=sys.stderr)
            return
        self.run(job)

    def run_jobs(self, items: Any) -> None:
        """The jobs of a "jobs" line, in order. A plain function's result
        is gathered here and added to the results line once per line (one
        lock, no call per job); anything else goes the way of run()."""
        if type(items) is not list:
            print("jobmesh.serve: bad jobs line: \"jobs\" is not an array", file=sys.stderr)
            return
        self.batched = True
        from_item = Job._from_item
        emit = self.emit
        get = self.handlers.get
        ids: list = []
        texts: list = []
        any_text = False
        for item in items:
            try:
                job = from_item(item, emit)
            except (IndexError, KeyError, ValueError, TypeError) as e:
                print(f"jobmesh.serve: bad job in a jobs line: {e!r}", file=sys.stderr)
                continue
            fn = get(job.type)
            if fn is not None:
                try:
                    value = fn(job)
                    if value is None:
                        text = ""
                    elif type(value) is str:
                        text = value
                    elif type(value) in _PLAIN:
                        text = _result_text(value)
                    else:
                        text = None  # perhaps awaitable: run()'s way
                except Exception as e:  # a handler's failure fails the attempt
                    self.answer(job.id, error=e)
                    continue
                if text is not None:
                    ids.append(job.id)
                    texts.append(text)
                    if text:
                        any_text = True
                    continue
            # The answers gathered so far go first (results keep job order).
            if ids:
                self._add_results(ids, texts, any_text)
                ids, texts, any_text = [], [], False
            if fn is None:
                self.run(job)
            else:
                self._settle(job, value)
        if ids:
            self._add_results(ids, texts, any_text)

    def _add_results(self, ids: list, texts: list, any_text: bool) -> None:
        with self.lock:
            self.done_ids += ids
            self.done_texts += texts
            if any_text:
                self.done_any_text = True

    def run(self, job: Job) -> None:
        fn = self.handlers.get(job.type)
        try:
            if fn is None:
                raise PermanentError(
                    f"no handler for type {job.type!r} (this process serves {sorted(self.handlers)})")
            value = fn(job)
        except Exception as e:  # a handler's failure fails the attempt
            self.answer(job.id, error=e)
            return
        self._settle(job, value)

    def _settle(self, job: Job, value: Any) -> None:
        """Answers job with what its function returned (awaited first when
        it is awaitable)."""
        try:
            if value is not None and type(value) not in _PLAIN and inspect.isawaitable(value):
                if self.loop is None:
                    # No event loop serving (streams without descriptors):
                    # one job at a time.
                    self.loop = asyncio.new_event_loop()
                    self.answer(job.id, self.loop.run_until_complete(value))
                elif self.loop.is_running():
                    task = self.loop.create_task(self._finish(job.id, value))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                else:
                    self.answer(job.id, self.loop.run_until_complete(value))
                return
            self.answer(job.id, value)
        except Exception as e:  # a handler's failure fails the attempt
            self.answer(job.id, error=e)

    async def _finish(self, job_id: str, awaitable: Awaitable[Any]) -> None:
        try:
            self.answer(job_id, await awaitable)
        except Exception as e:
            self.answer(job_id, error=e)
        if not self.flush_soon and self.loop is not None:
            self.flush_soon = True
            self.loop.call_soon(self.flush)

    def handle_line(self, raw: str) -> bool:
        """Handles one line (text); False once it said stop."""
        try:
            msg = _raw_decode(raw)[0]  # the worker writes no leading blanks
        except ValueError:
            raw = raw.strip()
            if not raw:
                return True
            try:
                msg = json.loads(raw)
            except ValueError:
                print(f"jobmesh.serve: ignoring a line that is not JSON: {raw[:80]!r}", file=sys.stderr)
                return True
        if type(msg) is not dict:
            return True
        op = msg.get("op")
        if op == "jobs":
            self.run_jobs(msg.get("jobs"))
            if time.monotonic() - self.last_flush > _FLUSH_AFTER_S:
                self.flush()
        elif op == "job":
            self.run_job(msg)
            if time.monotonic() - self.last_flush > _FLUSH_AFTER_S:
                self.flush()
        elif op == "stop":
            return False
        # "cancel" needs no answer: the worker kills this process next.
        return True


def _write_all(fd: int) -> Callable[[str], None]:
    def write(text: str) -> None:
        view = memoryview(text.encode("utf-8", "replace"))
        while view:
            view = view[os.write(fd, view):]
    return write


def _serve_fds(server: _Server, in_fd: int) -> None:
    """Reads stdin in chunks on an event loop: sync handlers run in order
    as their lines arrive, async ones concurrently; answers go out in one
    write per chunk (or sooner, see _FLUSH_AFTER_S)."""
    loop = asyncio.new_event_loop()
    server.loop = loop
    done = loop.create_future()
    buf = [b""]  # the start of a line not ended yet
    # One buffer for every read: os.read(fd, 1 MiB) mmap'd, shrank and
    # unmapped a fresh 1 MiB per read (four system calls and page faults
    # per wake-up, a third of this process's CPU in a no-op drain).
    reader = io.FileIO(in_fd, "rb", closefd=False)
    chunk = memoryview(bytearray(1 << 20))

    def readable() -> None:
        n = reader.readinto(chunk)
        if n is None:  # nothing after all (a non-blocking descriptor)
            return
        go_on = n > 0
        end = chunk.obj.rfind(b"\n", 0, n) + 1  # decode whole lines only: UTF-8 may split
        if end == 0:
            buf[0] += chunk[:n]
            text = ""
        elif buf[0]:
            text = (buf[0] + chunk[:end]).decode("utf-8", "surrogateescape")
            buf[0] = bytes(chunk[end:n])
        else:
            text = str(chunk[:end], "utf-8", "surrogateescape")
            buf[0] = bytes(chunk[end:n])
        lines = text.split("\n")
        lines.pop()
        handle = server.handle_line
        for raw in lines:
            if raw and not handle(raw):
                go_on = False
                break
        server.flush()
        if not go_on and not done.done():
            loop.remove_reader(in_fd)
            done.set_result(None)

    async def main() -> None:
        loop.add_reader(in_fd, readable)
        await done
        while server.tasks:  # stop or EOF: the jobs in flight finish first
            await asyncio.gather(*list(server.tasks), return_exceptions=True)
        server.flush()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def serve(handlers: Mapping[str, Handler], *, stdin: Optional[TextIO] = None,
          stdout: Optional[TextIO] = None, pipeline: int = DEFAULT_PIPELINE,
          batch: bool = True) -> None:
    """Serves jobs from ``jobmesh-worker --serve`` until it says stop or
    closes stdin. handlers maps a job type to a function taking a Job; it
    may be a plain or an async function. Its return value is the result (a
    str as it is, bytes as UTF-8, anything else as JSON); an exception fails
    the attempt (retried while attempts remain), a PermanentError fails it
    for good.

    The process asks for up to ``pipeline`` jobs at a time (1: one at a
    time). Plain functions run one after the other in the order the jobs
    came; async functions run concurrently on one event loop. With
    ``batch`` (the default) it asks for its jobs several to a line (a
    "jobs" line) and, once it gets one, answers results several to a line;
    a worker that does not know the batched form sends job lines as
    before."""
    proto_in = stdin if stdin is not None else sys.stdin
    proto_out = stdout if stdout is not None else sys.stdout
    try:
        in_fd: Optional[int] = proto_in.fileno()
        out_fd = proto_out.fileno()
        proto_out.flush()
    except (AttributeError, OSError, ValueError):
        in_fd = None
    if in_fd is not None:
        server = _Server(handlers, _write_all(out_fd))
    else:
        def write_stream(text: str) -> None:
            proto_out.write(text)
            proto_out.flush()
        server = _Server(handlers, write_stream)
    saved_stdout = sys.stdout
    if stdout is None:
        sys.stdout = sys.stderr  # print() in a handler must not reach the protocol
    try:
        hello: Dict[str, Any] = {"op": "hello", "pipeline": max(1, int(pipeline))}
        if batch:
            hello["batch"] = True
        server.emit(hello)
        if in_fd is not None:
            _serve_fds(server, in_fd)
        else:
            for raw in proto_in:
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", "surrogateescape")
                if raw.strip() and not server.handle_line(raw):
                    break
                server.flush()
    finally:
        sys.stdout = saved_stdout
        server.flush()
        if server.loop is not None and not server.loop.is_closed():
            server.loop.close()
