"""Lossless streams: a drop at every event position of a turn, on the embedded server.

- ``background=True``: the dropped stream resumes with ``GET responses/{id}?stream=true&
  starting_after=N`` from the last sequence number the caller received. Whatever the position,
  the joined text is the whole text and every sequence number arrives exactly once.
- Otherwise a turn that fails before any event reached the caller is re-sent (up to
  ``Provider.stream_max_retries``); once an event reached it, nothing is re-sent: a StreamError,
  and the text so far is a prefix of the answer, never repeated.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from codexapi import (
    Client,
    CodexApiError,
    Completed,
    Event,
    OutputItemDone,
    OutputTextDelta,
    Provider,
    ResponsesClient,
    ResponsesRequest,
    RetryPolicy,
    StreamDropped,
    StreamError,
    Urllib3Transport,
    hookimpl,
)
from codexapi.http.transport import HttpRequest, HttpResponse
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER
from codexapi.sse import Decoder, SseStreamDecoder
from codexapi_plugins.wire_responses import ResponsesDecoder, ResponsesWire

pytestmark = pytest.mark.timeout(120)

PROMPT = "lossless streams are the point"
EXPECTED = f"You said: {PROMPT}"


class _Teed:
    """A response whose body bytes are also kept, to see what the client really received."""

    def __init__(self, inner: HttpResponse, sink: list[bytes]) -> None:
        self._inner = inner
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def iter_bytes(self) -> Iterator[bytes]:
        for chunk in self._inner.iter_bytes():
            self._sink.append(chunk)
            yield chunk


class TeeTransport:
    def __init__(self) -> None:
        self.inner = Urllib3Transport()
        self.sent: list[tuple[HttpRequest, list[bytes]]] = []

    def send(self, request: HttpRequest, stream: bool) -> HttpResponse:
        sink: list[bytes] = []
        self.sent.append((request, sink))
        return _Teed(self.inner.send(request, stream), sink)  # type: ignore[return-value]

    def close(self) -> None:
        self.inner.close()

    def sequence_numbers(self) -> list[int]:
        """The sequence numbers of every whole event received, over all responses."""
        out = []
        for _, chunks in self.sent:
            dec = Decoder()
            for chunk in chunks:
                out.extend(json.loads(m.data)["sequence_number"] for m in dec.feed(chunk))
        return out


def body(background: bool) -> dict[str, Any]:
    return {"model": "m", "input": [{"type": "message", "role": "user", "content": PROMPT}],
            "stream": True, "store": background, "background": background}


def turn(server: EmbeddedServer, plan: str | None, background: bool,
         stream_max_retries: int = 5, idle: float = 10.0,
         ) -> tuple[list[Event], CodexApiError | None, TeeTransport]:
    tee = TeeTransport()
    provider = Provider(base_url=server.base_url, retry=RetryPolicy(max_attempts=3,
                        base_delay=0.0), stream_idle_timeout=idle,
                        stream_max_retries=stream_max_retries)
    client = ResponsesClient(tee, provider)  # type: ignore[arg-type]
    headers: Mapping[str, str] = {FAULT_ID_HEADER: uuid.uuid4().hex}
    if plan:
        headers = {**headers, FAULT_HEADER: plan}
    events: list[Event] = []
    error = None
    try:
        with client.stream(body(background), headers) as stream:
            events.extend(stream)
    except CodexApiError as exc:
        error = exc
    return events, error, tee


def text(events: list[Event]) -> str:
    return "".join(e.delta for e in events if isinstance(e, OutputTextDelta))


@pytest.fixture(scope="module")
def positions() -> Iterator[tuple[EmbeddedServer, int, int]]:
    with EmbeddedServer() as server:
        events, error, tee = turn(server, None, background=True)
        assert error is None and text(events) == EXPECTED
        background_events = len(tee.sequence_numbers())
        events, error, tee = turn(server, None, background=False)
        assert error is None
        yield server, background_events, len(tee.sequence_numbers())


def test_a_background_stream_dropped_at_every_position_loses_and_repeats_nothing(
        positions: tuple[EmbeddedServer, int, int]) -> None:
    server, total, _ = positions
    lost = repeated = 0
    for k in range(total):
        events, error, tee = turn(server, f"dropx1@{k}", background=True)
        seqs = tee.sequence_numbers()
        assert error is None, (k, error)
        lost += text(events) != EXPECTED
        repeated += len(seqs) - len(set(seqs))
        assert seqs == list(range(total)), (k, seqs)
        assert sum(isinstance(e, Completed) for e in events) == 1
        assert sum(isinstance(e, OutputItemDone) for e in events) == 1
        methods = [request.method for request, _ in tee.sent]
        if k == 0:
            assert methods == ["POST", "POST"]  # nothing known yet: re-sent
        else:
            assert methods == ["POST", "GET"], (k, methods)
            resume = tee.sent[1][0].url
            assert f"stream=true&starting_after={k - 1}" in resume
    print(f"background drops: {total} positions, text lost {lost}, events repeated {repeated}",
          file=sys.stderr)
    assert lost == 0 and repeated == 0


def test_a_background_stream_gone_idle_resumes_too(
        positions: tuple[EmbeddedServer, int, int]) -> None:
    # Silence past the idle timeout is the connection failing as much as a drop is.
    server, total, _ = positions
    events, error, tee = turn(server, "stallx1:2@5", background=True, idle=0.3)
    assert error is None and text(events) == EXPECTED
    assert [r.method for r, _ in tee.sent] == ["POST", "GET"]
    assert "starting_after=4" in tee.sent[1][0].url
    assert tee.sequence_numbers() == list(range(total))


def test_a_background_stream_cut_short_cleanly_resumes(
        positions: tuple[EmbeddedServer, int, int], caplog: pytest.LogCaptureFixture) -> None:
    # `truncate` ends the body cleanly just before response.completed: the decoder's
    # StreamDropped at the end of the body, resumed at once (not after an idle timeout).
    server, total, _ = positions
    with caplog.at_level(logging.WARNING, "codexapi"):
        events, error, tee = turn(server, "truncatex1", background=True, idle=5.0)
    assert error is None and text(events) == EXPECTED
    assert [r.method for r, _ in tee.sent] == ["POST", "GET"]
    assert f"starting_after={total - 2}" in tee.sent[1][0].url
    assert tee.sequence_numbers() == list(range(total))
    [resumed] = [r.getMessage() for r in caplog.records if "resuming" in r.getMessage()]
    assert "stream closed before response.completed" in resumed, resumed


def test_a_dropped_turn_is_re_sent_only_before_any_event_reached_the_caller(
        positions: tuple[EmbeddedServer, int, int]) -> None:
    server, _, total = positions
    for k in range(total):
        events, error, tee = turn(server, f"dropx1@{k}", background=False)
        assert EXPECTED.startswith(text(events)), k
        visible = [e for e in events if not isinstance(e, OutputTextDelta)]
        assert len(visible) == len(set(map(repr, visible))), k  # nothing twice
        if k == 0:
            assert error is None and text(events) == EXPECTED and len(tee.sent) == 2
        else:
            assert isinstance(error, StreamError) and len(tee.sent) == 1, k


@pytest.mark.parametrize("plan", ["failedx1:server_error@0", "failedx2:server_error@0",
                                  "dropx3@0"])
def test_failures_before_the_first_event_are_re_sent(
        positions: tuple[EmbeddedServer, int, int], plan: str) -> None:
    server = positions[0]
    events, error, tee = turn(server, plan, background=False)
    assert error is None and text(events) == EXPECTED
    assert len(tee.sent) == int(plan.split("x")[1][0]) + 1


def test_re_sends_stop_at_stream_max_retries(positions: tuple[EmbeddedServer, int, int]
                                             ) -> None:
    server = positions[0]
    _events, error, tee = turn(server, "drop@0", background=False, stream_max_retries=2)
    assert isinstance(error, StreamError) and len(tee.sent) == 3
    _events, error, tee = turn(server, "drop@0", background=False, stream_max_retries=0)
    assert isinstance(error, StreamError) and len(tee.sent) == 1


def test_a_failure_that_cannot_succeed_is_never_re_sent(
        positions: tuple[EmbeddedServer, int, int]) -> None:
    server = positions[0]
    for plan in ("failed:context_length_exceeded@0", "failed:insufficient_quota@0",
                 "malformed@0"):
        _events, error, tee = turn(server, plan, background=False)
        assert error is not None and not error.retryable and len(tee.sent) == 1, plan


class _Reworded(ResponsesDecoder):
    """The Responses decoder with the words of its end-of-body error changed: either a drop
    in other words, or a plain StreamError that happens to use the drop's old words."""

    def __init__(self, as_drop: bool) -> None:
        super().__init__()
        self.as_drop = as_drop

    def close(self) -> list[Event]:
        try:
            return super().close()
        except StreamDropped:
            if self.as_drop:
                raise StreamDropped("the peer hung up mid-turn") from None
            raise StreamError("stream closed before response.completed") from None


