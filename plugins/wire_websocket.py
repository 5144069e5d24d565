"""Responses over WebSocket: the Wire ``"responses_websocket"``, as the Codex CLI speaks it
(codex-rs/codex-api ``endpoint/responses_websocket.rs``).

- The stream endpoint upgrades ``GET {base_url}/responses`` (``ws://`` / ``wss://``) with
  ``openai-beta: responses_websockets=2026-02-06`` and the request's own headers (provider,
  session, credentials), then sends one ``{"type": "response.create", ...}`` text frame per turn,
  the Responses body's fields at the top level. Compact and models stay on HTTP.
- The server's JSON text frames are the Responses events: they go to the same decoder as the
  HTTP wire's SSE ``data`` payloads (``ResponsesDecoder.feed_data``), and an HTTP fallback's
  SSE body to the same decoder through SSE framing. ``codex.rate_limits`` frames become
  ``RateLimits`` events.
- A wrapped ``{"type": "error", "status_code": N, "error": {...}}`` frame (``status`` is read
  too) is the HTTP status
  N: as the turn's first frame it goes through the dispatcher's status handling (typed error,
  retry policy, auth refresh) exactly as an HTTP answer would; later, it raises the same typed
  error. A binary frame, a close before ``response.completed`` or a protocol violation is a
  typed error, never a hang (every read is bounded by the stream idle timeout); a message past
  ``Provider.max_message_bytes`` is :class:`codexapi.ResponseTooLarge`, refused as soon as its
  frame header announces it.
- One connection per session (the ``session-id`` header) is kept between turns and closed with
  the Client. An upgrade the server refuses (any answer but ``101``) switches that Client to
  HTTP at once, with one log line, and the turn is sent as ``POST responses``. A dropped
  background response resumes over HTTP (``GET responses/{id}?stream=true&starting_after=N``,
  SSE into the same decoder); the next turn is on the WebSocket again.
- Proxies (``Provider.proxy`` / ``HTTPS_PROXY`` / ``NO_PROXY``, tunnelled with ``CONNECT``) and
  TLS (``Provider.ca_bundle``, ``CODEX_CA_CERTIFICATE``…) are the HTTP transport's settings.

The handshake and outgoing frames come from the ``websockets`` package's Sans-I/O protocol
(``websockets.client.ClientProtocol``); incoming frames are read here, straight off the socket,
because a per-frame generator costs more than decoding the event it carries (see
``benchmarks``). No extension is offered, so server frames arrive uncompressed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from codexapi import hookimpl
from codexapi.convert import loads
from codexapi.errors import (
    ApiError,
    CodexApiError,
    ResponseTooLarge,
    StreamDropped,
    StreamError,
    TransportError,
)
from codexapi.models import Provider
from codexapi.redact import redact_url

from .wire_responses import ResponsesWire

log = logging.getLogger("codexapi")

NAME = "responses_websocket"
OPENAI_BETA = "responses_websockets=2026-02-06"
#: The largest upgrade answer head read before giving up.
MAX_HEAD_BYTES = 64 * 1024
#: Request headers that describe the HTTP body, not the upgrade.
_HTTP_ONLY = frozenset({"content-type", "content-length", "content-encoding", "accept",
                        "accept-encoding", "host", "connection", "upgrade", "transfer-encoding",
                        "te", "keep-alive"})
#: Upgrade answer headers a turn reports (header events, request ids); rate limits are not
#: among them: on this wire they come as ``codex.rate_limits`` frames.
_TURN_HEADERS = ("openai-model", "x-models-etag", "x-reasoning-included", "x-request-id",
                 "x-oai-request-id", "cf-ray", "x-codex-safety-buffering-faster-model")
_READ = 256 * 1024
#: The most one read asks for while a large frame is still arriving.
_BIG_READ = 4 * 1024 * 1024


class WebSocketRefused(Exception):
    """The server answered the upgrade with something other than ``101`` (internal)."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class ResponsesWebSocketWire(ResponsesWire):
    """The Responses API over a WebSocket; bodies, events and errors as the HTTP wire."""

    name = NAME

    def decoder(self, endpoint: str, settings: Any = None) -> Any:
        if endpoint != "stream":
            return super().decoder(endpoint, settings)
        return FrameDecoder(settings)

    def open(self, endpoint: str, request: Any, context: Any) -> Any:
        transport = context.transport
        if endpoint != "stream":
            return transport.send(request)
        if request.method != "POST":
            # Resuming a background response (GET responses/{id}?stream=true&starting_after=N)
            # is HTTP: an upgrade there is no turn, and its refusal must not switch the
            # Client's next turns to HTTP.
            return transport.send(request)
        pool = context.connections.get(NAME)
        if pool is None:
            pool = context.connections.setdefault(NAME, _Pool(context.provider))
        return pool.turn(request, transport)

    def __repr__(self) -> str:
        return f"ResponsesWebSocketWire(provider={self.provider.name!r})"


