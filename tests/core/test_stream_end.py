"""``codexapi_on_stream_end(provider, request, result, error)``: once per streamed turn, on
success, on a failure inside the stream, on a failure before it opened, and when the caller
closes it early; with usage, ids, time to first event and the call's extensions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from conftest import make_client, make_request

from codexapi import (
    ApiError,
    Client,
    OutputTextDelta,
    Provider,
    ResponsesRequest,
    StreamError,
    StreamResult,
    hookimpl,
)
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER

REQ = make_request("Hello there")


def fault(plan: str) -> dict[str, str]:
    return {FAULT_HEADER: plan, FAULT_ID_HEADER: uuid.uuid4().hex}


class Ends:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, StreamResult, BaseException | None]] = []
        self.extensions: list[dict[str, Any]] = []

    @hookimpl
    def codexapi_on_request(self, request: Any) -> None:
        request.extensions.setdefault("span", "s-1")
        self.extensions.append(request.extensions)

    @hookimpl
    def codexapi_on_stream_end(self, provider: Provider, request: Any, result: StreamResult,
                               error: BaseException | None) -> None:
        self.calls.append((request, result, error))


@pytest.fixture(scope="module")
def srv() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def test_a_completed_turn_reports_usage_ids_timing_once(srv: EmbeddedServer) -> None:
    ends = Ends()
    with make_client(srv, retry=2, plugins=[ends], sleep=lambda _: None) as c:
        collected = c.stream(REQ).collect()
    [(request, result, error)] = ends.calls
    assert request is REQ and error is None
    assert result.text == collected.text == "You said: Hello there"
    assert result.response_id == collected.response_id and result.usage == collected.usage
    assert result.usage is not None and result.usage.total_tokens > 0
    assert result.finish_reason == "stop"
    assert result.time_to_first_event is not None and 0 <= result.time_to_first_event < 5
    assert result.extensions is ends.extensions[0] and result.extensions["span"] == "s-1"


def test_a_failure_inside_the_stream_reports_the_error(srv: EmbeddedServer) -> None:
    ends = Ends()
    with make_client(srv, retry=2, plugins=[ends], sleep=lambda _: None) as c, \
            pytest.raises(StreamError):
        c.stream(REQ, headers=fault("drop@3")).collect()
    [(_, result, error)] = ends.calls
    assert isinstance(error, StreamError) and result.finish_reason == "error"


def test_a_failure_before_the_stream_opens_reports_it_too(srv: EmbeddedServer) -> None:
    ends = Ends()
    with make_client(srv, retry=2, plugins=[ends], sleep=lambda _: None) as c, \
            pytest.raises(ApiError):
        c.stream(REQ, headers=fault("500x5"))
    [(_, result, error)] = ends.calls
    assert isinstance(error, ApiError) and error.status == 500 and error.attempts == 2
    assert result.finish_reason == "error" and result.text == ""
    assert result.extensions is ends.extensions[0]  # the same dict every attempt had
    assert len(ends.extensions) == 2 and ends.extensions[1] is ends.extensions[0]


def test_closing_early_reports_a_cancelled_turn_once(srv: EmbeddedServer) -> None:
    ends = Ends()
    with make_client(srv, retry=2, plugins=[ends], sleep=lambda _: None) as c:
        with c.stream(REQ) as events:
            next(iter(events))
        never_read = c.stream(REQ)
        never_read.close()
        never_read.close()
    assert [(r.finish_reason, e) for _, r, e in ends.calls] == [("cancelled", None)] * 2


def test_function_calls_finish_as_tool_calls(srv: EmbeddedServer) -> None:
    ends = Ends()
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    with make_client(srv, retry=2, plugins=[ends], sleep=lambda _: None) as c:
        c.stream(ResponsesRequest(model="m", input="call the tool", tools=tools)).collect()
    [(_, result, _)] = ends.calls
    assert result.function_calls and result.finish_reason == "tool_calls"


def test_the_observed_turn_keeps_text_and_items_whatever_the_reads_hold() -> None:
    import time

    from codexapi.events import Completed, OutputItemDone, OutputTextDelta
    from codexapi.items import item_from_json
    from codexapi.stream import _Seen

    class WireDelta(OutputTextDelta):  # a wire's own delta class
        pass

    message = item_from_json({"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": "ab"}]})
    turn = _Seen(None, None, None, time.monotonic)
    turn.add([OutputTextDelta(str(i % 10)) for i in range(20)])  # many, all deltas
    turn.add([OutputTextDelta("a"), WireDelta("b")])              # few
    mixed = [OutputTextDelta("c")] * 10 + [WireDelta("d"), OutputItemDone(message),
                                           OutputTextDelta("e")]
    turn.add(mixed)                                               # many, not all deltas
    turn.add([Completed(response_id="resp_1", token_usage=None)])
    result = turn.result("stop")
    assert result.text == "01234567890123456789" + "ab" + "c" * 10 + "de"
    assert result.items == [message] and result.response_id == "resp_1"
    assert result.time_to_first_event is not None


# --- codexapi_observe_stream: how much of a turn its end observers need -----------------------


class Asks(Ends):
    """An end observer that says what it needs (``answer``) and records what it was asked."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer
        self.asked: list[tuple[Any, dict[str, Any]]] = []

    @hookimpl
    def codexapi_observe_stream(self, provider: Provider, request: Any,
                                extensions: dict[str, Any]) -> Any:
        self.asked.append((request, extensions))
        return self.answer


