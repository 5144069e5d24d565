"""From a call to an HTTP response: hooks for path, body and auth; send; status; retry.

The dispatcher is the only place that loops over attempts. It knows no concrete wire, auth or
retry policy: each question goes to the plugin hooks. Once a 2xx response head is back it is
handed over; the stream is never re-sent after that (no duplicated output).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import pluggy

from . import failures
from .auth import Auth
from .compression import ACCEPT_ENCODING, compress
from .errors import (
    ApiError,
    AuthError,
    CodexApiError,
    PluginError,
    TransportError,
    UnsupportedEndpointError,
)
from .jsonutil import dumps, loads
from .models import Provider
from .plugins import DEFAULT_PLUGINS
from .ratelimits import retry_after_seconds
from .redact import is_secret_header, redact_headers, redact_url, scrub_text
from .transport import USER_AGENT, HttpRequest, HttpResponse, Transport

log = logging.getLogger("codexapi")

#: How much of an error body is read and kept (a misconfigured proxy may send megabytes).
MAX_ERROR_BODY = 256 * 1024


def call_first(pm: pluggy.PluginManager, hook: str, expect: Any, **kwargs: Any) -> Any:
    """Call a firstresult hook impl by impl, so a bad answer can name the plugin that gave it."""
    impls = [i for i in reversed(getattr(pm.hook, hook).get_hookimpls())
             if not (i.hookwrapper or getattr(i, "wrapper", False))]
    # First-party plugins are the fallback: every other plugin is asked before them, even one
    # marked trylast (pluggy alone would call it after the earlier-registered built-in).
    impls.sort(key=lambda i: i.plugin_name in DEFAULT_PLUGINS)
    for impl in impls:
        args = [kwargs[name] for name in impl.argnames]
        try:
            result = impl.function(*args)
        except CodexApiError:
            raise
        except Exception as exc:
            raise _raised(impl.plugin_name, hook, exc) from exc
        if result is None:
            continue
        if expect is not None and not isinstance(result, expect):
            raise PluginError(
                f"plugin {impl.plugin_name!r} returned {type(result).__name__} from {hook}, "
                f"expected {getattr(expect, '__name__', expect)}",
                plugin=impl.plugin_name,
            )
        return result
    return None


def notify(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> None:
    """Call every impl of an observer hook; a failing observer is named in a PluginError."""
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        try:
            impl.function(*[kwargs[name] for name in impl.argnames])
        except CodexApiError:
            raise
        except Exception as exc:
            raise _raised(impl.plugin_name, hook, exc) from exc


def _raised(plugin: str, hook: str, exc: Exception) -> PluginError:
    return PluginError(f"plugin {plugin!r} raised {type(exc).__name__} in {hook}: {exc}",
                       plugin=plugin)


@runtime_checkable
class _Decoder(Protocol):
    def feed(self, message: Any) -> Any: ...

    def close(self) -> Any: ...


class Dispatcher:
    """Sends requests for one Client. Thread-safe: it holds no per-call state."""

    def __init__(
        self,
        provider: Provider,
        pm: pluggy.PluginManager,
        auth: Auth,
        transport: Transport,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.pm = pm
        self.auth = auth
        self.transport = transport
        self.sleep = sleep
        self.clock = clock

    # --- hook questions ------------------------------------------------------------------
    def path(self, endpoint: str) -> str:
        path = call_first(self.pm, "codexapi_endpoint_path", str, provider=self.provider,
                          endpoint=endpoint)
        if path is None:
            raise UnsupportedEndpointError(
                f"no plugin provides the {endpoint!r} endpoint for wire "
                f"{self.provider.wire.value!r} (provider {self.provider.name!r})")
        return str(path)

    def body(self, endpoint: str, request: Any) -> dict[str, Any]:
        body = call_first(self.pm, "codexapi_build_body", dict, provider=self.provider,
                          endpoint=endpoint, request=request)
        if body is None:
            raise UnsupportedEndpointError(
                f"no plugin builds a {endpoint!r} body for wire {self.provider.wire.value!r}")
        return dict(body)

    def decoder(self, endpoint: str) -> Any:
        dec = call_first(self.pm, "codexapi_stream_decoder", _Decoder, provider=self.provider,
                         endpoint=endpoint)
        if dec is None:
            raise UnsupportedEndpointError(
                f"no plugin decodes {endpoint!r} streams for wire {self.provider.wire.value!r}")
        return dec

    # --- sending -------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        try:
            headers = self.auth.headers()
        except AuthError:
            raise
        except Exception as exc:
            raise AuthError(f"{type(self.auth).__name__}.headers() raised "
                            f"{type(exc).__name__}: {exc}") from None
        if not isinstance(headers, Mapping):
            raise AuthError(f"{type(self.auth).__name__}.headers() returned "
                            f"{type(headers).__name__}, expected a dict")
        for name, value in headers.items():
            # Checked here because http.client would reject a bad value with the value (a
            # credential) quoted in its error message.
            if not isinstance(name, str) or not isinstance(value, str) or any(
                    ord(c) < 0x20 or ord(c) == 0x7F for c in name + value):
                raise AuthError(f"{type(self.auth).__name__}.headers() returned an invalid "
                                f"value for header {str(name)[:40]!r}: header names and values "
                                "must be strings without line breaks")
        return dict(headers)

    def build(
        self, method: str, url: str, body: bytes | None, extra: Mapping[str, str], stream: bool,
        timeout: tuple[float, float],
    ) -> HttpRequest:
        # Precedence as in codex-api: provider < caller extras < Accept < auth.
        headers: dict[str, str] = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING}
        headers.update(self.provider.headers)
        headers.update(extra)
        if stream:
            headers["Accept"] = "text/event-stream"
        if body is not None:
            headers["Content-Type"] = "application/json"
            if self.provider.request_compression:
                headers["Content-Encoding"] = self.provider.request_compression
        headers.update(self._auth_headers())
        return HttpRequest(method, url, headers, body, timeout)

    def send(
        self,
        method: str,
        endpoint: str,
        body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        *,
        stream: bool = False,
        query: str | None = None,
        accept_statuses: tuple[int, ...] = (),
        timeout: tuple[float, float] | None = None,
    ) -> HttpResponse:
        """Send until a 2xx (or an ``accept_statuses``) head arrives; raise a typed error."""
        provider = self.provider
        url = provider.url_for_path(self.path(endpoint))
        if query:
            url += ("&" if "?" in url else "?") + query
        payload = dumps(body) if body is not None else None
        if payload is not None and provider.request_compression:
            payload = compress(payload, provider.request_compression)
        if timeout is None:
            read = provider.stream_idle_timeout if stream else provider.read_timeout
            timeout = (provider.connect_timeout, read)
        extra = dict(extra_headers or {})
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            request = self.build(method, url, payload, extra, stream, timeout)
            notify(self.pm, "codexapi_on_request", provider=provider, request=request,
                   attempt=attempt)
            started = self.clock()
            error: Exception
            try:
                response = self.transport.send(request, stream)
            except TransportError as exc:
                error = exc
            else:
                try:
                    notify(self.pm, "codexapi_on_response", provider=provider, request=request,
                           response=response, attempt=attempt, elapsed=self.clock() - started)
                except BaseException:
                    response.close()
                    raise
                status = response.status
                if 200 <= status < 300 or status in accept_statuses:
                    return response
                error = self._status_error(response, request)
                if status == 401 and not refreshed:
                    refreshed = True
                    if self._refresh():
                        # A refreshed credential is a new request, not a retry of a failure.
                        log.info("%s %s: 401, credentials refreshed; sending it again",
                                 method, redact_url(url))
                        attempt -= 1
                        continue
            delay = None
            if attempt < provider.retry.max_attempts:
                delay = call_first(self.pm, "codexapi_retry_delay", (int, float),
                                   provider=provider, attempt=attempt, error=error)
            if delay is None:
                raise self._final(error, attempt)
            # The policy's bound holds whatever a plugin answers: no negative, NaN or endless
            # sleep (NaN fails every comparison, hence the explicit check).
            delay = float(delay)
            delay = min(max(delay, 0.0), provider.retry.max_delay) if delay == delay else 0.0
            notify(self.pm, "codexapi_on_retry", provider=provider, request=request,
                   attempt=attempt, error=error, delay=delay)
            self.sleep(delay)

    def _refresh(self) -> bool:
        try:
            return bool(self.auth.refresh())
        except AuthError:
            raise
        except Exception as exc:
            raise AuthError(f"{type(self.auth).__name__}.refresh() raised "
                            f"{type(exc).__name__}: {exc}") from None

    def _final(self, error: Exception, attempts: int) -> Exception:
        if isinstance(error, ApiError):
            error.attempts = attempts
        elif isinstance(error, TransportError) and attempts > 1:
            error.attempts = attempts
            error.message = f"{error.message} (gave up after {attempts} attempts)"
        return error

    def _status_error(self, response: HttpResponse, request: HttpRequest) -> CodexApiError:
        status = response.status
        # Kept on the error for callers (Retry-After, rate limits); cookies are not theirs.
        headers = {k.lower(): v for k, v in redact_headers(response.headers).items()}
        request_id = failures.request_id(headers)
        url = redact_url(request.url)
        if 300 <= status < 400:
            response.close()
            target = redact_url(headers.get("location", "?"))
            return ApiError(status, f"the server redirected {request.method} {url} to {target}; "
                            "redirects are not followed (set base_url to the final address)",
                            None, request_id=request_id, url=url, headers=headers)
        try:
            raw = _read_limited(response)
        except TransportError as exc:
            raw = f"<body unreadable: {exc.message}>".encode()
        finally:
            response.close()
        # A server may echo the credential it rejected (a 401 quoting the key): scrub the
        # values of the secret headers sent, and the token after an auth scheme.
        secrets = [v for k, v in request.headers.items() if is_secret_header(k)]
        text = scrub_text(raw.decode("utf-8", "replace"), [*secrets, *(
            s.split(" ", 1)[-1] for s in secrets)])
        message, code = error_message(status, text, headers.get("content-type", ""))
        return failures.http_error(ApiError(
            status, message, text, request_id=request_id, url=url, code=code,
            retry_after=retry_after_seconds(headers), headers=headers))


def _read_limited(response: HttpResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ERROR_BODY:
            break
    return b"".join(chunks)[:MAX_ERROR_BODY]


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
    snippet = " ".join(_strip_tags(text).split())[:200]
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
