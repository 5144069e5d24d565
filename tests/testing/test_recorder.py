"""``codexapi serve --record FILE --upstream URL``, the recording proxy, and ``serve --cassette``
replaying what it wrote: streamed through unbuffered (HTTP bodies and WebSocket frames), every
route and WebSocket turns, secrets scrubbed, upstream errors, drops and resets recorded and
replayed as they happened, and the cassette loadable by the pytest plugin."""

from __future__ import annotations

import contextlib
import gc
import http.server
import json
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.sync.server import ServerConnection, serve

from codexapi import BearerAuth, Client, Provider, ResponsesRequest, RetryPolicy, WireApi
from codexapi.cli.commands import main
from codexapi.errors import ApiError, StreamError, TransportError
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER
from codexapi.testing import load_interactions, use_cassette
from codexapi.testing import recorder as recorder_module
from codexapi.testing.player import CassettePlayer
from codexapi.testing.recorder import CassetteLog, Recorder, record_server

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-live-recorder-secret-0123456789"
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=10))


@contextlib.contextmanager
def recording(upstream: str, path: Path) -> Iterator[tuple[EmbeddedServer, Recorder]]:
    with record_server(path, upstream) as proxy:
        recorder = proxy.httpd.responder
        assert isinstance(recorder, Recorder)
        yield proxy, recorder
    recorder.close()


@contextlib.contextmanager
def replaying(path: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        server.httpd.responder = CassettePlayer.from_file(path)
        yield server


def client_for(base_url: str, wire: str = WireApi.RESPONSES, **kw: Any) -> Client:
    return Client(Provider(name="rec", base_url=base_url, wire=wire,
                           retry=RetryPolicy(max_attempts=1), stream_idle_timeout=5, **kw),
                  auth=BearerAuth(SECRET), load_entrypoints=False)


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/responses"


def ws_turn(ws: ClientConnection, prompt: str, **extra: Any) -> list[dict[str, Any]]:
    ws.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": prompt,
                        **extra}))
    events = []
    while True:
        events.append(json.loads(ws.recv(timeout=5)))
        if events[-1]["type"] in ("response.completed", "error"):
            return events


# -- unbuffered --------------------------------------------------------------------------------


