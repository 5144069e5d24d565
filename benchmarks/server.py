"""A tiny HTTP/1.1 server on 127.0.0.1 that serves pre-rendered bodies as fast as it can.

It runs in its own process (``python -m benchmarks.server``) so that serving never competes with
the client under test for the GIL. Not the scripted model: every byte is rendered once, up front,
and the same bytes go to every client. The first path segment picks the scenario; the rest is
the API path a client appends to its base URL (``/<scenario>/v1/responses``):

``r<N>``       Responses stream with N text deltas (``chat/completions``: Chat stream, N chunks)
``pause<ms>``  ``response.created``, then a pause of <ms> milliseconds, then the rest
``big<MB>``    a Responses stream of about <MB> megabytes, generated while it is sent
``wait<ms>``   a 3-delta Responses stream, sent after <ms> milliseconds (a model that takes
               its time: what a batch run waits on)
``/models``    a models list (any scenario), ``Content-Length`` framed

Streams use chunked transfer encoding, as the API does.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator

from . import bodies

HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
HTTP_CHUNK = 64 * 1024


def frame(parts: Iterable[bytes], size: int = HTTP_CHUNK) -> Iterator[bytes]:
    """Chunked transfer framing, at most ``size`` bytes of body per chunk."""
    for part in parts:
        for i in range(0, len(part), size):
            piece = part[i:i + size]
            yield b"%x\r\n%s\r\n" % (len(piece), piece)


@functools.lru_cache(maxsize=8)
def rendered(kind: str, n: int) -> bytes:
    body = bodies.chat_body(n) if kind == "chat" else bodies.responses_body(n)
    return HEAD + b"".join(frame([body])) + b"0\r\n\r\n"


def deltas_for_megabytes(mb: float) -> int:
    return max(1, int(mb * 1e6 / len(bodies.responses_delta(2))))


def _models() -> bytes:
    body = bodies.MODELS_BODY
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body))


MODELS = _models()
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def respond(conn: socket.socket, path: str) -> None:
    parts = path.split("?", 1)[0].strip("/").split("/")
    scenario, endpoint = parts[0], parts[-1]
    if endpoint == "models":
        conn.sendall(MODELS)
        return
    kind = "chat" if endpoint == "completions" else "responses"
    if scenario.startswith("r"):
        conn.sendall(rendered(kind, int(scenario[1:])))
    elif scenario.startswith("pause"):
        whole = bodies.responses_body(3)
        first = whole[:whole.index(b"\n\n") + 2]
        conn.sendall(HEAD + b"".join(frame([first])))
        time.sleep(int(scenario[5:]) / 1000)
        conn.sendall(b"".join(frame([whole[len(first):]])) + b"0\r\n\r\n")
    elif scenario.startswith("wait"):
        time.sleep(int(scenario[4:]) / 1000)
        conn.sendall(rendered(kind, 3))
    elif scenario.startswith("big"):
        conn.sendall(HEAD)
        deltas = deltas_for_megabytes(float(scenario[3:]))
        for piece in frame(bodies.iter_responses_body(deltas)):
            conn.sendall(piece)
        conn.sendall(b"0\r\n\r\n")
    else:
        conn.sendall(NOT_FOUND)


def serve_connection(conn: socket.socket) -> None:
    # A client that hangs up mid-body (a benchmark stopping early) is not an error here.
    with contextlib.suppress(OSError), conn:
        _serve(conn)


def _serve(conn: socket.socket) -> None:
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        head, _, buf = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection":
                close = value.strip().lower() == "close"
        while len(buf) < length:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        buf = buf[length:]
        respond(conn, lines[0].split(" ")[1])
        if close:
            return


def main() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    # Exit with the parent: it holds our stdin open and closes it (or dies).
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_connection, args=(conn,), daemon=True).start()


class BenchServer:
    """The server in a child process; ``url(scenario)`` is a base URL for a client."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> BenchServer:
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.server"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=_root())
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError("benchmark server did not start")
        self.port = int(line)
        return self

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}/v1"

    def warm(self, kind: str, n: int) -> None:
        """Render a body before timing starts (the first request would otherwise pay for it)."""
        path = "chat/completions" if kind == "chat" else "responses"
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(f"POST /r{n}/v1/{path} HTTP/1.1\r\nHost: x\r\n"
                         "Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
            while sock.recv(1 << 20):
                pass

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    main()
