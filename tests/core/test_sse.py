"""The SSE decoder against the WHATWG event-stream rules, and chunk-split invariance."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from codexapi.sse import Decoder, SseMessage, iter_messages


def decode(*chunks: bytes) -> list[SseMessage]:
    return iter_messages(chunks)


def test_event_and_data_pair() -> None:
    body = b'event: response.created\ndata: {"a":1}\n\n'
    assert decode(body) == [SseMessage('{"a":1}', "response.created")]


def test_line_endings_lf_cr_crlf_are_equivalent() -> None:
    lf = b"event: e\ndata: x\n\ndata: y\n\n"
    assert decode(lf) == decode(lf.replace(b"\n", b"\r")) == decode(lf.replace(b"\n", b"\r\n"))
    assert [m.data for m in decode(lf.replace(b"\n", b"\r"))] == ["x", "y"]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n") == [
        SseMessage("a"), SseMessage("b")]


def test_cr_at_chunk_end_dispatches_without_waiting_for_more_bytes() -> None:
    dec = Decoder()
    assert dec.feed(b"data: a\r\r") == [SseMessage("a")]


def test_multiline_data_joined_with_newline() -> None:
    assert decode(b"data: one\ndata: two\ndata\n\n")[0].data == "one\ntwo\n"


def test_comments_and_unknown_fields_ignored() -> None:
    body = b": keep-alive\nfoo: bar\ndata: x\n: another\n\n"
    assert decode(body) == [SseMessage("x")]


def test_field_without_space_and_value_with_colon() -> None:
    assert decode(b"data:a:b\n\n")[0].data == "a:b"
    assert decode(b"data:  two spaces\n\n")[0].data == " two spaces"


def test_id_and_retry_fields() -> None:
    dec = Decoder()
    msgs = dec.feed(b"id: 7\nretry: 1500\ndata: x\n\nretry: soon\ndata: y\n\n")
    assert [(m.id, m.retry) for m in msgs] == [("7", 1500), ("7", 1500)]
    assert dec.last_event_id == "7" and dec.retry == 1500
    assert Decoder().feed(b"id: a\0b\ndata: x\n\n")[0].id is None


def test_bom_dropped_only_at_stream_start_even_split() -> None:
    assert decode(b"\xef\xbb", b"\xbfdata: x\n\n") == [SseMessage("x")]
    # Later in the stream a BOM is part of the field name, so that line is an unknown field.
    assert decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [SseMessage("a")]
    assert decode(b"data: a\n\n", b"\xef\xbb\xbfdata: b\n\n") == [SseMessage("a")]


def test_event_type_without_data_is_not_dispatched() -> None:
    assert decode(b"event: response.new_tool_event\n\n") == []


def test_event_type_reset_after_dispatch() -> None:
    msgs = decode(b"event: a\ndata: 1\n\ndata: 2\n\n")
    assert [m.event for m in msgs] == ["a", "message"]


def test_final_message_without_trailing_blank_line() -> None:
    assert decode(b"data: last") == [SseMessage("last")]
    assert decode(b"event: x\ndata: last\n") == [SseMessage("last", "x")]


def test_utf8_split_inside_a_character() -> None:
    text = "data: héllo ☃\n\n".encode()
    cut = text.index(b"\xe2") + 1
    assert decode(text[:cut], text[cut:]) == [SseMessage("héllo ☃")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: \xff\n\n")[0].data == "\ufffd"


def test_messages_delivered_as_soon_as_complete() -> None:
    dec = Decoder()
    assert dec.feed(b"data: a\n") == []
    assert dec.feed(b"\n") == [SseMessage("a")]
    assert dec.feed(b"data: b") == []
    assert dec.close() == [SseMessage("b")]


_field = st.sampled_from(["data", "event", "id", "retry", ":comment", "foo"])
_value = st.text(alphabet=st.characters(blacklist_characters="\r\n\0",
                                        blacklist_categories=("Cs",)), max_size=12)
_line = st.tuples(_field, _value).map(lambda fv: f"{fv[0]}: {fv[1]}")
_block = st.lists(_line, min_size=1, max_size=4).map(lambda ls: "\n".join(ls) + "\n\n")
_eol = st.sampled_from(["\n", "\r", "\r\n"])


@settings(max_examples=300, deadline=None)
@given(blocks=st.lists(_block, max_size=8), eol=_eol, bom=st.booleans(),
       cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_splitting_anywhere_yields_same_messages(
    blocks: list[str], eol: str, bom: bool, cuts: list[int]
) -> None:
    body = ("".join(blocks)).replace("\n", eol).encode()
    if bom:
        body = b"\xef\xbb\xbf" + body
    whole = decode(body)
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert decode(*pieces) == whole
    byte_by_byte = [body[i : i + 1] for i in range(len(body))]
    assert decode(*byte_by_byte) == whole
