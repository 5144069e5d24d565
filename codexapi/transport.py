"""The HTTP seam: a one-method Transport protocol and its urllib3 implementation.

A transport sends one :class:`HttpRequest` and returns an :class:`HttpResponse` whose body is
read lazily (``iter_bytes`` yields what the socket has as soon as it has it). It does not retry,
redirect or interpret statuses: the dispatcher does that, the same way for every transport.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import attrs
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from ._version import __version__
from .errors import ConnectTimeout, IdleTimeout, ReadTimeout, TransportError
from .redact import redact_headers, redact_url

USER_AGENT = f"codexapi/{__version__}"
CHUNK_SIZE = 64 * 1024


@attrs.frozen(repr=False)
class HttpRequest:
    """One HTTP request as sent: headers include credentials, so the repr redacts them."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    #: (connect, read) seconds; read bounds the head and every body read (idle timeout).
    timeout: tuple[float, float] = (30.0, 600.0)

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
        """Body bytes as they arrive; raises TransportError / IdleTimeout on failure."""
        ...

    def read(self) -> bytes:
        """The whole (decoded) body."""
        ...

    def close(self) -> None:
        """Release the connection; safe to call more than once."""
        ...


class Transport(Protocol):
    """Sends requests. Implementations must be safe to share between threads."""

    def send(self, request: HttpRequest, stream: bool) -> HttpResponse:
        """Send ``request``; return once the response head has arrived."""
        ...

    def close(self) -> None:
        """Close pooled connections."""
        ...


def describe_error(exc: BaseException, url: str) -> TransportError:
    """Map a urllib3/socket exception to a TransportError a person can act on."""
    where = redact_url(url)
    if isinstance(exc, NewConnectionError | ConnectionRefusedError):
        return TransportError(
            f"could not connect to {where}: {_reason(exc)} (is the server running and the "
            "base URL right?)",
            url=where,
        )
    if isinstance(exc, ConnectTimeoutError):
        return ConnectTimeout(f"timed out connecting to {where}", url=where)
    if isinstance(exc, ReadTimeoutError | socket.timeout | TimeoutError):
        return ReadTimeout(f"timed out waiting for a response from {where}", url=where)
    if isinstance(exc, SSLError | ssl.SSLError):
        return TransportError(f"TLS error talking to {where}: {_reason(exc)}", url=where)
    if isinstance(exc, ProxyError):
        return TransportError(f"proxy error reaching {where}: {_reason(exc)}", url=where)
    if isinstance(exc, ProtocolError | ConnectionError | HTTPError | OSError):
        return TransportError(f"connection to {where} failed: {_reason(exc)}", url=where)
    return TransportError(f"request to {where} failed: {exc!r}", url=where)


def _reason(exc: BaseException) -> str:
    inner: BaseException | None = exc
    # urllib3 wraps the socket error one or two levels deep; the innermost says what happened.
    for _ in range(4):
        nxt = getattr(inner, "reason", None) or (inner.args[1] if isinstance(
            inner, ProtocolError) and len(inner.args) > 1 else None)
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = str(inner) or type(inner).__name__
    return text.replace("HTTPConnection(host=", "(host=")


class Urllib3Response:
    """An urllib3 (or http.client-compatible) response, streamed, never read ahead."""

    __slots__ = ("_closed", "_eof", "_raw", "headers", "status", "url")

    def __init__(self, raw: Any, url: str) -> None:
        self._raw = raw
        self._closed = False
        self._eof = False
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = url

    def iter_bytes(self) -> Iterator[bytes]:
        raw = self._raw
        # read1 returns whatever is buffered or arrives next without waiting to fill the chunk:
        # an event is delivered as soon as its bytes are here.
        read = getattr(raw, "read1", None) or raw.read
        try:
            while True:
                chunk = read(CHUNK_SIZE)
                if not chunk:
                    self._eof = True
                    return
                yield chunk
        except (ReadTimeoutError, TimeoutError) as exc:
            self.close()
            raise IdleTimeout("idle timeout waiting for SSE: no bytes for the stream idle "
                              "timeout; the connection was closed") from exc
        except (ProtocolError, HTTPError, OSError) as exc:
            self.close()
            raise TransportError(
                f"connection lost while reading the response from {redact_url(self.url)}: "
                f"{_reason(exc)}", url=redact_url(self.url)) from exc

    def read(self) -> bytes:
        try:
            return b"".join(self.iter_bytes())
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        raw = self._raw
        try:
            if not self._eof:
                # A partially read body cannot go back to the pool: drop the connection.
                raw.close()
            if hasattr(raw, "release_conn"):
                raw.release_conn()
        except Exception:  # pragma: no cover - closing must never raise
            pass


class Urllib3Transport:
    """Pooled urllib3 transport. One instance is safe to share between threads."""

    def __init__(self, pool: urllib3.PoolManager | None = None, num_pools: int = 16,
                 maxsize: int = 32) -> None:
        self._pool = pool or urllib3.PoolManager(num_pools=num_pools, maxsize=maxsize,
                                                 block=False)

    def send(self, request: HttpRequest, stream: bool) -> HttpResponse:
        connect, read = request.timeout
        try:
            raw = self._pool.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                # Retries and redirects are the dispatcher's: a redirected POST stream must
                # fail loudly, and credentials must not follow a redirect to another host.
                retries=False,
                redirect=False,
                preload_content=False,
                decode_content=True,
                timeout=urllib3.Timeout(connect=connect, read=read),
            )
        except Exception as exc:
            raise describe_error(exc, request.url) from exc
        return Urllib3Response(raw, request.url)

    def close(self) -> None:
        self._pool.clear()
