"""Structured output: the JSON schema a class asks the model for, and the format a request asks for.

:func:`json_schema` writes the schema the Responses API's strict structured outputs accept
(every property required, ``additionalProperties: false``, optional values as a union with
``null``) for an attrs class, a dataclass or a pydantic v2 model (pydantic's own schema, made
strict-mode safe; pydantic is never imported here, only recognised when a class is one);
:func:`text_format` wraps it as the request's ``text.format``; :func:`parameters_schema` is the
same for a function's parameters (:class:`codexapi.Tool`). Reading the output back is
:mod:`codexapi.convert`, through the one converter, so the class that described the output also
structures it.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .errors import ConfigError

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def is_pydantic_model(cls: Any) -> bool:
    """Whether ``cls`` is a pydantic v2 model class. Never imports pydantic: a class can only
    be a model if pydantic is imported already."""
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None) if pydantic is not None else None
    return (base is not None and isinstance(cls, type) and issubclass(cls, base)
            and hasattr(cls, "model_json_schema"))


def is_record_class(cls: Any) -> bool:
    """Whether ``cls`` is a class whose fields a schema describes: attrs, dataclass, pydantic."""
    return isinstance(cls, type) and (attrs.has(cls) or dataclasses.is_dataclass(cls)
                                      or is_pydantic_model(cls))


def json_schema(cls: type[Any], *, strict: bool = True) -> dict[str, Any]:
    """The JSON schema of ``cls``: an attrs class, a dataclass or a pydantic v2 model.

    For attrs classes and dataclasses, field types may be ``str``, ``int``, ``float``,
    ``bool``, ``None``, ``X | None`` (and other unions), ``list[X]`` / ``tuple[X, ...]``,
    ``Literal[...]``, an ``Enum``, another such class (in ``$defs``), and, when ``strict`` is
    off, ``dict[str, X]``. A field's ``metadata={"description": ...}`` becomes its
    description. A pydantic model's schema is its own ``model_json_schema()``, made strict-mode
    safe when ``strict`` (every object closed with all properties required, ``oneOf`` as
    ``anyOf``, no defaults, no ``$ref`` with siblings). Another type is a
    :class:`~codexapi.ConfigError`.
    """
    if not is_record_class(cls):
        raise ConfigError(f"json_schema needs an attrs class, a dataclass or a pydantic model, "
                          f"got {cls!r}")
    if is_pydantic_model(cls):
        return pydantic_schema(cls, strict=strict)
    defs: dict[str, Any] = {}
    schema = _Builder(strict, defs).object_schema(cls)
    if defs:
        schema["$defs"] = defs
    return schema


#: One parameter of :func:`parameters_schema`: (name, annotation, description or None,
#: whether it has a default).
Param = tuple[str, Any, "str | None", bool]


def parameters_schema(params: Sequence[Param], *, strict: bool = False,
                      where: str = "parameters") -> dict[str, Any]:
    """The object schema of a function's parameters (a tool's ``parameters``), by the same
    rules as :func:`json_schema`'s fields: with ``strict`` every parameter is required (a
    defaulted one should then accept null), else only those without a default."""
    defs: dict[str, Any] = {}
    schema = _Builder(strict, defs).object_of(params, where)
    if defs:
        schema["$defs"] = defs
    return schema


def pydantic_schema(cls: type[Any], *, strict: bool = True) -> dict[str, Any]:
    """Pydantic model ``cls``'s own JSON schema; with ``strict``, made strict-mode safe."""
    schema: dict[str, Any] = cls.model_json_schema()
    if not strict:
        return schema
    return _Strict(schema, cls.__name__).root()


