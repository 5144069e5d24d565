"""The transport seam: (connect, head, idle) timeouts, ReadTimeout for a stalled body (an
IdleTimeout only once a stream has it), ``send(request)`` always streaming (core reads a unary
body, under its bounds), and the protocol declaring everything its callers use."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from codexapi import (
    Client,
    IdleTimeout,
    Provider,
    ReadTimeout,
    ResponsesRequest,
    ResponseTooLarge,
    RetryPolicy,
)
from codexapi.http.transport import BufferedResponse, HttpRequest, HttpResponse
from codexapi.http.urllib3_transport import Urllib3Transport
from codexapi.server import EmbeddedServer, Exchange, route


@route("GET", "/test-transport/models")
@route("GET", "/test-transport/stalled-body")
def _stalled_body(ex: Exchange) -> None:
    h = ex.handler
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", "100")
    h.end_headers()
    h.wfile.write(b'{"models": [')
    h.wfile.flush()
    time.sleep(1.0)  # the rest never comes in time


@route("GET", "/test-transport/json")
def _json(ex: Exchange) -> None:
    ex.send_json(200, {"models": [{"slug": "m1"}]})


@route("POST", "/test-transport/responses")
def _stalled_stream(ex: Exchange) -> None:
    ex.start_stream()
    ex.write(b'data: {"type":"response.created","response":{}}\n\n')
    time.sleep(1.0)
    with contextlib.suppress(OSError):
        ex.end_stream()


@pytest.fixture(scope="module")
def srv() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def test_timeouts_are_connect_head_idle_and_pairs_still_work() -> None:
    assert HttpRequest("GET", "http://x/", {}).timeout == (30.0, 600.0, 600.0)
    assert HttpRequest("GET", "http://x/", {}, None, (1, 2)).timeout == (1.0, 2.0, 2.0)
    assert HttpRequest("GET", "http://x/", {}, None, (1, 2, 3)).timeout == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match=r"\(connect, head, idle\)"):
        HttpRequest("GET", "http://x/", {}, None, (1,))  # type: ignore[arg-type]


def test_a_stalled_unary_body_is_a_read_timeout_not_an_idle_timeout(srv: EmbeddedServer
                                                                    ) -> None:
    url = f"{srv.base_url}/test-transport/stalled-body"
    with pytest.raises(ReadTimeout) as info:
        Urllib3Transport().send(HttpRequest("GET", url, {}, None, (2.0, 2.0, 0.2))).read()
    assert "timed out reading the response" in str(info.value)
    assert not isinstance(info.value, IdleTimeout)
    # The same through the client: `models` says read timeout, never "waiting for SSE".
    provider = Provider(base_url=f"{srv.base_url}/test-transport", read_timeout=0.2,
                        retry=RetryPolicy(max_attempts=1))
    with Client(provider, load_entrypoints=False) as client, pytest.raises(ReadTimeout) as info:
        client.list_models("1.0")
    assert "SSE" not in str(info.value)


def test_a_stalled_stream_is_an_idle_timeout(srv: EmbeddedServer) -> None:
    provider = Provider(base_url=f"{srv.base_url}/test-transport", stream_idle_timeout=0.2,
                        retry=RetryPolicy(max_attempts=1))
    with Client(provider, load_entrypoints=False) as client, \
            pytest.raises(IdleTimeout, match="idle timeout waiting for SSE") as info:
        client.stream(ResponsesRequest(model="m", input="x")).collect()
    assert isinstance(info.value.__cause__, ReadTimeout)


def test_send_streams_and_core_reads_a_unary_body_then_frees_the_connection(
        srv: EmbeddedServer) -> None:
    transport = Urllib3Transport()
    url = f"{srv.base_url}/test-transport/json"
    response = transport.send(HttpRequest("GET", url, {}))
    assert not isinstance(response, BufferedResponse)  # nothing read ahead
    assert response.read() == b'{"models": [{"slug": "m1"}]}'
    pool = transport._pool.connection_from_url(url)
    assert pool.num_connections == 1 and pool.pool is not None and pool.pool.qsize() >= 1
    transport.send(HttpRequest("GET", url, {})).read()
    assert pool.num_connections == 1  # the same connection, reused
    # Through a client: the transport only streams, core reads the body under the bound.
    with Client(Provider(base_url=srv.base_url, max_body_bytes=10),
                transport=transport, load_entrypoints=False) as client, \
            pytest.raises(ResponseTooLarge, match="max_body_bytes"):
        client.list_models("1.0")


def test_a_transport_of_an_earlier_version_is_asked_to_stream(srv: EmbeddedServer) -> None:
    asked: list[bool] = []

    class Earlier:
        def __init__(self) -> None:
            self.inner = Urllib3Transport()

        def send(self, request: HttpRequest, stream: bool) -> Any:
            asked.append(stream)
            return self.inner.send(request)

        def close(self) -> None:
            self.inner.close()

    with Client(Provider(base_url=srv.base_url), transport=Earlier(),
                load_entrypoints=False) as client:
        assert client.list_models("1.0").slugs
    assert asked == [True]


def test_unary_bodies_are_bounded(srv: EmbeddedServer) -> None:
    url = f"{srv.base_url}/test-transport/json"
    response = Urllib3Transport().send(HttpRequest("GET", url, {}))
    with pytest.raises(ResponseTooLarge, match="bound of 10 bytes") as info:
        BufferedResponse.read_from(response, limit=10)
    assert info.value.retryable is False


def test_the_protocol_declares_what_callers_use() -> None:
    assert {"status", "headers", "url"} <= set(HttpResponse.__annotations__)
    assert {"iter_bytes", "read", "drain", "close"} <= set(dir(HttpResponse))
    buffered = BufferedResponse(200, {}, b"x", "u")
    assert [*buffered.iter_bytes()] == [b"x"] and buffered.drain() is None
