"""ResponseStream: the events of one streamed turn, as they arrive.

An iterator and a context manager. Each event is yielded as soon as its bytes have arrived
(the transport reads what the socket has, never a fixed-size block). Leaving the ``with`` block,
breaking out early, or reaching the end closes the connection. A read that stalls past the
provider's ``stream_idle_timeout`` (the transport's :class:`~codexapi.ReadTimeout`) ends the
stream in :class:`IdleTimeout`.

The decoder comes from the provider's Wire and gets the body bytes as they arrive: the wire
owns the framing (SSE, or frames). One decoder call per network read, none per event.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from itertools import chain
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs

from .convert import parse_output
from .errors import CodexApiError
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
from .items import FunctionCall, Message
from .redact import scrub_error
from .wires import HttpEventSource

if TYPE_CHECKING:
    from .decoding import StreamDecoder
    from .http.transport import HttpResponse
    from .wires import EventSource

T = TypeVar("T")


@attrs.frozen
class StreamResult:
    """A whole turn: the text, the finished output items, id, usage and rate limits."""

    text: str
    items: list[Item]
    response_id: str | None
    usage: TokenUsage | None
    rate_limits: RateLimitSnapshot | None = None
    events: list[Event] = attrs.field(factory=list, repr=False)
    #: The model that answered (the ``openai-model`` response header), when the server says.
    model: str | None = None
    #: How the turn ended, for ``codexapi_on_stream_end``: ``"stop"``, ``"tool_calls"``,
    #: ``"error"`` or ``"cancelled"`` (the caller closed the stream early); None from collect().
    finish_reason: str | None = None
    #: Seconds from the call to the first event its decoder produced (``codexapi_on_stream_end``).
    time_to_first_event: float | None = None
    #: The call's ``HttpRequest.extensions`` (the same dict every attempt's request had).
    extensions: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    #: Undecodable events skipped under ``Provider.skip_undecodable_events`` (else always 0:
    #: such an event raises UndecodableEvent).
    skipped_events: int = 0

    @property
    def function_calls(self) -> list[FunctionCall]:
        """The function_call items, in order."""
        return [i for i in self.items if isinstance(i, FunctionCall)]

    @property
    def refusal(self) -> str | None:
        """What the model said instead of answering when it refused (its messages' ``refusal``
        parts), else None."""
        found = [r for r in (i.refusal for i in self.items if isinstance(i, Message))
                 if r is not None]
        return "".join(found) if found else None

    def output_json(self) -> Any:
        """The text output decoded as JSON (structured output asked for with ``text.format``).

        Raises :class:`~codexapi.OutputParseError` when the text is empty or not JSON; when the
        model refused, its ``refusal`` holds what the model said.
        """
        return parse_output(self.text, refusal=self.refusal)

    def parsed(self, cls: type[T]) -> T:
        """The JSON text output structured into ``cls`` (an attrs class, a dataclass or a
        pydantic model, e.g. the one given to :meth:`TextControls.for_class
        <codexapi.TextControls.for_class>`): an instance of ``cls``.

        Raises :class:`~codexapi.OutputParseError` when it is not JSON or does not fit ``cls``
        (its message names the fields at fault).
        """
        result: T = parse_output(self.text, cls, self.refusal)
        return result


#: Told once how a turn ended: the result so far and the error (None on success).
OnEnd = Callable[[StreamResult, "BaseException | None"], None]


class _Seen:
    """What a turn delivered so far, kept only when someone observes its end.

    Text deltas are the commonest event by far. A decoder that counts the other events it
    returns (``other_events``, see :class:`~codexapi.decoding.StreamDecoder`) lets a read of
    nothing but deltas be told in O(1): skipped, or with ``keep_text`` kept as one joined
    string. Otherwise a read of many events is sorted in one comprehension and only the rest
    looked at event by event. Only text is kept, never the events (strings cost the garbage
    collector nothing)."""

    __slots__ = ("_clock", "_mark", "_source", "deltas", "extensions", "first_at", "items",
                 "keep_text", "limits", "model", "response_id", "started", "usage")

    def __init__(self, started: float | None, model: str | None,
                 extensions: dict[str, Any] | None, clock: Callable[[], float],
                 keep_text: bool = True) -> None:
        self._clock = clock
        self.started = clock() if started is None else started
        self.first_at: float | None = None
        self.keep_text = keep_text
        self.deltas: list[str] = []
        self.items: list[Item] = []
        self.response_id: str | None = None
        self.usage: TokenUsage | None = None
        self.limits: RateLimitSnapshot | None = None
        self.model = model
        self.extensions = extensions if extensions is not None else {}
        self._source: object = None
        self._mark = -1

    def watch(self, source: object) -> None:
        """Before ``source`` is read: its count, so its first read is told too."""
        mark = getattr(source, "other_events", None)
        if mark.__class__ is int:
            self._source, self._mark = source, mark

    def add(self, events: list[Event], source: object = None, decoded: bool = True) -> None:
        """Take one read's events; ``source`` is the event source that returned them."""
        if decoded and self.first_at is None:
            self.first_at = self._clock()
        if source is not None:
            mark = getattr(source, "other_events", None)
            if mark.__class__ is int:
                if mark == self._mark and source is self._source:
                    # Nothing but text deltas since the last read.
                    if self.keep_text:
                        deltas = cast("list[OutputTextDelta]", events)
                        self.deltas.append("".join([e.delta for e in deltas]))
                    return
                self._source, self._mark = source, mark
        keep_text = self.keep_text
        if len(events) > 8:  # below that, setting up the comprehension costs more than it saves
            delta = OutputTextDelta
            if not keep_text:
                events = [e for e in events if e.__class__ is not delta]
            else:
                texts = [e.delta for e in events if e.__class__ is delta]
                if len(texts) == len(events):
                    # One string per read: the deltas' own strings are freed with their
                    # events, so the allocator keeps reusing their memory (keeping them all
                    # costs more than the join).
                    self.deltas.append("".join(texts))
                    return
        text: list[str] = []
        for ev in events:
            if isinstance(ev, OutputTextDelta):
                if keep_text:
                    text.append(ev.delta)  # in order, a wire's own subclass included
            elif isinstance(ev, OutputItemDone):
                self.items.append(ev.item)
            elif isinstance(ev, Completed):
                self.response_id, self.usage = ev.response_id, ev.token_usage
            elif isinstance(ev, RateLimits):
                self.limits = ev.snapshot
        if text:
            self.deltas.append("".join(text))

    def result(self, finish_reason: str) -> StreamResult:
        text = "".join(self.deltas) or "".join(
            i.text for i in self.items if i.type == "message")
        if finish_reason == "stop" and any(i.type == "function_call" for i in self.items):
            finish_reason = "tool_calls"
        ttfe = None if self.first_at is None else self.first_at - self.started
        return StreamResult(text, list(self.items), self.response_id, self.usage, self.limits,
                            [], self.model, finish_reason, ttfe, self.extensions)


