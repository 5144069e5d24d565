"""The scripted model: deterministic replies computed from the request, for offline use and tests.

Rules, in order:
- the last input item is a ``function_call_output``: answer ``Tool <call_id> returned: <output>``;
- tools are offered and the prompt asks for a tool (``call``, ``tool``, ``use``): call the first
  tool with ``{"input": <prompt>}``;
- the request asks for structured output (a ``text.format`` JSON schema): a JSON value that
  fits it, made from the prompt (see :mod:`codexapi.server.structured`);
- otherwise echo: ``You said: <prompt>``.
Reasoning (a summary, and raw reasoning text) is added when the request asks for reasoning or
the prompt contains ``think``.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

_TOOL_WORDS = re.compile(r"\b(call|tool|use)\b", re.IGNORECASE)


@attrs.frozen
class ToolCall:
    name: str
    arguments: str
    call_id: str


@attrs.frozen
class Turn:
    """What the model says in one turn, independent of the wire that carries it."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0

    @property
    def output_tokens(self) -> int:
        return len(self.text.split()) + len(self.reasoning.split()) + 8 * len(self.tool_calls)

    def text_chunks(self) -> list[str]:
        """The text split into word-sized deltas (whitespace kept with the following word)."""
        return re.findall(r"\s*\S+", self.text) or ([self.text] if self.text else [])

    def reasoning_chunks(self) -> list[str]:
        return re.findall(r"\s*\S+", self.reasoning)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _tool_name(tool: Mapping[str, Any]) -> str | None:
    fn = tool.get("function")
    if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
        return str(fn["name"])  # Chat tool format
    name = tool.get("name")
    return name if isinstance(name, str) else None


class ScriptedModel:
    """Computes a :class:`Turn` from normalized input (Responses items or Chat messages)."""

    def reply(
        self,
        items: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] = (),
        reasoning: bool = False,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Turn:
        prompt = ""
        last = items[-1] if items else {}
        for item in reversed(items):
            role = item.get("role")
            if role == "user":
                prompt = _text_of(item.get("content"))
                break
        tokens = sum(len(_text_of(i.get("content")).split()) for i in items) + 1
        think = reasoning or "think" in prompt.lower()
        thought = f"The user wrote {len(prompt.split())} words; answer plainly." if think else ""
        kind = last.get("type")
        if kind == "function_call_output" or last.get("role") == "tool":
            call_id = last.get("call_id") or last.get("tool_call_id") or "?"
            output = last.get("output") if kind == "function_call_output" else last.get(
                "content")
            return Turn(text=f"Tool {call_id} returned: {_text_of(output)}", reasoning=thought,
                        input_tokens=tokens)
        names = [n for n in (_tool_name(t) for t in tools) if n]
        if names and _TOOL_WORDS.search(prompt):
            call_id = f"call_{zlib.crc32(prompt.encode()):08x}"
            call = ToolCall(names[0], _json_string(prompt), call_id)
            return Turn(reasoning=thought, tool_calls=(call,), input_tokens=tokens)
        if output_schema is not None:
            from .structured import instance

            text = json.dumps(instance(output_schema, prompt))
            return Turn(text=text, reasoning=thought, input_tokens=tokens)
        text = f"You said: {prompt}" if prompt else "Hello! Send me a message."
        return Turn(text=text, reasoning=thought, input_tokens=tokens)


def _json_string(prompt: str) -> str:
    return json.dumps({"input": prompt})
