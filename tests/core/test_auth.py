"""Auth objects, the codexapi_auth precedence chain, and 401 -> refresh -> resend, against the
embedded server with its api-key check switched on."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REQ, make_client

import codexapi
from codexapi import (
    ApiError,
    AuthError,
    Client,
    PluginError,
    Provider,
    hookimpl,
)
from codexapi.cli.commands import main
from codexapi.server import EmbeddedServer
from codexapi_plugins import auth as builtin_auth


@pytest.fixture(scope="module")
def authed() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


@pytest.fixture
def srv(authed: EmbeddedServer) -> Iterator[EmbeddedServer]:
    authed.requests.clear()
    authed.api_keys = None
    yield authed
    authed.api_keys = None


def sent_headers(server: EmbeddedServer) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in headers.items()} for _, _, headers, _ in server.requests]


def write_auth(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def jwt(claims: dict[str, Any]) -> str:
    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


# --- the auth objects ------------------------------------------------------------------------


def test_auth_classes_are_exported_lazily_from_codexapi() -> None:
    from codexapi import AzureKeyAuth, BearerAuth, CodexAuthFile, NoAuth

    assert (NoAuth, BearerAuth, AzureKeyAuth, CodexAuthFile) == (
        builtin_auth.NoAuth, builtin_auth.BearerAuth, builtin_auth.AzureKeyAuth,
        builtin_auth.CodexAuthFile)
    assert {"NoAuth", "BearerAuth", "AzureKeyAuth", "CodexAuthFile"} <= set(codexapi.__all__)
    with pytest.raises(AttributeError):
        codexapi.NoSuchAuth  # noqa: B018
    for obj in (NoAuth(), BearerAuth("k" * 10), AzureKeyAuth("k" * 10), CodexAuthFile("x")):
        assert isinstance(obj, codexapi.auth.Auth)


def test_bearer_auth_headers_and_repr_hide_secrets() -> None:
    auth = codexapi.BearerAuth("secret-token\n", account_id="acct-1")
    # D5: Authorization and ChatGPT-Account-ID; the trailing newline of a token file is dropped.
    assert auth.headers() == {"Authorization": "Bearer secret-token",
                              "ChatGPT-Account-ID": "acct-1"}
    assert auth.refresh() is False  # a fixed string cannot get any newer
    assert "secret-token" not in repr(auth) and "acct-1" not in repr(auth)
    assert codexapi.NoAuth().headers() == {} and codexapi.NoAuth().refresh() is False


def test_bearer_auth_callable_is_called_on_first_use_and_again_on_refresh() -> None:
    tokens = iter(["tok-1", "tok-2", "tok-2"])
    calls = []

    def fetch() -> str:
        calls.append(1)
        return next(tokens)

    auth = codexapi.BearerAuth(fetch)
    assert calls == []  # lazy: nothing fetched until a request needs it
    assert auth.headers()["Authorization"] == "Bearer tok-1"
    assert auth.headers()["Authorization"] == "Bearer tok-1"
    assert len(calls) == 1
    assert auth.refresh() is True
    assert auth.headers()["Authorization"] == "Bearer tok-2"
    assert auth.refresh() is False  # same token again: not worth a second try
    assert len(calls) == 3


@pytest.mark.parametrize(("source", "expected"), [
    (lambda: (_ for _ in ()).throw(RuntimeError("vault sealed")), "raised RuntimeError: vault"),
    (lambda: 42, "returned int"),
    (lambda: "", "is empty"),
    (lambda: "tok\r\nX-Evil: 1", "control characters"),
])
def test_bad_token_callable_is_an_auth_error_naming_it(source: Any, expected: str) -> None:
    auth = codexapi.BearerAuth(source)
    with pytest.raises(AuthError, match=expected) as info:
        auth.headers()
    assert "<lambda>" in str(info.value)
    assert "X-Evil" not in str(info.value)


@pytest.mark.parametrize("bad", [123, None, b"bytes"])
def test_bearer_auth_rejects_non_token(bad: Any) -> None:
    with pytest.raises(AuthError, match="string or a zero-argument callable"):
        codexapi.BearerAuth(bad)


def test_bearer_auth_rejects_header_injection_without_quoting_the_value() -> None:
    with pytest.raises(AuthError) as info:
        codexapi.BearerAuth("sk-abc\nSet-Cookie: x")
    assert "sk-abc" not in str(info.value)
    with pytest.raises(AuthError):
        codexapi.AzureKeyAuth("   ")


def test_azure_key_auth() -> None:
    auth = codexapi.AzureKeyAuth("azure-secret-123")
    assert auth.headers() == {"api-key": "azure-secret-123"}
    assert auth.refresh() is False
    assert "azure-secret-123" not in repr(auth)


def test_codex_auth_file_api_key_entry(tmp_path: Path) -> None:
    path = write_auth(tmp_path / "auth.json", {"OPENAI_API_KEY": "sk-file-key", "tokens": None})
    auth = codexapi.CodexAuthFile(path)
    assert auth.headers() == {"Authorization": "Bearer sk-file-key"}
    assert str(path) in repr(auth) and "sk-file-key" not in repr(auth)


def test_codex_auth_file_chatgpt_tokens(tmp_path: Path) -> None:
    path = write_auth(tmp_path / "auth.json", {
        "OPENAI_API_KEY": None,
        "tokens": {"id_token": jwt({}), "access_token": "at-1", "refresh_token": "rt",
                   "account_id": "acct-9"},
        "last_refresh": "2025-01-01T00:00:00Z"})
    assert codexapi.CodexAuthFile(path).headers() == {
        "Authorization": "Bearer at-1", "ChatGPT-Account-ID": "acct-9"}


def test_codex_auth_file_account_id_from_id_token_claims(tmp_path: Path) -> None:
    claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-claim"}}
    path = write_auth(tmp_path / "auth.json", {
        "tokens": {"id_token": jwt(claims), "access_token": "at-1", "refresh_token": "rt"}})
    assert codexapi.CodexAuthFile(path).headers()["ChatGPT-Account-ID"] == "acct-claim"


def test_codex_auth_file_auth_mode_chatgpt_prefers_tokens(tmp_path: Path) -> None:
    data = {"OPENAI_API_KEY": "sk-key", "auth_mode": "chatgpt",
            "tokens": {"access_token": "at-1", "account_id": "a"}}
    path = write_auth(tmp_path / "auth.json", data)
    assert codexapi.CodexAuthFile(path).headers()["Authorization"] == "Bearer at-1"
    write_auth(path, {**data, "auth_mode": "apikey"})
    assert codexapi.CodexAuthFile(path).headers()["Authorization"] == "Bearer sk-key"


def test_codex_auth_file_default_path_is_codex_home(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path))
    write_auth(tmp_path / "auth.json", {"OPENAI_API_KEY": "sk-home"})
    auth = codexapi.CodexAuthFile()
    assert auth.path == tmp_path / "auth.json"
    assert auth.headers()["Authorization"] == "Bearer sk-home"
    monkeypatch.delenv("CODEX_HOME")
    assert codexapi.CodexAuthFile().path == Path.home() / ".codex" / "auth.json"


def test_codex_auth_file_is_read_again_on_refresh(tmp_path: Path) -> None:
    path = write_auth(tmp_path / "auth.json", {"tokens": {"access_token": "at-1"}})
    auth = codexapi.CodexAuthFile(path)
    assert auth.headers()["Authorization"] == "Bearer at-1"
    write_auth(path, {"tokens": {"access_token": "at-2"}})
    assert auth.headers()["Authorization"] == "Bearer at-1"  # cached between refreshes
    assert auth.refresh() is True
    assert auth.headers()["Authorization"] == "Bearer at-2"
    assert auth.refresh() is False


@pytest.mark.parametrize(("content", "expected"), [
    (None, "does not exist"),
    ("{not json", "is not valid JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8|not valid JSON"),
    ("[1, 2]", "must hold a JSON object, not list"),
    ('{"tokens": "abc"}', "`tokens` entry that is not an object"),
    ('{"tokens": {"refresh_token": "rt"}}', "without a string `access_token`"),
    ('{"OPENAI_API_KEY": null, "tokens": null}', "neither an OPENAI_API_KEY"),
    ('{"OPENAI_API_KEY": "sk-a\\nb"}', "control characters"),
    ("directory", "cannot be read"),
])
def test_bad_codex_auth_file_is_an_auth_error_naming_the_file(
        tmp_path: Path, content: str | bytes | None, expected: str) -> None:
    path = tmp_path / "auth.json"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    auth = codexapi.CodexAuthFile(path)
    with pytest.raises(AuthError, match=expected) as info:
        auth.headers()
    assert str(path) in str(info.value)
    assert "sk-a" not in str(info.value)


def test_unreadable_codex_auth_file_through_a_client(srv: EmbeddedServer) -> None:
    path = Path(os.environ["CODEX_HOME"]) / "auth.json"
    path.write_text("{truncated", encoding="utf-8")
    with make_client(srv) as client:
        assert isinstance(client.auth, codexapi.CodexAuthFile)
        with pytest.raises(AuthError, match=str(path)):
            client.stream(REQ)
    assert srv.requests == []  # nothing was sent without credentials


# --- precedence: Client(auth=) > plugins > built-in --------------------------------------------


class FixedAuthPlugin:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.providers: list[Provider] = []

    @hookimpl
    def codexapi_auth(self, provider: Provider) -> Any:
        self.providers.append(provider)
        return codexapi.BearerAuth(self.token) if self.token else None


def first_authorization(server: EmbeddedServer, client: Client) -> str | None:
    client.stream(REQ).collect()
    return sent_headers(server)[-1].get("authorization")


def test_builtin_uses_openai_api_key(srv: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with make_client(srv) as client:
        assert first_authorization(srv, client) == "Bearer sk-from-env"


def test_builtin_uses_azure_key_for_azure_provider(srv: EmbeddedServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-env-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-azure")
    with make_client(srv, name="azure") as client:
        client.stream(REQ).collect()
    headers = sent_headers(srv)[-1]
    assert headers["api-key"] == "azure-env-key" and "authorization" not in headers
    # Azure is recognised by its host too, as codex-api's provider.rs does.
    by_host = Provider(name="corp", base_url="https://corp.openai.azure.com/openai")
    assert isinstance(builtin_auth.codexapi_auth(by_host), codexapi.AzureKeyAuth)
    chat = Provider(name="corp", base_url="https://corp.openai.azure.com/openai", wire="chat")
    assert isinstance(builtin_auth.codexapi_auth(chat), codexapi.AzureKeyAuth)
    elsewhere = Provider(name="corp", base_url="https://gateway.example/v1")
    assert isinstance(builtin_auth.codexapi_auth(elsewhere), codexapi.BearerAuth)
    # Without an Azure key the OpenAI key is still better than nothing.
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    assert isinstance(builtin_auth.codexapi_auth(by_host), codexapi.BearerAuth)


def test_builtin_falls_back_to_codex_auth_json(srv: EmbeddedServer) -> None:
    write_auth(Path(os.environ["CODEX_HOME"]) / "auth.json",
               {"tokens": {"access_token": "at-json", "account_id": "acct-json"}})
    with make_client(srv) as client:
        assert isinstance(client.auth, codexapi.CodexAuthFile)
        client.stream(REQ).collect()
    headers = sent_headers(srv)[-1]
    assert headers["authorization"] == "Bearer at-json"
    assert headers["chatgpt-account-id"] == "acct-json"


def test_builtin_without_credentials_sends_none(srv: EmbeddedServer) -> None:
    with make_client(srv) as client:
        assert isinstance(client.auth, codexapi.NoAuth)
        client.stream(REQ).collect()
    # D7: no auth -> no Authorization header at all.
    assert "authorization" not in sent_headers(srv)[-1]


def test_plugin_beats_builtin_even_with_openai_api_key_set(
        srv: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    plugin = FixedAuthPlugin("plugin-token")
    with make_client(srv, plugins=[plugin]) as client:
        assert first_authorization(srv, client) == "Bearer plugin-token"
    assert [p.name for p in plugin.providers] == ["embedded"]


def test_trylast_plugin_still_beats_builtin(srv: EmbeddedServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")

    class Late:
        @hookimpl(trylast=True)
        def codexapi_auth(self, provider: Provider) -> Any:
            return codexapi.BearerAuth("late-token")

    with make_client(srv, plugins=[Late()]) as client:
        assert first_authorization(srv, client) == "Bearer late-token"


def test_plugin_returning_none_hands_over_to_builtin(
        srv: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    plugin = FixedAuthPlugin(None)
    with make_client(srv, plugins=[plugin]) as client:
        assert first_authorization(srv, client) == "Bearer sk-from-env"
    assert len(plugin.providers) == 1


def test_explicit_auth_beats_plugins_and_env(srv: EmbeddedServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    plugin = FixedAuthPlugin("plugin-token")
    with make_client(srv, plugins=[plugin], auth=codexapi.BearerAuth("explicit")) as client:
        assert first_authorization(srv, client) == "Bearer explicit"
    assert plugin.providers == []  # the hook is not even asked


def test_auth_hook_returning_a_string_is_a_plugin_error_naming_the_plugin(
        srv: EmbeddedServer) -> None:
    class KeyAsString:
        @hookimpl
        def codexapi_auth(self, provider: Provider) -> Any:
            return "sk-leaky-string"

    with pytest.raises(PluginError, match=r"KeyAsString\(\)' returned str from codexapi_auth"
                       ) as info:
        make_client(srv, plugins=[KeyAsString()])
    assert info.value.plugin == "test_auth.KeyAsString()"
    assert "sk-leaky-string" not in str(info.value)


def test_auth_hook_that_raises_is_a_plugin_error_naming_the_plugin(srv: EmbeddedServer) -> None:
    class Broken:
        @hookimpl
        def codexapi_auth(self, provider: Provider) -> Any:
            raise KeyError("vault_path")

    with pytest.raises(PluginError, match=r"\.Broken\(\)' raised KeyError in codexapi_auth"):
        make_client(srv, plugins=[Broken()])


@pytest.mark.parametrize("bad", ["sk-passed-as-string", {"Authorization": "Bearer x"}])
def test_explicit_auth_of_the_wrong_type_is_an_auth_error(srv: EmbeddedServer, bad: Any) -> None:
    with pytest.raises(AuthError, match="headers\\(\\) and refresh\\(\\)") as info:
        make_client(srv, auth=bad)
    assert "sk-passed-as-string" not in str(info.value)


def test_auth_headers_with_a_line_break_are_refused_before_sending(srv: EmbeddedServer) -> None:
    class Sloppy:
        def headers(self) -> dict[str, str]:
            return {"X-Gateway-Token": "abc\r\nInjected: yes"}

        def refresh(self) -> bool:
            return False

    with make_client(srv, auth=Sloppy()) as client, pytest.raises(AuthError) as info:
        client.stream(REQ)
    assert "Sloppy.headers()" in str(info.value) and "abc" not in str(info.value)
    assert srv.requests == []


# --- 401 -> refresh once -> resend once ---------------------------------------------------------


def test_401_refreshes_once_and_resends_with_new_headers(
        srv: EmbeddedServer, caplog: pytest.LogCaptureFixture) -> None:
    srv.api_keys = {"good-token"}
    refused = srv.httpd.refused
    tokens = iter(["stale-token", "good-token"])
    auth = codexapi.BearerAuth(lambda: next(tokens))
    with caplog.at_level(logging.INFO, logger="codexapi"), make_client(srv, auth=auth) as client, \
            client.stream(REQ) as events:
        text = "".join(getattr(e, "delta", "") for e in events)
    assert text == "You said: Hello"
    # The refused request is counted, and nothing else of it is kept.
    assert [h["authorization"] for h in sent_headers(srv)] == ["Bearer good-token"]
    assert srv.httpd.refused == refused + 1
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" status=")[1][:3] for m in messages if m.startswith("<-")] == ["401", "200"]
    assert any("401, credentials refreshed" in m for m in messages)
    assert "token" not in caplog.text.replace("x-request-id", "")


def test_cli_reports_a_malformed_auth_file_by_name(
        srv: EmbeddedServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(os.environ["CODEX_HOME"]) / "auth.json"
    path.write_text('{"tokens": ', encoding="utf-8")
    assert main(["chat", "Hello", "--base-url", srv.base_url, "--no-plugins"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("codexapi: error: AuthError: Codex auth file") and str(path) in err


def test_second_401_is_an_api_error(srv: EmbeddedServer) -> None:
    srv.api_keys = {"never-issued"}
    refused = srv.httpd.refused
    calls = []

    def fetch() -> str:
        calls.append(1)
        return f"token-{len(calls)}"

    # Even with retries available a 401 is not retried beyond the one refresh.
    auth = codexapi.BearerAuth(fetch)
    with make_client(srv, retry=4, auth=auth) as client, pytest.raises(ApiError) as info:
        client.stream(REQ)
    assert info.value.status == 401 and info.value.code == "invalid_api_key"
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert len(calls) == 2  # first use + one refresh
    assert srv.httpd.refused == refused + 2 and srv.requests == []


def test_401_without_new_credentials_is_not_resent(srv: EmbeddedServer) -> None:
    srv.api_keys = {"right"}
    refused = srv.httpd.refused
    auth = codexapi.BearerAuth("wrong-key-123")
    with make_client(srv, auth=auth) as client, pytest.raises(ApiError) as info:
        client.stream(REQ)
    assert info.value.status == 401
    assert srv.httpd.refused == refused + 1 and srv.requests == []


def test_401_without_any_key_says_so(srv: EmbeddedServer) -> None:
    srv.api_keys = {"right"}
    with make_client(srv) as client, pytest.raises(ApiError, match="didn't provide an API key"):
        client.stream(REQ)


def test_refresh_that_raises_is_an_auth_error(srv: EmbeddedServer) -> None:
    srv.api_keys = {"right"}
    calls = []

    def fetch() -> str:
        calls.append(1)
        if len(calls) > 1:
            raise ConnectionError("vault unreachable")
        return "first-token"

    auth = codexapi.BearerAuth(fetch)
    with make_client(srv, auth=auth) as client, pytest.raises(AuthError, match="unreachable"):
        client.stream(REQ)


def test_codex_auth_file_rewritten_by_codex_is_picked_up_after_401(srv: EmbeddedServer) -> None:
    path = write_auth(Path(os.environ["CODEX_HOME"]) / "auth.json",
                      {"tokens": {"access_token": "at-1", "account_id": "acct"}})
    srv.api_keys = {"at-1"}
    refused = srv.httpd.refused
    with make_client(srv) as client:
        client.stream(REQ).collect()
        # Codex refreshed its tokens: the server now wants at-2, the file holds it.
        srv.api_keys = {"at-2"}
        write_auth(path, {"tokens": {"access_token": "at-2", "account_id": "acct"}})
        assert client.stream(REQ).collect().text == "You said: Hello"
    # The second request, still with at-1, was refused (counted, not kept).
    assert [h["authorization"] for h in sent_headers(srv)] == ["Bearer at-1", "Bearer at-2"]
    assert srv.httpd.refused == refused + 1
    assert all(h["chatgpt-account-id"] == "acct" for h in sent_headers(srv))


def test_azure_api_key_is_accepted_by_the_embedded_server(srv: EmbeddedServer) -> None:
    srv.api_keys = {"azure-key-1"}
    with make_client(srv, auth=codexapi.AzureKeyAuth("azure-key-1")) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
