"""Hostile servers and bad local input: only typed errors, never a retried local mistake,
never a quoted secret, never a silently dropped event.

Each case reproduces a failure found by attacking the client with hostile servers on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import struct
import time
from typing import Any

import pytest
from conftest import REQ, make_client
from support.hostile import RawRequest, RawServer, head

from codexapi import (
    ApiError,
    AuthError,
    BearerAuth,
    Client,
    CodexApiError,
    Completed,
    ConfigError,
    Item,
    NoAuth,
    OutputItemDone,
    Provider,
    RateLimitError,
    RetryPolicy,
    StreamError,
    TransportError,
    UndecodableEvent,
    WireApi,
)
from codexapi.server import EmbeddedServer
from codexapi_plugins import retry
from codexapi_plugins.wire_responses import parse_retry_after
from tests.support.errors import exception_chain as chain

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-SECRET-4f9a8b7c6d5e"


def assert_no_secret(exc: BaseException, secret: str = KEY) -> None:
    """Not in any message, repr, argument or attribute of the error or its chain."""
    for e in chain(exc):
        shown = [str(e), repr(e), repr(e.args), repr(getattr(e, "__dict__", {}))]
        for text in shown:
            assert secret not in text, (type(e).__name__, text)


def assert_logs_clean(caplog: pytest.LogCaptureFixture, secret: str = KEY) -> None:
    for record in caplog.records:
        assert secret not in record.getMessage(), record.getMessage()
        assert secret not in repr(record.args)


def sse(*objs: Any) -> bytes:
    return b"".join(b"data: " + (o if isinstance(o, bytes) else json.dumps(o).encode())
                    + b"\n\n" for o in objs)


def stream_handler(body: bytes, status: str = "200 OK", **headers: str):  # type: ignore[no-untyped-def]
    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head(status, Content_Type="text/event-stream",
                          Content_Length=str(len(body)), **headers) + body)
    return handle


def client_for(base_url: str, auth: Any = None, attempts: int = 1, **kw: Any) -> Client:
    """A client for a hostile server: no credentials unless given, retries without waiting."""
    kw.setdefault("stream_idle_timeout", None)
    return make_client(base_url, auth=auth or NoAuth(), retry=attempts, sleep=lambda s: None,
                       **kw)


COMPLETED = {"type": "response.completed", "response": {"id": "r1"}}


def delta(text: str) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "delta": text}


# --- local input: ConfigError before anything is sent, never retried ------------------------

@pytest.mark.parametrize("call", [
    {"conversation_id": "conv\r\nX-Injected: 1"},
    {"session_id": "séance"},
    {"headers": {"Bad:Name": "x"}},
    {"headers": {"X-Ok": "line\nbreak"}},
])
def test_local_input_errors_are_config_errors_sent_never(call: dict[str, Any]) -> None:
    with RawServer(stream_handler(sse(COMPLETED))) as srv:
        slept: list[float] = []
        provider = Provider(base_url=srv.base_url, retry=RetryPolicy(max_attempts=5))
        with Client(provider, auth=NoAuth(), load_entrypoints=False,
                    sleep=slept.append) as client, pytest.raises(ConfigError) as info:
            client.stream(REQ, **call)
    assert srv.requests == [] and slept == []
    assert "header" in str(info.value)


def test_a_non_ascii_key_is_refused_without_quoting_it(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        BearerAuth(KEY + "€")
    assert_no_secret(info.value)

    class Pasted:  # an Auth that hands out the bad header itself
        def headers(self) -> dict[str, str]:
            return {"Authorization": f"Bearer {KEY}€"}

        def refresh(self) -> bool:
            return False

    with RawServer(stream_handler(sse(COMPLETED))) as srv:
        with client_for(srv.base_url, Pasted(), attempts=4) as client, \
                pytest.raises(CodexApiError) as err:
            client.stream(REQ)
        assert srv.requests == []
    assert not isinstance(err.value, TransportError) and not err.value.retryable
    assert_no_secret(err.value)
    assert_logs_clean(caplog)


@pytest.mark.parametrize("where", ["headers", "provider"])
def test_a_newline_in_a_secret_header_is_not_quoted(where: str) -> None:
    bad = {"api-key": KEY + "\n"}
    with pytest.raises(ConfigError) as info:
        if where == "provider":
            Provider(headers=bad)
        else:
            client_for("http://127.0.0.1:9/v1").stream(REQ, headers=bad)
    assert_no_secret(info.value)


def test_the_transport_itself_never_quotes_what_http_client_refuses() -> None:
    from codexapi.http.transport import HttpRequest
    from codexapi.http.urllib3_transport import Urllib3Transport

    transport = Urllib3Transport()
    request = HttpRequest("POST", "http://127.0.0.1:9/v1", {"Authorization": f"Bearer {KEY}€"})
    with pytest.raises(ConfigError) as info:
        transport.send(request)
    assert_no_secret(info.value)


# --- secrets the server echoes -----------------------------------------------------------------

def escaped(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in text)


def test_echoes_in_error_bodies_and_headers_are_scrubbed(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    caplog.set_level(logging.DEBUG)
    body = ('{"error": {"message": "Incorrect API key provided: ' + escaped(KEY)
            + '", "code": "invalid_api_key"}}').encode()

    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head("401 Unauthorized", Content_Type="application/json",
                          WWW_Authenticate=f'Bearer realm="x", error="{KEY}"',
                          Content_Length=str(len(body))) + body)

    with (RawServer(handle) as srv, client_for(srv.base_url, BearerAuth(KEY)) as client,
          pytest.raises(ApiError) as info):
        client.stream(REQ)
    assert info.value.status == 401 and "Incorrect API key" in info.value.message
    assert "<redacted>" in info.value.message and "<redacted>" in info.value.headers[
        "www-authenticate"]
    assert_no_secret(info.value)

    def redirect(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head("302 Found", Location=f"https://evil.example/?leak={KEY}",
                          Content_Length="0"))

    with (RawServer(redirect) as srv, client_for(srv.base_url, BearerAuth(KEY)) as client,
          pytest.raises(ApiError) as info):
        client.stream(REQ)
    assert_no_secret(info.value)
    assert_logs_clean(caplog)


@pytest.mark.parametrize(("wire", "body"), [
    (WireApi.RESPONSES, sse({"type": "response.failed", "response": {"error": {
        "code": "server_error", "message": f"bad key {KEY}"}}})),
    (WireApi.CHAT, sse({"error": {"message": f"upstream rejected {KEY}"}})),
    (WireApi.RESPONSES, sse(b'{"type":"response.output_text.delta","delta":"' + KEY.encode()
                            + b'\x00"}')),
    (WireApi.RESPONSES, sse(b"not json " + KEY.encode())),
])
def test_echoes_inside_a_stream_are_scrubbed(wire: WireApi, body: bytes,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with (RawServer(stream_handler(body)) as srv,
          client_for(srv.base_url, BearerAuth(KEY), wire=wire) as client,
          pytest.raises(CodexApiError) as info):
        client.stream(REQ).collect()
    assert isinstance(info.value, StreamError)
    assert_no_secret(info.value)
    assert_logs_clean(caplog)


@pytest.mark.parametrize("endpoint", ["compact", "models"])
def test_non_json_200_previews_are_scrubbed(endpoint: str) -> None:
    body = f"<html>welcome back {KEY}</html>".encode()

    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head(Content_Type="text/html", Content_Length=str(len(body))) + body)

    with (RawServer(handle) as srv, client_for(srv.base_url, BearerAuth(KEY)) as client,
          pytest.raises(StreamError) as info):
        client.compact(REQ) if endpoint == "compact" else client.list_models("1.0")
    assert "welcome back" in str(info.value)
    assert_no_secret(info.value)


def test_a_status_line_echoing_the_key_is_scrubbed_from_error_and_retry_log(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(f"HTTP/1.1 2OO {KEY}\r\n\r\n".encode())

    with (RawServer(handle) as srv, client_for(srv.base_url, BearerAuth(KEY), attempts=2) as c,
          pytest.raises(TransportError) as info):
        c.stream(REQ)
    assert len(srv.requests) == 2  # a garbage status line is retried, as documented
    assert_no_secret(info.value)
    assert_logs_clean(caplog)
    assert any("retrying" in r.getMessage() for r in caplog.records)


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


#: Heads that did not arrive whole, each after the request body was sent whole.
BROKEN_HEADS = {
    "partial head, then a reset": lambda conn: (
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty"), _reset(conn)),
    "garbage status line": lambda conn: conn.sendall(b"HTTP/1.1 2OO nonsense\r\n\r\n"),
    "header line over 64 KiB": lambda conn: conn.sendall(
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"),
    "read timeout": lambda conn: time.sleep(0.5),
}


@pytest.mark.parametrize("endpoint", ["stream", "compact"])
@pytest.mark.parametrize("case", BROKEN_HEADS)
def test_a_post_whose_head_did_not_arrive_whole_is_retried_as_documented(
        case: str, endpoint: str) -> None:
    # The README's rule: retried under RetryPolicy whether or not the body had been sent (as
    # openai-python does), so a POST may reach the server more than once.
    def handle(conn: socket.socket, request: RawRequest) -> None:
        assert request.body  # the whole POST body arrived before the head went wrong
        BROKEN_HEADS[case](conn)

    with RawServer(handle) as srv, \
            client_for(srv.base_url, attempts=4, read_timeout=0.2) as client, \
            pytest.raises(TransportError) as info:
        client.stream(REQ) if endpoint == "stream" else client.compact(REQ)
    assert len(srv.requests) == 4 and info.value.attempts == 4, case
    assert all(r.method == "POST" for r in srv.requests)


def test_urllib3_debug_log_shows_no_query_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with RawServer(stream_handler(sse(delta("a"), COMPLETED))) as srv, \
            client_for(srv.base_url, query_params={"api-key": KEY}) as client:
        assert client.stream(REQ).collect().text == "a"
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert_logs_clean(caplog)


# --- Retry-After and other odd answers -----------------------------------------------------------

@pytest.mark.parametrize("value", ["-5", "0", "soon", "9" * 400, "1e999", "nan"])
def test_bad_retry_after_falls_back_to_capped_backoff(value: str) -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=10.0)
    err = ApiError(503, "busy", headers={"retry-after": value},
                   retry_after=retry.header_delay({"retry-after": value}))
    assert err.retry_after is None or math.isfinite(err.retry_after)
    delay = retry.retry_delay(policy, 1, err)
    assert delay is not None and 0.45 <= delay <= 0.55  # the backoff, not 0, not forever


def test_an_absurd_try_again_in_is_no_hint() -> None:
    message = "Rate limit reached. Please try again in " + "9" * 400 + "s."
    assert parse_retry_after(message) is None
    assert parse_retry_after("Please try again in " + "9" * 400 + "ms.") is None
    err = RateLimitError(message, retry_after=float("inf"))
    assert err.retry_after is None
    policy = RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=5.0)
    delay = retry.retry_delay(policy, 1, ApiError(429, message))
    assert delay is not None and delay <= 0.25


def test_retry_after_minus_five_on_the_wire_waits_the_backoff() -> None:
    calls: list[int] = []

    def handle(conn: socket.socket, request: RawRequest) -> None:
        calls.append(1)
        if len(calls) == 1:
            conn.sendall(head("503 Service Unavailable", Retry_After="-5", Content_Length="0"))
        else:
            body = sse(delta("ok"), COMPLETED)
            conn.sendall(head(Content_Type="text/event-stream",
                              Content_Length=str(len(body))) + body)

    slept: list[float] = []
    with RawServer(handle) as srv:
        provider = Provider(base_url=srv.base_url,
                            retry=RetryPolicy(max_attempts=3, base_delay=0.4, max_delay=30.0))
        with Client(provider, auth=NoAuth(), load_entrypoints=False,
                    sleep=slept.append) as client:
            assert client.stream(REQ).collect().text == "ok"
    assert len(slept) == 1 and 0.35 <= slept[0] <= 0.45


def test_a_304_on_a_stream_says_what_happened() -> None:
    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head("304 Not Modified"))

    with (RawServer(handle) as srv, client_for(srv.base_url) as client,
          pytest.raises(ApiError) as info):
        client.stream(REQ)
    assert info.value.status == 304 and "304 Not Modified" in str(info.value)
    assert "redirected" not in str(info.value) and "conditional GET" in str(info.value)


def test_hash_of_an_event_whose_item_has_a_list_type() -> None:
    event = OutputItemDone(Item({"type": ["message"], "id": {"x": 1}}))
    assert hash(event) == hash(OutputItemDone(Item({"type": ["message"], "id": {"x": 1}})))
    assert len({event, OutputItemDone(Item({"type": "message"}))}) == 2


# --- undecodable events: never silently dropped ---------------------------------------------

BAD_EVENTS = {
    "raw NUL": b'{"type":"response.output_text.delta","delta":"b\x00"}',
    "lone surrogate": b'{"type":"response.output_text.delta","delta":"\\ud800b"}',
}


@pytest.mark.parametrize("bad", list(BAD_EVENTS))
def test_an_undecodable_delta_is_a_typed_error_naming_the_event(bad: str) -> None:
    body = sse(delta("a"), BAD_EVENTS[bad], delta("c"), COMPLETED)
    with (RawServer(stream_handler(body)) as srv, client_for(srv.base_url) as client,
          pytest.raises(UndecodableEvent) as info):
        client.stream(REQ).collect()
    assert info.value.event_type == "response.output_text.delta"
    assert "'response.output_text.delta'" in str(info.value)
    assert "skip_undecodable_events" in str(info.value)


@pytest.mark.parametrize("bad", list(BAD_EVENTS))
def test_lenient_mode_skips_counts_and_warns(bad: str, caplog: pytest.LogCaptureFixture
                                             ) -> None:
    body = sse(delta("a"), BAD_EVENTS[bad], delta("c"), COMPLETED)
    with RawServer(stream_handler(body)) as srv, \
            client_for(srv.base_url, skip_undecodable_events=True) as client:
        result = client.stream(REQ).collect()
    assert result.text == "ac" and result.skipped_events == 1
    assert isinstance(result.events[-1], Completed)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "response.output_text.delta" in warnings[0].getMessage()


def test_a_clean_turn_counts_no_skips(server: EmbeddedServer) -> None:
    provider = Provider(base_url=server.base_url, retry=RetryPolicy.never())
    with Client(provider, load_entrypoints=False) as client:
        assert client.stream(REQ).collect().skipped_events == 0
