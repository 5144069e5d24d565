"""A Transport that records each request and answers from a script (codex's
CapturingTransport, in Python). It implements the public Transport protocol; the dispatcher,
plugins, decoders and streams under test are the real ones."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from codexapi.jsonutil import dumps, loads
from codexapi.transport import HttpRequest


class CannedResponse:
    """An HttpResponse with a fixed status, headers and body. ``body`` is bytes, or a list of
    chunks handed out one per read (as a network would split them); ``reads`` counts them."""

    def __init__(self, status: int = 200, body: bytes | list[bytes] = b"",
                 headers: Mapping[str, str] | None = None, url: str = "") -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.url = url
        self._chunks = body if isinstance(body, list) else ([body] if body else [])
        self.closed = False
        self.reads = 0

    @property
    def _body(self) -> bytes:
        return b"".join(self._chunks)

    def iter_bytes(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.reads += 1
            yield chunk

    def read(self) -> bytes:
        self.closed = True
        return self._body

    def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


Answer = CannedResponse | Exception


class RecordingTransport:
    """Records every request; answers each with the next scripted answer (the last repeats)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers) or [CannedResponse(200, b"{}")]
        self.requests: list[HttpRequest] = []
        self.closed = False

    def send(self, request: HttpRequest, stream: bool) -> CannedResponse:
        self.requests.append(request)
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        answer = self.answers[index]
        if isinstance(answer, Exception):
            raise answer
        # A fresh copy per call, so a repeated answer can be read again.
        return CannedResponse(answer.status, list(answer._chunks), answer.headers, request.url)

    def close(self) -> None:
        self.closed = True

    @property
    def last(self) -> HttpRequest:
        return self.requests[-1]

    def body(self, index: int = -1) -> Any:
        raw = self.requests[index].body
        return loads(raw) if raw is not None else None

    def header(self, name: str, index: int = -1) -> str | None:
        headers = {k.lower(): v for k, v in self.requests[index].headers.items()}
        return headers.get(name.lower())


def json_response(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> CannedResponse:
    return CannedResponse(status, dumps(obj), {"content-type": "application/json",
                                               **(headers or {})})


def sse_response(*data: str) -> CannedResponse:
    body = "".join(f"data: {d}\n\n" for d in data).encode()
    return stream_response([body])


def stream_response(chunks: list[bytes], status: int = 200) -> CannedResponse:
    """An event-stream response whose body arrives in ``chunks``."""
    return CannedResponse(status, chunks, {"content-type": "text/event-stream"})


CHAT_DONE = sse_response('{"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}',
                         "[DONE]")
RESPONSES_DONE = sse_response(
    '{"type":"response.completed","response":{"id":"resp_1"}}')
