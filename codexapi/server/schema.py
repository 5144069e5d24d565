"""A value valid against a JSON schema, for the scripted model's tool arguments and structured
output. Covers the subset tool and ``text.format`` schemas use (types, ``properties`` /
``required``, ``items`` / ``prefixItems``, ``enum`` / ``const``, ``anyOf`` / ``oneOf`` /
``allOf``, local ``$ref`` into ``$defs`` / ``definitions``, length and range bounds); a schema
no value can satisfy is an :class:`UnsatisfiableSchema` naming where."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

#: ``$ref`` hops followed on one path before a schema counts as infinitely recursive.
MAX_DEPTH = 32
#: Past this depth a value is kept as small as its schema allows: optional array items are
#: left out and an ``anyOf`` / ``oneOf`` tries a ``null`` branch first, so a recursive schema
#: that allows an end (``children: list[Node]``, ``parent: Node | None``) gets one.
SHALLOW = 6

#: Gives a string property its value: (property name, its schema) -> text, or None for default.
StringHint = Callable[[str, Mapping[str, Any]], str | None]


class UnsatisfiableSchema(ValueError):
    """No value satisfies the schema; the message says where (a JSON-pointer-like path)."""


def instance(schema: Any, *, text: str = "", hint: StringHint | None = None) -> Any:
    """A value valid against ``schema``. Strings get ``text`` (fitted to their bounds) unless
    ``hint`` gives one for their property name."""
    return _Builder(schema, text, hint).build(schema, "#", "", 0)


class _Builder:
    def __init__(self, root: Any, text: str, hint: StringHint | None) -> None:
        self.root = root
        self.text = text
        self.hint = hint

    def fail(self, where: str, why: str) -> UnsatisfiableSchema:
        return UnsatisfiableSchema(f"schema at {where} {why}")

    def resolve(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise self.fail(where, f"has a non-local $ref {ref!r}")
        node: Any = self.root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise self.fail(where, f"has a $ref {ref!r} that points nowhere")
            node = node[part]
        return node

    def build(self, schema: Any, where: str, name: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(where, "only has infinitely nested values ($ref loop)")
        if schema is True or schema is None:
            return self.string({}, name)
        if schema is False:
            raise self.fail(where, "is `false`: no value is allowed")
        if not isinstance(schema, Mapping):
            raise self.fail(where, f"is a {type(schema).__name__}, not a schema object")
        if "$ref" in schema:
            target = self.resolve(str(schema["$ref"]), where)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            merged = {**target, **rest} if isinstance(target, Mapping) and rest else target
            return self.build(merged, str(schema["$ref"]), name, depth + 1)
        if schema.get("not") in ({}, True):
            raise self.fail(where, "is `not: {}`: no value is allowed")
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            choices = schema["enum"]
            if not isinstance(choices, list) or not choices:
                raise self.fail(where, "has an empty `enum`")
            return choices[0]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = schema[key]
                if not isinstance(branches, list) or not branches:
                    raise self.fail(where, f"has an empty `{key}`")
                errors = []
                order = list(enumerate(branches))
                if depth >= SHALLOW:
                    order.sort(key=lambda pair: not _is_null(pair[1]))
                for i, branch in order:
                    try:
                        return self.build(branch, f"{where}/{key}/{i}", name, depth + 1)
                    except UnsatisfiableSchema as exc:
                        errors.append(str(exc))
                raise self.fail(where, f"has no satisfiable `{key}` branch ({'; '.join(errors)})")
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"] or []:
                if isinstance(part, Mapping) and "$ref" in part:
                    part = self.resolve(str(part["$ref"]), where)
                if isinstance(part, Mapping):
                    for key, value in part.items():
                        if key == "properties":
                            merged["properties"] = {**merged.get("properties", {}), **value}
                        elif key == "required":
                            merged["required"] = [*merged.get("required", []), *value]
                        else:
                            merged.setdefault(key, value)
            return self.build(merged, where, name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise self.fail(where, "has an empty `type` list")
            concrete = [k for k in kind if k != "null"]
            kind = concrete[0] if concrete else "null"
        if kind is None:
            kind = ("object" if "properties" in schema or "required" in schema
                    else "array" if "items" in schema or "prefixItems" in schema else "string")
        if kind == "object":
            return self.object(schema, where, depth)
        if kind == "array":
            return self.array(schema, where, name, depth)
        if kind == "string":
            return self.string(schema, name, where)
        if kind in ("integer", "number"):
            return self.number(schema, where, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        raise self.fail(where, f"has an unknown type {kind!r}")

    def object(self, schema: Mapping[str, Any], where: str, depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        if not isinstance(props, Mapping) or not isinstance(required, list):
            raise self.fail(where, "has `properties` / `required` of the wrong type")
        out: dict[str, Any] = {}
        for key in required:
            if key in props:
                out[key] = self.build(props[key], f"{where}/properties/{key}", key, depth + 1)
            elif schema.get("additionalProperties") is False:
                raise self.fail(where, f"requires {key!r}, which `additionalProperties: false` "
                                "forbids")
            else:
                out[key] = self.string({}, key)
        high = schema.get("maxProperties")
        if isinstance(high, int) and len(out) > high:
            raise self.fail(where, f"requires {len(out)} properties, over its maxProperties "
                            f"{high}")
        return out

    def array(self, schema: Mapping[str, Any], where: str, name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        if isinstance(high, int) and low > high:
            raise self.fail(where, f"has minItems {low} > maxItems {high}")
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        if name in _COMMAND_KEYS and self.hint is not None:
            words = self.hint(name, {"type": "string"})
            if words is not None and not prefix:
                return shlex.split(words)
        out = [self.build(p, f"{where}/prefixItems/{i}", "", depth + 1)
               for i, p in enumerate(prefix)]
        wanted = 1 if depth < SHALLOW and (not isinstance(high, int) or high >= 1) else 0
        while len(out) < max(low, wanted):
            if items is False:
                if len(out) >= low:
                    break
                raise self.fail(where, "needs more items than `prefixItems` and `items: false` "
                                "allow")
            try:
                out.append(self.build(items, f"{where}/items", "", depth + 1))
            except UnsatisfiableSchema:
                if len(out) < low:
                    raise
                break  # an item the schema does not require, and none can be built
        return out

    def string(self, schema: Mapping[str, Any], name: str, where: str = "#") -> str:
        text = self.hint(name, schema) if self.hint is not None and name else None
        fmt = schema.get("format")
        if text is None:
            text = _FORMATS.get(fmt, self.text) if isinstance(fmt, str) else self.text
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if isinstance(high, int) and low > high:
            raise self.fail(where, f"has minLength {low} > maxLength {high}")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if isinstance(high, int) and len(text) > high:
            text = text[:high]
        return text

    def number(self, schema: Mapping[str, Any], where: str, integer: bool) -> int | float:
        low = schema.get("minimum")
        high = schema.get("maximum")
        xlow = schema.get("exclusiveMinimum")
        xhigh = schema.get("exclusiveMaximum")
        step = 1 if integer else 0.5
        lo = max([v for v in (low,) if isinstance(v, int | float)]
                 + [v + step for v in (xlow,) if isinstance(v, int | float)], default=None)
        hi = min([v for v in (high,) if isinstance(v, int | float)]
                 + [v - step for v in (xhigh,) if isinstance(v, int | float)], default=None)
        value: float = 1.0
        if lo is not None and value < lo:
            value = lo
        if hi is not None and value > hi:
            value = hi
        if integer:
            value = float(int(value)) if value == int(value) else float(int(value) + 1)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(where, f"has an empty range ({lo}..{hi})")
        return int(value) if integer else value


_COMMAND_KEYS = frozenset({"cmd", "command"})

_FORMATS = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _is_null(schema: Any) -> bool:
    return isinstance(schema, Mapping) and (schema.get("type") == "null"
                                            or ("const" in schema and schema["const"] is None))
