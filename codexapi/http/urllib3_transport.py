"""The default transport: pooled urllib3, streaming, with the whole response head bounded.

Imported when a Client builds its default transport (not by ``import codexapi``): urllib3,
http.client and ssl are most of what a first call loads. The seam it implements (HttpRequest,
HttpResponse, Transport, BufferedResponse) is :mod:`codexapi.http.transport`.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from functools import partial
from typing import Any

import urllib3
from urllib3.exceptions import (
    DecodeError,
    HTTPError,
    ProtocolError,
    ReadTimeoutError,
)

from .. import forksafe
from ..errors import (
    ConfigError,
    DeadlineExceeded,
    ReadTimeout,
    TransportError,
)
from ..redact import redact_url
from .connect import Network, describe_error, proxy_auth_required
from .connect import reason as _reason
from .proxy import Proxy
from .transport import CHUNK_SIZE, HttpRequest, HttpResponse
from .watchdog import WATCHDOG, Timer, shutdown_socket

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


class Urllib3Transport:
    """Pooled urllib3 transport. One instance is safe to share between threads.

    ``proxy``: None follows ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` (when
    ``trust_env``), "" connects directly, a URL sends everything through that proxy.
    ``ca_bundle``: a CA bundle trusted besides the system roots; None follows
    ``CODEX_CA_CERTIFICATE``/``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``. Both are looked up once,
    here: a malformed proxy URL or a missing CA file is a ConfigError naming its variable. The
    bundle is read when the first TLS connection needs it (a file that is not a PEM bundle is a
    ConfigError then, before anything is sent): parsing it takes tens of milliseconds, which a
    client of an ``http://`` server, such as the embedded one, never has to pay.
    """

    def __init__(self, pool: urllib3.PoolManager | None = None, num_pools: int = 16,
                 maxsize: int = 32, *, proxy: str | None = None, ca_bundle: str | None = None,
                 trust_env: bool = True) -> None:
        self._pool_kw: dict[str, Any] = {"num_pools": num_pools, "maxsize": maxsize,
                                         "block": False}
        #: The proxies and TLS trust, resolved once; a connection wire of the same Client
        #: opens its sockets with them too (:meth:`Network.open_socket`).
        self.network = Network.resolve(proxy, ca_bundle, trust_env)
        self._proxies = self.network.proxies
        #: Whether the pools still lack the bundle's context (read for the first TLS pool).
        self._bundle_pending = self.network.bundle is not None
        self._own_pool = pool is None
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

    def _load_bundle(self, url: str | None) -> None:
        """Read the CA bundle before the first pool that may speak TLS is made: an ``https``
        ``url``, or any proxy (None: its manager may tunnel to https targets later)."""
        if not self._bundle_pending or (url is not None and url[:6].lower() != "https:"):
            return
        with self._lock:
            if not self._bundle_pending:
                return
            context = self.network.ssl_context
            self._pool_kw["ssl_context"] = context
            if self._own_pool:  # pools made from now on use it; none is https yet
                self._pool.connection_pool_kw["ssl_context"] = context
            self._bundle_pending = False

    def _manager_for(self, url: str) -> tuple[urllib3.PoolManager, Proxy | None]:
        proxy = self._proxies.proxy_for(url) if self._proxies.enabled else None
        self._load_bundle(url if proxy is None else None)
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
