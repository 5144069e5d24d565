"""Retry policy and backoff: codex-client vectors H1-H6 and D6, server timing hints, and the
dispatcher's attempt loop (driven by a scripted transport and a recording sleep)."""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from support.recording_transport import CannedResponse

from codexapi import (
    ApiError,
    AuthError,
    Client,
    ContextWindowExceeded,
    IdleTimeout,
    Provider,
    RateLimitError,
    ResponsesRequest,
    RetryPolicy,
    ServerOverloaded,
    StreamError,
    TransportError,
    hookimpl,
)
from codexapi.http.transport import HttpRequest
from codexapi.models import PolicyError
from codexapi.testing import MockTransport
from codexapi_plugins import retry
from codexapi_plugins.wire_responses import parse_retry_after

OK_BODY = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"delta":"ok"}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","response":{"id":"r1"}}\n\n'
)


class ScriptedTransport(MockTransport):
    """Answers each send with the next scripted outcome: an exception or a response."""

    def __init__(self, *script: Exception | CannedResponse) -> None:
        self.script = list(script)
        super().__init__(self._next)
        self.sent = self.requests

    def _next(self, request: HttpRequest) -> CannedResponse:
        outcome = self.script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def ok() -> CannedResponse:
    return CannedResponse(200, OK_BODY, {"content-type": "text/event-stream"})


def status(code: int, headers: Mapping[str, str] | None = None, message: str = "nope"
           ) -> CannedResponse:
    body = b'{"error":{"message":"%s","type":"x","code":null}}' % message.encode()
    return CannedResponse(code, body, {"content-type": "application/json", **(headers or {})})


def run(policy: RetryPolicy, transport: ScriptedTransport, **client_kw: Any
        ) -> tuple[str, list[float]]:
    slept: list[float] = []
    provider = Provider(base_url="http://fake/v1", retry=policy)
    with Client(provider, transport=transport, sleep=slept.append, load_entrypoints=False,
                **client_kw) as client:
        text = client.stream(ResponsesRequest(model="m", input="hi")).collect().text
    return text, slept


BASE = RetryPolicy(max_attempts=4, base_delay=0.1)


# --- the policy value ---------------------------------------------------------------------


def test_policy_is_immutable_and_evolves() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.5)
    changed = attrs.evolve(policy, max_attempts=5)
    assert (policy.max_attempts, changed.max_attempts, changed.base_delay) == (3, 5, 0.5)
    with pytest.raises(AttributeError):
        policy.base_delay = 1.0  # type: ignore[misc]
    assert RetryPolicy.from_codex(4).max_attempts == 5  # request_max_retries=4 -> 5 tries
    assert RetryPolicy.never().max_attempts == 1


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"base_delay": -1.0},
                                 {"max_delay": float("nan")}])
def test_policy_refuses_nonsense_with_typed_error(bad: dict[str, Any]) -> None:
    with pytest.raises(PolicyError, match="must be"):
        RetryPolicy(**bad)


# --- H1, H2: backoff ------------------------------------------------------------------------


def test_h1_attempt_zero_is_the_base_delay_exactly() -> None:
    assert retry.backoff(RetryPolicy(base_delay=0.1), 0) == 0.1


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.09, 0.11), (2, 0.18, 0.22),
                                                      (3, 0.36, 0.44)])
def test_h2_backoff_doubles_with_ten_percent_jitter(attempt: int, low: float, high: float
                                                    ) -> None:
    policy = RetryPolicy(base_delay=0.1)
    assert retry.backoff(policy, attempt, rand=0.0) == pytest.approx(low)
    assert retry.backoff(policy, attempt, rand=0.5) == pytest.approx((low + high) / 2)
    assert retry.backoff(policy, attempt, rand=0.999999) < high
    for _ in range(200):
        assert low - 1e-9 <= retry.backoff(policy, attempt) < high


def test_backoff_is_capped_and_never_overflows() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=5.0)
    assert retry.backoff(policy, 10) == 5.0
    assert retry.backoff(policy, 100_000) == 5.0


# --- server hints ---------------------------------------------------------------------------


def test_retry_after_seconds_ms_and_http_date() -> None:
    assert retry.header_delay({"Retry-After": "3"}) == 3.0
    assert retry.header_delay({"retry-after": " 1.5 "}) == 1.5
    # retry-after-ms is the more precise hint (OpenAI sends both) and wins.
    assert retry.header_delay({"Retry-After": "3", "retry-after-ms": "250"}) == 0.25
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry.header_delay({"Retry-After": date}, now=now) == pytest.approx(7.0)
    assert retry.header_delay({"Retry-After": date.replace("GMT", "-0000")}, now=now) \
        == pytest.approx(7.0)
    past = email.utils.formatdate(now - 60, usegmt=True)
    # A date in the past is no hint: the policy's backoff applies (not a zero-delay retry).
    assert retry.header_delay({"Retry-After": past}, now=now) is None
    for junk in ("soon", "", "nan", "inf", "-"):
        assert retry.header_delay({"Retry-After": junk}) is None
    assert retry.header_delay({"retry-after-ms": "x", "Retry-After": "2"}) == 2.0


