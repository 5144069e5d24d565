"""Issue 28 targets 1 and 4: each wire end to end beside its own raw ceiling, and what a long
conversation sends.

The ceilings read the same bytes from the same local servers as the client does and do the
least any client must: read the body, find each event, parse its JSON with orjson, and build
nothing else (no event objects, no validation past the parse).

- Responses over SSE and Chat: urllib3 ``read1`` + ``split`` into lines + ``orjson.loads`` per
  ``data:`` line (the Chat stream's ``[DONE]`` is counted, not parsed).
- Responses over WebSocket: the upgrade by the ``websockets`` Sans-I/O protocol, then the
  frames read straight off the socket (header, length, payload) with ``orjson.loads`` per text
  frame; the connection is kept between turns, as the wire keeps it. Beside it, for
  information, the ``websockets`` library's own sync client (``recv(decode=False)``, orjson
  per message): much slower than the socket loop, so it is no ceiling.

Each fraction is the median of paired, turn-about runs (see :func:`cases.paired`): codexapi's
time over the ceiling's in the same turn, the order reversed every other turn.

The conversation case drives what ``codexapi chat --store`` does (``cli.conversation``:
``store=True`` and ``previous_response_id``, only the new message sent) for 50 turns of about
2 KB each (a 1 KB message and the scripted model's 1 KB echo) against the embedded server, and
counts the bytes the client sends per turn (request line, headers and body) through a counting
TCP relay; beside it, the same conversation resent whole each turn.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from . import bodies, clients
from .cases import Case, Settings, Target, WsBenchServer, count, paired
from .server import BenchServer

#: Issue 28 target 1: the fraction of its raw ceiling each wire reaches end to end.
GOALS = {"responses": 0.85, "chat": 0.8, "websocket": 0.8}

_POOLS: dict[str, Any] = {}


def _pairs(s: Settings) -> int:
    return 3 if s.quick else 40


# --- the raw ceilings ---------------------------------------------------------------------------

def raw_sse(url: str, path: str) -> int:
    """urllib3 ``read1`` + one ``orjson.loads`` per ``data:`` line: what any SSE client must
    at least do. Returns the number of ``data:`` lines (events)."""
    import orjson
    import urllib3

    pool = _POOLS.setdefault(url, urllib3.PoolManager())
    resp = pool.request("POST", f"{url}/{path}", body=b"{}", preload_content=False,
                        headers={"Content-Type": "application/json"})
    n = 0
    rest = b""
    loads = orjson.loads
    while True:
        chunk = resp.read1(65536)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.startswith(b"data: "):
                if line != b"data: [DONE]":
                    loads(line[6:])
                n += 1
    resp.release_conn()
    return n


class RawWebSocket:
    """One kept connection; :meth:`turn` sends ``response.create`` and reads frames off the
    socket until ``response.completed``, with one ``orjson.loads`` per frame."""

    def __init__(self, url: str) -> None:
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        parts = parse_uri(url)
        self.sock = socket.create_connection((parts.host, parts.port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.protocol.send_request(self.protocol.connect())
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the benchmark WebSocket server closed during the upgrade")
            head += chunk
        end = head.index(b"\r\n\r\n") + 4
        self.protocol.receive_data(head[:end])
        self.protocol.events_received()
        if self.protocol.handshake_exc is not None:
            raise self.protocol.handshake_exc
        self.rest = head[end:]

    def turn(self) -> int:
        import orjson

        self.protocol.send_text(b'{"type":"response.create"}')
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        loads = orjson.loads
        recv = self.sock.recv
        buf, pos, n = self.rest, 0, 0
        while True:
            chunk = recv(262144)
            if not chunk:
                raise RuntimeError("the benchmark WebSocket server closed mid-turn")
            buf = buf[pos:] + chunk if pos < len(buf) else chunk
            pos, end = 0, len(buf)
            while end - pos >= 2:
                size = buf[pos + 1] & 0x7F
                head = 2
                if size == 126:
                    if end - pos < 4:
                        break
                    size, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
                elif size == 127:
                    if end - pos < 10:
                        break
                    size, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
                if end - pos < head + size:
                    break
                event = loads(buf[pos + head:pos + head + size])
                pos += head + size
                n += 1
                if event["type"] == "response.completed":
                    self.rest = buf[pos:]
                    return n

    def close(self) -> None:
        self.sock.close()


class LibraryWebSocket:
    """The ``websockets`` library's sync client: ``recv(decode=False)`` + orjson per message."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.conn = connect(url, compression=None, max_size=None, open_timeout=30)

    def turn(self) -> int:
        import orjson

        self.conn.send(b'{"type":"response.create"}', text=True)
        loads, recv, n = orjson.loads, self.conn.recv, 0
        while True:
            n += 1
            if loads(recv(60, decode=False))["type"] == "response.completed":
                return n

    def close(self) -> None:
        self.conn.close()


