"""What the sync and the async clients share: request shapes, SSE parsing,
URLs. No I/O here."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:7480"
TERMINAL_STATES = frozenset({"completed", "failed", "cancelled"})
Payload = Union[str, bytes, None]


@dataclass
class Event:
    """One Server-Sent Event: kind is the SSE event name (job_state,
    job_progress, batch, worker_joined, worker_lost, snapshot, ...), data
    its JSON body, id the sequence number to resume from."""

    kind: str
    data: Any
    id: Optional[str] = None

    def __getitem__(self, key: str) -> Any:
        return self.data[key] if isinstance(self.data, dict) else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default) if isinstance(self.data, dict) else default


@dataclass
class SseParser:
    """Feeds lines of a text/event-stream, yields Events (WHATWG rules:
    data lines join with \\n, a blank line dispatches, ':' is a comment)."""

    last_id: Optional[str] = None
    _kind: str = ""
    _data: List[str] = field(default_factory=list)
    _id: Optional[str] = None

    def feed_line(self, line: str) -> Optional[Event]:
        line = line.rstrip("\r\n")
        if line == "":
            if not self._data and not self._kind:
                return None
            raw = "\n".join(self._data)
            kind = self._kind or "message"
            self._kind, self._data = "", []
            if self._id is not None:
                self.last_id = self._id
            ev_id, self._id = self._id, None
            try:
                data: Any = json.loads(raw) if raw else None
            except ValueError:
                data = raw
            return Event(kind, data, ev_id if ev_id is not None else self.last_id)
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._kind = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def normalize_urls(url: Union[str, Sequence[str], None]) -> List[str]:
    if url is None:
        urls: List[str] = [DEFAULT_URL]
    elif isinstance(url, str):
        urls = [u.strip() for u in url.split(",") if u.strip()]
    else:
        urls = list(url)
    if not urls:
        raise ValueError("no broker URL given")
    out = []
    for u in urls:
        if "://" not in u:
            u = "http://" + u
        parts = urlsplit(u)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"broker URL {u!r}: use http:// or https://")
        out.append(u.rstrip("/"))
    return out


# High availability (README "High availability"): a standby answers 503
# not_leader naming the leader's HTTP address (leader_http); while no broker
# leads every URL refuses, and a call tries again every FOLLOW_PAUSE_S until
# its timeout.
FOLLOW_PAUSE_S = 0.2
URLS_MAX = 16


def not_leader(status: int, body: Any) -> Optional[str]:
    """For a standby's refusal (503 not_leader): the leader's HTTP URL it
    names, "" when it names none; None for any other answer."""
    if status != 503 or not isinstance(body, dict):
        return None
    err = body.get("error")
    if not isinstance(err, dict) or err.get("code") != "not_leader":
        return None
    leader = err.get("leader_http")
    return leader if isinstance(leader, str) else ""


def no_broker_text(urls: List[str], last_error: Optional[BaseException]) -> str:
    """What a call says when no URL of the walk answered."""
    return f"no jobmesh broker answered at {', '.join(urls)}: {last_error}"


class LeaderWalk:
    """One call's walk over the broker URLs: the preferred one first, the
    leader a refusal names next, every URL once a round; rounds go on
    (after a pause) only while some broker refused as a standby."""

    def __init__(self, urls: List[str], preferred: int, deadline: float):
        self.urls = urls  # the client's list: leaders named are added to it
        self.preferred = preferred
        self.deadline = deadline  # time.monotonic() the call ends at
        self.refused = False
        self._start_round()

    def _start_round(self) -> None:
        n = len(self.urls)
        self.order = [(self.preferred + i) % n for i in range(n)]
        self.tried: set = set()

    def next(self) -> Optional[int]:
        """The index to try now; None when this round is over."""
        while self.order:
            index = self.order.pop(0)
            if index not in self.tried:
                self.tried.add(index)
                return index
        return None

    def refused_by_standby(self, leader_http: str) -> None:
        self.refused = True
        if not leader_http:
            return
        try:
            url = normalize_urls([leader_http])[0]
        except ValueError:
            return
        if url in self.urls:
            index = self.urls.index(url)
        elif len(self.urls) < URLS_MAX:
            self.urls.append(url)
            index = len(self.urls) - 1
        else:
            return
        if index not in self.tried:
            self.order.insert(0, index)

    def again(self) -> bool:
        """After a round: whether to pause FOLLOW_PAUSE_S and try another
        (some broker refused as a standby: a failover is under way, and
        the call's deadline leaves time for it)."""
        if not self.refused or time.monotonic() + FOLLOW_PAUSE_S >= self.deadline:
            return False
        self.refused = False
        self._start_round()
        return True


# A job's options besides its payload (group: fair tenants, README "Fair
# tenants").
JOB_OPTIONS = ("priority", "max_attempts", "delay_ms", "timeout_ms", "idempotency_key", "run_at",
               "group")
# A queue's runtime settings (PATCH /v1/queues/{q}/settings; README "Flow
# control" and "Retention per finished state").
QUEUE_SETTINGS = ("paused", "max_active", "rate", "max_attempts", "keep_finished",
                  "keep_finished_age_ms", "key_window_ms", "group_limit", "keep_completed",
                  "keep_completed_age_ms", "keep_failed", "keep_failed_age_ms", "keep_cancelled",
                  "keep_cancelled_age_ms")


def settings_body(changes: Mapping[str, Any]) -> Dict[str, Any]:
    """A settings change: only the names given; rate=(jobs, period_ms) or a
    dict of those, None removes it; keep_* None: no count limit."""
    unknown = set(changes) - set(QUEUE_SETTINGS)
    if unknown:
        raise TypeError(f"unknown queue setting(s) {sorted(unknown)}: use "
                        + ", ".join(QUEUE_SETTINGS))
    body = dict(changes)
    rate = body.get("rate")
    if isinstance(rate, (tuple, list)):
        if len(rate) != 2:
            raise TypeError("rate: give (jobs, period_ms), a dict of those, or None")
        body["rate"] = {"jobs": rate[0], "period_ms": rate[1]}
    return body


def dead_path(queue: str, job_id: Union[str, int, None] = None) -> str:
    """The dead letters of queue, or one of them."""
    one = "" if job_id is None else "/" + seg(job_id)
    return f"/v1/queues/{seg(queue)}/dead{one}"


def job_body(type: str, payload: Any = None, data: Any = None, **opts: Any) -> Dict[str, Any]:
    """One job's JSON: payload (str or bytes) as text, anything else as data."""
    body: Dict[str, Any] = {"type": type}
    if data is not None:
        body["data"] = data
    elif isinstance(payload, (bytes, bytearray)):
        body["payload"] = bytes(payload).decode("utf-8")
    elif isinstance(payload, str):
        body["payload"] = payload
    elif payload is not None:
        body["data"] = payload
    for key in JOB_OPTIONS:
        if opts.get(key) is not None:
            body[key] = opts[key]
    if hasattr(body.get("run_at"), "isoformat"):  # a datetime (naive: local time)
        body["run_at"] = body["run_at"].astimezone().isoformat()
    unknown = set(opts) - set(JOB_OPTIONS)
    if unknown:
        raise TypeError(f"unknown job option(s) {sorted(unknown)}: use "
                        + ", ".join(JOB_OPTIONS))
    # Every job carries a key: the client's own resends of this body (a
    # keep-alive connection found closed, the next broker URL) then admit it
    # once, even when the first try reached the broker and its answer was lost.
    if body.get("idempotency_key") is None:
        body["idempotency_key"] = "py-" + uuid.uuid4().hex
    return body


def spec_body(spec: Mapping[str, Any], need_queue: bool) -> Dict[str, Any]:
    spec = dict(spec)
    queue = spec.pop("queue", None)
    if "type" not in spec:
        raise TypeError("each job needs a 'type'")
    body = job_body(spec.pop("type"), spec.pop("payload", None), spec.pop("data", None), **spec)
    if need_queue:
        if not queue:
            raise TypeError("each batch job needs a 'queue'")
        body["queue"] = queue
    return body


def seg(value: Any) -> str:
    return quote(str(value), safe="")


def events_query(job: Any = None, batch: Any = None, queue: Optional[str] = None,
                 worker: Optional[str] = None, topics: Iterable[str] = (),
                 kinds: Iterable[str] = ()) -> str:
    pairs: List[Tuple[str, str]] = []
    for prefix, value in (("job", job), ("batch", batch), ("queue", queue), ("worker", worker)):
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple, set)) else [value]
        pairs += [("topic", f"{prefix}/{v}") for v in values]
    pairs += [("topic", t) for t in topics]
    pairs += [("kind", k) for k in kinds]
    return "/v1/events" + ("?" + urlencode(pairs) if pairs else "")


def jobs_query(queue: Optional[str], state: Optional[str], batch: Any, limit: Optional[int],
               cursor: Optional[str]) -> str:
    q = {k: v for k, v in (("queue", queue), ("state", state), ("batch", batch),
                           ("limit", limit), ("cursor", cursor)) if v is not None}
    return "/v1/jobs" + ("?" + urlencode(q) if q else "")


# The longest ?wait= the broker takes, in seconds.
HTTP_WAIT_MAX_S = 60


def submit_wait_seconds(timeout: float) -> int:
    """The ?wait= of a submit that waits up to timeout seconds: whole
    seconds, at most HTTP_WAIT_MAX_S; a longer wait goes on with wait()."""
    return max(0, min(int(timeout), HTTP_WAIT_MAX_S))


def result_text(body: Any) -> Optional[str]:
    if isinstance(body, dict):
        r = body.get("result")
        return r if isinstance(r, str) or r is None else json.dumps(r)
    return body if isinstance(body, str) else None


def job_error_text(job: Mapping[str, Any]) -> str:
    return str(job.get("last_error") or job.get("error") or "failed")
