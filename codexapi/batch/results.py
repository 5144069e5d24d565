"""What one call of a batch ended in: a :class:`BatchResult` (the output line) and, for the
engines, an :class:`Outcome` that also says whether the call was rate limited or hit the usage
limit (those are not results: the call is sent again later, or the run stops)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from ..errors import ApiError, RateLimitError
from ..events import RateLimitSnapshot
from ..stream import StreamResult
from .jobs import JobId

#: Outcome kinds.
OK = "ok"
ERROR = "error"
RATE_LIMITED = "rate_limited"
USAGE_LIMIT = "usage_limit"
#: Not sent: the run stopped before the call started.
NOT_SENT = "not_sent"


#: The ``base_url`` of results the embedded scripted model answered (``offline=True``).
OFFLINE = "offline"


@attrs.frozen
class BatchResult:
    """One output line: ``status`` is ``"ok"`` or ``"error"``; an error has ``error`` =
    ``{"type", "message", "status"}`` (status: the HTTP status, or None). ``base_url`` is the
    server that answered (:data:`OFFLINE` for the embedded scripted model); a resume counts a
    line as done only when it came from the server the run sends that request to."""

    id: JobId
    status: str
    text: str = ""
    items: list[dict[str, Any]] = attrs.field(factory=list)
    usage: dict[str, int] | None = None
    response_id: str | None = None
    error: dict[str, Any] | None = None
    base_url: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "text": self.text, "items": self.items,
                "usage": self.usage, "response_id": self.response_id, "error": self.error,
                "base_url": self.base_url}

    def to_line(self) -> bytes:
        """The JSON line, newline included (one write appends it whole)."""
        return orjson.dumps(self.to_json()) + b"\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchResult:
        return cls(data["id"], data["status"], data.get("text") or "",
                   list(data.get("items") or []), data.get("usage"), data.get("response_id"),
                   data.get("error"), data.get("base_url"))


@attrs.frozen
class Outcome:
    """How one attempt at a job ended, as an engine hands it back to the driver (picklable)."""

    kind: str
    result: BatchResult | None = None
    #: Seconds the server asked to wait (rate limited), if it said.
    retry_after: float | None = None
    #: When the usage limit resets (usage limit), if the server said.
    resets_at: dt.datetime | None = None
    message: str = ""
    #: The rate-limit headers of a successful call, for the adaptive limit.
    snapshot: RateLimitSnapshot | None = None


def ok_result(job_id: JobId, result: StreamResult) -> BatchResult:
    usage = attrs.asdict(result.usage) if result.usage is not None else None
    return BatchResult(job_id, OK, result.text, [i.to_dict() for i in result.items], usage,
                       result.response_id)


def error_result(job_id: JobId, exc: BaseException) -> BatchResult:
    status = getattr(exc, "status", None)
    return BatchResult(job_id, ERROR, error={
        "type": type(exc).__name__, "message": str(exc),
        "status": status if isinstance(status, int) else None})


def _error_body(exc: ApiError) -> dict[str, Any]:
    try:
        data = orjson.loads(exc.body or "")
    except orjson.JSONDecodeError:
        return {}
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


def usage_limit_reset(exc: BaseException) -> tuple[bool, dt.datetime | None]:
    """Whether ``exc`` is the account's usage limit, and when it resets.

    Recognises ``UsageLimitReached`` (an ApiError) and, from clients that do not type it, a
    429 whose error type or code is ``usage_limit_reached`` (codex-api ``api_bridge.rs``),
    with ``resets_at`` (epoch seconds) or ``resets_in_seconds`` in the body.
    """
    if type(exc).__name__ == "UsageLimitReached":
        resets = getattr(exc, "resets_at", None)
        return True, resets if isinstance(resets, dt.datetime) else None
    if not isinstance(exc, ApiError) or exc.status != 429:
        return False, None
    body = _error_body(exc)
    if "usage_limit_reached" not in (exc.code, body.get("type"), body.get("code")):
        return False, None
    now = dt.datetime.now(dt.UTC)
    at, seconds = body.get("resets_at"), body.get("resets_in_seconds")
    if isinstance(at, int | float) and not isinstance(at, bool):
        return True, dt.datetime.fromtimestamp(at, dt.UTC)
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return True, now + dt.timedelta(seconds=seconds)
    return True, None


def rate_limit_delay(exc: BaseException) -> tuple[bool, float | None]:
    """Whether ``exc`` is a (retryable) rate limit, and the server's retry hint."""
    if isinstance(exc, RateLimitError):
        return True, exc.retry_after
    if isinstance(exc, ApiError) and exc.status == 429:
        return True, exc.retry_after
    return False, None


def outcome_of_error(job_id: JobId, exc: BaseException) -> Outcome:
    limited, resets = usage_limit_reset(exc)
    if limited:
        return Outcome(USAGE_LIMIT, resets_at=resets, message=str(exc))
    rate_limited, delay = rate_limit_delay(exc)
    if rate_limited:
        return Outcome(RATE_LIMITED, error_result(job_id, exc), retry_after=delay,
                       message=str(exc))
    return Outcome(ERROR, error_result(job_id, exc), message=str(exc))


__all__ = ["OFFLINE", "BatchResult", "Outcome", "error_result", "ok_result", "usage_limit_reset"]
