"""``codexapi_on_stream_end(provider, request, result, error)``: once per streamed turn, on
success, on a failure inside the stream, on a failure before it opened, and when the caller
closes it early; with usage, ids, time to first event and the call's extensions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from codexapi import (
    ApiError,
    Client,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    StreamError,
    StreamResult,
    hookimpl,
)
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER

REQ = ResponsesRequest(model="m", input="Hello there")


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


def client(server: EmbeddedServer, ends: Ends, **kw: Any) -> Client:
    provider = Provider(base_url=server.base_url, retry=RetryPolicy(max_attempts=2,
                                                                   base_delay=0.0), **kw)
    return Client(provider, plugins=[ends], load_entrypoints=False, sleep=lambda _: None)


def test_a_completed_turn_reports_usage_ids_timing_once(srv: EmbeddedServer) -> None:
    ends = Ends()
    with client(srv, ends) as c:
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
    with client(srv, ends) as c, pytest.raises(StreamError):
        c.stream(REQ, headers=fault("drop@3")).collect()
    [(_, result, error)] = ends.calls
    assert isinstance(error, StreamError) and result.finish_reason == "error"


def test_a_failure_before_the_stream_opens_reports_it_too(srv: EmbeddedServer) -> None:
    ends = Ends()
    with client(srv, ends) as c, pytest.raises(ApiError):
        c.stream(REQ, headers=fault("500x5"))
    [(_, result, error)] = ends.calls
    assert isinstance(error, ApiError) and error.status == 500 and error.attempts == 2
    assert result.finish_reason == "error" and result.text == ""
    assert result.extensions is ends.extensions[0]  # the same dict every attempt had
    assert len(ends.extensions) == 2 and ends.extensions[1] is ends.extensions[0]


def test_closing_early_reports_a_cancelled_turn_once(srv: EmbeddedServer) -> None:
    ends = Ends()
    with client(srv, ends) as c:
        with c.stream(REQ) as events:
            next(iter(events))
        never_read = c.stream(REQ)
        never_read.close()
        never_read.close()
    assert [(r.finish_reason, e) for _, r, e in ends.calls] == [("cancelled", None)] * 2


def test_function_calls_finish_as_tool_calls(srv: EmbeddedServer) -> None:
    ends = Ends()
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    with client(srv, ends) as c:
        c.stream(ResponsesRequest(model="m", input="call the tool", tools=tools)).collect()
    [(_, result, _)] = ends.calls
    assert result.function_calls and result.finish_reason == "tool_calls"


def test_the_observed_turn_keeps_text_and_items_whatever_the_reads_hold() -> None:
    import time

    from codexapi.events import Completed, OutputItemDone, OutputTextDelta
    from codexapi.items import item_from_json
    from codexapi.stream import _Turn

    class WireDelta(OutputTextDelta):  # a wire's own delta class
        pass

    message = item_from_json({"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": "ab"}]})
    turn = _Turn(None, None, None, time.monotonic)
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
