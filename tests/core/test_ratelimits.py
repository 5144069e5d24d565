"""Rate-limit headers -> snapshots (codex-api vectors F1-F7), OpenAI's x-ratelimit-* headers,
Retry-After parsing, and the RateLimits event at the start of a stream."""

from __future__ import annotations

import pytest
from conftest import make_client

from codexapi import RateLimits, ResponsesRequest, WireApi
from codexapi.events import CreditsSnapshot, RateLimitWindow
from codexapi.ratelimits import (
    OpenAILimits,
    openai_limits,
    parse_duration,
    parse_rate_limit_updates,
    parse_rate_limits,
    retry_after_seconds,
    snapshot_if_any,
)
from codexapi.server import EmbeddedServer


def test_f1_primary_window() -> None:
    snap = parse_rate_limits({"x-codex-primary-used-percent": "12.5",
                              "x-codex-primary-window-minutes": "60",
                              "x-codex-primary-reset-at": "1704069000"})
    assert snap.limit_id == "codex" and snap.limit_name is None
    assert snap.primary == RateLimitWindow(12.5, 60, 1704069000)
    assert snap.secondary is None and snap.credits is None


def test_f2_named_family() -> None:
    snap = parse_rate_limits({"x-codex-secondary-primary-used-percent": "80",
                              "x-codex-secondary-primary-window-minutes": "1440",
                              "x-codex-secondary-primary-reset-at": "1704074400"},
                             "codex_secondary")
    assert snap.limit_id == "codex_secondary"
    assert snap.primary == RateLimitWindow(80.0, 1440, 1704074400) and snap.secondary is None


def test_f3_limit_name() -> None:
    snap = parse_rate_limits({"x-codex-bengalfox-primary-used-percent": "80",
                              "x-codex-bengalfox-limit-name": "gpt-5.2-codex-sonic"},
                             "codex_bengalfox")
    assert (snap.limit_id, snap.limit_name) == ("codex_bengalfox", "gpt-5.2-codex-sonic")


def test_f4_one_snapshot_per_family() -> None:
    snaps = parse_rate_limit_updates({"X-Codex-Primary-Used-Percent": "12.5",
                                      "x-codex-secondary-primary-used-percent": "80"})
    assert [s.limit_id for s in snaps] == ["codex", "codex_secondary"]
    assert snaps[0].primary is not None and snaps[0].primary.used_percent == 12.5
    assert snaps[1].primary is not None and snaps[1].primary.used_percent == 80.0


def test_f5_no_headers_one_empty_snapshot() -> None:
    (snap,) = parse_rate_limit_updates({})
    assert snap.limit_id == "codex"
    assert (snap.primary, snap.secondary, snap.credits) == (None, None, None)
    assert snapshot_if_any({}) is None
    assert snapshot_if_any({"content-type": "text/event-stream"}) is None


def test_f6_zero_percent_without_window_is_no_window() -> None:
    assert parse_rate_limits({"x-codex-primary-used-percent": "0"}).primary is None
    # ...but a window length or reset makes it a real (empty) window.
    snap = parse_rate_limits({"x-codex-primary-used-percent": "0",
                              "x-codex-primary-window-minutes": "300"})
    assert snap.primary == RateLimitWindow(0.0, 300, None)


@pytest.mark.parametrize("bad", ["nan", "inf", "lots", ""])
def test_window_needs_a_finite_percent(bad: str) -> None:
    assert parse_rate_limits({"x-codex-primary-used-percent": bad,
                              "x-codex-primary-window-minutes": "60"}).primary is None


def test_f7_credits_need_both_booleans() -> None:
    snap = parse_rate_limits({"x-codex-credits-has-credits": "true",
                              "x-codex-credits-unlimited": "false",
                              "x-codex-credits-balance": " 12.5 "})
    assert snap.credits == CreditsSnapshot(True, False, "12.5")
    assert parse_rate_limits({"x-codex-credits-has-credits": "true"}).credits is None
    snap = parse_rate_limits({"x-codex-credits-has-credits": "1",
                              "x-codex-credits-unlimited": "TRUE",
                              "x-codex-credits-balance": "  "})
    assert snap.credits == CreditsSnapshot(True, True, None)
    assert parse_rate_limits({"x-codex-credits-has-credits": "yes",
                              "x-codex-credits-unlimited": "false"}).credits is None


def test_relative_reset_becomes_absolute() -> None:
    snap = parse_rate_limits({"x-codex-primary-used-percent": "50",
                              "x-codex-primary-resets-in-seconds": "0"}, now=1000.0)
    assert snap.primary == RateLimitWindow(50.0, None, 1000)
    snap = parse_rate_limits({"x-codex-secondary-used-percent": "5",
                              "x-codex-secondary-resets-in-seconds": "90"}, now=1000.0)
    assert snap.secondary == RateLimitWindow(5.0, None, 1090)


OPENAI_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-tokens": "29999985",
    "x-ratelimit-reset-tokens": "1m30.5s",
}


def test_openai_ratelimit_headers_are_kept_and_parsed() -> None:
    snap = snapshot_if_any({**OPENAI_HEADERS, "Content-Type": "text/event-stream"})
    assert snap is not None and snap.primary is None
    assert snap.openai == OPENAI_HEADERS
    assert openai_limits(snap) == OpenAILimits(10000, 9999, 0.006, 30000000, 29999985, 90.5)
    assert OpenAILimits.from_headers({}) is None
    assert OpenAILimits.from_headers({"x-ratelimit-reset-tokens": "soon"}) == OpenAILimits()


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("20ms", 0.02), ("6m0s", 360.0), ("1h2m3.5s", 3723.5), ("2.5", 2.5),
    ("", None), ("s", None), ("1x", None), ("1s junk", None), (None, None),
])
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"Retry-After": "120"}) == 120.0
    assert retry_after_seconds({"retry-after-ms": "28"}) == 0.028
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
                               now=1445412480.0 - 60) == 60.0
    assert retry_after_seconds({"Retry-After": "Wed, 99 Foo 2015"}) is None
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
def test_rate_limits_event_first_and_on_the_result(server: EmbeddedServer, wire: WireApi
                                                   ) -> None:
    headers = {"x-codexapi-fault": "ratelimits"}
    with make_client(server, wire) as client:
        events = list(client.stream(ResponsesRequest(model="m", input="hi"), headers=headers))
        result = client.stream(ResponsesRequest(model="m", input="hi"), headers=headers
                               ).collect()
        plain = client.stream(ResponsesRequest(model="m", input="hi")).collect()
    assert isinstance(events[0], RateLimits)
    assert sum(isinstance(e, RateLimits) for e in events) == 1
    snap = events[0].snapshot
    assert snap.primary is not None and snap.primary.used_percent == 42.5
    assert snap.primary.window_minutes == 300
    assert snap.secondary is not None and snap.secondary.window_minutes == 10080
    assert snap.credits == CreditsSnapshot(True, False, "17.25")
    assert openai_limits(snap) == OpenAILimits(500, 499, 0.12, 200000, 199000, 6.0)
    assert result.rate_limits == snap and result.text == "You said: hi"
    assert plain.rate_limits is None
