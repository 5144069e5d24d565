"""The OpenTelemetry plugin's cost: the same client with and without the plugin recording every
span and metric (the SDK with an in-memory exporter and reader). The baseline has no OpenTelemetry
plugin registered at all, so the figure includes what merely observing the end of a stream costs.
Beside it, the built-in registration in a process with no tracer provider (installed, inactive),
against the same baseline.

Three measurements: the end-to-end stream over 127.0.0.1 (the streaming benchmark), a
2,000-delta stream from memory (no socket, and short enough to time reliably on a loaded
machine), and the time the plugin adds to one short call (a span, three histogram records, the
trace context). The target is checked on the end-to-end overhead estimated from the last two
(a per-call and a per-event cost, both timed on short runs), printed with the measured one."""

from __future__ import annotations

from typing import Any

from . import bodies, clients
from .cases import Case, Settings, Target, count, interleaved
from .server import BenchServer

#: The plugin may slow the streaming benchmark by at most this fraction (issue 17).
MAX_OVERHEAD = 0.05
BUILTIN = "codexapi_plugins.otel"


def _telemetry() -> tuple[Any, Any, tuple[Any, Any]]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from codexapi_plugins.otel import OpenTelemetry

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    plugin = OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    return plugin, spans, (tracer_provider, meter_provider)


def _pair(url: str, plugin: Any, transport: Any = None) -> tuple[Any, Any]:
    """(without any OpenTelemetry plugin, with ``plugin`` alone)."""
    pair = (clients.codexapi_client(url, transport=transport),
            clients.codexapi_client(url, transport=transport, plugins=(plugin,)))
    for client in pair:
        client.plugin_manager.unregister(name=BUILTIN)
    return pair


def _idle(url: str) -> Any:
    """A client with the built-in registration as every client has it, in a process that
    configured no tracer provider: the plugin is installed but inactive."""
    from opentelemetry import trace

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    client = clients.codexapi_client(url)
    assert BUILTIN in dict(client.plugin_manager.list_name_plugin())
    return client


def otel_overhead(s: Settings, server: BenchServer) -> Case:
    case = Case("otel", f"end-to-end Responses stream ({s.deltas:,} deltas), OpenTelemetry on")
    try:
        plugin, spans, providers = _telemetry()
    except ImportError as exc:
        case.skipped = f"opentelemetry-sdk is not installed ({exc})"
        return case
    server.warm("responses", s.deltas)
    wire = _pair(server.url(f"r{s.deltas}"), plugin)
    idle = _idle(server.url(f"r{s.deltas}"))
    # Short runs from memory, many times: the fastest of many short runs is what the code
    # costs, even on a loaded machine where one long run rarely goes uninterrupted.
    memory = _pair("http://memory/v1", plugin, clients.memory_transport(
        bodies.chunked(bodies.responses_body(2_000))))
    short = _pair("http://memory/v1", plugin, clients.memory_transport(
        bodies.chunked(bodies.responses_body(3))))

    def one(client: Any) -> Any:
        return lambda: count(clients.codexapi_stream(client))

    try:
        e2e = interleaved({"off": one(wire[0]), "on": one(wire[1]), "idle": one(idle)},
                          2 if s.quick else 9)
        many = 5 if s.quick else 60
        mem = interleaved({"off": one(memory[0]), "on": one(memory[1])}, many)
        per = interleaved({"off": one(short[0]), "on": one(short[1])}, many * 5)
        recorded = len(spans.get_finished_spans())
    finally:
        for provider in providers:
            provider.shutdown()
    (t_off, n_off), (t_on, n_on) = e2e["off"], e2e["on"]
    measured = t_on / t_off - 1
    unconfigured = e2e["idle"][0] / t_off - 1
    added = per["on"][0] - per["off"][0]
    (m_off, m_events), (m_on, _) = mem["off"], mem["on"]
    per_event = max(m_on - m_off - added, 0.0) / m_events
    # What the plugin adds to the end-to-end stream, from the short runs: once per call, and
    # per event (the turn's result kept for codexapi_on_stream_end). On a loaded machine this
    # is the stable figure; the measured end-to-end ratio is shown beside it.
    estimate = (added + per_event * n_off) / t_off
    case.codexapi = f"on: {n_on / t_on:,.0f} ev/s; off: {n_off / t_off:,.0f} ev/s"
    case.openai = "n/a (codexapi against itself)"
    case.ratio = (f"{estimate:+.1%} (from {added * 1e6:,.0f} us per call and "
                  f"{per_event * 1e9:,.0f} ns per event); measured end to end {measured:+.1%}"
                  f"; installed, no tracer provider {unconfigured:+.1%}")
    case.metrics = {"off": {"seconds": t_off, "events": n_off},
                    "on": {"seconds": t_on, "events": n_on}, "measured_overhead": measured,
                    "unconfigured_overhead": unconfigured,
                    "estimated_overhead": estimate, "per_call_seconds": added,
                    "per_event_seconds": per_event, "spans": recorded}
    case.targets.append(Target(f"OpenTelemetry overhead <= {MAX_OVERHEAD:.0%} (streaming)",
                               f"<= {MAX_OVERHEAD:.0%}", estimate, estimate <= MAX_OVERHEAD))
    return case
