"""The scripted model: deterministic replies computed from the request, for offline use and tests.

Rules, in order:
- the last input item is a tool's output (``function_call_output``, ``custom_tool_call_output``,
  a Chat ``tool`` message): answer ``Tool <call_id> returned: <output>``;
- tools are offered and the prompt asks for a tool (``call``, ``tool``, ``use``): call one.
  When the prompt names a command in backticks, a tool taking a command (``cmd`` /
  ``command``), else the first function or custom tool; functions inside ``namespace`` tools
  count. Arguments are built from the tool's JSON schema: every required property gets a
  value of its type, the command goes to ``cmd`` / ``command``, other strings get the prompt;
  a string property ``input`` (or a schema with no properties) also gets the prompt.
  A custom (freeform) tool gets the command, or the prompt, as its input. The prompt asking to
  ``search`` with a ``web_search`` tool offered gives a ``web_search_call`` and then the answer;
- otherwise echo: ``You said: <prompt>``; with a ``text.format`` JSON schema the answer is a
  JSON value valid against it (strings in it carry the echo).
Reasoning (a summary, and raw reasoning text) is added when the request asks for reasoning or
the prompt contains ``think``. Bad input (an unknown tool type, a schema no value satisfies)
is a :class:`ModelInputError` the routes answer with a 400 or an error event.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .schema import UnsatisfiableSchema, instance

_TOOL_WORDS = re.compile(r"\b(call|tool|use)\b", re.IGNORECASE)
_COMMAND = re.compile(r"`([^`\n]+)`")
_SEARCH = re.compile(r"\bsearch\b", re.IGNORECASE)
_COMMAND_KEYS = ("cmd", "command")
_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output",
                           "local_shell_call_output", "mcp_call_output"})

#: Tool types the scripted model knows; others are a 400 naming them. Only ``function``,
#: ``custom``, ``namespace`` and ``web_search`` are ever called, the rest are accepted as
#: offered (they are the API's hosted tools).
TOOL_TYPES = frozenset({
    "function", "custom", "namespace", "web_search", "web_search_preview", "local_shell",
    "file_search", "mcp", "image_generation", "code_interpreter", "computer_use_preview",
    "computer_use", "tool_search", "shell", "apply_patch",
})


class ModelInputError(ValueError):
    """A request the scripted model cannot answer: the message says why, ``param`` where."""

    def __init__(self, message: str, param: str | None = None,
                 code: str = "invalid_request") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@attrs.frozen
class ToolCall:
    name: str
    arguments: str
    call_id: str
    #: ``function`` (arguments: JSON text), ``custom`` (arguments: the freeform input) or
    #: ``web_search`` (arguments: the query).
    kind: str = "function"
    #: The ``namespace`` tool the function belongs to, if any.
    namespace: str | None = None


@attrs.frozen
class Turn:
    """What the model says in one turn, independent of the wire that carries it."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    #: Set for a remote compaction (v2): the one ``compaction`` item's ``encrypted_content``.
    compaction: str = ""

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


Offered = list[tuple[Mapping[str, Any], str | None]]


def _tools_offered(tools: Sequence[Mapping[str, Any]]) -> Offered:
    """(tool, namespace) for every tool, a namespace's functions included, in order; an
    unknown tool type is a :class:`ModelInputError`."""
    out: Offered = []
    for index, tool in enumerate(tools):
        kind = tool.get("type", "function")
        if not isinstance(kind, str) or kind not in TOOL_TYPES:
            raise ModelInputError(
                f"tools[{index}] has an unknown type {kind!r}; the scripted model knows "
                f"{', '.join(sorted(TOOL_TYPES))}", f"tools[{index}].type", "unknown_tool_type")
        if kind == "namespace":
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise ModelInputError(f"tools[{index}] is a namespace without a `tools` array",
                                      f"tools[{index}].tools")
            for sub in _tools_offered([t for t in inner if isinstance(t, Mapping)]):
                out.append((sub[0], str(tool.get("name") or "") or None))
        else:
            out.append((tool, None))
    return out


def _parameters(tool: Mapping[str, Any]) -> Any:
    fn = tool.get("function")
    if isinstance(fn, Mapping):
        return fn.get("parameters") or {"type": "object", "properties": {}}
    return tool.get("parameters") or {"type": "object", "properties": {}}


