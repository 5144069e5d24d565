"""``codexapi serve`` facing clients it cannot trust: keys guard every route in every mode
(WebSocket upgrades included) before anything else sees the request; a refused request leaves
nothing behind; the request log is bounded in bytes; framing is unambiguous (RFC 9112 §6.3);
chunked bodies and JSON nesting are bounded; response ids are unguessable and a stored response
is its key's alone."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import urllib3
from support.serve_process import ServeProcess
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from codexapi.server import ROUTES, EmbeddedServer, Exchange, app
from codexapi.server.framing import MAX_JSON_DEPTH
from codexapi.testing import serve_cassette

pytestmark = pytest.mark.timeout(60)

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
KEY = "sk-right-key-0123456789abcdef"
OTHER = "sk-other-key-fedcba9876543210"
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=10))


@pytest.fixture
def keyed() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(api_keys=[KEY, OTHER]) as server:
        yield server


def call(server: EmbeddedServer, method: str, path: str, body: Any = None,
         key: str | None = KEY, **headers: str) -> urllib3.BaseHTTPResponse:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    return HTTP.request(method, server.base_url + path, body=data,
                        headers={"Content-Type": "application/json", **headers})


def error(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    return dict(json.loads(response.data)["error"])


def raw(server: EmbeddedServer | ServeProcess, data: bytes, wait: float = 3.0
        ) -> tuple[bytes, bool]:
    """Send ``data`` on a new connection; what came back in ``wait`` seconds, and whether the
    server closed the connection by then."""
    with socket.create_connection((server.host, server.port), timeout=wait) as sock:
        sock.sendall(data)
        got = b""
        end = time.monotonic() + wait
        while time.monotonic() < end:
            sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False


def statuses(data: bytes) -> list[int]:
    """The status codes of the HTTP responses in ``data`` (interim 100s included)."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def route_paths() -> list[tuple[str, str]]:
    """Every registered route, with its ``{name}`` segments filled."""
    return [(method, "/v1" + path.replace("{id}", "resp_x").replace("{model}", "gpt-5"))
            for method, path in ROUTES]


# -- keys guard everything -------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [
    *route_paths(), ("GET", "/v1/nowhere"), ("PUT", "/v1/responses"),
    ("PATCH", "/v1/models"), ("GET", "/"), ("OPTIONS", "/v1/responses")])
def test_every_route_and_every_method_needs_a_key(keyed: EmbeddedServer, method: str,
                                                  path: str) -> None:
    response = HTTP.request(method, keyed.base_url.removesuffix("/v1") + path,
                            body=b'{"model": "gpt-5", "input": "x"}',
                            headers={"Content-Type": "application/json"})
    assert response.status == 401, (method, path, response.data)
    assert "You didn't provide an API key" in error(response)["message"]
    wrong = HTTP.request(method, keyed.base_url.removesuffix("/v1") + path,
                         headers={"Authorization": "Bearer sk-wrong-key-000000000000"})
    assert wrong.status == 401 and error(wrong)["code"] == "invalid_api_key"
    assert keyed.requests == []


