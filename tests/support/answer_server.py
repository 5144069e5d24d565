"""A tiny HTTP server on 127.0.0.1 that answers each request with what a test says.

``AnswerServer(answer)`` calls ``answer(request)`` for every request (``request`` a
:class:`Seen`: method, path, lower-cased headers, body) and sends the :class:`Answer` it
returns; every request is recorded in ``server.seen`` (thread-safe). Used where the answer is
not one the embedded server gives: a token endpoint, a 429 with a given error body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

TIMEOUT = 10.0


@attrs.frozen
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.frozen
class Answer:
    status: int = 200
    body: bytes | Mapping[str, Any] = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    #: Seconds to wait before answering (a slow endpoint).
    delay: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def sse(*events: Mapping[str, Any]) -> Answer:
    """A 200 event stream of ``events``."""
    body = b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode())
                    for e in events)
    return Answer(200, body, {"content-type": "text/event-stream"})


def completed(text: str = "ok", response_id: str = "resp_1") -> Answer:
    """A whole Responses turn answering ``text``."""
    return sse({"type": "response.output_text.delta", "delta": text},
               {"type": "response.completed", "response": {"id": response_id}})


class _Handler(BaseHTTPRequestHandler):
    server: AnswerServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        self.connection.settimeout(TIMEOUT)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                    body)
        with self.server.lock:
            self.server.seen.append(seen)
        answer = self.server.answer(seen)
        if answer.delay:
            threading.Event().wait(answer.delay)
        payload = answer.encoded()
        self.send_response(answer.status)
        headers = {"content-type": "application/json", **answer.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AnswerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[Seen], Answer]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,),
                                        daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a deadline test) is not the server's problem

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> AnswerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(TIMEOUT)
