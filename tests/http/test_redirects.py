"""Redirects are never followed: a redirected POST stream is an error (never a silent GET), and
credentials never reach another host. A tiny redirecting server on 127.0.0.1 sends 3xx to the
embedded server under another host name, which records whatever reaches it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import REQ, make_client

import codexapi
from codexapi import ApiError
from codexapi.server import EmbeddedServer

TOKEN = "sk-redirect-SECRET-0123456789"
AUTH = codexapi.BearerAuth(TOKEN, account_id="acct-redirect")


class Redirector(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.status = 307
        self.location = "/"
        self.seen: list[tuple[str, str]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _RedirectHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Redirector

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append((self.command, self.path))
        self.send_response(self.server.status)
        self.send_header("Location", self.server.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer


@pytest.fixture(scope="module")
def target() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


@pytest.fixture(scope="module")
def _redirector() -> Iterator[Redirector]:
    server = Redirector()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture
def redirector(_redirector: Redirector, target: EmbeddedServer) -> Redirector:
    _redirector.seen.clear()
    _redirector.status = 307
    target.requests.clear()
    # "localhost" is another host as far as an HTTP client is concerned (still 127.0.0.1).
    _redirector.location = f"http://localhost:{target.port}/v1/responses"
    return _redirector


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirected_post_stream_is_an_error_and_nothing_reaches_the_other_host(
        redirector: Redirector, target: EmbeddedServer, status: int) -> None:
    redirector.status = status
    with make_client(redirector.base_url, retry=3, auth=AUTH) as client, \
            pytest.raises(ApiError) as info:
        client.stream(REQ)
    err = info.value
    assert err.status == status
    assert "redirected POST" in str(err) and "not followed" in str(err)
    assert f"localhost:{target.port}/v1/responses" in str(err)
    assert redirector.seen == [("POST", "/v1/responses")]  # sent once, not retried
    assert target.requests == []  # no GET, no re-POST, no credentials to the other host


def test_redirected_models_get_is_an_error_too(redirector: Redirector,
                                               target: EmbeddedServer) -> None:
    redirector.location = f"http://localhost:{target.port}/v1/models"
    azure = codexapi.AzureKeyAuth("azure-redirect-SECRET")
    with make_client(redirector.base_url, retry=3, auth=azure) as client, \
            pytest.raises(ApiError) as info:
        client.list_models("0.60.0")
    assert info.value.status == 307
    assert target.requests == []


def test_same_host_redirect_is_not_followed_either(redirector: Redirector,
                                                   target: EmbeddedServer) -> None:
    redirector.location = "/v2/responses"
    with make_client(redirector.base_url, retry=3, auth=AUTH) as client, \
            pytest.raises(ApiError, match="set base_url"):
        client.stream(REQ)
    assert redirector.seen == [("POST", "/v1/responses")]


def test_redirect_location_tokens_are_redacted(redirector: Redirector) -> None:
    redirector.location = "https://login.example/callback?code=one-time-SECRET&state=ok"
    with make_client(redirector.base_url, retry=3, auth=AUTH) as client, \
            pytest.raises(ApiError) as info:
        client.stream(REQ)
    assert "one-time-SECRET" not in f"{info.value} {info.value!r}"
    assert "login.example/callback" in str(info.value)