#: ``recover(error, delivered, failed)``: a new source for a turn whose ``failed`` source
#: raised ``error`` (``delivered``: whether any event reached the caller), or None when the
#: turn cannot go on (the error is then raised). The call decides (:mod:`codexapi.call`).
Recover = Callable[[Exception, bool, "EventSource"], "EventSource | None"]


class _Turn:
    """The state the stream's generator works on. The generator holds this, never the
    ResponseStream, so an abandoned stream is freed (and its connection released) as soon as
    it is unreachable, without waiting for the cyclic garbage collector."""

    __slots__ = ("closed", "current", "delivered", "observed", "on_end", "prelude", "recover",
                 "resends", "secrets", "settle", "source")

    def __init__(self, source: EventSource, prelude: list[Event], on_end: OnEnd | None,
                 observed: _Seen | None) -> None:
        self.source = source
        self.prelude = prelude
        #: The iterator over the events of the read the caller is going through.
        self.current: Iterator[Event] | None = None
        self.on_end = on_end
        self.observed = observed
        self.secrets: Callable[[], list[str]] | None = None
        self.recover: Recover | None = None
        #: Told of each source once it is done with (what the call keeps of it).
        self.settle: Callable[[EventSource], None] | None = None
        self.closed = False
        #: Whether any event (beyond the head's) has reached the caller.
        self.delivered = False
        self.resends = 0

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            with contextlib.suppress(Exception):
                self.source.close()
            with contextlib.suppress(Exception):
                self.end("cancelled", None)

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            if self.settle is not None:
                self.settle(self.source)
            self.source.close()

    def end(self, reason: str, error: BaseException | None) -> None:
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            observed = self.observed
            on_end(observed.result(reason) if observed is not None else
                   StreamResult("", [], None, None, finish_reason=reason), error)

    def go_on(self, error: Exception) -> bool:
        """Carry on after ``error`` on a new source if the call allows; True if it does."""
        recover = self.recover
        if recover is None:
            return False
        source = recover(error, self.delivered, self.source)
        if source is None:
            return False
        old = self.source
        if self.settle is not None:
            self.settle(old)
        self.source = source
        self.resends += 1
        with contextlib.suppress(Exception):
            old.close()
        return True


