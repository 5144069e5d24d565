"""Fuzzing the decoders: random bytes and mutated real streams, split at random points, through
the SSE decoder and both wire decoders (the same ResponseStream path the client uses).

Only two outcomes are acceptable: well-formed events, or a typed codexapi error. Never a bare
KeyError/TypeError/UnicodeDecodeError, never an event carrying the wrong types.
"""

from __future__ import annotations

from functools import cache

import attrs
import pytest
from conftest import SHARED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.recording_transport import stream_response

from codexapi import (
    CodexApiError,
    Completed,
    Event,
    Item,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TokenUsage,
)
from codexapi.sse import Decoder, SseMessage, SseStreamDecoder
from codexapi.stream import ResponseStream
from codexapi.testing.formats import load_interactions
from codexapi_plugins.wire_chat import ChatDecoder
from codexapi_plugins.wire_responses import ResponsesDecoder

REAL = SHARED / "real-cassettes"
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@cache
def real_streams() -> tuple[tuple[str, bytes], ...]:
    """(wire, body) of every recorded SSE response in the shared real cassettes."""
    out: list[tuple[str, bytes]] = []
    for path in sorted(REAL.rglob("*.yaml")):
        for it in load_interactions(path):
            if it.is_sse and it.status == 200:
                wire = "chat" if "chat/completions" in it.uri else "responses"
                out.append((wire, it.decoded_body))
    return tuple(out)


@pytest.mark.shared("real-cassettes")
def test_real_streams_were_found() -> None:
    wires = {wire for wire, _ in real_streams()}
    assert wires == {"chat", "responses"} and len(real_streams()) >= 20


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return [p for p in pieces if p]


def check_event(event: Event) -> None:
    assert isinstance(event, Event), event
    if isinstance(event, OutputTextDelta | ReasoningSummaryDelta | ReasoningContentDelta):
        assert isinstance(event.delta, str)
    if isinstance(event, ReasoningSummaryDelta | ReasoningSummaryPartAdded):
        assert isinstance(event.summary_index, int)
    if isinstance(event, ReasoningContentDelta):
        assert isinstance(event.content_index, int)
    if isinstance(event, OutputItemAdded | OutputItemDone):
        assert isinstance(event.item, Item) and isinstance(event.item.raw, dict)
        assert isinstance(event.item.type, str)
        assert isinstance(event.item.text, str)
    if isinstance(event, Completed):
        assert isinstance(event.response_id, str)
        usage = event.token_usage
        assert usage is None or isinstance(usage, TokenUsage)
        if usage is not None:
            assert all(isinstance(v, int) for v in attrs.astuple(usage))


def run_stream(wire: str, chunks: list[bytes]) -> None:
    decoder = ChatDecoder() if wire == "chat" else ResponsesDecoder()
    response = stream_response(chunks)
    stream = ResponseStream(response, SseStreamDecoder(decoder))
    try:
        for event in stream:
            check_event(event)
    except CodexApiError:
        pass  # typed: acceptable
    assert response.closed, "the stream must release its connection however it ends"


def run_sse(chunks: list[bytes]) -> None:
    messages = []
    datas = []
    dec, dec_data = Decoder(), Decoder()
    for chunk in chunks:
        messages.extend(dec.feed(chunk))
        datas.extend(dec_data.feed_data(chunk))
    messages.extend(dec.close())
    datas.extend(dec_data.close_data())
    for message in messages:
        assert isinstance(message, SseMessage)
        assert isinstance(message.data, str) and isinstance(message.event, str)
    assert all(isinstance(d, bytes) for d in datas)
    # Both APIs see the same messages, whatever the split.
    assert len(datas) == len(messages)


cuts = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=12)


@FUZZ
@given(data=st.binary(max_size=2048), cut=cuts)
def test_random_bytes_through_sse(data: bytes, cut: list[int]) -> None:
    run_sse(split(data, cut))


# Byte soup that looks like SSE: field names, separators, JSON fragments and event types.
TOKENS = [b"data: ", b"event: ", b"id: ", b"retry: 5", b":", b"\n", b"\r\n", b"\r", b"\n\n",
          b"{", b"}", b"[", b"]", b'"', b",", b"null", b"1", b"-1", b"1e999", b'"type"',
          b'"response.completed"', b'"response.output_text.delta"', b'"delta"', b'"response"',
          b'"response.failed"', b'"error"', b'"code"', b'"choices"', b'"finish_reason"',
          b'"tool_calls"', b'"index"', b'"usage"', b'"input_tokens"', b'"item"', b"[DONE]",
          b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", "é".encode()]
sse_soup = st.lists(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=8)),
                    max_size=80).map(b"".join)


