"""Fuzzing ``codexapi serve --api-key``: generated raw requests (methods, paths, versions,
header sets, framings, bodies, WebSocket handshakes and frames) are thrown at a server in its
own process, and after each batch a good client must still get a correct answer within 1 s,
the server's memory and threads must stay bounded, and it must never print a traceback (an
exception no handler caught).

The slowest good answer, the peak memory and the example counts are printed at the end of
the module (run with ``-s`` to see them)."""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import json
import os
import re
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.serve_process import ServeProcess

pytestmark = pytest.mark.timeout(300)

KEY = "sk-fuzz-key-0123456789abcdef"
#: How long a raw connection is given to be answered before the fuzzer moves on.
READ_WAIT = 0.3
#: The good client's bound.
GOOD_WITHIN = 1.0
#: Growth of the server's memory allowed over its size after warming up (its request log
#: alone may hold 64 MiB of bodies).
MEMORY_BOUND = 160 * 1024 * 1024
HTTP_EXAMPLES = 300
WS_EXAMPLES = 150

FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


class Figures:
    """What the run measured, for the report."""

    def __init__(self) -> None:
        self.slowest = 0.0
        self.checks = 0
        self.peak_rss = 0
        self.baseline_rss = 0
        self.examples: dict[str, int] = {}
        #: Status codes of the answers the fuzzer read (101 for accepted upgrades).
        self.statuses: dict[int, int] = {}


FIGURES = Figures()


def proc_status(server: ServeProcess, field: str) -> int:
    assert server.proc is not None
    with open(f"/proc/{server.proc.pid}/status") as status:
        line = next(x for x in status if x.startswith(field + ":"))
    return int(line.split()[1])


@pytest.fixture(scope="module")
def target() -> Iterator[ServeProcess]:
    with ServeProcess("--api-key", KEY) as server:
        good_answer(server)  # warm up: imports, first threads
        good_answer(server)
        FIGURES.baseline_rss = server.rss()
        yield server
        errors = server.stderr()
    assert "Traceback" not in errors, errors[-3000:]
    print(f"\nserve fuzz: {FIGURES.examples} examples; {FIGURES.checks} good-client checks, "
          f"slowest {FIGURES.slowest * 1000:.1f} ms; server RSS "
          f"{FIGURES.baseline_rss / 2**20:.0f} MiB after warm-up, peak "
          f"{FIGURES.peak_rss / 2**20:.0f} MiB; answers by status "
          f"{dict(sorted(FIGURES.statuses.items()))}")


