"""``Auth.auth_flow(request)``: requests signed over their body, a 401 challenge answered with
a second request, response heads observed; header auths keep working unchanged. Against the
embedded server."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from conftest import REQ, make_client
from support.recording_transport import RESPONSES_DONE, CannedResponse, RecordingTransport

import codexapi
from codexapi import (
    ApiError,
    AuthError,
    Client,
    ConfigError,
    Provider,
    RetryPolicy,
    hookimpl,
)
from codexapi.convert import dumps
from codexapi.http.transport import HttpRequest, HttpResponse
from codexapi.server import EmbeddedServer, Exchange, route
from codexapi.server.responses import post_responses

KEY = b"signing-key"


def signature(method: str, url: str, digest: str, trace: str) -> str:
    message = "\n".join([method, url, digest, trace]).encode()
    return hmac.new(KEY, message, hashlib.sha256).hexdigest()


class SigningAuth:
    """Signs method, URL, a digest of the body and a header an observer added."""

    def auth_flow(self, request: HttpRequest) -> Generator[HttpRequest, HttpResponse, None]:
        digest = "sha-256=" + hashlib.sha256(request.body or b"").hexdigest()
        request.headers["Content-Digest"] = digest
        request.headers["X-Signature"] = signature(
            request.method, request.url, digest, request.headers.get("traceparent", ""))
        yield request


class Tracing:
    @hookimpl
    def codexapi_on_request(self, request: HttpRequest) -> None:
        request.headers["traceparent"] = "00-abc-01"


@route("POST", "/signed/responses")
def _signed(ex: Exchange) -> None:
    headers = {k.lower(): v for k, v in ex.headers.items()}
    raw = dumps(ex.body)  # the bytes codexapi sent: same serializer, same key order
    digest = "sha-256=" + hashlib.sha256(raw).hexdigest()
    url = f"http://{ex.headers['Host']}/v1/signed/responses"
    expected = signature("POST", url, digest, headers.get("traceparent", ""))
    if headers.get("content-digest") != digest or headers.get("x-signature") != expected:
        ex.send_error(401, "bad signature", "invalid_signature")
        return
    post_responses(ex)


_challenges: list[str] = []


@route("POST", "/challenge/responses")
def _challenge(ex: Exchange) -> None:
    headers = {k.lower(): v for k, v in ex.headers.items()}
    if headers.get("authorization") == "Nonce n-42:answered":
        post_responses(ex)
        return
    _challenges.append(headers.get("authorization", ""))
    ex.send_error(401, "challenge", "unauthorized",
                  headers={"WWW-Authenticate": 'Nonce realm="gw", nonce="n-42"'})


class ChallengeAuth:
    """Sends no credential until challenged; answers a ``Nonce`` challenge once."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str | None]] = []

    def auth_flow(self, request: HttpRequest) -> Generator[HttpRequest, HttpResponse, None]:
        response = yield request
        self.seen.append((response.status, response.headers.get("x-request-id")))
        challenge = response.headers.get("www-authenticate") or ""
        if response.status == 401 and challenge.startswith("Nonce "):
            nonce = challenge.split('nonce="', 1)[1].split('"', 1)[0]
            request.headers["Authorization"] = f"Nonce {nonce}:answered"
            response = yield request
            self.seen.append((response.status, response.headers.get("x-request-id")))


@pytest.fixture(scope="module")
def srv() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def test_auth_flow_signs_the_body_and_the_headers_observers_added(srv: EmbeddedServer) -> None:
    srv.requests.clear()
    with make_client(f"{srv.base_url}/signed", auth=SigningAuth(), plugins=[Tracing()]) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
    [(_, _, headers, _)] = srv.requests
    assert headers["traceparent"] == "00-abc-01" and "X-Signature" in headers
    # A body the signature does not cover is refused: the check above is real.
    class Forger(SigningAuth):
        def auth_flow(self, request: HttpRequest) -> Generator[HttpRequest, HttpResponse, None]:
            for signed in super().auth_flow(request):
                yield HttpRequest(signed.method, signed.url, signed.headers, b'{"model":"x"}',
                                  signed.timeout)

    with make_client(f"{srv.base_url}/signed", auth=Forger()) as client, \
            pytest.raises(ApiError) as info:
        client.stream(REQ)
    assert info.value.status == 401


