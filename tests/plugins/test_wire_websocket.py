"""Responses over WebSocket (Wire ``"responses_websocket"``): against the embedded server's
WebSocket route, and a test-local ``websockets`` server (tests/ws_server.py) for what the
embedded one does not do (wrapped errors, binary and closing frames, a refused upgrade...)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_client, make_request
from support.proxy_server import ProxyServer
from support.tls_server import ScratchCA, https_server
from support.ws_server import WsServer, text_turn

from codexapi import (
    ApiError,
    ApiRateLimitError,
    BearerAuth,
    Client,
    Created,
    CyberPolicy,
    IdleTimeout,
    ModelsEtag,
    NoAuth,
    OutputTextDelta,
    RateLimits,
    ResponsesRequest,
    ResponseTooLarge,
    RetryPolicy,
    ServerModel,
    ServerReasoningIncluded,
    SessionContext,
    StreamError,
    TransportError,
    UsageLimitReached,
)
from codexapi.server import EmbeddedServer
from codexapi_plugins.wire_websocket import OPENAI_BETA

REQ = make_request(model="gpt-5")
WS = "responses_websocket"


def ws_client(base_url: str, sleeps: list[float] | None = None, **kw: Any) -> Client:
    """A WebSocket-wire client with a test key, connecting directly; ``sleeps`` (when given)
    gets each wait instead of sleeping."""
    kw.setdefault("proxy", "")
    kw.setdefault("stream_idle_timeout", None)
    auth = kw.pop("auth", None) or BearerAuth("sk-ws-test")
    return make_client(base_url, WS, name="ws", auth=auth,
                       sleep=sleeps.append if sleeps is not None else None, **kw)


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    # Its own server per test: the request log is part of what is checked.
    with EmbeddedServer() as srv:
        yield srv


@pytest.fixture
def ws() -> Iterator[WsServer]:
    with WsServer() as server:
        yield server


def upgrades(server: EmbeddedServer) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in h.items()} for m, p, h, _ in server.requests
            if m == "GET" and p == "/responses"]


# --- against the embedded server -------------------------------------------------------------


def test_a_turn_over_the_embedded_servers_websocket(server: EmbeddedServer) -> None:

    session = SessionContext.for_thread("thread-ws", originator="codex_exec",
                                        beta_features="remote_compaction_v2")
    with ws_client(server.base_url) as client:
        events = list(client.stream(REQ, session=session))
        result = client.stream(REQ, session=session).collect()
    text = "".join(e.delta for e in events if isinstance(e, OutputTextDelta))
    assert text == "You said: Hello" and result.text == "You said: Hello"
    assert any(isinstance(e, Created) for e in events)
    # One upgrade, then both turns on it.
    assert [m for m, p, _, _ in server.requests if p == "/responses"] == ["GET", "WS", "WS"]
    head = upgrades(server)[0]
    assert head["upgrade"].lower() == "websocket" and head["openai-beta"] == OPENAI_BETA
    assert head["authorization"] == "Bearer sk-ws-test"
    assert head["session-id"] == head["thread-id"] == "thread-ws"
    assert head["originator"] == "codex_exec"
    assert head["x-codex-beta-features"] == "remote_compaction_v2"
    assert "content-type" not in head and "accept" not in head


def test_a_refused_upgrade_falls_back_to_http_at_once(
        server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from codexapi.server import app

    monkeypatch.setattr(app, "UPGRADES", {})  # the server answers the upgrade with 405
    policy = RetryPolicy(max_attempts=5, base_delay=0.01)
    sleeps: list[float] = []
    with caplog.at_level(logging.WARNING, "codexapi"), \
            ws_client(server.base_url, sleeps, retry=policy) as client:
        first = client.stream(REQ).collect().text
        second = client.stream(REQ).collect().text
    assert first == second == "You said: Hello"
    # (The refused upgrade is not in the server's log of routed requests.)
    assert [m for m, p, _, _ in server.requests if p == "/responses"] == ["POST", "POST"]
    assert sleeps == []  # no retries of the upgrade
    refused = [r for r in caplog.records if "upgrade was refused" in r.getMessage()]
    assert len(refused) == 1 and "405" in refused[0].getMessage()


def test_status_faults_arrive_as_the_same_typed_errors(server: EmbeddedServer) -> None:
    sleeps: list[float] = []
    with ws_client(server.base_url, sleeps, retry=RetryPolicy(max_attempts=3)) as client, \
            pytest.raises(ApiRateLimitError) as info:
        client.stream(REQ, headers={"x-codexapi-fault": "429:0.01"}).collect()
    assert info.value.status == 429 and isinstance(info.value, ApiError)
    assert len(sleeps) == 2  # retried under the policy, as an HTTP 429 would be


def test_wss_with_a_ca_bundle_and_through_a_proxy(tmp_path: Any) -> None:
    ca = ScratchCA(tmp_path)
    with https_server(ca) as server, ProxyServer() as proxy:
        base = server.base_url
        with ws_client(base, ca_bundle=str(ca.ca_path), proxy=proxy.url) as client:
            assert client.stream(REQ).collect().text == "You said: Hello"
        host = base.split("//", 1)[1].split("/", 1)[0]
        assert ("CONNECT", host) in proxy.requests
        with ws_client(base) as client, pytest.raises(TransportError,
                                                     match="CERTIFICATE_VERIFY_FAILED"):
            client.stream(REQ)


# --- against a test-local websockets server ----------------------------------------------------


def test_response_create_frame_carries_the_body_at_top_level(ws: WsServer) -> None:
    request = ResponsesRequest(model="m", input="hi", prompt_cache_key="k",
                               client_metadata={"turn_id": "t"})
    with ws_client(ws.base_url()) as client:
        assert client.stream(request).collect().text == "ok"
    frame = ws.creates[0]
    assert frame["type"] == "response.create" and frame["model"] == "m"
    assert frame["input"][0]["content"][0]["text"] == "hi" and frame["stream"] is True
    assert frame["prompt_cache_key"] == "k" and frame["client_metadata"] == {"turn_id": "t"}


def test_one_connection_per_session_reused_and_closed_with_the_client(ws: WsServer) -> None:
    a, b = SessionContext(session_id="a"), SessionContext(session_id="b")
    client = ws_client(ws.base_url())
    for session in (a, a, b, a):
        assert client.stream(REQ, session=session).collect().text == "ok"
    assert ws.connections == 2 and len(ws.creates) == 4 and ws.closed == 0
    client.close()
    deadline = time.monotonic() + 5
    while ws.closed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ws.closed == 2


def test_an_abandoned_turn_drops_its_connection(ws: WsServer) -> None:
    ws.script = [text_turn("x", deltas=50)]
    with ws_client(ws.base_url()) as client:
        with client.stream(REQ) as events:
            next(iter(events))
        assert client.stream(REQ).collect().text == "ok"  # not the first turn's leftovers
    assert ws.connections == 2


def test_header_events_and_turn_state_from_the_upgrade() -> None:
    headers = {"openai-model": "gpt-5.1-codex", "x-models-etag": "etag-1",
               "x-reasoning-included": "true", "x-codex-turn-state": "ts-1"}
    session = SessionContext(session_id="s")
    with WsServer(handshake_headers=headers) as ws, ws_client(ws.base_url()) as client:
        events = list(client.stream(REQ, session=session))
    assert events[:3] == [ServerModel("gpt-5.1-codex"), ModelsEtag("etag-1"),
                          ServerReasoningIncluded(True)]
    assert isinstance(events[3], Created) and session.turn_state.value == "ts-1"


def test_codex_rate_limits_frames_become_rate_limits_events() -> None:
    limits = {"type": "codex.rate_limits", "plan_type": "plus", "rate_limits": {
        "primary": {"used_percent": 25.0, "window_minutes": 300, "reset_at": 1900000000}}}
    with WsServer([[limits, *text_turn("ok")]]) as ws, ws_client(ws.base_url()) as client:
        result = client.stream(REQ).collect()
    assert result.rate_limits is not None and result.rate_limits.primary.used_percent == 25.0
    assert result.rate_limits.plan_type == "plus"
    assert isinstance(result.events[0], RateLimits)


def wrapped(status: int, error: dict[str, Any], **headers: str) -> dict[str, Any]:
    return {"type": "error", "status_code": status, "error": error, "headers": headers}


def test_wrapped_usage_limit_is_raised_at_once_never_retried() -> None:
    frame = wrapped(429, {"type": "usage_limit_reached", "message": "The usage limit has been "
                          "reached", "plan_type": "pro", "resets_at": 1738888888},
                    **{"x-codex-primary-used-percent": "100.0", "x-request-id": "req-ws"})
    sleeps: list[float] = []
    with WsServer([[frame]] * 5) as ws, \
            ws_client(ws.base_url(), sleeps, retry=RetryPolicy(max_attempts=5)) as client, \
            pytest.raises(UsageLimitReached) as info:
        client.stream(REQ).collect()
    assert len(ws.creates) == 1 and sleeps == []
    assert info.value.plan_type == "pro" and info.value.request_id == "req-ws"
    assert info.value.resets_at is not None and info.value.resets_at.timestamp() == 1738888888


def test_wrapped_error_mid_stream_is_the_same_typed_error() -> None:
    frames = [{"type": "response.created", "response": {"id": "r"}},
              {"type": "response.output_text.delta", "delta": "par"},
              wrapped(400, {"code": "cyber_policy", "message": "flagged"})]
    with WsServer([frames]) as ws, ws_client(ws.base_url()) as client:
        stream = client.stream(REQ)
        seen = []
        with pytest.raises(CyberPolicy) as info:
            for event in stream:
                seen.append(event)
    assert info.value.status == 400 and any(isinstance(e, OutputTextDelta) for e in seen)


def test_terminal_failure_ends_the_turn_while_the_connection_stays_open() -> None:
    failed = {"type": "response.failed", "response": {"error": {"code": "cyber_policy",
                                                                "message": "flagged"}}}
    with WsServer([[failed]]) as ws, \
            ws_client(ws.base_url(), stream_idle_timeout=120.0) as client:
        with pytest.raises(CyberPolicy):
            client.stream(REQ).collect()
        assert client.stream(REQ).collect().text == "ok"  # the connection is still good


@pytest.mark.parametrize(("frames", "match"), [
    ([{"type": "response.created", "response": {"id": "r"}}, b"\x00\x01binary"],
     "binary WebSocket frame"),
    ([{"type": "response.created", "response": {"id": "r"}}],
     "closed before response.completed"),
], ids=["binary", "close-before-completed"])
def test_bad_frames_are_typed_errors(frames: list[Any], match: str) -> None:
    def script(conn: Any, _: dict[str, Any]) -> None:
        import json

        for f in frames:
            conn.send(json.dumps(f) if isinstance(f, dict) else f)
        conn.close(1000)

    with WsServer([script]) as ws, ws_client(ws.base_url()) as client, \
            pytest.raises(StreamError, match=match):
        client.stream(REQ).collect()


def test_a_close_with_an_error_code_and_a_non_json_frame_say_so() -> None:
    def closes(conn: Any, _: dict[str, Any]) -> None:
        conn.close(1011, "internal error")

    def garbles(conn: Any, _: dict[str, Any]) -> None:
        conn.send("this is not json")
        conn.close(1011, "internal error")

    with WsServer([closes]) as ws, ws_client(ws.base_url(), stream_max_retries=0) as client, \
            pytest.raises((StreamError, TransportError)) as info:
        client.stream(REQ).collect()
    assert "1011" in str(info.value) and "internal error" in str(info.value)
    # A frame that is not JSON is named first (undecodable events are never dropped silently).
    with WsServer([garbles]) as ws, ws_client(ws.base_url()) as client, \
            pytest.raises(StreamError) as info:
        client.stream(REQ).collect()
    assert "not valid JSON" in str(info.value) and "this is not json" in str(info.value)


def test_an_upgrade_answered_with_html_is_a_typed_error_not_a_hang() -> None:
    with WsServer(refuse=200, refuse_body="<html><body>login</body></html>") as ws, \
            ws_client(ws.base_url()) as client, pytest.raises(CodexApiErrorTypes):
        client.stream(REQ).collect()


CodexApiErrorTypes = (StreamError, ApiError, TransportError)


def test_fragmented_messages_and_pings_mid_turn() -> None:
    import json

    def script(conn: Any, _: dict[str, Any]) -> None:
        frames = text_turn("frag")
        conn.send(json.dumps(frames[0]))
        delta = json.dumps(frames[1])
        conn.ping(b"are you there")
        conn.send([delta[:10], delta[10:25], delta[25:]])  # one message in three frames
        big = {"type": "response.output_text.delta", "delta": "x" * 100_000}
        conn.send(json.dumps(big))  # a 64-bit length frame
        for frame in frames[2:]:
            conn.send(json.dumps(frame))

    with WsServer([script]) as ws, ws_client(ws.base_url()) as client:
        text = client.stream(REQ).collect().text
    assert text == "frag" + "x" * 100_000


def test_silence_is_an_idle_timeout(ws: WsServer) -> None:
    ws.script = [[{"type": "response.created", "response": {"id": "r"}}]]
    with ws_client(ws.base_url(), stream_idle_timeout=0.3) as client, \
            pytest.raises(IdleTimeout):
        client.stream(REQ).collect()


def test_compact_and_models_stay_on_http(server: EmbeddedServer) -> None:
    with ws_client(server.base_url, auth=NoAuth()) as client:
        items = client.compact(ResponsesRequest(model="gpt-5", input="remember 42"))
        models = client.list_models("0.171.0")
    assert [i.type for i in items][-1] == "compaction" and models.slugs
    assert not upgrades(server)


MIB = 1 << 20


def _turn_with(*messages: Any) -> Any:
    import json

    def script(conn: Any, _: dict[str, Any]) -> None:
        frames = text_turn("ok")
        conn.send(json.dumps(frames[0]))
        for message in messages:
            conn.send(message)
        for frame in frames[1:]:
            conn.send(json.dumps(frame))
    return script


def _delta(size: int) -> str:
    return '{"type":"response.output_text.delta","delta":"' + "y" * (size - 48) + '"}'


def test_max_message_bytes_bounds_websocket_messages_raised_or_lowered() -> None:
    # The provider's bound, not one of the wire's own: a lowered bound refuses a message
    # (whole or in fragments), the default (32 MiB) one of 40 MiB, a raised one lets 66 MiB
    # through.
    small, fragmented = _delta(20_000), _delta(15_000)
    big = _delta(66 * MIB)
    with WsServer([_turn_with(small), _turn_with([fragmented[:5000], fragmented[5000:10_000],
                                                  fragmented[10_000:]])]) as ws:
        for _ in range(2):
            with ws_client(ws.base_url(), max_message_bytes=10_000) as client, \
                    pytest.raises(ResponseTooLarge) as info:
                client.stream(REQ).collect()
            assert (info.value.setting, info.value.limit) == ("max_message_bytes", 10_000)
            assert "Provider.max_message_bytes" in str(info.value)
    with WsServer([_turn_with(_delta(40 * MIB))]) as ws, ws_client(ws.base_url()) as client, \
            pytest.raises(ResponseTooLarge) as info:
        client.stream(REQ).collect()
    assert info.value.limit == 32 * MIB
    with WsServer([_turn_with(big)]) as ws, \
            ws_client(ws.base_url(), max_message_bytes=80 * MIB) as client:
        text = client.stream(REQ).collect().text
    assert text == "y" * (66 * MIB - 48) + "ok"


def test_an_http_fallback_stream_is_bounded_by_max_message_bytes(
        server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexapi.server import app

    monkeypatch.setattr(app, "UPGRADES", {})  # refused: the turn goes as POST responses
    with ws_client(server.base_url, max_message_bytes=64) as client, \
            pytest.raises(ResponseTooLarge) as info:
        client.stream(REQ).collect()
    assert (info.value.setting, info.value.limit) == ("max_message_bytes", 64)


def test_a_dropped_background_turn_resumes_over_http_and_stays_on_the_websocket(
        server: EmbeddedServer, caplog: pytest.LogCaptureFixture) -> None:
    import uuid

    from codexapi import Completed

    request = ResponsesRequest(model="m", input="resume me please", background=True,
                               store=True)
    drop = {"x-codexapi-fault": "dropx1@5", "x-codexapi-fault-id": uuid.uuid4().hex}
    with caplog.at_level(logging.WARNING, "codexapi"), \
            ws_client(server.base_url, retry=RetryPolicy(max_attempts=2, base_delay=0.0)
                      ) as client:
        with client.stream(request, headers=drop) as stream:
            events = list(stream)
        assert client.stream(REQ).collect().text == "You said: Hello"
    text = "".join(e.delta for e in events if isinstance(e, OutputTextDelta))
    assert text == "You said: resume me please" and stream.resends == 1
    assert sum(isinstance(e, Completed) for e in events) == 1
    log = [(m, p) for m, p, _, _ in server.requests]
    resumes = [p for m, p in log if m == "GET" and p.startswith("/responses/")]
    assert len(resumes) == 1  # over HTTP, once: no upgrade tried on the resume URL
    assert log[-1] == ("WS", "/responses")  # and the next turn is on the WebSocket again
    assert not [r for r in caplog.records if "upgrade was refused" in r.getMessage()]


# --- every wait ends by the deadline -----------------------------------------------------------


def _pings(conn: Any, _: dict[str, Any]) -> None:
    # A live connection that never answers: a ping every 0.5 s (bounded, for the test).
    for _ in range(40):
        conn.ping()
        time.sleep(0.5)


def _endless_fragments(conn: Any, _: dict[str, Any]) -> None:
    def fragments() -> Iterator[str]:
        yield '{"type":"response.output_text.delta","delta":"'
        for _ in range(40):
            time.sleep(0.5)
            yield "x"

    conn.send(fragments())  # one message whose last fragment never comes


def _dripped_upgrade(conn: Any, request: Any) -> None:
    import base64
    import hashlib

    key = request.headers["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    answer = (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode()
    for byte in answer:  # ~130 bytes, one every 0.1 s: each read is quick, the whole is not
        conn.sendall(bytes([byte]))
        time.sleep(0.1)


@pytest.mark.parametrize("stall", ["pings", "fragments", "dripped-101"])
def test_every_wait_ends_by_the_deadline(stall: str) -> None:
    from support.hostile import RawServer

    from codexapi import DeadlineExceeded

    if stall == "dripped-101":
        server: Any = RawServer(_dripped_upgrade)
    else:
        server = WsServer([_pings if stall == "pings" else _endless_fragments])
    with server:
        base = server.base_url if stall == "dripped-101" else server.base_url()
        # Idle and read timeouts far away: only the deadline can end these.
        with ws_client(base, stream_idle_timeout=60.0, read_timeout=60.0) as client:
            started = time.monotonic()
            with pytest.raises(DeadlineExceeded) as info:
                client.create(REQ, deadline=2.0)
            elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 2.5, elapsed
    # The deadline the caller gave, not what was left of it at some step.
    assert info.value.deadline == 2.0 and "deadline of 2 s" in str(info.value)


@pytest.mark.parametrize("stall", ["pings", "fragments"])
def test_pings_and_unfinished_fragments_are_not_progress(stall: str) -> None:
    # The idle timeout counts from the last complete message: a server that keeps the
    # connection busy without finishing one is idle.
    with WsServer([_pings if stall == "pings" else _endless_fragments]) as ws, \
            ws_client(ws.base_url(), stream_idle_timeout=1.0, stream_max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(IdleTimeout):
            client.create(REQ)
        assert time.monotonic() - started < 1.6


def test_websocket_connect_timeout_bounds_the_whole_opening() -> None:
    # Each byte of the upgrade's answer comes quickly, the whole of it does not: the
    # provider's websocket_connect_timeout (Codex's websocket_connect_timeout_ms) ends it.
    from support.hostile import RawServer

    from codexapi import ReadTimeout

    with RawServer(_dripped_upgrade) as server, \
            ws_client(server.base_url, websocket_connect_timeout=0.5, read_timeout=60.0,
                      stream_idle_timeout=60.0) as client:
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            client.create(REQ)
        assert time.monotonic() - started < 1.0
