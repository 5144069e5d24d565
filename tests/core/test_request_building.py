"""What goes on the wire for a streamed Responses turn: URL, headers and body (C2, C3, D5-D8)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.recording_transport import RESPONSES_DONE, RecordingTransport

import codexapi
from codexapi import (
    BearerAuth,
    Client,
    FunctionCall,
    FunctionCallOutput,
    Message,
    NoAuth,
    Provider,
    Reasoning,
    ReasoningConfig,
    ResponsesRequest,
    RetryPolicy,
    TextControls,
)
from codexapi.http.transport import HttpRequest
from codexapi.server import EmbeddedServer


def send(provider: Provider, request: ResponsesRequest, auth: Any = None, **kw: Any
         ) -> HttpRequest:
    transport = RecordingTransport(RESPONSES_DONE)
    client = Client(provider, auth=auth or NoAuth(), load_entrypoints=False, transport=transport)
    client.stream(request, **kw).collect()
    assert len(transport.requests) == 1
    return transport.requests[0]


def body_of(req: HttpRequest) -> dict[str, Any]:
    assert req.body is not None
    result: dict[str, Any] = json.loads(req.body)
    return result


OPENAI = Provider(name="openai", base_url="https://api.openai.com/v1")


def test_c3_openai_body_exactly() -> None:
    req = send(OPENAI, ResponsesRequest(model="gpt-5", instructions="sys",
                                        input=[Message(role="user", content="hi")]))
    # Key order as the Codex CLI 0.171 sends it; no tools key unless tools are given.
    assert req.body == json.dumps({
        "model": "gpt-5", "instructions": "sys", "stream": True,
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "hi"}]}],
        "tool_choice": "auto", "parallel_tool_calls": False, "reasoning": None,
        "store": False, "include": []}, separators=(",", ":")).encode()


def test_c3_reasoning_cache_key_and_text_controls() -> None:
    schema = {"type": "object", "properties": {}}
    body = body_of(send(OPENAI, ResponsesRequest(
        model="gpt-5", instructions="sys", input="hi",
        reasoning=ReasoningConfig(effort="medium", summary="auto"), prompt_cache_key="conv-1",
        text=TextControls.with_schema(schema, verbosity="LOW"))))
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert body["prompt_cache_key"] == "conv-1"
    assert body["text"] == {"verbosity": "low", "format": {
        "type": "json_schema", "strict": True, "schema": schema, "name": "codex_output_schema"}}
    assert list(body)[-2:] == ["prompt_cache_key", "text"]


def test_reasoning_sub_keys_omitted_when_unset() -> None:
    body = body_of(send(OPENAI, ResponsesRequest(model="m", input="hi",
                                                 reasoning=ReasoningConfig(effort="high"))))
    assert body["reasoning"] == {"effort": "high"}
    body = body_of(send(OPENAI, ResponsesRequest(model="m", input="hi",
                                                 reasoning={"summary": "auto", "effort": None})))
    assert body["reasoning"] == {"summary": "auto"}


def test_c2_azure_default_store_attaches_ids_and_headers() -> None:
    azure = Provider(name="azure", base_url="https://example.openai.azure.com/v1")
    req = send(azure, ResponsesRequest(model="m", instructions="i", input=[
        Message(role="assistant", content=[], id="m1"),
        Message(role="assistant", content=[])]), conversation_id="conv-1", subagent="review")
    body = body_of(req)
    assert body["store"] is True
    assert body["input"][0]["id"] == "m1" and "id" not in body["input"][1]
    assert req.headers["conversation_id"] == "conv-1"
    assert req.headers["session_id"] == "conv-1"
    assert req.headers["x-openai-subagent"] == "review"


def test_ids_kept_on_every_provider() -> None:
    # The Codex CLI 0.171 sends item ids whatever the provider and store setting.
    body = body_of(send(OPENAI, ResponsesRequest(model="m", input=[
        Message(role="assistant", content="x", id="m1"),
        FunctionCall(name="f", arguments="{}", call_id="c", id="fc_1")])))
    assert [item["id"] for item in body["input"]] == ["m1", "fc_1"]


@pytest.mark.parametrize(("name", "base", "azure"), [
    ("azure", "https://x.example.com", True), ("AZURE", "https://x", True),
    ("p", "https://res.openai.azure.com/openai", True),
    ("p", "https://x.cognitiveservices.azure.com", True),
    ("p", "https://x.aoai.azure.com", True), ("p", "https://x.azure-api.net", True),
    ("p", "https://x.azurefd.net", True), ("p", "https://x.windows.net/openai", True),
    ("openai", "https://api.openai.com/v1", False)])
def test_azure_detection(name: str, base: str, azure: bool) -> None:
    assert Provider(name=name, base_url=base).is_azure_responses_endpoint() is azure
    chat = Provider(name=name, base_url=base, wire="chat")
    assert chat.is_azure_responses_endpoint() is False


def test_store_override_wins() -> None:
    azure = Provider(name="azure", base_url="https://x")
    assert body_of(send(azure, ResponsesRequest(model="m", input="x", store=False)))["store"] \
        is False
    assert body_of(send(OPENAI, ResponsesRequest(model="m", input="x", store=True)))["store"] \
        is True


def test_input_items_attrs_and_dicts_and_unknown_types() -> None:
    unknown = {"type": "web_search_call", "id": "ws_1", "action": {"query": "q"}}
    body = body_of(send(OPENAI, ResponsesRequest(model="m", input=[
        Message(role="user", content="list files"),
        Reasoning(summary=["thought"], content=["raw"], encrypted_content="enc"),
        FunctionCall(name="shell", arguments='{"cmd":["ls"]}', call_id="call_1"),
        FunctionCallOutput(call_id="call_1", output="a.txt"),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                              "text": "done"}]},
        unknown])))
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text",
                                                          "text": "list files"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought"}],
         "content": [{"type": "reasoning_text", "text": "raw"}], "encrypted_content": "enc"},
        {"type": "function_call", "name": "shell", "arguments": '{"cmd":["ls"]}',
         "call_id": "call_1"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                              "text": "done"}]},
        unknown]


def test_output_items_can_be_sent_back_as_input(server: EmbeddedServer) -> None:
    with Client(Provider(base_url=server.base_url), load_entrypoints=False) as client:
        first = client.stream(ResponsesRequest(model="m", input="hi")).collect()
        second = client.stream(ResponsesRequest(
            model="m", input=[Message(role="user", content="hi"), *first.items,
                              Message(role="user", content="again")])).collect()
    assert second.text == "You said: again"
    sent = server.requests[-1][3]["input"]
    assert sent[1]["type"] == "message" and sent[1]["role"] == "assistant"


@pytest.mark.parametrize(("base", "query", "url"), [
    ("https://x/v1/", {}, "https://x/v1/responses"),
    ("https://x/v1//", {"api-version": "2025-04-01-preview"},
     "https://x/v1/responses?api-version=2025-04-01-preview"),
])
def test_d8_url_join(base: str, query: dict[str, str], url: str) -> None:
    assert Provider(base_url=base, query_params=query).url_for_path("/responses") == url
    req = send(Provider(base_url=base, query_params=query), ResponsesRequest(model="m",
                                                                             input="x"))
    assert req.url == url


def test_d5_auth_and_header_order() -> None:
    provider = Provider(base_url="https://example.com/v1",
                        headers={"OpenAI-Organization": "org", "Accept": "text/html",
                                 "Authorization": "Bearer provider-token"})
    req = send(provider, ResponsesRequest(model="m", input="x"),
               auth=BearerAuth("secret-token", account_id="acct-1"),
               headers={"x-custom": "1"})
    assert req.method == "POST" and req.url == "https://example.com/v1/responses"
    h = req.headers
    assert h["Authorization"] == "Bearer secret-token"  # auth wins over provider headers
    assert h["ChatGPT-Account-ID"] == "acct-1"
    assert h["Accept"] == "text/event-stream"
    assert h["Content-Type"] == "application/json"
    assert h["OpenAI-Organization"] == "org" and h["x-custom"] == "1"
    assert h["User-Agent"] == f"codexapi/{codexapi.__version__}"
    assert "conversation_id" not in h and "x-openai-subagent" not in h


def test_d7_no_auth_no_authorization_header() -> None:
    req = send(OPENAI, ResponsesRequest(model="m", input="x"))
    assert not any(k.lower() == "authorization" for k in req.headers)


def test_explicit_session_id_header() -> None:
    req = send(OPENAI, ResponsesRequest(model="m", input="x"), session_id="s-1")
    assert req.headers["session_id"] == "s-1" and "conversation_id" not in req.headers


def test_retry_policy_is_an_immutable_value() -> None:
    policy = RetryPolicy(max_attempts=3)
    with pytest.raises(AttributeError):
        policy.max_attempts = 4  # type: ignore[misc]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_headers_reach_the_server(server: EmbeddedServer) -> None:
    with Client(Provider(base_url=server.base_url), auth=BearerAuth("tok-123456"),
                load_entrypoints=False) as client:
        client.stream(ResponsesRequest(model="m", input="x"), conversation_id="c-9").collect()
    method, path, headers, body = server.requests[-1]
    assert (method, path) == ("POST", "/responses")
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower["authorization"] == "Bearer tok-123456"
    assert lower["conversation_id"] == "c-9" and lower["session_id"] == "c-9"
    assert lower["accept"] == "text/event-stream"
    assert body["stream"] is True and body["store"] is False
