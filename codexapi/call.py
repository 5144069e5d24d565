"""The life of one call, with one owner: send, retry, re-send a turn that failed before its
first event, resume a background stream, honour the deadline, tell the observers, log a retry.

A :class:`Call` is made per client call (a streamed turn, a compact, a models listing). It
asks the :class:`~codexapi.dispatch.Dispatcher` for single attempts and its
:class:`~codexapi.retry.Retries` value whether and when to try again, whatever failed: a
request whose answer did not come (or came with a retryable status), a turn that broke before
its first event, a background stream that dropped. Observers hear of it exactly once:
``codexapi_on_call_start`` before the first request, ``codexapi_on_call_end`` however the call
ended (and, for a turn, ``codexapi_on_stream_end``, the older name).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from .auth import FlowState
from .convert import dumps
from .deadline import Deadline
from .decoding import DecoderSettings
from .dispatch import MAX_ERROR_BODY, Dispatcher
from .errors import (
    ApiError,
    CodexApiError,
    DeadlineExceeded,
    IdleTimeout,
    StreamDropped,
    TransportError,
)
from .events import Event
from .header_events import TURN_STATE_HEADER, header_events
from .http.compression import compress
from .http.transport import HttpRequest, HttpResponse
from .redact import redact_url, scrub_error, scrub_text, secrets_of
from .retry import Retries, TryKind
from .session import SessionContext
from .stream import ResponseStream, StreamResult
from .wires import EventSource, HttpEventSource

log = logging.getLogger("codexapi")

#: (connect, head, idle) seconds for each request of a call.
Timeouts = tuple[float, float, float]


class Call:
    """One call from start to end. Not shared between threads (a Client makes one per call)."""

    def __init__(self, dispatcher: Dispatcher, endpoint: str, request: Any = None,
                 deadline: Deadline | None = None,
                 extensions: dict[str, Any] | None = None) -> None:
        self.dispatcher = dispatcher
        self.provider = dispatcher.provider
        self.endpoint = endpoint
        #: What the caller asked (a ResponsesRequest, a client version, None for a ready body).
        self.request = request
        self.deadline = deadline
        #: Per-call scratch space for plugins, the same dict in every hook of this call.
        self.extensions: dict[str, Any] = extensions if extensions is not None else {}
        self.retries = Retries(self.provider.retry, self.provider.stream_max_retries)
        self._flow = FlowState()
        self._last: HttpRequest | None = None
        pm = dispatcher.pm
        self._observed = bool(pm.hook.codexapi_on_call_start.get_hookimpls()
                              or pm.hook.codexapi_on_call_end.get_hookimpls())
        self._ended = False
        # A streamed turn's, kept for its re-sends and resumes (see open_turn).
        self._body: Mapping[str, Any] = {}
        self._headers: dict[str, str] = {}
        self._timeouts: Timeouts | None = None
        self._session: SessionContext | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Tell ``codexapi_on_call_start`` observers the call begins (before any request)."""
        if self._observed:
            self.dispatcher.pm.call("codexapi_on_call_start", provider=self.provider,
                                    endpoint=self.endpoint, request=self.request,
                                    extensions=self.extensions)

    def end(self, result: Any, error: BaseException | None, stream_end: bool = False) -> None:
        """Tell the observers how the call ended; only the first call of this counts."""
        if self._ended:
            return
        self._ended = True
        pm = self.dispatcher.pm
        if stream_end:
            pm.call("codexapi_on_stream_end", provider=self.provider, request=self.request,
                    result=result, error=error)
        if self._observed:
            pm.call("codexapi_on_call_end", provider=self.provider, endpoint=self.endpoint,
                    request=self.request, result=result, error=error,
                    extensions=self.extensions)

    def run(self, work: Callable[[Call], Any]) -> Any:
        """``work(self)`` between the start and the end of a unary call."""
        self.start()
        try:
            result = work(self)
        except BaseException as exc:
            self.end(None, exc)
            raise
        self.end(result, None)
        return result

    def body(self) -> dict[str, Any]:
        """The JSON body of this call's request, built by the wire through the hooks."""
        return self.dispatcher.body(self.endpoint, self.request, self.extensions)

    # --- sending -------------------------------------------------------------------------
    def send(
        self,
        method: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        stream: bool = False,
        path: str | None = None,
        query: str | None = None,
        accept_statuses: tuple[int, ...] = (),
        timeout: Timeouts | None = None,
    ) -> HttpResponse | EventSource:
        """Send until a 2xx (or an ``accept_statuses``) answer arrives; else raise the typed
        error the retries ended on.

        ``path`` (relative to the base URL) defaults to the endpoint's path on the wire.
        Each try: build the request, tell ``codexapi_on_request`` observers (they may add
        headers), run the auth flow (which signs what they added), send — through the wire's
        own ``open`` when it has one (an :class:`~codexapi.wires.EventSource` comes back) —,
        tell ``codexapi_on_response``, let the flow answer the head.
        """
        dispatcher = self.dispatcher
        provider = self.provider
        url = provider.url_for_path(path if path is not None else dispatcher.path(self.endpoint))
        if query:
            url += ("&" if "?" in url else "?") + query
        payload = dumps(body) if body is not None else None
        if payload is not None and provider.request_compression and not dispatcher.opens:
            # An HTTP body encoding; a connection wire frames the body itself.
            payload = compress(payload, provider.request_compression)
        if timeout is None:
            timeout = (provider.connect_timeout, provider.read_timeout, provider.read_timeout)
        extra = dict(headers or {})
        deadline = self.deadline
        while True:
            left = None
            if deadline is not None:
                left = deadline.remaining()
                if left <= 0:
                    raise deadline.exceeded(redact_url(url))
            request = dispatcher.build(method, url, payload, extra, stream,
                                       _cut(timeout, left), self.extensions, left)
            self._last = request
            error: CodexApiError
            try:
                answer, request = dispatcher.attempt(self.endpoint, request, stream,
                                                     self.retries.attempt, self._flow)
                self._last = request
            except TransportError as exc:
                # e.g. http.client quoting a status line that echoes the key (the request here
                # is the one before auth: the auth's secrets are asked for too)
                error = scrub_error(exc, dispatcher.secrets(extra, request))
                if deadline is not None and (deadline.passed() or isinstance(
                        error, DeadlineExceeded)):
                    raise deadline.exceeded(redact_url(url)) from error
            else:
                status = answer.status
                if 200 <= status < 300 or status in accept_statuses:
                    return answer
                error = dispatcher.status_error(answer, request)
            self.again(error, "request")

    def again(self, error: Exception, kind: TryKind) -> None:
        """Wait before trying again after ``error`` (a ``kind`` of try: ``"request"``,
        ``"resend"`` or ``"resume"``), or raise the error when the retries say no.

        The one place a retry is decided, delayed, bounded by the deadline and logged."""
        provider = self.provider
        pm = self.dispatcher.pm

        def hook(attempt: int, err: Exception) -> float | None:
            delay: float | None = pm.call("codexapi_retry_delay", provider=provider,
                                          attempt=attempt, error=err)
            return delay

        self.retries, delay = self.retries.again(error, kind, hook)
        url = redact_url(self._last.url) if self._last is not None else ""
        deadline = self.deadline
        if deadline is not None and delay >= deadline.remaining():
            raise deadline.exceeded(url, f"the next try would have been in {delay:g} s"
                                    ) from error
        last = self._last
        # What was sent holds every secret of the call (the auth's included): asking the auth
        # again could fetch a new token.
        shown = scrub_text(str(error), secrets_of(last.headers, last.url,
                                                  provider.secret_headers)
                           if last is not None else [])
        if kind == "request":
            what = (f"after attempt {self.retries.attempt - 1} failed ({shown}); next try in "
                    f"{delay:.3f}s (attempt {self.retries.attempt} of "
                    f"{provider.retry.max_attempts})")
        else:
            what = (f"after the turn failed ({shown}); "
                    f"{'sending it again' if kind == 'resend' else 'resuming it'} in "
                    f"{delay:.3f}s ({self.retries.resends} of at most "
                    f"{provider.stream_max_retries})")
        # ``codexapi_retry`` on the record: a front end that shows retries its own way (the
        # chat spinner) can leave these lines out.
        log.warning("retrying %s %s %s", last.method if last is not None else "", url, what,
                    extra={"codexapi_retry": True})
        if last is not None:
            pm.call("codexapi_on_retry", provider=provider, request=last,
                    attempt=self.retries.attempt - 1 if kind == "request" else
                    self.retries.resends, error=error, delay=delay)
        self.dispatcher.sleep(delay)

    # --- a streamed turn -----------------------------------------------------------------
    def open_turn(self, body: Mapping[str, Any] | None, headers: Mapping[str, str],
                  timeout: tuple[float, float], session: SessionContext | None,
                  keep: str | None) -> ResponseStream:
        """Open a streamed turn: its first answer's head is back (retried as the retries
        allow) when this returns. ``body`` None: built from the request (:meth:`body`)."""
        provider = self.provider
        idle = provider.stream_idle_timeout
        connect, head = timeout
        self._timeouts = (connect, head, idle)
        self._headers = dict(headers)
        self._session = session
        # A turn every observer declined (codexapi_observe_stream) is not observed at all.
        observed = keep is not None
        self._observed = self._observed and observed
        self.start()
        # Once the start observers are told: a time to first event measured from here never
        # exceeds a duration an observer measures from its own start.
        started = time.monotonic()
        try:
            self._body = self.body() if body is None else body
            source = self._open_source("POST", self._body, None, None)
        except BaseException as exc:
            if observed:
                self.end(StreamResult("", [], None, None, finish_reason="error",
                                      extensions=self.extensions), exc, stream_end=True)
            raise
        prelude: list[Event] = header_events(source.headers)
        on_end = None
        if observed:
            def on_end(result: StreamResult, error: BaseException | None) -> None:
                self.end(result, error, stream_end=True)
        return ResponseStream(source, None, prelude, on_end=on_end, started=started,
                              extensions=self.extensions, keep_text=keep == "text",
                              secrets=lambda: self.dispatcher.secrets(self._headers, self._last),
                              recover=self.recover,
                              settle=self._settle if session is not None else None)

    def _settle(self, source: EventSource) -> None:
        # Turn state the server sent in-band (a ``response.metadata`` event) is the turn's,
        # as the upgrade's or response's header is: sent on its next requests.
        state = getattr(source, "turn_state", None)
        if state and self._session is not None:
            self._session.turn_state.capture(state)

    def _open_source(self, method: str, body: Mapping[str, Any] | None, path: str | None,
                     query: str | None) -> EventSource:
        answer = self.send(method, body, self._headers, stream=True, path=path, query=query,
                           timeout=self._timeouts)
        try:
            if not hasattr(answer, "next_events"):  # an HTTP answer, read by the decoder
                settings = DecoderSettings(self.provider.max_message_bytes,
                                           self.provider.skip_undecodable_events,
                                           answer.headers)
                source: EventSource = HttpEventSource(
                    answer, self.dispatcher.decoder(self.endpoint, settings), self.provider,
                    self.deadline)
            else:
                source = cast(EventSource, answer)
        except BaseException:
            answer.close()
            raise
        if self._session is not None:
            self._session.turn_state.capture(source.headers.get(TURN_STATE_HEADER))
        return source

    def recover(self, error: Exception, delivered: bool, failed: EventSource
                ) -> EventSource | None:
        """A new source for the turn that ``failed`` with ``error`` — sent again when no event
        reached the caller, resumed after the last event received when the wire can resume
        it — or None when the turn cannot go on (the caller then raises ``error``)."""
        if isinstance(error, DeadlineExceeded):
            if self.deadline is None:
                return None
            # A wire knows only what was left of the deadline when its request was built; the
            # caller is told the deadline it gave.
            raise self.deadline.exceeded(error.url, "reading the stream") from error
        if not getattr(error, "retryable", False):
            return None
        target = None
        if isinstance(error, StreamDropped | IdleTimeout):
            # A response the wire can read on from where it stopped (a background response
            # whose position is known) is resumed, whether or not an event reached the
            # caller yet: what the server already did is not done again.
            position = getattr(failed, "position", None)
            resume = getattr(self.dispatcher.wire, "resume", None)
            if position is not None and resume is not None:
                target = resume(self.endpoint, self._body, position)
        kind: TryKind
        if target is not None:
            kind = "resume"
        elif delivered:
            return None  # nothing is ever sent again once an event reached the caller
        else:
            # An answer with an HTTP status before any event (a connection wire's error
            # frame) is retried as that status would be.
            kind = "request" if isinstance(error, ApiError) else "resend"
        try:
            self.again(error, kind)
        except CodexApiError as final:
            if final is error:
                return None
            raise
        with contextlib.suppress(Exception):
            failed.close()
        if target is None:
            return self._open_source("POST", self._body, None, None)
        method, path, query = target
        return self._open_source(method, None, path, query)


def _cut(timeout: Timeouts, left: float | None) -> Timeouts:
    """Each timeout of a try, cut to the time left before the deadline."""
    if left is None:
        return timeout
    return (min(timeout[0], left), min(timeout[1], left), min(timeout[2], left))


__all__ = ["MAX_ERROR_BODY", "Call"]
