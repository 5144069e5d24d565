"""Rendering a scripted Turn as a real Responses API event stream (the event sequence the
OpenAI API sends: created, in_progress, output items with content parts and deltas, completed)."""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any

from .model import Turn


def new_id(prefix: str) -> str:
    """``prefix_`` and 128 random bits: a response id is all a client needs to read the
    response back, so it must not be guessable (as a counter's next value is)."""
    return f"{prefix}_{secrets.token_hex(16)}"


def sse(event: Mapping[str, Any]) -> bytes:
    """One SSE message in the API's framing: ``event: <type>`` then ``data: <json>``."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def counts(turn: Turn) -> dict[str, int]:
    """(input, output, cached, reasoning) token counts: counted, or as a script set them."""
    out = {"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens,
           "cached_tokens": 0, "reasoning_tokens": len(turn.reasoning.split())}
    out.update(turn.usage or {})
    return out


def usage(turn: Turn) -> dict[str, Any]:
    n = counts(turn)
    return {
        "input_tokens": n["input_tokens"],
        "input_tokens_details": {"cached_tokens": n["cached_tokens"]},
        "output_tokens": n["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": n["reasoning_tokens"]},
        "total_tokens": n["input_tokens"] + n["output_tokens"],
    }


def output_items(turn: Turn) -> list[dict[str, Any]]:
    """The finished output items of a turn (what ``response.output`` holds)."""
    items: list[dict[str, Any]] = []
    if turn.reasoning:
        item: dict[str, Any] = {
            "id": new_id("rs"), "type": "reasoning",
            "summary": [{"type": "summary_text", "text": turn.reasoning}],
            "content": [{"type": "reasoning_text", "text": turn.reasoning}]}
        if turn.encrypted_reasoning:
            item["encrypted_content"] = turn.encrypted_reasoning
        items.append(item)
    if turn.compaction:
        items.append({"id": new_id("cmp"), "type": "compaction",
                      "encrypted_content": turn.compaction})
    for call in turn.tool_calls:
        if call.kind == "web_search":
            items.append({"id": call.call_id, "type": "web_search_call", "status": "completed",
                          "action": {"type": "search", "query": call.arguments}})
        elif call.kind == "custom":
            items.append({"id": new_id("ctc"), "type": "custom_tool_call",
                          "status": "completed", "name": call.name, "input": call.arguments,
                          "call_id": call.call_id})
        else:
            item = {"id": new_id("fc"), "type": "function_call", "status": "completed",
                    "name": call.name, "arguments": call.arguments, "call_id": call.call_id}
            if call.namespace:
                item["namespace"] = call.namespace
            items.append(item)
    if turn.text:
        items.append({"id": new_id("msg"), "type": "message", "status": "completed",
                      "role": "assistant",
                      "content": [{"type": "output_text", "text": turn.text, "annotations": []}]})
    return items


def response_object(rid: str, model: str, status: str, output: list[Any],
                    turn: Turn | None, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    obj = {"id": rid, "object": "response", "created_at": int(time.time()), "status": status,
           "model": model, "output": output, "usage": usage(turn) if turn else None}
    if meta:
        obj.update(meta)
    return obj


#: Request fields echoed in the response object, as the API does.
ECHOED = ("background", "store", "text", "metadata", "previous_response_id", "instructions",
          "tool_choice", "parallel_tool_calls")


def echoed(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ECHOED if k in body}


def events(turn: Turn, model: str, rid: str | None = None,
           meta: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The full event sequence for ``turn``, ending with ``response.completed``; ``meta`` is
    merged into each response object."""
    rid = rid or new_id("resp")
    seq = itertools.count()
    if meta and meta.get("background"):
        yield {"type": "response.queued", "sequence_number": next(seq),
               "response": response_object(rid, model, "queued", [], None, meta)}
    yield {"type": "response.created", "sequence_number": next(seq),
           "response": response_object(rid, model, "in_progress", [], None, meta)}
    yield {"type": "response.in_progress", "sequence_number": next(seq),
           "response": response_object(rid, model, "in_progress", [], None, meta)}
    done: list[dict[str, Any]] = []
    for index, item in enumerate(output_items(turn)):
        kind = item["type"]
        if kind == "reasoning":
            yield {"type": "response.output_item.added", "sequence_number": next(seq),
                   "output_index": index, "item": {**item, "summary": [], "content": []}}
            yield {"type": "response.reasoning_summary_part.added", "sequence_number": next(seq),
                   "item_id": item["id"], "output_index": index, "summary_index": 0,
                   "part": {"type": "summary_text", "text": ""}}
            for chunk in turn.reasoning_chunks():
                yield {"type": "response.reasoning_summary_text.delta",
                       "sequence_number": next(seq), "item_id": item["id"],
                       "output_index": index, "summary_index": 0, "delta": chunk}
            for chunk in turn.reasoning_chunks():
                yield {"type": "response.reasoning_text.delta", "sequence_number": next(seq),
                       "item_id": item["id"], "output_index": index, "content_index": 0,
                       "delta": chunk}
        elif kind == "function_call":
            yield {"type": "response.output_item.added", "sequence_number": next(seq),
                   "output_index": index, "item": {**item, "arguments": "",
                                                   "status": "in_progress"}}
            yield {"type": "response.function_call_arguments.delta",
                   "sequence_number": next(seq), "item_id": item["id"], "output_index": index,
                   "delta": item["arguments"]}
            yield {"type": "response.function_call_arguments.done",
                   "sequence_number": next(seq), "item_id": item["id"], "output_index": index,
                   "arguments": item["arguments"]}
        elif kind == "custom_tool_call":
            yield {"type": "response.output_item.added", "sequence_number": next(seq),
                   "output_index": index, "item": {**item, "input": "",
                                                   "status": "in_progress"}}
            yield {"type": "response.custom_tool_call_input.delta",
                   "sequence_number": next(seq), "item_id": item["id"], "output_index": index,
                   "delta": item["input"]}
            yield {"type": "response.custom_tool_call_input.done",
                   "sequence_number": next(seq), "item_id": item["id"], "output_index": index,
                   "input": item["input"]}
        elif kind == "web_search_call":
            yield {"type": "response.output_item.added", "sequence_number": next(seq),
                   "output_index": index, "item": {**item, "status": "in_progress"}}
            for phase in ("in_progress", "searching", "completed"):
                yield {"type": f"response.web_search_call.{phase}",
                       "sequence_number": next(seq), "item_id": item["id"],
                       "output_index": index}
        elif kind == "compaction":
            yield {"type": "response.output_item.added", "sequence_number": next(seq),
                   "output_index": index, "item": item}
        else:
            yield {"type": "response.output_item.added", "sequence_number": next(seq),
                   "output_index": index,
                   "item": {**item, "status": "in_progress", "content": []}}
            yield {"type": "response.content_part.added", "sequence_number": next(seq),
                   "item_id": item["id"], "output_index": index, "content_index": 0,
                   "part": {"type": "output_text", "text": "", "annotations": []}}
            for chunk in turn.text_chunks():
                yield {"type": "response.output_text.delta", "sequence_number": next(seq),
                       "item_id": item["id"], "output_index": index, "content_index": 0,
                       "delta": chunk, "logprobs": []}
            yield {"type": "response.output_text.done", "sequence_number": next(seq),
                   "item_id": item["id"], "output_index": index, "content_index": 0,
                   "text": turn.text, "logprobs": []}
            yield {"type": "response.content_part.done", "sequence_number": next(seq),
                   "item_id": item["id"], "output_index": index, "content_index": 0,
                   "part": item["content"][0]}
        yield {"type": "response.output_item.done", "sequence_number": next(seq),
               "output_index": index, "item": item}
        done.append(item)
    yield {"type": "response.completed", "sequence_number": next(seq),
           "response": response_object(rid, model, "completed", done, turn, meta)}


def request_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Responses ``input`` as a list of items (a bare string is one user message)."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return [i for i in raw or [] if isinstance(i, dict)]
