"""The decoder protocols wires implement.

A :class:`StreamDecoder` is what a Wire hands the stream: raw body bytes in (any chunking, as
the network delivers them), events out. The wire owns the framing, so a decoder for an SSE wire
parses SSE and one for a WebSocket wire parses frames. Most SSE wires need not parse SSE
themselves: they write a :class:`MessageDecoder` (one SSE message in, events out) and wrap it
in :class:`codexapi.sse.SseStreamDecoder`, which does the framing with the core's SSE parser.
"""

from __future__ import annotations

from typing import Protocol

from .events import Event
from .sse import SseMessage


class StreamDecoder(Protocol):
    """Turns one stream's body bytes into events. A fresh decoder per stream.

    ``feed_data`` and ``close`` may raise codexapi errors (the stream ends there). ``done``
    becomes True once the turn is complete; the stream then stops reading and releases the
    connection. ``close()`` is called at the end of the body (events still buffered, or the
    error of a truncated stream).

    Optional: ``other_events``, an ``int`` that grows whenever ``feed_data`` returns an event
    other than a plain :class:`~codexapi.OutputTextDelta` (it may grow more often, never
    less). A stream whose end is observed then tells a read of nothing but text deltas by
    comparing two numbers, instead of looking at each event. A decoder without it has each
    read's events looked at. A decoder that wraps another (as
    :class:`~codexapi.sse.SseStreamDecoder` wraps a message decoder) answers for the events
    it returns, its own included; SseStreamDecoder passes on its message decoder's count.
    """

    @property
    def done(self) -> bool: ...

    def feed_data(self, data: bytes) -> list[Event]: ...

    def close(self) -> list[Event]: ...


class MessageDecoder(Protocol):
    """Turns one stream's SSE messages into events (see :class:`codexapi.sse.SseStreamDecoder`).

    Optional fast path: a decoder that ignores the SSE event name, id and retry may also define
    ``feed_data(datas) -> list[Event]``, taking the ``data`` of every message completed by one
    network read (UTF-8 ``bytes``, possibly invalid UTF-8) and returning their events, stopping
    after the message that sets ``done``; it is then called once per read instead of ``feed``
    once per message (the Responses wire does).
    """

    done: bool

    def feed(self, message: SseMessage) -> list[Event]: ...

    def close(self) -> list[Event]: ...
