"""A tiny Responses-over-WebSocket server on 127.0.0.1 for the benchmarks: it answers the
upgrade of ``/<scenario>/v1/responses`` and, for each ``response.create`` frame, sends the
same events the HTTP benchmark server streams (``r<N>``: N text deltas), as pre-rendered text
frames, as fast as it can. It runs in its own process (``python -m benchmarks.ws_server``),
like the HTTP one, so serving never competes with the client for the GIL.

The handshake and frames are written by hand on purpose: the server must cost nothing next to
the client under test. No compression (``permessage-deflate`` is not offered), unmasked server
frames as RFC 6455 requires.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import socket
import struct
import sys
import threading
import time

from . import bodies

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


@functools.lru_cache(maxsize=8)
def rendered(n: int) -> bytes:
    """The SSE body's events (its ``data:`` payloads), each as one text frame."""
    body = bodies.responses_body(n)
    frames = [ws_frame(line[6:]) for line in body.split(b"\n") if line.startswith(b"data: ")]
    return b"".join(frames)


def _read_frame(sock: socket.socket, buf: bytearray) -> bytes | None:
    """One (masked, client) frame's payload; None when the client went away."""
    def need(k: int) -> bool:
        while len(buf) < k:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            buf.extend(chunk)
        return True

    if not need(2):
        return None
    n = buf[1] & 0x7F
    pos = 2
    if n == 126:
        if not need(4):
            return None
        n, pos = struct.unpack("!H", bytes(buf[2:4]))[0], 4
    elif n == 127:
        if not need(10):
            return None
        n, pos = struct.unpack("!Q", bytes(buf[2:10]))[0], 10
    if not need(pos + 4 + n):
        return None
    mask = bytes(buf[pos:pos + 4])
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[pos + 4:pos + 4 + n]))
    opcode = buf[0] & 0x0F
    del buf[:pos + 4 + n]
    return None if opcode == 8 else data


def handle(conn: socket.socket) -> None:
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        path = lines[0].split(b" ")[1].decode()
        key = next(line.split(b":", 1)[1].strip() for line in lines[1:]
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        scenario = path.strip("/").split("/")[0]
        frames = rendered(int(scenario[1:]))
        buf = bytearray(rest)
        while _read_frame(conn, buf) is not None:
            conn.sendall(frames)


def _exit_with(parent: int) -> None:
    # A killed benchmark must not leave this server behind.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main() -> None:
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
