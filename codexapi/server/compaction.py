"""``POST /v1/responses/compact``: compacts a history the way the OpenAI API answers it.

The reply keeps the user messages, then adds one ``compaction`` item standing for the rest
(the real API encrypts it; here it is readable: ``codexapi-compaction:`` + base64 JSON of a
summary). Body in: ``{model, input, instructions}``; out: ``{id, object:
"response.compaction", created_at, output, usage}``. Remote compaction v2 (a Responses request
ending with a ``compaction_trigger`` item, :mod:`.responses`) uses the same content.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from .app import Exchange, route
from .responses_wire import new_id, request_items
from .scripted import script_turn
from .transcript import text_of


def summary(items: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        kind = str(item.get("type") or ("message" if "role" in item else "unknown"))
        counts[kind] = counts.get(kind, 0) + 1
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return f"Compacted {len(items)} items ({parts})." if items else "Nothing to compact."


def compact(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """(output items, output token count) for ``items``."""
    output: list[dict[str, Any]] = []
    for item in items:
        if item.get("role") == "user" and item.get("type", "message") == "message":
            text = text_of(item.get("content"))
            output.append({"id": new_id("msg"), "type": "message", "status": "completed",
                           "role": "user", "content": [{"type": "input_text", "text": text}]})
    content, tokens = encrypted_summary(items)
    output.append({"id": new_id("cmp"), "type": "compaction", "encrypted_content": content})
    return output, tokens


def encrypted_summary(items: list[dict[str, Any]]) -> tuple[str, int]:
    """(``encrypted_content`` of a compaction item standing for ``items``, its token count)."""
    text = summary(items)
    return encode_summary(text), len(text.split())


def encode_summary(text: str) -> str:
    """The ``encrypted_content`` of a compaction item whose summary is ``text``."""
    blob = base64.b64encode(json.dumps({"summary": text}).encode()).decode()
    return f"codexapi-compaction:{blob}"


@route("POST", "/responses/compact")
def post_compact(ex: Exchange) -> None:
    body = ex.model_request()
    if body is None:
        return
    if not isinstance(body.get("input"), list | str):
        ex.send_error(400, "`input` must be an array of items", "invalid_body")
        return
    items = request_items(body)
    in_tokens = sum(len(text_of(i.get("content")).split()) for i in items) + 1
    answered, scripted, usage = script_turn(ex, items, body["model"], in_tokens)
    if answered:
        return
    output, out_tokens = compact(items)
    if scripted is not None and scripted.text:
        # A script's text is the summary the compaction item stands for.
        output[-1]["encrypted_content"] = encode_summary(scripted.text)
        out_tokens = len(scripted.text.split())
    counts = {"input_tokens": in_tokens, "output_tokens": out_tokens, "cached_tokens": 0,
              "reasoning_tokens": 0, **(usage or {})}
    ex.send_json(200, {
        "id": new_id("resp"), "object": "response.compaction", "created_at": int(time.time()),
        "output": output,
        "usage": {"input_tokens": counts["input_tokens"],
                  "input_tokens_details": {"cached_tokens": counts["cached_tokens"]},
                  "output_tokens": counts["output_tokens"],
                  "output_tokens_details": {"reasoning_tokens": counts["reasoning_tokens"]},
                  "total_tokens": counts["input_tokens"] + counts["output_tokens"]},
    })
