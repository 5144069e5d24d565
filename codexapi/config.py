"""Providers from Codex's ``config.toml``: the ``[model_providers.<id>]`` tables plus the
providers Codex has built in.

The file is ``$CODEX_HOME/config.toml`` (default ``~/.codex/config.toml``), parsed with the
standard library's ``tomllib``. Keys and defaults follow codex-rs
``core/src/model_provider_info.rs`` (``ModelProviderInfo`` and ``built_in_model_providers``);
unknown keys are ignored with a debug log, as Codex ignores them, and an invalid value is a
:class:`ConfigError` naming the key and file.

This module reads and checks; it returns each provider's settings as the keyword arguments of
:class:`codexapi.Provider`, which builds itself from them (``Provider.from_codex_config``,
``codexapi.load_providers``): the config layer does not depend on the model layer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .retry import RetryPolicy

#: A Provider's keyword arguments.
Settings = dict[str, Any]

log = logging.getLogger("codexapi.config")

# codex-rs model_provider_info.rs defaults and caps.
DEFAULT_REQUEST_MAX_RETRIES = 4
DEFAULT_STREAM_MAX_RETRIES = 5
DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000
MAX_RETRIES_CAP = 100
DEFAULT_OLLAMA_PORT = 11434
DEFAULT_LMSTUDIO_PORT = 1234
DEFAULT_WEBSOCKET_CONNECT_TIMEOUT_MS = 15_000
DEFAULT_AUTH_TIMEOUT_MS = 5_000
DEFAULT_AUTH_REFRESH_INTERVAL_MS = 300_000

#: Keys of a ``[model_providers.<id>.auth]`` table (Codex refuses any other).
AUTH_KEYS = frozenset({"command", "args", "timeout_ms", "refresh_interval_ms", "cwd"})

#: Keys of a ``[model_providers.<id>]`` table that Codex defines and codexapi reads.
PROVIDER_KEYS = frozenset({
    "name", "base_url", "env_key", "env_key_instructions", "wire_api", "query_params",
    "http_headers", "env_http_headers", "request_max_retries", "stream_max_retries",
    "stream_idle_timeout_ms", "requires_openai_auth", "experimental_bearer_token", "auth",
    "supports_websockets", "websocket_connect_timeout_ms",
    # codexapi extensions (Codex ignores them): per-provider proxy, CA bundle and timeouts.
    "proxy", "ca_bundle", "connect_timeout_ms", "read_timeout_ms",
})


def codex_home() -> Path:
    """``$CODEX_HOME``, default ``~/.codex``."""
    home = os.environ.get("CODEX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".codex"


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file: ``path`` if given, else ``$CODEX_HOME/config.toml``."""
    return Path(path).expanduser() if path is not None else codex_home() / "config.toml"


