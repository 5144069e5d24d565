"""The one cattrs converter: models to JSON and back.

Configured here and nowhere else. Request items unstructure to their Responses JSON form with
``None`` fields omitted; events unstructure to a dict tagged by ``type`` and structure back
from one (unknown tags become :class:`UnknownEvent`, nothing is lost). The stream decoders do
not use it per event: decoding is the hot path and builds events directly.

cattrs itself is imported when the converter is first needed (``converter``, events to and from
JSON, a value of a type the hand-written hooks here do not cover): building request bodies from
the library's own models never needs it, so a Client sends its first request without paying for
the import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .events import (
    EVENT_TYPES,
    Event,
    RateLimitSnapshot,
    TokenUsage,
)
from .items import (
    ITEM_TYPES,
    FunctionCall,
    FunctionCallOutput,
    InputItem,
    Item,
    Message,
    Reasoning,
    item_from_json,
)
from .models import (
    ReasoningConfig,
    TextControls,
)

if TYPE_CHECKING:
    import cattrs

_converter: cattrs.Converter | None = None
_converter_lock = threading.Lock()
#: Values cattrs passes through unchanged.
_PLAIN = frozenset({str, int, float, bool})


def get_converter() -> cattrs.Converter:
    """The converter, configured on first use."""
    global _converter
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                _converter = _build_converter()
    return _converter


def __getattr__(name: str) -> Any:
    if name == "converter":
        return get_converter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _unstructure(value: Any) -> Any:
    """``converter.unstructure(value)``, without cattrs for plain values and our own models."""
    if value is None or value.__class__ in _PLAIN:
        return value
    hook = _HOOKS.get(value.__class__)
    if hook is not None:
        return hook(value)
    return get_converter().unstructure(value)


def _omit_none(inst: Any) -> dict[str, Any]:
    return {
        f.name: _unstructure(getattr(inst, f.name))
        for f in attrs.fields(type(inst))
        if getattr(inst, f.name) is not None
    }


def _message_parts(role: str, content: str | list[Any]) -> list[Any]:
    if isinstance(content, list):
        return [_unstructure(p) for p in content]
    kind = "output_text" if role == "assistant" else "input_text"
    return [{"type": kind, "text": content}]


def _base(item: Any) -> dict[str, Any]:
    # A decoded item goes back as it came, with its modelled fields (which attrs.evolve may
    # have changed) written over it: fields this library does not model are not lost.
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


def _unstructure_message(m: Message) -> dict[str, Any]:
    out = _base(m)
    out["role"] = m.role
    out["content"] = _message_parts(m.role, m.content)
    _put(out, "id", m.id)
    _put(out, "status", m.status)
    _put(out, "phase", m.phase)
    return out


def _unstructure_function_call(c: FunctionCall) -> dict[str, Any]:
    out = _base(c)
    out.update(name=c.name, arguments=c.arguments, call_id=c.call_id)
    _put(out, "id", c.id)
    _put(out, "status", c.status)
    _put(out, "namespace", c.namespace)
    return out


def _unstructure_function_call_output(o: FunctionCallOutput) -> dict[str, Any]:
    out = _base(o)
    out.update(call_id=o.call_id, output=_unstructure(o.output))
    _put(out, "id", o.id)
    return out


def _summary_part(part: Any) -> Any:
    return {"type": "summary_text", "text": part} if isinstance(part, str) else part


def _unstructure_reasoning(r: Reasoning) -> dict[str, Any]:
    out = _base(r)
    out["summary"] = [_summary_part(p) for p in r.summary]
    _put(out, "content", None if r.content is None else [
        {"type": "reasoning_text", "text": p} if isinstance(p, str) else p for p in r.content])
    if r._raw is None or r.encrypted_content is not None:
        # A reasoning item built here sends null when it has none, as the Codex CLI does; a
        # decoded one goes back as it came.
        out["encrypted_content"] = r.encrypted_content
    _put(out, "id", r.id or None)
    return out


def _unstructure_item(item: Any) -> dict[str, Any]:
    """The other typed items: their modelled fields over their JSON, None fields omitted."""
    out = _base(item)
    for f in attrs.fields(type(item)):
        if f.name not in ("type", "_raw"):
            _put(out, f.name, _unstructure(getattr(item, f.name)))
    return out


_HOOKS: dict[type, Callable[[Any], Any]] = {
    Message: _unstructure_message,
    FunctionCall: _unstructure_function_call,
    FunctionCallOutput: _unstructure_function_call_output,
    Reasoning: _unstructure_reasoning,
    ReasoningConfig: _omit_none,
    TextControls: _omit_none,
    Item: lambda item: dict(item.raw),
}
for _cls in ITEM_TYPES.values():
    _HOOKS.setdefault(_cls, _unstructure_item)


def item_to_json(item: InputItem | Item) -> dict[str, Any]:
    """One input item in Responses JSON form; dicts pass through unchanged (unknown types too)."""
    if isinstance(item, Mapping):
        return dict(item)
    result = _unstructure(item)
    if not isinstance(result, dict):
        raise TypeError(f"cannot send {type(item).__name__} as an input item")
    return result


def options_to_json(value: Any) -> Any:
    """``reasoning`` / ``text`` controls as JSON, with unset sub-keys omitted."""
    if value is None or isinstance(value, Mapping):
        return None if value is None else {k: v for k, v in value.items() if v is not None}
    return _unstructure(value)


# --- events: tagged union on "type" ------------------------------------------------------------


@attrs.frozen
class UnknownEvent(Event):
    """An event of a type this version does not know, kept whole."""

    raw: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """The event's own ``type`` tag."""
        return str(self.raw.get("type", "unknown"))


