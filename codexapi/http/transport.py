"""The HTTP seam: a one-method Transport protocol and its urllib3 implementation.

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

import http.client
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from functools import partial
from typing import Any, Protocol, cast

import attrs
import urllib3
from urllib3.exceptions import (
    DecodeError,
    HTTPError,
    ProtocolError,
    ReadTimeoutError,
)

from .. import forksafe
from .._version import __version__
from ..errors import (
    ConfigError,
    DeadlineExceeded,
    ReadTimeout,
    ResponseTooLarge,
    TransportError,
)
from ..redact import install_log_scrubbing, redact_headers, redact_url
from .connect import Network, describe_error, proxy_auth_required
from .connect import reason as _reason
from .proxy import Proxy
from .watchdog import WATCHDOG, Timer, shutdown_socket

# Every log record (urllib3's DEBUG request lines included) is scrubbed of secrets.
install_log_scrubbing()

#: How long the response head of the request being sent may take, as a whole: set around
#: each ``urlopen`` and read by the connection classes below.
_HEAD_BUDGET: ContextVar[float | None] = ContextVar("codexapi_head_budget", default=None)


def _whole_head(conn: Any, getresponse: Callable[[], Any]) -> Any:
    # A socket timeout bounds each read, so a head dripped one byte at a time would reset it
    # on every byte; the watchdog bounds the whole wait, shutting the socket down when it is
    # over. urllib3 reports the socket.timeout raised here as a read timeout.
    budget = _HEAD_BUDGET.get()
    sock = getattr(conn, "sock", None)
    if budget is None or sock is None:
        return getresponse()
    timer = WATCHDOG.schedule(budget, partial(shutdown_socket, sock))
    try:
        response = getresponse()
    except BaseException as exc:
        timer.cancel()
        if timer.fired:
            raise TimeoutError(
                f"the response head did not arrive whole within {budget:g} s") from exc
        raise
    timer.cancel()
    if timer.fired:
        # The shut-down socket ended the head early: http.client may take a cut header
        # line for the end of the head. Whatever it parsed, the head did not arrive.
        raise TimeoutError(f"the response head did not arrive whole within {budget:g} s")
    return response


def _bounded(conn: Any) -> Any:
    # Wrapped per connection, not by a connection subclass, and only urllib3's own: whatever
    # class urllib3 is set to use (vcrpy swaps in stubs that forward attributes to a real
    # connection while recording) keeps working as it does.
    if type(conn).__module__.startswith("urllib3."):
        conn.getresponse = partial(_whole_head, conn, conn.getresponse)
    return conn


class _HTTPPool(urllib3.HTTPConnectionPool):
    def _new_conn(self) -> Any:
        return _bounded(super()._new_conn())


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    def _new_conn(self) -> Any:
        return _bounded(super()._new_conn())


def _bound_heads(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager

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


def _socket_of(raw: Any) -> Any:
    """The socket a response is read from. With ``Connection: close`` http.client hands the
    socket to the response and forgets it on the connection, so look there too."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock


