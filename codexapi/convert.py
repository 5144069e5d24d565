"""JSON in and out: text to values (orjson), the library's models to values and back (the one
cattrs converter), and model output into a caller's class.

The converter is configured here and nowhere else. Request items unstructure to their
Responses JSON form with ``None`` fields omitted; events unstructure to a dict tagged by
``type`` and structure back from one (unknown tags become :class:`UnknownEvent`, nothing is
lost). The stream decoders do not use it per event: decoding is the hot path and builds
events directly.

cattrs itself is imported when the converter is first needed (``converter``, events to and from
JSON, a value of a type the hand-written hooks here do not cover): building request bodies from
the library's own models never needs it, so a Client sends its first request without paying for
the import.
"""

from __future__ import annotations

import json
import sys
import threading
import typing
from collections import abc
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import orjson

from .errors import ConfigError, OutputParseError
from .events import (
    EVENT_TYPES,
    Event,
    RateLimitSnapshot,
    TokenUsage,
)
from .items import (
    ITEM_TYPES,
    InputItem,
    Item,
    item_from_json,
)
from .models import (
    ReasoningConfig,
    TextControls,
)
from .schema import is_pydantic_model

if TYPE_CHECKING:
    import cattrs

T = TypeVar("T")

#: Parse JSON text (raises ``ValueError`` on bad input). orjson's own function, not a wrapper:
#: the stream decoders call it once per event.
loads: Callable[[str | bytes], Any] = orjson.loads


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, keys in insertion order."""
    return orjson.dumps(obj)


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


_HOOKS: dict[type, Callable[[Any], Any]] = {
    ReasoningConfig: _omit_none,
    TextControls: _omit_none,
}
# Items own their JSON form (codexapi.items): decoded ones go back as they came.
_ITEM_CLASSES: tuple[type[Item], ...] = (Item, *ITEM_TYPES.values())
for _item_cls in _ITEM_CLASSES:
    _HOOKS[_item_cls] = _item_cls.to_dict


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


def _exactly(cls: type, name: str, also: tuple[type, ...] = ()) -> Callable[[Any, Any], Any]:
    """A structure hook taking JSON values of ``cls``'s own JSON type only. cattrs' default
    calls ``cls(value)``, so model output ``"false"`` for a ``bool`` became ``True``, ``3.9``
    for an ``int`` became 3 and ``5`` for a ``str`` became ``"5"``: wrong values, no error.
    An integer is a number, so ``also`` lets a ``float`` take one (``bool`` never counts)."""
    accepts = (cls, *also)

    def structure(value: Any, _: Any) -> Any:
        if value.__class__ not in accepts:
            raise TypeError(f"expected {name}, got {type(value).__name__} {value!r:.40}")
        return cls(value) if value.__class__ is not cls else value

    return structure


#: What a JSON array may structure into (``tuple`` only as ``tuple[X, ...]``).
_ARRAY_TYPES: dict[Any, type] = {list: list, tuple: tuple, set: set, frozenset: frozenset,
                                 abc.Sequence: tuple, abc.MutableSequence: list,
                                 abc.Set: frozenset, abc.MutableSet: set}


def _is_array_type(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if origin is tuple:
        args = typing.get_args(tp)
        return not args or (len(args) == 2 and args[1] is Ellipsis)
    return origin in _ARRAY_TYPES


def _arrays_only(tp: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """Collections structure from JSON arrays only: cattrs' default takes any iterable, so
    a string for a ``list[str]`` became its characters, an object its keys."""
    from cattrs.cols import list_structure_factory

    args = typing.get_args(tp)
    as_list: Any = list[args[0]] if args else list  # type: ignore[valid-type]
    items = list_structure_factory(as_list, converter)
    make = _ARRAY_TYPES[typing.get_origin(tp) or tp]

    def structure(value: Any, _: Any) -> Any:
        if value.__class__ is not list and value.__class__ is not tuple:
            raise TypeError(f"expected an array, got {type(value).__name__} {value!r:.40}")
        out = items(value, as_list)
        return out if make is list else make(out)

    return structure


def _objects_only(tp: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """Mappings structure from JSON objects only (a list was an AttributeError)."""
    from cattrs.cols import mapping_structure_factory

    inner = mapping_structure_factory(tp, converter)

    def structure(value: Any, cls: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {type(value).__name__} {value!r:.40}")
        return inner(value, cls)

    return structure


def _pydantic_structure(tp: Any, _converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """A pydantic model inside an attrs class or dataclass is validated by pydantic itself;
    its ValidationError names the field (cattrs adds where the model sits)."""

    def structure(value: Any, cls: Any) -> Any:
        return cls.model_validate(value)

    return structure


def _pydantic_unstructure(tp: Any, _converter: cattrs.Converter) -> Callable[[Any], Any]:
    return lambda value: value.model_dump(mode="json")


def _build_converter() -> cattrs.Converter:
    import cattrs
    import cattrs.cols
    import cattrs.gen

    # use_alias: an attrs field's JSON key is its __init__ name (``_secret`` reads "secret"),
    # the name codexapi.json_schema gives the model, so the schema and parsed(cls) agree.
    converter = cattrs.Converter(use_alias=True)
    # JSON scalars structure only from their own JSON type (see _exactly).
    converter.register_structure_hook(str, _exactly(str, "a string"))
    converter.register_structure_hook(bool, _exactly(bool, "a boolean"))
    converter.register_structure_hook(int, _exactly(int, "an integer"))
    converter.register_structure_hook(float, _exactly(float, "a number", also=(int,)))
    converter.register_structure_hook_factory(_is_array_type, _arrays_only)
    converter.register_structure_hook_factory(cattrs.cols.is_mapping, _objects_only)
    converter.register_structure_hook_factory(is_pydantic_model, _pydantic_structure)
    converter.register_unstructure_hook_factory(is_pydantic_model, _pydantic_unstructure)
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


# --- model output into values --------------------------------------------------------------

def loads_json(text: str, error: Callable[[str], OutputParseError]) -> Any:
    """``json.loads(text)``, failing with ``error(detail)``."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"not valid JSON ({exc})") from None


