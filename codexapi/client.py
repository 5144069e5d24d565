"""The Client facade, and seed-style endpoint clients for people porting Rust code.

One Client per provider, shared freely between threads: it holds a plugin manager, an auth
object, a transport with one connection pool, and the models ETag cache (under a lock).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs

from . import forksafe
from ._version import __version__
from .auth import Auth, FlowAuth, NoAuth, check_auth
from .bounds import read_body
from .call import Call
from .convert import loads
from .deadline import Deadline
from .dispatch import Dispatcher
from .errors import ConfigError, DeadlineExceeded, PluginError, StreamError
from .header_events import TURN_STATE_HEADER
from .http.transport import HttpResponse, Transport, streaming
from .items import FunctionCall, Item, item_from_json
from .models import Provider, ResponsesRequest
from .plugins import PluginManager, collect_wires, make_plugin_manager
from .redact import preview, scrub_error
from .session import SessionContext
from .stream import ResponseStream, StreamResult
from .wires import EventSource

if TYPE_CHECKING:
    from .events import Event
    from .tools import Tool, ToolRun

log = logging.getLogger("codexapi")


@attrs.frozen
class ModelInfo:
    """One model from ``GET models``: its ``slug`` (Codex ``slug`` or OpenAI ``id``) and the
    whole JSON object in ``raw``."""

    slug: str
    raw: Mapping[str, Any] = attrs.field(repr=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("slug", "raw"):
            raise AttributeError(name)
        return self.raw.get(name)


@attrs.frozen
class ModelList:
    """The models a server lists, and the ETag to revalidate them with."""

    models: list[ModelInfo]
    etag: str | None = None

    @property
    def slugs(self) -> list[str]:
        return [m.slug for m in self.models]


def parse_models(body: bytes, header_etag: str | None) -> ModelList:
    """Accept Codex's ``{"models": [{"slug"...}]}`` and OpenAI's ``{"data": [{"id"...}]}``."""
    text = body.decode("utf-8", "replace")
    try:
        data = loads(body)
    except ValueError as exc:
        raise StreamError(f"failed to decode models response: {exc}; body: {preview(text, 200)}",
                          retryable=False) from None
    entries: Any = None
    key = "slug"
    if isinstance(data, dict) and isinstance(data.get("models"), list):
        entries = data["models"]
    elif isinstance(data, dict) and isinstance(data.get("data"), list):
        entries, key = data["data"], "id"
    if entries is None:
        raise StreamError(
            "failed to decode models response: expected {\"models\": [...]} or "
            f"{{\"object\": \"list\", \"data\": [...]}}; body: {preview(text, 200)}",
            retryable=False)
    models = []
    for entry in entries:
        slug = entry.get(key) if isinstance(entry, dict) else None
        if not isinstance(slug, str):
            raise StreamError(f"failed to decode models response: a model has no string "
                              f"`{key}`: {preview(str(entry), 120)}", retryable=False)
        models.append(ModelInfo(slug, entry))
    etag = header_etag
    if not etag and isinstance(data, dict) and isinstance(data.get("etag"), str):
        etag = data["etag"] or None
    return ModelList(models, etag)


def conversation_headers(
    conversation_id: str | None = None, session_id: str | None = None,
    subagent: str | None = None,
) -> dict[str, str]:
    """``conversation_id``/``session_id`` and ``x-openai-subagent``, as codex-api sets them."""
    headers: dict[str, str] = {}
    if conversation_id:
        headers["conversation_id"] = conversation_id
        headers["session_id"] = conversation_id
    if session_id:
        headers["session_id"] = session_id
    if subagent:
        headers["x-openai-subagent"] = subagent
    return headers


#: A per-call timeout: seconds for both connect and read, ``(connect, read)``, or None for the
#: provider's ``connect_timeout`` / ``read_timeout``.
Timeout = float | tuple[float, float] | None


def _timeouts(timeout: Timeout, connect: float, read: float) -> tuple[float, float, float]:
    """(connect, head, idle) for a unary call: ``read`` bounds the head and every read."""
    if timeout is None:
        return connect, read, read
    if isinstance(timeout, int | float):
        return float(timeout), float(timeout), float(timeout)
    return float(timeout[0]), float(timeout[1]), float(timeout[1])


def _dispatcher(provider: Provider, pm: PluginManager, auth: Auth | FlowAuth,
                transport: Transport,
                sleep: Callable[[float], None] = time.sleep) -> Dispatcher:
    wire = collect_wires(pm).resolve(provider)
    return Dispatcher(provider, pm, auth, transport, wire, sleep=sleep)


def _read(response: HttpResponse, provider: Provider, what: str, deadline: Deadline | None
          ) -> bytes:
    try:
        return read_body(response, provider, what)
    except DeadlineExceeded as exc:
        if deadline is None:
            raise
        raise deadline.exceeded(exc.url, f"reading the {what} response") from exc


def _http(answer: HttpResponse | EventSource) -> HttpResponse:
    """A unary call's answer: an HTTP response (a connection wire streams turns only)."""
    if hasattr(answer, "next_events"):
        answer.close()
        raise PluginError("a wire's open() answered a unary call with an event source; "
                          "connection wires open connections for streamed turns only")
    return answer



