"""The crate's retry rules, against a server on 127.0.0.1: 408 and 425 are retried as transport
failures, 429 bodies that can never succeed are raised at once, ``server_is_overloaded`` /
``slow_down`` are ``ServerOverloaded`` with the server's hint, and no wait passes 60 s."""

from __future__ import annotations

from typing import Any

import pytest
from support.answer_server import Answer, AnswerServer, Seen, completed, sse

from codexapi import (
    ApiError,
    Client,
    Provider,
    QuotaExceeded,
    RateLimitError,
    ResponsesRequest,
    RetryPolicy,
    ServerOverloaded,
)

REQUEST = ResponsesRequest(model="m", input="hi")


def scripted(*answers: Answer) -> AnswerServer:
    """A server answering each request with the next answer (the last one repeats)."""
    queue = list(answers)

    def answer(_: Seen) -> Answer:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return AnswerServer(answer)


def error(status: int, code: str | None = None, kind: str | None = None,
          message: str = "nope", headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"error": {"message": message, "type": kind, "code": code}},
                  headers or {})


@pytest.fixture
def slept() -> list[float]:
    return []


def call(server: AnswerServer, slept: list[float], policy: RetryPolicy | None = None,
         **provider: Any) -> str:
    p = Provider(base_url=server.url + "/v1", retry=policy or RetryPolicy(max_attempts=3),
                 stream_max_retries=0, **provider)
    with Client(p, sleep=slept.append, load_entrypoints=False) as client:
        return client.stream(REQUEST).collect().text


@pytest.mark.parametrize("status", [408, 425])
def test_408_and_425_are_retried_like_transport_errors(status: int,
                                                       slept: list[float]) -> None:
    with scripted(error(status), completed("after")) as server:
        assert call(server, slept) == "after"
        assert len(server.seen) == 2 and len(slept) == 1
    # Under retry_transport, not retry_5xx: a policy that retries no transport failure stops.
    with scripted(error(status), completed()) as server:
        with pytest.raises(ApiError) as info:
            call(server, slept, RetryPolicy(max_attempts=3, retry_transport=False))
        assert info.value.status == status and len(server.seen) == 1
    assert RetryPolicy.from_codex().retries_status(status)


def test_other_4xx_stay_final(slept: list[float]) -> None:
    with scripted(error(409), completed()) as server:
        with pytest.raises(ApiError):
            call(server, slept)
        assert len(server.seen) == 1


@pytest.mark.parametrize(("body", "kind"), [
    ({"code": "billing_hard_limit_reached", "kind": "insufficient_quota"}, QuotaExceeded),
    ({"code": "billing_hard_limit_reached"}, QuotaExceeded),
    ({"code": "insufficient_quota"}, QuotaExceeded),
])
def test_429_billing_limit_is_quota_exceeded_at_once(body: dict[str, str], kind: type,
                                                     slept: list[float]) -> None:
    answer = error(429, message="You reached your hard limit.",
                   headers={"retry-after": "1"}, **body)
    with scripted(answer, completed()) as server, pytest.raises(QuotaExceeded) as info:
        call(server, slept, RetryPolicy(max_attempts=5, retry_429=True))
    err = info.value
    assert isinstance(err, ApiError) and err.status == 429 and not err.retryable
    assert len(server.seen) == 1 and slept == []
    assert err.code == "billing_hard_limit_reached" or body == {"code": "insufficient_quota"}


def test_429_account_deactivated_is_an_api_error_never_retried(slept: list[float]) -> None:
    answer = error(429, "account_deactivated", message="This account has been deactivated.",
                   headers={"retry-after": "1"})
    with scripted(answer, completed()) as server, pytest.raises(ApiError) as info:
        call(server, slept, RetryPolicy(max_attempts=5, retry_429=True))
    err = info.value
    assert type(err) is ApiError and not isinstance(err, RateLimitError)
    assert err.status == 429 and err.code == "account_deactivated" and not err.retryable
    assert "deactivated" in str(err) and len(server.seen) == 1 and slept == []


def test_plain_429_is_still_a_retried_rate_limit(slept: list[float]) -> None:
    answer = error(429, "rate_limit_exceeded", headers={"retry-after": "0.25"})
    with scripted(answer, completed("later")) as server:
        assert call(server, slept, RetryPolicy(max_attempts=3, retry_429=True)) == "later"
    assert slept == [0.25]


def test_503_server_is_overloaded_carries_retry_after_and_is_final(
        slept: list[float]) -> None:
    answer = error(503, "server_is_overloaded", message="Servers are overloaded.",
                   headers={"retry-after": "7"})
    with scripted(answer, completed()) as server, pytest.raises(ServerOverloaded) as info:
        call(server, slept)
    err = info.value
    assert err.retry_after == 7.0 and err.status == 503 and not err.retryable
    assert len(server.seen) == 1


def test_503_slow_down_waits_its_retry_after(slept: list[float]) -> None:
    answer = error(503, "slow_down", message="Please slow down.",
                   headers={"retry-after": "0.4"})
    with scripted(answer, completed("slower")) as server:
        assert call(server, slept) == "slower"
    assert slept == [0.4]
    with scripted(answer) as server, pytest.raises(ServerOverloaded) as info:
        call(server, slept)
    assert info.value.retry_after == 0.4 and info.value.retryable


def test_503_overloaded_without_hint_has_none(slept: list[float]) -> None:
    with scripted(error(503, "server_is_overloaded")) as server, pytest.raises(
            ServerOverloaded) as info:
        call(server, slept)
    assert info.value.retry_after is None


@pytest.mark.parametrize(("code", "retryable"), [("server_is_overloaded", False),
                                                 ("slow_down", True)])
def test_response_failed_overloaded_carries_the_hint_in_its_message(
        code: str, retryable: bool, slept: list[float]) -> None:
    failed = sse({"type": "response.failed", "response": {"id": "r", "error": {
        "code": code, "message": "Overloaded. Please try again in 2.5s."}}})
    with scripted(failed) as server, pytest.raises(ServerOverloaded) as info:
        call(server, slept, RetryPolicy.never())
    assert info.value.retry_after == 2.5 and info.value.retryable is retryable
    assert info.value.status is None


def test_max_delay_defaults_to_the_crates_60_seconds(slept: list[float]) -> None:
    assert RetryPolicy().max_delay == 60.0
    answer = error(503, "slow_down", headers={"retry-after": "3600"})
    with scripted(answer, completed()) as server:
        call(server, slept, RetryPolicy(max_attempts=2))
    assert slept == [60.0]
