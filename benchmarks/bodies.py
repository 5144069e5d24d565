"""Pre-rendered stream bodies: the same bytes go to every client in a case.

The events carry the fields the real API sends (ids, indexes, sequence numbers, empty logprobs),
so each JSON object is as large as in production and openai-python's models have every field
they expect.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

WORDS = ("The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog. ",
         "Zwölf ", "Boxkämpfer ", "jagen ", "Viktor ", "quer ", "über ", "den ", "Sylter ",
         "Deich. ")

RESPONSE_ID = "resp_0123456789abcdef0123456789abcdef"
MESSAGE_ID = "msg_0123456789abcdef0123456789abcdef"
CHAT_ID = "chatcmpl-0123456789abcdefABCDEFGHIJ"
MODEL = "gpt-5-codex"


def _sse(obj: dict[str, object], event: bool = True) -> bytes:
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {obj['type']}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def _response(status: str, output: list[object], usage: object = None) -> dict[str, object]:
    return {"id": RESPONSE_ID, "object": "response", "created_at": 1764000000,
            "status": status, "model": MODEL, "output": output, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "usage": usage}


def responses_head() -> bytes:
    """``response.created`` and the message item's start: what comes before the deltas."""
    item = {"id": MESSAGE_ID, "type": "message", "status": "in_progress", "role": "assistant",
            "content": []}
    return b"".join([
        _sse({"type": "response.created", "sequence_number": 0,
              "response": _response("in_progress", [])}),
        _sse({"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
              "item": item}),
    ])


def responses_delta(seq: int) -> bytes:
    return _sse({"type": "response.output_text.delta", "sequence_number": seq,
                 "item_id": MESSAGE_ID, "output_index": 0, "content_index": 0,
                 "delta": WORDS[seq % len(WORDS)], "logprobs": []})


def responses_tail(text: str, seq: int) -> bytes:
    """The message item's end and ``response.completed``."""
    item = {"id": MESSAGE_ID, "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}
    usage = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 19}
    return b"".join([
        _sse({"type": "response.output_item.done", "sequence_number": seq, "output_index": 0,
              "item": item}),
        _sse({"type": "response.completed", "sequence_number": seq + 1,
              "response": _response("completed", [item], usage)}),
    ])


def responses_body(deltas: int) -> bytes:
    """A whole Responses stream with ``deltas`` text deltas (``deltas + 4`` events)."""
    parts = [responses_head()]
    parts.extend(responses_delta(i + 2) for i in range(deltas))
    # The final item repeats only a short text: a huge item would measure JSON, not streaming.
    parts.append(responses_tail("".join(WORDS), deltas + 2))
    return b"".join(parts)


def responses_events(deltas: int) -> int:
    return deltas + 4


def chat_chunk(n: int, content: str | None = None, finish: str | None = None,
               usage: object = None, choices: bool = True) -> bytes:
    delta: dict[str, object] = {} if content is None else {"content": content}
    if n == 0:
        delta = {"role": "assistant", "content": "", "refusal": None}
    obj: dict[str, object] = {"id": CHAT_ID, "object": "chat.completion.chunk",
                              "created": 1764000000, "model": MODEL,
                              "system_fingerprint": "fp_0123456789", "service_tier": "default"}
    obj["choices"] = ([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                      if choices else [])
    if usage is not None:
        obj["usage"] = usage
    data = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def chat_body(chunks: int) -> bytes:
    """A Chat Completions stream: role chunk, ``chunks`` content chunks, finish, ``[DONE]``."""
    parts = [chat_chunk(0)]
    parts.extend(chat_chunk(i + 1, WORDS[i % len(WORDS)]) for i in range(chunks))
    parts.append(chat_chunk(chunks + 1, finish="stop"))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def chunked(body: bytes, size: int = 64 * 1024) -> list[bytes]:
    """``body`` cut into ``size``-byte pieces, as a socket read of that size would return."""
    return [body[i:i + size] for i in range(0, len(body), size)]


def per_event(body: bytes) -> list[bytes]:
    """``body`` cut after each message, as reads return it when events trickle in."""
    return [part + b"\n\n" for part in body.split(b"\n\n") if part]


def iter_responses_body(deltas: int) -> Iterator[bytes]:
    """The same body as :func:`responses_body`, generated in ~1 MiB blocks (huge streams)."""
    yield responses_head()
    block: list[bytes] = []
    size = 0
    for i in range(deltas):
        part = responses_delta(i + 2)
        block.append(part)
        size += len(part)
        if size >= 1 << 20:
            yield b"".join(block)
            block, size = [], 0
    if block:
        yield b"".join(block)
    yield responses_tail("".join(WORDS), deltas + 2)


MODELS_BODY = json.dumps({"object": "list", "data": [
    {"id": name, "object": "model", "created": 1764000000, "owned_by": "system"}
    for name in ("gpt-5", "gpt-5-codex", "gpt-5-mini", "gpt-4.1", "gpt-4o", "o3", "o4-mini")
]}).encode()
