"""Structured output and typed arguments with dataclasses and pydantic v2 models, beside attrs
classes: their schemas, the round trip through a server, and errors naming the field."""

from __future__ import annotations

import dataclasses
import enum
import json
import subprocess
import sys
from typing import Any, Literal

import attrs
import pydantic
import pytest
from conftest import make_client

from codexapi import (
    ConfigError,
    FunctionCall,
    OutputParseError,
    ResponsesRequest,
    StreamResult,
    TextControls,
    ToolArgumentsError,
    WireApi,
    json_schema,
)
from codexapi.server import EmbeddedServer


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@dataclasses.dataclass
class Reading:
    place: str
    degrees: float
    unit: Unit


@dataclasses.dataclass
class Forecast:
    """Tomorrow's weather."""

    city: str = dataclasses.field(metadata={"description": "The city asked about"})
    days: int = 1
    rain: bool | None = None
    readings: list[Reading] = dataclasses.field(default_factory=list)
    tone: Literal["plain", "cheerful"] = "plain"


@attrs.frozen
class AttrsReading:
    place: str
    degrees: float
    unit: Unit


@attrs.frozen
class AttrsForecast:
    """Tomorrow's weather."""

    city: str = attrs.field(metadata={"description": "The city asked about"})
    days: int = 1
    rain: bool | None = None
    readings: list[AttrsReading] = attrs.field(factory=list)
    tone: Literal["plain", "cheerful"] = "plain"


def test_a_dataclass_has_the_schema_of_the_same_attrs_class() -> None:
    as_attrs = json.dumps(json_schema(AttrsForecast)).replace("AttrsReading", "Reading")
    assert json_schema(Forecast) == json.loads(as_attrs)
    assert json_schema(Forecast, strict=False)["required"] == ["city"]


class City(pydantic.BaseModel):
    """A city."""

    name: str = pydantic.Field(description="Its name")
    population: int


class Shape(pydantic.BaseModel):
    kind: Literal["circle", "square"]
    size: float | None = None


class Atlas(pydantic.BaseModel):
    capital: City = pydantic.Field(description="The capital")
    cities: list[City] = []
    shape: Shape | City
    note: str | None = None


def closed_everywhere(node: Any) -> bool:
    """Every object of a schema is strict: closed, all properties required, no defaults, and
    every ``$ref`` alone."""
    if isinstance(node, list):
        return all(closed_everywhere(v) for v in node)
    if not isinstance(node, dict):
        return True
    if ("$ref" in node and len(node) > 1) or "default" in node or "oneOf" in node:
        return False
    if node.get("type") == "object" and (node.get("additionalProperties") is not False or
                                         node.get("required") != list(node["properties"])):
        return False
    return all(closed_everywhere(v) for v in node.values())


def test_a_pydantic_model_has_its_own_schema_made_strict() -> None:
    schema = json_schema(Atlas)
    assert closed_everywhere(schema)
    own = Atlas.model_json_schema()
    assert list(schema["properties"]) == list(own["properties"])
    assert own["required"] == ["capital", "shape"]  # pydantic's: strict wants all of them
    assert schema["required"] == ["capital", "cities", "shape", "note"]
    # pydantic's $ref + description became the class's schema inlined with its description.
    assert schema["properties"]["capital"]["description"] == "The capital"
    assert schema["properties"]["capital"]["properties"]["name"] == {
        "description": "Its name", "title": "Name", "type": "string"}
    assert schema["$defs"]["City"]["description"] == "A city."
    # Not strict: pydantic's schema as it is.
    assert json_schema(Atlas, strict=False) == own


class Counts(pydantic.BaseModel):
    counts: dict[str, int]


def test_a_pydantic_dict_with_free_keys_needs_strict_off() -> None:
    with pytest.raises(ConfigError, match=r"Counts.counts: strict structured output has no "
                                          "schema for a dict with free keys"):
        json_schema(Counts)
    assert json_schema(Counts, strict=False)["properties"]["counts"]["additionalProperties"] == {
        "type": "integer"}


class Tree(pydantic.BaseModel):
    value: int
    children: list[Tree] = []


@dataclasses.dataclass
class Garden:
    tree: Tree
    city: City
    reading: Reading