def test_auth_flow_answers_a_401_challenge_with_a_second_request(srv: EmbeddedServer) -> None:
    _challenges.clear()
    srv.requests.clear()
    auth = ChallengeAuth()
    with make_client(f"{srv.base_url}/challenge", auth=auth) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
    assert _challenges == [""]  # the first request went without credentials
    assert [s for s, _ in auth.seen] == [401, 200]
    # The auth saw each response head, headers included (observe_response_headers).
    assert all(rid and rid.startswith("req_") for _, rid in auth.seen)
    assert len(srv.requests) == 2


def test_a_challenge_is_the_same_attempt_for_observers(srv: EmbeddedServer) -> None:
    seen: list[tuple[str, int, Any]] = []

    class Recorder:
        @hookimpl
        def codexapi_on_request(self, request: HttpRequest, attempt: int) -> None:
            seen.append(("request", attempt, request.headers.get("Authorization")))

        @hookimpl
        def codexapi_on_response(self, response: Any, attempt: int) -> None:
            seen.append(("response", attempt, response.status))

    with make_client(f"{srv.base_url}/challenge", auth=ChallengeAuth(),
                     plugins=[Recorder()]) as client:
        client.stream(REQ).collect()
    assert seen == [("request", 1, None), ("response", 1, 401),
                    ("request", 1, "Nonce n-42:answered"), ("response", 1, 200)]


def test_unanswered_challenge_is_the_401() -> None:
    class Silent:
        def auth_flow(self, request: HttpRequest) -> Generator[HttpRequest, HttpResponse, None]:
            yield request

    transport = RecordingTransport(CannedResponse(
        401, b'{"error": {"message": "no"}}', {"www-authenticate": "Basic"}))
    with Client(Provider(retry=RetryPolicy(max_attempts=3)), auth=Silent(),
                load_entrypoints=False, transport=transport) as client, \
            pytest.raises(ApiError) as info:
        client.stream(REQ)
    assert info.value.status == 401 and len(transport.requests) == 1


def test_flow_auth_needs_no_headers_or_refresh_and_header_auths_still_work() -> None:
    class OnlyFlow:
        def auth_flow(self, request: HttpRequest) -> Generator[HttpRequest, HttpResponse, None]:
            request.headers["X-Key"] = "k"
            yield request

    for auth, header, value in [(OnlyFlow(), "X-Key", "k"),
                                (codexapi.BearerAuth("sk-1"), "Authorization", "Bearer sk-1"),
                                (codexapi.AzureKeyAuth("az"), "api-key", "az")]:
        transport = RecordingTransport(RESPONSES_DONE)
        with Client(Provider(), auth=auth, load_entrypoints=False,
                    transport=transport) as client:
            client.stream(REQ).collect()
        assert transport.header(header) == value


class _Flaky:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    def auth_flow(self, request: HttpRequest) -> Any:
        if self.mode == "raise":
            raise RuntimeError("vault sealed")
        if self.mode == "nothing":
            return
            yield  # pragma: no cover
        if self.mode == "junk":
            yield "not a request"
        while True:  # "loop": answers every head with another request
            yield request


@pytest.mark.parametrize(("mode", "message"), [
    ("raise", r"_Flaky.auth_flow\(\) raised RuntimeError: vault sealed"),
    ("nothing", r"_Flaky.auth_flow\(\) yielded no request"),
    ("junk", r"_Flaky.auth_flow\(\) yielded str, expected an HttpRequest"),
    ("loop", r"sent 5 requests for one attempt"),
])
def test_a_broken_auth_flow_is_an_auth_error_naming_it(mode: str, message: str) -> None:
    transport = RecordingTransport(RESPONSES_DONE)
    with Client(Provider(), auth=_Flaky(mode), load_entrypoints=False,
                transport=transport) as client, pytest.raises(AuthError, match=message):
        client.stream(REQ)
    assert len(transport.requests) <= 5


def test_bad_header_values_never_reach_http_client(caplog: pytest.LogCaptureFixture) -> None:
    class Newline:
        def auth_flow(self, request: HttpRequest) -> Generator[HttpRequest, HttpResponse, None]:
            request.headers["X-Sig"] = "abc\r\nInjected: 1"
            yield request

    transport = RecordingTransport(RESPONSES_DONE)
    with caplog.at_level(logging.DEBUG), Client(Provider(), auth=Newline(),
                                                load_entrypoints=False,
                                                transport=transport) as client:
        with pytest.raises(AuthError, match="Newline set header 'X-Sig' has an invalid value"):
            client.stream(REQ)
        with pytest.raises(ConfigError, match="header 'X-Caller' contains a line break"):
            client.stream(REQ, headers={"X-Caller": "a\nb"})
    assert transport.requests == []
    assert "Injected" not in caplog.text
