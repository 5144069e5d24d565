"""The OpenTelemetry plugin, against the embedded server on both wires, read back through the
SDK's in-memory span exporter and metric reader.

The tests hand the plugin explicit providers (``OpenTelemetry(tracer_provider=...)``): the
process-wide providers stay unset here, so the built-in registration stays inactive, which
one test checks. The global path (the built-in with ``trace.set_tracer_provider``) runs in a
subprocess, in ``test_docs_otel.py``.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_client
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from codexapi import (
    ApiError,
    Client,
    ContextWindowExceeded,
    FunctionCall,
    FunctionCallOutput,
    Message,
    OutputTextDelta,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    StreamError,
    WireApi,
    hookimpl,
)
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER
from codexapi_plugins.otel import CAPTURE_ENV, WEBSOCKET_WIRE, OpenTelemetry, provider_name
from codexapi_plugins.wire_chat import ChatIncludeUsage
from codexapi_plugins.wire_responses import ResponsesWire

WIRES = [WireApi.RESPONSES, WireApi.CHAT]


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def plugin(self, **kw: Any) -> OpenTelemetry:
        return OpenTelemetry(tracer_provider=self.tracer_provider,
                             meter_provider=self.meter_provider, **kw)

    def client_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind is SpanKind.CLIENT]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out.extend(metric.data.data_points)
        return out


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


def client_for(server: EmbeddedServer, wire: WireApi, plugins: list[Any],
               attempts: int = 3) -> Client:
    """A client for the well-known "openai" provider (its span attributes), quick retries
    and no re-sends of a turn."""
    return make_client(server, wire, name="openai", plugins=plugins, stream_max_retries=0,
                       retry=RetryPolicy(max_attempts=attempts, base_delay=0.01, max_delay=0.05))


def fault(plan: str) -> dict[str, str]:
    return {FAULT_HEADER: plan, FAULT_ID_HEADER: uuid.uuid4().hex}


def sent_headers(server: EmbeddedServer, marker: str) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in headers.items()}
            for _, _, headers, _ in server.requests
            if {k.lower(): v for k, v in headers.items()}.get(FAULT_ID_HEADER) == marker]


REQUEST = ResponsesRequest(model="gpt-otel", instructions="Be brief.",
                           input=[Message(role="user", content="Hello there")])


@pytest.mark.parametrize("wire", WIRES)
def test_one_client_span_per_turn_with_the_genai_attributes(
        server: EmbeddedServer, otel: Telemetry, wire: WireApi) -> None:
    plugins: list[Any] = [otel.plugin()]
    if wire is WireApi.CHAT:
        plugins.append(ChatIncludeUsage())
    headers = fault("")
    marker = headers[FAULT_ID_HEADER]
    tracer = otel.tracer_provider.get_tracer("app")
    with client_for(server, wire, plugins) as client, \
            tracer.start_as_current_span("handler") as parent:
        result = client.stream(REQUEST, conversation_id="conv-1", headers=headers).collect()
    (span,) = otel.client_spans()
    assert span.name == "chat gpt-otel"
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-otel"
    assert attrs["openai.api.type"] == ("chat_completions" if wire is WireApi.CHAT
                                        else "responses")
    assert attrs["gen_ai.response.model"] == "gpt-otel"
    assert attrs["gen_ai.response.id"] == result.response_id
    assert result.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == result.usage.input_tokens > 0
    assert attrs["gen_ai.usage.output_tokens"] == result.usage.output_tokens > 0
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == server.port
    assert attrs["gen_ai.conversation.id"] == "conv-1"
    assert "error.type" not in attrs
    assert span.status.status_code is not StatusCode.ERROR
    # Content is opt-in: nothing of the conversation is recorded by default.
    assert not [k for k in attrs if k.endswith(("messages", "instructions", "definitions"))]
    # The request carried this span's trace context.
    (sent,) = sent_headers(server, marker)
    ctx = span.get_span_context()
    assert sent["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


@pytest.mark.parametrize("wire", WIRES)
def test_metrics_duration_and_token_usage(server: EmbeddedServer, otel: Telemetry,
                                          wire: WireApi) -> None:
    plugins: list[Any] = [otel.plugin(), ChatIncludeUsage()]
    with client_for(server, wire, plugins) as client:
        result = client.stream(REQUEST).collect()
        client.stream(REQUEST).collect()
    assert result.usage is not None
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.count == 2 and duration.sum > 0
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-otel", "gen_ai.response.model": "gpt-otel",
        "server.address": "127.0.0.1", "server.port": server.port}
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    tokens = {p.attributes["gen_ai.token.type"]: p
              for p in otel.points("gen_ai.client.token.usage")}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].count == 2 and tokens["input"].sum == 2 * result.usage.input_tokens
    assert tokens["output"].sum == 2 * result.usage.output_tokens
    (first,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert first.count == 2 and 0 < first.sum < duration.sum


@pytest.mark.parametrize("wire", WIRES)
def test_a_retried_call_is_one_span_with_an_event_per_retry(
        server: EmbeddedServer, otel: Telemetry, wire: WireApi) -> None:
    headers = fault("500x1,429x1:0")
    marker = headers[FAULT_ID_HEADER]
    with client_for(server, wire, [otel.plugin()]) as client:
        client.stream(REQUEST, headers=headers).collect()
    (span,) = otel.client_spans()
    retries = [e for e in span.events if e.name == "codexapi.retry"]
    assert [(e.attributes or {})["http.response.status_code"] for e in retries] == [500, 429]
    assert [(e.attributes or {})["codexapi.retry.attempt"] for e in retries] == [1, 2]
    # A 429 is an ApiRateLimitError (both ApiError and RateLimitError).
    assert [(e.attributes or {})["error.type"] for e in retries] == ["codexapi.ApiError",
                                                                     "codexapi.ApiRateLimitError"]
    assert "error.type" not in (span.attributes or {})
    # Every attempt carried the same span's context.
    sent = sent_headers(server, marker)
    assert len(sent) == 3
    assert len({h["traceparent"] for h in sent}) == 1
    assert f"{span.get_span_context().span_id:016x}" in sent[0]["traceparent"]


@pytest.mark.parametrize("wire", WIRES)
def test_an_http_failure_ends_the_span_with_error_type(
        server: EmbeddedServer, otel: Telemetry, wire: WireApi) -> None:
    with client_for(server, wire, [otel.plugin()], attempts=2) as client, \
            pytest.raises(ApiError):
        client.stream(REQUEST, headers=fault("503")).collect()
    (span,) = otel.client_spans()
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "codexapi.ApiError"
    assert attrs["http.response.status_code"] == 503
    assert span.status.status_code is StatusCode.ERROR
    assert "gen_ai.response.finish_reasons" not in attrs
    assert len([e for e in span.events if e.name == "codexapi.retry"]) == 1
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "codexapi.ApiError"
    assert not otel.points("gen_ai.client.token.usage")


@pytest.mark.parametrize("wire", WIRES)
def test_a_stream_failure_ends_the_span_with_error_type(
        server: EmbeddedServer, otel: Telemetry, wire: WireApi) -> None:
    with client_for(server, wire, [otel.plugin()]) as client:
        with pytest.raises(StreamError):
            client.stream(REQUEST, headers=fault("drop@2")).collect()
        with pytest.raises(ContextWindowExceeded):
            client.stream(REQUEST, headers=fault("failed:context_length_exceeded@1")).collect()
    dropped, refused = otel.client_spans()
    assert dict(dropped.attributes or {})["error.type"] == "codexapi.StreamDropped"
    assert dict(refused.attributes or {})["error.type"] == "codexapi.ContextWindowExceeded"
    assert all(s.status.status_code is StatusCode.ERROR for s in (dropped, refused))
    assert [e.name for e in refused.events] == ["exception"]
    errors = {p.attributes["error.type"] for p in otel.points("gen_ai.client.operation.duration")}
    assert errors == {"codexapi.StreamDropped", "codexapi.ContextWindowExceeded"}


def test_a_stream_closed_early_ends_its_span_without_an_error(
        server: EmbeddedServer, otel: Telemetry) -> None:
    with client_for(server, WireApi.RESPONSES, [otel.plugin()]) as client, \
            client.stream(REQUEST) as events:
        next(iter(events))
    (span,) = otel.client_spans()
    attrs = dict(span.attributes or {})
    assert attrs["codexapi.stream.cancelled"] is True
    assert "error.type" not in attrs and "gen_ai.response.finish_reasons" not in attrs
    assert span.status.status_code is not StatusCode.ERROR


def test_a_stream_dropped_unclosed_still_ends_its_span(server: EmbeddedServer,
                                                       otel: Telemetry) -> None:
    with client_for(server, WireApi.RESPONSES, [otel.plugin()]) as client:
        events = client.stream(ResponsesRequest(model="gpt-otel", input="Hello"))
        next(iter(events))
        del events  # never closed, never finished
        gc.collect()
    (span,) = otel.client_spans()
    assert dict(span.attributes or {})["codexapi.stream.cancelled"] is True


WEATHER = {"type": "function", "name": "weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


@pytest.mark.parametrize("wire", WIRES)
def test_a_tool_call_is_the_finish_reason(server: EmbeddedServer, otel: Telemetry,
                                          wire: WireApi, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setenv(CAPTURE_ENV, "span_only")
    request = ResponsesRequest(model="gpt-otel", input="Use the tool please", tools=[WEATHER])
    with client_for(server, wire, [otel.plugin()]) as client:
        result = client.stream(request).collect()
    assert result.function_calls
    (span,) = otel.client_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    (output,) = json.loads(attrs["gen_ai.output.messages"])
    assert output["finish_reason"] == "tool_call"
    (call,) = [p for p in output["parts"] if p["type"] == "tool_call"]
    assert call["name"] == "weather" and isinstance(call["arguments"], dict)


class RecordingSigner:
    """An auth flow that signs what it is given: it sees the headers plugins added."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    def auth_flow(self, request: Any) -> Iterator[Any]:
        self.seen.append(dict(request.headers))
        request.headers["x-signature"] = "sig"
        yield request


