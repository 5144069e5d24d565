"""The embedded OpenAI-compatible HTTP server (stdlib ``http.server``, one thread per connection).

HTTP/1.1 with keep-alive; streams are sent with chunked transfer encoding and flushed per
event, so clients see each event when it is produced. Routes are looked up in :data:`ROUTES`
by method and path (with or without the ``/v1`` prefix); a path may hold ``{name}`` segments,
found in :attr:`Exchange.params`. ``GET /v1/responses`` with ``Upgrade: websocket`` is handed
to :mod:`.websocket` (through :data:`UPGRADES`) on the same port.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..http.compression import (
    DECODABLE_ENCODINGS,
    DecodedTooLarge,
    UndecodableBody,
    decompress,
    zstd_module,
)
from ..threads import start_daemon
from . import responses_wire
from .background import Context, ResponseStore, StoredResponse
from .faults import FaultInjector, StreamFaults
from .framing import RequestError, body_length, check_fields, parse_json, read_body
from .model import ScriptedModel
from .responses_wire import new_id

if TYPE_CHECKING:
    from .script import Script

#: The largest request body read (413 beyond it): what the server holds per request.
MAX_BODY = 32 * 1024 * 1024
#: Requests remembered in ``requests_seen`` (for tests) before the oldest are forgotten.
MAX_REQUESTS_SEEN = 10_000
#: Bytes of requests (bodies as received, and headers) remembered in ``requests_seen``.
MAX_REQUESTS_SEEN_BYTES = 64 * 1024 * 1024
#: Seconds a refused request's body may take to be read and dropped (see _discard_body).
DISCARD_SECONDS = 5.0

LogEntry = tuple[str, str, dict[str, str], Any]


class RequestLog(list[LogEntry]):
    """A list (tests compare it to lists) keeping only the last :attr:`max_entries` entries,
    and only as many of those as fit :attr:`max_bytes` (the newest is always kept)."""

    def __init__(self, max_entries: int = MAX_REQUESTS_SEEN,
                 max_bytes: int = MAX_REQUESTS_SEEN_BYTES) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        #: The size counted for each entry, oldest first, and their sum.
        self._sizes: collections.deque[int] = collections.deque()
        self.bytes = 0
        self._lock = threading.Lock()

    def append(self, entry: LogEntry, size: int = 0) -> None:
        """Keep ``entry``; ``size`` is its body's size in bytes (its headers are added)."""
        size += sum(len(k) + len(v) for k, v in entry[2].items())
        with self._lock:
            super().append(entry)
            self._sizes.append(size)
            self.bytes += size
            drop = 0
            while len(self) - drop > 1 and (len(self) - drop > self.max_entries
                                            or self.bytes > self.max_bytes):
                self.bytes -= self._sizes.popleft()
                drop += 1
            if drop:
                del self[:drop]

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self._sizes.clear()
            self.bytes = 0


def decode_body(raw: bytes, encoding: str) -> bytes:
    """A request body sent with ``Content-Encoding`` (gzip, deflate, or zstd when a zstd
    module is installed: the one the library compresses with), decompressed to at most
    :data:`MAX_BODY` bytes."""
    if encoding not in DECODABLE_ENCODINGS:
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r} (gzip, "
                           "deflate or zstd)")
    if encoding == "zstd" and zstd_module() is None:
        raise RequestError(415, "zstd request bodies need a zstd module on the server "
                           "(codexapi[zstd])")
    try:
        return decompress(raw, encoding, MAX_BODY)
    except DecodedTooLarge:
        raise RequestError(413, f"the decoded request body is over {MAX_BODY} bytes") from None
    except UndecodableBody as exc:
        raise RequestError(400, f"request: {exc}") from None


