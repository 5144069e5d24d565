"""Providers from Codex's config.toml: keys, defaults, built-ins, env_key auth, bad input."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import codexapi
from codexapi import (
    AuthError,
    Client,
    ConfigError,
    OutputTextDelta,
    Provider,
    ResponsesRequest,
    WireApi,
)
from codexapi.server import EmbeddedServer

FULL = """
model = "gpt-5"
model_provider = "corp"

[model_providers.corp]
name = "Corp Gateway"
base_url = "{base}"
env_key = "CORP_API_KEY"
env_key_instructions = "get one at https://keys.corp.example"
wire_api = "chat"
query_params = {{ api-version = "2025-04-01-preview" }}
http_headers = {{ "X-Team" = "research" }}
env_http_headers = {{ "X-Org" = "CORP_ORG", "X-Missing" = "CORP_UNSET", "X-Blank" = "CORP_BLANK" }}
request_max_retries = 2
stream_max_retries = 7
stream_idle_timeout_ms = 1500
some_future_key = true
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def codex_home() -> Path:
    return Path(os.environ["CODEX_HOME"])


def test_every_codex_key_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORP_ORG", "org-7")
    monkeypatch.setenv("CORP_BLANK", "  ")
    path = write(tmp_path, FULL.format(base="https://gw.corp.example/openai"))
    p = Provider.from_codex_config("corp", path)
    assert p.name == "Corp Gateway"
    assert p.base_url == "https://gw.corp.example/openai"
    assert p.wire is WireApi.CHAT
    assert p.env_key == "CORP_API_KEY"
    assert p.query_params == {"api-version": "2025-04-01-preview"}
    # env_http_headers: set -> sent; unset or blank -> left out (Codex's rule).
    assert p.headers == {"X-Team": "research", "X-Org": "org-7"}
    # request_max_retries counts retries; max_attempts counts the first try too.
    assert p.retry.max_attempts == 3
    assert p.retry.retry_429 is False and p.retry.retry_5xx and p.retry.retry_transport
    assert p.retry.base_delay == pytest.approx(0.2)
    assert p.stream_max_retries == 7
    assert p.stream_idle_timeout == pytest.approx(1.5)
    assert p.url_for_path("chat/completions") == (
        "https://gw.corp.example/openai/chat/completions?api-version=2025-04-01-preview")


def test_defaults_follow_codex(tmp_path: Path) -> None:
    path = write(tmp_path, '[model_providers.local]\nbase_url = "http://127.0.0.1:9/v1"\n')
    p = Provider.from_codex_config("local", path)
    assert p.name == "local"
    assert p.wire is WireApi.RESPONSES
    assert p.retry.max_attempts == 5  # request_max_retries 4
    assert p.stream_max_retries == 5
    assert p.stream_idle_timeout == 300.0
    assert p.env_key is None and p.headers == {} and p.query_params == {}


def test_retry_counts_are_capped_like_codex(tmp_path: Path) -> None:
    path = write(tmp_path, '[model_providers.x]\nbase_url = "http://127.0.0.1:9/v1"\n'
                           "request_max_retries = 1000\nstream_max_retries = 1000\n")
    p = Provider.from_codex_config("x", path)
    assert p.retry.max_attempts == 101
    assert p.stream_max_retries == 100


def test_default_path_is_codex_home(monkeypatch: pytest.MonkeyPatch) -> None:
    write(codex_home(), '[model_providers.home]\nbase_url = "http://127.0.0.1:9/v1"\n')
    assert codexapi.load_providers()["home"].base_url == "http://127.0.0.1:9/v1"
    assert Provider.from_codex_config("home").name == "home"


def test_no_config_file_gives_the_built_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not (codex_home() / "config.toml").exists()
    providers = codexapi.load_providers()
    assert {"openai", "oss", "ollama", "lmstudio"} <= set(providers)
    openai = providers["openai"]
    assert (openai.name, openai.base_url, openai.wire) == (
        "OpenAI", "https://api.openai.com/v1", WireApi.RESPONSES)
    assert openai.env_key is None  # OPENAI_API_KEY or auth.json, via the built-in auth chain
    assert providers["oss"].base_url == "http://localhost:11434/v1"
    assert providers["oss"].wire is WireApi.CHAT
    assert providers["lmstudio"].base_url == "http://localhost:1234/v1"


def test_built_ins_follow_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:5/v1")
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-1")
    monkeypatch.setenv("CODEX_OSS_PORT", "4242")
    openai = Provider.from_codex_config("openai")
    assert openai.base_url == "http://127.0.0.1:5/v1"
    assert openai.headers == {"OpenAI-Organization": "org-1"}
    assert Provider.from_codex_config("oss").base_url == "http://localhost:4242/v1"


def test_a_configured_id_replaces_the_built_in(tmp_path: Path) -> None:
    path = write(tmp_path, '[model_providers.openai]\nname = "Mine"\n'
                           'base_url = "http://127.0.0.1:7/v1"\n')
    assert Provider.from_codex_config("openai", path).name == "Mine"
    assert codexapi.load_providers(path)["openai"].base_url == "http://127.0.0.1:7/v1"


