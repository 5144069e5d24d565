"""Responses over WebSocket: ``GET /v1/responses`` with ``Upgrade: websocket`` (as the Codex
CLI's built-in ``openai`` provider asks, with ``openai-beta: responses_websockets=...``).

Each text frame ``{"type": "response.create", <Responses body fields>}`` is one turn, answered
with the same events as the HTTP route, one JSON text frame each; several turns share a
connection. ``response.processed`` frames (the CLI's acknowledgements) are ignored. Bad frames
(binary, not JSON, an unknown ``type``, a body without ``model``) get an error event
``{"type": "error", "status": 400, "error": {...}}`` and the connection stays open. Faults
act per ``response.create`` (the upgrade's headers, or the frame's ``fault:`` model name):
a status is an error event carrying ``status`` and ``headers``, ``drop`` closes the TCP
connection without a close frame, ``reset`` resets it.

Why not ``websockets.sync.server.serve``: the WebSocket must share the HTTP server's port (the
CLI derives both from one base URL), and ``http.server`` has already read and parsed the
upgrade request by the time a route could see it. So the request is replayed into websockets'
own sans-I/O :class:`~websockets.server.ServerProtocol`, which answers the handshake, and the
socket is then handed to websockets' sync :class:`~websockets.sync.connection.Connection`,
which does framing, permessage-deflate (the CLI offers it), ping/pong and the closing
handshake. ``websockets`` is imported here only, when a client upgrades.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .app import UPGRADES, Exchange, reset_socket
from .framing import RequestError, parse_json
from .responses import answer, mark_reply
from .responses_wire import new_id

if TYPE_CHECKING:
    from websockets.sync.connection import Connection

    from .app import Handler
    from .background import Context

#: The largest frame a client may send (the CLI sends whole histories in one frame).
MAX_FRAME = 32 * 1024 * 1024


class WsExchange(Exchange):
    """One ``response.create`` turn on a WebSocket: the Exchange interface over frames."""

    always_streams = True

    def __init__(self, handler: Handler, conn: Connection, body: Any,
                 last: dict[str, Any] | None = None) -> None:
        super().__init__(handler, "/responses", {}, body)
        self.conn = conn
        self.closed = False
        #: The connection's last response: ``{"id", "context", "output"}`` (empty: none yet).
        self.last = {} if last is None else last

    def recall(self, rid: str) -> Context | None:
        # As the API's WebSocket mode: the connection's last response, even one not stored.
        if self.last.get("id") == rid:
            context: Context = self.last["context"]
            return context.then(self.last["output"], 0)
        return super().recall(rid)

    def remember(self, rid: str, context: Context, output: list[dict[str, Any]]) -> None:
        self.last.update(id=rid, context=context, output=output)

    @property
    def wire(self) -> str:
        return "responses"

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        if status < 400:
            self._send(obj)
            return
        error = obj.get("error") if isinstance(obj, dict) else None
        event: dict[str, Any] = {"type": "error", "status": status,
                                 "error": error if isinstance(error, dict) else obj}
        if headers:
            event["headers"] = dict(headers)
        self._send(event)

    def send_bytes(self, status: int, data: bytes, content_type: str,
                   headers: Mapping[str, str] | None = None) -> None:
        self.send_json(status, json.loads(data) if data else {}, headers)

    def start_stream(self, headers: Mapping[str, str] | None = None,
                     content_type: str = "") -> None:
        pass  # the upgrade's 101 carried the headers

    def end_stream(self) -> None:
        pass  # a turn ends with its terminal event; the connection stays open

    def write_chunk(self, data: bytes) -> None:
        self.send_message(data)

    def encode(self, event: Mapping[str, Any]) -> bytes:
        return json.dumps(event, separators=(",", ":")).encode()

    def malformed(self) -> bytes:
        return b'{"type":"response.output_text.delta","delta":"'

    def send_message(self, data: bytes) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            self.conn.send(data.decode())
        except ConnectionClosed as exc:
            raise ConnectionResetError("the WebSocket client left") from exc

    def _send(self, obj: Any) -> None:
        with contextlib.suppress(OSError):
            self.send_message(self.encode(obj))

    def drop(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.conn.socket.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        self.closed = True
        reset_socket(self.conn.socket)


def _reply_headers(ex: Exchange) -> dict[str, str]:
    mark_reply(ex)
    return dict(ex.reply_headers)


def accept(handler: Handler, ex: Exchange, headers: Mapping[str, str] | None = None,
           refuse: tuple[int, Mapping[str, str], bytes] | None = None) -> Connection | None:
    """Answer the upgrade request ``ex`` with a 101 carrying ``headers`` (the turn headers
    by default), or with ``refuse`` (status, headers, body) when given; the open connection,
    or None when the upgrade was not accepted (the socket is then not HTTP any more)."""
    from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
    from websockets.http11 import Request
    from websockets.server import ServerProtocol
    from websockets.sync.connection import Connection

    handler.close_connection = True  # whatever happens, this socket is not HTTP any more
    sock: socket.socket = handler.connection
    # permessage-deflate as websockets' own serve() offers it: the CLI asks for it.
    protocol = ServerProtocol(extensions=enable_server_permessage_deflate(None),
                              max_size=MAX_FRAME)
    # The request, as http.server read it, goes through websockets' own parser so that the
    # protocol moves past its handshake state exactly as if it had read the socket itself.
    head = f"GET {handler.path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in handler.headers.items()) + "\r\n"
    protocol.receive_data(head.encode("latin-1"))
    request = next((e for e in protocol.events_received() if isinstance(e, Request)), None)
    if request is None:
        ex.send_error(400, "the WebSocket upgrade request does not parse", "invalid_upgrade")
        return None
    response = protocol.accept(request)
    if response.status_code == 101 and _early_data(handler):
        response = protocol.reject(400, "data was sent before the WebSocket handshake ended\n")
    elif response.status_code == 101 and refuse is not None:
        status, extra, body = refuse
        response = protocol.reject(status, body.decode("utf-8", "replace"))
        for name, value in extra.items():
            if name.lower() not in ("content-length", "content-type", "connection"):
                response.headers[name] = value
    elif response.status_code == 101:
        for name, value in (_reply_headers(ex) if headers is None else headers).items():
            response.headers[name] = value
    if "x-request-id" not in response.headers:  # as every HTTP answer of the server has
        response.headers["x-request-id"] = new_id("req")
    protocol.send_response(response)
    handler.wfile.flush()
    sock.sendall(b"".join(protocol.data_to_send()))
    if response.status_code != 101:
        return None
    # No keepalive pings: the CLI answers them, but a stalled turn must look silent.
    return Connection(sock, protocol, ping_interval=None, close_timeout=2)


def serve_websocket(handler: Handler, ex: Exchange) -> None:
    """Answer the upgrade ``ex`` and serve its turns until the client or the server ends."""
    from websockets.exceptions import ConnectionClosed

    conn = accept(handler, ex)
    if conn is None:
        return
    server = ex.server
    last: dict[str, Any] = {}
    try:
        while not server.faults.stopping.is_set():
            try:
                message = conn.recv(timeout=0.25)
            except TimeoutError:
                continue
            except ConnectionClosed:
                break
            if not _turn(handler, conn, message, last):
                break
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _early_data(handler: Handler) -> bool:
    """Whether the client sent bytes after the upgrade request, before our 101 (a client
    must not; http.server's read buffer would hold them)."""
    sock = handler.connection
    sock.setblocking(False)
    try:
        return bool(handler.rfile.peek(1))  # type: ignore[attr-defined]
    except (BlockingIOError, OSError, ValueError):
        return False
    finally:
        sock.setblocking(True)


def _bad_frame(ex: WsExchange, message: str, code: str) -> None:
    ex.send_error(400, message, code)


def _turn(handler: Handler, conn: Connection, message: str | bytes,
          last: dict[str, Any] | None = None) -> bool:
    """Answer one frame; False when the connection is gone (dropped or reset)."""
    ex = WsExchange(handler, conn, None, last)
    ex.body_size = len(message)
    if isinstance(message, bytes):
        _bad_frame(ex, "binary frames are not accepted: send `response.create` as a JSON text "
                   "frame", "invalid_frame")
        return True
    try:
        frame = parse_json(message, "the frame")
    except RequestError as exc:
        _bad_frame(ex, str(exc), exc.code)
        return True
    if not isinstance(frame, dict):
        _bad_frame(ex, "the frame must be a JSON object with a `type`", "invalid_frame")
        return True
    kind = frame.get("type")
    if kind == "response.processed":
        return True
    if kind != "response.create":
        _bad_frame(ex, f"unknown frame type {kind!r}: the server accepts `response.create` "
                   "(and ignores `response.processed`)", "unknown_frame_type")
        return True
    body = {k: v for k, v in frame.items() if k != "type"}
    ex.body = body
    server = ex.server
    server.requests_seen.append(("WS", "/responses", dict(handler.headers.items()), body),
                                len(message))
    if server.verbose:
        handler.log_message("WS response.create model=%r", body.get("model"))
    if not isinstance(body.get("model"), str):
        _bad_frame(ex, "`response.create` needs a string `model`", "invalid_body")
        return True
    if server.faults.intercept(ex):
        return not ex.closed
    answer(ex, body)
    return not ex.closed


UPGRADES["/responses"] = serve_websocket