def test_recursive_and_nested_models() -> None:
    schema = json_schema(Tree)
    assert schema["type"] == "object" and closed_everywhere(schema)
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    garden = json_schema(Garden)
    assert closed_everywhere(garden)
    assert garden["properties"] == {"tree": {"$ref": "#/$defs/Tree"},
                                    "city": {"$ref": "#/$defs/City"},
                                    "reading": {"$ref": "#/$defs/Reading"}}
    assert set(garden["$defs"]) == {"Tree", "City", "Reading"}


@dataclasses.dataclass
class Patio:
    city: City
    reading: Reading


def test_other_classes_are_refused() -> None:
    with pytest.raises(ConfigError, match="an attrs class, a dataclass or a pydantic model"):
        json_schema(dict)


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
@pytest.mark.parametrize("cls", [Forecast, Atlas, Patio])
def test_round_trip_through_the_server(server: EmbeddedServer, wire: WireApi, cls: type
                                       ) -> None:
    request = ResponsesRequest(model="m", input="Lyon", text=TextControls.for_class(cls))
    with make_client(server, wire) as client:
        result = client.create(request)
    value = result.parsed(cls)
    assert type(value) is cls
    if cls is Forecast:
        assert value == Forecast(city="You said: Lyon", days=1, rain=True, tone="plain",
                                 readings=[Reading("You said: Lyon", 1.0, Unit.C)])
    elif cls is Atlas:
        assert value.capital == City(name="You said: Lyon", population=1)
        assert isinstance(value.shape, Shape | City)
    else:
        assert value == Patio(City(name="You said: Lyon", population=1),
                              Reading("You said: Lyon", 1.0, Unit.C))


def result_with(text: str) -> StreamResult:
    return StreamResult(text=text, items=[], response_id="r", usage=None)


@pytest.mark.parametrize(("cls", "data", "field"), [
    (City, {"name": "Lyon", "population": "many"}, "population: Input should be a valid "
                                                   "integer"),
    (City, {"population": 3}, "name: Field required"),
    (Atlas, {"capital": {"name": "a", "population": 1}, "shape": {"kind": "oval"}},
     "shape.Shape.kind: Input should be 'circle' or 'square'"),
    (Forecast, {"city": "Lyon", "days": "2"}, "expected int @ $.days"),
    (Garden, {"tree": {"value": 1}, "city": {"name": "a"},
              "reading": {"place": "x", "degrees": 1, "unit": "celsius"}},
     "population: Field required @ $.city"),
])
def test_a_mismatch_is_an_output_parse_error_naming_the_field(cls: type, data: Any,
                                                              field: str) -> None:
    with pytest.raises(OutputParseError, match=f"not a valid {cls.__name__}") as info:
        result_with(json.dumps(data)).parsed(cls)
    assert field in info.value.detail
    call = FunctionCall(name="f", arguments=json.dumps(data), call_id="c1")
    with pytest.raises(ToolArgumentsError) as call_info:
        call.parsed_arguments(cls)
    assert field in str(call_info.value) and call_info.value.call_id == "c1"


def test_parsed_arguments_into_a_model_and_a_dataclass() -> None:
    call = FunctionCall(name="f", arguments='{"name": "Lyon", "population": 5}', call_id="c")
    assert call.parsed_arguments(City) == City(name="Lyon", population=5)
    call = FunctionCall(name="f", arguments='{"place": "a", "degrees": 2, "unit": "celsius"}',
                        call_id="c")
    assert call.parsed_arguments(Reading) == Reading("a", 2.0, Unit.C)


def test_pydantic_is_not_imported_unless_a_class_is_a_model() -> None:
    code = ("import dataclasses, sys, attrs, codexapi\n"
            "from codexapi import StreamResult\n"
            "@dataclasses.dataclass\nclass D:\n    x: int\n"
            "@attrs.frozen\nclass A:\n    d: D\n"
            "codexapi.json_schema(A)\n"
            "print(StreamResult('{\"d\": {\"x\": 1}}', [], None, None).parsed(A))\n"
            "print('pydantic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.splitlines() == ["A(d=D(x=1))", "False"]
