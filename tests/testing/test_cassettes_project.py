"""The project's own recordings (cassettes/ at the repository root), replayed with the network
refused. Recorded against the embedded server; to re-record them all:

    .venv/bin/python -m pytest tests/testing/test_cassettes_project.py --codexapi-record-mode=all

Each test asserts against what its recording says (ids, usage, items), not against constants,
so a re-recording stays valid.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ROOT, make_client

from codexapi import (
    ApiError,
    BearerAuth,
    ContextWindowExceeded,
    FunctionCallOutput,
    OutputTextDelta,
    Provider,
    ReasoningConfig,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ResponsesClient,
    ResponsesRequest,
    RetryPolicy,
    Urllib3Transport,
    WireApi,
)
from codexapi.server import EmbeddedServer
from codexapi.testing import CassetteHandle
from codexapi_plugins.wire_chat import ChatIncludeUsage

CASSETTES = ROOT / "cassettes"
DEAD = "http://127.0.0.1:9/v1"  # replays never reach it
TOOLS = [{"type": "function", "name": "lookup", "description": "Look a word up.",
          "parameters": {"type": "object", "properties": {"input": {"type": "string"}}}}]
WIRES = [WireApi.RESPONSES, WireApi.CHAT]


def cassette(name: str, **kw: Any) -> pytest.MarkDecorator:
    return pytest.mark.cassette(str(CASSETTES / name), **kw)


@pytest.fixture
def base_url(codexapi_record_mode: str, request: pytest.FixtureRequest) -> str:
    if codexapi_record_mode == "none":
        return DEAD
    server: EmbeddedServer = request.getfixturevalue("server")
    return server.base_url


def assert_replayed(cassette: CassetteHandle) -> None:
    """On replay, every recorded interaction was used (none left over, none missing)."""
    if cassette.record_mode == "none":
        assert cassette.all_played and cassette.play_count == len(cassette)


def completed(cassette: CassetteHandle, index: int = 0) -> dict[str, Any]:
    """What the recording says the turn ended with: Responses' response.completed object, or
    for Chat the id, usage and finish reason from the chunks."""
    interaction = cassette.interactions()[index]
    events = interaction.events()
    done = [e for e in events if e.get("type") == "response.completed"]
    if done:
        return dict(done[0]["response"])
    usage = next((e["usage"] for e in events if e.get("usage")), None)
    return {"id": events[0]["id"], "usage": usage}


@pytest.mark.parametrize("wire", WIRES)
@cassette("{wire}_text.yaml")
def test_text_turn(wire: WireApi, base_url: str, codexapi_cassette: CassetteHandle) -> None:
    # On Chat, ask for the trailing usage chunk so both wires report usage.
    plugins = [ChatIncludeUsage()] if wire is WireApi.CHAT else []
    with make_client(base_url, wire, plugins=plugins) as client:
        result = client.stream(ResponsesRequest(model="gpt-5", instructions="Be brief.",
                                                input="Hello there")).collect()
    deltas = "".join(e.delta for e in result.events if isinstance(e, OutputTextDelta))
    assert deltas == result.text == "You said: Hello there"
    assert [i.text for i in result.items if i.type == "message"] == [deltas]
    recorded = completed(codexapi_cassette)
    assert result.response_id == recorded["id"]
    usage = recorded["usage"]
    assert result.usage is not None
    if wire is WireApi.RESPONSES:
        assert (result.usage.input_tokens, result.usage.output_tokens) == (
            usage["input_tokens"], usage["output_tokens"])
    else:
        assert (result.usage.input_tokens, result.usage.output_tokens) == (
            usage["prompt_tokens"], usage["completion_tokens"])
    assert result.usage.total_tokens == usage["total_tokens"] > 0
    assert_replayed(codexapi_cassette)


@pytest.mark.parametrize("wire", WIRES)
@cassette("{wire}_function_call.yaml")
def test_function_call_round_trip(wire: WireApi, base_url: str,
                                  codexapi_cassette: CassetteHandle) -> None:
    with make_client(base_url, wire) as client:
        first = client.stream(ResponsesRequest(model="gpt-5", input="use the tool: cat",
                                               tools=TOOLS)).collect()
        [call] = first.function_calls
        assert (call.name, call.arguments) == ("lookup", '{"input": "use the tool: cat"}')
        history = [{"type": "message", "role": "user", "content": "use the tool: cat"},
                   call.to_dict(), FunctionCallOutput(call_id=call.call_id, output="a pet")]
        second = client.stream(ResponsesRequest(model="gpt-5", input=history,
                                                tools=TOOLS)).collect()
    assert second.text == f"Tool {call.call_id} returned: a pet"
    assert second.response_id == completed(codexapi_cassette, 1)["id"]
    assert_replayed(codexapi_cassette)


@pytest.mark.parametrize("wire", WIRES)
@cassette("{wire}_reasoning.yaml")
def test_reasoning(wire: WireApi, base_url: str, codexapi_cassette: CassetteHandle) -> None:
    request = ResponsesRequest(model="gpt-5", input="think: why is the sky blue?",
                               reasoning=ReasoningConfig(effort="low", summary="auto"))
    with make_client(base_url, wire) as client:
        result = client.stream(request).collect()
    [reasoning] = [i for i in result.items if i.type == "reasoning"]
    if wire is WireApi.RESPONSES:
        summary = "".join(e.delta for e in result.events if isinstance(e, ReasoningSummaryDelta))
        assert summary == reasoning.summary[0]["text"]
        recorded = completed(codexapi_cassette)
        assert result.usage is not None
        assert (result.usage.reasoning_output_tokens
                == recorded["usage"]["output_tokens_details"]["reasoning_tokens"] > 0)
    else:
        thought = "".join(e.delta for e in result.events if isinstance(e, ReasoningContentDelta))
        # The Chat decoder keeps each reasoning delta as its own content part (as the crate).
        assert thought and thought == "".join(p["text"] for p in reasoning.content)
    assert result.text == "You said: think: why is the sky blue?"


@cassette("compact.yaml")
def test_compact(base_url: str, codexapi_cassette: CassetteHandle) -> None:
    history = [{"type": "message", "role": "user", "content": "Hello there"},
               {"type": "message", "role": "assistant", "content": "You said: Hello there"}]
    with make_client(base_url) as client:
        items = client.compact(ResponsesRequest(model="gpt-5", instructions="Be brief.",
                                                input=history))
    recorded = codexapi_cassette.interactions()[0].response_json()["output"]
    assert [i.raw for i in items] == recorded
    assert any(i.type == "compaction" and i.encrypted_content for i in items)


@cassette("models_etag.yaml")
def test_models_with_etag_revalidation(base_url: str, codexapi_cassette: CassetteHandle
                                       ) -> None:
    with make_client(base_url) as client:
        first = client.list_models(client_version="0.60.0")
        second = client.list_models(client_version="0.60.0")
    recorded = codexapi_cassette.interactions()
    assert [i.status for i in recorded] == [200, 304]
    assert first.etag == recorded[0].header("etag") and first.etag
    assert first.slugs == [m["slug"] for m in recorded[0].response_json()["models"]]
    assert second is first  # the 304 answered from the client's cache
    assert dict(recorded[1].request_headers)["If-None-Match"] == first.etag


@pytest.fixture
def keyed_url(codexapi_record_mode: str) -> Iterator[str]:
    """A server that wants one API key (for the 401 recording)."""
    if codexapi_record_mode == "none":
        yield DEAD
        return
    with EmbeddedServer(api_keys=["sk-right-0123456789abcdef"]) as srv:
        yield srv.base_url


_fault_ids = itertools.count()


@pytest.mark.parametrize("wire", WIRES)
@cassette("{wire}_errors.yaml")
def test_error_cases(wire: WireApi, base_url: str, keyed_url: str,
                     codexapi_cassette: CassetteHandle) -> None:
    hello = ResponsesRequest(model="gpt-5", input="Hello")
    # 429 with Retry-After, then success: replayed in order, the hint honoured.
    delays: list[float] = []
    with make_client(base_url, wire, retry=RetryPolicy(max_attempts=2, base_delay=0.01),
              sleep=delays.append) as client:
        headers = {"x-codexapi-fault": "429x1:2",
                   "x-codexapi-fault-id": f"{wire}-{next(_fault_ids)}"}
        assert client.stream(hello, headers=headers).collect().text == "You said: Hello"
    assert delays == [2.0]
    # A failure inside the stream: a typed error, not a truncated answer.
    with make_client(base_url, wire) as client, pytest.raises(ContextWindowExceeded):
        client.stream(hello, headers={"x-codexapi-fault": "failed:context_length_exceeded@2"}
                      ).collect()
    # 400 for a body the server rejects, with the server's message.
    seed = ResponsesClient(Urllib3Transport(), Provider(base_url=base_url, wire=wire,
                                                        retry=RetryPolicy(max_attempts=1)))
    with pytest.raises(ApiError) as bad:
        seed.stream({"input": "no model"})
    assert bad.value.status == 400
    # 401 for a wrong key; the key never reaches the cassette.
    with make_client(keyed_url, wire, auth=BearerAuth("sk-wrong-0123456789abcdef")) as client, \
            pytest.raises(ApiError) as unauthorized:
        client.stream(hello)
    assert unauthorized.value.status == 401
    assert unauthorized.value.code == "invalid_api_key"
    recorded = codexapi_cassette.interactions()
    assert [i.status for i in recorded] == [429, 200, 200, 400, 401]
    assert recorded[0].header("retry-after") == "2"
    assert bad.value.message == recorded[3].response_json()["error"]["message"]
    assert unauthorized.value.request_id == recorded[4].header("x-request-id")
    assert unauthorized.value.message == recorded[4].response_json()["error"]["message"]
    assert "sk-wrong" not in str(recorded)
    assert_replayed(codexapi_cassette)


def test_project_cassettes_hold_no_secrets() -> None:
    import re

    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) == 10
    for path in files:
        text = path.read_text()
        assert not re.search(r"sk-[A-Za-z0-9_-]{6,}", text), path  # masked keys are sk-***
        assert not re.search(r"Bearer (?!<redacted>)", text), path
        assert "!!binary" not in text, path
