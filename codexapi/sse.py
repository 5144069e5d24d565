"""Incremental decoder for ``text/event-stream`` bodies (WHATWG HTML, "server-sent events").

Bytes go in as they arrive from the network, in chunks split anywhere (inside a line, inside
a CRLF, inside a UTF-8 sequence); complete messages come out. Line ends may be LF, CR or CRLF;
a leading BOM is dropped; comments and unknown fields are ignored; a final message that is not
followed by a blank line is still delivered by :meth:`Decoder.close` (servers that close the
connection right after the last ``data:`` line exist, and losing that event would be worse).

This is the hot path: one pass over the bytes, no per-event allocations beyond the message.
"""

from __future__ import annotations

_BOM = b"\xef\xbb\xbf"


class SseMessage:
    """One dispatched event: ``event`` type (default ``"message"``), ``data``, ``id``, ``retry``."""

    __slots__ = ("data", "event", "id", "retry")

    def __init__(
        self, data: str, event: str = "message", id: str | None = None, retry: int | None = None
    ) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SseMessage) and (
            (self.data, self.event, self.id, self.retry)
            == (other.data, other.event, other.id, other.retry)
        )

    def __hash__(self) -> int:
        return hash((self.data, self.event, self.id, self.retry))

    def __repr__(self) -> str:
        return (
            f"SseMessage(event={self.event!r}, data={self.data!r}, id={self.id!r}, "
            f"retry={self.retry!r})"
        )


class Decoder:
    """Feed bytes with :meth:`feed`, get messages; call :meth:`close` at end of body."""

    __slots__ = ("_buf", "_data", "_event", "_last_id", "_retry", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None

    @property
    def last_event_id(self) -> str | None:
        """The last ``id`` seen, for a reconnecting client's ``Last-Event-ID``."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The server's last requested reconnection time in milliseconds."""
        return self._retry

    def feed(self, chunk: bytes) -> list[SseMessage]:
        """Consume ``chunk``; return every message it completed, in order."""
        if not chunk:
            return []
        if self._skip_lf:
            # The previous chunk ended in CR: a LF here is the second half of that CRLF.
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._buf = buf
            return []
        self._buf = buf[cut + 1 :]
        return self._lines(buf[:cut].decode("utf-8", "replace").split("\n"))

    def close(self) -> list[SseMessage]:
        """End of body: deliver a last message that had no terminating blank line."""
        lines: list[str] = []
        if self._buf:
            buf, self._buf = self._buf, b""
            if not self._started and buf.startswith(_BOM):
                buf = buf[3:]
            lines.append(buf.decode("utf-8", "replace"))
        self._started = True
        lines.append("")
        return self._lines(lines)

    def _lines(self, lines: list[str]) -> list[SseMessage]:
        out: list[SseMessage] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    out.append(
                        SseMessage("\n".join(data), self._event or "message", self._last_id,
                                   self._retry)
                    )
                    data.clear()
                self._event = ""
                continue
            # Fast path for the two fields that make up nearly every line.
            if line.startswith("data: "):
                data.append(line[6:])
                continue
            if line[0] == ":":
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
        return out


def iter_messages(chunks: list[bytes] | tuple[bytes, ...]) -> list[SseMessage]:
    """Decode a whole body given as chunks (tests, replays)."""
    dec = Decoder()
    out: list[SseMessage] = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
    out.extend(dec.close())
    return out