class _Endpoints:
    """What every client does with a dispatcher: open a stream, post JSON, get JSON."""

    _dispatcher: Dispatcher

    def _call(self, endpoint: str, request: Any, deadline: Deadline | None = None) -> Call:
        return Call(self._dispatcher, endpoint, request, deadline)

    def _open_stream(self, body: Mapping[str, Any] | None,
                     headers: Mapping[str, str], timeout: Timeout = None,
                     request: ResponsesRequest | None = None,
                     deadline: Deadline | None = None,
                     session: SessionContext | None = None) -> ResponseStream:
        dispatcher = self._dispatcher
        provider = dispatcher.provider
        call = self._call("stream", request, deadline)
        # Only when observed: keeping the turn's result costs a look at each read's events,
        # which an unobserved stream does not pay.
        keep = dispatcher.pm.stream_observation(provider, request, call.extensions)
        # The head waits at most the read timeout (and never longer than the idle timeout:
        # no byte at all is idleness too); the body then waits at most the idle timeout
        # between reads, however long the whole stream runs.
        connect, head, _ = _timeouts(timeout, provider.connect_timeout,
                                     min(provider.read_timeout, provider.stream_idle_timeout))
        return call.open_turn(body, headers, (connect, head), session, keep)

    def _parse_models(self, response: HttpResponse, deadline: Deadline | None = None
                      ) -> ModelList:
        body = _read(response, self._dispatcher.provider, "models", deadline)
        try:
            return parse_models(body, response.headers.get("etag"))
        except StreamError as exc:
            raise scrub_error(exc, self._dispatcher.secrets()) from None

    def _compact(self, call: Call, body: Mapping[str, Any], timeout: Timeout = None,
                 session: SessionContext | None = None) -> list[Item]:
        provider = self._dispatcher.provider
        deadline = call.deadline
        response = _http(call.send(
            "POST", body, session.headers() if session is not None else None,
            timeout=_timeouts(timeout, provider.connect_timeout, provider.read_timeout)))
        if session is not None:
            session.turn_state.capture(response.headers.get(TURN_STATE_HEADER))
        raw = _read(response, provider, "compact", deadline)
        try:
            data = loads(raw)
            output = data["output"]
            if not isinstance(output, list):
                raise TypeError("`output` is not a list")
            if not all(isinstance(i, dict) for i in output):
                raise TypeError("`output` holds a value that is not an item object")
            return [item_from_json(i) for i in output]
        except (ValueError, KeyError, TypeError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            error = StreamError(f"failed to decode compact response: {detail}; body: "
                                f"{preview(raw.decode('utf-8', 'replace'), 200)}", retryable=False)
        # Raised outside the except block: the body preview may echo a secret, scrubbed here,
        # and the parse error is not kept in the context chain.
        raise scrub_error(error, self._dispatcher.secrets())


class Client(_Endpoints):
    """A client for one provider. Thread-safe; close it (or use ``with``) when done."""

    def __init__(
        self,
        provider: Provider | None = None,
        auth: Auth | FlowAuth | None = None,
        plugins: Iterable[Any] = (),
        load_entrypoints: bool = True,
        *,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider if provider is not None else provider_from_env()
        self.plugin_manager = make_plugin_manager(plugins, load_entrypoints)
        if auth is None:
            auth = self.plugin_manager.call("codexapi_auth", provider=self.provider)
        if auth is None:
            auth = NoAuth()
        self.auth: Auth | FlowAuth = check_auth(auth)
        if transport is None:
            # Imported here, not with the module: urllib3 is most of a first call's imports.
            from .http.urllib3_transport import Urllib3Transport

            transport = Urllib3Transport(proxy=self.provider.proxy,
                                         ca_bundle=self.provider.ca_bundle)
        self.transport: Transport = transport
        self._dispatcher = _dispatcher(self.provider, self.plugin_manager, self.auth,
                                       streaming(self.transport), sleep)
        self._models_lock = threading.Lock()
        #: The last ModelList per client_version (each version may list other models).
        self._models_cache: dict[str, ModelList] = {}
        self._closed = False
        forksafe.register(self)

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock when it forked.
        self._models_lock = threading.Lock()

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this Client is closed (close() or the end of its `with` block); "
                              "create a new Client to send more requests")

    def __repr__(self) -> str:
        return f"Client(provider={self.provider!r}, auth={self.auth!r})"

    def stream(
        self,
        request: ResponsesRequest,
        conversation_id: str | None = None,
        session_id: str | None = None,
        subagent: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout = None,
        deadline: float | None = None,
        session: SessionContext | None = None,
    ) -> ResponseStream:
        """Send one turn; return its events as a :class:`ResponseStream`.

        ``session`` (a :class:`SessionContext`) adds the Codex session headers, and the
        turn state the server hands out is kept in it and sent on its next requests.

        Raises ApiError / TransportError (after retries) before returning; errors inside the
        stream are raised while iterating. ``timeout`` (seconds, or ``(connect, read)``)
        bounds connecting and waiting for the response head; once the stream is open the
        provider's ``stream_idle_timeout`` applies between reads. ``deadline`` (seconds) bounds
        the whole turn, retries, re-sends and every read included (DeadlineExceeded).
        """
        self._check_open()
        until = Deadline.of(deadline, self._dispatcher.clock)
        extra = session.headers() if session is not None else {}
        extra.update(headers or {})
        extra.update(conversation_headers(conversation_id, session_id, subagent))
        return self._open_stream(None, extra, timeout, request, until, session)

    def create(
        self,
        request: ResponsesRequest,
        conversation_id: str | None = None,
        session_id: str | None = None,
        subagent: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout = None,
        deadline: float | None = None,
        session: SessionContext | None = None,
    ) -> StreamResult:
        """One whole turn: :meth:`stream` with the same arguments, then ``collect()``.

        Raises what :meth:`stream` and iterating its events raise; the connection is released
        before it returns.
        """
        return self.stream(request, conversation_id, session_id, subagent, headers,
                           timeout, deadline, session).collect()

    def prewarm(
        self,
        request: ResponsesRequest,
        session: SessionContext | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout = None,
        deadline: float | None = None,
    ) -> None:
        """Warm up ``session``'s connection for ``request`` before its first turn, as the
        Codex CLI does: on a wire that keeps connections (``responses_websocket``) the request
        is sent with ``"generate": false`` and its completion awaited (no output, no usage);
        the session's next turn then reuses the warm connection (and, sending the same request
        or one that extends it, sends only what is new). Other wires send nothing.

        Raises what :meth:`stream` raises.
        """
        self._check_open()
        dispatcher = self._dispatcher
        if not getattr(dispatcher.wire, "prewarms", False):
            return
        until = Deadline.of(deadline, dispatcher.clock)
        extra = session.headers() if session is not None else {}
        extra.update(headers or {})

        warm = dispatcher.body("stream", request)
        warm["generate"] = False
        with self._open_stream(warm, extra, timeout, request, until, session) as events:
            for _ in events:
                pass

    def compact(self, request: ResponsesRequest, timeout: Timeout = None,
                deadline: float | None = None,
                session: SessionContext | None = None) -> list[Item]:
        """``POST responses/compact``: the compacted history as output items. ``timeout``
        (seconds, or ``(connect, read)``) overrides the provider's for this call; ``deadline``
        (seconds) bounds all of it, retries included; ``session`` as for :meth:`stream`."""
        self._check_open()
        until = Deadline.of(deadline, self._dispatcher.clock)
        self._dispatcher.path("compact")  # refuses unsupported wires before any traffic
        result: list[Item] = self._call("compact", request, until).run(
            lambda call: self._compact(call, call.body(), timeout, session))
        return result

    def list_models(self, client_version: str | None = None, timeout: Timeout = None,
                    deadline: float | None = None) -> ModelList:
        """``GET models?client_version=…``, revalidated with the cached ETag (304 -> cache).
        ``client_version`` defaults to this library's version (Codex sends its own).
        ``timeout`` (seconds, or ``(connect, read)``) overrides the provider's for this call;
        ``deadline`` (seconds) bounds all of it, retries included."""
        if client_version is None:
            client_version = __version__
        self._check_open()
        until = Deadline.of(deadline, self._dispatcher.clock)
        result: ModelList = self._call("models", client_version, until).run(
            lambda call: self._models(call, client_version, timeout))
        return result

    def _models(self, call: Call, client_version: str, timeout: Timeout) -> ModelList:
        query = "client_version=" + quote(client_version, safe="")
        with self._models_lock:
            cached = self._models_cache.get(client_version)
        extra = {}
        if cached is not None and cached.etag:
            extra["If-None-Match"] = cached.etag
        provider = self.provider
        response = _http(call.send(
            "GET", None, extra, query=query, accept_statuses=(304,),
            timeout=_timeouts(timeout, provider.connect_timeout, provider.read_timeout)))
        if response.status == 304:
            response.close()
            if cached is not None:
                return cached
            raise StreamError("the server answered 304 Not Modified to a models request "
                              "without If-None-Match; there is no cached list to return",
                              retryable=False)
        result = self._parse_models(response, call.deadline)
        with self._models_lock:
            self._models_cache[client_version] = result
        return result

    def run_tools(
        self,
        request: ResponsesRequest,
        tools: Sequence[Tool | Callable[..., Any]],
        max_turns: int = 8,
        *,
        on_event: Callable[[Event], None] | None = None,
        on_output: Callable[[FunctionCall, str], None] | None = None,
        conversation_id: str | None = None,
        session_id: str | None = None,
        subagent: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout = None,
        deadline: float | None = None,
        session: SessionContext | None = None,
    ) -> ToolRun:
        """Send ``request`` offering ``tools`` (:class:`~codexapi.Tool` objects or plain
        functions), call each function the model asks for, send the outputs back, and repeat
        until the model answers without a call; returns the :class:`~codexapi.ToolRun`.

        Each turn is a :meth:`stream` call with the same arguments (retries, observers and
        wire as any call); ``deadline`` (seconds) bounds the whole run. An exception in a
        tool becomes that call's output text (``Error: ...``) and is logged. Past
        ``max_turns`` turns with the model still calling tools: :class:`ToolLoopLimit`,
        whose ``.run`` holds what happened. ``on_event`` sees every event of every turn,
        ``on_output`` each call with its output text as soon as the tool has run.
        """
        from .tools import run_tools

        return run_tools(self, request, tools, max_turns, on_event=on_event, on_output=on_output,
                         secrets=self._dispatcher.secrets, conversation_id=conversation_id,
                         session_id=session_id, subagent=subagent, headers=headers,
                         timeout=timeout, deadline=deadline, session=session)

    def close(self) -> None:
        """Close pooled connections (and those a wire kept); the Client then refuses new calls
        (ConfigError). Streams already open keep their connection until they end."""
        self._closed = True
        self._dispatcher.known.clear()
        self._dispatcher.context.close()
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def provider_from_env() -> Provider:
    """``OPENAI_BASE_URL`` (default the OpenAI API) on the Responses wire."""
    base = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    return Provider(name="openai", base_url=base)


# --- seed-style clients (codex-api's endpoint clients) -------------------------------------


class _SeedClient(_Endpoints):
    def __init__(
        self,
        transport: Transport,
        provider: Provider,
        auth: Auth | FlowAuth | None = None,
        plugins: Iterable[Any] = (),
        load_entrypoints: bool = False,
    ) -> None:
        if auth is None:
            auth = NoAuth()
        self.provider = provider
        self._dispatcher = _dispatcher(provider, make_plugin_manager(plugins, load_entrypoints),
                                       check_auth(auth), streaming(transport))


class ResponsesClient(_SeedClient):
    """Streams a ready JSON body to the stream path of the provider's wire."""

    def stream(self, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
               ) -> ResponseStream:
        return self._open_stream(body, headers or {})

    def stream_request(
        self, request: ResponsesRequest, conversation_id: str | None = None,
        subagent: str | None = None,
    ) -> ResponseStream:
        return self._open_stream(None, conversation_headers(conversation_id, None, subagent),
                                 request=request)


class ChatClient(ResponsesClient):
    """codex-api's ChatClient: ``chat/completions`` on the Chat wire, ``responses`` otherwise."""


class CompactClient(_SeedClient):
    """``POST responses/compact`` with a ready body ``{model, input, instructions}``."""

    def compact(self, body: Mapping[str, Any]) -> list[Item]:
        self._dispatcher.path("compact")
        result: list[Item] = self._call("compact", None).run(
            lambda call: self._compact(call, body))
        return result


class ModelsClient(_SeedClient):
    """``GET models?client_version=…``; returns the ModelList (no caching)."""

    def list_models(self, client_version: str, headers: Mapping[str, str] | None = None
                    ) -> ModelList:
        query = "client_version=" + quote(client_version, safe="")

        def run(call: Call) -> ModelList:
            return self._parse_models(_http(call.send("GET", None, headers, query=query)))

        result: ModelList = self._call("models", client_version).run(run)
        return result
