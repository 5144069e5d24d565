"""One client WebSocket connection, as the Responses WebSocket wire uses it: opened through the
Client's :class:`codexapi.http.connect.Network` (proxy, TLS), upgraded with the ``websockets``
package's Sans-I/O protocol (which also writes every outgoing frame, masked, and negotiates
``permessage-deflate``), then read here straight off the socket.

Incoming frames are parsed by hand because a per-frame generator costs more than decoding the
event a frame carries (see ``benchmarks``); a compressed message goes through the negotiated
extension's own decoder. Every wait — the upgrade's head, each read — ends at a monotonic
time the caller gives, however the server drips its bytes (a ping a second, a fragment that
never ends): the caller turns that into its idle timeout or its deadline.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from codexapi import ReadTimeout, ResponseTooLarge, StreamError, TransportError
from codexapi.plugin_api import HeadError, Network, read_head, redact_url, status_of

#: Request headers that describe an HTTP body, or that the upgrade sets itself.
HTTP_ONLY = frozenset({"content-type", "content-length", "content-encoding", "accept",
                       "accept-encoding", "host", "connection", "upgrade",
                       "transfer-encoding", "te", "keep-alive", "sec-websocket-key",
                       "sec-websocket-version", "sec-websocket-extensions"})
#: What the ``websockets`` protocol logs to: nowhere. At DEBUG it would log every handshake
#: header (the credentials among them) and every frame.
_SILENT = logging.Logger("codexapi.websocket.protocol", logging.CRITICAL + 1)
#: The most of a refused upgrade's body kept (what the server said).
MAX_REFUSAL_BODY = 64 * 1024
_READ = 256 * 1024
#: The most one read asks for while a large frame is still arriving.
_BIG_READ = 4 * 1024 * 1024


def websocket_url(url: str) -> str:
    """``http(s)://…`` as ``ws(s)://…``."""
    if url.startswith("https://"):
        return "wss://" + url[len("https://"):]
    if url.startswith("http://"):
        return "ws://" + url[len("http://"):]
    return url


class Refused(Exception):
    """The server answered the upgrade with something other than a valid ``101``: its
    ``status`` (None when there was no usable status line), lower-case ``headers`` and the
    start of its ``body``."""

    def __init__(self, status: int | None, detail: str, headers: Mapping[str, str] | None
                 = None, body: bytes = b"") -> None:
        super().__init__(detail)
        self.status = status
        self.headers = dict(headers or {})
        self.body = body


class Closed(Exception):
    """The server closed the connection or sent a close frame (``code``, when it said)."""

    def __init__(self, detail: str, code: int | None = None) -> None:
        super().__init__(detail)
        self.code = code


