"""One try of a call: the Wire (through hooks) for path, body and decoder; the request built;
the auth flow; the send (HTTP, or the wire's own connection); the typed error for a refusal.

The dispatcher holds what a Client's calls share and no per-call state; whether to try again
is the call's (:mod:`codexapi.call`). It knows no concrete wire or auth: each question goes to
the plugin hooks or the provider's Wire.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from . import error_mapping
from .auth import Auth, Flow, FlowAuth, FlowState
from .convert import loads
from .decoding import DecoderSettings, StreamDecoder
from .errors import (
    ApiError,
    CodexApiError,
    ConfigError,
    PluginError,
    TransportError,
    UnsupportedEndpointError,
)
from .http.compression import DecodedTooLarge, UndecodableBody, accept_encoding, decompress
from .http.headers import check_headers
from .http.transport import USER_AGENT, HttpRequest, HttpResponse, Transport, read_at_most
from .models import Provider
from .plugins import PluginManager
from .ratelimits import retry_after_seconds
from .redact import (
    RequestView,
    SecretSet,
    preview,
    produced,
    redact_headers,
    redact_url,
    scrub_body,
    scrub_text,
    secrets_of,
    snapshot,
)
from .wires import EventSource, Wire, WireContext, make_decoder, open_stream

log = logging.getLogger("codexapi")

#: How much of an error body is read and kept (a misconfigured proxy may send megabytes).
MAX_ERROR_BODY = 256 * 1024


class Dispatcher:
    """Sends requests for one Client. Thread-safe: it holds no per-call state."""

    def __init__(
        self,
        provider: Provider,
        pm: PluginManager,
        auth: Auth | FlowAuth,
        transport: Transport,
        wire: Wire,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.pm = pm
        self.auth = auth
        self.transport = transport
        self.wire = wire
        self.context = WireContext(provider, transport)
        #: Whether the wire opens its own connection (``Wire.open``) instead of HTTP.
        self.opens = callable(getattr(wire, "open", None))
        self.sleep = sleep
        self.clock = clock
        #: What this dispatcher's requests carried that is secret: scrubbed from every log
        #: record, error and preview while the client lives (cleared when it closes).
        self.known = SecretSet()
        self.known.add(secrets_of(provider.headers, provider.url_for_path(""),
                                  provider.secret_headers, params=provider.query_params))

    # --- hook questions ------------------------------------------------------------------
    def path(self, endpoint: str) -> str:
        path = self.pm.call("codexapi_endpoint_path", provider=self.provider,
                            endpoint=endpoint, wire=self.wire)
        if path is None:
            raise UnsupportedEndpointError(
                f"no plugin provides the {endpoint!r} endpoint for wire "
                f"{str(self.provider.wire)!r} (provider {self.provider.name!r})")
        return str(path)

    def body(self, endpoint: str, request: Any,
             extensions: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.pm.call("codexapi_build_body", provider=self.provider, endpoint=endpoint,
                            request=request, wire=self.wire,
                            extensions=extensions if extensions is not None else {})
        if body is None:
            raise UnsupportedEndpointError(
                f"no plugin builds a {endpoint!r} body for wire {str(self.provider.wire)!r}")
        return dict(body)

    def decoder(self, endpoint: str, settings: DecoderSettings) -> StreamDecoder:
        """The wire's decoder for one stream, built with ``settings``."""
        decoder = make_decoder(self.wire, endpoint, settings)
        if not callable(getattr(decoder, "feed_data", None)) or not callable(
                getattr(decoder, "close", None)):
            raise PluginError(f"wire {self.wire.name!r} ({type(self.wire).__name__}) returned "
                              f"{type(decoder).__name__} from decoder(), expected a "
                              "StreamDecoder (feed_data, close, done)")
        return decoder

    # --- sending -------------------------------------------------------------------------
    def secrets(self, extra_headers: Mapping[str, str] | None = None,
                request: HttpRequest | None = None) -> list[str]:
        """The secret values a request of this dispatcher carries (``request``'s own too, when
        given: what an auth flow added), longest first, to scrub from what an error or a log
        line shows. Computed only when needed."""
        headers = {**self.provider.headers, **(extra_headers or {})}
        # An auth that renews its credentials says what it sent without renewing them (a
        # token refresh is no way to find out what to scrub).
        auth_headers = (getattr(self.auth, "issued_headers", None)
                        or getattr(self.auth, "headers", None))
        if callable(auth_headers):
            with contextlib.suppress(Exception):
                headers.update(auth_headers())
        names = self.provider.secret_headers
        found = set(secrets_of(headers, self.provider.url_for_path(""), names,
                               params=self.provider.query_params))
        if request is not None:
            found.update(secrets_of(request.headers, request.url, names))
        return sorted(found, key=len, reverse=True)

    def build(
        self, method: str, url: str, body: bytes | None, extra: Mapping[str, str], stream: bool,
        timeout: tuple[float, float, float], extensions: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> HttpRequest:
        """The request before auth. Precedence as in codex-api: provider < caller extras <
        Accept < auth (the auth flow adds its headers last)."""
        headers: dict[str, str] = {"User-Agent": USER_AGENT, "Accept-Encoding": accept_encoding()}
        headers.update(self.provider.headers)
        headers.update(extra)
        problem = check_headers(headers)
        if problem is not None:
            # Local input (a CRLF in a conversation id, a bad header name): nothing was sent
            # and a retry cannot help.
            raise ConfigError(f"cannot send {method} {redact_url(url)}: {problem}")
        if stream:
            headers["Accept"] = "text/event-stream"
        if body is not None:
            headers["Content-Type"] = "application/json"
            if self.provider.request_compression and not self.opens:
                headers["Content-Encoding"] = self.provider.request_compression
        provider = self.provider
        return HttpRequest(method, url, headers, body, timeout,
                           extensions if extensions is not None else {}, deadline,
                           provider.max_body_bytes, provider.max_decompressed_bytes)

    def attempt(self, endpoint: str, request: HttpRequest, stream: bool, attempt: int,
                state: FlowState) -> tuple[HttpResponse | EventSource, HttpRequest]:
        """One try, through the auth flow: the answer to act on and the request sent."""
        provider = self.provider
        self.known.add(secrets_of(request.headers, request.url, provider.secret_headers))
        self.pm.call("codexapi_on_request", provider=provider, request=request,
                     attempt=attempt)
        unsigned = snapshot(request)
        flow = Flow(self.auth, request, state)
        request = flow.first()
        self._remember(unsigned, request)
        while True:
            started = self.clock()
            response = open_stream(self.wire, self.transport, endpoint, request, stream,
                                   self.context)
            try:
                self.pm.call("codexapi_on_response", provider=provider, request=request,
                             response=response, attempt=attempt,
                             elapsed=self.clock() - started)
                # An auth flow reads the head: an EventSource has its status and headers too.
                again = flow.answer(cast(HttpResponse, response))
            except BaseException:
                response.close()
                flow.close()
                raise
            if again is None:
                return response, request
            # The flow answered this head (a challenge, a refreshed credential) with another
            # request: the same attempt, not a retry of a failure.
            how = ("credentials refreshed" if not isinstance(self.auth, FlowAuth) else
                   f"answered by {type(self.auth).__name__}.auth_flow()")
            log.info("%s %s: %d, %s; sending it again", request.method,
                     redact_url(request.url), response.status, how)
            response.close()
            request = again
            self._remember(unsigned, request)
            self.pm.call("codexapi_on_request", provider=provider, request=request,
                         attempt=attempt)

    def _remember(self, unsigned: RequestView, signed: HttpRequest) -> None:
        """Make the secrets of a request about to be sent known to every scrub (logs of any
        library included) before anything about it can be logged: its secret-named headers
        and query values, and whatever the auth added to it."""
        self.known.add([*secrets_of(signed.headers, signed.url, self.provider.secret_headers),
                        *produced(*self._plain(unsigned, signed))])

    def _plain(self, unsigned: RequestView, signed: HttpRequest
               ) -> tuple[RequestView, RequestView]:
        """Both requests with a compressed body decoded (``request_compression``), so what an
        auth put in the JSON body is found (only when the auth changed the body)."""
        after = snapshot(signed)
        if after.body is unsigned.body or after.body == unsigned.body:
            return unsigned, after
        limit = self.provider.max_decompressed_bytes

        def plain(view: RequestView) -> RequestView:
            encoding = next((str(v) for k, v in view.headers.items()
                             if str(k).lower() == "content-encoding"), "")
            if not encoding or not isinstance(view.body, bytes):
                return view
            try:
                return view._replace(body=decompress(view.body, encoding, limit))
            except (DecodedTooLarge, UndecodableBody):
                return view

        return plain(unsigned), plain(after)

    def status_error(self, response: HttpResponse | EventSource, request: HttpRequest
                     ) -> CodexApiError:
        """The typed error for a non-2xx answer (its body read up to ``MAX_ERROR_BODY``)."""
        status = response.status
        # A server may echo the credential it rejected (a 401 quoting the key, in the body or
        # in www-authenticate / location): scrub the secret values sent from all of it.
        secrets = secrets_of(request.headers, request.url, self.provider.secret_headers)
        # Kept on the error for callers (Retry-After, rate limits); cookies are not theirs.
        headers = {k.lower(): scrub_text(v, secrets)
                   for k, v in redact_headers(response.headers).items()}
        request_id = error_mapping.request_id(headers)
        url = redact_url(request.url)
        if 300 <= status < 400:
            response.close()
            location = (headers.get("location") or "").strip()
            if status == 304:
                message = (f"the server answered 304 Not Modified to {request.method} {url}, "
                           "which only answers a conditional GET; is a cache or proxy between "
                           "you and the server?")
            elif not location or location.startswith(";"):
                message = (f"the server answered {status} to {request.method} {url} without a "
                           "usable Location; redirects are not followed anyway (set base_url "
                           "to the final address)")
            else:
                message = (f"the server redirected {request.method} {url} to "
                           f"{redact_url(location)}; redirects are not followed (set base_url "
                           "to the final address)")
            return ApiError(status, message, None, request_id=request_id, url=url,
                            headers=headers)
        try:
            raw = _read_limited(response)
        except TransportError as exc:
            raw = f"<body unreadable: {exc.message}>".encode()
        finally:
            response.close()
        text = scrub_body(raw.decode("utf-8", "replace"), secrets)
        message, code = error_message(status, text, headers.get("content-type", ""))
        return error_mapping.http_error(ApiError(
            status, message, text, request_id=request_id, url=url, code=code,
            retry_after=retry_after_seconds(headers), headers=headers))


def _read_limited(response: HttpResponse | EventSource) -> bytes:
    error_body = getattr(response, "error_body", None)
    if error_body is not None:
        return bytes(error_body(MAX_ERROR_BODY))[:MAX_ERROR_BODY]
    return read_at_most(cast(HttpResponse, response), MAX_ERROR_BODY)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
            413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


def error_message(status: int, text: str, content_type: str) -> tuple[str, str | None]:
    """The server's error message from a JSON error body, or a description of what came."""
    reason = _REASONS.get(status, "error")
    try:
        data = loads(text) if text.strip() else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            msg = err.get("message")
            code = err.get("code") if isinstance(err.get("code"), str) else err.get("type")
            return (str(msg) if msg else f"{reason} ({code or 'no message'})",
                    code if isinstance(code, str) else None)
        if isinstance(err, str):
            return err, None
        for key in ("message", "detail"):
            if isinstance(data.get(key), str):
                return str(data[key]), None
    snippet = preview(" ".join(_strip_tags(text).split()), 200)
    kind = content_type.split(";")[0].strip() or "no content type"
    if not snippet:
        return f"{reason} (empty body)", None
    return f"{reason}: the server sent a non-JSON body ({kind}): {snippet}", None


def _strip_tags(text: str) -> str:
    out = []
    depth = 0
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
            out.append(" ")
        elif not depth:
            out.append(ch)
    return "".join(out)