def test_the_trace_context_is_in_place_before_the_auth_flow_signs(
        server: EmbeddedServer, otel: Telemetry) -> None:
    signer = RecordingSigner()
    provider = Provider(name="openai", base_url=server.base_url,
                        retry=RetryPolicy(max_attempts=1))
    with Client(provider, auth=signer, plugins=[otel.plugin()],
                load_entrypoints=False) as client:
        client.stream(REQUEST).collect()
    (span,) = otel.client_spans()
    (headers,) = signer.seen
    assert f"{span.get_span_context().span_id:016x}" in headers["traceparent"]


class WebSocketNamedWire(ResponsesWire):
    """The Responses wire under the WebSocket wire's name, over HTTP: the body it sends is
    what the WebSocket wire would put in its ``response.create`` frame."""

    name = WEBSOCKET_WIRE

    def body(self, endpoint: str, request: Any) -> dict[str, Any]:
        body = super().body(endpoint, request)
        body["client_metadata"] = {"session_id": "s-1"}  # as Codex sends it
        return body

    @hookimpl
    def codexapi_register_wires(self, register: Any) -> None:
        register(self)


def test_on_the_websocket_wire_the_context_goes_in_client_metadata(
        server: EmbeddedServer, otel: Telemetry) -> None:
    headers = fault("")
    provider = Provider(name="openai", base_url=server.base_url, wire=WEBSOCKET_WIRE,
                        retry=RetryPolicy(max_attempts=1))
    request = ResponsesRequest(model="gpt-otel", input="Hello")
    with Client(provider, plugins=[WebSocketNamedWire(), otel.plugin()],
                load_entrypoints=False) as client:
        client.stream(request, headers=headers).collect()
    (span,) = otel.client_spans()
    ((body,),) = [[b] for _, _, h, b in server.requests
                  if {k.lower(): v for k, v in h.items()}.get(FAULT_ID_HEADER)
                  == headers[FAULT_ID_HEADER]]
    metadata = body["client_metadata"]
    assert metadata["session_id"] == "s-1"
    ctx = span.get_span_context()
    assert metadata["ws_request_header_traceparent"] == \
        f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    assert dict(span.attributes or {})["openai.api.type"] == "responses"


