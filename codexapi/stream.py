"""ResponseStream: the events of one streamed turn, as they arrive.

An iterator and a context manager. Each event is yielded as soon as its bytes have arrived
(the transport reads what the socket has, never a fixed-size block). Leaving the ``with`` block,
breaking out early, or reaching the end closes the connection. Idle streams end in
:class:`IdleTimeout` (the transport's read timeout is the provider's ``stream_idle_timeout``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from types import TracebackType
from typing import Any

import attrs

from .decoding import StreamDecoder
from .errors import StreamError, TransportError
from .events import (
    Completed,
    Event,
    Item,
    OutputItemDone,
    OutputTextDelta,
    RateLimits,
    RateLimitSnapshot,
    TokenUsage,
)
from .sse import Decoder
from .transport import HttpResponse


@attrs.frozen
class StreamResult:
    """A whole turn: the text, the finished output items, id, usage and rate limits."""

    text: str
    items: list[Item]
    response_id: str | None
    usage: TokenUsage | None
    rate_limits: RateLimitSnapshot | None = None
    events: list[Event] = attrs.field(factory=list, repr=False)

    @property
    def function_calls(self) -> list[Item]:
        """The function_call items, in order."""
        return [i for i in self.items if i.type == "function_call"]


class ResponseStream:
    """Iterate for events; ``collect()`` for the whole turn. Single consumer."""

    def __init__(
        self,
        response: HttpResponse,
        decoder: StreamDecoder,
        prelude: list[Event] | None = None,
    ) -> None:
        self.response = response
        self._decoder = decoder
        self._prelude = prelude or []
        self._gen = self._events()
        self._closed = False

    @property
    def headers(self) -> Any:
        """The HTTP response headers."""
        return self.response.headers

    @property
    def request_id(self) -> str | None:
        h = self.response.headers
        return h.get("x-request-id") or h.get("x-oai-request-id") or h.get("cf-ray")

    def __iter__(self) -> Iterator[Event]:
        # The generator itself, so a ``for`` loop runs without a Python-level __next__ call per
        # event; it is the same iterator __next__ advances.
        return self._gen

    def __next__(self) -> Event:
        return next(self._gen)

    def _events(self) -> Generator[Event, None, None]:
        decoder = self._decoder
        sse = Decoder()
        feed = decoder.feed
        # A decoder that only needs each message's data takes a whole chunk's worth at once:
        # one call per network read instead of one per event (the first-party wires do).
        feed_data = getattr(decoder, "feed_data", None)
        try:
            yield from self._prelude
            try:
                if feed_data is not None:
                    sse_data = sse.feed_data
                    for chunk in self.response.iter_bytes():
                        datas = sse_data(chunk)
                        if datas:
                            events = feed_data(datas)
                            if events:
                                yield from events
                            if decoder.done:
                                # A terminal failure raises here, not at a close the
                                # server may never send.
                                yield from decoder.close()
                                return
                else:
                    sse_feed = sse.feed
                    for chunk in self.response.iter_bytes():
                        for message in sse_feed(chunk):
                            events = feed(message)
                            if events:
                                yield from events
                            if decoder.done:
                                yield from decoder.close()
                                return
            except TransportError as exc:
                # Events may already be with the caller: re-sending would duplicate them, so a
                # lost connection here is a stream failure, never a retried transport error.
                raise StreamError(f"stream disconnected before completion: {exc.message}",
                                  retryable=exc.retryable) from exc
            for message in sse.close():
                yield from feed(message)
                if decoder.done:
                    break
            yield from decoder.close()
        finally:
            self._release()

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            drain = getattr(self.response, "drain", None)
            if drain is not None and self._decoder.done:
                # Completed: take the body's tail so the connection can be pooled again.
                drain()
            self.response.close()

    def close(self) -> None:
        """Release the connection (idempotent). Unread events are discarded."""
        self._release()
        self._gen.close()

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.response.close()

    def collect(self) -> StreamResult:
        """Consume the stream; return the whole turn (raises what the stream raises)."""
        deltas: list[str] = []
        items: list[Item] = []
        events: list[Event] = []
        response_id = None
        usage = None
        limits = None
        with self:
            for ev in self:
                events.append(ev)
                if isinstance(ev, OutputTextDelta):
                    deltas.append(ev.delta)
                elif isinstance(ev, OutputItemDone):
                    items.append(ev.item)
                elif isinstance(ev, Completed):
                    response_id, usage = ev.response_id, ev.token_usage
                elif isinstance(ev, RateLimits):
                    limits = ev.snapshot
        text = "".join(deltas)
        if not text:
            text = "".join(i.text for i in items if i.type == "message")
        return StreamResult(text, items, response_id, usage, limits, events)
