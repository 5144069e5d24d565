"""Conformance against real OpenAI exchanges recorded by other projects.

The cassettes live in ``../shared/real-cassettes`` next to the repository (read in place,
never copied; see its INDEX.md). Each file is served by the cassette player on 127.0.0.1 and
each of its exchanges is sent, in order, with its recorded request body, through codexapi's
real stack (urllib3 transport with gzip decoding, dispatcher and error mapping, SSE decoder,
Responses and Chat wire decoders, compact and models parsing). Every assertion compares
codexapi's result with what the recording itself says elsewhere: the text deltas against the
final texts, function calls against the completed response, usage against the usage object,
errors against the error body.

FILES below lists every file of the directory (asserted) with what is checked in it; an
exchange that could not be checked would have to be listed in UNCHECKED with the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import SHARED

from codexapi import (
    ApiError,
    ChatClient,
    CompactClient,
    Completed,
    Created,
    Item,
    ModelsClient,
    OutputItemDone,
    OutputTextDelta,
    Provider,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ResponsesClient,
    RetryPolicy,
    Urllib3Transport,
    WireApi,
)
from codexapi.convert import loads
from codexapi.http.transport import HttpRequest
from codexapi.sse import SseStreamDecoder
from codexapi.stream import ResponseStream, StreamResult
from codexapi.testing import Interaction, load_interactions, serve_cassette, use_cassette
from codexapi.testing.player import route_path
from codexapi.testing.pytest_plugin import add_summary_line
from codexapi_plugins.wire_chat import chat_usage
from codexapi_plugins.wire_responses import ResponsesDecoder, token_usage

REAL = SHARED / "real-cassettes"
#: Skipped on a bare clone, failed under CI (tests/conftest.py require_shared).
pytestmark = pytest.mark.shared("real-cassettes")

RS, RJ, CS, CJ, ERR = ("Responses stream", "Responses JSON", "Chat stream", "Chat JSON",
                       "error")
#: Every file, with the kinds of exchange it holds (all checked).
FILES: dict[str, str] = {
    "llmrb-llm/bad_request.yaml": "Chat 400 invalid_image_url -> ApiError (Ruby VCR)",
    "llmrb-llm/bot_tool_stream.yaml": "Responses streams: function call, then text (Ruby VCR)",
    "llmrb-llm/llm_chat_stream_tool.yaml": "Chat streams: tool call, then text (Ruby VCR)",
    "llmrb-llm/successful_list.yaml": "GET /v1/models, OpenAI list shape -> ModelList",
    "llmrb-llm/text_streaming.yaml": "long Responses text stream (Ruby !binary base64 body)",
    "llmrb-llm/unauthorized_response.yaml": "Chat 401 invalid_api_key -> ApiError",
    "openllmetry/TestChatCompletionsFinishReasons.test_chat_streaming_sets_top_level_finish_"
    "reasons.yaml": "Chat text streams, two recordings of one request",
    "openllmetry/test_chat_tools_streaming.yaml": "Chat stream with one tool call",
    "openllmetry/test_open_ai_function_calls_tools_streaming_parallel.yaml":
        "Chat streams with two parallel tool calls (index 0 and 1)",
    "openllmetry/test_responses_reasoning_dict_issue.yaml":
        "Responses JSON (gzip) with reasoning summaries",
    "openllmetry/test_responses_streaming.yaml": "Responses text streams, two recordings",
    "pydantic-ai/test_background_mode_streaming_starting_after_vcr.yaml":
        "Responses background stream (response.queued), then GET resume stream",
    "pydantic-ai/test_complex_agent_run.yaml": "Chat streams with tool calls + usage chunk",
    "pydantic-ai/test_model_name_suggestion[openai-responses].yaml":
        "Responses 400 model_not_found -> ApiError",
    "pydantic-ai/test_openai_include_raw_annotations_streaming.yaml":
        "Responses streams with web search + url_citation annotations",
    "pydantic-ai/test_openai_instructions_with_responses_logprobs_streaming.yaml":
        "Responses stream with logprobs on deltas",
    "pydantic-ai/test_openai_o1_mini_system_role[developer].yaml": "Chat 400 -> ApiError",
    "pydantic-ai/test_openai_responses_compact_messages.yaml": "Responses JSON, then compact",
    "pydantic-ai/test_openai_responses_compact_messages_direct.yaml":
        "Responses JSON, then compact",
    "pydantic-ai/test_openai_responses_compact_with_instructions.yaml":
        "Responses JSON, then compact",
    "pydantic-ai/test_openai_responses_model_http_error.yaml":
        "Responses 400 (stream requested, JSON error) -> ApiError",
    "pydantic-ai/test_openai_responses_model_mcp_server_tool_stream.yaml":
        "Responses stream with hosted MCP items",
    "pydantic-ai/test_openai_responses_model_simple_response_with_tool_call.yaml":
        "Responses JSON: function call, then text",
    "pydantic-ai/test_openai_responses_model_web_search_tool_stream.yaml":
        "Responses stream with web search + reasoning, then Responses JSON",
    "pydantic-ai/test_openai_responses_phase_streamed_on_part_start.yaml":
        "Responses streams: commentary text + function call, then text",
    "pydantic-ai/test_openai_responses_stream.yaml":
        "Responses streams: function call, then text",
    "pydantic-ai/test_openai_responses_streaming_usage.yaml":
        "Responses stream: function calls, usage with reasoning tokens",
    "pydantic-ai/test_openai_responses_thinking_part_iter.yaml":
        "Responses stream: 600+ reasoning summary deltas",
    "pydantic-ai/test_openai_responses_thinking_with_code_execution_tool_stream.yaml":
        "Responses stream: reasoning summaries + code interpreter",
    "pydantic-ai/test_openai_responses_thinking_with_modified_history.yaml":
        "Responses JSON, 400 (reasoning item without its follower) -> ApiError, JSON",
    "pydantic-ai/test_openai_responses_thinking_with_tool_calls.yaml":
        "Responses JSON: reasoning + function call, then text",
    "pydantic-ai/test_run_stream_sync_streams_real_model.yaml":
        "Chat streams: tool call, then text, usage chunks",
    "simonw-llm-openai-plugin/test_async_model_schema.yaml":
        "Responses stream of structured (JSON schema) text",
    "simonw-llm-openai-plugin/test_tools.yaml":
        "Responses streams: reasoning + function call, then text",
    "simonw-llm/test_responses_basic_non_streaming.yaml": "Responses JSON (gzip)",
    "simonw-llm/test_responses_basic_streaming.yaml": "Responses text stream",
    "simonw-llm/test_responses_interleaved_reasoning_between_tool_calls.yaml":
        "Responses JSON (gzip): reasoning interleaved with function calls, 4 turns",
    "simonw-llm/test_responses_tool_use_streaming.yaml":
        "Responses streams: function call, then text",
    "simonw-llm/test_tool_use_basic.yaml": "Chat streams: tool call, then text",
    "simonw-llm/test_tool_use_chain_of_two_calls.yaml":
        "Chat JSON (gzip): tool calls over three turns",
}

#: (file, interaction index) -> why that exchange is not checked. Empty: every one is.
UNCHECKED: dict[tuple[str, int], str] = {}

TALLY: Counter[str] = Counter()
VCR_TALLY: Counter[str] = Counter()


def files_on_disk() -> list[str]:
    return sorted(str(p.relative_to(REAL)) for p in REAL.rglob("*.yaml"))


def test_every_file_is_in_the_table() -> None:
    on_disk = files_on_disk()
    assert len(on_disk) >= 40
    assert sorted(FILES) == on_disk, (
        f"not in FILES: {sorted(set(on_disk) - set(FILES))}; "
        f"gone from disk: {sorted(set(FILES) - set(on_disk))}")


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if TALLY["files"]:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(TALLY.items()) if k != "files")
        line = (f"real cassettes: {TALLY['files']} of {len(FILES)} files checked, "
                f"{sum(n for k, n in TALLY.items() if k != 'files')} exchanges ({kinds})")
        if VCR_TALLY["files"]:
            line += f"; {VCR_TALLY['files']} files also replayed through vcrpy"
        print(line)
        add_summary_line(request.config, line)


def provider(base_url: str, wire: WireApi) -> Provider:
    return Provider(name="recorded", base_url=base_url, wire=wire,
                    retry=RetryPolicy(max_attempts=1), stream_idle_timeout=10.0)


@pytest.mark.parametrize("name", sorted(FILES))
def test_real_cassette(name: str) -> None:
    """Served over HTTP by the cassette player: urllib3 responses, real sockets."""
    path = REAL / name
    interactions = load_interactions(path)
    transport = Urllib3Transport()
    checked = 0
    with serve_cassette(path) as server:
        for it in interactions:
            if (name, it.index) in UNCHECKED:
                continue
            TALLY[check_exchange(it, server.base_url, transport)] += 1
            checked += 1
    assert checked + sum(1 for f, _ in UNCHECKED if f == name) == len(interactions)
    TALLY["files"] += 1


@pytest.mark.parametrize("name", sorted(FILES))
def test_real_cassette_through_vcrpy(name: str) -> None:
    """The same checks with vcrpy replaying the file (network refused): the transport gets
    vcrpy's http.client responses, gzip bodies still compressed, and must give the same
    results."""
    path = REAL / name
    interactions = load_interactions(path)
    transport = Urllib3Transport()
    # Query parameters are left out of matching: codexapi sends client_version to models.
    with use_cassette(path, "none", match_on=("method", "path", "body")) as cassette:
        for it in interactions:
            if (name, it.index) not in UNCHECKED:
                check_exchange(it, "https://api.openai.com/v1", transport)
        assert cassette.play_count == len(interactions) - sum(1 for f, _ in UNCHECKED
                                                              if f == name)
    VCR_TALLY["files"] += 1


def check_exchange(it: Interaction, base: str, transport: Urllib3Transport) -> str:
    route = route_path(it.uri)
    body = it.request_json()
    if it.status >= 400:
        check_error(it, base, transport, body)
        return ERR
    if it.method == "GET" and route == "/models":
        models = ModelsClient(transport, provider(base, WireApi.RESPONSES)).list_models("0.60.0")
        assert models.slugs == [m["id"] for m in it.response_json()["data"]]
        assert all(m.raw["object"] == "model" for m in models.models)
        return "models"
    if route == "/responses/compact":
        items = CompactClient(transport, provider(base, WireApi.RESPONSES)).compact(body)
        recorded = it.response_json()
        assert [i.raw for i in items] == recorded["output"]
        assert any(i.type == "compaction" and i.encrypted_content for i in items)
        return "compact"
    if route == "/chat/completions":
        if it.is_sse:
            check_chat_stream(it, ChatClient(transport, provider(base, WireApi.CHAT)).stream(
                body).collect())
            return CS
        check_chat_json(it, base, transport)
        return CJ
    if it.is_sse:
        if it.method == "GET":
            # Resuming a background response (GET responses/{id}?starting_after=N&stream=true):
            # no Client method sends it, so the stack below one is used directly.
            query = urlsplit(it.uri).query
            response = transport.send(HttpRequest("GET", f"{base}{route}?{query}",
                                                  {"Accept": "text/event-stream"}), True)
            stream = ResponseStream(response, SseStreamDecoder(ResponsesDecoder()))
        else:
            stream = ResponsesClient(transport, provider(base, WireApi.RESPONSES)).stream(body)
        check_responses_stream(it, stream)
        return RS
    check_responses_json(it, base, transport)
    return RJ


# --- errors ---------------------------------------------------------------------------------


def check_error(it: Interaction, base: str, transport: Urllib3Transport, body: Any) -> None:
    wire = WireApi.CHAT if route_path(it.uri) == "/chat/completions" else WireApi.RESPONSES
    with pytest.raises(ApiError) as info:
        ResponsesClient(transport, provider(base, wire)).stream(body)
    error = it.response_json()["error"]
    assert info.value.status == it.status
    # Replayed through use_cassette, a credential the request carried is scrubbed wherever
    # it reappears (this 401 echoes the bad key it was sent).
    sent = {k.lower(): v for k, v in it.request_headers}.get("authorization", "")
    token = sent.split(" ", 1)[-1]
    allowed = {error["message"]}
    if token:
        allowed.add(error["message"].replace(token, "<redacted>"))
    assert info.value.message in allowed
    assert info.value.code == (error["code"] if isinstance(error.get("code"), str)
                               else error.get("type"))
    assert info.value.request_id == (it.header("x-request-id") or None)
    assert not info.value.retryable


# --- Responses ------------------------------------------------------------------------------


def check_responses_stream(it: Interaction, stream: ResponseStream) -> None:
    events = it.events()
    [final] = [e["response"] for e in events if e.get("type") == "response.completed"]
    result = stream.collect()
    created = sum(e.get("type") == "response.created" for e in events)
    assert sum(isinstance(e, Created) for e in result.events) == created
    assert isinstance(result.events[-1], Completed)
    # Text: codexapi's deltas against the recording's final texts (output_text.done, and the
    # message items of the completed response when it lists them).
    deltas = "".join(e.delta for e in result.events if isinstance(e, OutputTextDelta))
    done_texts = "".join(e["text"] for e in events if e.get("type") == "response.output_text.done")
    assert deltas == done_texts
    if final.get("output"):
        assert deltas == "".join(Item(o).text for o in final["output"] if o["type"] == "message")
    # Ids and usage.
    assert result.response_id == final["id"]
    assert result.usage == token_usage(final.get("usage"))
    if final.get("usage"):
        assert result.usage is not None
        assert result.usage.total_tokens == final["usage"]["total_tokens"]
        assert result.usage.output_tokens == final["usage"]["output_tokens"]
    # Items: every finished item, in order, and the calls as the completed response has them.
    recorded_items = [e["item"] for e in events if e.get("type") == "response.output_item.done"]
    assert [i.raw for i in result.items] == recorded_items
    calls = [(c.name, c.arguments, c.call_id) for c in result.function_calls]
    source = final.get("output") or recorded_items
    assert calls == [(o["name"], o["arguments"], o["call_id"]) for o in source
                     if o["type"] == "function_call"]
    for e in events:
        if e.get("type") == "response.function_call_arguments.done":
            assert any(c[1] == e["arguments"] for c in calls)
    # Reasoning: the summary deltas add up to the summaries of the reasoning items.
    summaries = "".join(e.delta for e in result.events if isinstance(e, ReasoningSummaryDelta))
    reasoning = [i for i in result.items if i.type == "reasoning"]
    assert summaries == "".join(s["text"] for r in reasoning for s in r.summary or [])
    parts = sum(1 for e in result.events if isinstance(e, ReasoningSummaryPartAdded))
    assert parts == sum(1 for e in events if e.get("type") == "response.reasoning_summary_part."
                        "added")
    # The same reasoning items as the completed response lists (whose encrypted_content is
    # a fresh encryption, so only its presence is compared).
    final_reasoning = [o for o in source if o["type"] == "reasoning"]
    assert [r.id for r in reasoning] == [o["id"] for o in final_reasoning]
    for r, o in zip(reasoning, final_reasoning, strict=True):
        assert bool(r.encrypted_content) == bool(o.get("encrypted_content"))


def check_responses_json(it: Interaction, base: str, transport: Urllib3Transport) -> None:
    # No Client method asks for a non-streamed response; the transport (gzip decoding
    # included) and codexapi's item and usage parsing are checked.
    response = transport.send(HttpRequest("POST", base + "/responses",
                                          {"Content-Type": "application/json"},
                                          it.request_body), False)
    assert response.status == it.status
    data = loads(response.read())
    assert data == it.response_json()
    items = [Item(o) for o in data["output"]]
    assert [i.type for i in items] == [o["type"] for o in data["output"]]
    for item in items:
        if item.type == "function_call":
            assert isinstance(json.loads(item.arguments), dict) and item.call_id and item.name
        elif item.type == "message":
            assert item.text == "".join(p.get("text", "") for p in item.raw["content"])
        elif item.type == "reasoning":
            assert all(s["type"] == "summary_text" for s in item.summary)
    usage = token_usage(data["usage"])
    assert usage is not None and usage.total_tokens == data["usage"]["total_tokens"]
    assert usage.input_tokens + usage.output_tokens == usage.total_tokens


# --- Chat -----------------------------------------------------------------------------------


def recorded_tool_calls(chunks: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Tool calls as the chunks spell them: fragments joined by index."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            for frag in (choice.get("delta") or {}).get("tool_calls") or []:
                call = calls.setdefault(frag.get("index", 0), {"id": "", "name": "", "args": ""})
                call["id"] = frag.get("id") or call["id"]
                fn = frag.get("function") or {}
                call["name"] += fn.get("name") or ""
                call["args"] += fn.get("arguments") or ""
    return [(c["name"], c["args"], c["id"]) for _, c in sorted(calls.items())]


def check_chat_stream(it: Interaction, result: StreamResult) -> None:
    chunks = it.events()
    content = "".join((c.get("delta") or {}).get("content") or "" for chunk in chunks
                      for c in chunk.get("choices") or [])
    assert result.text == content
    messages = [i for i in result.items if i.type == "message"]
    assert "".join(m.text for m in messages) == content
    assert result.response_id == chunks[0]["id"]
    usage = next((c["usage"] for c in chunks if c.get("usage")), None)
    if usage:
        assert result.usage == chat_usage(usage)
        assert result.usage is not None
        assert (result.usage.input_tokens, result.usage.output_tokens,
                result.usage.total_tokens) == (usage["prompt_tokens"],
                                               usage["completion_tokens"], usage["total_tokens"])
    calls = [(c.name, c.arguments, c.call_id) for c in result.function_calls]
    assert calls == recorded_tool_calls(chunks)
    finish = [c["finish_reason"] for chunk in chunks for c in chunk.get("choices") or []
              if c.get("finish_reason")]
    assert finish, "a recorded Chat stream ends with a finish_reason"
    if finish[-1] == "tool_calls":
        assert calls
    assert sum(isinstance(e, OutputItemDone) for e in result.events) == len(result.items)


def check_chat_json(it: Interaction, base: str, transport: Urllib3Transport) -> None:
    # codexapi streams Chat only; a non-streamed completion is checked through the transport
    # (gzip decoding) and codexapi's usage mapping.
    response = transport.send(HttpRequest("POST", base + "/chat/completions",
                                          {"Content-Type": "application/json"},
                                          it.request_body), False)
    data = loads(response.read())
    assert data == it.response_json()
    message = data["choices"][0]["message"]
    for call in message.get("tool_calls") or []:
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
    usage = chat_usage(data["usage"])
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"],
        data["usage"]["total_tokens"])