class Urllib3Response:
    """An urllib3 (or http.client-compatible) response, streamed, never read ahead."""

    __slots__ = ("_closed", "_deadline", "_eof", "_idle", "_raw", "_timer", "headers",
                 "status", "url")

    def __init__(self, raw: Any, url: str, idle: float | None = None,
                 head: float | None = None) -> None:
        self._raw = raw
        self._closed = False
        self._eof = False
        self._timer: Timer | None = None
        self._deadline = 0.0
        self._idle = idle
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.url = url
        if idle is not None and idle != head:
            # Once the head is in, the wait for each next read is the idle timeout, whatever
            # the head was given.
            self._set_read_timeout(idle)

    def _set_read_timeout(self, seconds: float) -> None:
        sock = _socket_of(self._raw)
        if sock is not None:
            sock.settimeout(seconds)

    def end_reads_at(self, until: float, seconds: float) -> None:
        """End every read at monotonic time ``until`` (a call's deadline, ``seconds`` long):
        the socket is shut down then, so even a body dripping a byte at a time stops."""
        sock = _socket_of(self._raw)
        if sock is not None:
            self._deadline = seconds
            self._timer = WATCHDOG.schedule(until - time.monotonic(),
                                            partial(shutdown_socket, sock))

    def _deadline_error(self) -> DeadlineExceeded | None:
        if self._timer is None or not self._timer.fired:
            return None
        self.close()
        return DeadlineExceeded(f"the deadline passed while reading the response from "
                                f"{redact_url(self.url)}", self._deadline,
                                url=redact_url(self.url))

    def iter_bytes(self) -> Iterator[bytes]:
        raw = self._raw
        # read1 returns whatever is buffered or arrives next without waiting to fill the chunk:
        # an event is delivered as soon as its bytes are here.
        read = getattr(raw, "read1", None) or raw.read
        try:
            try:
                while True:
                    chunk = read(CHUNK_SIZE)
                    if not chunk:
                        if (late := self._deadline_error()) is not None:
                            raise late
                        self._eof = True
                        return
                    yield chunk
            except DeadlineExceeded:
                raise
            except Exception as exc:
                # The watchdog shut the socket down at the deadline: whatever the read then
                # raised, that is what happened.
                if (late := self._deadline_error()) is not None:
                    raise late from exc
                raise
        except (ReadTimeoutError, TimeoutError) as exc:
            self.close()
            wait = f" for {self._idle:g} s" if self._idle is not None else ""
            raise ReadTimeout(f"timed out reading the response from {redact_url(self.url)}: "
                              f"no bytes{wait}; the connection was closed",
                              url=redact_url(self.url)) from exc
        except DecodeError as exc:
            self.close()
            error = TransportError(
                f"the response from {redact_url(self.url)} claims Content-Encoding "
                f"{self.headers.get('content-encoding')!r} but does not decode: {_reason(exc)}",
                url=redact_url(self.url))
            error.retryable = False
            raise error from exc
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

    def drain(self, grace: float = 0.05, limit: int = CHUNK_SIZE) -> None:
        """The turn is complete but the body may not be (the chunked terminator, a trailing
        ``[DONE]``): read what is left if it comes within ``grace`` seconds and is small, so
        the connection returns to the pool instead of being reset. Otherwise close() drops it.
        """
        if self._closed or self._eof:
            return
        raw = self._raw
        read = getattr(raw, "read1", None) or raw.read
        try:
            self._set_read_timeout(grace)  # urllib3 resets it when the connection is reused
            left = limit
            while left > 0:
                chunk = read(left)
                if not chunk:
                    self._eof = True
                    return
                left -= len(chunk)
        except Exception:  # a slow or broken tail: the connection is dropped on close()
            return

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        raw = self._raw
        try:
            if not self._eof:
                # A partially read body cannot go back to the pool: drop the connection.
                raw.close()
            if hasattr(raw, "release_conn"):
                raw.release_conn()
        except Exception:  # pragma: no cover - closing must never raise
            pass


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


