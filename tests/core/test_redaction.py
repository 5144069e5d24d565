"""Secrets never appear in logs, reprs or exception messages. Each test plants credentials
(bearer token, account id, Azure key, cookie, URL token, a custom gateway header), drives real
traffic against the embedded server, and greps everything a person could see."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import REQ

import codexapi
from codexapi import (
    ApiError,
    Client,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    TransportError,
)
from codexapi.http.transport import HttpRequest
from codexapi.redact import (
    REDACTED,
    is_secret_header,
    redact_headers,
    redact_query_params,
    redact_url,
    scrub_text,
)
from codexapi.server import EmbeddedServer, Exchange, route

TOKEN = "sk-planted-SECRET-token-0123456789"
ACCOUNT = "acct-planted-SECRET-account"
AZURE = "planted-SECRET-azure-key"
COOKIE = "session=planted-SECRET-cookie"
GATEWAY = "planted-SECRET-gateway"
QUERY = "planted-SECRET-query"
SECRETS = (TOKEN, ACCOUNT, AZURE, COOKIE, GATEWAY, QUERY, "planted-SECRET")


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked into: {text[:300]}"


def echo(ex: Exchange, status: int) -> None:
    # A careless server (or proxy) quoting every credential it received in its error body.
    got = {k: ex.headers.get(k) for k in ("Authorization", "ChatGPT-Account-ID", "api-key",
                                           "Cookie", "X-Gateway-Token")}
    ex.send_error(status, f"rejected credentials {got}", "invalid_api_key",
                  headers={"Set-Cookie": COOKIE})


@route("POST", "/redaction-echo-401/responses")
def _echo_401(ex: Exchange) -> None:
    echo(ex, 401)


@route("POST", "/redaction-echo-500/responses")
def _echo_500(ex: Exchange) -> None:
    echo(ex, 500)


@pytest.fixture(scope="module")
def srv() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def provider(base_url: str, attempts: int = 1) -> Provider:
    return Provider(name="gateway", base_url=base_url,
                    headers={"Cookie": COOKIE, "X-Gateway-Token": GATEWAY},
                    query_params={"key": QUERY, "api-version": "2025-04-01-preview"},
                    retry=RetryPolicy(max_attempts=attempts, base_delay=0.0),
                    stream_idle_timeout=10.0)


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)


def test_logs_show_method_url_status_attempt_timing_request_id_but_no_secret(
        srv: EmbeddedServer, caplog: pytest.LogCaptureFixture) -> None:
    auth = codexapi.BearerAuth(TOKEN, account_id=ACCOUNT)
    with caplog.at_level(logging.DEBUG, logger="codexapi"), \
            Client(provider(srv.base_url), auth=auth, load_entrypoints=False) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
    logged = everything_logged(caplog)
    assert_clean(logged)
    assert_clean(caplog.text)
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("->")]
    got = [r.getMessage() for r in caplog.records if r.getMessage().startswith("<-")]
    assert len(sent) == len(got) == 1
    assert f"POST {srv.base_url}/responses?key={REDACTED}&api-version=" in sent[0]
    # Logged before the auth flow adds credentials (observers may add headers it then signs).
    assert "attempt=1" in sent[0] and "Authorization" not in sent[0]
    assert "ChatGPT-Account-ID" not in sent[0]
    assert "'Accept': 'text/event-stream'" in sent[0]  # harmless headers are kept
    assert re.search(r"status=200 attempt=1 elapsed=\d+\.\d{3}s request_id=req_[0-9a-f]{32}",
                     got[0])


def test_errors_and_retry_logs_scrub_credentials_a_server_echoes(
        srv: EmbeddedServer, caplog: pytest.LogCaptureFixture) -> None:
    auth = codexapi.BearerAuth(TOKEN, account_id=ACCOUNT)
    sleeps: list[float] = []
    with caplog.at_level(logging.DEBUG, logger="codexapi"), \
            Client(provider(f"{srv.base_url}/redaction-echo-500", attempts=2), auth=auth,
                   load_entrypoints=False, sleep=sleeps.append) as client, \
            pytest.raises(ApiError) as info:
        client.stream(REQ)
    err = info.value
    assert err.status == 500 and err.attempts == 2 and len(sleeps) == 1
    for shown in (str(err), repr(err), err.message, err.body or "", err.url or "",
                  everything_logged(caplog), caplog.text):
        assert_clean(shown)
    assert "rejected credentials" in err.message and REDACTED in err.message
    assert "'X-Gateway-Token': '<redacted>'" in err.message
    retry = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retry) == 1 and retry[0].levelno == logging.WARNING
    assert "after attempt 1 failed" in retry[0].getMessage()


def test_401_echo_is_scrubbed_for_bearer_and_azure_keys(srv: EmbeddedServer) -> None:
    for auth in (codexapi.BearerAuth(TOKEN, account_id=ACCOUNT), codexapi.AzureKeyAuth(AZURE)):
        with Client(provider(f"{srv.base_url}/redaction-echo-401"), auth=auth,
                    load_entrypoints=False) as client, pytest.raises(ApiError) as info:
            client.stream(REQ)
        assert info.value.status == 401
        assert_clean(f"{info.value} {info.value!r} {info.value.body}")


def test_reprs_hide_secrets(srv: EmbeddedServer) -> None:
    prov = provider(f"https://gateway.example/v1?token={QUERY}")
    request = HttpRequest("POST", f"https://x/v1/responses?access_token={QUERY}",
                          {"Authorization": f"Bearer {TOKEN}", "api-key": AZURE,
                           "ChatGPT-Account-ID": ACCOUNT, "Cookie": COOKIE,
                           "X-Gateway-Token": GATEWAY}, b"{}")
    auths: list[Any] = [codexapi.BearerAuth(TOKEN, account_id=ACCOUNT),
                        codexapi.BearerAuth(lambda: TOKEN, account_id=ACCOUNT),
                        codexapi.AzureKeyAuth(AZURE), codexapi.CodexAuthFile("/x/auth.json")]
    auths[1].headers()  # fetched: the token is now held, still not shown
    with Client(prov, auth=auths[0], load_entrypoints=False) as client:
        shown = [repr(prov), str(prov), repr(request), str(request), repr(client)]
    shown += [repr(a) for a in auths]
    for text in shown:
        assert_clean(text)
    assert "gateway.example" in repr(prov) and "api-version" in repr(prov)
    assert "POST https://x/v1/responses" in repr(request)


def test_transport_errors_do_not_show_url_tokens() -> None:
    prov = Provider(base_url=f"http://127.0.0.1:9/v1?api_key={QUERY}",
                    retry=RetryPolicy(max_attempts=1), connect_timeout=2.0)
    with Client(prov, auth=codexapi.BearerAuth(TOKEN), load_entrypoints=False) as client, \
            pytest.raises(TransportError) as info:
        client.stream(REQ)
    assert_clean(f"{info.value} {info.value!r} {info.value.url}")
    assert "127.0.0.1:9" in str(info.value)


# --- the redaction helpers ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Authorization", "authorization", "API-KEY", "api-key",
                                  "x-api-key", "ChatGPT-Account-ID", "Cookie", "Set-Cookie",
                                  "Proxy-Authorization", "X-Gateway-Token", "X-Vault-Secret",
                                  "X-Signature"])
def test_secret_header_names(name: str) -> None:
    assert is_secret_header(name)
    assert redact_headers({name: "v"}) == {name: REDACTED}


@pytest.mark.parametrize("name", ["Accept", "Content-Type", "User-Agent", "session_id",
                                  "conversation_id", "x-openai-subagent", "OpenAI-Beta"])
def test_ordinary_header_names(name: str) -> None:
    assert not is_secret_header(name)
    assert redact_headers([(name, "v")]) == {name: "v"}


@pytest.mark.parametrize(("url", "expected"), [
    ("https://h/v1/models?client_version=1.0", "https://h/v1/models?client_version=1.0"),
    ("https://h/v1?key=abc&api-version=2", f"https://h/v1?key={REDACTED}&api-version=2"),
    ("https://h/x?access_token=a&sig=b", f"https://h/x?access_token={REDACTED}&sig={REDACTED}"),
    ("https://h/x?X-Amz-Signature=a", f"https://h/x?X-Amz-Signature={REDACTED}"),
    ("https://u:p@h/v1", f"https://u:{REDACTED}@h/v1"),
    ("https://tok@h/v1", f"https://{REDACTED}@h/v1"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_query_params_and_scrub_text() -> None:
    assert redact_query_params({"key": "a", "api-version": "b", "token": "c"}) == {
        "key": REDACTED, "api-version": "b", "token": REDACTED}
    assert scrub_text(f"bad key {TOKEN}!", [TOKEN]) == f"bad key {REDACTED}!"
    # Short values are not scrubbed: replacing "abc" everywhere would mangle messages.
    assert scrub_text("abc abc", ["abc"]) == "abc abc"


# --- response headers kept on errors ----------------------------------------------------------


@route("POST", "/test/cookie429")
def _cookie429(ex: Exchange) -> None:
    ex.send_error(429, "slow down", "rate_limit_exceeded", headers={
        "Set-Cookie": "__cf_bm=planted-cookie-secret; path=/", "Retry-After": "7",
        "x-ratelimit-remaining-tokens": "12"})


class _CookiePath:
    @codexapi.hookimpl(tryfirst=True)
    def codexapi_endpoint_path(self, provider: Provider, endpoint: str) -> str | None:
        return "test/cookie429" if endpoint == "stream" else None


def test_api_error_headers_hide_cookies_keep_hints(server: EmbeddedServer) -> None:
    provider = Provider(base_url=server.base_url, retry=RetryPolicy(max_attempts=1))
    with Client(provider, plugins=[_CookiePath()], load_entrypoints=False) as client, \
            pytest.raises(ApiError) as info:
        client.stream(ResponsesRequest(model="m", input="x"))
    err = info.value
    assert "planted-cookie-secret" not in repr(err.headers)
    assert err.headers["set-cookie"] == "<redacted>"
    assert err.headers["retry-after"] == "7" and err.retry_after == 7
    assert err.headers["x-ratelimit-remaining-tokens"] == "12"
    assert not is_secret_header("x-ratelimit-remaining-tokens")
    assert is_secret_header("x-gateway-token")
