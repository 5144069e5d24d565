"""The codexapi exception tree.

Every error a caller can see derives from :class:`CodexApiError`, and carries what a caller
needs to act on it (status, server message, request id, retry delay, attempts). The shapes
follow ``codex-rs/codex-api/src/error.rs``; the messages are written for people.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .redact import scrub


def _finite_delay(seconds: float | None) -> float | None:
    """A server's retry hint as kept on an error: a positive finite number of seconds, or None
    (an infinite or negative hint is no hint)."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return float(seconds)


class CodexApiError(Exception):
    """Base class of every codexapi error."""

    #: Whether retrying the same request later may succeed.
    retryable: bool = False
    #: The error object the server sent (``error`` of an HTTP error body, a ``response.failed``
    #: event, a Chat error chunk), every field as given whatever its JSON type, scrubbed of
    #: secrets; None when there was none.
    server_error: dict[str, Any] | None = None

    def __init__(self, message: str = "") -> None:
        # Messages often quote what a server sent (an error body, a status line, an event's
        # data): any secret it echoed goes no further than here.
        message = scrub(message) if isinstance(message, str) else message
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return scrub(self.message)


class ConfigError(CodexApiError):
    """Invalid configuration: a provider, a config file, an environment variable."""


class PluginError(CodexApiError):
    """A plugin failed to load, or a hook returned something unusable."""

    def __init__(self, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class AuthError(CodexApiError):
    """Credentials could not be obtained (unreadable auth file, token callable raised...)."""


class UnsupportedEndpointError(CodexApiError):
    """The provider's wire API does not offer this endpoint (e.g. compact on the Chat wire)."""


class OutputParseError(CodexApiError, ValueError):
    """Model output is not the JSON asked for, or does not fit the class it is parsed into.

    ``text`` is the output as received; ``detail`` says what was wrong with it; ``refusal`` is
    the model's refusal text when it declined to answer instead (else None). Sending the same
    request again may give other output, so it is never retried automatically.
    """

    def __init__(self, message: str, text: str = "", detail: str = "",
                 refusal: str | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.detail = detail
        self.refusal = refusal


class ToolArgumentsError(OutputParseError):
    """A tool call's ``arguments`` are not valid JSON, or do not fit the class asked for."""

    def __init__(self, call: Any, detail: str) -> None:
        self.name: str = call.name
        self.call_id: str = call.call_id
        preview = call.arguments if len(call.arguments) <= 200 else call.arguments[:200] + "…"
        super().__init__(f"arguments of function call {self.name!r} (call_id "
                         f"{self.call_id!r}) are {detail}: {preview!r}", call.arguments, detail)


class ToolLoopLimit(CodexApiError):
    """``Client.run_tools`` reached ``max_turns`` with the model still calling tools.

    ``run`` is the :class:`~codexapi.tools.ToolRun` so far: every call made with its output,
    the last turn's result, and the input list (the last calls' outputs included) to go on
    from.
    """

    def __init__(self, message: str, run: Any) -> None:
        super().__init__(message)
        self.run = run


class TransportError(CodexApiError):
    """The HTTP exchange itself failed: connect error, reset, TLS, proxy or timeout."""

    retryable = True

    def __init__(self, message: str, url: str | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts


class ConnectTimeout(TransportError):
    """No connection could be made within the connect timeout."""


class ReadTimeout(TransportError):
    """The server accepted the request but sent no response within the read timeout."""


class TLSHandshakeError(ConfigError, TransportError):
    """A TLS handshake that cannot succeed as configured: the certificate does not verify, or
    the server does not speak TLS there (``https://`` to a plain-HTTP port). Both a
    :class:`ConfigError` (fix the URL or the CA bundle) and a :class:`TransportError`; never
    retried."""

    retryable = False


class DeadlineExceeded(TransportError):
    """The call's ``deadline=`` passed: retries, waits and reads included. Never retried.

    ``__cause__`` is the failure that was being retried when time ran out, if any.
    """

    retryable = False

    def __init__(self, message: str, deadline: float, url: str | None = None) -> None:
        super().__init__(message, url=url)
        #: The deadline the call was given, in seconds.
        self.deadline = deadline


#: 4xx statuses that mean "try again" rather than "this request is wrong": 408 Request
#: Timeout and 425 Too Early (RFC 8470). The retry policy treats them as transport failures.
RETRYABLE_4XX = frozenset({408, 425})


class ApiError(CodexApiError):
    """The server answered with a non-2xx status."""

    def __init__(
        self,
        status: int,
        message: str,
        body: str | None = None,
        *,
        request_id: str | None = None,
        url: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.request_id = request_id
        self.url = url
        self.code = code
        self.retry_after = _finite_delay(retry_after)
        self.attempts = attempts
        self.headers = headers or {}
        # 408 and 425 say the server gave up on this connection or would not act on it yet:
        # retried like a transport error, as codex-client does.
        self.retryable = status in RETRYABLE_4XX or status == 429 or 500 <= status <= 599

    def __str__(self) -> str:
        text = f"api error {self.status}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        if self.attempts > 1:
            text += f" after {self.attempts} attempts"
        return text


class StreamError(CodexApiError):
    """The event stream was malformed, truncated, or reported a failure."""

    def __init__(
        self, message: str, *, retryable: bool = True, delay: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.delay = delay

    def __str__(self) -> str:
        return f"stream error: {self.message}"


class StreamDropped(StreamError):
    """The stream ended before its turn did: the connection closed, reset or failed after the
    response head and before the wire's terminal event (``response.completed``, a Chat
    ``finish_reason``). This type, never a message, is what makes a failed turn a drop:
    re-sent while no event has reached the caller, resumed after the last one with
    ``background=True`` (``Provider.stream_max_retries`` times at most). A wire's decoder
    raises it from ``close()`` when the body ended early; a failure the server reports is a
    plain :class:`StreamError` (or a class naming it) instead.
    """


class IdleTimeout(StreamError):
    """No bytes arrived on an open stream for longer than ``stream_idle_timeout``."""


class ResponseTooLarge(StreamError):
    """A response passed one of the provider's size bounds (``setting`` names it).

    Never retried: the same request would get the same oversized answer.
    """

    def __init__(self, message: str, *, setting: str, limit: int) -> None:
        super().__init__(message, retryable=False)
        self.setting = setting
        self.limit = limit


class UndecodableEvent(StreamError):
    """An event's data was not valid JSON (or had no ``type``), so it could not be delivered.

    Raised by default rather than skipping the event as the crate does: a skipped delta is
    text silently missing from the turn. ``Provider.skip_undecodable_events`` restores the
    skip (each one counted in ``StreamResult.skipped_events`` and logged as a warning).
    """

    def __init__(self, message: str, *, event_type: str | None = None) -> None:
        super().__init__(message, retryable=False)
        self.event_type = event_type


class RateLimitError(StreamError):
    """The server reported a rate limit; ``retry_after`` (seconds) is its hint, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        retry_after = _finite_delay(retry_after)
        super().__init__(message, retryable=True, delay=retry_after)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"rate limit: {self.message}"


class ApiRateLimitError(ApiError, RateLimitError):
    """An HTTP 429 rate limit: an :class:`ApiError` (``status`` 429) and a
    :class:`RateLimitError` (``retry_after``, the server's hint in seconds) at once."""

    def __init__(self, status: int, message: str, body: str | None = None, **kw: Any) -> None:
        ApiError.__init__(self, status, message, body, **kw)
        self.delay = self.retry_after
        self.retryable = True

    def __str__(self) -> str:
        return ApiError.__str__(self)


class UsageLimitReached(ApiError):
    """The plan's usage limit is reached (HTTP 429 ``usage_limit_reached``); retrying before
    ``resets_at`` cannot succeed, so it is never retried.

    ``resets_at`` is an aware UTC datetime (None when the server did not say), ``plan_type``
    the plan the server named, ``rate_limits`` the snapshot of the limit that was hit.
    """

    def __init__(
        self, status: int = 429, message: str = "usage limit reached", body: str | None = None,
        *, plan_type: str | None = None, resets_at: datetime | None = None,
        rate_limits: Any = None, **kw: Any,
    ) -> None:
        super().__init__(status, message, body, **kw)
        self.plan_type = plan_type
        self.resets_at = resets_at
        self.rate_limits = rate_limits
        self.retryable = False

    def __str__(self) -> str:
        text = f"usage limit reached: {self.message}"
        if self.plan_type:
            text += f" (plan {self.plan_type})"
        if self.resets_at is not None:
            text += f"; resets at {self.resets_at.isoformat()}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class ServerOverloaded(StreamError):
    """The server is at capacity (``server_is_overloaded``, never retried) or asks the client
    to slow down (``slow_down``, retried after ``delay``), as an HTTP 503 or a
    ``response.failed``. ``retry_after`` is the server's hint in seconds (a ``Retry-After``
    header or "try again in 2s" in its message), None when it gave none; ``status`` is 503 for
    the HTTP form, None for the stream form."""

    def __init__(self, message: str = "", *, retryable: bool = False,
                 delay: float | None = None, status: int | None = None,
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        retry_after = _finite_delay(retry_after if retry_after is not None else delay)
        super().__init__(message, retryable=retryable,
                         delay=retry_after if delay is None else delay)
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"server overloaded: {self.message}" if self.message else "server overloaded"


class _FatalModelError(CodexApiError):
    """A refusal that retrying cannot change. From an HTTP answer it also carries ``status``,
    ``code``, ``request_id`` and ``body``; from a ``response.failed`` event only ``code``."""

    default_message = ""

    def __init__(self, message: str | None = None, *, status: int | None = None,
                 code: str | None = None, request_id: str | None = None,
                 body: str | None = None, **info: Any) -> None:
        # Not super(): in an HTTP form (see _FromHttp) the next class is ApiError.
        CodexApiError.__init__(self, self.default_message if message is None else message)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body
        self.info = info


class ContextWindowExceeded(_FatalModelError):
    """The input does not fit the model's context window; retrying will not help."""

    default_message = "context window exceeded"


class QuotaExceeded(_FatalModelError):
    """The account's quota is exhausted (``insufficient_quota``)."""

    default_message = "quota exceeded"


class UsageNotIncluded(_FatalModelError):
    """The plan does not include usage of this model (``usage_not_included``)."""

    default_message = "usage not included"


class CyberPolicy(_FatalModelError):
    """The request was flagged for possible cybersecurity risk (``cyber_policy``)."""

    default_message = "This request has been flagged for possible cybersecurity risk."


class ModelUnavailable(_FatalModelError):
    """The model, service tier or reasoning effort asked for is not available to this account
    (``model_not_found``, ``unsupported_service_tier``…)."""

    default_message = "The selected model is unavailable."


class InvalidRequest(_FatalModelError):
    """The server rejected the prompt itself (``invalid_prompt``)."""

    default_message = "Invalid request."

    def __str__(self) -> str:
        return f"invalid request: {self.message}"


class _FromHttp:
    """Mixed into a refusal class for the HTTP answer it came as: the error is then also an
    :class:`ApiError` (``status``, ``body``, ``request_id``, ``headers``...), never retried."""

    def __init__(self, message: str | None = None, *, status: int = 0, code: str | None = None,
                 request_id: str | None = None, body: str | None = None,
                 url: str | None = None, headers: dict[str, str] | None = None,
                 **info: Any) -> None:
        _FatalModelError.__init__(self, message, status=status, code=code,  # type: ignore
                                  request_id=request_id, body=body, **info)
        self.url = url
        self.headers = headers or {}
        self.retry_after: float | None = None
        self.attempts = 1
        self.retryable = False


# One HTTP form per refusal, so ``except ApiError`` still catches every error answer. (mypy:
# ``status`` is optional on a refusal, always set on its HTTP form.)
class _HttpContextWindowExceeded(_FromHttp, ContextWindowExceeded, ApiError):  # type: ignore[misc]
    pass


class _HttpQuotaExceeded(_FromHttp, QuotaExceeded, ApiError):  # type: ignore[misc]
    pass


class _HttpUsageNotIncluded(_FromHttp, UsageNotIncluded, ApiError):  # type: ignore[misc]
    pass


class _HttpCyberPolicy(_FromHttp, CyberPolicy, ApiError):  # type: ignore[misc]
    pass


class _HttpModelUnavailable(_FromHttp, ModelUnavailable, ApiError):  # type: ignore[misc]
    pass


class _HttpInvalidRequest(_FromHttp, InvalidRequest, ApiError):  # type: ignore[misc]
    pass


#: The HTTP form of each refusal class (see :class:`_FromHttp`).
_HTTP_FORMS: dict[type[_FatalModelError], Callable[..., _FatalModelError]] = {
    ContextWindowExceeded: _HttpContextWindowExceeded,
    QuotaExceeded: _HttpQuotaExceeded,
    UsageNotIncluded: _HttpUsageNotIncluded,
    CyberPolicy: _HttpCyberPolicy,
    ModelUnavailable: _HttpModelUnavailable,
    InvalidRequest: _HttpInvalidRequest,
}


for _public, _form in _HTTP_FORMS.items():
    # Reports name the refusal (``type(err).__name__``); pickle finds the form by qualname.
    _form.__name__ = _public.__name__


def http_form(cls: type[_FatalModelError]) -> Callable[..., _FatalModelError]:
    """The class to raise ``cls`` as when it came as an HTTP error answer."""
    return _HTTP_FORMS[cls]


__all__ = [
    "RETRYABLE_4XX",
    "ApiError",
    "ApiRateLimitError",
    "AuthError",
    "CodexApiError",
    "ConfigError",
    "ConnectTimeout",
    "ContextWindowExceeded",
    "CyberPolicy",
    "DeadlineExceeded",
    "IdleTimeout",
    "InvalidRequest",
    "ModelUnavailable",
    "OutputParseError",
    "PluginError",
    "QuotaExceeded",
    "RateLimitError",
    "ReadTimeout",
    "ResponseTooLarge",
    "ServerOverloaded",
    "StreamDropped",
    "StreamError",
    "TLSHandshakeError",
    "ToolArgumentsError",
    "ToolLoopLimit",
    "TransportError",
    "UndecodableEvent",
    "UnsupportedEndpointError",
    "UsageLimitReached",
    "UsageNotIncluded",
]