def reset_socket(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST (SO_LINGER with a zero timeout) instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Exchange:
    """One request being answered: parsed input, and the ways to answer it."""

    def __init__(self, handler: Handler, path: str, query: dict[str, list[str]],
                 body: Any) -> None:
        self.handler = handler
        self.path = path
        self.query = query
        self.body = body
        self.headers: Mapping[str, str] = handler.headers  # type: ignore[assignment]
        self.server: EmbeddedHTTPServer = handler.server  # type: ignore[assignment]
        self._chunked = False
        #: Injected faults acting on this stream's writes (see :mod:`.faults`).
        self.stream_faults: StreamFaults | None = None
        #: The ``{name}`` segments of the matched route's path.
        self.params: dict[str, str] = {}
        #: Headers added to whatever answer the route sends (a stream's or an error's).
        self.reply_headers: dict[str, str] = {}
        #: The request body's size in bytes (decoded): what a response chain's size counts.
        self.body_size = 0
        #: Who is asking (a digest of the request's key; None when the server takes any
        #: request): the responses it stores are visible to that key only.
        self.owner: str | None = handler.owner

    @property
    def wire(self) -> str:
        """``chat`` or ``responses``: the framing of this exchange's stream events."""
        return "chat" if self.path.endswith("chat/completions") else "responses"

    #: Whether the route must stream whatever the body's ``stream`` says (WebSocket turns).
    always_streams = False

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_bytes(status, data, "application/json", headers)

    def send_bytes(self, status: int, data: bytes, content_type: str,
                   headers: Mapping[str, str] | None = None) -> None:
        h = self.handler
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for k, v in {**self.reply_headers, **(headers or {})}.items():
            h.send_header(k, v)
        h.end_headers()
        if data and h.command != "HEAD":
            h.wfile.write(data)
        h.wfile.flush()

    def stored(self, rid: str) -> StoredResponse | None:
        """The stored response ``rid``, if there is one and it is this client's (with keys
        set, another key's response is as unknown as one never made)."""
        stored = self.server.store.get(rid)
        return stored if stored is not None and stored.owner == self.owner else None

    def recall(self, rid: str) -> Context | None:
        """What response ``rid`` saw and said, for a request continuing from it."""
        stored = self.stored(rid)
        return None if stored is None else stored.context()

    def remember(self, rid: str, context: Context, output: list[dict[str, Any]]) -> None:
        """Note the response just answered (a WebSocket keeps its connection's last one)."""

    def model_request(self) -> dict[str, Any] | None:
        """The JSON body of a model call, or None after answering 400 when it has no model."""
        body = self.body
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            self.send_error(400, "body must be a JSON object with a string `model`",
                            "invalid_body")
            return None
        return body

    def send_error(self, status: int, message: str, code: str | None = None,
                   err_type: str = "invalid_request_error",
                   headers: Mapping[str, str] | None = None, param: str | None = None) -> None:
        self.send_json(status, {"error": {"message": message, "type": err_type, "param": param,
                                          "code": code}}, headers)

    def start_stream(self, headers: Mapping[str, str] | None = None,
                     content_type: str = "text/event-stream; charset=utf-8") -> None:
        h = self.handler
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        headers = {**self.reply_headers, **(headers or {})}
        if self.stream_faults is not None:
            headers = {**headers, **self.stream_faults.extra_headers}
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        self._chunked = True

    def write(self, data: bytes) -> None:
        """Send one chunk (one SSE message) of a started stream, flushed at once."""
        if self.stream_faults is not None:
            self.stream_faults.write(self, data)
        else:
            self.write_chunk(data)

    def write_chunk(self, data: bytes) -> None:
        """Send one chunk as is, bypassing injected faults."""
        if data:
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.handler.wfile.flush()

    def end_stream(self) -> None:
        if self.stream_faults is not None and not self.stream_faults.end():
            return
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def stream_events(self, chunks: Iterable[bytes], headers: Mapping[str, str] | None = None,
                      ) -> None:
        self.start_stream(headers)
        for chunk in chunks:
            self.write(chunk)
        self.end_stream()

    # -- events, and the connection interface faults act on (.faults.Connection) --

    def send_event(self, event: Mapping[str, Any], final: bool = False) -> bool:
        """Send one event of a started stream; False once the stream is over (a fault ended
        it, or the client left), so the caller stops producing."""
        data = self.encode(event)
        if self.stream_faults is not None:
            self.stream_faults.write(self, data, final)
            return not self.stream_faults.finished
        self.send_message(data)
        return True

    def send_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Stream ``events`` (the last one being the completion) and end the stream."""
        self.start_stream()
        items = list(events)
        for i, event in enumerate(items):
            if not self.send_event(event, i == len(items) - 1):
                break
        self.end_stream()

    def encode(self, event: Mapping[str, Any]) -> bytes:
        if self.wire == "chat":
            return b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
        return responses_wire.sse(event)

    def malformed(self) -> bytes:
        if self.wire == "chat":
            return b'data: {"choices":[{"delta":{"content":"\n\n'
        return (b'event: response.output_text.delta\n'
                b'data: {"type":"response.output_text.delta","delta":"\n\n')

    def send_message(self, data: bytes) -> None:
        self.write_chunk(data)

    def drop(self) -> None:
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        self.handler.close_connection = True
        reset_socket(self.handler.connection)


Route = Callable[[Exchange], None]
ROUTES: dict[tuple[str, str], Route] = {}
#: Routes whose path has ``{name}`` segments: (method, compiled path, route).
_PATTERNS: list[tuple[str, re.Pattern[str], Route]] = []


def route(method: str, path: str) -> Callable[[Route], Route]:
    def register(fn: Route) -> Route:
        ROUTES[(method, path)] = fn
        if "{" in path:
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
            _PATTERNS.append((method, re.compile(regex + "$"), fn))
        return fn

    return register


#: ``GET <path>`` with ``Upgrade: websocket`` is handed to these (registered by .websocket).
UPGRADES: dict[str, Callable[[Handler, Exchange], None]] = {}


def find_route(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """(route, path params, whether any method has this path)."""
    fn = ROUTES.get((method, path))
    if fn is not None:
        return fn, {}, True
    known = any(p == path for _, p in ROUTES)
    for m, regex, candidate in _PATTERNS:
        match = regex.match(path)
        if match:
            if m == method:
                return candidate, match.groupdict(), True
            known = True
    return None, {}, known


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each event is its own small write: without TCP_NODELAY, Nagle holds it (and the final
    # chunked terminator) until the client's delayed ACK, ~40 ms later.
    disable_nagle_algorithm = True
    server_version = "codexapi-embedded"

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    #: Set by :meth:`parse_request` for each request it admits: its body's length in bytes
    #: (None: chunked), and who it is (a digest of its key; None when the server has none).
    body_length: int | None = 0
    owner: str | None = None

    def parse_request(self) -> bool:
        """http.server's reading of the request line and headers, then the gate every request
        passes before a responder (a cassette), a route or a WebSocket upgrade sees it, and
        before its body is read: unambiguous framing (RFC 9112 §6.3), and one of the server's
        keys when it has keys. Whatever answers requests, now or added later, sits behind it;
        a refused request leaves nothing behind (its body is never kept)."""
        if not super().parse_request():
            return False
        self.owner = None
        try:
            check_fields(self.headers.items(), self.headers.defects)
            self.body_length = body_length(
                self.headers.get_all("Transfer-Encoding") or [],
                self.headers.get_all("Content-Length") or [], self.request_version, MAX_BODY)
        except RequestError as exc:
            self._refuse(exc.status, str(exc), exc.code, close=True)
            return False
        waits = (self.headers.get("Expect", "").lower() == "100-continue"
                 and self.request_version >= "HTTP/1.1")
        refusal = self._key_refusal()
        if refusal is not None:
            pending = self.body_length != 0
            self._refuse(401, *refusal, close=pending)
            if pending and not waits:  # (a client waiting for a 100 sends no body)
                self._discard_body()
            return False
        if waits:
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()
        return True

    def handle_expect_100(self) -> bool:
        # Sent by parse_request once the request is admitted: a refused one gets no 100.
        return True

    def _refuse(self, status: int, message: str, code: str | None, close: bool) -> None:
        server: EmbeddedHTTPServer = self.server  # type: ignore[assignment]
        with server.lock:
            server.refused += 1
        if close:
            self.close_connection = True
        Exchange(self, "", {}, None).send_error(
            status, message, code, headers={"Connection": "close"} if close else None)

    def _discard_body(self) -> None:
        """Read and drop the body of a refused request (up to its declared length, for a few
        seconds at most), so that its client reads the answer instead of a reset; the
        connection closes after it."""
        left = self.body_length
        if left is None:  # chunked: not worth parsing only to drop it
            return
        deadline = time.monotonic() + DISCARD_SECONDS
        with contextlib.suppress(OSError, ValueError):
            self.connection.settimeout(DISCARD_SECONDS)
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        if path.startswith("/v1/") or path == "/v1":
            path = path[3:] or "/"
        ex = Exchange(self, path, parse_qs(parts.query), None)
        try:
            raw = read_body(self.rfile, self.body_length, MAX_BODY)
            encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
            if raw and encoding not in ("", "identity"):
                raw = decode_body(raw, encoding)
            body = parse_json(raw) if raw else None
        except RequestError as exc:
            if exc.close:
                self.close_connection = True
            ex.send_error(exc.status, str(exc), exc.code,
                          headers={"Connection": "close"} if exc.close else None)
            return
        ex.body, ex.body_size = body, len(raw)
        responder = ex.server.responder
        seen = (self.command, path, dict(self.headers.items()), body)
        recorded = False
        if responder is not None:
            # Logged before answering, as the routes below are: a client that already has its
            # answer must find its request in the log.
            ex.server.requests_seen.append(seen, len(raw))
            recorded = True
            try:
                # Injected faults act on recorded answers too (serve --cassette --fault ...).
                answered = ex.server.faults.intercept(ex) or responder(ex)
            except (BrokenPipeError, ConnectionResetError):
                answered = self.close_connection = True
            if answered:
                return
        upgrade = self.headers.get("Upgrade", "").lower() == "websocket"
        fn, ex.params, known = find_route(self.command, path)
        serve = UPGRADES.get(path) if upgrade and self.command == "GET" else None
        if serve is not None:
            if not recorded:
                ex.server.requests_seen.append(seen, len(raw))
            serve(self, ex)
            return
        if fn is None:
            status = HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND
            ex.send_error(status, f"no route for {self.command} {parts.path}", "not_found")
            return
        if not recorded:
            ex.server.requests_seen.append(seen, len(raw))
        try:
            # (With a responder, the faults were applied above already.)
            if responder is None and ex.server.faults.intercept(ex):
                return
            fn(ex)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _dispatch

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        # Like OpenAI's: clients log it and quote it in errors. Random like a response id:
        # a counter would tell any client how many requests the others made.
        self.send_header("x-request-id", new_id("req"))

    def _key_refusal(self) -> tuple[str, str | None] | None:
        """With ``api_keys`` set: None when the request sent one of them (noting who it is
        in :attr:`owner`), else OpenAI's 401 message and code."""
        keys = self.server.api_keys  # type: ignore[attr-defined]
        if keys is None:
            return None
        bearer = self.headers.get("Authorization", "")
        sent = (bearer[7:].strip() if bearer[:7].lower() == "bearer "
                else self.headers.get("api-key", "").strip())
        if sent in keys:
            self.owner = hashlib.sha256(sent.encode("utf-8", "surrogateescape")).hexdigest()
            return None
        if not sent:
            return ("You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY).", None)
        shown = f"{sent[:3]}{'*' * (len(sent) - 7)}{sent[-4:]}" if len(sent) > 10 else "****"
        return f"Incorrect API key provided: {shown}.", "invalid_api_key"


class EmbeddedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when many clients connect at
    # once (tests/core/test_concurrency.py: 16 threads sharing one Client).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], model: ScriptedModel | None = None,
                 verbose: bool = False) -> None:
        super().__init__(address, Handler)
        self.model = model or ScriptedModel()
        self.verbose = verbose
        #: (method, path, headers, body) of each routed request, for tests.
        self.requests_seen: RequestLog = RequestLog()
        #: Requests refused before routing (no key, ambiguous framing): only counted.
        self.refused = 0
        self.lock = threading.Lock()
        #: Answers requests before ROUTES do (a cassette being served); returns False to let
        #: the routes answer.
        self.responder: Callable[[Exchange], bool] | None = None
        #: Accepted keys (``Authorization: Bearer`` or ``api-key``); None accepts anything.
        self.api_keys: set[str] | None = None
        #: Serve HTTPS with this context (None: plain HTTP).
        self.ssl_context: ssl.SSLContext | None = None
        #: Injected faults: the server's own plan, and per-request ones (see :mod:`.faults`).
        self.faults = FaultInjector()
        #: TCP connections accepted so far (tests check that clients reuse them).
        self.connections_accepted = 0
        #: Stored and background responses (``GET /v1/responses/{id}``), bounded.
        self.store = ResponseStore()
        #: Seconds between the events of a background response as it generates (0: at once).
        self.background_interval = 0.0
        #: ``x-codex-turn-state`` values clients echoed back, oldest first (bounded).
        self.turn_states_echoed: collections.deque[str] = collections.deque(maxlen=1000)

    def server_bind(self) -> None:
        # HTTPServer's own looks the address up (socket.getfqdn: a reverse DNS query and the
        # idna codec, 2-10 ms of every start) for a server_name nothing here reads.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections_accepted += 1  # only the accept loop's thread gets here
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client resetting a kept-alive connection (it gave up on an injected stall, say)
        # is normal traffic, not a server fault worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # rejects our certificate (or stalls) never blocks the accept loop.
        request.settimeout(10)
        try:
            tls = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            tls.settimeout(None)
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class EmbeddedServer:
    """An OpenAI-compatible server on 127.0.0.1, in a background thread.

        with EmbeddedServer() as server:
            Client(Provider(base_url=server.base_url))...

    ``script``: rules the scripted model answers by (a YAML or JSON file, or the same
    structure as a mapping; see :mod:`codexapi.server.script`); a bad one is a ConfigError.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 model: ScriptedModel | None = None, verbose: bool = False, *,
                 api_keys: Iterable[str] | None = None,
                 ssl_context: ssl.SSLContext | None = None, certfile: str | None = None,
                 keyfile: str | None = None, faults: str | Iterable[str] | None = None,
                 background_interval: float = 0.0,
                 script: str | os.PathLike[str] | Mapping[str, Any] | Script | None = None,
                 ) -> None:
        injector = FaultInjector(faults)  # a bad plan fails before the port is bound
        if script is not None:
            from .script import Script as Rules

            model = model or ScriptedModel()
            model.script = Rules.load(script)  # so does a bad script (a ConfigError)
        self.httpd = EmbeddedHTTPServer((host, port), model, verbose)
        self.httpd.faults = injector
        self.httpd.background_interval = background_interval
        if ssl_context is None and certfile is not None:
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(certfile, keyfile)
        self.httpd.ssl_context = ssl_context
        self.api_keys = api_keys
        self._thread: threading.Thread | None = None

    @property
    def api_keys(self) -> set[str] | None:
        """Keys the server accepts; None (the default) requires no auth. Assignable."""
        return self.httpd.api_keys

    @api_keys.setter
    def api_keys(self, keys: Iterable[str] | None) -> None:
        self.httpd.api_keys = None if keys is None else set(keys)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def host(self) -> str:
        return str(self.httpd.server_address[0])

    @property
    def base_url(self) -> str:
        scheme = "https" if self.httpd.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> RequestLog:
        """(method, path, headers, body) of the requests routed so far (the last 10,000);
        WebSocket turns appear as method ``WS``."""
        return self.httpd.requests_seen

    def start(self) -> EmbeddedServer:
        if self._thread is None:
            # Its request threads inherit the server thread's blocked signals.
            self._thread = start_daemon(self.httpd.serve_forever, "codexapi-server",
                                        poll_interval=0.05)
        return self

    @property
    def faults(self) -> FaultInjector:
        """The fault injector: the server's plan, counts, and a log of what faults did."""
        return self.httpd.faults

    def stop(self) -> None:
        self.httpd.faults.stopping.set()  # ends injected stalls, WebSocket sessions, followers
        self.httpd.store.close()
        if self._thread is not None:
            self._shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def _shutdown(self) -> None:
        # serve_forever sees shutdown() when its poll next wakes, up to poll_interval later
        # (half of it on average, on every stop): a connection of our own wakes it at once.
        stopping = start_daemon(self.httpd.shutdown, "codexapi-server-stop")
        while stopping.is_alive():
            with contextlib.suppress(OSError), socket.create_connection(
                    (self.host, self.port), timeout=0.5):
                pass
            stopping.join(0.01)

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
