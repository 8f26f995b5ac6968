"""Exceptions of the jobmesh client, one class per error code the HTTP API
sends ({"error": {"code", "message"}})."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "JobmeshError", "ApiError", "BadRequestError", "InvalidNameError", "NotFoundError",
    "ConflictError", "UnauthorizedError", "TooLargeError", "RateLimitedError",
    "UnavailableError", "ConnectionError", "JobFailedError", "JobCancelledError",
    "PermanentError", "error_for",
]


class JobmeshError(Exception):
    """Base class of every jobmesh exception."""


class ApiError(JobmeshError):
    """The broker refused a request. code is the API's error code (for
    example "queue_name_invalid"), status the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 0):
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.status = status


class BadRequestError(ApiError):
    """400: malformed or invalid input."""


class InvalidNameError(BadRequestError):
    """400: a queue or type name breaks the naming rule."""


class UnauthorizedError(ApiError):
    """401/403: missing or wrong token."""


class NotFoundError(ApiError):
    """404: no such job, batch or queue (or path)."""


class ConflictError(ApiError):
    """409: the request does not fit the job's state (e.g. cancel a finished job)."""


class TooLargeError(ApiError):
    """413: the body or the payload is too large."""


class RateLimitedError(ApiError):
    """429: too many requests or the queue is full."""


class UnavailableError(ApiError):
    """503: the broker cannot serve now (starting, journal not writable)."""


class ConnectionError(JobmeshError):  # noqa: A001 - the library's own, not the builtin
    """No broker URL answered."""


class JobFailedError(JobmeshError):
    """wait(): the job failed for good (dead-lettered). job is its state."""

    def __init__(self, job_id: str, message: str, job: Optional[Dict[str, Any]] = None):
        super().__init__(f"job {job_id} failed: {message}")
        self.job_id = job_id
        self.error = message
        self.job = job or {}


class JobCancelledError(JobmeshError):
    """wait(): the job was cancelled."""

    def __init__(self, job_id: str, job: Optional[Dict[str, Any]] = None):
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id
        self.job = job or {}


class PermanentError(Exception):
    """Raise from a serve() handler to fail the job without retrying it."""


_BY_STATUS: Dict[int, Type[ApiError]] = {
    400: BadRequestError, 401: UnauthorizedError, 403: UnauthorizedError, 404: NotFoundError,
    405: BadRequestError, 409: ConflictError, 413: TooLargeError, 415: BadRequestError,
    429: RateLimitedError, 503: UnavailableError,
}


def error_for(status: int, body: Any) -> ApiError:
    """The exception for an error reply: by its code when known, else by status."""
    code, message = "", ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code", ""))
        message = str(body["error"].get("message", ""))
    if not message:
        message = f"HTTP {status}"
    if code.endswith("_name_invalid") or code == "name_invalid":
        cls: Type[ApiError] = InvalidNameError
    elif code in ("unauthorized", "forbidden", "token_invalid"):
        cls = UnauthorizedError
    elif code.endswith("not_found"):
        cls = NotFoundError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    return cls(code or f"http_{status}", message, status)
