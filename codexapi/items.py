"""Conversation items: what a turn sends as input and what the model sends back as output.

One class per item type the Responses API and the crate (``codex-rs/protocol`` ``ResponseItem``)
define, used both ways: build a :class:`Message` to send, read a :class:`FunctionCall` from
``OutputItemDone.item``, send it back as input on the next turn. Every class is a frozen,
slotted attrs class deriving from :class:`Item`, the generic item that keeps any other type
whole. An item that came from the wire keeps its JSON as ``.raw``, so fields a class does not
model (``status``, ``annotations``, fields added after this version) read as attributes from
there and go back to the server unchanged; a name that is neither a field nor in the JSON is an
``AttributeError``.

Decoding builds these per ``response.output_item.done``: :func:`item_from_json` picks the class
from a dict on ``type`` and sets the slots directly (no converter, no ``__init__``). A known
type whose JSON does not have the fields the class needs (a missing ``call_id``, a non-string
``arguments``) stays a generic :class:`Item`, so nothing is lost and nothing half-typed escapes.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .errors import ToolArgumentsError

T = TypeVar("T")

class Item:
    """An item of any type, read-only: its JSON fields read as attributes (``item.name`` is
    ``item.raw["name"]``); a field the item does not have is an ``AttributeError``."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_raw", dict(raw))

    @property
    def raw(self) -> dict[str, Any]:
        """The item's JSON as received (or, for an item built in Python, as it will be sent)."""
        raw: dict[str, Any] | None = self._raw
        return raw if raw is not None else self.to_dict()

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: modelled fields and slots never come here.
        if name.startswith("_"):
            raise AttributeError(name)
        raw = self.raw
        try:
            return raw[name]
        except KeyError:
            fields = ", ".join(sorted(raw)) or "none"
            raise AttributeError(
                f"{type(self).__name__} ({self.type!r} item) has no attribute {name!r}; "
                f"its JSON fields are: {fields}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("items are read-only; build a new one (attrs.evolve for typed "
                             "items, or Item(dict))")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Item) and other.raw == self.raw

    def __hash__(self) -> int:
        # By identity fields only: content is a list (unhashable) and may be large. Typed
        # items share this hash (attrs would hash every field), so items and the events that
        # carry them stay hashable.
        # Only string fields take part: a server may send any JSON there (a list ``type``).
        return hash(tuple(v if v.__class__ is str else None for v in (
            self.type, getattr(self, "id", None), getattr(self, "call_id", None))))

    def __repr__(self) -> str:
        return f"Item({self.raw!r})"

    @property
    def type(self) -> str:
        return str(self.raw.get("type", ""))

    @property
    def text(self) -> str:
        """The concatenated text of a message's text parts (empty for other items)."""
        return _text_of(self.raw.get("content"))

    def to_dict(self) -> dict[str, Any]:
        """The item's JSON form, ready to be sent back as input on the next turn."""
        to_json = _TO_JSON.get(type(self))
        if to_json is not None:
            return to_json(self)
        if attrs.has(type(self)):
            return _fields_json(self)
        return dict(self._raw)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def _list(value: Iterable[Any]) -> list[Any]:
    # Not ``converter=list``: attrs would parse the builtin's text signature at import.
    return list(value)


def _content(value: str | Sequence[Any]) -> str | list[Any]:
    return value if isinstance(value, str) else list(value)


# Each class's ``_raw`` is the JSON it was decoded from (``raw=`` to its constructor). It is not
# part of equality, so a decoded call equals the same call built by hand.


