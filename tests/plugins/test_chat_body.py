"""Chat request bodies (codex-api ChatRequestBuilder): vectors C1 and C4, and the rules
around them; paths and the compact refusal on the Chat wire."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_client
from support.recording_transport import CHAT_DONE, RecordingTransport

from codexapi import (
    Client,
    CodexApiError,
    FunctionCall,
    FunctionCallOutput,
    InvalidRequest,
    Message,
    Provider,
    Reasoning,
    ResponsesRequest,
    RetryPolicy,
    UnsupportedEndpointError,
    WireApi,
)
from codexapi_plugins.wire_chat import ChatIncludeUsage, build_messages, chat_tools


def chat_client(transport: RecordingTransport, *plugins: Any) -> Client:
    """An OpenAI Chat-wire client whose calls ``transport`` answers."""
    return make_client("https://api.openai.com/v1", WireApi.CHAT, name="openai",
                       transport=transport, plugins=plugins)


def test_c1_body_headers_and_path() -> None:
    transport = RecordingTransport(CHAT_DONE)
    request = ResponsesRequest(model="gpt-test", instructions="inst",
                               input=[Message(role="user", content=[
                                   {"type": "input_text", "text": "hi"}])])
    with chat_client(transport) as client:
        result = client.stream(request, conversation_id="conv-1", subagent="review").collect()
    assert result.text == "ok"
    assert transport.last.url == "https://api.openai.com/v1/chat/completions"
    assert transport.body() == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "inst"}, {"role": "user", "content": "hi"}],
        "stream": True,
        "tools": [],
    }
    assert transport.header("conversation_id") == "conv-1"
    assert transport.header("session_id") == "conv-1"
    assert transport.header("x-openai-subagent") == "review"
    assert transport.header("accept") == "text/event-stream"


C4_INPUT: list[Any] = [
    Message(role="user", content="list files"),
    Reasoning(content=[{"type": "reasoning_text", "text": "need ls"}]),
    FunctionCall(name="shell", arguments='{"cmd":["ls"]}', call_id="call_1"),
    FunctionCallOutput(call_id="call_1", output="a.txt"),
]
C4_MESSAGES = [
    {"role": "system", "content": "sys"},
    {"role": "user", "content": "list files"},
    {"role": "assistant", "content": None, "reasoning": "need ls",
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "shell", "arguments": '{"cmd":["ls"]}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
]


def test_c4_tool_round_trip_with_reasoning_anchored_on_the_call() -> None:
    assert build_messages("sys", C4_INPUT) == C4_MESSAGES


def test_c4_from_plain_responses_json_dicts() -> None:
    items = [
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "list files"}]},
        {"type": "reasoning", "summary": [],
         "content": [{"type": "reasoning_text", "text": "need ls"}]},
        {"type": "function_call", "name": "shell", "arguments": '{"cmd":["ls"]}',
         "call_id": "call_1"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
    ]
    assert build_messages("sys", items) == C4_MESSAGES


def test_no_reasoning_when_the_last_item_is_a_user_message() -> None:
    messages = build_messages("sys", [*C4_INPUT, Message(role="user", content="thanks")])
    assert not any("reasoning" in m for m in messages)
    assert messages[-1] == {"role": "user", "content": "thanks"}


def test_reasoning_attaches_to_the_previous_assistant_message_first() -> None:
    messages = build_messages("sys", [
        Message(role="user", content="hi"),
        Message(role="assistant", content="hello"),
        Reasoning(content=[{"type": "reasoning_text", "text": "a"},
                           {"type": "text", "text": "b"}]),
        FunctionCall(name="f", arguments="{}", call_id="c"),
    ])
    assert messages[2] == {"role": "assistant", "content": "hello", "reasoning": "ab"}
    assert "reasoning" not in messages[3]


def test_reasoning_rules_skip_blank_summary_only_and_unanchored() -> None:
    messages = build_messages("sys", [
        Message(role="user", content="hi"),
        Reasoning(summary=["only a summary"]),          # no content: never used
        Reasoning(content=[{"type": "reasoning_text", "text": "  "}]),  # blank
        Reasoning(content=[{"type": "reasoning_text", "text": "lost"}]),  # next is a tool msg
        FunctionCallOutput(call_id="c", output="x"),
    ])
    assert not any("reasoning" in m for m in messages)


def test_two_reasonings_append_on_the_same_anchor() -> None:
    messages = build_messages("sys", [
        Message(role="user", content="hi"),
        Message(role="assistant", content="hello"),
        Reasoning(content=[{"type": "reasoning_text", "text": "one "}]),
        Reasoning(content=[{"type": "reasoning_text", "text": "two"}]),
        Message(role="assistant", content="again"),
    ])
    assert messages[2] == {"role": "assistant", "content": "hello", "reasoning": "one "}
    assert messages[3] == {"role": "assistant", "content": "again", "reasoning": "two"}


def test_user_image_makes_an_array_and_text_stays_a_string() -> None:
    url = "data:image/png;base64,AAAA"
    messages = build_messages("", [
        Message(role="user", content=[{"type": "input_text", "text": "see"},
                                      {"type": "input_image", "image_url": url}]),
        Message(role="user", content=[{"type": "input_text", "text": "a"},
                                      {"type": "input_text", "text": "b"}]),
    ])
    assert messages[1]["content"] == [{"type": "text", "text": "see"},
                                      {"type": "image_url", "image_url": {"url": url}}]
    assert messages[2]["content"] == "ab"


def test_identical_assistant_text_is_sent_once() -> None:
    messages = build_messages("sys", [
        Message(role="user", content="q"),
        Message(role="assistant", content="same"),
        Message(role="user", content="q2"),
        Message(role="assistant", content="same"),
        Message(role="assistant", content="different"),
    ])
    assert [m["content"] for m in messages if m["role"] == "assistant"] == ["same", "different"]


def test_each_function_call_is_its_own_assistant_message() -> None:
    messages = build_messages("", [
        FunctionCall(name="a", arguments="{}", call_id="c1"),
        FunctionCall(name="b", arguments="[]", call_id="c2"),
        FunctionCallOutput(call_id="c1", output=[{"type": "input_text", "text": "r1"},
                                                 {"type": "input_image", "image_url": "u"}]),
    ])
    assert [m["tool_calls"][0]["id"] for m in messages[1:3]] == ["c1", "c2"]
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": [
        {"type": "text", "text": "r1"}, {"type": "image_url", "image_url": {"url": "u"}}]}


def test_other_item_kinds() -> None:
    messages = build_messages("", [
        {"role": "user", "content": "easy form"},
        {"type": "local_shell_call", "id": "ls1", "call_id": "c", "status": "completed",
         "action": {"type": "exec", "command": ["ls"]}},
        {"type": "custom_tool_call", "call_id": "cc", "name": "apply_patch", "input": "*** x"},
        {"type": "custom_tool_call_output", "call_id": "cc", "output": "done"},
        {"type": "web_search_call", "id": "ws"},
        {"type": "compaction", "encrypted_content": "zzz"},
        {"type": "something_new"},
    ])
    assert messages[1:] == [
        {"role": "user", "content": "easy form"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "ls1", "type": "local_shell_call", "status": "completed",
             "action": {"type": "exec", "command": ["ls"]}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "cc", "type": "custom", "custom": {"name": "apply_patch", "input": "*** x"}}]},
        {"role": "tool", "tool_call_id": "cc", "content": "done"},
    ]


@pytest.mark.parametrize("item", [
    {"type": "function_call", "name": "f", "arguments": "{}"},
    {"type": "function_call_output", "output": "x"},
    {"type": "message", "content": "no role"},
    object(),
])
def test_malformed_items_are_typed_errors(item: Any) -> None:
    with pytest.raises(InvalidRequest, match="input item 0"):
        build_messages("", [item])


def test_tools_responses_format_is_wrapped_chat_format_passes() -> None:
    responses_tool = {"type": "function", "name": "shell", "description": "run",
                      "strict": False, "parameters": {"type": "object"}}
    chat_tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert chat_tools([responses_tool, chat_tool, {"type": "web_search"}]) == [
        {"type": "function", "function": {"name": "shell", "description": "run",
                                          "strict": False, "parameters": {"type": "object"}}},
        chat_tool,
    ]


def test_body_sends_converted_tools_and_no_responses_only_fields() -> None:
    transport = RecordingTransport(CHAT_DONE)
    request = ResponsesRequest(model="m", input="hi", tools=[
        {"type": "function", "name": "shell", "parameters": {"type": "object"}}],
        reasoning={"effort": "high"}, store=True, include=["x"], prompt_cache_key="k")
    with chat_client(transport) as client:
        client.stream(request).collect()
    body = transport.body()
    assert list(body) == ["model", "messages", "stream", "tools"]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "shell", "parameters": {"type": "object"}}}]


def test_include_usage_plugin_adds_stream_options() -> None:
    transport = RecordingTransport(CHAT_DONE)
    with chat_client(transport, ChatIncludeUsage()) as client:
        client.stream(ResponsesRequest(model="m", input="hi")).collect()
    assert transport.body()["stream_options"] == {"include_usage": True}
    # Only the Chat wire is touched.
    responses = Provider(base_url="http://x/v1", retry=RetryPolicy(max_attempts=1))
    with Client(responses, plugins=[ChatIncludeUsage()], load_entrypoints=False,
                transport=RecordingTransport()) as client:
        assert "stream_options" not in client._dispatcher.body(
            "stream", ResponsesRequest(model="m", input="hi"))


def test_compact_on_chat_wire_fails_before_any_traffic() -> None:
    transport = RecordingTransport()
    with chat_client(transport) as client, pytest.raises(UnsupportedEndpointError) as info:
        client.compact(ResponsesRequest(model="m", input="hi"))
    assert isinstance(info.value, CodexApiError)
    assert "compact endpoint requires responses wire api" in str(info.value)
    assert transport.requests == []


def test_chat_wire_paths() -> None:
    with chat_client(RecordingTransport()) as client:
        assert client._dispatcher.path("stream") == "chat/completions"
        assert client._dispatcher.path("models") == "models"