def cut_short(c: Client, deltas: int = 2) -> str:
    """Read the first ``deltas`` text deltas of a turn, then close it; the text read."""
    seen = []
    with c.stream(REQ) as events:
        for ev in events:
            if isinstance(ev, OutputTextDelta):
                seen.append(ev.delta)
                if len(seen) == deltas:
                    break
    return "".join(seen)


def test_an_end_observer_gets_ids_usage_and_items_without_the_streamed_text(
        srv: EmbeddedServer) -> None:
    end = Asks("end")
    with make_client(srv, plugins=[end]) as c:
        collected = c.stream(REQ).collect()
        partial = cut_short(c)
    (request, extensions), _ = end.asked
    assert request is REQ
    [(_, done, error), (_, cancelled, _)] = end.calls
    assert error is None and done.extensions is extensions  # the call's own dict
    assert (done.response_id, done.usage, done.items) == (
        collected.response_id, collected.usage, collected.items)
    # The text of a completed turn comes from its message item; a turn cut short has none.
    assert done.text == collected.text == "You said: Hello there"
    assert partial and cancelled.finish_reason == "cancelled" and cancelled.text == ""


def test_a_text_observer_gets_the_text_streamed_so_far(srv: EmbeddedServer) -> None:
    text = Asks("text")
    with make_client(srv, plugins=[text]) as c:
        partial = cut_short(c)
    [(_, cancelled, _)] = text.calls
    assert cancelled.text == partial != ""


def test_an_observer_without_the_hook_still_gets_the_text(srv: EmbeddedServer) -> None:
    old, end = Ends(), Asks("end")  # Ends implements only codexapi_on_stream_end
    with make_client(srv, plugins=[old, end]) as c:
        partial = cut_short(c)
    assert [r.text for _, r, _ in old.calls] == [r.text for _, r, _ in end.calls] == [partial]


def test_a_turn_every_observer_declines_is_not_observed(srv: EmbeddedServer) -> None:
    first, second = Asks(None), Asks(None)
    with make_client(srv, plugins=[first, second]) as c:
        stream = c.stream(REQ)
        assert stream._turn.observed is None  # nothing is kept as it streams
        assert stream.collect().text == "You said: Hello there"
    assert len(first.asked) == len(second.asked) == 1
    assert first.calls == second.calls == []


def test_when_one_observer_asks_every_end_observer_is_told(srv: EmbeddedServer) -> None:
    declines, asks = Asks(None), Asks("end")
    with make_client(srv, plugins=[declines, asks]) as c:
        c.stream(REQ).collect()
    assert len(declines.calls) == len(asks.calls) == 1


