"""What a server's failure means: the typed error for an HTTP error answer or a
``response.failed`` event, as codex-api maps them (``api_bridge.rs``, ``sse/responses.rs``).

Every field of an error object may hold any JSON type (a ``param`` object, a numeric
``code``, a list as ``message``): the classifier reads the fields it understands only when they
have the type it understands, and keeps the whole object as given on the error
(``server_error``).

One home for the mapping, so every wire (Responses over SSE or WebSocket, Chat) and the
dispatcher raise the same error for the same failure, and the retry policy can trust each
error's ``retryable``: usage limits, quotas, policy refusals, context-window and configuration
errors are final; rate limits and transient server errors are not.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from .convert import dumps, loads
from .errors import (
    ApiError,
    ApiRateLimitError,
    CodexApiError,
    ContextWindowExceeded,
    CyberPolicy,
    InvalidRequest,
    ModelUnavailable,
    QuotaExceeded,
    RateLimitError,
    ServerOverloaded,
    StreamError,
    UsageLimitReached,
    UsageNotIncluded,
    http_form,
)
from .ratelimits import parse_rate_limits, parse_retry_after, retry_after_seconds
from .redact import scrub_error

#: ``error.code`` values meaning the account's money or quota ran out.
QUOTA_CODES = frozenset({
    "insufficient_quota", "credit_balance_exhausted", "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded", "organization_usage_limit_exceeded",
    "billing_hard_limit_reached",
})
#: ``error.code`` values meaning the account itself cannot be used: a 429 with one of them is
#: final, whatever its wait hint says.
ACCOUNT_CODES = frozenset({"account_deactivated"})
#: ``error.code`` values meaning the requested model / tier / effort is not available.
UNAVAILABLE_CODES = frozenset({
    "model_not_found", "model_not_supported", "unsupported_model",
    "service_tier_not_supported", "unsupported_service_tier",
    "reasoning_effort_not_supported", "unsupported_reasoning_effort",
})
#: ``error.param`` values naming request configuration (model, tier, effort).
UNAVAILABLE_PARAMS = frozenset({"model", "service_tier", "reasoning.effort"})

BIO_POLICY_MESSAGE = "This content was flagged for possible biological risk."
MISALIGNMENT_MESSAGE = "This request was blocked due to a misalignment policy violation."


_E = TypeVar("_E", bound=CodexApiError)


def request_id(headers: Mapping[str, str]) -> str | None:
    """The id to quote to support: ``x-request-id``, then ``x-oai-request-id``, then
    ``cf-ray``. ``headers`` must have lower-case names."""
    return (headers.get("x-request-id") or headers.get("x-oai-request-id")
            or headers.get("cf-ray") or None)


def _text(value: Any) -> str:
    """A message as text: a string as is, nothing as "", any other JSON value as its JSON (a
    server that sends a list of messages still has them shown)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return dumps(value).decode("utf-8", "replace")
    except (TypeError, ValueError):
        return repr(value)


def _str(value: Any) -> str | None:
    """A field the mapping compares with names (``code``, ``type``, ``param``): only a string
    can name anything; any other JSON value names nothing (and is kept as given)."""
    return value if isinstance(value, str) else None


def _kept(exc: _E, error: Mapping[str, Any] | None) -> _E:
    """``exc`` keeping the error object as the server sent it, scrubbed of known secrets."""
    exc.server_error = dict(error) if error is not None else None
    return scrub_error(exc)


def _nonblank(message: Any, fallback: str) -> str:
    text = _text(message)
    return text if text.strip() else fallback


