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
import importlib
import itertools
import json
import re
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..threads import start_daemon
from . import responses_wire
from .background import Context, ResponseStore
from .faults import FaultInjector, StreamFaults
from .model import ScriptedModel

#: The largest request body read (413 beyond it): what the server holds per request.
MAX_BODY = 32 * 1024 * 1024
#: Requests remembered in ``requests_seen`` (for tests) before the oldest are forgotten.
MAX_REQUESTS_SEEN = 10_000


class RequestLog(list[tuple[str, str, dict[str, str], Any]]):
    """A list (tests compare it to lists) keeping only the last MAX_REQUESTS_SEEN entries."""

    def append(self, entry: tuple[str, str, dict[str, str], Any]) -> None:
        super().append(entry)
        if len(self) > MAX_REQUESTS_SEEN:
            del self[: len(self) - MAX_REQUESTS_SEEN]


class BodyEncodingError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_body(raw: bytes, encoding: str) -> bytes:
    """A request body sent with ``Content-Encoding`` (gzip, deflate, or zstd when a zstd
    module is installed), decompressed to at most :data:`MAX_BODY` bytes."""
    import zlib

    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 31 if "gzip" in encoding else 15
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(raw, MAX_BODY + 1)
        except zlib.error as exc:
            raise BodyEncodingError(400, f"the {encoding} request body does not decode: "
                                    f"{exc}") from None
    elif encoding == "zstd":
        try:
            # Optional, and untyped when present: looked up at run time.
            zstandard: Any = importlib.import_module("zstandard")
        except ImportError:
            raise BodyEncodingError(415, "zstd request bodies need the `zstandard` package "
                                    "on the server") from None
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            out = reader.read(MAX_BODY + 1)
        except zstandard.ZstdError as exc:
            raise BodyEncodingError(400, f"the zstd request body does not decode: {exc}"
                                    ) from None
    else:
        raise BodyEncodingError(415, f"unsupported Content-Encoding {encoding!r} (gzip, "
                                "deflate or zstd)")
    if len(out) > MAX_BODY:
        raise BodyEncodingError(413, f"the decoded request body is over {MAX_BODY} bytes")
    return out


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

    def recall(self, rid: str) -> Context | None:
        """What response ``rid`` saw and said, for a request continuing from it."""
        stored = self.server.store.get(rid)
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


_request_ids = itertools.count(1)

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

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        if path.startswith("/v1/") or path == "/v1":
            path = path[3:] or "/"
        ex = Exchange(self, path, parse_qs(parts.query), None)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            ex.send_error(413 if length > 0 else 400,
                          f"request body must be 0..{MAX_BODY} bytes (Content-Length)",
                          "invalid_body")
            return
        raw = self.rfile.read(length) if length else b""
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if raw and encoding not in ("", "identity"):
            try:
                raw = decode_body(raw, encoding)
            except BodyEncodingError as exc:
                ex.send_error(exc.status, str(exc), "invalid_body")
                return
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                ex.send_error(400, "request body is not valid JSON", "invalid_json")
                return
        ex.body, ex.body_size = body, len(raw)
        responder = ex.server.responder
        seen = (self.command, path, dict(self.headers.items()), body)
        recorded = False
        if responder is not None:
            # Logged before answering, as the routes below are: a client that already has its
            # answer must find its request in the log.
            ex.server.requests_seen.append(seen)
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
                ex.server.requests_seen.append(seen)
            if self._authorized(ex):
                serve(self, ex)
            return
        if fn is None:
            status = HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND
            ex.send_error(status, f"no route for {self.command} {parts.path}", "not_found")
            return
        if not recorded:
            ex.server.requests_seen.append(seen)
        if not self._authorized(ex):
            return
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
        # Like OpenAI's: clients log it and quote it in errors.
        self.send_header("x-request-id", f"req_{next(_request_ids):012d}")

    def _authorized(self, ex: Exchange) -> bool:
        """With ``api_keys`` set, a request without one of them gets OpenAI's 401."""
        keys = ex.server.api_keys
        if keys is None:
            return True
        bearer = self.headers.get("Authorization", "")
        sent = (bearer[7:].strip() if bearer[:7].lower() == "bearer "
                else self.headers.get("api-key", "").strip())
        if sent in keys:
            return True
        if not sent:
            ex.send_error(401, "You didn't provide an API key. You need to provide your API key "
                          "in an Authorization header using Bearer auth (i.e. Authorization: "
                          "Bearer YOUR_KEY).")
        else:
            shown = f"{sent[:3]}{'*' * (len(sent) - 7)}{sent[-4:]}" if len(sent) > 10 else "****"
            ex.send_error(401, f"Incorrect API key provided: {shown}.", "invalid_api_key")
        return False


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
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 model: ScriptedModel | None = None, verbose: bool = False, *,
                 api_keys: Iterable[str] | None = None,
                 ssl_context: ssl.SSLContext | None = None, certfile: str | None = None,
                 keyfile: str | None = None, faults: str | Iterable[str] | None = None,
                 background_interval: float = 0.0) -> None:
        injector = FaultInjector(faults)  # a bad plan fails before the port is bound
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
