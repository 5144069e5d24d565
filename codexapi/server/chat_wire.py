"""``POST /v1/chat/completions``: a scripted Turn as a real Chat Completions answer.

Streamed, it is the chunk sequence the OpenAI API sends: a first chunk with the role, reasoning
deltas (``delta.reasoning``, as OpenAI-compatible reasoning servers send them), content deltas,
tool calls as ``delta.tool_calls`` fragments keyed by ``index`` (name first, arguments after),
a chunk with ``finish_reason``, a usage chunk with empty ``choices`` when the request asked
for ``stream_options.include_usage``, then ``data: [DONE]``. Unstreamed, one
``chat.completion`` object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from .app import Exchange, route
from .model import ModelInputError, Turn
from .responses_wire import counts, new_id
from .scripted import script_turn
from .transcript import text_of


def _chunk_sse(chunk: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def chat_id() -> str:
    return new_id("chatcmpl").replace("_", "-", 1)  # OpenAI's ids read chatcmpl-...


def usage(turn: Turn) -> dict[str, Any]:
    n = counts(turn)
    return {
        "prompt_tokens": n["input_tokens"],
        "completion_tokens": n["output_tokens"],
        "total_tokens": n["input_tokens"] + n["output_tokens"],
        "prompt_tokens_details": {"cached_tokens": n["cached_tokens"]},
        "completion_tokens_details": {"reasoning_tokens": n["reasoning_tokens"]},
    }


def finish_reason(turn: Turn) -> str:
    return "tool_calls" if turn.tool_calls else "stop"


def chunks(turn: Turn, model: str, include_usage: bool = False) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects for ``turn``, in order."""
    cid = chat_id()
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            out["usage"] = None  # as OpenAI does on every chunk but the last
        return out

    first: dict[str, Any] = {"role": "assistant", "content": "" if not turn.tool_calls else None}
    yield chunk(first)
    for piece in turn.reasoning_chunks():
        yield chunk({"reasoning": piece})
    for piece in turn.text_chunks():
        yield chunk({"content": piece})
    for index, call in enumerate(turn.tool_calls):
        yield chunk({"tool_calls": [{"index": index, "id": call.call_id, "type": "function",
                                     "function": {"name": call.name, "arguments": ""}}]})
        # Arguments arrive in fragments on the real API; two are enough to exercise merging.
        half = len(call.arguments) // 2
        for part in (call.arguments[:half], call.arguments[half:]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, finish_reason(turn))
    if include_usage:
        yield {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": None, "choices": [], "usage": usage(turn)}


def completion(turn: Turn, model: str) -> dict[str, Any]:
    """The unstreamed ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.text or None,
                               "refusal": None}
    if turn.reasoning:
        message["reasoning"] = turn.reasoning
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": c.call_id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}}
            for c in turn.tool_calls
        ]
    return {
        "id": chat_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(turn)}],
        "usage": usage(turn),
    }


@route("POST", "/chat/completions")
def post_chat_completions(ex: Exchange) -> None:
    body = ex.model_request()
    if body is None:
        return
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        ex.send_error(400, "`messages` must be a non-empty array of messages", "invalid_body")
        return
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        ex.send_error(400, "`tools` must be an array", "invalid_body")
        return
    items = [m for m in messages if isinstance(m, dict)]
    fmt = body.get("response_format")
    text_format: Any = fmt
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        text_format = {"type": "json_schema",
                       "schema": spec.get("schema") if isinstance(spec, dict) else None}
    tokens = sum(len(text_of(m.get("content")).split()) for m in items) + 1
    answered, scripted, usage = script_turn(ex, items, body["model"], tokens)
    if answered:
        return
    try:
        turn = scripted or ex.server.model.reply(
            items, [t for t in tools if isinstance(t, dict)],
            reasoning=bool(body.get("reasoning_effort")), text_format=text_format,
            parallel=body.get("parallel_tool_calls") is not False)
    except ModelInputError as exc:
        ex.send_error(400, str(exc), exc.code, param=exc.param)
        return
    # Hosted tools (web search) and freeform calls have no Chat form: they are left out.
    turn = attrs.evolve(turn, tool_calls=tuple(c for c in turn.tool_calls
                                               if c.kind == "function"),
                        usage=usage if usage is not None else turn.usage)
    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        ex.start_stream()
        for c in chunks(turn, body["model"], include_usage):
            ex.write(_chunk_sse(c))
        ex.write(DONE)
        ex.end_stream()
        return
    ex.send_json(200, completion(turn, body["model"]))
