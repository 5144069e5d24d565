"""Typed errors end to end: what is retried, what is final, and a terminal ``response.failed``
ending the stream at once even when the server keeps the connection open."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import REQ, make_client
from support.recording_transport import RecordingTransport, json_response, sse_response

from codexapi import (
    ApiError,
    ApiRateLimitError,
    Client,
    CyberPolicy,
    NoAuth,
    Provider,
    QuotaExceeded,
    RateLimitError,
    RetryPolicy,
    UsageLimitReached,
)


def client_for(transport: RecordingTransport, sleeps: list[float], **kw: Any) -> Client:
    """A client whose calls ``transport`` answers, retrying up to 5 times; ``sleeps`` gets
    each wait."""
    return make_client("http://127.0.0.1:1/v1",
                       retry=RetryPolicy(max_attempts=5, base_delay=0.01), auth=NoAuth(),
                       transport=transport, sleep=sleeps.append, **kw)


def test_usage_limit_reached_is_raised_at_once_never_retried() -> None:
    body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been "
                      "reached", "plan_type": "plus", "resets_at": 1900000000}}
    transport = RecordingTransport(json_response(body, 429, {"retry-after": "30",
                                                             "x-request-id": "req-9"}))
    sleeps: list[float] = []
    with client_for(transport, sleeps) as client, pytest.raises(UsageLimitReached) as info:
        client.stream(REQ)
    assert len(transport.requests) == 1 and sleeps == []
    err = info.value
    assert isinstance(err, ApiError) and err.status == 429 and err.plan_type == "plus"
    assert err.resets_at is not None and err.resets_at.timestamp() == 1900000000
    assert err.resets_at.utcoffset() is not None and err.request_id == "req-9"
    assert "usage limit reached" in str(err) and "plus" in str(err)


def test_quota_429_is_final() -> None:
    body = {"error": {"type": "insufficient_quota", "code": "insufficient_quota",
                      "message": "You exceeded your current quota."}}
    transport = RecordingTransport(json_response(body, 429))
    sleeps: list[float] = []
    with client_for(transport, sleeps) as client, pytest.raises(QuotaExceeded) as info:
        client.stream(REQ)
    assert len(transport.requests) == 1 and info.value.status == 429


def test_rate_limit_429_that_exhausts_its_retries_is_api_and_rate_limit_error() -> None:
    body = {"error": {"type": "rate_limit_error", "code": "rate_limit_exceeded",
                      "message": "Rate limit reached."}}
    transport = RecordingTransport(json_response(body, 429, {"retry-after": "2",
                                                             "cf-ray": "ray-1"}))
    sleeps: list[float] = []
    with client_for(transport, sleeps) as client, pytest.raises(ApiRateLimitError) as info:
        client.stream(REQ)
    err = info.value
    assert isinstance(err, ApiError) and isinstance(err, RateLimitError)
    assert err.status == 429 and err.retry_after == 2.0 and err.attempts == 5
    assert err.request_id == "ray-1" and sleeps == [2.0] * 4


def test_cyber_policy_400_is_final() -> None:
    body = {"error": {"code": "cyber_policy", "message": "flagged", "type": "invalid_request"}}
    transport = RecordingTransport(json_response(body, 400))
    with client_for(transport, []) as client, pytest.raises(CyberPolicy) as info:
        client.stream(REQ)
    assert info.value.status == 400 and info.value.message == "flagged"


def test_cyber_policy_response_failed_is_a_final_typed_error() -> None:
    failed = {"type": "response.failed", "response": {"id": "r", "status": "failed", "error": {
        "code": "cyber_policy", "message": "This request was flagged."}}}
    transport = RecordingTransport(sse_response(json.dumps(failed)))
    with client_for(transport, []) as client, pytest.raises(CyberPolicy) as info:
        client.stream(REQ).collect()
    assert not info.value.retryable and info.value.code == "cyber_policy"


@pytest.fixture
def open_ended_server() -> Iterator[tuple[str, threading.Event]]:
    """Answers one POST with a stream that reports a failure and then stays open (it writes
    nothing more until the test ends), as a misbehaving server may."""
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
            while len(rest) < length:
                rest += conn.recv(65536)
            event = json.dumps({"type": "response.failed", "response": {"error": {
                "code": "cyber_policy", "message": "flagged"}}})
            chunk = f"data: {event}\n\n".encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"transfer-encoding: chunked\r\n\r\n"
                         + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            release.wait(30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", release
    finally:
        release.set()
        listener.close()
        thread.join(5)


def test_terminal_failure_ends_the_stream_while_the_connection_stays_open(
        open_ended_server: tuple[str, threading.Event]) -> None:
    base_url, release = open_ended_server
    # An idle timeout longer than the test's own timeout: only ending at once passes.
    provider = Provider(base_url=base_url, stream_idle_timeout=120.0, read_timeout=120.0,
                        proxy="")
    with Client(provider, auth=NoAuth(), load_entrypoints=False) as client:
        stream = client.stream(REQ)
        with pytest.raises(CyberPolicy):
            stream.collect()
    assert not release.is_set()  # the server had not closed