class GatedUpstream(http.server.ThreadingHTTPServer):
    """Sends the first SSE event of a stream, then waits for ``release`` before the rest."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _GatedHandler)
        self.release = threading.Event()
        self.finished = threading.Event()
        self.release_end = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _GatedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatedUpstream

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def event(data: str) -> None:
            chunk = f"data: {data}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()

        event('{"n": 1}')
        self.server.release.wait(10)
        event('{"n": 2}')
        event("[DONE]")
        self.server.finished.set()
        self.server.release_end.wait(10)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def test_the_first_event_reaches_the_client_before_the_upstream_sends_its_last(
        tmp_path: Path) -> None:
    upstream = GatedUpstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with recording(upstream.base_url, tmp_path / "c.yaml") as (proxy, _):
            response = HTTP.request("POST", proxy.base_url + "/chat/completions",
                                    body=b'{"model": "m"}', preload_content=False,
                                    headers={"Content-Type": "application/json"})
            first = response.read1(1024)  # type: ignore[attr-defined]
            # The upstream is still holding its last events back: the first came through.
            assert first == b'data: {"n": 1}\n\n'
            assert not upstream.finished.is_set()
            upstream.release.set()
            rest = b""
            while not rest.endswith(b"[DONE]\n\n"):
                rest += response.read1(1024)  # type: ignore[attr-defined]
            # The client has the last event, the body is not over: the cassette holds it.
            (it,) = load_interactions(tmp_path / "c.yaml")
            assert it.body == first + rest and it.failure == ""
            upstream.release_end.set()
            assert response.read() == b""
        assert rest == b'data: {"n": 2}\n\ndata: [DONE]\n\n'
    finally:
        upstream.release.set()
        upstream.release_end.set()
        upstream.shutdown()
        upstream.server_close()


def test_the_first_frame_reaches_the_client_before_the_upstream_sends_its_last(
        tmp_path: Path) -> None:
    release, finished = threading.Event(), threading.Event()

    def handler(ws: ServerConnection) -> None:
        json.loads(ws.recv(timeout=5))
        ws.send('{"type": "response.created"}')
        release.wait(10)
        ws.send('{"type": "response.completed", "response": {"id": "r1"}}')
        finished.set()
        with contextlib.suppress(ConnectionClosed):
            ws.recv(timeout=5)

    with serve(handler, "127.0.0.1", 0) as upstream:
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        port = upstream.socket.getsockname()[1]
        with recording(f"http://127.0.0.1:{port}/v1", tmp_path / "c.yaml") as (proxy, rec), \
                connect(ws_url(proxy.base_url)) as ws:
            ws.send(json.dumps({"type": "response.create", "model": "m"}))
            assert json.loads(ws.recv(timeout=5)) == {"type": "response.created"}
            assert not finished.is_set()
            release.set()
            assert json.loads(ws.recv(timeout=5))["type"] == "response.completed"
            assert rec.recorded == 1  # written before the last frame was passed on
        upstream.shutdown()
    (turn,) = load_interactions(tmp_path / "c.yaml")
    assert turn.is_websocket and turn.status == 101
    assert [e["type"] for e in turn.events()] == ["response.created", "response.completed"]


# -- record, then replay -----------------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def test_every_route_records_and_replays(upstream: EmbeddedServer, tmp_path: Path) -> None:
    path = tmp_path / "session.yaml"
    hello = ResponsesRequest(model="gpt-5", input="Hello there")
    live: list[Any] = []
    with recording(upstream.base_url, path) as (proxy, _):
        with client_for(proxy.base_url) as client:
            live.append(client.create(hello).text)
            live.append([m.slug for m in client.list_models("0.171.0").models])
            live.append([i.type for i in client.compact(hello)])
        with client_for(proxy.base_url, WireApi.CHAT) as client:
            live.append(client.create(ResponsesRequest(model="gpt-5", input="chat")).text)
        with connect(ws_url(proxy.base_url)) as ws:
            live.append([ws_turn(ws, p)[-1]["response"]["output"][-1]["content"][0]["text"]
                         for p in ("one", "two")])
    assert live[0] == "You said: Hello there" and live[4] == ["You said: one", "You said: two"]
    labels = [("WS" if it.is_websocket else it.method, it.uri) for it in
              load_interactions(path)]
    assert labels == [
        ("POST", "http://127.0.0.1:8000/v1/responses"),
        ("GET", "http://127.0.0.1:8000/v1/models?client_version=0.171.0"),
        ("POST", "http://127.0.0.1:8000/v1/responses/compact"),
        ("POST", "http://127.0.0.1:8000/v1/chat/completions"),
        ("WS", "ws://127.0.0.1:8000/v1/responses"), ("WS", "ws://127.0.0.1:8000/v1/responses"),
    ]
    replayed: list[Any] = []
    with replaying(path) as server:
        with client_for(server.base_url) as client:
            replayed.append(client.create(hello).text)
            replayed.append([m.slug for m in client.list_models("0.171.0").models])
            replayed.append([i.type for i in client.compact(hello)])
        with client_for(server.base_url, WireApi.CHAT) as client:
            replayed.append(client.create(ResponsesRequest(model="gpt-5", input="chat")).text)
        with connect(ws_url(server.base_url)) as ws:
            replayed.append([ws_turn(ws, p)[-1]["response"]["output"][-1]["content"][0]
                             ["text"] for p in ("one", "two")])
    assert replayed == live
    assert len(upstream.requests) == 7  # 4 HTTP, an upgrade, 2 turns: none from the replay


def test_websocket_turns_match_their_frames_and_keep_the_upgrade_headers(
        upstream: EmbeddedServer, tmp_path: Path) -> None:
    path = tmp_path / "ws.yaml"
    with recording(upstream.base_url, path) as (proxy, _), \
            connect(ws_url(proxy.base_url)) as ws:
        recorded = [ws_turn(ws, p) for p in ("alpha", "beta")]
        state = ws.response.headers["x-codex-turn-state"]
    with replaying(path) as server, connect(ws_url(server.base_url)) as ws:
        # Asked in the other order: each frame finds its own turn by its body.
        beta, alpha = ws_turn(ws, "beta"), ws_turn(ws, "alpha")
        assert ws.response.headers["x-codex-turn-state"] == state
        ws.send(json.dumps({"type": "response.processed"}))  # ignored, as the server does
        missing = ws_turn(ws, "gamma")[-1]  # everything played: the last turn again
    assert [alpha, beta] == recorded
    assert missing["type"] == "response.completed"


def test_the_cassette_loads_in_the_pytest_plugin(upstream: EmbeddedServer,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    request = ResponsesRequest(model="gpt-5", input="for vcrpy")
    with recording(upstream.base_url, path) as (proxy, _), client_for(proxy.base_url) as c:
        c.create(request)
        with connect(ws_url(proxy.base_url)) as ws:
            ws_turn(ws, "a turn")
    # The recording's URI is the loopback one the plugin normalizes to; vcrpy replays it.
    with use_cassette(path) as cassette, client_for("http://127.0.0.1:8000/v1") as client:
        assert client.create(request).text == "You said: for vcrpy"
    assert len(cassette) == 2 and cassette.play_count == 1


def test_secrets_are_scrubbed_from_the_cassette(upstream: EmbeddedServer,
                                                tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    with recording(upstream.base_url, path) as (proxy, _):
        with client_for(proxy.base_url) as client:
            client.create(ResponsesRequest(model="gpt-5", input=f"my key is {SECRET}"))
        headers = {"Authorization": f"Bearer {SECRET}", "OpenAI-Organization": "org-private"}
        with connect(ws_url(proxy.base_url), additional_headers=headers) as ws:
            ws_turn(ws, f"again {SECRET}")
    text = path.read_text()
    assert SECRET not in text and "org-private" not in text
    assert text.count("<redacted>") >= 4
    # The upstream itself saw the real key: scrubbing is for the file only.
    assert all(h.get("Authorization") == f"Bearer {SECRET}" for _, _, h, _ in upstream.requests)


# -- errors, drops, resets ----------------------------------------------------------------------


def test_an_upstream_error_status_is_recorded_and_replayed(upstream: EmbeddedServer,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "429.yaml"
    headers = {FAULT_HEADER: "usage_limit:120"}
    with recording(upstream.base_url, path) as (proxy, _):
        live = HTTP.request("POST", proxy.base_url + "/responses", headers=headers,
                            body=b'{"model": "m", "input": "x"}')
    with replaying(path) as server:
        again = HTTP.request("POST", server.base_url + "/responses",
                             body=b'{"model": "m", "input": "x"}')
    assert live.status == again.status == 429
    assert json.loads(live.data) == json.loads(again.data)
    assert again.headers["x-codex-primary-used-percent"] == "100"


def test_a_drop_mid_stream_is_recorded_and_replayed(upstream: EmbeddedServer,
                                                    tmp_path: Path) -> None:
    path = tmp_path / "drop.yaml"
    request = ResponsesRequest(model="m", input="cut short")
    with recording(upstream.base_url, path) as (proxy, _), \
            client_for(proxy.base_url, stream_max_retries=0) as client, \
            pytest.raises(StreamError) as live:
        client.create(request, headers={FAULT_HEADER: "drop@3"})
    (it,) = load_interactions(path)
    assert it.failure == "drop" and len(it.events()) == 3
    with replaying(path) as server, client_for(server.base_url, stream_max_retries=0) as c, \
            pytest.raises(StreamError) as again:
        c.create(request)
    assert "disconnected" in str(live.value) and "disconnected" in str(again.value)


@pytest.mark.parametrize("how", ["reset", "unreachable"])
def test_an_upstream_that_does_not_answer_resets_the_client_live_and_replayed(
        upstream: EmbeddedServer, tmp_path: Path, how: str) -> None:
    path = tmp_path / "reset.yaml"
    base = upstream.base_url
    if how == "unreachable":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    body = b'{"model": "m", "input": "x"}'
    with recording(base, path) as (proxy, _), pytest.raises(urllib3.exceptions.ProtocolError):
        HTTP.request("POST", proxy.base_url + "/responses", body=body,
                     headers={FAULT_HEADER: "reset"})
    (it,) = load_interactions(path)
    assert (it.status, it.failure) == (502, "reset")
    with replaying(path) as server, pytest.raises(urllib3.exceptions.ProtocolError):
        HTTP.request("POST", server.base_url + "/responses", body=body)


def test_websocket_errors_and_drops_are_recorded_and_replayed(upstream: EmbeddedServer,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "ws-faults.yaml"
    limited = {"client_metadata": {FAULT_HEADER: "429:3", FAULT_ID_HEADER: "a"}}
    dropped = {"client_metadata": {FAULT_HEADER: "drop@4", FAULT_ID_HEADER: "b"}}
    with recording(upstream.base_url, path) as (proxy, rec), \
            connect(ws_url(proxy.base_url)) as ws:
        error = ws_turn(ws, "limited", **limited)[-1]
        ws.send(json.dumps({"type": "response.create", "model": "m", "input": "cut",
                            **dropped}))
        live = [json.loads(ws.recv(timeout=5)) for _ in range(4)]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        for _ in range(50):
            if rec.recorded == 2:
                break
            time.sleep(0.05)
    assert (error["status"], error["headers"]["Retry-After"]) == (429, "3")
    turns = load_interactions(path)
    assert [t.failure for t in turns] == ["", "drop"]
    with replaying(path) as server, connect(ws_url(server.base_url)) as ws:
        assert ws_turn(ws, "limited", **limited)[-1] == error
        ws.send(json.dumps({"type": "response.create", "model": "m", "input": "cut",
                            **dropped}))
        assert [json.loads(ws.recv(timeout=5)) for _ in range(4)] == live
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is None  # no close frame: the TCP connection just ended


def test_a_refused_upgrade_is_recorded_and_refused_again(
        upstream: EmbeddedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexapi.server import app

    monkeypatch.setattr(app, "UPGRADES", {})  # the upstream speaks no WebSocket
    path = tmp_path / "refused.yaml"
    with recording(upstream.base_url, path) as (proxy, _), \
            pytest.raises(Exception, match="405"):
        connect(ws_url(proxy.base_url), open_timeout=5)
    (it,) = load_interactions(path)
    assert it.is_websocket and it.status == 405
    with replaying(path) as server, pytest.raises(Exception, match="405"):
        connect(ws_url(server.base_url), open_timeout=5)


# -- the command --------------------------------------------------------------------------------


def test_record_needs_an_upstream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--record", str(tmp_path / "c.yaml")]) == 2
    assert "--record FILE and --upstream URL go together" in capsys.readouterr().err
    assert main(["serve", "--port", "0", "--record", str(tmp_path / "c.yaml"),
                 "--upstream", "ftp://example.com"]) == 2
    assert "is not an http:// or https:// URL" in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists()


def test_api_errors_pass_through_typed(upstream: EmbeddedServer, tmp_path: Path) -> None:
    with recording(upstream.base_url, tmp_path / "e.yaml") as (proxy, _), \
            client_for(proxy.base_url) as client, pytest.raises(ApiError) as info:
        client.create(ResponsesRequest(model="m", input="x"),
                      headers={FAULT_HEADER: "quota:insufficient_quota"})
    assert info.value.status == 429
    assert not isinstance(info.value, TransportError)


# -- cost of a long recording -----------------------------------------------------------------


def _retained(root: object, skip: tuple[object, ...]) -> int:
    """Bytes of the objects reachable from ``root`` (not through ``skip``, modules, classes or
    functions): what it keeps alive."""
    seen = {id(o) for o in skip}
    todo, total = [root], 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType | type | types.FunctionType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def test_a_long_recording_writes_each_exchange_once_and_keeps_none_in_memory(
        upstream: EmbeddedServer, tmp_path: Path) -> None:
    # 200 exchanges, streamed and not: each is appended as it ends, so the bytes written add up
    # to the file's size (rewriting the whole file per exchange wrote ~100x it), and what the
    # recorder keeps does not grow with the cassette.
    path = tmp_path / "long.yaml"
    n = 200
    answers: list[bytes] = []

    def body(i: int) -> str:
        return json.dumps({"model": "gpt-5", "input": f"exchange {i} " + "x" * 400,
                           "stream": i % 2 == 0})

    last = ResponsesRequest(model="gpt-5", input="the last one")
    with recording(upstream.base_url, path) as (proxy, rec):
        for i in range(n - 1):
            reply = HTTP.request("POST", proxy.base_url + "/responses", body=body(i),
                                 headers={"Content-Type": "application/json"})
            assert reply.status == 200
            answers.append(reply.data)
        with client_for(proxy.base_url) as client:
            assert client.create(last).text == "You said: the last one"
        assert rec.recorded == n and rec.cassette.held == 0
        held = _retained(rec, (rec._transport, rec.scrubber))
        written = rec.cassette.written
    size = path.stat().st_size
    assert size > n * 1000
    assert written <= size + 64, (written, size)  # (+ the empty cassette's head, once)
    assert held < 20_000, held
    recorded = load_interactions(path)
    assert [it.body for it in recorded][:-1] == answers  # exactly, trailing line breaks too
    with replaying(path) as server:
        for i in (0, 1, n - 2):
            reply = HTTP.request("POST", server.base_url + "/responses", body=body(i),
                                 headers={"Content-Type": "application/json"})
            assert reply.data == answers[i]
    with use_cassette(path) as cassette, client_for("http://127.0.0.1:8000/v1") as client:
        assert client.create(last).text == "You said: the last one"
    assert len(cassette) == n and cassette.play_count == 1


def _item(n: int, body: str, failure: str = "") -> bytes:
    request = recorder_module._Request("POST", "http://127.0.0.1:8000/v1/responses", {},
                                       json.dumps({"n": n}).encode())
    response: dict[str, Any] = {"status": {"code": 200, "message": "OK"}, "headers": {},
                                "body": {"string": body.encode()}}
    if failure:
        response["failure"] = failure
    return CassetteLog.item(request, response)


def test_an_exchange_written_before_its_end_is_written_again_in_place(tmp_path: Path) -> None:
    # A stream's end event is written before the client sees it; what came after (the rest of
    # the body, a drop) replaces it once the body ends, the exchanges appended meanwhile kept
    # after it, in order.
    path = tmp_path / "tail.yaml"
    log = CassetteLog(path)
    first = log.append(_item(0, "data: 1\n\n"), open=True)
    log.append(_item(1, "one\n\n\n"))
    log.append(_item(2, "two"))
    assert log.held == 3
    assert [it.body for it in load_interactions(path)] == [b"data: 1\n\n", b"one\n\n\n", b"two"]
    log.finish(first, _item(0, "data: 1\n\ndata: 2\n\n", failure="drop"))
    loaded = load_interactions(path)
    assert [it.body for it in loaded] == [b"data: 1\n\ndata: 2\n\n", b"one\n\n\n", b"two"]
    assert [it.failure for it in loaded] == ["drop", "", ""]
    assert log.held == 0
    log.append(_item(3, "three"))
    assert log.held == 0 and len(load_interactions(path)) == 4


def test_an_exchange_that_stays_open_lets_go_of_the_ones_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recorder_module, "MAX_REWRITE", 3)
    path = tmp_path / "bounded.yaml"
    log = CassetteLog(path)
    first = log.append(_item(0, "complete up to its end event"), open=True)
    for n in range(1, 6):
        log.append(_item(n, f"after {n}"))
        assert log.held <= 3
    written = log.written
    log.finish(first, _item(0, "never comes", failure="drop"))
    assert log.written == written  # stays as first written
    bodies = [it.body for it in load_interactions(path)]
    assert bodies == [b"complete up to its end event"] + [f"after {n}".encode()
                                                           for n in range(1, 6)]
