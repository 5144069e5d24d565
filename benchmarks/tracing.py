"""The OpenTelemetry plugin's cost: the same client with and without the plugin recording every
span and metric (the SDK with an in-memory exporter and reader). The baseline has no OpenTelemetry
plugin registered at all, so the figure includes what merely observing the end of a stream costs.

Three numbers: the end-to-end stream over 127.0.0.1 (the streaming benchmark; the target is on
it), the same bytes decoded from memory (no socket, so far less scheduler noise), and the time
the plugin adds to one short call (a span, three histogram records, the trace context)."""

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


def otel_overhead(s: Settings, server: BenchServer) -> Case:
    case = Case("otel", f"end-to-end Responses stream ({s.deltas:,} deltas), OpenTelemetry on")
    try:
        plugin, spans, providers = _telemetry()
    except ImportError as exc:
        case.skipped = f"opentelemetry-sdk is not installed ({exc})"
        return case
    server.warm("responses", s.deltas)
    repeats = 2 if s.quick else 9
    calls = 10 if s.quick else 200
    wire = _pair(server.url(f"r{s.deltas}"), plugin)
    memory = _pair("http://memory/v1", plugin, clients.memory_transport(
        bodies.chunked(bodies.responses_body(s.deltas))))
    short = _pair("http://memory/v1", plugin, clients.memory_transport(
        bodies.chunked(bodies.responses_body(3))))

    def one(client: Any) -> Any:
        return lambda: count(clients.codexapi_stream(client))

    def many(client: Any) -> Any:
        def run() -> int:
            for _ in range(calls):
                count(clients.codexapi_stream(client))
            return calls
        return run

    try:
        e2e = interleaved({"off": one(wire[0]), "on": one(wire[1])}, repeats)
        mem = interleaved({"off": one(memory[0]), "on": one(memory[1])}, repeats)
        per = interleaved({"off": many(short[0]), "on": many(short[1])}, repeats)
        recorded = len(spans.get_finished_spans())
    finally:
        for provider in providers:
            provider.shutdown()
    (t_off, n_off), (t_on, n_on) = e2e["off"], e2e["on"]
    overhead = t_on / t_off - 1
    in_memory = mem["on"][0] / mem["off"][0] - 1
    added = (per["on"][0] - per["off"][0]) / calls
    case.codexapi = f"on: {n_on / t_on:,.0f} ev/s; off: {n_off / t_off:,.0f} ev/s"
    case.openai = "n/a (codexapi against itself)"
    case.ratio = (f"{overhead:+.1%} time end to end; {in_memory:+.1%} decoding from memory; "
                  f"{added * 1e6:+,.0f} us per call")
    case.metrics = {"off": {"seconds": t_off, "events": n_off},
                    "on": {"seconds": t_on, "events": n_on}, "overhead": overhead,
                    "in_memory_overhead": in_memory, "per_call_seconds": added,
                    "spans": recorded}
    case.targets.append(Target(f"OpenTelemetry overhead <= {MAX_OVERHEAD:.0%} (streaming)",
                               f"<= {MAX_OVERHEAD:.0%}", overhead, overhead <= MAX_OVERHEAD))
    return case
