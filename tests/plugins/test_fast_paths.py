"""The hot path's shortcuts give exactly what the general code gives.

The SSE decoder matches runs of ordinary messages with a regex and hands data-only consumers raw
bytes; the Responses decoder takes a chunk's worth of data at once and builds text deltas
without attrs' frozen __init__; ResponseStream uses that batch path when a decoder offers it.
Each is checked here against the general path on the same input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.recording_transport import stream_response

from codexapi import OutputTextDelta, ResponseStream, StreamError
from codexapi.events import new_output_text_delta
from codexapi.sse import Decoder, SseMessage, SseStreamDecoder, iter_messages
from codexapi_plugins.wire_responses import ResponsesDecoder


def feed_all(pieces: list[bytes]) -> list[SseMessage]:
    return iter_messages(pieces)


def feed_data_all(pieces: list[bytes]) -> list[bytes]:
    dec = Decoder()
    out: list[bytes] = []
    for piece in pieces:
        out.extend(dec.feed_data(piece))
    return out + dec.close_data()


_value = st.text(alphabet=st.characters(blacklist_characters="\r\n\0",
                                        blacklist_categories=("Cs",)), max_size=10)
_simple = st.tuples(st.one_of(st.none(), _value), _value).map(
    lambda ed: (f"event: {ed[0]}\n" if ed[0] is not None else "") + f"data: {ed[1]}\n\n")
_other = st.sampled_from([": ping\n\n", "id: 4\ndata: x\n\n", "data:nospace\n\n",
                          "data: a\ndata: b\n\n", "retry: 10\n\n", "event: only\n\n",
                          "\n", "data: tail",
                          # Data-only runs are cut at their separators: data that look like one.
                          "data: \n\n", "data: data: x\n\n", "data: a\n\n\n",
                          "data: \n\ndata: \n\n", "data: x\n\nevent: e\ndata: y\n\n"])


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(body) + 1) for c in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(blocks=st.lists(st.one_of(_simple, _simple, _other), max_size=10),
       cuts=st.lists(st.integers(min_value=0, max_value=5_000), max_size=8))
def test_regex_fast_path_equals_line_parser(blocks: list[str], cuts: list[int]) -> None:
    body = "".join(blocks).encode()
    # A leading comment block sends the first chunk through the line parser; messages must not
    # depend on which path decoded them.
    general = feed_all([b": force the line parser\n\n" + body])
    assert feed_all([body]) == general
    assert feed_all(split(body, cuts)) == general
    assert feed_data_all(split(body, cuts)) == [m.data.encode() for m in general]


def test_feed_data_passes_bytes_through_undecoded() -> None:
    assert feed_data_all([b'data: {"a":"\xc3\xa9"}\n\n']) == [b'{"a":"\xc3\xa9"}']


def test_large_message_in_many_chunks_is_joined_once() -> None:
    dec = Decoder()
    data = "x" * 50_000
    body = f"data: {data}\n\n".encode()
    pieces = [body[i:i + 100] for i in range(0, len(body), 100)]
    out = [m for p in pieces for m in dec.feed(p)]
    assert out == [SseMessage(data)]


def test_fast_text_delta_is_an_ordinary_frozen_event() -> None:
    fast, slow = new_output_text_delta("hi"), OutputTextDelta("hi")
    assert type(fast) is OutputTextDelta and fast == slow and hash(fast) == hash(slow)
    assert repr(fast) == repr(slow) and attrs.asdict(fast) == attrs.asdict(slow)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.delta = "changed"  # type: ignore[misc]


def ev(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


DELTA = ev({"type": "response.output_text.delta", "delta": "a"})
COMPLETED = ev({"type": "response.completed", "response": {"id": "r1"}})
MESSAGES = [
    ev({"type": "response.created", "response": {}}),
    DELTA,
    b"not json",
    ev({"type": ["unhashable"]}),
    ev({"type": "response.output_text.delta", "delta": 5}),
    ev({"type": "response.output_item.done", "item": {"type": "message", "content": []}}),
    ev({"type": "response.reasoning_summary_text.delta", "delta": "r", "summary_index": 0}),
    b'{"type":"response.output_text.delta","delta":"\xff"}',
    COMPLETED,
    DELTA,
]


def test_batch_feed_equals_feed_per_message_and_stops_at_completed() -> None:
    one = ResponsesDecoder(skip_undecodable=True)
    expected: list[Any] = []
    for data in MESSAGES:
        expected.extend(one.feed(SseMessage(data.decode("utf-8", "replace"))))
        if one.done:
            break
    batch = ResponsesDecoder(skip_undecodable=True)
    assert batch.feed_data(MESSAGES) == expected
    assert batch.done and expected[-1].response_id == "r1"
    assert OutputTextDelta("\ufffd") in expected  # invalid UTF-8 reads as the text path's


def test_skipped_event_is_explained_from_either_path() -> None:
    for feed in (lambda d: d.feed_data([b"{bad"]), lambda d: d.feed(SseMessage("{bad"))):
        dec = ResponsesDecoder(skip_undecodable=True)
        feed(dec)
        with pytest.raises(StreamError, match=r"not valid JSON: '\{bad'"):
            dec.close()


class _PerMessageOnly:
    """A third-party-shaped decoder: ``feed``/``close``/``done`` only, no batch method."""

    def __init__(self) -> None:
        self.inner = ResponsesDecoder(skip_undecodable=True)

    @property
    def done(self) -> bool:
        return self.inner.done

    def feed(self, message: SseMessage) -> list[Any]:
        return self.inner.feed(message)

    def close(self) -> list[Any]:
        return self.inner.close()


def LENIENT() -> ResponsesDecoder:
    return ResponsesDecoder(skip_undecodable=True)


def test_stream_batch_path_equals_per_message_path() -> None:
    body = b"".join(b"event: x\ndata: " + m + b"\n\n" for m in MESSAGES)
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
    batch = list(ResponseStream(stream_response(pieces), SseStreamDecoder(LENIENT())))
    general = list(ResponseStream(stream_response(pieces), SseStreamDecoder(_PerMessageOnly())))
    assert batch == general and len(batch) == 6
    stream = ResponseStream(stream_response(pieces), SseStreamDecoder(LENIENT()))
    assert next(stream) == batch[0]
    assert list(stream) == batch[1:]  # next() and for-loops share one iterator


def test_a_streamed_turn_never_imports_cattrs() -> None:
    # cattrs costs ~25 ms to import; building bodies from our own models does not need it.
    code = (
        "import sys\n"
        "from codexapi.server import EmbeddedServer\n"
        "from codexapi import (Client, FunctionCall, FunctionCallOutput, Message, Provider,\n"
        "                      ReasoningConfig, ResponsesRequest)\n"
        "items = [Message(role='user', content='hi'), FunctionCall(name='f', arguments='{}',\n"
        "         call_id='c1'), FunctionCallOutput(call_id='c1', output='ok')]\n"
        "with EmbeddedServer() as s, Client(Provider(base_url=s.base_url),\n"
        "                                   load_entrypoints=False) as c:\n"
        "    req = ResponsesRequest(model='m', input=items, reasoning=ReasoningConfig('low'))\n"
        "    assert c.stream(req).collect().text\n"
        "print('cattrs' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, check=True)
    assert out.stdout.strip() == "False"


def test_request_items_match_the_full_converter() -> None:
    from codexapi import FunctionCall, FunctionCallOutput, Message, Reasoning, TextControls
    from codexapi.convert import get_converter, item_to_json, options_to_json

    items = [Message(role="assistant", content="a"),
             Message(role="user", content=[{"type": "input_text", "text": "x"}], id="m1"),
             FunctionCall(name="f", arguments="{}", call_id="c", id="fc1"),
             FunctionCallOutput(call_id="c", output=[{"type": "input_text", "text": "o"}]),
             Reasoning(summary=["s"], content=["t"], encrypted_content="e", id="r1")]
    converter = get_converter()
    for item in items:
        assert item_to_json(item) == converter.unstructure(item)
    text = TextControls(verbosity="low")
    assert options_to_json(text) == converter.unstructure(text) == {"verbosity": "low"}


# --- other_events: a read of nothing but plain text deltas is told by a count ----------------

_RESPONSES_PAYLOADS = [
    DELTA, DELTA, DELTA,
    ev({"type": "response.output_text.delta", "delta": "b", "safety_buffering": {
        "use_cases": ["x"], "reasons": ["y"]}}),
    ev({"type": "response.output_text.delta", "delta": 5}),
    ev({"type": "response.output_text.delta", "delta": "c",
        "response": {"headers": {"openai-model": "gpt-x"}}}),
    ev({"type": "response.created", "response": {"id": "r1"}}),
    ev({"type": "response.output_item.added", "item": {"type": "message", "content": []}}),
    ev({"type": "response.output_item.done", "item": {"type": "message", "content": []}}),
    ev({"type": "response.reasoning_summary_text.delta", "delta": "r", "summary_index": 0}),
    ev({"type": "codex.rate_limits", "rate_limits": {"primary": {"used_percent": 1.0}}}),
    ev({"type": "response.metadata", "metadata": {"type": "safety_buffering",
                                                  "use_cases": ["x"], "reasons": ["y"]}}),
    ev({"type": "something.new", "x": 1}),
    b"not json", b'{"type":"response.output_text.delta","delta":"\xff"}', b"[DONE]",
]


def _plain(events: list[Any]) -> bool:
    return all(type(e) is OutputTextDelta for e in events)


@settings(max_examples=300, deadline=None)
@given(reads=st.lists(st.lists(st.sampled_from(_RESPONSES_PAYLOADS), max_size=6), max_size=8))
def test_responses_other_events_stays_put_only_for_plain_deltas(
        reads: list[list[bytes]]) -> None:
    dec = ResponsesDecoder(skip_undecodable=True)
    for read in reads:
        before = dec.other_events
        events = dec.feed_data(read)
        if dec.other_events == before:
            assert _plain(events), events


_CHAT_CHUNKS = [
    {"choices": [{"delta": {"content": "a"}}]},
    {"choices": [{"delta": {"content": "a"}}]},
    {"choices": [{"delta": {"role": "assistant", "content": "b"}}]},
    {"choices": [{"delta": {"reasoning": "think"}}]},
    {"choices": [{"delta": {"content": "c"}, "finish_reason": "stop"}]},
    {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {
        "name": "f", "arguments": "{}"}}]}}]},
    {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
    {"id": "chatcmpl-1", "choices": [{"delta": {"content": ""}}]},
]


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.sampled_from(range(len(_CHAT_CHUNKS) + 2)), max_size=14))
def test_chat_other_events_stays_put_only_for_plain_deltas(chunks: list[int]) -> None:
    from codexapi_plugins.wire_chat import ChatDecoder

    dec = ChatDecoder(skip_undecodable=True)
    for index in chunks:
        data = (json.dumps(_CHAT_CHUNKS[index]) if index < len(_CHAT_CHUNKS)
                else ["[DONE]", "{not json"][index - len(_CHAT_CHUNKS)])
        before = dec.other_events
        try:
            events = dec.feed(SseMessage(data))
        except StreamError:
            return  # a turn that failed (e.g. text after finish_reason "length") ends here
        if dec.other_events == before:
            assert _plain(events), events


# --- runs of text deltas are built at once: the same events as one message at a time ----------

_TEXTS = [ev({"type": "response.output_text.delta", "delta": t, "sequence_number": n})
          for n, t in enumerate(["x", "", "é", "two words"])]


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(st.sampled_from(_TEXTS * 4 + _RESPONSES_PAYLOADS + [COMPLETED]),
                         max_size=30),
       cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=6))
def test_responses_reads_of_any_size_equal_messages_one_by_one(
        payloads: list[bytes], cuts: list[int]) -> None:
    one = LENIENT()
    expected: list[Any] = []
    for data in payloads:
        expected.extend(one.feed(SseMessage(data.decode("utf-8", "replace"))))
        if one.done:
            break
    batch = LENIENT()
    got: list[Any] = []
    points = sorted({c % (len(payloads) + 1) for c in cuts})
    for a, b in zip([0, *points], [*points, len(payloads)], strict=True):
        got.extend(batch.feed_data(payloads[a:b]))
        if batch.done:
            break
    assert got == expected
    assert [type(e) for e in got] == [type(e) for e in expected]
    # (position is not compared: a read takes the sequence_number of its last event only, so
    # a read ending in an event without one forgets an earlier one; the API numbers them all.)
    assert (batch.done, batch.skipped, batch.other_events) == (
        one.done, one.skipped, one.other_events)


def test_many_text_deltas_built_at_once_are_ordinary_events() -> None:
    from codexapi.events import new_output_text_deltas

    texts = ["a", "", "é", "a"]
    fast = new_output_text_deltas(texts)
    assert fast == [OutputTextDelta(t) for t in texts] and new_output_text_deltas([]) == []
    assert all(type(e) is OutputTextDelta for e in fast) and hash(fast[0]) == hash(fast[3])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast[0].delta = "changed"  # type: ignore[misc]


# --- Chat: reads decoded in one call give what one message at a time gives ---------------------

_CHAT_TEXT = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
              "choices": [{"index": 0, "delta": {"content": "t"}, "logprobs": None,
                           "finish_reason": None}]}
_CHAT_DATAS = [
    json.dumps(_CHAT_TEXT), json.dumps(_CHAT_TEXT).replace('"t"', '"\\u00e9 x"'),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": {"role": "assistant", "content": "r"}}]}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": {"content": "a"}},
                                          {"delta": {"content": "b"}}]}),
    json.dumps({**_CHAT_TEXT, "error": {"message": "boom"}}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": {"content": "x"},
                                           "finish_reason": "length"}]}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": {"content": "m"},
                                           "message": {"reasoning": "why"}}]}),
    json.dumps({**_CHAT_TEXT, "usage": {"prompt_tokens": 1, "completion_tokens": 2,
                                        "total_tokens": 3}}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": {"content": "n", "refusal": "no"}}]}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": {"content": ""}}]}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": {"content": 7}}]}),
    json.dumps({**_CHAT_TEXT, "choices": "none"}),
    # Choices of another length or shape: none, an object of one key, a string of one.
    json.dumps({**_CHAT_TEXT, "choices": []}),
    json.dumps({**_CHAT_TEXT, "choices": {"c": {"delta": {"content": "o"}}}}),
    json.dumps({**_CHAT_TEXT, "choices": "c"}),
    json.dumps({**_CHAT_TEXT, "choices": [[{"delta": {"content": "l"}}]]}),
    # Deltas that are not objects.
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": "c"}]}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": ["role", "content"]}]}),
    json.dumps({**_CHAT_TEXT, "choices": [{"delta": None}]}),
    *(json.dumps(c) for c in _CHAT_CHUNKS),
    '{"choices":[{"delta":{"content":"\udcff"}}]}', "[DONE]", "{not json", "[1, 2]",
    '"text"',
]


class _ChatPerMessage:
    """The Chat decoder seen without its batch method (feed/close/done only)."""

    def __init__(self) -> None:
        from codexapi_plugins.wire_chat import ChatDecoder

        self.inner = ChatDecoder(skip_undecodable=True)

    @property
    def done(self) -> bool:
        return self.inner.done

    def feed(self, message: SseMessage) -> list[Any]:
        return self.inner.feed(message)

    def close(self) -> list[Any]:
        return self.inner.close()


def _run(decoder: Any, pieces: list[bytes]) -> tuple[list[Any], str | None]:
    events: list[Any] = []
    try:
        for piece in pieces:
            events.extend(decoder.feed_data(piece))
            if decoder.done:
                break
        events.extend(decoder.close())
    except Exception as exc:  # the same error, after the same events
        return events, f"{type(exc).__name__}: {exc}"
    return events, None


@settings(max_examples=400, deadline=None)
@given(picks=st.lists(st.sampled_from(range(len(_CHAT_DATAS))), max_size=40),
       cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=6))
def test_chat_reads_of_any_size_equal_messages_one_by_one(picks: list[int],
                                                          cuts: list[int]) -> None:
    from codexapi_plugins.wire_chat import ChatDecoder

    first, *rest = (b"data: " + _CHAT_DATAS[i].encode("utf-8", "surrogateescape") + b"\n\n"
                    for i in [0, *picks])
    # The first chunk announces the message; the reads after it may take the batch path. The
    # turn ends in [DONE], so what a chunk left in the message and usage shows in its events.
    pieces = [first, *split(b"".join(rest) + b"data: [DONE]\n\n", cuts)]
    batch = SseStreamDecoder(ChatDecoder(skip_undecodable=True))
    assert hasattr(batch.inner, "feed_data")
    got = _run(batch, pieces)
    expected = _run(SseStreamDecoder(_ChatPerMessage()), pieces)
    assert got == expected
    assert [type(e) for e in got[0]] == [type(e) for e in expected[0]]
