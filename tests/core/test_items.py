"""Typed items: decoding picks the class on ``type``, keeps the JSON as ``.raw``, sends it back
unchanged; unknown or malformed items stay generic; misspelt attributes are AttributeErrors;
tool-call arguments parse into values or a typed error; ``client.create`` is stream + collect;
real recorded streams decode into typed items on both wires."""

from __future__ import annotations

import inspect
import json
from typing import Any

import attrs
import pytest
from conftest import SHARED, make_client

import codexapi
from codexapi import (
    ApiError,
    Client,
    CodexApiError,
    Compaction,
    CustomToolCall,
    CustomToolCallOutput,
    FunctionCall,
    FunctionCallOutput,
    ImageGenerationCall,
    Item,
    LocalShellCall,
    Message,
    OutputItemDone,
    OutputParseError,
    Reasoning,
    ResponsesRequest,
    StreamError,
    StreamResult,
    ToolArgumentsError,
    WebSearchCall,
    WireApi,
)
from codexapi.convert import event_from_json, event_to_json, get_converter, item_to_json
from codexapi.items import item_from_json
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER
from codexapi.sse import Decoder
from codexapi.testing.formats import load_interactions
from codexapi_plugins.wire_chat import ChatDecoder
from codexapi_plugins.wire_responses import ResponsesDecoder

SAMPLES: list[tuple[type[Item], dict[str, Any]]] = [
    (Message, {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
               "phase": "final_answer"}),
    (FunctionCall, {"type": "function_call", "id": "fc_1", "status": "completed",
                    "name": "shell", "arguments": '{"cmd": ["ls"]}', "call_id": "call_1"}),
    (FunctionCallOutput, {"type": "function_call_output", "call_id": "call_1",
                          "output": "a b"}),
    (Reasoning, {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAA",
                 "summary": [{"type": "summary_text", "text": "Plan."}]}),
    (CustomToolCall, {"type": "custom_tool_call", "id": "ctc_1", "status": "completed",
                      "call_id": "call_2", "name": "apply_patch",
                      "input": "*** Begin Patch\n*** End Patch"}),
    (CustomToolCallOutput, {"type": "custom_tool_call_output", "call_id": "call_2",
                            "output": "Done"}),
    (LocalShellCall, {"type": "local_shell_call", "id": "lsh_1", "call_id": "call_3",
                      "status": "completed",
                      "action": {"type": "exec", "command": ["ls"], "env": {}}}),
    (WebSearchCall, {"type": "web_search_call", "id": "ws_1", "status": "completed",
                     "action": {"type": "search", "query": "weather"}}),
    (ImageGenerationCall, {"type": "image_generation_call", "id": "ig_1",
                           "status": "completed", "result": "iVBORw0KGgo=",
                           "revised_prompt": "A cat"}),
    (Compaction, {"type": "compaction", "id": "cmp_1", "encrypted_content": "blob"}),
    (Reasoning, {"type": "reasoning", "id": "rs_2", "summary": [], "content": None,
                 "encrypted_content": None, "status": None}),  # explicit nulls stay
]


@pytest.mark.parametrize(("cls", "raw"), SAMPLES, ids=[f"{c.__name__}-{i}" for i, (c, _) in
                                                       enumerate(SAMPLES)])
def test_each_type_decodes_to_its_class_and_goes_back_unchanged(cls: type[Item],
                                                                 raw: dict[str, Any]) -> None:
    sent = json.dumps(raw)
    item = item_from_json(raw)
    assert type(item) is cls and isinstance(item, Item)
    assert item.raw is raw and item.type == raw["type"]
    for name, value in raw.items():  # every JSON field reads as an attribute
        assert getattr(item, name) == value
    # Sent back as input: the JSON as it came, key order included.
    assert json.dumps(item_to_json(item)) == sent
    assert json.dumps(item.to_dict()) == sent
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.id = "other"  # type: ignore[misc]


def test_misspelt_attributes_are_attribute_errors_naming_the_fields() -> None:
    call = item_from_json(dict(SAMPLES[1][1]))
    with pytest.raises(AttributeError, match=r"'argumets'.*arguments, call_id"):
        call.argumets  # noqa: B018
    generic = item_from_json({"type": "mcp_call", "server_label": "docs"})
    assert type(generic) is Item and generic.server_label == "docs"
    with pytest.raises(AttributeError, match="server_lable"):
        generic.server_lable  # noqa: B018
    assert not hasattr(generic, "name")
    # Fields a class models read as their default when the JSON lacks them.
    assert item_from_json({"type": "function_call", "name": "f", "arguments": "{}",
                           "call_id": "c"}).id is None


