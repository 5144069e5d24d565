"""A recording proxy: ``codexapi serve --record FILE --upstream URL``.

Every request the embedded server gets, HTTP or WebSocket, is sent to the upstream, and the
answer goes back to the client as it arrives: each chunk of a body is written on as soon as
the upstream has sent it, each WebSocket frame as soon as it is received. Each exchange is
then added to a cassette (vcrpy's layout, as :mod:`.storage` writes it), scrubbed by the same
rule as the pytest plugin (:class:`.scrub.Scrubber`), which ``serve --cassette FILE``
replays and the pytest plugin loads:

- an HTTP exchange is one interaction; a body the upstream cut short is kept as far as it
  came with ``failure: drop``, an upstream that could not be reached at all is recorded as
  ``failure: reset`` (status 502), and the client sees the same: the connection dropped, or
  reset before any answer;
- a WebSocket turn (one ``response.create`` and the frames answering it, up to its terminal
  event) is one interaction with a ``ws://`` or ``wss://`` URI, the frame as request body,
  status 101 with the upstream's upgrade headers, and the frames as SSE ``data:`` messages;
  an upgrade the upstream refused is an interaction with its status and body; a turn the
  upstream's close cut short has ``failure: drop``.

Each exchange is appended to the file as it ends (:class:`CassetteLog`: one write of its own
YAML, an item of the ``interactions`` list), so a proxy stopped between two writes leaves a
loadable cassette of what it saw, and a recording costs what is new, not the whole file again.
What the recorder keeps in memory is the exchanges in flight (each body up to
:data:`MAX_RECORDED_BODY`) and, briefly, the few exchanges written after one whose end event
was written before its body ended (see :class:`CassetteLog`); never the cassette. JSON request
bodies are sent upstream re-encoded compactly (the server parses them to route them), as the
Codex CLI and the SDKs send them.
"""

from __future__ import annotations

import contextlib
import http
import json
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from ..errors import ConfigError, TransportError
from ..http.tls import make_ssl_context
from ..http.transport import HttpRequest
from ..http.urllib3_transport import Urllib3Transport
from ..redact import redact_url
from .scrub import Scrubber
from .storage import Persister, dump_cassette

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection
    from websockets.sync.connection import Connection

    from ..server import EmbeddedServer
    from ..server.app import Exchange

#: Request headers that belong to one hop (or that the proxy sets itself), not to the exchange.
HOP_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
    "accept-encoding", "content-encoding",
    "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
    "sec-websocket-accept", "sec-websocket-protocol",
})
#: Encodings the recorder can store decoded (urllib3 decodes them on the way through).
ACCEPTED_ENCODINGS = "gzip, deflate"
#: Frames that end a WebSocket turn.
TERMINAL_FRAMES = frozenset({"response.completed", "response.failed", "response.incomplete",
                             "response.done", "error"})
#: A stream's last event (Responses terminal events, Chat's ``[DONE]``).
_STREAM_END = re.compile(rb'"type":\s*"response\.(?:completed|failed|incomplete)"'
                         rb"|^data: \[DONE\]", re.MULTILINE)
#: The most body bytes kept for the cassette per exchange; the client still gets all of it.
MAX_RECORDED_BODY = 64 * 1024 * 1024
#: Exchanges (and their bytes) the cassette keeps in memory to write again after one written
#: before its body ended (see CassetteLog); past either bound that one stays as first written.
MAX_REWRITE = 64
MAX_REWRITE_BYTES = 16 * 1024 * 1024


@attrs.define
class _Request:
    """A request as :class:`.scrub.Scrubber` and :mod:`.storage` read one (vcrpy's shape)."""

    method: str
    uri: str
    headers: dict[str, Any]
    body: bytes | None


