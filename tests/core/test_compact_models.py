"""compact and models: codex-api vectors E1-E5, the ETag cache, and both endpoints against the
embedded server."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from conftest import make_client
from support.recording_transport import CannedResponse, RecordingTransport, json_response

from codexapi import (
    FunctionCall,
    FunctionCallOutput,
    Message,
    ModelList,
    ResponsesRequest,
    StreamError,
    UnsupportedEndpointError,
    WireApi,
)
from codexapi.server import EmbeddedServer

E2_MODEL: dict[str, Any] = {
    "slug": "gpt-test", "display_name": "gpt-test", "description": "desc",
    "default_reasoning_level": "medium",
    "supported_reasoning_levels": [{"effort": "low", "description": "low"},
                                   {"effort": "medium", "description": "medium"},
                                   {"effort": "high", "description": "high"}],
    "shell_type": "shell_command", "visibility": "list", "minimal_client_version": [0, 99, 0],
    "supported_in_api": True, "priority": 1, "upgrade": None, "base_instructions": None,
    "supports_reasoning_summaries": False, "support_verbosity": False, "default_verbosity": None,
    "apply_patch_tool_type": None, "truncation_policy": {"mode": "bytes", "limit": 10000},
    "supports_parallel_tool_calls": False, "context_window": None,
    "experimental_supported_tools": [],
}


BASE = "https://example.com/api/codex"


def test_e1_appends_client_version_query() -> None:
    transport = RecordingTransport(json_response({"models": []}))
    with make_client(BASE, transport=transport) as client:
        client.list_models("0.99.0")
    assert transport.last.method == "GET"
    assert transport.last.url == "https://example.com/api/codex/models?client_version=0.99.0"
    assert transport.last.body is None
    assert transport.header("accept") != "text/event-stream"


def test_client_version_defaults_to_this_librarys_version() -> None:
    from codexapi import __version__

    transport = RecordingTransport(json_response({"models": []}))
    with make_client(BASE, transport=transport) as client:
        client.list_models()
    assert transport.last.url.endswith(f"/models?client_version={__version__}")


def test_client_version_is_percent_encoded() -> None:
    transport = RecordingTransport(json_response({"models": []}))
    with make_client(BASE, transport=transport) as client:
        client.list_models("1.0 beta&x=y")
    assert transport.last.url.endswith("/models?client_version=1.0%20beta%26x%3Dy")


def test_e2_parses_codex_models_response() -> None:
    transport = RecordingTransport(json_response({"models": [E2_MODEL], "etag": ""}))
    with make_client(BASE, transport=transport) as client:
        result = client.list_models("0.99.0")
    assert isinstance(result, ModelList)
    assert len(result.models) == 1
    model = result.models[0]
    assert model.slug == "gpt-test"
    assert model.supported_in_api is True and model.priority == 1
    assert model.raw == E2_MODEL
    assert result.etag is None  # an empty body etag is no etag


def test_e3_etag_header_wins_over_body_etag() -> None:
    transport = RecordingTransport(json_response({"models": [E2_MODEL], "etag": '"body"'},
                                                 headers={"ETag": '"abc"'}))
    with make_client(BASE, transport=transport) as client:
        assert client.list_models("0.99.0").etag == '"abc"'
    body_only = RecordingTransport(json_response({"models": [], "etag": '"body"'}))
    with make_client(BASE, transport=body_only) as client:
        assert client.list_models("0.99.0").etag == '"body"'


def test_e4_provider_query_params_come_first() -> None:
    transport = RecordingTransport(json_response({"models": []}))
    with make_client(BASE, transport=transport, query_params={"api-version": "v"}) as client:
        client.list_models("0.99.0")
    assert transport.last.url == \
        "https://example.com/api/codex/models?api-version=v&client_version=0.99.0"


def test_e5_body_not_json() -> None:
    transport = RecordingTransport(CannedResponse(200, b"oops"))
    with make_client(BASE, transport=transport) as client, pytest.raises(StreamError) as info:
        client.list_models("0.99.0")
    assert "failed to decode models response" in str(info.value)
    assert str(info.value).endswith("body: oops")


@pytest.mark.parametrize("body", [
    {"object": "list"},
    {"models": "nope"},
    [1, 2],
    {"data": [{"name": "no id"}]},
    {"models": [{"slug": 5}]},
])
def test_models_json_of_neither_shape_is_a_typed_error(body: Any) -> None:
    transport = RecordingTransport(json_response(body))
    with make_client(BASE, transport=transport) as client, pytest.raises(StreamError,
                                                        match="failed to decode models"):
        client.list_models("1")


def test_openai_shape_is_accepted() -> None:
    transport = RecordingTransport(json_response(
        {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "owned_by": "x"}]}))
    with make_client(BASE, transport=transport) as client:
        result = client.list_models("1")
    assert result.slugs == ["gpt-4o"] and result.models[0].owned_by == "x"


def test_etag_is_revalidated_and_304_returns_the_cached_list() -> None:
    first = json_response({"models": [E2_MODEL]}, headers={"ETag": '"v1"'})
    transport = RecordingTransport(first, CannedResponse(304, b"", {"ETag": '"v1"'}), first)
    with make_client(BASE, transport=transport) as client:
        listed = client.list_models("0.99.0")
        again = client.list_models("0.99.0")
        assert again is listed  # the cached object itself: nothing re-parsed
        assert transport.header("if-none-match", 0) is None
        assert transport.header("if-none-match", 1) == '"v1"'
        # Another client_version is another list: no If-None-Match borrowed from the first.
        client.list_models("2.0.0")
        assert transport.header("if-none-match", 2) is None


def test_unsolicited_304_is_a_typed_error() -> None:
    transport = RecordingTransport(CannedResponse(304, b""))
    with make_client(BASE, transport=transport) as client, pytest.raises(StreamError, match="304"):
        client.list_models("1")


def test_the_etag_cache_is_per_client() -> None:
    transport = RecordingTransport(json_response({"models": []}, headers={"ETag": '"v1"'}))
    with make_client(BASE, transport=transport) as one, \
            make_client(BASE, transport=transport) as two:
        one.list_models("1")
        two.list_models("1")
    assert transport.header("if-none-match", 1) is None


# --- compact -------------------------------------------------------------------------------


def test_compact_posts_model_input_instructions_and_returns_items() -> None:
    output = [{"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "hi"}]},
              {"type": "compaction", "encrypted_content": "abc", "id": "cmp_1"}]
    transport = RecordingTransport(json_response({"id": "r", "object": "response.compaction",
                                                  "output": output}))
    request = ResponsesRequest(model="gpt-5", instructions="inst", input=[
        Message(role="user", content="hi", id="msg_1"),
        FunctionCall(name="f", arguments="{}", call_id="c1"),
        FunctionCallOutput(call_id="c1", output="ok")], tools=[{"type": "function",
                                                              "name": "f"}])
    with make_client("https://example.com/v1", transport=transport) as client:
        items = client.compact(request)
    assert transport.last.method == "POST"
    assert transport.last.url == "https://example.com/v1/responses/compact"
    body = transport.body()
    # The crate's CompactionInput: tools and parallel_tool_calls always, ids kept.
    assert list(body) == ["model", "input", "instructions", "tools", "parallel_tool_calls"]
    assert body["model"] == "gpt-5" and body["instructions"] == "inst"
    assert body["tools"] == [{"type": "function", "name": "f"}]
    assert body["parallel_tool_calls"] is False and body["input"][0]["id"] == "msg_1"
    assert [i["type"] for i in body["input"]] == ["message", "function_call",
                                                   "function_call_output"]
    assert transport.header("accept") != "text/event-stream"
    assert [i.type for i in items] == ["message", "compaction"]
    assert items[1].encrypted_content == "abc" and items[1].raw == output[1]


@pytest.mark.parametrize("raw", [b"not json", b'{"id": "x"}', b'{"output": {"a": 1}}'])
def test_compact_bad_reply_is_a_typed_error(raw: bytes) -> None:
    transport = RecordingTransport(CannedResponse(200, raw))
    with make_client(BASE, transport=transport) as client, pytest.raises(StreamError,
                                                        match="failed to decode compact"):
        client.compact(ResponsesRequest(model="m", input="hi"))


# --- against the embedded server ------------------------------------------------------------


def test_compact_against_the_embedded_server(server: EmbeddedServer) -> None:
    history = [Message(role="user", content="first question"),
               Message(role="assistant", content="an answer"),
               Message(role="user", content="second question")]
    with make_client(server) as client:
        items = client.compact(ResponsesRequest(model="gpt-5", instructions="x", input=history))
    users = [i for i in items if i.type == "message"]
    assert [u.text for u in users] == ["first question", "second question"]
    assert items[-1].type == "compaction"
    assert items[-1].encrypted_content.startswith("codexapi-compaction:")
    # The compacted history is valid input for the next turn.
    with make_client(server) as client:
        follow = [*(i.to_dict() for i in items), Message(role="user", content="go on")]
        assert client.stream(ResponsesRequest(model="gpt-5", input=follow)).collect().text == \
            "You said: go on"


def test_compact_on_chat_wire_against_the_server_sends_nothing(server: EmbeddedServer) -> None:
    before = len(server.requests)
    with make_client(server, WireApi.CHAT) as client, pytest.raises(
            UnsupportedEndpointError, match="compact endpoint requires responses wire api"):
        client.compact(ResponsesRequest(model="m", input="hi"))
    assert len(server.requests) == before


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
def test_models_against_the_embedded_server_with_etag(server: EmbeddedServer,
                                                      wire: WireApi) -> None:
    with make_client(server, wire) as client:
        first = client.list_models("0.60.0")
        assert "gpt-5" in first.slugs
        assert first.etag and first.etag.startswith('"')
        assert first.models[0].display_name  # Codex shape: full model info
        second = client.list_models("0.60.0")
    assert second is first
    method, path, headers, _ = server.requests[-1]
    assert (method, path) == ("GET", "/models")
    assert {k.lower(): v for k, v in headers.items()}["if-none-match"] == first.etag


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_server_models_shapes_and_304(server: EmbeddedServer) -> None:
    status, headers, body = _get(server.base_url + "/models")
    assert status == 200
    listing = json.loads(body)
    assert listing["object"] == "list" and listing["data"][0]["object"] == "model"
    etag = headers["ETag"]
    status, headers, body = _get(server.base_url + "/models", {"If-None-Match": etag})
    assert (status, body, headers["ETag"]) == (304, b"", etag)
    status, _, body = _get(server.base_url + "/models", {"If-None-Match": '"stale"'})
    assert status == 200 and json.loads(body) == listing
    status, headers, body = _get(server.base_url + "/models?client_version=0.1.0")
    assert status == 200 and "slug" in json.loads(body)["models"][0]
    assert headers["ETag"] != etag


def test_server_compact_rejects_bad_bodies(server: EmbeddedServer) -> None:
    for body in (b"[]", b'{"model": "m", "input": 5}'):
        request = urllib.request.Request(server.base_url + "/responses/compact", data=body,
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 400
        assert "error" in json.loads(info.value.read())
