"""Seed-style endpoint clients (codex-api tests/clients.rs): vectors D1-D8, then the same clients
against the embedded server."""

from __future__ import annotations

from typing import Any

import pytest
from support.recording_transport import CHAT_DONE, RESPONSES_DONE, RecordingTransport, json_response

from codexapi import (
    BearerAuth,
    ChatClient,
    CompactClient,
    Completed,
    ModelsClient,
    Provider,
    ResponsesClient,
    ResponsesRequest,
    RetryPolicy,
    TransportError,
    UnsupportedEndpointError,
    Urllib3Transport,
    WireApi,
)
from codexapi.server import EmbeddedServer

BODY = {"model": "m", "input": [], "stream": True}


def provider(wire: WireApi, base: str = "https://example.com/v1", **kw: Any) -> Provider:
    kw.setdefault("retry", RetryPolicy(max_attempts=1))
    return Provider(name="test", base_url=base, wire=wire, **kw)


def answer_for(wire: WireApi) -> Any:
    return CHAT_DONE if wire is WireApi.CHAT else RESPONSES_DONE


@pytest.mark.parametrize(("case", "cls", "wire", "suffix"), [
    ("D1", ChatClient, WireApi.CHAT, "/chat/completions"),
    ("D2", ChatClient, WireApi.RESPONSES, "/responses"),
    ("D3", ResponsesClient, WireApi.RESPONSES, "/responses"),
    ("D4", ResponsesClient, WireApi.CHAT, "/chat/completions"),
])
def test_d1_d4_stream_path_follows_the_wire(case: str, cls: type[ResponsesClient],
                                            wire: WireApi, suffix: str) -> None:
    transport = RecordingTransport(answer_for(wire))
    events = list(cls(transport, provider(wire)).stream(BODY, {}))
    assert transport.last.url == "https://example.com/v1" + suffix
    assert transport.body() == BODY  # a ready body is sent as given
    assert isinstance(events[-1], Completed)


def test_d5_streaming_client_adds_auth_headers() -> None:
    transport = RecordingTransport(CHAT_DONE)
    client = ChatClient(transport, provider(WireApi.CHAT),
                        BearerAuth("secret-token", account_id="acct-1"))
    list(client.stream(BODY, {"x-extra": "1"}))
    assert transport.header("authorization") == "Bearer secret-token"
    assert transport.header("chatgpt-account-id") == "acct-1"
    assert transport.header("accept") == "text/event-stream"
    assert transport.header("x-extra") == "1"


def test_d6_streaming_client_retries_on_transport_error() -> None:
    transport = RecordingTransport(TransportError("first attempt fails"), CHAT_DONE)
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, retry_transport=True)
    client = ChatClient(transport, provider(WireApi.CHAT, retry=policy))
    events = list(client.stream(BODY, {}))
    assert isinstance(events[-1], Completed)
    assert len(transport.requests) == 2


def test_d6_no_retry_when_transport_retries_are_off() -> None:
    transport = RecordingTransport(TransportError("first attempt fails"), CHAT_DONE)
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, retry_transport=False)
    with pytest.raises(TransportError, match="first attempt fails"):
        ChatClient(transport, provider(WireApi.CHAT, retry=policy)).stream(BODY, {})
    assert len(transport.requests) == 1


def test_d7_no_auth_sends_no_authorization_header() -> None:
    transport = RecordingTransport(CHAT_DONE)
    list(ChatClient(transport, provider(WireApi.CHAT)).stream(BODY, {}))
    assert transport.header("authorization") is None
    assert transport.header("chatgpt-account-id") is None


def test_d8_url_join_and_query_params() -> None:
    transport = RecordingTransport(RESPONSES_DONE)
    list(ResponsesClient(transport, provider(WireApi.RESPONSES, base="https://x/v1/"))
         .stream(BODY))
    assert transport.last.url == "https://x/v1/responses"
    azure = provider(WireApi.RESPONSES, base="https://x/v1/",
                     query_params={"api-version": "2025-04-01-preview"})
    list(ResponsesClient(transport, azure).stream(BODY))
    assert transport.last.url == "https://x/v1/responses?api-version=2025-04-01-preview"


def test_stream_request_builds_the_wire_body_and_conversation_headers() -> None:
    transport = RecordingTransport(CHAT_DONE)
    client = ChatClient(transport, provider(WireApi.CHAT))
    request = ResponsesRequest(model="gpt-test", instructions="inst", input="hi")
    list(client.stream_request(request, conversation_id="conv-1", subagent="compact"))
    assert transport.body() == {"model": "gpt-test", "messages": [
        {"role": "system", "content": "inst"}, {"role": "user", "content": "hi"}],
        "stream": True, "tools": []}
    assert transport.header("conversation_id") == "conv-1"
    assert transport.header("x-openai-subagent") == "compact"


def test_compact_client_posts_the_body_and_refuses_chat() -> None:
    transport = RecordingTransport(json_response({"output": [{"type": "compaction"}]}))
    body = {"model": "m", "input": [], "instructions": "i"}
    items = CompactClient(transport, provider(WireApi.RESPONSES)).compact(body)
    assert transport.last.url == "https://example.com/v1/responses/compact"
    assert transport.body() == body and [i.type for i in items] == ["compaction"]
    with pytest.raises(UnsupportedEndpointError, match="requires responses wire api"):
        CompactClient(transport, provider(WireApi.CHAT)).compact(body)
    assert len(transport.requests) == 1


def test_models_client_does_not_cache() -> None:
    transport = RecordingTransport(json_response({"models": [{"slug": "a"}]},
                                                 headers={"ETag": '"e"'}))
    client = ModelsClient(transport, provider(WireApi.RESPONSES))
    assert client.list_models("0.99.0").etag == '"e"'
    client.list_models("0.99.0", headers={"x-h": "1"})
    assert transport.header("if-none-match") is None and transport.header("x-h") == "1"
    assert transport.last.url == "https://example.com/v1/models?client_version=0.99.0"


# --- the same clients against the embedded server --------------------------------------------


def test_seed_clients_against_the_embedded_server(server: EmbeddedServer) -> None:
    transport = Urllib3Transport()
    try:
        chat = ChatClient(transport, provider(WireApi.CHAT, base=server.base_url))
        body = {"model": "m", "messages": [{"role": "user", "content": "hi there"}],
                "stream": True, "tools": []}
        assert chat.stream(body, {}).collect().text == "You said: hi there"
        responses = ResponsesClient(transport, provider(WireApi.RESPONSES, base=server.base_url))
        assert responses.stream_request(
            ResponsesRequest(model="m", input="hello")).collect().text == "You said: hello"
        compact = CompactClient(transport, provider(WireApi.RESPONSES, base=server.base_url))
        items = compact.compact({"model": "m", "instructions": "",
                                 "input": [{"role": "user", "content": "keep me"}]})
        assert items[0].text == "keep me" and items[-1].type == "compaction"
        models = ModelsClient(transport, provider(WireApi.CHAT, base=server.base_url))
        assert "gpt-5" in models.list_models("0.60.0").slugs
    finally:
        transport.close()
