"""First-party OpenTelemetry plugin: a GenAI client span and the GenAI client metrics per turn.

It follows the OpenTelemetry GenAI semantic conventions (the names of semconv 1.37 and later:
``gen_ai.provider.name``, ``gen_ai.input.messages``…). Each streamed turn gets one CLIENT span
named ``{gen_ai.operation.name} {gen_ai.request.model}`` that covers every attempt and retry
(the conventions ask for one span per logical operation), one span event per retry, the
``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` histograms, and
``gen_ai.client.operation.time_to_first_chunk``. ``compact`` and ``list_models`` calls get
a span each too (operations ``compact`` and ``list_models``, this library's own names), through
the ``codexapi_on_call_start`` / ``codexapi_on_call_end`` hooks. Each attempt carries the
span's W3C trace context (``traceparent``) through the globally configured propagator.

Nothing of OpenTelemetry is imported by this module. It is active only when
``opentelemetry.trace`` has been imported by the program and a tracer provider is configured
(a program cannot configure one without importing it), or when it is given providers as a
plugin object: ``Client(plugins=[codexapi_plugins.otel.OpenTelemetry(tracer_provider=...)])``.
Otherwise every hook returns at once; without OpenTelemetry installed the module registers no
hooks at all.

Message content (instructions, input and output messages, tool definitions) is recorded only
when the user opts in, with the conventions' switch
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (``true``, ``span_only`` or
``span_and_event``) or ``OpenTelemetry(capture_content=True)``.

Telemetry never breaks a call: every hook swallows (and logs at debug level) its own failures.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Generator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from codexapi import HttpRequest, Provider, __version__, hookimpl
from codexapi.plugin_api import dumps, format_of, preview, scrub, scrub_error

log = logging.getLogger("codexapi.otel")

#: Instrumentation scope: the tracer and meter name.
SCOPE = "codexapi"
#: The semantic-conventions version whose names this plugin emits.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
#: Where a call's state lives in ``HttpRequest.extensions`` / ``StreamResult.extensions``.
EXTENSION = "codexapi_plugins.otel"
#: The WebSocket wire's name: its frames carry the trace context in ``client_metadata``.
WEBSOCKET_WIRE = "responses_websocket"
#: OpenTelemetry's switch for leaving named instrumentations out.
DISABLED_ENV = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "1", "yes", "span_only", "span_and_event"})

OPERATION = "chat"  # both wires are chat-style generation in the conventions' vocabulary
#: ``gen_ai.operation.name`` of the unary calls, by endpoint. The conventions have no name
#: for either, so they are this library's own (the conventions allow custom values).
UNARY_OPERATIONS = {"compact": "compact", "models": "list_models"}

# Bucket boundaries the conventions recommend for each histogram.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
FIRST_CHUNK_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
                       2.5, 5.0, 7.5, 10.0)

#: Well-known hosts -> the conventions' ``gen_ai.provider.name`` values.
_HOST_PROVIDERS = (
    (".openai.azure.com", "azure.ai.openai"),
    ("api.openai.com", "openai"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
)
_NAME_PROVIDERS = {"openai": "openai", "azure": "azure.ai.openai",
                   "azure_openai": "azure.ai.openai", "deepseek": "deepseek", "groq": "groq",
                   "mistral": "mistral_ai", "xai": "x_ai", "x_ai": "x_ai",
                   "perplexity": "perplexity"}

def provider_name(provider: Provider) -> str:
    """``gen_ai.provider.name`` for a provider: the conventions' value for well-known hosts and
    names, else the provider's own name."""
    host = (urlsplit(provider.base_url).hostname or "").lower()
    for suffix, name in _HOST_PROVIDERS:
        if host == suffix.lstrip(".") or host.endswith(suffix):
            return name
    key = provider.name.lower()
    return _NAME_PROVIDERS.get(key, key)


def error_type(error: BaseException) -> str:
    """A low-cardinality ``error.type``: the exception's public class name."""
    cls = type(error)
    module = cls.__module__
    if module.startswith("codexapi.") and cls.__name__ in getattr(
            sys.modules.get("codexapi"), "__all__", ()):
        module = "codexapi"  # the name users import (codexapi.RateLimitError)
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _disabled() -> bool:
    names = os.environ.get(DISABLED_ENV)
    return bool(names) and SCOPE in {n.strip() for n in names.split(",")}


