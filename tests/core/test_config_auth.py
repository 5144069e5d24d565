"""Credentials and WebSocket settings from Codex's config.toml: ``[model_providers.<id>.auth]``
(a token command), ``experimental_bearer_token``, ``supports_websockets`` and
``websocket_connect_timeout_ms``; used by a Client and by ``codexapi chat --provider``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexapi import (
    BearerAuth,
    Client,
    CommandAuth,
    ConfigError,
    Provider,
    ResponsesRequest,
)
from codexapi.cli.commands import main
from codexapi.server import EmbeddedServer

TOKEN_SCRIPT = "import sys; print(sys.argv[1])\n"


@pytest.fixture(scope="module")
def api() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(api_keys={"gw-token-1"}) as server:
        yield server


def gateway_config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    (tmp_path / "helpers").mkdir(exist_ok=True)
    (tmp_path / "helpers" / "print_token.py").write_text(TOKEN_SCRIPT)
    path = tmp_path / "config.toml"
    python = sys.executable.replace("\\", "\\\\")
    path.write_text(f"""
model_provider = "gw"

[model_providers.gw]
name = "Company gateway"
base_url = "{base_url}"
{extra}

[model_providers.gw.auth]
command = "{python}"
args = ["print_token.py", "gw-token-1"]
timeout_ms = 2500
refresh_interval_ms = 60000
cwd = "helpers"
""", encoding="utf-8")
    return path


def test_the_auth_table_becomes_a_command_auth(tmp_path: Path, api: EmbeddedServer) -> None:
    provider = Provider.from_codex_config("gw", gateway_config(tmp_path, api.base_url))
    auth = provider.auth
    assert isinstance(auth, CommandAuth)
    assert (auth.command, auth.args) == (sys.executable, ("print_token.py", "gw-token-1"))
    assert (auth.timeout, auth.refresh_interval) == (2.5, 60.0)
    # A relative cwd is relative to the config file, as in Codex.
    assert auth.cwd == (tmp_path / "helpers").resolve()
    assert "gw-token-1" not in repr(provider)
    # The built-in auth chain uses it.
    with Client(provider, load_entrypoints=False) as client:
        assert client.auth is auth
        text = client.stream(ResponsesRequest(model="m", input="Hello")).collect().text
    assert text == "You said: Hello"


def test_the_auth_table_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[model_providers.gw]\nbase_url = "http://127.0.0.1:9/v1"\n'
                    '[model_providers.gw.auth]\ncommand = "token-helper"\n')
    auth = Provider.from_codex_config("gw", path).auth
    assert isinstance(auth, CommandAuth)
    assert (auth.args, auth.timeout, auth.refresh_interval) == ((), 5.0, 300.0)
    assert auth.cwd == tmp_path.resolve()
    path.write_text(path.read_text() + "refresh_interval_ms = 0\n")
    assert Provider.from_codex_config("gw", path).auth.refresh_interval == 0  # type: ignore


def test_the_cli_uses_the_token_command_of_its_provider(
        tmp_path: Path, api: EmbeddedServer, capsys: pytest.CaptureFixture[str]) -> None:
    config = gateway_config(tmp_path, api.base_url)
    assert main(["chat", "Hello", "--provider", "gw", "--config", str(config),
                 "--no-plugins"]) == 0
    assert "You said: Hello" in capsys.readouterr().out


@pytest.mark.parametrize(("table", "problem"), [
    ('env_key = "GW_KEY"\n[model_providers.gw.auth]\ncommand = "t"',
     "cannot be combined with env_key"),
    ('experimental_bearer_token = "abcdef"\n[model_providers.gw.auth]\ncommand = "t"',
     "cannot be combined with experimental_bearer_token"),
    ('requires_openai_auth = true\n[model_providers.gw.auth]\ncommand = "t"',
     "cannot be combined with requires_openai_auth"),
    ('[model_providers.gw.auth]\nargs = ["x"]', "auth.command in .* is required"),
    ('[model_providers.gw.auth]\ncommand = "  "', "auth.command"),
    ('[model_providers.gw.auth]\ncommand = "t"\nargs = "a b"', "auth.args .* list of strings"),
    ('[model_providers.gw.auth]\ncommand = "t"\ntimeout_ms = 0', "auth.timeout_ms"),
    ('[model_providers.gw.auth]\ncommand = "t"\nrefresh_interval_ms = -5',
     "auth.refresh_interval_ms"),
    ('[model_providers.gw.auth]\ncommand = "t"\nshell = true', "auth.shell .* not a known key"),
    ('auth = "token-helper"', "auth in .* must be a table"),
])
def test_bad_auth_tables_are_config_errors_naming_the_key(tmp_path: Path, table: str,
                                                          problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[model_providers.gw]\nbase_url = "http://127.0.0.1:9/v1"\n{table}\n')
    with pytest.raises(ConfigError, match=problem) as info:
        Provider.from_codex_config("gw", path)
    assert str(path) in str(info.value)


def test_experimental_bearer_token_is_the_bearer_token(tmp_path: Path,
                                                       api: EmbeddedServer) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[model_providers.gw]\nbase_url = "{api.base_url}"\n'
                    'experimental_bearer_token = "gw-token-1"\n')
    provider = Provider.from_codex_config("gw", path)
    assert isinstance(provider.auth, BearerAuth) and "gw-token-1" not in repr(provider)
    with Client(provider, load_entrypoints=False) as client:
        assert client.stream(ResponsesRequest(model="m", input="Hello")).collect().text


@pytest.mark.parametrize("value", ['"tok\\nen-with-break"', '""', "42"])
def test_a_bad_experimental_bearer_token_is_a_config_error_that_never_quotes_it(
        tmp_path: Path, value: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[model_providers.gw]\nbase_url = "http://127.0.0.1:9/v1"\n'
                    f"experimental_bearer_token = {value}\n")
    with pytest.raises(ConfigError, match="experimental_bearer_token") as info:
        Provider.from_codex_config("gw", path)
    assert "en-with-break" not in str(info.value)


def test_supports_websockets_selects_the_websocket_wire(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[model_providers.ws]\nbase_url = "http://127.0.0.1:9/v1"\n'
                    "supports_websockets = true\nwebsocket_connect_timeout_ms = 2500\n"
                    '[model_providers.plain]\nbase_url = "http://127.0.0.1:9/v1"\n'
                    '[model_providers.off]\nbase_url = "http://127.0.0.1:9/v1"\n'
                    "supports_websockets = false\n")
    ws = Provider.from_codex_config("ws", path)
    assert ws.wire == "responses_websocket" and ws.websocket_connect_timeout == 2.5
    for name in ("plain", "off"):
        provider = Provider.from_codex_config(name, path)
        assert provider.wire == "responses" and provider.websocket_connect_timeout == 15.0
    assert Provider().websocket_connect_timeout == 15.0


@pytest.mark.parametrize(("line", "problem"), [
    ('supports_websockets = "yes"', "supports_websockets .* true or false"),
    ("websocket_connect_timeout_ms = 0", "websocket_connect_timeout_ms"),
])
def test_bad_websocket_settings_are_config_errors(tmp_path: Path, line: str,
                                                  problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'[model_providers.ws]\nbase_url = "http://127.0.0.1:9/v1"\n{line}\n')
    with pytest.raises(ConfigError, match=problem):
        Provider.from_codex_config("ws", path)


def test_websocket_connect_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="websocket_connect_timeout"):
        Provider(websocket_connect_timeout=0)
