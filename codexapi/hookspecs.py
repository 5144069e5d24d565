"""Every hook codexapi calls. Plugins implement them with ``@codexapi.hookimpl``.

``endpoint`` is one of ``"stream"`` (the streamed turn: ``responses`` or ``chat/completions``),
``"compact"`` or ``"models"``. First-result hooks stop at the first non-``None`` answer and
ask the built-in implementations (``codexapi_plugins.*``) last, so any plugin's answer wins;
among other plugins the later-registered (and ``tryfirst``) are asked first, as in pluggy.
A hook that raises, or answers with the wrong type, is a PluginError naming its plugin.
No hook runs per event: decoding is the hot path and belongs to the decoder a wire returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .auth import Auth
    from .decoding import StreamDecoder
    from .models import Provider
    from .transport import HttpRequest, HttpResponse

PROJECT = "codexapi"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def codexapi_auth(provider: Provider) -> Auth | None:
    """Called once per Client when the caller passed no ``auth=``.

    Return an Auth (``headers() -> dict``, ``refresh() -> bool``) for ``provider``, or None to
    let the next plugin decide. firstresult. The built-in (``codexapi_plugins.auth``) falls back
    to ``OPENAI_API_KEY`` / ``AZURE_OPENAI_API_KEY``, then Codex's ``auth.json``, then NoAuth.
    """


@hookspec(firstresult=True)
def codexapi_endpoint_path(provider: Provider, endpoint: str) -> str | None:
    """Called for every request: the path of ``endpoint`` relative to ``provider.base_url``.

    Return e.g. ``"responses"``; raise :class:`codexapi.UnsupportedEndpointError` when the
    provider's wire has no such endpoint. firstresult. Built-ins: the wire plugins.
    """


@hookspec(firstresult=True)
def codexapi_build_body(provider: Provider, endpoint: str, request: Any) -> dict[str, Any] | None:
    """Called once per call (before any retry): the JSON body for ``request``.

    ``request`` is a :class:`codexapi.ResponsesRequest` for ``"stream"`` and ``"compact"``.
    Return a dict, or None when this plugin does not handle the provider's wire. firstresult.
    """


@hookspec(firstresult=True)
def codexapi_stream_decoder(provider: Provider, endpoint: str) -> StreamDecoder | None:
    """Called once per stream after a 2xx response: a fresh decoder for its SSE messages.

    The decoder has ``feed(message) -> list[Event]``, ``close() -> list[Event]`` and a ``done``
    flag set once the turn is complete. It may raise codexapi errors. firstresult.
    """


@hookspec(firstresult=True)
def codexapi_retry_delay(provider: Provider, attempt: int, error: Exception) -> float | None:
    """Called after attempt number ``attempt`` (1-based) failed with ``error``.

    Return the seconds to wait before the next attempt, or None not to retry. The dispatcher
    asks with a :class:`codexapi.ApiError` (with ``headers``) or
    :class:`codexapi.TransportError`; callers that re-send a whole turn may also ask with the
    :class:`codexapi.StreamError` a stream raised (e.g. a rate-limited ``response.failed``).
    The dispatcher stops at ``provider.retry.max_attempts`` whatever this returns, and caps the
    answer at ``provider.retry.max_delay``.
    firstresult. Built-in: ``codexapi_plugins.retry``.
    """


@hookspec
def codexapi_on_request(provider: Provider, request: HttpRequest, attempt: int) -> None:
    """Observer, called before each attempt is sent. Return value ignored.

    ``request.headers`` hold credentials: log them only through ``codexapi.redact``.
    """


@hookspec
def codexapi_on_response(
    provider: Provider, request: HttpRequest, response: HttpResponse, attempt: int,
    elapsed: float,
) -> None:
    """Observer, called when the response head of an attempt has arrived (any status).

    ``elapsed`` is seconds since the attempt was sent. The body has not been read.
    """


@hookspec
def codexapi_on_retry(
    provider: Provider, request: HttpRequest, attempt: int, error: Exception, delay: float
) -> None:
    """Observer, called when attempt ``attempt`` failed and will be retried after ``delay``."""
