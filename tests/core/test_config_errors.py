"""Configuration that can never work fails at once: a one-line ConfigError, exit code 2 on the
command line, never retried. Base URLs are checked when the Provider is made; a TLS handshake
that cannot succeed is a TLSHandshakeError (a ConfigError and a TransportError)."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REQ
from support.tls_server import ScratchCA, https_server

from codexapi import (
    Client,
    ConfigError,
    Provider,
    RetryPolicy,
    TLSHandshakeError,
    TransportError,
    hookimpl,
)
from codexapi.cli.commands import main
from codexapi.http.transport import HttpRequest
from codexapi.http.urls import check_base_url, join
from codexapi.server import EmbeddedServer

SECRET = "hunter2-very-secret"

BAD_URLS = {
    "notaurl": "has no scheme",
    "localhost:8000/v1": "has no scheme",
    "ftp://files.example/v1": "unsupported scheme 'ftp'",
    "http://": "has no host",
    "https:///v1": "has no host",
    "  http://127.0.0.1:8000/v1": "leading or trailing whitespace",
    "http://127.0.0.1:8000/v1\n": "leading or trailing whitespace",
    "http://127.0.0.1:8000/v 1": "whitespace or control characters",
    "http://127.0.0.1:99999/v1": "not a valid URL: Port out of range",
    "http://127.0.0.1:0/v1": "port 0",
    "": "is empty",
}


@pytest.mark.parametrize(("url", "why"), BAD_URLS.items())
def test_a_bad_base_url_is_a_config_error_when_the_provider_is_made(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        Provider(base_url=url)
    message = str(info.value)
    assert why in message and "\n" not in message
    assert not info.value.retryable


def test_credentials_in_the_url_are_refused_and_never_quoted() -> None:
    with pytest.raises(ConfigError) as info:
        Provider(base_url=f"https://user:{SECRET}@gateway.example/v1")
    assert "credentials" in str(info.value) and "gateway.example" in str(info.value)
    assert SECRET not in f"{info.value} {info.value!r} {info.value.__cause__!r}"
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_good_base_urls_pass_unchanged() -> None:
    for url in ("https://api.openai.com/v1", "http://127.0.0.1:8000/v1", "HTTPS://X/v1/",
                "http://[::1]:8080/v1", "https://h/v1?api-version=2025-04-01-preview"):
        assert check_base_url(url) == url == Provider(base_url=url).base_url


@pytest.mark.parametrize(("base", "params", "url"), [
    # A query in the base URL stays after the path (the crate would put the path after it).
    ("https://az.example/openai/v1?api-version=x", {}, "https://az.example/openai/v1/responses"
     "?api-version=x"),
    ("https://az.example/v1/?api-version=x", {"a": "b"},
     "https://az.example/v1/responses?api-version=x&a=b"),
    # A fragment is never sent; it must not swallow the path.
    ("https://h/v1#section", {}, "https://h/v1/responses"),
    ("https://h/v1?q=1#frag", {}, "https://h/v1/responses?q=1"),
    ("https://h/v1", {"api-version": "y"}, "https://h/v1/responses?api-version=y"),
])
def test_join_keeps_the_query_after_the_path(base: str, params: dict[str, str], url: str
                                             ) -> None:
    assert join(base, "/responses", params) == url
    assert Provider(base_url=base, query_params=params).url_for_path("responses") == url


class _Urls:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def codexapi_on_request(self, request: HttpRequest) -> None:
        self.seen.append(request.url)


def test_the_base_url_query_is_sent_after_the_path(server: EmbeddedServer) -> None:
    urls = _Urls()
    provider = Provider(base_url=server.base_url + "?api-version=x#ignored",
                        retry=RetryPolicy(max_attempts=1))
    with Client(provider, plugins=[urls], load_entrypoints=False) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
        assert client.list_models(client_version="1.0").slugs
    assert urls.seen == [server.base_url + "/responses?api-version=x",
                         server.base_url + "/models?api-version=x&client_version=1.0"]


@pytest.mark.parametrize("url", ["notaurl", "ftp://x/v1", "http://", "  http://127.0.0.1/v1"])
def test_cli_bad_base_url_is_one_line_exit_2(url: str, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    code = main(["chat", "--base-url", url, "Hi"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("codexapi: error: ConfigError: --base-url ")


def test_openai_base_url_variable_is_named(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "notaurl")
    assert main(["chat", "Hi"]) == 2
    assert "OPENAI_BASE_URL 'notaurl' has no scheme" in capsys.readouterr().err


# --- TLS that can never succeed ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ScratchCA:
    return ScratchCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls(ca: ScratchCA) -> Iterator[EmbeddedServer]:
    with https_server(ca) as server:
        yield server


def _attempts(base_url: str) -> tuple[TransportError, list[float]]:
    """The error of one stream call under a 5-attempt policy, and the backoff sleeps taken."""
    slept: list[float] = []
    provider = Provider(base_url=base_url, retry=RetryPolicy(max_attempts=5))
    with Client(provider, load_entrypoints=False, sleep=slept.append) as client, \
            pytest.raises(TransportError) as info:
        client.stream(REQ)
    return info.value, slept


def test_https_to_a_plain_http_port_is_not_retried(server: EmbeddedServer) -> None:
    base = server.base_url.replace("http://", "https://")
    before = len(server.requests)
    error, slept = _attempts(base)
    assert isinstance(error, TLSHandshakeError) and isinstance(error, ConfigError)
    assert "WRONG_VERSION_NUMBER" in str(error) and "http://" in str(error)
    assert slept == [] and error.attempts == 1 and not error.retryable
    assert len(server.requests) == before  # the server never saw a request


def test_an_untrusted_certificate_is_not_retried(tls: EmbeddedServer) -> None:
    error, slept = _attempts(tls.base_url)
    assert isinstance(error, TLSHandshakeError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(error) and slept == []


def test_a_refused_connection_is_still_retried() -> None:
    error, slept = _attempts("http://127.0.0.1:9/v1")
    assert not isinstance(error, ConfigError) and len(slept) == 4


def test_cli_tls_error_is_one_line_exit_2_at_once(server: EmbeddedServer, tls: EmbeddedServer
                                                  ) -> None:
    cli = Path(sys.executable).with_name("codexapi")
    for base in (server.base_url.replace("http://", "https://"), tls.base_url):
        proc = subprocess.run([str(cli), "chat", "--base-url", base, "Hi"], capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                          "HOME": "/nonexistent",
                                                          "PYTHONWARNINGS": "always"})
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("codexapi: error: TLSHandshakeError: TLS error")
        assert "attempts" not in proc.stderr  # not "gave up after 5 attempts"


def test_no_urllib3_warning_leaks(server: EmbeddedServer, caplog: pytest.LogCaptureFixture
                                  ) -> None:
    base = server.base_url.replace("http://", "https://")
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        _attempts(base)
    assert [w for w in seen if issubclass(w.category, FutureWarning | DeprecationWarning)] == []


def test_a_bad_base_url_in_config_toml_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[model_providers.gw]\nbase_url = "http://"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        Provider.from_codex_config("gw", config)
    assert str(info.value) == f"model_providers.gw.base_url in {config} 'http://' has no host " \
        "(e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1)"