def good_answer(server: ServeProcess) -> float:
    """One correct request on a new connection; its answer must be right. Returns seconds."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("POST", "/v1/responses", json.dumps({"model": "gpt-5", "input": "ping"}),
                     {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    assert response.status == 200, data
    assert json.loads(data)["output"][-1]["content"][0]["text"] == "You said: ping"
    return elapsed


def check_server(server: ServeProcess) -> None:
    errors = server.stderr()
    assert "Traceback" not in errors, errors[-3000:]
    elapsed = good_answer(server)
    FIGURES.checks += 1
    FIGURES.slowest = max(FIGURES.slowest, elapsed)
    assert elapsed < GOOD_WITHIN, f"the good client waited {elapsed:.3f}s"
    rss = server.rss()
    FIGURES.peak_rss = max(FIGURES.peak_rss, rss)
    assert rss - FIGURES.baseline_rss < MEMORY_BOUND, f"server RSS {rss / 2**20:.0f} MiB"
    # Connections the fuzzer closed must not leave threads behind for long.
    deadline = time.monotonic() + 5
    while proc_status(server, "Threads") > 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc_status(server, "Threads") <= 40


def exchange(server: ServeProcess, data: bytes, then: bytes = b"") -> bytes:
    """Send ``data`` (and ``then``, once an answer started) on a new connection, end our side
    and read for a short while."""
    got = b""
    try:
        with socket.create_connection((server.host, server.port), timeout=2) as sock:
            sock.sendall(data)
            end = time.monotonic() + READ_WAIT
            if then:
                sock.settimeout(READ_WAIT)
                with contextlib.suppress(TimeoutError):
                    got = sock.recv(65536)
                sock.sendall(then)
            sock.shutdown(socket.SHUT_WR)
            while time.monotonic() < end:
                sock.settimeout(max(0.01, end - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
    except OSError:  # reset, refused write, timeout: all fine for a hostile request
        pass
    for status in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got):
        FIGURES.statuses[int(status)] = FIGURES.statuses.get(int(status), 0) + 1
    return got


# -- strategies ------------------------------------------------------------------------------

def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any],
           odds: int = 5) -> st.SearchStrategy[Any]:
    """``common``, and ``rare`` about once in ``odds`` draws (on a value away from the bounds,
    which hypothesis draws more often than the others)."""
    return st.integers(0, odds).flatmap(lambda n: rare if n == 1 else common)


TOKEN = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                "-_.!~*'()%+"), min_size=1, max_size=12)
PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
METHODS = mostly(st.sampled_from(["POST"] * 4 + ["GET"] * 3 + ["DELETE", "HEAD"]),
                 st.one_of(st.sampled_from(["PUT", "OPTIONS", "PATCH", "TRACE", "CONNECT"]),
                           TOKEN), odds=6)
PATHS = mostly(
    st.sampled_from(["/v1/responses"] * 4 + [
        "/v1/responses/compact", "/v1/chat/completions", "/v1/chat/completions",
        "/v1/models", "/v1/models/gpt-5", "/v1/responses/resp_x",
        "/v1/responses/resp_x/cancel", "/v1/responses/resp_x?stream=true&starting_after=x",
        "/v1/models?client_version=0.171.0", "/responses"]),
    st.one_of(st.sampled_from(["/", "*", "//v1//responses", "/v1/../v1/models",
                               "http://x/v1/models", "/v1/responses/%00", ""]),
              PRINTABLE.map(lambda s: "/" + s.replace(" ", "")))).map(str)
VERSIONS = mostly(st.just("HTTP/1.1"), st.sampled_from(
    ["HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1", "FOO/1.1", "HTTP/1.1 x"]), odds=8)
AUTH = mostly(st.sampled_from([[("Authorization", f"Bearer {KEY}")], [("api-key", KEY)]]),
              st.sampled_from([
                  [], [("Authorization", "Bearer sk-wrong-0000000000000")],
                  [("Authorization", "Basic " + base64.b64encode(KEY.encode()).decode())],
                  [("Authorization", f"Bearer {KEY}"), ("Authorization", "Bearer other")],
                  [("Authorization", "Bearer")], [("Authorization", f"bearer   {KEY}  ")],
                  [("Authorization", f"Bearer {KEY}\x00")]]), odds=4)
LENGTHS = st.one_of(st.integers(0, 4096).map(str), st.sampled_from(
    ["", "-1", "+5", "0x10", "1e3", "99999999999999999999", "5, 6", "٣", " 7 "]))
EXTRA_HEADER = st.one_of(
    st.tuples(st.just("Content-Length"), LENGTHS),
    st.tuples(st.just("Transfer-Encoding"),
              st.sampled_from(["chunked", "gzip", "identity", "chunked, chunked", "CHUNKED",
                               "gzip, chunked", "chunked, gzip", ""])),
    st.tuples(st.just("Content-Encoding"),
              st.sampled_from(["gzip", "deflate", "zstd", "br", "identity", "x"])),
    st.tuples(st.just("Expect"), st.sampled_from(["100-continue", "200-ok"])),
    st.tuples(st.just("Connection"), st.sampled_from(["close", "keep-alive", "Upgrade"])),
    st.tuples(st.just("Upgrade"), st.sampled_from(["websocket", "h2c", "WebSocket"])),
    st.tuples(st.just("x-codexapi-fault"),
              st.sampled_from(["500", "429:1", "drop@2", "reset@1", "stall:0.2@1", "garbage",
                               "500x1", "nonsense!!", "drop@0"])),
    st.tuples(st.just("x-codex-turn-state"), PRINTABLE),
    st.tuples(TOKEN, PRINTABLE),
    st.tuples(st.just("X-Long"), st.integers(1000, 70000).map(lambda n: "a" * n)),
)


def json_request() -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                       PRINTABLE)
    anything = st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(PRINTABLE, inner, max_size=4)),
        max_leaves=20)
    input_items = st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["message", "function_call_output", "function_call",
                                  "reasoning", "compaction_trigger", "x"])},
        optional={"role": st.sampled_from(["user", "assistant", "system", "x"]),
                  "content": st.one_of(PRINTABLE, anything), "call_id": PRINTABLE,
                  "output": anything, "name": PRINTABLE, "arguments": PRINTABLE}), max_size=4)
    tools = st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["function", "custom", "web_search", "namespace", "x"])},
        optional={"name": PRINTABLE, "parameters": anything, "tools": anything}), max_size=3)
    optional = {"stream": st.booleans(), "background": st.booleans(), "store": st.booleans(),
                "tools": st.one_of(tools, anything), "text": anything,
                "previous_response_id": st.one_of(st.just("resp_x"), anything),
                "reasoning": anything, "metadata": anything, "include": anything,
                "messages": anything, "generate": st.booleans()}
    valid = st.fixed_dictionaries(
        {"model": mostly(st.just("gpt-5"), st.sampled_from(
            ["fault:500", "fault:drop@1", "fault:stall:0.1@1", "fault:429x1:1"])),
         "input": st.one_of(PRINTABLE, input_items),
         "messages": st.lists(st.fixed_dictionaries(
             {"role": st.sampled_from(["user", "system", "tool"]), "content": PRINTABLE}),
             max_size=3)},
        optional={k: v for k, v in optional.items() if k != "messages"})
    loose = st.fixed_dictionaries({}, optional={"model": anything, "input": anything,
                                                **optional})
    return mostly(valid, st.one_of(loose, anything), odds=3)


def deep(depth: int, kind: str) -> bytes:
    return (b"[" * depth + b"]" * depth) if kind == "[" else (
        b'{"a":' * depth + b"1" + b"}" * depth)


BODIES = mostly(json_request().map(lambda v: json.dumps(v).encode()), st.one_of(
    st.just(b""),
    st.binary(max_size=2048),
    json_request().map(lambda v: json.dumps(v).encode()),
    st.tuples(st.integers(100, 200_000), st.sampled_from("[{")).map(lambda t: deep(*t)),
    st.integers(1000, 300_000).map(
        lambda n: b'{"model": "gpt-5", "input": "' + b"x" * n + b'"}'),
    json_request().map(lambda v: gzip.compress(json.dumps(v).encode())),
    st.binary(max_size=512).map(gzip.compress),
), odds=2)


@st.composite
def framed(draw: st.DrawFn) -> tuple[list[tuple[str, str]], bytes]:
    """Headers for a body and the body as sent: by Content-Length (true or not), chunked
    (well-formed or not), or both."""
    body = draw(BODIES)
    how = draw(mostly(st.just("length"), st.sampled_from(
        ["chunked", "chunked", "bad-chunked", "none", "both", "lie"]), odds=2))
    if how == "length":
        return [("Content-Length", str(len(body)))], body
    if how == "lie":
        return [("Content-Length", str(draw(st.integers(0, 2 * len(body) + 10))))], body
    if how == "none":
        return [], body
    size = draw(st.integers(1, 4096))
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    sent = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    if how == "bad-chunked":
        cut = draw(st.integers(0, len(sent)))
        sent = sent[:cut] + draw(st.binary(max_size=20)) + sent[cut:]
    headers = [("Transfer-Encoding", "chunked")]
    if how == "both":
        headers.append(("Content-Length", str(len(body))))
    return headers, sent


@st.composite
def http_request(draw: st.DrawFn) -> bytes:
    method, path, version = draw(METHODS), draw(PATHS), draw(VERSIONS)
    headers = [("Host", "127.0.0.1"), *draw(AUTH)]
    body_headers, body = draw(framed())
    headers += body_headers + draw(st.lists(EXTRA_HEADER, max_size=3))
    headers.append(("Content-Type", "application/json"))
    lines = [f"{method} {path} {version}"] + [f"{k}: {v}" for k, v in headers]
    if draw(st.integers(0, 12)) == 3:  # a header line without a colon, or folded
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(
            ["no colon here", " folded continuation", ": empty name", "\x00bad: x"])))
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1", "replace") + body


def ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


@st.composite
def handshake(draw: st.DrawFn) -> bytes:
    headers = [("Host", "127.0.0.1"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    headers += draw(AUTH)
    headers.append(("Sec-WebSocket-Key", draw(mostly(st.just(ws_key()), PRINTABLE))))
    headers.append(("Sec-WebSocket-Version", draw(mostly(st.just("13"), st.sampled_from(
        ["8", "", "13, 8"])))))
    if draw(st.booleans()):
        headers.append(("Sec-WebSocket-Extensions", draw(st.sampled_from(
            ["permessage-deflate; client_max_window_bits", "permessage-deflate; x=1",
             "nonsense"]))))
    if draw(st.integers(0, 5)) == 3:
        headers.append(("Content-Length", draw(LENGTHS)))
    path = draw(mostly(st.just("/v1/responses"), st.sampled_from(
        ["/v1/models", "/responses", "/x"])))
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def frame(opcode: int, payload: bytes, fin: bool = True, masked: bool = True,
          rsv: int = 0, claimed: int | None = None) -> bytes:
    """A client WebSocket frame; ``claimed`` lies about the payload length."""
    length = len(payload) if claimed is None else claimed
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", min(length, 2**63 - 1))
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


TURN = json_request().map(lambda v: json.dumps(
    {"type": "response.create", **v} if isinstance(v, dict) else v).encode())
PAYLOADS = st.one_of(
    TURN, st.binary(max_size=300),
    st.just(json.dumps({"type": "response.create", "model": "gpt-5", "input": "hi"}).encode()),
    st.just(b'{"type": "response.processed"}'),
    st.tuples(st.integers(100, 50_000), st.sampled_from("[{")).map(lambda t: deep(*t)),
    st.integers(70_000, 200_000).map(lambda n: b'{"type": "response.create", "model": "m", '
                                     b'"input": "' + b"w" * n + b'"}'))


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        payload = draw(PAYLOADS)
        opcode = draw(st.sampled_from([1] * 6 + [0, 2, 8, 9, 10, 3, 11, 15]))
        if opcode >= 8:
            payload = payload[:125]
        lie = draw(st.sampled_from([None] * 8 + [0, 5, 2**31, 2**40]))
        out += frame(opcode, payload, fin=draw(st.sampled_from([True] * 5 + [False])),
                     masked=draw(st.sampled_from([True] * 9 + [False])),
                     rsv=draw(st.sampled_from([0] * 8 + [4, 2, 1])), claimed=lie)
        if draw(st.integers(0, 6)) == 3:
            out += draw(st.binary(max_size=40))  # garbage between frames
    return out


def count(name: str) -> None:
    FIGURES.examples[name] = FIGURES.examples.get(name, 0) + 1


# -- the tests -------------------------------------------------------------------------------


@settings(FUZZ, max_examples=HTTP_EXAMPLES)
@given(batch=st.lists(st.tuples(http_request(), st.booleans()), min_size=1, max_size=3))
def test_generated_requests_leave_the_server_answering(target: ServeProcess,
                                                       batch: list[tuple[bytes, bool]]) -> None:
    count("http")
    pipelined = b"".join(data for data, together in batch if together)
    for data, together in batch:
        if not together:
            exchange(target, data)
    if pipelined:
        exchange(target, pipelined)
    check_server(target)


@settings(FUZZ, max_examples=WS_EXAMPLES)
@given(head=handshake(), data=frames())
def test_generated_websocket_sessions_leave_the_server_answering(
        target: ServeProcess, head: bytes, data: bytes) -> None:
    count("websocket")
    got = exchange(target, head, then=data)
    if got.startswith(b"HTTP/1.1 101 ") and got.split(b"\r\n\r\n", 1)[1]:
        count("websocket sessions the server sent frames on")
    check_server(target)
