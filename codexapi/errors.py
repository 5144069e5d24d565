"""The codexapi exception tree.

Every error a caller can see derives from :class:`CodexApiError`, and carries what a caller
needs to act on it (status, server message, request id, retry delay, attempts). The shapes
follow ``codex-rs/codex-api/src/error.rs``; the messages are written for people.
"""

from __future__ import annotations

from typing import Any


class CodexApiError(Exception):
    """Base class of every codexapi error."""

    #: Whether retrying the same request later may succeed.
    retryable: bool = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


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

    ``text`` is the output as received; ``detail`` says what was wrong with it. Sending the
    same request again may give other output, so it is never retried automatically.
    """

    def __init__(self, message: str, text: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.text = text
        self.detail = detail


class ToolArgumentsError(OutputParseError):
    """A tool call's ``arguments`` are not valid JSON, or do not fit the class asked for."""

    def __init__(self, call: Any, detail: str) -> None:
        self.name: str = call.name
        self.call_id: str = call.call_id
        preview = call.arguments if len(call.arguments) <= 200 else call.arguments[:200] + "…"
        super().__init__(f"arguments of function call {self.name!r} (call_id "
                         f"{self.call_id!r}) are {detail}: {preview!r}", call.arguments, detail)


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
        self.retry_after = retry_after
        self.attempts = attempts
        self.headers = headers or {}
        self.retryable = status == 429 or 500 <= status <= 599

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


class IdleTimeout(StreamError):
    """No bytes arrived on an open stream for longer than ``stream_idle_timeout``."""


class RateLimitError(StreamError):
    """The server reported a rate limit; ``retry_after`` (seconds) is its hint, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, retryable=True, delay=retry_after)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"rate limit: {self.message}"


class ServerOverloaded(StreamError):
    """The server asked the client to slow down (``server_is_overloaded`` / ``slow_down``)."""

    def __str__(self) -> str:
        return f"server overloaded: {self.message}" if self.message else "server overloaded"


class _FatalModelError(CodexApiError):
    default_message = ""

    def __init__(self, message: str | None = None, **info: Any) -> None:
        super().__init__(message or self.default_message)
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


class InvalidRequest(_FatalModelError):
    """The server rejected the prompt itself (``invalid_prompt``)."""

    default_message = "Invalid request."

    def __str__(self) -> str:
        return f"invalid request: {self.message}"


__all__ = [
    "ApiError",
    "AuthError",
    "CodexApiError",
    "ConfigError",
    "ConnectTimeout",
    "ContextWindowExceeded",
    "IdleTimeout",
    "InvalidRequest",
    "OutputParseError",
    "PluginError",
    "QuotaExceeded",
    "RateLimitError",
    "ReadTimeout",
    "ServerOverloaded",
    "StreamError",
    "ToolArgumentsError",
    "TransportError",
    "UnsupportedEndpointError",
    "UsageNotIncluded",
]
