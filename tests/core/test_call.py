"""One owner for a call (codexapi.call): the Retries value decides every repeat with two
independent budgets, a retry is logged once, and every call, a streamed turn included, is
observed from start to end exactly once however it ends."""

from __future__ import annotations

import gc
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_client, make_request

from codexapi import (
    ApiError,
    Client,
    OutputTextDelta,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    StreamDropped,
    StreamError,
    TransportError,
    hookimpl,
)
from codexapi.retry import Retries
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER

REQ = make_request("Hello there")


class Sent:
    """Counts the requests a client sends (method and URL), through the public hook."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    @hookimpl
    def codexapi_on_request(self, provider: Provider, request: Any, attempt: int) -> None:
        self.requests.append((request.method, request.url))


@pytest.fixture(scope="module")
def srv() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def client(srv: EmbeddedServer, max_attempts: int, stream_max_retries: int,
           *plugins: Any) -> Client:
    return make_client(srv, retry=max_attempts, plugins=plugins,
                       stream_max_retries=stream_max_retries)


def plan(fault: str) -> dict[str, str]:
    return {FAULT_HEADER: fault, FAULT_ID_HEADER: uuid.uuid4().hex}


# --- the value ---------------------------------------------------------------------------------


def test_retries_is_a_value_with_two_independent_budgets() -> None:
    start = Retries(RetryPolicy(max_attempts=1, base_delay=0.0), stream_max_retries=2)
    # Request retries are off...
    with pytest.raises(ApiError) as info:
        start.again(ApiError(503, "busy"), "request")
    assert info.value.attempts == 1
    # ...re-sends and resumes are not, and they do not touch the request's count.
    after, delay = start.again(StreamDropped("lost"), "resend")
    assert (after.resends, after.attempt, delay) == (1, 1, 0.0)
    assert start.resends == 0  # immutable
    after, _ = after.again(StreamDropped("lost"), "resume")
    with pytest.raises(StreamDropped):
        after.again(StreamDropped("lost"), "resend")

    none = Retries(RetryPolicy(max_attempts=3, base_delay=0.0), stream_max_retries=0)
    with pytest.raises(StreamError):
        none.again(StreamError("server_error"), "resend")
    after, _ = none.again(TransportError("reset"), "request")
    assert after.attempt == 2


def test_what_cannot_succeed_is_never_tried_again() -> None:
    retries = Retries(RetryPolicy(max_attempts=5), stream_max_retries=5)
    final = StreamError("incomplete", retryable=False)
    with pytest.raises(StreamError):
        retries.again(final, "resend")
    with pytest.raises(ApiError):
        retries.again(ApiError(400, "bad"), "request")


def test_a_plugin_delay_is_bounded_by_the_policy() -> None:
    retries = Retries(RetryPolicy(max_delay=2.0), stream_max_retries=1)
    _, delay = retries.again(StreamDropped("x"), "resend", lambda n, e: 1e9)
    assert delay == 2.0
    _, delay = retries.again(TransportError("x"), "request", lambda n, e: None)
    assert 0.0 <= delay <= 2.0  # the policy's own backoff


# --- the budgets on the wire -------------------------------------------------------------------


def test_request_retries_off_leave_resends_on(srv: EmbeddedServer) -> None:
    sent = Sent()
    with client(srv, 1, 2, sent) as c:
        # The 2xx head arrived, then the stream dropped before any event.
        result = c.create(REQ, headers=plan("dropx1@0"))
    assert result.text
    assert [m for m, _ in sent.requests] == ["POST", "POST"]


def test_request_retries_off_leave_resends_of_a_failed_first_event_on(
        srv: EmbeddedServer) -> None:
    sent = Sent()
    with client(srv, 1, 2, sent) as c:
        result = c.create(REQ, headers=plan("failedx1:server_error@0"))
    assert result.text and len(sent.requests) == 2


def test_request_retries_off_leave_background_resumes_on(srv: EmbeddedServer) -> None:
    sent = Sent()
    with client(srv, 1, 2, sent) as c:
        stream = c.stream(ResponsesRequest(model="m", input="Hello there", background=True,
                                           store=True),
                          headers=plan("dropx1@4"))
        text = "".join(e.delta for e in stream if isinstance(e, OutputTextDelta))
        assert text == c.create(REQ).text
    methods = [m for m, _ in sent.requests]
    assert methods[:2] == ["POST", "GET"] and "starting_after=" in sent.requests[1][1]


def test_resends_off_leave_request_retries_on(srv: EmbeddedServer) -> None:
    sent = Sent()
    with client(srv, 3, 0, sent) as c:
        assert c.create(REQ, headers=plan("503x1")).text
        assert len(sent.requests) == 2
        sent.requests.clear()
        with pytest.raises(StreamDropped):
            c.create(REQ, headers=plan("dropx1@0"))
        assert len(sent.requests) == 1


def test_a_retry_is_logged_once_and_scrubbed(srv: EmbeddedServer,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = "sk-live-" + "k" * 34
    provider = Provider(base_url=srv.base_url, headers={"Authorization": f"Bearer {key}"},
                        retry=RetryPolicy(max_attempts=2, base_delay=0.0),
                        stream_max_retries=1)
    with Client(provider, load_entrypoints=False) as c:
        c.create(REQ, headers=plan("503x1"))
        c.create(REQ, headers=plan("dropx1@0"))
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2, [r.getMessage() for r in retries]
    assert all(getattr(r, "codexapi_retry", False) for r in retries)
    assert "attempt 1 failed" in retries[0].getMessage()
    assert "sending it again" in retries[1].getMessage()
    assert not any(key in r.getMessage() for r in caplog.records)


# --- one lifecycle -----------------------------------------------------------------------------


class Lifecycle:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any, Any]] = []

    @hookimpl
    def codexapi_on_call_start(self, provider: Provider, endpoint: str, request: Any,
                               extensions: dict[str, Any]) -> None:
        extensions["mine"] = "here"
        self.events.append(("start", endpoint, None, None))

    @hookimpl
    def codexapi_on_call_end(self, provider: Provider, endpoint: str, request: Any,
                             result: Any, error: BaseException | None,
                             extensions: dict[str, Any]) -> None:
        assert extensions["mine"] == "here"  # the same dict from start to end
        self.events.append(("end", endpoint, result, error))


def test_a_turn_read_to_the_end_starts_and_ends_once(srv: EmbeddedServer) -> None:
    seen = Lifecycle()
    with client(srv, 1, 0, seen) as c:
        result = c.create(REQ)
    assert [e[:2] for e in seen.events] == [("start", "stream"), ("end", "stream")]
    ended = seen.events[1]
    assert ended[3] is None and ended[2].text == result.text and ended[2].response_id


def test_a_turn_closed_early_failed_or_dropped_unread_ends_once(srv: EmbeddedServer) -> None:
    seen = Lifecycle()
    with client(srv, 1, 0, seen) as c:
        with c.stream(REQ) as stream:
            next(iter(stream))
        assert [e[0] for e in seen.events] == ["start", "end"]
        assert seen.events[1][2].finish_reason == "cancelled"

        seen.events.clear()
        with pytest.raises(StreamDropped):
            c.create(REQ, headers=plan("dropx1@2"))
        assert [e[0] for e in seen.events] == ["start", "end"]
        assert isinstance(seen.events[1][3], StreamDropped)

        seen.events.clear()
        with pytest.raises(ApiError):
            c.create(REQ, headers=plan("400"))
        assert [e[0] for e in seen.events] == ["start", "end"]
        assert isinstance(seen.events[1][3], ApiError)

        seen.events.clear()
        c.stream(REQ)  # never read, never kept
        gc.collect()
        assert [e[0] for e in seen.events] == ["start", "end"]

        seen.events.clear()
        stream = c.stream(REQ)
        next(iter(stream))
        del stream  # abandoned mid-way
        gc.collect()
        assert [e[0] for e in seen.events] == ["start", "end"]


def test_unary_calls_have_the_same_lifecycle(srv: EmbeddedServer) -> None:
    seen = Lifecycle()
    with client(srv, 1, 0, seen) as c:
        c.compact(REQ)
        c.list_models("0.171.0")
    assert [e[:2] for e in seen.events] == [("start", "compact"), ("end", "compact"),
                                             ("start", "models"), ("end", "models")]
