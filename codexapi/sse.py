"""Incremental decoder for ``text/event-stream`` bodies (WHATWG HTML, "server-sent events").

Bytes go in as they arrive from the network, in chunks split anywhere (inside a line, inside
a CRLF, inside a UTF-8 sequence); complete messages come out. Line ends may be LF, CR or CRLF;
a leading BOM is dropped; comments and unknown fields are ignored; a final message that is not
followed by a blank line is still delivered by :meth:`Decoder.close` (servers that close the
connection right after the last ``data:`` line exist, and losing that event would be worse).

This is the hot path: runs of ordinary messages are matched by the regex engine in one pass;
only the messages themselves are allocated.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from .decoding import MessageDecoder
    from .events import Event

from .errors import ResponseTooLarge

_BOM = b"\xef\xbb\xbf"
#: ``retry:`` values longer than this are ignored: no server means a reconnect delay of more
#: than 10**18 ms, and ``int()`` refuses strings past 4,300 digits with a bare ValueError.
_MAX_RETRY_DIGITS = 18
#: The default bound on one message (``Provider.max_message_bytes``).
DEFAULT_MAX_MESSAGE = 32 * 1024 * 1024


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


# The shape of nearly every block real servers send: an optional ``event:`` line, one ``data:``
# line, a blank line. A run of complete blocks that is all of this shape is decoded by the
# regex engine in one pass; anything else (comments, ``id``, ``retry``, multi-line data, no space
# after the colon) goes through the line-by-line parser, which gives the same messages.
#
# The pass is a ``split``: its pieces alternate between what lies between two matches and
# each match's groups, so the run is all simple blocks exactly when every in-between piece is
# empty, and the groups come out as one list to slice, with no tuple per message.
# The repeats are possessive (``*+``): a line never needs to give back what it matched, and a
# read of many messages fails a ``fullmatch`` at once instead of backtracking through one.
_SIMPLE_FIELDS = re.compile(rb"(?:event: ([^\n]*+)\n)?data: ([^\n]*+)\n\n")
# The same blocks, the data alone (feed_data needs no event names).
_SIMPLE_DATA = re.compile(rb"(?:event: [^\n]*+\n)?data: ([^\n]*+)\n\n")


def _simple_data(blocks: bytes) -> list[bytes] | None:
    """The data of each block when ``blocks`` (complete blocks: it ends with a blank line) is
    all simple blocks, else None."""
    if blocks[:6] == b"data: ":
        # Blocks of one data line each (Chat streams): the data are what lies between the
        # separators, exactly when none of them holds a line end. Both steps are memory
        # searches in C, where the regex engine steps through every byte (a 20,000-chunk Chat
        # stream in 9 KB reads: 392 -> 360 M instructions).
        datas = blocks[6:-2].split(b"\n\ndata: ")
        if b"\n" not in b"".join(datas):
            return datas
    pieces: list[bytes] = _SIMPLE_DATA.split(blocks)  # event lines, or other blocks
    if not any(pieces[::2]):
        return pieces[1::2]
    return None


class Decoder:
    """Feed bytes with :meth:`feed`, get messages; call :meth:`close` at end of body."""

    __slots__ = ("_data", "_event", "_head", "_last_id", "_max", "_parts", "_pending",
                 "_retry", "_skip_lf", "_started")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        #: Bytes after the last blank line: the start of a message still arriving.
        self._parts: list[bytes] = []
        #: Their total length, held under ``max_message`` so one endless line cannot
        #: exhaust memory.
        self._pending = 0
        self._max = max_message
        self._head = b""
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
        blocks = self._take(chunk)
        if not blocks:
            return []
        if len(blocks) > self._max:
            self._check(blocks)
        one = _SIMPLE_FIELDS.fullmatch(blocks)
        if one is not None:  # one message per read: the model writes slower than we read
            event = one[1]
            return [SseMessage(one[2].decode("utf-8", "replace"),
                               event.decode("utf-8", "replace") if event else "message",
                               self._last_id, self._retry)]
        # Every third piece lies between two matches; the others are each match's event
        # name (None without an event line) and data.
        pieces: list[Any] = _SIMPLE_FIELDS.split(blocks)
        if not any(pieces[::3]):
            last_id, retry = self._last_id, self._retry
            return [
                SseMessage(data.decode("utf-8", "replace"),
                           event.decode("utf-8", "replace") if event else "message", last_id,
                           retry)
                for event, data in zip(pieces[1::3], pieces[2::3], strict=True)
            ]
        return self._lines(blocks[:-1].decode("utf-8", "replace").split("\n"))

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """Like :meth:`feed`, but only each message's ``data``, as UTF-8 bytes.

        For consumers that ignore the event type (both API wires dispatch on the JSON
        ``type``): no message objects and no text decoding. The bytes are passed on as they
        came, so they may hold invalid UTF-8 that :meth:`feed` would have replaced with U+FFFD.
        """
        blocks = self._take(chunk)
        if not blocks:
            return []
        if len(blocks) > self._max:
            self._check(blocks)
        one = _SIMPLE_FIELDS.fullmatch(blocks)
        if one is not None:  # one message per read: the model writes slower than we read
            return [one[2]]
        datas = _simple_data(blocks)
        if datas is not None:
            return datas
        lines = blocks[:-1].decode("utf-8", "replace").split("\n")
        return [m.data.encode() for m in self._lines(lines)]

    def _take(self, chunk: bytes) -> bytes:
        """Normalize ``chunk``; return the bytes up to and including its last blank line."""
        if (chunk[-2:] == b"\n\n" and self._started and not self._parts and not self._skip_lf
                and b"\r" not in chunk):
            return chunk  # whole messages and nothing pending: the usual small read
        if not chunk:
            return b""
        if self._skip_lf:
            # The previous chunk ended in CR: a LF here is the second half of that CRLF.
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self._started:
            chunk = self._head + chunk
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._head = chunk
                return b""
            self._head = b""
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        parts = self._parts
        if parts:
            # Join only once a message is complete: a large message arriving in many chunks
            # is copied once, not once per chunk.
            if b"\n\n" not in chunk and not (chunk[:1] == b"\n" and parts[-1][-1:] == b"\n"):
                if chunk:
                    self._hold(chunk)
                return b""
            parts.append(chunk)
            buf = b"".join(parts)
            parts.clear()
            self._pending = 0
        else:
            buf = chunk
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            if buf:
                self._hold(buf)
            return b""
        if cut + 2 < len(buf):
            self._hold(buf[cut + 2 :])
        return buf[: cut + 2]

    def _check(self, blocks: bytes) -> None:
        # Only reached when complete messages arrive together in more bytes than the bound.
        largest = max(len(m) for m in blocks.split(b"\n\n"))
        if largest > self._max:
            self._too_large(largest)

    def _too_large(self, size: int) -> None:
        self._parts.clear()
        self._pending = 0
        raise ResponseTooLarge(
            f"an SSE message of {size} bytes or more passed the bound of {self._max} "
            "bytes; raise Provider.max_message_bytes if the server's events "
            "really are this large", setting="max_message_bytes", limit=self._max)

    def _hold(self, part: bytes) -> None:
        self._pending += len(part)
        if self._pending > self._max:
            self._too_large(self._pending)
        self._parts.append(part)

    def close(self) -> list[SseMessage]:
        """End of body: deliver a last message that had no terminating blank line."""
        buf = self._head + b"".join(self._parts)
        self._head = b""
        self._parts.clear()
        self._pending = 0
        if not self._started and buf.startswith(_BOM):
            buf = buf[3:]
        self._started = True
        lines = buf.decode("utf-8", "replace").split("\n") if buf else []
        lines.append("")
        return self._lines(lines)

    def close_data(self) -> list[bytes]:
        """:meth:`close` for :meth:`feed_data` consumers."""
        return [m.data.encode() for m in self.close()]

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
            elif (name == "retry" and value.isascii() and value.isdigit()
                  and len(value) <= _MAX_RETRY_DIGITS):
                self._retry = int(value)
        return out


class SseStreamDecoder:
    """SSE framing for a wire: body bytes in, the events of ``inner``'s messages out.

    A :class:`~codexapi.decoding.StreamDecoder` built from a
    :class:`~codexapi.decoding.MessageDecoder`. When ``inner`` has the ``feed_data(datas)``
    fast path it gets each read's message data in one call, else each message by ``feed``.
    """

    __slots__ = ("_feed", "_inner", "_pending", "_sse", "feed_data")

    def __init__(self, inner: MessageDecoder, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self._inner = inner
        self._sse = Decoder(max_message)
        self._pending: BaseException | None = None
        self.feed_data: Callable[[bytes], list[Event]]
        batch = getattr(inner, "feed_data", None)
        if batch is not None:
            self._feed = batch
            self.feed_data = self._feed_batch
        else:
            self._feed = inner.feed
            self.feed_data = self._feed_each

    @property
    def done(self) -> bool:
        return self._inner.done

    def bound_messages(self, max_message: int) -> None:
        """Refuse SSE messages over ``max_message`` bytes; call before the first byte is fed.
        (Kept for wires of earlier versions: pass ``max_message`` to the constructor.)"""
        self._sse = Decoder(max_message)

    @property
    def skipped(self) -> int:
        """How many events the message decoder skipped as undecodable."""
        count = getattr(self._inner, "skipped", 0)
        return count if count.__class__ is int else 0

    @property
    def position(self) -> tuple[str, int] | None:
        """The message decoder's ``position`` (see :class:`~codexapi.decoding.StreamDecoder`)."""
        position: tuple[str, int] | None = getattr(self._inner, "position", None)
        return position

    @property
    def turn_state(self) -> str | None:
        """The message decoder's ``turn_state`` (see :class:`~codexapi.decoding.StreamDecoder`)."""
        state = getattr(self._inner, "turn_state", None)
        return state if isinstance(state, str) else None

    @property
    def inner(self) -> MessageDecoder:
        """The message decoder this frames for."""
        return self._inner

    @property
    def other_events(self) -> int | None:
        """The message decoder's ``other_events`` (see
        :class:`~codexapi.decoding.StreamDecoder`), or None when it does not count: every
        event this returns from ``feed_data`` is the message decoder's."""
        count = getattr(self._inner, "other_events", None)
        return count if count.__class__ is int else None

    def _feed_batch(self, data: bytes) -> list[Event]:
        datas = self._sse.feed_data(data)
        return self._feed(datas) if datas else []

    def _feed_each(self, data: bytes) -> list[Event]:
        if self._pending is not None:
            raise self._pending
        out: list[Event] = []
        inner = self._inner
        for message in self._sse.feed(data):
            try:
                out.extend(inner.feed(message))
            except Exception as exc:
                if not out:
                    raise
                # The events of the messages before this one are delivered first, as they
                # would have been had the messages come in separate reads.
                self._pending = exc
                break
            if inner.done:
                break
        return out

    def close(self) -> list[Event]:
        if self._pending is not None:
            raise self._pending
        inner = self._inner
        out: list[Event] = []
        if not inner.done:
            for message in self._sse.close():
                out.extend(inner.feed(message))
                if inner.done:
                    break
        # Also once done: a decoder that ended on a terminal failure raises it from close().
        out.extend(inner.close())
        return out


def iter_messages(chunks: list[bytes] | tuple[bytes, ...]) -> list[SseMessage]:
    """Decode a whole body given as chunks (tests, replays)."""
    dec = Decoder()
    out: list[SseMessage] = []
    for chunk in chunks:
        out.extend(dec.feed(chunk))
    out.extend(dec.close())
    return out