def _forwarded(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        if name.lower() not in HOP_HEADERS:
            out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _frame_type(frame: str | bytes) -> str:
    try:
        data = json.loads(frame)
    except ValueError:
        return ""
    kind = data.get("type") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else ""


def frames_body(frames: Iterable[str]) -> bytes:
    """Frames as SSE ``data:`` messages (one per frame; a frame with line breaks spans
    several ``data:`` lines, as SSE joins them back)."""
    out = []
    for frame in frames:
        out.append("".join(f"data: {line}\n" for line in frame.split("\n")) + "\n")
    return "".join(out).encode("utf-8")


@attrs.define(eq=False)
class _Entry:
    """An exchange's place in the cassette file; ``open`` until its body ended."""

    offset: int
    text: bytes
    open: bool


class CassetteLog:
    """A cassette file written one exchange at a time: each is appended as an item of the
    ``interactions`` list (the YAML :func:`.storage.dump_cassette` writes for it alone), so
    writing costs what is new and the file is a vcrpy cassette after every write.

    An exchange may be written before its body has ended (its end event must be on disk before
    the client sees it) and again once it has (bytes after the end event, a drop): then it and
    the ones appended after it are written again in place. Those are the only exchanges kept
    in memory, from the oldest such exchange on, while it lasts: at most :data:`MAX_REWRITE` of
    them and :data:`MAX_REWRITE_BYTES`; past either, the oldest stays as it was first written
    (complete up to its end event). Not thread-safe: the Recorder holds its lock around it."""

    #: What precedes the first item (the empty cassette says ``interactions: []`` instead).
    HEAD = b"version: 1\ninteractions:\n"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        #: Bytes written to the file in all, for the curious and the tests.
        self.written = 0
        self._end = 0
        #: From the oldest open entry on, in file order; empty when none is open.
        self._tail: list[_Entry] = []
        self._tail_bytes = 0
        try:
            Persister.save_cassette(path, {"requests": [], "responses": []})
        except OSError as exc:
            raise self._error(exc) from None
        self._end = path.stat().st_size

    @property
    def held(self) -> int:
        """Exchanges kept in memory to be written again (0 once every body has ended)."""
        return len(self._tail)

    def _error(self, exc: OSError) -> ConfigError:
        return ConfigError(f"cannot write the cassette {self.path}: {exc.strerror or exc}")

    def _write(self, offset: int, data: bytes) -> None:
        """``data`` at ``offset``, the file ending after it; on failure the file is cut back
        to what it was (a loadable cassette)."""
        end = self._end
        try:
            with self.path.open("r+b") as fh:
                fh.seek(offset)
                try:
                    fh.write(data)
                    fh.truncate(offset + len(data))
                    fh.flush()
                except OSError:
                    with contextlib.suppress(OSError):
                        fh.truncate(end)
                    raise
        except OSError as exc:
            raise self._error(exc) from None
        self.written += len(data)
        self._end = offset + len(data)

    @classmethod
    def item(cls, request: Any, response: dict[str, Any]) -> bytes:
        """One exchange as an item of the ``interactions`` list."""
        text = dump_cassette([request], [response]).encode("utf-8")
        if not text.startswith(cls.HEAD):
            raise AssertionError("dump_cassette no longer ends with the interactions list")
        # A document that ends in a block scalar keeping its final line breaks (``|+``) is
        # closed with "...": inside the list, the next item ends that scalar as well.
        return text[len(cls.HEAD):].removesuffix(b"...\n")

    def append(self, text: bytes, open: bool = False) -> _Entry:
        """Write an exchange after the others; ``open``: it will be written again
        (:meth:`finish`)."""
        if self.count:
            entry = _Entry(self._end, text, open)
            self._write(self._end, text)
        else:  # the first replaces the empty list
            entry = _Entry(len(self.HEAD), text, open)
            self._write(0, self.HEAD + text)
        self.count += 1
        if self._tail or open:
            self._tail.append(entry)
            self._tail_bytes += len(text)
            while len(self._tail) > 1 and (len(self._tail) > MAX_REWRITE
                                           or self._tail_bytes > MAX_REWRITE_BYTES):
                self._tail[0].open = False  # stays as first written
                self._settle()
        return entry

    def finish(self, entry: _Entry, text: bytes | None) -> None:
        """The open exchange ``entry`` as it ended (None: as it was written)."""
        if not entry.open:
            return  # let go of (MAX_REWRITE): it stays as first written
        entry.open = False
        if text is not None and text != entry.text:
            at = next(i for i, e in enumerate(self._tail) if e is entry)
            self._tail_bytes += len(text) - len(entry.text)
            entry.text = text
            offset = entry.offset
            for later in self._tail[at:]:
                later.offset = offset
                offset += len(later.text)
            self._write(entry.offset, b"".join(e.text for e in self._tail[at:]))
        self._settle()

    def _settle(self) -> None:
        # Entries before the oldest open one are never written again.
        while self._tail and not self._tail[0].open:
            self._tail_bytes -= len(self._tail.pop(0).text)


class Recorder:
    """The embedded server's responder while recording (``server.httpd.responder``)."""

    def __init__(self, path: str | Path, upstream: str, *, scrub_headers: Iterable[str] = (),
                 connect_timeout: float = 10.0, read_timeout: float = 600.0,
                 transport: Urllib3Transport | None = None) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--upstream {redact_url(upstream)!r} is not an http:// or "
                              "https:// URL (such as https://api.openai.com/v1)")
        self.path = Path(path)
        self.upstream = upstream.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.scrubber = Scrubber(scrub_headers)
        self._transport = transport or Urllib3Transport()
        self._lock = threading.Lock()
        # An unwritable path fails now, not after the first exchange.
        self.cassette = CassetteLog(self.path)

    def __repr__(self) -> str:
        return f"Recorder({str(self.path)!r}, upstream={redact_url(self.upstream)!r})"

    @property
    def recorded(self) -> int:
        """Exchanges written to the cassette so far."""
        with self._lock:
            return self.cassette.count

    def target(self, path: str, websocket: bool = False) -> str:
        """The upstream URL for a request path (``/v1`` prefix optional, query kept)."""
        parts = urlsplit(path)
        rest = parts.path
        if rest == "/v1" or rest.startswith("/v1/"):
            rest = rest[3:]
        url = self.upstream + rest + (f"?{parts.query}" if parts.query else "")
        if websocket:
            url = "ws" + url[4:] if url.startswith("http") else url
        return url

    def close(self) -> None:
        self._transport.close()

    def __call__(self, ex: Exchange) -> bool:
        handler = ex.handler
        if handler.headers.get("Upgrade", "").lower() == "websocket" and \
                handler.command == "GET":
            self._websocket(ex)
        else:
            self._http(ex)
        return True

    # -- recording --------------------------------------------------------------------------

    def _record(self, request: _Request, status: int, headers: Iterable[tuple[str, str]],
                body: bytes, failure: str = "", replace: _Entry | None = None,
                more: bool = False) -> _Entry:
        """Write one exchange to the cassette, or ``replace`` one written before its end;
        ``more``: it will be (its body has not ended)."""
        header_lists: dict[str, list[str]] = {}
        for name, value in headers:
            header_lists.setdefault(name, []).append(value)
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        with self._lock:
            clean = self.scrubber.request(request)
            response = self.scrubber.response({
                "status": {"code": status, "message": reason}, "headers": header_lists,
                "body": {"string": body}})
            if failure:
                response["failure"] = failure
            text = self.cassette.item(clean, response)
            if replace is None:
                return self.cassette.append(text, open=more)
            self.cassette.finish(replace, text)
            return replace

    # -- HTTP ---------------------------------------------------------------------------------

    def _http(self, ex: Exchange) -> None:
        handler = ex.handler
        body = None if ex.body is None else json.dumps(
            ex.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = _forwarded(handler.headers.items())
        headers["Accept-Encoding"] = ACCEPTED_ENCODINGS
        url = self.target(handler.path)
        # What is recorded is what went upstream (no hop headers: Host, framing, upgrade).
        request = _Request(handler.command, url, dict(headers), body)
        try:
            upstream = self._transport.send(HttpRequest(
                handler.command, url, headers, body,
                timeout=(self.connect_timeout, self.read_timeout, self.read_timeout)))
        except TransportError as exc:
            self._record(request, 502, [("Content-Type", "application/json")], json.dumps(
                {"error": {"message": f"upstream unreachable: {exc}", "type": "proxy_error",
                           "code": "upstream_unreachable", "param": None}}).encode(),
                failure="reset")
            ex.reset()
            return
        try:
            self._relay(ex, request, upstream)
        finally:
            upstream.close()

    def _relay(self, ex: Exchange, request: _Request, upstream: Any) -> None:
        handler = ex.handler
        reply_headers = [(k, v) for k, v in upstream.headers.items()
                         if k.lower() not in HOP_HEADERS]
        # send_response_only: the upstream's head as it was (its request id, date, server).
        handler.send_response_only(upstream.status)
        for name, value in reply_headers:
            handler.send_header(name, value)
        bodiless = handler.command == "HEAD" or upstream.status in (204, 304)
        if bodiless:
            handler.send_header("Content-Length", "0")
        else:
            handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()
        kept: list[bytes] = []
        size = 0
        failure = ""
        entry: _Entry | None = None
        recorded = 0  # body bytes in the entry written at the end event
        tail = b""
        if not bodiless:
            try:
                for chunk in upstream.iter_bytes():
                    if size + len(chunk) <= MAX_RECORDED_BODY:
                        kept.append(chunk)
                        size += len(chunk)
                    if entry is None and _STREAM_END.search(tail + chunk):
                        # Written before the client can see the end: a client that stops
                        # (and a test that reads the cassette) once it has its answer finds
                        # the exchange in the file.
                        entry = self._record(request, upstream.status, reply_headers,
                                             b"".join(kept), more=True)
                        recorded = size
                    tail = chunk[-64:]
                    ex.write_chunk(chunk)  # on at once: the client sees what the upstream sent
            except TransportError:
                failure = "drop"  # the upstream cut the body: so is the client's
            except OSError:
                failure = "drop"  # the client left
        if entry is not None and not failure and recorded == size:
            with self._lock:
                self.cassette.finish(entry, None)  # written as it ended
        else:
            self._record(request, upstream.status, reply_headers, b"".join(kept), failure,
                         entry)
        if bodiless:
            return
        if failure:
            ex.drop()
        else:
            with contextlib.suppress(OSError):
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()

    # -- WebSocket ------------------------------------------------------------------------

    def _websocket(self, ex: Exchange) -> None:
        from websockets.exceptions import InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        from ..server.websocket import MAX_FRAME, accept

        handler = ex.handler
        url = self.target(handler.path, websocket=True)
        upgrade_headers = _forwarded(handler.headers.items())
        options: dict[str, Any] = {}
        if url.startswith("wss://"):
            # The CA bundle the HTTP side trusts (CODEX_CA_CERTIFICATE, ...), if one is set.
            context = make_ssl_context()
            if context is not None:
                options["ssl"] = context
        stack = contextlib.ExitStack()
        try:
            # Entered as a context manager: how websockets >= 17 wants a connection opened.
            upstream = stack.enter_context(connect(
                url, additional_headers=upgrade_headers, open_timeout=self.connect_timeout,
                max_size=MAX_FRAME, ping_interval=None, close_timeout=2, **options))
        except InvalidStatus as exc:
            answer = exc.response
            headers = [(k, v) for k, v in answer.headers.raw_items()
                       if k.lower() not in HOP_HEADERS]
            refused = bytes(answer.body or b"")
            # Written before the client hears the refusal, as every exchange is.
            self._record(_Request("GET", url, upgrade_headers, None), answer.status_code,
                         headers, refused)
            accept(handler, ex, refuse=(answer.status_code, dict(headers), refused))
            return
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self._record(_Request("GET", url, upgrade_headers, None), 502,
                         [("Content-Type", "application/json")], json.dumps(
                             {"error": {"message": f"upstream unreachable: {exc}",
                                        "type": "proxy_error", "param": None,
                                        "code": "upstream_unreachable"}}).encode(),
                         failure="reset")
            ex.reset()
            return
        with stack:
            assert upstream.response is not None  # the handshake succeeded
            answer_headers = [(k, v) for k, v in upstream.response.headers.raw_items()
                              if k.lower() not in HOP_HEADERS]
            conn = accept(handler, ex, headers=dict(answer_headers))
            if conn is not None:
                _Relay(self, ex, conn, upstream, url, upgrade_headers, answer_headers).run()


class _Relay:
    """Frames both ways between a client and the upstream, turns recorded as they end."""

    def __init__(self, recorder: Recorder, ex: Exchange, client: Connection,
                 upstream: ClientConnection, url: str, upgrade_headers: dict[str, str],
                 answer_headers: list[tuple[str, str]]) -> None:
        self.recorder = recorder
        self.stopping = ex.server.faults.stopping
        self.client = client
        self.upstream = upstream
        self.url = url
        self.upgrade_headers = upgrade_headers
        self.answer_headers = answer_headers
        self.lock = threading.Lock()
        #: Turns sent upstream and not ended yet, oldest first.
        self.pending: list[_Turn] = []
        self.client_gone = threading.Event()

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

        reader = threading.Thread(target=self._from_client, name="codexapi-record-ws",
                                  daemon=True)
        reader.start()
        clean = False
        try:
            while not self.stopping.is_set() and not self.client_gone.is_set():
                try:
                    frame = self.upstream.recv(timeout=0.25)
                except TimeoutError:
                    continue
                except ConnectionClosedOK:
                    clean = True
                    break
                except ConnectionClosed:
                    break
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                # A turn's last frame is recorded before the client sees it (see _relay).
                self._seen(text)
                try:
                    self.client.send(frame)
                except ConnectionClosed:
                    self.client_gone.set()
        finally:
            with self.lock:
                cut, self.pending = self.pending, []
            for turn in cut:  # the connection ended inside these turns
                self._record(turn, "drop")
            if not self.client_gone.is_set():
                if clean:
                    with contextlib.suppress(Exception):
                        self.client.close()
                else:
                    # The upstream vanished without a close frame: so does this end.
                    with contextlib.suppress(OSError):
                        self.client.socket.shutdown(2)
            with contextlib.suppress(Exception):
                self.upstream.close()
            self.client_gone.set()
            reader.join(timeout=5)
            with contextlib.suppress(Exception):
                self.client.close()

    def _from_client(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while not self.stopping.is_set() and not self.client_gone.is_set():
                try:
                    frame = self.client.recv(timeout=0.25)
                except TimeoutError:
                    continue
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                if _frame_type(text) == "response.create":
                    with self.lock:
                        self.pending.append(_Turn(text))
                self.upstream.send(frame)
        except ConnectionClosed:
            pass
        finally:
            self.client_gone.set()
            with contextlib.suppress(Exception):
                self.upstream.close()

    def _seen(self, frame: str) -> None:
        ended = None
        with self.lock:
            if not self.pending:
                return  # a frame outside any turn: passed on, not part of a recording
            turn = self.pending[0]
            last = _frame_type(frame) in TERMINAL_FRAMES
            if turn.size + len(frame) <= MAX_RECORDED_BODY or last:
                # (Past the bound only the turn's end is still kept.)
                turn.frames.append(frame)
                turn.size += len(frame)
            if last:
                ended = self.pending.pop(0)
        if ended is not None:
            self._record(ended)

    def _record(self, turn: _Turn, failure: str = "") -> None:
        self.recorder._record(
            _Request("GET", self.url, self.upgrade_headers, turn.request.encode("utf-8")),
            101, self.answer_headers, frames_body(turn.frames), failure)


@attrs.define
class _Turn:
    """A WebSocket turn being recorded: its ``response.create`` frame, the answer so far."""

    request: str
    frames: list[str] = attrs.Factory(list)
    size: int = 0


def record_server(path: str | Path, upstream: str, host: str = "127.0.0.1", port: int = 0,
                  **options: Any) -> EmbeddedServer:
    """An embedded server (not yet started) recording what ``upstream`` answers to
    ``path``. Fault plans that requests carry pass through to the upstream untouched."""
    from ..server import EmbeddedServer

    server = EmbeddedServer(host, port)
    server.httpd.faults.request_plans = False
    try:
        server.httpd.responder = Recorder(path, upstream, **options)
    except BaseException:
        server.stop()
        raise
    return server
