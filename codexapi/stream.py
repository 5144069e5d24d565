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
from collections.abc import Callable, Generator, Iterator
from types import TracebackType
from typing import Any, TypeVar

import attrs

from .decoding import StreamDecoder
from .errors import IdleTimeout, ReadTimeout, StreamError, TransportError
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
from .items import FunctionCall
from .transport import HttpResponse

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

    @property
    def function_calls(self) -> list[FunctionCall]:
        """The function_call items, in order."""
        return [i for i in self.items if isinstance(i, FunctionCall)]

    def output_json(self) -> Any:
        """The text output decoded as JSON (structured output asked for with ``text.format``).

        Raises :class:`~codexapi.OutputParseError` when the text is empty or not JSON.
        """
        from .structured import parse_output

        return parse_output(self.text)

    def parsed(self, cls: type[T]) -> T:
        """The JSON text output structured into ``cls`` (an attrs class, e.g. the one given to
        :meth:`TextControls.for_class <codexapi.TextControls.for_class>`) by the one converter.

        Raises :class:`~codexapi.OutputParseError` when it is not JSON or does not fit ``cls``.
        """
        from .structured import parse_output

        result: T = parse_output(self.text, cls)
        return result


#: Told once how a turn ended: the result so far and the error (None on success).
OnEnd = Callable[[StreamResult, "BaseException | None"], None]


class _Turn:
    """What a turn delivered so far, kept only when someone observes its end."""

    __slots__ = ("_clock", "deltas", "extensions", "first_at", "items", "limits", "model",
                 "response_id", "started", "usage")

    def __init__(self, started: float | None, model: str | None,
                 extensions: dict[str, Any] | None, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.started = clock() if started is None else started
        self.first_at: float | None = None
        self.deltas: list[str] = []
        self.items: list[Item] = []
        self.response_id: str | None = None
        self.usage: TokenUsage | None = None
        self.limits: RateLimitSnapshot | None = None
        self.model = model
        self.extensions = extensions if extensions is not None else {}

    def add(self, events: list[Event], decoded: bool = True) -> None:
        if decoded and self.first_at is None:
            self.first_at = self._clock()
        for ev in events:
            if isinstance(ev, OutputTextDelta):
                self.deltas.append(ev.delta)
            elif isinstance(ev, OutputItemDone):
                self.items.append(ev.item)
            elif isinstance(ev, Completed):
                self.response_id, self.usage = ev.response_id, ev.token_usage
            elif isinstance(ev, RateLimits):
                self.limits = ev.snapshot

    def result(self, finish_reason: str) -> StreamResult:
        text = "".join(self.deltas) or "".join(
            i.text for i in self.items if i.type == "message")
        if finish_reason == "stop" and any(i.type == "function_call" for i in self.items):
            finish_reason = "tool_calls"
        ttfe = None if self.first_at is None else self.first_at - self.started
        return StreamResult(text, list(self.items), self.response_id, self.usage, self.limits,
                            [], self.model, finish_reason, ttfe, self.extensions)


class ResponseStream:
    """Iterate for events; ``collect()`` for the whole turn. Single consumer.

    ``on_end`` (optional) is told once how the turn ended (``codexapi_on_stream_end``):
    success, an error, or closed early. ``started`` is when the call began
    (``time.monotonic``), for ``StreamResult.time_to_first_event``.
    """

    def __init__(
        self,
        response: HttpResponse,
        decoder: StreamDecoder,
        prelude: list[Event] | None = None,
        *,
        on_end: OnEnd | None = None,
        started: float | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.response = response
        self._decoder = decoder
        self._prelude = prelude or []
        self._on_end = on_end
        self._turn = (None if on_end is None else _Turn(
            started, response.headers.get("openai-model"), extensions, time.monotonic))
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
        feed = decoder.feed_data
        turn = self._turn
        try:
            if turn is not None:
                turn.add(self._prelude, decoded=False)
            yield from self._prelude
            try:
                for chunk in self.response.iter_bytes():
                    events = feed(chunk)
                    if events:
                        if turn is not None:
                            turn.add(events)
                        yield from events
                    if decoder.done:
                        # The turn is over; a terminal failure (response.failed) raises from
                        # close() here, not at a close the server may never send.
                        break
            except ReadTimeout as exc:
                raise IdleTimeout(f"idle timeout waiting for SSE: {exc.message}") from exc
            except TransportError as exc:
                # Events may already be with the caller: re-sending would duplicate them, so a
                # lost connection here is a stream failure, never a retried transport error.
                raise StreamError(f"stream disconnected before completion: {exc.message}",
                                  retryable=exc.retryable) from exc
            events = decoder.close()
            if turn is not None:
                turn.add(events)
            yield from events
        except GeneratorExit:
            self._end("cancelled", None)
            raise
        except BaseException as exc:
            self._end("error", exc)
            raise
        finally:
            self._release()
            self._end("stop", None)

    def _end(self, reason: str, error: BaseException | None) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None and self._turn is not None:
            on_end(self._turn.result(reason), error)

    def _release(self) -> None:
        if not self._closed:
            self._closed = True
            if self._decoder.done:
                # Completed: take the body's tail so the connection can be pooled again.
                self.response.drain()
            self.response.close()

    def close(self) -> None:
        """Release the connection (idempotent). Unread events are discarded."""
        self._release()
        self._gen.close()
        self._end("cancelled", None)  # a stream closed before it was ever read

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
