"""The Chat SSE decoder: codex-api vectors A1-A10, real OpenAI streams, and bad input."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
import yaml
from conftest import SHARED, make_client
from support.recording_transport import stream_response

from codexapi import (
    Completed,
    ContextWindowExceeded,
    IdleTimeout,
    Item,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ResponsesRequest,
    StreamError,
    TokenUsage,
    TransportError,
    UndecodableEvent,
    WireApi,
)
from codexapi.events import Event
from codexapi.sse import SseStreamDecoder
from codexapi.stream import ResponseStream
from codexapi_plugins.wire_chat import ChatDecoder

REAL_CASSETTES = SHARED / "real-cassettes"


def frame(*chunks: Any) -> bytes:
    """Chat chunks framed as the crate's tests frame them (``event: message`` + data)."""
    out = []
    for chunk in chunks:
        data = chunk if isinstance(chunk, str) else json.dumps(chunk)
        out.append(f"event: message\ndata: {data}\n\n")
    return "".join(out).encode()


def run(body: bytes, split: int | None = None, skip: bool = False) -> list[Event | Exception]:
    """Decode ``body`` through a real ResponseStream; a raised error is the last element."""
    step = split or max(len(body), 1)
    chunks = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
    out: list[Event | Exception] = []
    decoder = SseStreamDecoder(ChatDecoder(skip_undecodable=skip))
    stream = ResponseStream(stream_response(chunks), decoder)
    try:
        for event in stream:
            out.append(event)
    except Exception as exc:  # the stream's own typed error is what the vectors expect
        out.append(exc)
    return out


def calls(*fragments: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"delta": {"tool_calls": list(fragments)}}]}


def finish(reason: str) -> dict[str, Any]:
    return {"choices": [{"finish_reason": reason}]}


def fc(name: str, arguments: str, call_id: str) -> OutputItemDone:
    return OutputItemDone(Item({"type": "function_call", "name": name, "arguments": arguments,
                                "call_id": call_id}))


EMPTY_MESSAGE = OutputItemAdded(Item({"type": "message", "role": "assistant", "content": []}))


def message_done(*texts: str) -> OutputItemDone:
    """The message item at ``stop``: its text deltas joined into one ``output_text`` part, as
    a Responses message has (the crate pushes a part per delta)."""
    return OutputItemDone(Item({"type": "message", "role": "assistant",
                                "content": [{"type": "output_text", "text": "".join(texts)}]}))


def test_a_message_is_one_text_part_however_many_deltas_it_came_in() -> None:
    # The 7-word answer of issue 27 came in 9 deltas and was kept as 9 output_text parts.
    words = ["The", " sky", " is", " blue", " on", " a", " clear", " day", "."]
    body = frame(*[{"choices": [{"delta": {"content": w}}]} for w in words],
                 {"choices": [{"delta": {"refusal": "No"}}]},
                 {"choices": [{"delta": {"refusal": " more."}}]}, finish("stop"), "[DONE]")
    stream = ResponseStream(stream_response([body]),
                            SseStreamDecoder(ChatDecoder()))
    result = stream.collect()
    (message,) = result.items
    assert message.content == [{"type": "output_text", "text": "".join(words)},
                               {"type": "refusal", "refusal": "No more."}]
    assert result.text == "The sky is blue on a clear day." and result.refusal == "No more."


def test_a1_emits_multiple_tool_calls() -> None:
    events = run(frame(
        calls({"id": "call_a", "function": {"name": "do_a", "arguments": '{"foo":1}'}}),
        calls({"id": "call_b", "function": {"name": "do_b", "arguments": '{"bar":2}'}}),
        finish("tool_calls"),
    ))
    assert events == [fc("do_a", '{"foo":1}', "call_a"), fc("do_b", '{"bar":2}', "call_b"),
                      Completed("", None)]