WIRE = ResponsesWebSocketWire()


@hookimpl
def codexapi_register_wires(register: Callable[[Any], None]) -> None:
    register(WIRE)


def websocket_url(url: str) -> str:
    """``http(s)://…`` as ``ws(s)://…``."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://"):]
    if url.startswith("http://"):
        return "ws://" + url[len("http://"):]
    return url


class _Pool:
    """The connections one Client keeps, by session; and whether it fell back to HTTP."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.fallback = False
        self._idle: dict[str, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def turn(self, request: Any, transport: Any) -> Any:
        if self.fallback:
            return transport.send(request)
        key = _header(request.headers, "session-id") or ""
        with self._lock:
            idle = self._idle.get(key)
            conn = idle.pop() if idle else None
        if conn is not None:
            try:
                return conn.start(request, self, key)
            except _Stale:
                conn.close()  # the server closed it while idle: a fresh one, once
        try:
            conn = _Connection.open(self.provider, request)
        except WebSocketRefused as exc:
            self.fallback = True
            log.warning("%s: the WebSocket upgrade was refused (%s); this client uses HTTP "
                        "from now on", redact_url(websocket_url(request.url)), exc)
            return transport.send(request)
        try:
            return conn.start(request, self, key)
        except _Stale as exc:
            conn.close()
            raise TransportError(f"the WebSocket connection to "
                                 f"{redact_url(conn.url)} closed before the turn began: {exc}",
                                 url=redact_url(conn.url)) from None

    def give_back(self, conn: _Connection, key: str) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(key, []).append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


class _Stale(Exception):
    """A kept connection turned out closed before the turn's first frame (internal)."""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _connect_timeout(request: Any) -> tuple[float, float, float]:
    timeout = tuple(request.timeout)
    if len(timeout) == 2:
        return float(timeout[0]), float(timeout[1]), float(timeout[1])
    return float(timeout[0]), float(timeout[1]), float(timeout[2])


def _open_socket(provider: Provider, url: str, connect: float) -> socket.socket:
    """A TCP (and TLS, for wss) socket to ``url``, through the proxy the HTTP transport would
    use."""
    from codexapi.http.proxy import ProxySettings
    from codexapi.http.tls import make_ssl_context

    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    http_url = ("https" if secure else "http") + url[url.index(":"):]
    proxy = ProxySettings.for_provider(provider.proxy).proxy_for(http_url)
    context = make_ssl_context(provider.ca_bundle) if secure or proxy else None
    where = redact_url(url)
    try:
        if proxy is None:
            sock = socket.create_connection((host, port), timeout=connect)
        else:
            sock = _tunnel(proxy, host, port, connect, context)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if secure:
            tls = context or ssl.create_default_context()
            sock = tls.wrap_socket(sock, server_hostname=host)
    except CodexApiError:
        raise
    except ssl.SSLError as exc:
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            hint = (" (if the server's certificate comes from a private CA, point "
                    "CODEX_CA_CERTIFICATE, SSL_CERT_FILE or Provider.ca_bundle at its PEM file)")
        raise TransportError(f"TLS error talking to {where}: {exc}{hint}", url=where) from None
    except TimeoutError:
        from codexapi.errors import ConnectTimeout

        raise ConnectTimeout(f"timed out connecting to {where}", url=where) from None
    except OSError as exc:
        via = f" (via proxy {proxy.url} from {proxy.source})" if proxy else ""
        raise TransportError(f"could not connect to {where}: {exc}{via} (is the server running "
                             "and the base URL right?)", url=where) from None
    return sock


def _tunnel(proxy: Any, host: str, port: int, connect: float,
            context: ssl.SSLContext | None) -> socket.socket:
    """A ``CONNECT`` tunnel through an http(s) proxy, as urllib3 makes one for https targets."""
    parts = urlsplit(proxy.url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=connect)
    if parts.scheme == "https":
        sock = (context or ssl.create_default_context()).wrap_socket(
            sock, server_hostname=parts.hostname)
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in proxy.headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head = _read_head(sock)[0]
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or fields[1] != "200":
        sock.close()
        error = TransportError(f"proxy {proxy.url} (from {proxy.source}) refused the tunnel to "
                               f"{host}:{port}: {status_line or 'no answer'}")
        if len(fields) > 1 and fields[1] == "407":
            error.message += "; put user:password in the proxy URL"
            error.retryable = False
        raise error
    return sock


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """An HTTP response head (up to the blank line) and the bytes read past it."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD_BYTES:
            raise WebSocketRefused(None, f"an answer head over {MAX_HEAD_BYTES} bytes")
        chunk = sock.recv(65536)
        if not chunk:
            raise WebSocketRefused(None, "the server closed the connection without answering"
                                   if not data else "the answer ended inside its head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


class _Connection:
    """One upgraded connection: sends ``response.create`` frames, reads text frames."""

    def __init__(self, sock: socket.socket, protocol: Any, url: str, headers: dict[str, str],
                 rest: bytes, max_message: int) -> None:
        self.sock = sock
        #: The largest message (all fragments of one frame sequence) accepted: the provider's
        #: ``max_message_bytes``.
        self.max_message = max_message
        self.protocol = protocol
        self.url = url
        #: The upgrade answer's headers (lower-case names).
        self.headers = headers
        self.turns = 0
        self._buf = rest
        #: How many bytes ``_buf`` must hold before the frame at its start is complete (0:
        #: unknown): a large frame's reads are joined once, not copied on every read.
        self._need = 0
        self._parts: list[bytes] = []
        self._size = 0
        #: An error met after some messages of a read: raised by the next read.
        self._pending: BaseException | None = None
        self.closed = False

    @classmethod
    def open(cls, provider: Provider, request: Any) -> _Connection:
        from websockets.client import ClientProtocol
        from websockets.exceptions import InvalidStatus
        from websockets.http11 import Response
        from websockets.uri import parse_uri

        url = websocket_url(request.url)
        connect, head_timeout, _ = _connect_timeout(request)
        sock = _open_socket(provider, url, connect)
        try:
            protocol = ClientProtocol(parse_uri(url), max_size=provider.max_message_bytes)
            upgrade = protocol.connect()
            for name, value in request.headers.items():
                if name.lower() not in _HTTP_ONLY:
                    upgrade.headers[name] = value
            upgrade.headers["openai-beta"] = OPENAI_BETA
            protocol.send_request(upgrade)
            sock.settimeout(head_timeout)
            sock.sendall(b"".join(protocol.data_to_send()))
            head, rest = _read_head(sock)
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
            fields = status_line.split(" ", 2)
            if len(fields) < 2 or fields[1] != "101":
                # Any other answer is a refusal (its body, if any, is not ours to read).
                code = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
                raise WebSocketRefused(code, " ".join(fields[1:]) or "no status line")
            protocol.receive_data(head)
            answer = next((e for e in protocol.events_received() if isinstance(e, Response)),
                          None)
            failure = protocol.handshake_exc
            if failure is not None or answer is None:
                if isinstance(failure, InvalidStatus):
                    status = failure.response.status_code
                    raise WebSocketRefused(status, f"HTTP {status} "
                                           f"{failure.response.reason_phrase}".strip())
                raise WebSocketRefused(answer.status_code if answer else None,
                                       f"not a WebSocket upgrade: {failure}")
        except WebSocketRefused:
            sock.close()
            raise
        except TimeoutError:
            sock.close()
            from codexapi.errors import ReadTimeout

            raise ReadTimeout(f"timed out waiting for the WebSocket upgrade of "
                              f"{redact_url(url)}", url=redact_url(url)) from None
        except OSError as exc:
            sock.close()
            raise TransportError(f"the WebSocket upgrade of {redact_url(url)} failed: {exc}",
                                 url=redact_url(url)) from None
        headers = {k.lower(): v for k, v in answer.headers.raw_items()}
        return cls(sock, protocol, url, headers, rest, provider.max_message_bytes)

    # --- one turn ------------------------------------------------------------------------
    def start(self, request: Any, pool: _Pool, key: str) -> Any:
        """Send the turn's ``response.create`` and wait for its first frame."""
        _, head_timeout, idle = _connect_timeout(request)
        frame = _create_frame(request)
        reused = self.turns > 0
        self.turns += 1
        try:
            self.protocol.send_text(frame)
            self.sock.settimeout(head_timeout)
            self.sock.sendall(b"".join(self.protocol.data_to_send()))
            payloads = self.read_messages()
        except (_Closed, OSError) as exc:
            if reused and not isinstance(exc, TimeoutError):
                raise _Stale(str(exc)) from None
            self.close()
            if isinstance(exc, TimeoutError):
                from codexapi.errors import ReadTimeout

                raise ReadTimeout(f"no answer on the WebSocket {redact_url(self.url)} within "
                                  f"the read timeout", url=redact_url(self.url)) from None
            raise TransportError(f"the WebSocket {redact_url(self.url)} failed before the "
                                 f"turn's first event: {exc}", url=redact_url(self.url)
                                 ) from None
        except CodexApiError:
            self.close()
            raise
        first = payloads[0] if payloads else b""
        wrapped = _wrapped_error(first)
        if wrapped is not None:
            self.close()
            status, headers, body = wrapped
            return _ErrorResponse(status, headers, body, self.url)
        headers = {k: v for k in _TURN_HEADERS if (v := self.headers.get(k)) is not None}
        if not reused and "x-codex-turn-state" in self.headers:
            headers["x-codex-turn-state"] = self.headers["x-codex-turn-state"]
        self.sock.settimeout(idle)
        return _TurnResponse(self, pool, key, payloads, headers)

    def read_messages(self) -> list[bytes]:
        """The complete text messages of the next read (at least one), in order."""
        out: list[bytes] = []
        if self._pending is not None:
            error, self._pending = self._pending, None
            self.close()
            raise error
        self._parse(out)
        while not out:
            pending = [self._buf] if self._buf else []
            have = len(self._buf)
            while True:
                chunk = self.sock.recv(max(_READ, min(self._need - have, _BIG_READ)))
                if not chunk:
                    raise _Closed("the server closed the connection")
                pending.append(chunk)
                have += len(chunk)
                if have >= self._need:
                    break
            self._buf = b"".join(pending) if len(pending) > 1 else chunk
            self._parse(out)
        return out

    def _parse(self, out: list[bytes]) -> None:
        try:
            self._parse_frames(out)
        except (_Closed, StreamError) as exc:
            if not out:
                self.close()
                raise
            # The messages before it are delivered first; the next read raises it.
            self._pending = exc

    def _parse_frames(self, out: list[bytes]) -> None:
        buf = self._buf
        pos = 0
        end = len(buf)
        append = out.append
        limit = self.max_message
        try:
            while end - pos >= 2:
                b0 = buf[pos]
                n = buf[pos + 1]
                # The commonest frame by far: a whole, unmasked text frame under 64 KiB.
                if b0 == 0x81 and not self._parts:
                    if n < 126:
                        start = pos + 2
                    elif n == 126 and end - pos >= 4:
                        n = (buf[pos + 2] << 8) | buf[pos + 3]
                        start = pos + 4
                    else:
                        start = -1
                    if start >= 0 and n <= limit:  # else _frame refuses it
                        if end - start < n:
                            self._need = start - pos + n
                            break
                        pos = start + n
                        append(buf[start:pos])
                        continue
                self._need = 0
                pos = self._frame(buf, pos, end, out)
                if pos < 0:
                    pos = -pos - 1
                    break
            else:
                self._need = 0
        finally:
            self._buf = buf[pos:] if pos < end else b""

    def _frame(self, buf: bytes, pos: int, end: int, out: list[bytes]) -> int:
        """Any other frame at ``pos``: the position after it, or ``-pos - 1`` when it is not
        complete yet."""
        b0, b1 = buf[pos], buf[pos + 1]
        n = b1 & 0x7F
        head = 2
        if n == 126:
            if end - pos < 4:
                return -pos - 1
            n = (buf[pos + 2] << 8) | buf[pos + 3]
            head = 4
        elif n == 127:
            if end - pos < 10:
                return -pos - 1
            n = int.from_bytes(buf[pos + 2:pos + 10], "big")
            head = 10
        if b1 & 0x80 or b0 & 0x70:
            raise self._violation("a masked or extension-flagged frame from the server")
        if n > self.max_message:
            raise self._too_large(n)
        if end - pos < head + n:
            self._need = head + n
            return -pos - 1
        payload = buf[pos + head:pos + head + n]
        after = pos + head + n
        opcode = b0 & 0x0F
        if opcode == 1 or opcode == 0:
            if (opcode == 0) != bool(self._parts):
                raise self._violation("a continuation frame with nothing to continue"
                                      if opcode == 0 else "a new message inside a fragmented one")
            self._size += n
            if self._size > self.max_message:
                raise self._too_large(self._size)
            self._parts.append(payload)
            if b0 & 0x80:
                out.append(b"".join(self._parts))
                self._parts, self._size = [], 0
        elif opcode == 2:
            raise StreamError("the server sent a binary WebSocket frame; Responses events come "
                              "as JSON text frames", retryable=False)
        elif opcode == 9:
            self.protocol.send_pong(payload)
            self.sock.sendall(b"".join(self.protocol.data_to_send()))
        elif opcode == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            reason = payload[2:].decode("utf-8", "replace")
            raise _Closed(f"close code {code}" + (f" ({reason})" if reason else ""), code)
        elif opcode != 10:
            raise self._violation(f"a frame with unknown opcode {opcode}")
        return after

    def _too_large(self, size: int) -> ResponseTooLarge:
        self._parts, self._size = [], 0
        return ResponseTooLarge(
            f"a WebSocket message of {size} bytes or more from {redact_url(self.url)} passed "
            f"the bound of {self.max_message} bytes; raise Provider.max_message_bytes if the "
            "server's events really are this large", setting="max_message_bytes",
            limit=self.max_message)

    def _violation(self, what: str) -> StreamError:
        return StreamError(f"WebSocket protocol error from {redact_url(self.url)}: {what}",
                           retryable=False)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # closing must never raise
            self.protocol.send_close(1000)
            self.sock.settimeout(0.2)
            self.sock.sendall(b"".join(self.protocol.data_to_send()))
        with contextlib.suppress(OSError):
            self.sock.close()


class _Closed(Exception):
    """The server closed the connection or sent a close frame (internal)."""

    def __init__(self, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.code = code


def _create_frame(request: Any) -> bytes:
    body = request.body or b"{}"
    encoding = _header(request.headers, "content-encoding")
    if encoding == "zstd":
        from codexapi.http.compression import zstd_module

        zstd = zstd_module()
        if zstd is not None:
            body = zstd.decompress(body)
    body = bytes(body).strip()
    if body in (b"{}", b""):
        return b'{"type":"response.create"}'
    # The body's fields at the top level of the frame, without re-encoding them.
    return b'{"type":"response.create",' + body[1:]


def _wrapped_error(payload: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """``(status, headers, body)`` of a wrapped error frame, else None."""
    if b'"status' not in payload:
        return None
    try:
        obj = loads(payload)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "error":
        return None
    # ``status_code`` in the crate; ``status`` in some servers' (the embedded one's) frames.
    status = obj.get("status_code", obj.get("status"))
    if isinstance(status, bool) or not isinstance(status, int) or 200 <= status < 300 \
            or not 100 <= status <= 599:
        return None
    headers: dict[str, str] = {}
    raw = obj.get("headers")
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                headers[str(name).lower()] = str(value)
            elif isinstance(value, bool):
                headers[str(name).lower()] = "true" if value else "false"
    error = obj.get("error")
    from codexapi.convert import dumps

    body = dumps({"error": error}) if error is not None else b""
    return status, headers, body


class _Frames(bytes):
    """One read's text messages, handed to this wire's decoder as they are (``payloads``):
    no re-framing on the hot path. As bytes it is empty."""

    payloads: list[bytes]


def _frames(payloads: list[bytes]) -> _Frames:
    out = _Frames(b"")
    out.payloads = payloads
    return out


class FrameDecoder:
    """The Responses decoder behind either framing: the text messages of a WebSocket read,
    or SSE bytes (an HTTP fallback's body)."""

    __slots__ = ("_inner", "_sse", "feed_messages")

    def __init__(self, settings: Any = None) -> None:
        from codexapi.decoding import DecoderSettings
        from codexapi.sse import SseStreamDecoder

        from .wire_responses import message_decoder

        settings = settings if settings is not None else DecoderSettings()
        self._inner = message_decoder(settings)
        self._sse = SseStreamDecoder(self._inner, settings.max_message_bytes)
        self.feed_messages = self._inner.feed_data

    @property
    def done(self) -> bool:
        return self._inner.done

    @property
    def inner(self) -> Any:
        return self._inner

    @property
    def skipped(self) -> int:
        count: int = self._inner.skipped
        return count

    @property
    def position(self) -> Any:
        return self._inner.position

    @property
    def other_events(self) -> int:
        """The Responses decoder's count: every event of either framing is its."""
        count: int = self._inner.other_events
        return count

    def bound_messages(self, max_message: int) -> None:
        """An HTTP fallback's SSE messages are bounded as the frames are
        (``Provider.max_message_bytes``)."""
        self._sse.bound_messages(max_message)

    def feed_data(self, data: bytes) -> list[Any]:
        payloads = getattr(data, "payloads", None)
        if payloads is not None:
            return self.feed_messages(payloads)
        return self._sse.feed_data(data)

    def close(self) -> list[Any]:
        return self._sse.close()


class _TurnResponse:
    """One turn's frames, as the byte stream the Responses decoder reads."""

    status = 200

    def __init__(self, conn: _Connection, pool: _Pool, key: str, first: list[bytes],
                 headers: dict[str, str]) -> None:
        self._conn = conn
        self._pool = pool
        self._key = key
        self._first = first
        self.headers = headers
        self.url = conn.url
        self._done = False

    def iter_bytes(self) -> Iterator[bytes]:
        conn = self._conn
        payloads = self._first
        self._first = []
        while True:
            for i, p in enumerate(payloads):
                if b'"status' in p:
                    wrapped = _wrapped_error(p)
                    if wrapped is not None:
                        if i:
                            yield _frames(payloads[:i])
                        self.close()
                        raise _typed(wrapped, conn.url)
            yield _frames(payloads)
            try:
                payloads = conn.read_messages()
            except _Closed as exc:
                raise StreamDropped(f"the WebSocket closed before response.completed: {exc}",
                                    retryable=exc.code in (None, 1000, 1001, 1006, 1011, 1012,
                                                         1013)) from None
            except TimeoutError:
                conn.close()
                from codexapi.errors import ReadTimeout

                raise ReadTimeout(f"no WebSocket frame from {redact_url(conn.url)} for the "
                                  "stream idle timeout; the connection was closed",
                                  url=redact_url(conn.url)) from None
            except OSError as exc:
                conn.close()
                raise TransportError(f"the WebSocket connection to {redact_url(conn.url)} "
                                     f"failed: {exc}", url=redact_url(conn.url)) from None

    def read(self) -> bytes:
        try:
            return b"".join(self.iter_bytes())
        finally:
            self.close()

    def drain(self) -> None:
        # The turn is complete: the connection is clean for the next one.
        if not self._done and not self._conn.closed:
            self._done = True
            self._pool.give_back(self._conn, self._key)

    def close(self) -> None:
        if not self._done:
            # Frames of an unfinished turn would reach the next one: drop the connection.
            self._done = True
            self._conn.close()


def _typed(wrapped: tuple[int, dict[str, str], bytes], url: str) -> CodexApiError:
    from codexapi import error_mapping
    from codexapi.ratelimits import retry_after_seconds

    status, headers, body = wrapped
    text = body.decode("utf-8", "replace")
    message = f"HTTP {status} in a WebSocket error frame"
    try:
        error = loads(body).get("error") if body else None
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
        message = error["message"]
    code = error.get("code") if isinstance(error, dict) else None
    base = ApiError(status, message, text, request_id=error_mapping.request_id(headers),
                    url=redact_url(url), code=code if isinstance(code, str) else None,
                    retry_after=retry_after_seconds(headers), headers=headers)
    return error_mapping.http_error(base)


class _ErrorResponse:
    """A wrapped error frame as the HTTP answer it stands for."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, url: str) -> None:
        self.status = status
        self.headers = {**headers, "content-type": "application/json"}
        self._body = body
        self.url = url

    def iter_bytes(self) -> Iterator[bytes]:
        if self._body:
            yield self._body

    def read(self) -> bytes:
        return self._body

    def drain(self) -> None:
        pass

    def close(self) -> None:
        pass


__all__ = ["NAME", "OPENAI_BETA", "WIRE", "ResponsesWebSocketWire",
           "websocket_url"]
