"""Models are frozen values; the one converter round-trips events and keeps unknown ones."""

from __future__ import annotations

import attrs
import pytest

from codexapi import (
    Completed,
    FunctionCall,
    Item,
    Message,
    OutputItemDone,
    OutputTextDelta,
    Provider,
    RateLimits,
    RateLimitSnapshot,
    ReasoningSummaryDelta,
    ResponsesRequest,
    TokenUsage,
    WireApi,
)
from codexapi.convert import UnknownEvent, event_from_json, event_to_json, item_to_json
from codexapi.errors import ConfigError
from codexapi.events import RateLimitWindow


def test_models_are_frozen() -> None:
    for value in (Provider(), Message(role="user", content="x"), ResponsesRequest(model="m"),
                  OutputTextDelta("x"), Completed("r")):
        assert attrs.has(type(value))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            object.__setattr__  # noqa: B018 - the public way must fail:
            setattr(value, attrs.fields(type(value))[0].name, None)


def test_request_defaults_match_the_contract() -> None:
    req = ResponsesRequest(model="m")
    assert (req.tool_choice, req.parallel_tool_calls, req.reasoning, req.store, req.include,
            req.prompt_cache_key, req.text, req.tools) == ("auto", False, None, None, [], None,
                                                           None, None)
    assert ResponsesRequest(model="m", input="hi").input == [Message(role="user", content="hi")]


def test_wire_is_an_open_name_with_the_builtins_as_wireapi() -> None:
    assert Provider(wire="chat").wire is WireApi.CHAT
    assert Provider(wire=" Responses ").wire is WireApi.RESPONSES
    assert WireApi.CHAT == "chat" and Provider(wire=WireApi.CHAT).wire == "chat"
    # Any other name is a plugin's wire, looked up when a Client is made (tests/core/test_wires.py).
    assert Provider(wire="grpc").wire == "grpc"
    with pytest.raises(ConfigError, match="wire must be a wire's name"):
        Provider(wire="")


@pytest.mark.parametrize("event", [
    OutputTextDelta("hi"), ReasoningSummaryDelta("t", 2), Completed("r", TokenUsage(1, 0, 2, 0, 3)),
    Completed("r", None),
    OutputItemDone(Item({"type": "function_call", "name": "f", "arguments": "{}",
                         "call_id": "c"})),
    RateLimits(RateLimitSnapshot(primary=RateLimitWindow(12.5, 60, 1704069000))),
])
def test_events_round_trip_through_the_converter(event: object) -> None:
    data = event_to_json(event)  # type: ignore[arg-type]
    assert data["type"] == event.type  # type: ignore[attr-defined]
    assert event_from_json(data) == event


def test_unknown_event_types_are_kept() -> None:
    raw = {"type": "response.future_thing", "x": 1}
    event = event_from_json(raw)
    assert isinstance(event, UnknownEvent) and event.raw == raw and event.kind == raw["type"]
    assert event_to_json(event) == raw


def test_items_convert_to_responses_json() -> None:
    assert item_to_json(Message(role="assistant", content="ok")) == {
        "type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                             "text": "ok"}]}
    assert item_to_json(FunctionCall(name="f", arguments="{}", call_id="c")) == {
        "type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"}
    assert item_to_json({"type": "anything", "k": [1]}) == {"type": "anything", "k": [1]}
