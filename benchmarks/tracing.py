"""The OpenTelemetry plugin's cost: the end-to-end stream with the plugin recording every span
and metric (the SDK, in-memory exporter and reader) against the same client without it."""

from __future__ import annotations

from typing import Any

from . import clients
from .cases import Case, Settings, Target, count, interleaved
from .server import BenchServer

#: The plugin may slow the streaming benchmark by at most this fraction (issue 17).
MAX_OVERHEAD = 0.05


def _telemetry() -> tuple[Any, Any, Any]:
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
    return OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider), \
        spans, (tracer_provider, meter_provider)


def otel_overhead(s: Settings, server: BenchServer) -> Case:
    case = Case("otel", f"end-to-end Responses stream ({s.deltas:,} deltas), OpenTelemetry on")
    try:
        plugin, spans, providers = _telemetry()
    except ImportError as exc:
        case.skipped = f"opentelemetry-sdk is not installed ({exc})"
        return case
    server.warm("responses", s.deltas)
    url = server.url(f"r{s.deltas}")
    short = server.url("r10")
    plain = clients.codexapi_client(url)
    traced = clients.codexapi_client(url, plugins=(plugin,))
    plain_short = clients.codexapi_client(short)
    traced_short = clients.codexapi_client(short, plugins=(plugin,))
    calls = 10 if s.quick else 200

    def many(client: Any) -> int:
        for _ in range(calls):
            count(clients.codexapi_stream(client))
        return calls

    try:
        times = interleaved({"off": lambda: count(clients.codexapi_stream(plain)),
                             "on": lambda: count(clients.codexapi_stream(traced))},
                            2 if s.quick else 9)
        per_call = interleaved({"off": lambda: many(plain_short),
                                "on": lambda: many(traced_short)}, 2 if s.quick else 5)
        recorded = len(spans.get_finished_spans())
    finally:
        for provider in providers:
            provider.shutdown()
    (t_off, n_off), (t_on, n_on) = times["off"], times["on"]
    overhead = t_on / t_off - 1
    added = (per_call["on"][0] - per_call["off"][0]) / calls
    case.codexapi = f"on: {n_on / t_on:,.0f} ev/s; off: {n_off / t_off:,.0f} ev/s"
    case.openai = "n/a (codexapi against itself)"
    case.ratio = f"{overhead:+.1%} time with OpenTelemetry; {added * 1e6:+,.0f} us per call"
    case.metrics = {"off": {"seconds": t_off, "events": n_off},
                    "on": {"seconds": t_on, "events": n_on}, "overhead": overhead,
                    "per_call_seconds": added, "spans": recorded}
    case.targets.append(Target(f"OpenTelemetry overhead <= {MAX_OVERHEAD:.0%} (streaming)",
                               f"<= {MAX_OVERHEAD:.0%}", overhead, overhead <= MAX_OVERHEAD))
    return case
