"""A Transport that records each request and answers from a script (codex's
CapturingTransport, in Python), built on the public :class:`codexapi.testing.MockTransport`;
the dispatcher, plugins, decoders and streams under test are the real ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codexapi.convert import dumps, loads
from codexapi.http.transport import HttpRequest
from codexapi.testing import MockResponse, MockTransport

#: An HttpResponse with a fixed status, headers and body (bytes, or chunks one per read).
CannedResponse = MockResponse

Answer = MockResponse | Exception


class RecordingTransport(MockTransport):
    """Records every request; answers each with the next scripted answer (the last repeats)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers) or [MockResponse(200, b"{}")]
        super().__init__(self._answer)

    def _answer(self, request: HttpRequest) -> MockResponse:
        answer = self.answers[min(len(self.requests) - 1, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        # A fresh copy per call, so a repeated answer can be read again.
        return answer.copy(request.url)

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