def structure(data: Any, cls: type[T], error: Callable[[str], OutputParseError]) -> T:
    """``data`` structured into ``cls`` by the one converter (a pydantic model by its own
    ``model_validate``), failing with ``error(detail)``; the detail names each field at
    fault."""
    if is_pydantic_model(cls):
        return _validate(data, cls, error)
    import cattrs

    try:
        return get_converter().structure(data, cls)
    except (NameError, cattrs.StructureHandlerNotFoundError) as exc:
        # The class, not the output, is at fault: no output would fit, so say how to fix it.
        hint = (" (define the types it uses at module level)" if isinstance(exc, NameError)
                else " (use attrs classes, str, int, float, bool, None, lists, dicts, enums "
                "and Literals)")
        raise ConfigError(f"cannot structure values into {cls!r}: {exc}{hint}") from None
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc, format_exception=_field_error))
        else:
            detail = f"{type(exc).__name__}: {exc}"
        raise error(f"not a valid {cls.__name__} ({detail})") from None


def _field_error(exc: BaseException, type_: Any) -> str:
    """cattrs' message for one field, with a pydantic model's own field errors spelt out."""
    if _is_validation_error(exc):
        return _pydantic_detail(exc)
    from cattrs.v import format_exception

    return format_exception(exc, type_)


def _is_validation_error(exc: BaseException) -> bool:
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(exc, pydantic.ValidationError)


def _pydantic_detail(exc: Any) -> str:
    """``loc.of.field: message`` for each of a pydantic ValidationError's errors."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(the value)"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _validate(data: Any, cls: type[T], error: Callable[[str], OutputParseError]) -> T:
    try:
        value: T = cls.model_validate(data)  # type: ignore[attr-defined]
    except Exception as exc:
        if not _is_validation_error(exc):
            raise
        raise error(f"not a valid {cls.__name__} ({_pydantic_detail(exc)})") from None
    return value


def parse_output(text: str, cls: type[T] | None = None, refusal: str | None = None) -> Any:
    """Model text output as JSON, structured into ``cls`` when given. ``refusal`` is what the
    model said instead of answering, if it refused."""

    def error(detail: str) -> OutputParseError:
        preview = text if len(text) <= 200 else text[:200] + "…"
        return OutputParseError(f"the model's output is {detail}: {preview!r}", text, detail)

    if not text.strip():
        if refusal is not None:
            shown = refusal if len(refusal) <= 200 else refusal[:200] + "…"
            raise OutputParseError(f"the model refused to answer: {shown!r}", text, "refused",
                                   refusal)
        raise error("empty, not JSON")
    data = loads_json(text, error)
    return data if cls is None else structure(data, cls, error)


__all__ = [
    "UnknownEvent",
    "converter",  # noqa: F822 - provided by the module __getattr__, built on first use
    "dumps",
    "event_from_json",
    "event_to_json",
    "get_converter",
    "item_to_json",
    "loads",
    "loads_json",
    "options_to_json",
    "parse_output",
    "structure",
]
