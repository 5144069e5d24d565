"""Reaching a server: one place for the proxy, the TLS trust and what a failed connection
means, shared by the urllib3 transport's pools and the sockets a connection wire (WebSocket)
opens itself.

:class:`Network` is the resolved setting (``Provider.proxy`` / ``HTTPS_PROXY`` / ``NO_PROXY``,
``Provider.ca_bundle`` / ``CODEX_CA_CERTIFICATE``...), read once per Client. The transport
hands its parts to urllib3; :meth:`Network.open_socket` makes a socket with the same
parts and the same primitives urllib3 uses (``urllib3.util.connection.create_connection``,
``ssl_wrap_socket``, a ``CONNECT`` tunnel for a proxy, TLS in TLS through an https proxy).
:func:`describe_error` turns what either raised into the one :class:`TransportError` a person
can act on.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ..errors import (
    ConnectTimeout,
    DeadlineExceeded,
    ReadTimeout,
    TLSHandshakeError,
    TransportError,
)
from ..redact import redact_url
from .proxy import Proxy, ProxySettings
from .tls import find_ca_bundle, shared_ssl_context
from .watchdog import WATCHDOG, shutdown_socket

#: The largest response head (a proxy's answer to ``CONNECT``, a WebSocket upgrade's) read
#: before giving up.
MAX_HEAD_BYTES = 64 * 1024

#: OpenSSL reasons of a handshake that fails the same way every time (a bad certificate, a
#: server that does not speak TLS, no common protocol): never retried. A reset or EOF during
#: the handshake is not among them: that may be transient.
_TLS_NEVER = ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "UNSUPPORTED_PROTOCOL",
              "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE", "NO_PROTOCOLS_AVAILABLE",
              "TLSV1_ALERT_PROTOCOL_VERSION", "TLSV1_ALERT_UNKNOWN_CA",
              "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_EXPIRED",
              "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_UNRECOGNIZED_NAME")


def describe_error(exc: BaseException, url: str) -> TransportError:
    """Map a urllib3/socket/TLS exception to a TransportError a person can act on."""
    # Imported here: urllib3 is most of a first call's imports, and a client given its own
    # transport (or only importing this module, as the WebSocket wire does) may never need it.
    from urllib3.exceptions import (
        ConnectTimeoutError,
        HTTPError,
        NewConnectionError,
        ProtocolError,
        ProxyError,
        ReadTimeoutError,
        SSLError,
    )

    where = redact_url(url)
    if isinstance(exc, NewConnectionError | ConnectionRefusedError):
        return TransportError(
            f"could not connect to {where}: {reason(exc)} (is the server running and the "
            "base URL right?)",
            url=where,
        )
    if isinstance(exc, ConnectTimeoutError):
        return ConnectTimeout(f"timed out connecting to {where}", url=where)
    if isinstance(exc, ReadTimeoutError | socket.timeout | TimeoutError):
        whole = any("response head did not arrive whole" in str(e)
                    for e in (exc, exc.__cause__, exc.__context__))
        detail = " (its head did not arrive whole within the read timeout)" if whole else ""
        return ReadTimeout(f"timed out waiting for a response from {where}{detail}", url=where)
    if isinstance(exc, SSLError | ssl.SSLError):
        why = reason(exc)
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in why:
            hint = (" (if the server's certificate comes from a private CA, point "
                    "CODEX_CA_CERTIFICATE, SSL_CERT_FILE or Provider.ca_bundle at its PEM file)")
        elif "WRONG_VERSION_NUMBER" in why:
            hint = " (the server does not speak TLS on this port: should the URL be http://?)"
        message = f"TLS error talking to {where}: {why}{hint}"
        if any(marker in why for marker in _TLS_NEVER):
            return TLSHandshakeError(message, url=where)
        return TransportError(message, url=where)
    if isinstance(exc, ProxyError):
        inner = getattr(exc, "original_error", None)
        why = reason(inner if isinstance(inner, BaseException) else exc)
        return TransportError(f"proxy error reaching {where}: {why}", url=where)
    if isinstance(exc, ProtocolError | ConnectionError | HTTPError | OSError):
        return TransportError(f"connection to {where} failed: {reason(exc)}", url=where)
    return TransportError(f"request to {where} failed: {exc!r}", url=where)


def reason(exc: BaseException) -> str:
    """What happened, from the innermost of urllib3's wrapped socket errors."""
    from urllib3.exceptions import ProtocolError

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