@pytest.mark.parametrize(("message", "delay"), [
    ("Rate limit reached for gpt-5.1 in organization org- on tokens per min (TPM): Limit 1, "
     "Used 1, Requested 19304. Please try again in 28ms. Visit https://platform.openai.com/"
     "account/rate-limits to learn more.", 0.028),
    ("Rate limit reached ... Please try again in 1.898s. Visit ...", 1.898),
    ("Rate limit exceeded. Try again in 35 seconds.", 35.0),
    ("Please try again in 1.5s", 1.5),
    ("no hint here", None),
])
def test_b8_try_again_in_messages(message: str, delay: float | None) -> None:
    assert parse_retry_after(message) == delay


def test_hint_wins_over_backoff_but_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=10.0)
    err = ApiError(429, "slow down", headers={"retry-after": "4"})
    assert retry.retry_delay(policy, 1, err) == 4.0
    err = ApiError(429, "slow down", headers={"retry-after": "3600"})
    assert retry.retry_delay(policy, 1, err) == 10.0
    # No header: the 429 body's message gives the delay.
    err = ApiError(429, "Rate limit reached. Please try again in 1.5s.")
    assert retry.retry_delay(policy, 1, err) == 1.5
    # 503 with Retry-After (urllib3 honours it there too).
    assert retry.retry_delay(policy, 2, ApiError(503, "x", headers={"Retry-After": "2"})) == 2.0


def test_stream_failures_give_their_own_delay() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=30.0)
    msg = "Rate limit reached for gpt-5.1 ... Please try again in 11.054s. Visit ..."
    assert retry.retry_delay(policy, 1, RateLimitError(msg, parse_retry_after(msg))) == 11.054
    slow_down = ServerOverloaded("slow down", retryable=True)
    assert 0.09 <= retry.retry_delay(policy, 1, slow_down) < 0.11  # type: ignore
    # server_is_overloaded in a response.failed is final, as in the crate.
    assert retry.retry_delay(policy, 1, ServerOverloaded("at capacity")) is None
    assert retry.retry_delay(policy, 1, ContextWindowExceeded()) is None
    assert retry.retry_delay(policy, 1, StreamError("bad", retryable=False)) is None
    no_transport = attrs.evolve(policy, retry_transport=False)
    assert retry.retry_delay(no_transport, 1, IdleTimeout("x")) is None
    no_429 = attrs.evolve(policy, retry_429=False)
    assert retry.retry_delay(no_429, 1, RateLimitError("x", 1.0)) is None


@pytest.mark.parametrize(("error", "flag"), [
    (ApiError(429, "x"), "retry_429"),
    (ApiError(500, "x"), "retry_5xx"),
    (ApiError(599, "x"), "retry_5xx"),
    (TransportError("reset"), "retry_transport"),
])
def test_each_flag_turns_its_retry_off(error: Exception, flag: str) -> None:
    policy = RetryPolicy(max_attempts=3)
    assert retry.retry_delay(policy, 1, error) is not None
    assert retry.retry_delay(attrs.evolve(policy, **{flag: False}), 1, error) is None


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 413, 422, 499, 600])
def test_other_statuses_are_never_retried(code: int) -> None:
    assert retry.retry_delay(RetryPolicy(max_attempts=9), 1, ApiError(code, "x")) is None


def test_no_delay_once_attempts_are_spent() -> None:
    policy = RetryPolicy(max_attempts=2)
    assert retry.retry_delay(policy, 1, ApiError(500, "x")) is not None
    assert retry.retry_delay(policy, 2, ApiError(500, "x")) is None


# --- the dispatcher loop (H3-H6, D6) ---------------------------------------------------------


def test_h3_two_502s_then_success_sleeps_backoff_1_then_2() -> None:
    transport = ScriptedTransport(status(502), status(502), ok())
    text, slept = run(RetryPolicy(max_attempts=3, base_delay=0.1), transport)
    assert text == "ok" and len(transport.sent) == 3
    assert 0.09 <= slept[0] < 0.11 and 0.18 <= slept[1] < 0.22 and len(slept) == 2


def test_h4_429_without_retry_429_is_returned_at_once() -> None:
    transport = ScriptedTransport(status(429, {"retry-after": "1"}))
    with pytest.raises(ApiError) as info:
        run(RetryPolicy(max_attempts=1, retry_429=False), transport)
    assert info.value.status == 429 and info.value.attempts == 1 and len(transport.sent) == 1
    assert info.value.retry_after == 1.0