def _unstructure_event(ev: Event) -> dict[str, Any]:
    if isinstance(ev, UnknownEvent):
        return dict(ev.raw)
    out: dict[str, Any] = {"type": ev.type}
    for f in attrs.fields(type(ev)):  # type: ignore[arg-type]
        out[f.name] = _unstructure(getattr(ev, f.name))
    return out


def _structure_event(data: Mapping[str, Any], _: Any) -> Event:
    cls = EVENT_TYPES.get(str(data.get("type", "")))
    if cls is None:
        return UnknownEvent(raw=dict(data))
    fields = {k: v for k, v in data.items() if k != "type"}
    return _EVENT_STRUCTURERS[cls](fields, cls)


def _structure_item(data: Any, cls: type[Item]) -> Item:
    if isinstance(data, Item):
        data = data.raw
    if not isinstance(data, Mapping):
        raise TypeError(f"an item is a JSON object, got {type(data).__name__}")
    item = item_from_json(dict(data))
    if not isinstance(item, cls):
        raise ValueError(f"{data.get('type')!r} item does not fit {cls.__name__}")
    return item


def _is_event(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Event)


_EVENT_STRUCTURERS: dict[type[Event], Callable[[Any, Any], Event]] = {}


def _build_converter() -> cattrs.Converter:
    import cattrs
    import cattrs.gen

    converter = cattrs.Converter()
    for cls, hook in _HOOKS.items():
        converter.register_unstructure_hook(cls, hook)
    converter.register_unstructure_hook_func(_is_event, _unstructure_event)
    converter.register_structure_hook(Event, _structure_event)
    for item_cls in (Item, *ITEM_TYPES.values()):
        converter.register_structure_hook(item_cls, _structure_item)
    converter.register_structure_hook(TokenUsage, lambda d, _: TokenUsage(**d))
    converter.register_structure_hook(
        RateLimitSnapshot, cattrs.gen.make_dict_structure_fn(RateLimitSnapshot, converter)
    )
    # Concrete event classes get their own generated structurers: a hook registered for the
    # base class would otherwise catch them too (cattrs dispatches on subclasses).
    _EVENT_STRUCTURERS.update({
        cls: cattrs.gen.make_dict_structure_fn(cls, converter) for cls in EVENT_TYPES.values()
    })
    return converter


def event_to_json(ev: Event) -> dict[str, Any]:
    """An event as a JSON-ready dict tagged by ``type`` (used by ``codexapi chat --json``)."""
    result = get_converter().unstructure(ev, Event)
    assert isinstance(result, dict)
    return result


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The inverse of :func:`event_to_json`; unknown types give :class:`UnknownEvent`."""
    return get_converter().structure(data, Event)


__all__ = [
    "UnknownEvent",
    "converter",  # noqa: F822 - provided by the module __getattr__, built on first use
    "event_from_json",
    "event_to_json",
    "get_converter",
    "item_to_json",
    "options_to_json",
]
