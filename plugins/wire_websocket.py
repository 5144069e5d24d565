"""Responses over WebSocket: the Wire ``"responses_websocket"``, as the Codex CLI speaks it
(codex-rs/codex-api ``endpoint/responses_websocket.rs``).

- The stream endpoint upgrades ``GET {base_url}/responses`` (``ws://`` / ``wss://``) with
  ``openai-beta: responses_websockets=2026-02-06`` and the request's own headers (provider,
  session, credentials), then sends one ``{"type": "response.create", ...}`` text frame per turn,
  the Responses body's fields at the top level. Compact and models stay on HTTP.
- ``open`` returns an :class:`codexapi.wires.EventSource`: the connection, not a response.
  The server's JSON text frames are the Responses events, decoded by the Responses message
  decoder as they arrive; ``codex.rate_limits`` frames become ``RateLimits`` events.
- A wrapped ``{"type": "error", "status_code": N, "error": {...}}`` frame (``status`` is read
  too) is the HTTP status N, mapped by :mod:`codexapi.error_mapping` as that HTTP answer would
  be: before the turn's first event core retries it as that status; later it ends the turn.
  A binary frame, a close before ``response.completed`` or a protocol violation is a typed
  error; a message past ``Provider.max_message_bytes`` is :class:`codexapi.ResponseTooLarge`.
- Every wait (connect, upgrade head, each frame) ends by the call's ``deadline=``
  (DeadlineExceeded) and each message must come within the idle timeout (IdleTimeout):
  pings and unfinished fragments do not count as progress.
- One connection per session (the ``session-id`` header) is kept between turns and closed with
  the Client. An upgrade the server refuses (any answer but ``101``) switches that Client to
  HTTP at once, with one log line, and the turn is sent as ``POST responses``. A dropped
  background response resumes over HTTP (the Responses wire's ``resume``); the next turn is on
  the WebSocket again.
- Proxies and TLS are the Client's :class:`codexapi.http.connect.Network`, the one its HTTP
  transport uses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from codexapi import hookimpl
from codexapi.convert import loads
from codexapi.deadline import Deadline
from codexapi.errors import DeadlineExceeded, IdleTimeout, StreamDropped
from codexapi.events import Event
from codexapi.header_events import SAFETY_FASTER_MODEL_HEADER, TURN_STATE_HEADER
from codexapi.http.connect import Network
from codexapi.models import Provider
from codexapi.redact import redact_url

from .websocket_connection import Closed, Connection, Refused, websocket_url
from .wire_responses import ResponsesDecoder, ResponsesWire

log = logging.getLogger("codexapi")

NAME = "responses_websocket"
OPENAI_BETA = "responses_websockets=2026-02-06"
#: Upgrade answer headers a turn reports (header events, request ids); rate limits are not
#: among them: on this wire they come as ``codex.rate_limits`` frames.
_TURN_HEADERS = ("openai-model", "x-models-etag", "x-reasoning-included", "x-request-id",
                 "x-oai-request-id", "cf-ray", SAFETY_FASTER_MODEL_HEADER)
#: Close codes after which the same turn may succeed on a new connection.
_RETRYABLE_CLOSE = frozenset({None, 1000, 1001, 1006, 1011, 1012, 1013})


class ResponsesWebSocketWire(ResponsesWire):
    """The Responses API over a WebSocket; bodies, events and errors as the HTTP wire."""

    name = NAME

    def open(self, endpoint: str, request: Any, context: Any) -> Any:
        transport = context.transport
        if endpoint != "stream":
            return transport.send(request, False)
        sessions = context.connections.get(NAME)
        if sessions is None:
            sessions = context.connections.setdefault(NAME, _Sessions(context))
        if request.method != "POST":
            # Resuming a background response (GET responses/{id}?stream=true&starting_after=N)
            # is HTTP: an upgrade there is no turn, and its refusal must not switch the
            # Client's next turns to HTTP.
            return sessions.http(request)
        return sessions.turn(request)

    def __repr__(self) -> str:
        return f"ResponsesWebSocketWire(provider={self.provider.name!r})"


WIRE = ResponsesWebSocketWire()


@hookimpl
def codexapi_register_wires(register: Callable[[Any], None]) -> None:
    register(WIRE)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _until(request: Any) -> float | None:
    """The monotonic time the call must be over by (``request.deadline`` is seconds left
    when the request was built)."""
    return None if request.deadline is None else time.monotonic() + request.deadline


class _Sessions:
    """The connections one Client keeps, by session; and whether it fell back to HTTP."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.provider: Provider = context.provider
        network = getattr(context.transport, "network", None)
        self.network: Network = network if isinstance(network, Network) else Network.resolve(
            self.provider.proxy, self.provider.ca_bundle)
        self.fallback = False
        self._idle: dict[str, list[Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    # --- HTTP ----------------------------------------------------------------------------
    def http(self, request: Any) -> Any:
        """``request`` sent as HTTP, its streamed answer read by the Responses decoder."""
        from codexapi.decoding import DecoderSettings
        from codexapi.wires import HttpEventSource

        provider = self.provider
        response = self.context.transport.send(request, True)
        try:
            settings = DecoderSettings(provider.max_message_bytes,
                                       provider.skip_undecodable_events, response.headers)
            decoder = WIRE.decoder("stream", settings)
            deadline = None if request.deadline is None else Deadline(request.deadline)
            return HttpEventSource(response, decoder, provider, deadline)
        except BaseException:
            response.close()
            raise

    # --- a turn on a connection ----------------------------------------------------------
    def turn(self, request: Any) -> Any:
        if self.fallback:
            return self.http(request)
        until = _until(request)
        key = _header(request.headers, "session-id") or ""
        frame = _create_frame(request.body)
        conn = self._take(key)
        if conn is not None:
            try:
                conn.send_text(frame, _send_until(request, until))
                return _Turn(conn, self, key, request, until, reused=True)
            except OSError:
                conn.close()  # the server closed it while idle: a fresh one, once
        try:
            conn = self._connect(request, until)
        except Refused as exc:
            self.fallback = True
            log.warning("%s: the WebSocket upgrade was refused (%s); this client uses HTTP "
                        "from now on", redact_url(websocket_url(request.url)), exc)
            return self.http(request)
        try:
            conn.send_text(frame, _send_until(request, until))
        except OSError as exc:
            conn.close()
            raise _lost(conn, until, f"sending the turn failed: {exc}") from None
        return _Turn(conn, self, key, request, until, reused=False)

    def _connect(self, request: Any, until: float | None) -> Connection:
        connect, head, _ = request.timeout
        return Connection.open(self.network, websocket_url(request.url), request.headers,
                               (connect, head), until, self.provider.max_message_bytes,
                               {"openai-beta": OPENAI_BETA})

    def _take(self, key: str) -> Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None or conn.reusable():
                return conn
            conn.close()

    def give_back(self, conn: Connection, key: str) -> None:
        with self._lock:
            if not self._closed and not conn.closed:
                self._idle.setdefault(key, []).append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _send_until(request: Any, until: float | None) -> float:
    """Sending the turn's frame waits at most the idle timeout, and never past the deadline."""
    end = time.monotonic() + request.timeout[2]
    return end if until is None else min(end, until)


def _create_frame(body: bytes | None) -> bytes:
    """``response.create`` with the body's fields at the top level, without re-encoding
    them."""
    body = bytes(body or b"{}").strip()
    if body in (b"{}", b""):
        return b'{"type":"response.create"}'
    return b'{"type":"response.create",' + body[1:]


def _lost(conn: Connection, until: float | None, detail: str,
          code: int | None = None) -> Exception:
    """A connection that failed mid-turn: DeadlineExceeded once the deadline has passed,
    else StreamDropped (retryable when the same turn may succeed on a new connection)."""
    where = redact_url(conn.url)
    if until is not None and time.monotonic() >= until:
        return DeadlineExceeded(f"the deadline passed on the WebSocket {where}", 0.0,
                                url=where)
    return StreamDropped(f"the WebSocket {where} closed before response.completed: {detail}",
                         retryable=code in _RETRYABLE_CLOSE)


class _Turn:
    """One turn on a connection: the :class:`codexapi.wires.EventSource` the wire returns."""

    status = 200

    def __init__(self, conn: Connection, sessions: _Sessions, key: str, request: Any,
                 until: float | None, reused: bool) -> None:
        self._conn = conn
        self._sessions = sessions
        self._key = key
        self._until = until
        _, head, idle = request.timeout
        self._idle = idle
        # The first message may take the head timeout; each later one the idle timeout.
        self._next = time.monotonic() + head
        headers = {k: v for k in _TURN_HEADERS if (v := conn.headers.get(k)) is not None}
        if not reused and TURN_STATE_HEADER in conn.headers:
            headers[TURN_STATE_HEADER] = conn.headers[TURN_STATE_HEADER]
        self.headers: dict[str, str] = headers
        self.url = conn.url
        provider = sessions.provider
        self._decoder = ResponsesDecoder(headers.get(SAFETY_FASTER_MODEL_HEADER) or None,
                                         provider.skip_undecodable_events)
        self._over = False
        #: An error met after some events of a read: raised by the next call.
        self._pending: Exception | None = None

    # --- the EventSource protocol --------------------------------------------------------
    def error_body(self, limit: int) -> bytes:
        return b""

    def next_events(self) -> list[Event]:
        if self._pending is not None:
            error, self._pending = self._pending, None
            raise error
        if self._over:
            return []
        conn = self._conn
        decoder = self._decoder
        while True:
            payloads = self._read()
            for i, payload in enumerate(payloads if conn.marked else ()):
                if b'"error"' in payload:
                    failure = _error_frame(payload, conn.url)
                    if failure is not None:
                        # Events before it first; the error on the next call.
                        events = decoder.feed_data(payloads[:i]) if i else []
                        self._fail()
                        if events:
                            self._pending = failure
                            return events
                        raise failure
            events = decoder.feed_data(payloads)
            if decoder.done:
                self._over = True
                # The turn is complete: the connection is clean for the next one, even when
                # the turn failed (response.failed raises from close()).
                self._sessions.give_back(conn, self._key)
                tail = decoder.close()
                return events + tail if tail else events
            if events:
                return events

    def _read(self) -> list[bytes]:
        conn = self._conn
        until = self._until
        wait = self._next if until is None or self._next < until else until
        try:
            payloads = conn.read_messages(wait)
        except TimeoutError:
            self._fail()
            if until is not None and wait == until:
                raise _lost(conn, until, "") from None
            raise IdleTimeout(f"no WebSocket message from {redact_url(conn.url)} within "
                              f"{self._idle:g} s (stream_idle_timeout); the connection was "
                              "closed") from None
        except Closed as exc:
            self._fail()
            raise _lost(conn, until, str(exc), exc.code) from None
        except OSError as exc:
            self._fail()
            raise _lost(conn, until, str(exc)) from None
        except BaseException:
            self._fail()
            raise
        self._next = time.monotonic() + self._idle
        return payloads

    def _fail(self) -> None:
        # Frames of an unfinished turn would reach the next one: drop the connection.
        self._over = True
        self._conn.close()

    def close(self) -> None:
        if not self._over:
            self._over = True
            self._conn.close()

    # --- what core may read besides ------------------------------------------------------
    @property
    def position(self) -> tuple[str, int] | None:
        """Where a resumed background stream continues: ``(response_id, sequence_number)``
        of the last event decoded, or None."""
        decoder = self._decoder
        if decoder.response_id is None or decoder.sequence_number is None:
            return None
        return decoder.response_id, decoder.sequence_number

    @property
    def skipped(self) -> int:
        return self._decoder.skipped

    @property
    def other_events(self) -> int:
        return self._decoder.other_events

    @property
    def turn_state(self) -> str | None:
        """``x-codex-turn-state`` that arrived in-band (``response.metadata``), if any."""
        return self._decoder.turn_state


def _error_frame(payload: bytes, url: str) -> Exception | None:
    """The typed error an ``{"type": "error", ...}`` frame with an HTTP status stands for
    (None for any other message), mapped once as that HTTP answer would be."""
    from codexapi import error_mapping

    try:
        obj = loads(payload)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "error":
        return None
    # ``status_code`` in the crate; ``status`` in some servers' (the embedded one's) frames.
    status = obj.get("status_code", obj.get("status"))
    if isinstance(status, bool) or not isinstance(status, int) or 200 <= status < 300 \
            or not 100 <= status <= 599:
        return None
    headers: dict[str, str] = {}
    raw = obj.get("headers")
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(value, bool):
                headers[str(name).lower()] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                headers[str(name).lower()] = str(value)
    return error_mapping.error_object(status, obj.get("error"), headers,
                                      payload.decode("utf-8", "replace"), redact_url(url),
                                      "in a WebSocket error frame")


__all__ = ["NAME", "OPENAI_BETA", "WIRE", "ResponsesWebSocketWire", "websocket_url"]
