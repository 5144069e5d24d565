"""The OpenTelemetry plugin's cost: the same client with and without the plugin recording every
span and metric (the SDK with an in-memory exporter and reader). The baseline has no OpenTelemetry
plugin registered at all, so the figure includes what merely observing the end of a stream costs.
Beside it, the built-in registration in a process with no tracer provider (installed, inactive),
against the same baseline.

Three measurements, each a median of turn-by-turn ratios against the baseline (see
``cases.paired``): the end-to-end stream over 127.0.0.1 (the streaming benchmark), on which the
target is checked; and, without a socket, a 2,000-delta stream from memory and the time the
plugin adds to one short call (a span, up to four histogram records, the trace context)."""

from __future__ import annotations

from typing import Any

from . import bodies, clients
from .cases import Case, Settings, Target, count, paired
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
    # Short runs from memory, many times, each against the baseline in the same turn: a short
    # run is rarely interrupted, and the turn-by-turn ratio cancels what drifts over a run.
    memory = _pair("http://memory/v1", plugin, clients.memory_transport(
        bodies.chunked(bodies.responses_body(2_000))))
    short = _pair("http://memory/v1", plugin, clients.memory_transport(
        bodies.chunked(bodies.responses_body(3))))

    def one(client: Any) -> Any:
        return lambda: count(clients.codexapi_stream(client))

    try:
        e2e_turns = range(2 if s.quick else 40)
        e2e = paired({"off": one(wire[0]), "on": one(wire[1]), "idle": one(idle)},
                     len(e2e_turns))
        many = 5 if s.quick else 60
        mem = paired({"off": one(memory[0]), "on": one(memory[1])}, many)
        per = paired({"off": one(short[0]), "on": one(short[1])}, many * 5)
        recorded = len(spans.get_finished_spans())
    finally:
        for provider in providers:
            provider.shutdown()
    (_, t_off, n_off), (on_ratio, t_on, n_on) = e2e["off"], e2e["on"]
    measured = on_ratio - 1
    unconfigured = e2e["idle"][0] - 1
    # Beside it, without a socket: what one short call adds (a span, up to four histogram
    # records, the trace context, in a loop that keeps them in the CPU's caches) and what the
    # plugin adds to a 2,000-delta stream read from memory (where they run after the
    # decoding has pushed them out of the caches, so it is more than the short call's).
    added = (per["on"][0] - 1) * per["off"][1]
    memory_overhead = mem["on"][0] - 1
    case.codexapi = f"on: {n_on / t_on:,.0f} ev/s; off: {n_off / t_off:,.0f} ev/s"
    case.openai = "n/a (codexapi against itself)"
    case.ratio = (f"{measured:+.1%} (median of {len(e2e_turns)} turn-about runs); installed, no "
                  f"tracer provider {unconfigured:+.1%}; from memory: 2,000 deltas "
                  f"{memory_overhead:+.1%}, a 3-delta call +{added * 1e6:,.0f} us")
    case.metrics = {"off": {"seconds": t_off, "events": n_off},
                    "on": {"seconds": t_on, "events": n_on}, "measured_overhead": measured,
                    "unconfigured_overhead": unconfigured,
                    "memory_overhead": memory_overhead, "per_call_seconds": added,
                    "spans": recorded}
    case.targets.append(Target(f"OpenTelemetry overhead <= {MAX_OVERHEAD:.0%} (streaming)",
                               f"<= {MAX_OVERHEAD:.0%}", measured, measured <= MAX_OVERHEAD))
    return case