def test_a2_concatenates_tool_call_arguments_across_deltas() -> None:
    events = run(frame(
        calls({"id": "call_a", "function": {"name": "do_a"}}),
        calls({"id": "call_a", "function": {"arguments": '{ "foo":'}}),
        calls({"id": "call_a", "function": {"arguments": "1}"}}),
        finish("tool_calls"),
    ))
    assert events == [fc("do_a", '{ "foo":1}', "call_a"), Completed("", None)]


def test_a3_empty_name_never_overwrites() -> None:
    events = run(frame(
        calls({"id": "call_a", "function": {"name": "do_a"}}),
        calls({"id": "call_a", "function": {"name": "", "arguments": "{}"}}),
        finish("tool_calls"),
    ))
    assert events == [fc("do_a", "{}", "call_a"), Completed("", None)]


def test_a4_tool_calls_with_content_and_reasoning_in_order() -> None:
    events = run(frame(
        {"choices": [{"delta": {
            "content": [{"text": "hi"}], "reasoning": "because",
            "tool_calls": [{"id": "call_a", "function": {"name": "do_a", "arguments": "{}"}}]}}]},
        finish("tool_calls"),
    ))
    assert events == [
        OutputItemAdded(Item({"type": "reasoning", "summary": [], "content": []})),
        ReasoningContentDelta("because", 0),
        EMPTY_MESSAGE,
        OutputTextDelta("hi"),
        OutputItemDone(Item({"type": "reasoning", "summary": [],
                             "content": [{"type": "reasoning_text", "text": "because"}]})),
        fc("do_a", "{}", "call_a"),
        message_done("hi"),
        Completed("", None),
    ]


def test_a5_drops_partial_tool_calls_on_stop() -> None:
    events = run(frame(
        calls({"id": "call_a", "function": {"name": "do_a", "arguments": "{}"}}),
        finish("stop"),
    ))
    assert not any(isinstance(e, OutputItemDone) and e.item.type == "function_call"
                   for e in events)
    assert events == [Completed("", None)]


def test_a6_skips_tool_calls_with_empty_or_missing_names() -> None:
    events = run(frame(
        calls({"id": "call_empty", "function": {"name": "", "arguments": "{}"}}),
        calls({"id": "call_no_name", "function": {"arguments": "{}"}}),
        calls({"id": "call_valid", "function": {"name": "valid_tool", "arguments": "{}"}}),
        finish("tool_calls"),
    ))
    assert events == [fc("valid_tool", "{}", "call_valid"), Completed("", None)]


def test_a7_index_based_merging_without_ids() -> None:
    events = run(frame(
        calls({"index": 0, "id": "call_1", "function": {"name": "shell", "arguments": ""}}),
        calls({"index": 0, "function": {"arguments": '{"cmd":'}}),
        calls({"index": 0, "function": {"arguments": '"ls"}'}}),
        finish("tool_calls"),
        "[DONE]",
    ))
    assert events == [fc("shell", '{"cmd":"ls"}', "call_1"), Completed("", None)]


def test_a7_variant_call_without_id_gets_index_based_call_id() -> None:
    events = run(frame(
        calls({"index": 2, "function": {"name": "shell", "arguments": "{}"}}),
        finish("tool_calls"),
        "[DONE]",
    ))
    assert events == [fc("shell", "{}", "tool-call-2"), Completed("", None)]


def test_parallel_calls_by_index_keep_first_seen_order() -> None:
    events = run(frame(
        calls({"index": 1, "id": "call_b", "function": {"name": "b", "arguments": ""}}),
        calls({"index": 0, "id": "call_a", "function": {"name": "a", "arguments": ""}}),
        calls({"index": 0, "function": {"arguments": "{}"}},
              {"index": 1, "function": {"arguments": "[]"}}),
        finish("tool_calls"),
        "[DONE]",
    ))
    assert events == [fc("b", "[]", "call_b"), fc("a", "{}", "call_a"), Completed("", None)]


