"""The blocking client of the jobmesh HTTP API (standard library only).

    jm = jobmesh.Client("http://127.0.0.1:7480")
    job_id = jm.submit("emails", "email.send", {"to": "a@example.com"})
    print(jm.wait(job_id, timeout=30, on_progress=lambda d, t, m: print(d, t, m)))

A Client may be shared by threads: each thread keeps its own keep-alive
connection. Given several URLs it tries them in order and sticks to the
first that answers."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)
from urllib.parse import urlsplit

from . import _common as c
from ._common import Event, SseParser
from .errors import ConnectionError, JobCancelledError, JobFailedError, error_for

__all__ = ["Client", "EventStream", "ProgressFn"]

ProgressFn = Callable[[int, int, str], Any]
_TRANSIENT = (OSError, http.client.HTTPException)
_REOPEN_TRIES_MAX = 150  # a waiter's stream reopened while no broker answers (30 s)


class EventStream:
    """One open SSE connection; iterate it for Events. Closed by close() or
    when the server ends it (iteration then stops)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 last_id: Optional[str]):
        self._conn, self._resp = conn, resp
        self.parser = SseParser(last_id=last_id)

    @property
    def last_id(self) -> Optional[str]:
        return self.parser.last_id

    def next(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event; None at the end of the stream. socket.timeout
        when none came within timeout (the stream is unusable after it)."""
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        while True:
            raw = self._resp.readline()
            if not raw:
                return None
            ev = self.parser.feed_line(raw.decode("utf-8", "replace"))
            if ev is not None:
                return ev

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self.next(None)
            if ev is None:
                return
            yield ev

    def close(self) -> None:
        try:
            if self._conn.sock is not None:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._conn.close()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Client:
    """A client of one jobmesh broker (or of a list tried in order)."""

    def __init__(self, url: Union[str, Sequence[str], None] = None, token: Optional[str] = None,
                 *, timeout: float = 30.0, ssl_context: Optional[ssl.SSLContext] = None):
        self.urls: List[str] = c.normalize_urls(url)
        self.token = token
        self.timeout = timeout
        self._ssl = ssl_context
        self._preferred = 0
        self._local = threading.local()

    # ---- plumbing ---------------------------------------------------------

    def _connect(self, url: str, timeout: Optional[float]) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname or "", parts.port or 443,
                                               timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(parts.hostname or "", parts.port or 80,
                                          timeout=timeout)

    def _headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": "jobmesh-python"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if extra:
            h.update(extra)
        return h

    def _order(self) -> List[int]:
        n = len(self.urls)
        return [(self._preferred + i) % n for i in range(n)]

    def _request(self, method: str, path: str, body: Any = None,
                 timeout: Optional[float] = None) -> Tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers({"Content-Type": "application/json"} if data is not None else None)
        conns: Dict[int, http.client.HTTPConnection] = getattr(self._local, "conns", None) or {}
        self._local.conns = conns
        last_error: Optional[BaseException] = None
        refusal: Optional[Tuple[int, Any]] = None
        walk = c.LeaderWalk(self.urls, self._preferred,
                            time.monotonic() + (timeout or self.timeout))
        while True:
            index = walk.next()
            if index is None:
                # Every broker refused as a standby or was down: a failover
                # under way, tried again within the call's timeout.
                if walk.again():
                    time.sleep(c.FOLLOW_PAUSE_S)
                    continue
                if refusal is not None:
                    raise error_for(*refusal)
                raise ConnectionError(c.no_broker_text(self.urls, last_error))
            prefix = urlsplit(self.urls[index]).path
            for fresh in (False, True):
                conn = conns.get(index)
                reused = conn is not None and not fresh
                if conn is None or fresh:
                    if conn is not None:
                        conn.close()
                    conn = conns[index] = self._connect(self.urls[index], self.timeout)
                conn.timeout = timeout or self.timeout
                if conn.sock is not None:
                    conn.sock.settimeout(conn.timeout)
                try:
                    conn.request(method, prefix + path, body=data, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                except _TRANSIENT as e:
                    conn.close()
                    conns.pop(index, None)
                    last_error = e
                    if isinstance(e, socket.timeout):
                        raise TimeoutError(f"{method} {path}: no answer within "
                                           f"{conn.timeout} s") from e
                    if reused:
                        continue  # a keep-alive connection the server closed: once more
                    break  # this URL is down: the next one
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conns.pop(index, None)
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = raw.decode("utf-8", "replace")
                leader = c.not_leader(resp.status, parsed)
                if leader is not None:  # a standby: nothing was done
                    refusal = (resp.status, parsed)
                    walk.refused_by_standby(leader)
                    break
                self._preferred = index
                if resp.status >= 400:
                    raise error_for(resp.status, parsed)
                return resp.status, parsed

    def _open_stream(self, path: str, last_id: Optional[str],
                     timeout: Optional[float]) -> EventStream:
        extra = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_id is not None:
            extra["Last-Event-ID"] = str(last_id)
        last_error: Optional[BaseException] = None
        refusal: Optional[Tuple[int, Any]] = None
        walk = c.LeaderWalk(self.urls, self._preferred,
                            time.monotonic() + (timeout or self.timeout))
        while True:
            index = walk.next()
            if index is None:
                if walk.again():
                    time.sleep(c.FOLLOW_PAUSE_S)
                    continue
                if refusal is not None:
                    raise error_for(*refusal)
                raise ConnectionError(c.no_broker_text(self.urls, last_error))
            conn = self._connect(self.urls[index], timeout if timeout else self.timeout)
            try:
                conn.request("GET", urlsplit(self.urls[index]).path + path,
                             headers=self._headers(extra))
                resp = conn.getresponse()
            except _TRANSIENT as e:
                conn.close()
                last_error = e
                continue
            if resp.status >= 400:
                raw = resp.read()
                conn.close()
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = None
                leader = c.not_leader(resp.status, parsed)
                if leader is not None:
                    refusal = (resp.status, parsed)
                    walk.refused_by_standby(leader)
                    continue
                raise error_for(resp.status, parsed)
            self._preferred = index
            return EventStream(conn, resp, last_id)

    def close(self) -> None:
        conns = getattr(self._local, "conns", None) or {}
        for conn in conns.values():
            conn.close()
        conns.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- jobs -------------------------------------------------------------

    def submit(self, queue: str, type: str, payload: Any = None, *, data: Any = None,
               **opts: Any) -> str:
        """Enqueues one job; returns its id once the broker made it durable.
        payload: str or bytes (UTF-8) as the job's text; any other value (or
        data=) is sent as JSON. opts: priority, max_attempts, delay_ms,
        timeout_ms, group (fair tenants: groups with ready jobs take turns),
        run_at (a datetime or RFC 3339 text), idempotency_key (a
        repeat within the broker's key window returns the first job's id;
        without one the client makes a random key, so its own resends never
        admit the job twice)."""
        _, body = self._request("POST", f"/v1/queues/{c.seg(queue)}/jobs",
                                c.job_body(type, payload, data, **opts))
        return str(body["id"])

    def submit_and_wait(self, queue: str, type: str, payload: Any = None, *, data: Any = None,
                        timeout: float = 60.0, **opts: Any) -> Optional[str]:
        """Submits one job and waits for it in the same request (the broker
        answers once the job finished; for a short job one journal sync
        covers its admission and its outcome) and returns its result text
        as wait() does, raising as wait() does: JobFailedError,
        JobCancelledError, or TimeoutError naming the job, which stays
        queued. Past 60 s it goes on with wait(). opts: as submit."""
        deadline = time.monotonic() + timeout
        wait_s = c.submit_wait_seconds(timeout)
        if wait_s == 0:
            return self.wait(self.submit(queue, type, payload, data=data, **opts), timeout)
        status, body = self._request("POST", f"/v1/queues/{c.seg(queue)}/jobs?wait={wait_s}",
                                     c.job_body(type, payload, data, **opts),
                                     timeout=wait_s + self.timeout)
        job_id = str(body["id"])
        if status == 202:
            return self.wait(job_id, _remaining(deadline, job_id))
        _raise_unfinished(job_id, body)
        return c.result_text(body)

    def submit_many(self, queue: str, jobs: Sequence[Mapping[str, Any]]) -> List[str]:
        """Enqueues several jobs on one queue in one request (each a dict with
        type and payload or data, and the options of submit)."""
        _, body = self._request("POST", f"/v1/queues/{c.seg(queue)}/jobs",
                                [c.spec_body(j, False) for j in jobs])
        return [str(i) for i in body["ids"]]

    def submit_batch(self, jobs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
        """Submits jobs (each with queue and type) as one batch; returns
        {"id": batch id, "job_ids": [...]}."""
        _, body = self._request("POST", "/v1/batches", {"jobs": [c.spec_body(j, True) for j in jobs]})
        return {"id": str(body["id"]), "job_ids": [str(i) for i in body.get("job_ids", [])]}

    def get(self, job_id: Union[str, int], *, wait: Optional[float] = None) -> Dict[str, Any]:
        """The job's state (wait=SECONDS: answered once it finishes, or then)."""
        q = f"?wait={int(wait)}" if wait else ""
        _, body = self._request("GET", f"/v1/jobs/{c.seg(job_id)}{q}",
                                timeout=(wait + self.timeout) if wait else None)
        return body

    def result(self, job_id: Union[str, int], *, wait: Optional[float] = None) -> Optional[str]:
        """The job's result text once it completed, else None (wait=SECONDS
        long-polls up to 60 s). Raises JobFailedError or JobCancelledError
        for a job that finished without one."""
        q = f"?wait={int(wait)}" if wait else ""
        status, body = self._request("GET", f"/v1/jobs/{c.seg(job_id)}/result{q}",
                                     timeout=(wait + self.timeout) if wait else None)
        if status == 202:
            return None
        _raise_unfinished(str(job_id), body)
        return c.result_text(body)

    def jobs(self, *, queue: Optional[str] = None, state: Optional[str] = None,
             batch: Any = None, limit: Optional[int] = None,
             cursor: Optional[str] = None) -> Dict[str, Any]:
        """A page of jobs, newest first; pass the returned cursor for the next."""
        return self._request("GET", c.jobs_query(queue, state, batch, limit, cursor))[1]

    def cancel(self, job_id: Union[str, int]) -> Dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{c.seg(job_id)}/cancel", {})[1] or {}

    def retry(self, job_id: Union[str, int]) -> Dict[str, Any]:
        """Puts a failed (dead-lettered) job back to pending."""
        return self._request("POST", f"/v1/jobs/{c.seg(job_id)}/retry", {})[1] or {}

    def batch(self, batch_id: Union[str, int]) -> Dict[str, Any]:
        return self._request("GET", f"/v1/batches/{c.seg(batch_id)}")[1]

    def batches(self) -> Any:
        return _items(self._request("GET", "/v1/batches")[1], "batches")

    def queues(self) -> List[Dict[str, Any]]:
        return _items(self._request("GET", "/v1/queues")[1], "queues")

    def workers(self) -> List[Dict[str, Any]]:
        return _items(self._request("GET", "/v1/workers")[1], "workers")

    def dead(self, queue: str) -> List[Dict[str, Any]]:
        return _items(self._request("GET", f"/v1/queues/{c.seg(queue)}/dead")[1], "jobs")

    def remove_dead(self, queue: str, job_id: Union[str, int, None] = None) -> Dict[str, Any]:
        """Removes a dead-lettered job for good (job_id), or every one of the
        queue (at most 10,000 a call); returns {"queue", "removed", "ids"}.
        Admin role."""
        return self._request("DELETE", c.dead_path(queue, job_id))[1]

    def retry_dead(self, queue: str) -> Dict[str, Any]:
        """Every dead-lettered job of the queue back to pending (at most
        10,000 a call); returns {"queue", "revived", "ids"}."""
        return self._request("POST", c.dead_path(queue) + "/retry", {})[1]

    # ---- queue settings (admin role) --------------------------------------

    def queue_settings(self, queue: str) -> Dict[str, Any]:
        """The queue's runtime settings."""
        return self._request("GET", f"/v1/queues/{c.seg(queue)}/settings")[1]

    def set_queue_settings(self, queue: str, **changes: Any) -> Dict[str, Any]:
        """Changes the settings named (journaled): paused, max_active,
        rate=(jobs, period_ms) or None, max_attempts, group_limit,
        key_window_ms, keep_finished[_age_ms] and keep_completed/failed/
        cancelled[_age_ms] (a count None: no limit). Returns all of them."""
        return self._request("PATCH", f"/v1/queues/{c.seg(queue)}/settings",
                             c.settings_body(changes))[1]

    def pause_queue(self, queue: str) -> Dict[str, Any]:
        """Workers get none of its jobs until resumed; submits are taken."""
        return self._request("POST", f"/v1/queues/{c.seg(queue)}/pause", {})[1]

    def resume_queue(self, queue: str) -> Dict[str, Any]:
        return self._request("POST", f"/v1/queues/{c.seg(queue)}/resume", {})[1]

    # ---- events and waiting -----------------------------------------------

    def subscribe(self, *, job: Any = None, batch: Any = None, queue: Optional[str] = None,
                  worker: Optional[str] = None, kinds: Iterable[str] = (),
                  last_event_id: Optional[str] = None,
                  timeout: Optional[float] = None) -> EventStream:
        """Opens one event stream and returns once the broker subscribed it,
        so what happens next is on it (submit after this, or read state
        after this, and nothing is missed). Iterate it, or call
        .next(timeout) for one event; .last_id resumes a later subscribe.
        No reconnecting: see events() for that. kinds: only events of these
        kinds (job_state, job_progress, batch, worker_joined, worker_lost);
        none: every kind."""
        return self._open_stream(c.events_query(job, batch, queue, worker, kinds=kinds),
                                 last_event_id, timeout)

    def events(self, *, job: Any = None, batch: Any = None, queue: Optional[str] = None,
               worker: Optional[str] = None, kinds: Iterable[str] = (),
               last_event_id: Optional[str] = None,
               reconnect: bool = True, max_retries: int = 8) -> Iterator[Event]:
        """Iterates live events (no filter: all of them). A dropped stream
        is reopened with Last-Event-ID, so nothing is missed (when the
        broker no longer has the gap it sends a "snapshot" event first).
        Stop by breaking out of the loop. kinds: as for subscribe()."""
        path = c.events_query(job, batch, queue, worker, kinds=kinds)
        last = last_event_id
        failures = 0
        while True:
            try:
                stream = self._open_stream(path, last, None)
            except (ConnectionError, OSError):
                failures += 1
                if not reconnect or failures > max_retries:
                    raise
                time.sleep(min(0.1 * 2 ** failures, 5.0))
                continue
            failures = 0
            try:
                for ev in stream:
                    last = stream.last_id
                    yield ev
            except _TRANSIENT:
                pass
            finally:
                stream.close()
            if not reconnect:
                return

    def wait(self, job_id: Union[str, int], timeout: Optional[float] = None,
             on_progress: Optional[ProgressFn] = None) -> Optional[str]:
        """Waits for the job to finish and returns its result text. Raises
        JobFailedError, JobCancelledError, or TimeoutError after timeout
        seconds. on_progress(done, total, message) is called for each
        progress report. It subscribes to the job's events before it reads
        the job's state, so a finish between the two is never missed."""
        job_id = str(job_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        path = c.events_query(job=job_id)
        last: Optional[str] = None
        stream: Optional[EventStream] = None
        seen_progress: Optional[Tuple[int, int, str]] = None
        down = 0
        try:
            while True:
                if stream is None:
                    try:
                        stream = self._open_stream(path, last, _remaining(deadline, job_id))
                    except ConnectionError:
                        # No broker reachable for a moment (a failover): again.
                        down += 1
                        if down > _REOPEN_TRIES_MAX:
                            raise
                        time.sleep(c.FOLLOW_PAUSE_S)
                        continue
                    down = 0
                    job = self.get(job_id)
                    if job.get("state") in c.TERMINAL_STATES:
                        return self._finished(job_id, job)
                try:
                    ev = stream.next(min(_remaining(deadline, job_id), 40.0))
                except _TRANSIENT:
                    ev = None  # dropped or idle too long: reopen from last
                    _remaining(deadline, job_id)
                if ev is None:
                    last = stream.last_id
                    stream.close()
                    stream = None
                    continue
                if ev.kind == "job_progress" and on_progress is not None:
                    p = (int(ev.get("done", 0)), int(ev.get("total", 1)), ev.get("message") or "")
                    if p != seen_progress:
                        seen_progress = p
                        on_progress(*p)
                elif ev.kind == "job_state" and ev.get("state") in c.TERMINAL_STATES:
                    return self._finished(job_id, self.get(job_id))
                elif ev.kind == "snapshot":
                    job = self.get(job_id)
                    if job.get("state") in c.TERMINAL_STATES:
                        return self._finished(job_id, job)
        finally:
            if stream is not None:
                stream.close()

    def wait_batch(self, batch_id: Union[str, int], timeout: Optional[float] = None,
                   on_progress: Optional[Callable[[Dict[str, Any]], Any]] = None) -> Dict[str, Any]:
        """Waits for a batch to finish (subscribing before reading its state)
        and returns its final status. on_progress gets each batch event
        (completed, failed, total, state, current_operation)."""
        batch_id = str(batch_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        # Its batch events only: not the two or three of each of its jobs.
        path = c.events_query(batch=batch_id, kinds=("batch",))
        last: Optional[str] = None
        while True:
            stream = self._open_stream(path, last, _remaining(deadline, f"batch {batch_id}"))
            try:
                batch = self.batch(batch_id)
                if batch.get("state") != "running":
                    return batch
                while True:
                    try:
                        ev = stream.next(min(_remaining(deadline, f"batch {batch_id}"), 40.0))
                    except _TRANSIENT:
                        ev = None
                        _remaining(deadline, f"batch {batch_id}")
                    if ev is None:
                        last = stream.last_id
                        break
                    if ev.kind == "batch" and on_progress is not None:
                        on_progress(ev.data)
                    if (ev.kind == "batch" and ev.get("state") != "running") or ev.kind == "snapshot":
                        batch = self.batch(batch_id)
                        if batch.get("state") != "running":
                            return batch
            finally:
                stream.close()

    def _finished(self, job_id: str, job: Dict[str, Any]) -> Optional[str]:
        state = job.get("state")
        if state == "completed":
            return self.result(job_id)
        if state == "cancelled":
            raise JobCancelledError(job_id, job)
        raise JobFailedError(job_id, c.job_error_text(job), job)


def _remaining(deadline: Optional[float], what: str) -> float:
    if deadline is None:
        return 3600.0
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"{what if ' ' in what else 'job ' + what} did not finish in time")
    return left


def _raise_unfinished(job_id: str, body: Any) -> None:
    state = body.get("state") if isinstance(body, dict) else None
    if state == "failed":
        raise JobFailedError(job_id, c.job_error_text(body), body)
    if state == "cancelled":
        raise JobCancelledError(job_id, body)


def _items(body: Any, key: str) -> Any:
    if isinstance(body, dict) and key in body:
        return body[key]
    return body