@pytest.mark.parametrize("raw", [
    {"type": "function_call", "name": "f", "arguments": "{}"},              # no call_id
    {"type": "function_call", "name": "f", "arguments": {"a": 1}, "call_id": "c"},  # not text
    {"type": "message", "role": "assistant", "content": 5},
    {"type": "compaction"},
    {"type": ["message"], "role": "user", "content": "x"},
])
def test_malformed_known_types_stay_generic_and_lose_nothing(raw: dict[str, Any]) -> None:
    item = item_from_json(raw)
    assert type(item) is Item and item.raw == raw
    assert item_to_json(item) == raw


def test_built_items_equal_decoded_ones_and_evolve_updates_what_is_sent() -> None:
    raw = dict(SAMPLES[1][1])
    decoded = item_from_json(raw)
    built = FunctionCall(name="shell", arguments='{"cmd": ["ls"]}', call_id="call_1",
                         id="fc_1", status="completed")
    assert decoded == built
    assert built.raw == raw  # computed for a built item
    changed = attrs.evolve(decoded, arguments="{}", status=None)
    assert item_to_json(changed) == {k: v for k, v in raw.items() if k != "status"} | {
        "arguments": "{}"}
    assert Message(role="user", content="Hi").raw == {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    assert Message(role="assistant", content="Hi").text == "Hi"
    assert item_from_json(dict(SAMPLES[3][1])).summary_text == "Plan."  # type: ignore[attr-defined]
    # Hashable by identity fields, like generic items, though content is a list.
    assert hash(decoded) == hash(built) and len({decoded, built, OutputItemDone(decoded)}) == 2


def test_the_converter_structures_items_through_the_same_dispatch() -> None:
    conv = get_converter()
    raw = dict(SAMPLES[1][1])
    assert type(conv.structure(raw, Item)) is FunctionCall
    assert conv.structure(raw, FunctionCall) == item_from_json(dict(raw))
    with pytest.raises(ValueError, match="does not fit Message"):
        conv.structure(raw, Message)
    assert conv.unstructure(item_from_json(dict(raw))) == raw
    # Events carrying items round-trip through JSON (`codexapi chat --json`) as typed items.
    event = OutputItemDone(item_from_json(dict(raw)))
    back = event_from_json(event_to_json(event))
    assert back == event and type(back.item) is FunctionCall  # type: ignore[attr-defined]


# --- parsed_arguments ----------------------------------------------------------------------


@attrs.frozen
class Shell:
    cmd: list[str]
    timeout_ms: int = 1000


def call(arguments: str) -> FunctionCall:
    return FunctionCall(name="shell", arguments=arguments, call_id="call_9")


def test_parsed_arguments_decode_and_structure() -> None:
    assert call('{"cmd": ["ls", "-l"]}').parsed_arguments() == {"cmd": ["ls", "-l"]}
    assert call("  ").parsed_arguments() == {}  # a tool without parameters
    assert call('{"cmd": ["ls"]}').parsed_arguments(Shell) == Shell(["ls"])


@pytest.mark.parametrize(("arguments", "detail"), [
    ('{"cmd": ["ls"', "not valid JSON"),
    ('{"cmd": 3}', "not a valid Shell"),
    ('{"command": ["ls"]}', "not a valid Shell"),
    ('{"cmd": ["ls"], "timeout_ms": "1000"}', "expected int @ $.timeout_ms"),
    ('{"cmd": "ls"}', "$.cmd"),  # a string is not a list of strings
])
def test_bad_arguments_are_a_typed_error_naming_the_call(arguments: str, detail: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        call(arguments).parsed_arguments(Shell)
    err = info.value
    assert isinstance(err, OutputParseError) and isinstance(err, CodexApiError)
    assert err.name == "shell" and err.call_id == "call_9" and err.text == arguments
    assert "'shell'" in str(err) and "call_9" in str(err) and detail in str(err)
    assert not err.retryable


# --- end to end -----------------------------------------------------------------------------

TOOLS = [{"type": "function", "name": "lookup", "description": "Look a word up",
          "parameters": {"type": "object", "properties": {"input": {"type": "string"}},
                         "required": ["input"]}}]


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
def test_a_tool_turn_gives_typed_calls_that_go_back_as_input(server: EmbeddedServer,
                                                             wire: WireApi) -> None:
    with make_client(server, wire) as client:
        first = ResponsesRequest(model="m", input="use the tool on apples", tools=TOOLS)
        done = [e.item for e in client.stream(first) if isinstance(e, OutputItemDone)]
        calls = [i for i in done if isinstance(i, FunctionCall)]
        assert len(calls) == 1 and calls[0].name == "lookup"
        assert calls[0].parsed_arguments() == {"input": "use the tool on apples"}
        # The next turn replays the call with its output; the scripted model answers it.
        second = attrs.evolve(first, input=[*first.input, *done, FunctionCallOutput(
            call_id=calls[0].call_id, output="a fruit")])
        result = client.create(second)
    assert result.text == f"Tool {calls[0].call_id} returned: a fruit"
    assert all(type(i) is Message for i in result.items)


def test_compact_returns_typed_items(client: Client) -> None:
    items = client.compact(ResponsesRequest(model="m", input="Hello"))
    assert [type(i) for i in items] == [Message, Compaction]
    assert items[1].encrypted_content.startswith("codexapi-compaction:")  # type: ignore[attr-defined]


def test_create_is_stream_then_collect(client: Client) -> None:
    req = ResponsesRequest(model="m", input="Hello")
    result = client.create(req, conversation_id="conv-1")
    assert isinstance(result, StreamResult) and result.text == "You said: Hello"
    assert result.usage is not None and result.response_id
    streamed = client.stream(req, conversation_id="conv-1").collect()
    assert [attrs.evolve(i, id=None) for i in result.items] == [  # type: ignore[misc]
        attrs.evolve(i, id=None) for i in streamed.items]  # type: ignore[misc]
    stream_params = inspect.signature(Client.stream).parameters
    assert inspect.signature(Client.create).parameters == stream_params


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
@pytest.mark.parametrize(("plan", "error"), [("400", ApiError), ("drop@3", StreamError)])
def test_create_raises_what_stream_raises(server: EmbeddedServer, wire: WireApi, plan: str,
                                          error: type[Exception]) -> None:
    req = ResponsesRequest(model="m", input="Hello there you")
    with make_client(server, wire) as client:
        with pytest.raises(error) as created:
            client.create(req, headers={FAULT_HEADER: plan})
        with pytest.raises(error) as streamed:
            client.stream(req, headers={FAULT_HEADER: plan}).collect()
        # The client goes on after a failed call.
        assert client.create(req).text == "You said: Hello there you"
    assert type(created.value) is type(streamed.value)
    assert str(created.value).split(" (request id")[0] == str(streamed.value).split(
        " (request id")[0]


# --- real recordings ------------------------------------------------------------------------

REAL = SHARED / "real-cassettes"


def decoded_items(wire: str, body: bytes) -> list[Item]:
    decoder = ChatDecoder() if wire == "chat" else ResponsesDecoder()
    sse = Decoder()
    items: list[Item] = []
    try:
        for message in [*sse.feed(body), *sse.close()]:
            items += [e.item for e in decoder.feed(message) if isinstance(e, OutputItemDone)]
    except CodexApiError:
        pass  # recorded failures: the items before them still count
    return items


@pytest.mark.shared("real-cassettes")
def test_real_streams_decode_into_typed_items() -> None:
    seen: dict[tuple[str, str], set[type[Item]]] = {}
    for path in sorted(REAL.rglob("*.yaml")):
        for it in load_interactions(path):
            if not (it.is_sse and it.status == 200):
                continue
            wire = "chat" if "chat/completions" in it.uri else "responses"
            for item in decoded_items(wire, it.decoded_body):
                seen.setdefault((wire, item.raw["type"]), set()).add(type(item))
                assert item_to_json(item) == item.raw
    assert seen[("responses", "function_call")] == {FunctionCall}
    assert seen[("chat", "function_call")] == {FunctionCall}
    assert seen[("responses", "message")] == {Message}
    assert seen[("chat", "message")] == {Message}
    assert seen[("responses", "reasoning")] == {Reasoning}
    for (_, kind), classes in seen.items():  # every known type decoded to its class
        assert classes == {codexapi.items.ITEM_TYPES.get(kind, Item)}, (kind, classes)
