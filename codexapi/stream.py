"""ResponseStream: the events of one streamed turn, as they arrive.

An iterator and a context manager. Each event is yielded as soon as its bytes have arrived
(the transport reads what the socket has, never a fixed-size block). Leaving the ``with`` block,
breaking out early, or reaching the end closes the connection. Idle streams end in
:class:`IdleTimeout` (the transport's read timeout is the provider's ``stream_idle_timeout``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from types import TracebackType
from typing import Any

import attrs

from .deadline import Deadline
from .decoding import StreamDecoder
from .errors import CodexApiError, DeadlineExceeded, StreamError, TransportError
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
from .limits import iter_body
from .models import Provider
from .redact import scrub_error
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
    #: Undecodable events skipped under ``Provider.skip_undecodable_events`` (else always 0:
    #: such an event raises UndecodableEvent).
    skipped_events: int = 0

    @property
    def function_calls(self) -> list[Item]:
        """The function_call items, in order."""
        return [i for i in self.items if i.type == "function_call"]


#: ``reopen(resends, error, response_id, after)``: a new response and decoder for the same
#: turn (a re-send, or with ``response_id`` a resume after sequence number ``after``), or
#: None when the retry policy says no.
Reopen = Callable[[int, Exception, "str | None", "int | None"],
                  "tuple[HttpResponse, StreamDecoder] | None"]


class _Turn:
    """The state the stream's generator works on. The generator holds this, never the
    ResponseStream, so an abandoned stream is freed (and its connection released) as soon as
    it is unreachable, without waiting for the cyclic garbage collector."""

    __slots__ = ("background", "closed", "deadline", "decoder", "delivered", "prelude",
                 "provider", "reopen", "resends", "response", "response_id", "secrets",
                 "sequence_number")

    def __init__(self, response: HttpResponse, decoder: StreamDecoder, prelude: list[Event],
                 provider: Provider | None, secrets: Callable[[], list[str]] | None,
                 deadline: Deadline | None, reopen: Reopen | None, background: bool) -> None:
        self.response = response
        self.decoder = decoder
        self.prelude = prelude
        self.provider = provider
        self.secrets = secrets
        self.deadline = deadline
        self.reopen = reopen
        self.background = background
        self.closed = False
        #: Whether any event (beyond the head's) has reached the caller.
        self.delivered = False
        self.resends = 0
        self.sequence_number: int | None = None
        self.response_id: str | None = None

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            with contextlib.suppress(Exception):
                self.response.close()

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            drain = getattr(self.response, "drain", None)
            if drain is not None and self.decoder.done:
                # Completed: take the body's tail so the connection can be pooled again.
                drain()
            self.response.close()


def _dropped(error: Exception, at_eof: bool) -> bool:
    """Whether ``error`` is the connection failing (not the server reporting a failure)."""
    if not at_eof:
        return True  # raised by the transport while reading
    return type(error) is StreamError and error.message.startswith("stream closed before")


def _recover(turn: _Turn, error: Exception, at_eof: bool) -> bool:
    """Re-send or resume the turn after ``error`` if the contract allows; True if it did."""
    reopen = turn.reopen
    if reopen is None or isinstance(error, DeadlineExceeded) or not getattr(
            error, "retryable", False):
        return False
    limit = turn.provider.stream_max_retries if turn.provider is not None else 0
    if turn.resends >= limit:
        return False
    if (turn.background and turn.response_id is not None and turn.sequence_number is not None
            and _dropped(error, at_eof)):
        # Resume after the last event received: the caller sees each event exactly once.
        target: tuple[str | None, int | None] = turn.response_id, turn.sequence_number
    elif not turn.delivered:
        target = None, None  # nothing reached the caller: the whole turn is sent again
    else:
        return False  # nothing is ever re-sent once an event reached the caller
    turn.resends += 1
    opened = reopen(turn.resends, error, *target)
    if opened is None:
        return False
    old = turn.response
    turn.closed = True
    with contextlib.suppress(Exception):
        old.close()
    turn.response, turn.decoder = opened
    turn.closed = False
    return True


def _events(turn: _Turn) -> Generator[Event, None, None]:
    try:
        if turn.prelude:
            yield from turn.prelude
        while True:
            decoder = turn.decoder
            feed = decoder.feed
            # A decoder that only needs each message's data takes a whole chunk's worth at
            # once: one call per network read instead of one per event (the first-party wires).
            feed_data = getattr(decoder, "feed_data", None)
            sse = (Decoder(turn.provider.max_message_bytes) if turn.provider is not None
                   else Decoder())
            body = (iter_body(turn.response, turn.provider, what="stream")
                    if turn.provider is not None else turn.response.iter_bytes())
            deadline = turn.deadline
            at_eof = False
            try:
                try:
                    for chunk in body:
                        if feed_data is not None:
                            datas = sse.feed_data(chunk)
                            events = feed_data(datas) if datas else None
                        else:
                            events = None
                            for message in sse.feed(chunk):
                                each = feed(message)
                                if each:
                                    turn.delivered = True
                                    yield from each
                                if decoder.done:
                                    return
                        if events:
                            turn.delivered = True
                            yield from events
                            if decoder.done:
                                return
                        if turn.background:
                            _track(turn, decoder)
                        if deadline is not None and deadline.passed():
                            raise deadline.exceeded(turn.response.url, "reading the stream")
                except DeadlineExceeded as exc:
                    if deadline is None:
                        raise
                    raise deadline.exceeded(exc.url, "reading the stream") from exc
                except TransportError as exc:
                    # Events may already be with the caller: re-sending would duplicate them,
                    # so a lost connection here is a stream failure (re-sent or resumed only as
                    # _recover allows), never a retried transport error.
                    raise StreamError(f"stream disconnected before completion: {exc.message}"
                                      ) from exc
                at_eof = True
                for message in sse.close():
                    events = feed(message)
                    if events:
                        turn.delivered = True
                        yield from events
                    if decoder.done:
                        return
                tail = decoder.close()
                if tail:
                    turn.delivered = True
                    yield from tail
                return
            except CodexApiError as exc:
                if not _recover(turn, exc, at_eof):
                    raise
    except CodexApiError as exc:
        # A response.failed message, a Chat error chunk or an undecodable event's preview
        # may echo the credential sent.
        if turn.secrets is not None:
            scrub_error(exc, turn.secrets())
        raise
    finally:
        turn.release()


def _track(turn: _Turn, decoder: StreamDecoder) -> None:
    seq = getattr(decoder, "sequence_number", None)
    if seq is not None:
        turn.sequence_number = seq
    rid = getattr(decoder, "response_id", None)
    if rid:
        turn.response_id = rid


class ResponseStream:
    """Iterate for events; ``collect()`` for the whole turn. Single consumer."""

    def __init__(
        self,
        response: HttpResponse,
        decoder: StreamDecoder,
        prelude: list[Event] | None = None,
        provider: Provider | None = None,
        secrets: Callable[[], list[str]] | None = None,
        deadline: Deadline | None = None,
        reopen: Reopen | None = None,
        background: bool = False,
    ) -> None:
        self._turn = _Turn(response, decoder, prelude or [], provider, secrets, deadline,
                           reopen, background)
        self._gen = _events(self._turn)

    @property
    def response(self) -> HttpResponse:
        """The HTTP response being read (after a re-send or resume, the new one)."""
        return self._turn.response

    @property
    def headers(self) -> Any:
        """The HTTP response headers."""
        return self._turn.response.headers

    @property
    def request_id(self) -> str | None:
        h = self._turn.response.headers
        return h.get("x-request-id") or h.get("x-oai-request-id")

    @property
    def sequence_number(self) -> int | None:
        """The ``sequence_number`` of the last event received on a background stream (what
        a resume continues after), or None."""
        return self._turn.sequence_number

    @property
    def resends(self) -> int:
        """How many times the turn was re-sent or resumed (at most
        ``Provider.stream_max_retries``)."""
        return self._turn.resends

    @property
    def _decoder(self) -> StreamDecoder:
        return self._turn.decoder

    @property
    def _closed(self) -> bool:
        return self._turn.closed

    def __iter__(self) -> Iterator[Event]:
        # The generator itself, so a ``for`` loop runs without a Python-level __next__ call per
        # event; it is the same iterator __next__ advances.
        return self._gen

    def __next__(self) -> Event:
        return next(self._gen)

    def close(self) -> None:
        """Release the connection (idempotent). Unread events are discarded."""
        self._turn.release()
        self._gen.close()

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # No __del__: a stream iterated without being kept (``for ev in client.stream(r)``) dies
    # while its generator runs on. The generator releases the connection when it ends or is
    # freed; a stream never iterated releases it when its _Turn is freed.

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
        skipped = getattr(self._decoder, "skipped", 0)
        return StreamResult(text, items, response_id, usage, limits, events,
                            skipped if isinstance(skipped, int) else 0)