def _takes_command(tool: Mapping[str, Any]) -> bool:
    params = _parameters(tool)
    props = params.get("properties") if isinstance(params, Mapping) else None
    return isinstance(props, Mapping) and any(k in props for k in _COMMAND_KEYS)


def _call(tool: Mapping[str, Any], namespace: str | None, prompt: str, command: str | None,
          call_id: str) -> ToolCall:
    name = _tool_name(tool) or "tool"
    if tool.get("type") == "custom":
        return ToolCall(name, command or prompt, call_id, kind="custom")

    def hint(key: str, schema: Mapping[str, Any]) -> str | None:
        return command if key in _COMMAND_KEYS and command else None

    params = _parameters(tool)
    try:
        args = instance(params, text=prompt, hint=hint)
    except UnsatisfiableSchema as exc:
        raise ModelInputError(f"the parameters of tool {name!r}: {exc}", "tools",
                              "invalid_tool_schema") from None
    if isinstance(args, dict) and isinstance(params, Mapping):
        props = params.get("properties") or {}
        declared = props.get("input") if isinstance(props, Mapping) else None
        open_ = not props and params.get("additionalProperties") is not False
        if open_ or (isinstance(declared, Mapping) and declared.get("type", "string") == "string"):
            args.setdefault("input", prompt)
    return ToolCall(name, json.dumps(args), call_id, namespace=namespace)


def structured(text_format: Any, text: str) -> str | None:
    """The JSON answer a ``text.format`` asks for (None: plain text)."""
    if not isinstance(text_format, Mapping):
        return None
    kind = text_format.get("type")
    if kind == "json_object":
        return json.dumps({"answer": text})
    if kind != "json_schema":
        return None
    schema = text_format.get("schema")
    if not isinstance(schema, Mapping):
        raise ModelInputError("text.format of type json_schema needs a `schema` object",
                              "text.format.schema")
    try:
        return json.dumps(instance(schema, text=text))
    except UnsatisfiableSchema as exc:
        raise ModelInputError(f"text.format.schema cannot be satisfied: {exc}",
                              "text.format.schema", "invalid_json_schema") from None


class ScriptedModel:
    """Computes a :class:`Turn` from normalized input (Responses items or Chat messages)."""

    def reply(
        self,
        items: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] = (),
        reasoning: bool = False,
        text_format: Any = None,
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
        offered = _tools_offered(tools)
        kind = last.get("type")
        if kind in _OUTPUT_TYPES or last.get("role") == "tool":
            call_id = last.get("call_id") or last.get("tool_call_id") or "?"
            output = last.get("output") if kind in _OUTPUT_TYPES else last.get("content")
            text = f"Tool {call_id} returned: {_text_of(output)}"
            return Turn(text=structured(text_format, text) or text, reasoning=thought,
                        input_tokens=tokens)
        text = f"You said: {prompt}" if prompt else "Hello! Send me a message."
        if offered and (_TOOL_WORDS.search(prompt) or _SEARCH.search(prompt)):
            call = self._pick(offered, prompt)
            if call is not None and call.kind == "web_search":
                # A hosted tool: the search happens server-side and the answer follows.
                return Turn(text=structured(text_format, text) or text, reasoning=thought,
                            tool_calls=(call,), input_tokens=tokens)
            if call is not None:
                return Turn(reasoning=thought, tool_calls=(call,), input_tokens=tokens)
        return Turn(text=structured(text_format, text) or text, reasoning=thought,
                    input_tokens=tokens)

    def _pick(self, offered: Offered, prompt: str) -> ToolCall | None:
        call_id = f"call_{zlib.crc32(prompt.encode()):08x}"
        match = _COMMAND.search(prompt)
        command = match.group(1).strip() if match else None
        search = ToolCall("web_search", prompt, call_id.replace("call", "ws"), kind="web_search")
        searchable = any(t.get("type") in ("web_search", "web_search_preview")
                         for t, _ in offered)
        if _SEARCH.search(prompt) and not _TOOL_WORDS.search(prompt):
            return search if searchable else None
        callable_ = [(t, ns) for t, ns in offered if t.get("type", "function")
                     in ("function", "custom")]
        if command:
            for tool, ns in callable_:
                if _takes_command(tool):
                    return _call(tool, ns, prompt, command, call_id)
        if _SEARCH.search(prompt) and searchable:
            return search
        if not callable_:
            return None
        tool, ns = callable_[0]
        return _call(tool, ns, prompt, command, call_id)
