"""The Responses stream decoder, on the crate's own test vectors (sse/responses.rs, B1-B12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codexapi import (
    Completed,
    ContextWindowExceeded,
    Created,
    InvalidRequest,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    QuotaExceeded,
    RateLimitError,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ServerOverloaded,
    StreamError,
    TokenUsage,
    UsageNotIncluded,
)
from codexapi.errors import UndecodableEvent
from codexapi.sse import Decoder
from codexapi_plugins.wire_responses import ResponsesDecoder, parse_retry_after


def run(body: str | bytes, skip: bool = False) -> list[Any]:
    """Decode a whole body; a raised error is appended as the last element."""
    raw = body.encode() if isinstance(body, str) else body
    sse, dec = Decoder(), ResponsesDecoder(skip_undecodable=skip)
    out: list[Any] = []
    try:
        for msg in sse.feed(raw) + sse.close():
            out.extend(dec.feed(msg))
            if dec.done:
                break
        out.extend(dec.close())
    except Exception as exc:  # the test inspects it
        out.append(exc)
    return out


def ev(obj: dict[str, Any], name: str | None = None) -> str:
    return f"event: {name or obj['type']}\ndata: {json.dumps(obj)}\n\n"


def msg_done(text: str) -> dict[str, Any]:
    return {"type": "response.output_item.done",
            "item": {"type": "message", "role": "assistant",
                     "content": [{"type": "output_text", "text": text}]}}


COMPLETED = {"type": "response.completed", "response": {
    "id": "c", "usage": {"input_tokens": 0, "input_tokens_details": None, "output_tokens": 0,
                         "output_tokens_details": None, "total_tokens": 0}, "output": []}}


def test_b1_parses_items_and_completed() -> None:
    out = run(ev(msg_done("Hello")) + ev(msg_done("World"))
              + ev({"type": "response.completed", "response": {"id": "resp1"}}))
    assert len(out) == 3
    assert isinstance(out[0], OutputItemDone) and out[0].item.text == "Hello"
    assert out[0].item.role == "assistant" and out[0].item.type == "message"
    assert isinstance(out[1], OutputItemDone) and out[1].item.text == "World"
    assert out[2] == Completed("resp1", None)


def test_b2_error_when_missing_completed() -> None:
    out = run(ev(msg_done("Hello")))
    assert len(out) == 2 and isinstance(out[0], OutputItemDone)
    assert isinstance(out[1], StreamError)
    assert str(out[1]) == "stream error: stream closed before response.completed"


RATE_MSG = ("Rate limit reached for gpt-5.1 in organization org-AAA on tokens per min (TPM): "
            "Limit 30000, Used 22999, Requested 12528. Please try again in 11.054s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.")


def failed(error: dict[str, Any] | None) -> str:
    response: dict[str, Any] = {"id": "resp_1", "object": "response", "status": "failed",
                                "usage": None}
    if error is not None:
        response["error"] = error
    return ev({"type": "response.failed", "sequence_number": 3, "response": response})


def test_b3_rate_limit_error_with_delay() -> None:
    out = run(failed({"code": "rate_limit_exceeded", "message": RATE_MSG}))
    assert len(out) == 1 and isinstance(out[0], RateLimitError)
    assert out[0].message == RATE_MSG
    assert out[0].retry_after == pytest.approx(11.054)
    assert out[0].retryable


@pytest.mark.parametrize("message", [
    "Your input exceeds the context window of this model. Please adjust your input and try "
    "again.",
    "Your input exceeds the context window of this model. Please adjust your input and try\n"
    "again.",
])
def test_b4_b5_context_window_is_fatal(message: str) -> None:
    out = run(failed({"code": "context_length_exceeded", "message": message}))
    assert len(out) == 1 and isinstance(out[0], ContextWindowExceeded)
    assert str(out[0]) == "context window exceeded" and not out[0].retryable


def test_b6_quota_exceeded_is_fatal() -> None:
    out = run(failed({"code": "insufficient_quota", "message": "You exceeded your current "
                      "quota, please check your plan and billing details."}))
    assert len(out) == 1 and isinstance(out[0], QuotaExceeded)


@pytest.mark.parametrize(("first", "count", "kind"), [
    (ev({"type": "response.created", "response": {}}), 2, Created),
    (ev(msg_done("hi")), 2, OutputItemDone),
    ("event: response.new_tool_event\n\n", 1, Completed),
])
def test_b7_table_driven_event_kinds(first: str, count: int, kind: type) -> None:
    out = run(first + ev(COMPLETED))
    assert len(out) == count and isinstance(out[0], kind)
    assert out[-1] == Completed("c", TokenUsage(0, 0, 0, 0, 0))


@pytest.mark.parametrize(("message", "delay"), [
    ("Rate limit reached for gpt-5.1 in organization org- on tokens per min (TPM): Limit 1, "
     "Used 1, Requested 19304. Please try again in 28ms. Visit https://platform.openai.com/"
     "account/rate-limits to learn more.", 0.028),
    ("Rate limit reached for gpt-5.1 in organization <ORG> on tokens per min (TPM): Limit "
     "30000, Used 6899, Requested 24050. Please try again in 1.898s. Visit https://platform."
     "openai.com/account/rate-limits to learn more.", 1.898),
    ("Rate limit exceeded. Try again in 35 seconds.", 35.0),
    ("Rate limit exceeded.", None),
])
def test_b8_retry_after_parsing(message: str, delay: float | None) -> None:
    assert parse_retry_after(message) == (pytest.approx(delay) if delay else None)
    out = run(failed({"code": "rate_limit_exceeded", "message": message}))
    assert isinstance(out[0], RateLimitError)
    assert out[0].retry_after == (pytest.approx(delay) if delay else None)


def test_b8_other_codes_get_no_delay() -> None:
    out = run(failed({"code": "server_error", "message": "Please try again in 5s."}))
    assert isinstance(out[0], StreamError) and not isinstance(out[0], RateLimitError)
    assert out[0].delay is None and out[0].retryable


@pytest.mark.parametrize(("error", "kind", "text"), [
    ({"code": "usage_not_included", "message": "x"}, UsageNotIncluded, "usage not included"),
    ({"code": "invalid_prompt", "message": "Invalid prompt: flagged"}, InvalidRequest,
     "invalid request: Invalid prompt: flagged"),
    ({"code": "invalid_prompt"}, InvalidRequest, "invalid request: Invalid request."),
    ({"code": "server_is_overloaded", "message": "busy"}, ServerOverloaded, None),
    ({"code": "slow_down"}, ServerOverloaded, None),
    ({"code": "server_error", "message": "boom"}, StreamError, "stream error: boom"),
    (None, StreamError, "stream error: response.failed event received"),
])
def test_b9_other_failure_codes(error: dict[str, Any] | None, kind: type, text: str | None
                                ) -> None:
    out = run(failed(error))
    assert len(out) == 1 and type(out[0]) is kind
    if text:
        assert str(out[0]) == text


def test_b9_failure_is_terminal_even_if_more_follows() -> None:
    # The crate keeps reading after response.failed (openai/codex#43140: a server that keeps
    # the connection open then masks the failure with an idle timeout); it ends the turn here.
    dec = ResponsesDecoder()
    frame = failed({"code": "server_error", "message": "boom"}).split("data: ", 1)[1]
    out = dec.feed_data([frame.strip(), json.dumps(COMPLETED)])
    assert out == [] and dec.done
    with pytest.raises(StreamError, match="boom"):
        dec.close()


@pytest.mark.parametrize(("details", "reason"), [
    ({"reason": "max_output_tokens"}, "max_output_tokens"), (None, "unknown")])
def test_b10_incomplete(details: dict[str, str] | None, reason: str) -> None:
    out = run(ev({"type": "response.incomplete", "response": {"incomplete_details": details}}))
    assert isinstance(out[0], StreamError)
    assert out[0].message == f"Incomplete response returned, reason: {reason}"


def test_b11_token_usage_mapping() -> None:
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 3},
             "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
             "total_tokens": 15}
    out = run(ev({"type": "response.completed", "response": {"id": "r", "usage": usage}}))
    assert out == [Completed("r", TokenUsage(10, 3, 5, 2, 15))]


def test_b11_malformed_usage_is_a_stream_error() -> None:
    out = run(ev({"type": "response.completed", "response": {"id": "r",
                                                             "usage": {"input_tokens": 1}}}))
    assert isinstance(out[0], StreamError)
    assert "failed to parse ResponseCompleted: missing field `output_tokens`" in out[0].message


@pytest.mark.parametrize(("obj", "expected"), [
    ({"type": "response.output_text.delta", "delta": "Hi"}, OutputTextDelta("Hi")),
    ({"type": "response.reasoning_summary_text.delta", "delta": "think", "summary_index": 0},
     ReasoningSummaryDelta("think", 0)),
    ({"type": "response.reasoning_summary_text.delta", "delta": "think"}, None),
    ({"type": "response.reasoning_text.delta", "delta": "raw", "content_index": 1},
     ReasoningContentDelta("raw", 1)),
    ({"type": "response.reasoning_summary_part.added", "summary_index": 1},
     ReasoningSummaryPartAdded(1)),
    ({"type": "response.created"}, None),
])
def test_b12_deltas(obj: dict[str, Any], expected: Any) -> None:
    out = run(ev(obj) + ev(COMPLETED))
    assert out[:-1] == ([expected] if expected else [])


def test_b12_function_call_item_added() -> None:
    item = {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}
    out = run(ev({"type": "response.output_item.added", "item": item}) + ev(COMPLETED))
    assert isinstance(out[0], OutputItemAdded)
    assert (out[0].item.name, out[0].item.arguments, out[0].item.call_id) == ("shell", "{}", "c1")


def test_unknown_item_types_are_kept_whole() -> None:
    item = {"type": "web_search_call", "id": "ws_1", "status": "completed",
            "action": {"type": "search", "query": "x"}}
    out = run(ev({"type": "response.output_item.done", "item": item}) + ev(COMPLETED))
    assert out[0].item.raw == item and out[0].item.action == {"type": "search", "query": "x"}


def test_completed_ends_the_stream_immediately() -> None:
    out = run(ev(COMPLETED) + ev({"type": "response.output_text.delta", "delta": "late"}))
    assert out == [Completed("c", TokenUsage())]


def test_non_json_and_missing_type_are_skipped_but_explained_when_lenient() -> None:
    out = run("data: hello\n\n" + ev(COMPLETED), skip=True)
    assert out == [Completed("c", TokenUsage())]
    out = run('data: {"not": "typed"}\n\n', skip=True)
    assert isinstance(out[0], StreamError)
    assert "no `type` field" in out[0].message
    out = run('data: {"type": "response.output_text.delta", "delta": "a"\n\n', skip=True)
    assert isinstance(out[-1], StreamError) and "not valid JSON" in out[-1].message


def test_non_json_and_missing_type_raise_by_default() -> None:
    out = run("data: hello\n\n" + ev(COMPLETED))
    assert len(out) == 1 and isinstance(out[0], UndecodableEvent)
    assert "not valid JSON" in out[0].message and "skip_undecodable_events" in out[0].message
    out = run('data: {"not": "typed"}\n\n' + ev(COMPLETED))
    assert isinstance(out[0], UndecodableEvent) and "no `type` field" in out[0].message
