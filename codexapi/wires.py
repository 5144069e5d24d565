"""The Wire: the unit of a wire API (Responses, Chat, Responses over WebSocket, yours).

A wire owns everything that differs between wire APIs: the path of each endpoint, the JSON
body, the framing of the streamed body and its decoder, and (for a wire that is not HTTP
request/response) how its byte stream is opened. Plugins register wires with the
``codexapi_register_wires(register)`` hook; ``Provider.wire`` names one. The core knows no
concrete wire: this module holds the protocol, the registry and the two default hook impls
that hand ``codexapi_endpoint_path`` / ``codexapi_build_body`` to the provider's wire (so a
plugin's wrapper can still edit what the wire answers).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from . import forksafe
from .bounds import iter_body
from .errors import (
    ConfigError,
    DeadlineExceeded,
    IdleTimeout,
    ReadTimeout,
    StreamDropped,
    TransportError,
)
from .hookspecs import hookimpl
from .http.transport import read_at_most

if TYPE_CHECKING:
    from .deadline import Deadline
    from .decoding import DecoderSettings, StreamDecoder
    from .events import Event
    from .http.transport import HttpRequest, HttpResponse, Transport
    from .models import Provider

#: The endpoints a wire may offer.
ENDPOINTS = ("stream", "compact", "models")


@runtime_checkable
class Wire(Protocol):
    """A wire API. One object serves every Client; keep per-call state in its decoders.

    ``path(endpoint)`` is the path relative to ``Provider.base_url`` (raise
    :class:`codexapi.UnsupportedEndpointError` for an endpoint the wire lacks);
    ``body(endpoint, request)`` the JSON body for a :class:`codexapi.ResponsesRequest`;
    ``decoder(endpoint, settings)`` a fresh :class:`~codexapi.decoding.StreamDecoder` for one
    stream, honouring its :class:`~codexapi.decoding.DecoderSettings` (a wire of an earlier
    version whose ``decoder`` takes only the endpoint keeps working, with default settings).

    Optional methods:

    - ``bind(provider) -> Wire``: a wire whose answers depend on the provider (the Responses
      wire's Azure ``store`` default) returns a copy bound to it; called once per Client.
    - ``resume(endpoint, body, position) -> (method, path, query) | None``: how to read on a
      stream that dropped after its decoder's ``position`` (``(response_id,
      sequence_number)``), sent with the turn's ``body``; None when that turn cannot be
      resumed. The Responses wire resumes background responses.
    - ``prewarms = True``: a wire that keeps connections between turns, for which
      ``Client.prewarm`` sends the request with ``"generate": false`` (others: nothing).
    - ``open(endpoint, request, context) -> EventSource``: a wire that is not plain HTTP
      request/response (WebSocket) opens its connection itself instead of ``Transport.send``
      and delivers events (see :class:`EventSource` and :class:`WireContext`).
    """

    name: str

    def path(self, endpoint: str) -> str: ...

    def body(self, endpoint: str, request: Any) -> dict[str, Any]: ...

    def decoder(self, endpoint: str) -> StreamDecoder: ...


@runtime_checkable
class EventSource(Protocol):
    """One turn's events as a connection wire (WebSocket) delivers them: what ``Wire.open``
    returns. A connection is not an HTTP response: its frames become events directly.

    ``status`` / ``headers`` are the answer's head (a WebSocket handshake's; ``101`` counts as
    success and is reported as ``200``). When ``status`` is not 2xx the turn was refused
    (a refused upgrade): ``error_body()`` gives what the server said (at most ``limit``
    bytes), and core maps it with the same code as an HTTP error answer (status, auth refresh,
    retry policy), then calls ``close()``.

    ``next_events()`` waits for the next events and returns them (never an empty list while
    the turn runs); an empty list means the turn is over (after its terminal event). Every
    wait is bounded by the request's ``deadline`` (``DeadlineExceeded``) and idle timeout
    (``IdleTimeout``); a lost connection is :class:`~codexapi.StreamDropped`; an error the
    server reports in-band is the typed error :mod:`codexapi.error_mapping` gives for it
    (an error with an HTTP status before any event is retried as that status would be).
    ``close()`` is idempotent; after a completed turn it may keep the connection for the next.

    Optional, read by core when present: ``position`` and ``skipped`` (as a decoder's, see
    :class:`~codexapi.decoding.StreamDecoder`), ``other_events``, and ``turn_state``: an
    ``x-codex-turn-state`` the server sent in-band, kept in the turn's ``SessionContext`` when
    the source is done.
    """

    status: int
    headers: Mapping[str, str]
    url: str

    def error_body(self, limit: int) -> bytes: ...

    def next_events(self) -> list[Event]: ...

    def close(self) -> None: ...


@attrs.frozen(eq=False)  # one per Client, by identity (the fork registry holds it weakly)
class WireContext:
    """What a wire's ``open(endpoint, request, context)`` gets besides the request.

    ``request`` (an :class:`~codexapi.HttpRequest`) is complete: the URL the wire's path gives
    (``http(s)://``; a WebSocket wire swaps the scheme), every header (provider, caller,
    credentials from the auth flow), the JSON body as bytes and ``timeout`` as
    ``(connect, head, idle)`` seconds. ``open`` returns an ``HttpResponse``-like object:
    ``status`` and ``headers`` of the handshake or response head, ``iter_bytes()`` yielding the
    bytes its decoder reads (raising :class:`codexapi.TransportError` /
    :class:`codexapi.ReadTimeout`), ``read()``, ``drain()`` and ``close()``. It raises
    :class:`codexapi.TransportError` for a failure before the head (retried under the
    provider's RetryPolicy); a non-2xx ``status`` goes through the same status, auth and retry
    handling as HTTP.

    ``connections`` is a dict private to one Client, for connections a wire keeps between
    turns (key it by the wire's name); values with a ``close()`` method are closed when the
    Client closes. In a child forked from the Client's process the dict starts empty: a child
    never touches a connection its parent opened. ``transport`` is the Client's HTTP
    transport (its proxy and TLS settings; ``send(request)`` streams).
    """

    provider: Provider
    transport: Transport
    connections: dict[str, Any] = attrs.field(factory=dict, eq=False)

    def __attrs_post_init__(self) -> None:
        forksafe.register(self)

    def _after_fork(self) -> None:
        # In a forked child the kept connections are its parent's sockets: the child's wires
        # open their own. The inherited ones are kept alive, unused, never closed (a close
        # frame would end the parent's connection).
        forksafe.keep(dict(self.connections))
        self.connections.clear()

    def close(self) -> None:
        """Close the connections wires kept (idempotent)."""
        items = list(self.connections.values())
        self.connections.clear()
        for conn in items:
            close = getattr(conn, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):  # closing must never raise
                    close()


@attrs.frozen
class RegisteredWire:
    """A wire and the plugin that registered it."""

    wire: Wire
    plugin: str | None


class WireRegistry(Mapping[str, Wire]):
    """The wires a plugin manager's plugins registered, by name. The first registration of a
    name wins: plugins are asked in pluggy's order, so yours overrides a built-in wire."""

    def __init__(self) -> None:
        self._wires: dict[str, RegisteredWire] = {}
        #: Registrations that lost to an earlier one with the same name.
        self.shadowed: list[RegisteredWire] = []

    def register(self, wire: Wire, plugin: str | None = None) -> None:
        name = getattr(wire, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a wire needs a non-empty string `name`, got {name!r}")
        missing = [m for m in ("path", "body", "decoder") if not callable(getattr(wire, m, None))]
        if missing:
            raise TypeError(f"wire {name!r} ({type(wire).__name__}) lacks {', '.join(missing)}()")
        entry = RegisteredWire(wire, plugin)
        if name in self._wires:
            self.shadowed.append(entry)
        else:
            self._wires[name] = entry

    def __getitem__(self, name: str) -> Wire:
        return self._wires[name].wire

    def __iter__(self) -> Iterator[str]:
        return iter(self._wires)

    def __len__(self) -> int:
        return len(self._wires)

    def source(self, name: str) -> str | None:
        """The plugin that registered wire ``name``."""
        return self._wires[name].plugin

    def resolve(self, provider: Provider) -> Wire:
        """The wire ``provider.wire`` names, bound to ``provider``; else a ConfigError."""
        name = str(provider.wire)
        entry = self._wires.get(name)
        if entry is None:
            known = ", ".join(repr(n) for n in sorted(self._wires)) or "none"
            raise ConfigError(f"provider {provider.name!r} uses wire {name!r}, which no plugin "
                              f"registers (registered wires: {known}); check the spelling, or "
                              "install and enable the plugin that provides it")
        wire = entry.wire
        bind: Callable[[Provider], Wire] | None = getattr(wire, "bind", None)
        return bind(provider) if bind is not None else wire


def open_stream(wire: Wire, transport: Transport, endpoint: str, request: HttpRequest,
                stream: bool, context: WireContext) -> HttpResponse | EventSource:
    """Send ``request`` the way ``wire`` wants: its own ``open`` when it has one, else HTTP."""
    opener = getattr(wire, "open", None)
    if opener is None:
        return transport.send(request)
    answer: HttpResponse | EventSource = opener(endpoint, request, context)
    return answer


def make_decoder(wire: Wire, endpoint: str, settings: DecoderSettings) -> StreamDecoder:
    """``wire.decoder(endpoint, settings)``; ``wire.decoder(endpoint)`` for a wire of an earlier
    version whose decoder takes no settings."""
    build = wire.decoder
    takes = _TAKES_SETTINGS.get(type(wire))
    if takes is None:
        try:
            params = inspect.signature(build).parameters.values()
        except (TypeError, ValueError):  # a builtin or C callable: assume today's protocol
            takes = True
        else:
            takes = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                        for p in params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)
        _TAKES_SETTINGS[type(wire)] = takes
    if takes:
        decoder: StreamDecoder = build(endpoint, settings)  # type: ignore[call-arg]
        return decoder
    decoder = build(endpoint)
    # Earlier versions bounded a decoder's messages through this method: kept for them.
    bound = getattr(decoder, "bound_messages", None)
    if callable(bound):
        bound(settings.max_message_bytes)
    return decoder


_TAKES_SETTINGS: dict[type, bool] = {}


class HttpEventSource:
    """An HTTP answer read by a wire's decoder, as an :class:`EventSource`: what core reads
    a streamed turn from on every HTTP wire (and what a connection wire may hand back for an
    HTTP fallback or resume).

    The body is read under the provider's bounds (``provider``; None: the transport's own);
    each read is bounded by the request's idle timeout (:class:`~codexapi.IdleTimeout`), the
    whole by ``deadline``; a connection lost mid-body is :class:`~codexapi.StreamDropped`.
    """

    __slots__ = ("_body", "_deadline", "_provider", "_state", "decoder", "headers", "response",
                 "status", "url")

    def __init__(self, response: HttpResponse, decoder: StreamDecoder,
                 provider: Provider | None = None, deadline: Deadline | None = None) -> None:
        self.response = response
        self.decoder = decoder
        self.status = response.status
        self.headers = response.headers
        self.url = response.url
        self._provider = provider
        self._deadline = deadline
        self._body: Iterator[bytes] | None = None
        #: 0: reading the body; 1: the body is over, the decoder's close() is due; 2: over.
        self._state = 0

    @property
    def other_events(self) -> int | None:
        """The decoder's ``other_events`` count (see :class:`~codexapi.decoding.StreamDecoder`)."""
        count = getattr(self.decoder, "other_events", None)
        return count if count.__class__ is int else None

    @property
    def skipped(self) -> int:
        count = getattr(self.decoder, "skipped", 0)
        return count if count.__class__ is int else 0

    @property
    def position(self) -> tuple[str, int] | None:
        position: tuple[str, int] | None = getattr(self.decoder, "position", None)
        return position

    @property
    def turn_state(self) -> str | None:
        state = getattr(self.decoder, "turn_state", None)
        return state if isinstance(state, str) else None

    def error_body(self, limit: int) -> bytes:
        return read_at_most(self.response, limit)

    def next_events(self) -> list[Event]:
        if self._state == 0:
            body = self._body
            if body is None:
                provider = self._provider
                body = self._body = iter(
                    iter_body(self.response, provider, what="stream") if provider is not None
                    else self.response.iter_bytes())
            decoder = self.decoder
            feed = decoder.feed_data
            deadline = self._deadline
            try:
                try:
                    if deadline is not None and deadline.passed():
                        raise deadline.exceeded(self.url, "reading the stream")
                    for chunk in body:
                        events = feed(chunk)
                        if decoder.done:
                            # The turn is over; a terminal failure (response.failed) raises
                            # from close(), not at a close the server may never send.
                            self._state = 1
                            if events:
                                return events
                            break
                        if events:
                            return events
                        if deadline is not None and deadline.passed():
                            raise deadline.exceeded(self.url, "reading the stream")
                except DeadlineExceeded as exc:
                    if deadline is None:
                        raise
                    raise deadline.exceeded(exc.url, "reading the stream") from exc
                except ReadTimeout as exc:
                    raise IdleTimeout(f"idle timeout waiting for SSE: {exc.message}") from exc
                except TransportError as exc:
                    # Events may already be with the caller: whether the turn is sent again
                    # or resumed is the call's decision (codexapi.call), never a plain retry.
                    raise StreamDropped(f"stream disconnected before completion: {exc.message}",
                                        retryable=exc.retryable) from exc
            except BaseException:
                self._state = 2
                raise
            self._state = 1
        if self._state == 1:
            self._state = 2
            return self.decoder.close()
        return []

    def close(self) -> None:
        if self._state != 3:
            done = self.decoder.done
            self._state = 3
            if done:
                # Completed: take the body's tail so the connection can be pooled again.
                self.response.drain()
            self.response.close()


# --- default hook impls: the provider's wire answers ------------------------------------------
# Registered as a built-in plugin (so every other plugin's answer comes first), and as hook
# impls rather than direct calls so that a plugin's wrapper sees, and may edit, the answer.


@hookimpl
def codexapi_endpoint_path(endpoint: str, wire: Wire) -> str:
    return wire.path(endpoint)


@hookimpl
def codexapi_build_body(endpoint: str, request: Any, wire: Wire) -> dict[str, Any]:
    return wire.body(endpoint, request)
