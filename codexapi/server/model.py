"""The scripted model: deterministic replies computed from the request, for offline use and tests.

Rules, in order:
- tools are offered and the prompt (the last user message) asks for a tool (``call``,
  ``tool``, ``use``) or holds a patch: the model works through the prompt's plan. The plan is
  each ``*** Begin Patch`` ... ``*** End Patch`` block and each backticked command, in the
  order written; a patch goes to the ``apply_patch`` tool (freeform: the patch is its input),
  a command to a tool taking ``cmd`` / ``command``. One step per turn: when a tool's output
  comes back and steps remain, the next one is called. With ``parallel_tool_calls`` (and no
  word asking for order: ``then``, ``after``, ``in order``, ``one at a time``, ``step by
  step``, ...) all the steps are called in one response. A prompt without steps calls the
  first function or custom tool once; functions inside ``namespace`` tools count. Arguments
  are built from the tool's JSON schema: every required property gets a value of its type,
  the command goes to ``cmd`` / ``command``, other strings get the prompt, a string property
  ``input`` the prompt too; a tool with no parameters is called with ``{}``. The prompt asking
  to ``search`` with a ``web_search`` tool offered gives a ``web_search_call`` and then the
  answer;
- the input ends with tool outputs and no step is left: the answer reports each output of
  the turn, one line each, ``Tool <call_id> returned: <output>``;
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
from typing import TYPE_CHECKING, Any

import attrs

from .schema import UnsatisfiableSchema, instance
from .sealing import ReasoningSeal
from .transcript import (
    Step,
    calls_since_prompt,
    last_user_text,
    output_call_id,
    output_text,
    outputs_since_prompt,
    plan,
    text_of,
    trailing_outputs,
)

if TYPE_CHECKING:
    from .script import Script

_TOOL_WORDS = re.compile(r"\b(call|tool|use)\b", re.IGNORECASE)
_SEARCH = re.compile(r"\bsearch\b", re.IGNORECASE)
#: Words asking for the steps one after another, even where calls may go in parallel.
_ORDERED = re.compile(r"\b(then|after|afterwards|next|in order|in sequence|sequentially|"
                      r"one at a time|one by one|step by step)\b", re.IGNORECASE)
_COMMAND_KEYS = ("cmd", "command")
#: The Codex CLI's file-editing tool: freeform (custom) when the model catalog says
#: ``apply_patch_tool_type: "freeform"``, a function taking ``input`` otherwise.
PATCH_TOOL = "apply_patch"

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
    #: The reasoning item's ``encrypted_content`` (when the request's ``include`` asks).
    encrypted_reasoning: str = ""
    #: Token counts a script gave (``input_tokens``, ``output_tokens``, ``cached_tokens``,
    #: ``reasoning_tokens``), replacing the counted ones.
    usage: Mapping[str, int] | None = None

    @property
    def output_tokens(self) -> int:
        return len(self.text.split()) + len(self.reasoning.split()) + 8 * len(self.tool_calls)

    def text_chunks(self) -> list[str]:
        """The text split into word-sized deltas (whitespace kept with the following word)."""
        return re.findall(r"\s*\S+", self.text) or ([self.text] if self.text else [])

    def reasoning_chunks(self) -> list[str]:
        return re.findall(r"\s*\S+", self.reasoning)


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
          call_id: str, patch: str | None = None) -> ToolCall:
    name = _tool_name(tool) or "tool"
    if tool.get("type") == "custom":
        return ToolCall(name, patch or command or prompt, call_id, kind="custom")

    def hint(key: str, schema: Mapping[str, Any]) -> str | None:
        if patch is not None and key in ("input", "patch"):
            return patch
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
        # Only a declared string `input` gets the prompt: a tool with no parameters is called
        # with {} (an invented argument fails a strict tool, llm's `llm_version` for one).
        if isinstance(declared, Mapping) and declared.get("type", "string") == "string":
            args.setdefault("input", patch or prompt)
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
    """Computes a :class:`Turn` from normalized input (Responses items or Chat messages).

    ``secret`` keys the ``encrypted_content`` of reasoning items (random per model: only this
    model's server can verify what it issued, as with the real API's). ``script``: a user's
    rules (:mod:`.script`), consulted by the routes before the built-in replies."""

    def __init__(self, secret: bytes | None = None, script: Script | None = None) -> None:
        self.seal = ReasoningSeal(secret)
        self.script = script

    def reply(
        self,
        items: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] = (),
        reasoning: bool = False,
        text_format: Any = None,
        parallel: bool = False,
    ) -> Turn:
        prompt = last_user_text(items)
        tokens = sum(len(text_of(i.get("content")).split()) for i in items) + 1
        think = reasoning or "think" in prompt.lower()
        thought = f"The user wrote {len(prompt.split())} words; answer plainly." if think else ""
        offered = _tools_offered(tools)
        steps = plan(prompt) if offered else []
        if trailing_outputs(items):
            made = calls_since_prompt(items)
            calls = self._steps(offered, prompt, steps[made:], made, parallel)
            if calls:
                return Turn(reasoning=thought, tool_calls=calls, input_tokens=tokens)
            text = "\n".join(f"Tool {output_call_id(o)} returned: {output_text(o)}"
                             for o in outputs_since_prompt(items) or trailing_outputs(items))
            return Turn(text=structured(text_format, text) or text, reasoning=thought,
                        input_tokens=tokens)
        text = f"You said: {prompt}" if prompt else "Hello! Send me a message."
        patching = any(s.kind == "patch" for s in steps) and _find(offered, PATCH_TOOL)
        if offered and (_TOOL_WORDS.search(prompt) or _SEARCH.search(prompt) or patching):
            searching = _SEARCH.search(prompt) and not _TOOL_WORDS.search(prompt)
            calls = () if searching and not patching else self._steps(
                offered, prompt, steps, 0, parallel)
            if calls:
                return Turn(reasoning=thought, tool_calls=calls, input_tokens=tokens)
            call = self._pick(offered, prompt)
            if call is not None and call.kind == "web_search":
                # A hosted tool: the search happens server-side and the answer follows.
                return Turn(text=structured(text_format, text) or text, reasoning=thought,
                            tool_calls=(call,), input_tokens=tokens)
            if call is not None:
                return Turn(reasoning=thought, tool_calls=(call,), input_tokens=tokens)
        return Turn(text=structured(text_format, text) or text, reasoning=thought,
                    input_tokens=tokens)

    def _steps(self, offered: Offered, prompt: str, steps: Sequence[Step], done: int,
               parallel: bool) -> tuple[ToolCall, ...]:
        """The calls for the next step of the plan (every remaining one when calls may go in
        parallel and the prompt does not ask for an order); empty when none is left."""
        at_once = parallel and not _ORDERED.search(prompt)
        calls: list[ToolCall] = []
        base = f"call_{zlib.crc32(prompt.encode()):08x}"
        for index, step in enumerate(steps, start=done):
            call_id = base if index == 0 else f"{base}_{index}"
            call = self._step_call(offered, prompt, step, call_id)
            if call is None:
                continue
            calls.append(call)
            if not at_once:
                break
        return tuple(calls)

    def _step_call(self, offered: Offered, prompt: str, step: Step,
                   call_id: str) -> ToolCall | None:
        if step.kind == "patch":
            found = _find(offered, PATCH_TOOL)
            return None if found is None else _call(*found, prompt, None, call_id, step.text)
        callable_ = _callable(offered)
        for tool, ns in callable_:
            if _takes_command(tool):
                return _call(tool, ns, prompt, step.text, call_id)
        if not callable_:
            return None
        tool, ns = callable_[0]
        return _call(tool, ns, prompt, step.text, call_id)

    def _pick(self, offered: Offered, prompt: str) -> ToolCall | None:
        call_id = f"call_{zlib.crc32(prompt.encode()):08x}"
        search = ToolCall("web_search", prompt, call_id.replace("call", "ws"), kind="web_search")
        searchable = any(t.get("type") in ("web_search", "web_search_preview")
                         for t, _ in offered)
        if _SEARCH.search(prompt) and not _TOOL_WORDS.search(prompt):
            return search if searchable else None
        if _SEARCH.search(prompt) and searchable:
            return search
        callable_ = _callable(offered)
        if not callable_:
            return None
        tool, ns = callable_[0]
        return _call(tool, ns, prompt, None, call_id)


def _callable(offered: Offered) -> Offered:
    return [(t, ns) for t, ns in offered if t.get("type", "function") in ("function", "custom")]


def _find(offered: Offered, name: str) -> tuple[Mapping[str, Any], str | None] | None:
    return next(((t, ns) for t, ns in _callable(offered) if _tool_name(t) == name), None)