# --- target 1: each wire beside its ceiling -----------------------------------------------------

def _fraction(case: Case, s: Settings, wire: str, size: int, fns: dict[str, Callable[[], int]],
              ceiling: str, label: str) -> None:
    """Fill ``case`` from paired runs of ``fns`` (the raw ceiling first, codexapi second)."""
    turns = _pairs(s)
    got = paired(fns, turns)
    (_, t_raw, n_raw), (ratio, t_cx, n_cx) = got["raw"], got["codexapi"]
    fraction = 1 / ratio
    case.codexapi = f"{size / t_cx / 1e6:,.1f} MB/s, {n_cx / t_cx:,.0f} ev/s"
    case.openai = f"n/a (ceiling: {ceiling}, {n_raw / t_raw:,.0f} ev/s)"
    case.ratio = f"{fraction:.2f} of the raw ceiling (median of {turns} paired runs)"
    case.metrics = {"bytes": size, "pairs": turns, "fraction_of_raw": fraction,
                    "codexapi": {"seconds": t_cx, "events": n_cx},
                    "raw": {"seconds": t_raw, "events": n_raw}}
    for name, (r, t, n) in got.items():
        if name not in ("raw", "codexapi"):
            case.metrics[name] = {"seconds": t, "events": n, "fraction_of_raw": 1 / r}
    goal = GOALS[wire]
    case.targets.append(Target(f"{label} end to end >= {goal:.0%} of raw {ceiling}",
                               f">= {goal:.0%}", fraction, fraction >= goal))


def ceiling_sse(s: Settings, server: BenchServer, chat: bool) -> Case:
    kind = "chat" if chat else "responses"
    unit = "chunks" if chat else "deltas"
    case = Case(f"ceiling_{kind}", f"{'Chat' if chat else 'Responses SSE'} end to end beside its "
                f"raw ceiling ({s.deltas:,} {unit}, 127.0.0.1)")
    server.warm(kind, s.deltas)
    url = server.url(f"r{s.deltas}")
    size = len(bodies.chat_body(s.deltas) if chat else bodies.responses_body(s.deltas))
    cx = clients.codexapi_client(url, chat)
    path = "chat/completions" if chat else "responses"
    try:
        _fraction(case, s, kind, size, {
            "raw": lambda: raw_sse(url, path),
            "codexapi": lambda: count(clients.codexapi_stream(cx))}, "urllib3 + orjson",
            "Chat" if chat else "Responses SSE")
    finally:
        cx.close()
    return case


def ceiling_websocket(s: Settings, server: BenchServer) -> Case:
    case = Case("ceiling_websocket", f"Responses over WebSocket end to end beside its raw "
                f"ceiling ({s.deltas:,} deltas, 127.0.0.1)")
    size = len(bodies.responses_body(s.deltas))
    with WsBenchServer() as ws, contextlib.ExitStack() as stack:
        url = ws.url(f"r{s.deltas}")
        raw = RawWebSocket(url.replace("http://", "ws://") + "/responses")
        stack.callback(raw.close)
        library = LibraryWebSocket(url.replace("http://", "ws://") + "/responses")
        stack.callback(library.close)
        cx = clients.codexapi_client(url, wire="responses_websocket")
        stack.callback(cx.close)
        _fraction(case, s, "websocket", size, {
            "raw": raw.turn, "codexapi": lambda: count(clients.codexapi_stream(cx)),
            "websockets_library": library.turn}, "socket + orjson", "WebSocket")
    lib = case.metrics["websockets_library"]
    case.openai += (f"; the websockets library's sync client: "
                    f"{lib['events'] / lib['seconds']:,.0f} ev/s")
    return case


# --- target 4: a long conversation costs what is new --------------------------------------------