def test_unknown_keys_are_ignored_with_a_debug_log(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, FULL.format(base="http://127.0.0.1:9/v1"))
    with caplog.at_level(logging.DEBUG, logger="codexapi.config"):
        Provider.from_codex_config("corp", path)
    messages = [r.getMessage() for r in caplog.records if r.name == "codexapi.config"]
    assert any("model_providers.corp.some_future_key" in m and str(path) in m
               for m in messages)


@pytest.mark.parametrize(("line", "key"), [
    ("wire_api = 5", "wire_api"),
    ("request_max_retries = -1", "request_max_retries"),
    ('request_max_retries = "3"', "request_max_retries"),
    ("stream_max_retries = true", "stream_max_retries"),
    ("stream_idle_timeout_ms = 0", "stream_idle_timeout_ms"),
    ("stream_idle_timeout_ms = 1.5", "stream_idle_timeout_ms"),
    ("http_headers = { X = 1 }", "http_headers"),
    ('query_params = "api-version=1"', "query_params"),
    ('env_http_headers = ["X"]', "env_http_headers"),
    ("env_key = 5", "env_key"),
    ('name = ""', "name"),
    ('base_url = "ftp://x"', "base_url"),
    ('requires_openai_auth = "yes"', "requires_openai_auth"),
    ('proxy = "socks9://h:1"', "proxy"),
    ('ca_bundle = "/nonexistent/ca.pem"', "ca_bundle"),
])
def test_invalid_values_name_the_key_and_file(tmp_path: Path, line: str, key: str) -> None:
    path = write(tmp_path, f'[model_providers.bad]\nbase_url = "http://127.0.0.1:9/v1"\n{line}\n'
                 if not line.startswith("base_url") else f"[model_providers.bad]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        Provider.from_codex_config("bad", path)
    assert f"model_providers.bad.{key}" in str(info.value)
    assert str(path) in str(info.value)


def test_a_provider_that_is_not_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, 'model_providers = { x = "y" }\n')
    with pytest.raises(ConfigError, match=r"model_providers\.x .*must be a table"):
        Provider.from_codex_config("x", path)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[model_providers.x]\nname = "x"\nbase_url = \n')
    with pytest.raises(ConfigError) as info:
        codexapi.load_providers(path)
    text = str(info.value)
    assert str(path) in text and "line 3" in text and "not valid TOML" in text


def test_unknown_provider_lists_the_known_ids(tmp_path: Path) -> None:
    path = write(tmp_path, '[model_providers.corp]\nbase_url = "http://127.0.0.1:9/v1"\n')
    with pytest.raises(ConfigError) as info:
        Provider.from_codex_config("crop", path)
    text = str(info.value)
    assert "'crop'" in text and str(path) in text
    assert "corp, lmstudio, ollama, openai, oss" in text


def test_an_explicit_path_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        codexapi.load_providers(missing)
    assert str(missing) in str(info.value)


# --- env_key -> auth, end to end ----------------------------------------------------------------


def _corp(tmp_path: Path, server: EmbeddedServer) -> Path:
    return write(tmp_path, FULL.format(base=server.base_url).replace('"chat"', '"responses"'))


def test_env_key_becomes_the_bearer_token(tmp_path: Path, server: EmbeddedServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORP_API_KEY", "sk-corp-secret-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-provider")  # must not be used
    provider = Provider.from_codex_config("corp", _corp(tmp_path, server))
    before = len(server.requests)
    with Client(provider, load_entrypoints=False) as client:
        events = list(client.stream(ResponsesRequest(model="m", input="Hi")))
    assert "".join(e.delta for e in events if isinstance(e, OutputTextDelta)) == "You said: Hi"
    headers = {k.lower(): v for k, v in server.requests[before][2].items()}
    assert headers["authorization"] == "Bearer sk-corp-secret-123"
    assert headers["x-team"] == "research"
    assert "sk-corp-secret-123" not in repr(provider) + repr(client)


def test_unset_env_key_is_an_auth_error_naming_the_variable(
        tmp_path: Path, server: EmbeddedServer) -> None:
    provider = Provider.from_codex_config("corp", _corp(tmp_path, server))
    with pytest.raises(AuthError) as info:
        Client(provider, load_entrypoints=False)
    text = str(info.value)
    assert "CORP_API_KEY" in text and "is not set" in text
    assert "https://keys.corp.example" in text  # env_key_instructions


def test_codex_extensions_proxy_ca_and_timeouts(tmp_path: Path) -> None:
    ca = write(tmp_path, "", "ca.pem")
    path = write(tmp_path, '[model_providers.x]\nbase_url = "http://127.0.0.1:9/v1"\n'
                           f'proxy = "http://127.0.0.1:3128"\nca_bundle = "{ca}"\n'
                           "connect_timeout_ms = 2500\nread_timeout_ms = 60000\n")
    p = Provider.from_codex_config("x", path)
    assert (p.proxy, p.ca_bundle) == ("http://127.0.0.1:3128", str(ca))
    assert (p.connect_timeout, p.read_timeout) == (2.5, 60.0)
