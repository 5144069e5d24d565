"""The scripted model's JSON-schema instances: valid values, and clear errors for schemas no
value satisfies."""

from __future__ import annotations

from typing import Any

import pytest

from codexapi.server.schema import UnsatisfiableSchema, instance


@pytest.mark.parametrize(("schema", "value"), [
    ({"type": ["null", "integer"], "exclusiveMinimum": 4}, 5),
    ({"type": "number", "minimum": -2.5, "maximum": -1}, -1),
    ({"anyOf": [{"enum": []}, {"type": "boolean"}]}, True),
    ({"allOf": [{"type": "object", "required": ["a"], "properties": {"a": {"const": 1}}},
                {"required": ["b"], "properties": {"b": {"type": "null"}}}]},
     {"a": 1, "b": None}),
    ({"type": "string", "format": "date-time"}, "2025-01-01T00:00:00Z"),
    ({"type": "string", "minLength": 12}, "hello worldx"),
    ({"type": "array", "prefixItems": [{"const": "x"}], "items": False}, ["x"]),
    ({"type": "array", "maxItems": 0}, []),
    ({"type": "object", "required": ["free"]}, {"free": "hello world"}),
    ({"$ref": "#/definitions/n", "definitions": {"n": {"type": "integer"}}}, 1),
    (True, "hello world"),
])
def test_values_satisfy_their_schema(schema: Any, value: Any) -> None:
    assert instance(schema, text="hello world") == value


@pytest.mark.parametrize(("schema", "why"), [
    (False, "no value is allowed"),
    ({"not": {}}, "no value is allowed"),
    ({"enum": []}, "empty `enum`"),
    ({"anyOf": [{"enum": []}, False]}, "no satisfiable `anyOf`"),
    ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems 3 > maxItems 1"),
    ({"type": "string", "minLength": 3, "maxLength": 1}, "minLength 3 > maxLength 1"),
    ({"type": "integer", "minimum": 1, "exclusiveMaximum": 2, "multipleOf": 1,
      "maximum": 0}, "empty range"),
    ({"type": "tensor"}, "unknown type 'tensor'"),
    ({"$ref": "https://example.com/schema"}, "non-local $ref"),
    ({"$ref": "#/$defs/missing"}, "points nowhere"),
    ({"$ref": "#/$defs/loop", "$defs": {"loop": {"type": "object", "required": ["next"],
                                                 "properties": {"next": {"$ref":
                                                                         "#/$defs/loop"}}}}},
     "infinitely nested"),
    ({"type": "object", "required": ["x"], "additionalProperties": False},
     "`additionalProperties: false` forbids"),
    ({"type": "object", "required": ["a", "b"], "maxProperties": 1}, "over its maxProperties"),
])
def test_unsatisfiable_schemas_say_why(schema: Any, why: str) -> None:
    with pytest.raises(UnsatisfiableSchema, match="schema at #") as caught:
        instance(schema)
    assert why in str(caught.value)


def test_a_recursive_schema_that_allows_an_end_gets_one() -> None:
    # What json_schema gives for `Node(name: str, children: list[Node], parent: Node | None)`
    # in strict mode: every property required, so only empty lists and nulls can end it.
    node = {"type": "object", "additionalProperties": False,
            "required": ["name", "children", "parent"],
            "properties": {"name": {"type": "string"},
                           "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                           "parent": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}}
    value = instance({"$ref": "#/$defs/Node", "$defs": {"Node": node}}, text="n")

    def depth(v: Any) -> int:
        kids = [*v["children"], *([v["parent"]] if v["parent"] is not None else [])]
        assert set(v) == {"name", "children", "parent"} and v["name"] == "n"
        return 1 + max((depth(k) for k in kids), default=0)

    assert 1 < depth(value) <= 8


def test_items_false_without_prefix_is_the_empty_array() -> None:
    assert instance({"type": "array", "items": False}) == []
    assert instance({"type": "array", "items": {"enum": []}}) == []  # no item can be built
