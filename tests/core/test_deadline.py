"""Time is bounded: ``deadline=`` bounds a whole call, and a dripped response head does not
reset the read timeout.

The servers here drip: one byte every 0.3 s, for far longer than the test's own timeout, so a
client that lets each byte extend its wait fails the test by hanging.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from conftest import REQ, make_client
from support.hostile import RawRequest, RawServer, head

from codexapi import (
    ApiError,
    Client,
    ConfigError,
    DeadlineExceeded,
    NoAuth,
    Provider,
    ReadTimeout,
    RetryPolicy,
    TransportError,
)

pytestmark = pytest.mark.timeout(20)

DRIP = 0.3


def drip(conn: socket.socket, data: bytes, seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    for i in range(len(data)):
        if time.monotonic() > end:
            return
        conn.sendall(data[i:i + 1])
        time.sleep(DRIP)


def dripped_head(conn: socket.socket, request: RawRequest) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    drip(conn, b"X-Slow: " + b"a" * 1000 + b"\r\n\r\n")


def dripped_body(content_type: str):  # type: ignore[no-untyped-def]
    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head(Content_Type=content_type, Content_Length="100000"))
        drip(conn, b'data: {"type":"response.output_text.delta","delta":"' + b"z" * 99000)
    return handle


def test_a_dripped_head_is_bounded_as_a_whole_by_the_read_timeout() -> None:
    with RawServer(dripped_head) as srv, make_client(srv.base_url, auth=NoAuth(),
                                                   read_timeout=1.0) as client:
        started = time.monotonic()
        with pytest.raises(ReadTimeout) as info:
            client.stream(REQ)
        elapsed = time.monotonic() - started
    assert "head" in str(info.value)
    assert elapsed < 6.0  # one read timeout, not one per dripped byte


def test_a_dripped_head_is_retried_as_a_head_that_did_not_arrive() -> None:
    slept: list[float] = []
    with RawServer(dripped_head) as srv:
        provider = Provider(base_url=srv.base_url, read_timeout=0.6,
                            retry=RetryPolicy(max_attempts=2, base_delay=0.01))
        with Client(provider, auth=NoAuth(), load_entrypoints=False,
                    sleep=slept.append) as client, pytest.raises(ReadTimeout):
            client.stream(REQ)
        assert len(srv.requests) == 2 and len(slept) == 1


@pytest.mark.parametrize("endpoint", ["stream", "compact", "models"])
def test_a_dripped_body_is_bounded_by_the_deadline(endpoint: str) -> None:
    content_type = "text/event-stream" if endpoint == "stream" else "application/json"
    with RawServer(dripped_body(content_type)) as srv, \
            make_client(srv.base_url, auth=NoAuth(), stream_idle_timeout=5.0,
                        read_timeout=5.0) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as info:
            if endpoint == "stream":
                client.stream(REQ, deadline=1.5).collect()
            elif endpoint == "compact":
                client.compact(REQ, deadline=1.5)
            else:
                client.list_models("1.0", deadline=1.5)
        elapsed = time.monotonic() - started
    assert isinstance(info.value, TransportError) and not info.value.retryable
    assert "1.5" in str(info.value)
    assert 1.4 < elapsed < 6.0


def test_the_deadline_covers_retries_and_their_waits() -> None:
    def busy(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head("503 Service Unavailable", Retry_After="10", Content_Length="0"))

    slept: list[float] = []
    with RawServer(busy) as srv:
        provider = Provider(base_url=srv.base_url,
                            retry=RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=30))
        with Client(provider, auth=NoAuth(), load_entrypoints=False,
                    sleep=slept.append) as client, pytest.raises(DeadlineExceeded) as info:
            client.stream(REQ, deadline=2.0)
    # The server asked for 10 s: waiting would pass the deadline, so the call ends now, with
    # the failure that would have been retried as its cause.
    assert slept == [] and len(srv.requests) == 1
    assert isinstance(info.value.__cause__, ApiError) and info.value.__cause__.status == 503


def test_a_deadline_that_passes_between_tries_ends_the_call() -> None:
    now = [0.0]

    def refuse(conn: socket.socket, request: RawRequest) -> None:
        now[0] += 0.6  # each try "takes" 0.6 s on the client's clock
        conn.sendall(head("500 Internal Server Error", Content_Length="0"))

    with RawServer(refuse) as srv:
        provider = Provider(base_url=srv.base_url,
                            retry=RetryPolicy(max_attempts=10, base_delay=0.01))
        with Client(provider, auth=NoAuth(), load_entrypoints=False,
                    sleep=lambda s: None) as client:
            client._dispatcher.clock = lambda: now[0]
            with pytest.raises(DeadlineExceeded):
                client.stream(REQ, deadline=1.0)
    assert len(srv.requests) == 2


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5"])
def test_a_bad_deadline_is_a_config_error(bad: Any) -> None:
    with make_client("http://127.0.0.1:9/v1", auth=NoAuth()) as client, pytest.raises(ConfigError):
        client.stream(REQ, deadline=bad)