@pytest.mark.parametrize("answer", ["everything", True, ["end"]])
def test_a_wrong_answer_is_a_plugin_error_naming_the_plugin(srv: EmbeddedServer,
                                                            answer: Any) -> None:
    from codexapi import PluginError

    with make_client(srv, plugins=[Asks(answer)]) as c, pytest.raises(PluginError) as info:
        c.stream(REQ)
    assert "codexapi_observe_stream" in str(info.value) and '"end"' in str(info.value)
    assert info.value.plugin and "Asks" in info.value.plugin


def test_the_read_level_shortcut_keeps_what_the_full_look_keeps() -> None:
    # A decoder's other_events count lets a read of plain deltas skip the look at each event;
    # text, items and ids come out the same as from a decoder without the count.
    import time

    from codexapi.events import Completed, OutputItemDone
    from codexapi.items import item_from_json
    from codexapi.stream import _Seen

    class Counting:
        other_events = 0

    message = item_from_json({"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": "ab"}]})
    reads: list[tuple[list[Any], int]] = [
        ([OutputTextDelta("x")] * 12, 0), ([OutputTextDelta("y")] * 3, 0),
        ([OutputTextDelta("a"), OutputItemDone(message)], 1), ([OutputTextDelta("b")] * 9, 1),
        ([Completed(response_id="resp_1", token_usage=None)], 2)]
    results = {}
    for keep_text in (True, False):
        for counted in (True, False):
            source = Counting()
            turn = _Seen(None, None, None, time.monotonic, keep_text)
            for events, mark in reads:
                source.other_events = mark
                turn.add(events, source if counted else None)
            results[keep_text, counted] = attrs.evolve(turn.result("stop"),
                                                       time_to_first_event=None)
    for keep_text in (True, False):
        assert results[keep_text, True] == results[keep_text, False]
    assert results[True, True].text == "x" * 12 + "yyy" + "a" + "b" * 9
    assert results[False, True].text == "ab"  # the message item's text
    assert results[False, True].items == [message]
    assert results[False, True].response_id == "resp_1"


def test_a_wrapping_decoder_answers_for_the_events_it_adds() -> None:
    # A third-party decoder that wraps another (``inner``, as SseStreamDecoder does) and adds
    # an event of its own: the count that matters is the wrapper's, so an observer that asked
    # only for the end still sees the added item, with or without a count of the wrapper's.
    from support.recording_transport import stream_response

    from codexapi import ResponseStream
    from codexapi.events import OutputItemDone
    from codexapi.items import item_from_json
    from codexapi.sse import SseStreamDecoder
    from codexapi_plugins.wire_responses import ResponsesDecoder

    note = item_from_json({"type": "message", "role": "assistant",
                           "content": [{"type": "output_text", "text": "note"}]})

    class Annotating:
        def __init__(self) -> None:
            self._sse = SseStreamDecoder(ResponsesDecoder())
            self.inner = self._sse.inner  # the counting Responses decoder
            self.reads = 0

        @property
        def done(self) -> bool:
            return self._sse.done

        def feed_data(self, data: bytes) -> list[Any]:
            self.reads += 1
            events = self._sse.feed_data(data)
            return [*events, OutputItemDone(note)] if self.reads == 3 else events

        def close(self) -> list[Any]:
            return self._sse.close()

    delta = b'data: {"type":"response.output_text.delta","delta":"a"}\n\n'
    done = b'data: {"type":"response.completed","response":{"id":"r1"}}\n\n'
    pieces = [delta * 12] * 5 + [done]
    ended: list[StreamResult] = []
    stream = ResponseStream(stream_response(pieces), Annotating(),
                            on_end=lambda result, error: ended.append(result),
                            keep_text=False)
    assert sum(1 for _ in stream) == 12 * 5 + 2
    [result] = ended
    assert result.items == [note] and result.response_id == "r1"
