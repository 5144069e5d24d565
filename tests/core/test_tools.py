"""Tools from plain functions, and ``Client.run_tools``: the loop on every wire, its errors,
deadline, retries and observers."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import time
from typing import Annotated, Any, Literal

import attrs
import pydantic
import pytest
from conftest import make_client

from codexapi import (
    BearerAuth,
    Client,
    ConfigError,
    DeadlineExceeded,
    FunctionCall,
    FunctionCallOutput,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    Tool,
    ToolArgumentsError,
    ToolLoopLimit,
    ToolRun,
    WireApi,
    hookimpl,
)
from codexapi.server import EmbeddedServer
from codexapi.testing import MockResponse, MockTransport


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@dataclasses.dataclass
class Place:
    city: str
    country: str | None = None


class Window(pydantic.BaseModel):
    days: int
    hourly: bool = False


def forecast(place: Place, window: Window, unit: Unit = Unit.C,
             tags: list[str] | None = None,
             tone: Annotated[Literal["plain", "cheerful"], "How to say it"] = "plain",
             ) -> dict[str, Any]:
    """The weather to come.

    Looks a place up."""
    return {"city": place.city, "days": window.days, "unit": unit.value, "tone": tone}


def test_a_tool_from_a_function() -> None:
    tool = Tool.from_function(forecast)
    assert tool.name == "forecast"
    assert tool.description == "The weather to come.\n\nLooks a place up."
    schema = tool.schema
    assert schema["required"] == ["place", "window"]
    assert schema["properties"]["unit"] == {"enum": ["celsius", "fahrenheit"]}
    assert schema["properties"]["tags"] == {"anyOf": [{"type": "array", "items": {
        "type": "string"}}, {"type": "null"}]}
    assert schema["properties"]["tone"] == {"enum": ["plain", "cheerful"],
                                            "description": "How to say it"}
    assert schema["properties"]["place"] == {"$ref": "#/$defs/Place"}
    assert schema["$defs"]["Window"]["properties"]["days"]["type"] == "integer"
    assert tool.to_json() == {"type": "function", "name": "forecast",
                              "description": tool.description, "parameters": schema,
                              "strict": False}
    strict = Tool.from_function(forecast, name="weather", strict=True)
    assert strict.name == "weather" and strict.to_json()["strict"] is True
    assert strict.schema["required"] == ["place", "window", "unit", "tags", "tone"]


def test_arguments_are_structured_into_the_annotated_types() -> None:
    tool = Tool.from_function(forecast)
    call = FunctionCall(name="forecast", call_id="c1", arguments=json.dumps(
        {"place": {"city": "Lyon"}, "window": {"days": 2}, "unit": "fahrenheit"}))
    assert tool.arguments(call) == ([], {"place": Place("Lyon"), "window": Window(days=2),
                                         "unit": Unit.F})
    assert json.loads(tool.run(call)) == {"city": "Lyon", "days": 2, "unit": "fahrenheit",
                                          "tone": "plain"}
    for arguments, detail in [({"window": {"days": 1}}, "are incomplete (missing 'place')"),
                              ({"place": {"city": "a"}, "window": {"days": "x"}, "when": 1},
                               "are not all known (unexpected: when)"),
                              ({"place": {"city": "a"}, "window": {"days": "x"}},
                               "are not valid for 'window': not a valid Window (days: Input "
                               "should be a valid integer")]:
        bad = FunctionCall(name="forecast", call_id="c2", arguments=json.dumps(arguments))
        with pytest.raises(ToolArgumentsError) as info:
            tool.arguments(bad)
        assert detail in str(info.value)


def nameless(*values: int) -> int:
    return sum(values)


def untyped(x):  # type: ignore[no-untyped-def]
    return x


def test_functions_that_cannot_be_tools_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"cannot take \*values"):
        Tool.from_function(nameless)
    with pytest.raises(ConfigError, match="annotate parameter 'x'"):
        Tool.from_function(untyped)
    with pytest.raises(ConfigError, match="no usable name"):
        Tool.from_function(lambda: 1)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def lookup(input: str) -> str:
    """Look a word up."""
    return f"{input} is a fruit"


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT, "responses_websocket"])
def test_run_tools_on_every_wire(server: EmbeddedServer, wire: str) -> None:
    request = ResponsesRequest(model="m", input="use lookup on apples")
    with make_client(server, wire) as client:  # type: ignore[arg-type]
        run = client.run_tools(request, [add, Tool.from_function(lookup)])
    assert isinstance(run, ToolRun) and run.turns == 2
    [(call, output)] = run.calls
    # The scripted model calls the first tool offered with schema-valid arguments.
    assert call.name == "add" and output == "2" and json.loads(call.arguments) == {"a": 1,
                                                                                   "b": 1}
    assert run.text == f"Tool {call.call_id} returned: 2" == run.result.text
    sent = server.requests[-1][3]
    names = [t.get("name") or t["function"]["name"] for t in sent["tools"]]
    assert names == ["add", "lookup"]
    # The input to go on from: the prompt, the call, its output, the answer; no item ids.
    types = [i["type"] if isinstance(i, dict) else i.type for i in run.input]
    assert types == ["message", "function_call", "function_call_output", "message"]
    assert isinstance(run.input[2], FunctionCallOutput) and run.input[2].output == "2"
    assert all("id" not in i for i in run.input if isinstance(i, dict))
    with make_client(server, wire) as client:  # type: ignore[arg-type]
        more = client.create(request.new(input=[*run.input, {"role": "user",
                                                              "content": "thanks"}]))
    assert more.text == "You said: thanks"


def test_a_tool_that_raises_tells_the_model_and_the_log(server: EmbeddedServer,
                                                       caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    key = "sk-tool-secret-123456"

    def lookup(input: str) -> str:
        raise RuntimeError(f"backend refused key {key} for {input!r}")

    provider = Provider(base_url=server.base_url)
    with caplog.at_level(logging.WARNING, "codexapi"), \
            Client(provider, auth=BearerAuth(key), load_entrypoints=False) as client:
        run = client.run_tools(ResponsesRequest(model="m", input="use it"), [lookup])
    [(_, output)] = run.calls
    assert output == "Error: RuntimeError: backend refused key <redacted> for 'use it'"
    assert run.text.endswith(output)
    [record] = [r for r in caplog.records if "tool lookup" in r.getMessage()]
    assert key not in record.getMessage() and "<redacted>" in record.getMessage()


def always_calling(request: Any) -> MockResponse:
    """A model that calls ``lookup`` on every turn."""
    body = json.loads(request.body)
    n = sum(1 for i in body["input"] if i.get("type") == "function_call_output")
    call = {"type": "function_call", "name": "lookup", "call_id": f"call_{n}",
            "arguments": json.dumps({"input": f"try {n}"})}
    if n == 1:
        call["name"] = "missing"
    return MockResponse.sse({"type": "response.output_item.done", "item": call},
                            {"type": "response.completed", "response": {"id": f"r{n}"}},
                            headers={"content-type": "text/event-stream"})


def test_past_max_turns_a_tool_loop_limit_carries_the_run() -> None:
    transport = MockTransport(always_calling)
    with Client(Provider(base_url="http://127.0.0.1:9/v1"), transport=transport,
                load_entrypoints=False) as client, \
            pytest.raises(ToolLoopLimit, match="max_turns=3") as info:
        client.run_tools(ResponsesRequest(model="m", input="go"), [lookup], max_turns=3)
    run = info.value.run
    assert run.turns == 3 and len(transport.requests) == 3
    assert [(c.call_id, out) for c, out in run.calls] == [
        ("call_0", "try 0 is a fruit"), ("call_1", "Error: there is no tool named 'missing'"),
        ("call_2", "try 2 is a fruit")]
    # The last calls' outputs are in the input, ready for another turn.
    assert run.input[-1] == FunctionCallOutput(call_id="call_2", output="try 2 is a fruit")
    with pytest.raises(ConfigError, match="max_turns"):
        Client(Provider(), transport=transport).run_tools(
            ResponsesRequest(model="m"), [lookup], max_turns=0)


def test_the_deadline_bounds_the_whole_run(server: EmbeddedServer) -> None:
    def lookup(input: str) -> str:
        time.sleep(0.6)
        return "late"

    with make_client(server) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded, match="running tools"):
            client.run_tools(ResponsesRequest(model="m", input="use it"), [lookup],
                             deadline=0.5)
        assert time.monotonic() - started < 2


class Ends:
    def __init__(self) -> None:
        self.turns: list[str | None] = []

    @hookimpl
    def codexapi_on_stream_end(self, provider: Any, request: Any, result: Any,
                               error: Any) -> None:
        self.turns.append(result.finish_reason)


def test_each_turn_is_retried_and_observed_as_any_call(server: EmbeddedServer) -> None:
    ends, slept = Ends(), []
    provider = Provider(base_url=server.base_url, retry=RetryPolicy(max_attempts=3))
    with Client(provider, plugins=[ends], load_entrypoints=False,
                sleep=slept.append) as client:
        run = client.run_tools(ResponsesRequest(model="m", input="use it"), [lookup],
                               headers={"x-codexapi-fault": "500x1",
                                        "x-codexapi-fault-id": "tools-retry"})
    assert run.turns == 2 and len(slept) == 1
    assert ends.turns == ["tool_calls", "stop"]


def test_events_of_every_turn_reach_on_event(client: Client) -> None:
    seen: list[str] = []
    client.run_tools(ResponsesRequest(model="m", input="use it"), [lookup],
                     on_event=lambda event: seen.append(type(event).__name__))
    assert seen.count("Completed") == 2 and "OutputTextDelta" in seen


@attrs.frozen
class Note:
    text: str


def test_outputs_that_are_not_strings_are_json() -> None:
    from codexapi.tools import output_text

    assert output_text("plain") == "plain"
    assert output_text(Note("hi")) == '{"text":"hi"}'
    assert output_text(Window(days=2)) == '{"days":2,"hourly":false}'
    assert output_text(None) == "null"
    assert output_text({"a": [1, 2]}) == '{"a":[1,2]}'