@FUZZ
@given(data=st.one_of(st.binary(max_size=2048), sse_soup), cut=cuts,
       wire=st.sampled_from(["responses", "chat"]))
def test_random_bytes_through_wire_decoders(data: bytes, cut: list[int], wire: str) -> None:
    chunks = split(data, cut)
    run_sse(chunks)
    run_stream(wire, chunks)


@st.composite
def mutated_real_stream(draw: st.DrawFn) -> tuple[str, bytes]:
    wire, body = draw(st.sampled_from(real_streams()))
    data = bytearray(body)
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if not data:
            break
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate",
                                     "token"]))
        if kind == "flip":
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif kind == "delete":
            del data[at:at + draw(st.integers(min_value=1, max_value=64))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "duplicate":
            size = draw(st.integers(min_value=1, max_value=256))
            data[at:at] = data[at:at + size]
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.sampled_from(TOKENS))
    # Exercise each wire's decoder on the other wire's bytes too.
    if draw(st.booleans()):
        wire = "chat" if wire == "responses" else "responses"
    return wire, bytes(data)


@pytest.mark.shared("real-cassettes")
@settings(FUZZ, max_examples=300)
@given(case=mutated_real_stream(), cut=cuts)
def test_mutated_real_streams(case: tuple[str, bytes], cut: list[int]) -> None:
    wire, data = case
    chunks = split(data, cut)
    run_sse(chunks)
    run_stream(wire, chunks)


@pytest.mark.shared("real-cassettes")
@pytest.mark.parametrize("index", range(8))
def test_unmutated_real_streams_complete(index: int) -> None:
    """The baseline the mutations start from: each real stream decodes without error."""
    streams = real_streams()
    for wire, body in streams[index::8]:
        decoder = ChatDecoder() if wire == "chat" else ResponsesDecoder()
        events = list(ResponseStream(stream_response([body]), SseStreamDecoder(decoder)))
        for event in events:
            check_event(event)
        assert any(isinstance(e, Completed) for e in events)


HEADER_NAMES = ["retry-after", "Retry-After", "retry-after-ms", "x-codex-primary-used-percent",
                "x-codex-primary-window-minutes", "x-codex-primary-reset-at",
                "x-codex-secondary-used-percent", "x-codex-secondary-resets-in-seconds",
                "x-codex-credits-has-credits", "x-codex-credits-unlimited",
                "x-codex-credits-balance", "x-codex-limit-name",
                "x-codex-other-primary-used-percent",
                "x-ratelimit-limit-requests", "x-ratelimit-reset-tokens",
                "x-ratelimit-remaining-tokens"]
header_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["1e999", "-1", "nan", "inf", "0", "1.5", "true",
                     "Wed, 21 Oct 2015 07:28:00 GMT",
                     "Fri, 31 Dec 99999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 -0000",
                     "6m0s", "1h2m", "999999999999999999999h", "20ms"]))


@FUZZ
@given(headers=st.dictionaries(st.sampled_from(HEADER_NAMES), header_values, max_size=8),
       message=st.text(max_size=60))
def test_header_parsers_take_any_value(headers: dict[str, str], message: str) -> None:
    from codexapi import ApiError, RetryPolicy
    from codexapi.ratelimits import (
        OpenAILimits,
        parse_rate_limit_updates,
        retry_after_seconds,
        snapshot_if_any,
    )
    from codexapi_plugins import retry

    for snap in parse_rate_limit_updates(headers):
        for window in (snap.primary, snap.secondary):
            assert window is None or isinstance(window.used_percent, float)
    snapshot_if_any(headers)
    OpenAILimits.from_headers(headers)
    hint = retry_after_seconds(headers)
    assert hint is None or hint >= 0.0
    policy = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=9.0)
    delay = retry.retry_delay(policy, 1, ApiError(429, message, headers=headers))
    assert delay is not None and 0.0 <= delay <= 9.0
