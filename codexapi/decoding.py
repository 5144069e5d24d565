"""The decoder protocols wires implement.

A :class:`StreamDecoder` is what a Wire hands the stream: raw body bytes in (any chunking, as
the network delivers them), events out. The wire owns the framing, so a decoder for an SSE wire
parses SSE and one for a WebSocket wire parses frames. Most SSE wires need not parse SSE
themselves: they write a :class:`MessageDecoder` (one SSE message in, events out) and wrap it
in :class:`codexapi.sse.SseStreamDecoder`, which does the framing with the core's SSE parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from .events import Event
from .sse import DEFAULT_MAX_MESSAGE, SseMessage


@attrs.frozen
class DecoderSettings:
    """What a stream's decoder is built with: ``Wire.decoder(endpoint, settings)``.

    ``max_message_bytes`` bounds one message or frame (``Provider.max_message_bytes``; past
    it :class:`~codexapi.ResponseTooLarge`); ``skip_undecodable`` skips an event that is not
    valid JSON instead of failing the turn (``Provider.skip_undecodable_events``; count the
    skipped ones in ``skipped``); ``headers`` are the answer head's (case-insensitive), for
    what a wire reads there (the Responses wire's ``x-codex-safety-buffering-faster-model``).
    """

    max_message_bytes: int = DEFAULT_MAX_MESSAGE
    skip_undecodable: bool = False
    headers: Mapping[str, str] = attrs.field(factory=dict)


class StreamDecoder(Protocol):
    """Turns one stream's body bytes into events. A fresh decoder per stream, built by
    ``Wire.decoder(endpoint, settings)`` with the :class:`DecoderSettings` it must honour.

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

    Optional: ``skipped``, an ``int`` counting the events skipped as undecodable
    (``StreamResult.skipped_events``); ``position``, ``(response_id, sequence_number)`` of
    the last event decoded, or None: where a resumed stream continues (see
    ``Wire.resume``); ``turn_state``, the ``x-codex-turn-state`` the server sent in-band
    (kept in the turn's ``SessionContext``), or None. Core reads nothing else of a decoder.
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
