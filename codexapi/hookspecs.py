"""Every hook codexapi calls. Plugins implement them with ``@codexapi.hookimpl``.

Every hook is called through pluggy (``pm.hook.<name>(...)``), so pluggy's features work on
all of them: wrappers (``@hookimpl(wrapper=True)`` and old-style ``hookwrapper=True``),
``tryfirst`` / ``trylast``, ``PluginManager.add_hookcall_monitoring``. Order is pluggy's: the
later-registered plugin is asked first. The built-in implementations (``codexapi.wires``,
``codexapi_plugins.*``) are registered last and marked ``trylast``, so any other plugin's
answer wins, a ``trylast`` one included.

``endpoint`` is one of ``"stream"`` (the streamed turn: ``responses`` or ``chat/completions``),
``"compact"`` or ``"models"``. A hook that raises (anything but a :class:`codexapi.CodexApiError`,
which passes through as raised), or answers with the wrong type, is a
:class:`codexapi.PluginError` naming its plugin. An observer (``codexapi_on_*``) that raises is
logged (logger ``codexapi``) with its plugin's name and does not abort the call.
No hook runs per event: decoding is the hot path and belongs to the decoder a wire returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .auth import Auth, FlowAuth
    from .http.transport import HttpRequest, HttpResponse
    from .models import Provider
    from .stream import StreamResult
    from .wires import Wire

PROJECT = "codexapi"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def codexapi_auth(provider: Provider) -> Auth | FlowAuth | None:
    """Called once per Client when the caller passed no ``auth=``.

    Return an auth for ``provider`` (``headers() -> dict`` and ``refresh() -> bool``, or
    ``auth_flow(request)``; see :mod:`codexapi.auth`), or None to let the next plugin decide.
    firstresult. The built-in (``codexapi_plugins.auth``) falls back to ``OPENAI_API_KEY`` /
    ``AZURE_OPENAI_API_KEY``, then Codex's ``auth.json``, then NoAuth.
    """


@hookspec
def codexapi_register_wires(register: Callable[[Wire], None]) -> None:
    """Called once per plugin manager (each Client): call ``register(wire)`` for each Wire.

    A Wire (see :class:`codexapi.wires.Wire`) has ``name``, ``path(endpoint)``,
    ``body(endpoint, request)`` and ``decoder(endpoint)``; ``Provider.wire`` names one. When
    two plugins register the same name, the one asked first (pluggy's order) wins, so a plugin
    can replace a built-in wire. Built-ins: ``codexapi_plugins.wire_responses``
    (``"responses"``), ``codexapi_plugins.wire_chat`` (``"chat"``).
    """


@hookspec(firstresult=True)
def codexapi_endpoint_path(provider: Provider, endpoint: str, wire: Wire) -> str | None:
    """Called for every request: the path of ``endpoint`` relative to ``provider.base_url``.

    Return e.g. ``"responses"``, or None to leave it to the provider's wire (the built-in
    answer is ``wire.path(endpoint)``, which raises :class:`codexapi.UnsupportedEndpointError`
    for an endpoint the wire lacks). firstresult.
    """


@hookspec(firstresult=True)
def codexapi_build_body(
    provider: Provider, endpoint: str, request: Any, wire: Wire, extensions: dict[str, Any]
) -> dict[str, Any] | None:
    """Called once per call (before any retry): the JSON body for ``request``.

    ``request`` is a :class:`codexapi.ResponsesRequest` for ``"stream"`` and ``"compact"``;
    ``extensions`` the call's dict (see :func:`codexapi_on_call_start`).
    Return a dict, or None to leave it to the provider's wire (the built-in answer is
    ``wire.body(endpoint, request)``). firstresult. A ``wrapper=True`` impl receives the
    answer from its ``yield`` and may edit or replace it.
    """


@hookspec(firstresult=True)
def codexapi_retry_delay(provider: Provider, attempt: int, error: Exception) -> float | None:
    """Called when a call will be tried again after ``error``: the seconds to wait first.

    ``attempt`` is the failed try of the request (1-based), or for a turn sent again or
    resumed (a :class:`codexapi.StreamError` such as a drop or a retryable
    ``response.failed``) the number of that re-send. Whether to try again is not this hook's:
    the provider's ``RetryPolicy`` decides for requests and ``stream_max_retries`` for
    re-sends (see :class:`codexapi.retry.Retries`). Return seconds, or None for the policy's
    delay; the answer is kept within ``[0, provider.retry.max_delay]``.
    firstresult. Built-in: ``codexapi_plugins.retry`` (the policy's delay).
    """


@hookspec
def codexapi_on_request(provider: Provider, request: HttpRequest, attempt: int) -> None:
    """Observer, called before each attempt is sent. Return value ignored.

    It runs before the auth flow adds credentials, so it may add entries to
    ``request.headers`` (a plain dict; e.g. a trace context) and a signing auth covers them.
    It is called again for each further request an auth flow sends within the attempt (a
    challenge answered), then with the credentials in. Headers may hold secrets: log them only
    through ``codexapi.redact``. ``request.extensions`` is the same dict for every request of
    one call (and on the turn's ``StreamResult``).
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


@hookspec
def codexapi_observe_stream(provider: Provider, request: Any,
                            extensions: dict[str, Any]) -> str | None:
    """Called once per streamed turn, before its body is built and its first request sent,
    when some plugin implements :func:`codexapi_on_stream_end`: how much of this turn its end
    observers need. Not firstresult: the stream keeps the most that any plugin asks for.

    Return ``"text"`` to have the turn's :class:`codexapi.StreamResult` carry the text
    received so far (what a plugin that does not implement this hook is assumed to want),
    ``"end"`` for everything but the streamed text (response id, usage, items, model, rate
    limits, timing; ``result.text`` is then the message items' text, empty for a turn cut
    short), or None when this plugin does not observe this turn. When every plugin that
    observes stream ends answers None, the turn is not observed: nothing is kept as it
    streams and ``codexapi_on_stream_end`` is not called for it. When one asks, every impl of
    that hook is called, those that answered None included. ``"end"`` costs nothing per read
    of text deltas; ``"text"`` costs a join of the read's deltas. ``request`` is the
    :class:`codexapi.ResponsesRequest` (None for a seed client's ready body); ``extensions``
    the call's dict, as in :func:`codexapi_on_request`.
    """


@hookspec
def codexapi_on_stream_end(
    provider: Provider, request: Any, result: StreamResult, error: BaseException | None
) -> None:
    """Observer, called once per streamed turn when it ends, successfully or not: the older
    name of :func:`codexapi_on_call_end` for ``endpoint="stream"``, kept for existing plugins
    (it is called just before it).

    ``request`` is the :class:`codexapi.ResponsesRequest` (None for a seed client's ready
    body); ``result`` the :class:`codexapi.StreamResult` of what was received so far (text,
    items, response id, usage); ``error`` what ended the stream (None on success; a
    ``GeneratorExit`` when the caller closed it early). Not called for a turn that every
    plugin declined in :func:`codexapi_observe_stream`.
    """


@hookspec
def codexapi_on_call_start(provider: Provider, endpoint: str, request: Any,
                           extensions: dict[str, Any]) -> None:
    """Observer, called once per call (``endpoint`` ``"stream"``, ``"compact"`` or
    ``"models"``), before its body is built and its first request sent. Return value ignored.

    ``request`` is the :class:`codexapi.ResponsesRequest` for ``"stream"`` and ``"compact"``
    (None for a seed client's ready body), the ``client_version`` string for ``"models"``.
    ``extensions`` is the call's dict: the same object is every attempt's
    ``HttpRequest.extensions``, the turn's ``StreamResult.extensions`` and is passed to
    :func:`codexapi_on_call_end`, so a plugin keeps its state (a span) there.

    A streamed turn that every plugin declined in :func:`codexapi_observe_stream` is not
    observed: neither start nor end is called for it.
    """


@hookspec
def codexapi_on_call_end(provider: Provider, endpoint: str, request: Any, result: Any,
                         error: BaseException | None, extensions: dict[str, Any]) -> None:
    """Observer, called exactly once per call when it ends, however it ends: a turn read to
    its end, closed early, failed, or dropped unread and garbage-collected.

    ``result`` is what the call returns: for ``"stream"`` the turn's
    :class:`codexapi.StreamResult` so far (what :func:`codexapi_observe_stream` asked to keep;
    ``finish_reason`` ``"cancelled"`` when the caller stopped early), the output items for
    ``"compact"``, the :class:`codexapi.ModelList` for ``"models"`` (None on a failed unary
    call); ``error`` what ended it (None on success; a turn closed early ends without one);
    ``request`` and ``extensions`` as for :func:`codexapi_on_call_start`.
    """
