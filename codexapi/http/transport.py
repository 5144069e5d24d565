"""The HTTP seam: a one-method Transport protocol, the request it sends and the response it
returns. Nothing here needs urllib3: the urllib3 implementation
(:mod:`codexapi.http.urllib3_transport`) is imported when a Client builds its default transport,
so a program that only imports codexapi, or brings its own transport, never loads it.

A transport sends one :class:`HttpRequest` and returns an :class:`HttpResponse`: streamed,
its body is read lazily (``iter_bytes`` yields what the socket has as soon as it has it);
otherwise it is read whole (bounded) before ``send`` returns. It does not retry, redirect or
interpret statuses: the dispatcher does that, the same way for every transport.

Timeouts are ``(connect, head, idle)`` seconds: establishing the connection, waiting for the
response head, and waiting for each further body read. A stalled read raises
:class:`ReadTimeout` (a TransportError); on a stream, :class:`~codexapi.ResponseStream` reports
it as :class:`IdleTimeout`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, cast

import attrs

from .._version import __version__
from ..errors import ConfigError, ResponseTooLarge
from ..redact import install_log_scrubbing, redact_headers, redact_url

# Every log record (urllib3's DEBUG request lines included) is scrubbed of secrets.
install_log_scrubbing()

USER_AGENT = f"codexapi/{__version__}"
CHUNK_SIZE = 64 * 1024
#: The largest body a non-streamed ``send`` reads into memory (compact, models, errors) when
#: the request does not say (``HttpRequest.max_body``; the Client sets it from
#: ``Provider.max_body_bytes``, whose default this is).
MAX_UNARY_BODY = 64 * 1024 * 1024

#: ``(connect, head, idle)`` seconds.
Timeouts = tuple[float, float, float]


def _timeouts(value: tuple[float, ...]) -> Timeouts:
    # (connect, read) from before the idle timeout had its own slot: read bounds both.
    if len(value) == 2:
        return float(value[0]), float(value[1]), float(value[1])
    if len(value) == 3:
        return float(value[0]), float(value[1]), float(value[2])
    raise ValueError(f"timeout must be (connect, head, idle) seconds, got {value!r}")


def _header_dict(value: Mapping[str, str]) -> dict[str, str]:
    return dict(value)


@attrs.frozen(repr=False)
class HttpRequest:
    """One HTTP request as sent: headers include credentials, so the repr redacts them."""

    method: str
    url: str
    #: A plain dict: an auth flow (or a ``codexapi_on_request`` observer) may add to it.
    headers: dict[str, str] = attrs.field(converter=_header_dict)
    body: bytes | None = None
    #: (connect, head, idle) seconds; a (connect, read) pair sets head and idle to read.
    timeout: Timeouts = attrs.field(default=(30.0, 600.0, 600.0), converter=_timeouts)
    #: Per-call scratch space for plugins (httpx's ``extensions``): the same dict for every
    #: attempt and auth-flow request of one call, and on the turn's ``StreamResult``.
    extensions: dict[str, Any] = attrs.field(factory=dict, eq=False)
    #: Seconds from sending until the whole exchange, body reads included, must be over
    #: (the call's ``deadline=``), or None.
    deadline: float | None = None
    #: The most (decoded) bytes of a unary body core reads into memory
    #: (``Provider.max_body_bytes``), and the most a compressed body may inflate to
    #: (``Provider.max_decompressed_bytes``; None: no bound of its own). Past either core
    #: raises :class:`ResponseTooLarge`; a transport need not look at them.
    max_body: int = MAX_UNARY_BODY
    max_decompressed: int | None = None

    def __repr__(self) -> str:
        return (
            f"HttpRequest({self.method} {redact_url(self.url)}, "
            f"headers={redact_headers(self.headers)!r}, body={len(self.body or b'')} bytes)"
        )


class HttpResponse(Protocol):
    """What a transport returns. ``headers`` lookups are case-insensitive."""

    status: int
    headers: Mapping[str, str]
    url: str

    def iter_bytes(self) -> Iterator[bytes]:
        """Body bytes as they arrive; raises TransportError (ReadTimeout when a read stalls
        past the idle timeout) on failure."""
        ...

    def read(self) -> bytes:
        """The whole (decoded) body, then close."""
        ...

    def drain(self) -> None:
        """The caller is done with a complete body: read a short, quick tail (a chunked
        terminator) so the connection can be reused; give up at once otherwise."""
        ...

    def close(self) -> None:
        """Release the connection; safe to call more than once."""
        ...


class Transport(Protocol):
    """Sends requests: one method. Implementations must be safe to share between threads."""

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request``; return the response once its head has arrived, its body
        streamed (read by the caller as it comes: core reads every body under the
        provider's bounds, a unary one included). ``request.timeout`` is
        ``(connect, head, idle)``. Raises TransportError (ConnectTimeout, ReadTimeout).

        A transport of an earlier version whose ``send`` takes ``(request, stream)`` keeps
        working: it is asked with ``stream=True`` (see :func:`streaming`)."""
        ...

    def close(self) -> None:
        """Close pooled connections."""
        ...