def read_config(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The parsed config file. A missing default file is an empty config; a missing explicit
    ``path`` and a file that is not valid TOML are :class:`ConfigError`."""
    file = config_path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        if path is None:
            return {}
        raise ConfigError(f"Codex config file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read Codex config file {file}: {exc.strerror}") from None
    import tomllib  # here, not at import: most programs never read a Codex config

    try:
        # tomllib's message already says "(at line L, column C)".
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Codex config file {file} is not UTF-8: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Codex config file {file} is not valid TOML: {exc}") from None


def _env(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value if value.strip() else None


def built_in_provider_settings() -> dict[str, Settings]:
    """The providers Codex knows without configuration: ``openai`` and the local OSS servers.

    ``OPENAI_BASE_URL`` moves the ``openai`` provider; ``CODEX_OSS_BASE_URL`` / ``CODEX_OSS_PORT``
    move the local ones, as in Codex.
    """
    headers = {}
    # Codex fills these two from the environment for its OpenAI provider (env_http_headers).
    for header, var in (("OpenAI-Organization", "OPENAI_ORGANIZATION"),
                        ("OpenAI-Project", "OPENAI_PROJECT")):
        value = _env(var)
        if value:
            headers[header] = value
    openai = dict(name="OpenAI", base_url=_env("OPENAI_BASE_URL") or
                  "https://api.openai.com/v1", wire="responses", headers=headers,
                  retry=RetryPolicy.from_codex(DEFAULT_REQUEST_MAX_RETRIES))

    def oss(port: int, wire: str) -> Settings:
        base = _env("CODEX_OSS_BASE_URL")
        if base is None:
            port_text = _env("CODEX_OSS_PORT")
            if port_text is not None and port_text.strip().isdigit():
                port = int(port_text)
            base = f"http://localhost:{port}/v1"
        return dict(name="gpt-oss", base_url=base, wire=wire,
                    retry=RetryPolicy.from_codex(DEFAULT_REQUEST_MAX_RETRIES))

    return {
        "openai": openai,
        # "oss" is the id older Codex releases use for a local Ollama; newer ones say "ollama".
        "oss": oss(DEFAULT_OLLAMA_PORT, "chat"),
        "ollama": oss(DEFAULT_OLLAMA_PORT, "responses"),
        "lmstudio": oss(DEFAULT_LMSTUDIO_PORT, "responses"),
    }


class _Table:
    """Typed reads from one ``[model_providers.<id>]`` table; errors name key and file."""

    def __init__(self, data: Mapping[str, Any], provider_id: str, file: Path) -> None:
        self.data = data
        self.where = f"model_providers.{provider_id}"
        self.file = file

    def error(self, key: str, expected: str) -> ConfigError:
        value = self.data[key]
        return ConfigError(f"{self.where}.{key} in {self.file} must be {expected}, got "
                           f"{type(value).__name__} {value!r}")

    def string(self, key: str, allow_empty: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.error(key, "a non-empty string")
        return value

    def count(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(key, "a non-negative integer")
        return value

    def positive_ms(self, key: str) -> float | None:
        value = self.count(key)
        if value == 0:
            raise self.error(key, "a positive number of milliseconds")
        return None if value is None else value / 1000.0

    def string_map(self, key: str) -> dict[str, str]:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise self.error(key, "a table of strings (e.g. { name = \"value\" })")
        return dict(value)


def _command_auth(t: _Table) -> Any:
    """``[model_providers.<id>.auth]`` as a :class:`codexapi.CommandAuth`, or None."""
    table = t.data.get("auth")
    if table is None:
        return None
    where = f"{t.where}.auth"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} in {t.file} must be a table (command = \"...\", args = "
                          f"[...]), got {type(table).__name__}")
    for key in table:
        if key not in AUTH_KEYS:
            raise ConfigError(f"{where}.{key} in {t.file} is not a known key (known: "
                              f"{', '.join(sorted(AUTH_KEYS))})")
    conflicts = [key for key in ("env_key", "experimental_bearer_token")
                 if t.data.get(key) is not None]
    if t.data.get("requires_openai_auth") is True:
        conflicts.append("requires_openai_auth")
    if conflicts:
        raise ConfigError(f"{where} in {t.file} cannot be combined with "
                          f"{', '.join(conflicts)} (one provider, one source of credentials)")
    auth = _Table(table, t.where.partition(".")[2] + ".auth", t.file)
    command = auth.string("command")
    if command is None:
        raise ConfigError(f"{where}.command in {t.file} is required: the program that prints "
                          "the bearer token")
    args = table.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{where}.args in {t.file} must be a list of strings")
    timeout = auth.positive_ms("timeout_ms")
    interval = auth.count("refresh_interval_ms")
    # Codex resolves a relative cwd (and "." by default) against the config file's folder.
    cwd = t.file.parent / Path(auth.string("cwd") or ".").expanduser()
    from .command_auth import CommandAuth

    return CommandAuth(
        command, args,
        timeout=DEFAULT_AUTH_TIMEOUT_MS / 1000 if timeout is None else timeout,
        refresh_interval=(DEFAULT_AUTH_REFRESH_INTERVAL_MS if interval is None
                          else interval) / 1000,
        cwd=cwd.resolve())


def _bearer_token(t: _Table) -> Any:
    """``experimental_bearer_token`` as a :class:`codexapi.BearerAuth`, or None. Errors never
    quote the value."""
    token = t.data.get("experimental_bearer_token")
    if token is None:
        return None
    where = f"{t.where}.experimental_bearer_token in {t.file}"
    if not isinstance(token, str) or not token.strip():
        raise ConfigError(f"{where} must be a non-empty string")
    if t.data.get("env_key") is not None:
        raise ConfigError(f"{where} cannot be combined with env_key")
    from .auth import BearerAuth
    from .errors import AuthError

    try:
        return BearerAuth(token)
    except AuthError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def settings_from_table(provider_id: str, data: Any, file: Path) -> Settings:
    """One ``[model_providers.<id>]`` table as Provider settings."""
    if not isinstance(data, dict):
        raise ConfigError(f"model_providers.{provider_id} in {file} must be a table, got "
                          f"{type(data).__name__}")
    t = _Table(data, provider_id, file)
    for key in data:
        if key not in PROVIDER_KEYS:
            log.debug("ignoring unknown key model_providers.%s.%s in %s", provider_id, key, file)
    # Any registered wire's name ("responses", "chat", a plugin's): an unknown one is a
    # ConfigError listing the registered wires when a Client is made.
    wire = (t.string("wire_api") or "responses").lower()
    base_url = t.string("base_url")
    if base_url is None:
        # Codex falls back to the OpenAI API for a provider without base_url.
        base_url = "https://api.openai.com/v1"
    else:
        from .http.urls import check_base_url

        check_base_url(base_url, f"{t.where}.base_url in {file}")
    headers = t.string_map("http_headers")
    for header, var in t.string_map("env_http_headers").items():
        # As in Codex: an unset or blank variable leaves the header out.
        value = _env(var)
        if value is not None:
            headers[header] = value
    retries = t.count("request_max_retries")
    stream_retries = t.count("stream_max_retries")
    idle = t.positive_ms("stream_idle_timeout_ms")
    connect = t.positive_ms("connect_timeout_ms")
    read = t.positive_ms("read_timeout_ms")
    ca_bundle = t.string("ca_bundle")
    if ca_bundle is not None and not Path(ca_bundle).expanduser().exists():
        raise ConfigError(f"{t.where}.ca_bundle in {file} names {ca_bundle}, which does not "
                          "exist")
    proxy = t.string("proxy", allow_empty=True)
    if proxy:
        from .http.proxy import parse_proxy_url

        parse_proxy_url(proxy, f"{t.where}.proxy in {file}")
    for flag in ("requires_openai_auth", "supports_websockets"):
        if data.get(flag) is not None and not isinstance(data[flag], bool):
            raise t.error(flag, "true or false")
    if data.get("supports_websockets") is True and wire == "responses":
        # Codex speaks Responses over WebSocket to such a provider (HTTP when it must).
        wire = "responses_websocket"
    ws_connect = t.positive_ms("websocket_connect_timeout_ms")
    auth = _command_auth(t) or _bearer_token(t)
    extra: dict[str, Any] = {}
    if auth is not None:
        extra["auth"] = auth
    if connect is not None:
        extra["connect_timeout"] = connect
    if read is not None:
        extra["read_timeout"] = read
    return dict(
        name=t.string("name") or provider_id,
        base_url=base_url,
        wire=wire,
        headers=headers,
        query_params=t.string_map("query_params"),
        retry=RetryPolicy.from_codex(min(
            DEFAULT_REQUEST_MAX_RETRIES if retries is None else retries, MAX_RETRIES_CAP)),
        stream_idle_timeout=idle if idle is not None else DEFAULT_STREAM_IDLE_TIMEOUT_MS / 1000,
        stream_max_retries=min(DEFAULT_STREAM_MAX_RETRIES if stream_retries is None
                               else stream_retries, MAX_RETRIES_CAP),
        env_key=t.string("env_key"),
        env_key_instructions=t.string("env_key_instructions"),
        proxy=proxy,
        ca_bundle=str(Path(ca_bundle).expanduser()) if ca_bundle is not None else None,
        websocket_connect_timeout=(DEFAULT_WEBSOCKET_CONNECT_TIMEOUT_MS / 1000
                                   if ws_connect is None else ws_connect),
        **extra,
    )


def load_provider_settings(path: str | os.PathLike[str] | None = None
                           ) -> dict[str, Settings]:
    """Every provider Codex would know: the built-ins, then ``[model_providers.*]`` of the
    config file (a configured id replaces a built-in of the same id)."""
    file = config_path(path)
    config = read_config(path)
    providers = built_in_provider_settings()
    tables = config.get("model_providers", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"model_providers in {file} must be a table of provider tables, got "
                          f"{type(tables).__name__}")
    for provider_id, table in tables.items():
        providers[provider_id] = settings_from_table(provider_id, table, file)
    return providers


def provider_settings(provider_id: str, path: str | os.PathLike[str] | None = None
                      ) -> Settings:
    """The settings of provider ``provider_id`` in Codex's config (or a built-in one)."""
    file = config_path(path)
    config = read_config(path)
    tables = config.get("model_providers", {})
    if isinstance(tables, dict) and provider_id in tables:
        return settings_from_table(provider_id, tables[provider_id], file)
    providers = load_provider_settings(path)
    if provider_id in providers:
        return providers[provider_id]
    known = ", ".join(sorted(providers))
    raise ConfigError(f"no model provider {provider_id!r} in {file} (known: {known}); add a "
                      f"[model_providers.{provider_id}] table")


def default_provider_id(path: str | os.PathLike[str] | None = None) -> str:
    """Codex's top-level ``model_provider`` (default ``openai``)."""
    value = read_config(path).get("model_provider", "openai")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"model_provider in {config_path(path)} must be a provider id string")
    return value


__all__: list[str] = [
    "built_in_provider_settings",
    "codex_home",
    "config_path",
    "default_provider_id",
    "load_provider_settings",
    "provider_settings",
    "read_config",
]
