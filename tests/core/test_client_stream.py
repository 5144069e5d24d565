"""Client.stream end to end against the embedded server: incremental delivery, closing,
collect(), typed errors for bad responses, thread safety."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from conftest import REQ, make_client

from codexapi import (
    ApiError,
    Client,
    Completed,
    Created,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    StreamError,
    TransportError,
    hookimpl,
)
from codexapi.events import ModelsEtag, RateLimits, ServerModel, ServerReasoningIncluded
from codexapi.server import EmbeddedServer, Exchange, route

HEADER_EVENTS = (ModelsEtag, RateLimits, ServerModel, ServerReasoningIncluded)


class StreamPath:
    """A plugin that sends the streamed turn to another path (a test route)."""

    def __init__(self, path: str) -> None:
        self.path = path

    @hookimpl(tryfirst=True)
    def codexapi_endpoint_path(self, provider: Provider, endpoint: str) -> str | None:
        return self.path if endpoint == "stream" else None


# --- test routes ----------------------------------------------------------------------------
GATE = threading.Event()
DISCONNECTED = threading.Event()


def _sse(obj: str) -> bytes:
    return f"data: {obj}\n\n".encode()


@route("POST", "/test/gated")
def _gated(ex: Exchange) -> None:
    ex.start_stream()
    ex.write(_sse('{"type":"response.output_text.delta","delta":"first"}'))
    GATE.wait(10)
    ex.write(_sse('{"type":"response.output_text.delta","delta":" second"}'))
    ex.write(_sse('{"type":"response.completed","response":{"id":"r"}}'))
    ex.end_stream()


@route("POST", "/test/endless")
def _endless(ex: Exchange) -> None:
    ex.start_stream()
    try:
        for _ in range(2000):
            ex.write(_sse('{"type":"response.output_text.delta","delta":"x"}'))
            time.sleep(0.005)
    except OSError:
        DISCONNECTED.set()


@route("POST", "/test/html502")
def _html502(ex: Exchange) -> None:
    ex.send_bytes(502, b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad "
                  b"Gateway</h1><hr>nginx</body></html>", "text/html",
                  {"x-request-id": "req_abc"})


@route("POST", "/test/plain500")
def _plain500(ex: Exchange) -> None:
    ex.send_bytes(500, b"upstream exploded", "text/plain")


@route("POST", "/test/empty400")
def _empty400(ex: Exchange) -> None:
    ex.send_bytes(400, b"", "application/json")


@route("POST", "/test/json400")
def _json400(ex: Exchange) -> None:
    ex.send_error(400, "Invalid value for 'model'.", "invalid_value")


@route("POST", "/test/truncated")
def _truncated(ex: Exchange) -> None:
    ex.stream_events([_sse('{"type":"response.output_text.delta","delta":"partial"}')])


@route("POST", "/test/badjson")
def _badjson(ex: Exchange) -> None:
    ex.stream_events([_sse('{"type":"response.output_text.delta","delta":'),
                      _sse('{"no_type": true}')])


@route("POST", "/test/midstream-cut")
def _cut(ex: Exchange) -> None:
    ex.start_stream()
    ex.write(_sse('{"type":"response.output_text.delta","delta":"a"}'))
    # Announce a chunk and die before sending it: the body is cut mid-stream.
    ex.handler.wfile.write(b"400\r\npartial")
    ex.handler.wfile.flush()
    ex.handler.close_connection = True
    ex.handler.connection.shutdown(socket.SHUT_RDWR)


# --- tests ------------------------------------------------------------------------------------


def test_event_sequence_and_collect(server: EmbeddedServer) -> None:
    with make_client(server) as client:
        events = list(client.stream(REQ))
        result = client.stream(REQ).collect()
    # Header-born events (the server's X-Models-Etag) come first; then the body's.
    events = [e for e in events if not isinstance(e, HEADER_EVENTS)]
    assert isinstance(events[0], Created)
    assert isinstance(events[1], OutputItemAdded)
    assert isinstance(events[-1], Completed)
    assert "".join(e.delta for e in events if isinstance(e, OutputTextDelta)) == \
        "You said: Hello"
    assert result.text == "You said: Hello"
    assert [i.type for i in result.items] == ["message"]
    assert result.items[0].text == "You said: Hello"
    assert result.response_id and result.response_id.startswith("resp_")
    assert result.usage is not None and result.usage.output_tokens > 0
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens


def test_iter_text_yields_the_text_deltas_alone(server: EmbeddedServer) -> None:
    with make_client(server) as client:
        stream = client.stream(ResponsesRequest(model="m", input="think about Hello"))
        pieces = list(stream.iter_text())
        assert pieces and all(isinstance(p, str) for p in pieces)
        assert "".join(pieces) == "You said: think about Hello"
        assert stream._closed  # released at the end
    # Errors of the stream still come out of it.
    with make_client(server, plugins=[StreamPath("test/truncated")]) as client, pytest.raises(
            StreamError, match=r"stream closed before response\.completed"):
        list(client.stream(REQ).iter_text())


def test_reasoning_and_tool_call_turns(server: EmbeddedServer) -> None:
    tools = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]
    with make_client(server) as client:
        result = client.stream(ResponsesRequest(model="m", input="please call the tool",
                                                tools=tools,
                                                reasoning={"effort": "low"})).collect()
    assert [i.type for i in result.items] == ["reasoning", "function_call"]
    call = result.function_calls[0]
    assert call.name == "lookup" and call.call_id.startswith("call_")
    assert call.arguments == '{}'  # no parameters declared, none invented


def test_first_event_arrives_before_the_rest_is_sent(server: EmbeddedServer) -> None:
    GATE.clear()
    with make_client(server, plugins=[StreamPath("test/gated")]) as client, \
            client.stream(REQ) as events:
        first = next(events)
        # The server is blocked until we release it: the event came without read-ahead.
        assert first == OutputTextDelta("first")
        GATE.set()
        rest = list(events)
    assert rest[0] == OutputTextDelta(" second") and isinstance(rest[-1], Completed)


def test_early_break_closes_the_connection(server: EmbeddedServer) -> None:
    DISCONNECTED.clear()
    with make_client(server, plugins=[StreamPath("test/endless")]) as client:
        with client.stream(REQ) as events:
            for i, _ in enumerate(events):
                if i == 3:
                    break
        assert DISCONNECTED.wait(5), "server kept streaming after the client left"
        # The pool still works afterwards (the abandoned connection was not reused mid-body).
        again = client.stream(REQ)
        assert next(again) == OutputTextDelta("x")
        again.close()


@pytest.mark.parametrize(("path", "status", "needle"), [
    ("test/html502", 502, "Bad Gateway: the server sent a non-JSON body (text/html): 502 Bad"),
    ("test/plain500", 500, "non-JSON body (text/plain): upstream exploded"),
    ("test/empty400", 400, "Bad Request (empty body)"),
    ("test/json400", 400, "Invalid value for 'model'."),
])
def test_non_2xx_is_api_error_with_usable_message(server: EmbeddedServer, path: str,
                                                  status: int, needle: str) -> None:
    with make_client(server, plugins=[StreamPath(path)]) as client, pytest.raises(ApiError) as info:
        client.stream(REQ)
    err = info.value
    assert err.status == status and needle in err.message
    assert str(err).startswith(f"api error {status}: ")
    if path == "test/html502":
        assert err.request_id == "req_abc" and "req_abc" in str(err)
        assert "<html>" in (err.body or "")
    if path == "test/json400":
        assert err.code == "invalid_value"


def test_truncated_stream_is_stream_error(server: EmbeddedServer) -> None:
    with make_client(server, plugins=[StreamPath("test/truncated")]) as client:
        events = client.stream(REQ)
        assert next(events) == OutputTextDelta("partial")
        with pytest.raises(StreamError, match=r"stream closed before response\.completed"):
            next(events)


def test_malformed_json_and_missing_type_are_explained(server: EmbeddedServer) -> None:
    with make_client(server, plugins=[StreamPath("test/badjson")]) as client, \
            pytest.raises(StreamError) as info:
        client.stream(REQ).collect()
    assert "not valid JSON" in str(info.value)


def test_connection_cut_mid_stream_is_typed(server: EmbeddedServer) -> None:
    with make_client(server, plugins=[StreamPath("test/midstream-cut")]) as client:
        events = client.stream(REQ)
        assert next(events) == OutputTextDelta("a")
        with pytest.raises((TransportError, StreamError)):
            list(events)


def test_connection_refused_is_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = Provider(base_url=f"http://127.0.0.1:{port}/v1",
                        retry=RetryPolicy(max_attempts=1))
    with Client(provider, load_entrypoints=False) as client, \
            pytest.raises(TransportError) as info:
        client.stream(REQ)
    assert "could not connect" in str(info.value) and str(port) in str(info.value)


def test_shared_client_across_threads(server: EmbeddedServer) -> None:
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    with make_client(server) as client:
        def work(n: int) -> None:
            try:
                for k in range(5):
                    req = ResponsesRequest(model="m", input=f"thread {n} turn {k}")
                    results[n * 10 + k] = client.stream(req).collect().text
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors
    assert results == {n * 10 + k: f"You said: thread {n} turn {k}"
                       for n in range(8) for k in range(5)}


def test_output_item_done_items_expose_fields(server: EmbeddedServer) -> None:
    with make_client(server) as client:
        done = [e for e in client.stream(REQ) if isinstance(e, OutputItemDone)]
    item = done[0].item
    assert item.type == "message" and item.role == "assistant"
    assert item.raw["content"][0]["type"] == "output_text"
    assert item.status == "completed"  # not modelled by Message: read from the JSON
    with pytest.raises(AttributeError, match="missing_field"):
        item.missing_field  # noqa: B018