def _compressed(response: HttpResponse) -> bool:
    encoding = (response.headers.get("content-encoding") or "").strip().lower()
    return encoding not in ("", "identity")


def iter_bounded(response: HttpResponse, body_limit: int | None,
                 decompressed_limit: int | None, what: str = "response") -> Iterator[bytes]:
    """``response.iter_bytes()``, ended with :class:`ResponseTooLarge` (and the connection
    closed) once the body passes ``body_limit`` (``Provider.max_body_bytes``), or a compressed
    body passes ``decompressed_limit`` (``Provider.max_decompressed_bytes``). Reading stops
    there, so memory stays near the bound."""
    limit, setting = body_limit, "max_body_bytes"
    if decompressed_limit is not None and _compressed(response) and (
            limit is None or decompressed_limit < limit):
        limit, setting = decompressed_limit, "max_decompressed_bytes"
    if limit is None:
        yield from response.iter_bytes()
        return
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            response.close()
            kind = "decompressed " if setting == "max_decompressed_bytes" else ""
            raise ResponseTooLarge(
                f"the {what} body from {redact_url(response.url)} passed its bound of {limit} "
                f"{kind}bytes; raise Provider.{setting} if such a body is expected",
                setting=setting, limit=limit)
        yield chunk


def read_at_most(response: HttpResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of ``response``'s body (an error answer's, say), reading no
    further than the chunk that passes them."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


class BufferedResponse:
    """A response whose body is all in memory (a fake server's answer in tests, a replay)."""

    __slots__ = ("body", "headers", "status", "url")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes, url: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    @classmethod
    def read_from(cls, response: HttpResponse, limit: int = MAX_UNARY_BODY,
                  decompressed_limit: int | None = None) -> BufferedResponse:
        """Read ``response`` whole and release its connection: at most ``limit`` bytes, and
        at most ``decompressed_limit`` when the body is compressed."""
        try:
            body = b"".join(iter_bounded(response, limit, decompressed_limit))
        finally:
            response.close()
        return cls(response.status, response.headers, body, response.url)

    def iter_bytes(self) -> Iterator[bytes]:
        if self.body:
            yield self.body

    def read(self) -> bytes:
        return self.body

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


def streaming(transport: Any) -> Transport:
    """``transport`` as a one-method :class:`Transport`: one of an earlier version, whose
    ``send`` takes ``(request, stream)``, is asked for streamed responses."""
    send = getattr(transport, "send", None)
    if not callable(send):
        raise ConfigError(f"a transport needs a send(request) method; "
                          f"{type(transport).__name__} has none")
    try:
        params = [p for p in inspect.signature(send).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # a builtin or C callable: assume today's protocol
        return cast(Transport, transport)
    if len(params) >= 2 and params[1].default is inspect.Parameter.empty:
        return _Streamed(transport)
    return cast(Transport, transport)


class _Streamed:
    """An earlier version's ``send(request, stream)`` transport, always asked to stream."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def send(self, request: HttpRequest, stream: bool = True) -> HttpResponse:
        response: HttpResponse = self.inner.send(request, True)
        return response

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"streaming({self.inner!r})"