def test_a8_finish_reason_length_is_context_window_exceeded() -> None:
    events = run(frame({"choices": [{"delta": {"content": "abc"}}]}, finish("length"),
                       "[DONE]"))
    assert events[:2] == [EMPTY_MESSAGE, OutputTextDelta("abc")]
    assert isinstance(events[2], ContextWindowExceeded)
    assert "context window exceeded" in str(events[2])
    assert len(events) == 3  # no message done, no Completed


def test_length_in_the_same_chunk_as_text_still_delivers_the_text() -> None:
    events = run(frame({"choices": [{"delta": {"content": "abc"}, "finish_reason": "length"}]}))
    assert events[:2] == [EMPTY_MESSAGE, OutputTextDelta("abc")]
    assert isinstance(events[2], ContextWindowExceeded) and len(events) == 3


def test_a9_plain_text_answer_with_done() -> None:
    body = frame({"choices": [{"delta": {"content": "Hel"}}]},
                 {"choices": [{"delta": {"content": "lo"}}]}, finish("stop"), "[DONE]")
    expected = [EMPTY_MESSAGE, OutputTextDelta("Hel"), OutputTextDelta("lo"),
                message_done("Hel", "lo"), Completed("", None)]
    assert run(body) == expected
    # Byte boundaries do not matter: the same events when the body arrives 7 bytes at a time.
    assert run(body, split=7) == expected


def test_nothing_is_read_after_done() -> None:
    body = frame({"choices": [{"delta": {"content": "x"}}]}, finish("stop"), "[DONE]")
    late = frame({"choices": [{"delta": {"content": "late"}}]})
    response = stream_response([body, late])
    events = list(ResponseStream(response, SseStreamDecoder(ChatDecoder())))
    assert OutputTextDelta("late") not in events
    assert isinstance(events[-1], Completed)
    assert response.reads == 1 and response.closed


# --- A10: idle timeout and transport errors, over a real socket ------------------------------


class RawServer:
    """A one-shot HTTP server on 127.0.0.1 that sends ``head`` + ``body`` then stalls or
    drops the connection."""

    def __init__(self, payload: bytes, then: str) -> None:
        self.payload = payload
        self.then = then
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), b"0"))
            while len(rest) < length:
                rest += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            conn.sendall(b"%x\r\n%s\r\n" % (len(self.payload), self.payload))
            if self.then == "stall":
                self.release.wait(5)
            # "drop": close with the chunked body unfinished

    def close(self) -> None:
        self.release.set()
        self.thread.join(5)
        self.sock.close()


def test_a10_idle_timeout_waiting_for_sse() -> None:
    server = RawServer(frame({"choices": [{"delta": {"content": "Hel"}}]}), then="stall")
    try:
        with make_client(server.base_url, WireApi.CHAT, stream_idle_timeout=0.3) as client:
            seen: list[Event] = []
            with pytest.raises(IdleTimeout, match="idle timeout waiting for SSE"):
                for event in client.stream(ResponsesRequest(model="m", input="hi")):
                    seen.append(event)
            assert OutputTextDelta("Hel") in seen
    finally:
        server.close()


def test_a10_connection_dropped_mid_stream_is_a_transport_error() -> None:
    server = RawServer(frame({"choices": [{"delta": {"content": "Hel"}}]}), then="drop")
    try:
        # A byte-stream failure after the head surfaces as a stream error carrying the cause.
        with make_client(server.base_url, WireApi.CHAT) as client, pytest.raises(
                (StreamError, TransportError), match="connection lost while reading"):
            list(client.stream(ResponsesRequest(model="m", input="hi")))
    finally:
        server.close()


# --- beyond the vectors: usage, ids, reasoning_content ----------------------------------------


def test_usage_chunk_after_stop_lands_in_completed() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
             "prompt_tokens_details": {"cached_tokens": 3},
             "completion_tokens_details": {"reasoning_tokens": 2}}
    events = run(frame(
        {"id": "chatcmpl-1", "choices": [{"delta": {"content": "ok"}}]},
        {"id": "chatcmpl-1", "choices": [{"delta": {}, "finish_reason": "stop"}]},
        {"id": "chatcmpl-1", "choices": [], "usage": usage},
        "[DONE]",
    ))
    assert events[-2] == message_done("ok")
    assert events[-1] == Completed("chatcmpl-1", TokenUsage(10, 3, 5, 2, 15))