@attrs.frozen
class Message(Item):
    """A conversation message. ``content`` is text or a list of Responses content parts."""

    role: str
    content: str | list[Any] = attrs.field(converter=_content)
    id: str | None = None
    #: ``in_progress`` / ``completed`` / ``incomplete`` on output messages.
    status: str | None = None
    #: Output-message phase where the model sends one (``commentary``, ``final_answer``).
    phase: str | None = None
    type: str = attrs.field(default="message", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__

    @property
    def text(self) -> str:
        return _text_of(self.content)

    @property
    def refusal(self) -> str | None:
        """The text of the message's ``refusal`` parts (the model declined to answer, e.g. to
        structured output), or None when it has none."""
        if not isinstance(self.content, list):
            return None
        parts = [p["refusal"] for p in self.content if isinstance(p, dict)
                 and p.get("type") == "refusal" and isinstance(p.get("refusal"), str)]
        return "".join(parts) if parts else None


@attrs.frozen
class FunctionCall(Item):
    """A call of a function tool the model made; replay it as input on the next turn."""

    name: str
    #: The arguments as the model wrote them: a JSON string (see :meth:`parsed_arguments`).
    arguments: str
    call_id: str
    id: str | None = None
    status: str | None = None
    #: The tool's namespace, for namespaced (MCP) tools.
    namespace: str | None = None
    type: str = attrs.field(default="function_call", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__

    def parsed_arguments(self, cls: builtins.type[T] | None = None) -> Any:
        """The decoded JSON arguments; structured into ``cls`` (an attrs class, a dataclass, a
        pydantic model, or any type the converter knows) when given. Empty arguments read as ``{}``.

        Raises :class:`~codexapi.errors.ToolArgumentsError` (naming the call) when the arguments
        are not JSON or do not fit ``cls``.
        """
        text = self.arguments
        data: Any = {}
        if text.strip():
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise ToolArgumentsError(self, f"not valid JSON ({exc})") from None
        if cls is None:
            return data
        # Late: the converter sits above the items it converts (see setup.cfg's acyclic contract).
        from .convert import structure

        return structure(data, cls, lambda detail: ToolArgumentsError(self, detail))


@attrs.frozen
class FunctionCallOutput(Item):
    """The result of running a function tool, answering ``call_id``."""

    call_id: str
    #: Text, or a list of content parts (``input_text``, ``input_image``...).
    output: str | list[Any] = attrs.field(converter=_content)
    id: str | None = None
    type: str = attrs.field(default="function_call_output", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


@attrs.frozen
class Reasoning(Item):
    """A reasoning item: summary parts, optional raw content, the encrypted blob to replay."""

    summary: list[Any] = attrs.field(factory=list, converter=_list)
    content: list[Any] | None = None
    encrypted_content: str | None = None
    id: str = ""
    type: str = attrs.field(default="reasoning", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__

    @property
    def summary_text(self) -> str:
        """The summary parts' text, joined by blank lines."""
        return "\n\n".join(p.get("text", "") if isinstance(p, dict) else str(p)
                           for p in self.summary)


@attrs.frozen
class CustomToolCall(Item):
    """A call of a freeform (custom) tool, e.g. ``apply_patch``: ``input`` is plain text."""

    call_id: str
    name: str
    input: str
    id: str | None = None
    status: str | None = None
    namespace: str | None = None
    type: str = attrs.field(default="custom_tool_call", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


@attrs.frozen
class CustomToolCallOutput(Item):
    """The result of running a custom tool, answering ``call_id``."""

    call_id: str
    output: str | list[Any] = attrs.field(converter=_content)
    id: str | None = None
    name: str | None = None
    type: str = attrs.field(default="custom_tool_call_output", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


@attrs.frozen
class LocalShellCall(Item):
    """A ``local_shell`` tool call: ``action`` holds the command (``{"type": "exec", ...}``)."""

    status: str
    action: dict[str, Any]
    call_id: str | None = None
    id: str | None = None
    type: str = attrs.field(default="local_shell_call", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


@attrs.frozen
class WebSearchCall(Item):
    """A hosted web search the model ran; ``action`` is e.g. ``{"type": "search", "query": …}``."""

    id: str | None = None
    status: str | None = None
    action: dict[str, Any] | None = None
    type: str = attrs.field(default="web_search_call", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


@attrs.frozen
class ImageGenerationCall(Item):
    """A hosted image generation; ``result`` is the image, base64-encoded."""

    status: str
    result: str
    id: str | None = None
    revised_prompt: str | None = None
    type: str = attrs.field(default="image_generation_call", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


@attrs.frozen
class Compaction(Item):
    """Compacted history (``compact()`` results): replay it as input to continue."""

    encrypted_content: str
    id: str | None = None
    type: str = attrs.field(default="compaction", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


@attrs.frozen
class CompactionTrigger(Item):
    """The last input item of a remote compaction v2 request: ``{"type": "compaction_trigger"}``
    asks the server to answer with one ``compaction`` output item."""

    type: str = attrs.field(default="compaction_trigger", init=False)
    _raw: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False, kw_only=True,
                                              alias="raw")
    __hash__ = Item.__hash__


# --- JSON form (what an item sends as input) -------------------------------------------------
# A decoded item goes back as it came, with its modelled fields (which attrs.evolve may have
# changed) written over it: fields this library does not model are not lost. An item built in
# Python gives its fields, None ones left out.


def _base(item: Any) -> dict[str, Any]:
    raw = item._raw
    if raw is None:
        return {"type": item.type}
    out = dict(raw)
    out.setdefault("type", item.type)
    return out


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        out[name] = value
    elif out.get(name) is not None:
        out.pop(name)  # cleared with attrs.evolve; an explicit null from the server stays


def _parts(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _message_json(m: Message) -> dict[str, Any]:
    out = _base(m)
    out["role"] = m.role
    if isinstance(m.content, list):
        out["content"] = list(m.content)
    else:
        kind = "output_text" if m.role == "assistant" else "input_text"
        out["content"] = [{"type": kind, "text": m.content}]
    _put(out, "id", m.id)
    _put(out, "status", m.status)
    _put(out, "phase", m.phase)
    return out


def _function_call_json(c: FunctionCall) -> dict[str, Any]:
    out = _base(c)
    out.update(name=c.name, arguments=c.arguments, call_id=c.call_id)
    _put(out, "id", c.id)
    _put(out, "status", c.status)
    _put(out, "namespace", c.namespace)
    return out


def _function_call_output_json(o: FunctionCallOutput) -> dict[str, Any]:
    out = _base(o)
    out.update(call_id=o.call_id, output=_parts(o.output))
    _put(out, "id", o.id)
    return out


def _reasoning_json(r: Reasoning) -> dict[str, Any]:
    out = _base(r)
    out["summary"] = [{"type": "summary_text", "text": p} if isinstance(p, str) else p
                      for p in r.summary]
    _put(out, "content", None if r.content is None else [
        {"type": "reasoning_text", "text": p} if isinstance(p, str) else p for p in r.content])
    if r._raw is None or r.encrypted_content is not None:
        # A reasoning item built here sends null when it has none, as the Codex CLI does; a
        # decoded one goes back as it came.
        out["encrypted_content"] = r.encrypted_content
    _put(out, "id", r.id or None)
    return out


def _fields_json(item: Any) -> dict[str, Any]:
    """The other typed items: their modelled fields over their JSON, None fields omitted."""
    out = _base(item)
    for f in attrs.fields(type(item)):
        if f.name not in ("type", "_raw"):
            _put(out, f.name, _parts(getattr(item, f.name)))
    return out


_TO_JSON: dict[type, Callable[[Any], dict[str, Any]]] = {
    Message: _message_json,
    FunctionCall: _function_call_json,
    FunctionCallOutput: _function_call_output_json,
    Reasoning: _reasoning_json,
}


#: Item classes by their ``type`` tag (``compaction_summary`` is the crate's older name).
ITEM_TYPES: dict[str, type[Item]] = {
    "message": Message,
    "function_call": FunctionCall,
    "function_call_output": FunctionCallOutput,
    "reasoning": Reasoning,
    "custom_tool_call": CustomToolCall,
    "custom_tool_call_output": CustomToolCallOutput,
    "local_shell_call": LocalShellCall,
    "web_search_call": WebSearchCall,
    "image_generation_call": ImageGenerationCall,
    "compaction": Compaction,
    "compaction_summary": Compaction,
    "compaction_trigger": CompactionTrigger,
}

# What JSON values each field accepts, in the classes' field order. A required field (no
# default) that is missing, or any field of another JSON type, leaves the item generic.
_STR, _LIST, _DICT = (str,), (list,), (dict,)
_STR_OR_LIST = (str, list)
_ACCEPTS: dict[type[Item], dict[str, tuple[type, ...]]] = {
    Message: {"role": _STR, "content": _STR_OR_LIST, "id": _STR, "status": _STR,
              "phase": _STR},
    FunctionCall: {"name": _STR, "arguments": _STR, "call_id": _STR, "id": _STR,
                   "status": _STR, "namespace": _STR},
    FunctionCallOutput: {"call_id": _STR, "output": _STR_OR_LIST, "id": _STR},
    Reasoning: {"summary": _LIST, "content": _LIST, "encrypted_content": _STR, "id": _STR},
    CustomToolCall: {"call_id": _STR, "name": _STR, "input": _STR, "id": _STR,
                     "status": _STR, "namespace": _STR},
    CustomToolCallOutput: {"call_id": _STR, "output": _STR_OR_LIST, "id": _STR,
                           "name": _STR},
    LocalShellCall: {"status": _STR, "action": _DICT, "call_id": _STR, "id": _STR},
    WebSearchCall: {"id": _STR, "status": _STR, "action": _DICT},
    ImageGenerationCall: {"status": _STR, "result": _STR, "id": _STR,
                          "revised_prompt": _STR},
    Compaction: {"encrypted_content": _STR, "id": _STR},
    CompactionTrigger: {},
}

_new = object.__new__
_set_raw = Item.__dict__["_raw"].__set__


def _builder(cls: type[Item]) -> Callable[[dict[str, Any]], Item | None]:
    """A decoder for ``cls`` that sets its slots from a dict, or answers None when it does not
    fit. Equivalent to ``cls(**fields, raw=raw)`` without attrs' frozen ``__init__`` (which goes
    through ``object.__setattr__`` by name for every field).

    Written out as straight-line code per class, as attrs and cattrs generate theirs: a loop
    over a field table cost several times the JSON decoding of the item itself.
    """
    env: dict[str, Any] = {"new": _new, "cls": cls, "set_raw": _set_raw}
    checks: list[str] = []
    sets: list[str] = []
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    for n, field in enumerate(fields):
        if field.name in ("type", "_raw"):
            continue
        var, accepts = f"v{n}", _ACCEPTS[cls][field.name]
        env[f"set{n}"] = cls.__dict__[field.name].__set__
        if len(accepts) == 1:
            env[f"t{n}"] = accepts[0]
            bad = f"{var}.__class__ is not t{n}"
        else:
            env[f"t{n}"] = accepts
            bad = f"{var}.__class__ not in t{n}"
        checks.append(f"    {var} = get({field.name!r})")
        default: Any = field.default
        if default is attrs.NOTHING:  # required: a missing or null value fails the check
            checks.append(f"    if {bad}: return None")
        else:
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                env[f"d{n}"] = default.factory
                fill = f"d{n}()"
            else:
                env[f"d{n}"] = default
                fill = f"d{n}"
            checks.append(f"    if {var} is None: {var} = {fill}")
            checks.append(f"    elif {bad}: return None")
        sets.append(f"    set{n}(item, {var})")
    env["set_type"] = cls.__dict__["type"].__set__
    env["tag"] = next(f.default for f in fields if f.name == "type")
    source = "\n".join([
        "def build(raw):", "    get = raw.get", *checks, "    item = new(cls)", *sets,
        "    set_type(item, tag)", "    set_raw(item, raw)", "    return item", ""])
    exec(compile(source, f"<codexapi.items build {cls.__name__}>", "exec"), env)
    build: Callable[[dict[str, Any]], Item | None] = env["build"]
    return build


def _lazy(tag: str, cls: type[Item]) -> Callable[[dict[str, Any]], Item | None]:
    # Generated on first use, so importing codexapi compiles nothing.
    def first(raw: dict[str, Any]) -> Item | None:
        build = _BUILDERS[tag] = _builder(cls)
        return build(raw)

    return first


_BUILDERS: dict[str, Callable[[dict[str, Any]], Item | None]] = {
    tag: _lazy(tag, cls) for tag, cls in ITEM_TYPES.items()}


def item_from_json(raw: dict[str, Any]) -> Item:
    """The typed item for a JSON dict (a generic :class:`Item` for other types).

    The dict becomes the item's ``.raw`` as it is (not copied): pass one nobody else changes.
    """
    tag = raw.get("type")
    if tag.__class__ is str:
        build = _BUILDERS.get(tag)
        if build is not None:
            item = build(raw)
            if item is not None:
                return item
    item = _new(Item)
    _set_raw(item, raw)
    return item


#: Any item a request may carry as input; plain dicts are accepted too (sent as given).
InputItem = Item | Mapping[str, Any]

__all__ = [
    "ITEM_TYPES",
    "Compaction",
    "CompactionTrigger",
    "CustomToolCall",
    "CustomToolCallOutput",
    "FunctionCall",
    "FunctionCallOutput",
    "ImageGenerationCall",
    "InputItem",
    "Item",
    "LocalShellCall",
    "Message",
    "Reasoning",
    "WebSearchCall",
    "item_from_json",
]
