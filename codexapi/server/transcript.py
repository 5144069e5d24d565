"""Reading a request's input as a conversation: what the user last said, which tool calls the
model made since, the outputs that came back, which turn of the conversation this is, and the
plan a prompt spells out (its backticked commands and ``*** Begin Patch`` blocks, in order).

Works on Responses items and Chat messages alike, so the scripted model and user scripts see
the same conversation whichever route carried it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

#: Items that hand a tool's result back to the model.
OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output",
                          "local_shell_call_output", "mcp_call_output"})
#: Items in which the model called a tool.
CALL_TYPES = frozenset({"function_call", "custom_tool_call", "local_shell_call", "mcp_call"})
#: Items only the model produces: a run of them is one earlier response.
_MODEL_TYPES = CALL_TYPES | {"reasoning", "web_search_call", "compaction"}

_COMMAND = re.compile(r"`([^`\n]+)`")
#: A patch as the Codex ``apply_patch`` tool takes it, markers included.
_PATCH = re.compile(r"^\*\*\* Begin Patch[ \t]*$.*?^\*\*\* End Patch[ \t]*$",
                    re.MULTILINE | re.DOTALL)


def text_of(content: Any) -> str:
    """The text of a message's ``content`` (a string, or a list of parts with ``text``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content
                       if isinstance(part, Mapping) and isinstance(part.get("text"), str))
    return ""


def is_output(item: Mapping[str, Any]) -> bool:
    return item.get("type") in OUTPUT_TYPES or item.get("role") == "tool"


def output_text(item: Mapping[str, Any]) -> str:
    return text_of(item.get("output") if item.get("type") in OUTPUT_TYPES
                   else item.get("content"))


def output_call_id(item: Mapping[str, Any]) -> str:
    return str(item.get("call_id") or item.get("tool_call_id") or "?")


def _is_model(item: Mapping[str, Any]) -> bool:
    return item.get("type") in _MODEL_TYPES or item.get("role") == "assistant"


def _calls_in(item: Mapping[str, Any]) -> int:
    if item.get("type") in CALL_TYPES:
        return 1
    if item.get("role") == "assistant":  # Chat: an assistant message carries its tool calls
        calls = item.get("tool_calls")
        return len(calls) if isinstance(calls, list) else 0
    return 0


def last_user_index(items: Sequence[Mapping[str, Any]]) -> int:
    """The index of the last user message, or -1."""
    for index in range(len(items) - 1, -1, -1):
        if items[index].get("role") == "user":
            return index
    return -1


def last_user_text(items: Sequence[Mapping[str, Any]]) -> str:
    index = last_user_index(items)
    return text_of(items[index].get("content")) if index >= 0 else ""


def trailing_outputs(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The tool outputs the input ends with (several after parallel calls); empty when the
    request does not end with a tool's result."""
    out: list[Mapping[str, Any]] = []
    for item in reversed(items):
        if not is_output(item):
            break
        out.append(item)
    return out[::-1]


def calls_since_prompt(items: Sequence[Mapping[str, Any]]) -> int:
    """How many tool calls the model made after the last user message."""
    return sum(_calls_in(i) for i in items[last_user_index(items) + 1:])


def outputs_since_prompt(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [i for i in items[last_user_index(items) + 1:] if is_output(i)]


def turn_number(items: Sequence[Mapping[str, Any]]) -> int:
    """Which model call of the conversation this request is, from 1: one more than the
    earlier responses its input holds (each a run of model items: reasoning, messages,
    tool calls)."""
    runs, inside = 0, False
    for item in items:
        model = _is_model(item)
        if model and not inside:
            runs += 1
        inside = model
    return runs + 1


@attrs.frozen
class Step:
    """One step of a prompt's plan: a shell command, or a patch for ``apply_patch``."""

    kind: str  # "command" or "patch"
    text: str


def plan(prompt: str) -> list[Step]:
    """The steps ``prompt`` asks for, in the order written: each ``*** Begin Patch`` ...
    ``*** End Patch`` block, and each backticked command outside them."""
    found: list[tuple[int, Step]] = []
    spans: list[tuple[int, int]] = []
    for match in _PATCH.finditer(prompt):
        found.append((match.start(), Step("patch", match.group(0) + "\n")))
        spans.append(match.span())
    for match in _COMMAND.finditer(prompt):
        if any(start <= match.start() < end for start, end in spans):
            continue
        command = match.group(1).strip()
        if command:
            found.append((match.start(), Step("command", command)))
    return [step for _, step in sorted(found, key=lambda pair: pair[0])]
