"""The asyncio client of the jobmesh HTTP API, on asyncio streams (no
third-party HTTP library). Same methods as Client, as coroutines; events()
is an async iterator.

    async with jobmesh.AsyncClient("http://127.0.0.1:7480") as jm:
        job_id = await jm.submit("emails", "email.send", {"to": "a@example.com"})
        print(await jm.wait(job_id, timeout=30))
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import (Any, AsyncIterator, Awaitable, Callable, Dict, Iterable, List, Mapping,
                    Optional, Sequence, Tuple, Union)
from urllib.parse import urlsplit

from . import _common as c
from ._common import Event, SseParser
from .client import _raise_unfinished, _remaining
from .errors import ConnectionError, JobCancelledError, JobFailedError, error_for

__all__ = ["AsyncClient"]

AsyncProgressFn = Callable[[int, int, str], Union[Any, Awaitable[Any]]]
_LIMIT = 8 << 20


class _Response:
    def __init__(self, status: int, headers: Dict[str, str], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.status, self.headers, self.reader, self.writer = status, headers, reader, writer
        self._chunk_left = 0
        self._chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        self._done = False
        self.body: Optional[bytes] = None  # read already (a 503 looked at)

    async def read_all(self) -> bytes:
        if self.body is not None:
            return self.body
        if self._chunked:
            out = bytearray()
            while True:
                piece = await self._read_chunk()
                if not piece:
                    return bytes(out)
                out += piece
        length = self.headers.get("content-length")
        if length is not None:
            return await self.reader.readexactly(int(length))
        return await self.reader.read()

    async def _read_chunk(self) -> bytes:
        if self._done:
            return b""
        size_line = await self.reader.readline()
        if not size_line:
            self._done = True
            return b""
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await self.reader.readline()
            self._done = True
            return b""
        data = await self.reader.readexactly(size)
        await self.reader.readline()
        return data

    async def lines(self) -> AsyncIterator[str]:
        buf = b""
        while True:
            if self._chunked:
                piece = await self._read_chunk()
            else:
                piece = await self.reader.read(65536)
            if not piece:
                if buf:
                    yield buf.decode("utf-8", "replace")
                return
            buf += piece
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode("utf-8", "replace")

    def close(self) -> None:
        self.writer.close()


class AsyncClient:
    """An asyncio client of one jobmesh broker (or of a list tried in order)."""

    def __init__(self, url: Union[str, Sequence[str], None] = None, token: Optional[str] = None,
                 *, timeout: float = 30.0, ssl_context: Optional[ssl.SSLContext] = None):
        self.urls: List[str] = c.normalize_urls(url)
        self.token = token
        self.timeout = timeout
        self._ssl = ssl_context
        self._preferred = 0

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Nothing stays open between calls; kept for symmetry with Client."""

    async def _open(self, method: str, path: str, data: Optional[bytes],
                    extra: Optional[Mapping[str, str]], timeout: float) -> _Response:
        last_error: Optional[BaseException] = None
        refusal: Optional[_Response] = None
        walk = c.LeaderWalk(self.urls, self._preferred, time.monotonic() + timeout)
        while True:
            index = walk.next()
            if index is None:
                # Every broker refused as a standby or was down: a failover
                # under way, tried again within the call's timeout.
                if walk.again():
                    await asyncio.sleep(c.FOLLOW_PAUSE_S)
                    continue
                if refusal is not None:
                    return refusal
                raise ConnectionError(c.no_broker_text(self.urls, last_error))
            parts = urlsplit(self.urls[index])
            tls = parts.scheme == "https"
            host, port = parts.hostname or "", parts.port or (443 if tls else 80)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, limit=_LIMIT,
                                            ssl=(self._ssl or ssl.create_default_context())
                                            if tls else None),
                    timeout)
            except (OSError, asyncio.TimeoutError) as e:
                last_error = e
                continue
            headers = {"Host": f"{host}:{port}", "User-Agent": "jobmesh-python-asyncio",
                       "Accept": "application/json", "Connection": "close"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            if data is not None:
                headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(data or b""))
            if extra:
                headers.update(extra)
            head = f"{method} {parts.path}{path} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            try:
                writer.write(head.encode("latin-1") + (data or b""))
                await writer.drain()
                status_line = await asyncio.wait_for(reader.readline(), timeout)
                fields = status_line.decode("latin-1").split(" ", 2)
                if len(fields) < 2:
                    raise OSError("no HTTP status line")
                resp_headers: Dict[str, str] = {}
                while True:
                    line = await asyncio.wait_for(reader.readline(), timeout)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = line.decode("latin-1").partition(":")
                    resp_headers[k.strip().lower()] = v.strip()
            except asyncio.TimeoutError:
                writer.close()
                raise TimeoutError(f"{method} {path}: no answer within {timeout} s") from None
            except OSError as e:
                writer.close()
                last_error = e
                continue
            resp = _Response(int(fields[1]), resp_headers, reader, writer)
            if resp.status == 503:
                try:
                    resp.body = await asyncio.wait_for(resp.read_all(), timeout)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                    writer.close()
                    last_error = e
                    continue
                writer.close()
                try:
                    parsed = json.loads(resp.body)
                except ValueError:
                    parsed = None
                leader = c.not_leader(resp.status, parsed)
                if leader is not None:  # a standby: nothing was done
                    refusal = resp
                    walk.refused_by_standby(leader)
                    continue
            self._preferred = index
            return resp

    async def _request(self, method: str, path: str, body: Any = None,
                       timeout: Optional[float] = None) -> Tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        t = timeout or self.timeout
        resp = await self._open(method, path, data, None, t)
        try:
            raw = await asyncio.wait_for(resp.read_all(), t)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{method} {path}: no answer within {t} s") from None
        finally:
            resp.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        if resp.status >= 400:
            raise error_for(resp.status, parsed)
        return resp.status, parsed

    # ---- jobs (see Client for what each does) -------------------------------

    async def submit(self, queue: str, type: str, payload: Any = None, *, data: Any = None,
                     **opts: Any) -> str:
        _, body = await self._request("POST", f"/v1/queues/{c.seg(queue)}/jobs",
                                      c.job_body(type, payload, data, **opts))
        return str(body["id"])

    async def submit_and_wait(self, queue: str, type: str, payload: Any = None, *,
                              data: Any = None, timeout: float = 60.0,
                              **opts: Any) -> Optional[str]:
        deadline = time.monotonic() + timeout
        wait_s = c.submit_wait_seconds(timeout)
        if wait_s == 0:
            job_id = await self.submit(queue, type, payload, data=data, **opts)
            return await self.wait(job_id, timeout)
        status, body = await self._request("POST",
                                           f"/v1/queues/{c.seg(queue)}/jobs?wait={wait_s}",
                                           c.job_body(type, payload, data, **opts),
                                           timeout=wait_s + self.timeout)
        job_id = str(body["id"])
        if status == 202:
            return await self.wait(job_id, _remaining(deadline, job_id))
        _raise_unfinished(job_id, body)
        return c.result_text(body)

    async def submit_many(self, queue: str, jobs: Sequence[Mapping[str, Any]]) -> List[str]:
        _, body = await self._request("POST", f"/v1/queues/{c.seg(queue)}/jobs",
                                      [c.spec_body(j, False) for j in jobs])
        return [str(i) for i in body["ids"]]

    async def submit_batch(self, jobs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
        _, body = await self._request("POST", "/v1/batches",
                                      {"jobs": [c.spec_body(j, True) for j in jobs]})
        return {"id": str(body["id"]), "job_ids": [str(i) for i in body.get("job_ids", [])]}

    async def get(self, job_id: Union[str, int], *, wait: Optional[float] = None) -> Dict[str, Any]:
        q = f"?wait={int(wait)}" if wait else ""
        return (await self._request("GET", f"/v1/jobs/{c.seg(job_id)}{q}",
                                    timeout=(wait + self.timeout) if wait else None))[1]

    async def result(self, job_id: Union[str, int], *,
                     wait: Optional[float] = None) -> Optional[str]:
        q = f"?wait={int(wait)}" if wait else ""
        status, body = await self._request("GET", f"/v1/jobs/{c.seg(job_id)}/result{q}",
                                           timeout=(wait + self.timeout) if wait else None)
        if status == 202:
            return None
        _raise_unfinished(str(job_id), body)
        return c.result_text(body)

    async def jobs(self, *, queue: Optional[str] = None, state: Optional[str] = None,
                   batch: Any = None, limit: Optional[int] = None,
                   cursor: Optional[str] = None) -> Dict[str, Any]:
        return (await self._request("GET", c.jobs_query(queue, state, batch, limit, cursor)))[1]

    async def cancel(self, job_id: Union[str, int]) -> Dict[str, Any]:
        return (await self._request("POST", f"/v1/jobs/{c.seg(job_id)}/cancel", {}))[1] or {}

    async def retry(self, job_id: Union[str, int]) -> Dict[str, Any]:
        return (await self._request("POST", f"/v1/jobs/{c.seg(job_id)}/retry", {}))[1] or {}

    async def batch(self, batch_id: Union[str, int]) -> Dict[str, Any]:
        return (await self._request("GET", f"/v1/batches/{c.seg(batch_id)}"))[1]

    async def queues(self) -> List[Dict[str, Any]]:
        return _items((await self._request("GET", "/v1/queues"))[1], "queues")

    async def workers(self) -> List[Dict[str, Any]]:
        return _items((await self._request("GET", "/v1/workers"))[1], "workers")

    async def dead(self, queue: str) -> List[Dict[str, Any]]:
        return _items((await self._request("GET", f"/v1/queues/{c.seg(queue)}/dead"))[1], "jobs")

    async def remove_dead(self, queue: str, job_id: Union[str, int, None] = None) -> Dict[str, Any]:
        """Removes a dead-lettered job for good (job_id), or every one of the
        queue (at most 10,000 a call); returns {"queue", "removed", "ids"}.
        Admin role."""
        return (await self._request("DELETE", c.dead_path(queue, job_id)))[1]

    async def retry_dead(self, queue: str) -> Dict[str, Any]:
        """Every dead-lettered job of the queue back to pending (at most
        10,000 a call); returns {"queue", "revived", "ids"}."""
        return (await self._request("POST", c.dead_path(queue) + "/retry", {}))[1]

    # ---- queue settings (admin role) --------------------------------------

    async def queue_settings(self, queue: str) -> Dict[str, Any]:
        """The queue's runtime settings."""
        return (await self._request("GET", f"/v1/queues/{c.seg(queue)}/settings"))[1]

    async def set_queue_settings(self, queue: str, **changes: Any) -> Dict[str, Any]:
        """Changes the settings named (journaled): paused, max_active,
        rate=(jobs, period_ms) or None, max_attempts, group_limit,
        key_window_ms, keep_finished[_age_ms] and keep_completed/failed/
        cancelled[_age_ms] (a count None: no limit). Returns all of them."""
        return (await self._request("PATCH", f"/v1/queues/{c.seg(queue)}/settings",
                                    c.settings_body(changes)))[1]

    async def pause_queue(self, queue: str) -> Dict[str, Any]:
        """Workers get none of its jobs until resumed; submits are taken."""
        return (await self._request("POST", f"/v1/queues/{c.seg(queue)}/pause", {}))[1]

    async def resume_queue(self, queue: str) -> Dict[str, Any]:
        return (await self._request("POST", f"/v1/queues/{c.seg(queue)}/resume", {}))[1]

    # ---- events and waiting -----------------------------------------------

    async def _open_events(self, path: str, last_id: Optional[str]) -> _Response:
        extra = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_id is not None:
            extra["Last-Event-ID"] = str(last_id)
        resp = await self._open("GET", path, None, extra, self.timeout)
        if resp.status >= 400:
            try:
                raw = await asyncio.wait_for(resp.read_all(), self.timeout)
                parsed = json.loads(raw) if raw else None
            except (ValueError, asyncio.TimeoutError, OSError):
                parsed = None
            resp.close()
            raise error_for(resp.status, parsed)
        return resp

    async def events(self, *, job: Any = None, batch: Any = None, queue: Optional[str] = None,
                     worker: Optional[str] = None, kinds: Iterable[str] = (),
                     last_event_id: Optional[str] = None,
                     reconnect: bool = True, max_retries: int = 8) -> AsyncIterator[Event]:
        """Async-iterates live events, reopening a dropped stream with
        Last-Event-ID (see Client.events)."""
        path = c.events_query(job, batch, queue, worker, kinds=kinds)
        last = last_event_id
        failures = 0
        while True:
            try:
                resp = await self._open_events(path, last)
            except (ConnectionError, OSError):
                failures += 1
                if not reconnect or failures > max_retries:
                    raise
                await asyncio.sleep(min(0.1 * 2 ** failures, 5.0))
                continue
            failures = 0
            parser = SseParser(last_id=last)
            try:
                async for line in resp.lines():
                    ev = parser.feed_line(line)
                    if ev is not None:
                        last = parser.last_id
                        yield ev
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                resp.close()
            if not reconnect:
                return

    async def wait(self, job_id: Union[str, int], timeout: Optional[float] = None,
                   on_progress: Optional[AsyncProgressFn] = None) -> Optional[str]:
        """As Client.wait: subscribes first, then reads the state; raises
        JobFailedError, JobCancelledError or TimeoutError."""
        try:
            return await asyncio.wait_for(self._wait(str(job_id), on_progress), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"job {job_id} did not finish in time") from None

    async def _wait(self, job_id: str, on_progress: Optional[AsyncProgressFn]) -> Optional[str]:
        path = c.events_query(job=job_id)
        last: Optional[str] = None
        seen: Optional[Tuple[int, int, str]] = None
        down = 0
        while True:
            try:
                resp = await self._open_events(path, last)
            except ConnectionError:
                # No broker reachable for a moment (a failover): again.
                down += 1
                if down > 150:
                    raise
                await asyncio.sleep(c.FOLLOW_PAUSE_S)
                continue
            down = 0
            try:
                job = await self.get(job_id)
                if job.get("state") in c.TERMINAL_STATES:
                    return await self._finished(job_id, job)
                parser = SseParser(last_id=last)
                try:
                    async for line in resp.lines():
                        ev = parser.feed_line(line)
                        if ev is None:
                            continue
                        last = parser.last_id
                        if ev.kind == "job_progress" and on_progress is not None:
                            p = (int(ev.get("done", 0)), int(ev.get("total", 1)),
                                 ev.get("message") or "")
                            if p != seen:
                                seen = p
                                r = on_progress(*p)
                                if asyncio.iscoroutine(r):
                                    await r
                        elif ev.kind in ("job_state", "snapshot"):
                            if ev.kind == "snapshot" or ev.get("state") in c.TERMINAL_STATES:
                                job = await self.get(job_id)
                                if job.get("state") in c.TERMINAL_STATES:
                                    return await self._finished(job_id, job)
                except (OSError, asyncio.IncompleteReadError):
                    pass
            finally:
                resp.close()
            await asyncio.sleep(0.05)  # dropped: reopen from the last event seen

    async def wait_batch(self, batch_id: Union[str, int], timeout: Optional[float] = None,
                         on_progress: Optional[Callable[[Dict[str, Any]], Any]] = None
                         ) -> Dict[str, Any]:
        """As Client.wait_batch."""
        try:
            return await asyncio.wait_for(self._wait_batch(str(batch_id), on_progress), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"batch {batch_id} did not finish in time") from None

    async def _wait_batch(self, batch_id: str,
                          on_progress: Optional[Callable[[Dict[str, Any]], Any]]) -> Dict[str, Any]:
        # Its batch events only: not the two or three of each of its jobs.
        path = c.events_query(batch=batch_id, kinds=("batch",))
        last: Optional[str] = None
        while True:
            resp = await self._open_events(path, last)
            try:
                batch = await self.batch(batch_id)
                if batch.get("state") != "running":
                    return batch
                parser = SseParser(last_id=last)
                try:
                    async for line in resp.lines():
                        ev = parser.feed_line(line)
                        if ev is None:
                            continue
                        last = parser.last_id
                        if ev.kind == "batch" and on_progress is not None:
                            r = on_progress(ev.data)
                            if asyncio.iscoroutine(r):
                                await r
                        if (ev.kind == "batch" and ev.get("state") != "running") or \
                                ev.kind == "snapshot":
                            batch = await self.batch(batch_id)
                            if batch.get("state") != "running":
                                return batch
                except (OSError, asyncio.IncompleteReadError):
                    pass
            finally:
                resp.close()
            await asyncio.sleep(0.05)

    async def _finished(self, job_id: str, job: Dict[str, Any]) -> Optional[str]:
        state = job.get("state")
        if state == "completed":
            return await self.result(job_id)
        if state == "cancelled":
            raise JobCancelledError(job_id, job)
        raise JobFailedError(job_id, c.job_error_text(job), job)


def _items(body: Any, key: str) -> Any:
    if isinstance(body, dict) and key in body:
        return body[key]
    return body