def _resets_at(error: Mapping[str, Any], now: float | None = None) -> datetime | None:
    for key, relative in (("resets_at", False), ("resets_in_seconds", True)):
        value = error.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        try:
            seconds = float(value) + ((time.time() if now is None else now) if relative
                                      else 0.0)
            return datetime.fromtimestamp(int(seconds), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _is_usage_limit(error: Mapping[str, Any]) -> bool:
    return "usage_limit_reached" in (_str(error.get("type")), _str(error.get("code")))


def _unavailable(code: str | None, param: Any) -> bool:
    return code in UNAVAILABLE_CODES or _str(param) in UNAVAILABLE_PARAMS


def stream_failure(response: Any) -> CodexApiError:
    """The typed error for a ``response.failed`` event's ``response`` object."""
    error = response.get("error") if isinstance(response, dict) else None
    if not isinstance(error, dict):
        return _kept(StreamError("response.failed event received"), None)
    return _kept(_stream_failure(error), error)


def _stream_failure(error: dict[str, Any]) -> CodexApiError:
    raw_code = error.get("code")
    code = _str(raw_code)
    message = _text(error.get("message"))
    if code in ("context_length_exceeded", "context_window_exceeded"):
        return ContextWindowExceeded(code=code, server_message=message)
    if code in QUOTA_CODES:
        return QuotaExceeded(code=code, server_message=message)
    if code == "usage_not_included":
        return UsageNotIncluded(code=code, server_message=message)
    if _is_usage_limit(error):
        return UsageLimitReached(429, message or "usage limit reached",
                                 plan_type=_plan(error), resets_at=_resets_at(error),
                                 code="usage_limit_reached")
    if code == "cyber_policy":
        return CyberPolicy(_nonblank(message, CyberPolicy.default_message), code=code)
    if code == "bio_policy":
        return InvalidRequest(_nonblank(message, BIO_POLICY_MESSAGE), code=code)
    if code == "misalignment_policy_violation":
        return InvalidRequest(_nonblank(message, MISALIGNMENT_MESSAGE), code=code,
                              misalignment=error.get("misalignment"))
    if code == "server_is_overloaded":
        return ServerOverloaded(message, retry_after=parse_retry_after(message))
    if code == "slow_down":
        return ServerOverloaded(message, retryable=True, retry_after=parse_retry_after(message))
    if code in ACCOUNT_CODES:
        return StreamError(message or f"response.failed with code {code!r}", retryable=False)
    if code == "rate_limit_exceeded":
        return RateLimitError(message, retry_after=parse_retry_after(message))
    if code == "invalid_prompt":
        # The crate keeps a present message as is, blank included.
        return InvalidRequest(message if "message" in error and isinstance(
            error.get("message"), str) else "Invalid request.", code=code)
    if _unavailable(code, error.get("param")):
        return ModelUnavailable(_nonblank(message, ModelUnavailable.default_message), code=code)
    return StreamError(message or f"response.failed with code {_text(raw_code) or 'None'}",
                       retryable=True)


def incomplete_failure(response: Any) -> StreamError:
    """The error for ``response.incomplete`` (final: the same request ends the same way)."""
    details = response.get("incomplete_details") if isinstance(response, dict) else None
    reason = details.get("reason") if isinstance(details, dict) else None
    return StreamError(f"Incomplete response returned, reason: {reason or 'unknown'}",
                       retryable=False)


def _plan(error: Mapping[str, Any]) -> str | None:
    plan = error.get("plan_type")
    return plan if isinstance(plan, str) else None


def http_error(base: ApiError, headers: Mapping[str, str] | None = None) -> CodexApiError:
    """The typed error for an HTTP error answer. ``base`` is the plain :class:`ApiError`
    already built from it (``body`` its text), ``headers`` the response headers with
    lower-case names (default ``base.headers``). Answers without a special meaning return
    ``base`` itself."""
    data = None
    if base.body and base.body.lstrip()[:1] == "{":
        try:
            data = loads(base.body)
        except ValueError:
            data = None
    error = data.get("error") if isinstance(data, dict) else None
    headers = base.headers if headers is None else headers
    if not isinstance(error, dict):
        return _kept(_http_error(base, {}, headers), None)
    return _kept(_http_error(base, error, headers), error)


def error_object(status: int, error: Any, headers: Mapping[str, str], body: str,
                 url: str | None = None, where: str = "") -> CodexApiError:
    """The typed error for an HTTP status whose JSON error object arrived already parsed (a
    WebSocket ``{"type": "error", "status_code": N, "error": {...}}`` frame): what
    :func:`http_error` gives for the same answer. ``headers`` have lower-case names; ``body``
    is the text kept on the error; ``where`` says where the status came from, for the
    message when the error object has none."""
    given = error if isinstance(error, dict) else None
    error = given or {}
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"HTTP {status}" + (f" {where}" if where else "")
    code = _str(error.get("code")) or _str(error.get("type"))
    base = ApiError(status, message, body, request_id=request_id(headers), url=url,
                    code=code, retry_after=retry_after_seconds(headers), headers=dict(headers))
    return _kept(_http_error(base, error, headers), given)


def _http_error(base: ApiError, error: dict[str, Any], headers: Mapping[str, str]
                ) -> CodexApiError:
    status = base.status
    code = _str(error.get("code"))
    message = _text(error.get("message"))
    info: dict[str, Any] = {"status": status, "code": code,
                            "request_id": base.request_id, "body": base.body}
    if status == 503 and code in ("server_is_overloaded", "slow_down"):
        # Both mean "at capacity" to the crate; slow_down alone asks for a later try.
        hint = base.retry_after if base.retry_after is not None else parse_retry_after(message)
        return ServerOverloaded(message, retryable=code == "slow_down", retry_after=hint,
                                status=status, request_id=base.request_id)
    if status == 429:
        kind = _str(error.get("type"))
        if _is_usage_limit(error):
            return UsageLimitReached(
                status, message or base.message, base.body, plan_type=_plan(error),
                resets_at=_resets_at(error), rate_limits=_active_limits(headers),
                request_id=base.request_id, url=base.url, code="usage_limit_reached",
                headers=base.headers)
        if kind == "usage_not_included" or code == "usage_not_included":
            return http_form(UsageNotIncluded)(server_message=message, **info)
        if kind == "insufficient_quota" or code in QUOTA_CODES:
            return http_form(QuotaExceeded)(server_message=message, **info)
        if code in ACCOUNT_CODES or kind in ACCOUNT_CODES:
            final = ApiError(status, base.message, base.body, request_id=base.request_id,
                             url=base.url, code=code if code in ACCOUNT_CODES else kind,
                             retry_after=base.retry_after, headers=base.headers)
            final.retryable = False
            return final
        return ApiRateLimitError(status, base.message, base.body, request_id=base.request_id,
                                 url=base.url, code=base.code, retry_after=base.retry_after,
                                 headers=base.headers)
    if status in (400, 403) and code == "misalignment_policy_violation":
        return http_form(InvalidRequest)(_nonblank(message, MISALIGNMENT_MESSAGE),
                              misalignment=error.get("misalignment"), **info)
    if status == 400:
        if code == "cyber_policy":
            return http_form(CyberPolicy)(_nonblank(message, CyberPolicy.default_message), **info)
        if code == "bio_policy":
            return http_form(InvalidRequest)(_nonblank(message, BIO_POLICY_MESSAGE), **info)
        if code == "invalid_prompt":
            return http_form(InvalidRequest)(_nonblank(message, "Invalid request."), **info)
        if code in ("context_length_exceeded", "context_window_exceeded"):
            return http_form(ContextWindowExceeded)(server_message=message, **info)
    if 400 <= status < 500 and _unavailable(code, error.get("param")):
        return http_form(ModelUnavailable)(
            _nonblank(message, ModelUnavailable.default_message), **info)
    if code in UNAVAILABLE_CODES:
        return http_form(ModelUnavailable)(
            _nonblank(message, ModelUnavailable.default_message), **info)
    return base


def _active_limits(headers: Mapping[str, str]) -> Any:
    family = (headers.get("x-codex-active-limit") or "").strip() or "codex"
    return parse_rate_limits(headers, family.replace("-", "_"))


__all__ = [
    "error_object",
    "http_error",
    "incomplete_failure",
    "parse_retry_after",
    "request_id",
    "stream_failure",
]