class _Strict:
    """Rewrites a JSON schema (pydantic's) into what strict structured output accepts, as
    openai-python does for pydantic models: closed objects with every property required,
    ``anyOf`` for ``oneOf``, no ``default``/``discriminator``, a ``$ref`` with siblings inlined,
    and a one-element ``allOf`` merged into its parent."""

    def __init__(self, schema: dict[str, Any], name: str) -> None:
        self.schema = schema
        self.name = name
        self.defs: dict[str, Any] = schema.get("$defs") or {}

    def root(self) -> dict[str, Any]:
        defs = {k: self.node(v, f"{self.name}.$defs.{k}") for k, v in self.defs.items()}
        top = {k: v for k, v in self.schema.items() if k != "$defs"}
        ref = top.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            # A recursive model: pydantic puts the model itself in $defs; strict output wants
            # an object at the top.
            top = {**self.defs[ref.rsplit("/", 1)[1]],
                   **{k: v for k, v in top.items() if k != "$ref"}}
        out: dict[str, Any] = self.node(top, self.name)
        if defs:
            out["$defs"] = defs
        return out

    def node(self, node: Any, where: str) -> Any:
        if isinstance(node, list):
            return [self.node(v, where) for v in node]
        if not isinstance(node, dict):
            return node
        node = dict(node)
        ref = node.get("$ref")
        if isinstance(ref, str) and len(node) > 1 and ref.startswith("#/$defs/"):
            target = self.defs.get(ref.rsplit("/", 1)[1])
            if isinstance(target, dict):
                node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            del node["allOf"]
            return self.node({**all_of[0], **node}, where)
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
        node.pop("discriminator", None)
        node.pop("default", None)
        if node.get("type") == "object" or "properties" in node:
            props = node.get("properties") or {}
            extra = node.get("additionalProperties")
            if extra not in (None, False) and not props:
                raise ConfigError(f"{where}: strict structured output has no schema for a "
                                  "dict with free keys; use a nested model, or strict=False")
            node["properties"] = {k: self.node(v, f"{where}.{k}") for k, v in props.items()}
            node["required"] = list(props)
            node["additionalProperties"] = False
        for key in ("items", "anyOf", "prefixItems"):
            if key in node:
                node[key] = self.node(node[key], where)
        return node


def text_format(cls: type[Any], *, name: str | None = None, strict: bool = True,
                description: str | None = None) -> dict[str, Any]:
    """The Responses ``text.format`` asking for JSON output shaped like ``cls`` (an attrs
    class, a dataclass or a pydantic model; see :func:`json_schema`)."""
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
        params: list[Param] = []
        if attrs.has(cls):
            for field in attrs.fields(cls):
                if field.init:
                    params.append((field.alias or field.name, hints.get(field.name, field.type),
                                   field.metadata.get("description"),
                                   field.default is not attrs.NOTHING))
        else:
            for dfield in dataclasses.fields(cls):
                if dfield.init:
                    params.append((dfield.name, hints.get(dfield.name, dfield.type),
                                   dfield.metadata.get("description"),
                                   dfield.default is not dataclasses.MISSING
                                   or dfield.default_factory is not dataclasses.MISSING))
        out = self.object_of(params, cls.__name__)
        if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):  # attrs' default
            out["description"] = " ".join(cls.__doc__.split())
        return out

    def object_of(self, params: Sequence[Param], where: str) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for name, tp, description, has_default in params:
            prop = self.schema(tp, f"{where}.{name}")
            if isinstance(description, str):
                prop = self.described(prop, description)
            props[name] = prop
            if self.strict or not has_default:
                required.append(name)
        return {"type": "object", "properties": props, "required": required,
                "additionalProperties": False}

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
        if is_pydantic_model(tp):
            return self.pydantic(tp)
        if isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp)):
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

    def pydantic(self, tp: type[Any]) -> dict[str, Any]:
        """A pydantic model inside an attrs class or dataclass: its schema, and its own
        ``$defs``, join this schema's ``$defs`` (renamed where a name is taken)."""
        name = self.names.get(tp)
        if name is not None:
            return {"$ref": f"#/$defs/{name}"}
        schema = pydantic_schema(tp, strict=self.strict)
        inner = schema.pop("$defs", {})
        renames: dict[str, str] = {}
        for key in inner:
            renames[key] = self.free(key, renames)
        for key, value in inner.items():
            self.defs[renames[key]] = _renamed(value, renames)
        # A recursive model is in its own $defs already.
        name = renames.get(tp.__name__) or self.free(tp.__name__, renames)
        if name not in self.defs:
            self.defs[name] = _renamed(schema, renames)
        self.names[tp] = name
        return {"$ref": f"#/$defs/{name}"}

    def free(self, name: str, taken: Mapping[str, str]) -> str:
        """``name``, or ``name_2``, ``name_3``... if a definition already has it."""
        candidate, n = name, 1
        while candidate in self.defs or candidate in taken.values():
            n += 1
            candidate = f"{name}_{n}"
        return candidate


def _renamed(node: Any, renames: Mapping[str, str]) -> Any:
    """``node`` with each ``#/$defs/OLD`` reference pointing at ``#/$defs/NEW``."""
    if isinstance(node, list):
        return [_renamed(v, renames) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _renamed(v, renames) for k, v in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out["$ref"] = "#/$defs/" + renames.get(ref[8:], ref[8:])
    return out


__all__ = ["is_pydantic_model", "is_record_class", "json_schema", "parameters_schema",
           "pydantic_schema", "text_format"]