class _RewordedWire(ResponsesWire):
    name = "reworded"

    def __init__(self, provider: Provider | None = None, as_drop: bool = True) -> None:
        super().__init__(provider)
        self.as_drop = as_drop

    def bind(self, provider: Provider) -> _RewordedWire:
        return _RewordedWire(provider, self.as_drop)

    def decoder(self, endpoint: str) -> SseStreamDecoder:
        return SseStreamDecoder(_Reworded(self.as_drop))


class _EndsEarly(_Teed):
    """A body that ends cleanly after its first ``events`` SSE messages (as a proxy that
    closes the stream between events would end it): the wire's decoder sees the end of the
    body before the turn's completion."""

    def __init__(self, inner: HttpResponse, sink: list[bytes], events: int) -> None:
        super().__init__(inner, sink)
        self._events = events

    def iter_bytes(self) -> Iterator[bytes]:
        buf = b""
        for chunk in super().iter_bytes():
            buf += chunk
            if buf.count(b"\n\n") >= self._events:
                yield buf[:_nth(buf, b"\n\n", self._events) + 2]
                return
        yield buf


def _nth(data: bytes, sep: bytes, n: int) -> int:
    at = -1
    for _ in range(n):
        at = data.index(sep, at + 1)
    return at


class EndsEarlyTransport(TeeTransport):
    def send(self, request: HttpRequest, stream: bool) -> HttpResponse:
        if self.sent:
            return super().send(request, stream)
        sink: list[bytes] = []
        self.sent.append((request, sink))
        return _EndsEarly(self.inner.send(request, stream), sink, 4)  # type: ignore[return-value]


