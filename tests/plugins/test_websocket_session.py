"""The WebSocket session as the Codex CLI keeps it (issue 24): reconnect at the connection
limit, incremental input and its recovery, prewarm, upgrade retries and the per-session HTTP
fallback, permessage-deflate, sticky routing. Against test-local servers on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest
from support.hostile import RawRequest, RawServer, head
from support.ws_server import WsServer, sse_turn, text_turn, ws_client

from codexapi import (
    ApiError,
    Client,
    Created,
    OutputTextDelta,
    Provider,
    RateLimits,
    ResponsesRequest,
    RetryPolicy,
    SessionContext,
    StreamDropped,
)
from codexapi.convert import item_to_json
from codexapi.server import EmbeddedServer

REQ = ResponsesRequest(model="gpt-5", input="Hello")


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def numbered() -> Callable[[Any, dict[str, Any]], None]:
    """A step answering each turn with ``answer N`` as response ``resp_N`` (a prewarm's
    ``"generate": false`` with no output)."""
    count = [0]

    def step(conn: Any, request: dict[str, Any]) -> None:
        count[0] += 1
        frames = text_turn(f"answer {count[0]}", f"resp_{count[0]}")
        if request.get("generate") is False:
            frames = [frames[0], frames[-1]]
        for frame in frames:
            conn.send(json.dumps(frame))
    return step


def limit_frame() -> dict[str, Any]:
    return {"type": "error", "error": {"code": "websocket_connection_limit_reached",
                                       "message": "Responses websocket connection limit "
                                                  "reached (60 minutes)."}}


# --- reconnect at the connection limit ----------------------------------------------------------


def test_the_connection_limit_reconnects_and_sends_the_turn_again() -> None:
    with WsServer([[limit_frame()]]) as ws, ws_client(ws.base_url()) as client:
        stream = client.stream(REQ)
        assert stream.collect().text == "ok"
    assert stream.resends == 1  # a re-send under stream_max_retries
    assert ws.connections == 2 and len(ws.creates) == 2
    assert ws.creates[0] == ws.creates[1]


def test_the_connection_limit_counts_against_stream_max_retries() -> None:
    with WsServer([[limit_frame()]]) as ws, \
            ws_client(ws.base_url(), stream_max_retries=0) as client, \
            pytest.raises(StreamDropped, match="websocket_connection_limit_reached"):
        client.create(REQ)
    assert ws.connections == 1


# --- incremental input --------------------------------------------------------------------------


def conversation(client: Client, turns: int, session: SessionContext,
                 size: int = 40) -> list[Any]:
    """``turns`` turns, each the previous input + its output + a new user message."""
    items: list[Any] = []
    for n in range(turns):
        items = [*items, user(f"turn {n} " + "x" * size)]
        result = client.create(ResponsesRequest(model="m", input=items), session=session)
        items = [*items, *result.items]
    return items


def test_a_turn_that_extends_the_last_sends_only_the_new_items() -> None:
    session = SessionContext(session_id="s1")
    with WsServer([numbered()] * 3) as ws, ws_client(ws.base_url()) as client:
        conversation(client, 3, session)
    first, second, third = ws.creates
    assert "previous_response_id" not in first and len(first["input"]) == 1
    assert second["previous_response_id"] == "resp_1"
    assert second["input"] == [user("turn 1 " + "x" * 40)]
    assert third["previous_response_id"] == "resp_2"
    assert [i["content"][0]["text"][:6] for i in third["input"]] == ["turn 2"]
    assert ws.connections == 1


def test_other_settings_another_session_or_the_switch_send_the_whole_request() -> None:
    session = SessionContext(session_id="s1")
    with WsServer([numbered()] * 6) as ws, ws_client(ws.base_url()) as client:
        result = client.create(ResponsesRequest(model="m", input=[user("a")]), session=session)
        items = [user("a"), *result.items, user("b")]
        client.create(ResponsesRequest(model="m", input=items, instructions="be brief"),
                      session=session)  # another setting: the whole request
        client.create(ResponsesRequest(model="m", input=[user("z")]), session=session)
        client.create(ResponsesRequest(model="m", input=[user("q")]))  # no session: its own
    assert [("previous_response_id" in c, len(c["input"])) for c in ws.creates] == [
        (False, 1), (False, 3), (False, 1), (False, 1)]
    with WsServer([numbered()] * 3) as ws, \
            ws_client(ws.base_url(), websocket_incremental_input=False) as client:
        conversation(client, 3, session)
    assert [("previous_response_id" in c, len(c["input"])) for c in ws.creates] == [
        (False, 1), (False, 3), (False, 5)]


def test_bytes_per_turn_stay_flat_over_fifty_turns() -> None:
    # ~2 KB of new input per turn. The whole request grows with the conversation; the
    # incremental frame is the new message and the previous response's id.
    sizes = {}
    for incremental in (True, False):
        session = SessionContext(session_id="long")
        with WsServer([numbered()] * 50) as ws, \
                ws_client(ws.base_url(), websocket_incremental_input=incremental) as client:
            conversation(client, 50, session, size=2000)
        sizes[incremental] = [len(m.encode()) for m in ws.messages]
    on, off = sizes[True], sizes[False]
    assert len(on) == len(off) == 50
    assert on[49] <= 1.5 * on[0], (on[0], on[49])
    assert off[49] > 40 * off[0], (off[0], off[49])


def test_previous_response_not_found_sends_the_whole_request_on_the_same_turn() -> None:
    lost = {"type": "error", "status": 400, "error": {
        "code": "previous_response_not_found", "message": "Previous response not found."}}
    session = SessionContext(session_id="s1")
    answer = numbered()
    with WsServer([answer, [lost], answer]) as ws, ws_client(ws.base_url()) as client:
        result = client.create(ResponsesRequest(model="m", input=[user("a")]), session=session)
        items = [user("a"), *result.items, user("b")]
        stream = client.stream(ResponsesRequest(model="m", input=items), session=session)
        assert stream.collect().text == "answer 2"
    assert stream.resends == 0  # the same turn, not a re-send
    assert [c.get("previous_response_id") for c in ws.creates] == [None, "resp_1", None]
    assert ws.creates[2]["input"] == [user("a"), item_to_json(result.items[0]), user("b")]
    assert ws.connections == 1


def test_previous_response_not_found_of_the_callers_own_id_is_the_error() -> None:
    lost = {"type": "error", "status": 400, "error": {
        "code": "previous_response_not_found", "message": "Previous response not found."}}
    request = ResponsesRequest(model="m", input="b", previous_response_id="resp_mine")
    with WsServer([[lost]]) as ws, ws_client(ws.base_url()) as client, \
            pytest.raises(ApiError) as info:
        client.create(request)
    assert info.value.status == 400 and info.value.code == "previous_response_not_found"
    assert len(ws.creates) == 1


# --- prewarm and the upgrade's rate limits -----------------------------------------------------


def test_prewarm_warms_the_sessions_connection_and_the_turn_continues_it() -> None:
    limits = {"x-codex-primary-used-percent": "42.0", "x-codex-primary-window-minutes": "300"}
    session = SessionContext(session_id="warm")
    request = ResponsesRequest(model="m", input=[user("hi")])
    with WsServer([numbered()] * 3, handshake_headers=limits) as ws, \
            ws_client(ws.base_url()) as client:
        assert client.prewarm(request, session=session) is None
        events = list(client.stream(request, session=session))
        later = list(client.stream(ResponsesRequest(model="m", input=[user("other")]),
                                   session=session))
    warm, turn, _ = ws.creates
    assert warm["generate"] is False and warm["input"] == [user("hi")]
    assert "generate" not in turn
    # The same request continues the warm response: nothing new to send.
    assert turn["previous_response_id"] == "resp_1" and turn["input"] == []
    assert ws.connections == 1
    # The upgrade's rate limits come once, before the first generating turn's Created.
    kinds = [type(e) for e in events]
    assert kinds.index(RateLimits) < kinds.index(Created)
    limit = next(e for e in events if isinstance(e, RateLimits))
    assert limit.snapshot.primary is not None and limit.snapshot.primary.used_percent == 42.0
    assert not any(isinstance(e, RateLimits) for e in later)


def test_prewarm_sends_nothing_on_an_http_wire() -> None:
    with EmbeddedServer() as server, Client(Provider(base_url=server.base_url),
                                            load_entrypoints=False) as client:
        client.prewarm(REQ, session=SessionContext(session_id="s"))
    assert server.requests == []


# --- failed upgrades: retried, then HTTP for that session ---------------------------------------


class Gateway:
    """An HTTP server whose WebSocket upgrades fail with ``status`` (the first ``times`` of
    them, or all) and which answers ``POST /v1/responses`` over SSE."""

    def __init__(self, status: int, times: int | None = None, ws: WsServer | None = None
                 ) -> None:
        self.status = status
        self.times = times
        self.upgrades: list[dict[str, str]] = []
        self.posts: list[dict[str, str]] = []
        self.server = RawServer(self._handle)

    def _handle(self, conn: socket.socket, request: RawRequest) -> None:
        if request.method == "GET":
            self.upgrades.append(request.headers)
            body = b'{"error": {"message": "upstream unavailable"}}'
            conn.sendall(head(f"{self.status} Nope", Content_Length=str(len(body)),
                              Content_Type="application/json") + body)
            return
        self.posts.append(request.headers)
        body = sse_turn("over http")
        conn.sendall(head("200 OK", Content_Type="text/event-stream",
                          Content_Length=str(len(body))) + body)

    def __enter__(self) -> Gateway:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)


def test_failed_upgrades_are_retried_then_the_session_falls_back_once(
        caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=10, base_delay=0.01)
    a, b = SessionContext(session_id="a"), SessionContext(session_id="b")
    with caplog.at_level(logging.WARNING, "codexapi"), Gateway(503) as gw, \
            ws_client(gw.server.base_url, sleeps, retry=policy) as client:
        assert client.create(REQ, session=a).text == "over http"
        assert len(gw.upgrades) == 5 and len(gw.posts) == 1
        assert len(sleeps) == 4  # each failed upgrade waited for as the policy says
        assert client.create(REQ, session=a).text == "over http"
        assert len(gw.upgrades) == 5  # session a stays on HTTP without trying again
        client.create(REQ, session=b)  # another session still tries the WebSocket
        assert len(gw.upgrades) == 10
    fell = [r for r in caplog.records if "from now on" in r.getMessage()]
    assert len(fell) == 2 and "'a'" in fell[0].getMessage() and "503" in fell[0].getMessage()


def test_an_upgrade_that_fails_fewer_times_stays_on_the_websocket() -> None:
    refusals = [503, 502]

    def gate(_: Any) -> tuple[int, str] | None:
        return (refusals.pop(0), "busy\n") if refusals else None

    sleeps: list[float] = []
    with WsServer(gate=gate) as ws, \
            ws_client(ws.base_url(), sleeps, retry=RetryPolicy(base_delay=0.01)) as client:
        assert client.create(REQ).text == "ok"
    assert len(ws.upgrades) == 3 and ws.connections == 1 and len(sleeps) == 2


def test_a_failed_upgrade_with_request_retries_off_is_the_error() -> None:
    with Gateway(503) as gw, ws_client(gw.server.base_url) as client, \
            pytest.raises(ApiError) as info:
        client.create(REQ)
    assert info.value.status == 503 and "upstream unavailable" in str(info.value)
    assert len(gw.upgrades) == 1 and gw.posts == []


@pytest.mark.parametrize("status", [426, 404, 405])
def test_no_websocket_there_falls_back_at_once(status: int) -> None:
    sleeps: list[float] = []
    with Gateway(status) as gw, ws_client(gw.server.base_url, sleeps,
                                          retry=RetryPolicy(max_attempts=5)) as client:
        assert client.create(REQ).text == "over http"
        assert client.create(REQ).text == "over http"
    assert len(gw.upgrades) == 1 and len(gw.posts) == 2 and sleeps == []


def test_a_401_on_the_upgrade_goes_through_the_auths_refresh() -> None:
    class Rotating:
        token = "old"

        def headers(self) -> dict[str, str]:
            return {"Authorization": f"Bearer {self.token}"}

        def refresh(self) -> bool:
            self.token = "new"
            return True

    def gate(request: Any) -> tuple[int, str] | None:
        if request.headers.get("Authorization") != "Bearer new":
            return 401, '{"error": {"message": "token expired"}}'
        return None

    with WsServer(gate=gate) as ws, ws_client(ws.base_url(), auth=Rotating()) as client:
        assert client.create(REQ).text == "ok"
    assert [h["Authorization"] for h in ws.upgrades] == ["Bearer old", "Bearer new"]


# --- permessage-deflate and sticky routing ------------------------------------------------------


def test_permessage_deflate_is_offered_and_used_when_accepted() -> None:
    big = {"type": "response.output_text.delta", "delta": "compress me " * 20_000}

    def turn(conn: Any, _: dict[str, Any]) -> None:
        frames = text_turn("!")
        conn.send(json.dumps(frames[0]))
        conn.send(json.dumps(big))
        conn.send([json.dumps(big)[:1000], json.dumps(big)[1000:]])  # fragmented, compressed
        for frame in frames[1:]:
            conn.send(json.dumps(frame))

    with WsServer([turn]) as ws, ws_client(ws.base_url()) as client:
        text = client.create(REQ).text
    assert text == big["delta"] * 2 + "!"
    assert "permessage-deflate" in ws.upgrades[0]["Sec-WebSocket-Extensions"]
    assert ws.extensions == [["permessage-deflate"]]
    with WsServer(compression=None) as ws, ws_client(ws.base_url()) as client:
        assert client.create(REQ).text == "ok"
    assert ws.extensions == [[]]


def test_turn_state_sent_in_band_is_kept_for_the_turns_next_request() -> None:
    def turn(conn: Any, _: dict[str, Any]) -> None:
        frames = text_turn("ok")
        conn.send(json.dumps(frames[0]))
        conn.send(json.dumps({"type": "codex.response.metadata",
                              "headers": {"x-codex-turn-state": "ts-in-band"}}))
        for frame in frames[1:]:
            conn.send(json.dumps(frame))
        conn.close()  # the next request of the turn needs a new connection

    session = SessionContext(session_id="sticky")
    with WsServer([turn]) as ws, ws_client(ws.base_url()) as client:
        events = list(client.stream(REQ, session=session))
        assert session.turn_state.value == "ts-in-band"
        client.create(REQ, session=session)
    assert any(isinstance(e, OutputTextDelta) for e in events)
    assert "x-codex-turn-state" not in ws.upgrades[0]
    assert ws.upgrades[1]["x-codex-turn-state"] == "ts-in-band"


def test_no_credential_reaches_a_log_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    from codexapi import BearerAuth

    secret = "sk-ws-very-secret-0123456789"
    with caplog.at_level(logging.DEBUG), WsServer() as ws, \
            ws_client(ws.base_url(), auth=BearerAuth(secret)) as client:
        assert client.create(REQ).text == "ok"
    assert ws.upgrades[0]["Authorization"] == f"Bearer {secret}"
    # The test server (websockets.server) logs what it received; the client logs nothing of it.
    client_side = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    assert client_side and not [r for r in client_side if secret in r.getMessage()]


def test_an_http_fallback_compresses_its_body_as_the_http_wire_would() -> None:
    from codexapi.http.compression import zstd_module

    zstd = zstd_module()
    assert zstd is not None  # the test extra installs it
    with Gateway(426) as gw, ws_client(gw.server.base_url, request_compression="zstd") as client:
        assert client.create(REQ).text == "over http"
    assert gw.posts[0]["content-encoding"] == "zstd"
    assert json.loads(zstd.decompress(gw.server.requests[-1].body))["model"] == "gpt-5"