class Connection:
    """One upgraded connection: sends text messages, reads complete text messages."""

    def __init__(self, sock: Any, protocol: Any, url: str, headers: dict[str, str],
                 rest: bytes, max_message: int) -> None:
        self.sock = sock
        self.protocol = protocol
        self.url = url
        #: The upgrade answer's headers (lower-case names).
        self.headers = headers
        #: The largest message (all fragments, decompressed) accepted:
        #: ``Provider.max_message_bytes``.
        self.max_message = max_message
        #: The negotiated permessage-deflate extension, or None.
        self.deflate: Any = next((e for e in protocol.extensions
                                  if e.name == "permessage-deflate"), None)
        #: What the server remembers of this connection's last completed turn (the wire's
        #: incremental input builds on it), or None.
        self.chain: Any = None
        #: Whether the upgrade's rate-limit headers were reported (once per connection).
        self.told_limits = False
        self._buf = rest
        #: How many bytes ``_buf`` must hold before the frame at its start is complete (0:
        #: unknown): a large frame's reads are joined once, not copied on every read.
        self._need = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._compressed = False
        #: An error met after some messages of a read: raised by the next read.
        self._pending: BaseException | None = None
        #: Whether a message of the last read may contain ``marker`` (one scan of the read's
        #: bytes instead of one per message: the hot path reads thousands per second).
        self.marked = False
        self.closed = False

    # --- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, network: Network, url: str, headers: Mapping[str, str],
             timeouts: tuple[float, float], until: float | None, max_message: int,
             extra: Mapping[str, str] | None = None, deflate: bool = True,
             limit: float | None = None) -> Connection:
        """Connect to ``url`` (``ws``/``wss``) and upgrade with ``headers`` (those of an HTTP
        request: the body's own are left out) plus ``extra``.

        ``timeouts`` are ``(connect, head)`` seconds; ``limit`` (seconds, or None) bounds the
        whole opening, connect, TLS and the upgrade's answer together (Codex's
        ``websocket_connect_timeout``); ``until`` (monotonic, or None) ends every wait too.
        Raises :class:`Refused` for any answer but a valid ``101``, and the TransportError of
        the failure otherwise (ConnectTimeout, ReadTimeout for an answer that did not arrive
        whole in time, DeadlineExceeded)."""
        from websockets.client import ClientProtocol
        from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
        from websockets.http11 import Response
        from websockets.uri import parse_uri

        connect, head_timeout = timeouts
        where = redact_url(url)
        opened_by = None if limit is None else time.monotonic() + limit
        sock = network.open_socket(url, connect if limit is None else min(connect, limit),
                                   until)
        try:
            protocol = ClientProtocol(
                parse_uri(url), max_size=max_message, logger=_SILENT,
                extensions=enable_client_permessage_deflate(None) if deflate else None)
            upgrade = protocol.connect()
            for name, value in headers.items():
                if name.lower() not in HTTP_ONLY:
                    upgrade.headers[name] = value
            for name, value in (extra or {}).items():
                upgrade.headers[name] = value
            protocol.send_request(upgrade)
            end = time.monotonic() + head_timeout
            for bound in (until, opened_by):
                if bound is not None and bound < end:
                    end = bound
            sock.settimeout(max(end - time.monotonic(), 0.001))
            sock.sendall(b"".join(protocol.data_to_send()))
            head, rest = read_head(sock, end, "the WebSocket upgrade's answer")
            status, line = status_of(head)
            if status != 101:
                answer_headers = _parse_headers(head)
                body = _refusal_body(sock, rest, answer_headers, end)
                raise Refused(status, line or "no status line", answer_headers, body)
            protocol.receive_data(head)
            answer = next((e for e in protocol.events_received() if isinstance(e, Response)),
                          None)
            failure = protocol.handshake_exc
            if failure is not None or answer is None:
                raise Refused(None, f"not a valid WebSocket upgrade: {failure}",
                              _parse_headers(head))
        except Refused:
            _close(sock)
            raise
        except TimeoutError:
            _close(sock)
            raise ReadTimeout(f"the WebSocket upgrade's answer from {where} did not arrive "
                              f"whole in time", url=where) from None
        except HeadError as exc:
            _close(sock)
            raise TransportError(f"the WebSocket upgrade of {where} failed: {exc}",
                                 url=where) from None
        except OSError as exc:
            _close(sock)
            raise TransportError(f"the WebSocket upgrade of {where} failed: {exc}",
                                 url=where) from None
        headers_in = {k.lower(): v for k, v in answer.headers.raw_items()}
        return cls(sock, protocol, url, headers_in, rest, max_message)

    # --- sending -------------------------------------------------------------------------
    def send_text(self, payload: bytes, until: float) -> None:
        """Send one text message (raises OSError, TimeoutError past ``until``)."""
        self.protocol.send_text(payload)
        self.sock.settimeout(max(until - time.monotonic(), 0.001))
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    # --- reading -------------------------------------------------------------------------
    #: What :attr:`marked` looks for: the wire's error frames.
    marker = b'"error"'

    def read_messages(self, until: float) -> list[bytes]:
        """The complete text messages of the next read (at least one), in order;
        :attr:`marked` says whether any of them may contain :attr:`marker`.

        Raises TimeoutError once monotonic time ``until`` passes without a complete message
        (pings and unfinished fragments do not count), :class:`Closed`, OSError, or a
        StreamError for what the server must not send."""
        out: list[bytes] = []
        if self._pending is not None:
            error, self._pending = self._pending, None
            self.close()
            raise error
        self.marked = False
        self._parse(out)
        sock = self.sock
        while not out:
            pending = [self._buf] if self._buf else []
            have = len(self._buf)
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no complete message in time")
                sock.settimeout(left)
                chunk = sock.recv(max(_READ, min(self._need - have, _BIG_READ)))
                if not chunk:
                    raise Closed("the server closed the connection")
                pending.append(chunk)
                have += len(chunk)
                if have >= self._need:
                    break
            self._buf = b"".join(pending) if len(pending) > 1 else chunk
            self._parse(out)
        return out

    def reusable(self) -> bool:
        """Whether a connection kept between turns is still good: nothing arrived while it
        sat idle but pings (answered here); a close, EOF or any message means it is not."""
        if self.closed or self._buf or self._parts or self._pending is not None:
            return False
        try:
            while _readable(self.sock):
                out: list[bytes] = []
                self.sock.settimeout(0.2)
                chunk = self.sock.recv(_READ)
                if not chunk:
                    return False
                self._buf += chunk
                self._parse(out)
                if out or self._pending is not None:
                    return False
        except (OSError, Closed, StreamError):
            return False
        return not self._buf and not self._parts

    def _parse(self, out: list[bytes]) -> None:
        try:
            self._parse_frames(out)
        except (Closed, StreamError) as exc:
            if not out:
                self.close()
                raise
            # The messages before it are delivered first; the next read raises it.
            self._pending = exc

    def _parse_frames(self, out: list[bytes]) -> None:
        buf = self._buf
        if self.marker in buf:
            self.marked = True
        pos = 0
        end = len(buf)
        append = out.append
        limit = self.max_message
        try:
            while end - pos >= 2:
                b0 = buf[pos]
                n = buf[pos + 1]
                # The commonest frame by far: a whole, unmasked, uncompressed text frame
                # under 64 KiB.
                if b0 == 0x81 and not self._parts:
                    if n < 126:
                        start = pos + 2
                    elif n == 126 and end - pos >= 4:
                        n = (buf[pos + 2] << 8) | buf[pos + 3]
                        start = pos + 4
                    else:
                        start = -1
                    if start >= 0 and n <= limit:  # else _frame refuses it
                        if end - start < n:
                            self._need = start - pos + n
                            break
                        pos = start + n
                        append(buf[start:pos])
                        continue
                self._need = 0
                pos = self._frame(buf, pos, end, out)
                if pos < 0:
                    pos = -pos - 1
                    break
            else:
                self._need = 0
        finally:
            self._buf = buf[pos:] if pos < end else b""

    def _frame(self, buf: bytes, pos: int, end: int, out: list[bytes]) -> int:
        """Any other frame at ``pos``: the position after it, or ``-pos - 1`` when it is not
        complete yet."""
        b0, b1 = buf[pos], buf[pos + 1]
        n = b1 & 0x7F
        head = 2
        if n == 126:
            if end - pos < 4:
                return -pos - 1
            n = (buf[pos + 2] << 8) | buf[pos + 3]
            head = 4
        elif n == 127:
            if end - pos < 10:
                return -pos - 1
            n = int.from_bytes(buf[pos + 2:pos + 10], "big")
            head = 10
        rsv1 = b0 & 0x40
        if b1 & 0x80 or b0 & 0x30 or (rsv1 and self.deflate is None):
            raise self._violation("a masked or extension-flagged frame from the server")
        if n > self.max_message:
            raise self._too_large(n)
        if end - pos < head + n:
            self._need = head + n
            return -pos - 1
        payload = buf[pos + head:pos + head + n]
        after = pos + head + n
        opcode = b0 & 0x0F
        fin = bool(b0 & 0x80)
        if opcode == 1 or opcode == 0:
            if (opcode == 0) != bool(self._parts):
                raise self._violation("a continuation frame with nothing to continue"
                                      if opcode == 0 else "a new message inside a fragmented one")
            if opcode == 1:
                self._compressed = bool(rsv1)
            elif rsv1:
                raise self._violation("a compressed continuation frame")
            if self._compressed:
                payload = self._inflate(opcode, payload, fin, bool(rsv1))
            self._size += len(payload)
            if self._size > self.max_message:
                raise self._too_large(self._size)
            self._parts.append(payload)
            if fin:
                if len(self._parts) > 1 or self._compressed:
                    # Its bytes were not all in this read's buffer as they are now.
                    message = b"".join(self._parts)
                    self.marked = self.marked or self.marker in message
                    out.append(message)
                else:
                    out.append(payload)
                self._parts, self._size = [], 0
        elif opcode == 2:
            raise StreamError("the server sent a binary WebSocket frame; Responses events come "
                              "as JSON text frames", retryable=False)
        elif opcode == 9:
            self.protocol.send_pong(payload)
            self.sock.sendall(b"".join(self.protocol.data_to_send()))
        elif opcode == 8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            reason = payload[2:].decode("utf-8", "replace")
            raise Closed(f"close code {code}" + (f" ({reason})" if reason else ""), code)
        elif opcode != 10:
            raise self._violation(f"a frame with unknown opcode {opcode}")
        return after

    def _inflate(self, opcode: int, payload: bytes, fin: bool, rsv1: bool) -> bytes:
        """A frame of a compressed message, decompressed by the negotiated extension (at
        most what the message bound leaves)."""
        from websockets.exceptions import PayloadTooBig, ProtocolError
        from websockets.frames import Frame, Opcode

        frame = Frame(Opcode(opcode), payload, fin, rsv1)
        try:
            data: bytes = bytes(self.deflate.decode(
                frame, max_size=max(self.max_message - self._size, 1)).data)
        except PayloadTooBig:
            raise self._too_large(self.max_message + 1) from None
        except ProtocolError as exc:
            raise self._violation(f"a compressed message that does not inflate ({exc})"
                                  ) from None
        return data

    def _too_large(self, size: int) -> ResponseTooLarge:
        self._parts, self._size = [], 0
        return ResponseTooLarge(
            f"a WebSocket message of {size} bytes or more from {redact_url(self.url)} passed "
            f"the bound of {self.max_message} bytes; raise Provider.max_message_bytes if the "
            "server's events really are this large", setting="max_message_bytes",
            limit=self.max_message)

    def _violation(self, what: str) -> StreamError:
        return StreamError(f"WebSocket protocol error from {redact_url(self.url)}: {what}",
                           retryable=False)

    def close(self) -> None:
        """Send a close frame if the socket takes it at once, and close the socket."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # closing must never raise
            self.protocol.send_close(1000)
            self.sock.settimeout(0.2)
            self.sock.sendall(b"".join(self.protocol.data_to_send()))
        _close(self.sock)


def _readable(sock: Any) -> bool:
    from urllib3.util.wait import wait_for_read  # poll(), so any descriptor number works

    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    return bool(wait_for_read(sock, timeout=0.0))


def _parse_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers


def _refusal_body(sock: Any, rest: bytes, headers: Mapping[str, str], end: float) -> bytes:
    """The start of a refused upgrade's body: what came with the head and, when the answer
    says how long it is, the rest of it (at most :data:`MAX_REFUSAL_BODY`), until ``end``."""
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        return rest[:MAX_REFUSAL_BODY]
    want = min(length, MAX_REFUSAL_BODY)
    parts = [rest]
    have = len(rest)
    with contextlib.suppress(OSError):
        while have < want:
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(want - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
    return b"".join(parts)[:want]


def _close(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.close()


__all__ = ["HTTP_ONLY", "Closed", "Connection", "Refused", "websocket_url"]
