"""Issue 25 part 1: each way a secret reached a log or a file, reproduced against a server on
127.0.0.1 that echoes the key back (tests/support/echo_server.py), with a key of 42 characters.
Every text a person or a file could get is searched for the key in each spelling the server
used (raw, JSON-escaped, ``\\u``-escaped, percent-encoded) and for a 2/3 prefix of it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import codexapi
from codexapi import Client, Provider, ResponsesRequest, RetryPolicy
from codexapi.redact import REDACTED
from codexapi.testing import use_cassette
from codexapi_plugins.otel import OpenTelemetry
from tests.support.echo_server import EchoServer, spellings
from tests.support.errors import error_texts

KEY = "sk-proj-Zq9xWv7Ub3Ts1Rp5On2Ml8Kj4Ih6Gf0EdC"
assert len(KEY) == 42
REQ = ResponsesRequest(model="m", input="Hello")


def leaks(text: str, key: str = KEY) -> list[str]:
    """The spellings of ``key`` (or its first two thirds) found in ``text``."""
    found = [s for s in spellings(key) if s in text]
    if key[:len(key) * 2 // 3] in text:
        found.append(key[:len(key) * 2 // 3])
    return found


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(f"{r.getMessage()} {r.exc_text or ''}"
                                   for r in caplog.records)


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING
            and "again" in r.getMessage()]


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        server.secret = KEY
        yield server


def provider(echo: EchoServer, mode: str, **kw: Any) -> Provider:
    kw.setdefault("retry", RetryPolicy(max_attempts=2, base_delay=0.0))
    kw.setdefault("stream_max_retries", 1)
    return Provider(name="echo", base_url=echo.base_url(mode), stream_idle_timeout=5.0,
                    read_timeout=5.0, connect_timeout=5.0, **kw)


def client(prov: Provider, auth: Any = None, **kw: Any) -> Client:
    return Client(prov, auth=auth if auth is not None else codexapi.BearerAuth(KEY),
                  load_entrypoints=False, sleep=lambda _: None, **kw)


def test_retry_log_of_a_retryable_response_failed_does_not_quote_the_key(
        echo: EchoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client(provider(echo, "failed")) as c, pytest.raises(codexapi.StreamError) as info:
        c.stream(REQ).collect()
    retries = retry_lines(caplog)
    assert retries, "the turn was sent again, and said so"
    assert REDACTED in retries[0].getMessage()
    assert leaks(logged(caplog)) == []
    assert leaks(error_texts(info.value)) == []


def test_retry_log_of_a_chat_error_chunk_does_not_quote_the_key(
        echo: EchoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client(provider(echo, "chat", wire="chat")) as c, \
            pytest.raises(codexapi.StreamError) as info:
        c.stream(REQ).collect()
    assert retry_lines(caplog)
    assert leaks(logged(caplog)) == []
    assert leaks(error_texts(info.value)) == []
    # The error object's code was a JSON object: kept as given (scrubbed), not a crash.
    assert info.value.server_error is not None
    assert info.value.server_error["code"] == {"nested": REDACTED}


def test_request_id_echoing_the_key_stays_out_of_the_logging_plugins_info_line(
        echo: EchoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="codexapi")
    with client(provider(echo, "ok")) as c:
        assert c.stream(REQ).collect().text == "fine"
    info = [r.getMessage() for r in caplog.records if r.getMessage().startswith("<-")]
    assert len(info) == 1 and f"request_id={REDACTED}" in info[0]
    assert leaks(logged(caplog)) == []


def test_undecodable_event_preview_is_scrubbed_before_it_is_cut(echo: EchoServer) -> None:
    with client(provider(echo, "undecodable")) as c, \
            pytest.raises(codexapi.UndecodableEvent) as info:
        c.stream(REQ).collect()
    shown = error_texts(info.value)
    assert '"delta":"xxxx' in shown and REDACTED in shown  # a preview, with the key taken out
    assert leaks(shown) == []
    assert KEY[:12] not in shown


def test_a_custom_auth_header_is_redacted_at_debug(
        echo: EchoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    prov = provider(echo, "ok", headers={"X-Auth-Key": KEY, "X-Custom-Auth": KEY + "2"})
    with client(prov, auth=codexapi.BearerAuth("sk-other-credential-0123")) as c:
        assert c.stream(REQ).collect().text == "fine"
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("->")]
    assert sent and f"'X-Auth-Key': '{REDACTED}'" in sent[0]
    assert f"'X-Custom-Auth': '{REDACTED}'" in sent[0]
    assert leaks(logged(caplog)) == [] and leaks(logged(caplog), KEY + "2") == []


def test_a_refused_websocket_upgrade_echoing_the_key(
        echo: EchoServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client(provider(echo, "ws", wire="responses_websocket")) as c, \
            pytest.raises(codexapi.ApiError) as info:
        c.stream(REQ).collect()  # the 401 status line reads "Unauthorized <key>"
    assert info.value.status == 401
    assert leaks(logged(caplog)) == [] and leaks(error_texts(info.value)) == []


def test_websockets_own_debug_lines_hide_credentials(caplog: pytest.LogCaptureFixture) -> None:
    # The websockets library logs each handshake header at DEBUG ("> Authorization: Bearer
    # ..."): redacted by the header's name, whether or not a client of ours sent it.
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    caplog.set_level(logging.DEBUG, logger="websockets")
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1:9/v1/responses"))
    upgrade = protocol.connect()
    upgrade.headers["Authorization"] = "Bearer sk-websockets-debug-0123456789abcd"
    upgrade.headers["X-Auth-Key"] = "sk-websockets-debug-other-0123456789"
    protocol.send_request(upgrade)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("websockets")]
    assert f"> Authorization: {REDACTED}" in lines and f"> X-Auth-Key: {REDACTED}" in lines
    assert "sk-websockets" not in logged(caplog)


def test_errors_cause_chains_and_error_headers_hide_the_echoed_key(echo: EchoServer) -> None:
    for mode in ("error401", "error500"):
        with client(provider(echo, mode)) as c, pytest.raises(codexapi.ApiError) as info:
            c.stream(REQ)
        err = info.value
        assert leaks(error_texts(err)) == [] and leaks(repr(err.headers)) == []
        assert err.headers["x-request-id"] == REDACTED and err.request_id == REDACTED
        assert err.server_error is not None and err.server_error["param"] == REDACTED


def test_spans_hide_the_key(echo: EchoServer) -> None:
    exporter = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(exporter))
    plugin = OpenTelemetry(tracer_provider=tracer)
    try:
        for mode in ("failed", "error500", "ok"):
            with client(provider(echo, mode), plugins=[plugin]) as c, \
                    contextlib.suppress(codexapi.CodexApiError):
                c.stream(REQ).collect()
        spans = exporter.get_finished_spans()
        assert len(spans) == 3
        shown = "\n".join(span.to_json() for span in spans)
        assert "exception" in shown and "gen_ai.response.id" in shown
        assert leaks(shown) == []
    finally:
        tracer.shutdown()


# --- cassettes ---------------------------------------------------------------------------------


def cassette_texts(path: Path) -> str:
    """The file as written, and every string it holds once YAML has decoded its escapes."""
    text = path.read_text(encoding="utf-8")
    return text + "\n" + repr(yaml.safe_load(text))


def record(path: Path, prov: Provider, auth: Any = None) -> None:
    with use_cassette(path, record_mode="all"), client(prov, auth=auth) as c, \
            contextlib.suppress(codexapi.CodexApiError):
        c.stream(REQ).collect()


def test_cassette_of_custom_auth_headers(echo: EchoServer, tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    prov = provider(echo, "error401", retry=RetryPolicy(max_attempts=1),
                    headers={"X-Auth-Key": KEY, "X-Custom-Auth": KEY})
    record(path, prov, auth=codexapi.BearerAuth("sk-unrelated-token-000"))
    text = cassette_texts(path)
    assert "X-Auth-Key" in text and "X-Custom-Auth" in text
    assert leaks(text) == []


class BodyKeyAuth:
    """Puts the key in the JSON body only (as some gateways want it)."""

    def auth_flow(self, request: Any) -> Any:
        import json

        import attrs

        body = json.loads(request.body)
        body["proof"] = KEY
        yield attrs.evolve(request, body=json.dumps(body).encode())


def test_cassette_of_a_key_sent_only_in_the_json_body(echo: EchoServer, tmp_path: Path) -> None:
    # By the auth: a value the auth produced.
    path = tmp_path / "body-auth.yaml"
    record(path, provider(echo, "error401", retry=RetryPolicy(max_attempts=1)),
           auth=BodyKeyAuth())
    assert '"proof"' in path.read_text() and leaks(cassette_texts(path)) == []
    # By any HTTP client: a body field named like a secret.
    path = tmp_path / "body-field.yaml"
    with use_cassette(path, record_mode="all"):
        pool = urllib3.PoolManager()
        answer = pool.request("POST", echo.base_url("error401") + "/responses",
                              body=b'{"api_key": "' + KEY.encode() + b'", "input": "x"}',
                              headers={"Content-Type": "application/json"})
        assert answer.status == 401
    assert "api_key" in path.read_text() and leaks(cassette_texts(path)) == []


def test_cassette_of_a_key_echoed_in_a_response_header_and_escaped_in_a_body(
        echo: EchoServer, tmp_path: Path) -> None:
    path = tmp_path / "echo.yaml"
    record(path, provider(echo, "error401", retry=RetryPolicy(max_attempts=1)))
    text = cassette_texts(path)
    assert "x-echo" in text and "Incorrect API key provided" in text
    assert leaks(text) == []


def test_cassette_of_a_query_string_key_echoed_in_the_body(echo: EchoServer,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "query.yaml"
    prov = provider(echo, "error401", retry=RetryPolicy(max_attempts=1),
                    query_params={"key": KEY})
    record(path, prov, auth=codexapi.BearerAuth("sk-unrelated-token-000"))
    text = cassette_texts(path)
    assert "key=" in text and leaks(text) == []


# --- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["X-Auth-Key", "x-custom-auth", "X-AUTH", "Proxy-Authorization",
                                  "X-Session-Token", "X-Vault-Secret", "X-DB-Password",
                                  "Cookie", "X-Api-Key", "Idempotency-Key"])
def test_secret_names(name: str) -> None:
    from codexapi.redact import is_secret_header, is_secret_query

    assert is_secret_header(name) and is_secret_query(name)


def test_provider_secret_headers_extend_the_rule(echo: EchoServer,
                                                 caplog: pytest.LogCaptureFixture,
                                                 tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = "tenant-7f3a9c2e1b-private"
    prov = provider(echo, "ok", headers={"X-Tenant": tenant}, secret_headers={"x-tenant"})
    assert tenant not in repr(prov) and "secret_headers=['x-tenant']" in repr(prov)
    echo.secret = tenant
    try:
        path = tmp_path / "tenant.yaml"
        with use_cassette(path, record_mode="all", scrub_headers=["X-Tenant"]), \
                client(prov) as c:
            assert c.stream(REQ).collect().text == "fine"
        assert leaks(logged(caplog), tenant) == []
        assert leaks(cassette_texts(path), tenant) == []
    finally:
        echo.secret = KEY


def test_provider_secret_headers_must_be_names() -> None:
    with pytest.raises(codexapi.ConfigError, match="secret_headers"):
        Provider(secret_headers="X-Tenant")  # type: ignore[arg-type]
    with pytest.raises(codexapi.ConfigError, match="not a header name"):
        Provider(secret_headers=["X-Tenant", ""])


def test_a_closed_clients_secrets_are_forgotten(echo: EchoServer) -> None:
    from codexapi.redact import known

    token = "sk-short-lived-credential-42"
    with client(provider(echo, "ok"), auth=codexapi.BearerAuth(token)) as c:
        c.stream(REQ).collect()
        assert token in known()
    assert token not in known()
