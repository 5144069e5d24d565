"""The stream-decoder protocol that wire plugins implement."""

from __future__ import annotations

from typing import Protocol

from .events import Event
from .sse import SseMessage


class StreamDecoder(Protocol):
    """Turns one stream's SSE messages into events. A fresh decoder per stream.

    ``feed`` and ``close`` may raise codexapi errors (the stream ends there). ``done`` becomes
    True once the turn is complete; the stream then stops reading and releases the connection.
    """

    done: bool

    def feed(self, message: SseMessage) -> list[Event]: ...

    def close(self) -> list[Event]: ...
