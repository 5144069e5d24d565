"""Serving a cassette over HTTP and WebSocket, to any client: ``codexapi serve --cassette
PATH``.

A :class:`CassettePlayer` is the embedded server's ``responder``. For each request it picks
an interaction with the same method and path (``/v1`` prefix optional, query ignored):
first an unplayed one whose JSON body matches, then the unplayed one whose body is most like
the request's (:func:`likeness`: same fields, same conversation shape and last item; the
first in recorded order on a tie), then (everything played) the last one that fits, again.
Streams are sent one SSE event per chunk, flushed, as the API sends them; other bodies go
out byte for byte as recorded (gzip included, with its ``Content-Encoding``).

WebSocket turns (interactions with a ``ws://`` URI, as ``serve --record`` writes them) are
replayed on an upgrade of the same path: the upgrade is answered with the next turn's
recorded head (a refusal stays a refusal), then each ``response.create`` frame is matched
the same way among the turns and answered with its recorded frames, one by one. What broke
while recording breaks again: ``failure: drop`` sends what was recorded then closes the
connection (no chunked terminator, no close frame), ``failure: reset`` resets it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..sse import iter_messages
from .formats import FRAMING_HEADERS, Interaction, load_interactions
from .matching import drop_fields

if TYPE_CHECKING:
    from ..server import EmbeddedServer
    from ..server.app import Exchange


def route_path(uri_or_path: str) -> str:
    """The path as the embedded server routes it: no query, no ``/v1``, no trailing slash."""
    path = urlsplit(uri_or_path).path.rstrip("/") or "/"
    if path.startswith("/v1/") or path == "/v1":
        path = path[3:] or "/"
    return path


def sse_chunks(body: bytes) -> Iterator[bytes]:
    """``body`` cut after each blank line (the end of each SSE event)."""
    start = 0
    normalized = body.replace(b"\r\n", b"\n")
    while start < len(normalized):
        end = normalized.find(b"\n\n", start)
        stop = len(normalized) if end < 0 else end + 2
        yield normalized[start:stop]
        start = stop


class CassettePlayer:
    """Answers embedded-server requests from recorded interactions. Thread-safe."""

    def __init__(self, interactions: Sequence[Interaction], source: str = "cassette",
                 ignore_fields: Iterable[str] = ()) -> None:
        self.interactions = list(interactions)
        self.source = source
        self.ignore_fields = tuple(ignore_fields)
        self.play_counts = [0] * len(self.interactions)
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path, ignore_fields: Iterable[str] = ()) -> CassettePlayer:
        return cls(load_interactions(path), str(path), ignore_fields)

    def pick(self, method: str, path: str, body: Any,
             websocket: bool = False) -> Interaction | None:
        """The interaction to answer ``method path`` with (marked played), or None;
        ``websocket``: among the recorded WebSocket turns instead of HTTP exchanges."""
        route = route_path(path)
        fits = [i for i, it in enumerate(self.interactions)
                if it.method == method.upper() and route_path(it.uri) == route
                and it.is_websocket == websocket]
        if not fits:
            return None
        wanted = drop_fields(body, self.ignore_fields)
        recorded = {i: drop_fields(self.interactions[i].request_json(), self.ignore_fields)
                    for i in fits}
        with self._lock:
            same = [i for i in fits if recorded[i] == wanted]
            fresh = [i for i in fits if self.play_counts[i] == 0]
            choice = next((i for i in same if self.play_counts[i] == 0), None)
            if choice is None and fresh:
                # Clients that put fresh ids in every body (the Codex CLI) never match
                # exactly: the unplayed recording most like the request, first one on a tie.
                choice = max(fresh, key=lambda i: (likeness(recorded[i], wanted), -i))
            if choice is None:
                choice = (same or fits)[-1]
            self.play_counts[choice] += 1
        return self.interactions[choice]

    def __call__(self, ex: Exchange) -> bool:
        handler = ex.handler
        upgrade = handler.headers.get("Upgrade", "").lower() == "websocket"
        if upgrade and handler.command == "GET" and self._has_turns(handler.path):
            self._websocket(ex)
            return True
        interaction = self.pick(handler.command, handler.path, ex.body)
        if interaction is None:
            ex.send_error(404, self._missing(f"{handler.command} "
                                             f"{urlsplit(handler.path).path}"),
                          "cassette_no_match", "not_found_error")
            return True
        self.send(ex, interaction)
        return True

    def _missing(self, what: str) -> str:
        recorded = sorted({_label(it) for it in self.interactions})
        return f"{self.source} has no interaction for {what}; it holds: {', '.join(recorded)}"

    def _has_turns(self, path: str) -> bool:
        route = route_path(path)
        return any(it.is_websocket and route_path(it.uri) == route for it in self.interactions)

    def _next_turn(self, path: str) -> Interaction:
        """The WebSocket turn an upgrade of ``path`` opens on (not marked played)."""
        route = route_path(path)
        turns = [(i, it) for i, it in enumerate(self.interactions)
                 if it.is_websocket and route_path(it.uri) == route]
        with self._lock:
            return next((it for i, it in turns if self.play_counts[i] == 0), turns[-1][1])

    def _websocket(self, ex: Exchange) -> None:
        from ..server.websocket import accept

        handler = ex.handler
        head = self._next_turn(handler.path)
        headers = {k: v for k, v in head.headers if k.lower() not in FRAMING_HEADERS}
        if head.status != 101:
            # The upstream refused this upgrade when it was recorded: refuse it again.
            self.pick("GET", handler.path, None, websocket=True)
            if head.failure == "reset":
                ex.reset()
                return
            accept(handler, ex, refuse=(head.status, headers, head.decoded_body))
            return
        conn = accept(handler, ex, headers=headers)
        if conn is not None:
            self._turns(ex, conn)

    def _turns(self, ex: Exchange, conn: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        path = ex.handler.path
        stopping = ex.server.faults.stopping
        try:
            while not stopping.is_set():
                try:
                    message = conn.recv(timeout=0.25)
                except TimeoutError:
                    continue
                try:
                    frame = json.loads(message)
                except ValueError:
                    frame = None
                kind = frame.get("type") if isinstance(frame, dict) else None
                if kind == "response.processed":
                    continue
                turn = self.pick("GET", path, frame, websocket=True) \
                    if kind == "response.create" else None
                if turn is None or turn.status != 101:
                    conn.send(json.dumps({"type": "error", "status": 404, "error": {
                        "type": "not_found_error", "code": "cassette_no_match", "param": None,
                        "message": self._missing(f"a WebSocket {kind or 'frame'} on "
                                                 f"{urlsplit(path).path}")}}))
                    continue
                for message in iter_messages([turn.body]):
                    conn.send(message.data)
                if turn.failure == "reset":
                    ex.reset()
                    return
                if turn.failure:
                    _drop(conn)
                    return
        except ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    @staticmethod
    def send(ex: Exchange, it: Interaction) -> None:
        handler = ex.handler
        if it.failure == "reset":
            ex.reset()
            return
        compressed = it.body[:2] == b"\x1f\x8b"
        headers = [(k, v) for k, v in it.headers
                   if k.lower() not in FRAMING_HEADERS
                   and (k.lower() != "content-encoding" or compressed)]
        # send_response_only: the recorded headers (request id, date...) are the ones to send.
        handler.send_response_only(it.status, it.reason or None)
        for name, value in headers:
            handler.send_header(name, value)
        if (it.is_sse or it.failure) and not compressed:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for chunk in sse_chunks(it.body) if it.is_sse else [it.body]:
                ex.write(chunk)
            if it.failure == "drop":
                ex.drop()  # cut as the recording was: no chunked terminator
            else:
                ex.end_stream()
            return
        handler.send_header("Content-Length", str(len(it.body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(it.body)
        handler.wfile.flush()


def serve_cassette(path: str | Path, host: str = "127.0.0.1", port: int = 0,
                   ignore_fields: Iterable[str] = ()) -> EmbeddedServer:
    """An embedded server (not yet started) answering from the cassette at ``path``."""
    from ..server import EmbeddedServer

    player = CassettePlayer.from_file(path, ignore_fields)
    server = EmbeddedServer(host, port)
    server.httpd.responder = player
    return server


def likeness(recorded: Any, wanted: Any) -> int:
    """How alike two request bodies are: one point per top-level field with the same
    value, and for the conversation (``input`` or ``messages``) two each for the same
    length, the same kinds of items in the same order, and the same last item's text."""
    if not isinstance(recorded, dict) or not isinstance(wanted, dict):
        return int(recorded == wanted)
    score = sum(1 for key in recorded.keys() | wanted.keys()
                if recorded.get(key) == wanted.get(key))
    for key in ("input", "messages"):
        a, b = recorded.get(key), wanted.get(key)
        if not isinstance(a, list) or not isinstance(b, list):
            continue
        score += 2 * (len(a) == len(b))
        score += 2 * ([_kind(i) for i in a] == [_kind(i) for i in b])
        score += 2 * (bool(a) and bool(b) and _last_text(a) == _last_text(b))
    return score


def _kind(item: Any) -> str:
    if not isinstance(item, dict):
        return type(item).__name__
    return f"{item.get('type', '')}/{item.get('role', '')}"


def _last_text(items: list[Any]) -> str:
    last = items[-1]
    if not isinstance(last, dict):
        return repr(last)
    for key in ("content", "output", "arguments", "input"):
        if key in last:
            return json.dumps(last[key], sort_keys=True)
    return ""


def _label(it: Interaction) -> str:
    return f"{'WS' if it.is_websocket else it.method} {urlsplit(it.uri).path}"


def _drop(conn: Any) -> None:
    """Close a WebSocket's TCP connection without a close frame."""
    with contextlib.suppress(OSError):
        conn.socket.shutdown(socket.SHUT_RDWR)


def describe(player: CassettePlayer) -> str:
    """``3 interactions (POST /v1/responses x2, GET /v1/models)``; WebSocket turns count as
    ``WS /v1/responses``."""
    routes: dict[str, int] = {}
    for it in player.interactions:
        key = _label(it)
        routes[key] = routes.get(key, 0) + 1
    parts = [k if n == 1 else f"{k} x{n}" for k, n in routes.items()]
    return f"{len(player.interactions)} interactions ({', '.join(parts)})"