class CountingRelay:
    """A TCP relay on 127.0.0.1 in front of ``port`` that counts the bytes clients send."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.sent = 0
        #: Bytes of WebSocket upgrade requests (not in ``sent``).
        self.upgrades = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=60)
                self._socks += [client, server]
                threading.Thread(target=self._pump, args=(client, server, True),
                                 daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, False),
                                 daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        head = b""  # a WebSocket upgrade's request head, counted apart from the turns
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if counted:
                    opening = not head and data.startswith(b"GET ")
                    if opening or (head and not head.endswith(b"\r\n\r\n")):
                        end = data.find(b"\r\n\r\n")
                        cut = len(data) if end < 0 else end + 4
                        head += data[:cut]
                        self.upgrades += cut
                        counted_part = len(data) - cut
                    else:
                        counted_part = len(data)
                    with self._lock:
                        self.sent += counted_part
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._socks:
            sock.close()


def _message(turn: int) -> dict[str, Any]:
    from codexapi.cli.conversation import user_message

    # ~1 KB of words; the scripted model echoes it ("You said: ..."), so ~2 KB a turn.
    words = " ".join(f"{bodies.WORDS[(turn + i) % len(bodies.WORDS)].strip()}{i}"
                     for i in range(130))
    return user_message(f"turn {turn}: {words}")


def _http_turns(client: Any, relay: CountingRelay, base_url: str, turns: int, store: bool
                ) -> Iterator[int]:
    """Per turn, the bytes the client sent: ``codexapi chat``'s conversation, with ``--store``
    or without it (the whole history each turn)."""
    from codexapi.cli.conversation import Conversation

    conv = Conversation.new("gpt-5", "You are terse.", base_url, "responses", store=store)
    for turn in range(1, turns + 1):
        message = _message(turn)
        before = relay.sent
        result = client.stream(conv.request(message, base_url)).collect()
        yield relay.sent - before
        conv.add_turn(message, result.items, result.response_id)


def _websocket_turns(client: Any, relay: CountingRelay, turns: int) -> Iterator[int]:
    """Per turn, the bytes the client sent over one WebSocket session: each request is the
    previous one, its response's items and a new message (what a tool loop or an SDK
    conversation sends); the wire sends only what is new when incremental input is on."""
    from codexapi import ResponsesRequest, SessionContext

    session = SessionContext(session_id="bench-conversation")
    items: list[Any] = []
    for turn in range(1, turns + 1):
        items = [*items, _message(turn)]
        before = relay.sent
        result = client.create(ResponsesRequest(model="gpt-5", instructions="You are terse.",
                                                input=items), session=session)
        yield relay.sent - before
        items = [*items, *result.items]


def conversation(s: Settings) -> Case:
    from codexapi import Client, Provider, RetryPolicy
    from codexapi.server import EmbeddedServer

    turns = 50
    case = Case("conversation", f"a {turns}-turn conversation, ~2 KB a turn: bytes sent")
    with EmbeddedServer() as server, contextlib.closing(CountingRelay(server.port)) as relay:
        base_url = f"http://127.0.0.1:{relay.port}/v1"
        provider = Provider(name="bench", base_url=base_url, retry=RetryPolicy(max_attempts=1))
        with Client(provider, load_entrypoints=False) as client:
            stored = list(_http_turns(client, relay, base_url, turns, store=True))
            whole = list(_http_turns(client, relay, base_url, turns, store=False))
        sockets = {}
        for incremental in (True, False):
            ws = Provider(name="bench-ws", base_url=base_url, wire="responses_websocket",
                          retry=RetryPolicy(max_attempts=1),
                          websocket_incremental_input=incremental)
            with Client(ws, load_entrypoints=False) as client:
                before = relay.upgrades
                sockets[incremental] = list(_websocket_turns(client, relay, turns))
                upgrade = relay.upgrades - before
    ratio = stored[-1] / stored[0]
    inc, full = sockets[True], sockets[False]
    ws_ratio = inc[-1] / inc[0]
    case.codexapi = (f"HTTP store + previous_response_id: turn 1 {stored[0]:,} B, "
                     f"turn {turns} {stored[-1]:,} B; WebSocket incremental input: turn 1 "
                     f"{inc[0]:,} B, turn {turns} {inc[-1]:,} B (frames as sent, "
                     f"permessage-deflate on; the upgrade's {upgrade:,} B apart)")
    case.openai = (f"n/a (the whole history resent: HTTP turn 1 {whole[0]:,} B, turn {turns} "
                   f"{whole[-1]:,} B; WebSocket without incremental input turn 1 {full[0]:,} B, "
                   f"turn {turns} {full[-1]:,} B)")
    case.ratio = (f"HTTP turn {turns} {ratio:.2f}x turn 1, WebSocket {ws_ratio:.2f}x (whole "
                  f"history: {whole[-1] / whole[0]:.1f}x, {full[-1] / full[0]:.1f}x)")
    case.metrics = {"turns": turns, "http_store": stored, "http_whole": whole,
                    "websocket": inc, "websocket_whole": full}
    case.targets.append(Target(f"HTTP (store): turn {turns} <= 1.5x the bytes of turn 1",
                               "<= 1.5x", ratio, ratio <= 1.5))
    case.targets.append(Target(f"WebSocket (incremental): turn {turns} <= 1.5x the bytes of "
                               "turn 1", "<= 1.5x", ws_ratio, ws_ratio <= 1.5))
    return case


def ceiling_cases(s: Settings, server: BenchServer, want: Callable[[str], bool],
                  progress: Callable[[str], None]) -> list[Case]:
    out: list[Case] = []
    runs: tuple[tuple[str, Callable[[], Case]], ...] = (
        ("ceiling_responses", lambda: ceiling_sse(s, server, chat=False)),
        ("ceiling_chat", lambda: ceiling_sse(s, server, chat=True)),
        ("ceiling_websocket", lambda: ceiling_websocket(s, server)),
        ("conversation", lambda: conversation(s)))
    for name, run in runs:
        if want(name):
            progress(name)
            out.append(run())
    return out
