"""Structured output for the scripted model: a JSON value that fits a ``text.format`` schema.

Deterministic, so tests and docs can assert on it: strings are the prompt, integers and numbers
its word count, booleans true, arrays one element, enums and unions their first choice;
``$ref`` into ``$defs`` is followed (a self-referencing schema stops at an empty array or
null where it allows one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 8


def output_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema a Responses body asks the output to follow (``text.format``), if any."""
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, Mapping) else None
    return None


def instance(schema: Mapping[str, Any], prompt: str) -> Any:
    """A value fitting ``schema``, made from ``prompt``."""
    return _Filler(schema, prompt).value(schema, 0)


class _Filler:
    def __init__(self, root: Mapping[str, Any], prompt: str) -> None:
        defs = root.get("$defs") or root.get("definitions") or {}
        self.defs = defs if isinstance(defs, Mapping) else {}
        self.prompt = prompt
        self.words = len(prompt.split())

    def value(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return None
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.value(self.defs.get(ref.rsplit("/", 1)[-1]), depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf"):
            choices = schema.get(key)
            if isinstance(choices, list) and choices:
                return self.value(choices[0], depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in schema:
            props = schema.get("properties")
            if not isinstance(props, Mapping):
                return {}
            return {name: self.value(sub, depth + 1) for name, sub in props.items()}
        if kind == "array":
            if depth >= _MAX_DEPTH - 1:
                return []
            return [self.value(schema.get("items"), depth + 1)]
        if kind == "string":
            return self.prompt
        if kind == "integer":
            return self.words
        if kind == "number":
            return float(self.words)
        if kind == "boolean":
            return True
        return None