@pytest.mark.parametrize("as_drop", [True, False])
def test_what_is_resumed_follows_the_error_type_not_its_words(
        positions: tuple[EmbeddedServer, int, int], as_drop: bool) -> None:
    # Whether a failed turn is a drop (resumed) is the error's type: a StreamDropped in any
    # words resumes, a plain StreamError never does, even in the words a drop once had.
    server = positions[0]
    wire = _RewordedWire(as_drop=as_drop)

    class Plugin:
        @hookimpl
        def codexapi_register_wires(self, register: Any) -> None:
            register(wire)

    provider = Provider(base_url=server.base_url, wire="reworded", stream_idle_timeout=10.0,
                        retry=RetryPolicy(max_attempts=3, base_delay=0.0))
    tee = EndsEarlyTransport()
    request = ResponsesRequest(model="m", input=PROMPT, background=True, store=True)
    with Client(provider, plugins=[Plugin()], load_entrypoints=False,
                transport=tee) as client:  # type: ignore[arg-type]
        stream = client.stream(request)
        if as_drop:
            assert stream.collect().text == EXPECTED
            assert [r.method for r, _ in tee.sent] == ["POST", "GET"]
            assert "starting_after=3" in tee.sent[1][0].url
            seqs = tee.sequence_numbers()
            assert seqs == sorted(set(seqs))
        else:
            with pytest.raises(StreamError, match="stream closed before") as info:
                stream.collect()
            assert type(info.value) is StreamError and len(tee.sent) == 1


def test_a_background_websocket_turn_dropped_at_every_position_loses_and_repeats_nothing(
        positions: tuple[EmbeddedServer, int, int]) -> None:
    # Over the WebSocket wire (frames, not SSE) the drop resumes over HTTP. A Client per
    # position: the fault plan travels in the upgrade's headers, once per connection.
    server, total, _ = positions
    provider = Provider(base_url=server.base_url, wire="responses_websocket", proxy="",
                        retry=RetryPolicy(max_attempts=3, base_delay=0.0),
                        stream_idle_timeout=10.0)
    request = ResponsesRequest(model="m", input=PROMPT, background=True, store=True)
    lost = repeated = resumed = 0
    for k in range(total):
        plan = {FAULT_HEADER: f"dropx1@{k}", FAULT_ID_HEADER: uuid.uuid4().hex}
        with Client(provider, load_entrypoints=False) as client:
            with client.stream(request, headers=plan) as stream:
                events = list(stream)
            # ...and the Client's next turn is on a sound connection.
            assert client.stream(request).collect().text == EXPECTED
            lost += text(events) != EXPECTED
            repeated += len(events) - len(set(map(repr, events)))
            assert sum(isinstance(e, Completed) for e in events) == 1, k
            # Before the first frame arrived it is the request that is retried (RetryPolicy);
            # after, the stream that is resumed, once.
            assert stream.resends <= 1, (k, stream.resends)
            resumed += stream.resends
    print(f"background websocket drops: {total} positions ({resumed} resumed), text lost "
          f"{lost}, events repeated {repeated}", file=sys.stderr)
    assert lost == 0 and repeated == 0 and resumed >= total - 2