TOOL_REQUEST = ResponsesRequest(
    model="gpt-otel", instructions="Use tools.",
    input=[Message(role="user", content="Weather in Paris?"),
           FunctionCall(name="weather", arguments='{"city": "Paris"}', call_id="call_1"),
           FunctionCallOutput(call_id="call_1", output="sunny"),
           Message(role="user", content="Thanks")],
    tools=[{"type": "function", "name": "weather", "parameters": {"type": "object"}}])


@pytest.mark.parametrize("wire", WIRES)
def test_message_content_is_recorded_only_when_opted_in(
        server: EmbeddedServer, otel: Telemetry, wire: WireApi,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with client_for(server, wire, [otel.plugin()]) as client:
        client.stream(TOOL_REQUEST).collect()
        monkeypatch.setenv(CAPTURE_ENV, "true")
        result = client.stream(TOOL_REQUEST).collect()
    off, on = otel.client_spans()
    assert "gen_ai.input.messages" not in (off.attributes or {})
    attrs = dict(on.attributes or {})
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Use tools."}]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "weather",
                                         "arguments": {"city": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                    "response": "sunny"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Thanks"}]}]
    assert json.loads(attrs["gen_ai.tool.definitions"])[0]["name"] == "weather"
    (output,) = json.loads(attrs["gen_ai.output.messages"])
    assert output["role"] == "assistant" and output["finish_reason"] == "stop"
    # One text part on every wire, however many deltas the answer came in.
    assert output["parts"] == [{"type": "text", "content": result.text}]
    assert len([e for e in result.events if isinstance(e, OutputTextDelta)]) > 1


def test_the_plugin_object_can_opt_in_without_the_environment(
        server: EmbeddedServer, otel: Telemetry) -> None:
    with client_for(server, WireApi.RESPONSES, [otel.plugin(capture_content=True)]) as client:
        client.stream(REQUEST).collect()
    (span,) = otel.client_spans()
    assert "Hello there" in dict(span.attributes or {})["gen_ai.input.messages"]


def test_without_a_configured_tracer_provider_nothing_is_recorded_or_sent(
        server: EmbeddedServer) -> None:
    # opentelemetry is imported (by this module) but no provider is set process-wide: the
    # built-in registration is inactive and sends no trace context.
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    headers = fault("")
    with client_for(server, WireApi.RESPONSES, []) as client:
        client.stream(REQUEST, headers=headers).collect()
    (sent,) = sent_headers(server, headers[FAULT_ID_HEADER])
    assert "traceparent" not in sent


def test_without_a_configured_tracer_provider_no_turn_is_observed(
        server: EmbeddedServer, otel: Telemetry) -> None:
    # The built-in declines every turn in codexapi_observe_stream, so a stream keeps nothing
    # as it goes for its sake; a plugin object with a provider asks for the turn's end only
    # (its spans need no streamed text), and for no seed client's ready body.
    with client_for(server, WireApi.RESPONSES, []) as client:
        assert client.plugin_manager.stream_observation(client.provider, REQUEST, {}) is None
        stream = client.stream(REQUEST)
        assert stream._turn.observed is None
        stream.close()
    with client_for(server, WireApi.RESPONSES, [otel.plugin()]) as client:
        pm = client.plugin_manager
        assert pm.stream_observation(client.provider, REQUEST, {}) == "end"
        assert pm.stream_observation(client.provider, None, {}) is None


def test_the_builtin_is_registered_like_every_first_party_plugin() -> None:
    from codexapi.plugins import DEFAULT_PLUGINS, describe, make_plugin_manager

    assert "codexapi_plugins.otel" in DEFAULT_PLUGINS
    hooks = {p["name"]: p["hooks"] for p in describe(make_plugin_manager(load_entrypoints=False))}
    # One lifecycle for every call: streams are observed through on_call_start/on_call_end.
    assert {"codexapi_on_call_start", "codexapi_on_call_end"} <= set(
        hooks["codexapi_plugins.otel"])
    assert "codexapi_on_stream_end" not in hooks["codexapi_plugins.otel"]


_NO_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if it were not installed
import codexapi
from codexapi import Client, Provider, ResponsesRequest
from codexapi.plugins import describe
from codexapi.server import EmbeddedServer
with EmbeddedServer() as server:
    with Client(Provider(base_url=server.base_url), load_entrypoints=False) as client:
        text = client.stream(ResponsesRequest(model="m", input="hi")).collect().text
    hooks = {p["name"]: p["hooks"] for p in describe(client.plugin_manager)}
print(text)
print("codexapi_plugins.otel" in sys.modules, hooks["codexapi_plugins.otel"])
"""

_IMPORT_ONLY = """
import sys
import codexapi
from codexapi import Client, Provider
Client(Provider(base_url="http://127.0.0.1:9/v1"), load_entrypoints=False).close()
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


def test_without_opentelemetry_installed_the_plugin_is_harmless() -> None:
    out = subprocess.run([sys.executable, "-c", _NO_OTEL], capture_output=True, text=True,
                         timeout=30, check=True)
    text, loaded = out.stdout.splitlines()
    # Registered, and with no hooks: streams do not even keep their result for it.
    assert text and loaded == "True []"


def test_codexapi_and_the_plugin_import_no_opentelemetry() -> None:
    out = subprocess.run([sys.executable, "-c", _IMPORT_ONLY], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.strip() == "[]"


def test_provider_names_follow_the_conventions() -> None:
    assert provider_name(Provider()) == "openai"
    assert provider_name(Provider(name="azure",
                                  base_url="https://x.openai.azure.com/openai")) == \
        "azure.ai.openai"
    assert provider_name(Provider(name="ollama", base_url="http://localhost:11434/v1")) == \
        "ollama"
    assert provider_name(Provider(name="custom", base_url="https://api.groq.com/v1")) == "groq"


_BOTH = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from codexapi import Client, Provider, ResponsesRequest
from codexapi.server import EmbeddedServer
from codexapi_plugins.otel import OpenTelemetry

def provider():
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp, exporter

global_tp, global_spans = provider()
trace.set_tracer_provider(global_tp)
own_tp, own_spans = provider()
request = ResponsesRequest(model="m", input="hi")
with EmbeddedServer() as server:
    with Client(Provider(base_url=server.base_url), load_entrypoints=False) as client:
        client.stream(request).collect()
        client.compact(request)
        client.list_models("0.171.0")
    with Client(Provider(base_url=server.base_url), load_entrypoints=False,
                plugins=[OpenTelemetry(tracer_provider=own_tp)]) as client:
        client.stream(request).collect()
        client.compact(request)
        client.list_models("0.171.0")
print(len(global_spans.get_finished_spans()), len(own_spans.get_finished_spans()))
"""


def test_a_plugin_object_takes_its_calls_from_the_builtin() -> None:
    # The built-in (global provider) records the first client's calls (a turn, a compact, a
    # model list); the second client's go to its own plugin object only, not to both.
    out = subprocess.run([sys.executable, "-c", _BOTH], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["3", "3"]


# --- unary calls: compact and the model list ------------------------------------------------


def test_compact_and_list_models_get_a_span_each(server: EmbeddedServer,
                                                 otel: Telemetry) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    before = len(server.requests)
    with client_for(server, WireApi.RESPONSES, [otel.plugin()]) as client, \
            tracer.start_as_current_span("handler") as parent:
        items = client.compact(REQUEST)
        models = client.list_models("0.171.0")
    compact, listing = otel.client_spans()
    assert (compact.name, listing.name) == ("compact gpt-otel", "list_models")
    for span in (compact, listing):
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.status.status_code is StatusCode.UNSET
        attrs = dict(span.attributes or {})
        assert attrs["gen_ai.provider.name"] == "openai"
        assert (attrs["server.address"], attrs["server.port"]) == ("127.0.0.1", server.port)
        assert "error.type" not in attrs
    c_attrs, m_attrs = dict(compact.attributes or {}), dict(listing.attributes or {})
    assert c_attrs["gen_ai.operation.name"] == "compact"
    assert c_attrs["gen_ai.request.model"] == "gpt-otel"
    assert c_attrs["codexapi.compact.output_items"] == len(items) > 0
    assert m_attrs["gen_ai.operation.name"] == "list_models"
    assert "gen_ai.request.model" not in m_attrs
    assert m_attrs["codexapi.models.count"] == len(models.models) > 0
    assert m_attrs["codexapi.models.client_version"] == "0.171.0"
    # Each request carried its own span's trace context.
    (_, _, c_headers, _), (_, _, m_headers, _) = server.requests[before:]
    assert f"{compact.context.span_id:016x}" in c_headers["traceparent"]
    assert f"{listing.context.span_id:016x}" in m_headers["traceparent"]
    durations = {p.attributes["gen_ai.operation.name"]: p.count
                 for p in otel.points("gen_ai.client.operation.duration")}
    assert durations == {"compact": 1, "list_models": 1}
    assert not otel.points("gen_ai.client.token.usage")


def test_a_failed_unary_call_ends_its_span_with_error_type(otel: Telemetry) -> None:
    with EmbeddedServer(faults="500") as failing, \
            client_for(failing, WireApi.RESPONSES, [otel.plugin()], attempts=1) as client:
        with pytest.raises(ApiError):
            client.list_models("0.171.0")
        with pytest.raises(ApiError):
            client.compact(REQUEST)
    for span in otel.client_spans():
        attrs = dict(span.attributes or {})
        assert attrs["error.type"] == "codexapi.ApiError"
        assert attrs["http.response.status_code"] == 500
        assert span.status.status_code is StatusCode.ERROR
        assert [e.name for e in span.events] == ["exception"]
    assert [s.name for s in otel.client_spans()] == ["list_models", "compact gpt-otel"]
    points = otel.points("gen_ai.client.operation.duration")
    assert {p.attributes["error.type"] for p in points} == {"codexapi.ApiError"}


def test_a_retried_compact_is_one_span_with_a_retry_event(otel: Telemetry) -> None:
    with EmbeddedServer(faults="503x1") as flaky, \
            client_for(flaky, WireApi.RESPONSES, [otel.plugin()]) as client:
        client.compact(REQUEST)
    (span,) = otel.client_spans()
    assert [e.name for e in span.events] == ["codexapi.retry"]
    assert span.events[0].attributes["http.response.status_code"] == 503
    assert "error.type" not in (span.attributes or {})


def test_interleaved_turns_each_get_their_own_span_without_thread_state(
        server: EmbeddedServer, otel: Telemetry) -> None:
    # The span lives in each call's extensions from start to end: two turns opened one after
    # the other on one thread, read in the other order on another thread, keep theirs.
    import threading

    import codexapi_plugins.otel as module

    assert not any(isinstance(v, threading.local) for v in vars(module).values())
    first = ResponsesRequest(model="gpt-first", input="one")
    second = ResponsesRequest(model="gpt-second", input="two")
    with client_for(server, WireApi.RESPONSES, [otel.plugin()]) as client:
        a = client.stream(first)
        b = client.stream(second)
        results: dict[str, Any] = {}
        reader = threading.Thread(target=lambda: results.update(
            b=b.collect(), a=a.collect()))
        reader.start()
        reader.join(10)
    spans = {s.name: dict(s.attributes or {}) for s in otel.client_spans()}
    assert set(spans) == {"chat gpt-first", "chat gpt-second"}
    assert spans["chat gpt-first"]["gen_ai.response.id"] == results["a"].response_id
    assert spans["chat gpt-second"]["gen_ai.response.id"] == results["b"].response_id