def test_nothing_answers_a_refused_request(keyed: EmbeddedServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever is added to answer requests (a responder such as a cassette, a route, an
    # upgrade: the modes of `serve`) sits behind the one gate.
    seen: list[str] = []

    def responder(ex: Exchange) -> bool:
        seen.append(ex.path)
        ex.send_json(200, {"answered": True})
        return True

    keyed.httpd.responder = responder
    monkeypatch.setitem(ROUTES, ("GET", "/probe"), lambda ex: seen.append("route"))
    monkeypatch.setitem(app.UPGRADES, "/probe", lambda handler, ex: seen.append("upgrade"))
    for path, extra in [("/probe", {}), ("/probe", {"Upgrade": "websocket",
                                                    "Connection": "Upgrade"}),
                        ("/responses", {"Upgrade": "websocket", "Connection": "Upgrade"})]:
        assert call(keyed, "GET", path, key=None, **extra).status == 401
        assert call(keyed, "GET", path, key="sk-wrong-key-000000000000", **extra).status == 401
    assert seen == [] and keyed.requests == []
    assert call(keyed, "GET", "/probe").status == 200 and seen == ["/probe"]


def test_a_websocket_upgrade_needs_a_key(keyed: EmbeddedServer) -> None:
    url = keyed.base_url.replace("http://", "ws://") + "/responses"
    with pytest.raises(InvalidStatus, match="401"):
        connect(url, open_timeout=5).close()
    with connect(url, additional_headers={"Authorization": f"Bearer {KEY}"},
                 open_timeout=5) as conn:
        conn.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": "k"}))
        while json.loads(conn.recv(timeout=5))["type"] != "response.completed":
            pass


def test_a_cassette_server_needs_a_key() -> None:
    with serve_cassette(CASSETTES / "responses_text.yaml") as server:
        server.api_keys = [KEY]
        anonymous = openai.OpenAI(base_url=server.base_url, api_key="sk-not-the-key-0000",
                                  max_retries=0, timeout=10)
        with pytest.raises(openai.AuthenticationError):
            anonymous.responses.create(model="gpt-5", input="x")
        good = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)
        events = list(good.responses.create(model="gpt-5", input="x", stream=True))
        assert events[-1].response.output_text == "You said: Hello there"
        assert [path for _, path, _, _ in server.requests] == ["/responses"]


def test_serve_cassette_with_api_key_from_the_command_line() -> None:
    with ServeProcess("--cassette", str(CASSETTES / "models_etag.yaml"),
                      "--api-key", KEY) as server:
        for sent in ({}, {"Authorization": "Bearer sk-not-the-key-0000"}):
            refused = HTTP.request("GET", server.base_url + "/models", headers=sent)
            assert refused.status == 401, refused.data
        url = server.base_url.replace("http://", "ws://") + "/responses"
        with pytest.raises(InvalidStatus, match="401"):
            connect(url, open_timeout=5).close()
        ok = HTTP.request("GET", server.base_url + "/models",
                          headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status == 200


def test_a_refused_request_gets_no_100_continue(keyed: EmbeddedServer) -> None:
    head = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n")
    got, closed = raw(keyed, head)
    assert statuses(got) == [401] and closed
    body = b'{"model": "gpt-5", "input": "go on"}'
    got, _ = raw(keyed, head.replace(b"1000000", str(len(body)).encode()).replace(
        b"Host: x", f"Host: x\r\nAuthorization: Bearer {KEY}".encode()), wait=1)
    assert statuses(got) == [100]


# -- nothing of a refused request is kept ----------------------------------------------------


def test_unauthenticated_bodies_are_not_kept(capsys: pytest.CaptureFixture[str]) -> None:
    body = b'{"model": "gpt-5", "input": "' + b"x" * (16 * 1024 * 1024) + b'"}'
    with ServeProcess("--api-key", KEY) as server:
        ok = HTTP.request("POST", server.base_url + "/responses",
                          body=b'{"model": "gpt-5", "input": "warm up"}',
                          headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status == 200
        before = server.rss()
        for n in range(10):
            response = HTTP.request("POST", server.base_url + "/responses", body=body,
                                    headers={"Authorization": f"Bearer sk-guess-{n:016d}"})
            assert response.status == 401 and error(response)["code"] == "invalid_api_key"
        after = server.rss()
    with capsys.disabled():
        print(f"\nserver RSS after ten 16 MiB unauthenticated requests: {before / 2**20:.0f} "
              f"-> {after / 2**20:.0f} MiB")
    # Not one body's worth: none was kept, or even held whole.
    assert after - before < 16 * 1024 * 1024


def test_the_request_log_is_bounded_in_bytes(server: EmbeddedServer) -> None:
    log = server.httpd.requests_seen
    assert log.max_bytes == app.MAX_REQUESTS_SEEN_BYTES
    log.max_bytes = 1024 * 1024
    try:
        for n in range(8):
            text = f"{n} " + "y" * 300_000
            assert call(server, "POST", "/responses", {"model": "gpt-5", "input": text},
                        key=None).status == 200
        kept = [body["input"] for _, path, _, body in server.requests if path == "/responses"]
        assert 1 <= len(kept) <= 3 and kept[-1].startswith("7 ")
        assert log.bytes <= log.max_bytes
    finally:
        log.max_bytes = app.MAX_REQUESTS_SEEN_BYTES


# -- framing, chunked bodies, JSON nesting ---------------------------------------------------

SMUGGLED = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("headers", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    b"Content-Length: 5\r\nContent-Length: 42\r\n",
    b"Content-Length: 5, 42\r\n",
    b"Content-Length: +5\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n",
], ids=["cl-te", "te-cl", "two-lengths", "list-of-lengths", "signed", "not-chunked",
        "chunked-not-last"])
def test_ambiguous_framing_is_a_400_that_closes_the_connection(server: EmbeddedServer,
                                                               headers: bytes) -> None:
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
               + b"0\r\n\r\n" + SMUGGLED)
    got, closed = raw(server, request)
    assert len(statuses(got)) == 1 and statuses(got)[0] in (400, 501), got
    assert closed, "the connection stayed open for the smuggled request"
    assert b"Connection: close" in got
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "invalid_framing"


@pytest.mark.parametrize("lines", [
    b"Content-Length: 5\r\nno colon here\r\nTransfer-Encoding: chunked\r\n",
    b"Content-Length : 5\r\n",
    b"Content-Length: 5\r\nX-Folded: a\r\n Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\nX-Nul: a\x00b\r\n",
    b"Content-Length: 5\r\n: no name\r\n",
], ids=["not-a-field", "space-before-colon", "folded", "nul", "no-name"])
def test_a_header_section_that_does_not_parse_cleanly_is_a_400_that_closes(
        server: EmbeddedServer, lines: bytes) -> None:
    # The server's parser would stop at (or skip) such a line, and a proxy in front might not:
    # each would frame the body its own way.
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"
               + b"0\r\n\r\n" + SMUGGLED)
    got, closed = raw(server, request)
    assert statuses(got) == [400] and closed, got
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "invalid_framing"