def test_h5_exhausted_5xx_raises_the_last_error_with_attempt_count() -> None:
    transport = ScriptedTransport(status(500, message="a"), status(500, message="b"),
                                  status(500, message="c"))
    with pytest.raises(ApiError) as info:
        run(RetryPolicy(max_attempts=3, base_delay=0.01), transport)
    err = info.value
    assert err.status == 500 and err.attempts == 3 and err.message == "c"
    assert "after 3 attempts" in str(err)
    assert len(transport.sent) == 3


def test_h6_build_errors_are_never_retried() -> None:
    class BrokenAuth:
        calls = 0

        def headers(self) -> dict[str, str]:
            BrokenAuth.calls += 1
            raise RuntimeError("keychain locked")

        def refresh(self) -> bool:
            return False

    transport = ScriptedTransport(ok())
    with pytest.raises(AuthError, match="keychain locked"):
        run(RetryPolicy(max_attempts=5), transport, auth=BrokenAuth())
    assert BrokenAuth.calls == 1 and transport.sent == []


def test_d6_transport_error_then_success_two_attempts() -> None:
    transport = ScriptedTransport(TransportError("network error: first attempt fails"), ok())
    text, slept = run(RetryPolicy(max_attempts=2, base_delay=0.001), transport)
    assert text == "ok" and len(transport.sent) == 2 and len(slept) == 1


def test_exhausted_transport_error_says_how_many_attempts() -> None:
    transport = ScriptedTransport(*(TransportError("connection reset") for _ in range(3)))
    with pytest.raises(TransportError) as info:
        run(RetryPolicy(max_attempts=3, base_delay=0.0), transport)
    assert info.value.attempts == 3 and "after 3 attempts" in str(info.value)


def test_4xx_is_not_retried_even_after_a_retry() -> None:
    transport = ScriptedTransport(status(503), status(400, message="bad field"))
    with pytest.raises(ApiError) as info:
        run(RetryPolicy(max_attempts=5, base_delay=0.0), transport)
    assert info.value.status == 400 and info.value.attempts == 2 and len(transport.sent) == 2


def test_retry_after_header_drives_the_sleep() -> None:
    transport = ScriptedTransport(status(429, {"Retry-After": "2"}),
                                  status(429, {"retry-after-ms": "1500"}), ok())
    _, slept = run(RetryPolicy(max_attempts=3, base_delay=0.1), transport)
    assert slept == [2.0, 1.5]


def test_each_attempt_is_a_fresh_request_with_fresh_auth() -> None:
    class CountingAuth:
        n = 0

        def headers(self) -> dict[str, str]:
            CountingAuth.n += 1
            return {"Authorization": f"Bearer token-{CountingAuth.n}"}

        def refresh(self) -> bool:
            return False

    transport = ScriptedTransport(status(500), ok())
    run(RetryPolicy(max_attempts=2, base_delay=0.0), transport, auth=CountingAuth())
    assert [r.headers["Authorization"] for r in transport.sent] == ["Bearer token-1",
                                                                    "Bearer token-2"]


def test_a_plugin_can_override_the_delay_and_observe_retries() -> None:
    seen: list[tuple[int, float]] = []

    class Fixed:
        @hookimpl(tryfirst=True)
        def codexapi_retry_delay(self, provider: Provider, attempt: int, error: Exception
                                 ) -> float | None:
            return 0.25

        @hookimpl
        def codexapi_on_retry(self, provider: Provider, request: HttpRequest, attempt: int,
                              error: Exception, delay: float) -> None:
            seen.append((attempt, delay))

    transport = ScriptedTransport(status(500), status(500), ok())
    _, slept = run(RetryPolicy(max_attempts=3), transport, plugins=[Fixed()])
    assert slept == [0.25, 0.25] and seen == [(1, 0.25), (2, 0.25)]
    # ...but never past max_attempts, whatever the plugin says.
    transport = ScriptedTransport(status(500), status(500), ok())
    with pytest.raises(ApiError):
        run(RetryPolicy(max_attempts=2), transport, plugins=[Fixed()])


def test_delays_are_finite_floats() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=1e300, max_delay=7.0)
    delay = retry.retry_delay(policy, 2, ApiError(500, "x"))
    assert delay == 7.0 and math.isfinite(delay)


@pytest.mark.parametrize(("answer", "slept"), [(float("inf"), 7.0), (1e9, 7.0), (-3.0, 0.0),
                                                (float("nan"), 0.0), (2, 2.0)])
def test_the_policy_bounds_any_plugin_delay(answer: float, slept: float) -> None:
    class Odd:
        @hookimpl(tryfirst=True)
        def codexapi_retry_delay(self, provider: Provider, attempt: int, error: Exception
                                 ) -> float:
            return answer

    transport = ScriptedTransport(status(500), ok())
    _, delays = run(RetryPolicy(max_attempts=2, max_delay=7.0), transport, plugins=[Odd()])
    assert delays == [slept]