def capture_from_env() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in _CAPTURE_ON


class _Api:
    """The OpenTelemetry modules, once the program has imported them."""

    def __init__(self) -> None:
        from opentelemetry import propagate, trace

        self.trace = trace
        self.propagate = propagate
        self.CLIENT = trace.SpanKind.CLIENT
        self.Status = trace.Status
        self.ERROR = trace.StatusCode.ERROR


_api: _Api | None = None


def _otel() -> _Api | None:
    """The API if the program uses OpenTelemetry, without importing it otherwise."""
    global _api
    if _api is None:
        if "opentelemetry.trace" not in sys.modules:
            return None
        _api = _Api()
    return _api


class _Instruments:
    """The tracer and metric instruments for one (tracer provider, meter provider) pair."""

    def __init__(self, api: _Api, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = tracer_provider.get_tracer(SCOPE, __version__, schema_url=SCHEMA_URL)
        if meter_provider is None:
            from opentelemetry import metrics

            meter_provider = metrics.get_meter_provider()
        meter = meter_provider.get_meter(SCOPE, __version__, schema_url=SCHEMA_URL)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS))
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS))
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            description="Time to receive the first chunk of the response stream.",
            explicit_bucket_boundaries_advisory=list(FIRST_CHUNK_BUCKETS))


class _Call:
    """One call being traced: its span and what the hooks learnt along the way. It lives in
    the call's ``extensions`` from ``codexapi_on_call_start`` to ``codexapi_on_call_end``."""

    __slots__ = ("attrs", "capture", "ended", "inst", "model", "owner",
                 "provider", "span", "start_ns", "started")

    def __init__(self, owner: OpenTelemetry, request: Any, provider: Provider) -> None:
        self.start_ns = time.time_ns()
        self.started = time.perf_counter()
        self.owner = owner
        self.provider = provider
        self.model = str(getattr(request, "model", "") or "")
        self.span: Any = None
        self.inst: _Instruments | None = None
        self.capture = False
        self.attrs: dict[str, Any] = {}
        self.ended = False


