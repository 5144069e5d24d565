"""RetryPolicy owns the retry decisions (urllib3 Retry's shape); the dispatcher only loops;
``retryable=False`` is honoured for every kind of error."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from conftest import REQ
from support.recording_transport import RESPONSES_DONE, CannedResponse, RecordingTransport

from codexapi import (
    ApiError,
    Client,
    ContextWindowExceeded,
    Provider,
    RateLimitError,
    RetryPolicy,
    StreamError,
    TransportError,
    hookimpl,
)


def test_the_policy_decides_what_is_retryable() -> None:
    policy = RetryPolicy()
    assert policy.is_retryable(TransportError("reset"))
    assert policy.is_retryable(ApiError(503, "busy")) and policy.is_retryable(ApiError(429, "x"))
    assert not policy.is_retryable(ApiError(400, "bad"))
    assert policy.is_retryable(StreamError("server_error"))
    assert not policy.is_retryable(StreamError("incomplete", retryable=False))
    assert not policy.is_retryable(ContextWindowExceeded())
    assert not policy.is_retryable(ValueError("not ours"))
    final = TransportError("proxy wants credentials (407)")
    final.retryable = False
    assert not policy.is_retryable(final)
    off = attrs.evolve(policy, retry_transport=False, retry_429=False, retry_5xx=False)
    assert not any(off.is_retryable(e) for e in (
        TransportError("x"), ApiError(429, "x"), ApiError(500, "x"), RateLimitError("x")))


def test_the_policy_decides_how_long_and_when_to_stop() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=5.0)
    assert [policy.is_exhausted(n) for n in (1, 2, 3)] == [False, False, True]
    assert 0.09 <= policy.delay(1, TransportError("x")) < 0.11
    assert 0.18 <= policy.delay(2, TransportError("x")) < 0.22
    assert policy.delay(1, ApiError(429, "x", headers={"retry-after": "2"})) == 2.0
    assert policy.delay(1, ApiError(429, "Please try again in 1.5s.")) == 1.5
    assert policy.delay(1, ApiError(503, "x", headers={"retry-after": "999"})) == 5.0  # capped
    assert policy.next_delay(3, TransportError("x")) is None
    assert policy.bounded(float("nan")) == 0.0 and policy.bounded(-1) == 0.0


def test_codex_defaults_are_built_in_one_place(tmp_path: Any) -> None:
    codex = RetryPolicy.from_codex()
    assert (codex.max_attempts, codex.base_delay, codex.retry_429) == (5, 0.2, False)
    config = tmp_path / "config.toml"
    config.write_text('[model_providers.p]\nname = "p"\nbase_url = "http://x/v1"\n'
                      "request_max_retries = 2\n")
    assert Provider.from_codex_config("p", config).retry == RetryPolicy.from_codex(2)


def test_a_proxy_407_raised_not_retryable_is_tried_once() -> None:
    error = TransportError("proxy http://proxy:3128 requires authentication (407)")
    error.retryable = False
    transport = RecordingTransport(error)
    slept: list[float] = []
    with Client(Provider(retry=RetryPolicy(max_attempts=3)), load_entrypoints=False,
                transport=transport, sleep=slept.append) as client, \
            pytest.raises(TransportError, match="407"):
        client.stream(REQ)
    assert len(transport.requests) == 1 and slept == []


def test_the_dispatcher_stops_at_max_attempts_whatever_a_plugin_answers() -> None:
    class Eager:
        @hookimpl
        def codexapi_retry_delay(self) -> float:
            return 1e9  # bounded by max_delay too

    transport = RecordingTransport(CannedResponse(500, b"{}"))
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, max_delay=0.5)
    with Client(Provider(retry=policy), plugins=[Eager()], load_entrypoints=False,
                transport=transport, sleep=slept.append) as client, \
            pytest.raises(ApiError) as info:
        client.stream(REQ)
    assert len(transport.requests) == 3 and slept == [0.5, 0.5]
    assert info.value.attempts == 3


def test_retries_then_success() -> None:
    transport = RecordingTransport(TransportError("reset"), RESPONSES_DONE)
    with Client(Provider(retry=RetryPolicy(max_attempts=2, base_delay=0.0)),
                load_entrypoints=False, transport=transport, sleep=lambda _: None) as client:
        assert client.stream(REQ).collect().response_id == "resp_1"
    assert len(transport.requests) == 2
