"""A small Responses-over-WebSocket server for tests (the ``websockets`` sync server on
127.0.0.1, port 0): it records every upgrade and every ``response.create`` frame, and answers
each one from a script. Every wait is bounded.

A script entry is what to do for one ``response.create``: a list of frames (dicts are sent
as JSON text, ``str`` as text, ``bytes`` as a binary frame), or a callable taking the
connection and the request. ``refuse`` answers every upgrade with that HTTP status (and
``refuse_body``) instead of switching protocols; ``gate(request)`` may refuse one upgrade by
answering ``(status, body)``. ``messages`` keeps every client message as received (text);
``extensions`` the extensions each connection negotiated. ``compression=None`` refuses
permessage-deflate (websockets accepts it by default).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

Frame = dict[str, Any] | str | bytes
Step = Sequence[Frame] | Callable[[ServerConnection, dict[str, Any]], None]


def text_turn(text: str, response_id: str = "resp_ws", deltas: int = 1) -> list[Frame]:
    """The frames of a plain text answer."""
    frames: list[Frame] = [{"type": "response.created", "response": {"id": response_id}}]
    frames += [{"type": "response.output_text.delta", "delta": text} for _ in range(deltas)]
    frames.append({"type": "response.output_item.done", "item": {
        "type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": text * deltas}]}})
    frames.append({"type": "response.completed", "response": {"id": response_id, "usage": {
        "input_tokens": 1, "output_tokens": deltas, "total_tokens": 1 + deltas}}})
    return frames


class WsServer:
    def __init__(self, script: Sequence[Step] | None = None, *, refuse: int | None = None,
                 refuse_body: str = "no websockets here", handshake_headers: dict[str, str]
                 | None = None, ssl_context: Any = None,
                 gate: Callable[[Request], tuple[int, str] | None] | None = None,
                 compression: str | None = "deflate") -> None:
        self.script = list(script or [])
        self.refuse = refuse
        self.refuse_body = refuse_body
        self.handshake_headers = handshake_headers or {}
        self.upgrades: list[Headers] = []
        self.creates: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self.extensions: list[list[str]] = []
        self.gate = gate
        self.connections = 0
        #: Connections the client closed (or that ended) so far.
        self.closed = 0
        self._lock = threading.Lock()
        self._server: Server = serve(self._handle, "127.0.0.1", 0,
                                     process_request=self._process_request,
                                     process_response=self._process_response,
                                     ssl=ssl_context, open_timeout=5, close_timeout=2,
                                     compression=compression)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.socket.getsockname()[1])

    def base_url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/v1"

    def _process_request(self, connection: ServerConnection, request: Request
                         ) -> Response | None:
        with self._lock:
            self.upgrades.append(request.headers)
        if request.path != "/v1/responses":
            return connection.respond(404, "not found\n")
        refused = self.gate(request) if self.gate is not None else None
        if refused is not None:
            return connection.respond(*refused)
        if self.refuse is not None:
            response = connection.respond(self.refuse, self.refuse_body)
            if self.refuse_body.startswith("<"):
                response.headers["Content-Type"] = "text/html"
            return response
        return None

    def _process_response(self, connection: ServerConnection, request: Request,
                          response: Response) -> Response | None:
        for name, value in self.handshake_headers.items():
            response.headers[name] = value
        return None

    def _handle(self, connection: ServerConnection) -> None:
        with self._lock:
            self.connections += 1
            self.extensions.append([e.name for e in connection.protocol.extensions])
        try:
            while True:
                message = connection.recv(timeout=10)
                request = json.loads(message)
                with self._lock:
                    self.messages.append(str(message))
                    self.creates.append(request)
                    step = self.script.pop(0) if self.script else text_turn("ok")
                if callable(step):
                    step(connection, request)
                    continue
                for frame in step:
                    if isinstance(frame, dict):
                        connection.send(json.dumps(frame))
                    else:
                        connection.send(frame)
        except (ConnectionClosed, TimeoutError):
            with self._lock:
                self.closed += 1

    def __enter__(self) -> WsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)


def ws_client(base_url: str, sleeps: list[float] | None = None, **kw: Any) -> Any:
    """A Client on the WebSocket wire for ``base_url``: no request retries unless ``retry``
    says, no proxy, a bearer key; with ``sleeps`` the retry waits are recorded, not slept."""
    import time

    from codexapi import BearerAuth, Client, Provider, RetryPolicy

    kw.setdefault("retry", RetryPolicy(max_attempts=1))
    kw.setdefault("proxy", "")
    auth = kw.pop("auth", None) or BearerAuth("sk-ws-test")
    provider = Provider(name="ws", base_url=base_url, wire="responses_websocket", **kw)
    return Client(provider, auth=auth, load_entrypoints=False,
                  sleep=(sleeps.append if sleeps is not None else time.sleep))


def sse_turn(text: str, response_id: str = "resp_http") -> bytes:
    """The same answer as :func:`text_turn`'s frames, as an SSE body (an HTTP fallback's)."""
    frames = text_turn(text, response_id)
    return b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
