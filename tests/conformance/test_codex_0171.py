"""The request the Codex CLI 0.171.0 sends, rebuilt through ResponsesRequest and
SessionContext and compared with the captures in ../shared/reference/codex-cli-0.171/, plus
the request fields users of the OpenAI API need (each omitted when None) on both wires."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED
from support.recording_transport import (
    CHAT_DONE,
    RESPONSES_DONE,
    CannedResponse,
    RecordingTransport,
    json_response,
    sse_response,
)

from codexapi import (
    Client,
    CompactionTrigger,
    ConfigError,
    FunctionCall,
    FunctionCallOutput,
    Message,
    NoAuth,
    Provider,
    Reasoning,
    ReasoningConfig,
    ResponsesRequest,
    SessionContext,
    TextControls,
    TurnState,
    WireApi,
)

CAPTURES = SHARED / "reference" / "codex-cli-0.171"
NEEDS_CAPTURES = pytest.mark.shared("reference/codex-cli-0.171")
REQUEST_FILES = sorted(p for p in CAPTURES.glob("responses_*.json")
                       if "body" in json.loads(p.read_text()))
SESSION_HEADERS = ("version", "x-codex-beta-features", "x-codex-window-id",
                   "x-codex-turn-metadata", "x-client-request-id", "session-id", "thread-id",
                   "originator")


def typed_item(item: dict[str, Any]) -> Any:
    """The capture's item as the library's typed value, where one holds all its keys."""
    keys = set(item) - {"type"}
    kind = item["type"]
    if kind == "message" and keys <= {"id", "role", "content", "status"}:
        return Message(role=item["role"], content=item["content"], id=item.get("id"),
                       status=item.get("status"))
    if kind == "function_call" and keys <= {"id", "status", "name", "arguments", "call_id"}:
        return FunctionCall(name=item["name"], arguments=item["arguments"],
                            call_id=item["call_id"], id=item.get("id"),
                            status=item.get("status"))
    if kind == "function_call_output" and keys <= {"id", "call_id", "output"}:
        return FunctionCallOutput(call_id=item["call_id"], output=item["output"],
                                  id=item.get("id"))
    if kind == "reasoning" and keys <= {"id", "summary", "content", "encrypted_content"}:
        return Reasoning(summary=item["summary"], content=item.get("content"),
                         encrypted_content=item.get("encrypted_content"), id=item.get("id", ""))
    if kind == "compaction_trigger" and not keys:
        return CompactionTrigger()
    return item  # e.g. openai-provider items with internal_chat_message_metadata_passthrough


def request_from(body: dict[str, Any]) -> ResponsesRequest:
    text = body.get("text")
    return ResponsesRequest(
        model=body["model"], instructions=body.get("instructions", ""),
        input=[typed_item(i) for i in body["input"]], tools=body.get("tools"),
        tool_choice=body["tool_choice"], parallel_tool_calls=body["parallel_tool_calls"],
        reasoning=ReasoningConfig(**body["reasoning"]), store=body["store"],
        include=body["include"], prompt_cache_key=body.get("prompt_cache_key"),
        text=TextControls(**text) if text else None, client_metadata=body["client_metadata"])


def session_from(headers: dict[str, str]) -> SessionContext:
    return SessionContext(
        session_id=headers.get("session-id"), thread_id=headers.get("thread-id"),
        client_request_id=headers.get("x-client-request-id"),
        window_id=headers.get("x-codex-window-id"),
        turn_metadata=headers.get("x-codex-turn-metadata"),
        beta_features=headers.get("x-codex-beta-features"),
        originator=headers.get("originator"), version=headers.get("version"))


@NEEDS_CAPTURES
def test_the_captures_are_there() -> None:
    assert len(REQUEST_FILES) == 5, CAPTURES


@NEEDS_CAPTURES
@pytest.mark.parametrize("path", REQUEST_FILES, ids=lambda p: p.stem)
def test_captured_request_replays_through_responses_request(path: Path) -> None:
    capture = json.loads(path.read_text())
    headers = {k.lower(): v for k, v in capture["headers"]}
    request = request_from(capture["body"])
    transport = RecordingTransport(RESPONSES_DONE)
    provider = Provider(name="local", base_url="http://127.0.0.1:1/v1")
    with Client(provider, auth=NoAuth(), load_entrypoints=False, transport=transport) as client:
        client.stream(request, session=session_from(headers)).collect()
    sent = transport.last
    assert sent.url.endswith(capture["path"])
    assert json.loads(sent.body or b"") == capture["body"]  # same keys and values
    sent_headers = {k.lower(): v for k, v in sent.headers.items()}
    for name in SESSION_HEADERS:
        assert sent_headers.get(name) == headers.get(name), name
    # No legacy underscore headers and no openai-beta on an HTTP POST, as the CLI.
    assert not {"conversation_id", "session_id", "openai-beta"} & set(sent_headers)


@NEEDS_CAPTURES
def test_typed_items_give_the_cli_item_shapes() -> None:
    body = json.loads((CAPTURES / "responses_exec_tool_followup.json").read_text())["body"]
    typed = [typed_item(i) for i in body["input"]]
    assert isinstance(typed[4], Reasoning) and isinstance(typed[5], FunctionCall)
    assert isinstance(typed[6], FunctionCallOutput)
    sent = ResponsesRequest(model="m", input=typed[4:])
    from codexapi_plugins.wire_responses import build_body

    items = build_body(Provider(), sent)["input"]
    assert items[0]["encrypted_content"] is None and "encrypted_content" in items[0]
    assert items[1]["status"] == "completed" and items[1]["id"] == "fc_000000000177"
    assert items[2]["id"].startswith("fco_")


def test_session_context_for_thread_and_turn_metadata_mapping() -> None:
    ctx = SessionContext.for_thread("t-1", turn_metadata={"turn_id": "u", "window_number": 0},
                                    beta_features=["remote_compaction_v2", "x"],
                                    originator="codex_exec", version="0.171.0")
    assert ctx.headers() == {
        "version": "0.171.0", "x-codex-beta-features": "remote_compaction_v2,x",
        "x-codex-window-id": "t-1:0",
        "x-codex-turn-metadata": '{"turn_id":"u","window_number":0}',
        "x-client-request-id": "t-1", "session-id": "t-1", "thread-id": "t-1",
        "originator": "codex_exec"}
    with pytest.raises(ConfigError, match="x-codex-window-id"):
        SessionContext(window_id="a\r\nInjected: 1").headers()


def test_old_conversation_and_session_id_arguments_keep_working() -> None:
    transport = RecordingTransport(RESPONSES_DONE)
    with Client(Provider(), auth=NoAuth(), load_entrypoints=False,
                transport=transport) as client:
        client.stream(ResponsesRequest(model="m", input="hi"), conversation_id="c-1",
                      session=SessionContext.for_thread("t-1")).collect()
    assert transport.header("conversation_id") == "c-1"
    assert transport.header("session_id") == "c-1"
    assert transport.header("session-id") == "t-1"


def test_turn_state_is_captured_and_echoed_within_the_turn_only() -> None:
    first = sse_response('{"type":"response.completed","response":{"id":"r1"}}')
    first.headers["x-codex-turn-state"] = "ts-1"
    compact = json_response({"output": []}, headers={"x-codex-turn-state": "ts-other"})
    transport = RecordingTransport(first, RESPONSES_DONE, compact, RESPONSES_DONE)
    ctx = SessionContext.for_thread("t")
    request = ResponsesRequest(model="m", input="hi")
    with Client(Provider(), auth=NoAuth(), load_entrypoints=False,
                transport=transport) as client:
        client.stream(request, session=ctx).collect()
        client.stream(request, session=ctx).collect()
        client.compact(request, session=ctx)
        client.stream(request, session=ctx.new_turn()).collect()
    assert transport.header("x-codex-turn-state", 0) is None
    assert transport.header("x-codex-turn-state", 1) == "ts-1"
    assert transport.header("x-codex-turn-state", 2) == "ts-1"  # first value wins
    assert transport.header("x-codex-turn-state", 3) is None  # a new turn starts clean
    assert ctx.turn_state.value == "ts-1"


def test_turn_state_from_compact_when_it_comes_first() -> None:
    state = TurnState()
    transport = RecordingTransport(json_response({"output": []},
                                                 headers={"x-codex-turn-state": "c-state"}),
                                   RESPONSES_DONE)
    ctx = SessionContext(session_id="s", turn_state=state)
    with Client(Provider(), auth=NoAuth(), load_entrypoints=False,
                transport=transport) as client:
        client.compact(ResponsesRequest(model="m"), session=ctx)
        client.stream(ResponsesRequest(model="m"), session=ctx).collect()
    assert state.value == "c-state" and transport.header("x-codex-turn-state") == "c-state"
    assert transport.header("session-id", 0) == "s"


# --- request fields users of the OpenAI API need ---------------------------------------------

EXTRA = dict(previous_response_id="resp_0", max_output_tokens=256, temperature=0.2, top_p=0.9,
             metadata={"k": "v"}, background=True, truncation="auto",
             safety_identifier="user-1", service_tier="flex")


def sent_body(wire: WireApi, request: ResponsesRequest) -> dict[str, Any]:
    transport = RecordingTransport(CHAT_DONE if wire is WireApi.CHAT else RESPONSES_DONE)
    provider = Provider(base_url="http://127.0.0.1:1/v1", wire=wire)
    with Client(provider, auth=NoAuth(), load_entrypoints=False,
                transport=transport) as client:
        client.stream(request).collect()
    body: dict[str, Any] = transport.body()
    return body


def test_responses_fields_each_omitted_when_none() -> None:
    plain = sent_body(WireApi.RESPONSES, ResponsesRequest(model="m", input="hi"))
    assert not set(EXTRA) & set(plain)
    assert not {"instructions", "tools", "client_metadata", "text"} & set(plain)
    full = sent_body(WireApi.RESPONSES, ResponsesRequest(model="m", input="hi", **EXTRA))
    assert {k: full[k] for k in EXTRA} == EXTRA


def test_extra_body_is_merged_last() -> None:
    body = sent_body(WireApi.RESPONSES, ResponsesRequest(
        model="m", input="hi", temperature=0.5,
        extra_body={"temperature": 1.0, "prompt_cache_retention": "24h"}))
    assert body["temperature"] == 1.0 and body["prompt_cache_retention"] == "24h"


def test_explicit_empty_tools_are_sent_as_the_cli_sends_them() -> None:
    assert sent_body(WireApi.RESPONSES, ResponsesRequest(model="m", tools=[]))["tools"] == []


def test_chat_maps_fields_to_their_chat_names() -> None:
    fields = {k: v for k, v in EXTRA.items()
              if k not in ("previous_response_id", "background", "truncation")}
    body = sent_body(WireApi.CHAT, ResponsesRequest(model="m", input="hi", **fields,
                                                    extra_body={"seed": 7}))
    assert body["max_completion_tokens"] == 256 and "max_output_tokens" not in body
    assert (body["temperature"], body["top_p"], body["metadata"], body["service_tier"],
            body["safety_identifier"], body["seed"]) == (0.2, 0.9, {"k": "v"}, "flex",
                                                         "user-1", 7)


@pytest.mark.parametrize("field", ["previous_response_id", "background", "truncation"])
def test_chat_refuses_responses_only_fields_before_sending(field: str) -> None:
    transport = RecordingTransport(CHAT_DONE)
    provider = Provider(base_url="http://127.0.0.1:1/v1", wire=WireApi.CHAT)
    with Client(provider, auth=NoAuth(), load_entrypoints=False,
                transport=transport) as client, pytest.raises(ConfigError, match=field):
        client.stream(ResponsesRequest(model="m", input="hi", **{field: EXTRA[field]}))
    assert transport.requests == []


def test_compact_body_carries_the_crate_fields() -> None:
    transport = RecordingTransport(CannedResponse(200, b'{"output": []}'))
    request = ResponsesRequest(model="m", input=[Message(role="user", content="x", id="m1")],
                               tools=[{"type": "function", "name": "f"}],
                               parallel_tool_calls=True, reasoning=ReasoningConfig("high"),
                               service_tier="priority", prompt_cache_key="t",
                               text=TextControls(verbosity="low"))
    with Client(Provider(), auth=NoAuth(), load_entrypoints=False,
                transport=transport) as client:
        client.compact(request)
    assert transport.body() == {
        "model": "m", "input": [{"type": "message", "id": "m1", "role": "user",
                                 "content": [{"type": "input_text", "text": "x"}]}],
        "tools": [{"type": "function", "name": "f"}], "parallel_tool_calls": True,
        "reasoning": {"effort": "high"}, "service_tier": "priority", "prompt_cache_key": "t",
        "text": {"verbosity": "low"}}