def test_usage_without_details_or_total() -> None:
    events = run(frame({"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 4, "completion_tokens": 1}}, "[DONE]"))
    assert events[-1] == Completed("", TokenUsage(4, 0, 1, 0, 5))


@pytest.mark.parametrize("delta", [
    {"reasoning": "thinking"},
    {"reasoning": {"text": "thinking"}},
    {"reasoning": {"content": "thinking"}},
    {"reasoning_content": "thinking"},
])
def test_reasoning_delta_forms(delta: dict[str, Any]) -> None:
    events = run(frame({"choices": [{"delta": delta}]}, finish("stop"), "[DONE]"))
    assert events == [
        OutputItemAdded(Item({"type": "reasoning", "summary": [], "content": []})),
        ReasoningContentDelta("thinking", 0),
        OutputItemDone(Item({"type": "reasoning", "summary": [],
                             "content": [{"type": "reasoning_text", "text": "thinking"}]})),
        Completed("", None),
    ]


def test_reasoning_and_reasoning_content_together_count_once() -> None:
    events = run(frame({"choices": [{"delta": {"reasoning": "r", "reasoning_content": "r"}}]},
                       finish("stop")))
    assert [e for e in events if isinstance(e, ReasoningContentDelta)] == [
        ReasoningContentDelta("r", 0)]


def test_reasoning_content_index_counts_deltas() -> None:
    events = run(frame({"choices": [{"delta": {"reasoning_content": "a"}}]},
                       {"choices": [{"delta": {"reasoning_content": "b"}}]},
                       finish("stop")))
    deltas = [e for e in events if isinstance(e, ReasoningContentDelta)]
    assert deltas == [ReasoningContentDelta("a", 0), ReasoningContentDelta("b", 1)]


# --- bad input -----------------------------------------------------------------------------


def test_chunks_without_choices_are_skipped_but_usage_is_kept() -> None:
    events = run(frame(
        {"object": "chat.completion.chunk"},
        {"choices": "nope"},
        {"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]},
        {"usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
        "[DONE]",
    ))
    assert events == [EMPTY_MESSAGE, OutputTextDelta("x"), message_done("x"),
                      Completed("", TokenUsage(1, 0, 1, 0, 2))]


def test_done_before_any_content_is_an_empty_completed_turn() -> None:
    assert run(frame("[DONE]")) == [Completed("", None)]


def test_empty_body_is_a_truncated_stream() -> None:
    events = run(b"")
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert "stream closed before any chat completion chunk" in str(events[0])


def test_body_cut_before_finish_reason_is_an_error_not_a_completed_turn() -> None:
    events = run(frame({"choices": [{"delta": {"content": "Hel"}}]}))
    assert events[:2] == [EMPTY_MESSAGE, OutputTextDelta("Hel")]
    assert isinstance(events[2], StreamError) and "cut short" in str(events[2])


def test_non_json_lines_are_skipped_and_named_in_the_final_error_when_lenient() -> None:
    events = run(frame("not json at all", {"choices": [{"delta": {"content": "a"}}]}), skip=True)
    assert isinstance(events[-1], StreamError)
    assert "not json at all" in str(events[-1])
    only_garbage = run(frame("<html>bad gateway</html>"), skip=True)
    assert len(only_garbage) == 1 and isinstance(only_garbage[0], StreamError)
    assert "before any chat completion chunk" in str(only_garbage[0])
    assert "<html>" in str(only_garbage[0])
    # Skipped lines do not matter when the turn completes.
    ok = run(frame("garbage", {"choices": [{"delta": {"content": "a"}}]}, finish("stop")),
             skip=True)
    assert ok[-1] == Completed("", None)


def test_non_json_lines_raise_by_default() -> None:
    events = run(frame({"choices": [{"delta": {"content": "a"}}]}, "garbage", finish("stop")))
    assert isinstance(events[-1], UndecodableEvent) and "'garbage'" in str(events[-1])
    assert OutputTextDelta("a") in events and not any(isinstance(e, Completed) for e in events)


def test_malformed_fragments_are_ignored() -> None:
    events = run(frame(
        {"choices": [None, {"delta": {"tool_calls": [None, "x", {"index": -1, "id": 7}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"id": "c", "function": "not a dict"}]}}]},
        {"choices": [{"delta": {"content": None, "reasoning": 5}}]},
        finish("tool_calls"),
    ))
    assert events == [Completed("", None)]  # no call had a name


def test_error_chunk_raises_the_servers_message() -> None:
    events = run(frame({"choices": [{"delta": {"content": "a"}}]},
                       {"error": {"message": "upstream exploded", "code": "server_error"}}))
    assert isinstance(events[-1], StreamError)
    assert "upstream exploded" in str(events[-1])
    overflow = run(frame({"error": {"message": "too long", "code": "context_length_exceeded"}}))
    assert isinstance(overflow[-1], ContextWindowExceeded)


def test_gateway_error_alongside_choices_is_not_a_completed_turn() -> None:
    events = run(frame(
        {"choices": [{"delta": {"content": "par"}}]},
        {"error": {"code": "server_error", "message": "Provider disconnected"},
         "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]},
        "[DONE]"))
    assert events[:2] == [EMPTY_MESSAGE, OutputTextDelta("par")]
    assert isinstance(events[2], StreamError) and "Provider disconnected" in str(events[2])
    assert len(events) == 3
    bare = run(frame({"choices": [{"delta": {}, "finish_reason": "error"}]}, "[DONE]"))
    assert len(bare) == 1 and isinstance(bare[0], StreamError)


# --- real OpenAI streams (public cassettes, read in place) ----------------------------------


def _cassette_bodies(name: str) -> list[str]:
    data = yaml.safe_load((REAL_CASSETTES / name).read_text())
    interactions = data.get("interactions") or data.get("http_interactions")
    return [i["response"]["body"]["string"] for i in interactions]


@pytest.mark.shared("real-cassettes")
def test_real_openai_parallel_tool_call_stream() -> None:
    body = _cassette_bodies("openllmetry/test_open_ai_function_calls_tools_streaming_parallel.yaml")
    events = run(body[-1].encode(), split=97)
    done = [e.item for e in events if isinstance(e, OutputItemDone)]
    assert [i.type for i in done] == ["function_call", "function_call"]
    assert all(i.name == "get_current_weather" for i in done)
    for item in done:
        assert "location" in json.loads(item.arguments)
    assert done[0].call_id != done[1].call_id
    assert isinstance(events[-1], Completed) and events[-1].response_id.startswith("chatcmpl-")


@pytest.mark.shared("real-cassettes")
def test_real_openai_stream_with_usage() -> None:
    first, second = _cassette_bodies("llmrb-llm/llm_chat_stream_tool.yaml")
    calls_turn = run(first.encode())
    call = next(e.item for e in calls_turn if isinstance(e, OutputItemDone))
    assert call.name == "system" and json.loads(call.arguments) == {"command": "date"}
    assert calls_turn[-1] == Completed("chatcmpl-CgEUUVgUkfWuNaAMguKBEsNg2ZELJ",
                                       TokenUsage(62, 0, 13, 0, 75))
    text_turn = run(second.encode(), split=64)
    text = "".join(e.delta for e in text_turn if isinstance(e, OutputTextDelta))
    message = next(e.item for e in text_turn if isinstance(e, OutputItemDone))
    assert text and message.text == text
    assert isinstance(text_turn[-1], Completed) and text_turn[-1].token_usage is not None
    assert text_turn[-1].token_usage.total_tokens == 114