def test_an_unknown_method_closes_the_connection_after_its_501(keyed: EmbeddedServer) -> None:
    request = (f"PUT /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
               f"Content-Length: {len(SMUGGLED)}\r\n\r\n").encode() + SMUGGLED
    got, closed = raw(keyed, request)
    assert statuses(got) == [501] and closed


def chunked(body: bytes, size: int = 7) -> bytes:
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-T: 1\r\n\r\n"


def test_a_chunked_body_is_read_and_the_connection_goes_on(server: EmbeddedServer) -> None:
    body = json.dumps({"model": "gpt-5", "input": "in pieces"}).encode()
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: application/json\r\n\r\n" + chunked(body) + SMUGGLED)
    got, _ = raw(server, request, wait=2)
    assert statuses(got) == [200, 200]
    first = got.split(b"\r\n\r\n", 1)[1]
    assert b"You said: in pieces" in first


def test_a_chunked_body_over_the_bound_is_a_413(server: EmbeddedServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app, "MAX_BODY", 1000)
    body = json.dumps({"model": "gpt-5", "input": "z" * 2000}).encode()
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked(body, 100) + SMUGGLED)
    got, closed = raw(server, request)
    assert statuses(got) == [413] and closed
    assert b"over 1000 bytes" in got


@pytest.mark.parametrize("chunks", [b"zz\r\n", b"5\r\nab", b"3\r\nabcXY0\r\n\r\n",
                                    b"1" * 5000 + b"\r\n"],
                         ids=["bad-size", "cut-off", "no-crlf", "long-line"])
def test_a_broken_chunked_body_is_a_400_that_closes(server: EmbeddedServer,
                                                    chunks: bytes) -> None:
    request = (b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunks)
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    assert statuses(got) == [400], got


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"model": "gpt-5", "input": "x", "metadata": ' + b'{"a": ' * 100_000 + b"1"
    + b"}" * 100_001,
    json.dumps({"model": "gpt-5", "input": "x", "metadata": nested(MAX_JSON_DEPTH)}).encode(),
], ids=["100k-arrays", "100k-objects", "just-over"])
def test_json_nested_past_the_bound_is_a_400_naming_it(server: EmbeddedServer,
                                                       body: bytes) -> None:
    response = call(server, "POST", "/responses", body, key=None)
    assert response.status == 400, response.data
    found = error(response)
    assert found["code"] == "json_too_deep"
    assert f"more than {MAX_JSON_DEPTH} levels" in found["message"]
    assert call(server, "GET", "/models", key=None).status == 200


