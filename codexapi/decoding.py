"""The stream-decoder protocol that wire plugins implement."""

from __future__ import annotations

from typing import Protocol

from .events import Event
from .sse import SseMessage


class StreamDecoder(Protocol):
    """Turns one stream's SSE messages into events. A fresh decoder per stream.

    ``feed`` and ``close`` may raise codexapi errors (the stream ends there). ``done`` becomes
    True once the turn is complete; the stream then stops reading and releases the connection.

    Optional fast path: a decoder that ignores the SSE event name, id and retry may also define
    ``feed_data(datas) -> list[Event]``, taking the ``data`` of every message completed by one
    network read (UTF-8 ``bytes``, possibly invalid UTF-8) and returning their events, stopping
    after the message that sets ``done``. :class:`~codexapi.ResponseStream` then calls it once
    per read instead of ``feed`` once per message (the Responses wire does).
    """

    done: bool

    def feed(self, message: SseMessage) -> list[Event]: ...

    def close(self) -> list[Event]: ...