class Urllib3Transport:
    """Pooled urllib3 transport. One instance is safe to share between threads.

    ``proxy``: None follows ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` (when
    ``trust_env``), "" connects directly, a URL sends everything through that proxy.
    ``ca_bundle``: a CA bundle trusted besides the system roots; None follows
    ``CODEX_CA_CERTIFICATE``/``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``. Both are read once, here:
    a malformed proxy URL or a missing CA file is a ConfigError naming its variable.
    """

    def __init__(self, pool: urllib3.PoolManager | None = None, num_pools: int = 16,
                 maxsize: int = 32, *, proxy: str | None = None, ca_bundle: str | None = None,
                 trust_env: bool = True) -> None:
        self._pool_kw: dict[str, Any] = {"num_pools": num_pools, "maxsize": maxsize,
                                         "block": False}
        #: The proxies and TLS trust, resolved once; a connection wire of the same Client
        #: opens its sockets with them too (:meth:`Network.open_socket`).
        self.network = Network.resolve(proxy, ca_bundle, trust_env)
        if self.network.ssl_context is not None:
            self._pool_kw["ssl_context"] = self.network.ssl_context
        self._proxies = self.network.proxies
        self._pool = pool or _bound_heads(urllib3.PoolManager(**self._pool_kw))
        self._proxy_pools: dict[str, urllib3.ProxyManager] = {}
        self._lock = threading.Lock()
        forksafe.register(self)

    def _after_fork(self) -> None:
        # In a forked child: the pools hold the parent's sockets. Start with empty ones (a
        # pool given to __init__ is replaced too) and a fresh lock (another thread may have
        # held the old one at the moment of the fork).
        forksafe.keep((self._pool, self._proxy_pools))
        self._pool = _bound_heads(urllib3.PoolManager(**self._pool_kw))
        self._proxy_pools = {}
        self._lock = threading.Lock()

    def _manager_for(self, url: str) -> tuple[urllib3.PoolManager, Proxy | None]:
        if not self._proxies.enabled:
            return self._pool, None
        proxy = self._proxies.proxy_for(url)
        if proxy is None:
            return self._pool, None
        with self._lock:
            manager = self._proxy_pools.get(proxy.url)
            if manager is None:
                # One ProxyManager per proxy: https targets are tunnelled with CONNECT (the
                # target's certificate is still verified end to end), http targets are sent
                # to the proxy in absolute form.
                manager = urllib3.ProxyManager(
                    proxy.url, proxy_headers=dict(proxy.headers),
                    proxy_ssl_context=self._pool_kw.get("ssl_context"), **self._pool_kw)
                _bound_heads(manager)
                self._proxy_pools[proxy.url] = manager
        return manager, proxy

    def send(self, request: HttpRequest, stream: bool = True) -> HttpResponse:
        """See :meth:`Transport.send`. ``stream`` is ignored (callers of earlier versions
        pass it): the response is always streamed."""
        connect, read, idle = request.timeout
        manager, proxy = self._manager_for(request.url)
        local: ConfigError | None = None
        until = None if request.deadline is None else time.monotonic() + request.deadline
        budget = _HEAD_BUDGET.set(read)
        try:
            raw = manager.urlopen(
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
        except (UnicodeError, ValueError) as exc:
            if isinstance(exc, HTTPError):  # urllib3's URL errors: described below
                raise describe_error(exc, request.url) from exc
            # http.client refusing a header or URL while sending: local input, not a network
            # failure. Its message quotes the offending value (often a credential), so neither
            # the message nor the exception is kept.
            local = ConfigError(
                f"cannot send {request.method} {redact_url(request.url)}: http.client refused "
                f"the request ({type(exc).__name__}); check header names and values (printable "
                "ASCII only) and the URL")
        except (HTTPError, OSError, http.client.HTTPException) as exc:
            # What urllib3, sockets, TLS and http.client raise; anything else (a replay
            # layer's own typed error) passes through untouched.
            error = describe_error(exc, request.url)
            if proxy is not None:
                error.message += f" (via proxy {proxy.url} from {proxy.source})"
            raise error from exc
        finally:
            _HEAD_BUDGET.reset(budget)
        if local is not None:
            raise local
        if proxy is not None and raw.status == 407:
            # The proxy, not the API, refused: say so rather than report an API error.
            Urllib3Response(raw, request.url).close()
            raise proxy_auth_required(proxy, request.url)
        response = Urllib3Response(raw, request.url, idle, read)
        if until is not None:
            response.end_reads_at(until, request.deadline or 0.0)
        return response

    def close(self) -> None:
        self._pool.clear()
        with self._lock:
            for manager in self._proxy_pools.values():
                manager.clear()


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
