"""Structured output: the JSON schema a class asks the model for, and the format a request asks for.

:func:`json_schema` writes the schema the Responses API's strict structured outputs accept
(every property required, ``additionalProperties: false``, optional values as a union with
``null``); :func:`text_format` wraps it as the request's ``text.format``. Reading the output
back is :mod:`codexapi.convert`, through the one converter, so the class that described the
output also structures it.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .errors import ConfigError

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def json_schema(cls: type[Any], *, strict: bool = True) -> dict[str, Any]:
    """The JSON schema of attrs class ``cls``; nested attrs classes go into ``$defs``.

    Field types may be ``str``, ``int``, ``float``, ``bool``, ``None``, ``X | None`` (and other
    unions), ``list[X]`` / ``tuple[X, ...]``, ``Literal[...]``, an ``Enum``, another attrs
    class, and, when ``strict`` is off, ``dict[str, X]``. A field's ``metadata={"description":
    ...}`` becomes its description. Another type is a :class:`~codexapi.ConfigError`.
    """
    if not attrs.has(cls):
        raise ConfigError(f"json_schema needs an attrs class, got {cls!r}")
    defs: dict[str, Any] = {}
    schema = _Builder(strict, defs).object_schema(cls)
    if defs:
        schema["$defs"] = defs
    return schema


def text_format(cls: type[Any], *, name: str | None = None, strict: bool = True,
                description: str | None = None) -> dict[str, Any]:
    """The Responses ``text.format`` asking for JSON output shaped like attrs class ``cls``."""
    fmt: dict[str, Any] = {"type": "json_schema", "name": name or _NAME.sub("_", cls.__name__),
                           "strict": strict, "schema": json_schema(cls, strict=strict)}
    if description is not None:
        fmt["description"] = description
    return fmt


def format_of(text: Any) -> Any:
    """The ``format`` a request's ``text`` asks for, whichever form ``text`` takes (a
    :class:`~codexapi.TextControls` or the plain dict a caller may pass), or None."""
    if isinstance(text, Mapping):
        return text.get("format")
    return getattr(text, "format", None)


class _Builder:
    def __init__(self, strict: bool, defs: dict[str, Any]) -> None:
        self.strict = strict
        self.defs = defs
        self.names: dict[type, str] = {}

    def object_schema(self, cls: type[Any]) -> dict[str, Any]:
        try:
            hints = typing.get_type_hints(cls)
        except NameError as exc:
            raise ConfigError(f"cannot resolve the annotations of {cls.__name__}: {exc} "
                              "(define the types it uses at module level)") from None
        props: dict[str, Any] = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            if not field.init:
                continue
            name = field.alias or field.name
            prop = self.schema(hints.get(field.name, field.type), f"{cls.__name__}.{name}")
            description = field.metadata.get("description")
            if isinstance(description, str):
                prop = self.described(prop, description)
            props[name] = prop
            if self.strict or field.default is attrs.NOTHING:
                required.append(name)
        out: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                               "additionalProperties": False}
        if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):  # attrs' default
            out["description"] = " ".join(cls.__doc__.split())
        return out

    def described(self, prop: dict[str, Any], description: str) -> dict[str, Any]:
        """``prop`` with a description. Strict structured output refuses a ``$ref`` with
        other keys beside it, so a field of an attrs class gets the class's schema inlined
        (as openai-python does), or, for a class still being built (a cycle), a one-way
        ``anyOf`` holding the reference."""
        ref = prop.get("$ref")
        if ref is None:
            return {**prop, "description": description}
        inline = self.defs[ref.rsplit("/", 1)[1]]
        if not inline:
            return {"anyOf": [prop], "description": description}
        return {**inline, "description": description}

    def schema(self, tp: Any, where: str) -> dict[str, Any]:
        if tp in _SCALARS:
            return {"type": _SCALARS[tp]}
        if tp is None or tp is type(None):
            return {"type": "null"}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Union or origin is types.UnionType:
            return {"anyOf": [self.schema(a, where) for a in args]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (list, tuple, Sequence, set, frozenset) and args:
            if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
                raise ConfigError(f"{where}: use tuple[X, ...] (fixed-length tuples have no "
                                  "strict JSON schema)")
            return {"type": "array", "items": self.schema(args[0], where)}
        if origin in (dict, Mapping) and args and args[0] is str:
            if self.strict:
                raise ConfigError(f"{where}: strict structured output has no schema for a dict "
                                  "with free keys; use a nested attrs class, or strict=False")
            return {"type": "object", "additionalProperties": self.schema(args[1], where)}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            values = [m.value for m in tp]
            return {"enum": values}
        if isinstance(tp, type) and attrs.has(tp):
            name = self.names.get(tp)
            if name is None:
                # Two classes of one name (from two modules) each get their own definition.
                name = tp.__name__
                if name in self.defs:
                    name = _NAME.sub("_", f"{tp.__module__}.{tp.__qualname__}")
                self.names[tp] = name
                self.defs[name] = {}  # placeholder: a class may refer to itself
                self.defs[name] = self.object_schema(tp)
            return {"$ref": f"#/$defs/{name}"}
        raise ConfigError(f"{where}: no JSON schema for type {tp!r}")


__all__ = ["json_schema", "text_format"]