def proxy_auth_required(proxy: Proxy, url: str) -> TransportError:
    """A proxy answered 407: the proxy, not the API, refused; never retried."""
    error = TransportError(
        f"proxy {proxy.url} (from {proxy.source}) requires authentication (407); put "
        "user:password in the proxy URL", url=redact_url(url))
    error.retryable = False
    return error


def read_head(sock: Any, until: float, what: str) -> tuple[bytes, bytes]:
    """An HTTP response head (up to its blank line) and the bytes read past it, the whole
    head arriving by monotonic time ``until`` (a head dripped a byte at a time included):
    else :class:`TimeoutError`. ``what`` names the answer in errors."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES:
            raise HeadError(f"{what}: a head over {MAX_HEAD_BYTES} bytes")
        left = until - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what} did not arrive whole in time")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise HeadError(f"{what}: the server closed the connection without answering"
                            if not data else f"{what}: the answer ended inside its head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


class HeadError(OSError):
    """An answer head that cannot be read: too long, or cut short by the server."""


def status_of(head: bytes) -> tuple[int | None, str]:
    """The status code of a response head (None when its status line is not one) and the
    status line."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    fields = line.split(" ", 2)
    code = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    return code, line


@attrs.frozen(eq=False, repr=False)
class Network:
    """How a Client reaches servers: the proxies by URL and the CA bundle trusted besides the
    system roots (``(path, where it came from)``, or None)."""

    proxies: ProxySettings
    bundle: tuple[Path, str] | None = None
    _contexts: dict[str, ssl.SSLContext] = attrs.field(factory=dict, init=False)

    @classmethod
    def resolve(cls, proxy: str | None = None, ca_bundle: str | None = None,
                trust_env: bool = True) -> Network:
        """Read the settings (and, when ``trust_env``, the environment) once: a malformed
        proxy URL or a missing CA file is a ConfigError naming where it came from."""
        return cls(ProxySettings.for_provider(proxy, trust_env),
                   find_ca_bundle(ca_bundle, trust_env))

    def __repr__(self) -> str:
        return f"Network(proxies={self.proxies!r}, ca_bundle={self.bundle is not None})"

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The context trusting the bundle too (None: no bundle). Made when first asked for,
        by the first TLS connection: parsing a bundle of system roots takes tens of
        milliseconds, which a client of an ``http://`` server never has to pay; a file that
        is not a PEM bundle is a ConfigError then, before anything is sent."""
        return None if self.bundle is None else self._context("bundle")

    def tls(self) -> ssl.SSLContext:
        """The context TLS connections verify with."""
        return self._context("bundle" if self.bundle is not None else "default")

    def _context(self, which: str) -> ssl.SSLContext:
        context = self._contexts.get(which)
        if context is None:
            # No lock (nor one to reset after a fork): two threads racing here both get one,
            # and setdefault keeps the first for everybody.
            context = self._contexts.setdefault(which, shared_ssl_context(
                self.bundle if which == "bundle" else None))
        return context

    def open_socket(self, url: str, timeout: float, until: float | None = None) -> Any:
        """A connected socket to ``url`` (``http``/``ws``: TCP; ``https``/``wss``: TLS),
        through the proxy this network uses for it (a ``CONNECT`` tunnel), with TCP_NODELAY.

        Everything — name lookup, TCP, the proxy's answer, the TLS handshakes — is over
        within ``timeout`` seconds (:class:`ConnectTimeout`) and by monotonic time ``until``
        (:class:`DeadlineExceeded`); any other failure is the TransportError
        :func:`describe_error` gives, naming the proxy when there is one.
        """
        parts = urlsplit(url)
        secure = parts.scheme in ("https", "wss")
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        http_url = ("https" if secure else "http") + url[url.index(":"):]
        proxy = self.proxies.proxy_for(http_url)
        where = redact_url(url)
        start = time.monotonic()
        end = start + timeout
        deadline_first = until is not None and until < end
        if until is not None:
            end = min(end, until)
        sock: Any = None
        timer = None
        try:
            target = (host, port)
            if proxy is not None:
                bits = urlsplit(proxy.url)
                target = (bits.hostname or "", bits.port or 80)
            sock = _create_connection(target, end)
            # A socket timeout bounds each read; the handshakes and a proxy's answer must be
            # over as a whole: the watchdog shuts the socket down at the end.
            timer = WATCHDOG.schedule(end - time.monotonic(), partial(shutdown_socket, sock))
            if proxy is not None:
                sock = self._tunnel(sock, proxy, host, port, end, url)
            if secure:
                from urllib3.util.ssl_ import ssl_wrap_socket

                sock.settimeout(max(end - time.monotonic(), 0.001))
                sock = ssl_wrap_socket(sock, server_hostname=host, ssl_context=self.tls(),
                                       tls_in_tls=proxy is not None
                                       and proxy.url.startswith("https:"))
            if timer.fired:
                raise TimeoutError("the connection was not ready in time")
        except TransportError:
            _close(sock)
            raise
        except (OSError, ValueError) as exc:
            _close(sock)
            fired = timer is not None and timer.fired
            if fired or isinstance(exc, TimeoutError | socket.timeout):
                if deadline_first and time.monotonic() >= (until or 0.0) - 0.001:
                    raise DeadlineExceeded(f"the deadline passed while connecting to {where}",
                                           (until or start) - start, url=where) from None
                raise ConnectTimeout(f"timed out connecting to {where} (within {timeout:g} s)",
                                     url=where) from None
            error = describe_error(exc, url)
            if proxy is not None:
                error.message += f" (via proxy {proxy.url} from {proxy.source})"
            raise error from None
        finally:
            if timer is not None:
                timer.cancel()
        return sock

    def _tunnel(self, sock: Any, proxy: Proxy, host: str, port: int, end: float,
                url: str) -> Any:
        """A ``CONNECT`` tunnel to ``host:port`` through ``proxy`` (TLS to the proxy first
        when it is an https proxy), as urllib3 makes one for an https target."""
        if proxy.url.startswith("https:"):
            from urllib3.util.ssl_ import ssl_wrap_socket

            sock.settimeout(max(end - time.monotonic(), 0.001))
            sock = ssl_wrap_socket(sock, server_hostname=urlsplit(proxy.url).hostname,
                                   ssl_context=self.tls())
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{k}: {v}" for k, v in proxy.headers.items()]
        sock.settimeout(max(end - time.monotonic(), 0.001))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head, _ = read_head(sock, end, f"proxy {proxy.url}'s answer to CONNECT")
        status, line = status_of(head)
        if status == 407:
            raise proxy_auth_required(proxy, url)
        if status != 200:
            raise TransportError(f"proxy {proxy.url} (from {proxy.source}) refused the tunnel "
                                 f"to {authority}: {line or 'no answer'}",
                                 url=redact_url(url))
        return sock


def _create_connection(address: tuple[str, int], end: float) -> socket.socket:
    from urllib3.util.connection import create_connection

    left = end - time.monotonic()
    if left <= 0:
        raise TimeoutError("no time left to connect")
    # The options urllib3's own connections set (HTTPConnection.default_socket_options).
    return create_connection(address, timeout=left,
                             socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])


def _close(sock: Any) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):  # closing must never raise
            sock.close()


__all__ = ["MAX_HEAD_BYTES", "HeadError", "Network", "describe_error", "proxy_auth_required",
           "read_head", "reason", "status_of"]
