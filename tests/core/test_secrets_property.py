"""Issue 25 part 1, as a property: whatever the key (ASCII or not, with JSON- and URL-special
characters) and however it is sent (a bearer token, a secret-named header, a name in
``Provider.secret_headers``, a query parameter, a value only the auth puts in the JSON body),
a server on 127.0.0.1 that echoes it back everywhere it can (status line, headers,
``x-request-id``, error bodies, ``response.failed``, Chat error chunks, undecodable events,
response ids, a refused WebSocket upgrade) never gets it into a log record of any logger at any
level, an exception or its cause chain, a repr, a span or a cassette — in any spelling the
server used, or as a 2/3 prefix."""

from __future__ import annotations

import contextlib
import json
import logging
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import codexapi
from codexapi import Client, Provider, ResponsesRequest, RetryPolicy
from codexapi.http.urllib3_transport import Urllib3Transport
from codexapi.redact import REDACTED
from codexapi.testing import use_cassette
from codexapi_plugins.otel import OpenTelemetry
from tests.support.echo_server import EchoServer, spellings
from tests.support.errors import error_texts as chain

#: Examples per run; each drives seven calls (three of them sent twice) and a cassette.
EXAMPLES = 50

#: Starts every key, so that a 2/3 prefix found anywhere can only be a piece of the key.
MARK = "zQ9"
SPECIAL = "\"\\/%+&=?#<>{}[]'` :;,@!$()*|^~\t"
ASCII = string.ascii_letters + string.digits + "-_." + SPECIAL
KEYS = st.one_of(
    st.text(st.sampled_from(ASCII), min_size=6, max_size=40),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=6, max_size=40),
    st.text(st.sampled_from(ASCII + "é€😀\u2028\x00\n\x7f"), min_size=6, max_size=40),
).map(lambda body: MARK + body).filter(lambda key: REDACTED not in key)

#: How the key travels; the first three need a key a header can carry.
CHANNELS = ("bearer", "secret-named header", "Provider.secret_headers", "query parameter",
            "auth-produced body value")


def header_safe(key: str) -> bool:
    return key.isascii() and key.isprintable() and key == key.strip()


class BodyAuth:
    """An auth that signs with a value in the JSON body only."""

    def __init__(self, key: str) -> None:
        self.key = key

    def auth_flow(self, request: Any) -> Any:
        body = json.loads(request.body)
        body["proof"] = self.key
        yield attrs.evolve(request, body=json.dumps(body).encode())

    def __repr__(self) -> str:
        return "BodyAuth()"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def every_log() -> Iterator[Collect]:
    root = logging.getLogger()
    handler = Collect()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture(scope="module")
def transport() -> Iterator[Urllib3Transport]:
    # One transport for every client: building a TLS context per client costs ~0.1 s.
    shared = Urllib3Transport()
    yield shared
    shared.close()


@pytest.fixture(scope="module")
def spans() -> Iterator[tuple[InMemorySpanExporter, OpenTelemetry]]:
    exporter = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, OpenTelemetry(tracer_provider=tracer)
    tracer.shutdown()


# No shrinking: one example drives a dozen exchanges, and a failure's example (key and channel)
# is readable as found.
@settings(max_examples=EXAMPLES, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(key=KEYS, channel=st.sampled_from(CHANNELS))
def test_no_spelling_of_the_key_leaves_the_process(
        echo: EchoServer, spans: tuple[InMemorySpanExporter, OpenTelemetry],
        transport: Urllib3Transport, key: str, channel: str) -> None:
    if channel in CHANNELS[:3] and not header_safe(key):
        channel = "query parameter"
    exporter, otel = spans
    exporter.clear()
    echo.secret = key
    auth: Any = codexapi.BearerAuth("sk-unrelated-credential-000")
    kw: dict[str, Any] = {}
    if channel == "bearer":
        auth = codexapi.BearerAuth(key)
    elif channel == "secret-named header":
        kw["headers"] = {"X-Auth-Key": key}
    elif channel == "Provider.secret_headers":
        kw["headers"], kw["secret_headers"] = {"X-Tenant": key}, ["X-Tenant"]
    elif channel == "query parameter":
        # Provider.query_params are percent-encoded into the URL: the key is given as it is,
        # and a key with URL syntax in it still reaches the server whole.
        kw["query_params"] = {"api_key": key}
    else:
        auth = BodyAuth(key)
    shown: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, every_log() as logs:
        path = Path(tmp) / "echo.yaml"
        with use_cassette(path, record_mode="all"):
            for mode, wire in (("error401", "responses"), ("error500", "responses"),
                               ("failed", "responses"), ("undecodable", "responses"),
                               ("chat", "chat"), ("ok", "responses"),
                               ("ws", "responses_websocket")):
                provider = Provider(
                    name="echo", base_url=echo.base_url(mode), wire=wire,
                    retry=RetryPolicy(max_attempts=2, base_delay=0.0), stream_max_retries=1,
                    stream_idle_timeout=5.0, read_timeout=5.0, connect_timeout=5.0, **kw)
                with Client(provider, auth=auth, plugins=[otel], load_entrypoints=False,
                            transport=transport, sleep=lambda _: None) as client:
                    shown += [repr(client), repr(provider), str(provider), repr(auth)]
                    try:
                        result = client.stream(ResponsesRequest(model="m", input="Hi"))
                        assert result.collect().text == "fine", mode
                    except codexapi.CodexApiError as exc:
                        assert mode != "ok", chain(exc)
                        shown.append(chain(exc))
        recorded = path.read_text(encoding="utf-8")
        shown += [recorded, *strings(yaml.safe_load(recorded))]
    shown += logs.lines
    shown += [span.to_json() for span in exporter.get_finished_spans()]
    assert len(exporter.get_finished_spans()) == 7
    assert any("again" in line for line in logs.lines)  # the retry lines were written
    text = "\n".join(shown)
    found = [s for s in spellings(key) if s in text]
    prefix = key[:len(key) * 2 // 3]
    where = [line for line in shown if any(s in line for s in found) or prefix in line]
    assert not found and prefix not in text, (channel, found, where[:3])
