"""Responses over WebSocket: the Wire ``"responses_websocket"``, as the Codex CLI speaks it
(codex-rs/codex-api ``endpoint/responses_websocket.rs`` and the core client's WebSocket
session).

- The stream endpoint upgrades ``GET {base_url}/responses`` (``ws://`` / ``wss://``) with
  ``openai-beta: responses_websockets=2026-02-06``, the request's own headers (provider,
  session, credentials) and an offer of ``permessage-deflate``, then sends one
  ``{"type": "response.create", ...}`` text frame per turn, the Responses body's fields at the
  top level. Compact and models stay on HTTP.
- ``open`` returns an :class:`codexapi.wires.EventSource`: the connection, not a response.
  The server's JSON text frames are the Responses events, decoded by the Responses message
  decoder as they arrive; ``codex.rate_limits`` frames become ``RateLimits`` events, and the
  upgrade answer's rate-limit headers come once, before the first generating turn's events.
- A wrapped ``{"type": "error", "status_code": N, "error": {...}}`` frame (``status`` is read
  too) is the HTTP status N, mapped by :mod:`codexapi.error_mapping` as that HTTP answer would
  be: before the turn's first event core retries it as that status; later it ends the turn.
  ``websocket_connection_limit_reached`` (the server's 60-minute cap) closes the connection and
  the turn is sent again on a new one (a re-send under ``Provider.stream_max_retries``);
  ``previous_response_not_found`` after an incremental turn sends the whole request again on
  the same turn.
- Every wait (connect, upgrade head, each frame) ends by the call's ``deadline=``
  (DeadlineExceeded) and each message must come within the idle timeout (IdleTimeout):
  pings and unfinished fragments do not count as progress.
- One connection per session (the ``session-id`` header) is kept between turns and closed with
  the Client. On a kept connection a turn whose request extends the session's previous one
  (same settings, input = previous input + that response's output items + new items) is sent
  as ``previous_response_id`` and the new items only (``Provider.websocket_incremental_input``).
  ``"generate": false`` in the body (``Client.prewarm``) warms the connection up.
- A failed upgrade (5xx, 408, 429, a timeout or reset) is retried by core as the HTTP request would
  be; once a session's upgrade has failed :data:`UPGRADE_TRIES` times, that session falls back
  to HTTP (``POST responses``), logged once. 426, 404 and 405 (no WebSocket there) fall back at
  once; 401 goes through the auth's refresh; any other refusal is the mapped HTTP error. A
  dropped background response resumes over HTTP (the Responses wire's ``resume``).
- Proxies and TLS are the Client's :class:`codexapi.http.connect.Network`, the one its HTTP
  transport uses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from codexapi import (
    Completed,
    DeadlineExceeded,
    Event,
    IdleTimeout,
    OutputItemDone,
    OutputTextDelta,
    Provider,
    StreamDropped,
    TLSHandshakeError,
    TransportError,
    hookimpl,
)
from codexapi.plugin_api import (
    SAFETY_FASTER_MODEL_HEADER,
    TURN_STATE_HEADER,
    Deadline,
    DecoderSettings,
    Network,
    dumps,
    item_to_json,
    loads,
    redact_url,
)

from .websocket_connection import Closed, Connection, Refused, websocket_url
from .wire_responses import ResponsesWire, message_decoder

log = logging.getLogger("codexapi")

NAME = "responses_websocket"
OPENAI_BETA = "responses_websockets=2026-02-06"
#: How many times a session's upgrade is tried (each failure retried by core under the
#: provider's RetryPolicy) before the session falls back to HTTP, as the Codex CLI does.
UPGRADE_TRIES = 5
#: Refusals that mean there is no WebSocket endpoint there at all: HTTP at once.
_NO_WEBSOCKET = frozenset({404, 405, 426})
#: Upgrade answer headers every turn reports (header events, request ids).
_TURN_HEADERS = ("openai-model", "x-models-etag", "x-reasoning-included", "x-request-id",
                 "x-oai-request-id", "cf-ray", SAFETY_FASTER_MODEL_HEADER)
#: Close codes after which the same turn may succeed on a new connection.
_RETRYABLE_CLOSE = frozenset({None, 1000, 1001, 1006, 1011, 1012, 1013})
CONNECTION_LIMIT = "websocket_connection_limit_reached"
PREVIOUS_NOT_FOUND = "previous_response_not_found"


class ResponsesWebSocketWire(ResponsesWire):
    """The Responses API over a WebSocket; bodies, events and errors as the HTTP wire."""

    name = NAME
    #: ``Client.prewarm`` sends ``"generate": false`` turns on this wire (HTTP wires: nothing).
    prewarms = True

    def open(self, endpoint: str, request: Any, context: Any) -> Any:
        transport = context.transport
        if endpoint != "stream":
            return transport.send(_http_request(request, context.provider))
        sessions = context.connections.get(NAME)
        if sessions is None:
            sessions = context.connections.setdefault(NAME, _Sessions(context))
        if request.method != "POST":
            # Resuming a background response (GET responses/{id}?stream=true&starting_after=N)
            # is HTTP: an upgrade there is no turn.
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


class _Chain:
    """What a kept connection's server remembers of the session's last completed turn: its
    request (without ``input``), the input it had plus the output items it returned, and its
    response id (the crate's ``last_request`` / ``LastResponse``)."""

    __slots__ = ("input", "response_id", "settings")

    def __init__(self, settings: dict[str, Any], input_: list[Any], response_id: str) -> None:
        self.settings = settings
        self.input = input_
        self.response_id = response_id

    def delta(self, body: dict[str, Any]) -> list[Any] | None:
        """The new input items when ``body`` extends this turn (every other field equal,
        ``input`` starting with this turn's input and output), else None."""
        items = body.get("input")
        if not isinstance(items, list) or _settings(body) != self.settings:
            return None
        n = len(self.input)
        if len(items) < n or items[:n] != self.input:
            return None
        return items[n:]


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    # ``generate`` is the frame's, not the request's: a prewarm's turn is continued by the
    # same request generating.
    return {k: v for k, v in body.items() if k not in ("input", "generate")}


class _Sessions:
    """The connections one Client keeps, by session; and the sessions that use HTTP."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.provider: Provider = context.provider
        network = getattr(context.transport, "network", None)
        self.network: Network = network if isinstance(network, Network) else Network.resolve(
            self.provider.proxy, self.provider.ca_bundle)
        self._idle: dict[str, list[Connection]] = {}
        #: Sessions whose upgrades failed, and how many times in a row.
        self._failures: dict[str, int] = {}
        #: Sessions that fell back to HTTP.
        self._http: set[str] = set()
        self._lock = threading.Lock()
        self._closed = False

    # --- HTTP ----------------------------------------------------------------------------
    def http(self, request: Any) -> Any:
        """``request`` sent as HTTP, its streamed answer read by the Responses decoder."""
        from codexapi.plugin_api import HttpEventSource

        provider = self.provider
        response = self.context.transport.send(_http_request(request, provider))
        try:
            settings = DecoderSettings(provider.max_message_bytes,
                                       provider.skip_undecodable_events, response.headers)
            decoder = ResponsesWire.decoder(WIRE, "stream", settings)
            deadline = None if request.deadline is None else Deadline(request.deadline)
            return HttpEventSource(response, decoder, provider, deadline)
        except BaseException:
            response.close()
            raise

    def _fall_back(self, key: str, request: Any, why: str) -> Any:
        with self._lock:
            first = key not in self._http
            self._http.add(key)
            self._failures.pop(key, None)
        if first:
            session = f"session {key!r}" if key else "requests without a session id"
            log.warning("%s: %s; %s use HTTP from now on",
                        redact_url(websocket_url(request.url)), why, session)
        return self.http(request)

    # --- a turn on a connection ----------------------------------------------------------
    def turn(self, request: Any) -> Any:
        key = _header(request.headers, "session-id") or ""
        if key in self._http:
            return self.http(request)
        until = None if request.deadline is None else time.monotonic() + request.deadline
        body = loads(request.body) if request.body else {}
        if not isinstance(body, dict):
            body = {}
        conn = self._take(key)
        if conn is not None:
            try:
                return _Turn(conn, self, key, request, body, until, reused=True)
            except OSError:
                conn.close()  # the server closed it while idle: a fresh one, once
        opened = self._upgrade(request, until, key)
        if not isinstance(opened, Connection):
            return opened
        try:
            return _Turn(opened, self, key, request, body, until, reused=False)
        except OSError as exc:
            opened.close()
            raise _lost(opened, request, until, f"sending the turn failed: {exc}") from None

    def _upgrade(self, request: Any, until: float | None, key: str) -> Any:
        """A new connection; or, when the upgrade failed, what the turn gets instead: the
        refusal for core to map (and retry), the HTTP fallback, or the error raised."""
        connect, head, _ = request.timeout
        # Codex's websocket_connect_timeout_ms bounds the whole opening.
        limit = self.provider.websocket_connect_timeout
        try:
            conn = Connection.open(self.network, websocket_url(request.url), request.headers,
                                   (connect, head), until, self.provider.max_message_bytes,
                                   {"openai-beta": OPENAI_BETA}, limit=limit)
        except Refused as exc:
            status = exc.status
            if status is None or status < 400 or status in _NO_WEBSOCKET:
                return self._fall_back(key, request, f"the WebSocket upgrade was refused "
                                       f"({exc})")
            if (status in (408, 429) or status >= 500) and self._failed(key):
                return self._fall_back(key, request, f"the WebSocket upgrade failed "
                                       f"{UPGRADE_TRIES} times (last: {exc})")
            # Mapped by core as that HTTP answer: a 401 through the auth's refresh, a 5xx
            # retried under the RetryPolicy, another 4xx raised.
            return _Refusal(exc, websocket_url(request.url))
        except (DeadlineExceeded, TLSHandshakeError):
            raise
        except TransportError as exc:
            if exc.retryable and self._failed(key):
                return self._fall_back(key, request, f"the WebSocket upgrade failed "
                                       f"{UPGRADE_TRIES} times (last: {exc.message})")
            raise
        with self._lock:
            self._failures.pop(key, None)
        return conn

    def _failed(self, key: str) -> bool:
        """Count a failed upgrade of session ``key``; True once it is the last try."""
        with self._lock:
            count = self._failures[key] = self._failures.get(key, 0) + 1
        return count >= UPGRADE_TRIES

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


def _http_request(request: Any, provider: Provider) -> Any:
    """``request`` as the HTTP wire sends it: core leaves the body of a connection wire as is,
    so the provider's request compression (an HTTP body encoding) is applied here."""
    encoding = provider.request_compression
    if not encoding or not request.body or _header(request.headers, "content-encoding"):
        return request
    import attrs

    from codexapi.plugin_api import compress

    headers = dict(request.headers)
    headers["Content-Encoding"] = encoding
    return attrs.evolve(request, headers=headers, body=compress(request.body, encoding))


def _lost(conn: Connection, request: Any, until: float | None, detail: str,
          code: int | None = None) -> Exception:
    """A connection that failed mid-turn: DeadlineExceeded once the deadline has passed,
    else StreamDropped (retryable when the same turn may succeed on a new connection)."""
    where = redact_url(conn.url)
    if until is not None and time.monotonic() >= until:
        seconds = float(request.deadline or 0.0)  # what was left when the request was made
        return DeadlineExceeded(f"the call did not finish within its deadline of {seconds:g} s "
                                f"(reading the WebSocket {where})", seconds, url=where)
    return StreamDropped(f"the WebSocket {where} closed before response.completed: {detail}",
                         retryable=code in _RETRYABLE_CLOSE)


class _Refusal:
    """A refused upgrade as the :class:`codexapi.wires.EventSource` core maps like the HTTP
    error answer it is."""

    def __init__(self, refused: Refused, url: str) -> None:
        self.status = refused.status or 0
        self.headers = refused.headers
        self.url = url
        self._body = refused.body

    def error_body(self, limit: int) -> bytes:
        return self._body[:limit]

    def next_events(self) -> list[Event]:
        return []

    def close(self) -> None:
        pass


class _Turn:
    """One turn on a connection: the :class:`codexapi.wires.EventSource` the wire returns.
    Sends the turn's frame when made (raises OSError when the connection is gone)."""

    status = 200

    def __init__(self, conn: Connection, sessions: _Sessions, key: str, request: Any,
                 body: dict[str, Any], until: float | None, reused: bool) -> None:
        self._conn = conn
        self._sessions = sessions
        self._key = key
        self._until = until
        self._request = request
        self._body = body
        self._idle = request.timeout[2]
        provider = sessions.provider
        #: Whether the turn generates (a prewarm's ``"generate": false`` does not).
        self.generates = body.get("generate") is not False
        headers = {k: v for k in _TURN_HEADERS if (v := conn.headers.get(k)) is not None}
        if not reused and TURN_STATE_HEADER in conn.headers:
            headers[TURN_STATE_HEADER] = conn.headers[TURN_STATE_HEADER]
        if self.generates and not conn.told_limits:
            # The upgrade's rate limits, once per connection, before the first generating
            # turn's events (core makes them RateLimits events ahead of Created).
            conn.told_limits = True
            headers.update((k, v) for k, v in conn.headers.items()
                           if k.startswith("x-") and k != TURN_STATE_HEADER)
        self.headers: dict[str, str] = headers
        self.url = conn.url
        self._decoder = message_decoder(DecoderSettings(
            provider.max_message_bytes, provider.skip_undecodable_events, conn.headers))
        self._over = False
        #: An error met after some events of a read: raised by the next call.
        self._pending: Exception | None = None
        self._delivered = False
        #: The session's chain this turn extends (its frame was incremental), if any.
        self._extends: _Chain | None = None
        #: Output items of the turn, kept for the next turn's incremental input.
        self._outputs: list[dict[str, Any]] | None = (
            [] if provider.websocket_incremental_input else None)
        self._seen = -1
        self._completed: str | None = None
        self._send(_incremental_frame(conn, body, provider) if reused else None)

    def _send(self, incremental: tuple[bytes, _Chain] | None) -> None:
        conn = self._conn
        if incremental is not None:
            frame, self._extends = incremental
        else:
            frame, self._extends = _create_frame(self._request.body), None
        conn.chain = None  # whatever happens now, the server's last turn is this one
        end = time.monotonic() + self._idle
        conn.send_text(frame, end if self._until is None else min(end, self._until))
        self._next = time.monotonic() + self._request.timeout[1]

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
                    failure = self._error_frame(payload)
                    if failure is None:
                        continue
                    if failure is _AGAIN:
                        # Sent again in full on this connection: later frames are its.
                        payloads = payloads[i + 1:]
                        break
                    events = decoder.feed_data(payloads[:i]) if i else []
                    self._fail()
                    if events:
                        self._pending = failure
                        return self._took(events)
                    raise failure
            events = decoder.feed_data(payloads)
            if decoder.done:
                self._over = True
                events = self._took(events)
                self._finish()
                # The turn is over: the connection is clean for the next one, even when the
                # turn failed (response.failed raises from close()).
                self._sessions.give_back(conn, self._key)
                try:
                    tail = decoder.close()
                except Exception as exc:
                    if events:
                        self._pending = exc
                        return events
                    raise
                return events + self._took(tail) if tail else events
            if events:
                return self._took(events)

    def _took(self, events: list[Event]) -> list[Event]:
        self._delivered = self._delivered or bool(events)
        outputs = self._outputs
        if outputs is not None:
            seen = self._decoder.other_events
            if seen != self._seen:  # not only text deltas: look for finished items
                self._seen = seen
                delta = OutputTextDelta
                for event in [e for e in events if e.__class__ is not delta]:
                    if event.__class__ is OutputItemDone:
                        outputs.append(item_to_json(event.item))  # type: ignore[attr-defined]
                    elif isinstance(event, Completed):
                        self._completed = event.response_id
        return events

    def _finish(self) -> None:
        """After a completed turn: what the next turn on this connection may extend."""
        items = self._body.get("input")
        if (self._outputs is None or not self._completed or not isinstance(items, list)
                or "previous_response_id" in self._body):
            return
        self._conn.chain = _Chain(_settings(self._body), [*items, *self._outputs],
                                  self._completed)

    def _error_frame(self, payload: bytes) -> Exception | object | None:
        conn = self._conn
        try:
            obj = loads(payload)
        except ValueError:
            return None
        if not isinstance(obj, dict) or obj.get("type") != "error":
            return None
        error = obj.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if code == CONNECTION_LIMIT:
            # The server's cap on a connection's life: a new connection, the turn sent again.
            message = error.get("message") if isinstance(error, dict) else None
            return StreamDropped(f"{message or 'the WebSocket connection limit was reached'} "
                                 f"({CONNECTION_LIMIT}); the turn goes on a new connection",
                                 retryable=True)
        if code == PREVIOUS_NOT_FOUND and self._extends is not None and not self._delivered:
            # The server lost the previous response the incremental frame built on: the
            # whole request, on the same turn.
            log.info("%s: %s; sending the whole request again", redact_url(conn.url), code)
            self._send(None)
            return _AGAIN
        return _error_frame(obj, payload, conn.url)

    def _read(self) -> list[bytes]:
        conn = self._conn
        until = self._until
        wait = self._next if until is None or self._next < until else until
        try:
            payloads = conn.read_messages(wait)
        except TimeoutError:
            self._fail()
            if until is not None and wait == until:
                raise _lost(conn, self._request, until, "") from None
            raise IdleTimeout(f"no WebSocket message from {redact_url(conn.url)} within "
                              f"{self._idle:g} s (stream_idle_timeout); the connection was "
                              "closed") from None
        except Closed as exc:
            self._fail()
            raise _lost(conn, self._request, until, str(exc), exc.code) from None
        except OSError as exc:
            self._fail()
            raise _lost(conn, self._request, until, str(exc)) from None
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
        return self._decoder.position

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


#: A frame that was dealt with by sending the turn again (internal marker).
_AGAIN = object()


def _create_frame(body: bytes | None) -> bytes:
    """``response.create`` with the body's fields at the top level, without re-encoding
    them."""
    body = bytes(body or b"{}").strip()
    if body in (b"{}", b""):
        return b'{"type":"response.create"}'
    return b'{"type":"response.create",' + body[1:]


def _incremental_frame(conn: Connection, body: dict[str, Any], provider: Provider
                       ) -> tuple[bytes, _Chain] | None:
    """The frame continuing the connection's last turn with only the new input (the crate's
    ``get_incremental_items``), or None when the turn does not extend it."""
    chain = conn.chain
    if chain is None or not provider.websocket_incremental_input:
        return None
    delta = chain.delta(body)
    if delta is None:
        return None
    frame = {"type": "response.create", **body, "previous_response_id": chain.response_id,
             "input": delta}
    return dumps(frame), chain


def _error_frame(obj: dict[str, Any], payload: bytes, url: str) -> Exception | None:
    """The typed error an ``{"type": "error", ...}`` frame with an HTTP status stands for
    (None without one), mapped once as that HTTP answer would be."""
    from codexapi import error_mapping

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


def error_frame(payload: bytes, url: str) -> Exception | None:
    """The typed error a wrapped error frame (``{"type": "error", "status_code": N, ...}``)
    stands for, or None for any other message."""
    try:
        obj = loads(payload)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "error":
        return None
    return _error_frame(obj, payload, url)


__all__ = ["CONNECTION_LIMIT", "NAME", "OPENAI_BETA", "PREVIOUS_NOT_FOUND", "UPGRADE_TRIES",
           "WIRE", "ResponsesWebSocketWire", "error_frame", "websocket_url"]
