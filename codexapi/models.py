"""Wire-neutral request models, the Provider and its policies.

All classes are frozen, slotted attrs classes. How they become JSON is decided in one place,
:mod:`codexapi.convert`; how a request becomes a wire body is decided by the wire plugins.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from .auth import Auth, FlowAuth
from .config import load_provider_settings, provider_settings
from .errors import ConfigError
from .http.urls import check_base_url, join
from .items import FunctionCall, FunctionCallOutput, InputItem, Message, Reasoning
from .redact import redact_headers, redact_query_params, redact_url
from .retry import PolicyError, RetryPolicy


class WireApi(enum.StrEnum):
    """The names of the built-in wires. Members are strings (``WireApi.CHAT == "chat"``);
    ``Provider.wire`` takes any registered wire's name (see :mod:`codexapi.wires`)."""

    RESPONSES = "responses"
    CHAT = "chat"

    def __str__(self) -> str:
        return self.value


def _wire(value: str) -> str:
    """A wire name: the built-in ones as WireApi members, any other as given (a plugin's wire;
    an unknown name is a ConfigError when a Client looks it up among the registered wires)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"wire must be a wire's name (a non-empty string), got {value!r}")
    name = value.strip()
    try:
        return WireApi(name.lower())
    except ValueError:
        return name


def _positive(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PolicyError(f"Provider.{attribute.name} is a size in bytes and must be a positive "
                          f"int, got {value!r}")


def _valid_headers(instance: Any, attribute: Any, value: Mapping[str, str]) -> None:
    from .http.headers import check_headers

    problem = check_headers(value)
    if problem is not None:
        raise PolicyError(f"Provider.headers: {problem}")


def _header_names(value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"Provider.secret_headers must be a collection of header names, got "
                          f"{type(value).__name__}")
    names = list(value)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"Provider.secret_headers holds {name!r}, which is not a header "
                              "name")
    return frozenset(n.strip().lower() for n in names)


def _str_map(value: Mapping[str, str]) -> dict[str, str]:
    # A typed copy: mypy cannot see through attrs' ``converter=dict``.
    return dict(value)


# Substrings of Azure OpenAI hosts, as codex-api's provider.rs detects them.
_AZURE_MARKERS = (
    "openai.azure.",
    "cognitiveservices.azure.",
    "aoai.azure.",
    "azure-api.",
    "azurefd.",
    "windows.net/openai",
)


@attrs.frozen(repr=False)
class Provider:
    """Where requests go and how: base URL, wire API, static headers and policies."""

    name: str = "openai"
    #: Checked when the Provider is made (:func:`codexapi.http.urls.check_base_url`).
    base_url: str = attrs.field(default="https://api.openai.com/v1",
                                validator=lambda _, __, url: check_base_url(url))
    #: The registered Wire's name: ``WireApi.RESPONSES`` (``"responses"``), ``WireApi.CHAT``
    #: (``"chat"``) or a plugin's.
    wire: str = attrs.field(default=WireApi.RESPONSES, converter=_wire)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map,
                                             validator=_valid_headers)
    query_params: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)
    #: More header (and query parameter) names whose values are secret, besides those
    #: :mod:`codexapi.redact` recognizes by name (``auth``, ``key``, ``token``...): e.g.
    #: ``{"X-Tenant"}``. Compared in any case; their values are scrubbed from logs, errors,
    #: reprs, spans and cassettes like any credential.
    secret_headers: frozenset[str] = attrs.field(factory=frozenset, converter=_header_names)
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    #: Seconds without a byte on an open stream before :class:`IdleTimeout`.
    stream_idle_timeout: float = 300.0
    #: Seconds to establish a connection.
    connect_timeout: float = 30.0
    #: Seconds to wait for the response head (and, on unary calls, each body read).
    read_timeout: float = 600.0
    #: Environment variable holding this provider's API key (Codex ``env_key``); the built-in
    #: auth sends it as a bearer token and refuses to run without it.
    env_key: str | None = None
    #: Codex ``env_key_instructions``: how to obtain the key, shown when it is missing.
    env_key_instructions: str | None = None
    #: Proxy URL for this provider. None follows ``HTTPS_PROXY``/``NO_PROXY``...; "" is direct.
    proxy: str | None = None
    #: CA bundle (PEM file or directory) trusted besides the system roots; None follows
    #: ``CODEX_CA_CERTIFICATE``/``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``.
    ca_bundle: str | None = None
    #: Codex ``stream_max_retries``: how many times a streamed turn that failed before any
    #: event reached the caller is sent again (or a dropped background stream resumed).
    stream_max_retries: int = 5
    #: The largest SSE message (or WebSocket frame) accepted, in bytes; a longer one ends the
    #: stream with :class:`ResponseTooLarge` instead of being buffered without end.
    max_message_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=_positive)
    #: The largest unary response body (compact, models) accepted, in bytes (after decoding).
    max_body_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_positive)
    #: The most bytes any compressed body (gzip, deflate...) may inflate to: a small gzip
    #: "bomb" stops here instead of filling memory.
    max_decompressed_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=_positive)
    #: Skip events whose data is not valid JSON, as the crate does, instead of ending the stream
    #: with :class:`UndecodableEvent`; each skip is logged and counted in
    #: ``StreamResult.skipped_events``.
    skip_undecodable_events: bool = False
    #: ``"zstd"`` sends request bodies zstd-compressed with ``Content-Encoding: zstd`` (the
    #: crate's ``RequestCompression::Zstd``; needs ``codexapi[zstd]``). None sends them as is.
    request_compression: str | None = attrs.field(default=None)
    #: On the WebSocket wire, send a turn that extends the previous turn of its session (same
    #: settings; input = the previous input + that response's output + new items) as
    #: ``previous_response_id`` and only the new items, as the Codex CLI does. False always
    #: sends the whole request.
    websocket_incremental_input: bool = True
    #: Seconds to open a WebSocket connection (connect, TLS and the upgrade's answer) before
    #: the attempt counts as failed: Codex's ``websocket_connect_timeout_ms`` (default 15 s).
    #: The WebSocket wire (``"responses_websocket"``) reads it; HTTP wires ignore it.
    websocket_connect_timeout: float = attrs.field(default=15.0)
    #: The credentials this provider's configuration names (Codex's
    #: ``[model_providers.<id>.auth]`` command as a :class:`~codexapi.CommandAuth`, its
    #: ``experimental_bearer_token`` as a :class:`~codexapi.BearerAuth`), or None. The
    #: built-in auth chain uses them; ``Client(auth=...)`` and a plugin's answer still win.
    auth: Auth | FlowAuth | None = attrs.field(default=None, eq=False)

    @websocket_connect_timeout.validator
    def _check_ws_timeout(self, _: Any, value: float) -> None:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 < value < float("inf")):
            raise PolicyError(f"Provider.websocket_connect_timeout is seconds and must be "
                              f"positive, got {value!r}")

    @request_compression.validator
    def _check_compression(self, _: Any, value: str | None) -> None:
        if value not in (None, "zstd"):
            raise ConfigError(f"request_compression must be 'zstd' or None, not {value!r}")

    @classmethod
    def from_codex_config(cls, provider_id: str, path: str | os.PathLike[str] | None = None
                          ) -> Provider:
        """``[model_providers.<provider_id>]`` of Codex's ``config.toml`` (or a provider Codex
        has built in, e.g. ``openai``); see :mod:`codexapi.config`."""
        return cls(**provider_settings(provider_id, path))

    def url_for_path(self, path: str) -> str:
        """Join ``path`` to the base URL as codex-api's ``url_for_path`` does (a query in the
        base URL kept after the path; see :func:`codexapi.http.urls.join`)."""
        return join(self.base_url, path, self.query_params)

    def is_azure_responses_endpoint(self) -> bool:
        """True for Azure OpenAI Responses endpoints, where ``store`` defaults to true."""
        if self.wire != WireApi.RESPONSES:
            return False
        if self.name.lower() == "azure":
            return True
        base = self.base_url.lower()
        return any(marker in base for marker in _AZURE_MARKERS)

    def __repr__(self) -> str:
        return (
            f"Provider(name={self.name!r}, base_url={redact_url(self.base_url)!r}, "
            f"wire={str(self.wire)!r}, "
            f"headers={redact_headers(self.headers, self.secret_headers)!r}, query_params="
            f"{redact_query_params(self.query_params, self.secret_headers)!r}, "
            f"retry={self.retry!r}, "
            f"stream_idle_timeout={self.stream_idle_timeout!r}"
            + (f", secret_headers={sorted(self.secret_headers)!r}"
               if self.secret_headers else "")
            + (f", env_key={self.env_key!r}" if self.env_key else "")
            + (f", proxy={redact_url(self.proxy)!r}" if self.proxy is not None else "")
            + (f", ca_bundle={self.ca_bundle!r}" if self.ca_bundle else "")
            + (f", request_compression={self.request_compression!r}"
               if self.request_compression else "")
            + (f", auth={self.auth!r}" if self.auth is not None else "") + ")"
        )


def load_providers(path: str | os.PathLike[str] | None = None) -> dict[str, Provider]:
    """Every provider Codex would know: the built-ins, then ``[model_providers.*]`` of the
    config file (a configured id replaces a built-in of the same id)."""
    return {pid: Provider(**kw) for pid, kw in load_provider_settings(path).items()}


# Input items (Responses JSON form) live in .items, where they double as output items; plain
# dicts are accepted wherever they are.


@attrs.frozen
class ReasoningConfig:
    """``reasoning`` controls: ``effort`` (minimal…xhigh) and ``summary`` (auto, concise…)."""

    effort: str | None = None
    summary: str | None = None


@attrs.frozen
class TextControls:
    """``text`` controls: ``verbosity`` and an optional output JSON schema."""

    verbosity: str | None = None
    format: Mapping[str, Any] | None = None

    @classmethod
    def with_schema(
        cls, schema: Mapping[str, Any], verbosity: str | None = None
    ) -> TextControls:
        """Controls asking for JSON output matching ``schema`` (Codex's output-schema form)."""
        fmt = {"type": "json_schema", "strict": True, "schema": dict(schema),
               "name": "codex_output_schema"}
        return cls(verbosity=verbosity.lower() if verbosity else None, format=fmt)

    @classmethod
    def for_class(cls, model: type[Any], *, name: str | None = None, strict: bool = True,
                  verbosity: str | None = None) -> TextControls:
        """Controls asking for JSON output shaped like ``model`` (an attrs class, a dataclass or
        a pydantic model); read it back with ``result.parsed(model)`` (see
        :func:`codexapi.schema.json_schema`)."""
        from .schema import text_format

        return cls(verbosity=verbosity.lower() if verbosity else None,
                   format=text_format(model, name=name, strict=strict))


def _input(value: str | Sequence[InputItem]) -> list[InputItem]:
    if isinstance(value, str):
        return [Message(role="user", content=value)]
    return list(value)


def _tools(value: Sequence[Mapping[str, Any]] | None) -> list[Mapping[str, Any]] | None:
    return None if value is None else list(value)


def _list(value: Iterable[str]) -> list[str]:
    # Not ``converter=list``: attrs would parse the builtin's text signature at import.
    return list(value)


def _opt_map(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


@attrs.frozen
class ResponsesRequest:
    """One model turn, independent of the wire it is sent on.

    Empty ``instructions`` are not sent (the Codex CLI puts its base instructions in a
    ``developer`` input message instead). ``tools=None`` (the default) sends no ``tools`` key;
    a list is sent as given, an empty one as ``[]`` (what the CLI sends on an inline
    compaction). The optional fields after ``text`` are each omitted when None;
    ``extra_body`` is merged into the wire's body last, for fields this library does not
    model yet.
    """

    model: str
    instructions: str = ""
    input: list[InputItem] = attrs.field(factory=list, converter=_input)
    tools: list[Mapping[str, Any]] | None = attrs.field(default=None, converter=_tools)
    tool_choice: str = "auto"
    parallel_tool_calls: bool = False
    reasoning: ReasoningConfig | Mapping[str, Any] | None = None
    #: ``None`` lets the provider decide (true for Azure Responses, false elsewhere).
    store: bool | None = None
    include: list[str] = attrs.field(factory=list, converter=_list)
    prompt_cache_key: str | None = None
    text: TextControls | Mapping[str, Any] | None = None
    #: Continue from a stored response (Responses wire only; refused on Chat).
    previous_response_id: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    #: ``"auto"``, ``"default"``, ``"flex"``, ``"priority"``…
    service_tier: str | None = None
    #: OpenAI's stored-response metadata (string values).
    metadata: Mapping[str, str] | None = attrs.field(default=None, converter=_opt_map)
    #: Codex's per-request metadata (``x-codex-turn-metadata``, window and turn ids…).
    client_metadata: Mapping[str, str] | None = attrs.field(default=None, converter=_opt_map)
    background: bool | None = None
    #: ``"auto"`` or ``"disabled"``.
    truncation: str | None = None
    safety_identifier: str | None = None
    extra_body: Mapping[str, Any] | None = attrs.field(default=None, converter=_opt_map)

    def new(self, **changes: Any) -> ResponsesRequest:
        """A copy with ``changes`` applied."""
        return attrs.evolve(self, **changes)


__all__ = [
    "FunctionCall",
    "FunctionCallOutput",
    "InputItem",
    "Message",
    "PolicyError",
    "Provider",
    "Reasoning",
    "ReasoningConfig",
    "ResponsesRequest",
    "RetryPolicy",
    "TextControls",
    "WireApi",
    "load_providers",
]
