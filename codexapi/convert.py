"""The one cattrs converter: models to JSON and back.

Configured here and nowhere else. Request items unstructure to their Responses JSON form with
``None`` fields omitted; events unstructure to a dict tagged by ``type`` and structure back
from one (unknown tags become :class:`UnknownEvent`, nothing is lost). The stream decoders do
not use it per event: decoding is the hot path and builds events directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from .events import (
    EVENT_TYPES,
    Event,
    Item,
    RateLimitSnapshot,
    TokenUsage,
)
from .models import (
    FunctionCall,
    FunctionCallOutput,
    InputItem,
    Message,
    Reasoning,
    ReasoningConfig,
    TextControls,
)

converter = cattrs.Converter()


def _omit_none(inst: Any) -> dict[str, Any]:
    return {
        f.name: converter.unstructure(getattr(inst, f.name))
        for f in attrs.fields(type(inst))
        if getattr(inst, f.name) is not None
    }


def _message_parts(role: str, content: str | list[Any]) -> list[Any]:
    if isinstance(content, list):
        return [converter.unstructure(p) for p in content]
    kind = "output_text" if role == "assistant" else "input_text"
    return [{"type": kind, "text": content}]


def _unstructure_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "message", "role": m.role,
                           "content": _message_parts(m.role, m.content)}
    if m.id is not None:
        out["id"] = m.id
    return out


def _unstructure_function_call(c: FunctionCall) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "function_call", "name": c.name, "arguments": c.arguments,
                           "call_id": c.call_id}
    if c.id is not None:
        out["id"] = c.id
    return out


def _unstructure_function_call_output(o: FunctionCallOutput) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": o.call_id,
            "output": converter.unstructure(o.output)}


def _summary_part(part: Any) -> Any:
    return {"type": "summary_text", "text": part} if isinstance(part, str) else part


def _unstructure_reasoning(r: Reasoning) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "reasoning", "summary": [_summary_part(p) for p in r.summary]}
    if r.content is not None:
        out["content"] = [
            {"type": "reasoning_text", "text": p} if isinstance(p, str) else p for p in r.content
        ]
    if r.encrypted_content is not None:
        out["encrypted_content"] = r.encrypted_content
    if r.id:
        out["id"] = r.id
    return out


converter.register_unstructure_hook(Message, _unstructure_message)
converter.register_unstructure_hook(FunctionCall, _unstructure_function_call)
converter.register_unstructure_hook(FunctionCallOutput, _unstructure_function_call_output)
converter.register_unstructure_hook(Reasoning, _unstructure_reasoning)
converter.register_unstructure_hook(ReasoningConfig, _omit_none)
converter.register_unstructure_hook(TextControls, _omit_none)
converter.register_unstructure_hook(Item, lambda item: dict(item.raw))


def item_to_json(item: InputItem | Item) -> dict[str, Any]:
    """One input item in Responses JSON form; dicts pass through unchanged (unknown types too)."""
    if isinstance(item, Mapping):
        return dict(item)
    result = converter.unstructure(item)
    if not isinstance(result, dict):
        raise TypeError(f"cannot send {type(item).__name__} as an input item")
    return result


def options_to_json(value: Any) -> Any:
    """``reasoning`` / ``text`` controls as JSON, with unset sub-keys omitted."""
    if value is None or isinstance(value, Mapping):
        return None if value is None else {k: v for k, v in value.items() if v is not None}
    return converter.unstructure(value)


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
        out[f.name] = converter.unstructure(getattr(ev, f.name))
    return out


def _structure_event(data: Mapping[str, Any], _: Any) -> Event:
    cls = EVENT_TYPES.get(str(data.get("type", "")))
    if cls is None:
        return UnknownEvent(raw=dict(data))
    fields = {k: v for k, v in data.items() if k != "type"}
    return _EVENT_STRUCTURERS[cls](fields, cls)


def _is_event(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Event)


converter.register_unstructure_hook_func(_is_event, _unstructure_event)
converter.register_structure_hook(Event, _structure_event)
converter.register_structure_hook(Item, lambda data, _: Item(data))
converter.register_structure_hook(TokenUsage, lambda d, _: TokenUsage(**d))
converter.register_structure_hook(
    RateLimitSnapshot, cattrs.gen.make_dict_structure_fn(RateLimitSnapshot, converter)
)
# Concrete event classes get their own generated structurers: a hook registered for the
# base class would otherwise catch them too (cattrs dispatches on subclasses).
_EVENT_STRUCTURERS = {
    cls: cattrs.gen.make_dict_structure_fn(cls, converter) for cls in EVENT_TYPES.values()
}


def event_to_json(ev: Event) -> dict[str, Any]:
    """An event as a JSON-ready dict tagged by ``type`` (used by ``codexapi chat --json``)."""
    result = converter.unstructure(ev, Event)
    assert isinstance(result, dict)
    return result


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The inverse of :func:`event_to_json`; unknown types give :class:`UnknownEvent`."""
    return converter.structure(data, Event)


__all__ = [
    "UnknownEvent",
    "converter",
    "event_from_json",
    "event_to_json",
    "item_to_json",
    "options_to_json",
]