def test_json_at_the_bound_is_fine(server: EmbeddedServer) -> None:
    # The body object is level 1 and `metadata` level 2: the bound, exactly.
    body = {"model": "gpt-5", "input": "deep", "metadata": nested(MAX_JSON_DEPTH - 2)}
    response = call(server, "POST", "/responses", body, key=None)
    assert response.status == 200, response.data


def test_a_deep_websocket_frame_is_an_error_event_and_the_connection_goes_on(
        server: EmbeddedServer) -> None:
    url = server.base_url.replace("http://", "ws://") + "/responses"
    with connect(url, open_timeout=5, max_size=None) as conn:
        conn.send("[" * 100_000 + "]" * 100_000)
        event = json.loads(conn.recv(timeout=5))
        assert (event["type"], event["error"]["code"]) == ("error", "json_too_deep")
        conn.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": "after"}))
        while (event := json.loads(conn.recv(timeout=5)))["type"] != "response.completed":
            pass


# -- ids, and whose a stored response is -----------------------------------------------------


def assert_random(ids: list[str], prefix: str) -> None:
    """Each of ``ids`` is ``prefix`` and 32 hex digits (128 bits), all unrelated."""
    suffixes = [one.removeprefix(prefix) for one in ids]
    assert all(one.startswith(prefix) for one in ids), ids
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) for s in suffixes), ids
    assert len(set(suffixes)) == len(suffixes)
    # A counter's values share most of their digits; random ones share a few at most.
    shared = max(next(n for n, (x, y) in enumerate([*zip(a, b, strict=True), ("", "-")])
                      if x != y)
                 for i, a in enumerate(suffixes) for b in suffixes[i + 1:])
    assert shared < 8, suffixes


def test_response_ids_carry_128_random_bits(server: EmbeddedServer) -> None:
    ids = [json.loads(call(server, "POST", "/responses", {"model": "gpt-5", "input": "i"},
                           key=None).data)["id"] for _ in range(24)]
    assert_random(ids, "resp_")


def test_request_ids_carry_128_random_bits(server: EmbeddedServer) -> None:
    answers = [call(server, "POST", "/responses", {"model": "gpt-5", "input": "i"}, key=None)
               for _ in range(8)]
    answers += [call(server, "GET", "/models", key=None),
                call(server, "GET", "/no-such-route", key=None)]
    assert [a.status for a in answers[-2:]] == [200, 404]
    ids = [str(a.headers["x-request-id"]) for a in answers]
    # The WebSocket upgrade's 101 carries one too.
    url = server.base_url.replace("http://", "ws://") + "/responses"
    for _ in range(2):
        with connect(url, open_timeout=5) as conn:
            assert conn.response is not None and conn.response.status_code == 101
            ids.append(str(conn.response.headers["x-request-id"]))
    assert_random(ids, "req_")


def test_a_stored_response_is_visible_to_its_key_only(keyed: EmbeddedServer) -> None:
    mine = json.loads(call(keyed, "POST", "/responses", {"model": "gpt-5", "input": "mine"}).data)
    queued = json.loads(call(keyed, "POST", "/responses",
                             {"model": "gpt-5", "input": "later", "background": True}).data)
    for rid in (mine["id"], queued["id"]):
        assert call(keyed, "GET", f"/responses/{rid}").status == 200
        for path in (f"/responses/{rid}", f"/responses/{rid}?stream=true&starting_after=0"):
            other = call(keyed, "GET", path, key=OTHER)
            assert other.status == 404 and rid in error(other)["message"]
        assert call(keyed, "POST", f"/responses/{rid}/cancel", key=OTHER).status == 404
        follow = call(keyed, "POST", "/responses", {"model": "gpt-5", "input": "x",
                                                    "previous_response_id": rid}, key=OTHER)
        assert error(follow)["code"] == "previous_response_not_found"
    chained = call(keyed, "POST", "/responses", {"model": "gpt-5", "input": "x",
                                                 "previous_response_id": mine["id"]})
    assert chained.status == 200
    url = keyed.base_url.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers={"Authorization": f"Bearer {OTHER}"},
                 open_timeout=5) as conn:
        conn.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": "x",
                              "previous_response_id": mine["id"]}))
        event = json.loads(conn.recv(timeout=5))
        assert event["error"]["code"] == "previous_response_not_found"
