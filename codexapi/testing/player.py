"""Serving a cassette over HTTP, to any client: ``codexapi serve --cassette PATH``.

A :class:`CassettePlayer` is the embedded server's ``responder``. For each request it picks
an interaction with the same method and path (``/v1`` prefix optional, query ignored):
first an unplayed one whose JSON body matches, then the next unplayed one in recorded order,
then (everything played) the last one that fits, again. Streams are sent one SSE event per
chunk, flushed, as the API sends them; other bodies go out byte for byte as recorded
(gzip included, with its ``Content-Encoding``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

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

    def pick(self, method: str, path: str, body: Any) -> Interaction | None:
        """The interaction to answer ``method path`` with (marked played), or None."""
        route = route_path(path)
        fits = [i for i, it in enumerate(self.interactions)
                if it.method == method.upper() and route_path(it.uri) == route]
        if not fits:
            return None
        wanted = drop_fields(body, self.ignore_fields)
        with self._lock:
            same = [i for i in fits
                    if drop_fields(self.interactions[i].request_json(), self.ignore_fields)
                    == wanted]
            fresh = [i for i in fits if self.play_counts[i] == 0]
            choice = next((i for i in same if self.play_counts[i] == 0), None)
            if choice is None:
                choice = fresh[0] if fresh else (same or fits)[-1]
            self.play_counts[choice] += 1
        return self.interactions[choice]

    def __call__(self, ex: Exchange) -> bool:
        handler = ex.handler
        interaction = self.pick(handler.command, handler.path, ex.body)
        if interaction is None:
            recorded = sorted({f"{it.method} {urlsplit(it.uri).path}"
                               for it in self.interactions})
            ex.send_error(404, f"{self.source} has no interaction for {handler.command} "
                          f"{urlsplit(handler.path).path}; it holds: {', '.join(recorded)}",
                          "cassette_no_match", "not_found_error")
            return True
        self.send(ex, interaction)
        return True

    @staticmethod
    def send(ex: Exchange, it: Interaction) -> None:
        handler = ex.handler
        compressed = it.body[:2] == b"\x1f\x8b"
        headers = [(k, v) for k, v in it.headers
                   if k.lower() not in FRAMING_HEADERS
                   and (k.lower() != "content-encoding" or compressed)]
        # send_response_only: the recorded headers (request id, date...) are the ones to send.
        handler.send_response_only(it.status, it.reason or None)
        for name, value in headers:
            handler.send_header(name, value)
        if it.is_sse and not compressed:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for chunk in sse_chunks(it.body):
                ex.write(chunk)
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


def describe(player: CassettePlayer) -> str:
    """``3 interactions (POST /v1/responses x2, GET /v1/models)``."""
    routes: dict[str, int] = {}
    for it in player.interactions:
        key = f"{it.method} {urlsplit(it.uri).path}"
        routes[key] = routes.get(key, 0) + 1
    parts = [k if n == 1 else f"{k} x{n}" for k, n in routes.items()]
    return f"{len(player.interactions)} interactions ({', '.join(parts)})"