def _reads(turn: _Turn) -> Generator[Iterator[Event], None, None]:
    """The events of each read, as an iterator per read: the stream chains them in C, so
    the generator resumes once per read, not once per event."""
    observed = turn.observed
    try:
        if observed is not None:
            observed.add(turn.prelude, decoded=False)
        if turn.prelude:
            turn.current = events = iter(turn.prelude)
            yield events
        while True:
            source = turn.source
            if observed is not None:
                observed.watch(source)
            read = source.next_events
            try:
                while True:
                    got = read()
                    if not got:
                        return
                    turn.delivered = True
                    if observed is not None:
                        observed.add(got, source)
                    turn.current = events = iter(got)
                    yield events
            except CodexApiError as exc:
                if not turn.go_on(exc):
                    raise
    except GeneratorExit:
        turn.end("cancelled", None)
        raise
    except BaseException as exc:
        # A response.failed message, a Chat error chunk or an undecodable event's preview
        # may echo the credential sent.
        if isinstance(exc, CodexApiError) and turn.secrets is not None:
            scrub_error(exc, turn.secrets())
        turn.end("error", exc)
        raise
    finally:
        turn.release()
        turn.end("stop", None)


class ResponseStream:
    """Iterate for events; ``collect()`` for the whole turn. Single consumer.

    ``on_end`` (optional) is told once how the turn ended (``codexapi_on_stream_end``):
    success, an error, or closed early; its result carries the text streamed so far only with
    ``keep_text`` (else the message items' text). ``started`` is when the call began
    (``time.monotonic``), for ``StreamResult.time_to_first_event``. ``settle`` (optional) is
    given each source once the stream is done with it (what the call keeps of it: in-band
    turn state).
    """

    def __init__(
        self,
        source: EventSource | HttpResponse,
        decoder: StreamDecoder | None = None,
        prelude: list[Event] | None = None,
        *,
        on_end: OnEnd | None = None,
        started: float | None = None,
        extensions: dict[str, Any] | None = None,
        secrets: Callable[[], list[str]] | None = None,
        recover: Recover | None = None,
        keep_text: bool = True,
        settle: Callable[[EventSource], None] | None = None,
    ) -> None:
        if decoder is not None:
            # An HTTP response and the decoder that reads it (as earlier versions took).
            source = HttpEventSource(cast("HttpResponse", source), decoder)
        source = cast("EventSource", source)
        observed = (None if on_end is None else _Seen(
            started, source.headers.get("openai-model"), extensions, time.monotonic,
            keep_text))
        turn = self._turn = _Turn(source, prelude or [], on_end, observed)
        turn.secrets = secrets
        turn.recover = recover
        turn.settle = settle
        self._reads = _reads(turn)
        # Each read's events go to the caller from C: no Python frame resumed per event (a
        # generator yielding every event costs about 1% of a text stream).
        self._events: Iterator[Event] = chain.from_iterable(self._reads)

    @property
    def source(self) -> EventSource:
        """What the events are read from (after a re-send or resume, the new one)."""
        return self._turn.source

    @property
    def response(self) -> Any:
        """The HTTP response being read, on an HTTP wire (else the event source)."""
        source = self._turn.source
        return getattr(source, "response", source)

    @property
    def headers(self) -> Any:
        """The answer's headers (the HTTP response's, or a WebSocket handshake's)."""
        return self._turn.source.headers

    @property
    def request_id(self) -> str | None:
        h = self._turn.source.headers
        return h.get("x-request-id") or h.get("x-oai-request-id") or h.get("cf-ray")

    @property
    def sequence_number(self) -> int | None:
        """The ``sequence_number`` of the last event received, where the wire's decoder tells
        it (what a background resume continues after), or None."""
        position = getattr(self._turn.source, "position", None)
        return position[1] if position is not None else None

    @property
    def resends(self) -> int:
        """How many times the turn was re-sent or resumed (at most
        ``Provider.stream_max_retries``)."""
        return self._turn.resends

    @property
    def _closed(self) -> bool:
        return self._turn.closed

    def __iter__(self) -> Iterator[Event]:
        # The events' iterator itself, so a ``for`` loop runs without a Python-level __next__
        # call per event; it is the same iterator __next__ advances.
        return self._events

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        """Release the connection (idempotent). Unread events are discarded."""
        turn = self._turn
        current, turn.current = turn.current, None
        if current is not None:
            deque(current, 0)  # the rest of the read being iterated
        turn.release()
        self._reads.close()
        turn.end("cancelled", None)  # a stream closed before it was ever read

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

    def iter_text(self) -> Iterator[str]:
        """The text deltas alone, as they arrive. The stream's other events are consumed all
        the same and its errors raised; the connection is released at the end (or when this
        iterator is closed)."""
        with self:
            for ev in self:
                if isinstance(ev, OutputTextDelta):
                    yield ev.delta

    def collect(self, on_event: Callable[[Event], None] | None = None) -> StreamResult:
        """Consume the stream; return the whole turn (raises what the stream raises).
        ``on_event`` (optional) sees each event as it arrives, e.g. to show it."""
        deltas: list[str] = []
        items: list[Item] = []
        events: list[Event] = []
        response_id = None
        usage = None
        limits = None
        with self:
            for ev in self:
                if on_event is not None:
                    on_event(ev)
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
        skipped = getattr(self._turn.source, "skipped", 0)
        return StreamResult(text, items, response_id, usage, limits, events,
                            skipped_events=skipped if isinstance(skipped, int) else 0)
