"""codexapi.testing.MockTransport (httpx's shape) and MockResponse, and the docs/testing.md
example that shows them."""

from __future__ import annotations

import re

import pytest
from conftest import REQ, ROOT

from codexapi import (
    Client,
    IdleTimeout,
    Provider,
    RetryPolicy,
    StreamError,
    TransportError,
)
from codexapi.testing import MockResponse, MockTransport

DOC = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
DONE = {"type": "response.completed", "response": {"id": "r1"}}


def test_the_docs_example_runs() -> None:
    [block] = [b for b in re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
               if "MockTransport(handler)" in b]
    exec(compile(block, "docs/testing.md[MockTransport]", "exec"), {"__name__": "doc"})


def test_handler_sees_the_finished_request_and_answers_chunk_by_chunk() -> None:
    answers = [MockResponse.sse({"type": "response.output_text.delta", "delta": "a"},
                                {"type": "response.output_text.delta", "delta": "b"}, DONE,
                                chunks=3)]
    transport = MockTransport(lambda request: answers[0])
    with Client(Provider(), load_entrypoints=False, transport=transport) as client:
        assert client.stream(REQ).collect().text == "ab"
    [request] = transport.requests
    assert request.method == "POST" and request.headers["Accept"] == "text/event-stream"
    assert answers[0].reads == 3 and answers[0].closed


def test_unary_calls_get_the_whole_body() -> None:
    transport = MockTransport(lambda r: MockResponse.json({"models": [{"slug": "m1"}]},
                                                          headers={"ETag": '"v1"'}))
    with Client(Provider(), load_entrypoints=False, transport=transport) as client:
        models = client.list_models("1.0")
    assert models.slugs == ["m1"] and models.etag == '"v1"'
    # The mock only streams what the handler answers; the client read the body itself.
    assert isinstance(transport.send(transport.requests[0]), MockResponse)


def test_a_raising_handler_plays_a_network_failure_with_retries() -> None:
    calls: list[int] = []

    def flaky(request: object) -> MockResponse:
        calls.append(1)
        if len(calls) == 1:
            raise TransportError("connection reset")
        return MockResponse.sse(DONE)

    with Client(Provider(retry=RetryPolicy(max_attempts=2, base_delay=0)),
                load_entrypoints=False, transport=MockTransport(flaky),
                sleep=lambda _: None) as client:
        assert client.stream(REQ).collect().response_id == "r1"
    assert len(calls) == 2


def test_a_body_that_stops_early_is_a_stream_error() -> None:
    transport = MockTransport(lambda r: MockResponse.sse(
        {"type": "response.output_text.delta", "delta": "a"}))
    with Client(Provider(), load_entrypoints=False, transport=transport) as client, \
            pytest.raises(StreamError, match=r"before response\.completed") as info:
        client.stream(REQ).collect()
    assert not isinstance(info.value, IdleTimeout)


def test_headers_are_case_insensitive() -> None:
    response = MockResponse(200, b"", {"X-Request-Id": "req_1"})
    assert response.headers["x-request-id"] == response.headers.get("X-REQUEST-ID") == "req_1"
    assert "x-REQUEST-id" in response.headers