def _safe(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception:  # telemetry must never break the call it observes
        log.debug("OpenTelemetry instrumentation failed in %s", getattr(fn, "__name__", fn),
                  exc_info=True)
        return None


class OpenTelemetry:
    """The plugin as an object, for explicit providers or content capture.

    ``Client(plugins=[OpenTelemetry(tracer_provider=tp, meter_provider=mp)])``. Without
    arguments it uses the global providers, as the built-in registration does. When both the
    built-in and an object of yours see a call, yours (registered later, asked first) records
    it and the built-in stays out of it.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None,
                 capture_content: bool | None = None) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.capture_content = capture_content
        self._instruments: tuple[Any, Any, _Instruments] | None = None

    def __repr__(self) -> str:
        return (f"OpenTelemetry(tracer_provider={self.tracer_provider!r}, "
                f"meter_provider={self.meter_provider!r}, "
                f"capture_content={self.capture_content!r})")

    # --- activation ----------------------------------------------------------------------

    def _active(self) -> _Instruments | None:
        api = _otel()
        if api is None:
            return None
        tracer_provider = self.tracer_provider
        if tracer_provider is None:
            tracer_provider = api.trace.get_tracer_provider()
            # The proxy is what the API hands out until a program configures a provider.
            if isinstance(tracer_provider, (api.trace.ProxyTracerProvider,
                                            api.trace.NoOpTracerProvider)):
                return None
        if _disabled():  # read each call, after the cheaper test, so it can change at run time
            return None
        cached = self._instruments
        if cached is not None and cached[0] is tracer_provider and (
                self.meter_provider is None or cached[1] is self.meter_provider):
            return cached[2]
        inst = _Instruments(api, tracer_provider, self.meter_provider)
        self._instruments = (tracer_provider, self.meter_provider, inst)
        return inst

    # --- hooks ---------------------------------------------------------------------------

    @hookimpl(wrapper=True)
    def codexapi_build_body(self, provider: Provider, endpoint: str, request: Any,
                            extensions: dict[str, Any]
                            ) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
        # A wrapper, so it runs whichever plugin builds the body: a WebSocket turn carries
        # its trace context in the body.
        body = yield
        call = extensions.get(EXTENSION)
        if (call is not None and call.owner is self and isinstance(body, dict)
                and provider.wire == WEBSOCKET_WIRE):
            _safe(self._into_metadata, call, body)
        return body

    def _begin(self, provider: Provider, request: Any, extensions: dict[str, Any]) -> None:
        started = (time.time_ns(), time.perf_counter())
        inst = self._active()
        if inst is None:
            return
        api = _otel()
        assert api is not None
        call = _Call(self, request, provider)
        call.start_ns, call.started = started
        call.inst = inst
        call.capture = (self.capture_content if self.capture_content is not None
                        else capture_from_env())
        attrs = _request_attributes(call, request, provider)
        call.attrs = attrs
        name = f"{OPERATION} {call.model}" if call.model else OPERATION
        span = inst.tracer.start_span(name, kind=api.CLIENT, attributes=attrs,
                                      start_time=call.start_ns)
        call.span = span
        if call.capture and span.is_recording():
            for key, value in _input_content(request).items():
                span.set_attribute(key, value)
        extensions[EXTENSION] = call

    @staticmethod
    def _into_metadata(call: _Call, body: dict[str, Any]) -> None:
        # A WebSocket frame has no headers of its own: Codex sends the trace context in
        # client_metadata under these keys (codex-api common.rs,
        # response_create_client_metadata).
        api = _otel()
        if api is None or call.span is None:
            return
        carrier: dict[str, str] = {}
        api.propagate.inject(carrier, context=api.trace.set_span_in_context(call.span))
        metadata = dict(body.get("client_metadata") or {})
        for name in ("traceparent", "tracestate"):
            if carrier.get(name):
                metadata[f"ws_request_header_{name}"] = carrier[name]
        if metadata:
            body["client_metadata"] = metadata

    def _call_of(self, request: HttpRequest) -> _Call | None:
        call = request.extensions.get(EXTENSION)
        return call if call is not None and call.owner is self and not call.ended else None

    @hookimpl
    def codexapi_on_request(self, provider: Provider, request: HttpRequest, attempt: int
                            ) -> None:
        _safe(self._attempt, request)

    def _attempt(self, request: HttpRequest) -> None:
        call = self._call_of(request)
        api = _otel()
        if call is None or api is None or call.span is None:
            return
        if not call.attrs.get("server.address"):
            _server_attributes(call, request.url)
        conversation = (request.headers.get("conversation_id")
                        or request.headers.get("session_id"))
        if conversation:
            call.span.set_attribute("gen_ai.conversation.id", conversation)
        # Runs before the auth flow, so a signing auth covers the trace context too.
        api.propagate.inject(request.headers, context=api.trace.set_span_in_context(call.span))

    @hookimpl
    def codexapi_on_retry(self, provider: Provider, request: HttpRequest, attempt: int,
                          error: Exception, delay: float) -> None:
        call = request.extensions.get(EXTENSION)
        if call is not None and call.owner is self and not call.ended:
            _safe(_retry_event, call, attempt, error, delay)

    @hookimpl
    def codexapi_observe_stream(self, request: Any) -> str | None:
        # The span needs how the turn ended (id, usage, items, timing), never the streamed
        # text: output messages come from the message items. A seed client's ready body gets
        # no span (its body is not built), and neither does any turn while inactive.
        if request is None:
            return None
        return "end" if _safe(self._active) is not None else None

    @hookimpl
    def codexapi_on_call_start(self, provider: Provider, endpoint: str, request: Any,
                               extensions: dict[str, Any]) -> None:
        if EXTENSION in extensions:
            return  # another OpenTelemetry object (registered later, asked first) took it
        if endpoint == "stream":
            _safe(self._begin, provider, request, extensions)
        else:
            _safe(self._begin_unary, provider, endpoint, request, extensions)

    def _begin_unary(self, provider: Provider, endpoint: str, request: Any,
                     extensions: dict[str, Any]) -> None:
        operation = UNARY_OPERATIONS.get(endpoint)
        inst = self._active() if operation is not None else None
        api = _otel()
        if inst is None or api is None or operation is None:
            return
        call = _Call(self, request, provider)
        call.inst = inst
        call.attrs = _request_attributes(call, request, provider, operation)
        if endpoint == "models" and isinstance(request, str):
            call.attrs["codexapi.models.client_version"] = request
        name = f"{operation} {call.model}" if call.model else operation
        call.span = inst.tracer.start_span(name, kind=api.CLIENT, attributes=call.attrs,
                                           start_time=call.start_ns)
        extensions[EXTENSION] = call

    @hookimpl
    def codexapi_on_call_end(self, provider: Provider, endpoint: str, result: Any,
                             error: BaseException | None, extensions: dict[str, Any]) -> None:
        call = extensions.get(EXTENSION)
        if call is not None and call.owner is self:
            if endpoint == "stream":
                _safe(self._finish, call, result, error)
            else:
                _safe(self._finish_unary, call, endpoint, result, error)

    def _finish_unary(self, call: _Call, endpoint: str, result: Any,
                      error: BaseException | None) -> None:
        if call.ended:
            return
        call.ended = True
        span, inst = call.span, call.inst
        if span is None or inst is None:
            return
        seconds = time.perf_counter() - call.started
        metric = {k: v for k, v in call.attrs.items() if k in _METRIC_KEYS}
        if error is not None:
            metric["error.type"] = _record_error(span, error)
        elif endpoint == "compact" and isinstance(result, list):
            span.set_attribute("codexapi.compact.output_items", len(result))
        elif endpoint == "models":
            models = getattr(result, "models", None)
            if isinstance(models, list):
                span.set_attribute("codexapi.models.count", len(models))
        span.end()
        inst.duration.record(seconds, metric)

    # --- ending --------------------------------------------------------------------------

    def _finish(self, call: _Call, result: Any, error: BaseException | None) -> None:
        if call.ended:
            return
        call.ended = True
        span = call.span
        inst = call.inst
        api = _otel()
        if span is None or inst is None or api is None:
            return
        seconds = time.perf_counter() - call.started
        reason = getattr(result, "finish_reason", None)
        if isinstance(error, GeneratorExit):
            error, reason = None, "cancelled"  # the caller stopped reading: not a failure
        usage = getattr(result, "usage", None)
        response_model = getattr(result, "model", None) or call.model or None
        # One call into the span for all of them (each set_attribute takes the span's lock).
        found: dict[str, Any] = {}
        if response_model:
            found["gen_ai.response.model"] = response_model
        response_id = getattr(result, "response_id", None)
        if response_id:
            found["gen_ai.response.id"] = str(response_id)
        if usage is not None:
            _usage_attributes(found, usage)
        err_type: str | None = None
        if error is not None:
            err_type = _record_error(span, error)
        elif reason == "cancelled":
            found["codexapi.stream.cancelled"] = True
        else:
            reason = _finish_reason(result)
            found["gen_ai.response.finish_reasons"] = [reason]
            if call.capture and span.is_recording():
                found["gen_ai.output.messages"] = dumps(
                    _output_messages(result, reason)).decode()
        if found:
            # What the server sent (model, response id, output) may echo a credential.
            span.set_attributes({k: scrub(v) if isinstance(v, str) else v
                                 for k, v in found.items()})
        span.end()
        # Metric attributes: the low-cardinality subset the conventions list.
        metric = {k: v for k, v in call.attrs.items() if k in _METRIC_KEYS}
        if response_model:
            metric["gen_ai.response.model"] = scrub(response_model)
        if err_type is not None:
            metric["error.type"] = err_type
        inst.duration.record(seconds, metric)
        first = getattr(result, "time_to_first_event", None)
        if first is not None and err_type is None:
            inst.first_chunk.record(float(first), metric)
        if usage is not None:
            tokens = dict(metric)
            tokens.pop("error.type", None)
            inst.tokens.record(int(usage.input_tokens), {**tokens, "gen_ai.token.type": "input"})
            inst.tokens.record(int(usage.output_tokens),
                               {**tokens, "gen_ai.token.type": "output"})


#: Wire name -> the conventions' ``openai.api.type``.
_API_TYPES = {"chat": "chat_completions", "responses": "responses"}

_METRIC_KEYS = frozenset({"gen_ai.operation.name", "gen_ai.provider.name",
                          "gen_ai.request.model", "server.address", "server.port"})


def _request_attributes(call: _Call, turn: Any, provider: Provider,
                        operation: str = OPERATION) -> dict[str, Any]:
    attrs = dict(_provider_attributes(provider, operation))
    if call.model:
        attrs["gen_ai.request.model"] = call.model
    for name, key in _REQUEST_FIELDS:
        value = getattr(turn, name, None)
        if value is not None and isinstance(value, int | float | str) and not isinstance(
                value, bool):
            attrs[key] = value
    text = getattr(turn, "text", None)
    if text is not None:
        fmt = format_of(text)
        if isinstance(fmt, Mapping) and fmt.get("type") in ("json_schema", "json_object"):
            attrs["gen_ai.output.type"] = "json"
    return attrs


_REQUEST_FIELDS = (("max_output_tokens", "gen_ai.request.max_tokens"),
                   ("temperature", "gen_ai.request.temperature"),
                   ("top_p", "gen_ai.request.top_p"),
                   ("service_tier", "openai.request.service_tier"))
#: (provider, operation) -> the attributes every call of theirs starts with. Providers are
#: frozen, so what follows from one never changes; the key holds the provider itself (an id
#: alone could be reused once it is freed).
_PROVIDER_ATTRIBUTES: dict[tuple[int, str], tuple[Provider, dict[str, Any]]] = {}
_PROVIDER_CACHE_SIZE = 64


def _provider_attributes(provider: Provider, operation: str) -> dict[str, Any]:
    key = (id(provider), operation)
    cached = _PROVIDER_ATTRIBUTES.get(key)
    if cached is not None and cached[0] is provider:
        return cached[1]
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider_name(provider),
    }
    wire = str(getattr(provider.wire, "value", provider.wire))
    api_type = _API_TYPES.get(wire, "responses" if wire.startswith("responses") else None)
    if api_type:
        attrs["openai.api.type"] = api_type
    parts = urlsplit(provider.base_url)
    if parts.hostname:
        attrs["server.address"] = parts.hostname
        attrs["server.port"] = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    if len(_PROVIDER_ATTRIBUTES) >= _PROVIDER_CACHE_SIZE:
        _PROVIDER_ATTRIBUTES.clear()  # bounded: a program making providers on the fly
    _PROVIDER_ATTRIBUTES[key] = (provider, attrs)
    return attrs


def _record_error(span: Any, error: BaseException) -> str:
    """Mark ``span`` failed with ``error``; returns its ``error.type``."""
    api = _otel()
    err_type = error_type(error)
    span.set_attribute("error.type", err_type)
    status = getattr(error, "status", None)
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
    # A span leaves the process: the error and its cause chain are scrubbed before recording,
    # and the status text scrubbed before it is cut.
    scrub_error(error)
    span.record_exception(error)
    if api is not None:
        span.set_status(api.Status(api.ERROR, preview(str(error), 500)))
    return err_type


def _server_attributes(call: _Call, url: str) -> None:
    parts = urlsplit(url)
    if parts.hostname and call.span is not None:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        call.attrs["server.address"] = parts.hostname
        call.attrs["server.port"] = port
        call.span.set_attribute("server.address", parts.hostname)
        call.span.set_attribute("server.port", port)


def _usage_attributes(attrs: dict[str, Any], usage: Any) -> None:
    attrs["gen_ai.usage.input_tokens"] = int(usage.input_tokens)
    attrs["gen_ai.usage.output_tokens"] = int(usage.output_tokens)
    cached = getattr(usage, "cached_input_tokens", 0)
    if cached:
        attrs["gen_ai.usage.cache_read.input_tokens"] = int(cached)
    reasoning = getattr(usage, "reasoning_output_tokens", 0)
    if reasoning:
        attrs["gen_ai.usage.reasoning.output_tokens"] = int(reasoning)


def _retry_event(call: _Call, attempt: int, error: Exception, delay: float) -> None:
    attrs: dict[str, Any] = {"codexapi.retry.attempt": attempt,
                             "codexapi.retry.delay": float(delay),
                             "error.type": error_type(error)}
    status = getattr(error, "status", None)
    if isinstance(status, int):
        attrs["http.response.status_code"] = status
    call.span.add_event("codexapi.retry", attrs)


def _finish_reason(result: Any) -> str:
    """Why the model stopped, as the wire reported it (``stop``, ``tool_calls``…)."""
    reason = getattr(result, "finish_reason", None)
    if isinstance(reason, str) and reason and reason not in ("error", "cancelled"):
        return reason
    items = getattr(result, "items", None) or ()
    if any(getattr(i, "type", None) in ("function_call", "custom_tool_call") for i in items):
        return "tool_calls"
    return "stop"


# --- message content (opt-in) ---------------------------------------------------------------


def _input_content(turn: Any) -> dict[str, str]:
    from codexapi.plugin_api import item_to_json

    out: dict[str, str] = {}
    instructions = getattr(turn, "instructions", "")
    if instructions:
        out["gen_ai.system_instructions"] = dumps(
            [{"type": "text", "content": instructions}]).decode()
    messages = []
    for item in getattr(turn, "input", None) or ():
        try:
            data = item_to_json(item)
        except TypeError:
            continue
        message = _message(data)
        if message is not None:
            messages.append(message)
    out["gen_ai.input.messages"] = dumps(messages).decode()
    tools = getattr(turn, "tools", None)
    if tools:
        out["gen_ai.tool.definitions"] = dumps(list(tools)).decode()
    return out


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, Sequence) else ():
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if isinstance(part.get("text"), str):
            parts.append({"type": "text", "content": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            url = part["image_url"]
            # Inline images are data, not a location: record the modality only.
            parts.append({"type": "uri", "modality": "image", "uri": url}
                         if not url.startswith("data:") else {"type": "blob", "modality": "image"})
        elif isinstance(kind, str):
            parts.append({"type": kind})
    return parts


def _message(data: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = data.get("type", "message" if "role" in data else None)
    if kind == "message":
        return {"role": str(data.get("role", "user")), "parts": _parts(data.get("content"))}
    if kind in ("function_call", "custom_tool_call", "local_shell_call"):
        return {"role": "assistant", "parts": [_tool_call(data)]}
    if kind in ("function_call_output", "custom_tool_call_output"):
        return {"role": "tool", "parts": [{"type": "tool_call_response",
                                           "id": data.get("call_id"),
                                           "response": data.get("output")}]}
    if kind == "reasoning":
        text = "".join(p.get("text", "") for p in data.get("summary") or ()
                       if isinstance(p, Mapping))
        return {"role": "assistant", "parts": [{"type": "reasoning", "content": text}]}
    return None


def _tool_call(data: Mapping[str, Any]) -> dict[str, Any]:
    from codexapi.plugin_api import loads

    arguments: Any = data.get("arguments", data.get("input"))
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):
            arguments = loads(arguments)
    return {"type": "tool_call", "id": data.get("call_id"), "name": data.get("name"),
            "arguments": arguments}


def _output_messages(result: Any, finish_reason: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for item in getattr(result, "items", None) or ():
        raw = getattr(item, "raw", None)
        if not isinstance(raw, Mapping):
            continue
        message = _message(raw)
        if message is not None:
            parts.extend(message["parts"])
    if not parts and getattr(result, "text", ""):
        parts.append({"type": "text", "content": result.text})
    # The message shape names tool calls in the singular (its finish-reason enum).
    reason = "tool_call" if finish_reason in ("tool_calls", "function_call") else finish_reason
    return [{"role": "assistant", "parts": parts, "finish_reason": reason}]


def installed() -> bool:
    """Whether the OpenTelemetry API can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec("opentelemetry") is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


# The built-in registration: module-level hooks of one default object (global providers).
# Without OpenTelemetry installed the module has no hooks at all; with it installed but no
# tracer provider configured, codexapi_observe_stream declines every turn, so no stream keeps
# anything as it goes for the plugin's sake.
_default = OpenTelemetry()
if installed():
    codexapi_build_body = _default.codexapi_build_body
    codexapi_on_request = _default.codexapi_on_request
    codexapi_on_retry = _default.codexapi_on_retry
    codexapi_observe_stream = _default.codexapi_observe_stream
    codexapi_on_call_start = _default.codexapi_on_call_start
    codexapi_on_call_end = _default.codexapi_on_call_end
